package testenv

import (
	"testing"

	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/eventstore/kurrentdb/esdbserver"
)

// KurrentDB starts the in-process KurrentDB gRPC server (esdbserver) over
// a fresh embedded store, both stopped when the test ends, and returns the
// connection string for partnerd (PARTNERD_EVENTSTORE) and the backing
// store, to look at what the server holds.
func KurrentDB(t testing.TB) (url string, backing *embedded.Store) {
	t.Helper()
	backing, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr, stop, err := esdbserver.Start(backing)
	if err != nil {
		_ = backing.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		_ = backing.Close()
	})
	return "esdb://" + addr + "?tls=false", backing
}
