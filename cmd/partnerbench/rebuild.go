package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/projections"
)

// cpuTime is the user+system CPU this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRebuild measures a full rebuild of the partners projection from a
// log of n partner events (created, then three profile updates each) into
// real Redis, against the Redis ceiling measured in the same run.
func benchRebuild(redisURL string, n int, baseline bool, res Results) error {
	ctx := context.Background()
	rdb, opt, err := benchRedis(redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	redisCeiling(opt.Addr, "rebuild.baseline.redis_benchmark_P64_set_per_s", res)
	_ = rdb.FlushDB(ctx).Err()

	dir, err := os.MkdirTemp("", "partnerbench-rebuild-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := embedded.Open(dir, embedded.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer st.Close()
	fill := time.Now()
	for _, e := range partnerEvents(n) {
		if _, err := st.Append(ctx, e.Stream, eventstore.Any, []eventstore.EventData{{ID: e.ID, Type: e.Type, Data: e.Data,
			Metadata: []byte(`{"schema":1,"program":"` + e.Program + `"}`)}}); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "partnerbench: rebuild: %d events in the log after %s\n", n, time.Since(fill).Round(time.Millisecond))

	// The rebuild's own peak memory: return what filling the log left to
	// the OS and reset the peak (VmHWM) before it starts.
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	before := commandCalls(ctx, rdb)
	cpu0 := cpuTime()
	start := time.Now()
	out, err := projections.Rebuild(ctx, rdb, st, projections.Partners{}, nil)
	if err != nil {
		return err
	}
	d := time.Since(start)
	cpu := cpuTime() - cpu0
	if out.Events != uint64(n) {
		return fmt.Errorf("rebuild applied %d events, want %d", out.Events, n)
	}
	// The rebuild waits a few seconds before dropping the old generation
	// (so runners see the switch): that is not replay time.
	replay := d - out.DropWait
	perEvent := float64(commandCalls(ctx, rdb)-before) / float64(n)
	if _, peak, err := procMemory(os.Getpid()); err == nil {
		res["rebuild.peak_rss_mb"] = peak
	}
	res["rebuild.events"] = float64(n)
	res["rebuild.events_per_s"] = rate(n, replay)
	res["rebuild.redis_commands_per_event"] = perEvent
	// CPU of this process per event: on a shared, busy machine the one
	// figure that does not depend on how much CPU the others left us.
	res["rebuild.cpu_us_per_event"] = float64(cpu.Microseconds()) / float64(n)
	if base := res["rebuild.baseline.redis_benchmark_P64_set_per_s"]; base > 0 {
		res["rebuild.ratio_to_ceiling"] = rate(n, replay) / (base / perEvent)
	}

	fmt.Fprintf(os.Stderr, "partnerbench: rebuild: %d events at %.0f events/s, %.1f us CPU per event, peak RSS %.0f MiB\n", n, rate(n, replay), res["rebuild.cpu_us_per_event"], res["rebuild.peak_rss_mb"])
	if !baseline {
		return rdb.FlushDBAsync(ctx).Err()
	}
	// Baseline: the same log replayed through the live runner's guarded
	// path (batches of 1024, one Lua step per batch), as rebuilds did before.
	// Flushing a million partners' keys blocks Redis for seconds: async.
	_ = rdb.FlushDBAsync(ctx).Err()
	r := projections.NewRunner(rdb, projections.Partners{})
	if err := r.Start(ctx); err != nil {
		return err
	}
	cpu0, start = cpuTime(), time.Now()
	var after eventstore.Position
	for {
		page, err := st.ReadAll(ctx, after, 1024)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		evs := make([]projections.Event, len(page))
		for i, re := range page {
			evs[i] = bus.EnvelopeOf(re)
		}
		if err := r.Apply(ctx, evs); err != nil {
			return err
		}
		after = page[len(page)-1].Position
	}
	res["rebuild.baseline.guarded_events_per_s"] = rate(n, time.Since(start))
	res["rebuild.baseline.guarded_cpu_us_per_event"] = float64((cpuTime() - cpu0).Microseconds()) / float64(n)
	_ = rdb.FlushDBAsync(ctx).Err()
	return nil
}
