package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/eventstore/embedded"
)

// server is a partnerd started by the benchmark itself.
type server struct {
	app    *app.App
	base   string
	key    string
	client *http.Client
	stop   func()
}

func startServer(redisURL string) (*server, error) {
	// A fresh log needs a fresh read-model database (relay checkpoint included).
	if err := flushRedis(redisURL); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "partnerbench-srv-")
	if err != nil {
		return nil, err
	}
	cfg := app.FromEnv(app.Defaults())
	cfg.Data, cfg.RedisURL, cfg.BootstrapProgram, cfg.BootstrapKey = dir, redisURL, "bench", "bench-key-0123456789abcdef"
	cfg.RateLimit = 0 // the benchmark measures commands, not the per-key limit
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		return nil, err
	}
	if _, _, err := a.Bootstrap(ctx); err != nil {
		return nil, err
	}
	if err := a.WaitCaughtUp(ctx); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: a.HTTP.Handler()}
	go func() { _ = srv.Serve(ln) }()
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}
	return &server{app: a, base: "http://" + ln.Addr().String(), key: cfg.BootstrapKey, client: &http.Client{Transport: tr},
		stop: func() { _ = srv.Close(); a.Close(); _ = os.RemoveAll(dir) }}, nil
}

func (s *server) do(method, path string, body []byte, headers ...string) (int, http.Header, error) {
	req, err := http.NewRequest(method, s.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header, nil
}

// load runs f from conns goroutines for d and returns calls/s.
func load(conns int, d time.Duration, f func(worker, i int) error) (float64, error) {
	rate, _, err := loadN(conns, d, f)
	return rate, err
}

// loadN is load that also returns the number of calls.
func loadN(conns int, d time.Duration, f func(worker, i int) error) (float64, int64, error) {
	var n atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				if err := f(w, i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, 0, err
	}
	return float64(n.Load()) / time.Since(start).Seconds(), n.Load(), nil
}

// createsProfile, when set, is where benchCommands writes a CPU profile of
// its create phase alone (the projections catching up included).
var createsProfile string

// createsTrace, when set, is where benchCommands writes an execution trace
// of 2 s in the middle of its create phase.
var createsTrace string

// benchCommands: HTTP commands/s with 64 connections (creates, then
// profile updates) against /healthz on the same server and client; and the
// lag from a command's answer to its visibility through its consistency
// token, measured on a sample while the command load runs.
// lagSamplers is how many of the 64 connections also measure the lag: four,
// so that a 5 s phase gives some 400 samples (one gave ~100, whose "p99" was
// the second worst).
const lagSamplers = 4

func benchCommands(redisURL string, d time.Duration, res Results) error {
	s, err := startServer(redisURL)
	if err != nil {
		return err
	}
	defer s.stop()
	const conns = 64
	cpu0 := processCPU()
	health, nHealth, err := loadN(conns, d, func(int, int) error {
		code, _, err := s.do("GET", "/healthz", nil)
		if err == nil && code != 200 {
			err = fmt.Errorf("healthz: %d", code)
		}
		return err
	})
	if err != nil {
		return err
	}
	res["commands.baseline.healthz_per_s"] = health
	res["commands.baseline.healthz_cpu_us"] = float64((processCPU() - cpu0).Microseconds()) / float64(max(1, nHealth))
	stopProfile, err := startCPUProfile(createsProfile)
	if err != nil {
		return err
	}
	defer stopProfile() // also stops it when a phase fails
	cpu0 = processCPU()
	batches0 := runnerBatches(s.app)
	var commits0, events0 uint64
	stats, _ := s.app.Store.(interface{ Stats() *embedded.Stats })
	if stats != nil {
		commits0, events0 = stats.Stats().Commits.Load(), stats.Stats().Events.Load()
	}
	t0 := time.Now()
	if createsTrace != "" {
		time.AfterFunc(d/3, func() {
			if err := startTrace(createsTrace, 2*time.Second); err != nil {
				fmt.Fprintln(os.Stderr, "partnerbench: trace:", err)
			}
		})
	}
	var lagMu sync.Mutex
	var lags, reads []time.Duration
	var created [conns]atomic.Int64 // partners each connection created
	creates, nCreates, err := loadN(conns, d, func(w, i int) error {
		body := []byte(fmt.Sprintf(`{"partner_id":"w%d-%d","name":"Partner %d","relationship_type":"direct","country":"DE"}`, w, i, i))
		code, hdr, err := s.do("POST", "/v1/programs/bench/partners", body)
		if err == nil && code != 201 {
			err = fmt.Errorf("create: %d", code)
		}
		if err == nil {
			created[w].Add(1)
		}
		if err == nil && w < lagSamplers { // a few connections in 64 also measure the lag
			path := fmt.Sprintf("/v1/programs/bench/partners/w%d-%d", w, i)
			t0 := time.Now()
			code, _, err = s.do("GET", path, nil, "X-Consistency-Token", hdr.Get("X-Consistency-Token"))
			lag := time.Since(t0)
			if err == nil && code != 200 {
				err = fmt.Errorf("read own write: %d", code)
			}
			// The same read again, now that it is visible: what a read
			// costs under this load by itself (its wait in the server's
			// queue), the floor of the lag measured through HTTP.
			t0 = time.Now()
			if err == nil {
				code, _, err = s.do("GET", path, nil)
				if err == nil && code != 200 {
					err = fmt.Errorf("read again: %d", code)
				}
			}
			read := time.Since(t0)
			lagMu.Lock()
			lags, reads = append(lags, lag), append(reads, read)
			lagMu.Unlock()
		}
		return err
	})
	if err != nil {
		return err
	}
	res["commands.create_partner_per_s"] = creates
	res["commands.create_cores_used"] = (processCPU() - cpu0).Seconds() / time.Since(t0).Seconds()
	if stats != nil {
		res["commands.create_events_per_fsync"] = float64(stats.Stats().Events.Load()-events0) / float64(max(1, stats.Stats().Commits.Load()-commits0))
	}
	res["commands.ratio_to_healthz"] = creates / health
	// CPU per create, client side and the projections catching up included.
	if err := s.app.WaitCaughtUp(context.Background()); err != nil {
		return err
	}
	res["commands.create_cpu_us"] = float64((processCPU() - cpu0).Microseconds()) / float64(max(1, nCreates))
	for name, b := range runnerBatches(s.app) {
		if d := b.batches - batches0[name].batches; d > 0 {
			res["commands.create_events_per_batch."+name] = float64(b.applied-batches0[name].applied) / float64(d)
		}
	}
	stopProfile()
	cpu0 = processCPU()
	updates, nUpdates, err := loadN(conns, d, func(w, i int) error {
		body := []byte(fmt.Sprintf(`{"social_reach":%d}`, i+1))
		code, _, err := s.do("PATCH", fmt.Sprintf("/v1/programs/bench/partners/w%d-%d", w, i%int(max(1, min(20, created[w].Load())))), body)
		if err == nil && code != 200 {
			err = fmt.Errorf("update w%d-%d: %d", w, i%20, code)
		}
		return err
	})
	if err != nil {
		return err
	}
	res["commands.update_partner_per_s"] = updates
	if err := s.app.WaitCaughtUp(context.Background()); err != nil {
		return err
	}
	res["commands.update_cpu_us"] = float64((processCPU() - cpu0).Microseconds()) / float64(max(1, nUpdates))
	if len(lags) > 0 {
		pct := func(ds []time.Duration, p int) float64 {
			return float64(ds[len(ds)*p/100].Microseconds()) / 1000
		}
		slices.Sort(lags)
		slices.Sort(reads)
		res["lag.p50_ms"], res["lag.p99_ms"] = pct(lags, 50), pct(lags, 99)
		res["lag.baseline.read_p50_ms"], res["lag.baseline.read_p99_ms"] = pct(reads, 50), pct(reads, 99)
		res["lag.samples"] = float64(len(lags))
	}
	return nil
}

// benchRedis connects to the benchmark's Redis and empties its database
// (asynchronously: a big database must not time the client out).
func benchRedis(redisURL string) (*redis.Client, *redis.Options, error) {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, nil, err
	}
	opt.DisableIdentity = true
	rdb := redis.NewClient(opt)
	if err := rdb.FlushDBAsync(context.Background()).Err(); err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return rdb, opt, nil
}

// flushRedis empties the benchmark's Redis database.
func flushRedis(redisURL string) error {
	rdb, _, err := benchRedis(redisURL)
	if err == nil {
		rdb.Close()
	}
	return err
}

type runnerCount struct{ applied, batches uint64 }

// runnerBatches is what each projection runner of a has applied so far.
func runnerBatches(a *app.App) map[string]runnerCount {
	out := map[string]runnerCount{}
	for _, r := range a.Runners {
		out[r.Projection().Name()] = runnerCount{r.Applied(), r.Batches()}
	}
	return out
}
