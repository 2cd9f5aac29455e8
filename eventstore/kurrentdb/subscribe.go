package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/partnerd/partnerd/eventstore"
)

// Resubscription backoff after a dropped subscription.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
	// subscribeLimit bounds the wait for a subscription's confirmation, so
	// a client stuck in its connection loop cannot stall Subscribe forever.
	subscribeLimit = 30 * time.Second
)

// handlerError marks an error returned by the subscriber's handler.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }
func (e handlerError) Unwrap() error { return e.err }

// Subscribe implements eventstore.Store with a catch-up subscription to
// $all strictly after `after` (from the first event when 0), skipping
// system events and snapshots. When the subscription drops for a transient
// reason (server restart, network), it resubscribes after the last event it
// saw, with backoff, so the handler sees no gap and no duplicate. It
// returns the handler's error unchanged, ctx's error when ctx ends,
// ErrClosed when the store closes, and a wrapped error for a permanent
// failure (e.g. denied).
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position, handle func(eventstore.RecordedEvent) error) error {
	ctx, cancel := s.scope(ctx)
	defer cancel()
	last := after
	delay := minBackoff
	for {
		progressed, err := s.subscribeOnce(ctx, &last, handle)
		var herr handlerError
		if errors.As(err, &herr) {
			return herr.err
		}
		if ctx.Err() != nil || errors.Is(err, eventstore.ErrClosed) {
			return s.ctxErr(ctx)
		}
		if !transient(err) {
			return fmt.Errorf("subscribe to $all after %d: %w", last, err)
		}
		if progressed {
			delay = minBackoff
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return s.ctxErr(ctx)
		}
		delay = min(2*delay, maxBackoff)
	}
}

// subscribeOnce runs one subscription until it drops or the handler fails,
// advancing *last past every event it receives (hidden ones included). It
// reports whether it advanced.
func (s *Store) subscribeOnce(ctx context.Context, last *eventstore.Position, handle func(eventstore.RecordedEvent) error) (bool, error) {
	// Ending subCtx on return also kills a subscription that the client
	// opens after callWithin gave up on it.
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sub *esdb.Subscription
	err := s.callWithin(ctx, subscribeLimit, func(_ context.Context, c *esdb.Client) error {
		var err error
		sub, err = c.SubscribeToAll(subCtx, esdb.SubscribeToAllOptions{From: allPosition(*last)})
		return err
	})
	if err != nil {
		return false, err
	}
	defer sub.Close()
	progressed := false
	for {
		ev := sub.Recv()
		if d := ev.SubscriptionDropped; d != nil {
			if d.Error == nil {
				return progressed, errors.New("subscription dropped")
			}
			return progressed, d.Error
		}
		if ev.EventAppeared == nil {
			continue // caught up, fell behind, checkpoint
		}
		r := ev.EventAppeared.OriginalEvent()
		if r == nil {
			continue
		}
		pos := eventstore.Position(r.Position.Commit)
		if pos <= *last {
			continue // a server that includes the start position
		}
		if !hidden(r) {
			if err := handle(recorded(r)); err != nil {
				return progressed, handlerError{err}
			}
		}
		*last, progressed = pos, true
	}
}
