package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/domain"
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
// log of n partner events into real Redis, against the Redis ceiling
// measured in the same run. partners > 0: that many partners living their
// lifecycle (lifecycleEvents); 0: n/4 partners, created and then three
// profile updates each (the log of earlier runs).
// rebuildProfile, when set, is where benchRebuild writes a CPU profile of
// the rebuild alone (not the filling of its log).
var rebuildProfile string

// rebuildLogDir, when set, is the folder the rebuild scenario writes its
// log to and leaves in place.
var rebuildLogDir string

func benchRebuild(redisURL string, n, partners int, baseline bool, res Results) error {
	ctx := context.Background()
	rdb, opt, err := benchRedis(redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	redisCeiling(opt.Addr, "rebuild.baseline.redis_benchmark_P64_set_per_s", res)
	_ = rdb.FlushDB(ctx).Err()

	dir := rebuildLogDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "partnerbench-rebuild-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("-rebuild-log-dir %s is not empty", dir)
	}
	st, err := embedded.Open(dir, embedded.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer st.Close()
	fill := time.Now()
	var evs []projections.Event
	if partners > 0 {
		evs = lifecycleEvents(n, partners)
	} else {
		evs = partnerEvents(n)
	}
	res["rebuild.partners"] = float64(max(1, n/4))
	if partners > 0 {
		res["rebuild.partners"] = float64(min(partners, n))
	}
	for _, e := range evs {
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
	redis0 := redisCPU(ctx, rdb)
	cpu0 := cpuTime()
	start := time.Now()
	stopProfile, err := startCPUProfile(rebuildProfile)
	if err != nil {
		return err
	}
	out, err := projections.Rebuild(ctx, rdb, st, projections.Partners{}, nil)
	stopProfile()
	redisBusy := redisCPU(ctx, rdb) - redis0
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
	// Redis CPU per rebuilt partner and the rate Redis alone would allow
	// for these writes (every partner is written once, so its cost is per
	// partner, not per event).
	if redisBusy > 0 {
		res["rebuild.redis_cpu_s"] = redisBusy
		res["rebuild.redis_cpu_us_per_partner"] = redisBusy * 1e6 / res["rebuild.partners"]
		res["rebuild.redis_bound_events_per_s"] = float64(n) / redisBusy
		res["rebuild.ratio_to_redis_bound"] = rate(n, replay) / res["rebuild.redis_bound_events_per_s"]
	}
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

// lifecycleEvents is a log of n events over the given partners of one
// program, a partner's life in rounds across the whole log (so its events
// lie far apart, as in a real program): created, a contract proposed and
// accepted, groups changed, an account manager assigned, the profile
// edited, the contract suspended and reinstated, groups and profile
// changed again; then the cycle goes on from the groups.
func lifecycleEvents(n, partners int) []projections.Event {
	countries := []string{"DE", "FR", "IT", "ES", "NL", "US", "GB", "PL"}
	sizes := []string{"xs", "s", "m", "l", "xl"}
	models := []string{"content", "coupon", "creator", "loyalty"}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	out := make([]projections.Event, 0, n)
	partners = max(1, partners)
	for round := 0; len(out) < n; round++ {
		for p := 0; p < partners && len(out) < n; p++ {
			id := fmt.Sprintf("p%07d", p)
			at := now.Add(time.Duration(round)*time.Hour + time.Duration(p)*time.Millisecond)
			reach := int64(p * 37 % 500000)
			prof := domain.Profile{Name: "Partner " + id, URL: "https://" + id + ".example", Country: countries[(p+round)%len(countries)],
				Size: sizes[p%len(sizes)], BusinessModel: models[p%len(models)], SocialReach: &reach, RelationshipType: "direct"}
			contract := id + ":1"
			groups := []string{fmt.Sprintf("g%d", (p+round)%20), fmt.Sprintf("g%d", (p+round+7)%20)}
			var ev domain.Event
			switch step := round; {
			case step == 0:
				ev = domain.PartnerCreated{PartnerID: id, ProgramID: "bench", Profile: prof, ProspectStage: "new", CreatedAt: at,
					Personal: domain.Personal{Email: id + "@example.com"}}
			case step == 1:
				ev = domain.ContractProposed{PartnerID: id, ProgramID: "bench", ContractID: contract, By: domain.SideAdvertiser,
					Stage: domain.StageAwaitingPublisherApproval, TemplateTermID: fmt.Sprintf("tt%d", p%5), ProposedAt: at}
			case step == 2:
				ev = domain.ContractAccepted{PartnerID: id, ProgramID: "bench", ContractID: contract, By: domain.SidePublisher,
					Stage: domain.StageJoined, TemplateTermID: fmt.Sprintf("tt%d", p%5), AcceptedAt: at}
			case (step-3)%7 == 0:
				ev = domain.PartnerGroupsChanged{PartnerID: id, ProgramID: "bench", Added: groups, Groups: groups, ChangedAt: at}
			case (step-3)%7 == 1:
				ev = domain.PartnerAssigned{PartnerID: id, ProgramID: "bench", User: fmt.Sprintf("am%d", (p+round)%10), AssignedAt: at}
			case (step-3)%7 == 2, (step-3)%7 == 6:
				ev = domain.PartnerProfileUpdated{PartnerID: id, ProgramID: "bench", Changed: []string{"country"}, Profile: prof, UpdatedAt: at}
			case (step-3)%7 == 3:
				ev = domain.ContractSuspended{PartnerID: id, ProgramID: "bench", ContractID: contract, By: domain.SideAdvertiser,
					Stage: domain.StageSuspended, SuspendedAt: at}
			case (step-3)%7 == 4:
				ev = domain.ContractReinstated{PartnerID: id, ProgramID: "bench", ContractID: contract, By: domain.SideAdvertiser,
					Stage: domain.StageJoined, ReinstatedAt: at}
			default:
				ev = domain.PartnerGroupsChanged{PartnerID: id, ProgramID: "bench", Added: groups[:1], Groups: groups[:1], ChangedAt: at}
			}
			data, _ := json.Marshal(ev)
			out = append(out, projections.Event{ID: uuid.NewString(), Type: ev.EventType(), Stream: domain.PartnerStream("bench", id),
				Program: "bench", Version: uint64(round + 1), Position: eventstore.Position(len(out) + 1), Schema: 1, RecordedAt: at, Data: data})
		}
	}
	return out
}
