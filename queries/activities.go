package queries

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/projections"
)

// ActivityFilter selects activities: each list is "any of" (empty: no
// condition), different lists and the time bounds are "and". Since is
// inclusive, Until exclusive; both compare occurred_at.
type ActivityFilter struct {
	PartnerIDs []string
	Flavors    []string
	MessageIDs []string
	Since      *time.Time
	Until      *time.Time
}

// Match reports whether a matches the filter (the stream's check; the
// feed query uses the indexes instead).
func (f ActivityFilter) Match(a *projections.ActivityView) bool {
	if len(f.PartnerIDs) > 0 && !slices.Contains(f.PartnerIDs, a.PartnerID) {
		return false
	}
	if len(f.Flavors) > 0 && !slices.Contains(f.Flavors, a.Flavor) {
		return false
	}
	if len(f.MessageIDs) > 0 && !slices.Contains(f.MessageIDs, a.MessageID) {
		return false
	}
	// At the feed's precision (microseconds), so that the stream and the
	// feed agree on what a filter holds.
	at := a.OccurredAt.UnixMicro()
	if f.Since != nil && at < f.Since.UnixMicro() {
		return false
	}
	if f.Until != nil && at >= f.Until.UnixMicro() {
		return false
	}
	return true
}

// activityScore is t as a feed score of a generation of layout, formatted.
func activityScore(t time.Time, layout int) string {
	return strconv.FormatFloat(projections.ScoreOf(t, layout), 'f', -1, 64)
}

func (q *Queries) activityKeys(program string) projections.ActivityKeys {
	return projections.ActivityKeys{Keyspace: q.keys("activities", program)}
}

// PartnersExist tells which of ids are partners of the program according
// to the partner list read model: one ZMSCORE on its partners zset, sent
// raw so that a missing member (nil) is told apart from a score of 0.
func (q *Queries) PartnersExist(ctx context.Context, program string, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(ids)+2)
	args = append(args, "ZMSCORE", q.keys("partners", program).Key("partners"))
	for _, id := range ids {
		args = append(args, id)
	}
	vals, err := q.rdb.Do(ctx, args...).Slice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("check partners: %w", err)
	}
	for i, v := range vals {
		if i < len(ids) && v != nil {
			out[ids[i]] = true
		}
	}
	return out, nil
}

// ActivityPage is one page of the feed, newest first.
type ActivityPage = Page[json.RawMessage]

// activityCursor holds the last item's score and ID, and the layout the
// score is in (a cursor from before a layout change is refused, not read
// at the wrong scale).
func activityCursor(layout int, score float64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("L" + strconv.Itoa(layout) + "\n" + strconv.FormatFloat(score, 'f', -1, 64) + "\n" + id))
}

func parseActivityCursor(c string, layout int) (float64, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", ErrBadCursor
	}
	parts := strings.SplitN(string(raw), "\n", 3)
	if len(parts) != 3 || parts[0] != "L"+strconv.Itoa(layout) {
		return 0, "", ErrBadCursor
	}
	score, err := strconv.ParseFloat(parts[1], 64)
	if err != nil || parts[2] == "" || math.IsNaN(score) || math.IsInf(score, 0) {
		return 0, "", ErrBadCursor
	}
	return score, parts[2], nil
}

// Activities pages through the feed, newest first (by occurred_at, then
// by activity ID). The cursor is the last item's score and ID, so pages
// stay stable while activities arrive: a new one sorts before the cursor
// unless it occurred earlier, in which case it shows up on a later page,
// and no item is shown twice or skipped.
func (q *Queries) Activities(ctx context.Context, program string, f ActivityFilter, limit int, cursor string) (ActivityPage, error) {
	ks := q.activityKeys(program)
	layout := q.layout("activities")
	maxScore, cursorID := "+inf", ""
	var cursorScore float64
	if cursor != "" {
		var err error
		if cursorScore, cursorID, err = parseActivityCursor(cursor, min(layout, projections.ActivitiesLayout)); err != nil {
			return ActivityPage{}, err
		}
		maxScore = strconv.FormatFloat(cursorScore, 'f', -1, 64)
	}
	if f.Until != nil {
		u := projections.ScoreOf(*f.Until, layout)
		if cursor == "" || u <= cursorScore {
			maxScore = "(" + strconv.FormatFloat(u, 'f', -1, 64)
		}
	}
	minScore := "-inf"
	if f.Since != nil {
		minScore = activityScore(*f.Since, layout)
	}
	src, temps, err := q.activitySource(ctx, ks, f)
	if err != nil {
		return ActivityPage{}, err
	}
	if len(temps) > 0 {
		defer q.rdb.Del(context.WithoutCancel(ctx), temps...)
	}
	page := ActivityPage{Items: []json.RawMessage{}}
	countMax := "+inf"
	if f.Until != nil {
		countMax = "(" + activityScore(*f.Until, layout)
	}
	if page.Total, err = q.rdb.ZCount(ctx, src, minScore, countMax).Result(); err != nil {
		return ActivityPage{}, fmt.Errorf("activities: %w", err)
	}
	var ids []string
	var scores []float64
	offset := int64(0)
	chunk := int64(limit + 1)
	for len(ids) <= limit {
		zs, err := q.rdb.ZRevRangeByScoreWithScores(ctx, src, &redis.ZRangeBy{Max: maxScore, Min: minScore, Offset: offset, Count: chunk}).Result()
		if err != nil {
			return ActivityPage{}, fmt.Errorf("activities: %w", err)
		}
		for _, z := range zs {
			id, _ := z.Member.(string)
			// Same score as the cursor: reverse lexical order, so IDs at or
			// above the cursor's were on earlier pages.
			if cursorID != "" && z.Score == cursorScore && id >= cursorID {
				continue
			}
			ids, scores = append(ids, id), append(scores, z.Score)
			if len(ids) > limit {
				break
			}
		}
		if int64(len(zs)) < chunk {
			break
		}
		offset += chunk
	}
	if len(ids) > limit {
		ids, scores = ids[:limit], scores[:limit]
		next := activityCursor(min(layout, projections.ActivitiesLayout), scores[limit-1], ids[limit-1])
		page.NextCursor = &next
	}
	if len(ids) == 0 {
		return page, nil
	}
	docs, err := q.rdb.HMGet(ctx, ks.Docs(), ids...).Result()
	if err != nil {
		return ActivityPage{}, fmt.Errorf("activities: %w", err)
	}
	for _, d := range docs {
		if s, ok := d.(string); ok { // absent: trimmed by retention meanwhile
			page.Items = append(page.Items, json.RawMessage(s))
		}
	}
	return page, nil
}

// activitySource returns the zset holding the filter's activities: the
// feed, one index, or a temporary union/intersection of indexes (deleted
// by the caller; they also expire).
func (q *Queries) activitySource(ctx context.Context, ks projections.ActivityKeys, f ActivityFilter) (string, []string, error) {
	var groups [][]string
	add := func(vals []string, key func(string) string) {
		if len(vals) == 0 {
			return
		}
		var keys []string
		for _, v := range vals {
			if k := key(v); !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		groups = append(groups, keys)
	}
	add(f.PartnerIDs, ks.Partner)
	add(f.Flavors, ks.Flavor)
	add(f.MessageIDs, ks.Message)
	if len(groups) == 0 {
		return ks.Feed(), nil, nil
	}
	if len(groups) == 1 && len(groups[0]) == 1 {
		return groups[0][0], nil, nil
	}
	var tokb [8]byte
	_, _ = rand.Read(tokb[:])
	tok := hex.EncodeToString(tokb[:])
	var temps []string
	pipe := q.rdb.TxPipeline()
	var inter []string
	for _, keys := range groups {
		if len(keys) == 1 {
			inter = append(inter, keys[0])
			continue
		}
		k := ks.Key("tmp", tok, strconv.Itoa(len(temps)))
		temps = append(temps, k)
		pipe.ZUnionStore(ctx, k, &redis.ZStore{Keys: keys, Aggregate: "MAX"})
		inter = append(inter, k)
	}
	src := inter[0]
	if len(inter) > 1 {
		src = ks.Key("tmp", tok, strconv.Itoa(len(temps)))
		temps = append(temps, src)
		pipe.ZInterStore(ctx, src, &redis.ZStore{Keys: inter, Aggregate: "MAX"})
	}
	for _, k := range temps {
		pipe.Expire(ctx, k, tempTTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return "", nil, fmt.Errorf("activities: %w", err)
	}
	return src, temps, nil
}

// LiveActivity is an activity as the stream sends it: its entry ID in
// the program's activity log (the SSE event ID), its view, to filter on,
// and its JSON document, to write.
type LiveActivity struct {
	ID   string
	View projections.ActivityView
	Doc  json.RawMessage
}

// ValidLogID reports whether id looks like an activity log entry ID ("<ms>-<seq>").
func ValidLogID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}

// LogFirst returns the ID of the oldest entry of a program's activity
// log ("" when it is empty).
func (q *Queries) LogFirst(ctx context.Context, program string) (string, error) {
	first, err := q.rdb.XRangeN(ctx, q.activityKeys(program).Log(), "-", "+", 1).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("activity log: %w", err)
	}
	if len(first) == 0 {
		return "", nil
	}
	return first[0].ID, nil
}

// LogAfter reads up to max entries of a program's activity log after
// entry ID `after` ("0-0": from the start; "" : nothing, returns the tail
// ID) and returns those matching f (all when f is nil) with the ID to
// continue from: the last entry examined.
func (q *Queries) LogAfter(ctx context.Context, program, after string, f *ActivityFilter, max int) ([]LiveActivity, string, error) {
	key := q.activityKeys(program).Log()
	if after == "" {
		last, err := q.rdb.XRevRangeN(ctx, key, "+", "-", 1).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, "", fmt.Errorf("activity log: %w", err)
		}
		if len(last) == 0 {
			return nil, "0-0", nil
		}
		return nil, last[0].ID, nil
	}
	msgs, err := q.rdb.XRangeN(ctx, key, "("+after, "+", int64(max)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, after, fmt.Errorf("activity log: %w", err)
	}
	out := make([]LiveActivity, 0, len(msgs))
	for _, m := range msgs {
		after = m.ID
		d, _ := m.Values["d"].(string)
		la := LiveActivity{ID: m.ID, Doc: json.RawMessage(d)}
		if json.Unmarshal(la.Doc, &la.View) != nil || (f != nil && !f.Match(&la.View)) {
			continue
		}
		out = append(out, la)
	}
	return out, after, nil
}
