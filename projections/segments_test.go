package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/internal/testenv"
	"github.com/partnerd/partnerd/projections"
)

// segBackends runs f on real Redis and on miniredis; dial makes another
// client of the same server (another "process").
func segBackends(t *testing.T, f func(t *testing.T, rdb *redis.Client, dial func() *redis.Client, program string)) {
	t.Run("real redis", func(t *testing.T) {
		t.Parallel()
		f(t, testenv.Redis(t), func() *redis.Client { return testenv.Redis(t) }, "t"+strings.ToLower(testenv.UniquePrefix(t)))
	})
	t.Run("embedded redis", func(t *testing.T) {
		t.Parallel()
		rdb, srv := testenv.MiniredisServer(t)
		dial := func() *redis.Client {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DisableIdentity: true})
			t.Cleanup(func() { _ = c.Close() })
			return c
		}
		f(t, rdb, dial, "t"+strings.ToLower(testenv.UniquePrefix(t)))
	})
}

// slowReads delays every HGETALL (the read of all partner facts a
// recompute does), widening the window in which another process commits.
type slowReads struct{}

func (slowReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (slowReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if cmd.Name() == "hgetall" {
			time.Sleep(20 * time.Millisecond)
		}
		return err
	}
}
func (slowReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func segConds(country string, reach int) domain.Conditions {
	return domain.Conditions{Any: []domain.ConditionBlock{{All: []domain.Condition{
		{Field: "country", Op: domain.OpEq, Values: []domain.ConditionValue{{S: country}}},
		{Field: "social_reach", Op: domain.OpGte, Values: []domain.ConditionValue{{S: fmt.Sprint(reach)}}}}}}}
}

// TestSegmentsTwoConsumersConverge: two processes (each its own runner and
// cache) apply different streams of one program at the same time, partner
// changes on one and segment condition changes on the other. Once both are
// done every segment holds exactly the partners its final conditions match
// on their final facts, and the announcements agree with the membership:
// per segment and partner they alternate enter/leave and end in the
// membership's state.
func TestSegmentsTwoConsumersConverge(t *testing.T) {
	segBackends(t, func(t *testing.T, rdb *redis.Client, dial func() *redis.Client, program string) {
		ctx := context.Background()
		l := &catalogLog{t: t, program: program, versions: map[string]uint64{}}
		r := rand.New(rand.NewPCG(7, 8))
		countries := []string{"DE", "FR", "US"}
		profiles := map[string]domain.Profile{}
		conds := map[string]domain.Conditions{}
		profile := func(id string) domain.Profile {
			reach := int64(r.IntN(1000))
			p := domain.Profile{Name: id, Country: countries[r.IntN(3)], RelationshipType: "direct", SocialReach: &reach}
			profiles[id] = p
			return p
		}
		now := time.Now().UTC()
		for i := 0; i < 4; i++ {
			id := fmt.Sprintf("s%d", i)
			conds[id] = segConds(countries[i%3], 200*i)
			l.add(domain.SegmentStream(program, id), domain.SegmentCreated{SegmentID: id, ProgramID: program, Name: id, Conditions: conds[id], CreatedAt: now})
		}
		setup := len(l.events)
		for i := 0; i < 60; i++ {
			id := fmt.Sprintf("p%02d", i)
			l.partner(id, domain.PartnerCreated{PartnerID: id, ProgramID: program, Profile: profile(id), ProspectStage: "new", CreatedAt: now})
		}
		for i := 0; i < 300; i++ {
			if r.IntN(10) == 0 {
				id := fmt.Sprintf("s%d", r.IntN(4))
				conds[id] = segConds(countries[r.IntN(3)], r.IntN(1000))
				l.add(domain.SegmentStream(program, id), domain.SegmentConditionsChanged{SegmentID: id, ProgramID: program, Conditions: conds[id], ChangedAt: now})
				continue
			}
			id := fmt.Sprintf("p%02d", r.IntN(60))
			l.partner(id, domain.PartnerProfileUpdated{PartnerID: id, ProgramID: program, Changed: []string{"country"}, Profile: profile(id), UpdatedAt: now})
		}
		runners := make([]*projections.Runner, 2)
		slow := dial()
		slow.AddHook(slowReads{})
		for i, c := range []*redis.Client{dial(), slow} {
			runners[i] = projections.NewRunner(c, projections.NewSegments())
			if err := runners[i].Start(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if err := runners[0].Apply(ctx, l.events[:setup]); err != nil {
			t.Fatal(err)
		}
		// Partner streams to one consumer, segment streams to the other.
		var mine [2][]projections.Event
		for _, e := range l.events[setup:] {
			i := 0
			if domain.Category(e.Stream) == domain.CategorySegment {
				i = 1
			}
			mine[i] = append(mine[i], e)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range runners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < len(mine[i]) && errs[i] == nil; j += 1 + j%3 {
					errs[i] = runners[i].Apply(ctx, mine[i][j:min(len(mine[i]), j+1+j%3)])
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		ks := projections.NewKeyspace("segments", runners[0].Generation(), program)
		out := projections.SegmentOutKeys(program)
		entries, err := rdb.LRange(ctx, out.Outbox(), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		last := map[string]string{} // segment/partner → last action
		seqs := map[string]int{}
		for _, e := range entries {
			parts := strings.SplitN(e, "|", 3)
			var seg, pid string
			fmt.Sscanf(strings.NewReplacer(`{"segment_id":"`, "", `","partner_id":"`, " ", `","causation_event_id"`, " ").Replace(parts[2]), "%s %s", &seg, &pid)
			seqs[seg]++
			if fmt.Sprint(seqs[seg]) != parts[0] {
				t.Fatalf("outbox of %s: seq %s, want %d", seg, parts[0], seqs[seg])
			}
			k := seg + "/" + pid
			if last[k] == parts[1] || last[k] == "" && parts[1] != "enter" {
				t.Fatalf("%s: %s after %q", k, parts[1], last[k])
			}
			last[k] = parts[1]
		}
		for seg, c := range conds {
			m := c.Matcher()
			var want []string
			for id, p := range profiles {
				f := domain.FactsOf(domain.PartnerState{PartnerID: id, Profile: p})
				if m.Match(&f) {
					want = append(want, id)
				}
			}
			slices.Sort(want)
			got, err := rdb.ZRange(ctx, ks.Key("members", seg), 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("members of %s = %v, want %v", seg, got, want)
			}
			ann, _ := rdb.SMembers(ctx, out.Announced(seg)).Result()
			slices.Sort(ann)
			var enteredLast []string
			for k, a := range last {
				if s, pid, _ := strings.Cut(k, "/"); s == seg && a == "enter" {
					enteredLast = append(enteredLast, pid)
				}
			}
			slices.Sort(enteredLast)
			if !reflect.DeepEqual(ann, got) && len(got) > 0 || !reflect.DeepEqual(enteredLast, ann) && len(ann) > 0 {
				t.Fatalf("segment %s: members %v, announced %v, last entered %v", seg, got, ann, enteredLast)
			}
		}
	})
}

// Several changes of one segment in one batch each build on the one
// before: a rename followed by new conditions keeps the new name, on a
// segment created in the batch and on one that was in Redis already.
func TestSegmentChangesInOneBatchAccumulate(t *testing.T) {
	segBackends(t, func(t *testing.T, rdb *redis.Client, _ func() *redis.Client, program string) {
		l := &catalogLog{t: t, program: program, versions: map[string]uint64{}}
		now := time.Now().UTC()
		r := projections.NewRunner(rdb, projections.NewSegments())
		if err := r.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		old, fresh := domain.SegmentStream(program, "old"), domain.SegmentStream(program, "new")
		l.add(old, domain.SegmentCreated{SegmentID: "old", ProgramID: program, Name: "Old", Conditions: segConds("DE", 1), CreatedAt: now})
		if err := r.Apply(t.Context(), l.events); err != nil {
			t.Fatal(err)
		}
		done := len(l.events)
		l.add(fresh, domain.SegmentCreated{SegmentID: "new", ProgramID: program, Name: "New", Conditions: segConds("DE", 1), CreatedAt: now})
		for _, id := range []string{"old", "new"} {
			stream := domain.SegmentStream(program, id)
			l.add(stream, domain.SegmentRenamed{SegmentID: id, ProgramID: program, Name: id + " renamed", RenamedAt: now})
			l.add(stream, domain.SegmentConditionsChanged{SegmentID: id, ProgramID: program, Conditions: segConds("FR", 2), ChangedAt: now})
		}
		if err := r.Apply(t.Context(), l.events[done:]); err != nil {
			t.Fatal(err)
		}
		ks := projections.NewKeyspace("segments", r.Generation(), program)
		for id, version := range map[string]uint64{"old": 3, "new": 3} {
			raw, err := rdb.HGet(t.Context(), ks.Key("segdoc", id), "doc").Result()
			if err != nil {
				t.Fatal(err)
			}
			var v projections.SegmentView
			if err := json.Unmarshal([]byte(raw), &v); err != nil {
				t.Fatal(err)
			}
			if v.Name != id+" renamed" || !reflect.DeepEqual(v.Conditions, segConds("FR", 2)) || v.Version != version {
				t.Errorf("segment %s: name %q, conditions %+v, version %d", id, v.Name, v.Conditions, v.Version)
			}
		}
	})
}
