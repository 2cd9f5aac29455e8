//go:build faults

package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/internal/testenv"
	"github.com/partnerd/partnerd/projections"
)

// ack is a write partnerd answered 2xx: its consistency token names the
// stream and the version its last event got.
type ack struct {
	what    string
	stream  string
	version uint64
}

// ledger records the acknowledged writes of a load run.
type ledger struct {
	mu     sync.Mutex
	acks   []ack
	failed map[int]int // status → count (0: no answer)
}

func (l *ledger) record(what string, status int, hdr http.Header) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if status < 200 || status > 299 {
		if l.failed == nil {
			l.failed = map[int]int{}
		}
		l.failed[status]++
		return
	}
	raw, err := base64.RawURLEncoding.DecodeString(hdr.Get("X-Consistency-Token"))
	i := bytes.LastIndexByte(raw, '@')
	if err != nil || i <= 0 {
		l.acks = append(l.acks, ack{what: what}) // checked (and failed) by checkAcked
		return
	}
	v, _ := strconv.ParseUint(string(raw[i+1:]), 10, 64)
	l.acks = append(l.acks, ack{what: what, stream: string(raw[:i]), version: v})
}

func (l *ledger) counts() (int, map[int]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := map[int]int{}
	for k, v := range l.failed {
		f[k] = v
	}
	return len(l.acks), f
}

// client sends API requests from load goroutines (it never calls t.Fatal).
type client struct {
	base, key string
	http      *http.Client
}

func newClient(base, key string) *client {
	return &client{base: base, key: key, http: &http.Client{Timeout: 60 * time.Second}}
}

func (c *client) send(method, path string, body any, hdr ...string) (int, http.Header, []byte) {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.key)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

// load runs workers that create partners and then change them (profile and
// groups), recording every answer, until stop is called; stop returns the
// ledger once every worker finished its request in flight. progress counts
// the writes acknowledged so far.
func load(c *client, workers int, prefix string) (l *ledger, progress func() int64, stop func() *ledger) {
	l = &ledger{}
	var done atomic.Bool
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !done.Load(); i++ {
				id := fmt.Sprintf("%s%d-%d", prefix, w, i/3)
				var status int
				var hdr http.Header
				var what string
				switch i % 3 {
				case 0:
					what = "create " + id
					status, hdr, _ = c.send("POST", "/partners", map[string]any{"partner_id": id, "name": "P " + id,
						"relationship_type": "direct", "country": []string{"DE", "FR", "IT"}[i%3]})
				case 1:
					what = "update " + id
					status, hdr, _ = c.send("PATCH", "/partners/"+id, map[string]any{"name": "Q " + id, "country": "NL"})
				case 2:
					what = "groups " + id
					status, hdr, _ = c.send("PUT", "/partners/"+id+"/groups", map[string]any{"groups": []string{"vip"}})
				}
				if status == 404 && i%3 != 0 {
					// Its creation was not acknowledged (Redis was down):
					// then there is nothing to change.
					continue
				}
				l.record(what, status, hdr)
				if status >= 200 && status <= 299 {
					n.Add(1)
				}
			}
		}()
	}
	return l, n.Load, func() *ledger { done.Store(true); wg.Wait(); return l }
}

// checkAcked fails unless every acknowledged write is in the log: its
// stream holds an event at the version the write answered.
func checkAcked(t *testing.T, store eventstore.Store, l *ledger) {
	t.Helper()
	for _, a := range l.acks {
		if a.stream == "" {
			t.Fatalf("%s was answered 2xx without a consistency token", a.what)
		}
		// Resource versions count events; the store numbers them from 0.
		evs, err := store.ReadStream(t.Context(), a.stream, a.version-1, eventstore.Forwards, 1)
		if a.version == 0 || err != nil || len(evs) != 1 || evs[0].Version != a.version-1 {
			all, _ := store.ReadStream(t.Context(), a.stream, 0, eventstore.Forwards, 100)
			var have []string
			for _, e := range all {
				have = append(have, fmt.Sprintf("%d:%s", e.Version, e.Type))
			}
			t.Fatalf("acknowledged %s (%s@%d) is not in the log (err %v); the stream holds %v", a.what, a.stream, a.version, err, have)
		}
	}
}

// dumpLive renders every key of a projection's live generation (read
// through rdb) as "key → canonical value", with the generation number
// taken out of the key. The per-tag "meta" hash is left out: it holds the
// position of whichever batch wrote last, which depends on batching; so is
// the segments projection's per-tag "epoch" hash: random tokens that tell
// its writers' in-process caches apart, not read-model content.
func dumpLive(ctx context.Context, rdb redis.UniversalClient, name string) (map[string]string, error) {
	gen, err := rdb.Get(ctx, projections.GenerationKey(name)).Int64()
	if err != nil {
		return nil, fmt.Errorf("generation of %s: %w", name, err)
	}
	return testenv.DumpGeneration(ctx, rdb, name, gen)
}

// scratchRedis is an empty database (db 63) of the private Redis srv, for
// from-scratch replays.
func scratchRedis(t *testing.T, srv *testenv.RedisServer) redis.UniversalClient {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 63, DisableIdentity: true})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.FlushDB(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	return rdb
}

// rebuilt applies the whole log, from scratch and in log order, to every
// projection in the empty database rdb (what a rebuild replays) and dumps
// the result.
func rebuilt(t *testing.T, rdb redis.UniversalClient, log projections.LogReader) map[string]map[string]string {
	t.Helper()
	var evs []bus.Envelope
	for after := eventstore.Position(0); ; {
		page, err := log.ReadAll(t.Context(), after, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, re := range page {
			evs = append(evs, bus.EnvelopeOf(re))
		}
		after = page[len(page)-1].Position
	}
	out := map[string]map[string]string{}
	for _, p := range app.Projections() {
		r := projections.NewRunner(rdb, p)
		r.Logger = quietLogger()
		if err := r.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		var mine []bus.Envelope
		for _, ev := range evs {
			if slices.Contains(p.Topics(), bus.Topic(domain.Category(ev.Stream))) {
				mine = append(mine, ev)
			}
		}
		for i := 0; i < len(mine); i += 1024 {
			if err := r.Apply(t.Context(), mine[i:min(i+1024, len(mine))]); err != nil {
				t.Fatalf("apply the log to %s from scratch: %v", p.Name(), err)
			}
		}
		d, err := dumpLive(t.Context(), rdb, p.Name())
		if err != nil {
			t.Fatal(err)
		}
		out[p.Name()] = d
	}
	return out
}

// diff lists up to 10 differences between two dumps.
func diff(live, want map[string]string) []string {
	var out []string
	for k, v := range want {
		if lv, ok := live[k]; !ok {
			out = append(out, "missing "+k)
		} else if lv != v {
			out = append(out, fmt.Sprintf("differs %s:\n  live    %q\n  rebuilt %q%s", k, short(lv), short(v), fieldDiff(lv, v)))
		}
	}
	for k := range live {
		if _, ok := want[k]; !ok {
			out = append(out, "extra "+k)
		}
	}
	sort.Strings(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("… %d more", len(out)-10))
	}
	return out
}

func short(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// converges waits (up to within) until the live read models in rdb equal,
// key by key, a from-scratch rebuild of the log: nothing lost, nothing
// applied twice, with no manual step. The log must not grow meanwhile.
func converges(t *testing.T, rdb redis.UniversalClient, log projections.LogReader, scratch redis.UniversalClient, within time.Duration) map[string]map[string]string {
	t.Helper()
	head, err := log.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := rebuilt(t, scratch, log)
	deadline := time.Now().Add(within)
	for {
		// Events can still be appended after the load stopped (segment
		// membership announcements of a projection catching up from
		// Kafka): compare with a replay of the log as it is now.
		if h, err := log.Head(t.Context()); err == nil && h != head {
			head = h
			want = rebuilt(t, scratch, log)
		}
		var problems []string
		for name, w := range want {
			live, err := dumpLive(t.Context(), rdb, name)
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			for _, d := range diff(live, w) {
				problems = append(problems, name+": "+d)
			}
		}
		if len(problems) == 0 {
			return want
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live read models did not converge to a rebuild from the log within %s:\n%s", within, strings.Join(problems, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readyz returns the status of GET /readyz on base (0: no answer).
func readyz(base string) (int, string) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(base + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReadyz waits until /readyz answers want.
func waitReadyz(t *testing.T, base string, want int, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		code, body := readyz(base)
		if code == want {
			return time.Since(began)
		}
		if time.Since(began) > within {
			t.Fatalf("/readyz did not answer %d within %s; last %d %s", want, within, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startCatchingUp is start for an app that has a backlog to project: it
// waits up to 2 minutes for the catch-up rather than 10 s.
func startCatchingUp(t *testing.T, cfg app.Config) *harness {
	t.Helper()
	if cfg.BootstrapKey == "" {
		cfg.BootstrapKey = "test-key-0123456789abcdef"
	}
	a, err := app.New(cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Close()
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.HTTP.Handler())
	h := &harness{t: t, app: a, srv: srv, key: cfg.BootstrapKey, base: srv.URL + "/v1/programs/" + cfg.BootstrapProgram}
	t.Cleanup(h.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.WaitCaughtUp(ctx); err != nil {
		t.Fatalf("catching up: %v", err)
	}
	return h
}

// fieldDiff names up to 5 fields (of "field=value\x00…" dumps) that differ.
func fieldDiff(live, want string) string {
	split := func(s string) map[string]string {
		m := map[string]string{}
		for _, f := range strings.Split(s, "\x00") {
			if k, v, ok := strings.Cut(f, "="); ok {
				m[k] = v
			}
		}
		return m
	}
	l, w := split(live), split(want)
	var out []string
	for k, v := range w {
		if lv, ok := l[k]; !ok || lv != v {
			out = append(out, fmt.Sprintf("%s: live %q rebuilt %q", k, lv, v))
		}
	}
	for k, v := range l {
		if _, ok := w[k]; !ok {
			out = append(out, fmt.Sprintf("%s: live %q rebuilt absent", k, v))
		}
	}
	sort.Strings(out)
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("… %d more", len(out)-5))
	}
	if len(out) == 0 {
		return ""
	}
	return "\n  fields: " + strings.Join(out, "; ")
}
