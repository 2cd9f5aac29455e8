package queries

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/projections"
)

// A write that touches many streams (an activity batch, a bulk action, a
// CSV import) gets one consistency token that waits for all of them. The
// streams and versions are too many for a header, so they are kept in
// Redis for BatchTokenTTL under a random ID, and the token carries the ID.

// BatchTokenTTL is how long a batch consistency token can be used.
const BatchTokenTTL = time.Hour

// batchTokenPrefix marks a batch token; stream names never start with it.
const batchTokenPrefix = "~batch:"

func batchTokenKey(id string) string { return "pd:tok:" + id }

// Writes collects the streams a request wrote and the version each reached.
type Writes map[string]uint64

// Add records that stream reached version (keeping the highest).
func (w Writes) Add(stream string, version uint64) {
	if stream != "" && version > w[stream] {
		w[stream] = version
	}
}

// Token returns one consistency token for every write in w: the plain token
// for one stream, a batch token for none or more (none: a request that
// wrote nothing, e.g. a bulk action that failed for every partner, still
// answers a token, which a query passes at once). program is the program
// the writes belong to; the token is valid there only.
func (q *Queries) Token(ctx context.Context, program string, w Writes) (string, error) {
	switch len(w) {
	case 1:
		for s, v := range w {
			return ConsistencyToken(s, v), nil
		}
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	fields := make([]any, 0, 2*len(w)+2)
	fields = append(fields, "~program", program)
	for s, v := range w {
		fields = append(fields, s, v)
	}
	pipe := q.rdb.TxPipeline()
	pipe.HSet(ctx, batchTokenKey(id), fields...)
	pipe.Expire(ctx, batchTokenKey(id), BatchTokenTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return "", fmt.Errorf("record consistency token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(batchTokenPrefix + id)), nil
}

func batchTokenID(tok string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(raw), batchTokenPrefix) {
		return "", false
	}
	id := strings.TrimPrefix(string(raw), batchTokenPrefix)
	if _, err := hex.DecodeString(id); err != nil || len(id) != 24 {
		return "", false
	}
	return id, true
}

// ErrTokenExpired: a batch consistency token that is unknown or older than BatchTokenTTL.
var ErrTokenExpired = errors.New("unknown or expired consistency token")

// waitForBatch waits until every stream of batch token id is applied to
// at least its version, polling each projection's guards in one round trip;
// readers names the projections to wait on for a stream.
func (q *Queries) waitForBatch(ctx context.Context, program, id string, readers readersOf) error {
	all, err := q.rdb.HGetAll(ctx, batchTokenKey(id)).Result()
	if err != nil {
		return fmt.Errorf("read-your-writes check: %w", err)
	}
	if len(all) == 0 {
		return ErrTokenExpired
	}
	if all["~program"] != program {
		return ErrBadToken
	}
	type want struct {
		name, tag string
		streams   []string
		versions  []uint64
	}
	groups := map[string]*want{}
	for s, vs := range all {
		if s == "~program" {
			continue
		}
		v, err := strconv.ParseUint(vs, 10, 64)
		if err != nil {
			return ErrBadToken
		}
		names, tag, ok := readers(s)
		if !ok || (tag != projections.ProgramsTag && tag != program) {
			return ErrBadToken
		}
		for _, name := range names {
			g := groups[name+"\x00"+tag]
			if g == nil {
				g = &want{name: name, tag: tag}
				groups[name+"\x00"+tag] = g
			}
			g.streams = append(g.streams, s)
			g.versions = append(g.versions, v)
		}
	}
	order := make([]string, 0, len(groups))
	for k := range groups {
		order = append(order, k)
	}
	sort.Strings(order)
	return q.poll(ctx, func() (bool, error) {
		pipe := q.rdb.Pipeline()
		for _, k := range order {
			g := groups[k]
			pipe.HMGet(ctx, q.keys(g.name, g.tag).Guard(), g.streams...)
		}
		cmds, err := pipe.Exec(ctx)
		if err != nil {
			return false, fmt.Errorf("read-your-writes check: %w", err)
		}
		for i, k := range order {
			g := groups[k]
			for j, v := range cmds[i].(*redis.SliceCmd).Val() {
				s, _ := v.(string)
				if got, _ := strconv.ParseUint(s, 10, 64); got < g.versions[j] {
					return false, nil
				}
			}
		}
		return true, nil
	})
}
