package domain

import "time"

// ContractChange is what a modify move changes: a contract's scheduled
// expiry and its scheduled switch. Zero fields leave a setting alone.
type ContractChange struct {
	EndDate      time.Time // set or move the scheduled expiry
	RevertExpiry bool      // remove the scheduled expiry
	SwitchTermID string    // set or change the scheduled switch's template term
	SwitchAt     time.Time // set or move the scheduled switch's time
	RevertSwitch bool      // remove the scheduled switch
	Reason       string
}

// Modify decides changing or reverting the scheduled expiry or scheduled
// switch of a contract in force (a switch only on a joined or suspended
// one). Setting what is already set, or reverting what is not scheduled,
// yields no event; so does a change that changes nothing.
func (p *Partner) Modify(by Side, ch ContractChange, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	by, pr := brandInput(by, ch.Reason)
	setSwitch := ch.SwitchTermID != "" || !ch.SwitchAt.IsZero()
	switch {
	case ch.EndDate.IsZero() && !ch.RevertExpiry && !setSwitch && !ch.RevertSwitch:
		pr.add("body", "nothing to modify: give end_date, template_term_id and/or effective_at, or a revert")
	case !ch.EndDate.IsZero() && ch.RevertExpiry:
		pr.add("end_date", "cannot be set while reverting the scheduled expiry")
	case setSwitch && ch.RevertSwitch:
		pr.add("effective_at", "cannot be set while reverting the scheduled switch")
	}
	pr.future("end_date", ch.EndDate, now)
	pr.future("effective_at", ch.SwitchAt, now)
	pr.termID(ch.SwitchTermID, false)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if err := p.checkBrand(MoveModify, by, StageJoined, StageSuspended, StageAwaitingContractStart); err != nil {
		return nil, err
	}
	c := p.contract
	if setSwitch && c.Stage == StageAwaitingContractStart {
		return nil, p.illegal(MoveModify, by, "a switch can be scheduled only on a joined or suspended contract")
	}
	end := c.EndDate
	if !ch.EndDate.IsZero() {
		end = optTime(ch.EndDate)
		if c.StartDate != nil && !ch.EndDate.After(*c.StartDate) {
			pr.add("end_date", "must be after the contract's start_date (%s)", c.StartDate.Format(time.RFC3339Nano))
		}
	} else if ch.RevertExpiry {
		end = nil
	}
	var sw *ScheduledSwitch
	if setSwitch {
		sw = &ScheduledSwitch{TemplateTermID: ch.SwitchTermID, EffectiveAt: ch.SwitchAt.UTC()}
		if old := c.ScheduledSwitch; old != nil {
			if sw.TemplateTermID == "" {
				sw.TemplateTermID = old.TemplateTermID
			}
			if sw.EffectiveAt.IsZero() {
				sw.EffectiveAt = old.EffectiveAt
			}
		}
		switch {
		case sw.TemplateTermID == "":
			pr.add("template_term_id", "is required to schedule a switch")
		case sw.TemplateTermID == c.TemplateTermID:
			pr.add("template_term_id", "is the contract's template term already")
		}
		if sw.EffectiveAt.IsZero() {
			pr.add("effective_at", "is required to schedule a switch")
		} else {
			pr.switchBeforeEnd(sw.EffectiveAt, end)
		}
	} else if old := c.ScheduledSwitch; old != nil && !ch.RevertSwitch && !ch.EndDate.IsZero() {
		// A new end date must not strand the scheduled switch; the request
		// set end_date only, so the problem is named after it.
		if !old.EffectiveAt.Before(*end) {
			pr.add("end_date", "must be after the scheduled switch (%s); revert the switch in the same request", old.EffectiveAt.Format(time.RFC3339Nano))
		}
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	var out []Event
	switch {
	case !ch.EndDate.IsZero() && !sameTime(c.EndDate, end):
		out = append(out, ContractExpiryScheduled{PartnerID: p.id, ProgramID: p.program, ContractID: c.ID, By: by,
			EndDate: *end, ScheduledAt: now.UTC()})
	case ch.RevertExpiry && c.EndDate != nil:
		out = append(out, p.reverted(by, ScheduleExpiry, ch.Reason, now))
	}
	switch old := c.ScheduledSwitch; {
	case sw != nil && (old == nil || *old != *sw):
		out = append(out, ContractSwitchScheduled{PartnerID: p.id, ProgramID: p.program, ContractID: c.ID, By: by,
			TemplateTermID: sw.TemplateTermID, EffectiveAt: sw.EffectiveAt, ScheduledAt: now.UTC()})
	case ch.RevertSwitch && old != nil:
		out = append(out, p.reverted(by, ScheduleSwitch, ch.Reason, now))
	}
	return out, nil
}

func (p *Partner) reverted(by Side, schedule, reason string, now time.Time) ContractScheduleReverted {
	return ContractScheduleReverted{PartnerID: p.id, ProgramID: p.program, ContractID: p.contract.ID, By: by,
		Schedule: schedule, Reason: reason, RevertedAt: now.UTC()}
}

// ContractInput is the body of POST /partners/{id}/contract/{action}. Zero
// fields are absent. For modify, end_date sets the scheduled expiry and
// template_term_id/effective_at the scheduled switch.
type ContractInput struct {
	By             Side
	TemplateTermID string
	StartDate      time.Time
	EndDate        time.Time
	RespondBy      time.Time
	EffectiveAt    time.Time
	Reason         string
	RevertExpiry   bool // modify only
	RevertSwitch   bool // modify only
}

// DecideContract decides one API contract action. A field the action does
// not take is refused rather than ignored, so that, say, a suspend with an
// effective_at is not taken for a scheduled suspension.
func (p *Partner) DecideContract(move ContractMove, in ContractInput, now time.Time) ([]Event, error) {
	var pr problems
	used := map[ContractMove][]string{
		MovePropose:   {"template_term_id", "start_date", "end_date", "respond_by"},
		MoveAccept:    {},
		MoveCounter:   {"template_term_id", "start_date", "end_date", "respond_by"},
		MoveDecline:   {"reason"},
		MoveRetract:   {"reason"},
		MoveSwitch:    {"template_term_id", "effective_at"},
		MoveSuspend:   {"reason"},
		MoveReinstate: {"reason"},
		MoveExpire:    {"effective_at", "reason"},
		MoveCancel:    {"reason"},
		MoveModify:    {"template_term_id", "end_date", "effective_at", "reason", "revert"},
	}
	fields, ok := used[move]
	if !ok {
		pr.add("action", "must be one of %v", ContractActions)
		return nil, pr.err()
	}
	given := map[string]bool{"template_term_id": in.TemplateTermID != "", "start_date": !in.StartDate.IsZero(),
		"end_date": !in.EndDate.IsZero(), "respond_by": !in.RespondBy.IsZero(), "effective_at": !in.EffectiveAt.IsZero(),
		"reason": in.Reason != "", "revert": in.RevertExpiry || in.RevertSwitch}
	for _, f := range []string{"template_term_id", "start_date", "end_date", "respond_by", "effective_at", "reason", "revert"} {
		if given[f] && !oneOf(f, fields) {
			pr.add(f, "is not used by %s", move)
		}
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	switch move {
	case MovePropose:
		return p.Propose(in.By, in.TemplateTermID, in.StartDate, in.EndDate, in.RespondBy, now)
	case MoveAccept:
		return p.Accept(in.By, now)
	case MoveCounter:
		return p.Counter(in.By, in.TemplateTermID, in.StartDate, in.EndDate, in.RespondBy, now)
	case MoveDecline:
		return p.Decline(in.By, in.Reason, now)
	case MoveRetract:
		return p.Retract(in.By, in.Reason, now)
	case MoveSwitch:
		return p.Switch(in.By, in.TemplateTermID, in.EffectiveAt, now)
	case MoveSuspend:
		return p.Suspend(in.By, in.Reason, now)
	case MoveReinstate:
		return p.Reinstate(in.By, in.Reason, now)
	case MoveExpire:
		return p.Expire(in.By, in.EffectiveAt, in.Reason, now)
	case MoveCancel:
		return p.Cancel(in.By, in.Reason, now)
	default:
		return p.Modify(in.By, ContractChange{EndDate: in.EndDate, RevertExpiry: in.RevertExpiry,
			SwitchTermID: in.TemplateTermID, SwitchAt: in.EffectiveAt, RevertSwitch: in.RevertSwitch, Reason: in.Reason}, now)
	}
}
