package httpapi

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/queries"
)

// How a CSV import reads each column of its header. The columns are the
// partner list's (GET /partners?columns=…, the header of GET /partners.csv),
// so an export imports again as it is.
type colKind int

const (
	colIgnored   colKind = iota // a read-only list column (derived or changed by its own actions)
	colPartnerID                // matches the row to its partner
	colText                     // a profile string
	colList                     // a profile list: items joined with ';'
	colInt                      // a profile whole number
	colObject                   // a profile object, as JSON (custom_fields)
	colProspectStage
	colGroups // the partner's groups (IDs joined with ';'): the full set
	colAssignedTo
	colVersion // the version the row was exported at: a precondition, as If-Match
)

// importColumnKinds maps every column an import may carry to how it is read.
var importColumnKinds = func() map[string]colKind {
	kinds := map[string]colKind{}
	for _, c := range queries.PartnerColumns {
		kinds[c] = colIgnored
	}
	for _, t := range []reflect.Type{reflect.TypeOf(domain.Profile{}), reflect.TypeOf(domain.Personal{})} {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.String:
				kinds[name] = colText
			case reflect.Slice:
				kinds[name] = colList
			case reflect.Int, reflect.Int64:
				kinds[name] = colInt
			case reflect.Map:
				kinds[name] = colObject
			default:
				panic("csv import: no reading for profile field " + name)
			}
		}
	}
	kinds["partner_id"] = colPartnerID
	kinds["prospect_stage"] = colProspectStage
	kinds["groups"] = colGroups
	kinds["assigned_to"] = colAssignedTo
	kinds["version"] = colVersion
	return kinds
}()

// importPlan is what a header row asks for.
type importPlan struct {
	names []string
	kinds []colKind
	// Ignored are the read-only columns of the header, in its order.
	Ignored []string
}

// Bounds of one import.
const (
	maxImportColumns = 100
	maxImportRows    = 200_000
	maxImportCell    = 10_000
)

// importColumnName is a header cell as a column name: trimmed, in lower
// case, with spaces and hyphens as underscores, so that a spreadsheet's
// "Partner ID" or "Date-Joined" names partner_id and date_joined.
func importColumnName(raw string) string {
	name := strings.ToLower(strings.TrimSpace(raw))
	return strings.Join(strings.FieldsFunc(name, func(r rune) bool { return r == ' ' || r == '-' || r == '\t' }), "_")
}

// parseImportHeader checks a header row: every column must be a list
// column, once. Unknown or repeated columns are one ValidationError naming
// each (422 for the whole upload).
func parseImportHeader(header []string) (*importPlan, error) {
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	var bad []domain.FieldError
	if len(header) > maxImportColumns {
		return nil, fieldError("header", "at most "+strconv.Itoa(maxImportColumns)+" columns")
	}
	p := &importPlan{}
	for i, raw := range header {
		name := importColumnName(raw)
		kind, ok := importColumnKinds[name]
		switch {
		case name == "":
			bad = append(bad, domain.FieldError{Field: "header[" + strconv.Itoa(i) + "]", Message: "a column needs a name"})
		case strings.Contains(raw, "\r"):
			return nil, fieldError("body", "has lines that end with CR alone (an old Mac format); save the file with CRLF or LF line ends")
		case !ok:
			bad = append(bad, domain.FieldError{Field: "header[" + strconv.Itoa(i) + "]",
				Message: "unknown column " + quoteField(name) + "; columns are those of the partner list"})
		case slices.Contains(p.names, name):
			bad = append(bad, domain.FieldError{Field: "header[" + strconv.Itoa(i) + "]", Message: "column " + quoteField(name) + " appears twice"})
		}
		p.names = append(p.names, name)
		p.kinds = append(p.kinds, kind)
		if ok && kind == colIgnored {
			p.Ignored = append(p.Ignored, name)
		}
	}
	if len(bad) > 0 {
		return nil, &domain.ValidationError{Fields: bad}
	}
	return p, nil
}

// row reads one record into the change it asks for. An empty cell clears
// the field (as an export writes a field the partner lacks); an empty
// prospect_stage keeps the stage. Errors name the column.
// partnerIDOf is the partner ID cell of a row that could not be read
// whole, when it is there: it still says whose row it is.
func (p *importPlan) partnerIDOf(rec []string) string {
	if i := slices.Index(p.kinds, colPartnerID); i >= 0 && i < len(rec) && utf8.ValidString(rec[i]) && len(rec[i]) <= maxImportCell {
		return strings.TrimSpace(rec[i])
	}
	return ""
}

func (p *importPlan) row(rec []string) (domain.PartnerImport, error) {
	var in domain.PartnerImport
	if len(rec) != len(p.names) {
		return domain.PartnerImport{PartnerID: p.partnerIDOf(rec)}, fieldError("row", "has "+strconv.Itoa(len(rec))+" cells, the header "+strconv.Itoa(len(p.names)))
	}
	var bad []domain.FieldError
	fail := func(col, msg string) { bad = append(bad, domain.FieldError{Field: col, Message: msg}) }
	for i, cell := range rec {
		name := p.names[i]
		if len(cell) > maxImportCell {
			fail(name, "is longer than "+strconv.Itoa(maxImportCell)+" bytes")
			continue
		}
		if !utf8.ValidString(cell) {
			fail(name, "is not UTF-8 text")
			continue
		}
		switch p.kinds[i] {
		case colIgnored:
		case colPartnerID:
			in.PartnerID = strings.TrimSpace(cell)
		case colProspectStage:
			if s := strings.TrimSpace(cell); s != "" {
				in.ProspectStage = &s
			}
		case colAssignedTo:
			s := strings.TrimSpace(cell)
			in.AssignedTo = &s
		case colVersion:
			// A sheet exported with its versions is applied only to the
			// partners nobody changed since (a 409 row otherwise), so a
			// stale sheet cannot undo a colleague's edit; an empty cell
			// applies the row as it is.
			if s := strings.TrimSpace(cell); s != "" {
				v, err := strconv.ParseUint(s, 10, 64)
				if err != nil || v == 0 { // ParseUint takes no sign
					fail(name, "must be the partner's version (a whole number from 1) or empty")
					continue
				}
				in.IfVersion = &v
			}
		case colGroups:
			groups := splitList(cell)
			in.Groups = &groups
		default:
			raw, msg := profileCell(p.kinds[i], cell)
			if msg != "" {
				fail(name, msg)
				continue
			}
			if in.Profile == nil {
				in.Profile = domain.Patch{}
			}
			in.Profile[name] = raw
		}
	}
	if len(bad) > 0 {
		return in, &domain.ValidationError{Fields: bad}
	}
	return in, nil
}

// profileCell turns a cell into the JSON value of its profile field, or
// says why it cannot.
func profileCell(kind colKind, cell string) (json.RawMessage, string) {
	if strings.TrimSpace(cell) == "" {
		return json.RawMessage("null"), ""
	}
	var v any
	switch kind {
	case colText:
		v = cell
	case colList:
		v = splitList(cell)
	case colInt:
		n, err := strconv.ParseInt(strings.TrimSpace(cell), 10, 64)
		if err != nil {
			return nil, "must be a whole number"
		}
		v = n
	case colObject:
		var m map[string]string
		if err := json.Unmarshal([]byte(cell), &m); err != nil {
			return nil, `must be a JSON object of strings, e.g. {"niche":"travel"}`
		}
		v = m
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, "cannot be stored" // invalid UTF-8 is replaced, never an error; kept for safety
	}
	return raw, ""
}

// splitList splits a list cell on ';' (as the export joins lists),
// trimming items and dropping empty ones. "\;" is a ';' inside an item and
// "\\" a backslash, as the export escapes them; any other backslash is
// itself.
func splitList(cell string) []string {
	out := []string{}
	var item strings.Builder
	flush := func() {
		if it := strings.TrimSpace(item.String()); it != "" {
			out = append(out, it)
		}
		item.Reset()
	}
	for i := 0; i < len(cell); i++ {
		switch c := cell[i]; {
		case c == '\\' && i+1 < len(cell) && (cell[i+1] == ';' || cell[i+1] == '\\'):
			item.WriteByte(cell[i+1])
			i++
		case c == ';':
			flush()
		default:
			item.WriteByte(c)
		}
	}
	flush()
	return out
}
