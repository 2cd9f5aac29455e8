// Package projections builds the Redis read models from bus messages. A
// Runner drives one Projection: Watermill handlers hand it messages, it
// groups concurrent ones into batches (one pipelined read, one atomic Lua
// write per program), skips what was applied before (per-stream version
// guard checked and set inside the same Lua step as the writes), and
// records its checkpoint in that same step.
package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/eventstore"
)

// Event is a bus event handed to a projection.
type Event = bus.Envelope

// Projection turns events into Redis writes.
type Projection interface {
	// Name is the projection's stable name; it prefixes its keys.
	Name() string
	// Topics are the bus topics it consumes.
	Topics() []string
	// Tag is the Redis Cluster hash tag of an event's keys (usually its program).
	Tag(ev Event) string
	// Plan appends to b the writes for b's events. It may read current
	// state through rd (pipelined); within one batch it must account for
	// earlier events of the same batch itself.
	Plan(ctx context.Context, rd redis.Cmdable, b *Batch) error
}

// Sequential is implemented by a projection whose batches must be planned
// one at a time in a process (its Plan depends on state of other streams
// and on an in-process cache); the runner then uses one worker.
type Sequential interface {
	Sequential() bool
}

// LogOrdered is implemented by a projection whose events must be applied
// in the log's order across its streams, not only within each: the
// segments projection decides memberships from partner and segment events
// together and announces each move with the event that caused it, so a
// condition change applied before an earlier partner change (or after a
// later one) tells a story the log does not. Bus messages of such a
// projection arrive per topic and partition, in no order across them; its
// runner, given the log (Runner.Log), takes them as a notice only: it
// applies the log itself, in order, from the generation's log position
// (LogPosKey: every event of the projection's topics up to it is applied)
// past the messages' positions, then acks them. A LogOrdered projection
// is also Sequential. A generation without a log position (built by an
// older release; rebuilt when partnerd starts, being Layouted) is applied
// from the messages as they come until then.
type LogOrdered interface {
	LogOrdered() bool
}

// LogPosKey is where generation gen of a LogOrdered projection keeps its
// log position (inside the generation's keys).
func LogPosKey(name string, gen int64) string {
	return "pd:" + name + ":g" + strconv.FormatInt(gen, 10) + ":logpos"
}

// IsLogOrdered reports whether p is a LogOrdered projection.
func IsLogOrdered(p Projection) bool {
	lo, ok := p.(LogOrdered)
	return ok && lo.LogOrdered()
}

// Keyspace builds the keys of one projection generation and hash tag, e.g.
// "pd:partners:g1:{acme}:partner:42".
type Keyspace struct{ prefix string }

// NewKeyspace returns the keyspace of projection name, generation gen, tag.
func NewKeyspace(name string, gen int64, tag string) Keyspace {
	return Keyspace{prefix: "pd:" + name + ":g" + strconv.FormatInt(gen, 10) + ":{" + tag + "}:"}
}

// Key joins parts under the keyspace's prefix.
func (k Keyspace) Key(parts ...string) string { return k.prefix + strings.Join(parts, ":") }

// Guard is the hash of per-stream applied versions.
func (k Keyspace) Guard() string { return k.prefix + "v" }

// Batch is what one Plan call works on.
type Batch struct {
	Gen int64
	// Replay is set when a rebuild applies the log into a new generation
	// (not live traffic): projections with effects beyond their read model
	// (the segments outbox) leave those out and reconcile afterwards.
	Replay bool
	// olderLayout: generation Gen was built with an older key layout than
	// this code's (live writes until a layout rebuild switches in).
	olderLayout bool
	name        string
	Events      []Event // fresh events only, in position order
	writes      map[string]*Writes
}

// Keys returns the keyspace of a tag in this batch's generation.
func (b *Batch) Keys(tag string) Keyspace { return NewKeyspace(b.name, b.Gen, tag) }

// W returns the writes of a tag.
func (b *Batch) W(tag string) *Writes {
	w := b.writes[tag]
	if w == nil {
		w = &Writes{olderLayout: b.olderLayout}
		b.writes[tag] = w
	}
	return w
}

// Runner applies one projection.
type Runner struct {
	// Logger receives dropped-message and retry reports.
	Logger *slog.Logger
	// Workers is how many batches may be applied at once (default 4).
	Workers int
	// Log is the event log a LogOrdered projection applies from (without
	// it, such a projection is applied from its messages as they come).
	Log LogReader

	rdb      redis.UniversalClient
	proj     Projection
	gen      atomic.Int64
	layout   atomic.Int64 // of gen; see Refresh for the order of the two
	script   *redis.Script
	reqs     chan *applyReq
	maxBatch int

	fresh      bool                   // Start created the projection's first generation
	logPos     atomic.Pointer[genPos] // LogOrdered: how far the log is applied, as this process knows
	checkpoint atomic.Uint64          // highest position applied by this process
	applied    atomic.Uint64
	batches    atomic.Uint64
	once       sync.Once
	stop       chan struct{}

	// Retry warnings are logged at most once per retryLogEvery; the rest
	// are counted (an outage fails every in-flight message every 200 ms).
	lastRetryLog atomic.Int64 // unix nanoseconds
	quietRetries atomic.Int64
}

// retryLogEvery bounds how often a runner logs failing batches.
const retryLogEvery = 5 * time.Second

func (r *Runner) warnRetry(err error) {
	now := time.Now().UnixNano()
	last := r.lastRetryLog.Load()
	if now-last < int64(retryLogEvery) || !r.lastRetryLog.CompareAndSwap(last, now) {
		r.quietRetries.Add(1)
		return
	}
	r.Logger.Warn("projection batch failed; will retry", "projection", r.proj.Name(), "err", err,
		"failures_not_logged_since_last", r.quietRetries.Swap(0))
}

// genPos is a log position in one generation.
type genPos struct {
	gen int64
	pos eventstore.Position
}

type applyReq struct {
	ev   Event
	done chan error
}

// GenerationKey is where the live generation number of a projection is kept.
func GenerationKey(name string) string { return "pd:" + name + ":gen" }

// Layouted is a projection whose key layout has changed over releases: it
// tells the version its code writes and reads. Each generation records the
// layout it was built with (LayoutKey; absent = 1), and partnerd rebuilds
// a projection whose live generation is older when it starts, serving the
// old one meanwhile (queries read an old layout the way it allows).
type Layouted interface {
	Layout() int
}

// LayoutKey is where generation gen of projection name records its layout
// (inside the generation's keys, so dropping the generation drops it).
func LayoutKey(name string, gen int64) string {
	return "pd:" + name + ":g" + strconv.FormatInt(gen, 10) + ":layout"
}

// LayoutOf is the layout projection p writes (1 unless it is Layouted).
func LayoutOf(p Projection) int {
	if l, ok := p.(Layouted); ok {
		return l.Layout()
	}
	return 1
}

// readLayout reads the layout generation gen of name was built with.
func readLayout(ctx context.Context, rdb redis.Cmdable, name string, gen int64) (int, error) {
	l, err := rdb.Get(ctx, LayoutKey(name, gen)).Int()
	if errors.Is(err, redis.Nil) {
		return 1, nil
	}
	return l, err
}

// NewRunner makes a runner; call Start before handing it messages.
func NewRunner(rdb redis.UniversalClient, p Projection) *Runner {
	return &Runner{Logger: slog.Default(), Workers: 4, rdb: rdb, proj: p, script: redis.NewScript(applyScript), reqs: make(chan *applyReq, 4096),
		maxBatch: 512, stop: make(chan struct{})}
}

// Start reads the live generation (creating generation 1 if none) and starts
// the batching loop until ctx ends.
func (r *Runner) Start(ctx context.Context) error {
	created, err := r.rdb.SetNX(ctx, GenerationKey(r.proj.Name()), 1, 0).Result()
	if err != nil {
		return fmt.Errorf("projection %s: init generation: %w", r.proj.Name(), err)
	}
	r.fresh = created
	if created && IsLogOrdered(r.proj) {
		// Before the layout: a crash between leaves a generation of layout 1,
		// which the next start rebuilds (and gives a log position).
		if err := r.rdb.Set(ctx, LogPosKey(r.proj.Name(), 1), 0, 0).Err(); err != nil {
			return fmt.Errorf("projection %s: record log position: %w", r.proj.Name(), err)
		}
	}
	if created && LayoutOf(r.proj) > 1 {
		// The generation this runner started (1) is written with its layout.
		if err := r.rdb.Set(ctx, LayoutKey(r.proj.Name(), 1), LayoutOf(r.proj), 0).Err(); err != nil {
			return fmt.Errorf("projection %s: record layout: %w", r.proj.Name(), err)
		}
	}
	if err := r.Refresh(ctx); err != nil {
		return fmt.Errorf("projection %s: read generation and layout: %w", r.proj.Name(), err)
	}
	// Several batches in flight overlap Redis round trips with planning. A
	// stream is never in two of them: its messages arrive one at a time
	// (each partition waits for the ack), and across processes the guard's
	// compare-and-set catches any overlap.
	workers := r.Workers
	if sq, ok := r.proj.(Sequential); ok && sq.Sequential() {
		workers = 1
	}
	for i := 0; i < workers; i++ {
		go r.loop(ctx)
	}
	go r.followGeneration(ctx)
	return nil
}

// Refresh re-reads the live generation now (after a rebuild switched it).
func (r *Runner) Refresh(ctx context.Context) error {
	g, err := r.rdb.Get(ctx, GenerationKey(r.proj.Name())).Int64()
	if err != nil {
		return err
	}
	l, err := readLayout(ctx, r.rdb, r.proj.Name(), g)
	if err != nil {
		return err
	}
	// The generation first, and readers read Layout before Generation: a
	// reader may pair a new generation with its predecessor's (older)
	// layout, which only costs a check the newer layout does not need,
	// never an old generation with a newer layout.
	r.gen.Store(g)
	r.layout.Store(int64(l))
	return nil
}

// Layout is the layout the live generation was built with (see Layouted).
func (r *Runner) Layout() int { return int(r.layout.Load()) }

// Fresh reports whether Start found no generation of this projection in
// Redis, i.e. the read model has never been built there.
func (r *Runner) Fresh() bool { return r.fresh }

// Projection returns the projection the runner drives.
func (r *Runner) Projection() Projection { return r.proj }

// Generation is the live generation.
func (r *Runner) Generation() int64 { return r.gen.Load() }

// Checkpoint is the highest log position this process applied.
func (r *Runner) Checkpoint() eventstore.Position { return eventstore.Position(r.checkpoint.Load()) }

// Applied counts events applied (not skipped) by this process.
func (r *Runner) Applied() uint64 { return r.applied.Load() }

// Batches counts the atomic steps (batches with events to apply) this
// process applied: Applied / Batches is the mean batch.
func (r *Runner) Batches() uint64 { return r.batches.Load() }

// Handle is the Watermill handler: it returns once the message's effect is
// in Redis (or known to be there already), so an ack means applied.
func (r *Runner) Handle(msg *message.Message) error {
	ev, err := bus.ParseMessage(msg)
	if err != nil {
		// A message we cannot read will never become readable: drop it
		// loudly rather than block the partition forever.
		r.Logger.Error("dropping unreadable message", "projection", r.proj.Name(), "uuid", msg.UUID, "err", err)
		return nil
	}
	if lp := r.logPos.Load(); lp != nil && lp.gen == r.gen.Load() && ev.Position <= lp.pos {
		return nil // applied from the log already
	}
	req := &applyReq{ev: ev, done: make(chan error, 1)}
	select {
	case r.reqs <- req:
	case <-msg.Context().Done():
		return msg.Context().Err()
	}
	if err := <-req.done; err != nil {
		// The message is nacked and redelivered; pause so a Redis outage
		// does not turn into a hot loop.
		r.warnRetry(err)
		time.Sleep(200 * time.Millisecond)
		return err
	}
	return nil
}

func (r *Runner) loop(ctx context.Context) {
	for {
		var first *applyReq
		select {
		case first = <-r.reqs:
		case <-ctx.Done():
			for {
				select {
				case q := <-r.reqs:
					q.done <- ctx.Err()
				default:
					return
				}
			}
		}
		batch := []*applyReq{first}
	gather:
		for len(batch) < r.maxBatch {
			select {
			case q := <-r.reqs:
				batch = append(batch, q)
			default:
				break gather
			}
		}
		evs := make([]Event, len(batch))
		for i, q := range batch {
			evs[i] = q.ev
		}
		var deferred map[string]bool
		var err error
		if r.Log != nil && IsLogOrdered(r.proj) {
			deferred, err = r.applyFromLog(ctx, evs)
		} else {
			deferred, err = r.apply(ctx, evs, 0)
		}
		for _, q := range batch {
			if err == nil && deferred[q.ev.ID] {
				q.done <- fmt.Errorf("projection %s: %s version %d: %w", r.proj.Name(), q.ev.Stream, q.ev.Version, ErrGap)
				continue
			}
			q.done <- err
		}
	}
}

// ErrGap: an event arrived before an earlier event of its stream was
// applied. It is not applied (that would skip the earlier one for good);
// the message is redelivered later. Around a rebuild's generation switch a
// live runner can briefly be ahead of the rebuild's tail replay.
var ErrGap = errors.New("an earlier event of the stream is not applied yet")

// Apply applies a batch of events directly (used by the handler loop and by
// rebuilds). It is idempotent: events at or below a stream's guard are
// skipped. An event whose predecessor is not applied yet is not applied:
// Apply then returns ErrGap (after applying the others).
func (r *Runner) Apply(ctx context.Context, evs []Event) error {
	deferred, err := r.apply(ctx, evs, 0)
	if err == nil && len(deferred) > 0 {
		err = fmt.Errorf("projection %s: %d events: %w", r.proj.Name(), len(deferred), ErrGap)
	}
	return err
}

// apply applies into generation pinned, or into the live one (following a
// switch made by a rebuild) when pinned is 0. It returns the IDs of events
// deferred because of a gap in their stream.
func (r *Runner) apply(ctx context.Context, evs []Event, pinned int64) (map[string]bool, error) {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Position < evs[j].Position })
	for attempt := 0; ; attempt++ {
		gen := pinned
		if gen == 0 {
			gen = r.gen.Load()
		}
		deferred := map[string]bool{}
		err := r.applyOnce(ctx, evs, gen, pinned == 0, deferred)
		if !errors.Is(err, errGuardMoved) || attempt >= 20 {
			if err != nil {
				return nil, fmt.Errorf("projection %s: %w", r.proj.Name(), err)
			}
			return deferred, nil
		}
		time.Sleep(time.Duration(attempt+1) * time.Millisecond)
	}
}

var errGuardMoved = errors.New("guard moved; retry")

// ErrNoGeneration: the projection's generation key is gone (Redis lost its
// data); the batch is not applied, and is retried once a rebuild set one.
var ErrNoGeneration = errors.New("no live generation in Redis (did it lose its data?); waiting for the rebuild")

type guardRead struct {
	tag     string
	streams []string
	cmd     *redis.SliceCmd
}

func (r *Runner) applyOnce(ctx context.Context, evs []Event, gen int64, follow bool, deferred map[string]bool) error {
	byTag := map[string][]Event{}
	var tags []string
	for _, ev := range evs {
		t := r.proj.Tag(ev)
		if _, ok := byTag[t]; !ok {
			tags = append(tags, t)
		}
		byTag[t] = append(byTag[t], ev)
	}
	// 1. Read the guards of every stream in the batch.
	pipe := r.rdb.Pipeline()
	reads := make([]guardRead, len(tags))
	for i, t := range tags {
		seen := map[string]bool{}
		var streams []string
		for _, ev := range byTag[t] {
			if !seen[ev.Stream] {
				seen[ev.Stream] = true
				streams = append(streams, ev.Stream)
			}
		}
		reads[i] = guardRead{tag: t, streams: streams, cmd: pipe.HMGet(ctx, NewKeyspace(r.proj.Name(), gen, t).Guard(), streams...)}
	}
	var genCmd *redis.StringCmd
	if follow {
		genCmd = pipe.Get(ctx, GenerationKey(r.proj.Name()))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read guards: %w", err)
	}
	if genCmd != nil {
		live, err := genCmd.Int64()
		switch {
		case errors.Is(err, redis.Nil):
			// Redis lost its data (the rebuild that follows sets a new
			// generation): writing on into the generation held in memory
			// would leave a partial copy under a number the rebuild may
			// build into. Apply nothing until there is one to follow.
			return ErrNoGeneration
		case err == nil && live != gen:
			r.gen.Store(live) // a rebuild switched generations: write there
			return errGuardMoved
		}
	}
	// 2. Keep only events past their stream's guard.
	// The live generation's layout (a generation switched meanwhile is
	// caught by the generation check above on the next attempt).
	older := follow && r.Layout() < LayoutOf(r.proj)
	b := &Batch{Gen: gen, Replay: !follow, olderLayout: older, name: r.proj.Name(), writes: map[string]*Writes{}}
	type guard struct{ expected, next string }
	guards := map[string]map[string]*guard{}
	for _, rd := range reads {
		gs := map[string]*guard{}
		guards[rd.tag] = gs
		for i, v := range rd.cmd.Val() {
			s, _ := v.(string)
			gs[rd.streams[i]] = &guard{expected: s}
		}
		for _, ev := range byTag[rd.tag] {
			g := gs[ev.Stream]
			last := g.expected
			if g.next != "" {
				last = g.next
			}
			applied, _ := strconv.ParseUint(last, 10, 64)
			if ev.Version <= applied {
				continue // applied before: a redelivery or a replay
			}
			if ev.Version > applied+1 {
				deferred[ev.ID] = true // its predecessor first
				continue
			}
			g.next = strconv.FormatUint(ev.Version, 10)
			b.Events = append(b.Events, ev)
		}
	}
	if len(b.Events) == 0 {
		return nil
	}
	// 3. Plan.
	if err := r.proj.Plan(ctx, r.rdb, b); err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	// 4. Apply guards, writes and checkpoint atomically per tag.
	var maxPos eventstore.Position
	for _, ev := range b.Events {
		maxPos = max(maxPos, ev.Position)
	}
	pipe = r.rdb.Pipeline()
	var cmds []*redis.Cmd
	for _, t := range tags {
		ks := NewKeyspace(r.proj.Name(), gen, t)
		w := b.W(t)
		var tagMax eventstore.Position
		for _, ev := range byTag[t] {
			tagMax = max(tagMax, ev.Position)
		}
		w.HSet(ks.Key("meta"), "checkpoint", tagMax.String())
		args := []any{0}
		n := 0
		for s, g := range guards[t] {
			if g.next == "" {
				continue
			}
			args = append(args, s, g.expected, g.next)
			n++
		}
		if n == 0 {
			continue
		}
		args[0] = n
		args = append(args, len(w.checks)/3)
		args = append(args, w.checks...)
		args = append(args, w.nops)
		args = append(args, w.args...)
		cmds = append(cmds, r.script.EvalSha(ctx, pipe, append([]string{ks.Guard()}, w.keys...), args...))
	}
	_, err := pipe.Exec(ctx)
	if err != nil && strings.Contains(err.Error(), "NOSCRIPT") {
		if err := r.script.Load(ctx, r.rdb).Err(); err != nil {
			return fmt.Errorf("load script: %w", err)
		}
		return errGuardMoved // retry the whole batch with the script loaded
	}
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	moved := false
	for _, c := range cmds {
		if v, _ := c.Int(); v != 1 {
			moved = true
		}
	}
	if moved {
		return errGuardMoved
	}
	for {
		cur := r.checkpoint.Load()
		if uint64(maxPos) <= cur || r.checkpoint.CompareAndSwap(cur, uint64(maxPos)) {
			break
		}
	}
	r.applied.Add(uint64(len(b.Events)))
	r.batches.Add(1)
	return nil
}

// AppliedVersion returns the last applied resource version of a stream under
// tag in the live generation (0 when none): the read-your-writes check.
func (r *Runner) AppliedVersion(ctx context.Context, tag, stream string) (uint64, error) {
	v, err := r.rdb.HGet(ctx, NewKeyspace(r.proj.Name(), r.gen.Load(), tag).Guard(), stream).Uint64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return v, err
}

// GenerationRefresh is how often an idle runner re-reads the live
// generation, so queries move to a rebuilt generation even when no events
// flow. A rebuild waits longer than this before dropping the old one.
const GenerationRefresh = time.Second

func (r *Runner) followGeneration(ctx context.Context) {
	t := time.NewTicker(GenerationRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = r.Refresh(ctx)
		}
	}
}
