package domain

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Segment conditions (SPEC §3, API.md): {"any":[{"all":[{field, op, values}…]}…]}.
// A partner matches when every row of at least one block holds.
type Conditions struct {
	Any []ConditionBlock `json:"any"`
}

// ConditionBlock is one "or" block: all of its rows must hold.
type ConditionBlock struct {
	All []Condition `json:"all"`
}

// Condition is one row: field operator values.
type Condition struct {
	Field  string           `json:"field"`
	Op     string           `json:"op"`
	Values []ConditionValue `json:"values"`
}

// ConditionValue is one value of a row. JSON strings and numbers are
// accepted (a number keeps its literal text); anything else decodes but
// fails validation, so a bad value is a 422 naming its row, not a 400.
type ConditionValue struct {
	S       string
	invalid bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *ConditionValue) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, &v.S)
	case len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9'):
		v.S = string(b)
	default:
		*v = ConditionValue{S: string(b), invalid: true}
	}
	return nil
}

// MarshalJSON implements json.Marshaler: values are always written as strings.
func (v ConditionValue) MarshalJSON() ([]byte, error) { return json.Marshal(v.S) }

// Operators of the condition language.
const (
	OpAnyOf    = "any_of"
	OpNoneOf   = "none_of"
	OpContains = "contains"
	OpEq       = "eq"
	OpGte      = "gte"
	OpLte      = "lte"
)

// Limits of one segment's conditions.
const (
	MaxConditionBlocks = 20
	MaxConditionRows   = 100 // over all blocks
	MaxConditionValues = 500 // per row
	MaxConditionValue  = 256 // characters per value (a name may be 200)
)

type fieldKind int

const (
	kindText fieldKind = iota // single-valued text
	kindSet                   // multi-valued (groups)
	kindNumber
	kindDate
)

type fieldSpec struct {
	kind fieldKind
	ops  []string
	enum func(string) bool // allowed values, nil = any
}

var (
	opsEnum   = []string{OpAnyOf, OpNoneOf, OpEq}
	opsText   = []string{OpAnyOf, OpNoneOf, OpEq, OpContains}
	opsNumber = []string{OpEq, OpGte, OpLte}
)

func inList(list []string) func(string) bool {
	return func(v string) bool { return slices.Contains(list, v) }
}

func isContractStage(v string) bool { return slices.Contains(ContractStages, ContractStage(v)) }

// conditionFields are the fields of API.md other than custom.<name>.
var conditionFields = map[string]fieldSpec{
	"contract_stage":     {kind: kindText, ops: opsEnum, enum: isContractStage},
	"group":              {kind: kindSet, ops: opsEnum},
	"prospect_stage":     {kind: kindText, ops: opsEnum, enum: inList(ProspectStages)},
	"contract_id":        {kind: kindText, ops: opsText},
	"partner_name":       {kind: kindText, ops: opsText},
	"partner_id":         {kind: kindText, ops: opsText},
	"template_term":      {kind: kindText, ops: opsEnum},
	"country":            {kind: kindText, ops: opsEnum, enum: IsCountry},
	"state":              {kind: kindText, ops: opsText},
	"size":               {kind: kindText, ops: opsEnum, enum: inList(Sizes)},
	"business_model":     {kind: kindText, ops: opsEnum, enum: inList(BusinessModels)},
	"relationship_type":  {kind: kindText, ops: opsEnum, enum: inList(RelationshipTypes)},
	"assigned_to":        {kind: kindText, ops: opsText},
	"prospecting_source": {kind: kindText, ops: opsEnum, enum: inList(ProspectingSources)},
	"date_joined":        {kind: kindDate, ops: opsNumber},
	"social_reach":       {kind: kindNumber, ops: opsNumber},
}

// CustomFieldPrefix starts a custom-field condition: "custom.<name>".
const CustomFieldPrefix = "custom."

// ConditionFields lists the fields of the condition language (custom.<name> apart).
func ConditionFields() []string {
	out := make([]string, 0, len(conditionFields))
	for f := range conditionFields {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

func specOf(field string) (fieldSpec, bool) {
	if name, ok := strings.CutPrefix(field, CustomFieldPrefix); ok {
		return fieldSpec{kind: kindText, ops: opsText}, name != "" && len(name) <= 64 && utf8.ValidString(name)
	}
	s, ok := conditionFields[field]
	return s, ok
}

// Validate checks conditions as written by a client and returns every
// problem at once, each naming its row ("conditions.any[0].all[2].op").
// root is the name of the conditions in the request ("conditions").
func (c Conditions) Validate(root string) error {
	var pr problems
	c.validate(&pr, root)
	return pr.err()
}

func (c Conditions) validate(pr *problems, root string) {
	if len(c.Any) == 0 {
		pr.add(root+".any", "needs at least one block {\"all\":[…]}")
		return
	}
	if len(c.Any) > MaxConditionBlocks {
		pr.add(root+".any", "at most %d blocks", MaxConditionBlocks)
		return
	}
	rows := 0
	for bi, b := range c.Any {
		bp := root + ".any[" + strconv.Itoa(bi) + "].all"
		if len(b.All) == 0 {
			pr.add(bp, "needs at least one row {\"field\",\"op\",\"values\"}")
			continue
		}
		rows += len(b.All)
		for ri, r := range b.All {
			r.validate(pr, bp+"["+strconv.Itoa(ri)+"]")
		}
	}
	if rows > MaxConditionRows {
		pr.add(root+".any", "at most %d rows in all", MaxConditionRows)
	}
}

func (r Condition) validate(pr *problems, at string) {
	spec, ok := specOf(r.Field)
	if !ok {
		pr.add(at+".field", "unknown field %q: one of %s, or custom.<name>", clip(r.Field), strings.Join(ConditionFields(), ", "))
		return
	}
	if name, custom := strings.CutPrefix(r.Field, CustomFieldPrefix); custom && !ValidEntityID(name) {
		// No partner can hold such a field: the row would never match.
		pr.add(at+".field", "custom field name %q must be 1-64 of letters, digits, '_', '.', ':', '-' (as in custom_fields)", clip(name))
		return
	}
	if r.Op == "" {
		pr.add(at+".op", "is required: one of %s for field %s", strings.Join(spec.ops, ", "), r.Field)
		return
	}
	if !slices.Contains(spec.ops, r.Op) {
		pr.add(at+".op", "operator %q is not allowed for field %s: one of %s", clip(r.Op), r.Field, strings.Join(spec.ops, ", "))
		return
	}
	vp := at + ".values"
	switch {
	case len(r.Values) == 0:
		pr.add(vp, "needs at least one value")
		return
	case len(r.Values) > MaxConditionValues:
		pr.add(vp, "at most %d values", MaxConditionValues)
		return
	case (r.Op == OpEq || r.Op == OpGte || r.Op == OpLte) && len(r.Values) != 1:
		pr.add(vp, "operator %s takes exactly one value", r.Op)
		return
	}
	for i, v := range r.Values {
		p := vp + "[" + strconv.Itoa(i) + "]"
		// Counted in characters, as the fields it matches are: a name of
		// 200 CJK characters is 600 bytes.
		textMsg := textProblem(v.S, MaxConditionValue, false)
		switch {
		case v.invalid:
			pr.add(p, "must be a string or a number")
		case v.S == "" || strings.TrimSpace(v.S) != v.S:
			pr.add(p, "must not be empty or start or end with spaces")
		case textMsg != "":
			pr.add(p, "%s", textMsg)
		case spec.kind == kindNumber:
			if _, ok := parseNumber(v.S); !ok {
				pr.add(p, "must be a number")
			}
		case spec.kind == kindDate:
			if _, _, ok := parseDateValue(v.S); !ok {
				pr.add(p, "must be a date YYYY-MM-DD or an RFC 3339 time")
			}
		case spec.enum != nil && !spec.enum(v.S):
			pr.add(p, "unknown %s %q", r.Field, clip(v.S))
		}
	}
}

func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

func parseNumber(s string) (float64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

// parseDateValue reads "YYYY-MM-DD" (a whole UTC day: [from, to)) or an
// RFC 3339 instant (from == to).
func parseDateValue(s string) (from, to time.Time, ok bool) {
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return d, d.AddDate(0, 0, 1), true
	}
	if t, err := ParseRFC3339(s); err == nil {
		return t.UTC(), t.UTC(), true
	}
	return time.Time{}, time.Time{}, false
}

// ParseConditions decodes and validates conditions from JSON; problems
// name their rows under root. It is what every writer of conditions uses.
func ParseConditions(root string, data []byte) (Conditions, error) {
	var c Conditions
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() {
		var v any
		if json.Unmarshal(data, &v) == nil {
			if fs := conditionShapeProblems(root, v); len(fs) > 0 {
				return Conditions{}, &ValidationError{Fields: fs}
			}
		}
		return Conditions{}, &ValidationError{Fields: []FieldError{{Field: root, Message: `must be {"any":[{"all":[{"field","op","values"}…]}…]}`}}}
	}
	if err := c.Validate(root); err != nil {
		return Conditions{}, err
	}
	c.normalize()
	return c, nil
}

// conditionShapeProblems names where JSON that does not decode as
// conditions goes wrong (a key that is not one, a wrong type), row by
// row, as validation does for well-formed conditions.
func conditionShapeProblems(root string, v any) []FieldError {
	var out []FieldError
	add := func(field, msg string) { out = append(out, FieldError{Field: field, Message: msg}) }
	object := func(at string, v any, keys ...string) (map[string]any, bool) {
		m, ok := v.(map[string]any)
		if !ok {
			add(at, "must be an object with "+strings.Join(keys, ", "))
			return nil, false
		}
		for _, k := range sortedKeys(m) {
			if !slices.Contains(keys, k) {
				add(at, "unknown key "+strconv.Quote(clip(k))+": one of "+strings.Join(keys, ", "))
			}
		}
		return m, true
	}
	array := func(at string, v any, of string) ([]any, bool) {
		a, ok := v.([]any)
		if !ok && v != nil {
			add(at, "must be an array of "+of)
		}
		return a, ok
	}
	m, ok := object(root, v, "any")
	if !ok {
		return out
	}
	blocks, _ := array(root+".any", m["any"], `blocks {"all":[…]}`)
	for bi, b := range blocks {
		bp := root + ".any[" + strconv.Itoa(bi) + "]"
		bm, ok := object(bp, b, "all")
		if !ok {
			continue
		}
		rows, _ := array(bp+".all", bm["all"], `rows {"field","op","values"}`)
		for ri, r := range rows {
			rp := bp + ".all[" + strconv.Itoa(ri) + "]"
			rm, ok := object(rp, r, "field", "op", "values")
			if !ok {
				continue
			}
			for _, k := range []string{"field", "op"} {
				if x, present := rm[k]; present && x != nil {
					if _, isString := x.(string); !isString {
						add(rp+"."+k, "must be a string")
					}
				}
			}
			array(rp+".values", rm["values"], "strings or numbers")
		}
	}
	return out
}

// normalize writes values the way partners keep them: a country code in
// upper case (validation takes "de", as a partner's country does, and the
// partner keeps it as "DE"; compared as given, "de" matched no one), and
// an instant of date_joined in UTC, as every time partnerd answers or
// publishes ("2026-01-01T00:00:00+02:00" is kept as
// "2025-12-31T22:00:00Z"; a calendar date stays a date).
func (c *Conditions) normalize() {
	for bi := range c.Any {
		for ri := range c.Any[bi].All {
			r := &c.Any[bi].All[ri]
			for i := range r.Values {
				switch v := &r.Values[i]; r.Field {
				case "country":
					v.S = strings.ToUpper(v.S)
				case "date_joined":
					if _, err := time.Parse(time.DateOnly, v.S); err == nil {
						continue
					}
					if t, err := ParseRFC3339(v.S); err == nil {
						v.S = t.UTC().Format(time.RFC3339Nano)
					}
				}
			}
		}
	}
}

// Equal reports whether two conditions are the same rows in the same order.
func (c Conditions) Equal(o Conditions) bool {
	a, _ := json.Marshal(c)
	b, _ := json.Marshal(o)
	return bytes.Equal(a, b)
}
