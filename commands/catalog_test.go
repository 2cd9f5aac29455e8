package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
)

// fakeIndex answers the processes' look-ups from fixed lists.
type fakeIndex struct {
	terms, groups map[string][]string
	err           error
}

func (f fakeIndex) PartnersOfTemplateTerm(_ context.Context, _, id string, _ uint64, _ eventstore.Position) ([]string, error) {
	return f.terms[id], f.err
}

func (f fakeIndex) PartnersOfGroup(_ context.Context, _, id string, _ uint64, _ eventstore.Position) ([]string, error) {
	return f.groups[id], f.err
}

// hookStore runs a hook once, before the first append to a given stream:
// it stands for another request landing between a command's checks and its
// append.
type hookStore struct {
	eventstore.Store
	stream string
	once   sync.Once
	hook   func()
}

func (h *hookStore) Append(ctx context.Context, stream string, expected int64, evs []eventstore.EventData) (eventstore.AppendResult, error) {
	if stream == h.stream {
		h.once.Do(h.hook)
	}
	return h.Store.Append(ctx, stream, expected, evs)
}

type fixture struct {
	t     *testing.T
	cmds  *commands.Commands
	store eventstore.Store
}

func newFixture(t *testing.T) *fixture { return newFixtureAt(t, nil) }

// newFixtureAt is newFixture with the commands' clock (nil: time.Now).
func newFixtureAt(t *testing.T, now func() time.Time) *fixture {
	t.Helper()
	s, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &fixture{t: t, cmds: commands.New(commands.Deps{Store: s, Now: now}), store: s}
}

var ctx = context.Background()

func (f *fixture) partner(id string) {
	f.t.Helper()
	if _, _, err := f.cmds.CreatePartner.Handle(ctx, domain.NewPartner{ProgramID: "acme", PartnerID: id,
		Profile: domain.Profile{Name: id, RelationshipType: "direct"}}, commands.Meta{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) term(id string) {
	f.t.Helper()
	if _, _, err := f.cmds.CreateTemplateTerm.Handle(ctx, domain.NewTemplateTerm{ProgramID: "acme", ID: id, Name: id}, commands.Meta{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) group(id string) {
	f.t.Helper()
	if _, _, err := f.cmds.CreateGroup.Handle(ctx, domain.NewGroup{ProgramID: "acme", ID: id, Name: id}, commands.Meta{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) move(partner string, m domain.ContractMove, in domain.ContractInput) (domain.PartnerState, error) {
	_, st, err := f.cmds.MoveContract.Handle(ctx, commands.MoveContract{ProgramID: "acme", PartnerID: partner, Move: m, Input: in}, commands.Meta{})
	return st, err
}

func (f *fixture) mustMove(partner string, m domain.ContractMove, in domain.ContractInput) domain.PartnerState {
	f.t.Helper()
	st, err := f.move(partner, m, in)
	if err != nil {
		f.t.Fatalf("%s on %s: %v", m, partner, err)
	}
	return st
}

func (f *fixture) load(partner string) domain.PartnerState {
	f.t.Helper()
	p, _, _, err := commands.Load[domain.Partner](ctx, f.store, domain.PartnerStream("acme", partner))
	if err != nil {
		f.t.Fatal(err)
	}
	return p.State()
}

func stage(s domain.PartnerState) domain.ContractStage {
	if s.Contract == nil {
		return ""
	}
	return s.Contract.Stage
}

func fieldsOf(err error) []string {
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	for _, f := range ve.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestContractMovesCheckTheTemplateTerm(t *testing.T) {
	f := newFixture(t)
	f.partner("p1")
	f.term("gold")
	if _, err := f.move("p1", domain.MovePropose, domain.ContractInput{TemplateTermID: "nosuch"}); !reflect.DeepEqual(fieldsOf(err), []string{"template_term_id"}) {
		t.Fatalf("propose on a missing term: %v", err)
	}
	if _, err := f.move("nobody", domain.MovePropose, domain.ContractInput{TemplateTermID: "nosuch"}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("a missing partner comes before a missing term: %v", err)
	}
	if st := f.mustMove("p1", domain.MovePropose, domain.ContractInput{TemplateTermID: "gold"}); stage(st) != domain.StageAwaitingPublisherApproval {
		t.Fatalf("stage after propose = %s", stage(st))
	}
	// An illegal move is a conflict even when its term would be refused too.
	if _, err := f.move("p1", domain.MovePropose, domain.ContractInput{TemplateTermID: "nosuch"}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("second propose: %v", err)
	}
	if st := f.mustMove("p1", domain.MoveAccept, domain.ContractInput{By: domain.SidePublisher}); stage(st) != domain.StageJoined {
		t.Fatalf("stage after accept = %s", stage(st))
	}
	f.term("silver")
	if _, _, err := f.cmds.ArchiveTemplateTerm.Handle(ctx, "acme", "silver", commands.Meta{}, fakeIndex{}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []domain.ContractMove{domain.MoveSwitch, domain.MoveModify} {
		in := domain.ContractInput{TemplateTermID: "silver"}
		if m == domain.MoveModify {
			in.EffectiveAt = time.Now().Add(time.Hour)
		}
		_, err := f.move("p1", m, in)
		if !reflect.DeepEqual(fieldsOf(err), []string{"template_term_id"}) || !strings.Contains(err.Error(), "archived") {
			t.Fatalf("%s to an archived term: %v", m, err)
		}
	}
}

func TestSwitchToANewTemplateTerm(t *testing.T) {
	f := newFixture(t)
	f.partner("p1")
	f.term("gold")
	switchTo := func(nt domain.NewTemplateTerm) (domain.PartnerState, error) {
		_, st, err := f.cmds.MoveContract.Handle(ctx, commands.MoveContract{ProgramID: "acme", PartnerID: "p1",
			Move: domain.MoveSwitch, NewTerm: &nt}, commands.Meta{})
		return st, err
	}
	// Not joined yet: the switch is refused and no term is created.
	if _, err := switchTo(domain.NewTemplateTerm{ID: "early", Name: "Early"}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("switch without a contract: %v", err)
	}
	if evs, _ := f.store.ReadStream(ctx, domain.TemplateTermStream("acme", "early"), 0, eventstore.Forwards, 10); len(evs) != 0 {
		t.Fatal("a refused switch created its new term")
	}
	if _, err := switchTo(domain.NewTemplateTerm{Name: ""}); !reflect.DeepEqual(fieldsOf(err), []string{"new_template_term.name"}) {
		t.Fatalf("new term without a name: %v", err)
	}
	f.mustMove("p1", domain.MovePropose, domain.ContractInput{TemplateTermID: "gold"})
	f.mustMove("p1", domain.MoveAccept, domain.ContractInput{By: domain.SidePublisher})
	st, err := switchTo(domain.NewTemplateTerm{Name: "Platinum", Description: "10 %"})
	if err != nil {
		t.Fatal(err)
	}
	id := st.Contract.TemplateTermID
	if !strings.HasPrefix(id, "tt_") || stage(st) != domain.StageJoined || st.Contract.SwitchedFrom != "p1:1" {
		t.Fatalf("after switching to a new term: %+v", st.Contract)
	}
	term, _, _, err := commands.Load[domain.TemplateTerm](ctx, f.store, domain.TemplateTermStream("acme", id))
	if err != nil || term.State().Name != "Platinum" || term.State().Description != "10 %" {
		t.Fatalf("the new term = %+v, %v", term.State(), err)
	}
	// Both a term ID and a new term: refused.
	_, _, err = f.cmds.MoveContract.Handle(ctx, commands.MoveContract{ProgramID: "acme", PartnerID: "p1", Move: domain.MoveSwitch,
		Input: domain.ContractInput{TemplateTermID: "gold"}, NewTerm: &domain.NewTemplateTerm{Name: "X"}}, commands.Meta{})
	if !reflect.DeepEqual(fieldsOf(err), []string{"template_term_id"}) {
		t.Fatalf("term ID and new term: %v", err)
	}
}

func TestArchiveSweepsTheIndexedPartners(t *testing.T) {
	f := newFixture(t)
	f.term("gold")
	f.term("silver")
	for _, id := range []string{"joined", "open", "scheduled", "declined", "other"} {
		f.partner(id)
	}
	f.mustMove("joined", domain.MovePropose, domain.ContractInput{TemplateTermID: "gold"})
	f.mustMove("joined", domain.MoveAccept, domain.ContractInput{By: domain.SidePublisher})
	f.mustMove("open", domain.MovePropose, domain.ContractInput{TemplateTermID: "gold"})
	f.mustMove("scheduled", domain.MovePropose, domain.ContractInput{TemplateTermID: "silver"})
	f.mustMove("scheduled", domain.MoveAccept, domain.ContractInput{By: domain.SidePublisher})
	f.mustMove("scheduled", domain.MoveSwitch, domain.ContractInput{TemplateTermID: "gold", EffectiveAt: time.Now().Add(48 * time.Hour)})
	f.mustMove("declined", domain.MovePropose, domain.ContractInput{TemplateTermID: "gold"})
	f.mustMove("declined", domain.MoveDecline, domain.ContractInput{By: domain.SidePublisher})
	f.mustMove("other", domain.MovePropose, domain.ContractInput{TemplateTermID: "silver"})

	// The index lists more than needed (and a partner that does not exist):
	// visiting them changes nothing.
	idx := fakeIndex{terms: map[string][]string{"gold": {"joined", "open", "scheduled", "declined", "other", "ghost"}}}
	res, st, err := f.cmds.ArchiveTemplateTerm.Handle(ctx, "acme", "gold", commands.Meta{CorrelationID: "req-1"}, idx)
	if err != nil || !st.Archived || res.Appended != 1 {
		t.Fatalf("archive = %+v %+v, %v", res, st, err)
	}
	want := map[string]domain.ContractStage{"joined": domain.StageArchived, "open": domain.StageArchived,
		"scheduled": domain.StageJoined, "declined": domain.StagePublisherDeclined, "other": domain.StageAwaitingPublisherApproval}
	for id, s := range want {
		if got := f.load(id); stage(got) != s {
			t.Errorf("%s: stage %s, want %s", id, stage(got), s)
		}
	}
	if sw := f.load("scheduled").Contract.ScheduledSwitch; sw != nil {
		t.Errorf("the scheduled switch to the archived term is still there: %+v", sw)
	}
	evs, _ := f.store.ReadStream(ctx, domain.PartnerStream("acme", "joined"), 0, eventstore.Forwards, 100)
	last := evs[len(evs)-1]
	var md commands.EventMeta
	_ = json.Unmarshal(last.Metadata, &md)
	if last.Type != domain.TypeContractArchived || md.Actor != commands.ActorTermArchival || md.CorrelationID != "req-1" ||
		md.CausationID != domain.TemplateTermStream("acme", "gold")+"@2" {
		t.Fatalf("archival event %s with metadata %+v", last.Type, md)
	}
	// Again: nothing is appended anywhere.
	head, _ := f.store.Head(ctx)
	if res, _, err := f.cmds.ArchiveTemplateTerm.Handle(ctx, "acme", "gold", commands.Meta{}, idx); err != nil || res.Appended != 0 {
		t.Fatalf("archiving again = %+v, %v", res, err)
	}
	if again, _ := f.store.Head(ctx); again != head {
		t.Fatal("archiving an archived term appended events")
	}
	// The index failing: the term is archived, the error says to repeat.
	f.term("bronze")
	_, _, err = f.cmds.ArchiveTemplateTerm.Handle(ctx, "acme", "bronze", commands.Meta{}, fakeIndex{err: errors.New("index down")})
	if err == nil || !strings.Contains(err.Error(), "repeat") {
		t.Fatalf("a failed sweep: %v", err)
	}
	if term, _, _, _ := commands.Load[domain.TemplateTerm](ctx, f.store, domain.TemplateTermStream("acme", "bronze")); !term.Archived() {
		t.Fatal("the term was not archived")
	}
}

// A proposal whose term is archived between the proposal's check and its
// append (so the archival's sweep may not see it) archives itself.
func TestProposalRacingAnArchivalArchivesItself(t *testing.T) {
	f := newFixture(t)
	f.partner("p1")
	f.term("gold")
	hs := &hookStore{Store: f.store, stream: domain.PartnerStream("acme", "p1")}
	cmds := commands.New(commands.Deps{Store: hs})
	hs.hook = func() {
		if _, _, err := cmds.ArchiveTemplateTerm.Handle(ctx, "acme", "gold", commands.Meta{}, fakeIndex{}); err != nil {
			t.Error(err)
		}
	}
	_, st, err := cmds.MoveContract.Handle(ctx, commands.MoveContract{ProgramID: "acme", PartnerID: "p1", Move: domain.MovePropose,
		Input: domain.ContractInput{TemplateTermID: "gold"}}, commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if stage(st) != domain.StageArchived || stage(f.load("p1")) != domain.StageArchived {
		t.Fatalf("stage = %s (stored %s), want archived", stage(st), stage(f.load("p1")))
	}
}

func TestPartnerGroupsAndGroupDeletion(t *testing.T) {
	f := newFixture(t)
	f.partner("p1")
	f.partner("p2")
	f.group("vip")
	f.group("new")
	f.group("gone")
	if _, err := f.cmds.DeleteGroup.Handle(ctx, "acme", "gone", commands.Meta{}, fakeIndex{}); err != nil {
		t.Fatal(err)
	}
	set := func(partner string, groups ...string) (domain.PartnerState, error) {
		_, st, err := f.cmds.SetGroups.Handle(ctx, "acme", partner, groups, commands.Meta{})
		return st, err
	}
	head, _ := f.store.Head(ctx)
	if _, err := set("p1", "vip", "nosuch", "gone"); !reflect.DeepEqual(fieldsOf(err), []string{"groups[1]", "groups[2]"}) {
		t.Fatalf("unknown and deleted groups: %v", err)
	}
	if _, err := set("nobody", "nosuch"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("groups of a missing partner: %v", err)
	}
	if now, _ := f.store.Head(ctx); now != head {
		t.Fatal("refused group changes appended events")
	}
	for _, p := range []string{"p1", "p2"} {
		if st, err := set(p, "vip", "new"); err != nil || !reflect.DeepEqual(st.Groups, []string{"new", "vip"}) {
			t.Fatalf("set groups of %s = %v, %v", p, st.Groups, err)
		}
	}
	if err := f.deleteGroup("vip", fakeIndex{groups: map[string][]string{"vip": {"p1", "p2", "ghost"}}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"p1", "p2"} {
		if g := f.load(p).Groups; !reflect.DeepEqual(g, []string{"new"}) {
			t.Errorf("%s groups after deleting vip = %v", p, g)
		}
	}
	if _, _, err := f.cmds.RenameGroup.Handle(ctx, "acme", "vip", "VIP", commands.Meta{}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("renaming a deleted group: %v", err)
	}
	if err := f.deleteGroup("vip", fakeIndex{}); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
	if err := f.deleteGroup("nosuch", fakeIndex{}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("deleting a missing group: %v", err)
	}
}

func (f *fixture) deleteGroup(id string, idx commands.PartnerIndex) error {
	_, err := f.cmds.DeleteGroup.Handle(ctx, "acme", id, commands.Meta{}, idx)
	return err
}

// A partner put into a group that is deleted before the partner's append
// leaves it again at once.
func TestJoiningAGroupRacingItsDeletion(t *testing.T) {
	f := newFixture(t)
	f.partner("p1")
	f.group("vip")
	f.group("keep")
	hs := &hookStore{Store: f.store, stream: domain.PartnerStream("acme", "p1")}
	cmds := commands.New(commands.Deps{Store: hs})
	hs.hook = func() {
		if _, err := cmds.DeleteGroup.Handle(ctx, "acme", "vip", commands.Meta{}, fakeIndex{}); err != nil {
			t.Error(err)
		}
	}
	res, st, err := cmds.SetGroups.Handle(ctx, "acme", "p1", []string{"vip", "keep"}, commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st.Groups, []string{"keep"}) || !reflect.DeepEqual(f.load("p1").Groups, []string{"keep"}) || res.Version != 3 {
		t.Fatalf("groups = %v at version %d, want [keep] at 3", st.Groups, res.Version)
	}
}

// Sweeps visit many partners concurrently without losing one.
func TestSweepVisitsEveryPartner(t *testing.T) {
	f := newFixture(t)
	f.group("big")
	var ids []string
	for range 40 {
		id := "p" + uuid.NewString()[:8]
		ids = append(ids, id)
		f.partner(id)
		if _, _, err := f.cmds.SetGroups.Handle(ctx, "acme", id, []string{"big"}, commands.Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.deleteGroup("big", fakeIndex{groups: map[string][]string{"big": ids}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if g := f.load(id).Groups; len(g) != 0 {
			t.Fatalf("%s still in %v", id, g)
		}
	}
}

// An archival whose sweep missed partners (the request failed half-way
// and was not repeated) is finished by the scheduler's tick: a due switch
// does not move a contract onto the archived term, and a due expiry of a
// contract on an archived term archives it instead.
func TestTickFinishesAMissedArchival(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	f := newFixtureAt(t, func() time.Time { return clock() })
	f.term("gold")
	f.term("silver")
	f.partner("switching")
	f.partner("expiring")
	f.partner("untouched")
	f.mustMove("switching", domain.MovePropose, domain.ContractInput{TemplateTermID: "silver"})
	f.mustMove("switching", domain.MoveAccept, domain.ContractInput{By: domain.SidePublisher})
	f.mustMove("switching", domain.MoveSwitch, domain.ContractInput{TemplateTermID: "gold", EffectiveAt: now.Add(time.Hour)})
	f.mustMove("expiring", domain.MovePropose, domain.ContractInput{TemplateTermID: "gold"})
	f.mustMove("expiring", domain.MoveAccept, domain.ContractInput{By: domain.SidePublisher})
	f.mustMove("expiring", domain.MoveExpire, domain.ContractInput{EffectiveAt: now.Add(time.Hour)})
	f.mustMove("untouched", domain.MovePropose, domain.ContractInput{TemplateTermID: "silver"})
	f.mustMove("untouched", domain.MoveAccept, domain.ContractInput{By: domain.SidePublisher})
	f.mustMove("untouched", domain.MoveExpire, domain.ContractInput{EffectiveAt: now.Add(time.Hour)})
	// The sweep finds no one.
	if _, _, err := f.cmds.ArchiveTemplateTerm.Handle(ctx, "acme", "gold", commands.Meta{}, fakeIndex{}); err != nil {
		t.Fatal(err)
	}
	if st := f.load("switching"); st.Contract.ScheduledSwitch == nil || stage(f.load("expiring")) != domain.StageJoined {
		t.Fatal("the fixture expected the sweep to miss both partners")
	}
	later := now.Add(2 * time.Hour)
	clock = func() time.Time { return later }
	for _, id := range []string{"switching", "expiring", "untouched"} {
		if _, err := f.cmds.TickPartner.Handle(ctx, "acme", id, commands.Meta{Actor: "system:scheduler"}); err != nil {
			t.Fatalf("tick %s: %v", id, err)
		}
	}
	if st := f.load("switching"); stage(st) != domain.StageJoined || st.Contract.TemplateTermID != "silver" || st.Contract.ScheduledSwitch != nil {
		t.Errorf("switching: %s on %s, switch %+v; want joined on silver, the switch reverted", stage(st), st.Contract.TemplateTermID, st.Contract.ScheduledSwitch)
	}
	if st := f.load("expiring"); stage(st) != domain.StageArchived {
		t.Errorf("expiring: %s, want archived", stage(st))
	}
	if st := f.load("untouched"); stage(st) != domain.StageExpired {
		t.Errorf("untouched: %s, want expired (its term is not archived)", stage(st))
	}
	evs, _ := f.store.ReadStream(ctx, domain.PartnerStream("acme", "switching"), 0, eventstore.Forwards, 100)
	last := evs[len(evs)-1]
	var md commands.EventMeta
	_ = json.Unmarshal(last.Metadata, &md)
	if last.Type != domain.TypeContractScheduleReverted || md.Actor != commands.SchedulerActor {
		t.Errorf("switching's last event: %s by %q, want %s by the scheduler", last.Type, md.Actor, domain.TypeContractScheduleReverted)
	}
}

// A chosen API key (the CLI's --key, the bootstrap key) that a program
// was ever issued is refused for another program: it would move there.
// The program that has it already is "already exists", as before.
func TestAChosenKeyIsBoundToOneProgram(t *testing.T) {
	f := newFixture(t)
	const key = "chosen-key-0123456789"
	if _, _, err := f.cmds.CreateProgram.Handle(ctx, commands.CreateProgram{ProgramID: "one", Name: "One", Key: key}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // other events in the log between the programs
		f.partner(fmt.Sprintf("p%d", i))
	}
	head, _ := f.store.Head(ctx)
	_, _, err := f.cmds.CreateProgram.Handle(ctx, commands.CreateProgram{ProgramID: "two", Name: "Two", Key: key}, commands.Meta{})
	if !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("the key again for another program: %v, want a conflict", err)
	}
	if after, _ := f.store.Head(ctx); after != head {
		t.Fatal("the refused program was created")
	}
	if _, _, err := f.cmds.CreateProgram.Handle(ctx, commands.CreateProgram{ProgramID: "one", Name: "One", Key: key}, commands.Meta{}); !errors.Is(err, domain.ErrAlreadyExists) {
		t.Fatalf("the program that has the key, again: %v, want already exists", err)
	}
	if _, _, err := f.cmds.CreateProgram.Handle(ctx, commands.CreateProgram{ProgramID: "two", Name: "Two", Key: key + "x"}, commands.Meta{}); err != nil {
		t.Fatalf("another chosen key: %v", err)
	}
	// A key issued later (not at creation) counts too.
	_, _, issued, err := f.cmds.IssueAPIKey.Handle(ctx, "two", commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.cmds.CreateProgram.Handle(ctx, commands.CreateProgram{ProgramID: "three", Name: "Three", Key: issued}, commands.Meta{}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("an issued key for a new program: %v, want a conflict", err)
	}
}

// The mirror of a link takes effect when it is appended to the other
// partner: a write to that partner in between (its optimistic retry)
// must not leave the mirror dated before it, or as_of at the mirror's
// time would stop short of it.
func TestALinkMirrorIsNotDatedBeforeTheWritesItFollows(t *testing.T) {
	f := newFixture(t)
	f.partner("a")
	f.partner("b")
	var ticks atomic.Int64
	base := time.Now().UTC()
	clock := func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Millisecond) }
	plain := commands.New(commands.Deps{Store: f.store, Now: clock})
	hs := &hookStore{Store: f.store, stream: domain.PartnerStream("acme", "b")}
	hs.hook = func() {
		if _, _, err := plain.UpdatePartner.Handle(ctx, "acme", "b", domain.Patch{"name": json.RawMessage(`"B renamed"`)}, commands.Meta{}); err != nil {
			t.Error(err)
		}
	}
	cmds := commands.New(commands.Deps{Store: hs, Now: clock})
	if _, _, err := cmds.LinkAccounts.Handle(ctx, "acme", "a", "b", "same owner", commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	evs, _ := f.store.ReadStream(ctx, domain.PartnerStream("acme", "b"), 0, eventstore.Forwards, 100)
	var prev time.Time
	var types []string
	for _, e := range evs {
		var md commands.EventMeta
		_ = json.Unmarshal(e.Metadata, &md)
		types = append(types, e.Type)
		if md.OccurredAt.Before(prev) {
			t.Fatalf("%s at version %d occurred at %s, before the event before it (%s); stream %v", e.Type, e.Version, md.OccurredAt, prev, types)
		}
		prev = md.OccurredAt
	}
	if len(evs) != 3 || evs[2].Type != domain.TypePartnerAccountLinked {
		t.Fatalf("b's events: %v, want created, the rename, the mirror", types)
	}
}
