package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/projections"
)

// catalogLog builds events of several streams of one program, in log order.
type catalogLog struct {
	t        *testing.T
	program  string
	pos      eventstore.Position
	versions map[string]uint64
	events   []projections.Event
}

func (l *catalogLog) add(stream string, ev domain.Event) {
	l.t.Helper()
	data, err := json.Marshal(ev)
	if err != nil {
		l.t.Fatal(err)
	}
	l.versions[stream]++
	l.pos++
	l.events = append(l.events, projections.Event{ID: fmt.Sprintf("%s-%d", stream, l.versions[stream]), Type: ev.EventType(),
		Stream: stream, Program: l.program, Version: l.versions[stream], Position: l.pos, Schema: 1, RecordedAt: time.Now(), Data: data})
}

func (l *catalogLog) partner(id string, evs ...domain.Event) {
	for _, ev := range evs {
		l.add(domain.PartnerStream(l.program, id), ev)
	}
}

// catalogState reads the catalog's documents and index sets of a program.
func catalogState(t *testing.T, rdb *redis.Client, program string) map[string]string {
	t.Helper()
	ctx := context.Background()
	ks := projections.NewKeyspace("catalog", 1, program)
	out := map[string]string{}
	for _, k := range []string{"terms", "groups"} {
		ids, err := rdb.ZRange(ctx, ks.Key(k), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = fmt.Sprint(ids)
	}
	for _, id := range []string{"gold", "silver"} {
		members, _ := rdb.SMembers(ctx, ks.Key("term", id, "partners")).Result()
		sort.Strings(members)
		out["term "+id] = fmt.Sprint(members)
		out["termdoc "+id], _ = rdb.HGet(ctx, ks.Key("termdoc", id), "doc").Result()
	}
	for _, id := range []string{"vip", "old"} {
		members, _ := rdb.SMembers(ctx, ks.Key("group", id, "partners")).Result()
		sort.Strings(members)
		out["group "+id] = fmt.Sprint(members)
		out["groupdoc "+id], _ = rdb.HGet(ctx, ks.Key("groupdoc", id), "doc").Result()
	}
	return out
}

func TestCatalogProjection(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		later := at.Add(48 * time.Hour)
		l := &catalogLog{t: t, program: program, versions: map[string]uint64{}}
		gold, silver := domain.TemplateTermStream(program, "gold"), domain.TemplateTermStream(program, "silver")
		l.add(gold, domain.TemplateTermCreated{TemplateTermID: "gold", ProgramID: program, Name: "Gold", CreatedAt: at})
		l.add(silver, domain.TemplateTermCreated{TemplateTermID: "silver", ProgramID: program, Name: "Silver", CreatedAt: at})
		l.add(domain.GroupStream(program, "vip"), domain.GroupCreated{GroupID: "vip", ProgramID: program, Name: "VIP", CreatedAt: at})
		l.add(domain.GroupStream(program, "old"), domain.GroupCreated{GroupID: "old", ProgramID: program, Name: "Old", CreatedAt: at})
		c := func(id string) (string, string) { return id, id + ":1" }
		// a: joined on gold, then a switch to silver is scheduled.
		pa, ca := c("a")
		l.partner(pa, created(program, pa, "A", ""),
			domain.ContractProposed{PartnerID: pa, ProgramID: program, ContractID: ca, By: domain.SideAdvertiser, Stage: domain.StageAwaitingPublisherApproval, TemplateTermID: "gold", ProposedAt: at},
			domain.ContractAccepted{PartnerID: pa, ProgramID: program, ContractID: ca, By: domain.SidePublisher, Stage: domain.StageJoined, TemplateTermID: "gold", AcceptedAt: at},
			domain.ContractSwitchScheduled{PartnerID: pa, ProgramID: program, ContractID: ca, By: domain.SideAdvertiser, TemplateTermID: "silver", EffectiveAt: later, ScheduledAt: at},
			domain.PartnerGroupsChanged{PartnerID: pa, ProgramID: program, Added: []string{"old", "vip"}, Removed: []string{}, Groups: []string{"old", "vip"}, ChangedAt: at})
		// b: proposed on silver, countered onto gold, then declined.
		pb, cb := c("b")
		l.partner(pb, created(program, pb, "B", ""),
			domain.ContractProposed{PartnerID: pb, ProgramID: program, ContractID: cb, By: domain.SideAdvertiser, Stage: domain.StageAwaitingPublisherApproval, TemplateTermID: "silver", ProposedAt: at},
			domain.ContractCountered{PartnerID: pb, ProgramID: program, ContractID: cb, By: domain.SidePublisher, Stage: domain.StagePublisherCountered, Changed: []string{"template_term_id"}, TemplateTermID: "gold", CounteredAt: at},
			domain.PartnerGroupsChanged{PartnerID: pb, ProgramID: program, Added: []string{"vip"}, Removed: []string{}, Groups: []string{"vip"}, ChangedAt: at})
		// c: joined on silver.
		pc, cc := c("c")
		l.partner(pc, created(program, pc, "C", ""),
			domain.ContractProposed{PartnerID: pc, ProgramID: program, ContractID: cc, By: domain.SidePublisher, Stage: domain.StageAwaitingAdvertiserApproval, TemplateTermID: "silver", ProposedAt: at},
			domain.ContractAccepted{PartnerID: pc, ProgramID: program, ContractID: cc, By: domain.SideAdvertiser, Stage: domain.StageJoined, TemplateTermID: "silver", AcceptedAt: at})
		mid := len(l.events)
		l.partner(pb, domain.ContractDeclined{PartnerID: pb, ProgramID: program, ContractID: cb, By: domain.SideAdvertiser, Stage: domain.StageAdvertiserDeclined, DeclinedAt: at})
		l.partner(pa, domain.ContractSwitched{PartnerID: pa, ProgramID: program, ContractID: pa + ":2", PreviousContractID: ca, By: domain.SideSystem,
			Stage: domain.StageJoined, TemplateTermID: "silver", PreviousTemplateTermID: "gold", SwitchedAt: later})
		l.add(gold, domain.TemplateTermUpdated{TemplateTermID: "gold", ProgramID: program, Changed: []string{"name"}, Name: "Gold+", UpdatedAt: at})
		l.add(gold, domain.TemplateTermArchived{TemplateTermID: "gold", ProgramID: program, ArchivedAt: later})
		l.add(domain.GroupStream(program, "vip"), domain.GroupRenamed{GroupID: "vip", ProgramID: program, Name: "VIPs", PreviousName: "VIP", RenamedAt: later})
		l.add(domain.GroupStream(program, "old"), domain.GroupDeleted{GroupID: "old", ProgramID: program, DeletedAt: later})
		l.partner(pa, domain.PartnerGroupsChanged{PartnerID: pa, ProgramID: program, Added: []string{}, Removed: []string{"old"}, Groups: []string{"vip"}, ChangedAt: later})

		r := projections.NewRunner(rdb, projections.Catalog{})
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		// Mid-way, in two batches: what the first batch wrote is read back by the second.
		if err := r.Apply(ctx, append([]projections.Event{}, l.events[:mid]...)); err != nil {
			t.Fatal(err)
		}
		st := catalogState(t, rdb, program)
		if st["term gold"] != "[a b]" || st["term silver"] != "[a c]" || st["group vip"] != "[a b]" || st["group old"] != "[a]" {
			t.Fatalf("indexes mid-way = %v", st)
		}
		if err := r.Apply(ctx, append([]projections.Event{}, l.events[mid:]...)); err != nil {
			t.Fatal(err)
		}
		st = catalogState(t, rdb, program)
		want := map[string]string{"terms": "[gold silver]", "groups": "[vip]", "term gold": "[]", "term silver": "[a c]",
			"group vip": "[a b]", "group old": "[]", "groupdoc old": ""}
		for k, v := range want {
			if st[k] != v {
				t.Errorf("%s = %q, want %q", k, st[k], v)
			}
		}
		var term projections.TemplateTermView
		if err := json.Unmarshal([]byte(st["termdoc gold"]), &term); err != nil {
			t.Fatal(err)
		}
		if term.Name != "Gold+" || !term.Archived || term.ArchivedAt == nil || !term.ArchivedAt.Equal(later) || term.Version != 3 || !term.CreatedAt.Equal(at) {
			t.Errorf("gold = %+v", term)
		}
		var group projections.GroupView
		if err := json.Unmarshal([]byte(st["groupdoc vip"]), &group); err != nil {
			t.Fatal(err)
		}
		if group.Name != "VIPs" || group.Version != 2 || !group.CreatedAt.Equal(at) || !group.UpdatedAt.Equal(later) {
			t.Errorf("vip = %+v", group)
		}

		// The same log in one batch, event by event, or redelivered, gives the same catalog.
		for name, batches := range map[string][][]projections.Event{
			"one batch": {l.events},
			"one by one": func() (out [][]projections.Event) {
				for _, e := range l.events {
					out = append(out, []projections.Event{e})
				}
				return out
			}(),
		} {
			other := program + "x" + fmt.Sprint(len(batches))
			for _, b := range batches {
				if err := r.Apply(ctx, rewrite(b, program, other)); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Apply(ctx, rewrite(l.events, program, other)); err != nil { // redelivery
				t.Fatal(err)
			}
			got := catalogState(t, rdb, other)
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: %s = %q, want %q", name, k, got[k], v)
				}
			}
			if !reflect.DeepEqual(got["termdoc silver"], st["termdoc silver"]) {
				t.Errorf("%s: silver = %s, want %s", name, got["termdoc silver"], st["termdoc silver"])
			}
		}
	})
}

// rewrite moves events to another program.
func rewrite(evs []projections.Event, from, to string) []projections.Event {
	out := make([]projections.Event, len(evs))
	for i, e := range evs {
		e.Program = to
		e.Stream = strings.Replace(e.Stream, "-"+from+"-", "-"+to+"-", 1)
		out[i] = e
	}
	return out
}
