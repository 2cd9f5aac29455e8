package domain

import (
	"strings"
	"time"
)

// PartnerFacts are the values of a partner that segment conditions (and
// the list screen's filters) look at. FactsOf is the one definition of
// each field's value; Matcher.Match is the one evaluator.
type PartnerFacts struct {
	PartnerID         string
	Name              string
	ContractStage     string // "" without a contract
	ContractID        string
	TemplateTerm      string
	ProspectStage     string
	Groups            []string
	Country           string
	State             string
	Size              string
	BusinessModel     string
	RelationshipType  string
	AssignedTo        string
	ProspectingSource string
	DateJoined        *time.Time
	SocialReach       *int64
	Custom            map[string]string
}

// FactsOf derives a partner's facts from its state. A partner that does
// not exist has zero facts (PartnerID "").
func FactsOf(s PartnerState) PartnerFacts {
	p := s.Profile
	f := PartnerFacts{PartnerID: s.PartnerID, Name: p.Name, ProspectStage: ProspectStageOf(s),
		Groups: s.Groups, Country: p.Country, State: p.State, Size: p.Size, BusinessModel: p.BusinessModel,
		RelationshipType: p.RelationshipType, AssignedTo: s.AssignedTo, ProspectingSource: p.ProspectingSource,
		DateJoined: s.DateJoined, SocialReach: p.SocialReach, Custom: p.CustomFields}
	if s.PartnerID == "" {
		return PartnerFacts{}
	}
	if c := s.Contract; c != nil {
		f.ContractStage, f.ContractID, f.TemplateTerm = string(c.Stage), c.ID, c.TemplateTermID
	}
	return f
}

// Text returns the value of a single-valued text field ("custom.<name>"
// included) and whether the field is one.
func (f *PartnerFacts) Text(field string) (string, bool) {
	switch field {
	case "contract_stage":
		return f.ContractStage, true
	case "prospect_stage":
		return f.ProspectStage, true
	case "contract_id":
		return f.ContractID, true
	case "partner_name":
		return f.Name, true
	case "partner_id":
		return f.PartnerID, true
	case "template_term":
		return f.TemplateTerm, true
	case "country":
		return f.Country, true
	case "state":
		return f.State, true
	case "size":
		return f.Size, true
	case "business_model":
		return f.BusinessModel, true
	case "relationship_type":
		return f.RelationshipType, true
	case "assigned_to":
		return f.AssignedTo, true
	case "prospecting_source":
		return f.ProspectingSource, true
	}
	if name, ok := strings.CutPrefix(field, CustomFieldPrefix); ok {
		return f.Custom[name], true
	}
	return "", false
}

// Matcher is compiled conditions: build it once per segment with Matcher
// and call Match per partner. It is read-only, so safe for concurrent use.
type Matcher struct {
	blocks [][]rowMatcher
}

type rowMatcher struct {
	field    string
	kind     fieldKind
	op       string
	set      map[string]bool // any_of, none_of, eq on text and sets
	subs     []string        // contains: lower-case needles
	num      float64         // numbers
	from, to time.Time       // dates: [from, to) for a day, from == to for an instant
}

// Matcher compiles validated conditions. Rows that would not validate
// never match (callers validate on write; this keeps Match total).
func (c Conditions) Matcher() *Matcher {
	m := &Matcher{}
	for _, b := range c.Any {
		var rows []rowMatcher
		for _, r := range b.All {
			rows = append(rows, compileRow(r))
		}
		m.blocks = append(m.blocks, rows)
	}
	return m
}

func compileRow(r Condition) rowMatcher {
	spec, ok := specOf(r.Field)
	rm := rowMatcher{field: r.Field, kind: spec.kind, op: r.Op}
	if !ok || len(r.Values) == 0 {
		rm.op = "" // never matches
		return rm
	}
	switch {
	case spec.kind == kindNumber:
		n, ok := parseNumber(r.Values[0].S)
		if !ok {
			rm.op = ""
		}
		rm.num = n
	case spec.kind == kindDate:
		from, to, ok := parseDateValue(r.Values[0].S)
		if !ok {
			rm.op = ""
		}
		rm.from, rm.to = from, to
	case r.Op == OpContains:
		for _, v := range r.Values {
			rm.subs = append(rm.subs, FoldCase(v.S))
		}
	default:
		rm.set = make(map[string]bool, len(r.Values))
		for _, v := range r.Values {
			s := v.S
			if r.Field == "country" {
				s = strings.ToUpper(s) // partners keep it so; older segments may hold "de"
			}
			rm.set[s] = true
		}
	}
	return rm
}

// Match reports whether the partner matches: every row of at least one
// block holds. A partner that does not exist matches nothing.
func (m *Matcher) Match(f *PartnerFacts) bool {
	if f.PartnerID == "" {
		return false
	}
	for _, rows := range m.blocks {
		all := len(rows) > 0
		for i := range rows {
			if !rows[i].match(f) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (r *rowMatcher) match(f *PartnerFacts) bool {
	switch r.kind {
	case kindSet: // group: any_of / eq = in one of them, none_of = in none
		in := false
		for _, g := range f.Groups {
			if r.set[g] {
				in = true
				break
			}
		}
		switch r.op {
		case OpAnyOf, OpEq:
			return in
		case OpNoneOf:
			return !in
		}
	case kindNumber:
		if f.SocialReach == nil {
			return false
		}
		v := float64(*f.SocialReach)
		switch r.op {
		case OpEq:
			return v == r.num
		case OpGte:
			return v >= r.num
		case OpLte:
			return v <= r.num
		}
	case kindDate:
		if f.DateJoined == nil {
			return false
		}
		t := *f.DateJoined
		day := r.to.After(r.from)
		switch {
		case r.op == OpGte:
			return !t.Before(r.from)
		case r.op == OpLte && day:
			return t.Before(r.to)
		case r.op == OpLte:
			return !t.After(r.from)
		case r.op == OpEq && day:
			return !t.Before(r.from) && t.Before(r.to)
		case r.op == OpEq:
			return t.Equal(r.from)
		}
	default:
		v, _ := f.Text(r.field)
		switch r.op {
		case OpAnyOf, OpEq:
			return v != "" && r.set[v]
		case OpNoneOf:
			return !r.set[v]
		case OpContains:
			if v == "" {
				return false
			}
			lv := FoldCase(v)
			for _, s := range r.subs {
				if strings.Contains(lv, s) {
					return true
				}
			}
		}
	}
	return false
}
