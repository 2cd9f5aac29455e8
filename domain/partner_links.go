package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Event types of account links between two partners of a program.
const (
	TypePartnerAccountLinked   = "partner.account_linked"
	TypePartnerAccountUnlinked = "partner.account_unlinked"
)

// MaxAccountLinks bounds how many other partners one partner is linked to.
const MaxAccountLinks = 100

// AccountLink is a partner's link to another partner account of the program.
type AccountLink struct {
	PartnerID string    `json:"partner_id"` // the other partner
	Reason    string    `json:"reason"`
	LinkedAt  time.Time `json:"linked_at"`
}

// PartnerAccountLinked: the partner's account was linked to another
// partner's. A link is recorded on both partners, each in its own stream:
// InitiatedBy names the partner whose link request it was, so the event on
// the other partner is the mirror (InitiatedBy == LinkedPartnerID).
type PartnerAccountLinked struct {
	PartnerID       string    `json:"partner_id"`
	ProgramID       string    `json:"program_id"`
	LinkedPartnerID string    `json:"linked_partner_id"`
	InitiatedBy     string    `json:"initiated_by"`
	Reason          string    `json:"reason"`
	LinkedAt        time.Time `json:"linked_at"`
}

// PartnerAccountUnlinked: the link between the two partners was removed
// (on both, like PartnerAccountLinked).
type PartnerAccountUnlinked struct {
	PartnerID       string    `json:"partner_id"`
	ProgramID       string    `json:"program_id"`
	LinkedPartnerID string    `json:"linked_partner_id"`
	InitiatedBy     string    `json:"initiated_by"`
	Reason          string    `json:"reason,omitempty"`
	UnlinkedAt      time.Time `json:"unlinked_at"`
}

func (PartnerAccountLinked) EventType() string   { return TypePartnerAccountLinked }
func (PartnerAccountUnlinked) EventType() string { return TypePartnerAccountUnlinked }

// LinkedTo reports whether the partner is linked to the other partner.
func (p *Partner) LinkedTo(other string) bool {
	return slices.ContainsFunc(p.links, func(l AccountLink) bool { return l.PartnerID == other })
}

// Link decides linking the partner to another partner account. initiator
// is the partner whose request it is: the partner itself, or the other one
// when this is the mirror of a link recorded there. The caller checks that
// the other partner exists. Linking an already linked partner is a conflict.
func (p *Partner) Link(other, initiator, reason string, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	var pr problems
	switch {
	case other == "":
		pr.add("partner_id", "is required: the partner to link to")
	case !ValidEntityID(other):
		pr.add("partner_id", "must be a partner ID: 1-64 of letters, digits, '_', '.', ':', '-'")
	case other == p.id:
		pr.add("partner_id", "cannot link a partner to itself")
	}
	if initiator != p.id && initiator != other {
		pr.add("initiated_by", "must be one of the two linked partners")
	}
	pr.text("reason", reason, maxReasonLen, true)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if p.LinkedTo(other) {
		return nil, fmt.Errorf("partner %s is already linked to %s: %w", p.id, other, ErrConflict)
	}
	if len(p.links) >= MaxAccountLinks {
		return nil, fmt.Errorf("partner %s has %d account links, the most allowed: %w", p.id, MaxAccountLinks, ErrConflict)
	}
	return []Event{PartnerAccountLinked{PartnerID: p.id, ProgramID: p.program, LinkedPartnerID: other,
		InitiatedBy: initiator, Reason: strings.TrimSpace(reason), LinkedAt: now.UTC()}}, nil
}

// Unlink decides removing the partner's link to another partner. A link
// that does not exist is not found.
func (p *Partner) Unlink(other, initiator, reason string, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	var pr problems
	if initiator != p.id && initiator != other {
		pr.add("initiated_by", "must be one of the two linked partners")
	}
	pr.text("reason", reason, maxReasonLen, false)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if !p.LinkedTo(other) {
		return nil, fmt.Errorf("partner %s has no account link to %s: %w", p.id, other, ErrNotFound)
	}
	return []Event{PartnerAccountUnlinked{PartnerID: p.id, ProgramID: p.program, LinkedPartnerID: other,
		InitiatedBy: initiator, Reason: strings.TrimSpace(reason), UnlinkedAt: now.UTC()}}, nil
}

// linked returns the partner's links with one added (sorted by partner ID),
// never writing into the current backing array.
func (p *Partner) linked(e PartnerAccountLinked) []AccountLink {
	out := slices.DeleteFunc(slices.Clone(p.links), func(l AccountLink) bool { return l.PartnerID == e.LinkedPartnerID })
	out = append(out, AccountLink{PartnerID: e.LinkedPartnerID, Reason: e.Reason, LinkedAt: e.LinkedAt})
	slices.SortFunc(out, func(a, b AccountLink) int { return strings.Compare(a.PartnerID, b.PartnerID) })
	return out
}

// unlinked returns the partner's links without one, as a new slice (nil
// when none is left).
func (p *Partner) unlinked(other string) []AccountLink {
	out := slices.DeleteFunc(slices.Clone(p.links), func(l AccountLink) bool { return l.PartnerID == other })
	if len(out) == 0 {
		return nil
	}
	return out
}

// linkList copies the partner's links; nil when there are none.
func (p *Partner) linkList() []AccountLink {
	if len(p.links) == 0 {
		return nil
	}
	return slices.Clone(p.links)
}
