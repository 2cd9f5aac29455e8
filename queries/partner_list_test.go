package queries_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/internal/testenv"
	"github.com/partnerd/partnerd/projections"
	"github.com/partnerd/partnerd/queries"
)

func backends(t *testing.T, f func(t *testing.T, rdb *redis.Client, program string)) {
	t.Run("real redis", func(t *testing.T) {
		t.Parallel()
		f(t, testenv.Redis(t), "t"+strings.ToLower(testenv.UniquePrefix(t)))
	})
	t.Run("embedded redis", func(t *testing.T) {
		t.Parallel()
		f(t, testenv.Miniredis(t), "t"+strings.ToLower(testenv.UniquePrefix(t)))
	})
}

type gens struct{ r *projections.Runner }

func (g gens) Generation(string) int64 { return g.r.Generation() }

// fixture applies partner events straight through a Partners runner.
type fixture struct {
	t        *testing.T
	program  string
	r        *projections.Runner
	q        *queries.Queries
	pos      eventstore.Position
	versions map[string]uint64
}

func newFixture(t *testing.T, rdb *redis.Client, program string) *fixture {
	r := projections.NewRunner(rdb, projections.Partners{})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, program: program, r: r, q: queries.New(rdb, nil, gens{r}), versions: map[string]uint64{}}
}

func (f *fixture) apply(id string, evs ...domain.Event) {
	f.t.Helper()
	var out []projections.Event
	for _, ev := range evs {
		data, err := json.Marshal(ev)
		if err != nil {
			f.t.Fatal(err)
		}
		f.versions[id]++
		f.pos++
		out = append(out, projections.Event{ID: fmt.Sprintf("%s-%d", id, f.versions[id]), Type: ev.EventType(),
			Stream: domain.PartnerStream(f.program, id), Program: f.program, Version: f.versions[id], Position: f.pos,
			Schema: 1, RecordedAt: time.Now(), Data: data})
	}
	if err := f.r.Apply(context.Background(), out); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) create(id string, p domain.Profile) {
	f.t.Helper()
	if p.RelationshipType == "" {
		p.RelationshipType = "direct"
	}
	f.apply(id, domain.PartnerCreated{PartnerID: id, ProgramID: f.program, ProspectStage: "new", Profile: p, CreatedAt: time.Now().UTC()})
}

// ids lists every matching ID, walking pages of limit.
func (f *fixture) ids(lq queries.PartnerListQuery, limit int) ([]string, int64) {
	f.t.Helper()
	var out []string
	cursor := ""
	var total int64 = -1
	for i := 0; i < 1000; i++ {
		p, err := f.q.SearchPartnerIDs(context.Background(), f.program, lq, limit, cursor)
		if err != nil {
			f.t.Fatal(err)
		}
		if total >= 0 && p.Total != total {
			f.t.Fatalf("total changed between pages: %d then %d", total, p.Total)
		}
		total = p.Total
		out = append(out, p.IDs...)
		if p.NextCursor == nil {
			return out, total
		}
		cursor = *p.NextCursor
	}
	f.t.Fatal("paging does not end")
	return nil, 0
}

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func listFixture(t *testing.T, rdb *redis.Client, program string) *fixture {
	f := newFixture(t, rdb, program)
	r100, r50 := int64(100), int64(50)
	f.create("p1", domain.Profile{Name: "Alpha", URL: "https://alpha.example", Country: "DE", State: "BY", Size: "m", BusinessModel: "coupon",
		ProspectingSource: "ai", SocialReach: &r100, CustomFields: map[string]string{"niche": "travel", "tier": "a:b"}})
	f.create("p2", domain.Profile{Name: "beta, inc", URL: "https://beta.example/x", Country: "FR", Size: "s", BusinessModel: "content",
		SocialReach: &r100, CustomFields: map[string]string{"niche": "food"}})
	f.create("p3", domain.Profile{Name: "Gamma", Country: "DE", Size: "l", RelationshipType: "marketplace", SocialReach: &r50})
	f.create("p4", domain.Profile{Name: "delta", Country: "US"})
	f.create("p5", domain.Profile{Name: "Epsilon", Country: "DE"})
	f.create("p6", domain.Profile{Name: "zeta"})
	f.create("p7", domain.Profile{Name: "abcxbcd"})
	f.create("p8", domain.Profile{Name: "The abcd shop"})
	at := now.Add(-60 * 24 * time.Hour)
	prop := func(id, term string, by domain.Side, stage domain.ContractStage) domain.ContractProposed {
		return domain.ContractProposed{PartnerID: id, ProgramID: program, ContractID: id + ":1", By: by, Stage: stage, TemplateTermID: term, ProposedAt: at}
	}
	acc := func(id, term string) domain.ContractAccepted {
		return domain.ContractAccepted{PartnerID: id, ProgramID: program, ContractID: id + ":1", By: domain.SidePublisher, Stage: domain.StageJoined, TemplateTermID: term, AcceptedAt: at}
	}
	exp := func(id string, when time.Time) domain.ContractExpired {
		return domain.ContractExpired{PartnerID: id, ProgramID: program, ContractID: id + ":1", By: domain.SideAdvertiser, Stage: domain.StageExpired, ExpiredAt: when}
	}
	f.apply("p1", prop("p1", "gold", domain.SideAdvertiser, domain.StageAwaitingPublisherApproval), acc("p1", "gold"),
		domain.PartnerGroupsChanged{PartnerID: "p1", ProgramID: program, Added: []string{"vip"}, Removed: []string{}, Groups: []string{"vip"}, ChangedAt: at},
		domain.PartnerAssigned{PartnerID: "p1", ProgramID: program, User: "kim", AssignedAt: at})
	f.apply("p2", prop("p2", "silver", domain.SideAdvertiser, domain.StageAwaitingPublisherApproval),
		domain.PartnerGroupsChanged{PartnerID: "p2", ProgramID: program, Added: []string{"vip"}, Removed: []string{}, Groups: []string{"vip"}, ChangedAt: at})
	f.apply("p3", prop("p3", "gold", domain.SideAdvertiser, domain.StageAwaitingPublisherApproval), acc("p3", "gold"), exp("p3", now.Add(-10*24*time.Hour)))
	f.apply("p4", prop("p4", "gold", domain.SideAdvertiser, domain.StageAwaitingPublisherApproval), acc("p4", "gold"), exp("p4", now.Add(-40*24*time.Hour)))
	f.apply("p5", prop("p5", "silver", domain.SideAdvertiser, domain.StageAwaitingPublisherApproval), acc("p5", "silver"),
		domain.ContractSuspended{PartnerID: "p5", ProgramID: program, ContractID: "p5:1", By: domain.SideAdvertiser, Stage: domain.StageSuspended, SuspendedAt: at})
	return f
}

func TestSearchPartnersFilters(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		f := listFixture(t, rdb, program)
		type fl = map[string][]string
		cases := []struct {
			name string
			lq   queries.PartnerListQuery
			want string
		}{
			{"none", queries.PartnerListQuery{}, "p1 p2 p3 p4 p5 p6 p7 p8"},
			{"status", queries.PartnerListQuery{Filters: fl{"status": {"active"}}}, "p1"},
			{"status any of", queries.PartnerListQuery{Filters: fl{"status": {"active", "expired"}}}, "p1 p3 p4"},
			{"status suspended", queries.PartnerListQuery{Filters: fl{"status": {"suspended"}}}, "p5"},
			{"contract_stage", queries.PartnerListQuery{Filters: fl{"contract_stage": {"awaiting_publisher_approval"}}}, "p2"},
			{"group", queries.PartnerListQuery{Filters: fl{"group": {"vip"}}}, "p1 p2"},
			{"group and country", queries.PartnerListQuery{Filters: fl{"group": {"vip"}, "country": {"DE"}}}, "p1"},
			{"template_term", queries.PartnerListQuery{Filters: fl{"template_term": {"silver"}}}, "p2 p5"},
			{"pending_proposal", queries.PartnerListQuery{Filters: fl{"terms_update": {"pending_proposal"}}}, "p2"},
			{"recently_expired", queries.PartnerListQuery{Filters: fl{"terms_update": {"recently_expired"}}}, "p3"},
			{"terms_update any of", queries.PartnerListQuery{Filters: fl{"terms_update": {"recently_expired", "pending_proposal"}}}, "p2 p3"},
			{"recently_expired and country", queries.PartnerListQuery{Filters: fl{"terms_update": {"recently_expired"}, "country": {"DE", "US"}}}, "p3"},
			{"relationship_type", queries.PartnerListQuery{Filters: fl{"relationship_type": {"marketplace"}}}, "p3"},
			{"relationship_stage", queries.PartnerListQuery{Filters: fl{"relationship_stage": {"joined"}}}, "p1 p5"},
			{"prospect_stage", queries.PartnerListQuery{Filters: fl{"prospect_stage": {"suspended"}}}, "p5"},
			{"country", queries.PartnerListQuery{Filters: fl{"country": {"DE"}}}, "p1 p3 p5"},
			{"country and size", queries.PartnerListQuery{Filters: fl{"country": {"DE"}, "size": {"l", "s"}}}, "p3"},
			{"state", queries.PartnerListQuery{Filters: fl{"state": {"BY"}}}, "p1"},
			{"business_model", queries.PartnerListQuery{Filters: fl{"business_model": {"coupon"}}}, "p1"},
			{"assigned_to", queries.PartnerListQuery{Filters: fl{"assigned_to": {"kim"}}}, "p1"},
			{"prospecting_source", queries.PartnerListQuery{Filters: fl{"prospecting_source": {"ai"}}}, "p1"},
			{"custom", queries.PartnerListQuery{Filters: fl{"custom.niche": {"travel"}}}, "p1"},
			{"custom any of", queries.PartnerListQuery{Filters: fl{"custom.niche": {"travel", "food"}}}, "p1 p2"},
			{"custom with colon", queries.PartnerListQuery{Filters: fl{"custom.tier": {"a:b"}}}, "p1"},
			{"no match", queries.PartnerListQuery{Filters: fl{"country": {"DE"}, "status": {"suspended"}, "size": {"m"}}}, ""},
			{"unknown value", queries.PartnerListQuery{Filters: fl{"group": {"nope"}}}, ""},
			{"q 1 char", queries.PartnerListQuery{Q: "A"}, "p1 p2 p3 p4 p6 p7 p8"},
			{"q 2 chars", queries.PartnerListQuery{Q: "pH"}, "p1"},
			{"q 3 chars", queries.PartnerListQuery{Q: "ALP"}, "p1"},
			{"q id", queries.PartnerListQuery{Q: "p7"}, "p7"},
			{"q url", queries.PartnerListQuery{Q: "example/x"}, "p2"},
			{"q with comma", queries.PartnerListQuery{Q: "eta, i"}, "p2"},
			{"q trigrams but no substring", queries.PartnerListQuery{Q: "abcd"}, "p8"},
			{"q and filter", queries.PartnerListQuery{Q: "a", Filters: fl{"country": {"DE"}}}, "p1 p3"},
			{"q none", queries.PartnerListQuery{Q: "zzzz"}, ""},
		}
		for _, c := range cases {
			c.lq.Now = now
			for _, limit := range []int{1, 3, 100} {
				got, total := f.ids(c.lq, limit)
				if strings.Join(got, " ") != c.want || total != int64(len(got)) {
					t.Errorf("%s (limit %d): got %v total %d, want %s", c.name, limit, got, total, c.want)
				}
			}
		}
		// The temporary keys are gone.
		ks := projections.NewKeyspace("partners", f.r.Generation(), program)
		if keys := rdb.Keys(context.Background(), ks.Key("tmp", "*")).Val(); len(keys) > 0 {
			t.Errorf("temporary keys left: %v", keys)
		}
	})
}

func TestSearchPartnersSort(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		f := listFixture(t, rdb, program)
		cases := []struct {
			sort string
			desc bool
			want string
		}{
			{"partner_id", false, "p1 p2 p3 p4 p5 p6 p7 p8"},
			{"partner_id", true, "p8 p7 p6 p5 p4 p3 p2 p1"},
			{"name", false, "p7 p1 p2 p4 p5 p3 p8 p6"},
			{"name", true, "p6 p8 p3 p5 p4 p2 p1 p7"},
			// ties (p1 and p2 at 100; p4, p5, p6, p7, p8 unknown) by ID
			{"social_reach", false, "p4 p5 p6 p7 p8 p3 p1 p2"},
			{"social_reach", true, "p2 p1 p3 p8 p7 p6 p5 p4"},
		}
		for _, c := range cases {
			for _, limit := range []int{1, 2, 100} {
				got, _ := f.ids(queries.PartnerListQuery{Sort: c.sort, Desc: c.desc}, limit)
				if strings.Join(got, " ") != c.want {
					t.Errorf("sort %s desc %v limit %d: %v, want %s", c.sort, c.desc, limit, got, c.want)
				}
				// the same order through the filtered (temporary key) path
				got, _ = f.ids(queries.PartnerListQuery{Sort: c.sort, Desc: c.desc, Filters: map[string][]string{"relationship_type": {"direct", "marketplace"}}}, limit)
				if strings.Join(got, " ") != c.want {
					t.Errorf("filtered sort %s desc %v limit %d: %v, want %s", c.sort, c.desc, limit, got, c.want)
				}
			}
		}
		// A partner in two of the wanted groups is found through both branches
		// of the union and keeps its own sort score (not their sum): "delta"
		// sorts before "Gamma" only with its score intact.
		f.apply("p4", domain.PartnerGroupsChanged{PartnerID: "p4", ProgramID: program, Added: []string{"x", "y"}, Removed: []string{}, Groups: []string{"x", "y"}, ChangedAt: now})
		f.apply("p3", domain.PartnerGroupsChanged{PartnerID: "p3", ProgramID: program, Added: []string{"y"}, Removed: []string{}, Groups: []string{"y"}, ChangedAt: now})
		for _, lq := range []queries.PartnerListQuery{
			{Sort: "name", Filters: map[string][]string{"group": {"x", "y"}}},
			{Sort: "name", Filters: map[string][]string{"group": {"x", "y"}, "relationship_type": {"direct", "marketplace"}}},
			{Sort: "name", Q: "a", Filters: map[string][]string{"group": {"x", "y"}, "relationship_type": {"direct", "marketplace"}}},
		} {
			if got, total := f.ids(lq, 1); strings.Join(got, " ") != "p4 p3" || total != 2 {
				t.Errorf("%+v: %v (total %d), want p4 p3", lq, got, total)
			}
		}
		got, _ := f.ids(queries.PartnerListQuery{Sort: "date_joined", Desc: true, Filters: map[string][]string{"country": {"DE"}}}, 1)
		if len(got) != 3 || got[2] != "p5" && got[2] != "p1" && got[2] != "p3" {
			t.Errorf("date_joined: %v", got)
		}
		if _, err := f.q.SearchPartnerIDs(context.Background(), program, queries.PartnerListQuery{Sort: "name"}, 2, "garbage!"); err != queries.ErrBadCursor {
			t.Errorf("bad cursor: %v", err)
		}
		p, _ := f.q.SearchPartnerIDs(context.Background(), program, queries.PartnerListQuery{Sort: "name"}, 2, "")
		if _, err := f.q.SearchPartnerIDs(context.Background(), program, queries.PartnerListQuery{Sort: "social_reach"}, 2, *p.NextCursor); err != queries.ErrBadCursor {
			t.Errorf("cursor of another sort: %v", err)
		}
	})
}

// Walking every page returns each partner that existed at the start
// exactly once, while partners are inserted (anywhere in the order)
// between page reads and one of them moves.
func TestSearchPartnersPagingWhileInserting(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		f := newFixture(t, rdb, program)
		var initial []string
		for i := 0; i < 60; i++ {
			id := fmt.Sprintf("i%02d", i)
			reach := int64(i % 7)
			f.create(id, domain.Profile{Name: fmt.Sprintf("Name %c%02d", 'a'+i%26, i), Country: []string{"DE", "FR"}[i%2], SocialReach: &reach})
			initial = append(initial, id)
		}
		for _, sortKey := range []string{"name", "social_reach", "partner_id"} {
			for _, desc := range []bool{false, true} {
				for _, filtered := range []bool{false, true} {
					lq := queries.PartnerListQuery{Sort: sortKey, Desc: desc}
					want := initial
					if filtered {
						lq.Filters = map[string][]string{"country": {"DE"}}
						want = nil
						for i, id := range initial {
							if i%2 == 0 {
								want = append(want, id)
							}
						}
					}
					seen := map[string]int{}
					cursor := ""
					for n := 0; ; n++ {
						p, err := f.q.SearchPartnerIDs(context.Background(), program, lq, 7, cursor)
						if err != nil {
							t.Fatal(err)
						}
						for _, id := range p.IDs {
							seen[id]++
						}
						// insert two partners between pages: one sorting first, one last
						reach := int64(n)
						f.create(fmt.Sprintf("%s%v%v-n%da", sortKey, desc, filtered, n), domain.Profile{Name: "0000", Country: "DE", SocialReach: &reach})
						f.create(fmt.Sprintf("%s%v%v-n%db", sortKey, desc, filtered, n), domain.Profile{Name: "zzzz", Country: "DE"})
						if p.NextCursor == nil {
							break
						}
						cursor = *p.NextCursor
					}
					for _, id := range want {
						if seen[id] != 1 {
							t.Errorf("sort %s desc %v filtered %v: %s seen %d times", sortKey, desc, filtered, id, seen[id])
						}
					}
					for id, n := range seen {
						if n != 1 {
							t.Errorf("sort %s desc %v filtered %v: %s seen %d times", sortKey, desc, filtered, id, n)
						}
					}
				}
			}
		}
	})
}

func TestProjectColumnsAndCSV(t *testing.T) {
	doc := json.RawMessage(`{"partner_id":"p1","name":"A, \"B\"","groups":["g1","g2"],"social_reach":12,"contract":{"id":"c"},"assigned_to":null}`)
	got, err := queries.ProjectColumns(doc, []string{"name", "groups", "url"})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"partner_id":"p1","name":"A, \"B\"","groups":["g1","g2"],"url":null}` {
		t.Errorf("projected: %s", got)
	}
	rec, err := queries.CSVRecord(doc, []string{"partner_id", "name", "groups", "social_reach", "contract", "assigned_to", "url"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"p1", `A, "B"`, "g1;g2", "12", `{"id":"c"}`, "", ""}; !reflect.DeepEqual(rec, want) {
		t.Errorf("record %q, want %q", rec, want)
	}
	cols := append([]string{}, queries.PartnerColumns...)
	sort.Strings(cols)
	for _, c := range []string{"partner_id", "name", "country", "groups", "contract_status", "custom_fields", "date_joined"} {
		if i := sort.SearchStrings(cols, c); i == len(cols) || cols[i] != c {
			t.Errorf("column %s missing from %v", c, cols)
		}
	}
}

// The cursor's partner may change its sort value (or leave the filter)
// between pages: the next page still starts where it would have sorted.
func TestSearchPartnersCursorItemMoves(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		f := newFixture(t, rdb, program)
		for i := 0; i < 10; i++ {
			reach := int64(i / 3) // ties
			f.create(fmt.Sprintf("m%d", i), domain.Profile{Name: fmt.Sprintf("M%d", i), Country: "DE", SocialReach: &reach})
		}
		for _, filtered := range []bool{false, true} {
			for _, desc := range []bool{false, true} {
				lq := queries.PartnerListQuery{Sort: "social_reach", Desc: desc}
				if filtered {
					lq.Filters = map[string][]string{"country": {"DE"}}
				}
				all, _ := f.ids(lq, 100)
				p, err := f.q.SearchPartnerIDs(context.Background(), program, lq, 4, "")
				if err != nil {
					t.Fatal(err)
				}
				moved := p.IDs[3]
				reach := int64(100)
				country := "DE"
				if filtered {
					country = "FR" // leaves the filter
				}
				f.apply(moved, domain.PartnerProfileUpdated{PartnerID: moved, ProgramID: program, Changed: []string{"social_reach"},
					Profile: domain.Profile{Name: "M", Country: country, RelationshipType: "direct", SocialReach: &reach}, UpdatedAt: time.Now().UTC()})
				rest, err := f.q.SearchPartnerIDs(context.Background(), program, lq, 100, *p.NextCursor)
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for _, id := range all[4:] {
					if id != moved {
						want = append(want, id)
					}
				}
				if !filtered && !desc {
					want = append(want, moved) // now sorts last (descending: first, before the cursor)
				}
				if strings.Join(rest.IDs, " ") != strings.Join(want, " ") {
					t.Errorf("filtered %v desc %v: after the cursor %v, want %v (all %v)", filtered, desc, rest.IDs, want, all)
				}
				// restore
				reach = 0
				f.apply(moved, domain.PartnerProfileUpdated{PartnerID: moved, ProgramID: program, Changed: []string{"social_reach"},
					Profile: domain.Profile{Name: "M", Country: "DE", RelationshipType: "direct", SocialReach: &reach}, UpdatedAt: time.Now().UTC()})
			}
		}
	})
}

// TestSearchPartnersMatchesReference compares random list queries (several
// filters, each any of several values, with and without q) with a plain Go
// evaluation over the same random partners.
func TestSearchPartnersMatchesReference(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		f := newFixture(t, rdb, program)
		rng := rand.New(rand.NewPCG(7, uint64(len(program))))
		countries := []string{"DE", "FR", "US", "IT"}
		sizes := domain.Sizes
		models := []string{"coupon", "content", "email", "social"}
		syll := []string{"ka", "lo", "mi", "ra", "ne", "so"}
		type partner struct{ id, name, country, size, model string }
		var ps []partner
		for i := range 300 {
			p := partner{id: fmt.Sprintf("r%03d", i), country: countries[rng.IntN(4)], size: sizes[rng.IntN(len(sizes))], model: models[rng.IntN(4)]}
			for range 2 + rng.IntN(3) {
				p.name += syll[rng.IntN(len(syll))]
			}
			ps = append(ps, p)
			f.create(p.id, domain.Profile{Name: p.name, Country: p.country, Size: p.size, BusinessModel: p.model})
		}
		pick := func(vals []string) []string {
			var out []string
			for _, v := range vals {
				if rng.IntN(3) == 0 {
					out = append(out, v)
				}
			}
			if len(out) == 0 {
				out = append(out, vals[rng.IntN(len(vals))])
			}
			return out
		}
		for range 150 {
			lq := queries.PartnerListQuery{Filters: map[string][]string{}, Now: now}
			if rng.IntN(2) == 0 {
				lq.Filters["country"] = pick(countries)
			}
			if rng.IntN(2) == 0 {
				lq.Filters["size"] = pick(sizes)
			}
			if rng.IntN(2) == 0 {
				lq.Filters["business_model"] = pick(models)
			}
			if rng.IntN(2) == 0 {
				lq.Q = syll[rng.IntN(len(syll))] + syll[rng.IntN(len(syll))][:rng.IntN(3)]
			}
			var want []string
			for _, p := range ps {
				in := func(name, v string) bool { vs, ok := lq.Filters[name]; return !ok || slices.Contains(vs, v) }
				if in("country", p.country) && in("size", p.size) && in("business_model", p.model) &&
					(lq.Q == "" || strings.Contains(strings.ToLower(p.name), lq.Q) || strings.Contains(p.id, lq.Q)) {
					want = append(want, p.id)
				}
			}
			got, total := f.ids(lq, 37)
			if strings.Join(got, " ") != strings.Join(want, " ") || total != int64(len(want)) {
				t.Fatalf("query %+v: got %d %v, want %d %v", lq, total, got, len(want), want)
			}
		}
	})
}

// TestSearchEveryQueryLength checks q of one to five characters against a
// plain substring search, over short names, IDs and URLs (parts of one
// and two characters included, and non-ASCII text), before and after half
// the partners are renamed, so that 1- and 2-character queries through the
// gram registry see grams both arrive and go. The registry holds exactly
// the grams that have a set.
func TestSearchEveryQueryLength(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		ctx := context.Background()
		f := newFixture(t, rdb, program)
		rng := rand.New(rand.NewPCG(11, uint64(len(program))))
		alphabet := []rune("abcé.-")
		word := func(n int) string {
			rs := make([]rune, n)
			for i := range rs {
				rs[i] = alphabet[rng.IntN(len(alphabet))]
			}
			return string(rs)
		}
		type partner struct{ id, name, url, country string }
		ps := map[string]*partner{}
		var order []string
		for i := range 120 {
			p := &partner{id: fmt.Sprintf("%c%d", 'a'+rune(i%3), i), name: word(1 + rng.IntN(6)), country: []string{"DE", "FR", "US", "IT"}[rng.IntN(4)]}
			if rng.IntN(2) == 0 {
				p.url = word(2 + rng.IntN(5))
			}
			ps[p.id], order = p, append(order, p.id)
			f.create(p.id, domain.Profile{Name: p.name, URL: p.url, Country: p.country})
		}
		slices.Sort(order)
		check := func(stage string) {
			t.Helper()
			grams := map[string]bool{}
			for _, p := range ps {
				for _, g := range projections.NGrams(strings.ToLower(p.name), p.id, strings.ToLower(p.url)) {
					grams[g] = true
				}
			}
			ks := projections.NewKeyspace("partners", f.r.Generation(), program)
			reg, err := rdb.ZRange(ctx, ks.GramRegistryKey(), 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for g := range grams {
				want = append(want, g)
			}
			slices.Sort(want)
			slices.Sort(reg)
			if !slices.Equal(reg, want) {
				t.Errorf("%s: gram registry = %q, want %q", stage, reg, want)
			}
			qs := map[string]bool{"zz": true, "éé": true, "x": true}
			for range 150 {
				p := ps[order[rng.IntN(len(order))]]
				text := []rune([]string{p.name, p.id, p.url}[rng.IntN(3)])
				if len(text) == 0 {
					continue
				}
				n := 1 + rng.IntN(min(5, len(text)))
				at := rng.IntN(len(text) - n + 1)
				qs[string(text[at:at+n])] = true
				qs[word(1+rng.IntN(3))] = true
			}
			// With a filter too: a short q then checks the text of the
			// filter's few partners rather than storing its union.
			for q := range qs {
				for _, country := range []string{"", "DE"} {
					var want []string
					for _, id := range order {
						p := ps[id]
						if (country == "" || p.country == country) && (strings.Contains(strings.ToLower(p.name), q) ||
							strings.Contains(p.id, q) || strings.Contains(strings.ToLower(p.url), q)) {
							want = append(want, id)
						}
					}
					lq := queries.PartnerListQuery{Q: q}
					if country != "" {
						lq.Filters = map[string][]string{"country": {country}}
					}
					got, total := f.ids(lq, 50)
					if !slices.Equal(got, want) || total != int64(len(want)) {
						t.Fatalf("%s: q %q country %q: got %d %v, want %d %v", stage, q, country, total, got, len(want), want)
					}
				}
			}
		}
		check("created")
		for _, id := range order {
			if rng.IntN(2) == 0 {
				p := ps[id]
				p.name, p.url = word(1+rng.IntN(6)), ""
				f.apply(id, domain.PartnerProfileUpdated{PartnerID: id, ProgramID: program, Changed: []string{"name", "url"},
					Profile: domain.Profile{Name: p.name, Country: p.country, RelationshipType: "direct"}, UpdatedAt: time.Now().UTC()})
			}
		}
		check("renamed")
	})
}

type layoutGens struct {
	gens
	layout int
}

func (g layoutGens) Layout(string) int { return g.layout }

// TestSearchTwoCharactersOnALayout1Generation: until its rebuild, a
// generation built by a release before the gram registry has a set per
// 1- and 2-gram, which finds every partner but may keep one renamed since
// (the release writing it now maintains only its own sets); the query
// uses it and checks the text.
func TestSearchTwoCharactersOnALayout1Generation(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		ctx := context.Background()
		f := newFixture(t, rdb, program)
		f.create("p1", domain.Profile{Name: "xaby"})
		f.create("p2", domain.Profile{Name: "zzzz"})
		f.create("p3", domain.Profile{Name: "qabq"})
		ks := projections.NewKeyspace("partners", f.r.Generation(), program)
		// p2 was "ab…" once (a stale 2-gram membership); p3 was written by
		// the old release (in the 2-gram set, not in the registry).
		rdb.SAdd(ctx, ks.NGramKey("ab"), "p2", "p3")
		rdb.SRem(ctx, ks.NGramKey("abq"), "p3")
		rdb.ZRem(ctx, ks.GramRegistryKey(), "abq")
		f.q = queries.New(rdb, nil, layoutGens{gens{f.r}, 1})
		if got, _ := f.ids(queries.PartnerListQuery{Q: "ab"}, 10); strings.Join(got, " ") != "p1 p3" {
			t.Fatalf("layout 1: q ab = %v, want p1 p3", got)
		}
		f.q = queries.New(rdb, nil, layoutGens{gens{f.r}, projections.PartnersLayout})
		if got, _ := f.ids(queries.PartnerListQuery{Q: "ab"}, 10); strings.Join(got, " ") != "p1 p2 p3" {
			t.Fatalf("the current layout takes the sets as they are: q ab = %v, want p1 p2 p3 (the stale member shows the check is what removed it)", got)
		}
	})
}

type runnerLayout struct{ gens }

func (g runnerLayout) Layout(string) int { return g.r.Layout() }

// TestWritesIntoALayout1Generation: until the layout rebuild switches in,
// this release writes the old generation, whose n-gram sets exist without
// registry entries; a partner joining such a set must still be found by a
// 2-character search (the write registers the gram whenever it adds).
func TestWritesIntoALayout1Generation(t *testing.T) {
	run := func(t *testing.T, rdb *redis.Client) {
		ctx := context.Background()
		program := "t" + strings.ToLower(testenv.UniquePrefix(t))
		f := newFixture(t, rdb, program)
		f.create("p3", domain.Profile{Name: "qabq"})
		gen := f.r.Generation()
		ks := projections.NewKeyspace("partners", gen, program)
		// As the old release left it: no layout, no registry, 2-gram sets.
		rdb.Del(ctx, projections.LayoutKey("partners", gen), ks.GramRegistryKey())
		rdb.SAdd(ctx, ks.NGramKey("ab"), "p3")
		if err := f.r.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if f.r.Layout() != 1 {
			t.Fatalf("runner layout %d after the layout key went, want 1", f.r.Layout())
		}
		f.create("p4", domain.Profile{Name: "zabq"}) // joins ng:abq, which p3 made
		f.q = queries.New(rdb, nil, runnerLayout{gens{f.r}})
		if got, _ := f.ids(queries.PartnerListQuery{Q: "ab"}, 10); strings.Join(got, " ") != "p3 p4" {
			t.Fatalf("q ab on the layout-1 generation = %v, want p3 p4", got)
		}
	}
	t.Run("real redis", func(t *testing.T) {
		// Its own database: the generation and layout keys are global.
		u, err := url.Parse(testenv.RedisURL(t))
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/41"
		opt, err := redis.ParseURL(u.String())
		if err != nil {
			t.Fatal(err)
		}
		opt.DisableIdentity = true
		rdb := redis.NewClient(opt)
		t.Cleanup(func() { rdb.Close() })
		if err := rdb.FlushDB(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		run(t, rdb)
	})
	t.Run("embedded redis", func(t *testing.T) { run(t, testenv.Miniredis(t)) })
}

// The name sort orders by the whole name: names alike in their first ten
// characters ("Globex Corporation Zeta" / "… Alpha") were ordered by
// partner ID (an audit). Checked through each way the page is read: the
// program's whole name index, a small filtered result sorted on its own,
// and a large one met walking the index.
func TestSearchPartnersSortByWholeName(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		f := newFixture(t, rdb, program)
		words := []string{"Zeta", "Alpha", "alpha", "Álpha", "Beta", "beta 2", "beta 10", "Gamma Rays", "Gamma", ""}
		type partner struct{ id, name, country string }
		var all []partner
		var evs []projections.Event
		rng := rand.New(rand.NewPCG(7, 11))
		for i := range 2300 {
			p := partner{id: fmt.Sprintf("x%04d", 2300-i), name: "Globex Corporation " + words[rng.IntN(len(words))], country: "DE"}
			if i%10 == 0 {
				p.country = "FR"
			}
			all = append(all, p)
			data, _ := json.Marshal(domain.PartnerCreated{PartnerID: p.id, ProgramID: program, ProspectStage: "new", CreatedAt: now,
				Profile: domain.Profile{Name: strings.TrimSpace(p.name), RelationshipType: "direct", Country: p.country}})
			f.pos++
			evs = append(evs, projections.Event{ID: p.id, Type: domain.TypePartnerCreated, Stream: domain.PartnerStream(program, p.id),
				Program: program, Version: 1, Position: f.pos, Schema: 1, RecordedAt: now, Data: data})
		}
		for i := 0; i < len(evs); i += 500 {
			if err := f.r.Apply(context.Background(), evs[i:min(i+500, len(evs))]); err != nil {
				t.Fatal(err)
			}
		}
		want := func(country string, desc bool) []string {
			var ps []partner
			for _, p := range all {
				if country == "" || p.country == country {
					ps = append(ps, p)
				}
			}
			slices.SortFunc(ps, func(a, b partner) int {
				if c := strings.Compare(projections.NameKey(strings.TrimSpace(a.name)), projections.NameKey(strings.TrimSpace(b.name))); c != 0 {
					return c
				}
				return strings.Compare(a.id, b.id)
			})
			ids := make([]string, len(ps))
			for i, p := range ps {
				ids[i] = p.id
			}
			if desc {
				slices.Reverse(ids)
			}
			return ids
		}
		for _, tc := range []struct {
			name, country string
			limit         int
		}{{"whole index", "", 400}, {"small result", "FR", 37}, {"large result", "DE", 700}} {
			for _, desc := range []bool{false, true} {
				lq := queries.PartnerListQuery{Sort: "name", Desc: desc}
				if tc.country != "" {
					lq.Filters = map[string][]string{"country": {tc.country}}
				}
				got, total := f.ids(lq, tc.limit)
				if w := want(tc.country, desc); !slices.Equal(got, w) || total != int64(len(w)) {
					t.Errorf("%s desc %v: %d of total %d, want %d; first %v, want %v", tc.name, desc, len(got), total, len(w), got[:min(5, len(got))], w[:5])
				}
			}
		}
		// What the order means: the rest of the name counts, accents and
		// case aside, then the partner ID; a shorter name first.
		f.create("za", domain.Profile{Name: "Initech Corporation Zeta"})
		f.create("zz", domain.Profile{Name: "Initech Corporation Alpha"})
		f.create("zm", domain.Profile{Name: "initech corporation"})
		f.create("zb", domain.Profile{Name: "Initech Corporation álpha"})
		if got, _ := f.ids(queries.PartnerListQuery{Sort: "name", Q: "initech"}, 2); strings.Join(got, " ") != "zm zb zz za" {
			t.Errorf("initech by name: %v, want zm zb zz za", got)
		}
		// A renamed partner moves; its old entry is gone.
		f.apply("zm", domain.PartnerProfileUpdated{PartnerID: "zm", ProgramID: program, Changed: []string{"name"},
			Profile: domain.Profile{Name: "Initech Corporation Zz", RelationshipType: "direct"}, UpdatedAt: now})
		if got, total := f.ids(queries.PartnerListQuery{Sort: "name", Q: "initech"}, 3); strings.Join(got, " ") != "zb zz za zm" || total != 4 {
			t.Errorf("after the rename: %v (total %d), want zb zz za zm", got, total)
		}
		if n, err := rdb.ZCard(context.Background(), projections.NewKeyspace("partners", f.r.Generation(), program).NameLexKey()).Result(); err != nil || n != int64(len(all))+4 {
			t.Errorf("name index holds %d entries (%v), want %d", n, err, len(all)+4)
		}
	})
}

// An export gives every matching partner exactly once, though partners
// move in its sort order while it reads page after page: one renamed
// from the last page to before the cursor would be skipped, one renamed
// from the first page to after it would come twice.
func TestExportGivesEachPartnerOnceWhileTheyMove(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		f := newFixture(t, rdb, program)
		for i := range 30 {
			f.create(fmt.Sprintf("p%02d", i), domain.Profile{Name: fmt.Sprintf("n%02d", i)})
		}
		rename := func(id, name string) {
			f.apply(id, domain.PartnerProfileUpdated{PartnerID: id, ProgramID: program, Changed: []string{"name"},
				Profile: domain.Profile{Name: name, RelationshipType: "direct"}, UpdatedAt: time.Now().UTC()})
		}
		for _, desc := range []bool{false, true} {
			var got []string
			pages := 0
			err := f.q.ExportPartners(context.Background(), program, queries.PartnerListQuery{Sort: "name", Desc: desc}, 10, func(docs []json.RawMessage) error {
				for _, d := range docs {
					var v struct {
						PartnerID string `json:"partner_id"`
					}
					_ = json.Unmarshal(d, &v)
					got = append(got, v.PartnerID)
				}
				if pages++; pages == 1 {
					first, last := got[0], "p29"
					if desc {
						last = "p00"
					}
					// got[0] jumps behind the cursor's end, the last one ahead of it.
					rename(first, map[bool]string{false: "zz moved", true: "aa moved"}[desc])
					rename(last, map[bool]string{false: "aa moved", true: "zz moved"}[desc])
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, id := range got {
				seen[id]++
			}
			if len(got) != 30 || len(seen) != 30 {
				t.Fatalf("desc=%v: exported %d rows of %d partners, want each of 30 once: %v", desc, len(got), len(seen), got)
			}
			// Reset the names for the next order.
			for i := range 30 {
				rename(fmt.Sprintf("p%02d", i), fmt.Sprintf("n%02d", i))
			}
		}
	})
}

// q folds case as people read it: a Greek word ending in sigma matches in
// capitals (Σ) and in lower case (final ς) alike, at every length of q.
func TestSearchFoldsTheGreekFinalSigma(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		f := newFixture(t, rdb, program)
		f.create("gr1", domain.Profile{Name: "ΟΔΟΣ Travel"})
		f.create("gr2", domain.Profile{Name: "Οδός Travel"})
		f.create("gr3", domain.Profile{Name: "Σ"})
		for q, want := range map[string]string{"οδος": "gr1", "ΟΔΟΣ": "gr1", "ΟΔΌΣ": "gr2", "οδός": "gr2", "ός": "gr2", "ς": "gr1 gr2 gr3", "Σ": "gr1 gr2 gr3"} {
			ids, _ := f.ids(queries.PartnerListQuery{Q: q}, 50)
			sort.Strings(ids)
			if got := strings.Join(ids, " "); got != want {
				t.Errorf("q=%s: %s, want %s", q, got, want)
			}
		}
	})
}
