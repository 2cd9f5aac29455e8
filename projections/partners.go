package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
)

const timeFormat = time.RFC3339Nano

// Partners keeps the partner read model of each program:
//
//	partner:<id>         hash   doc (the partner as the API shows it, JSON),
//	                            state (the domain state it folds onto, JSON), country
//	partners             zset   every partner ID, score 0 (lexical order = by ID)
//	due                  zset   partner IDs by the time (unix ms) of their next
//	                            time-based contract transition, for the scheduler
//
// and the list screen's indexes (filters, sorts, n-gram search), described
// in partner_index.go, kept up to date by comparing the index entries
// derived from a partner's state before and after each event.
type Partners struct{}

// Name implements Projection.
func (Partners) Name() string { return "partners" }

// Layout implements Layouted (see PartnersLayout).
func (Partners) Layout() int { return PartnersLayout }

// Topics implements Projection.
func (Partners) Topics() []string { return []string{"partnerd.partners"} }

// Tag implements Projection: one program's keys share a slot.
func (Partners) Tag(e Event) string { return e.Program }

// PartnerView is a partner as the API shows it.
type PartnerView struct {
	PartnerID string `json:"partner_id"`
	Version   uint64 `json:"version"`
	domain.Profile
	Email             string                 `json:"email,omitempty"`
	ContactNames      []string               `json:"contact_names,omitempty"`
	Address           string                 `json:"address,omitempty"`
	ProspectStage     string                 `json:"prospect_stage"`
	RelationshipStage string                 `json:"relationship_stage"`
	ContractStatus    *string                `json:"contract_status"`
	Contract          *domain.ContractState  `json:"contract"`
	ContractHistory   []domain.ContractState `json:"contract_history,omitempty"`
	DateJoined        *time.Time             `json:"date_joined"`
	DeactivatedAt     *time.Time             `json:"deactivated_at,omitempty"`
	Groups            []string               `json:"groups"`
	AssignedTo        *string                `json:"assigned_to"`
	SignupSource      string                 `json:"signup_source,omitempty"`
	Settings          domain.Settings        `json:"settings"`
	Links             []domain.AccountLink   `json:"links"`
	CreatedAt         time.Time              `json:"created_at"`
	UpdatedAt         time.Time              `json:"updated_at"`
}

// ViewOf renders a partner state as the API shows it, with the derived
// contract status, relationship stage and prospect stage.
func ViewOf(s domain.PartnerState, version uint64) PartnerView {
	v := PartnerView{PartnerID: s.PartnerID, Version: version, Profile: s.Profile, Email: s.Personal.Email,
		ContactNames: s.Personal.ContactNames, Address: s.Personal.Address, ProspectStage: domain.ProspectStageOf(s),
		RelationshipStage: domain.RelationshipStage(s), Contract: s.Contract, ContractHistory: s.ContractHistory,
		DateJoined: s.DateJoined, DeactivatedAt: s.DeactivatedAt, Groups: s.Groups,
		SignupSource: s.SignupSource, Settings: s.Settings, Links: s.Links,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
	if st := domain.ContractStatus(s); st != "" {
		v.ContractStatus = &st
	}
	if s.AssignedTo != "" {
		v.AssignedTo = &s.AssignedTo
	}
	if v.Links == nil {
		v.Links = []domain.AccountLink{}
	}
	return v
}

// Plan implements Projection. It folds each partner's events onto its
// current state (read once per batch), then writes each changed partner
// once: its hash as of its last event in the batch, and the index changes
// from its state before the batch to its state after it, merged per key
// across the batch's partners (see indexWrites).
func (p Partners) Plan(ctx context.Context, rd redis.Cmdable, b *Batch) error {
	f := newPartnerFold()
	for _, e := range b.Events {
		if err := f.Add(e); err != nil {
			return err
		}
	}
	_, err := f.Plan(ctx, rd, b, len(f.order))
	return err
}

// NewFold implements Folder: a rebuild folds every partner's events in
// memory and writes each partner once, with the same writes Plan makes for
// a batch holding all of them.
func (Partners) NewFold() Fold { return newPartnerFold() }

// partnerFold is the per-partner state Plan and a rebuild fold events onto.
// A partner whose first event here is not its creation starts from the
// state stored in Redis, read (pipelined) when it is planned; its events
// wait until then.
type partnerFold struct {
	cur   map[string]*foldedPartner
	order []string // streams in first-event order
}

type foldedPartner struct {
	program string
	state   domain.Partner
	version uint64
	due     bool // a contract event: the due time may have moved
	// load: the start state is in Redis, not read yet; its events wait
	// for that read. Apart, since a rebuild holds many folded partners
	// and few of them need a read.
	load *pendingPartner
}

type pendingPartner struct{ events []domain.Event }

func newPartnerFold() *partnerFold { return &partnerFold{cur: map[string]*foldedPartner{}} }

// Add implements Fold.
func (f *partnerFold) Add(e Event) error {
	ev, err := domain.DecodeEvent(e.Type, e.Schema, e.Data)
	if err != nil {
		return err
	}
	c := f.cur[e.Stream]
	if c == nil {
		c = &foldedPartner{program: e.Program}
		if e.Type != domain.TypePartnerCreated {
			c.load = &pendingPartner{}
		}
		f.cur[e.Stream] = c
		f.order = append(f.order, e.Stream)
	}
	if c.load != nil {
		c.load.events = append(c.load.events, ev)
	} else {
		c.state.Apply(ev)
	}
	c.version = e.Version
	if strings.HasPrefix(e.Type, "partner.contract_") || e.Type == "partner.deactivated" {
		c.due = true
	}
	return nil
}

// Streams implements Fold.
func (f *partnerFold) Streams() int { return len(f.order) }

// Plan implements Fold: it plans the first max partners folded (reading
// the stored state of those that need it) and forgets them.
func (f *partnerFold) Plan(ctx context.Context, rd redis.Cmdable, b *Batch, max int) (bool, error) {
	streams := f.order[:min(max, len(f.order))]
	f.order = f.order[len(streams):]
	pipe := rd.Pipeline()
	docs := map[string]*redis.SliceCmd{}
	for _, stream := range streams {
		if c := f.cur[stream]; c.load != nil {
			docs[stream] = pipe.HMGet(ctx, b.Keys(c.program).Key("partner", partnerID(c.program, stream)), "state")
		}
	}
	if len(docs) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return false, fmt.Errorf("read partners: %w", err)
		}
	}
	index := map[string]*indexWrites{}
	for _, stream := range streams {
		c := f.cur[stream]
		delete(f.cur, stream)
		var start partnerIndex // index entries before the fold
		if cmd := docs[stream]; cmd != nil {
			if s, ok := cmd.Val()[0].(string); ok && s != "" {
				var st domain.PartnerState
				if err := gojson.Unmarshal([]byte(s), &st); err != nil {
					return false, fmt.Errorf("partner state of %s: %w", stream, err)
				}
				c.state = domain.RestorePartner(st)
				start = indexOf(b.Keys(c.program), st)
			}
			for _, ev := range c.load.events {
				c.state.Apply(ev)
			}
		}
		st := c.state.State()
		ks := b.Keys(c.program)
		w := b.W(c.program)
		id := st.PartnerID
		docJSON, _ := marshal(ViewOf(st, c.version), st)
		stateJSON, _ := marshal(st, st)
		w.HSet(ks.Key("partner", id), "doc", string(docJSON), "state", string(stateJSON),
			"country", st.Profile.Country, "version", strconv.FormatUint(c.version, 10))
		if c.due {
			if _, when, ok := domain.NextDue(st); ok {
				w.ZAdd(ks.Key("due"), float64(when.UnixMilli()), id)
			} else {
				w.ZRem(ks.Key("due"), id)
			}
		}
		iw := index[c.program]
		if iw == nil {
			iw = &indexWrites{}
			index[c.program] = iw
		}
		iw.diff(ks, id, start, indexOf(ks, st))
	}
	for program, iw := range index {
		iw.flush(b.W(program))
	}
	return len(f.order) > 0, nil
}

// partnerIDOf extracts the partner ID from an event's stream.
func partnerIDOf(e Event) string { return partnerID(e.Program, e.Stream) }

// partnerID extracts the partner ID from a stream "partner-<program>-<id>".
func partnerID(program, stream string) string {
	return strings.TrimPrefix(stream, domain.CategoryPartner+"-"+program+"-")
}

// Categories implements Folder.
func (Partners) Categories() []string { return []string{domain.CategoryPartner} }

// marshal encodes a partner's document or state as encoding/json does,
// with goccy/go-json (about twice as fast here) when that gives the same
// bytes. It does unless a map key needs escaping: goccy/go-json orders
// such keys by their escaped form. The only map is the custom fields,
// whose names the domain keeps to ValidEntityID (plain ASCII above '"');
// a state that somehow holds another name goes through encoding/json.
// TestFastJSONWritesWhatEncodingJSONWrites checks both.
func marshal(v any, st domain.PartnerState) ([]byte, error) {
	for name := range st.Profile.CustomFields {
		if !domain.ValidEntityID(name) {
			return json.Marshal(v)
		}
	}
	return gojson.Marshal(v)
}
