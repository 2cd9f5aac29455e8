package domain

import (
	"fmt"
	"time"
)

// The system moves. Each is legal only in the stages it concerns (else an
// IllegalMoveError, By system); when it is legal but nothing is due yet —
// no deadline, a date still ahead — it yields no event, so a scheduler may
// call it again safely. Events of time-based moves carry the scheduled
// time, not the time the scheduler ran.

// ProposalDeadlinePassed decides that an open offer whose respond_by has
// passed becomes pending_contract_expired.
func (p *Partner) ProposalDeadlinePassed(now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	if !p.stage().Negotiating() {
		return nil, p.illegal(MoveProposalDeadlinePassed, SideSystem, "")
	}
	c := p.contract
	if c.RespondBy == nil || now.Before(*c.RespondBy) {
		return nil, nil
	}
	return []Event{ContractProposalExpired{PartnerID: p.id, ProgramID: p.program, ContractID: c.ID,
		Stage: StagePendingContractExpired, ExpiredAt: *c.RespondBy}}, nil
}

// StartDateReached decides that an accepted contract whose start date has
// come is joined.
func (p *Partner) StartDateReached(now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	if p.stage() != StageAwaitingContractStart {
		return nil, p.illegal(MoveStartDateReached, SideSystem, "")
	}
	c := p.contract
	at := now.UTC()
	if c.StartDate != nil {
		if now.Before(*c.StartDate) {
			return nil, nil
		}
		at = *c.StartDate
	}
	return []Event{ContractStarted{PartnerID: p.id, ProgramID: p.program, ContractID: c.ID,
		Stage: StageJoined, TemplateTermID: c.TemplateTermID, StartedAt: at}}, nil
}

// ScheduledExpiryReached decides that a contract in force whose end date
// has come is expired.
func (p *Partner) ScheduledExpiryReached(now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	if !p.stage().InForce() {
		return nil, p.illegal(MoveScheduledExpiryReached, SideSystem, "")
	}
	c := p.contract
	if c.EndDate == nil || now.Before(*c.EndDate) {
		return nil, nil
	}
	return []Event{ContractExpired{PartnerID: p.id, ProgramID: p.program, ContractID: c.ID, By: SideSystem,
		Stage: StageExpired, ExpiredAt: *c.EndDate}}, nil
}

// ScheduledSwitchReached decides that a joined or suspended contract whose
// scheduled switch has come is replaced by a joined contract on the
// scheduled template term. When the scheduled expiry comes first and is
// due too, the expiry must be decided first: this is then illegal.
func (p *Partner) ScheduledSwitchReached(now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	s := p.stage()
	if s != StageJoined && s != StageSuspended {
		return nil, p.illegal(MoveScheduledSwitchReached, SideSystem, "")
	}
	c := p.contract
	sw := c.ScheduledSwitch
	if sw == nil || now.Before(sw.EffectiveAt) {
		return nil, nil
	}
	if c.EndDate != nil && !c.EndDate.After(sw.EffectiveAt) {
		return nil, p.illegal(MoveScheduledSwitchReached, SideSystem, "the scheduled expiry comes first")
	}
	return []Event{p.switched(SideSystem, sw.TemplateTermID, sw.EffectiveAt)}, nil
}

// TemplateTermArchived decides what archiving a template term does to this
// partner: an open (negotiating or in force) contract on that term becomes
// archived; a scheduled switch to that term is reverted. Anything else —
// another term, a closed contract, no contract — yields no event, so the
// caller may send it to every partner that might be concerned.
func (p *Partner) TemplateTermArchived(termID string, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	var pr problems
	pr.termID(termID, true)
	if err := pr.err(); err != nil {
		return nil, err
	}
	c := p.contract
	switch {
	case c == nil || c.Stage.Closed():
		return nil, nil
	case c.TemplateTermID == termID:
		return []Event{ContractArchived{PartnerID: p.id, ProgramID: p.program, ContractID: c.ID,
			Stage: StageArchived, TemplateTermID: termID, ArchivedAt: now.UTC()}}, nil
	case c.ScheduledSwitch != nil && c.ScheduledSwitch.TemplateTermID == termID:
		return []Event{p.reverted(SideSystem, ScheduleSwitch, "template term "+termID+" was archived", now)}, nil
	}
	return nil, nil
}

// PublisherDeactivated decides that the partner left the platform: its
// current contract, whatever its stage, becomes publisher_deactivated.
// Without a contract the fact is still recorded. A partner that is
// deactivated already (and got no proposal since) yields no event.
func (p *Partner) PublisherDeactivated(now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	if p.deactivatedAt != nil {
		return nil, nil
	}
	ev := PartnerDeactivated{PartnerID: p.id, ProgramID: p.program, DeactivatedAt: now.UTC()}
	if p.contract != nil {
		ev.ContractID, ev.Stage = p.contract.ID, StagePublisherDeactivated
	}
	return []Event{ev}, nil
}

// DueKind names a time-based transition a scheduler runs.
type DueKind string

// Time-based transitions.
const (
	DueProposalDeadline DueKind = "proposal_deadline" // run ProposalDeadlinePassed
	DueContractStart    DueKind = "contract_start"    // run StartDateReached
	DueScheduledExpiry  DueKind = "scheduled_expiry"  // run ScheduledExpiryReached
	DueScheduledSwitch  DueKind = "scheduled_switch"  // run ScheduledSwitchReached
)

// DueBy says whether a time-based contract transition of the partner is
// due at now (Tick would append something), without copying its state.
func (p *Partner) DueBy(now time.Time) bool {
	if !p.Exists() {
		return false
	}
	_, when, ok := NextDue(PartnerState{Contract: p.contract})
	return ok && !when.After(now)
}

// NextDue returns the partner's next time-based contract transition and
// when it is due, or ok false when none is pending. On a tie the expiry
// comes before a switch. A scheduler keeps one timer per partner, set to
// when, and re-reads NextDue after every change of the partner.
func NextDue(s PartnerState) (what DueKind, when time.Time, ok bool) {
	c := s.Contract
	if c == nil {
		return "", time.Time{}, false
	}
	consider := func(k DueKind, t *time.Time) {
		if t != nil && (!ok || t.Before(when)) {
			what, when, ok = k, *t, true
		}
	}
	switch {
	case c.Stage.Negotiating():
		consider(DueProposalDeadline, c.RespondBy)
	case c.Stage == StageAwaitingContractStart:
		consider(DueContractStart, c.StartDate)
		consider(DueScheduledExpiry, c.EndDate)
	case c.Stage.InForce():
		consider(DueScheduledExpiry, c.EndDate)
		if sw := c.ScheduledSwitch; sw != nil {
			consider(DueScheduledSwitch, &sw.EffectiveAt)
		}
	}
	return what, when, ok
}

// Tick decides every time-based transition due at now, in time order (a
// scheduler that was down catches up: start, then expiry…). It returns the
// events in the order they must be appended; none when nothing is due.
func (p *Partner) Tick(now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	q := RestorePartner(p.State())
	var out []Event
	for range 8 { // at most a few transitions can chain; the bound guards against a loop
		what, when, ok := NextDue(q.State())
		if !ok || when.After(now) {
			break
		}
		evs, err := q.due(what, now)
		if err != nil {
			return nil, fmt.Errorf("tick %s: %w", what, err)
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			q.Apply(ev)
		}
		out = append(out, evs...)
	}
	return out, nil
}

func (p *Partner) due(what DueKind, now time.Time) ([]Event, error) {
	switch what {
	case DueProposalDeadline:
		return p.ProposalDeadlinePassed(now)
	case DueContractStart:
		return p.StartDateReached(now)
	case DueScheduledExpiry:
		return p.ScheduledExpiryReached(now)
	default:
		return p.ScheduledSwitchReached(now)
	}
}
