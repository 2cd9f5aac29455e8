package domain_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/domain"
)

// One fully populated example of every partner event added with contracts.
func contractEventSamples() []domain.Event {
	at, later := days(1), days(10)
	return []domain.Event{
		domain.ContractProposed{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1", By: adv,
			Stage: domain.StageAwaitingPublisherApproval, TemplateTermID: "t1", StartDate: &at, EndDate: &later,
			RespondBy: &at, ProposedAt: now},
		domain.ContractCountered{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1", By: pub,
			Stage: domain.StagePublisherCountered, Changed: []string{"end_date"}, TemplateTermID: "t1",
			StartDate: &at, EndDate: &later, RespondBy: &at, CounteredAt: now},
		domain.ContractAccepted{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1", By: adv,
			Stage: domain.StageAwaitingContractStart, TemplateTermID: "t1", AcceptedAt: now},
		domain.ContractDeclined{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1", By: pub,
			Stage: domain.StagePublisherDeclined, Reason: "rates", DeclinedAt: now},
		domain.ContractRetracted{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1", By: adv,
			Stage: domain.StageAdvertiserRetracted, Reason: "typo", RetractedAt: now},
		domain.ContractStarted{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1", Stage: domain.StageJoined,
			TemplateTermID: "t1", StartedAt: at},
		domain.ContractProposalExpired{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1",
			Stage: domain.StagePendingContractExpired, ExpiredAt: at},
		domain.ContractSuspended{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1", By: adv,
			Stage: domain.StageSuspended, Reason: "fraud check", SuspendedAt: now},
		domain.ContractReinstated{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1", By: adv,
			Stage: domain.StageJoined, Reason: "cleared", ReinstatedAt: now},
		domain.ContractSwitched{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:2", PreviousContractID: "p1:1",
			By: system, Stage: domain.StageJoined, TemplateTermID: "t2", PreviousTemplateTermID: "t1",
			EndDate: &later, SwitchedAt: at},
		domain.ContractSwitchScheduled{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1", By: adv,
			TemplateTermID: "t2", EffectiveAt: at, ScheduledAt: now},
		domain.ContractExpiryScheduled{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1", By: adv,
			EndDate: later, ScheduledAt: now},
		domain.ContractScheduleReverted{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1", By: adv,
			Schedule: domain.ScheduleSwitch, Reason: "changed our mind", RevertedAt: now},
		domain.ContractExpired{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1", By: system,
			Stage: domain.StageExpired, Reason: "season over", ExpiredAt: later},
		domain.ContractCancelled{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1", By: adv,
			Stage: domain.StageCancelled, Reason: "breach", CancelledAt: now},
		domain.ContractArchived{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1", Stage: domain.StageArchived,
			TemplateTermID: "t1", ArchivedAt: now},
		domain.PartnerDeactivated{PartnerID: "p1", ProgramID: "acme", ContractID: "p1:1",
			Stage: domain.StagePublisherDeactivated, DeactivatedAt: now},
	}
}

func TestContractEventsRoundTrip(t *testing.T) {
	t.Parallel()
	samples := map[string]domain.Event{}
	for _, ev := range contractEventSamples() {
		samples[ev.EventType()] = ev
	}
	for _, typ := range domain.EventTypes() {
		if !strings.HasPrefix(typ, "partner.contract_") && typ != domain.TypePartnerDeactivated {
			continue // other partner events have their own samples (partner_actions_test.go)
		}
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			ev, ok := samples[typ]
			if !ok {
				t.Fatalf("no sample of %s", typ)
			}
			raw, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			var shape map[string]any
			_ = json.Unmarshal(raw, &shape)
			for _, f := range []string{"partner_id", "program_id", "contract_id"} {
				if _, ok := shape[f]; !ok {
					t.Errorf("%s lacks %s: %s", typ, f, raw)
				}
			}
			back, err := domain.DecodeEvent(typ, domain.SchemaVersion, raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, ev) {
				t.Fatalf("round trip changed the event:\n%#v\n%#v", ev, back)
			}
		})
	}
}

func TestContractInputValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		stage domain.ContractStage
		move  domain.ContractMove
		in    domain.ContractInput
		want  []string
	}{
		{name: "propose without a term", move: domain.MovePropose, in: domain.ContractInput{}, want: []string{"template_term_id"}},
		{name: "bad term id", move: domain.MovePropose, in: domain.ContractInput{TemplateTermID: "-x"}, want: []string{"template_term_id"}},
		{name: "end before start", move: domain.MovePropose,
			in: domain.ContractInput{TemplateTermID: "t1", StartDate: days(10), EndDate: days(5)}, want: []string{"end_date"}},
		{name: "end in the past", move: domain.MovePropose,
			in: domain.ContractInput{TemplateTermID: "t1", EndDate: days(-1)}, want: []string{"end_date"}},
		{name: "respond_by in the past", move: domain.MovePropose,
			in: domain.ContractInput{TemplateTermID: "t1", RespondBy: days(-1)}, want: []string{"respond_by"}},
		{name: "unknown side", move: domain.MovePropose,
			in: domain.ContractInput{By: "affiliate", TemplateTermID: "t1"}, want: []string{"by"}},
		{name: "system is no side of the API", stage: domain.StageJoined, move: domain.MoveSuspend,
			in: domain.ContractInput{By: system}, want: []string{"by"}},
		{name: "every problem at once", move: domain.MovePropose,
			in: domain.ContractInput{By: "x", RespondBy: days(-1)}, want: []string{"by", "respond_by", "template_term_id"}},
		{name: "field the move does not take", stage: domain.StageJoined, move: domain.MoveSuspend,
			in: domain.ContractInput{EffectiveAt: days(3)}, want: []string{"effective_at"}},
		{name: "unknown action", move: "renegotiate", want: []string{"action"}},
		{name: "counter that changes nothing", stage: domain.StageAwaitingPublisherApproval, move: domain.MoveCounter,
			in: domain.ContractInput{By: pub, TemplateTermID: "t1"}, want: []string{"template_term_id"}},
		{name: "counter moving the start past the end", stage: domain.StageAwaitingPublisherApproval, move: domain.MoveCounter,
			in: domain.ContractInput{By: pub, TemplateTermID: "t2", StartDate: days(200)}, want: []string{"end_date"}},
		{name: "modify nothing", stage: domain.StageJoined, move: domain.MoveModify, want: []string{"body"}},
		{name: "modify: set and revert the expiry", stage: domain.StageJoined, move: domain.MoveModify,
			in: domain.ContractInput{EndDate: days(30), RevertExpiry: true}, want: []string{"end_date"}},
		{name: "expire before the start", stage: domain.StageAwaitingContractStart, move: domain.MoveExpire,
			in: domain.ContractInput{EffectiveAt: days(5)}, want: []string{"effective_at"}},
		{name: "switch without a term", stage: domain.StageJoined, move: domain.MoveSwitch, want: []string{"template_term_id"}},
		{name: "long reason", stage: domain.StageJoined, move: domain.MoveCancel,
			in: domain.ContractInput{Reason: strings.Repeat("x", 1001)}, want: []string{"reason"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := reach(t, tc.stage)
			evs, err := p.DecideContract(tc.move, tc.in, days(1))
			if !equalFields(err, tc.want...) {
				t.Fatalf("invalid fields = %v (%v), want %v", fields(err), err, tc.want)
			}
			if evs != nil {
				t.Fatalf("an invalid command returned events %v", evs)
			}
		})
	}
}

// DecideContract maps every API action to its move; the default side is
// the advertiser.
func TestDecideContractDefaultsToTheAdvertiser(t *testing.T) {
	t.Parallel()
	p := created(t)
	applyTo(t, &p)(p.DecideContract(domain.MovePropose, domain.ContractInput{TemplateTermID: "t1", EndDate: days(50)}, now))
	if c := p.State().Contract; c.Stage != domain.StageAwaitingPublisherApproval || c.ProposedBy != adv || c.ID != "p1:1" {
		t.Fatalf("contract %+v", c)
	}
	applyTo(t, &p)(p.DecideContract(domain.MoveAccept, domain.ContractInput{By: pub}, days(1)))
	applyTo(t, &p)(p.DecideContract(domain.MoveModify, domain.ContractInput{TemplateTermID: "t2", EffectiveAt: days(10)}, days(1)))
	if sw := p.State().Contract.ScheduledSwitch; sw == nil || sw.TemplateTermID != "t2" {
		t.Fatalf("modify did not schedule the switch: %+v", sw)
	}
	applyTo(t, &p)(p.DecideContract(domain.MoveModify, domain.ContractInput{RevertSwitch: true, RevertExpiry: true}, days(2)))
	if c := p.State().Contract; c.ScheduledSwitch != nil || c.EndDate != nil {
		t.Fatalf("revert left %+v", c)
	}
}

// An immediate switch over a scheduled one records that the scheduled one
// is dropped (the new contract has none; the log said nothing of it).
func TestImmediateSwitchRevertsTheScheduledOne(t *testing.T) {
	t.Parallel()
	p := reach(t, domain.StageJoined)
	applyTo(t, &p)(p.Switch(adv, "t2", days(20), days(1)))
	evs, err := p.Switch(adv, "t3", zero, days(2))
	if err != nil || len(evs) != 2 {
		t.Fatalf("switch now over a scheduled one: %v %v", evs, err)
	}
	rv, ok := evs[0].(domain.ContractScheduleReverted)
	if !ok || rv.Schedule != domain.ScheduleSwitch || rv.ContractID != p.State().Contract.ID || rv.By != adv {
		t.Fatalf("first event %#v, want the scheduled switch reverted on the old contract", evs[0])
	}
	applyTo(t, &p)(evs, nil)
	if c := p.State().Contract; c.TemplateTermID != "t3" || c.ScheduledSwitch != nil || c.Stage != domain.StageJoined {
		t.Fatalf("contract after the switch %+v", c)
	}
	// Without a scheduled switch, the switch alone.
	if evs, err := p.Switch(adv, "t1", zero, days(3)); err != nil || len(evs) != 1 {
		t.Fatalf("plain switch: %v %v", evs, err)
	}
}

// A saved state (JSON, as a read model keeps it) restores the same partner.
func TestRestorePartnerKeepsContracts(t *testing.T) {
	t.Parallel()
	p := reach(t, domain.StageJoined)
	applyTo(t, &p)(p.Switch(adv, "t2", zero, days(1)))
	applyTo(t, &p)(p.Switch(adv, "t3", days(20), days(2)))
	applyTo(t, &p)(p.Suspend(adv, "check", days(3)))
	s := p.State()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back domain.PartnerState
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	r := domain.RestorePartner(back)
	if !reflect.DeepEqual(r.State(), s) {
		t.Fatalf("restored state differs:\n%+v\n%+v", r.State(), s)
	}
	// Folding on the restored partner leaves the snapshot alone.
	applyTo(t, &r)(r.Reinstate(adv, "", days(4)))
	applyTo(t, &r)(r.Switch(adv, "t4", zero, days(5)))
	if !reflect.DeepEqual(p.State(), s) || s.Contract.Stage != domain.StageSuspended || len(s.ContractHistory) != 1 {
		t.Fatal("folding on a restored partner changed the original")
	}
	if rs := r.State(); rs.Contract.ID != "p1:3" || len(rs.ContractHistory) != 2 || rs.ContractHistory[1].ID != "p1:2" {
		t.Fatalf("after the switch: %s, history %d", rs.Contract.ID, len(rs.ContractHistory))
	}
	var shape struct {
		Contract map[string]any `json:"contract"`
	}
	_ = json.Unmarshal(raw, &shape)
	for _, f := range []string{"id", "template_term_id", "stage", "start_date", "end_date", "respond_by"} {
		if _, ok := shape.Contract[f]; !ok {
			t.Errorf("contract JSON lacks %s: %s", f, raw)
		}
	}
}

func TestDerivedViews(t *testing.T) {
	t.Parallel()
	cases := []struct {
		stage        domain.ContractStage
		status       string
		relationship string
		prospect     string
	}{
		{stage: noStage, status: "", relationship: "new", prospect: "new"},
		{stage: domain.StageAwaitingPublisherApproval, relationship: "outreach", prospect: "outreach"},
		{stage: domain.StageAwaitingAdvertiserApproval, relationship: "negotiating", prospect: "negotiating"},
		{stage: domain.StagePublisherCountered, relationship: "negotiating", prospect: "negotiating"},
		{stage: domain.StageAdvertiserCountered, relationship: "negotiating", prospect: "negotiating"},
		{stage: domain.StagePublisherDeclined, relationship: "outreach", prospect: "rejected_by_partner"},
		{stage: domain.StageAdvertiserDeclined, relationship: "outreach", prospect: "rejected_by_you"},
		{stage: domain.StagePublisherRetracted, relationship: "outreach", prospect: "outreach"},
		{stage: domain.StageAdvertiserRetracted, relationship: "outreach", prospect: "outreach"},
		{stage: domain.StagePendingContractExpired, relationship: "outreach", prospect: "outreach"},
		{stage: domain.StageAwaitingContractStart, relationship: "joined", prospect: "joined"},
		{stage: domain.StageJoined, status: "active", relationship: "joined", prospect: "joined"},
		{stage: domain.StageSuspended, status: "suspended", relationship: "joined", prospect: "suspended"},
		{stage: domain.StageExpired, status: "expired", relationship: "expired", prospect: "expired"},
		{stage: domain.StageCancelled, relationship: "expired", prospect: "expired"},
		{stage: domain.StageArchived, relationship: "expired", prospect: "expired"},             // was joined
		{stage: domain.StagePublisherDeactivated, relationship: "expired", prospect: "expired"}, // was joined
	}
	for _, tc := range cases {
		t.Run("stage_"+string(tc.stage), func(t *testing.T) {
			t.Parallel()
			p := reach(t, tc.stage)
			s := p.State()
			if got := domain.ContractStatus(s); got != tc.status {
				t.Errorf("status = %q, want %q", got, tc.status)
			}
			if got := domain.RelationshipStage(s); got != tc.relationship {
				t.Errorf("relationship stage = %q, want %q", got, tc.relationship)
			}
			if got := domain.ProspectStageOf(s); got != tc.prospect {
				t.Errorf("prospect stage = %q, want %q", got, tc.prospect)
			}
		})
	}
	// Without a contract, a prospect stage set by hand shows through.
	if got := domain.RelationshipStage(domain.PartnerState{ProspectStage: "outreach"}); got != "outreach" {
		t.Errorf("relationship of an e-mailed prospect = %q", got)
	}
	if got := domain.RelationshipStage(domain.PartnerState{ProspectStage: "rejected_by_you"}); got != "new" {
		t.Errorf("relationship of a rejected prospect = %q", got)
	}
}
