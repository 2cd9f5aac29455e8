package testenv

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestRedis(t *testing.T) {
	client := Redis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	key := UniquePrefix(t) + ":testenv"
	t.Cleanup(func() { _ = client.Del(context.Background(), key).Err() })
	if err := client.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	got, err := client.Get(ctx, key).Result()
	if err != nil || got != "v" {
		t.Fatalf("GET = %q, %v; want \"v\", nil", got, err)
	}
}

func TestMiniredis(t *testing.T) {
	client, srv := MiniredisServer(t)
	ctx := context.Background()

	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	if err := client.Set(ctx, "k", "v", time.Second).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	srv.FastForward(2 * time.Second)
	if n, err := client.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS after TTL = %d, %v; want 0, nil", n, err)
	}
	if err := Miniredis(t).Ping(ctx).Err(); err != nil {
		t.Fatalf("PING second miniredis: %v", err)
	}
}

func TestUniquePrefix(t *testing.T) {
	valid := regexp.MustCompile(`^t[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		p := UniquePrefix(t)
		if !valid.MatchString(p) {
			t.Fatalf("UniquePrefix = %q; want %s", p, valid)
		}
		if seen[p] {
			t.Fatalf("UniquePrefix repeated %q", p)
		}
		seen[p] = true
	}
}

// outcomeTB records Skip/Fatal instead of acting on the real test.
type outcomeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (o *outcomeTB) Helper() {}
func (o *outcomeTB) Skip(args ...any) {
	o.skipped, o.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (o *outcomeTB) Fatal(args ...any) {
	o.failed, o.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (o *outcomeTB) Fatalf(format string, args ...any) {
	o.failed, o.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func runURL(t *testing.T) (*outcomeTB, string) {
	o := &outcomeTB{TB: t}
	var got string
	done := make(chan struct{})
	go func() {
		defer close(done)
		got = RedisURL(o)
	}()
	<-done
	return o, got
}

func TestRedisURLUnset(t *testing.T) {
	t.Run("local skips", func(t *testing.T) {
		t.Setenv(RedisURLEnv, "")
		t.Setenv("CI", "")
		o, _ := runURL(t)
		if !o.skipped || o.failed || !strings.Contains(o.msg, "scripts/redis.sh start") {
			t.Fatalf("skipped=%v failed=%v msg=%q; want a skip pointing at scripts/redis.sh", o.skipped, o.failed, o.msg)
		}
	})
	t.Run("CI fails", func(t *testing.T) {
		t.Setenv(RedisURLEnv, "")
		t.Setenv("CI", "true")
		o, _ := runURL(t)
		if !o.failed || o.skipped || !strings.Contains(o.msg, RedisURLEnv) {
			t.Fatalf("skipped=%v failed=%v msg=%q; want a failure naming %s", o.skipped, o.failed, o.msg, RedisURLEnv)
		}
	})
	t.Run("set is returned", func(t *testing.T) {
		const want = "redis://127.0.0.1:1/0"
		t.Setenv(RedisURLEnv, want)
		t.Setenv("CI", "true")
		o, got := runURL(t)
		if o.failed || o.skipped || got != want {
			t.Fatalf("RedisURL = %q (skipped=%v failed=%v); want %q", got, o.skipped, o.failed, want)
		}
	})
}

func TestRedact(t *testing.T) {
	got := redact("redis://user:secret@127.0.0.1:6390/0")
	if strings.Contains(got, "secret") {
		t.Fatalf("redact leaked the password: %q", got)
	}
}
