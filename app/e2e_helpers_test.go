package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/internal/testenv"
)

// Real-Redis app tests each own a Redis database, because partnerd's global
// keys (relay checkpoint, generation pointers) are not prefixed per test.
// scripts/redis.sh starts Redis with 64 databases; 16-31 are reserved for
// the segments (16-18), activity (19-21), connections (22-24), security
// and import (25-27) and history (28-30) tests.
const (
	dbEndToEnd = 2
	dbRestart  = 3
)

// redisDB returns a URL of database db on the test Redis, flushed.
func redisDB(t *testing.T, db int) string {
	t.Helper()
	u, err := url.Parse(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + strconv.Itoa(db)
	opt, err := redis.ParseURL(u.String())
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableIdentity = true
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	return u.String()
}

type harness struct {
	t    *testing.T
	app  *app.App
	srv  *httptest.Server
	key  string
	base string
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// start runs an app on cfg with an httptest server and the bootstrap program.
func start(t *testing.T, cfg app.Config) *harness {
	t.Helper()
	return startLogged(t, cfg, quietLogger())
}

// startLogged is start with the app logging to logger.
func startLogged(t *testing.T, cfg app.Config, logger *slog.Logger) *harness {
	t.Helper()
	if cfg.BootstrapKey == "" {
		cfg.BootstrapKey = "test-key-0123456789abcdef"
	}
	a, err := app.New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Close()
		t.Fatal(err)
	}
	if _, _, err := a.Bootstrap(context.Background()); err != nil {
		a.Close()
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.HTTP.Handler())
	h := &harness{t: t, app: a, srv: srv, key: cfg.BootstrapKey, base: srv.URL + "/v1/programs/" + cfg.BootstrapProgram}
	t.Cleanup(h.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	// With Kafka, published is not yet projected: wait until the key works.
	for {
		if p, err := a.Queries.ProgramOfKey(ctx, commands.HashAPIKey(cfg.BootstrapKey)); err == nil && p == cfg.BootstrapProgram {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the bootstrap key never reached the programs read model")
		case <-time.After(10 * time.Millisecond):
		}
	}
	return h
}

func (h *harness) stop() {
	h.srv.Close()
	h.app.Close()
}

func config(t *testing.T, redisURL string) app.Config {
	c := app.Defaults()
	c.Data = t.TempDir()
	c.RedisURL = redisURL
	c.BootstrapProgram = "acme"
	return c
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// do sends a request; headers are name, value pairs. The default key is the
// harness's; pass "Authorization", "" to send none.
func (h *harness) do(method, path string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	u := path
	if len(path) > 0 && path[0] == '/' {
		u = h.base + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.key)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

func (h *harness) head() uint64 {
	p, err := h.app.Store.Head(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return uint64(p)
}

// configs runs f once with the embedded Redis and once with real Redis
// database db (flushed), each with its own config, for tests that stop
// and start apps on it themselves.
func configs(t *testing.T, db int, f func(t *testing.T, cfg app.Config)) {
	for name, url := range map[string]func(*testing.T) string{"embedded redis": func(*testing.T) string { return "" },
		"real redis": func(t *testing.T) string { return redisDB(t, db) }} {
		t.Run(name, func(t *testing.T) { f(t, config(t, url(t))) })
	}
}
