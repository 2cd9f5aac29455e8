package httpapi

import (
	"bytes"
	"encoding/csv"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/domain"
)

// jsonBodies are fresh values of every request body type the API decodes.
func jsonBodies() []any {
	return []any{
		&createPartnerBody{}, &domain.Patch{}, &contractBody{}, &bulkGroupsBody{}, &bulkAssignBody{},
		&bulkEmailBody{}, &bulkContractBody{}, &createTemplateTermBody{}, &updateTemplateTermBody{},
		&groupBody{}, &renameGroupBody{}, &partnerGroupsBody{}, &assignBody{}, &prospectStageBody{},
		&noteBody{}, &linkBody{}, &unlinkBody{}, &messageBody{}, &inviteBody{}, &issueAccessLinkBody{},
		&redeemAccessLinkBody{}, &trackingBody{}, &clientCostBody{}, &complianceBody{},
		&createCredentialBody{}, &rotateCredentialBody{}, &createConnectionBody{}, &updateConnectionBody{},
		&checkEmailBody{}, &noBody{}, &map[string]any{},
	}
}

// FuzzJSONDecoders: whatever the body, decoding it into any request type
// never panics and fails only with a client error (400/422), never a 500;
// a body the shape check refuses is refused before decoding. A decoded
// partner patch then goes through the domain's profile update and import
// decisions, which must also answer only with client errors.
func FuzzJSONDecoders(f *testing.F) {
	for _, seed := range []string{
		`{"partner_id":"a","name":"A","relationship_type":"direct","custom_fields":{"k":"v"},"social_reach":3}`,
		`{"name":null,"country":"de","media_properties":["x"],"moz_domain_authority":101}`,
		`{"partner_ids":["a","b"],"filter":{"country":["DE","FR"],"q":"x"},"add":["g"]}`,
		`{"by":"publisher","revert":["expiry","switch"],"new_template_term":{"name":"N"}}`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
		`{"a":"\"}{[","b":1e999,"c":-0,"d":"\ud800"}`,
		`{"user":null}`, `null`, `"x"`, `{} {}`, `{"name":"x"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		shapeErr := checkJSONShape(body)
		for _, v := range jsonBodies() {
			err := decodeJSONBytes(body, v)
			if err == nil {
				if shapeErr != nil {
					t.Fatalf("%T accepted a body the shape check refuses: %v", v, shapeErr)
				}
				continue
			}
			if st := classify(err).Status; st != http.StatusBadRequest && st != http.StatusUnprocessableEntity {
				t.Fatalf("decoding %q into %T: status %d (%v)", body, v, st, err)
			}
		}
		var patch domain.Patch
		if decodeJSONBytes(body, &patch) != nil {
			return
		}
		now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		var p domain.Partner
		created, err := p.Create(domain.NewPartner{ProgramID: "acme", PartnerID: "p1",
			Profile: domain.Profile{Name: "P", RelationshipType: "direct"}}, now)
		if err != nil {
			t.Fatal(err)
		}
		p.Apply(created[0])
		for _, decide := range []func() ([]domain.Event, error){
			func() ([]domain.Event, error) { return p.UpdateProfile(patch, now) },
			func() ([]domain.Event, error) {
				return p.Import(domain.PartnerImport{ProgramID: "acme", PartnerID: "p1", Profile: patch}, now)
			},
			func() ([]domain.Event, error) {
				var fresh domain.Partner
				return fresh.Import(domain.PartnerImport{ProgramID: "acme", PartnerID: "p2", Profile: patch}, now)
			},
		} {
			if _, err := decide(); err != nil {
				if st := classify(err).Status; st != http.StatusUnprocessableEntity && st != http.StatusBadRequest {
					t.Fatalf("patch %q: status %d (%v)", body, st, err)
				}
			}
		}
	})
}

// FuzzCSVImport: whatever the upload, reading it never panics; either the
// whole file is refused with a client error, or every row is read (as many
// as the first pass counted, numbered upwards), each into a change or a
// 422 naming its column. A file that parses is read the same way a second time.
func FuzzCSVImport(f *testing.F) {
	for _, seed := range []string{
		"partner_id,name,relationship_type\r\na,A,direct\r\n",
		"\ufeffpartner_id,name,groups,social_reach,custom_fields\nb,\"B, \"\"q\"\"\nx\",g1;g2,12,\"{\"\"k\"\":\"\"v\"\"}\"\n",
		"partner_id,name\r\na,\"unterminated\r\n",
		"partner_id,nope,name,name\r\n",
		"name,contract_status,version,assigned_to,prospect_stage\r\nX,active,3,,joined\r\n,,,,\r\n",
		"partner_id\r\n\r\n\r\na\r\n",
		"",
		"\xff\xfe,\x00\r\n\xc3(,b\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		plan, rows, err := scanImport(bytes.NewReader(body))
		if err != nil {
			if st := classify(err).Status; st != http.StatusUnprocessableEntity && st != http.StatusBadRequest {
				t.Fatalf("refused with status %d: %v", st, err)
			}
			return
		}
		if rows > maxImportRows {
			t.Fatalf("%d rows passed the bound", rows)
		}
		seen, last := 0, 1
		err = readImportRows(bytes.NewReader(body), plan, rows, func(j importJob) {
			// Rows count up from 2 (blank lines skip numbers, never repeat them).
			if j.index != seen || j.row <= last {
				t.Fatalf("job %d is row %d, after row %d", j.index, j.row, last)
			}
			seen, last = seen+1, j.row
			if j.err == nil {
				return
			}
			var ve *domain.ValidationError
			if !errors.As(j.err, &ve) || len(ve.Fields) == 0 {
				t.Fatalf("row %d: %v is not a field error", j.row, j.err)
			}
			for _, fe := range ve.Fields {
				if fe.Field != "row" && !strings.Contains(strings.Join(plan.names, ","), fe.Field) {
					t.Fatalf("row %d: error names %q, not a column of %v", j.row, fe.Field, plan.names)
				}
			}
		})
		if err != nil {
			t.Fatalf("second pass failed after the first passed: %v", err)
		}
		if seen != rows {
			t.Fatalf("first pass counted %d rows, second read %d", rows, seen)
		}
	})
}

// The CSV cells of an export read back to the same partner fields.
func TestCSVCellsRoundTrip(t *testing.T) {
	plan, err := parseImportHeader([]string{"partner_id", "name", "media_properties", "social_reach", "custom_fields", "groups", "assigned_to"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"a", "N, \"q\"\nx", "u1;u2", "7", `{"k":"v, w"}`, "g1;g2", ""})
	w.Flush()
	rec, err := csv.NewReader(&b).Read()
	if err != nil {
		t.Fatal(err)
	}
	in, err := plan.row(rec)
	if err != nil {
		t.Fatal(err)
	}
	if in.PartnerID != "a" || string(in.Profile["name"]) != `"N, \"q\"\nx"` || string(in.Profile["media_properties"]) != `["u1","u2"]` ||
		string(in.Profile["social_reach"]) != "7" || string(in.Profile["custom_fields"]) != `{"k":"v, w"}` ||
		strings.Join(*in.Groups, "|") != "g1|g2" || *in.AssignedTo != "" {
		t.Fatalf("row = %+v, profile %s", in, in.Profile)
	}
}
