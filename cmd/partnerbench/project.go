package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/projections"
)

func benchProject(redisURL string, n int, res Results) error {
	ctx := context.Background()
	rdb, opt, err := benchRedis(redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	redisCeiling(opt.Addr, "project.baseline.redis_benchmark_P64_set_per_s", res)
	res["project.baseline.goredis_pipelined_set_per_s"] = pipelinedSets(ctx, rdb, 500000)
	_ = rdb.FlushDB(ctx).Err()

	evs := partnerEvents(n)
	// 1. The projection engine alone: batches of 512 straight into Redis
	// from 4 goroutines (the live runner's worker count), each owning a
	// quarter of the partners so every stream's events stay in order.
	r := projections.NewRunner(rdb, projections.Partners{})
	if err := r.Start(ctx); err != nil {
		return err
	}
	const workers = 4
	lanes := make([][]projections.Event, workers)
	for _, e := range evs {
		h := fnv.New32a()
		_, _ = h.Write([]byte(e.Stream))
		lanes[h.Sum32()%workers] = append(lanes[h.Sum32()%workers], e)
	}
	before := commandCalls(ctx, rdb)
	cpuBefore := redisCPU(ctx, rdb)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w, lane := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < len(lane) && errs[w] == nil; i += 512 {
				errs[w] = r.Apply(ctx, lane[i:min(i+512, len(lane))])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d := time.Since(start)
	perEvent := float64(commandCalls(ctx, rdb)-before) / float64(len(evs))
	res["project.direct_events_per_s"] = rate(len(evs), d)
	res["project.redis_commands_per_event"] = perEvent
	res["project.redis_cpu_share"] = (redisCPU(ctx, rdb) - cpuBefore) / d.Seconds()
	if base := res["project.baseline.redis_benchmark_P64_set_per_s"]; base > 0 {
		res["project.direct_ratio_to_ceiling"] = rate(len(evs), d) / (base / perEvent)
	}
	res["project.baseline.lua_sadd_per_s"] = luaSAdds(ctx, rdb, 300000)
	_ = rdb.FlushDB(ctx).Err()

	// 2. The whole pipeline: log → relay → in-process bus → projections.
	dir, err := os.MkdirTemp("", "partnerbench-project-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := embedded.Open(dir, embedded.Options{NoSync: true})
	if err != nil {
		return err
	}
	for i := 0; i < len(evs); i += 256 {
		batch := evs[i:min(i+256, len(evs))]
		for _, e := range batch {
			if _, err := st.Append(ctx, e.Stream, eventstore.Any, []eventstore.EventData{{ID: e.ID, Type: e.Type, Data: e.Data,
				Metadata: []byte(`{"schema":1,"program":"` + e.Program + `"}`)}}); err != nil {
				return err
			}
		}
	}
	_ = st.Close()
	cfg := app.FromEnv(app.Defaults())
	cfg.Data, cfg.RedisURL, cfg.BootstrapProgram = dir, redisURL, ""
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer a.Close()
	start = time.Now()
	if err := a.Start(ctx); err != nil {
		return err
	}
	if err := a.WaitCaughtUp(ctx); err != nil {
		return err
	}
	d = time.Since(start)
	res["project.pipeline_events_per_s"] = rate(len(evs), d)
	return nil
}

// partnerEvents makes n partner events: each partner is created, then
// updated three times (moving country, so indexes change).
func partnerEvents(n int) []projections.Event {
	countries := []string{"DE", "FR", "IT", "ES", "NL", "US", "GB", "PL"}
	var out []projections.Event
	partners := max(1, n/4)
	now := time.Now().UTC()
	pos := eventstore.Position(0)
	for round := 0; round < 4 && len(out) < n; round++ {
		for p := 0; p < partners && len(out) < n; p++ {
			id := fmt.Sprintf("p%07d", p)
			prof := domain.Profile{Name: "Partner " + id, URL: "https://" + id + ".example", Country: countries[(p+round)%len(countries)], RelationshipType: "direct"}
			var ev domain.Event = domain.PartnerCreated{PartnerID: id, ProgramID: "bench", Profile: prof, ProspectStage: "new", CreatedAt: now}
			if round > 0 {
				ev = domain.PartnerProfileUpdated{PartnerID: id, ProgramID: "bench", Changed: []string{"country"}, Profile: prof, UpdatedAt: now}
			}
			data, _ := json.Marshal(ev)
			pos++
			out = append(out, projections.Event{ID: uuid.NewString(), Type: ev.EventType(), Stream: domain.PartnerStream("bench", id),
				Program: "bench", Version: uint64(round + 1), Position: pos, Schema: 1, RecordedAt: now, Data: data})
		}
	}
	return out
}

// commandCalls sums calls over INFO commandstats (commands run inside Lua
// scripts are counted too).
func commandCalls(ctx context.Context, rdb *redis.Client) int64 {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0
	}
	re := regexp.MustCompile(`cmdstat_(\w+):calls=(\d+)`)
	var total int64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil || m[1] == "info" {
			continue
		}
		v, _ := strconv.ParseInt(m[2], 10, 64)
		total += v
	}
	return total
}

// redisCeiling records redis-benchmark's SET rate under key, or says on
// stderr why it could not be measured (the ratios that use it are then left out).
func redisCeiling(addr, key string, res Results) {
	if rb, err := redisBenchmark(addr); err == nil {
		res[key] = rb
	} else {
		fmt.Fprintln(os.Stderr, "partnerbench: redis-benchmark:", err)
	}
}

func redisBenchmark(addr string) (float64, error) {
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("redis-benchmark", "-h", host, "-p", port, "-P", "64", "-t", "set", "-n", "2000000", "-q").Output()
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`SET: ([\d.]+) requests per second`).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("unexpected output %q", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// pipelinedSets is the same ceiling measured from Go: SETs in pipelines of 64.
func pipelinedSets(ctx context.Context, rdb *redis.Client, n int) float64 {
	start := time.Now()
	for i := 0; i < n; i += 64 {
		pipe := rdb.Pipeline()
		for j := i; j < min(i+64, n); j++ {
			pipe.Set(ctx, "bench:set:"+strconv.Itoa(j%10000), "x", 0)
		}
		_, _ = pipe.Exec(ctx)
	}
	return rate(n, time.Since(start))
}

// redisCPU is the CPU seconds (user + system) the Redis server has used.
func redisCPU(ctx context.Context, rdb *redis.Client) float64 {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}

// luaSAdds is the rate at which this Redis runs SADDs issued from a Lua
// script (how the projection writes), in scripts of 3000 calls: the
// ceiling of any projection that applies its writes atomically in Lua.
func luaSAdds(ctx context.Context, rdb *redis.Client, n int) float64 {
	script := redis.NewScript(`for i = 1, #KEYS do redis.call('SADD', KEYS[i], ARGV[i]) end return 1`)
	const per = 3000
	keys := make([]string, per)
	args := make([]any, per)
	start := time.Now()
	for done := 0; done < n; done += per {
		for i := range per {
			keys[i] = "bench:lua:" + strconv.Itoa(i%400)
			args[i] = strconv.Itoa(done + i)
		}
		if err := script.Run(ctx, rdb, keys, args...).Err(); err != nil {
			return 0
		}
	}
	return rate(n, time.Since(start))
}
