package domain

import (
	"fmt"
	"time"
)

// maxReasonLen bounds a move's free-text reason.
const maxReasonLen = 1000

// side validates who asks for a move; "" is the API default, the advertiser.
func (pr *problems) side(by Side) Side {
	switch by {
	case "":
		return SideAdvertiser
	case SideAdvertiser, SidePublisher:
		return by
	}
	pr.add("by", "must be advertiser or publisher")
	return by
}

func (pr *problems) termID(id string, required bool) {
	switch {
	case id == "" && required:
		pr.add("template_term_id", "is required")
	case id != "" && !ValidEntityID(id):
		pr.add("template_term_id", EntityIDRule)
	}
}

func (pr *problems) reason(r string) {
	if len(r) > maxReasonLen {
		pr.add("reason", "must be at most %d characters", maxReasonLen)
	}
}

// future checks that an optional time lies after now.
func (pr *problems) future(field string, t, now time.Time) {
	if !t.IsZero() && !t.After(now) {
		pr.add(field, "must be in the future")
	}
}

// offer checks an offer's dates: the end after the start and after now.
// Only an offer whose end date has passed is refused; a start date in the
// past means the contract starts when it is accepted.
func (pr *problems) offer(start, end *time.Time, now time.Time) {
	if end == nil {
		return
	}
	if start != nil && !end.After(*start) {
		pr.add("end_date", "must be after start_date")
	} else if !end.After(now) {
		pr.add("end_date", "must be in the future")
	}
}

func (p *Partner) found() error {
	if !p.Exists() {
		return fmt.Errorf("partner: %w", ErrNotFound)
	}
	return nil
}

// Propose decides a new contract offer. The brand's proposal awaits the
// publisher, the partner's (an application) awaits the advertiser. It is
// legal when the partner has no contract or only a closed one (which then
// goes to the history). The caller checks that the template term exists and
// is not archived.
func (p *Partner) Propose(by Side, termID string, start, end, respondBy, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	var pr problems
	by = pr.side(by)
	pr.termID(termID, true)
	pr.offer(optTime(start), optTime(end), now)
	pr.future("respond_by", respondBy, now)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if s := p.stage(); s != "" && !s.Closed() {
		why := "a contract is in force"
		if s.Negotiating() {
			why = "an offer is open"
		}
		return nil, p.illegal(MovePropose, by, why)
	}
	stage := StageAwaitingPublisherApproval
	if by == SidePublisher {
		stage = StageAwaitingAdvertiserApproval
	}
	return []Event{ContractProposed{PartnerID: p.id, ProgramID: p.program, ContractID: p.nextContractID(),
		By: by, Stage: stage, TemplateTermID: termID, StartDate: optTime(start), EndDate: optTime(end),
		RespondBy: optTime(respondBy), ProposedAt: now.UTC()}}, nil
}

// checkOffer checks that an offer is open, that by is the side that may
// make this move on it (the receiver answers, the maker retracts), and that
// its deadline has not passed.
func (p *Partner) checkOffer(move ContractMove, by Side, now time.Time) error {
	want := p.stage().awaiting()
	if want == "" {
		return p.illegal(move, by, "")
	}
	if move == MoveRetract {
		want = want.other()
	}
	if by != want {
		return p.illegal(move, by, fmt.Sprintf("only the %s may %s this offer", want, move))
	}
	if rb := p.contract.RespondBy; rb != nil && !now.Before(*rb) {
		return p.illegal(move, by, "the offer's respond_by deadline passed at "+rb.Format(time.RFC3339Nano))
	}
	return nil
}

// Accept decides accepting the open offer, by the side that received it.
// It becomes joined, or awaiting_contract_start when its start date is
// still ahead. An offer whose end date has passed cannot be accepted
// (counter it with new dates instead).
func (p *Partner) Accept(by Side, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	var pr problems
	by = pr.side(by)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if err := p.checkOffer(MoveAccept, by, now); err != nil {
		return nil, err
	}
	c := p.contract
	if c.EndDate != nil && !c.EndDate.After(now) {
		return nil, p.illegal(MoveAccept, by, "the offer's end_date passed at "+c.EndDate.Format(time.RFC3339Nano))
	}
	stage := StageJoined
	if c.StartDate != nil && c.StartDate.After(now) {
		stage = StageAwaitingContractStart
	}
	return []Event{ContractAccepted{PartnerID: p.id, ProgramID: p.program, ContractID: c.ID, By: by,
		Stage: stage, TemplateTermID: c.TemplateTermID, AcceptedAt: now.UTC()}}, nil
}

// Counter decides answering the open offer with another one, by the side
// that received it; the other side then answers. Zero arguments keep the
// open offer's template term, start and end date (so a counter cannot
// clear a date); respondBy is the new offer's own deadline and is not
// inherited. A counter must change the template term, start or end date.
func (p *Partner) Counter(by Side, termID string, start, end, respondBy, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	var pr problems
	by = pr.side(by)
	pr.termID(termID, false)
	pr.future("respond_by", respondBy, now)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if err := p.checkOffer(MoveCounter, by, now); err != nil {
		return nil, err
	}
	c := p.contract
	next := ContractCountered{PartnerID: p.id, ProgramID: p.program, ContractID: c.ID, By: by,
		Stage: StageAdvertiserCountered, TemplateTermID: c.TemplateTermID, StartDate: c.StartDate,
		EndDate: c.EndDate, RespondBy: optTime(respondBy), CounteredAt: now.UTC(), Changed: []string{}}
	if by == SidePublisher {
		next.Stage = StagePublisherCountered
	}
	if termID != "" && termID != c.TemplateTermID {
		next.TemplateTermID = termID
		next.Changed = append(next.Changed, "template_term_id")
	}
	if !start.IsZero() && !sameTime(optTime(start), c.StartDate) {
		next.StartDate = optTime(start)
		next.Changed = append(next.Changed, "start_date")
	}
	if !end.IsZero() && !sameTime(optTime(end), c.EndDate) {
		next.EndDate = optTime(end)
		next.Changed = append(next.Changed, "end_date")
	}
	if len(next.Changed) == 0 {
		pr.add("template_term_id", "a counter must change template_term_id, start_date or end_date")
	}
	pr.offer(next.StartDate, next.EndDate, now)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if !sameTime(next.RespondBy, c.RespondBy) {
		next.Changed = append(next.Changed, "respond_by")
	}
	return []Event{next}, nil
}

// Decline decides refusing the open offer, by the side that received it.
func (p *Partner) Decline(by Side, reason string, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	var pr problems
	by = pr.side(by)
	pr.reason(reason)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if err := p.checkOffer(MoveDecline, by, now); err != nil {
		return nil, err
	}
	stage := StageAdvertiserDeclined
	if by == SidePublisher {
		stage = StagePublisherDeclined
	}
	return []Event{ContractDeclined{PartnerID: p.id, ProgramID: p.program, ContractID: p.contract.ID,
		By: by, Stage: stage, Reason: reason, DeclinedAt: now.UTC()}}, nil
}

// Retract decides withdrawing the open offer, by the side that made it.
func (p *Partner) Retract(by Side, reason string, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	var pr problems
	by = pr.side(by)
	pr.reason(reason)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if err := p.checkOffer(MoveRetract, by, now); err != nil {
		return nil, err
	}
	stage := StageAdvertiserRetracted
	if by == SidePublisher {
		stage = StagePublisherRetracted
	}
	return []Event{ContractRetracted{PartnerID: p.id, ProgramID: p.program, ContractID: p.contract.ID,
		By: by, Stage: stage, Reason: reason, RetractedAt: now.UTC()}}, nil
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
