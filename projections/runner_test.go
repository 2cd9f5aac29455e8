package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/internal/testenv"
	"github.com/partnerd/partnerd/projections"
)

// backends runs f against real Redis and the embedded one. Each run uses its
// own program IDs, so runs on a shared Redis never see each other's keys.
func backends(t *testing.T, f func(t *testing.T, rdb *redis.Client, program string)) {
	t.Run("real redis", func(t *testing.T) {
		t.Parallel()
		f(t, testenv.Redis(t), "t"+strings.ToLower(testenv.UniquePrefix(t)))
	})
	t.Run("embedded redis", func(t *testing.T) {
		t.Parallel()
		f(t, testenv.Miniredis(t), "t"+strings.ToLower(testenv.UniquePrefix(t)))
	})
}

// stream is a helper that makes consecutive events of one partner.
type stream struct {
	program, id string
	version     uint64
	pos         *eventstore.Position
}

func (s *stream) next(t *testing.T, ev domain.Event) projections.Event {
	t.Helper()
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	s.version++
	*s.pos++
	return projections.Event{ID: fmt.Sprintf("%s-%d", s.id, s.version), Type: ev.EventType(), Stream: domain.PartnerStream(s.program, s.id),
		Program: s.program, Version: s.version, Position: *s.pos, Schema: 1, RecordedAt: time.Now(), Data: data}
}

func created(program, id, name, country string) domain.PartnerCreated {
	return domain.PartnerCreated{PartnerID: id, ProgramID: program, ProspectStage: "new",
		Profile: domain.Profile{Name: name, Country: country, RelationshipType: "direct"}, CreatedAt: time.Now().UTC()}
}

func updated(program, id, name, country string) domain.PartnerProfileUpdated {
	return domain.PartnerProfileUpdated{PartnerID: id, ProgramID: program, Changed: []string{"name", "country"},
		Profile: domain.Profile{Name: name, Country: country, RelationshipType: "direct"}, UpdatedAt: time.Now().UTC()}
}

func startRunner(t *testing.T, rdb *redis.Client) *projections.Runner {
	t.Helper()
	r := projections.NewRunner(rdb, projections.Partners{})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

// dump returns every key of a program with its type and content, for
// comparing read models.
func dump(t *testing.T, rdb *redis.Client, program string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	keys, err := rdb.Keys(ctx, "pd:partners:g*:{"+program+"}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		switch rdb.Type(ctx, k).Val() {
		case "hash":
			m := rdb.HGetAll(ctx, k).Val()
			delete(m, "checkpoint")
			out[k] = fmt.Sprint(m)
		case "set":
			m := rdb.SMembers(ctx, k).Val()
			sort.Strings(m)
			out[k] = fmt.Sprint(m)
		case "zset":
			out[k] = fmt.Sprint(rdb.ZRangeWithScores(ctx, k, 0, -1).Val())
		default:
			out[k] = rdb.Get(ctx, k).Val()
		}
	}
	return out
}

func doc(t *testing.T, rdb *redis.Client, program, id string) projections.PartnerView {
	t.Helper()
	raw, err := rdb.HGet(context.Background(), projections.NewKeyspace("partners", 1, program).Key("partner", id), "doc").Result()
	if err != nil {
		t.Fatalf("partner %s not in the read model: %v", id, err)
	}
	var v projections.PartnerView
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPartnersProjection(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		ctx := context.Background()
		r := startRunner(t, rdb)
		var pos eventstore.Position
		a := &stream{program: program, id: "a", pos: &pos}
		b := &stream{program: program, id: "b", pos: &pos}
		evs := []projections.Event{
			a.next(t, created(program, "a", "Alpha", "DE")),
			b.next(t, created(program, "b", "Beta", "DE")),
			a.next(t, updated(program, "a", "Alpha 2", "FR")),
		}
		if err := r.Apply(ctx, evs); err != nil {
			t.Fatal(err)
		}
		ks := projections.NewKeyspace("partners", 1, program)
		if got := doc(t, rdb, program, "a"); got.Name != "Alpha 2" || got.Country != "FR" || got.Version != 2 {
			t.Fatalf("partner a = %+v; want the update applied at version 2", got)
		}
		if got := rdb.SMembers(ctx, ks.Key("idx", "country", "DE")).Val(); fmt.Sprint(got) != "[b]" {
			t.Fatalf("DE index = %v, want [b] (a moved to FR)", got)
		}
		if got := rdb.SMembers(ctx, ks.Key("idx", "country", "FR")).Val(); fmt.Sprint(got) != "[a]" {
			t.Fatalf("FR index = %v, want [a]", got)
		}
		// An update in a later batch reads the state the earlier batch wrote.
		if err := r.Apply(ctx, []projections.Event{b.next(t, updated(program, "b", "Beta", "IT"))}); err != nil {
			t.Fatal(err)
		}
		if got := rdb.SCard(ctx, ks.Key("idx", "country", "DE")).Val(); got != 0 {
			t.Fatalf("DE index has %d members after b moved to IT", got)
		}
		if v, _ := r.AppliedVersion(ctx, program, domain.PartnerStream(program, "b")); v != 2 {
			t.Fatalf("guard of b = %d, want 2", v)
		}
		if r.Checkpoint() != pos {
			t.Fatalf("checkpoint = %d, want %d", r.Checkpoint(), pos)
		}
	})
}

// Redelivered and replayed events change nothing: applying the same history
// again, whole or in overlapping parts, leaves every key as it was.
func TestRedeliveryIsHarmless(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		ctx := context.Background()
		r := startRunner(t, rdb)
		var pos eventstore.Position
		a := &stream{program: program, id: "a", pos: &pos}
		evs := []projections.Event{
			a.next(t, created(program, "a", "Alpha", "DE")),
			a.next(t, updated(program, "a", "Alpha", "FR")),
			a.next(t, updated(program, "a", "Alpha", "IT")),
		}
		if err := r.Apply(ctx, evs); err != nil {
			t.Fatal(err)
		}
		before := dump(t, rdb, program)
		applied := r.Applied()
		// Redeliver the first two (an old country!) and the whole history.
		if err := r.Apply(ctx, evs[:2]); err != nil {
			t.Fatal(err)
		}
		if err := r.Apply(ctx, append(append([]projections.Event{}, evs...), evs...)); err != nil {
			t.Fatal(err)
		}
		if after := dump(t, rdb, program); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("read model changed on redelivery:\nbefore %v\nafter  %v", before, after)
		}
		if r.Applied() != applied {
			t.Fatalf("applied counter moved from %d to %d on redelivery", applied, r.Applied())
		}
		if got := doc(t, rdb, program, "a"); got.Country != "IT" {
			t.Fatalf("country = %s, want IT", got.Country)
		}
	})
}

// Two runners (two processes, or a Kafka rebalance) apply overlapping
// batches concurrently: the guard's compare-and-set makes the result the
// same as one runner applying everything once.
func TestConcurrentRunnersConverge(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		ctx := context.Background()
		var pos eventstore.Position
		var evs []projections.Event
		streams := make([]*stream, 20)
		for i := range streams {
			streams[i] = &stream{program: program, id: fmt.Sprintf("p%02d", i), pos: &pos}
		}
		countries := []string{"DE", "FR", "IT", "ES", "NL"}
		for round := 0; round < 5; round++ {
			for i, s := range streams {
				if round == 0 {
					evs = append(evs, s.next(t, created(program, s.id, s.id, countries[i%5])))
				} else {
					evs = append(evs, s.next(t, updated(program, s.id, s.id, countries[(i+round)%5])))
				}
			}
		}
		r1, r2 := startRunner(t, rdb), startRunner(t, rdb)
		var wg sync.WaitGroup
		for _, r := range []*projections.Runner{r1, r2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each runner sees every event, in order, in small batches.
				for i := 0; i < len(evs); i += 7 {
					if err := r.Apply(ctx, evs[i:min(i+7, len(evs))]); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if total := r1.Applied() + r2.Applied(); total != uint64(len(evs)) {
			t.Fatalf("the two runners applied %d events in all, want each of the %d exactly once", total, len(evs))
		}
		ks := projections.NewKeyspace("partners", 1, program)
		members := 0
		for _, c := range countries {
			members += int(rdb.SCard(ctx, ks.Key("idx", "country", c)).Val())
		}
		if members != len(streams) {
			t.Fatalf("country indexes hold %d members, want %d (one per partner)", members, len(streams))
		}
		for i, s := range streams {
			want := countries[(i+4)%5]
			if got := doc(t, rdb, program, s.id); got.Country != want || got.Version != 5 {
				t.Fatalf("%s = %s v%d, want %s v5", s.id, got.Country, got.Version, want)
			}
		}
	})
}

// Contract events fold into the read model: the document shows the
// contract and the derived status and stages.
func TestPartnersProjectionFoldsContracts(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		ctx := context.Background()
		r := startRunner(t, rdb)
		var pos eventstore.Position
		s := &stream{program: program, id: "c1", pos: &pos}
		var agg domain.Partner
		now := time.Now().UTC()
		var evs []projections.Event
		fold := func(ds []domain.Event, err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				agg.Apply(d)
				evs = append(evs, s.next(t, d))
			}
		}
		fold(agg.Create(domain.NewPartner{ProgramID: program, PartnerID: "c1", Profile: domain.Profile{Name: "C", RelationshipType: "direct"}}, now))
		fold(agg.Propose(domain.SideAdvertiser, "gold", time.Time{}, time.Time{}, time.Time{}, now))
		// Apply the proposal in one batch and the acceptance in the next, so
		// the second batch folds onto the stored state.
		if err := r.Apply(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if v := doc(t, rdb, program, "c1"); v.Contract == nil || v.Contract.Stage != domain.StageAwaitingPublisherApproval || v.RelationshipStage != "outreach" {
			t.Fatalf("after the proposal: %+v", v)
		}
		evs = nil
		fold(agg.Accept(domain.SidePublisher, now))
		if err := r.Apply(ctx, evs); err != nil {
			t.Fatal(err)
		}
		v := doc(t, rdb, program, "c1")
		if v.Contract == nil || v.Contract.Stage != domain.StageJoined || v.Contract.TemplateTermID != "gold" ||
			v.ContractStatus == nil || *v.ContractStatus != "active" || v.RelationshipStage != "joined" || v.DateJoined == nil || v.Version != 3 {
			t.Fatalf("after acceptance: %+v", v)
		}
	})
}

// An event whose predecessor in its stream is not applied yet is not
// applied either (it would skip the predecessor for good): ErrGap, and the
// stream's other events and other streams still go through.
func TestGapIsDeferredNotSkipped(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		ctx := context.Background()
		r := startRunner(t, rdb)
		var pos eventstore.Position
		a := &stream{program: program, id: "a", pos: &pos}
		b := &stream{program: program, id: "b", pos: &pos}
		a1 := a.next(t, created(program, "a", "A", "DE"))
		a2 := a.next(t, updated(program, "a", "A", "FR"))
		a3 := a.next(t, updated(program, "a", "A", "IT"))
		b1 := b.next(t, created(program, "b", "B", "DE"))
		if err := r.Apply(ctx, []projections.Event{a1, a3, b1}); !errors.Is(err, projections.ErrGap) {
			t.Fatalf("a3 before a2: err = %v, want ErrGap", err)
		}
		if doc(t, rdb, program, "a").Version != 1 || doc(t, rdb, program, "b").Version != 1 {
			t.Fatal("the events without a gap were not applied")
		}
		if err := r.Apply(ctx, []projections.Event{a2}); err != nil {
			t.Fatal(err)
		}
		if err := r.Apply(ctx, []projections.Event{a3}); err != nil {
			t.Fatal(err)
		}
		if v := doc(t, rdb, program, "a"); v.Version != 3 || v.Country != "IT" {
			t.Fatalf("after the redelivery: %+v", v)
		}
	})
}
