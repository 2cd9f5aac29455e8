package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
)

// logOrderPage bounds the events one step of applyFromLog applies.
const logOrderPage = 1024

// applyFromLog applies a LogOrdered projection's log, in order, from its
// generation's log position past every event of evs (the messages that
// woke it), and moves the position. Another instance may be doing the
// same: the version guards let each event in once, and a batch planned
// against state another one changed is planned again (errGuardMoved).
// Without a log position it applies evs as they are (see LogOrdered).
func (r *Runner) applyFromLog(ctx context.Context, evs []Event) (map[string]bool, error) {
	var target eventstore.Position
	for _, e := range evs {
		target = max(target, e.Position)
	}
	name := r.proj.Name()
	for {
		gen := r.gen.Load()
		cp, err := r.rdb.Get(ctx, LogPosKey(name, gen)).Uint64()
		if errors.Is(err, redis.Nil) {
			// An older generation, or none (Redis lost its data: apply
			// refuses to write until a rebuild made one).
			return r.apply(ctx, evs, 0)
		}
		if err != nil {
			return nil, fmt.Errorf("projection %s: read log position: %w", name, err)
		}
		at := eventstore.Position(cp)
		if at >= target {
			r.noteLogPos(gen, at)
			return nil, nil
		}
		page, examined, err := readOwnEvents(ctx, r.Log, r.proj, at, logOrderPage)
		if err != nil {
			return nil, fmt.Errorf("projection %s: read the log after %s: %w", name, at, err)
		}
		if examined <= at {
			// The log ends before a message's event: cannot be (the relay
			// read it there); the messages are redelivered.
			return nil, fmt.Errorf("projection %s: the log ends at %s, before %s", name, at, target)
		}
		if len(page) > 0 {
			deferred, err := r.apply(ctx, page, 0)
			if err != nil {
				return nil, err
			}
			if len(deferred) > 0 {
				return nil, fmt.Errorf("projection %s: %d events after log position %s: %w", name, len(deferred), at, ErrGap)
			}
		}
		if r.gen.Load() != gen {
			// A rebuild switched generations meanwhile (apply followed it):
			// go on from the new generation's position.
			continue
		}
		if err := raiseLogPos.Run(ctx, r.rdb, []string{LogPosKey(name, gen)}, examined.String()).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("projection %s: move log position: %w", name, err)
		}
		r.noteLogPos(gen, examined)
		if examined >= target {
			return nil, nil // read back, the position would say as much
		}
	}
}

// noteLogPos remembers how far the log of gen is applied, for Handle to
// ack the messages of events up to there at once.
func (r *Runner) noteLogPos(gen int64, pos eventstore.Position) {
	for {
		cur := r.logPos.Load()
		if cur != nil && cur.gen == gen && cur.pos >= pos {
			return
		}
		if r.logPos.CompareAndSwap(cur, &genPos{gen: gen, pos: pos}) {
			return
		}
	}
}

// ownStreams tells the streams whose events reach p: those of its topics'
// categories (never a snapshot stream: its category is no topic's).
func ownStreams(p Projection) func(stream string) bool {
	topics := p.Topics()
	return func(stream string) bool { return slices.Contains(topics, bus.Topic(domain.Category(stream))) }
}

// readOwnEvents reads up to n of p's events after after from log (skipping
// the others undecoded when the store can), and the position of the last
// event it examined.
func readOwnEvents(ctx context.Context, log LogReader, p Projection, after eventstore.Position, n int) ([]Event, eventstore.Position, error) {
	ours := ownStreams(p)
	var out []Event
	if fr, ok := log.(eventstore.FilteredReader); ok {
		page, examined, err := fr.ReadAllFiltered(ctx, after, n, ours)
		if err != nil {
			return nil, 0, err
		}
		for _, re := range page {
			out = append(out, bus.EnvelopeOf(re))
		}
		return out, examined, nil
	}
	page, err := log.ReadAll(ctx, after, n)
	if err != nil || len(page) == 0 {
		return nil, after, err
	}
	for _, re := range page {
		if ours(re.StreamID) {
			out = append(out, bus.EnvelopeOf(re))
		}
	}
	return out, page[len(page)-1].Position, nil
}

// raiseLogPos moves a log position forward only (positions compare as
// decimal numbers of any size), and never creates one: a generation that
// lost it (Redis lost its data) gets its own from the rebuild.
var raiseLogPos = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local new = ARGV[1]
if #new > #cur or (#new == #cur and new > cur) then redis.call('SET', KEYS[1], new) return 1 end
return 0`)
