package projections

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
)

// Activities keeps each program's activity feed:
//
//	feed            zset  activity IDs scored by occurred_at (unix µs; ms in layout 1)
//	p:<partner>     zset  the same, one partner's
//	f:<flavor>      zset  the same, one flavor's
//	m:<message>     zset  the same, one message's
//	docs            hash  activity ID → the activity as the API shows it (JSON)
//	log             stream  the same documents in the order they were
//	                projected ("a" activity ID, "d" document); its entry IDs
//	                are the live stream's SSE event IDs (capped like the feed,
//	                at least LogMin entries)
//	live            channel: every batch that added activities PUBLISHes
//	                their count, from inside the same Lua step as its
//	                writes; the hub then reads the log from where it was.
//
// Everything is written in the runner's atomic step, so a redelivered or
// replayed event is never indexed, logged or announced twice.
//
// Index parts are escaped by IndexPart. An activity ID already in docs is
// skipped (a re-sent activity that reached the log twice, which only a
// store without AppendUnique lets happen). Retention: per program at most
// MaxPerProgram activities and none older than MaxAge (by occurred_at);
// each batch trims what is over, oldest first, so a program that receives
// nothing keeps its feed until its next activity.
type Activities struct {
	// MaxPerProgram caps the feed of one program (0: no cap).
	MaxPerProgram int
	// MaxAge drops activities that occurred longer ago (0: no limit).
	MaxAge time.Duration
	// Now is the clock of the age limit (default time.Now).
	Now func() time.Time
	// AgeChecks, when set, limits the age check to one per program per
	// AgeCheckEvery (the check is a range query on the whole feed: cheap in
	// Redis, a sort of the whole set in the embedded Redis). Nil: every batch.
	AgeChecks *AgeChecks
}

// AgeChecks remembers when each program's feed was last checked for age.
type AgeChecks struct {
	Every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
}

// due reports whether program's feed should be checked at now, and if so
// records the check.
func (a *AgeChecks) due(program string, now time.Time) bool {
	if a == nil {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		a.last = map[string]time.Time{}
	}
	if now.Sub(a.last[program]) < a.Every {
		return false
	}
	a.last[program] = now
	return true
}

// ActivityView is an activity as the API shows it.
type ActivityView struct {
	domain.Activity
	RecordedAt time.Time `json:"recorded_at"`
	// Position is the activity's log position: its SSE event ID.
	Position string `json:"position"`
}

// Name implements Projection.
func (Activities) Name() string { return "activities" }

// Topics implements Projection.
func (Activities) Topics() []string { return []string{"partnerd.activities"} }

// Tag implements Projection: one program's keys share a slot.
func (Activities) Tag(e Event) string { return e.Program }

// ActivityKeys names the feed's keys in a keyspace.
type ActivityKeys struct{ Keyspace }

// Feed is the zset of every activity by occurred_at.
func (k ActivityKeys) Feed() string { return k.Key("feed") }

// Partner is the zset of one partner's activities.
func (k ActivityKeys) Partner(id string) string { return k.Key("p", IndexPart(id)) }

// Flavor is the zset of one flavor's activities.
func (k ActivityKeys) Flavor(f string) string { return k.Key("f", IndexPart(f)) }

// Message is the zset of one message's activities.
func (k ActivityKeys) Message(id string) string { return k.Key("m", IndexPart(id)) }

// Log is the stream of activities in projection order.
func (k ActivityKeys) Log() string { return k.Key("log") }

// LogMin is the least number of entries the log stream keeps.
const LogMin = 100000

// Docs is the hash of activity documents.
func (k ActivityKeys) Docs() string { return k.Key("docs") }

// Live is the pub/sub channel of newly projected activities.
func (k ActivityKeys) Live() string { return k.Key("live") }

// ActivitiesLayout is the activities projection's key layout. Layout 2
// scores the feed's zsets by occurred_at in unix microseconds (exact in a
// float64 until the year 2255); layout 1 used milliseconds, so activities
// within one millisecond tied (ordered by ID, not time) and since/until
// were cut to the millisecond.
const ActivitiesLayout = 2

// Layout implements Layouted.
func (Activities) Layout() int { return ActivitiesLayout }

// ScoreOf is an activity's feed score in a generation of the given layout.
func ScoreOf(t time.Time, layout int) float64 {
	if layout < 2 {
		return float64(t.UnixMilli())
	}
	return float64(t.UnixMicro())
}

// activityAdds merges one program's new activities per key.
type activityAdds struct {
	order []string         // zset keys in first-use order
	zsets map[string][]any // key → score, member, …
	docs  []any            // activity ID, document, …
}

func (a *activityAdds) zadd(key, score string, member any) {
	if _, ok := a.zsets[key]; !ok {
		a.order = append(a.order, key)
	}
	a.zsets[key] = append(a.zsets[key], score, member)
}

type activityReads struct {
	known *redis.SliceCmd
	card  *redis.IntCmd
	old   *redis.StringSliceCmd
}

// Plan implements Projection.
func (p Activities) Plan(ctx context.Context, rd redis.Cmdable, b *Batch) error {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	cutoff := time.Time{}
	if p.MaxAge > 0 {
		cutoff = now().Add(-p.MaxAge)
	}
	layout := ActivitiesLayout
	if b.olderLayout {
		layout = 1 // a live generation not yet rebuilt to microseconds
	}
	type item struct {
		tag  string
		view ActivityView
	}
	items := make([]item, 0, len(b.Events))
	ids := map[string][]string{} // tag → activity IDs
	for _, e := range b.Events {
		var ev domain.ActivityRecorded
		if e.Type != domain.TypeActivityRecorded {
			continue
		}
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			return fmt.Errorf("decode %s at %d: %w", e.Type, e.Position, err)
		}
		if ev.ActivityID == "" || ev.PartnerID == "" || ev.OccurredAt.Before(cutoff) {
			continue
		}
		items = append(items, item{tag: e.Program, view: ActivityView{Activity: ev.Activity, RecordedAt: ev.RecordedAt, Position: e.Position.String()}})
		ids[e.Program] = append(ids[e.Program], ev.ActivityID)
	}
	if len(items) == 0 {
		return nil
	}
	// 1. Which are known already; how full each program's feed is; what is
	// past the age limit.
	pipe := rd.Pipeline()
	reads := map[string]*activityReads{}
	for tag, list := range ids {
		ks := ActivityKeys{b.Keys(tag)}
		r := &activityReads{known: pipe.HMGet(ctx, ks.Docs(), list...)}
		if p.MaxPerProgram > 0 && !b.Replay {
			// A replay's workers write at once: each batch would count a
			// feed the others are filling and trimming (it could trim it
			// to nothing). Reconcile applies the cap after the switch.
			r.card = pipe.ZCard(ctx, ks.Feed())
		}
		if p.MaxAge > 0 && p.AgeChecks.due(tag, now()) {
			r.old = pipe.ZRangeByScore(ctx, ks.Feed(), &redis.ZRangeBy{Min: "-inf", Max: "(" + strconv.FormatFloat(ScoreOf(cutoff, layout), 'f', -1, 64), Count: 4096})
		}
		reads[tag] = r
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return fmt.Errorf("read feed: %w", err)
	}
	known := map[string]map[string]bool{}
	for tag, r := range reads {
		k := map[string]bool{}
		for i, v := range r.known.Val() {
			if v != nil {
				k[ids[tag][i]] = true
			}
		}
		known[tag] = k
	}
	// 2. Add the new ones, log them and announce them. The index writes
	// are merged per key (one ZADD per zset, one HSET of the documents):
	// inside Redis each call costs more than a member, and the feed, a
	// flavor's zset and the documents take most of a batch's members.
	// The log keeps one entry per activity, in batch order.
	added := map[string]int{}
	fresh := map[string][]freshActivity{}
	adds := map[string]*activityAdds{}
	var tags []string
	logCap := int64(max(p.MaxPerProgram, LogMin))
	for _, it := range items {
		a := it.view
		if known[it.tag][a.ActivityID] {
			continue
		}
		known[it.tag][a.ActivityID] = true // a repeat later in this batch
		ks, w := ActivityKeys{b.Keys(it.tag)}, b.W(it.tag)
		doc, err := json.Marshal(a)
		if err != nil {
			return err
		}
		ad := adds[it.tag]
		if ad == nil {
			ad = &activityAdds{zsets: map[string][]any{}}
			adds[it.tag] = ad
			tags = append(tags, it.tag)
		}
		var id any = a.ActivityID
		score := strconv.FormatFloat(ScoreOf(a.OccurredAt, layout), 'f', -1, 64)
		ad.zadd(ks.Feed(), score, id)
		ad.zadd(ks.Partner(a.PartnerID), score, id)
		ad.zadd(ks.Flavor(a.Flavor), score, id)
		if a.MessageID != "" {
			ad.zadd(ks.Message(a.MessageID), score, id)
		}
		d := string(doc)
		ad.docs = append(ad.docs, id, d)
		w.XAdd(ks.Log(), logCap, "a", id, "d", d)
		added[it.tag]++
		if p.MaxPerProgram > 0 {
			fresh[it.tag] = append(fresh[it.tag], freshActivity{view: a, score: ScoreOf(a.OccurredAt, layout)})
		}
	}
	for _, tag := range tags {
		ks, w, ad := ActivityKeys{b.Keys(tag)}, b.W(tag), adds[tag]
		for _, k := range ad.order {
			w.op("ZADD", k, ad.zsets[k]...)
		}
		w.HSet(ks.Docs(), ad.docs...)
		w.Publish(ks.Live(), strconv.Itoa(added[tag]))
	}
	// 3. Retention: the oldest over the cap, and everything past the age.
	return p.trim(ctx, rd, b, reads, added, fresh)
}

// freshActivity is an activity this batch adds, with its feed score.
type freshActivity struct {
	view  ActivityView
	score float64
}

func (p Activities) trim(ctx context.Context, rd redis.Cmdable, b *Batch, reads map[string]*activityReads, added map[string]int,
	fresh map[string][]freshActivity) error {
	victims := map[string][]string{}
	pipe := rd.Pipeline()
	over := map[string]*redis.ZSliceCmd{}
	overN := map[string]int64{}
	for tag, r := range reads {
		if r.old != nil {
			victims[tag] = append(victims[tag], r.old.Val()...)
		}
		if r.card != nil {
			n := r.card.Val() + int64(added[tag]) - int64(p.MaxPerProgram) - int64(len(victims[tag]))
			if n > 0 {
				// The oldest past the age limit are the first of these too.
				overN[tag] = n + int64(len(victims[tag]))
				over[tag] = pipe.ZRangeWithScores(ctx, ActivityKeys{b.Keys(tag)}.Feed(), 0, overN[tag]-1)
			}
		}
	}
	if len(over) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("read feed to trim: %w", err)
		}
	}
	freshViews := map[string]map[string]ActivityView{}
	for tag, cmd := range over {
		// The oldest of the feed as it will be: what it holds and what
		// this batch adds (an activity older than the feed's oldest is
		// the first to go), by score, then ID (the feed's order).
		type cand struct {
			id    string
			score float64
		}
		var cs []cand
		for _, z := range cmd.Val() {
			id, _ := z.Member.(string)
			cs = append(cs, cand{id, z.Score})
		}
		fv := map[string]ActivityView{}
		for _, f := range fresh[tag] {
			cs = append(cs, cand{f.view.ActivityID, f.score})
			fv[f.view.ActivityID] = f.view
		}
		slices.SortFunc(cs, func(a, b cand) int {
			if a.score != b.score {
				return cmp.Compare(a.score, b.score)
			}
			return strings.Compare(a.id, b.id)
		})
		list := make([]string, 0, overN[tag])
		for _, c := range cs[:min(len(cs), int(overN[tag]))] {
			list = append(list, c.id)
		}
		victims[tag] = list // a superset of the aged ones
		freshViews[tag] = fv
	}
	pipe = rd.Pipeline()
	docs := map[string]*redis.SliceCmd{}
	for tag, list := range victims {
		if len(list) > 0 {
			docs[tag] = pipe.HMGet(ctx, ActivityKeys{b.Keys(tag)}.Docs(), list...)
		}
	}
	if len(docs) == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("read activities to trim: %w", err)
	}
	for tag, cmd := range docs {
		ks, w := ActivityKeys{b.Keys(tag)}, b.W(tag)
		for i, v := range cmd.Val() {
			id := victims[tag][i]
			// After this batch's adds in the same step: a fresh victim is
			// added and removed at once.
			w.ZRem(ks.Feed(), id)
			w.HDel(ks.Docs(), id)
			a, isFresh := freshViews[tag][id]
			if !isFresh {
				s, _ := v.(string)
				if s == "" || json.Unmarshal([]byte(s), &a) != nil {
					continue
				}
			}
			w.ZRem(ks.Partner(a.PartnerID), id)
			w.ZRem(ks.Flavor(a.Flavor), id)
			if a.MessageID != "" {
				w.ZRem(ks.Message(a.MessageID), id)
			}
		}
	}
	return nil
}

// Reconcile implements Reconciler: a rebuild writes its batches from
// several workers at once, so its batches leave the cap alone (each would
// count a feed the others are still filling). After the switch the cap is
// applied to each program's feed, oldest first, as a batch would.
func (p Activities) Reconcile(ctx context.Context, rdb redis.UniversalClient, gen int64) error {
	if p.MaxPerProgram <= 0 {
		return nil
	}
	prefix := "pd:" + p.Name() + ":g" + strconv.FormatInt(gen, 10) + ":{"
	feeds, err := scanKeys(ctx, rdb, prefix+"*}:feed")
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for _, feed := range feeds {
		tag := strings.TrimSuffix(strings.TrimPrefix(feed, prefix), "}:feed")
		ks := ActivityKeys{NewKeyspace(p.Name(), gen, tag)}
		for {
			n, err := rdb.ZCard(ctx, feed).Result()
			if err != nil {
				return err
			}
			over := min(n-int64(p.MaxPerProgram), 10000)
			if over <= 0 {
				break
			}
			ids, err := rdb.ZRange(ctx, feed, 0, over-1).Result()
			if err != nil || len(ids) == 0 {
				return err
			}
			docs, err := rdb.HMGet(ctx, ks.Docs(), ids...).Result()
			if err != nil {
				return err
			}
			pipe := rdb.TxPipeline()
			for i, id := range ids {
				// Indexes first, the feed entry and the document last: an
				// interrupted trim leaves an entry to find again, never an
				// index entry without its feed entry.
				if s, _ := docs[i].(string); s != "" {
					var a ActivityView
					if json.Unmarshal([]byte(s), &a) == nil {
						pipe.ZRem(ctx, ks.Partner(a.PartnerID), id)
						pipe.ZRem(ctx, ks.Flavor(a.Flavor), id)
						if a.MessageID != "" {
							pipe.ZRem(ctx, ks.Message(a.MessageID), id)
						}
					}
				}
				pipe.ZRem(ctx, feed, id)
				pipe.HDel(ctx, ks.Docs(), id)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("trim feed of %s: %w", tag, err)
			}
		}
	}
	return nil
}
