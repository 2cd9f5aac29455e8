package queries_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
	"github.com/partnerd/partnerd/queries"
)

// TestListFiltersAgreeWithSegmentEvaluator: where the list screen's filters
// and segment conditions overlap (a filter repeated = any_of, different
// filters = and), the Redis indexes of the list and domain's one
// evaluator select the same partners, over random filter combinations.
func TestListFiltersAgreeWithSegmentEvaluator(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		f := listFixture(t, rdb, program)
		ctx := context.Background()
		ks := projections.NewKeyspace("partners", f.r.Generation(), program)
		facts := map[string]domain.PartnerFacts{}
		for _, id := range []string{"p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"} {
			raw, err := rdb.HGet(ctx, ks.Key("partner", id), "state").Result()
			if err != nil {
				t.Fatal(err)
			}
			var st domain.PartnerState
			if err := json.Unmarshal([]byte(raw), &st); err != nil {
				t.Fatal(err)
			}
			facts[id] = domain.FactsOf(st)
		}
		values := map[string][]string{
			"contract_stage": {"joined", "expired", "suspended", "awaiting_publisher_approval"}, "group": {"vip", "none"},
			"template_term": {"gold", "silver", "x"}, "relationship_type": {"direct", "marketplace"}, "prospect_stage": {"new", "joined", "expired", "suspended", "negotiating"},
			"country": {"DE", "FR", "US", "IT"}, "state": {"BY", "HE"}, "size": {"s", "m", "l"}, "business_model": {"coupon", "content"},
			"assigned_to": {"kim", "lee"}, "prospecting_source": {"ai", "other"}, "custom.niche": {"travel", "food", "x"},
		}
		fields := slices.Sorted(func(yield func(string) bool) {
			for k := range values {
				if !yield(k) {
					return
				}
			}
		})
		r := rand.New(rand.NewPCG(3, 4))
		nonEmpty := 0
		for i := 0; i < 300; i++ {
			lq := queries.PartnerListQuery{Filters: map[string][]string{}}
			var block domain.ConditionBlock
			for range 1 + r.IntN(3) {
				field := fields[r.IntN(len(fields))]
				if lq.Filters[field] != nil {
					continue
				}
				var vals []string
				var cvs []domain.ConditionValue
				for _, v := range values[field] {
					if r.IntN(2) == 0 {
						vals = append(vals, v)
						cvs = append(cvs, domain.ConditionValue{S: v})
					}
				}
				if len(vals) == 0 {
					vals, cvs = values[field][:1], []domain.ConditionValue{{S: values[field][0]}}
				}
				lq.Filters[field] = vals
				block.All = append(block.All, domain.Condition{Field: field, Op: domain.OpAnyOf, Values: cvs})
			}
			c := domain.Conditions{Any: []domain.ConditionBlock{block}}
			m := c.Matcher()
			var want []string
			for _, id := range slices.Sorted(func(yield func(string) bool) {
				for k := range facts {
					if !yield(k) {
						return
					}
				}
			}) {
				fa := facts[id]
				if m.Match(&fa) {
					want = append(want, id)
				}
			}
			got, _ := f.ids(lq, 3)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("filters %v: list %v, evaluator %v", lq.Filters, got, want)
			}
			if len(want) > 0 {
				nonEmpty++
			}
		}
		if nonEmpty < 50 {
			t.Fatalf("only %d of 300 combinations matched anyone", nonEmpty)
		}
	})
}
