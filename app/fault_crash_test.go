//go:build faults

package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/projections"
)

const dbCrash = 30

// envInt reads a positive integer from the environment, or def.
func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil && v > 0 {
		return v
	}
	return def
}

// crashAck is a write partnerd acknowledged: the resource's stream reached version.
type crashAck struct {
	stream  string
	version uint64
}

// SIGKILL the real partnerd binary at random moments, while commands run
// and, in some rounds, while a rebuild runs; restart it on the same data.
// Afterwards no acknowledged event is missing from the log, and every key
// of every live read model equals, key by key, what a rebuild from scratch
// produces. Seeded: PARTNERD_FAULT_SEED replays a run,
// PARTNERD_FAULT_ROUNDS sets how many kills (default 3).
func TestFaultCrashConvergesToRebuild(t *testing.T) {
	seed := uint64(envInt("PARTNERD_FAULT_SEED", time.Now().UnixNano()))
	rounds := int(envInt("PARTNERD_FAULT_ROUNDS", 3))
	t.Logf("seed %d, %d rounds (replay with PARTNERD_FAULT_SEED=%d)", seed, rounds, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	redisURL := redisDB(t, dbCrash)
	bin := filepath.Join(t.TempDir(), "partnerd")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/partnerd").CombinedOutput(); err != nil {
		t.Fatalf("build partnerd: %v\n%s", err, out)
	}
	data := t.TempDir()
	const key = "crash-test-key-0123456789"
	launch := func() *proc {
		addr := freeAddr(t)
		cmd := exec.Command(bin)
		// No rate limit: four writers flat out pass 1000 requests/s on a
		// quiet machine, and the rebuild call, on the same key, got a 429.
		cmd.Env = append(os.Environ(), "PARTNERD_ADDR="+addr, "PARTNERD_DATA="+data, "PARTNERD_REDIS_URL="+redisURL,
			"PARTNERD_BOOTSTRAP_PROGRAM=acme", "PARTNERD_BOOTSTRAP_KEY="+key, "PARTNERD_RATE_LIMIT=0")
		p := &proc{cmd: cmd, base: "http://" + addr, log: &bytes.Buffer{}}
		cmd.Stdout, cmd.Stderr = p.log, p.log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		deadline := time.Now().Add(60 * time.Second)
		for {
			if code, _, _ := p.call(t, "GET", "/v1/programs/acme/partners", key, nil); code == 200 {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("partnerd did not come up:\n%s", p.log)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	var mu sync.Mutex
	var acks []crashAck
	record := func(stream string, code int, hdr map[string][]string) {
		if code < 200 || code > 299 {
			return
		}
		etag := ""
		if v := hdr["Etag"]; len(v) > 0 {
			etag = strings.Trim(v[0], `"`)
		}
		if v, err := strconv.ParseUint(etag, 10, 64); err == nil && v > 0 {
			mu.Lock()
			acks = append(acks, crashAck{stream: stream, version: v})
			mu.Unlock()
		}
	}
	p := launch()
	for _, g := range []string{"g1", "g2", "g3"} {
		code, hdr, _ := p.call(t, "POST", "/v1/programs/acme/groups", key, map[string]any{"id": g, "name": "Group " + g})
		record(domain.GroupStream("acme", g), code, hdr)
	}
	for _, tt := range []string{"gold", "silver"} {
		code, hdr, _ := p.call(t, "POST", "/v1/programs/acme/template-terms", key, map[string]any{"id": tt, "name": tt})
		record(domain.TemplateTermStream("acme", tt), code, hdr)
	}

	// write runs one random command against partnerd.
	write := func(p *proc, r *rand.Rand) {
		id := fmt.Sprintf("p%02d", r.IntN(40))
		stream := domain.PartnerStream("acme", id)
		base := "/v1/programs/acme/partners"
		var code int
		var hdr map[string][]string
		switch r.IntN(8) {
		case 0, 1:
			code, hdr, _ = p.call(t, "POST", base, key, map[string]any{"partner_id": id, "name": "Partner " + id,
				"relationship_type": "direct", "country": []string{"DE", "FR", "IT"}[r.IntN(3)]})
		case 2:
			code, hdr, _ = p.call(t, "PATCH", base+"/"+id, key, map[string]any{"name": fmt.Sprint("Renamed ", r.IntN(1000)),
				"country": []string{"DE", "FR", "IT", "ES"}[r.IntN(4)], "size": []string{"s", "m", "l"}[r.IntN(3)]})
		case 3:
			code, hdr, _ = p.call(t, "PUT", base+"/"+id+"/groups", key, map[string]any{"groups": []string{"g1", "g2", "g3"}[:r.IntN(4)]})
		case 4:
			code, hdr, _ = p.call(t, "PUT", base+"/"+id+"/assigned-to", key, map[string]any{"user": fmt.Sprint("u", r.IntN(3))})
		case 5:
			code, hdr, _ = p.call(t, "POST", base+"/"+id+"/contract/propose", key, map[string]any{"template_term_id": []string{"gold", "silver"}[r.IntN(2)]})
		case 6:
			code, hdr, _ = p.call(t, "POST", base+"/"+id+"/contract/accept", key, map[string]any{"by": "publisher"})
		case 7:
			group := fmt.Sprint("h", r.IntN(5))
			code, hdr, _ = p.call(t, "POST", "/v1/programs/acme/groups", key, map[string]any{"id": group, "name": "H"})
			stream = domain.GroupStream("acme", group)
		}
		record(stream, code, hdr)
	}

	for round := 0; round < rounds; round++ {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wr := rand.New(rand.NewPCG(seed, uint64(round*10+w+2)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					write(p, wr)
				}
			}()
		}
		time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
		during := "commands"
		if rng.IntN(2) == 0 {
			name := []string{"partners", "catalog"}[rng.IntN(2)]
			if code, _, body := p.call(t, "POST", "/v1/projections/"+name+"/rebuild", key, nil); code != 202 {
				t.Fatalf("rebuild %s: %d %v", name, code, body)
			}
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
			during = "commands and a rebuild of " + name
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_, _ = p.cmd.Process.Wait()
		close(stop)
		wg.Wait()
		mu.Lock()
		t.Logf("round %d: SIGKILL during %s; %d writes acknowledged so far", round, during, len(acks))
		mu.Unlock()
		p = launch()
	}

	// Let the last process catch up with the log, then stop it cleanly.
	waitCaughtUp(t, p, key)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := p.cmd.Process.Wait(); err != nil {
		t.Fatal(err)
	}

	store, err := embedded.Open(data, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	for _, a := range acks {
		evs, err := store.ReadStream(ctx, a.stream, a.version-1, eventstore.Forwards, 1)
		if err != nil || len(evs) != 1 {
			t.Fatalf("acknowledged %s version %d is not in the log (%v)", a.stream, a.version, err)
		}
	}
	if len(acks) < 20 {
		t.Fatalf("only %d writes acknowledged: the test did not load partnerd", len(acks))
	}

	opt, _ := redis.ParseURL(redisURL)
	opt.DisableIdentity = true
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	for _, proj := range app.Projections() {
		name := proj.Name()
		live, err := rdb.Get(ctx, projections.GenerationKey(name)).Int64()
		if err != nil {
			t.Fatal(err)
		}
		before := keysOf(t, rdb, name, live)
		var res projections.RebuildResult
		deadline := time.Now().Add(30 * time.Second)
		for {
			// A killed rebuild's lock lapses within seconds.
			res, err = projections.Rebuild(ctx, rdb, store, proj, nil)
			if !errors.Is(err, projections.ErrRebuildRunning) || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil {
			t.Fatalf("rebuild %s: %v", name, err)
		}
		after := keysOf(t, rdb, name, res.NewGeneration)
		var diffs []string
		for k, v := range before {
			if w, ok := after[k]; !ok {
				diffs = append(diffs, "only live: "+k+" = "+v)
			} else if w != v {
				diffs = append(diffs, "differs: "+k+"\n   live    "+v+"\n   rebuilt "+w)
			}
		}
		for k, w := range after {
			if _, ok := before[k]; !ok {
				diffs = append(diffs, "only rebuilt: "+k+" = "+w)
			}
		}
		sort.Strings(diffs)
		if len(diffs) > 0 {
			t.Errorf("%s: live generation %d differs from a rebuild from scratch in %d of %d keys:\n%s", name, live, len(diffs),
				len(before), strings.Join(diffs[:min(len(diffs), 20)], "\n"))
		}
		// Nothing is left of other generations (a killed rebuild's included).
		all, _ := rdb.Keys(ctx, "pd:"+name+":g[0-9]*:*").Result()
		prefix := fmt.Sprintf("pd:%s:g%d:", name, res.NewGeneration)
		for _, k := range all {
			if !strings.HasPrefix(k, prefix) && !strings.HasPrefix(k, "pd:"+name+":gen:") {
				t.Errorf("%s: key %s of a dead generation remains", name, k)
				break
			}
		}
		t.Logf("%s: %d keys identical to a rebuild from scratch (%d events)", name, len(before), res.Events)
	}
}

// waitCaughtUp polls /v1/projections until every projection's checkpoint
// reached the head.
func waitCaughtUp(t *testing.T, p *proc, key string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, _, st := p.call(t, "GET", "/v1/projections", key, nil)
		items, _ := st["items"].([]any)
		done := len(items) > 0
		for _, it := range items {
			m := it.(map[string]any)
			if m["lag_events"] != 0.0 {
				done = false
			}
			if rb, ok := m["rebuild"].(map[string]any); ok && rb["running"] == true {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("projections did not catch up: %v\n%s", st, p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
