package domain

import (
	"slices"
	"time"
)

// applyContract folds one contract event into the partner. It writes
// copy-on-write: the contract, its times and the history's backing array
// are replaced, never written through, so a copied Partner value or a
// snapshot never sees a fold of another copy.
func (p *Partner) applyContract(ev Event) {
	switch e := ev.(type) {
	case ContractProposed:
		p.retire()
		p.deactivatedAt = nil
		p.contract = &ContractState{ID: e.ContractID, TemplateTermID: e.TemplateTermID, Stage: e.Stage,
			ProposedBy: e.By, StartDate: e.StartDate, EndDate: e.EndDate, RespondBy: e.RespondBy,
			ProposedAt: e.ProposedAt, StageChangedAt: e.ProposedAt}
	case ContractCountered:
		c := p.editContract()
		c.TemplateTermID, c.StartDate, c.EndDate, c.RespondBy = e.TemplateTermID, e.StartDate, e.EndDate, e.RespondBy
		c.setStage(e.Stage, e.CounteredAt)
	case ContractAccepted:
		c := p.editContract()
		c.AcceptedAt = timePtr(e.AcceptedAt)
		c.setStage(e.Stage, e.AcceptedAt)
		if e.Stage == StageJoined {
			p.joined(c, e.AcceptedAt)
		}
	case ContractStarted:
		c := p.editContract()
		c.setStage(e.Stage, e.StartedAt)
		p.joined(c, e.StartedAt)
	case ContractDeclined:
		p.end(e.Stage, e.Reason, e.DeclinedAt)
	case ContractRetracted:
		p.end(e.Stage, e.Reason, e.RetractedAt)
	case ContractProposalExpired:
		p.end(e.Stage, "", e.ExpiredAt)
	case ContractSuspended:
		c := p.editContract()
		c.Reason = e.Reason
		c.setStage(e.Stage, e.SuspendedAt)
	case ContractReinstated:
		c := p.editContract()
		c.Reason = e.Reason
		c.setStage(e.Stage, e.ReinstatedAt)
	case ContractSwitched:
		old := p.editContract()
		old.ReplacedBy, old.ScheduledSwitch, old.EndedAt = e.ContractID, nil, timePtr(e.SwitchedAt)
		proposedBy := e.By
		if proposedBy == SideSystem {
			proposedBy = SideAdvertiser
		}
		p.retire()
		at := timePtr(e.SwitchedAt)
		p.contract = &ContractState{ID: e.ContractID, TemplateTermID: e.TemplateTermID, Stage: e.Stage,
			ProposedBy: proposedBy, StartDate: at, EndDate: e.EndDate, SwitchedFrom: e.PreviousContractID,
			ProposedAt: e.SwitchedAt, AcceptedAt: at, StageChangedAt: e.SwitchedAt}
		p.joined(p.contract, e.SwitchedAt)
	case ContractSwitchScheduled:
		p.editContract().ScheduledSwitch = &ScheduledSwitch{TemplateTermID: e.TemplateTermID, EffectiveAt: e.EffectiveAt}
	case ContractExpiryScheduled:
		p.editContract().EndDate = timePtr(e.EndDate)
	case ContractScheduleReverted:
		c := p.editContract()
		switch e.Schedule {
		case ScheduleExpiry:
			c.EndDate = nil
		case ScheduleSwitch:
			c.ScheduledSwitch = nil
		}
	case ContractExpired:
		p.end(e.Stage, e.Reason, e.ExpiredAt)
		p.contract.EndDate = timePtr(e.ExpiredAt)
	case ContractCancelled:
		p.end(e.Stage, e.Reason, e.CancelledAt)
	case ContractArchived:
		p.end(e.Stage, "", e.ArchivedAt)
	case PartnerDeactivated:
		p.deactivatedAt = timePtr(e.DeactivatedAt)
		if p.contract != nil && e.Stage != "" {
			p.end(e.Stage, "", e.DeactivatedAt)
		}
	}
}

// editContract replaces the current contract by a copy and returns it.
func (p *Partner) editContract() *ContractState {
	if p.contract == nil { // an event stream that skipped the proposal; keep folding
		p.contract = &ContractState{}
	}
	p.contract = p.contract.clone()
	return p.contract
}

// retire moves the current contract, if any, to the history.
func (p *Partner) retire() {
	if p.contract != nil {
		p.history = append(slices.Clip(p.history), *p.contract)
		p.contract = nil
	}
}

// end moves the current contract to a closed stage. A contract that had
// ended already keeps its first end time.
func (p *Partner) end(stage ContractStage, reason string, at time.Time) {
	c := p.editContract()
	c.ScheduledSwitch = nil
	if reason != "" {
		c.Reason = reason
	}
	if c.EndedAt == nil {
		c.EndedAt = timePtr(at)
	}
	c.setStage(stage, at)
}

func (p *Partner) joined(c *ContractState, at time.Time) {
	c.JoinedAt = timePtr(at)
	if p.dateJoined == nil {
		p.dateJoined = timePtr(at)
	}
}

func (c *ContractState) setStage(s ContractStage, at time.Time) {
	c.Stage, c.StageChangedAt = s, at.UTC()
}
