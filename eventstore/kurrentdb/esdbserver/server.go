// Package esdbserver serves any eventstore.Store over the KurrentDB
// (EventStoreDB) Streams gRPC API, enough for the official Go client
// (EventStore-Client-Go v4): appends, stream and $all reads in both
// directions, and catch-up subscriptions to a stream or to $all. It exists so
// the kurrentdb adapter can be tested over real gRPC without a KurrentDB
// node, and can serve as a dev-mode stand-in.
//
// It is not KurrentDB: no TLS, no authentication, no system events, no
// deletes, no server-side filters, no persistent subscriptions, no
// projections. $all positions are the backing store's positions, used as
// both commit and prepare position. Stream metadata (SetStreamMetadata, an
// append to "$$<stream>") is stored as the plain stream it is and never
// enforced: $maxCount truncates nothing, so the kurrentdb adapter's snapshot
// streams keep every snapshot here, and the backing store's log holds them
// (and their metadata streams) as ordinary streams.
package esdbserver

import (
	"fmt"
	"net"
	"sync"
	"time"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/partnerd/partnerd/eventstore"
)

// maxMessage matches the client's own receive limit (17 MiB).
const maxMessage = 17 << 20

// Service implements the Streams gRPC service over an eventstore.Store.
// Delete, Tombstone and BatchAppend answer Unimplemented (the client never
// uses BatchAppend for AppendToStream).
type Service struct {
	api.UnimplementedStreamsServer
	store eventstore.Store
}

// NewService returns a Streams service backed by store. The service never
// closes the store.
func NewService(store eventstore.Store) *Service {
	return &Service{store: store}
}

// NewServer returns a gRPC server with the Streams service registered and
// the keepalive policy the client needs: it pings every 10 s, which the
// default policy (5 min) would punish by closing the connection.
func NewServer(store eventstore.Store) *grpc.Server {
	srv := grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.MaxRecvMsgSize(maxMessage),
		grpc.MaxSendMsgSize(maxMessage),
	)
	api.RegisterStreamsServer(srv, NewService(store))
	return srv
}

// Start serves store on a fresh port of 127.0.0.1. Connect with
// "esdb://"+addr+"?tls=false" (the client enables TLS by default). stop
// ends every call, including open subscriptions, and may be called more
// than once; it does not close store.
func Start(store eventstore.Store) (addr string, stop func(), err error) {
	return StartOn("127.0.0.1:0", store)
}

// StartOn is Start on a chosen address, e.g. for a dev mode. The server has
// no TLS and no authentication: bind it to loopback only.
func StartOn(address string, store eventstore.Store) (addr string, stop func(), err error) {
	lis, err := net.Listen("tcp", address)
	if err != nil {
		return "", nil, fmt.Errorf("esdbserver: listen on %s: %w", address, err)
	}
	srv := NewServer(store)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis) // returns once stop runs
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Stop()
			<-served
		})
	}
	return lis.Addr().String(), stop, nil
}
