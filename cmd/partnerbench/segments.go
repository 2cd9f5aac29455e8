package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/projections"
)

// benchSegments: one program with `partners` partners and 200 segments in
// real Redis, through the segments projection (projections.Segments).
//
//	segments.partner_change_p50_ms / _p99_ms   one partner event applied:
//	    read its state, re-evaluate it against all 200 segments, move its
//	    membership (and announce it) in one atomic step; i.e. from the event
//	    being read to its effect being in every affected segment.
//	segments.recompute_p50_ms / _max_ms        one segment's conditions
//	    changed: recompute its membership over every partner.
//	segments.baseline.roundtrip_p99_ms         a PING round trip, same run.
//	segments.baseline.hgetall_facts_ms         reading every partner's facts
//	    (HGETALL), the floor under a recompute, same run.
func benchSegments(redisURL string, partners int, res Results) error {
	ctx := context.Background()
	rdb, _, err := benchRedis(redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	defer rdb.FlushDB(context.WithoutCancel(ctx))
	lua := &evalTimer{}
	rdb.AddHook(lua)
	seg := projections.NewSegments()
	r := projections.NewRunner(rdb, seg)
	r.Workers = 1
	if err := r.Start(ctx); err != nil {
		return err
	}
	g := &segGen{rng: rand.New(rand.NewPCG(1, 2)), now: time.Now().UTC(), versions: map[string]uint64{}}
	// 200 segments first (over no partners: instant), then the partners.
	var evs []projections.Event
	for i := 0; i < 200; i++ {
		evs = append(evs, g.event(domain.SegmentStream("bench", "s"+strconv.Itoa(i)), domain.SegmentCreated{
			SegmentID: "s" + strconv.Itoa(i), ProgramID: "bench", Name: "segment " + strconv.Itoa(i), Conditions: g.conditions(i), CreatedAt: g.now}))
	}
	if err := r.Apply(ctx, evs); err != nil {
		return err
	}
	seedStart := time.Now()
	for i := 0; i < partners; i += 512 {
		evs = evs[:0]
		for p := i; p < min(i+512, partners); p++ {
			id := fmt.Sprintf("p%07d", p)
			evs = append(evs, g.event(domain.PartnerStream("bench", id), domain.PartnerCreated{PartnerID: id, ProgramID: "bench",
				Profile: g.profile(id), ProspectStage: "new", CreatedAt: g.now}))
		}
		if err := r.Apply(ctx, evs); err != nil {
			return err
		}
		// Downstream delivery is not measured here: keep Redis small.
		if err := rdb.Del(ctx, projections.SegmentOutKeys("bench").Outbox()).Err(); err != nil {
			return err
		}
	}
	res["segments.seed_partners_per_s"] = rate(partners, time.Since(seedStart))
	ks := projections.NewKeyspace("segments", r.Generation(), "bench")
	var members int64
	for i := 0; i < 200; i++ {
		members += rdb.ZCard(ctx, ks.Key("members", "s"+strconv.Itoa(i))).Val()
	}
	res["segments.partners"] = float64(partners)
	res["segments.segments"] = 200
	res["segments.memberships"] = float64(members)

	// Partner changes, one event at a time, as a consumer reads them.
	var lat []float64
	moved := 0
	for i := 0; i < 2000; i++ {
		id := fmt.Sprintf("p%07d", g.rng.IntN(partners))
		ev := g.event(domain.PartnerStream("bench", id), domain.PartnerProfileUpdated{PartnerID: id, ProgramID: "bench",
			Changed: []string{"country", "social_reach"}, Profile: g.profile(id), UpdatedAt: g.now})
		before, _ := rdb.LLen(ctx, projections.SegmentOutKeys("bench").Outbox()).Result()
		start := time.Now()
		if err := r.Apply(ctx, []projections.Event{ev}); err != nil {
			return err
		}
		lat = append(lat, ms(time.Since(start)))
		after, _ := rdb.LLen(ctx, projections.SegmentOutKeys("bench").Outbox()).Result()
		moved += int(after - before)
	}
	res["segments.partner_change_p50_ms"] = pct(lat, 50)
	res["segments.partner_change_p90_ms"] = pct(lat, 90)
	res["segments.partner_change_p99_ms"] = pct(lat, 99)
	res["segments.partner_change_membership_moves_per_event"] = float64(moved) / 2000
	_ = rdb.Del(ctx, projections.SegmentOutKeys("bench").Outbox()).Err()

	// Recomputes: change one segment's conditions back and forth.
	lat = lat[:0]
	var luaMs []float64
	for i := 0; i < 10; i++ {
		id := "s" + strconv.Itoa(i)
		ev := g.event(domain.SegmentStream("bench", id), domain.SegmentConditionsChanged{SegmentID: id, ProgramID: "bench",
			Conditions: g.conditions(i + 1 + i%2), ChangedAt: g.now})
		lua.last = 0
		start := time.Now()
		if err := r.Apply(ctx, []projections.Event{ev}); err != nil {
			return err
		}
		lat = append(lat, ms(time.Since(start)))
		luaMs = append(luaMs, ms(lua.last))
	}
	res["segments.recompute_p50_ms"] = pct(lat, 50)
	res["segments.recompute_apply_step_p50_ms"] = pct(luaMs, 50)
	res["segments.recompute_max_ms"] = slices.Max(lat)

	// Baselines of the same run.
	lat = lat[:0]
	for i := 0; i < 2000; i++ {
		start := time.Now()
		rdb.Ping(ctx)
		lat = append(lat, ms(time.Since(start)))
	}
	res["segments.baseline.roundtrip_p99_ms"] = pct(lat, 99)
	start := time.Now()
	if err := rdb.HGetAll(ctx, ks.Key("facts")).Err(); err != nil {
		return err
	}
	res["segments.baseline.hgetall_facts_ms"] = ms(time.Since(start))
	if info, err := rdb.Info(ctx, "memory").Result(); err == nil {
		fmt.Fprintln(os.Stderr, "partnerbench: segments: redis", firstLine(info, "used_memory_human"))
	}
	return nil
}

// evalTimer records how long the last pipeline holding the apply step
// (EVALSHA) took: the atomic Redis write of a batch.
type evalTimer struct{ last time.Duration }

func (*evalTimer) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*evalTimer) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (e *evalTimer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		if len(cmds) > 0 && cmds[0].Name() == "evalsha" {
			e.last += time.Since(start)
		}
		return err
	}
}

type segGen struct {
	rng      *rand.Rand
	now      time.Time
	pos      eventstore.Position
	versions map[string]uint64
}

func (g *segGen) profile(id string) domain.Profile {
	reach := int64(g.rng.IntN(100000))
	return domain.Profile{Name: "Partner " + id, Country: benchCountries[g.rng.IntN(len(benchCountries))], RelationshipType: "direct",
		Size: domain.Sizes[g.rng.IntN(len(domain.Sizes))], BusinessModel: domain.BusinessModels[g.rng.IntN(len(domain.BusinessModels))],
		SocialReach: &reach, CustomFields: map[string]string{"tier": []string{"gold", "silver", "bronze"}[g.rng.IntN(3)]}}
}

// conditions of segment i: a mix of shapes, each matching a few per cent.
func (g *segGen) conditions(i int) domain.Conditions {
	v := func(s ...string) []domain.ConditionValue {
		out := make([]domain.ConditionValue, len(s))
		for j, x := range s {
			out[j] = domain.ConditionValue{S: x}
		}
		return out
	}
	c := benchCountries[i%len(benchCountries)]
	floor := strconv.Itoa(50000 + (i*977)%45000)
	switch i % 4 {
	case 0:
		return domain.Conditions{Any: []domain.ConditionBlock{{All: []domain.Condition{
			{Field: "country", Op: "eq", Values: v(c)}, {Field: "social_reach", Op: "gte", Values: v(floor)}}}}}
	case 1:
		return domain.Conditions{Any: []domain.ConditionBlock{{All: []domain.Condition{
			{Field: "size", Op: "any_of", Values: v("xl")}, {Field: "business_model", Op: "any_of", Values: v(domain.BusinessModels[i%12])}}},
			{All: []domain.Condition{{Field: "custom.tier", Op: "eq", Values: v("gold")}, {Field: "country", Op: "eq", Values: v(c)},
				{Field: "social_reach", Op: "gte", Values: v(floor)}}}}}
	case 2:
		return domain.Conditions{Any: []domain.ConditionBlock{{All: []domain.Condition{
			{Field: "country", Op: "none_of", Values: v("DE", "FR", "IT", "ES", "NL", "US")}, {Field: "size", Op: "eq", Values: v("s")},
			{Field: "social_reach", Op: "lte", Values: v(strconv.Itoa(20000 + i*10))}}}}}
	default:
		return domain.Conditions{Any: []domain.ConditionBlock{{All: []domain.Condition{
			{Field: "partner_name", Op: "contains", Values: v(fmt.Sprintf("p00%d", i%10))}, {Field: "country", Op: "eq", Values: v(c)}}}}}
	}
}

func (g *segGen) event(stream string, ev domain.Event) projections.Event {
	data, _ := json.Marshal(ev)
	g.pos++
	g.versions[stream]++
	return projections.Event{ID: uuid.NewString(), Type: ev.EventType(), Stream: stream, Program: "bench",
		Version: g.versions[stream], Position: g.pos, Schema: 1, RecordedAt: g.now, Data: data}
}

func pct(xs []float64, p int) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func firstLine(info, key string) string {
	for _, l := range splitLines(info) {
		if len(l) > len(key) && l[:len(key)] == key {
			return l
		}
	}
	return ""
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
