// Package kurrentdb is the eventstore.Store adapter for KurrentDB (formerly
// EventStoreDB), over gRPC through the official Go client
// (EventStore-Client-Go v4, package esdb).
//
// Positions are KurrentDB commit positions. Every event written by a gRPC
// append has its own commit position (commit == prepare), so positions
// order events one by one, as the port requires. System events (type or
// stream starting with "$") and snapshot streams (snapshot.go) never appear
// in ReadAll, Subscribe or Head.
package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/partnerd/partnerd/eventstore"
)

// closeGrace bounds how long Close waits for calls still inside the client.
const closeGrace = 5 * time.Second

// Store is a KurrentDB-backed eventstore.Store, safe for concurrent use.
//
// The client closes itself for good when a (re)connection attempt fails;
// Store then replaces it with a fresh client on the next call, so a server
// outage fails calls during the outage but not after it.
type Store struct {
	conf esdb.Configuration // template for every client; never mutated

	base context.Context // ends at Close; every call's context ends with it
	stop context.CancelFunc

	mu     sync.Mutex
	client *esdb.Client
	closed bool
	calls  sync.WaitGroup // calls running inside a client
}

var _ eventstore.Store = (*Store)(nil)

// Open prepares a store for connectionString, which may use the esdb://,
// esdb+discover://, kurrentdb://, kurrentdb+discover://, kurrent:// or kdb://
// schemes (the client itself knows only esdb). It does not contact the
// server: the first call does. The client defaults to TLS; add ?tls=false
// for an insecure node. The client's logging is silenced.
func Open(connectionString string) (*Store, error) {
	conf, err := esdb.ParseConnectionString(rewriteScheme(connectionString))
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error quotes the string, password included
		}
		return nil, fmt.Errorf("kurrentdb: parse connection string: %w", err)
	}
	conf.Logger = esdb.NoopLogging()
	base, stop := context.WithCancel(context.Background())
	s := &Store{conf: *conf, base: base, stop: stop}
	s.client = s.newClient()
	return s, nil
}

// rewriteScheme maps the KurrentDB URL schemes onto the esdb ones.
func rewriteScheme(cs string) string {
	scheme, rest, ok := strings.Cut(cs, "://")
	if !ok {
		return cs
	}
	base, discover := strings.CutSuffix(strings.ToLower(scheme), "+discover")
	switch base {
	case "kurrentdb", "kurrent", "kdb", "esdb":
		if discover {
			return "esdb+discover://" + rest
		}
		return "esdb://" + rest
	}
	return cs
}

func (s *Store) newClient() *esdb.Client {
	conf := s.conf
	c, _ := esdb.NewClient(&conf) // never fails: it only starts the connection loop
	return c
}

// Close cancels every call and subscription, waits up to closeGrace for them
// to leave the client, then closes it. Calls after Close return
// eventstore.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	c := s.client
	s.mu.Unlock()
	s.stop()
	idle := make(chan struct{})
	go func() {
		s.calls.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return c.Close()
	case <-time.After(closeGrace):
		// Closing under a running call could make the client send on its
		// closed channel and panic; leaving it open only leaks it.
		return fmt.Errorf("kurrentdb: close: calls still running after %v; client left open", closeGrace)
	}
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
