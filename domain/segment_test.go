package domain_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/domain"
)

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

func TestParseConditionsNamesTheBadRow(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, json string
		fields     []string
	}{
		{name: "valid", json: `{"any":[{"all":[{"field":"country","op":"any_of","values":["DE","FR"]},{"field":"social_reach","op":"gte","values":[1000]}]}]}`},
		{name: "valid custom and dates", json: `{"any":[{"all":[{"field":"custom.tier","op":"contains","values":["gold"]}]},{"all":[{"field":"date_joined","op":"lte","values":["2026-01-31"]}]}]}`},
		{name: "unknown field", json: `{"any":[{"all":[{"field":"country","op":"eq","values":["DE"]},{"field":"colour","op":"eq","values":["x"]}]}]}`, fields: []string{"conditions.any[0].all[1].field"}},
		{name: "op not for field", json: `{"any":[{"all":[{"field":"country","op":"gte","values":["DE"]}]}]}`, fields: []string{"conditions.any[0].all[0].op"}},
		{name: "custom field name no partner can have", json: `{"any":[{"all":[{"field":"custom.a b","op":"eq","values":["x"]}]}]}`, fields: []string{"conditions.any[0].all[0].field"}},
		{name: "unknown key in a row", json: `{"any":[{"all":[{"field":"country","op":"eq","values":["DE"]},{"field":"country","op":"eq","values":["DE"],"x":1}]}]}`, fields: []string{"conditions.any[0].all[1]"}},
		{name: "values as a string", json: `{"any":[{"all":[{"field":"country","op":"eq","values":"DE"}]}]}`, fields: []string{"conditions.any[0].all[0].values"}},
		{name: "field as a number", json: `{"any":[{"all":[{"field":7,"op":"eq","values":["DE"]}]}]}`, fields: []string{"conditions.any[0].all[0].field"}},
		{name: "unknown key in a block", json: `{"any":[{"all":[{"field":"country","op":"eq","values":["DE"]}],"some":[]}]}`, fields: []string{"conditions.any[0]"}},
		{name: "missing op", json: `{"any":[{"all":[{"field":"country","values":["DE"]}]}]}`, fields: []string{"conditions.any[0].all[0].op"}},
		{name: "contains on enum", json: `{"any":[{"all":[{"field":"size","op":"contains","values":["x"]}]}]}`, fields: []string{"conditions.any[0].all[0].op"}},
		{name: "non-numeric gte", json: `{"any":[{"all":[{"field":"social_reach","op":"gte","values":["lots"]}]}]}`, fields: []string{"conditions.any[0].all[0].values[0]"}},
		{name: "non-date lte", json: `{"any":[{"all":[{"field":"date_joined","op":"lte","values":["yesterday"]}]}]}`, fields: []string{"conditions.any[0].all[0].values[0]"}},
		{name: "empty values", json: `{"any":[{"all":[{"field":"group","op":"any_of","values":[]}]}]}`, fields: []string{"conditions.any[0].all[0].values"}},
		{name: "empty value", json: `{"any":[{"all":[{"field":"group","op":"any_of","values":[""]}]}]}`, fields: []string{"conditions.any[0].all[0].values[0]"}},
		{name: "bool value", json: `{"any":[{"all":[{"field":"state","op":"eq","values":[true]}]}]}`, fields: []string{"conditions.any[0].all[0].values[0]"}},
		{name: "eq two values", json: `{"any":[{"all":[{"field":"state","op":"eq","values":["a","b"]}]}]}`, fields: []string{"conditions.any[0].all[0].values"}},
		{name: "unknown enum value", json: `{"any":[{"all":[{"field":"contract_stage","op":"any_of","values":["joined","nope"]}]}]}`, fields: []string{"conditions.any[0].all[0].values[1]"}},
		{name: "no blocks", json: `{"any":[]}`, fields: []string{"conditions.any"}},
		{name: "empty block", json: `{"any":[{"all":[]},{"all":[{"field":"x","op":"eq","values":["1"]}]}]}`, fields: []string{"conditions.any[0].all", "conditions.any[1].all[0].field"}},
		{name: "not an object", json: `[1]`, fields: []string{"conditions"}},
		{name: "unknown key", json: `{"any":[],"some":1}`, fields: []string{"conditions"}},
		{name: "empty custom name", json: `{"any":[{"all":[{"field":"custom.","op":"eq","values":["1"]}]}]}`, fields: []string{"conditions.any[0].all[0].field"}},
		// Values count characters, as the fields they match do: a name of
		// 200 characters is a valid value in any script.
		{name: "long CJK name", json: `{"any":[{"all":[{"field":"partner_name","op":"eq","values":["` + strings.Repeat("日本", 100) + `"]}]}]}`},
		{name: "257 characters", json: `{"any":[{"all":[{"field":"partner_name","op":"eq","values":["` + strings.Repeat("é", 257) + `"]}]}]}`, fields: []string{"conditions.any[0].all[0].values[0]"}},
		{name: "NUL in a value", json: `{"any":[{"all":[{"field":"partner_name","op":"contains","values":["a\u0000b"]}]}]}`, fields: []string{"conditions.any[0].all[0].values[0]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := domain.ParseConditions("conditions", []byte(tc.json))
			if got := fieldsOf(err); !slices.Equal(got, tc.fields) {
				t.Fatalf("fields %v, want %v (err %v)", got, tc.fields, err)
			}
			if err != nil && len(tc.fields) == 0 {
				t.Fatal(err)
			}
		})
	}
}

func conds(t *testing.T, s string) *domain.Conditions {
	t.Helper()
	c, err := domain.ParseConditions("conditions", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestSegmentLifecycle(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var s domain.Segment
	c1 := conds(t, `{"any":[{"all":[{"field":"country","op":"eq","values":["DE"]}]}]}`)
	if _, err := s.Create(domain.NewSegment{ProgramID: "p", ID: "s1", Name: "  "}, now); !slices.Equal(fieldsOf(err), []string{"name", "conditions"}) {
		t.Fatalf("create without name and conditions: %v", err)
	}
	evs, err := s.Create(domain.NewSegment{ProgramID: "p", ID: "s1", Name: "Germans", Conditions: c1}, now)
	if err != nil || len(evs) != 1 || evs[0].EventType() != domain.TypeSegmentCreated {
		t.Fatalf("create: %v %v", evs, err)
	}
	s.Apply(evs[0])
	if _, err := s.Create(domain.NewSegment{ProgramID: "p", ID: "s1", Name: "x", Conditions: c1}, now); !errors.Is(err, domain.ErrAlreadyExists) {
		t.Fatalf("second create: %v", err)
	}
	if evs, err := s.Update("Germans", c1, now); err != nil || len(evs) != 0 {
		t.Fatalf("same update: %v %v", evs, err)
	}
	c2 := conds(t, `{"any":[{"all":[{"field":"country","op":"eq","values":["FR"]}]}]}`)
	evs, err = s.Update("French", c2, now.Add(time.Hour))
	if err != nil || len(evs) != 2 || evs[0].EventType() != domain.TypeSegmentRenamed || evs[1].EventType() != domain.TypeSegmentConditionsChanged {
		t.Fatalf("update: %v %v", evs, err)
	}
	for _, e := range evs {
		s.Apply(e)
	}
	if st := s.State(); st.Name != "French" || !st.Conditions.Equal(*c2) {
		t.Fatalf("state %+v", st)
	}
	evs, _ = s.Delete(now)
	s.Apply(evs[0])
	if evs, err := s.Delete(now); err != nil || len(evs) != 0 {
		t.Fatalf("delete again: %v %v", evs, err)
	}
	if _, err := s.Update("x", c1, now); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("update deleted: %v", err)
	}
}

// --- the evaluator against a straightforward reference ---

var (
	vocab = map[string][]string{
		"contract_stage":     {"joined", "suspended", "expired", "awaiting_publisher_approval"},
		"prospect_stage":     {"new", "outreach", "joined"},
		"country":            {"DE", "FR", "US"},
		"size":               {"s", "m", "l"},
		"business_model":     {"coupon", "content"},
		"relationship_type":  {"direct", "marketplace"},
		"prospecting_source": {"ai", "other"},
		"group":              {"g1", "g2", "g3"},
		"template_term":      {"t1", "t2"},
		"state":              {"Bavaria", "Hesse", "bayern"},
		"assigned_to":        {"ann", "bob"},
		"contract_id":        {"c1", "c2"},
		"partner_id":         {"p1", "p2", "p3"},
		"partner_name":       {"Acme", "acme shop", "Globex"},
		"custom.tier":        {"gold", "Gold", "silver"},
	}
	texts = []string{"a", "ac", "ME", "ba", "old", "x"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func randomFacts(r *rand.Rand, i int) domain.PartnerFacts {
	opt := func(field string) string {
		if r.IntN(4) == 0 {
			return ""
		}
		return pick(r, vocab[field])
	}
	f := domain.PartnerFacts{PartnerID: "p" + strconv.Itoa(i%4), Name: opt("partner_name"), ContractStage: opt("contract_stage"),
		ContractID: opt("contract_id"), TemplateTerm: opt("template_term"), ProspectStage: opt("prospect_stage"),
		Country: opt("country"), State: opt("state"), Size: opt("size"), BusinessModel: opt("business_model"),
		RelationshipType: opt("relationship_type"), AssignedTo: opt("assigned_to"), ProspectingSource: opt("prospecting_source")}
	for _, g := range vocab["group"] {
		if r.IntN(3) == 0 {
			f.Groups = append(f.Groups, g)
		}
	}
	if r.IntN(3) > 0 {
		n := int64(r.IntN(5) * 500)
		f.SocialReach = &n
	}
	if r.IntN(3) > 0 {
		d := time.Date(2026, 1, 1+r.IntN(4), r.IntN(3)*12, 0, 0, 0, time.UTC)
		f.DateJoined = &d
	}
	if r.IntN(2) == 0 {
		f.Custom = map[string]string{"tier": pick(r, vocab["custom.tier"])}
	}
	return f
}

func randomRow(r *rand.Rand) domain.Condition {
	fields := append(slices.Sorted(func(yield func(string) bool) {
		for k := range vocab {
			if !yield(k) {
				return
			}
		}
	}), "social_reach", "date_joined")
	field := pick(r, fields)
	var op string
	var vals []string
	switch field {
	case "social_reach":
		op = pick(r, []string{"eq", "gte", "lte"})
		vals = []string{strconv.Itoa(r.IntN(5) * 500)}
	case "date_joined":
		op = pick(r, []string{"eq", "gte", "lte"})
		if r.IntN(2) == 0 {
			vals = []string{fmt.Sprintf("2026-01-0%d", 1+r.IntN(4))}
		} else {
			vals = []string{fmt.Sprintf("2026-01-0%dT%02d:00:00Z", 1+r.IntN(4), r.IntN(2)*12)}
		}
	default:
		ops := []string{"any_of", "none_of", "eq"}
		if slices.Contains([]string{"partner_name", "partner_id", "contract_id", "state", "assigned_to", "custom.tier"}, field) {
			ops = append(ops, "contains")
		}
		op = pick(r, ops)
		n := 1
		if op != "eq" {
			n = 1 + r.IntN(3)
		}
		for range n {
			if op == "contains" {
				vals = append(vals, pick(r, texts))
			} else {
				vals = append(vals, pick(r, vocab[field]))
			}
		}
	}
	row := domain.Condition{Field: field, Op: op}
	for _, v := range vals {
		row.Values = append(row.Values, domain.ConditionValue{S: v})
	}
	return row
}

// reference is the plainest reading of the condition language, written
// apart from the evaluator on purpose.
func reference(c domain.Conditions, f domain.PartnerFacts) bool {
	if f.PartnerID == "" {
		return false
	}
	value := map[string]string{"contract_stage": f.ContractStage, "prospect_stage": f.ProspectStage, "country": f.Country,
		"size": f.Size, "business_model": f.BusinessModel, "relationship_type": f.RelationshipType,
		"prospecting_source": f.ProspectingSource, "template_term": f.TemplateTerm, "state": f.State, "assigned_to": f.AssignedTo,
		"contract_id": f.ContractID, "partner_id": f.PartnerID, "partner_name": f.Name, "custom.tier": f.Custom["tier"]}
	rowHolds := func(row domain.Condition) bool {
		var vals []string
		for _, v := range row.Values {
			vals = append(vals, v.S)
		}
		switch row.Field {
		case "group":
			hit := false
			for _, g := range f.Groups {
				hit = hit || slices.Contains(vals, g)
			}
			if row.Op == "none_of" {
				return !hit
			}
			return hit
		case "social_reach":
			if f.SocialReach == nil {
				return false
			}
			want, _ := strconv.ParseFloat(vals[0], 64)
			got := float64(*f.SocialReach)
			return row.Op == "eq" && got == want || row.Op == "gte" && got >= want || row.Op == "lte" && got <= want
		case "date_joined":
			if f.DateJoined == nil {
				return false
			}
			if len(vals[0]) == 10 { // a day: compare calendar days
				day := f.DateJoined.UTC().Format("2006-01-02")
				return row.Op == "eq" && day == vals[0] || row.Op == "gte" && day >= vals[0] || row.Op == "lte" && day <= vals[0]
			}
			want, _ := time.Parse(time.RFC3339, vals[0])
			got := *f.DateJoined
			return row.Op == "eq" && got.Equal(want) || row.Op == "gte" && !got.Before(want) || row.Op == "lte" && !got.After(want)
		}
		v := value[row.Field]
		switch row.Op {
		case "any_of", "eq":
			return v != "" && slices.Contains(vals, v)
		case "none_of":
			return !slices.Contains(vals, v)
		case "contains":
			for _, s := range vals {
				if v != "" && strings.Contains(strings.ToLower(v), strings.ToLower(s)) {
					return true
				}
			}
		}
		return false
	}
	for _, b := range c.Any {
		ok := true
		for _, row := range b.All {
			ok = ok && rowHolds(row)
		}
		if ok && len(b.All) > 0 {
			return true
		}
	}
	return false
}

func TestMatcherAgreesWithReference(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(6, 2026))
	matches := 0
	for i := 0; i < 3000; i++ {
		var c domain.Conditions
		for range 1 + r.IntN(3) {
			var b domain.ConditionBlock
			for range 1 + r.IntN(3) {
				b.All = append(b.All, randomRow(r))
			}
			c.Any = append(c.Any, b)
		}
		raw, _ := json.Marshal(c)
		parsed, err := domain.ParseConditions("conditions", raw)
		if err != nil {
			t.Fatalf("generated conditions %s do not validate: %v", raw, err)
		}
		m := parsed.Matcher()
		for j := 0; j < 30; j++ {
			f := randomFacts(r, j)
			got, want := m.Match(&f), reference(parsed, f)
			if got != want {
				t.Fatalf("conditions %s, facts %+v: Match %v, reference %v", raw, f, got, want)
			}
			if got {
				matches++
			}
		}
	}
	if matches < 5000 || matches > 85000 {
		t.Fatalf("%d of 90000 matched: the generator does not exercise both outcomes", matches)
	}
}

func TestFactsOf(t *testing.T) {
	t.Parallel()
	reach := int64(7)
	joined := time.Date(2026, 2, 3, 0, 0, 0, 0, time.UTC)
	s := domain.PartnerState{PartnerID: "p1", Profile: domain.Profile{Name: "Acme", Country: "DE", SocialReach: &reach,
		CustomFields: map[string]string{"tier": "gold"}, RelationshipType: "direct"}, ProspectStage: "outreach",
		Contract: &domain.ContractState{ID: "c1", TemplateTermID: "t1", Stage: domain.StageJoined}, DateJoined: &joined,
		Groups: []string{"g1"}, AssignedTo: "ann"}
	f := domain.FactsOf(s)
	m := conds(t, `{"any":[{"all":[
		{"field":"partner_id","op":"eq","values":["p1"]},{"field":"partner_name","op":"contains","values":["acm"]},
		{"field":"country","op":"eq","values":["DE"]},{"field":"contract_stage","op":"eq","values":["joined"]},
		{"field":"contract_id","op":"eq","values":["c1"]},{"field":"template_term","op":"eq","values":["t1"]},
		{"field":"group","op":"any_of","values":["g1"]},{"field":"assigned_to","op":"eq","values":["ann"]},
		{"field":"social_reach","op":"eq","values":[7]},{"field":"date_joined","op":"eq","values":["2026-02-03"]},
		{"field":"custom.tier","op":"eq","values":["gold"]},{"field":"relationship_type","op":"eq","values":["direct"]}]}]}`).Matcher()
	if !m.Match(&f) {
		t.Fatalf("facts %+v do not match their own values", f)
	}
	if none := domain.FactsOf(domain.PartnerState{}); m.Match(&none) {
		t.Fatal("a partner that does not exist matched")
	}
}

// FuzzParseConditions: any input either fails with a validation error
// naming fields under "conditions", or parses into conditions that
// re-validate, round-trip through JSON and evaluate without panicking.
func FuzzParseConditions(f *testing.F) {
	for _, s := range []string{
		`{"any":[{"all":[{"field":"country","op":"any_of","values":["DE"]}]}]}`,
		`{"any":[{"all":[{"field":"social_reach","op":"gte","values":[10.5]}]},{"all":[{"field":"date_joined","op":"eq","values":["2026-01-01T00:00:00Z"]}]}]}`,
		`{"any":[{"all":[{"field":"custom.x","op":"contains","values":["é"]}]}]}`,
		`{"any":[{"all":[{"field":"group","op":"none_of","values":[null]}]}]}`,
		`{"any":[]}`, `{}`, `null`, `[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := domain.ParseConditions("conditions", data)
		if err != nil {
			fs := fieldsOf(err)
			if len(fs) == 0 {
				t.Fatalf("error without fields: %v", err)
			}
			for _, name := range fs {
				if !strings.HasPrefix(name, "conditions") {
					t.Fatalf("field %q not under conditions", name)
				}
			}
			return
		}
		raw, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := domain.ParseConditions("conditions", raw)
		if err != nil || !again.Equal(c) {
			t.Fatalf("round trip of %s: %v", raw, err)
		}
		reach := int64(3)
		facts := domain.PartnerFacts{PartnerID: "p", Name: "n", SocialReach: &reach}
		c.Matcher().Match(&facts)
	})
}

// A country condition matches in any case: new conditions are stored upper
// case, and one stored before that ("de") still matches a partner's "DE".
func TestCountryConditionsIgnoreCase(t *testing.T) {
	parsed, err := domain.ParseConditions("conditions", []byte(`{"any":[{"all":[{"field":"country","op":"any_of","values":["de","Fr"]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if v := parsed.Any[0].All[0].Values; v[0].S != "DE" || v[1].S != "FR" {
		t.Fatalf("parsed values = %+v, want DE and FR", v)
	}
	old := domain.Conditions{Any: []domain.ConditionBlock{{All: []domain.Condition{{Field: "country", Op: "any_of", Values: []domain.ConditionValue{{S: "de"}}}}}}}
	f := domain.PartnerFacts{PartnerID: "p", Name: "n", Country: "DE"}
	if !parsed.Matcher().Match(&f) || !old.Matcher().Match(&f) {
		t.Fatal("a lower-case country condition did not match DE")
	}
	f.Country = "IT"
	if old.Matcher().Match(&f) {
		t.Fatal("a de condition matched IT")
	}
}

// A date_joined instant is kept in UTC, as every time partnerd answers or
// publishes; a calendar date stays a date; and the match is the same.
func TestDateConditionsAreKeptInUTC(t *testing.T) {
	parsed, err := domain.ParseConditions("conditions", []byte(`{"any":[{"all":[{"field":"date_joined","op":"gte","values":["2026-01-01T00:00:00+02:00"]},{"field":"date_joined","op":"lte","values":["2026-01-31"]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	rows := parsed.Any[0].All
	if rows[0].Values[0].S != "2025-12-31T22:00:00Z" || rows[1].Values[0].S != "2026-01-31" {
		t.Fatalf("stored values %q and %q", rows[0].Values[0].S, rows[1].Values[0].S)
	}
	joined := time.Date(2025, 12, 31, 22, 30, 0, 0, time.UTC)
	f := domain.PartnerFacts{PartnerID: "p", Name: "n", DateJoined: &joined}
	if !parsed.Matcher().Match(&f) {
		t.Fatal("a partner joined after the instant did not match")
	}
}

// contains folds case as the list's q does: the Greek final sigma too.
func TestContainsFoldsTheGreekFinalSigma(t *testing.T) {
	c, err := domain.ParseConditions("conditions", []byte(`{"any":[{"all":[{"field":"partner_name","op":"contains","values":["οδος"]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"ΟΔΟΣ Travel": true, "Οδος": true, "Οδοί": false} {
		f := domain.PartnerFacts{PartnerID: "p", Name: name}
		if got := c.Matcher().Match(&f); got != want {
			t.Errorf("contains οδος on %q = %v, want %v", name, got, want)
		}
	}
}
