package domain_test

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/domain"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func fields(err error) []string {
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	for _, f := range ve.Fields {
		out = append(out, f.Field)
	}
	sort.Strings(out)
	return out
}

func TestCreatePartnerValidation(t *testing.T) {
	valid := domain.Profile{Name: "Acme", RelationshipType: "direct"}
	cases := []struct {
		name     string
		profile  func(p *domain.Profile)
		personal domain.Personal
		id       string
		stage    string
		want     []string // invalid fields; nil = valid
	}{
		{name: "minimal", profile: func(*domain.Profile) {}},
		{name: "everything valid", profile: func(p *domain.Profile) {
			p.URL, p.Country, p.AudienceCountry, p.PromotionalAreas = "https://acme.example/x", "de", "FR", []string{"de", "AT"}
			p.Size, p.BusinessModel, p.ProspectingSource = "xl", "coupon", "ai"
			p.SocialReach, p.MozDomainAuthority = ptr(int64(0)), ptr(100)
			p.MarketplaceApplicationDate, p.CustomFields = "2026-01-31", map[string]string{"tier": "gold"}
		}, personal: domain.Personal{Email: "a@acme.example", ContactNames: []string{"Ann"}}},
		{name: "missing name and relationship type", profile: func(p *domain.Profile) { p.Name, p.RelationshipType = " ", "" }, want: []string{"name", "relationship_type"}},
		{name: "unknown enums", profile: func(p *domain.Profile) { p.Size, p.BusinessModel, p.ProspectingSource = "xxl", "spam", "luck" }, want: []string{"business_model", "prospecting_source", "size"}},
		{name: "bad countries", profile: func(p *domain.Profile) {
			p.Country, p.AudienceCountry, p.PromotionalAreas = "XX", "DEU", []string{"DE", "ZZ"}
		}, want: []string{"audience_country", "country", "promotional_areas"}},
		{name: "ranges", profile: func(p *domain.Profile) { p.SocialReach, p.MozDomainAuthority = ptr(int64(-1)), ptr(101) }, want: []string{"moz_domain_authority", "social_reach"}},
		{name: "reach past 2^53", profile: func(p *domain.Profile) { p.SocialReach = ptr(int64(domain.MaxSocialReach + 1)) }, want: []string{"social_reach"}},
		{name: "reach at 2^53 - 1", profile: func(p *domain.Profile) { p.SocialReach = ptr(int64(domain.MaxSocialReach)) }},
		{name: "negative moz", profile: func(p *domain.Profile) { p.MozDomainAuthority = ptr(-1) }, want: []string{"moz_domain_authority"}},
		{name: "bad url", profile: func(p *domain.Profile) { p.URL = "javascript:alert(1)" }, want: []string{"url"}},
		{name: "relative url", profile: func(p *domain.Profile) { p.URL = "/blog" }, want: []string{"url"}},
		{name: "bad date", profile: func(p *domain.Profile) { p.MarketplaceApplicationDate = "31/01/2026" }, want: []string{"marketplace_application_date"}},
		{name: "bad custom field name", profile: func(p *domain.Profile) { p.CustomFields = map[string]string{"a b": "x"} }, want: []string{"custom_fields.a b"}},
		{name: "bad email", profile: func(*domain.Profile) {}, personal: domain.Personal{Email: "Ann <a@b.example>"}, want: []string{"email"}},
		{name: "bad id", profile: func(*domain.Profile) {}, id: "-x", want: []string{"partner_id"}},
		{name: "bad prospect stage", profile: func(*domain.Profile) {}, stage: "maybe", want: []string{"prospect_stage"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := valid
			tc.profile(&p)
			id := tc.id
			if id == "" {
				id = "p1"
			}
			var agg domain.Partner
			evs, err := agg.Create(domain.NewPartner{ProgramID: "acme", PartnerID: id, Profile: p, Personal: tc.personal, ProspectStage: tc.stage}, now)
			if tc.want == nil {
				if err != nil || len(evs) != 1 {
					t.Fatalf("want one event, got %v, %v", evs, err)
				}
				return
			}
			if got := fields(err); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("invalid fields = %v (err %v), want %v", got, err, tc.want)
			}
			if evs != nil {
				t.Fatal("an invalid command returned events")
			}
		})
	}
}

func created(t *testing.T) domain.Partner {
	t.Helper()
	var p domain.Partner
	evs, err := p.Create(domain.NewPartner{ProgramID: "acme", PartnerID: "p1",
		Profile: domain.Profile{Name: "Acme", RelationshipType: "direct", Country: "de", URL: "https://a.example"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	p.Apply(evs[0])
	return p
}

func TestCreateNormalisesAndRefusesDuplicates(t *testing.T) {
	p := created(t)
	if c := p.State().Profile.Country; c != "DE" {
		t.Fatalf("country = %q, want upper-cased DE", c)
	}
	if p.State().ProspectStage != "new" {
		t.Fatalf("prospect stage = %q, want the default new", p.State().ProspectStage)
	}
	_, err := p.Create(domain.NewPartner{ProgramID: "acme", PartnerID: "p1", Profile: domain.Profile{Name: "B", RelationshipType: "direct"}}, now)
	if !errors.Is(err, domain.ErrAlreadyExists) {
		t.Fatalf("second create: %v, want ErrAlreadyExists", err)
	}
}

func patch(t *testing.T, s string) domain.Patch {
	t.Helper()
	var p domain.Patch
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUpdateProfile(t *testing.T) {
	cases := []struct {
		name    string
		patch   string
		changed []string // nil with wantErr == nil: no event
		invalid []string
		check   func(t *testing.T, s domain.PartnerState)
	}{
		{name: "rename and clear url", patch: `{"name":"Acme 2","url":null}`, changed: []string{"name", "url"},
			check: func(t *testing.T, s domain.PartnerState) {
				if s.Profile.Name != "Acme 2" || s.Profile.URL != "" || s.Profile.Country != "DE" {
					t.Fatalf("state = %+v", s.Profile)
				}
			}},
		{name: "personal data", patch: `{"email":"x@y.example","contact_names":["X"]}`, changed: []string{"contact_names", "email"},
			check: func(t *testing.T, s domain.PartnerState) {
				if s.Personal.Email != "x@y.example" {
					t.Fatalf("personal = %+v", s.Personal)
				}
			}},
		{name: "same values: no event", patch: `{"name":"Acme","country":"de"}`},
		{name: "unknown and read-only fields", patch: `{"colour":"red","partner_id":"p2"}`, invalid: []string{"colour", "partner_id"}},
		{name: "wrong type", patch: `{"social_reach":"lots"}`, invalid: []string{"social_reach"}},
		{name: "invalid value", patch: `{"country":"XX","relationship_type":null}`, invalid: []string{"country", "relationship_type"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := created(t)
			evs, err := p.UpdateProfile(patch(t, tc.patch), now.Add(time.Hour))
			if tc.invalid != nil {
				if got := fields(err); strings.Join(got, ",") != strings.Join(tc.invalid, ",") {
					t.Fatalf("invalid fields = %v (%v), want %v", got, err, tc.invalid)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.changed == nil {
				if len(evs) != 0 {
					t.Fatalf("no-op patch produced %v", evs)
				}
				return
			}
			ev := evs[0].(domain.PartnerProfileUpdated)
			if strings.Join(ev.Changed, ",") != strings.Join(tc.changed, ",") {
				t.Fatalf("changed = %v, want %v", ev.Changed, tc.changed)
			}
			p.Apply(ev)
			tc.check(t, p.State())
		})
	}
	var missing domain.Partner
	if _, err := missing.UpdateProfile(patch(t, `{"name":"x"}`), now); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("update of a missing partner: %v", err)
	}
}

// Events survive a JSON round trip through DecodeEvent unchanged, personal
// data under "personal".
func TestEventRoundTrip(t *testing.T) {
	ev := domain.PartnerCreated{PartnerID: "p1", ProgramID: "acme", ProspectStage: "new", CreatedAt: now,
		Profile:  domain.Profile{Name: "A", RelationshipType: "direct", SocialReach: ptr(int64(5))},
		Personal: domain.Personal{Email: "a@b.example", Address: "Main St 1"}}
	raw, _ := json.Marshal(ev)
	var shape map[string]any
	_ = json.Unmarshal(raw, &shape)
	if _, leaked := shape["email"]; leaked || shape["personal"].(map[string]any)["email"] != "a@b.example" {
		t.Fatalf("personal data must sit under personal only: %s", raw)
	}
	back, err := domain.DecodeEvent(domain.TypePartnerCreated, 1, raw)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(back)
	if string(again) != string(raw) {
		t.Fatalf("round trip changed the event:\n%s\n%s", raw, again)
	}
	if _, err := domain.DecodeEvent("partner.teleported", 1, raw); err == nil {
		t.Fatal("an unknown event type decoded")
	}
	if _, err := domain.DecodeEvent(domain.TypePartnerCreated, domain.SchemaVersion+1, raw); err == nil {
		t.Fatal("a schema version from the future decoded")
	}
}

// Stored events carry their schema version in the metadata; absent means 1.
func TestDecodeStored(t *testing.T) {
	raw, _ := json.Marshal(domain.ProgramCreated{ProgramID: "acme", Name: "Acme", CreatedAt: now})
	for _, md := range []string{``, `{}`, `{"schema":1,"actor":"x"}`} {
		ev, err := domain.DecodeStored(domain.TypeProgramCreated, []byte(md), raw)
		if err != nil || ev.(domain.ProgramCreated).Name != "Acme" {
			t.Fatalf("metadata %q: %v, %v", md, ev, err)
		}
	}
	if _, err := domain.DecodeStored(domain.TypeProgramCreated, []byte(`{"schema":99}`), raw); err == nil {
		t.Fatal("a schema version from the future decoded")
	}
	if _, err := domain.DecodeStored(domain.TypeProgramCreated, []byte(`{not json`), raw); err == nil {
		t.Fatal("malformed metadata decoded")
	}
}

// PATCH is a JSON merge patch all the way down: custom fields merge key by
// key and null drops one; an import's cell (SetProfile) replaces them whole.
func TestProfilePatchMergesCustomFields(t *testing.T) {
	p := created(t)
	apply := func(evs []domain.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			p.Apply(e)
		}
	}
	apply(p.UpdateProfile(patch(t, `{"custom_fields":{"tier":"gold","region":"north","team":"a"}}`), now))
	apply(p.UpdateProfile(patch(t, `{"custom_fields":{"tier":null,"region":"south"}}`), now))
	if got := p.State().Profile.CustomFields; len(got) != 2 || got["region"] != "south" || got["team"] != "a" {
		t.Fatalf("after merging = %v, want region south and team a only", got)
	}
	evs, err := p.UpdateProfile(patch(t, `{"custom_fields":{"gone":null}}`), now)
	if err != nil || len(evs) != 0 {
		t.Fatalf("dropping an absent custom field = %v, %v; want no event", evs, err)
	}
	apply(p.SetProfile(patch(t, `{"custom_fields":{"team":"b"}}`), now))
	if got := p.State().Profile.CustomFields; len(got) != 1 || got["team"] != "b" {
		t.Fatalf("after setting = %v, want exactly team b", got)
	}
	apply(p.UpdateProfile(patch(t, `{"custom_fields":null}`), now))
	if got := p.State().Profile.CustomFields; len(got) != 0 {
		t.Fatalf("after clearing = %v", got)
	}
	if _, err := p.UpdateProfile(patch(t, `{"custom_fields":{"tier":7}}`), now); err == nil {
		t.Fatal("a custom field that is not a string was accepted")
	}
}

// Text fields count characters, not bytes; refuse control characters other
// than tab and line breaks; and a required one needs something visible.
func TestProfileTextRules(t *testing.T) {
	p := created(t)
	for _, tc := range []struct {
		patch string
		field string // "" = valid
	}{
		{`{"name":"` + strings.Repeat("漢", 200) + `"}`, ""},
		{`{"name":"` + strings.Repeat("😀", 201) + `"}`, "name"},
		{`{"state":"` + strings.Repeat("ü", 100) + `"}`, ""},
		{`{"description":"` + strings.Repeat("😀", 5000) + `"}`, ""},
		{`{"custom_fields":{"k":"` + strings.Repeat("😀", 1000) + `"}}`, ""},
		{`{"name":"two\nlines\tand a tab"}`, ""},
		{`{"name":"ab\u0000cd"}`, "name"},
		{`{"name":"ab\u001bcd"}`, "name"},
		{`{"name":"\u200b\u200b"}`, "name"},
		{`{"name":" \u00a0 "}`, "name"},
		{`{"custom_fields":{"k":"a\u0000"}}`, "custom_fields.k"},
		{`{"categories":["ok","bad\u0007"]}`, "categories[1]"},
		{`{"contact_names":["Ann\u0000"]}`, "contact_names[0]"},
	} {
		_, err := p.UpdateProfile(patch(t, tc.patch), now)
		got := ""
		if fs := fields(err); len(fs) > 0 {
			got = fs[0]
		} else if err != nil {
			t.Fatalf("%.60s: %v", tc.patch, err)
		}
		if got != tc.field {
			t.Errorf("%.60s: error on %q, want %q (%v)", tc.patch, got, tc.field, err)
		}
	}
}
