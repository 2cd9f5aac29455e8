package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/projections"
)

func activityEvent(t *testing.T, program string, pos eventstore.Position, version uint64, a domain.Activity) projections.Event {
	t.Helper()
	data, err := json.Marshal(domain.ActivityRecorded{ProgramID: program, Activity: a, RecordedAt: a.OccurredAt})
	if err != nil {
		t.Fatal(err)
	}
	stream := domain.ActivityStream(program, a.PartnerID)
	return projections.Event{ID: fmt.Sprintf("%s-%d", stream, version), Type: domain.TypeActivityRecorded, Stream: stream, Program: program,
		Version: version, Position: pos, Schema: 1, RecordedAt: a.OccurredAt, Data: data}
}

// The feed keeps the newest MaxPerProgram activities and none older than
// MaxAge, drops a second event with a known activity_id, removes trimmed
// activities from every index, and a redelivery changes nothing.
func TestActivitiesRetentionAndIdempotence(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		ctx := context.Background()
		now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
		p := projections.Activities{MaxPerProgram: 3, MaxAge: 24 * time.Hour, Now: func() time.Time { return now }}
		r := projections.NewRunner(rdb, p)
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		var evs []projections.Event
		versions := map[string]uint64{}
		add := func(id, partner, message string, at time.Time) {
			versions[partner]++
			evs = append(evs, activityEvent(t, program, eventstore.Position(len(evs)+1), versions[partner],
				domain.Activity{ActivityID: id, PartnerID: partner, Flavor: "logged_in", MessageID: message, OccurredAt: at}))
		}
		add("old", "p1", "m1", now.Add(-48*time.Hour)) // past the age limit: never in the feed
		add("a1", "p1", "m1", now.Add(-5*time.Hour))
		add("a2", "p2", "m1", now.Add(-4*time.Hour))
		add("a1", "p1", "m1", now.Add(-5*time.Hour)) // the same activity again (a store without AppendUnique)
		first := append([]projections.Event(nil), evs...)
		if err := r.Apply(ctx, first); err != nil {
			t.Fatal(err)
		}
		add("a3", "p1", "", now.Add(-3*time.Hour))
		add("a4", "p2", "", now.Add(-2*time.Hour))
		add("a5", "p1", "", now.Add(-1*time.Hour))
		if err := r.Apply(ctx, evs[len(first):]); err != nil {
			t.Fatal(err)
		}
		ks := projections.ActivityKeys{Keyspace: projections.NewKeyspace("activities", r.Generation(), program)}
		state := func() string {
			var parts []string
			for _, k := range []string{ks.Feed(), ks.Partner("p1"), ks.Partner("p2"), ks.Message("m1"), ks.Flavor("logged_in")} {
				ids, err := rdb.ZRange(ctx, k, 0, -1).Result()
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, strings.Join(ids, ","))
			}
			docs, _ := rdb.HKeys(ctx, ks.Docs()).Result()
			parts = append(parts, fmt.Sprint(len(docs)))
			return strings.Join(parts, " | ")
		}
		want := "a3,a4,a5 | a3,a5 | a4 |  | a3,a4,a5 | 3"
		if got := state(); got != want {
			t.Fatalf("feed state\n got %s\nwant %s", got, want)
		}
		// Redelivery of everything: the guards skip it all.
		if err := r.Apply(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if got := state(); got != want {
			t.Fatalf("after redelivery\n got %s\nwant %s", got, want)
		}
		if n, _ := rdb.XLen(ctx, ks.Log()).Result(); n != 5 {
			t.Fatalf("activity log holds %d entries, want 5 (a1..a5, each once)", n)
		}
	})
}

// The cap keeps the newest activities of the feed as it will be, this
// batch's included: one batch over the cap, newest first, keeps its
// newest; a later batch with older activities than the feed holds drops
// those, not the feed's.
func TestActivitiesCapWeighsTheBatchItAdds(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		ctx := context.Background()
		now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
		r := projections.NewRunner(rdb, projections.Activities{MaxPerProgram: 5})
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		pos := eventstore.Position(0)
		batch := func(prefix string, minutesAgo ...int) {
			var evs []projections.Event
			for i, m := range minutesAgo {
				pos++
				evs = append(evs, activityEvent(t, program, pos, 1, domain.Activity{ActivityID: fmt.Sprintf("%s%d", prefix, i),
					PartnerID: fmt.Sprintf("%s-p%d", prefix, i), Flavor: "logged_in", OccurredAt: now.Add(-time.Duration(m) * time.Minute)}))
			}
			if err := r.Apply(ctx, evs); err != nil {
				t.Fatal(err)
			}
		}
		ks := projections.ActivityKeys{Keyspace: projections.NewKeyspace("activities", r.Generation(), program)}
		feed := func() string {
			ids, err := rdb.ZRevRange(ctx, ks.Feed(), 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			docs, _ := rdb.HLen(ctx, ks.Docs()).Result()
			flavor, _ := rdb.ZCard(ctx, ks.Flavor("logged_in")).Result()
			return fmt.Sprintf("%s (docs %d, flavor %d)", strings.Join(ids, ","), docs, flavor)
		}
		batch("m", 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
		if got, want := feed(), "m0,m1,m2,m3,m4 (docs 5, flavor 5)"; got != want {
			t.Fatalf("after one batch over the cap: %s, want %s", got, want)
		}
		batch("n", 30, 20, 10) // all older than the feed's oldest
		if got, want := feed(), "m0,m1,m2,m3,m4 (docs 5, flavor 5)"; got != want {
			t.Fatalf("after a batch of older ones: %s, want %s", got, want)
		}
		batch("k", -2, 1) // one newest, one as old as m1 (ties go by ID, as in the feed)
		if got, want := feed(), "k0,m0,m1,k1,m2 (docs 5, flavor 5)"; got != want {
			t.Fatalf("after a mixed batch: %s, want %s", got, want)
		}
	})
}

// A rebuild keeps the cap too: its workers write at once, so their
// batches' trims see a feed still filling; Reconcile trims after the
// switch.
func TestActivitiesRebuildKeepsTheCap(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		ctx := context.Background()
		now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
		var evs []eventstore.RecordedEvent
		for i := range 40 {
			a := domain.Activity{ActivityID: fmt.Sprintf("a%02d", i), PartnerID: fmt.Sprintf("p%d", i%7), Flavor: "logged_in",
				OccurredAt: now.Add(time.Duration(i) * time.Minute)}
			data, err := json.Marshal(domain.ActivityRecorded{ProgramID: program, Activity: a, RecordedAt: a.OccurredAt})
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, eventstore.RecordedEvent{ID: a.ActivityID, StreamID: domain.ActivityStream(program, a.PartnerID),
				Type: domain.TypeActivityRecorded, Version: uint64(i / 7), Position: eventstore.Position(i + 1), RecordedAt: a.OccurredAt,
				Data: data, Metadata: []byte(`{"schema":1,"program":"` + program + `"}`)})
		}
		p := projections.Activities{MaxPerProgram: 5}
		res, err := projections.Rebuild(ctx, rdb, projections.NewMemLog(evs), p, nil)
		if err != nil {
			t.Fatal(err)
		}
		ks := projections.ActivityKeys{Keyspace: projections.NewKeyspace("activities", res.NewGeneration, program)}
		ids, _ := rdb.ZRevRange(ctx, ks.Feed(), 0, -1).Result()
		docs, _ := rdb.HLen(ctx, ks.Docs()).Result()
		flavor, _ := rdb.ZCard(ctx, ks.Flavor("logged_in")).Result()
		var partners int64
		for i := range 7 {
			n, _ := rdb.ZCard(ctx, ks.Partner(fmt.Sprintf("p%d", i))).Result()
			partners += n
		}
		if got := fmt.Sprintf("%s docs %d flavor %d partners %d", strings.Join(ids, ","), docs, flavor, partners); got != "a39,a38,a37,a36,a35 docs 5 flavor 5 partners 5" {
			t.Fatalf("after the rebuild: %s", got)
		}
	})
}
