package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
)

// Appender is what the outbox needs of the event log.
type Appender interface {
	Append(ctx context.Context, stream string, expected int64, events []eventstore.EventData) (eventstore.AppendResult, error)
	ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, max int) ([]eventstore.RecordedEvent, error)
}

// SegmentOutbox moves membership announcements from Redis into the log
// (stream SegmentMembersStream, so they reach the bus like any event). It
// is safe to run on every instance at once: appends are at an exact
// expected version with stable event IDs, an entry found in the stream
// already is dropped only if the stored event is that entry, and the outbox
// is trimmed only if its head is still the entry read.
//
// If Redis loses its data (no persistence, a failover to an empty
// replica), the announced sets and seq counters are gone while the members
// streams are not: new announcements restart at seq 1 and collide with
// events already in the stream. Drain notices (an entry's seq is taken by
// a different event), never appends or drops such an entry as done, and
// restores that segment's announced set and counter from its members
// stream (restoreSegment); the entries announced against the lost state
// are discarded, and the rebuild that follows every Redis data loss (the
// epoch, app.watchEpoch) ends with Reconcile, which announces exactly the
// difference between the restored set and the rebuilt membership.
type SegmentOutbox struct {
	Redis    redis.UniversalClient
	Store    Appender
	Programs func(ctx context.Context) ([]string, error)
	Logger   *slog.Logger
	// Interval between polls when idle (default 20 ms).
	Interval time.Duration
}

// membershipNamespace derives the stable IDs of membership events.
var membershipNamespace = uuid.MustParse("5c6d1b0e-3c1a-4a53-9a43-7f0f2d1c9e61")

// MembershipEventID is the ID of a segment's seq-th membership event.
func MembershipEventID(program, segment string, seq uint64) string {
	return uuid.NewSHA1(membershipNamespace, []byte(program+"\x00"+segment+"\x00"+strconv.FormatUint(seq, 10))).String()
}

type outboxEntry struct {
	raw   string
	seq   uint64
	enter bool
	a     announcement
}

func parseOutboxEntry(raw string) (outboxEntry, error) {
	parts := strings.SplitN(raw, "|", 3)
	if len(parts) != 3 {
		return outboxEntry{}, fmt.Errorf("outbox entry %q: malformed", raw)
	}
	seq, err := strconv.ParseUint(parts[0], 10, 64)
	if err != nil || seq == 0 {
		return outboxEntry{}, fmt.Errorf("outbox entry %q: bad seq", raw)
	}
	e := outboxEntry{raw: raw, seq: seq, enter: parts[1] == "enter"}
	if err := json.Unmarshal([]byte(parts[2]), &e.a); err != nil {
		return outboxEntry{}, fmt.Errorf("outbox entry %q: %w", raw, err)
	}
	return e, nil
}

var trimScript = redis.NewScript(`
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then
  redis.call('LTRIM', KEYS[1], tonumber(ARGV[2]), -1)
  return 1
end
return 0`)

// Drain appends up to max outbox entries of a program to the log and
// removes them from the outbox. It returns how many it handled.
func (o *SegmentOutbox) Drain(ctx context.Context, program string, max int) (int, error) {
	out := SegmentOutKeys(program)
	raws, err := o.Redis.LRange(ctx, out.Outbox(), 0, int64(max)-1).Result()
	if err != nil || len(raws) == 0 {
		return 0, err
	}
	bySeg := map[string][]outboxEntry{}
	var segs []string
	for _, raw := range raws {
		e, err := parseOutboxEntry(raw)
		if err != nil {
			return 0, err
		}
		if bySeg[e.a.SegmentID] == nil {
			segs = append(segs, e.a.SegmentID)
		}
		bySeg[e.a.SegmentID] = append(bySeg[e.a.SegmentID], e)
	}
	for _, seg := range segs {
		err := o.appendEntries(ctx, program, seg, bySeg[seg])
		var dv *divergedError
		if errors.As(err, &dv) {
			// The outbox was rewritten: do not trim what was read; the next
			// drain finds the other segments' entries in the log already.
			dropped, rerr := o.restoreSegment(ctx, program, seg)
			if rerr != nil {
				return 0, fmt.Errorf("%w; restoring it: %v", err, rerr)
			}
			o.logger().Warn("segment outbox diverged from the log (Redis lost its data?): restored the segment's announced members and seq from its members stream",
				"program", program, "segment", seg, "discarded_entries", dropped, "cause", err)
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
	}
	if err := trimScript.Run(ctx, o.Redis, []string{out.Outbox()}, raws[0], len(raws)).Err(); err != nil {
		return 0, fmt.Errorf("trim outbox: %w", err)
	}
	return len(raws), nil
}

// appendEntries appends one segment's consecutive entries; what is in the
// stream already (a previous drain that crashed before trimming, or another
// instance) is skipped by the expected version.
func (o *SegmentOutbox) appendEntries(ctx context.Context, program, seg string, es []outboxEntry) error {
	stream := domain.SegmentMembersStream(program, seg)
	for len(es) > 0 {
		for i := 1; i < len(es); i++ {
			if es[i].seq != es[i-1].seq+1 {
				return fmt.Errorf("outbox of %s: seq %d follows %d", stream, es[i].seq, es[i-1].seq)
			}
		}
		data := make([]eventstore.EventData, len(es))
		for i, e := range es {
			d, err := membershipEventData(program, e)
			if err != nil {
				return err
			}
			data[i] = d
		}
		expected := int64(es[0].seq) - 2 // seq n is stream version n-1
		if es[0].seq == 1 {
			expected = eventstore.NoStream
		}
		_, err := o.Store.Append(ctx, stream, expected, data)
		var ve *eventstore.VersionError
		if !errors.As(err, &ve) {
			return err
		}
		// Actual is the version of the stream's last event: seq Actual+1
		// is in the log already.
		done := uint64(ve.Actual + 1)
		if ve.Actual < expected {
			return fmt.Errorf("outbox of %s: stream at version %d, entries start at seq %d: %w", stream, ve.Actual, es[0].seq, err)
		}
		// Only drop what really is in the stream: if Redis lost its data,
		// seq restarted and these entries are new. Then stop loudly rather
		// than lose them (see SegmentOutbox).
		n := 0
		for n < len(es) && es[n].seq <= done {
			n++
		}
		if n > 0 {
			stored, err := o.Store.ReadStream(ctx, stream, es[0].seq-1, eventstore.Forwards, n)
			if err != nil {
				return err
			}
			for i := 0; i < n; i++ {
				var m domain.SegmentMembershipChanged
				if i < len(stored) {
					_ = json.Unmarshal(stored[i].Data, &m)
				}
				want := domain.TypeSegmentPartnerLeft
				if es[i].enter {
					want = domain.TypeSegmentPartnerEntered
				}
				if i >= len(stored) || stored[i].Type != want || m.PartnerID != es[i].a.PartnerID || m.CausationEventID != es[i].a.Cause {
					return &divergedError{stream: stream, seq: es[i].seq}
				}
			}
		}
		es = es[n:]
	}
	return nil
}

// divergedError: an outbox entry's seq is taken in the members stream by a
// different event, so the outbox was numbered against lost state.
type divergedError struct {
	stream string
	seq    uint64
}

func (e *divergedError) Error() string {
	return fmt.Sprintf("outbox of %s: entry seq %d is not the event in the stream: the outbox and the log diverged (did Redis lose its data?)", e.stream, e.seq)
}

func (o *SegmentOutbox) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// RestoreIfLost restores a segment's announced set and seq counter from
// its members stream when Redis counts fewer announcements than the
// stream holds: Redis lost them (it always counts at least as many, its
// outbox holding those not appended yet). Reconcile runs it first, so it
// announces the difference against what downstream was really told, not
// against an empty set whose announcements would collide with the stream.
func (o *SegmentOutbox) RestoreIfLost(ctx context.Context, program, seg string) (bool, error) {
	last, err := o.Store.ReadStream(ctx, domain.SegmentMembersStream(program, seg), math.MaxUint64, eventstore.Backwards, 1)
	if err != nil || len(last) == 0 {
		return false, err
	}
	seq, err := o.Redis.Get(ctx, SegmentOutKeys(program).Seq(seg)).Uint64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, err
	}
	if seq > last[0].Version {
		return false, nil
	}
	dropped, err := o.restoreSegment(ctx, program, seg)
	if err != nil {
		return false, err
	}
	o.logger().Info("segment membership announcements restored from the log (Redis did not hold them: a new, emptied or embedded Redis)",
		"program", program, "segment", seg, "announced", last[0].Version+1, "redis_had", seq, "dropped_entries", dropped)
	return true, nil
}

// restoreSegment rebuilds a segment's announced set and seq counter from
// its members stream (the members downstream was told about, and how many
// events it has), and discards the segment's outbox entries, in one atomic
// step. It returns how many entries it discarded.
func (o *SegmentOutbox) restoreSegment(ctx context.Context, program, seg string) (int64, error) {
	stream := domain.SegmentMembersStream(program, seg)
	members := map[string]bool{}
	var n uint64
	for {
		page, err := o.Store.ReadStream(ctx, stream, n, eventstore.Forwards, 1000)
		if err != nil {
			return 0, err
		}
		for _, e := range page {
			var m domain.SegmentMembershipChanged
			if err := json.Unmarshal(e.Data, &m); err != nil {
				return 0, fmt.Errorf("%s version %d: %w", stream, e.Version, err)
			}
			switch e.Type {
			case domain.TypeSegmentPartnerEntered:
				members[m.PartnerID] = true
			case domain.TypeSegmentPartnerLeft:
				delete(members, m.PartnerID)
			}
		}
		n += uint64(len(page))
		if len(page) < 1000 {
			break
		}
	}
	out := SegmentOutKeys(program)
	args := make([]any, 0, len(members)+2)
	args = append(args, n, seg)
	for m := range members {
		args = append(args, m)
	}
	return restoreScript.Run(ctx, o.Redis, []string{out.Announced(seg), out.Seq(seg), out.Outbox()}, args...).Int64()
}

// restoreScript: KEYS announced set, seq, outbox; ARGV the members stream's
// event count, the segment ID, then the members. Outbox entries are
// "<seq>|<action>|<JSON payload>"; those of other segments stay, in order.
var restoreScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 1000 do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('SET', KEYS[2], ARGV[1])
local keep, dropped = {}, 0
for _, e in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
  local a = string.find(e, '|', 1, true)
  local b = a and string.find(e, '|', a + 1, true)
  local ok, m = false, nil
  if b then ok, m = pcall(cjson.decode, string.sub(e, b + 1)) end
  if ok and type(m) == 'table' and m.segment_id == ARGV[2] then
    dropped = dropped + 1
  else
    table.insert(keep, e)
  end
end
if dropped > 0 then
  redis.call('DEL', KEYS[3])
  for i = 1, #keep, 1000 do
    redis.call('RPUSH', KEYS[3], unpack(keep, i, math.min(i + 999, #keep)))
  end
end
return dropped`)

func membershipEventData(program string, e outboxEntry) (eventstore.EventData, error) {
	at, _ := time.Parse(timeFormat, e.a.At)
	m := domain.SegmentMembershipChanged{SegmentID: e.a.SegmentID, ProgramID: program, PartnerID: e.a.PartnerID,
		Seq: e.seq, CausationEventID: e.a.Cause, At: at}
	var ev domain.Event = domain.SegmentPartnerLeft(m)
	if e.enter {
		ev = domain.SegmentPartnerEntered(m)
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return eventstore.EventData{}, err
	}
	md, _ := json.Marshal(map[string]any{"schema": domain.SchemaVersion, "program": program, "actor": ActorSegments,
		"causation_id": e.a.Cause})
	return eventstore.EventData{ID: MembershipEventID(program, e.a.SegmentID, e.seq), Type: ev.EventType(), Data: data, Metadata: md}, nil
}

// Run drains every program's outbox until ctx ends.
func (o *SegmentOutbox) Run(ctx context.Context) {
	interval := o.Interval
	if interval <= 0 {
		interval = 20 * time.Millisecond
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	for {
		busy := false
		progs, err := o.Programs(ctx)
		if err == nil {
			for _, p := range progs {
				n, err := o.Drain(ctx, p, 1000)
				if err != nil {
					if ctx.Err() == nil {
						logger.Warn("segment outbox drain failed; will retry", "program", p, "err", err)
					}
					break
				}
				busy = busy || n > 0
			}
		}
		if busy {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
