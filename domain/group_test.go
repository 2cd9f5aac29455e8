package domain_test

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/domain"
)

var (
	groupCreated = domain.GroupCreated{GroupID: "g1", ProgramID: "acme", Name: "VIP", CreatedAt: now}
	groupDeleted = domain.GroupDeleted{GroupID: "g1", ProgramID: "acme", DeletedAt: days(1)}
)

func TestGroupDecisions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		given  []domain.Event
		when   func(g *domain.Group) ([]domain.Event, error)
		then   []domain.Event
		fields []string
		err    error
	}{
		{name: "create", when: func(g *domain.Group) ([]domain.Event, error) {
			return g.Create(domain.NewGroup{ProgramID: "acme", ID: "g1", Name: " VIP "}, now)
		}, then: []domain.Event{groupCreated}},
		{name: "create without a name, with a bad id", when: func(g *domain.Group) ([]domain.Event, error) {
			return g.Create(domain.NewGroup{ProgramID: "acme", ID: "g 1"}, now)
		}, fields: []string{"id", "name"}},
		{name: "create twice", given: []domain.Event{groupCreated}, when: func(g *domain.Group) ([]domain.Event, error) {
			return g.Create(domain.NewGroup{ProgramID: "acme", ID: "g1", Name: "X"}, now)
		}, err: domain.ErrAlreadyExists},
		{name: "a deleted group's id is never reused", given: []domain.Event{groupCreated, groupDeleted}, when: func(g *domain.Group) ([]domain.Event, error) {
			return g.Create(domain.NewGroup{ProgramID: "acme", ID: "g1", Name: "X"}, now)
		}, err: domain.ErrAlreadyExists},
		{name: "rename", given: []domain.Event{groupCreated}, when: func(g *domain.Group) ([]domain.Event, error) {
			return g.Rename("Gold", days(2))
		}, then: []domain.Event{domain.GroupRenamed{GroupID: "g1", ProgramID: "acme", Name: "Gold", PreviousName: "VIP", RenamedAt: days(2)}}},
		{name: "rename to the same name", given: []domain.Event{groupCreated}, when: func(g *domain.Group) ([]domain.Event, error) {
			return g.Rename(" VIP", days(2))
		}},
		{name: "rename to nothing", given: []domain.Event{groupCreated}, when: func(g *domain.Group) ([]domain.Event, error) {
			return g.Rename("", days(2))
		}, fields: []string{"name"}},
		{name: "rename a deleted group", given: []domain.Event{groupCreated, groupDeleted}, when: func(g *domain.Group) ([]domain.Event, error) {
			return g.Rename("Gold", days(2))
		}, err: domain.ErrNotFound},
		{name: "delete", given: []domain.Event{groupCreated}, when: func(g *domain.Group) ([]domain.Event, error) {
			return g.Delete(days(1))
		}, then: []domain.Event{groupDeleted}},
		{name: "delete again changes nothing", given: []domain.Event{groupCreated, groupDeleted}, when: func(g *domain.Group) ([]domain.Event, error) {
			return g.Delete(days(2))
		}},
		{name: "delete a missing group", when: func(g *domain.Group) ([]domain.Event, error) {
			return g.Delete(days(1))
		}, err: domain.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var g domain.Group
			for _, ev := range tc.given {
				g.Apply(ev)
			}
			got, err := tc.when(&g)
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

func TestPartnerGroups(t *testing.T) {
	t.Parallel()
	inGroups := func(t *testing.T, groups ...string) domain.Partner {
		t.Helper()
		p := created(t)
		if len(groups) > 0 {
			evs, err := p.SetGroups(groups, now)
			apply(t, &p, evs, err)
		}
		return p
	}
	changed := func(added, removed, groups []string) []domain.Event {
		return []domain.Event{domain.PartnerGroupsChanged{PartnerID: "p1", ProgramID: "acme", Added: added, Removed: removed,
			Groups: groups, ChangedAt: hours(1)}}
	}
	none := []string{}
	cases := []struct {
		name   string
		given  []string // the partner's groups before
		when   func(p *domain.Partner) ([]domain.Event, error)
		then   []domain.Event
		fields []string
	}{
		{name: "join groups, in any order, repeated", when: func(p *domain.Partner) ([]domain.Event, error) {
			return p.SetGroups([]string{"g2", "g1", "g2"}, hours(1))
		}, then: changed([]string{"g1", "g2"}, none, []string{"g1", "g2"})},
		{name: "replace the set", given: []string{"g1", "g2"}, when: func(p *domain.Partner) ([]domain.Event, error) {
			return p.SetGroups([]string{"g3", "g2"}, hours(1))
		}, then: changed([]string{"g3"}, []string{"g1"}, []string{"g2", "g3"})},
		{name: "leave every group", given: []string{"g1"}, when: func(p *domain.Partner) ([]domain.Event, error) {
			return p.SetGroups(nil, hours(1))
		}, then: changed(none, []string{"g1"}, none)},
		{name: "the same set changes nothing", given: []string{"g1", "g2"}, when: func(p *domain.Partner) ([]domain.Event, error) {
			return p.SetGroups([]string{"g2", "g1"}, hours(1))
		}},
		{name: "bad group ids", when: func(p *domain.Partner) ([]domain.Event, error) {
			return p.SetGroups([]string{"ok", "", "a b"}, hours(1))
		}, fields: []string{"groups[1]", "groups[2]"}},
		{name: "too many groups", when: func(p *domain.Partner) ([]domain.Event, error) {
			many := make([]string, domain.MaxPartnerGroups+1)
			for i := range many {
				many[i] = "g" + strconv.Itoa(i)
			}
			return p.SetGroups(many, hours(1))
		}, fields: []string{"groups"}},
		{name: "leave a deleted group", given: []string{"g1", "g2"}, when: func(p *domain.Partner) ([]domain.Event, error) {
			return p.LeaveGroup("g1", hours(1))
		}, then: changed(none, []string{"g1"}, []string{"g2"})},
		{name: "leave a group the partner is not in", given: []string{"g2"}, when: func(p *domain.Partner) ([]domain.Event, error) {
			return p.LeaveGroup("g1", hours(1))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := inGroups(t, tc.given...)
			got, err := tc.when(&p)
			if tc.fields != nil {
				if f := fields(err); strings.Join(f, ",") != strings.Join(tc.fields, ",") {
					t.Fatalf("invalid fields %v (err %v), want %v", f, err, tc.fields)
				}
			} else if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !reflect.DeepEqual(got, tc.then) {
				t.Fatalf("events = %#v\nwant     %#v", got, tc.then)
			}
		})
	}

	p := inGroups(t, "g2", "g1")
	if s := p.State(); !reflect.DeepEqual(s.Groups, []string{"g1", "g2"}) {
		t.Fatalf("state groups = %v", s.Groups)
	}
	if r := domain.RestorePartner(p.State()); !reflect.DeepEqual(r.State(), p.State()) {
		t.Fatal("restoring a partner lost its groups")
	}
	fresh := created(t)
	if g := fresh.State().Groups; g == nil || len(g) != 0 {
		t.Fatalf("a new partner's groups = %#v, want empty and not nil", g)
	}
	var nobody domain.Partner
	if _, err := nobody.SetGroups([]string{"g1"}, now); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("groups of a missing partner: %v", err)
	}
}
