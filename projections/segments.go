package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
)

// Segments keeps each program's segments and their live membership:
//
//	segdoc:<id>      hash   doc (SegmentView JSON); gone once deleted
//	segs             zset   live segment IDs, score 0 (lexical order)
//	conds            hash   segment ID → conditions JSON (live segments)
//	deleted          set    deleted segment IDs (for Reconcile)
//	members:<id>     zset   the segment's members, score 0 (lexical order)
//	pseg:<partner>   set    the segments the partner is in
//	pstate:<partner> string the partner's state (personal data, settings,
//	                        links and contract history left out) to fold its events
//	facts            hash   partner ID → its domain.PartnerFacts (compact)
//	epoch            hash   defs, facts: a new random token written by every
//	                        batch that changes segment conditions / partner facts
//
// Invariant (once caught up): members:<s> = the partners whose facts match
// s's conditions, by domain's one evaluator (Conditions.Matcher). A partner
// event re-evaluates only that partner against the program's segments; a
// segment created or changed is recomputed over every partner's facts.
// Within a process the runner applies one batch at a time (Workers = 1 for
// this projection); across processes each batch checks the epoch token it
// planned against (Writes.Check), so a partner change and a condition
// change applied concurrently by two consumers cannot both miss each other.
//
// The process caches each program's compiled conditions and, once a
// recompute needed them, every partner's facts. A cache entry is valid
// while epoch holds the token it was read at; a batch stages what it
// changed under its new token, and the next batch adopts it only if Redis
// holds that token (its batch committed and nobody wrote since), else it
// reads from Redis again.
//
// Membership events. Each change of the set is announced, in the same atomic
// step, into keys outside the generations (so a rebuild does not repeat
// them), tagged by program (OutKeys):
//
//	ann:<id>   set     the members downstream has been told about
//	seq:<id>   string  how many membership events the segment has had
//	outbox     list    "<seq>|enter|<payload>" / "<seq>|leave|<payload>"
//
// An entry is written only when ann changes, so a redelivered or replayed
// event (skipped by the version guard, or finding ann already in that
// state) never repeats one. SegmentOutbox appends the entries to the
// segment's members stream at expected version seq-2 with an ID derived from
// (program, segment, seq): a crash between append and trim repeats the
// append, which fails on the version and is dropped as done. A rebuild
// replays without announcing and then Reconcile emits exactly the
// difference between ann and the rebuilt membership.
type Segments struct {
	mu    sync.Mutex
	cache map[string]*progCache // by generation and program
	owner string                // this instance's recompute lock value
	// Restorer, when set, gives Reconcile what downstream was told about a
	// segment whose announcement state Redis lost (SegmentOutbox does it
	// from the members stream). Without it a Redis that lost its data
	// makes Reconcile announce every member again.
	Restorer interface {
		RestoreIfLost(ctx context.Context, program, segment string) (bool, error)
	}
}

// NewSegments makes the segments projection.
func NewSegments() *Segments { return &Segments{cache: map[string]*progCache{}, owner: newToken()} }

// RecomputeLockTTL bounds how long a crashed recompute blocks a program's
// partner batches on other instances.
const RecomputeLockTTL = 15 * time.Second

// lockWait bounds how long a batch waits for another instance's recompute.
const lockWait = 10 * time.Second

// lock takes the program's recompute lock (or confirms this instance holds
// it), waiting while another instance holds it. With hold false it only
// waits until nobody else holds it.
func (s *Segments) lock(ctx context.Context, rd redis.Cmdable, key string, hold bool) error {
	deadline := time.Now().Add(lockWait)
	for {
		var cur string
		var err error
		if hold {
			var ok bool
			ok, err = rd.SetNX(ctx, key, s.owner, RecomputeLockTTL).Result()
			if err == nil && ok {
				return nil
			}
		}
		if err == nil {
			cur, err = rd.Get(ctx, key).Result()
		}
		switch {
		case errors.Is(err, redis.Nil):
			if !hold {
				return nil
			}
		case err != nil:
			return fmt.Errorf("segments recompute lock: %w", err)
		case cur == s.owner:
			if hold {
				return rd.PExpire(ctx, key, RecomputeLockTTL).Err()
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("segments: another instance holds the recompute lock of %s", key)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// progCache is what the process keeps of one program of one generation.
type progCache struct {
	defs       *segDefs
	facts      map[string]domain.PartnerFacts // nil until a recompute loads them
	factsToken string
	// Staged by the last batch, adopted if its token is in Redis next time.
	pendDefs       *segDefs
	pendFacts      map[string]domain.PartnerFacts
	pendFactsToken string
}

func newToken() string { return uuid.NewString() }

// segDefs are the live segments of a program as of an epoch.defs value;
// never mutated once cached.
type segDefs struct {
	epoch string
	ids   []string
	match map[string]*domain.Matcher
}

// Name implements Projection.
func (*Segments) Name() string { return "segments" }

// Sequential implements Sequential: one batch at a time per process.
func (*Segments) Sequential() bool { return true }

// LogOrdered implements LogOrdered: memberships and their announcements
// follow the log's order across partner and segment streams.
func (*Segments) LogOrdered() bool { return true }

// SegmentsLayout is the segments projection's key layout: 2 added the
// generation's log position (LogPosKey); a generation of layout 1 is
// rebuilt when partnerd starts.
const SegmentsLayout = 2

// Layout implements Layouted.
func (*Segments) Layout() int { return SegmentsLayout }

// Topics implements Projection.
func (*Segments) Topics() []string { return []string{"partnerd.partners", "partnerd.segments"} }

// Tag implements Projection.
func (*Segments) Tag(e Event) string { return e.Program }

// SegmentView is a segment as the API shows it.
type SegmentView struct {
	ID         string            `json:"id"`
	Version    uint64            `json:"version"`
	Name       string            `json:"name"`
	Conditions domain.Conditions `json:"conditions"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
}

// SegmentViewOf renders a segment state as the API shows it.
func SegmentViewOf(s domain.SegmentState, version uint64) SegmentView {
	return SegmentView{ID: s.ID, Version: version, Name: s.Name, Conditions: s.Conditions, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

// OutKeys are the keys of a program's membership announcements; they live
// outside the generations.
type OutKeys struct{ prefix string }

// SegmentOutKeys returns the announcement keys of a program.
func SegmentOutKeys(program string) OutKeys {
	return OutKeys{prefix: "pd:segments-out:{" + program + "}:"}
}

// Announced is the set of members downstream was told about.
func (o OutKeys) Announced(segment string) string { return o.prefix + "ann:" + segment }

// Seq counts a segment's membership events.
func (o OutKeys) Seq(segment string) string { return o.prefix + "seq:" + segment }

// Outbox is the list of membership events not yet in the log.
func (o OutKeys) Outbox() string { return o.prefix + "outbox" }

// announcement is the payload of an outbox entry.
type announcement struct {
	SegmentID string `json:"segment_id"`
	PartnerID string `json:"partner_id"`
	Cause     string `json:"causation_event_id"`
	At        string `json:"at"`
}

// ActorSegments is the actor of membership events.
const ActorSegments = "system:segments"

// segProgram is what Plan works on for one program of a batch.
type segProgram struct {
	ks       Keyspace
	out      OutKeys
	w        *Writes
	epochCmd *redis.SliceCmd
	defs     *segDefs // current definitions (copied on write)
	owned    bool     // defs were copied in this batch
	states   map[string]*domain.Partner
	pseg     map[string]map[string]bool // partner → segments, for partners with events
	stateCmd map[string]*redis.StringCmd
	psegCmd  map[string]*redis.StringSliceCmd
	cache    *progCache
	mu       *sync.Mutex                    // guards cache
	epochD   string                         // epoch tokens read
	epochF   string                         //
	base     map[string]domain.PartnerFacts // all partners' stored facts (read-only), loaded on the first recompute
	newFacts map[string]domain.PartnerFacts // facts changed in this batch
	members  map[string]map[string]bool     // segment → members, loaded on demand
	changedF bool                           // some partner's facts changed
	changedD bool                           // segment definitions changed
	replay   bool
}

// Plan implements Projection.
func (s *Segments) Plan(ctx context.Context, rd redis.Cmdable, b *Batch) error {
	// A batch that recomputes a program's segments holds its recompute
	// lock, so that no other instance changes partner facts under the
	// recompute (their commits check the lock is free); others wait for it.
	recompute := map[string]bool{}
	seen := map[string]bool{}
	for _, e := range b.Events {
		switch e.Type {
		case domain.TypeSegmentCreated, domain.TypeSegmentConditionsChanged, domain.TypeSegmentDeleted:
			recompute[e.Program] = true
		}
	}
	for _, e := range b.Events {
		if !seen[e.Program] {
			seen[e.Program] = true
			if err := s.lock(ctx, rd, b.Keys(e.Program).Key("recompute"), recompute[e.Program]); err != nil {
				return err
			}
		}
	}
	progs := map[string]*segProgram{}
	var order []string
	pipe := rd.Pipeline()
	for _, e := range b.Events {
		p := progs[e.Program]
		if p == nil {
			ks := b.Keys(e.Program)
			p = &segProgram{ks: ks, out: SegmentOutKeys(e.Program), w: b.W(e.Program), states: map[string]*domain.Partner{},
				pseg: map[string]map[string]bool{}, stateCmd: map[string]*redis.StringCmd{}, psegCmd: map[string]*redis.StringSliceCmd{},
				members: map[string]map[string]bool{}, newFacts: map[string]domain.PartnerFacts{}, replay: b.Replay, mu: &s.mu}
			p.epochCmd = pipe.HMGet(ctx, ks.Key("epoch"), "defs", "facts")
			progs[e.Program] = p
			order = append(order, e.Program)
		}
		if domain.Category(e.Stream) == domain.CategoryPartner {
			id := partnerIDOf(e)
			if p.stateCmd[id] == nil {
				p.stateCmd[id] = pipe.Get(ctx, p.ks.Key("pstate", id))
				p.psegCmd[id] = pipe.SMembers(ctx, p.ks.Key("pseg", id))
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read segments state: %w", err)
	}
	for _, prog := range order {
		p := progs[prog]
		var err error
		if p.defs, err = s.defs(ctx, rd, b.Gen, prog, p); err != nil {
			return err
		}
		for id, cmd := range p.stateCmd {
			pa := &domain.Partner{}
			if raw, err := cmd.Result(); err == nil && raw != "" {
				var st domain.PartnerState
				if err := json.Unmarshal([]byte(raw), &st); err != nil {
					return fmt.Errorf("partner state of %s: %w", id, err)
				}
				r := domain.RestorePartner(st)
				pa = &r
			}
			p.states[id] = pa
			p.pseg[id] = map[string]bool{}
			for _, sid := range p.psegCmd[id].Val() {
				p.pseg[id][sid] = true
			}
		}
	}
	for _, e := range b.Events {
		p := progs[e.Program]
		ev, err := domain.DecodeEvent(e.Type, e.Schema, e.Data)
		if err != nil {
			return err
		}
		switch ev := ev.(type) {
		case domain.SegmentCreated:
			if err := p.setConditions(ctx, rd, e, ev.SegmentID, ev.Conditions); err != nil {
				return err
			}
			p.doc(e, ev.SegmentID, domain.SegmentState{ID: ev.SegmentID, ProgramID: ev.ProgramID, Name: ev.Name,
				Conditions: ev.Conditions, CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt})
			p.w.ZAdd(p.ks.Key("segs"), 0, ev.SegmentID)
		case domain.SegmentConditionsChanged:
			if err := p.setConditions(ctx, rd, e, ev.SegmentID, ev.Conditions); err != nil {
				return err
			}
			if err := p.patchDoc(ctx, rd, e, ev.SegmentID, func(v *SegmentView) { v.Conditions, v.UpdatedAt = ev.Conditions, ev.ChangedAt }); err != nil {
				return err
			}
		case domain.SegmentRenamed:
			if err := p.patchDoc(ctx, rd, e, ev.SegmentID, func(v *SegmentView) { v.Name, v.UpdatedAt = ev.Name, ev.RenamedAt }); err != nil {
				return err
			}
		case domain.SegmentDeleted:
			if err := p.deleteSegment(ctx, rd, e, ev.SegmentID); err != nil {
				return err
			}
		case domain.SegmentPartnerEntered, domain.SegmentPartnerLeft:
			// Our own output, read back from the log: nothing to do.
		default:
			if domain.Category(e.Stream) == domain.CategoryPartner {
				p.partnerEvent(e, ev)
			}
		}
	}
	for _, prog := range order {
		p := progs[prog]
		if lockKey := p.ks.Key("recompute"); recompute[prog] {
			p.w.CheckValue(lockKey, s.owner)
			p.w.Del(lockKey)
		} else if p.changedF {
			p.w.CheckValue(lockKey, "")
		}
		s.mu.Lock()
		if p.changedF {
			// Planned against these segment definitions.
			p.w.Check(p.ks.Key("epoch"), "defs", p.epochD)
			tok := newToken()
			p.w.HSet(p.ks.Key("epoch"), "facts", tok)
			p.cache.pendFactsToken, p.cache.pendFacts = tok, p.newFacts
		}
		if p.changedD {
			// Recomputed against these partner facts.
			p.w.Check(p.ks.Key("epoch"), "facts", p.epochF)
			tok := newToken()
			p.w.HSet(p.ks.Key("epoch"), "defs", tok)
			p.defs.epoch = tok
			p.cache.pendDefs = p.defs
		}
		s.mu.Unlock()
	}
	return nil
}

// adopt brings the program's cache up to the epoch tokens just read: what
// the previous batch staged becomes current if its token is in Redis;
// anything else not at the read token is dropped.
func (s *Segments) adopt(gen int64, prog string, p *segProgram) {
	vals := p.epochCmd.Val()
	p.epochD, _ = vals[0].(string)
	p.epochF, _ = vals[1].(string)
	key := strconv.FormatInt(gen, 10) + "\x00" + prog
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cache[key]
	if c == nil {
		c = &progCache{}
		s.cache[key] = c
	}
	if c.pendDefs != nil && c.pendDefs.epoch == p.epochD {
		c.defs = c.pendDefs
	}
	if c.defs != nil && c.defs.epoch != p.epochD {
		c.defs = nil
	}
	if c.facts != nil && c.pendFacts != nil && c.pendFactsToken == p.epochF {
		for id, f := range c.pendFacts {
			c.facts[id] = f
		}
		c.factsToken = p.epochF
	}
	if c.facts != nil && c.factsToken != p.epochF {
		c.facts = nil
	}
	c.pendDefs, c.pendFacts, c.pendFactsToken = nil, nil, ""
	p.cache = c
	p.base = c.facts
}

// defs returns the program's live segment definitions, from the cache when
// epoch.defs has not moved since they were read.
func (s *Segments) defs(ctx context.Context, rd redis.Cmdable, gen int64, prog string, p *segProgram) (*segDefs, error) {
	s.adopt(gen, prog, p)
	epoch := p.epochD
	s.mu.Lock()
	d := p.cache.defs
	s.mu.Unlock()
	if d != nil {
		return d, nil
	}
	all, err := rd.HGetAll(ctx, p.ks.Key("conds")).Result()
	if err != nil {
		return nil, fmt.Errorf("read segment conditions: %w", err)
	}
	d = &segDefs{epoch: epoch, match: map[string]*domain.Matcher{}}
	for id, raw := range all {
		var c domain.Conditions
		if err := json.Unmarshal([]byte(raw), &c); err != nil {
			return nil, fmt.Errorf("conditions of segment %s: %w", id, err)
		}
		d.ids = append(d.ids, id)
		d.match[id] = c.Matcher()
	}
	slices.Sort(d.ids)
	s.mu.Lock()
	p.cache.defs = d
	s.mu.Unlock()
	return d, nil
}

func (p *segProgram) own() {
	if p.owned {
		return
	}
	d := &segDefs{ids: slices.Clone(p.defs.ids), match: map[string]*domain.Matcher{}}
	for k, v := range p.defs.match {
		d.match[k] = v
	}
	p.defs, p.owned = d, true
}

func (p *segProgram) doc(e Event, id string, st domain.SegmentState) {
	raw, _ := json.Marshal(SegmentViewOf(st, e.Version))
	p.w.HSet(p.ks.Key("segdoc", id), "doc", string(raw))
}

func (p *segProgram) patchDoc(ctx context.Context, rd redis.Cmdable, e Event, id string, f func(*SegmentView)) error {
	// A doc planned earlier in this batch (the segment created, renamed or
	// given conditions by an earlier event of it) is newer than Redis's.
	raw, planned := p.plannedDoc(id)
	var err error
	if !planned {
		raw, err = rd.HGet(ctx, p.ks.Key("segdoc", id), "doc").Result()
		if errors.Is(err, redis.Nil) {
			raw, err = "{}", nil
		}
	}
	if err != nil {
		return fmt.Errorf("read segment %s: %w", id, err)
	}
	var v SegmentView
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return fmt.Errorf("segment %s doc: %w", id, err)
	}
	f(&v)
	v.Version = e.Version
	out, _ := json.Marshal(v)
	p.w.HSet(p.ks.Key("segdoc", id), "doc", string(out))
	return nil
}

// plannedDoc finds the last doc planned for a segment in this batch.
func (p *segProgram) plannedDoc(id string) (string, bool) {
	key := p.ks.Key("segdoc", id)
	idx, ok := p.w.keyIdx[key]
	if !ok {
		return "", false
	}
	doc, found := "", false
	for i := 0; i < len(p.w.args); {
		cmd, k, na := p.w.args[i].(string), p.w.args[i+1].(int), p.w.args[i+2].(int)
		if cmd == "HSET" && k == idx && na == 2 {
			doc, found = p.w.args[i+4].(string), true
		}
		i += 3 + na
	}
	return doc, found
}

// setConditions stores a segment's conditions and recomputes its membership.
func (p *segProgram) setConditions(ctx context.Context, rd redis.Cmdable, e Event, id string, c domain.Conditions) error {
	raw, _ := json.Marshal(c)
	p.w.HSet(p.ks.Key("conds"), id, string(raw))
	p.own()
	if !slices.Contains(p.defs.ids, id) {
		p.defs.ids = append(p.defs.ids, id)
		slices.Sort(p.defs.ids)
	}
	m := c.Matcher()
	p.defs.match[id] = m
	p.changedD = true
	if err := p.loadFacts(ctx, rd); err != nil {
		return err
	}
	members, err := p.loadMembers(ctx, rd, id)
	if err != nil {
		return err
	}
	// Collect the moves, then plan them in partner ID order so the
	// membership events of a recompute come in a stable order.
	moves := map[string]bool{}
	for pid, f := range p.base {
		if nf, ok := p.newFacts[pid]; ok {
			f = nf
		}
		if in := m.Match(&f); in != members[pid] {
			moves[pid] = in
		}
	}
	for pid, f := range p.newFacts {
		if _, ok := p.base[pid]; ok {
			continue
		}
		if in := m.Match(&f); in != members[pid] {
			moves[pid] = in
		}
	}
	for _, pid := range slices.Sorted(maps.Keys(moves)) {
		p.move(e, id, pid, moves[pid])
	}
	var gone []string
	for pid := range members {
		_, inBase := p.base[pid]
		if _, inNew := p.newFacts[pid]; !inBase && !inNew {
			gone = append(gone, pid)
		}
	}
	slices.Sort(gone)
	for _, pid := range gone {
		p.move(e, id, pid, false)
	}
	return nil
}

func (p *segProgram) deleteSegment(ctx context.Context, rd redis.Cmdable, e Event, id string) error {
	members, err := p.loadMembers(ctx, rd, id)
	if err != nil {
		return err
	}
	for _, pid := range slices.Sorted(func(yield func(string) bool) {
		for pid := range members {
			if !yield(pid) {
				return
			}
		}
	}) {
		p.move(e, id, pid, false)
	}
	p.own()
	p.defs.ids = slices.DeleteFunc(p.defs.ids, func(s string) bool { return s == id })
	delete(p.defs.match, id)
	p.changedD = true
	p.w.HDel(p.ks.Key("conds"), id)
	p.w.Del(p.ks.Key("segdoc", id))
	p.w.ZRem(p.ks.Key("segs"), id)
	p.w.SAdd(p.ks.Key("deleted"), id)
	return nil
}

// move plans a partner entering (in) or leaving a segment.
func (p *segProgram) move(e Event, seg, pid string, in bool) {
	if m := p.members[seg]; m != nil {
		if in {
			m[pid] = true
		} else {
			delete(m, pid)
		}
	}
	if ps := p.pseg[pid]; ps != nil {
		if in {
			ps[seg] = true
		} else {
			delete(ps, seg)
		}
	}
	if in {
		p.w.ZAdd(p.ks.Key("members", seg), 0, pid)
		p.w.SAdd(p.ks.Key("pseg", pid), seg)
	} else {
		p.w.ZRem(p.ks.Key("members", seg), pid)
		p.w.SRem(p.ks.Key("pseg", pid), seg)
	}
	if p.replay {
		return // Reconcile announces after a rebuild
	}
	payload, _ := json.Marshal(announcement{SegmentID: seg, PartnerID: pid, Cause: e.ID, At: e.RecordedAt.UTC().Format(timeFormat)})
	p.w.Announce(p.out.Announced(seg), p.out.Seq(seg), p.out.Outbox(), pid, in, string(payload))
}

func (p *segProgram) loadFacts(ctx context.Context, rd redis.Cmdable) error {
	if p.base != nil {
		return nil
	}
	all, err := rd.HGetAll(ctx, p.ks.Key("facts")).Result()
	if err != nil {
		return fmt.Errorf("read partner facts: %w", err)
	}
	base := make(map[string]domain.PartnerFacts, len(all))
	for pid, raw := range all {
		f, err := DecodePartnerFacts(raw)
		if err != nil {
			return fmt.Errorf("facts of %s: %w", pid, err)
		}
		base[pid] = f
	}
	// Partners changed earlier in this batch are in newFacts. The facts
	// are as of the token read (or newer: then this batch's check fails
	// and the next one drops them).
	p.base = base
	p.mu.Lock()
	p.cache.facts, p.cache.factsToken = base, p.epochF
	p.mu.Unlock()
	return nil
}

func (p *segProgram) loadMembers(ctx context.Context, rd redis.Cmdable, seg string) (map[string]bool, error) {
	if m := p.members[seg]; m != nil {
		return m, nil
	}
	ids, err := rd.ZRange(ctx, p.ks.Key("members", seg), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read members of %s: %w", seg, err)
	}
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	// Moves planned earlier in this batch for partners with events.
	for pid, ps := range p.pseg {
		if ps[seg] {
			m[pid] = true
		} else if m[pid] {
			delete(m, pid)
		}
	}
	p.members[seg] = m
	return m, nil
}

// storedState is what the projection keeps of a partner to fold its next
// events: facts need neither personal data nor settings, links or history.
func storedState(s domain.PartnerState) domain.PartnerState {
	s.Personal = domain.Personal{}
	s.ContractHistory = nil
	s.Links = nil
	s.Settings = domain.Settings{}
	s.Profile.Description = ""
	return s
}

func (p *segProgram) partnerEvent(e Event, ev domain.Event) {
	id := partnerIDOf(e)
	pa := p.states[id]
	before := domain.FactsOf(pa.State())
	pa.Apply(ev)
	st := pa.State()
	raw, _ := json.Marshal(storedState(st))
	p.w.Set(p.ks.Key("pstate", id), string(raw))
	f := domain.FactsOf(st)
	enc := encodeFacts(f)
	if enc == encodeFacts(before) && e.Type != domain.TypePartnerCreated {
		return
	}
	p.w.HSet(p.ks.Key("facts"), id, enc)
	p.newFacts[id] = f
	p.changedF = true
	for _, seg := range p.defs.ids {
		in := p.defs.match[seg].Match(&f)
		if in != p.pseg[id][seg] {
			p.move(e, seg, id, in)
		}
	}
}

// Reconcile implements Reconciler: after a rebuild, for every segment of
// the new generation (live or deleted), announce exactly the difference
// between what downstream was told (ann) and the rebuilt membership, in one
// atomic step per segment.
func (s *Segments) Reconcile(ctx context.Context, rdb redis.UniversalClient, gen int64) error {
	s.mu.Lock()
	s.cache = map[string]*progCache{}
	s.mu.Unlock()
	programs := map[string]bool{}
	prefix := "pd:segments:g" + strconv.FormatInt(gen, 10) + ":{"
	for _, suffix := range []string{"}:segs", "}:deleted"} {
		keys, err := scanKeys(ctx, rdb, prefix+"*"+suffix)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		for _, k := range keys {
			programs[strings.TrimSuffix(strings.TrimPrefix(k, prefix), suffix)] = true
		}
	}
	script := redis.NewScript(reconcileScript)
	now := time.Now().UTC().Format(timeFormat)
	for prog := range programs {
		ks := NewKeyspace(s.Name(), gen, prog)
		out := SegmentOutKeys(prog)
		live, err := rdb.ZRange(ctx, ks.Key("segs"), 0, -1).Result()
		if err != nil {
			return err
		}
		dead, err := rdb.SMembers(ctx, ks.Key("deleted")).Result()
		if err != nil {
			return err
		}
		for _, seg := range append(live, dead...) {
			if s.Restorer != nil {
				if _, err := s.Restorer.RestoreIfLost(ctx, prog, seg); err != nil {
					return fmt.Errorf("reconcile segment %s: %w", seg, err)
				}
			}
			keys := []string{ks.Key("members", seg), out.Announced(seg), out.Seq(seg), out.Outbox()}
			if err := script.Run(ctx, rdb, keys, seg, "rebuild", now).Err(); err != nil {
				return fmt.Errorf("reconcile segment %s: %w", seg, err)
			}
		}
	}
	return nil
}

// reconcileScript: KEYS members zset, announced set, seq, outbox; ARGV
// segment ID, causation, time. IDs are entity IDs (no quotes or
// backslashes), so the JSON payload is assembled from them as data.
const reconcileScript = `
local want = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do want[m] = true end
local have = {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[2])) do have[m] = true end
local function emit(action, m)
  local seq = redis.call('INCR', KEYS[3])
  redis.call('RPUSH', KEYS[4], seq .. '|' .. action .. '|{"segment_id":"' .. ARGV[1] .. '","partner_id":"' .. m ..
    '","causation_event_id":"' .. ARGV[2] .. '","at":"' .. ARGV[3] .. '"}')
end
local n = 0
for m, _ in pairs(have) do
  if not want[m] then redis.call('SREM', KEYS[2], m); emit('leave', m); n = n + 1 end
end
for m, _ in pairs(want) do
  if not have[m] then redis.call('SADD', KEYS[2], m); emit('enter', m); n = n + 1 end
end
return n
`
