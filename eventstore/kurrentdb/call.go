package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/partnerd/partnerd/eventstore"
)

// scope derives a context that also ends when the store closes.
func (s *Store) scope(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(s.base, cancel)
	return ctx, func() {
		unhook()
		cancel()
	}
}

// ctxErr is the error for a scoped context that ended: ErrClosed if the
// store closed, else the caller's reason.
func (s *Store) ctxErr(ctx context.Context) error {
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	return ctx.Err()
}

// call runs f against the current client. ctx must come from scope; f gets
// it unchanged, so what f opens (a subscription) may outlive call.
//
// f runs on its own goroutine and call returns when ctx ends even if f does
// not: the client's connection loop ignores contexts, and after a failed
// reconnection a call can block in it forever. When the client has closed
// itself (ErrorCodeConnectionClosed, raised before anything is sent), call
// swaps in a fresh client and retries once.
func (s *Store) call(ctx context.Context, f func(context.Context, *esdb.Client) error) error {
	return s.callWithin(ctx, 0, f)
}

// callWithin is call that also gives up after limit (when > 0), with a
// stuckError; f may still be running then.
func (s *Store) callWithin(ctx context.Context, limit time.Duration, f func(context.Context, *esdb.Client) error) error {
	var expired <-chan time.Time
	if limit > 0 {
		timer := time.NewTimer(limit)
		defer timer.Stop()
		expired = timer.C
	}
	for retried := false; ; retried = true {
		c, err := s.acquire()
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() {
			defer s.calls.Done()
			done <- f(ctx, c)
		}()
		select {
		case err = <-done:
		case <-ctx.Done():
			return s.ctxErr(ctx)
		case <-expired:
			return stuckError{limit}
		}
		if err != nil && !retried && hasCode(err, esdb.ErrorCodeConnectionClosed) && s.renew(c) {
			continue
		}
		if err != nil && ctx.Err() != nil {
			return s.ctxErr(ctx)
		}
		return err
	}
}

// stuckError reports a client call that did not return in time. It is
// transient: the next call finds the client closed and replaces it.
type stuckError struct{ limit time.Duration }

func (e stuckError) Error() string {
	return fmt.Sprintf("kurrentdb: client call did not return within %v", e.limit)
}

// acquire returns the current client and counts a call on it; the caller
// must call s.calls.Done once the client is no longer used.
func (s *Store) acquire() (*esdb.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	s.calls.Add(1)
	return s.client, nil
}

// renew replaces old, a client that closed itself, unless another call
// already did. It reports whether a retry can use a fresh client. The old
// client is not closed: its connection loop has already exited, and closing
// it would make any call still inside it panic.
func (s *Store) renew(old *esdb.Client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.client == old {
		s.client = s.newClient()
	}
	return true
}

// hasCode reports whether err is an esdb error with the given code.
func hasCode(err error, code esdb.ErrorCode) bool {
	var e *esdb.Error
	return errors.As(err, &e) && e.IsErrorCode(code)
}

// transient reports whether a failed call or dropped subscription may
// succeed when retried: everything but authentication, authorization,
// unsupported operations, missing resources and malformed requests.
func transient(err error) bool {
	var e *esdb.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case esdb.ErrorCodeUnauthenticated, esdb.ErrorCodeAccessDenied, esdb.ErrorCodeUnsupportedFeature,
			esdb.ErrorCodeResourceNotFound, esdb.ErrorCodeStreamDeleted, esdb.ErrorCodeParsing,
			esdb.ErrorCodeInternalClient:
			return false
		}
	}
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument, codes.Unimplemented,
		codes.NotFound, codes.FailedPrecondition, codes.OutOfRange:
		return false
	}
	return true
}
