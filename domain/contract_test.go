package domain_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/domain"
)

const day = 24 * time.Hour

const (
	adv    = domain.SideAdvertiser
	pub    = domain.SidePublisher
	system = domain.SideSystem
)

// noStage stands for "the partner has no contract" in tables.
const noStage domain.ContractStage = ""

func hours(n int) time.Time { return now.Add(time.Duration(n) * time.Hour) }
func days(n int) time.Time  { return now.Add(time.Duration(n) * day) }

// apply folds the events of a decision that must succeed.
func apply(t *testing.T, p *domain.Partner, evs []domain.Event, err error) []domain.Event {
	t.Helper()
	if err != nil {
		t.Fatalf("legal move refused: %v", err)
	}
	for _, ev := range evs {
		p.Apply(ev)
	}
	return evs
}

func stageOf(p *domain.Partner) domain.ContractStage {
	if c := p.State().Contract; c != nil {
		return c.Stage
	}
	return noStage
}

// reach returns partner p1 in the given contract stage, built from scratch
// by legal moves only. Offers are on template term t1, start now (or in 10
// days for awaiting_contract_start), end in 100 days, and must be answered
// within 30 days; all moves happen within the first three hours.
func reach(t *testing.T, stage domain.ContractStage) domain.Partner {
	t.Helper()
	p := created(t)
	do := func(evs []domain.Event, err error) { t.Helper(); apply(t, &p, evs, err) }
	propose := func(by domain.Side) { do(p.Propose(by, "t1", now, days(100), days(30), now)) }
	counter := func(by domain.Side) { do(p.Counter(by, "", time.Time{}, days(90), days(30), hours(1))) }
	join := func() { propose(adv); do(p.Accept(pub, hours(1))) }
	switch stage {
	case noStage:
	case domain.StageAwaitingPublisherApproval:
		propose(adv)
	case domain.StageAwaitingAdvertiserApproval:
		propose(pub)
	case domain.StagePublisherCountered:
		propose(adv)
		counter(pub)
	case domain.StageAdvertiserCountered:
		propose(pub)
		counter(adv)
	case domain.StagePublisherDeclined:
		propose(adv)
		do(p.Decline(pub, "not now", hours(1)))
	case domain.StageAdvertiserDeclined:
		propose(pub)
		do(p.Decline(adv, "", hours(1)))
	case domain.StagePublisherRetracted:
		propose(pub)
		do(p.Retract(pub, "", hours(1)))
	case domain.StageAdvertiserRetracted:
		propose(adv)
		do(p.Retract(adv, "", hours(1)))
	case domain.StagePendingContractExpired:
		do(p.Propose(adv, "t1", time.Time{}, time.Time{}, hours(2), now))
		do(p.ProposalDeadlinePassed(hours(3)))
	case domain.StageAwaitingContractStart:
		do(p.Propose(adv, "t1", days(10), days(100), days(30), now))
		do(p.Accept(pub, hours(1)))
	case domain.StageJoined:
		join()
	case domain.StageSuspended:
		join()
		do(p.Suspend(adv, "fraud check", hours(2)))
	case domain.StageExpired:
		join()
		do(p.Expire(adv, time.Time{}, "", hours(2)))
	case domain.StageCancelled:
		join()
		do(p.Cancel(adv, "", hours(2)))
	case domain.StageArchived:
		join()
		do(p.TemplateTermArchived("t1", hours(2)))
	case domain.StagePublisherDeactivated:
		join()
		do(p.PublisherDeactivated(hours(2)))
	default:
		t.Fatalf("reach: unknown stage %q", stage)
	}
	if got := stageOf(&p); got != stage {
		t.Fatalf("reach(%q) ended in %q", stage, got)
	}
	return p
}

type contractMove struct {
	name   domain.ContractMove
	system bool
	do     func(p *domain.Partner, by domain.Side, at time.Time) ([]domain.Event, error)
}

// moves: side moves are tried at days(1), before every deadline and date
// reach sets; system moves at days(365), after all of them.
var moves = []contractMove{
	{name: domain.MovePropose, do: func(p *domain.Partner, by domain.Side, at time.Time) ([]domain.Event, error) {
		return p.Propose(by, "t1", time.Time{}, time.Time{}, time.Time{}, at)
	}},
	{name: domain.MoveAccept, do: func(p *domain.Partner, by domain.Side, at time.Time) ([]domain.Event, error) {
		return p.Accept(by, at)
	}},
	{name: domain.MoveCounter, do: func(p *domain.Partner, by domain.Side, at time.Time) ([]domain.Event, error) {
		return p.Counter(by, "t2", time.Time{}, time.Time{}, time.Time{}, at)
	}},
	{name: domain.MoveDecline, do: func(p *domain.Partner, by domain.Side, at time.Time) ([]domain.Event, error) {
		return p.Decline(by, "", at)
	}},
	{name: domain.MoveRetract, do: func(p *domain.Partner, by domain.Side, at time.Time) ([]domain.Event, error) {
		return p.Retract(by, "", at)
	}},
	{name: domain.MoveSwitch, do: func(p *domain.Partner, by domain.Side, at time.Time) ([]domain.Event, error) {
		return p.Switch(by, "t2", time.Time{}, at)
	}},
	{name: domain.MoveSuspend, do: func(p *domain.Partner, by domain.Side, at time.Time) ([]domain.Event, error) {
		return p.Suspend(by, "", at)
	}},
	{name: domain.MoveReinstate, do: func(p *domain.Partner, by domain.Side, at time.Time) ([]domain.Event, error) {
		return p.Reinstate(by, "", at)
	}},
	{name: domain.MoveExpire, do: func(p *domain.Partner, by domain.Side, at time.Time) ([]domain.Event, error) {
		return p.Expire(by, time.Time{}, "", at)
	}},
	{name: domain.MoveCancel, do: func(p *domain.Partner, by domain.Side, at time.Time) ([]domain.Event, error) {
		return p.Cancel(by, "", at)
	}},
	{name: domain.MoveModify, do: func(p *domain.Partner, by domain.Side, at time.Time) ([]domain.Event, error) {
		return p.Modify(by, domain.ContractChange{EndDate: days(50)}, at)
	}},
	{name: domain.MoveProposalDeadlinePassed, system: true, do: func(p *domain.Partner, _ domain.Side, at time.Time) ([]domain.Event, error) {
		return p.ProposalDeadlinePassed(at)
	}},
	{name: domain.MoveStartDateReached, system: true, do: func(p *domain.Partner, _ domain.Side, at time.Time) ([]domain.Event, error) {
		return p.StartDateReached(at)
	}},
	{name: domain.MoveScheduledExpiryReached, system: true, do: func(p *domain.Partner, _ domain.Side, at time.Time) ([]domain.Event, error) {
		return p.ScheduledExpiryReached(at)
	}},
	{name: domain.MoveScheduledSwitchReached, system: true, do: func(p *domain.Partner, _ domain.Side, at time.Time) ([]domain.Event, error) {
		return p.ScheduledSwitchReached(at)
	}},
	{name: domain.MoveTemplateTermArchived, system: true, do: func(p *domain.Partner, _ domain.Side, at time.Time) ([]domain.Event, error) {
		return p.TemplateTermArchived("t1", at)
	}},
	{name: domain.MovePublisherDeactivated, system: true, do: func(p *domain.Partner, _ domain.Side, at time.Time) ([]domain.Event, error) {
		return p.PublisherDeactivated(at)
	}},
}

type moveKey struct {
	stage domain.ContractStage
	move  domain.ContractMove
	by    domain.Side
}

// unchanged marks a legal move that has nothing to do: no event, no error.
const unchanged domain.ContractStage = "(no event)"

// legalMoves is SPEC §2's list of legal moves, written out by hand: the
// stage each legal (stage, move, side) leads to. Every triple not listed
// must be refused with an IllegalMoveError.
func legalMoves() map[moveKey]domain.ContractStage {
	const (
		awaitPub     = domain.StageAwaitingPublisherApproval
		awaitAdv     = domain.StageAwaitingAdvertiserApproval
		pubCountered = domain.StagePublisherCountered
		advCountered = domain.StageAdvertiserCountered
		awaitStart   = domain.StageAwaitingContractStart
		joined       = domain.StageJoined
		suspended    = domain.StageSuspended
	)
	negotiating := []domain.ContractStage{awaitPub, awaitAdv, pubCountered, advCountered}
	inForce := []domain.ContractStage{awaitStart, joined, suspended}
	closed := []domain.ContractStage{domain.StagePublisherDeclined, domain.StageAdvertiserDeclined,
		domain.StagePublisherRetracted, domain.StageAdvertiserRetracted, domain.StagePendingContractExpired,
		domain.StageExpired, domain.StageCancelled, domain.StageArchived, domain.StagePublisherDeactivated}
	m := map[moveKey]domain.ContractStage{}
	for _, s := range append([]domain.ContractStage{noStage}, closed...) {
		m[moveKey{s, domain.MovePropose, adv}] = awaitPub
		m[moveKey{s, domain.MovePropose, pub}] = awaitAdv
		m[moveKey{s, domain.MoveTemplateTermArchived, system}] = unchanged
		m[moveKey{s, domain.MovePublisherDeactivated, system}] = domain.StagePublisherDeactivated
	}
	m[moveKey{noStage, domain.MovePublisherDeactivated, system}] = noStage // recorded, no contract to move
	m[moveKey{domain.StagePublisherDeactivated, domain.MovePublisherDeactivated, system}] = unchanged
	for _, s := range []domain.ContractStage{awaitPub, advCountered} { // the publisher answers
		m[moveKey{s, domain.MoveAccept, pub}] = joined
		m[moveKey{s, domain.MoveCounter, pub}] = pubCountered
		m[moveKey{s, domain.MoveDecline, pub}] = domain.StagePublisherDeclined
		m[moveKey{s, domain.MoveRetract, adv}] = domain.StageAdvertiserRetracted
	}
	for _, s := range []domain.ContractStage{awaitAdv, pubCountered} { // the advertiser answers
		m[moveKey{s, domain.MoveAccept, adv}] = joined
		m[moveKey{s, domain.MoveCounter, adv}] = advCountered
		m[moveKey{s, domain.MoveDecline, adv}] = domain.StageAdvertiserDeclined
		m[moveKey{s, domain.MoveRetract, pub}] = domain.StagePublisherRetracted
	}
	for _, s := range negotiating {
		m[moveKey{s, domain.MoveProposalDeadlinePassed, system}] = domain.StagePendingContractExpired
		m[moveKey{s, domain.MoveTemplateTermArchived, system}] = domain.StageArchived
		m[moveKey{s, domain.MovePublisherDeactivated, system}] = domain.StagePublisherDeactivated
	}
	m[moveKey{joined, domain.MoveSuspend, adv}] = suspended
	m[moveKey{suspended, domain.MoveReinstate, adv}] = joined
	m[moveKey{awaitStart, domain.MoveStartDateReached, system}] = joined
	for _, s := range []domain.ContractStage{joined, suspended} {
		m[moveKey{s, domain.MoveSwitch, adv}] = joined
		m[moveKey{s, domain.MoveScheduledSwitchReached, system}] = unchanged // none scheduled
	}
	for _, s := range inForce {
		m[moveKey{s, domain.MoveExpire, adv}] = domain.StageExpired
		m[moveKey{s, domain.MoveCancel, adv}] = domain.StageCancelled
		m[moveKey{s, domain.MoveModify, adv}] = s
		m[moveKey{s, domain.MoveScheduledExpiryReached, system}] = domain.StageExpired
		m[moveKey{s, domain.MoveTemplateTermArchived, system}] = domain.StageArchived
		m[moveKey{s, domain.MovePublisherDeactivated, system}] = domain.StagePublisherDeactivated
	}
	return m
}

// Every (stage, move, side) triple: the exact resulting stage, or an
// IllegalMoveError naming stage and move, with no event and no change.
func TestContractStageMachine(t *testing.T) {
	t.Parallel()
	legal := legalMoves()
	stages := append([]domain.ContractStage{noStage}, domain.ContractStages...)
	if len(domain.ContractStages) != 16 {
		t.Fatalf("%d stages, want 16", len(domain.ContractStages))
	}
	for _, stage := range stages {
		for _, mv := range moves {
			sides, at := []domain.Side{adv, pub}, days(1)
			if mv.system {
				sides, at = []domain.Side{system}, days(365)
			}
			for _, by := range sides {
				name := string(stage)
				if name == "" {
					name = "no_contract"
				}
				t.Run(name+"/"+string(mv.name)+"/"+string(by), func(t *testing.T) {
					t.Parallel()
					p := reach(t, stage)
					before := p.State()
					evs, err := mv.do(&p, by, at)
					if !reflect.DeepEqual(p.State(), before) {
						t.Fatal("deciding changed the partner")
					}
					want, ok := legal[moveKey{stage, mv.name, by}]
					switch {
					case !ok:
						checkIllegal(t, evs, err, stage, mv.name, by)
					case want == unchanged:
						if err != nil || len(evs) != 0 {
							t.Fatalf("want no event and no error, got %v, %v", evs, err)
						}
					default:
						if err != nil || len(evs) == 0 {
							t.Fatalf("want a move to %q, got %v, %v", want, evs, err)
						}
						apply(t, &p, evs, nil)
						if got := stageOf(&p); got != want {
							t.Fatalf("stage after %s = %q, want %q", mv.name, got, want)
						}
					}
				})
			}
		}
	}
}

func checkIllegal(t *testing.T, evs []domain.Event, err error, stage domain.ContractStage, move domain.ContractMove, by domain.Side) {
	t.Helper()
	var ie *domain.IllegalMoveError
	if !errors.As(err, &ie) {
		t.Fatalf("want an IllegalMoveError, got %v (events %v)", err, evs)
	}
	if evs != nil {
		t.Fatalf("a refused move returned events %v", evs)
	}
	if !errors.Is(err, domain.ErrConflict) {
		t.Fatal("IllegalMoveError does not match ErrConflict")
	}
	if ie.Stage != stage || ie.Move != move || ie.By != by {
		t.Fatalf("error names (%q, %q, %q), want (%q, %q, %q)", ie.Stage, ie.Move, ie.By, stage, move, by)
	}
	msg := err.Error()
	if !strings.Contains(msg, string(move)) || (stage != noStage && !strings.Contains(msg, string(stage))) {
		t.Fatalf("message %q does not name the move and stage", msg)
	}
}

func TestContractMovesOnMissingPartner(t *testing.T) {
	t.Parallel()
	for _, mv := range moves {
		var p domain.Partner
		if _, err := mv.do(&p, adv, now); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("%s on a missing partner: %v, want ErrNotFound", mv.name, err)
		}
	}
}

// applyTo folds the result of a decision that must succeed:
// applyTo(t, &p)(p.Accept(pub, at)).
func applyTo(t *testing.T, p *domain.Partner) func([]domain.Event, error) []domain.Event {
	return func(evs []domain.Event, err error) []domain.Event {
		t.Helper()
		return apply(t, p, evs, err)
	}
}
