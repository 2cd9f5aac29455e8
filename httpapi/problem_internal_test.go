package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/partnerd/partnerd/domain"
)

type redisErr string

func (e redisErr) Error() string { return string(e) }
func (redisErr) RedisError()     {}

// A backing service that is down is a 503 (retry later), never a 500; a
// Redis error about the request itself stays a 500.
func TestClassifyDependencyDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{name: "dial refused", err: fmt.Errorf("read guards: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), want: 503},
		{name: "reset", err: fmt.Errorf("x: %w", syscall.ECONNRESET), want: 503},
		{name: "redis loading", err: fmt.Errorf("auth: %w", redisErr("LOADING Redis is loading the dataset in memory")), want: 503},
		{name: "redis wrong type", err: redisErr("WRONGTYPE Operation against a key holding the wrong kind of value"), want: 500},
		{name: "canceled", err: fmt.Errorf("x: %w", context.Canceled), want: 500},
		{name: "not found", err: domain.ErrNotFound, want: 404},
		{name: "other", err: errors.New("boom"), want: http.StatusInternalServerError},
	} {
		if got := classify(tc.err).Status; got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
