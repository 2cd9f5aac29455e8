package main

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/internal/testenv"
)

func TestRebuildCommand(t *testing.T) {
	u, err := url.Parse(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/4" // this test's own database: partnerd's global keys are unprefixed
	opt, _ := redis.ParseURL(u.String())
	opt.DisableIdentity = true
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	rdb.FlushDB(context.Background())
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run([]string{"programs", "create", "acme", "--data", dir}, &out, &errOut); code != 0 {
		t.Fatal(errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"rebuild", "all", "--data", dir, "--redis-url", u.String()}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	// An empty Redis: no generation to replace, none made before the switch.
	if !strings.Contains(out.String(), "programs: generation 1 (Redis had none), 2 events") || !strings.Contains(out.String(), "partners: generation 1 (Redis had none), 0 events") {
		t.Fatalf("output %q", out.String())
	}
	if !strings.Contains(errOut.String(), "events/s") {
		t.Fatalf("no progress bar on stderr: %q", errOut.String())
	}
	// The rebuilt programs read model knows the program.
	if n, _ := rdb.Exists(context.Background(), "pd:programs:g1:{programs}:program:acme").Result(); n != 1 {
		t.Fatal("program acme missing from the rebuilt generation")
	}
	if code := run([]string{"rebuild", "nosuch", "--data", dir, "--redis-url", u.String()}, &out, &errOut); code != 2 {
		t.Fatalf("unknown projection: exit %d", code)
	}
	// With the embedded Redis the next start rebuilds everything: there is
	// nothing to do, which is a success that says so, per projection.
	out.Reset()
	if code := run([]string{"rebuild", "all", "--data", dir, "--redis-url", ""}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "partners: nothing to rebuild") || !strings.Contains(out.String(), "PARTNERD_REDIS_URL") {
		t.Fatalf("with the embedded Redis: exit %d %q %q", code, out.String(), errOut.String())
	}
	// A store another process holds is an error that says what to do.
	store, err := app.OpenStore(app.Config{EventStore: "embedded", Data: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	errOut.Reset()
	if code := run([]string{"rebuild", "all", "--data", dir, "--redis-url", ""}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "stop the server") {
		t.Fatalf("with the store held by a server: exit %d %q", code, errOut.String())
	}
}
