package testenv

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The private server keeps acknowledged writes across a SIGKILL restart,
// loses them on RestartEmpty, and answers nothing while paused.
func TestRedisServer(t *testing.T) {
	srv := StartRedisServer(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 5, DisableIdentity: true, MaxRetries: -1,
		ReadTimeout: 300 * time.Millisecond})
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		// The first command after a restart may meet a dead pooled connection.
		if v, err = c.Get(ctx, "k").Result(); err != nil || v != "v" {
			t.Fatalf("after a restart GET k = %q, %v", v, err)
		}
	}
	srv.Pause()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("a paused server answered PING")
	}
	srv.Resume()
	if err := c.Ping(ctx).Err(); err != nil {
		if err = c.Ping(ctx).Err(); err != nil {
			t.Fatalf("PING after resume: %v", err)
		}
	}
	srv.RestartEmpty()
	_, err := c.Get(ctx, "k").Result()
	if !errors.Is(err, redis.Nil) {
		if _, err = c.Get(ctx, "k").Result(); !errors.Is(err, redis.Nil) {
			t.Fatalf("after RestartEmpty GET k: %v, want redis.Nil", err)
		}
	}
}
