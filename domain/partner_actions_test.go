package domain_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/domain"
)

// One fully populated example of every partner event of the single-partner
// actions (account manager, prospect stage, notes, settings, links,
// messages, invitations, access links).
func actionEventSamples() []domain.Event {
	return []domain.Event{
		domain.PartnerAssigned{PartnerID: "p1", ProgramID: "acme", User: "ann@brand.example", PreviousUser: "u_7", AssignedAt: now},
		domain.PartnerUnassigned{PartnerID: "p1", ProgramID: "acme", PreviousUser: "ann@brand.example", UnassignedAt: now},
		domain.PartnerProspectStageChanged{PartnerID: "p1", ProgramID: "acme", Stage: "outreach", PreviousStage: "new",
			Cause: domain.CauseMessageSent, ChangedAt: now},
		domain.PartnerNoteAdded{PartnerID: "p1", ProgramID: "acme", NoteID: "n_1", Author: "user:ann via apikey:1",
			Personal: domain.NoteText{Text: "called Ann"}, AddedAt: now},
		domain.PartnerTrackingSettingsChanged{PartnerID: "p1", ProgramID: "acme",
			TrackingSettings: domain.TrackingSettings{PostbackURL: ptr("https://t.example/pb"), TrackingPixel: true},
			Changed:          []string{"postback_url", "tracking_pixel"}, ChangedAt: now},
		domain.PartnerClientCostSettingsChanged{PartnerID: "p1", ProgramID: "acme",
			ClientCostSettings: domain.ClientCostSettings{Enabled: true, DefaultCostType: ptr("cpa"),
				Exceptions: []domain.CostException{{ActionTrackerID: "at1", CostType: "cpc"}}},
			Changed: []string{"enabled"}, ChangedAt: now},
		domain.PartnerComplianceSettingsChanged{PartnerID: "p1", ProgramID: "acme",
			ComplianceSettings: domain.ComplianceSettings{ReviewSchedule: "monthly", AuditRate: 12.5},
			Changed:            []string{"audit_rate"}, ChangedAt: now},
		domain.PartnerAccountLinked{PartnerID: "p1", ProgramID: "acme", LinkedPartnerID: "p2", InitiatedBy: "p1",
			Reason: "same owner", LinkedAt: now},
		domain.PartnerAccountUnlinked{PartnerID: "p1", ProgramID: "acme", LinkedPartnerID: "p2", InitiatedBy: "p2",
			Reason: "sold", UnlinkedAt: now},
		domain.PartnerMessageSent{PartnerID: "p1", ProgramID: "acme", MessageID: "m_1", Channel: "email",
			Personal: domain.MessageContent{To: "a@b.example", Subject: "Hi", Body: "Hello"}, SentAt: now},
		domain.PartnerInvited{PartnerID: "p1", ProgramID: "acme", InviteID: "i_1", Kind: "survey", TargetID: "s1",
			Personal: domain.InviteMessage{Message: "Tell us"}, InvitedAt: now},
		domain.PartnerAccessLinkIssued{PartnerID: "p1", ProgramID: "acme", LinkID: "al_1", Purpose: domain.AccessLinkPurpose,
			ExpiresAt: now.Add(time.Minute), IssuedAt: now},
		domain.PartnerAccessLinkRedeemed{PartnerID: "p1", ProgramID: "acme", LinkID: "al_1", RedeemedAt: now},
	}
}

// Every action event survives a JSON round trip, carries partner_id and
// program_id, and keeps free text under "personal" only.
func TestActionEventsRoundTrip(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, ev := range actionEventSamples() {
		typ := ev.EventType()
		seen[typ] = true
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		var shape map[string]any
		_ = json.Unmarshal(raw, &shape)
		for _, f := range []string{"partner_id", "program_id"} {
			if _, ok := shape[f]; !ok {
				t.Errorf("%s lacks %s: %s", typ, f, raw)
			}
		}
		for _, f := range []string{"text", "subject", "body", "message", "to"} {
			if _, leaked := shape[f]; leaked {
				t.Errorf("%s has personal field %s outside personal: %s", typ, f, raw)
			}
		}
		back, err := domain.DecodeEvent(typ, domain.SchemaVersion, raw)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, ev) {
			t.Errorf("round trip changed %s:\n%#v\n%#v", typ, ev, back)
		}
	}
	for _, typ := range domain.EventTypes() {
		other := strings.HasPrefix(typ, "partner.contract_") || typ == domain.TypePartnerDeactivated ||
			typ == domain.TypePartnerCreated || typ == domain.TypePartnerProfileUpdated || typ == domain.TypePartnerGroupsChanged
		if strings.HasPrefix(typ, "partner.") && !other && !seen[typ] {
			t.Errorf("no sample of %s", typ)
		}
	}
}

// createdWith returns partner p1 created with the given signup source and
// relationship type (and an e-mail address).
func createdWith(t *testing.T, source, relationship string) domain.Partner {
	t.Helper()
	var p domain.Partner
	evs, err := p.Create(domain.NewPartner{ProgramID: "acme", PartnerID: "p1", SignupSource: source,
		Profile:  domain.Profile{Name: "Acme", RelationshipType: relationship},
		Personal: domain.Personal{Email: "ann@acme.example"}}, now)
	apply(t, &p, evs, err)
	return p
}

// decision is one row of a decision table: given a partner, when a
// decision, then events of these types, or an error.
type decision struct {
	name    string
	given   func(t *testing.T) domain.Partner
	when    func(p *domain.Partner) ([]domain.Event, error)
	then    []string // event types; nil with no error wanted: no event
	invalid []string // invalid fields
	is      error    // errors.Is target
	check   func(t *testing.T, s domain.PartnerState)
}

func runDecisions(t *testing.T, cases []decision) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var p domain.Partner
			if tc.given != nil {
				p = tc.given(t)
			}
			evs, err := tc.when(&p)
			switch {
			case tc.invalid != nil:
				if got := fields(err); strings.Join(got, ",") != strings.Join(tc.invalid, ",") {
					t.Fatalf("invalid fields = %v (err %v), want %v", got, err, tc.invalid)
				}
			case tc.is != nil:
				if !errors.Is(err, tc.is) {
					t.Fatalf("err = %v, want %v", err, tc.is)
				}
			case err != nil:
				t.Fatalf("refused: %v", err)
			}
			if err != nil {
				if evs != nil {
					t.Fatalf("a refused decision returned events %v", evs)
				}
				return
			}
			var types []string
			for _, ev := range evs {
				types = append(types, ev.EventType())
				p.Apply(ev)
			}
			if strings.Join(types, ",") != strings.Join(tc.then, ",") {
				t.Fatalf("events = %v, want %v", types, tc.then)
			}
			if tc.check != nil {
				tc.check(t, p.State())
			}
		})
	}
}

// then folds decisions that must succeed onto a fresh partner of given.
func then(given func(t *testing.T) domain.Partner, steps ...func(p *domain.Partner) ([]domain.Event, error)) func(t *testing.T) domain.Partner {
	return func(t *testing.T) domain.Partner {
		t.Helper()
		p := given(t)
		for _, step := range steps {
			evs, err := step(&p)
			apply(t, &p, evs, err)
		}
		return p
	}
}

func TestAssign(t *testing.T) {
	t.Parallel()
	assign := func(u string) func(p *domain.Partner) ([]domain.Event, error) {
		return func(p *domain.Partner) ([]domain.Event, error) { return p.Assign(u, now) }
	}
	assigned := then(created, assign("ann@brand.example"))
	runDecisions(t, []decision{
		{name: "assign an e-mail", given: created, when: assign("ann@brand.example"), then: []string{domain.TypePartnerAssigned},
			check: func(t *testing.T, s domain.PartnerState) {
				if s.AssignedTo != "ann@brand.example" {
					t.Fatalf("assigned to %q", s.AssignedTo)
				}
			}},
		{name: "reassign to an ID", given: assigned, when: assign("u_42"), then: []string{domain.TypePartnerAssigned}},
		{name: "same user: no event", given: assigned, when: assign("ann@brand.example")},
		{name: "unassign", given: assigned, when: assign(""), then: []string{domain.TypePartnerUnassigned},
			check: func(t *testing.T, s domain.PartnerState) {
				if s.AssignedTo != "" {
					t.Fatalf("still assigned to %q", s.AssignedTo)
				}
			}},
		{name: "unassign nobody: no event", given: created, when: assign("")},
		{name: "spaces", given: created, when: assign("Ann Smith"), invalid: []string{"user"}},
		{name: "too long", given: created, when: assign(strings.Repeat("a", 201)), invalid: []string{"user"}},
		{name: "200 characters", given: created, when: assign(strings.Repeat("a", 200)), then: []string{domain.TypePartnerAssigned}},
		{name: "control character", given: created, when: assign("ann\x00"), invalid: []string{"user"}},
		{name: "missing partner", when: assign("ann"), is: domain.ErrNotFound},
	})
}

func TestSetProspectStage(t *testing.T) {
	t.Parallel()
	set := func(s string) func(p *domain.Partner) ([]domain.Event, error) {
		return func(p *domain.Partner) ([]domain.Event, error) { return p.SetProspectStage(s, now) }
	}
	runDecisions(t, []decision{
		{name: "new to outreach", given: created, when: set("outreach"), then: []string{domain.TypePartnerProspectStageChanged},
			check: func(t *testing.T, s domain.PartnerState) {
				if domain.ProspectStageOf(s) != "outreach" || domain.RelationshipStage(s) != "outreach" {
					t.Fatalf("prospect stage %s, relationship stage %s", domain.ProspectStageOf(s), domain.RelationshipStage(s))
				}
			}},
		{name: "rejected by you", given: created, when: set("rejected_by_you"), then: []string{domain.TypePartnerProspectStageChanged}},
		{name: "same stage: no event", given: created, when: set("new")},
		{name: "unknown stage", given: created, when: set("maybe"), invalid: []string{"stage"}},
		{name: "with a contract the stage follows it", given: func(t *testing.T) domain.Partner { return reach(t, domain.StageJoined) },
			when: set("outreach"), is: domain.ErrConflict},
		{name: "missing partner", when: set("new"), is: domain.ErrNotFound},
	})
}

func TestAddNote(t *testing.T) {
	t.Parallel()
	note := func(id, text string) func(p *domain.Partner) ([]domain.Event, error) {
		return func(p *domain.Partner) ([]domain.Event, error) { return p.AddNote(id, "user:ann", text, now) }
	}
	runDecisions(t, []decision{
		{name: "a note", given: created, when: note("n_1", "Prefers e-mail."), then: []string{domain.TypePartnerNoteAdded}},
		{name: "10000 characters", given: created, when: note("n_1", strings.Repeat("é", 10000)), then: []string{domain.TypePartnerNoteAdded}},
		{name: "too long", given: created, when: note("n_1", strings.Repeat("a", 10001)), invalid: []string{"text"}},
		{name: "blank", given: created, when: note("n_1", " \n "), invalid: []string{"text"}},
		{name: "not UTF-8", given: created, when: note("n_1", "\xff"), invalid: []string{"text"}},
		{name: "bad ID", given: created, when: note("-", "x"), invalid: []string{"id"}},
		{name: "same ID twice", given: then(created, note("n_1", "a")), when: note("n_1", "b"), is: domain.ErrAlreadyExists},
		{name: "missing partner", when: note("n_1", "x"), is: domain.ErrNotFound},
	})
	p := then(created, note("n_1", "first"), note("n_2", "second"))(t)
	notes := p.Notes()
	if len(notes) != 2 || notes[0].ID != "n_1" || notes[1].Text != "second" || notes[1].Author != "user:ann" || !notes[1].CreatedAt.Equal(now) {
		t.Fatalf("notes = %+v", notes)
	}
	// A copy folds its own notes: the original does not see them.
	q := p
	applyTo(t, &q)(q.AddNote("n_3", "a", "copy", now))
	applyTo(t, &p)(p.AddNote("n_4", "a", "original", now))
	if got := q.Notes(); len(got) != 3 || got[2].ID != "n_3" {
		t.Fatalf("copy's notes = %+v", got)
	}
	if got := p.Notes(); len(got) != 3 || got[2].ID != "n_4" {
		t.Fatalf("original's notes = %+v", got)
	}
}

func TestChangeSettings(t *testing.T) {
	t.Parallel()
	change := func(ch domain.SettingsChange) func(p *domain.Partner) ([]domain.Event, error) {
		return func(p *domain.Partner) ([]domain.Event, error) { return p.ChangeSettings(ch, now) }
	}
	tracking := func(u *string, pixel bool) domain.SettingsChange {
		return domain.SettingsChange{Tracking: &domain.TrackingSettings{PostbackURL: u, TrackingPixel: pixel}}
	}
	cost := func(on bool, def *string, ex ...domain.CostException) domain.SettingsChange {
		return domain.SettingsChange{ClientCost: &domain.ClientCostSettings{Enabled: on, DefaultCostType: def, Exceptions: ex}}
	}
	compliance := func(s string, rate float64) domain.SettingsChange {
		return domain.SettingsChange{Compliance: &domain.ComplianceSettings{ReviewSchedule: s, AuditRate: rate}}
	}
	ex := func(id, typ string) domain.CostException {
		return domain.CostException{ActionTrackerID: id, CostType: typ}
	}
	many := make([]domain.CostException, 101)
	for i := range many {
		many[i] = ex(fmt.Sprintf("at%d", i), "cpa")
	}
	runDecisions(t, []decision{
		{name: "defaults", given: created, when: change(tracking(nil, false)),
			check: func(t *testing.T, s domain.PartnerState) {
				want := domain.Settings{ClientCost: domain.ClientCostSettings{Exceptions: []domain.CostException{}},
					Compliance: domain.ComplianceSettings{ReviewSchedule: "none"}}
				if !reflect.DeepEqual(s.Settings, want) {
					t.Fatalf("default settings = %+v", s.Settings)
				}
			}},
		{name: "postback and pixel", given: created, when: change(tracking(ptr("https://t.example/pb?x={click}"), true)),
			then: []string{domain.TypePartnerTrackingSettingsChanged},
			check: func(t *testing.T, s domain.PartnerState) {
				if s.Settings.Tracking.PostbackURL == nil || !s.Settings.Tracking.TrackingPixel {
					t.Fatalf("tracking = %+v", s.Settings.Tracking)
				}
			}},
		{name: "same tracking: no event", given: then(created, change(tracking(ptr("https://t.example"), true))),
			when: change(tracking(ptr("https://t.example"), true))},
		{name: "bad postback url", given: created, when: change(tracking(ptr("ftp://t.example"), false)), invalid: []string{"postback_url"}},
		{name: "empty postback url", given: created, when: change(tracking(ptr(""), false)), invalid: []string{"postback_url"}},
		{name: "client cost on", given: created, when: change(cost(true, ptr("cpa"), ex("at1", "cpc"), ex("at2", "flat"))),
			then: []string{domain.TypePartnerClientCostSettingsChanged},
			check: func(t *testing.T, s domain.PartnerState) {
				if c := s.Settings.ClientCost; !c.Enabled || *c.DefaultCostType != "cpa" || len(c.Exceptions) != 2 {
					t.Fatalf("client cost = %+v", c)
				}
			}},
		{name: "client cost off keeps no type", given: created, when: change(cost(false, nil))},
		{name: "enabled without a default", given: created, when: change(cost(true, nil)), invalid: []string{"default_cost_type"}},
		{name: "unknown cost types", given: created, when: change(cost(true, ptr("cpx"), ex("at1", "free"), ex("-", "cpa"), ex("at1", "cpa"))),
			invalid: []string{"default_cost_type", "exceptions[0].cost_type", "exceptions[1].action_tracker_id", "exceptions[2].action_tracker_id"}},
		{name: "too many exceptions", given: created, when: change(cost(true, ptr("cpa"), many...)), invalid: []string{"exceptions"}},
		{name: "compliance", given: created, when: change(compliance("quarterly", 33.3)),
			then: []string{domain.TypePartnerComplianceSettingsChanged}},
		{name: "audit rate bounds", given: created, when: change(compliance("weekly", 100)),
			then: []string{domain.TypePartnerComplianceSettingsChanged}},
		{name: "audit rate over 100", given: created, when: change(compliance("weekly", 100.5)), invalid: []string{"audit_rate"}},
		{name: "negative audit rate and unknown schedule", given: created, when: change(compliance("daily", -1)),
			invalid: []string{"audit_rate", "review_schedule"}},
		{name: "nothing given", given: created, when: change(domain.SettingsChange{}), invalid: []string{"kind"}},
		{name: "missing partner", when: change(compliance("none", 0)), is: domain.ErrNotFound},
	})
	// Changing the rate only: changed names it alone.
	p := created(t)
	evs, err := p.ChangeSettings(compliance("none", 100), now)
	if err != nil || len(evs) != 1 || strings.Join(evs[0].(domain.PartnerComplianceSettingsChanged).Changed, ",") != "audit_rate" {
		t.Fatalf("changed = %v, %v", evs, err)
	}
}

func TestLinkAndUnlink(t *testing.T) {
	t.Parallel()
	link := func(other, initiator, reason string) func(p *domain.Partner) ([]domain.Event, error) {
		return func(p *domain.Partner) ([]domain.Event, error) { return p.Link(other, initiator, reason, now) }
	}
	unlink := func(other, reason string) func(p *domain.Partner) ([]domain.Event, error) {
		return func(p *domain.Partner) ([]domain.Event, error) { return p.Unlink(other, "p1", reason, now) }
	}
	linked := then(created, link("p3", "p1", "same owner"), link("p2", "p2", "merged"))
	runDecisions(t, []decision{
		{name: "link", given: created, when: link("p2", "p1", " same owner "), then: []string{domain.TypePartnerAccountLinked},
			check: func(t *testing.T, s domain.PartnerState) {
				if len(s.Links) != 1 || s.Links[0].PartnerID != "p2" || s.Links[0].Reason != "same owner" {
					t.Fatalf("links = %+v", s.Links)
				}
			}},
		{name: "links are sorted", given: linked, when: link("p0", "p1", "x"), then: []string{domain.TypePartnerAccountLinked},
			check: func(t *testing.T, s domain.PartnerState) {
				if len(s.Links) != 3 || s.Links[0].PartnerID != "p0" || s.Links[1].PartnerID != "p2" || s.Links[2].PartnerID != "p3" {
					t.Fatalf("links = %+v", s.Links)
				}
			}},
		{name: "twice", given: linked, when: link("p2", "p1", "again"), is: domain.ErrConflict},
		{name: "itself", given: created, when: link("p1", "p1", "x"), invalid: []string{"partner_id"}},
		{name: "no reason and no partner", given: created, when: link("", "p1", " "), invalid: []string{"partner_id", "reason"}},
		{name: "reason too long", given: created, when: link("p2", "p1", strings.Repeat("r", 1001)), invalid: []string{"reason"}},
		{name: "a third partner initiates", given: created, when: link("p2", "p9", "x"), invalid: []string{"initiated_by"}},
		{name: "unlink", given: linked, when: unlink("p2", "sold"), then: []string{domain.TypePartnerAccountUnlinked},
			check: func(t *testing.T, s domain.PartnerState) {
				if len(s.Links) != 1 || s.Links[0].PartnerID != "p3" {
					t.Fatalf("links = %+v", s.Links)
				}
			}},
		{name: "unlink the last", given: then(created, link("p2", "p1", "x")), when: unlink("p2", ""),
			then: []string{domain.TypePartnerAccountUnlinked},
			check: func(t *testing.T, s domain.PartnerState) {
				if s.Links != nil {
					t.Fatalf("links = %#v, want nil", s.Links)
				}
			}},
		{name: "unlink an unknown link", given: linked, when: unlink("p9", ""), is: domain.ErrNotFound},
		{name: "missing partner", when: link("p2", "p1", "x"), is: domain.ErrNotFound},
	})
	full := created(t)
	for i := range domain.MaxAccountLinks {
		applyTo(t, &full)(full.Link(fmt.Sprintf("q%d", i), "p1", "x", now))
	}
	if _, err := full.Link("p2", "p1", "x", now); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("link %d: %v, want a conflict", domain.MaxAccountLinks+1, err)
	}
}

func TestMessagesAndInvites(t *testing.T) {
	t.Parallel()
	send := func(channel, subject, body string) func(p *domain.Partner) ([]domain.Event, error) {
		return func(p *domain.Partner) ([]domain.Event, error) {
			return p.SendMessage(domain.NewMessage{MessageID: "m_1", Channel: channel, Subject: subject, Body: body}, now)
		}
	}
	invite := func(kind, target, msg string) func(p *domain.Partner) ([]domain.Event, error) {
		return func(p *domain.Partner) ([]domain.Event, error) {
			return p.Invite(domain.NewInvite{InviteID: "i_1", Kind: kind, TargetID: target, Message: msg}, now)
		}
	}
	withEmail := func(t *testing.T) domain.Partner { return createdWith(t, "", "direct") }
	deactivated := func(t *testing.T) domain.Partner {
		p := created(t)
		applyTo(t, &p)(p.PublisherDeactivated(now))
		return p
	}
	runDecisions(t, []decision{
		{name: "message to a new prospect: outreach", given: created, when: send("", "Hi", "Welcome"),
			then: []string{domain.TypePartnerMessageSent, domain.TypePartnerProspectStageChanged},
			check: func(t *testing.T, s domain.PartnerState) {
				if s.ProspectStage != "outreach" {
					t.Fatalf("prospect stage = %s", s.ProspectStage)
				}
			}},
		{name: "message to a joined partner", given: func(t *testing.T) domain.Partner { return reach(t, domain.StageJoined) },
			when: send("message", "Hi", "News"), then: []string{domain.TypePartnerMessageSent}},
		{name: "e-mail", given: withEmail, when: send("email", "Hi", "Welcome"),
			then: []string{domain.TypePartnerMessageSent, domain.TypePartnerProspectStageChanged}},
		{name: "e-mail without an address", given: created, when: send("email", "Hi", "x"), is: domain.ErrConflict},
		{name: "bad channel, no subject, no body", given: created, when: send("sms", "", ""), invalid: []string{"body", "channel", "subject"}},
		{name: "subject too long", given: created, when: send("", strings.Repeat("s", 201), "x"), invalid: []string{"subject"}},
		{name: "subject over two lines", given: withEmail, when: send("email", "Hi\nBcc: x@evil.example", "x"), invalid: []string{"subject"}},
		{name: "subject with a carriage return", given: created, when: send("", "Hi\r", "x"), invalid: []string{"subject"}},
		{name: "partner left the platform", given: deactivated, when: send("", "Hi", "x"), is: domain.ErrConflict},
		{name: "invite to a campaign", given: created, when: invite("campaign", "summer-sale", ""),
			then: []string{domain.TypePartnerInvited, domain.TypePartnerProspectStageChanged}},
		{name: "invite to a survey, outreach already", given: then(created, send("", "Hi", "x")), when: invite("survey", "s1", "Please"),
			then: []string{domain.TypePartnerInvited}},
		{name: "bad invite", given: created, when: invite("party", "", strings.Repeat("m", 5001)), invalid: []string{"kind", "message", "target_id"}},
		{name: "missing partner", when: invite("survey", "s1", ""), is: domain.ErrNotFound},
	})
	p := withEmail(t)
	evs, _ := p.SendMessage(domain.NewMessage{MessageID: "m_1", Channel: "email", Subject: " Hi ", Body: "B"}, now)
	if m := evs[0].(domain.PartnerMessageSent); m.Personal.To != "ann@acme.example" || m.Personal.Subject != "Hi" {
		t.Fatalf("e-mail event = %+v", m)
	}
}

func TestAccessLinks(t *testing.T) {
	t.Parallel()
	direct := func(t *testing.T) domain.Partner { return createdWith(t, domain.SignupDirectLink, "direct") }
	exp := now.Add(10 * time.Minute)
	issue := func(id string, expires time.Time) func(p *domain.Partner) ([]domain.Event, error) {
		return func(p *domain.Partner) ([]domain.Event, error) { return p.IssueAccessLink(id, expires, now) }
	}
	redeem := func(id string, expires, at time.Time) func(p *domain.Partner) ([]domain.Event, error) {
		return func(p *domain.Partner) ([]domain.Event, error) { return p.RedeemAccessLink(id, expires, at) }
	}
	issued := then(direct, issue("al_1", exp))
	runDecisions(t, []decision{
		{name: "direct-link partner", given: direct, when: issue("al_1", exp), then: []string{domain.TypePartnerAccessLinkIssued}},
		{name: "15 minutes", given: direct, when: issue("al_1", now.Add(domain.MaxAccessLinkTTL)), then: []string{domain.TypePartnerAccessLinkIssued}},
		{name: "longer than 15 minutes", given: direct, when: issue("al_1", now.Add(domain.MaxAccessLinkTTL+time.Second)), invalid: []string{"ttl_seconds"}},
		{name: "already expired", given: direct, when: issue("al_1", now), invalid: []string{"ttl_seconds"}},
		{name: "marketplace signup", given: func(t *testing.T) domain.Partner { return createdWith(t, "marketplace", "direct") },
			when: issue("al_1", exp), is: domain.ErrConflict},
		{name: "unknown signup source", given: created, when: issue("al_1", exp), is: domain.ErrConflict},
		{name: "direct link but a marketplace relationship", given: func(t *testing.T) domain.Partner { return createdWith(t, "direct_link", "marketplace") },
			when: issue("al_1", exp), is: domain.ErrConflict},
		{name: "same link ID twice", given: issued, when: issue("al_1", exp), is: domain.ErrAlreadyExists},
		{name: "redeem", given: issued, when: redeem("al_1", exp, now.Add(time.Minute)), then: []string{domain.TypePartnerAccessLinkRedeemed}},
		{name: "redeem twice", given: then(issued, redeem("al_1", exp, now.Add(time.Minute))), when: redeem("al_1", exp, now.Add(2*time.Minute)),
			is: domain.ErrConflict},
		{name: "redeem when expired", given: issued, when: redeem("al_1", exp, exp), is: domain.ErrConflict},
		{name: "redeem a link never issued", given: issued, when: redeem("al_2", exp, now), invalid: []string{"token"}},
		{name: "redeem with another expiry", given: issued, when: redeem("al_1", exp.Add(time.Hour), now), invalid: []string{"token"}},
		{name: "redeem after the partner moved to the marketplace", given: then(issued, func(p *domain.Partner) ([]domain.Event, error) {
			return p.UpdateProfile(domain.Patch{"relationship_type": json.RawMessage(`"marketplace"`)}, now)
		}), when: redeem("al_1", exp, now), is: domain.ErrConflict},
		{name: "redeem on a missing partner", when: redeem("al_1", exp, now), invalid: []string{"token"}},
	})
	// Expired links are forgotten when a later one is issued; a pruned
	// link's token is still reported as expired.
	p := then(direct, issue("al_1", now.Add(time.Minute)))(t)
	later := now.Add(time.Hour)
	applyTo(t, &p)(p.IssueAccessLink("al_2", later.Add(time.Minute), later))
	if _, err := p.RedeemAccessLink("al_1", now.Add(time.Minute), later); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("redeeming a pruned, expired link: %v", err)
	}
	applyTo(t, &p)(p.RedeemAccessLink("al_2", later.Add(time.Minute), later))
}

// signup_source is a creation field: validated, kept, and not editable.
func TestSignupSource(t *testing.T) {
	t.Parallel()
	var p domain.Partner
	_, err := p.Create(domain.NewPartner{ProgramID: "acme", PartnerID: "p1", SignupSource: "flyer",
		Profile: domain.Profile{Name: "A", RelationshipType: "direct"}}, now)
	if got := fields(err); strings.Join(got, ",") != "signup_source" {
		t.Fatalf("invalid fields = %v", got)
	}
	p = createdWith(t, "direct_link", "direct")
	if p.State().SignupSource != "direct_link" {
		t.Fatalf("signup source = %q", p.State().SignupSource)
	}
	if _, err := p.UpdateProfile(domain.Patch{"signup_source": json.RawMessage(`"import"`)}, now); fields(err) == nil {
		t.Fatalf("signup_source was editable: %v", err)
	}
}

// The new state survives a JSON round trip through a saved state, and a
// restored partner folds without touching the original.
func TestRestorePartnerKeepsActions(t *testing.T) {
	t.Parallel()
	p := createdWith(t, "direct_link", "direct")
	applyTo(t, &p)(p.Assign("ann", now))
	applyTo(t, &p)(p.Link("p2", "p1", "same owner", now))
	applyTo(t, &p)(p.ChangeSettings(domain.SettingsChange{ClientCost: &domain.ClientCostSettings{Enabled: true, DefaultCostType: ptr("cpc"),
		Exceptions: []domain.CostException{{ActionTrackerID: "at1", CostType: "cpa"}}}}, now))
	s := p.State()
	raw, _ := json.Marshal(s)
	var back domain.PartnerState
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	r := domain.RestorePartner(back)
	if !reflect.DeepEqual(r.State(), s) {
		t.Fatalf("restored state differs:\n%+v\n%+v", r.State(), s)
	}
	applyTo(t, &r)(r.Link("p3", "p1", "x", now))
	applyTo(t, &r)(r.Unlink("p2", "p1", "", now))
	if !reflect.DeepEqual(p.State(), s) {
		t.Fatal("folding on a restored partner changed the original")
	}
	if st := r.State(); len(st.Links) != 1 || st.Links[0].PartnerID != "p3" || st.AssignedTo != "ann" || st.SignupSource != "direct_link" {
		t.Fatalf("restored and folded: %+v", st)
	}
}
