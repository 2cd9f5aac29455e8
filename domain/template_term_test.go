package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/domain"
)

// termWith returns a template term folded from the given events.
func termWith(evs ...domain.Event) domain.TemplateTerm {
	var t domain.TemplateTerm
	for _, ev := range evs {
		t.Apply(ev)
	}
	return t
}

var (
	termCreated  = domain.TemplateTermCreated{TemplateTermID: "t1", ProgramID: "acme", Name: "Standard", Description: "5 %", CreatedAt: now}
	termArchived = domain.TemplateTermArchived{TemplateTermID: "t1", ProgramID: "acme", ArchivedAt: days(1)}
)

func TestTemplateTermDecisions(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	cases := []struct {
		name   string
		given  []domain.Event
		when   func(t *domain.TemplateTerm) ([]domain.Event, error)
		then   []domain.Event
		fields []string // a ValidationError on these fields
		err    error    // or this sentinel
	}{
		{name: "create", when: func(t *domain.TemplateTerm) ([]domain.Event, error) {
			return t.Create(domain.NewTemplateTerm{ProgramID: "acme", ID: "t1", Name: "  Standard ", Description: "5 %"}, now)
		}, then: []domain.Event{termCreated}},
		{name: "create without a name, with a bad id", when: func(t *domain.TemplateTerm) ([]domain.Event, error) {
			return t.Create(domain.NewTemplateTerm{ProgramID: "acme", ID: "-t", Name: " "}, now)
		}, fields: []string{"id", "name"}},
		{name: "create with too long texts", when: func(t *domain.TemplateTerm) ([]domain.Event, error) {
			return t.Create(domain.NewTemplateTerm{ProgramID: "acme", ID: "t1", Name: strings.Repeat("n", 201), Description: strings.Repeat("d", 5001)}, now)
		}, fields: []string{"description", "name"}},
		{name: "create twice", given: []domain.Event{termCreated}, when: func(t *domain.TemplateTerm) ([]domain.Event, error) {
			return t.Create(domain.NewTemplateTerm{ProgramID: "acme", ID: "t1", Name: "Other"}, now)
		}, err: domain.ErrAlreadyExists},
		{name: "rename", given: []domain.Event{termCreated}, when: func(t *domain.TemplateTerm) ([]domain.Event, error) {
			return t.Update(domain.TemplateTermPatch{Name: str("Gold")}, days(2))
		}, then: []domain.Event{domain.TemplateTermUpdated{TemplateTermID: "t1", ProgramID: "acme", Changed: []string{"name"},
			Name: "Gold", Description: "5 %", UpdatedAt: days(2)}}},
		{name: "re-describe and clear", given: []domain.Event{termCreated}, when: func(t *domain.TemplateTerm) ([]domain.Event, error) {
			return t.Update(domain.TemplateTermPatch{Name: str("Standard"), Description: str("")}, days(2))
		}, then: []domain.Event{domain.TemplateTermUpdated{TemplateTermID: "t1", ProgramID: "acme", Changed: []string{"description"},
			Name: "Standard", UpdatedAt: days(2)}}},
		{name: "update that changes nothing", given: []domain.Event{termCreated}, when: func(t *domain.TemplateTerm) ([]domain.Event, error) {
			return t.Update(domain.TemplateTermPatch{Name: str("Standard ")}, days(2))
		}},
		{name: "empty update", given: []domain.Event{termCreated}, when: func(t *domain.TemplateTerm) ([]domain.Event, error) {
			return t.Update(domain.TemplateTermPatch{}, days(2))
		}, fields: []string{"body"}},
		{name: "rename to nothing", given: []domain.Event{termCreated}, when: func(t *domain.TemplateTerm) ([]domain.Event, error) {
			return t.Update(domain.TemplateTermPatch{Name: str("")}, days(2))
		}, fields: []string{"name"}},
		{name: "update a missing term", when: func(t *domain.TemplateTerm) ([]domain.Event, error) {
			return t.Update(domain.TemplateTermPatch{Name: str("X")}, days(2))
		}, err: domain.ErrNotFound},
		{name: "update an archived term", given: []domain.Event{termCreated, termArchived}, when: func(t *domain.TemplateTerm) ([]domain.Event, error) {
			return t.Update(domain.TemplateTermPatch{Name: str("X")}, days(2))
		}, err: domain.ErrConflict},
		{name: "archive", given: []domain.Event{termCreated}, when: func(t *domain.TemplateTerm) ([]domain.Event, error) {
			return t.Archive(days(1))
		}, then: []domain.Event{termArchived}},
		{name: "archive again changes nothing", given: []domain.Event{termCreated, termArchived}, when: func(t *domain.TemplateTerm) ([]domain.Event, error) {
			return t.Archive(days(3))
		}},
		{name: "archive a missing term", when: func(t *domain.TemplateTerm) ([]domain.Event, error) {
			return t.Archive(days(1))
		}, err: domain.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			term := termWith(tc.given...)
			got, err := tc.when(&term)
			switch {
			case tc.fields != nil:
				if f := fields(err); strings.Join(f, ",") != strings.Join(tc.fields, ",") {
					t.Fatalf("invalid fields %v (err %v), want %v", f, err, tc.fields)
				}
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
			case err != nil:
				t.Fatalf("refused: %v", err)
			}
			if !reflect.DeepEqual(got, tc.then) {
				t.Fatalf("events = %#v\nwant     %#v", got, tc.then)
			}
		})
	}
}

func TestTemplateTermStateAndUsable(t *testing.T) {
	t.Parallel()
	var missing domain.TemplateTerm
	if f := fields(missing.Usable("t9")); len(f) != 1 || f[0] != "template_term_id" {
		t.Fatalf("a missing term is usable: %v", f)
	}
	live := termWith(termCreated)
	if err := live.Usable("t1"); err != nil {
		t.Fatalf("a live term is not usable: %v", err)
	}
	archived := termWith(termCreated, termArchived)
	if f := fields(archived.Usable("t1")); len(f) != 1 || f[0] != "template_term_id" {
		t.Fatalf("an archived term is usable: %v", f)
	}
	s := archived.State()
	if !s.Archived || s.ArchivedAt == nil || !s.ArchivedAt.Equal(days(1)) || s.Name != "Standard" || !s.UpdatedAt.Equal(days(1)) {
		t.Fatalf("archived state = %+v", s)
	}
	if domain.Category(domain.TemplateTermStream("acme", "t-1")) != domain.CategoryTemplateTerm {
		t.Fatal("category of a template term stream")
	}
}

// Every group and template term event survives encoding, and the partner's
// membership event too.
func TestCatalogEventsRoundTrip(t *testing.T) {
	t.Parallel()
	samples := []domain.Event{
		termCreated,
		domain.TemplateTermUpdated{TemplateTermID: "t1", ProgramID: "acme", Changed: []string{"name"}, Name: "Gold", UpdatedAt: now},
		termArchived,
		domain.GroupCreated{GroupID: "g1", ProgramID: "acme", Name: "VIP", CreatedAt: now},
		domain.GroupRenamed{GroupID: "g1", ProgramID: "acme", Name: "VIPs", PreviousName: "VIP", RenamedAt: now},
		domain.GroupDeleted{GroupID: "g1", ProgramID: "acme", DeletedAt: now},
		domain.PartnerGroupsChanged{PartnerID: "p1", ProgramID: "acme", Added: []string{"g2"}, Removed: []string{"g1"},
			Groups: []string{"g2", "g3"}, ChangedAt: now},
	}
	seen := map[string]bool{}
	for _, ev := range samples {
		seen[ev.EventType()] = true
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		back, err := domain.DecodeEvent(ev.EventType(), domain.SchemaVersion, raw)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, ev) {
			t.Fatalf("round trip changed the event:\n%#v\n%#v", ev, back)
		}
	}
	for _, typ := range domain.EventTypes() {
		if (strings.HasPrefix(typ, "group.") || strings.HasPrefix(typ, "template_term.")) && !seen[typ] {
			t.Errorf("no sample of %s", typ)
		}
	}
}
