package projections_test

import (
	"cmp"
	"context"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/projections"
)

func TestIndexPartIsOneToOne(t *testing.T) {
	cases := map[string]string{"DE": "DE", "a:b": "a%3Ab", "a%3Ab": "a%253Ab", "{x}": "%7Bx%7D", "é": "%C3%A9", "a b": "a%20b"}
	for in, want := range cases {
		if got := projections.IndexPart(in); got != want {
			t.Errorf("IndexPart(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNameScoreOrder(t *testing.T) {
	names := []string{"", " x", "0", "9z", "A", "a b", "ab", "Abc", "b", "Z", "zzzzzzzzzzzz"}
	for i := 1; i < len(names); i++ {
		if !(projections.NameScore(names[i-1]) < projections.NameScore(names[i])) {
			t.Errorf("NameScore(%q) !< NameScore(%q)", names[i-1], names[i])
		}
	}
	if projections.NameScore("Alpha") != projections.NameScore("ALPHA") {
		t.Error("NameScore is case-sensitive")
	}
	// Accented Latin letters sort as their base letter, other scripts
	// after z; none of them before "a" as punctuation does.
	names = []string{"a", "Alpha", "Delta", "Épsilon", "ÉPSILON 2", "Foxtrot", "straße", "strasse b", "Über", "Zeta", "Ωmega", "日本語ショップ"}
	for i := 1; i < len(names); i++ {
		if !(projections.NameScore(names[i-1]) < projections.NameScore(names[i])) {
			t.Errorf("NameScore(%q) !< NameScore(%q)", names[i-1], names[i])
		}
	}
	if projections.NameScore("Café") != projections.NameScore("cafe") || projections.NameScore("Ærø") != projections.NameScore("aero") {
		t.Error("accents count apart from their letters")
	}
	// Other scripts by code point, on their first two letters: the
	// alphabet's order for Cyrillic and Greek.
	names = []string{"Zulu", "Афины", "Берлин", "Москва", "Ёлка", "Жук", "Αθήνα", "Ωmega", "東京"}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(projections.NameScore(a), projections.NameScore(b)) })
	if got := strings.Join(names, " "); got != "Zulu Αθήνα Ωmega Афины Берлин Ёлка Жук Москва 東京" {
		t.Errorf("other scripts sort as %s", got)
	}
	if s := projections.NameScore("日本語ショップ日本語ショップ"); s >= 1<<53 {
		t.Errorf("NameScore exceeds 2^53: %v", s)
	}
	if s := projections.NameScore("zzzzzzzzzzzz"); s >= 1<<53 {
		t.Errorf("NameScore exceeds 2^53: %v", s)
	}
}

func TestPartnerIndexes(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		ctx := context.Background()
		r := startRunner(t, rdb)
		ks := projections.NewKeyspace("partners", r.Generation(), program)
		var pos eventstore.Position
		a := &stream{program: program, id: "a", pos: &pos}
		b := &stream{program: program, id: "b", pos: &pos}
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		reach := int64(500)
		ca := created(program, "a", "Alpha Media", "DE")
		ca.Profile.URL = "https://alpha.example"
		ca.Profile.Size = "m"
		ca.Profile.SocialReach = &reach
		ca.Profile.CustomFields = map[string]string{"niche": "a:b"}
		apply := func(evs ...projections.Event) {
			t.Helper()
			if err := r.Apply(ctx, evs); err != nil {
				t.Fatal(err)
			}
		}
		members := func(key string) []string {
			t.Helper()
			m, err := rdb.SMembers(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(m)
			return m
		}
		expect := func(key string, want ...string) {
			t.Helper()
			if want == nil {
				want = []string{}
			}
			if got := members(key); !reflect.DeepEqual(got, want) {
				t.Errorf("%s = %v, want %v", key, got, want)
			}
		}
		apply(a.next(t, ca), b.next(t, created(program, "b", "Beta", "FR")))
		expect(ks.FilterKey("country", "DE"), "a")
		expect(ks.FilterKey("country", "FR"), "b")
		expect(ks.FilterKey("size", "m"), "a")
		expect(ks.FilterKey("relationship_type", "direct"), "a", "b")
		expect(ks.FilterKey("relationship_stage", "new"), "a", "b")
		expect(ks.CustomKey("niche", "a:b"), "a")
		expect(ks.NGramKey("alp"), "a")
		expect(ks.NGramKey("a"), "a", "b")
		expect(ks.NGramKey("exa"), "a")
		if s := rdb.ZScore(ctx, ks.SortKey("social_reach"), "a").Val(); s != 500 {
			t.Errorf("social_reach score %v", s)
		}
		if s := rdb.ZScore(ctx, ks.SortKey("social_reach"), "b").Val(); s != -1 {
			t.Errorf("social_reach score of b %v", s)
		}
		if s := rdb.ZScore(ctx, ks.SortKey("name"), "a").Val(); s != projections.NameScore("alpha media") {
			t.Errorf("name score %v", s)
		}
		if txt := rdb.HGet(ctx, ks.SearchKey(), "a").Val(); txt != "alpha media\na\nhttps://alpha.example" {
			t.Errorf("search text %q", txt)
		}

		// An update (in its own batch: the old state is read back) moves a
		// between index sets.
		up := updated(program, "a", "Gamma", "FR")
		up.Profile.CustomFields = map[string]string{"niche": "travel"}
		apply(a.next(t, up))
		expect(ks.FilterKey("country", "DE"))
		expect(ks.FilterKey("country", "FR"), "a", "b")
		expect(ks.FilterKey("size", "m"))
		expect(ks.CustomKey("niche", "a:b"))
		expect(ks.CustomKey("niche", "travel"), "a")
		expect(ks.NGramKey("alp"))
		expect(ks.NGramKey("gam"), "a")
		if s := rdb.ZScore(ctx, ks.SortKey("social_reach"), "a").Val(); s != -1 {
			t.Errorf("social_reach score after update %v", s)
		}

		// Contract and groups, several events of a in one batch.
		apply(
			a.next(t, domain.ContractProposed{PartnerID: "a", ProgramID: program, ContractID: "a:1", By: domain.SideAdvertiser,
				Stage: domain.StageAwaitingPublisherApproval, TemplateTermID: "gold", ProposedAt: at}),
			b.next(t, domain.ContractProposed{PartnerID: "b", ProgramID: program, ContractID: "b:1", By: domain.SideAdvertiser,
				Stage: domain.StageAwaitingPublisherApproval, TemplateTermID: "silver", ProposedAt: at}),
			a.next(t, domain.PartnerGroupsChanged{PartnerID: "a", ProgramID: program, Added: []string{"vip", "x:y"}, Removed: []string{},
				Groups: []string{"vip", "x:y"}, ChangedAt: at}),
		)
		expect(ks.FilterKey("contract_stage", "awaiting_publisher_approval"), "a", "b")
		expect(ks.FilterKey("terms_update", "pending_proposal"), "a", "b")
		expect(ks.FilterKey("template_term", "gold"), "a")
		expect(ks.FilterKey("template_term", "silver"), "b")
		expect(ks.FilterKey("relationship_stage", "outreach"), "a", "b")
		expect(ks.FilterKey("relationship_stage", "new"))
		expect(ks.FilterKey("group", "vip"), "a")
		expect(ks.FilterKey("group", "x:y"), "a")
		apply(
			a.next(t, domain.ContractAccepted{PartnerID: "a", ProgramID: program, ContractID: "a:1", By: domain.SidePublisher,
				Stage: domain.StageJoined, TemplateTermID: "gold", AcceptedAt: at}),
			a.next(t, domain.PartnerGroupsChanged{PartnerID: "a", ProgramID: program, Added: []string{}, Removed: []string{"vip"},
				Groups: []string{"x:y"}, ChangedAt: at}),
		)
		expect(ks.FilterKey("status", "active"), "a")
		expect(ks.FilterKey("contract_stage", "joined"), "a")
		expect(ks.FilterKey("contract_stage", "awaiting_publisher_approval"), "b")
		expect(ks.FilterKey("terms_update", "pending_proposal"), "b")
		expect(ks.FilterKey("relationship_stage", "joined"), "a")
		expect(ks.FilterKey("prospect_stage", "joined"), "a")
		expect(ks.FilterKey("group", "vip"))
		expect(ks.FilterKey("group", "x:y"), "a")
		end := at.Add(24 * time.Hour)
		apply(a.next(t, domain.ContractExpired{PartnerID: "a", ProgramID: program, ContractID: "a:1", By: domain.SideAdvertiser,
			Stage: domain.StageExpired, ExpiredAt: end}))
		expect(ks.FilterKey("status", "active"))
		expect(ks.FilterKey("status", "expired"), "a")
		expect(ks.FilterKey("relationship_stage", "expired"), "a")
		if s, err := rdb.ZScore(ctx, ks.RecentlyExpiredKey(), "a").Result(); err != nil || s != float64(end.UnixMilli()) {
			t.Errorf("recently_expired score %v, %v", s, err)
		}
		if s := rdb.ZScore(ctx, ks.SortKey("date_joined"), "a").Val(); s <= 0 {
			t.Errorf("date_joined score %v", s)
		}
		apply(a.next(t, domain.PartnerAssigned{PartnerID: "a", ProgramID: program, User: "kim", AssignedAt: at}))
		expect(ks.FilterKey("assigned_to", "kim"), "a")
		apply(a.next(t, domain.PartnerAssigned{PartnerID: "a", ProgramID: program, User: "lee", PreviousUser: "kim", AssignedAt: at}))
		expect(ks.FilterKey("assigned_to", "kim"))
		expect(ks.FilterKey("assigned_to", "lee"), "a")
	})
}
