package kurrentdb_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/eventstore/eventstoretest"
	"github.com/partnerd/partnerd/eventstore/kurrentdb"
	"github.com/partnerd/partnerd/eventstore/kurrentdb/esdbserver"
)

// backend is an in-process server over an embedded store, and an adapter
// connected to it over real gRPC.
type backend struct {
	store   *kurrentdb.Store
	backing *embedded.Store
	addr    string
	stop    func()
}

func start(t *testing.T, scheme string) *backend {
	t.Helper()
	backing, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr, stop, err := esdbserver.Start(backing)
	if err != nil {
		t.Fatal(err)
	}
	s, err := kurrentdb.Open(scheme + "://" + addr + "?tls=false")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{store: s, backing: backing, addr: addr, stop: stop}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close adapter: %v", err)
		}
		b.stop()
		if err := backing.Close(); err != nil {
			t.Errorf("close backing store: %v", err)
		}
	})
	return b
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestContract(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store { return start(t, "esdb").store })
}

func TestSnapshotContract(t *testing.T) {
	eventstoretest.RunSnapshots(t, func(t *testing.T) eventstore.Store { return start(t, "esdb").store })
}

func TestWrongVersionIsVersionError(t *testing.T) {
	s := start(t, "kurrentdb").store
	ctx := testCtx(t)
	ev := func() []eventstore.EventData {
		return []eventstore.EventData{eventstoretest.Event("t.happened", `{}`)}
	}
	if _, err := s.Append(ctx, "wv-1", eventstore.NoStream, append(ev(), ev()...)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		stream           string
		expected, actual int64
	}{
		{"wv-1", 0, 1},
		{"wv-1", eventstore.NoStream, 1},
		{"wv-2", eventstore.StreamExists, -1},
		{"wv-2", 3, -1},
	}
	for _, tc := range cases {
		_, err := s.Append(ctx, tc.stream, tc.expected, ev())
		if !errors.Is(err, eventstore.ErrWrongVersion) {
			t.Fatalf("expected %d on %s: err = %v, want ErrWrongVersion", tc.expected, tc.stream, err)
		}
		var ve *eventstore.VersionError
		if !errors.As(err, &ve) {
			t.Fatalf("err = %#v, want *eventstore.VersionError", err)
		}
		want := eventstore.VersionError{Stream: tc.stream, Expected: tc.expected, Actual: tc.actual}
		if *ve != want {
			t.Errorf("version error = %+v, want %+v", *ve, want)
		}
	}
}

func TestInvalidEventID(t *testing.T) {
	s := start(t, "esdb").store
	_, err := s.Append(testCtx(t), "bad-id", eventstore.Any, []eventstore.EventData{{ID: "not-a-uuid", Type: "x"}})
	if err == nil {
		t.Fatal("append with a non-UUID id succeeded")
	}
}

func TestClosed(t *testing.T) {
	s := start(t, "esdb").store
	ctx := testCtx(t)
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, 0, func(eventstore.RecordedEvent) error { return nil })
	}()
	time.Sleep(100 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not return after Close")
	}
	if _, err := s.Head(ctx); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Head after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Append(ctx, "c", eventstore.Any, []eventstore.EventData{eventstoretest.Event("c", `{}`)}); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
}

func TestOpenRejectsBadConnectionString(t *testing.T) {
	for _, cs := range []string{"http://localhost:2113", "kurrentdb://", "esdb://u:secret@h:x"} {
		_, err := kurrentdb.Open(cs)
		if err == nil {
			t.Errorf("Open(%q) succeeded", cs)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open error leaks the password: %v", err)
		}
	}
}
