package domain_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
)

// widgetPriced is a test-only event type whose shape changed twice:
//
//	v1 {"price": "12.50"}                             a decimal string
//	v2 {"price_cents": 1250}                          renamed, whole cents
//	v3 {"amount": {"cents": 1250, "currency": "EUR"}} nested, with currency
type widgetPriced struct {
	WidgetID string `json:"widget_id"`
	Amount   struct {
		Cents    int64  `json:"cents"`
		Currency string `json:"currency"`
	} `json:"amount"`
	PricedAt time.Time `json:"priced_at"`
}

const typeWidgetPriced = "test.widget_priced"

// widgetUpcasters are written as a real schema change would be: on JSON,
// field by field, keeping the fields they do not know.
func widgetUpcasters() []domain.Upcaster {
	return []domain.Upcaster{
		{Type: typeWidgetPriced, From: 1, Up: func(data []byte) ([]byte, error) {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(data, &m); err != nil {
				return nil, err
			}
			var price string
			if err := json.Unmarshal(m["price"], &price); err != nil {
				return nil, fmt.Errorf("price: %w", err)
			}
			units, frac, _ := strings.Cut(price, ".")
			frac = (frac + "00")[:2]
			cents, err := strconv.ParseInt(units+frac, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("price %q: %w", price, err)
			}
			delete(m, "price")
			m["price_cents"], _ = json.Marshal(cents)
			return json.Marshal(m)
		}},
		{Type: typeWidgetPriced, From: 2, Up: func(data []byte) ([]byte, error) {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(data, &m); err != nil {
				return nil, err
			}
			m["amount"] = json.RawMessage(`{"cents":` + string(m["price_cents"]) + `,"currency":"EUR"}`)
			delete(m, "price_cents")
			return json.Marshal(m)
		}},
	}
}

// Real v1 (and v2) events, stored as bytes in the log, read back through
// the chain v1 → v2 → v3 as the current shape.
func TestUpcastStoredEventsToCurrent(t *testing.T) {
	schemas, err := domain.NewSchemas(widgetUpcasters()...)
	if err != nil {
		t.Fatal(err)
	}
	if got := schemas.Current(typeWidgetPriced); got != 3 {
		t.Fatalf("current version %d, want 3", got)
	}
	store, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	f, err := os.Open("testdata/upcast/widget_priced.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan(); i++ {
		var line struct {
			Schema int             `json:"schema"`
			Data   json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		// Appended as an older build wrote them: the old bytes, the old version.
		if _, err := store.Append(context.Background(), "widget-acme-w1", eventstore.Any, []eventstore.EventData{{
			ID: fmt.Sprint("e", i), Type: typeWidgetPriced, Data: line.Data, Metadata: []byte(fmt.Sprintf(`{"schema":%d}`, line.Schema))}}); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := store.ReadStream(context.Background(), "widget-acme-w1", 0, eventstore.Forwards, 100)
	if err != nil || len(stored) != 4 {
		t.Fatalf("read %d events: %v", len(stored), err)
	}
	if !strings.Contains(string(stored[0].Data), `"price":"12.50"`) {
		t.Fatalf("the log was rewritten: %s", stored[0].Data)
	}
	want := []int64{1250, 900, 1999, 2500}
	for i, re := range stored {
		schema, err := domain.SchemaOfMetadata(re.Type, re.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		data, err := schemas.Upcast(re.Type, schema, re.Data)
		if err != nil {
			t.Fatalf("event %d (v%d): %v", i, schema, err)
		}
		var ev widgetPriced
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields() // nothing of an old shape is left over
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("event %d (v%d) upcast to %s: %v", i, schema, data, err)
		}
		if ev.WidgetID != "w1" || ev.Amount.Cents != want[i] || ev.Amount.Currency != "EUR" || ev.PricedAt.IsZero() {
			t.Errorf("event %d (v%d) = %+v, want %d cents EUR", i, schema, ev, want[i])
		}
	}
}

func TestSchemaChainsAreChecked(t *testing.T) {
	up := func(b []byte) ([]byte, error) { return b, nil }
	for name, ups := range map[string][]domain.Upcaster{
		"starts at 2": {{Type: "x", From: 2, Up: up}},
		"gap":         {{Type: "x", From: 1, Up: up}, {Type: "x", From: 3, Up: up}},
		"duplicate":   {{Type: "x", From: 1, Up: up}, {Type: "x", From: 1, Up: up}},
		"no function": {{Type: "x", From: 1}},
	} {
		if _, err := domain.NewSchemas(ups...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	s, _ := domain.NewSchemas(widgetUpcasters()...)
	if _, err := s.Upcast(typeWidgetPriced, 4, []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "newer than this build") {
		t.Errorf("a future version: %v", err)
	}
	if _, err := s.Upcast(typeWidgetPriced, 1, []byte(`{"price":"lots"}`)); err == nil || !strings.Contains(err.Error(), "from version 1") {
		t.Errorf("a failing upcaster: %v", err)
	}
	// partnerd's own types are all at version 1 today; future versions of
	// them are refused rather than misread.
	for _, typ := range domain.EventTypes() {
		if domain.SchemaOf(typ) < 1 {
			t.Errorf("%s has schema %d", typ, domain.SchemaOf(typ))
		}
	}
	if _, err := domain.DecodeStored(domain.TypePartnerCreated, []byte(`{"schema":99}`), []byte(`{}`)); err == nil {
		t.Error("a partner.created from the future was decoded")
	}
}

// Bytes a build of 2026-03 stored for a partner.created (schema 1, or no
// schema at all in its metadata) still decode to the same partner: a change
// of the current shape without an upcaster fails here.
func TestStoredV1PartnerCreatedStillDecodes(t *testing.T) {
	raw, err := os.ReadFile("testdata/v1/partner.created.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, md := range []string{`{"schema":1,"program":"acme"}`, `{}`, ``} {
		ev, err := domain.DecodeStored(domain.TypePartnerCreated, []byte(md), raw)
		if err != nil {
			t.Fatalf("metadata %q: %v", md, err)
		}
		var p domain.Partner
		p.Apply(ev)
		s := p.State()
		if s.PartnerID != "blog-1" || s.Profile.Name != "Acme Blog" || s.Profile.Country != "DE" || s.Personal.Email != "editor@blog.example" ||
			s.Profile.SocialReach == nil || *s.Profile.SocialReach != 1200 || !s.CreatedAt.Equal(time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)) {
			t.Fatalf("metadata %q: decoded %+v", md, s)
		}
	}
}
