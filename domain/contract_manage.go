package domain

import (
	"fmt"
	"time"
)

// checkBrand checks a move only the brand makes, legal in the given stages.
func (p *Partner) checkBrand(move ContractMove, by Side, stages ...ContractStage) error {
	s := p.stage()
	legal := false
	for _, st := range stages {
		legal = legal || s == st
	}
	if !legal {
		return p.illegal(move, by, "")
	}
	if by != SideAdvertiser {
		return p.illegal(move, by, fmt.Sprintf("only the advertiser may %s a contract", move))
	}
	return nil
}

// brandInput validates the side and reason every brand move takes.
func brandInput(by Side, reason string) (Side, problems) {
	var pr problems
	by = pr.side(by)
	pr.reason(reason)
	return by, pr
}

// Switch decides moving a joined or suspended contract to another template
// term (existing, or created by the caller on the way: the domain gets its
// ID). With effectiveAt in the future the switch is scheduled (replacing any
// scheduled one) and must come before the scheduled expiry; otherwise it
// happens now. A switch always leaves a new, joined contract: switching a
// suspended contract reinstates it. The new contract keeps the old one's
// scheduled expiry.
func (p *Partner) Switch(by Side, termID string, effectiveAt, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	var pr problems
	by = pr.side(by)
	pr.termID(termID, true)
	pr.notBeforeToday("effective_at", effectiveAt, now)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if err := p.checkBrand(MoveSwitch, by, StageJoined, StageSuspended); err != nil {
		return nil, err
	}
	c := p.contract
	if termID == c.TemplateTermID {
		pr.add("template_term_id", "is the contract's template term already")
	}
	if effectiveAt.After(now) {
		pr.switchBeforeEnd(effectiveAt, c.EndDate)
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	if effectiveAt.After(now) {
		if sw := c.ScheduledSwitch; sw != nil && sw.TemplateTermID == termID && sw.EffectiveAt.Equal(effectiveAt) {
			return nil, nil
		}
		return []Event{ContractSwitchScheduled{PartnerID: p.id, ProgramID: p.program, ContractID: c.ID, By: by,
			TemplateTermID: termID, EffectiveAt: effectiveAt.UTC(), ScheduledAt: now.UTC()}}, nil
	}
	sw := p.switched(by, termID, now)
	if c.ScheduledSwitch != nil {
		// The switch planned for later will not happen: say so, as a
		// revert would (the new contract has no scheduled switch).
		return []Event{p.reverted(by, ScheduleSwitch, "replaced by an immediate switch", now), sw}, nil
	}
	return []Event{sw}, nil
}

func (p *Partner) switched(by Side, termID string, at time.Time) ContractSwitched {
	c := p.contract
	return ContractSwitched{PartnerID: p.id, ProgramID: p.program, ContractID: p.nextContractID(),
		PreviousContractID: c.ID, By: by, Stage: StageJoined, TemplateTermID: termID,
		PreviousTemplateTermID: c.TemplateTermID, EndDate: c.EndDate, SwitchedAt: at.UTC()}
}

// notBeforeToday refuses a move's date on a day before now's (UTC): the
// log cannot backdate a move, and acting now instead would silently differ
// from the date given. A time earlier today (a date-only value for today,
// or a clock a little behind) means now.
func (pr *problems) notBeforeToday(field string, at, now time.Time) {
	now = now.UTC()
	if !at.IsZero() && at.Before(time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)) {
		pr.add(field, "is in the past (%s): a move cannot be backdated; leave it out to act now", at.UTC().Format(time.RFC3339Nano))
	}
}

// NotBeforeToday is notBeforeToday as an error of its own, for a request
// that checks a move's date before it decides the move on any partner (a
// bulk action).
func NotBeforeToday(field string, at, now time.Time) error {
	var pr problems
	pr.notBeforeToday(field, at, now)
	return pr.err()
}

func (pr *problems) switchBeforeEnd(at time.Time, end *time.Time) {
	if end != nil && !at.Before(*end) {
		pr.add("effective_at", "must be before the contract's end_date (%s)", end.Format(time.RFC3339Nano))
	}
}

// Suspend decides suspending a joined contract.
func (p *Partner) Suspend(by Side, reason string, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	by, pr := brandInput(by, reason)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if err := p.checkBrand(MoveSuspend, by, StageJoined); err != nil {
		return nil, err
	}
	return []Event{ContractSuspended{PartnerID: p.id, ProgramID: p.program, ContractID: p.contract.ID,
		By: by, Stage: StageSuspended, Reason: reason, SuspendedAt: now.UTC()}}, nil
}

// Reinstate decides lifting the suspension of a suspended contract.
func (p *Partner) Reinstate(by Side, reason string, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	by, pr := brandInput(by, reason)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if err := p.checkBrand(MoveReinstate, by, StageSuspended); err != nil {
		return nil, err
	}
	return []Event{ContractReinstated{PartnerID: p.id, ProgramID: p.program, ContractID: p.contract.ID,
		By: by, Stage: StageJoined, Reason: reason, ReinstatedAt: now.UTC()}}, nil
}

// Expire decides ending a contract in force: now (effectiveAt zero or not
// in the future) or at effectiveAt, which sets its scheduled expiry
// (end_date). A scheduled expiry before a scheduled switch wins: the switch
// then never happens.
func (p *Partner) Expire(by Side, effectiveAt time.Time, reason string, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	by, pr := brandInput(by, reason)
	pr.notBeforeToday("effective_at", effectiveAt, now)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if err := p.checkBrand(MoveExpire, by, StageJoined, StageSuspended, StageAwaitingContractStart); err != nil {
		return nil, err
	}
	c := p.contract
	if !effectiveAt.After(now) {
		return p.endingSchedules(by, "the contract expired", now, ContractExpired{PartnerID: p.id, ProgramID: p.program, ContractID: c.ID, By: by,
			Stage: StageExpired, Reason: reason, ExpiredAt: now.UTC()}), nil
	}
	if c.StartDate != nil && !effectiveAt.After(*c.StartDate) {
		pr.add("effective_at", "must be after the contract's start_date (%s)", c.StartDate.Format(time.RFC3339Nano))
		return nil, pr.err()
	}
	if sw := c.ScheduledSwitch; sw != nil && !sw.EffectiveAt.Before(effectiveAt) {
		pr.add("effective_at", "must be after the scheduled switch (%s); revert the switch first (modify with revert [\"switch\"])",
			sw.EffectiveAt.Format(time.RFC3339Nano))
		return nil, pr.err()
	}
	if sameTime(c.EndDate, &effectiveAt) {
		return nil, nil
	}
	return []Event{ContractExpiryScheduled{PartnerID: p.id, ProgramID: p.program, ContractID: c.ID, By: by,
		EndDate: effectiveAt.UTC(), ScheduledAt: now.UTC()}}, nil
}

// Cancel decides cancelling a contract in force.
func (p *Partner) Cancel(by Side, reason string, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	by, pr := brandInput(by, reason)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if err := p.checkBrand(MoveCancel, by, StageJoined, StageSuspended, StageAwaitingContractStart); err != nil {
		return nil, err
	}
	return p.endingSchedules(by, "the contract was cancelled", now, ContractCancelled{PartnerID: p.id, ProgramID: p.program, ContractID: p.contract.ID,
		By: by, Stage: StageCancelled, Reason: reason, CancelledAt: now.UTC()}), nil
}

// endingSchedules returns end, the event that ends the contract now,
// after the revert of a switch it had scheduled: the history then says the
// switch will not happen, as when an immediate switch or the archival of
// its term replaces it, rather than leave it to be inferred.
func (p *Partner) endingSchedules(by Side, why string, now time.Time, end Event) []Event {
	if p.contract.ScheduledSwitch == nil {
		return []Event{end}
	}
	return []Event{p.reverted(by, ScheduleSwitch, why, now), end}
}
