package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

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
// current state (read once per batch) and rewrites its hash and indexes.
func (p Partners) Plan(ctx context.Context, rd redis.Cmdable, b *Batch) error {
	type current struct {
		state domain.Partner
		index partnerIndex
	}
	cur := map[string]*current{}
	// Read the current docs of partners that are updated (not created) in this batch.
	pipe := rd.Pipeline()
	docs := map[string]*redis.SliceCmd{}
	for _, e := range b.Events {
		if e.Type == domain.TypePartnerCreated || docs[e.Stream] != nil {
			continue
		}
		docs[e.Stream] = pipe.HMGet(ctx, b.Keys(e.Program).Key("partner", partnerIDOf(e)), "state")
	}
	if len(docs) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return fmt.Errorf("read partners: %w", err)
		}
	}
	for _, e := range b.Events {
		ev, err := domain.DecodeEvent(e.Type, e.Schema, e.Data)
		if err != nil {
			return err
		}
		c := cur[e.Stream]
		if c == nil {
			c = &current{}
			cur[e.Stream] = c
			if cmd := docs[e.Stream]; cmd != nil {
				vals := cmd.Val()
				if s, ok := vals[0].(string); ok && s != "" {
					var st domain.PartnerState
					if err := json.Unmarshal([]byte(s), &st); err != nil {
						return fmt.Errorf("partner state of %s: %w", e.Stream, err)
					}
					c.state = domain.RestorePartner(st)
					c.index = indexOf(b.Keys(e.Program), st)
				}
			}
		}
		c.state.Apply(ev)
		st := c.state.State()
		ks := b.Keys(e.Program)
		w := b.W(e.Program)
		id := st.PartnerID
		docJSON, _ := json.Marshal(ViewOf(st, e.Version))
		stateJSON, _ := json.Marshal(st)
		w.HSet(ks.Key("partner", id), "doc", string(docJSON), "state", string(stateJSON),
			"country", st.Profile.Country, "version", strconv.FormatUint(e.Version, 10))
		if strings.HasPrefix(e.Type, "partner.contract_") || e.Type == "partner.deactivated" {
			if _, when, ok := domain.NextDue(st); ok {
				w.ZAdd(ks.Key("due"), float64(when.UnixMilli()), id)
			} else {
				w.ZRem(ks.Key("due"), id)
			}
		}
		next := indexOf(ks, st)
		planIndex(w, ks, id, c.index, next)
		c.index = next
	}
	return nil
}

// partnerIDOf extracts the partner ID from a stream "partner-<program>-<id>".
func partnerIDOf(e Event) string {
	return strings.TrimPrefix(e.Stream, domain.CategoryPartner+"-"+e.Program+"-")
}
