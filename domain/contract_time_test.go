package domain_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/domain"
)

var zero time.Time

// nothingDue asserts that a decision yields no event and no error.
func nothingDue(t *testing.T, what string, evs []domain.Event, err error) {
	t.Helper()
	if err != nil || len(evs) != 0 {
		t.Fatalf("%s: want nothing, got %v, %v", what, evs, err)
	}
}

func wantDue(t *testing.T, p *domain.Partner, kind domain.DueKind, when time.Time) {
	t.Helper()
	what, at, ok := domain.NextDue(p.State())
	if kind == "" {
		if ok {
			t.Fatalf("NextDue = %s at %s, want nothing", what, at)
		}
		return
	}
	if !ok || what != kind || !at.Equal(when) {
		t.Fatalf("NextDue = %q at %s (%v), want %q at %s", what, at, ok, kind, when)
	}
}

func TestProposalDeadline(t *testing.T) {
	t.Parallel()
	p := created(t)
	applyTo(t, &p)(p.Propose(adv, "t1", zero, zero, days(2), now))
	wantDue(t, &p, domain.DueProposalDeadline, days(2))

	evs, err := p.ProposalDeadlinePassed(days(1))
	nothingDue(t, "before the deadline", evs, err)

	// A counter sets its own deadline, not inherited.
	applyTo(t, &p)(p.Counter(pub, "t2", zero, zero, days(4), days(1)))
	wantDue(t, &p, domain.DueProposalDeadline, days(4))

	// After the deadline, before the scheduler ran, nobody may answer.
	_, err = p.Accept(adv, days(5))
	var ie *domain.IllegalMoveError
	if !errors.As(err, &ie) || !strings.Contains(ie.Why, "deadline") {
		t.Fatalf("accept after the deadline: %v", err)
	}

	evs = applyTo(t, &p)(p.ProposalDeadlinePassed(days(5)))
	if ev := evs[0].(domain.ContractProposalExpired); !ev.ExpiredAt.Equal(days(4)) {
		t.Fatalf("expired_at = %s, want the deadline", ev.ExpiredAt)
	}
	if stageOf(&p) != domain.StagePendingContractExpired {
		t.Fatalf("stage = %s", stageOf(&p))
	}
	wantDue(t, &p, "", zero)

	// A closed contract makes way for a new one; the old goes to the history.
	applyTo(t, &p)(p.Propose(pub, "t1", zero, zero, zero, days(6)))
	s := p.State()
	if s.Contract.ID != "p1:2" || len(s.ContractHistory) != 1 || s.ContractHistory[0].ID != "p1:1" {
		t.Fatalf("contract %s, history %+v", s.Contract.ID, s.ContractHistory)
	}
	wantDue(t, &p, "", zero) // no deadline on this offer
}

func TestStartDateInTheFuture(t *testing.T) {
	t.Parallel()
	p := created(t)
	applyTo(t, &p)(p.Propose(adv, "t1", days(10), zero, zero, now))
	applyTo(t, &p)(p.Accept(pub, days(1)))
	s := p.State()
	if s.Contract.Stage != domain.StageAwaitingContractStart || domain.ContractStatus(s) != "" ||
		domain.RelationshipStage(s) != domain.RelationshipJoined || s.DateJoined != nil {
		t.Fatalf("after accept: stage %s, status %q, relationship %q, joined %v", s.Contract.Stage,
			domain.ContractStatus(s), domain.RelationshipStage(s), s.DateJoined)
	}
	wantDue(t, &p, domain.DueContractStart, days(10))

	evs, err := p.StartDateReached(days(5))
	nothingDue(t, "before the start", evs, err)

	evs = applyTo(t, &p)(p.StartDateReached(days(11)))
	if ev := evs[0].(domain.ContractStarted); !ev.StartedAt.Equal(days(10)) {
		t.Fatalf("started_at = %s, want the start date", ev.StartedAt)
	}
	s = p.State()
	if s.Contract.Stage != domain.StageJoined || domain.ContractStatus(s) != domain.ContractStatusActive ||
		!s.DateJoined.Equal(days(10)) || !s.Contract.JoinedAt.Equal(days(10)) {
		t.Fatalf("after start: %+v", s.Contract)
	}
	wantDue(t, &p, "", zero)
}

func TestScheduledExpiryAndItsRevert(t *testing.T) {
	t.Parallel()
	p := reach(t, domain.StageJoined) // end date in 100 days
	wantDue(t, &p, domain.DueScheduledExpiry, days(100))

	applyTo(t, &p)(p.Expire(adv, days(20), "", days(1)))
	if stageOf(&p) != domain.StageJoined {
		t.Fatal("a scheduled expiry ended the contract at once")
	}
	wantDue(t, &p, domain.DueScheduledExpiry, days(20))

	evs := applyTo(t, &p)(p.Modify(adv, domain.ContractChange{RevertExpiry: true}, days(2)))
	if ev := evs[0].(domain.ContractScheduleReverted); ev.Schedule != domain.ScheduleExpiry {
		t.Fatalf("reverted %q", ev.Schedule)
	}
	wantDue(t, &p, "", zero)
	evs, err := p.ScheduledExpiryReached(days(30))
	nothingDue(t, "reverted expiry", evs, err)
	evs, err = p.Modify(adv, domain.ContractChange{RevertExpiry: true}, days(3))
	nothingDue(t, "revert of nothing", evs, err)

	applyTo(t, &p)(p.Modify(adv, domain.ContractChange{EndDate: days(40)}, days(3)))
	evs, err = p.Modify(adv, domain.ContractChange{EndDate: days(40)}, days(4))
	nothingDue(t, "same end date again", evs, err)
	wantDue(t, &p, domain.DueScheduledExpiry, days(40))

	evs = applyTo(t, &p)(p.ScheduledExpiryReached(days(41)))
	if ev := evs[0].(domain.ContractExpired); ev.By != system || !ev.ExpiredAt.Equal(days(40)) {
		t.Fatalf("expired event %+v", ev)
	}
	s := p.State()
	if domain.ContractStatus(s) != domain.ContractStatusExpired || domain.RelationshipStage(s) != domain.RelationshipExpired {
		t.Fatalf("status %q, relationship %q", domain.ContractStatus(s), domain.RelationshipStage(s))
	}
}

func TestScheduledSwitch(t *testing.T) {
	t.Parallel()
	p := reach(t, domain.StageSuspended) // on t1, ends in 100 days
	if _, err := p.Switch(adv, "t2", days(200), days(1)); !equalFields(err, "effective_at") {
		t.Fatalf("switch after the expiry: %v", err)
	}
	if _, err := p.Switch(adv, "t1", days(20), days(1)); !equalFields(err, "template_term_id") {
		t.Fatalf("switch to the same term: %v", err)
	}
	applyTo(t, &p)(p.Switch(adv, "t2", days(20), days(1)))
	wantDue(t, &p, domain.DueScheduledSwitch, days(20))
	evs, err := p.Switch(adv, "t2", days(20), days(2))
	nothingDue(t, "the same switch again", evs, err)

	// Modify moves it; an end date before it would strand it.
	applyTo(t, &p)(p.Modify(adv, domain.ContractChange{SwitchAt: days(25)}, days(2)))
	if _, err := p.Modify(adv, domain.ContractChange{EndDate: days(22)}, days(2)); !equalFields(err, "end_date") {
		t.Fatalf("end date before the scheduled switch: %v", err)
	}
	evs, err = p.ScheduledSwitchReached(days(21))
	nothingDue(t, "before the switch", evs, err)

	evs = applyTo(t, &p)(p.ScheduledSwitchReached(days(26)))
	ev := evs[0].(domain.ContractSwitched)
	if ev.By != system || !ev.SwitchedAt.Equal(days(25)) || ev.PreviousContractID != "p1:1" || ev.ContractID != "p1:2" {
		t.Fatalf("switched event %+v", ev)
	}
	s := p.State()
	c := s.Contract
	if c.Stage != domain.StageJoined || c.TemplateTermID != "t2" || !c.StartDate.Equal(days(25)) ||
		!c.EndDate.Equal(days(100)) || c.ScheduledSwitch != nil || c.SwitchedFrom != "p1:1" {
		t.Fatalf("new contract %+v", c)
	}
	if len(s.ContractHistory) != 1 || s.ContractHistory[0].ReplacedBy != "p1:2" || s.ContractHistory[0].TemplateTermID != "t1" {
		t.Fatalf("history %+v", s.ContractHistory)
	}
	wantDue(t, &p, domain.DueScheduledExpiry, days(100))
}

func TestScheduledSwitchRevertAndModifyRules(t *testing.T) {
	t.Parallel()
	p := reach(t, domain.StageJoined)
	if _, err := p.Modify(adv, domain.ContractChange{SwitchAt: days(20)}, days(1)); !equalFields(err, "template_term_id") {
		t.Fatalf("a new switch without a term: %v", err)
	}
	applyTo(t, &p)(p.Modify(adv, domain.ContractChange{SwitchTermID: "t2", SwitchAt: days(20)}, days(1)))
	applyTo(t, &p)(p.Modify(adv, domain.ContractChange{SwitchTermID: "t3"}, days(1)))
	if sw := p.State().Contract.ScheduledSwitch; sw.TemplateTermID != "t3" || !sw.EffectiveAt.Equal(days(20)) {
		t.Fatalf("scheduled switch %+v", sw)
	}
	evs := applyTo(t, &p)(p.Modify(adv, domain.ContractChange{RevertSwitch: true}, days(2)))
	if ev := evs[0].(domain.ContractScheduleReverted); ev.Schedule != domain.ScheduleSwitch {
		t.Fatalf("reverted %q", ev.Schedule)
	}
	wantDue(t, &p, domain.DueScheduledExpiry, days(100))

	start := reach(t, domain.StageAwaitingContractStart)
	_, err := start.Modify(adv, domain.ContractChange{SwitchTermID: "t2", SwitchAt: days(20)}, days(1))
	var ie *domain.IllegalMoveError
	if !errors.As(err, &ie) || ie.Move != domain.MoveModify {
		t.Fatalf("a switch before the start: %v", err)
	}
	if _, err := start.Modify(adv, domain.ContractChange{EndDate: days(5)}, days(1)); !equalFields(err, "end_date") {
		t.Fatalf("an end date before the start: %v", err)
	}
}

// A scheduler that was down catches up in time order.
func TestTickCatchesUp(t *testing.T) {
	t.Parallel()
	p := created(t)
	applyTo(t, &p)(p.Propose(adv, "t1", days(10), days(20), zero, now))
	applyTo(t, &p)(p.Accept(pub, days(1)))
	evs, err := p.Tick(days(5))
	nothingDue(t, "tick before anything is due", evs, err)
	evs = applyTo(t, &p)(p.Tick(days(30)))
	if len(evs) != 2 || evs[0].EventType() != domain.TypeContractStarted || evs[1].EventType() != domain.TypeContractExpired {
		t.Fatalf("tick = %v", evs)
	}
	if stageOf(&p) != domain.StageExpired || p.State().DateJoined == nil {
		t.Fatalf("after tick: %+v", p.State().Contract)
	}

	// An expiry scheduled before a scheduled switch is refused now (the
	// switch must be reverted first); in a stream written before that rule,
	// the expiry wins and the switch never happens.
	q := reach(t, domain.StageJoined)
	applyTo(t, &q)(q.Switch(adv, "t2", days(50), days(1)))
	if _, err := q.Expire(adv, days(40), "", days(1)); !equalFields(err, "effective_at") {
		t.Fatalf("expiry before the scheduled switch: %v", err)
	}
	st := q.State()
	applyTo(t, &q)([]domain.Event{domain.ContractExpiryScheduled{PartnerID: st.PartnerID, ProgramID: st.ProgramID,
		ContractID: st.Contract.ID, By: adv, EndDate: days(40), ScheduledAt: days(1)}}, nil)
	if _, err := q.ScheduledSwitchReached(days(60)); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("switch while the expiry is due first: %v", err)
	}
	evs = applyTo(t, &q)(q.Tick(days(60)))
	if len(evs) != 1 || evs[0].EventType() != domain.TypeContractExpired || q.State().Contract.TemplateTermID != "t1" {
		t.Fatalf("tick = %v", evs)
	}
}

func TestArchivalOnlyAffectsItsTemplateTerm(t *testing.T) {
	t.Parallel()
	for _, stage := range []domain.ContractStage{domain.StageAwaitingPublisherApproval, domain.StagePublisherCountered,
		domain.StageAwaitingContractStart, domain.StageJoined, domain.StageSuspended} {
		t.Run(string(stage), func(t *testing.T) {
			t.Parallel()
			p := reach(t, stage) // on t1
			evs, err := p.TemplateTermArchived("t9", days(1))
			nothingDue(t, "another term archived", evs, err)
			evs = applyTo(t, &p)(p.TemplateTermArchived("t1", days(1)))
			if ev := evs[0].(domain.ContractArchived); ev.TemplateTermID != "t1" || stageOf(&p) != domain.StageArchived {
				t.Fatalf("archived %+v, stage %s", ev, stageOf(&p))
			}
		})
	}
	t.Run("scheduled switch to the archived term", func(t *testing.T) {
		t.Parallel()
		p := reach(t, domain.StageJoined)
		applyTo(t, &p)(p.Switch(adv, "t2", days(20), days(1)))
		evs := applyTo(t, &p)(p.TemplateTermArchived("t2", days(2)))
		if ev := evs[0].(domain.ContractScheduleReverted); ev.Schedule != domain.ScheduleSwitch || ev.By != system {
			t.Fatalf("event %+v", ev)
		}
		if c := p.State().Contract; c.Stage != domain.StageJoined || c.ScheduledSwitch != nil {
			t.Fatalf("contract %+v", c)
		}
	})
	t.Run("closed contract of that term", func(t *testing.T) {
		t.Parallel()
		p := reach(t, domain.StageExpired)
		evs, err := p.TemplateTermArchived("t1", days(1))
		nothingDue(t, "closed contract", evs, err)
	})
}

func TestDeactivationFromEveryStage(t *testing.T) {
	t.Parallel()
	for _, stage := range append([]domain.ContractStage{noStage}, domain.ContractStages...) {
		t.Run("from_"+string(stage), func(t *testing.T) {
			t.Parallel()
			p := reach(t, stage)
			already := stage == domain.StagePublisherDeactivated
			evs, err := p.PublisherDeactivated(days(1))
			if already {
				nothingDue(t, "deactivated twice", evs, err)
			} else {
				apply(t, &p, evs, err)
			}
			s := p.State()
			if s.DeactivatedAt == nil {
				t.Fatal("deactivated_at not set")
			}
			if want := domain.StagePublisherDeactivated; stage != noStage && s.Contract.Stage != want {
				t.Fatalf("stage %s, want %s", s.Contract.Stage, want)
			}
			if _, next, ok := domain.NextDue(s); ok {
				t.Fatalf("something still due at %s", next)
			}
			evs, err = p.PublisherDeactivated(days(2))
			nothingDue(t, "deactivated twice", evs, err)
			// A closed stage: a new proposal is allowed, and the partner may leave again.
			applyTo(t, &p)(p.Propose(pub, "t1", zero, zero, zero, days(3)))
			if p.State().DeactivatedAt != nil {
				t.Fatal("a new proposal kept deactivated_at")
			}
			applyTo(t, &p)(p.PublisherDeactivated(days(4)))
		})
	}
}

func equalFields(err error, want ...string) bool {
	return strings.Join(fields(err), ",") == strings.Join(want, ",")
}

func TestAcceptRefusesAPassedEndDate(t *testing.T) {
	t.Parallel()
	p := created(t)
	applyTo(t, &p)(p.Propose(pub, "t1", zero, days(5), zero, now))
	_, err := p.Accept(adv, days(6))
	var ie *domain.IllegalMoveError
	if !errors.As(err, &ie) || !strings.Contains(ie.Why, "end_date") {
		t.Fatalf("accepting an offer whose end date passed: %v", err)
	}
	applyTo(t, &p)(p.Counter(adv, "", zero, days(30), zero, days(6)))
	applyTo(t, &p)(p.Accept(pub, days(7)))
	if stageOf(&p) != domain.StageJoined {
		t.Fatalf("stage %s", stageOf(&p))
	}
}

// A Partner value may be copied: folding the copy leaves the original alone.
func TestPartnerCopiesDoNotShareContracts(t *testing.T) {
	t.Parallel()
	p := reach(t, domain.StageExpired)
	before := p.State()
	q := p
	applyTo(t, &q)(q.Propose(adv, "t2", zero, zero, zero, days(1)))
	applyTo(t, &q)(q.Accept(pub, days(1)))
	applyTo(t, &q)(q.Suspend(adv, "x", days(2)))
	r := p
	applyTo(t, &r)(r.Propose(pub, "t3", zero, zero, zero, days(1)))
	if !reflect.DeepEqual(p.State(), before) {
		t.Fatal("folding a copy changed the original")
	}
	if q.State().ContractHistory[0].Stage != domain.StageExpired || r.State().Contract.TemplateTermID != "t3" ||
		q.State().Contract.TemplateTermID != "t2" {
		t.Fatal("copies interfere")
	}
	j := reach(t, domain.StageJoined)
	k := j
	applyTo(t, &k)(k.Suspend(adv, "x", days(1)))
	applyTo(t, &k)(k.Modify(adv, domain.ContractChange{EndDate: days(50)}, days(1)))
	if c := j.State().Contract; c.Stage != domain.StageJoined || !c.EndDate.Equal(days(100)) {
		t.Fatalf("folding a copy changed the original's contract: %+v", c)
	}
}

// A move's date on a day before today is refused, not turned into "now":
// the log cannot backdate a move. Earlier today means now.
func TestMovesCannotBeBackdated(t *testing.T) {
	t.Parallel()
	p := reach(t, domain.StageJoined)
	at := days(10).Add(6 * time.Hour) // 18:00
	yesterday, midnight := at.Add(-day), time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
	if _, err := p.Expire(adv, yesterday, "", at); !equalFields(err, "effective_at") {
		t.Fatalf("expire yesterday: %v", err)
	}
	if _, err := p.Switch(adv, "t2", yesterday, at); !equalFields(err, "effective_at") {
		t.Fatalf("switch yesterday: %v", err)
	}
	evs, err := p.Expire(adv, midnight, "", at)
	if err != nil || len(evs) != 1 || evs[0].(domain.ContractExpired).ExpiredAt != at {
		t.Fatalf("expire on today's date = %v, %v; want expired now", evs, err)
	}
}

// Ending a contract now over a scheduled switch records the switch's
// revert before the end, as an immediate switch does: the history says
// the switch will not happen.
func TestEndingNowRevertsAScheduledSwitch(t *testing.T) {
	t.Parallel()
	for _, end := range []string{"expire", "cancel"} {
		p := reach(t, domain.StageJoined)
		applyTo(t, &p)(p.Switch(adv, "t2", days(20), days(1)))
		var evs []domain.Event
		if end == "expire" {
			evs = applyTo(t, &p)(p.Expire(adv, zero, "", days(2)))
		} else {
			evs = applyTo(t, &p)(p.Cancel(adv, "", days(2)))
		}
		if len(evs) != 2 {
			t.Fatalf("%s: events %v", end, evs)
		}
		if ev, ok := evs[0].(domain.ContractScheduleReverted); !ok || ev.Schedule != domain.ScheduleSwitch || ev.By != adv {
			t.Fatalf("%s: first event %+v, want the switch's revert", end, evs[0])
		}
		if c := p.State().Contract; c.ScheduledSwitch != nil || (c.Stage != domain.StageExpired && c.Stage != domain.StageCancelled) {
			t.Fatalf("%s: contract %+v", end, c)
		}
		wantDue(t, &p, "", zero)
	}
	// Without a scheduled switch, only the end.
	p := reach(t, domain.StageJoined)
	if evs := applyTo(t, &p)(p.Expire(adv, zero, "", days(2))); len(evs) != 1 {
		t.Fatalf("expire without a switch: %v", evs)
	}
}
