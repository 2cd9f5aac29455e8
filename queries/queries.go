// Package queries answers reads from the Redis read models. It never writes
// to them (its one write is the record behind a batch consistency token);
// it touches the event store only for history and as-of reads, which fold a
// stream.
package queries

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/projections"
)

// EventStore is what history and as-of reads need.
type EventStore interface {
	ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, max int) ([]eventstore.RecordedEvent, error)
}

// Generations tells the live generation of a projection.
type Generations interface {
	Generation(projection string) int64
}

// ErrNotCaughtUp: a read-your-writes wait ran out of time.
var ErrNotCaughtUp = errors.New("read model has not caught up with the write yet")

// ErrBadToken: a consistency token that this server did not issue.
var ErrBadToken = errors.New("malformed consistency token")

// Queries lists every read use case.
type Queries struct {
	rdb   redis.UniversalClient
	store EventStore
	gens  Generations
	// WaitLimit bounds a read-your-writes wait (default 5 s).
	WaitLimit time.Duration
	// KeysVersion, when set, changes whenever the programs projection
	// applies an event in this process (API keys issued or revoked); it
	// lets ProgramOfKey answer from a short-lived cache (see keyCache).
	KeysVersion func() uint64
	apiKeys     keyCache
}

// New makes the read side.
func New(rdb redis.UniversalClient, store EventStore, gens Generations) *Queries {
	return &Queries{rdb: rdb, store: store, gens: gens, WaitLimit: 5 * time.Second}
}

// Layouts is what a Generations may also tell: the key layout version
// (projections.Layouted) of each projection's live generation.
type Layouts interface {
	Layout(projection string) int
}

// layout is the live generation's layout of a projection: the current one
// unless the Generations knows better.
func (q *Queries) layout(projection string) int {
	if l, ok := q.gens.(Layouts); ok {
		return l.Layout(projection)
	}
	return int(^uint(0) >> 1)
}

func (q *Queries) keys(projection, tag string) projections.Keyspace {
	return projections.NewKeyspace(projection, q.gens.Generation(projection), tag)
}

// ConsistencyToken names a write: its stream and the resource version it
// reached. It is opaque to clients.
func ConsistencyToken(stream string, version uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(stream + "@" + strconv.FormatUint(version, 10)))
}

func parseToken(tok string) (stream string, version uint64, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", 0, ErrBadToken
	}
	i := strings.LastIndexByte(string(raw), '@')
	if i <= 0 {
		return "", 0, ErrBadToken
	}
	version, err = strconv.ParseUint(string(raw[i+1:]), 10, 64)
	if err != nil {
		return "", 0, ErrBadToken
	}
	return string(raw[:i]), version, nil
}

// projectionOf is the projection that reflects a stream's events, and the
// hash tag of its keys.
func projectionOf(stream string) (name, tag string, ok bool) {
	switch domain.Category(stream) {
	case domain.CategoryPartner:
		rest := strings.TrimPrefix(stream, domain.CategoryPartner+"-")
		prog, _, found := strings.Cut(rest, "-")
		return "partners", prog, found
	case domain.CategoryProgram:
		return "programs", projections.ProgramsTag, true
	case domain.CategoryActivity:
		rest := strings.TrimPrefix(stream, domain.CategoryActivity+"-")
		prog, _, found := strings.Cut(rest, "-")
		return "activities", prog, found
	case domain.CategoryTemplateTerm, domain.CategoryGroup:
		rest := strings.TrimPrefix(stream, domain.Category(stream)+"-")
		prog, _, found := strings.Cut(rest, "-")
		return "catalog", prog, found
	case domain.CategoryConnection, domain.CategoryCredential:
		rest := strings.TrimPrefix(stream, domain.Category(stream)+"-")
		prog, _, found := strings.Cut(rest, "-")
		return "connections", prog, found
	case domain.CategorySegment:
		rest := strings.TrimPrefix(stream, domain.CategorySegment+"-")
		prog, _, found := strings.Cut(rest, "-")
		return "segments", prog, found
	}
	return "", "", false
}

// WaitFor blocks until the read model that reflects the token's stream has
// applied the token's version, or the wait limit passes (ErrNotCaughtUp).
// A token of another program never matches anything and so also times out;
// callers check the program before.
func (q *Queries) WaitFor(ctx context.Context, program, token string) error {
	return q.waitFor(ctx, program, token, ownProjection)
}

// WaitForSegments is WaitFor for a query of the segments read model
// (segment members, a segment preview): it reads partner facts and
// memberships, which the segments projection applies, and partner
// documents, which the partners projection applies; a partner's write is
// waited for in both.
func (q *Queries) WaitForSegments(ctx context.Context, program, token string) error {
	return q.waitFor(ctx, program, token, segmentsReaders)
}

// readersOf names the projections a query must wait on for a write of
// stream, and their hash tag.
type readersOf func(stream string) (names []string, tag string, ok bool)

// ownProjection is the projection that reflects the stream (projectionOf).
func ownProjection(stream string) ([]string, string, bool) {
	name, tag, ok := projectionOf(stream)
	return []string{name}, tag, ok
}

// segmentsReaders: a partner's events reach the segments read model through
// the segments projection, its documents through the partners projection.
func segmentsReaders(stream string) ([]string, string, bool) {
	name, tag, ok := projectionOf(stream)
	if ok && name == "partners" {
		return []string{name, segments}, tag, true
	}
	return []string{name}, tag, ok
}

func (q *Queries) waitFor(ctx context.Context, program, token string, readers readersOf) error {
	if id, ok := batchTokenID(token); ok {
		return q.waitForBatch(ctx, program, id, readers)
	}
	stream, version, err := parseToken(token)
	if err != nil {
		return err
	}
	names, tag, ok := readers(stream)
	if !ok || (tag != projections.ProgramsTag && tag != program) {
		return ErrBadToken
	}
	checked := false
	return q.poll(ctx, func() (bool, error) {
		for _, name := range names {
			v, err := q.rdb.HGet(ctx, q.keys(name, tag).Guard(), stream).Uint64()
			if err != nil && !errors.Is(err, redis.Nil) {
				return false, fmt.Errorf("read-your-writes check: %w", err)
			}
			if v < version {
				if !checked {
					// A token names a write the log holds: one past the
					// stream's end was never issued (made up, or of another
					// deployment), and waiting for it would only time out.
					checked = true
					if ok, err := q.logHolds(ctx, stream, version); err == nil && !ok {
						return false, ErrBadToken
					}
				}
				return false, nil
			}
		}
		return true, nil
	})
}

// logHolds reports whether stream has reached version (its version-th
// event is in the log).
func (q *Queries) logHolds(ctx context.Context, stream string, version uint64) (bool, error) {
	if q.store == nil {
		return true, nil
	}
	last, err := q.store.ReadStream(ctx, stream, math.MaxUint64, eventstore.Backwards, 1)
	if err != nil {
		return false, err
	}
	return len(last) == 1 && last[0].Version+1 >= version, nil
}

// poll calls applied until it reports true, an error, or WaitLimit passes
// (ErrNotCaughtUp). It polls fast: a projection batch takes a few
// milliseconds, and each millisecond slept past it is read-your-writes
// latency.
func (q *Queries) poll(ctx context.Context, applied func() (bool, error)) error {
	deadline := time.Now().Add(q.WaitLimit)
	sleep := 200 * time.Microsecond
	for {
		ok, err := applied()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return ErrNotCaughtUp
		}
		select {
		case <-time.After(sleep):
		case <-ctx.Done():
			return ctx.Err()
		}
		sleep = min(sleep*2, 2*time.Millisecond)
	}
}

// ProgramOfKey returns the program an API key belongs to ("" when the key is
// unknown or revoked).
func (q *Queries) ProgramOfKey(ctx context.Context, keyHash string) (string, error) {
	var version uint64
	now := time.Now()
	if q.KeysVersion != nil {
		// Read before Redis: a revocation applied after the read below
		// moves the version, so the entry put with this one is not used.
		version = q.KeysVersion()
		if p, ok := q.apiKeys.get(keyHash, version, now); ok {
			return p, nil
		}
	}
	p, err := q.rdb.Get(ctx, q.keys("programs", projections.ProgramsTag).Key("key", keyHash)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err == nil && p != "" && q.KeysVersion != nil {
		q.apiKeys.put(keyHash, p, version, now)
	}
	return p, err
}
