package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
)

// PartnerDirectory tells which partners exist, cheaply (the partner list
// read model), without loading aggregates.
type PartnerDirectory interface {
	PartnersExist(ctx context.Context, program string, ids []string) (map[string]bool, error)
}

// MaxActivityBatch is the most activities one call records.
const MaxActivityBatch = 1000

// Activity outcome statuses.
const (
	ActivityAccepted  = "accepted"
	ActivityDuplicate = "duplicate"
	ActivityRejected  = "error"
)

// ActivityOutcome is what happened to one activity of a call.
type ActivityOutcome struct {
	Index    int
	Status   string // ActivityAccepted, ActivityDuplicate or ActivityRejected
	Activity domain.ActivityRecorded
	Position eventstore.Position
	// Version is the resource version of the partner's activity stream
	// after this activity (0 for a duplicate or an error).
	Version uint64
	Err     error // a *domain.ValidationError when rejected
	// Replayed: an earlier attempt of this request (same Idempotency-Key
	// and body) recorded the activity, which had no activity_id of its
	// own; it is reported as that attempt did (accepted), at its position.
	Replayed bool
}

// RecordActivitiesHandler records partner activities: validate (an
// occurred_at older than Deps.ActivityMaxAge is a field error), check the
// partners exist (read model first, the log for misses), then append
// without loading anything, to each partner's activity stream, with
// expected version "any". The event ID is derived from the program and
// activity_id, and the store drops IDs it holds already, so a re-sent
// activity is dropped before it reaches the log, the bus or a projection.
type RecordActivitiesHandler struct {
	d Deps
}

// activityNamespace scopes activity event IDs (UUIDv5 of program and activity_id).
var activityNamespace = uuid.MustParse("5b0f1f4e-7a57-4c43-9d0e-4b1c2a2f7a11")

// ActivityEventID is the event ID of an activity: the same for every re-send.
func ActivityEventID(program, activityID string) string {
	return uuid.NewSHA1(activityNamespace, []byte(program+"\x00"+activityID)).String()
}

// Handle records items; bad ones are reported by index and the good ones
// kept. It fails as a whole only when the store or the directory does.
func (h *RecordActivitiesHandler) Handle(ctx context.Context, program string, items []domain.NewActivity, meta Meta) ([]ActivityOutcome, Result, error) {
	now := h.d.Now().UTC()
	out := make([]ActivityOutcome, len(items))
	var partners []string
	seen := map[string]bool{}
	for i, in := range items {
		a, err := in.Validate(now, h.d.ActivityMaxAge)
		out[i] = ActivityOutcome{Index: i, Status: ActivityAccepted, Err: err,
			Activity: domain.ActivityRecorded{ProgramID: program, Activity: a, RecordedAt: now}}
		if err != nil {
			out[i].Status = ActivityRejected
			continue
		}
		if !seen[a.PartnerID] {
			seen[a.PartnerID] = true
			partners = append(partners, a.PartnerID)
		}
	}
	exists, err := h.partnersExist(ctx, program, partners)
	if err != nil {
		return nil, Result{}, err
	}
	// Each activity took effect when the partner did it (its occurred_at),
	// which its metadata says as every event's does; the rest of the
	// metadata is the batch's, encoded once.
	base, err := json.Marshal(EventMeta{Schema: domain.SchemaVersion, Program: program, Actor: meta.Actor,
		CorrelationID: meta.CorrelationID, CausationID: meta.CausationID, IdempotencyKey: meta.IdempotencyKey})
	if err != nil {
		return nil, Result{}, err
	}
	var evs []eventstore.StreamEvent
	var idx []int
	keyed := make([]bool, len(out)) // the activity_id was derived from the Idempotency-Key
	for i := range out {
		o := &out[i]
		if o.Status != ActivityAccepted {
			continue
		}
		if !exists[o.Activity.PartnerID] {
			o.Status, o.Err = ActivityRejected, &domain.ValidationError{Fields: []domain.FieldError{{Field: "partner_id", Message: "no such partner in this program"}}}
			continue
		}
		if o.Activity.ActivityID == "" {
			// Under an Idempotency-Key the ID is derived from the key (which
			// names the body) and the item's place, so a retry whose first
			// answer was lost (a crash, Redis losing the stored answers)
			// finds the activities the first attempt recorded instead of
			// recording them again.
			if meta.IdempotencyKey != "" {
				o.Activity.ActivityID = keyedActivityID(program, meta.IdempotencyKey, i)
				keyed[i] = true
			} else {
				o.Activity.ActivityID = h.d.NewID()
			}
		}
		data, err := json.Marshal(o.Activity)
		if err != nil {
			return nil, Result{}, fmt.Errorf("encode activity: %w", err)
		}
		evs = append(evs, eventstore.StreamEvent{Stream: domain.ActivityStream(program, o.Activity.PartnerID),
			EventData: eventstore.EventData{ID: ActivityEventID(program, o.Activity.ActivityID), Type: domain.TypeActivityRecorded, Data: data,
				Metadata: metaAt(base, o.Activity.OccurredAt)}})
		idx = append(idx, i)
	}
	if len(evs) == 0 {
		return out, Result{}, nil
	}
	land, err := appendUnique(ctx, h.d.Store, evs)
	if err != nil {
		return nil, Result{}, fmt.Errorf("record activities: %w", err)
	}
	var res Result
	for j, l := range land {
		o := &out[idx[j]]
		o.Position = l.Position
		if l.Duplicate {
			if o.Replayed = keyed[idx[j]]; !o.Replayed {
				o.Status = ActivityDuplicate
			}
			continue
		}
		o.Version = l.Version + 1
		res.Appended++
		if l.Position >= res.Position {
			res = Result{Stream: evs[j].Stream, Version: o.Version, Position: l.Position, Appended: res.Appended}
		}
	}
	if len(out) == 1 && out[0].Replayed {
		h.restore(ctx, program, &out[0])
	}
	return out, res, nil
}

// restore makes a replayed activity the one the first attempt recorded (its
// recorded_at, and occurred_at when the request left it to the server), so
// a single activity's retry answers what the first attempt would have. It
// looks for the event among the partner's latest 1024 activities (a retry
// comes soon after); when it is not there, the outcome stays as this
// attempt decided it.
func (h *RecordActivitiesHandler) restore(ctx context.Context, program string, o *ActivityOutcome) {
	id := ActivityEventID(program, o.Activity.ActivityID)
	evs, err := h.d.Store.ReadStream(ctx, domain.ActivityStream(program, o.Activity.PartnerID), math.MaxUint64, eventstore.Backwards, 1024)
	if err != nil {
		return
	}
	for _, e := range evs {
		var rec domain.ActivityRecorded
		if e.ID == id && json.Unmarshal(e.Data, &rec) == nil {
			o.Activity, o.Version = rec, e.Version+1
			return
		}
	}
}

// partnersExist asks the directory, then the log for the partners the
// read model does not know (yet): a partner created a moment ago is not
// refused because its projection lags.
func (h *RecordActivitiesHandler) partnersExist(ctx context.Context, program string, ids []string) (map[string]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	found := map[string]bool{}
	if h.d.Partners != nil {
		var err error
		if found, err = h.d.Partners.PartnersExist(ctx, program, ids); err != nil {
			return nil, fmt.Errorf("check partners: %w", err)
		}
	}
	for _, id := range ids {
		if found[id] {
			continue
		}
		last, err := h.d.Store.ReadStream(ctx, domain.PartnerStream(program, id), math.MaxUint64, eventstore.Backwards, 1)
		if err != nil {
			return nil, fmt.Errorf("check partner %s: %w", id, err)
		}
		found[id] = len(last) > 0
	}
	return found, nil
}

// appendUnique uses the store's AppendUnique when it has one. Otherwise
// (KurrentDB) it appends per stream with expected version "any": repeats
// are then dropped by the activity projection (keyed by activity_id) but
// still reach the log and the bus — see README.
func appendUnique(ctx context.Context, store EventStore, evs []eventstore.StreamEvent) ([]eventstore.Landing, error) {
	if ua, ok := store.(eventstore.UniqueAppender); ok {
		return ua.AppendUnique(ctx, evs)
	}
	byStream := map[string][]int{}
	var streams []string
	for i, e := range evs {
		if _, ok := byStream[e.Stream]; !ok {
			streams = append(streams, e.Stream)
		}
		byStream[e.Stream] = append(byStream[e.Stream], i)
	}
	sort.Strings(streams)
	land := make([]eventstore.Landing, len(evs))
	var errs []error
	for _, s := range streams {
		ix := byStream[s]
		data := make([]eventstore.EventData, len(ix))
		for k, i := range ix {
			data[k] = evs[i].EventData
		}
		r, err := store.Append(ctx, s, eventstore.Any, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		first := r.Version + 1 - uint64(len(ix))
		for k, i := range ix {
			// Positions of earlier events of the append are not known here;
			// the last one's is exact.
			land[i] = eventstore.Landing{Position: r.Position, Version: first + uint64(k)}
		}
	}
	return land, errors.Join(errs...)
}

// keyedActivityID is the activity_id of the i-th item of a request under
// an Idempotency-Key (the metadata's, which holds the body's fingerprint).
func keyedActivityID(program, key string, i int) string {
	return uuid.NewSHA1(activityNamespace, []byte(program+"\x00key\x00"+key+"\x00"+strconv.Itoa(i))).String()
}

// metaAt is the metadata base (EventMeta encoded without occurred_at) with
// occurred_at at, the bytes json.Marshal writes for EventMeta{…, OccurredAt: at}
// (occurred_at is its last field).
func metaAt(base []byte, at time.Time) []byte {
	md := make([]byte, 0, len(base)+48)
	md = append(md, base[:len(base)-1]...)
	md = append(md, `,"occurred_at":"`...)
	md = at.UTC().AppendFormat(md, time.RFC3339Nano)
	return append(md, `"}`...)
}
