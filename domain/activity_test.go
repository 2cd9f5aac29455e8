package domain_test

import (
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/domain"
)

func TestNewActivityValidate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	const maxAge = 90 * 24 * time.Hour // the feed keeps from 2026-08-24T12:00:00Z
	ok := domain.NewActivity{PartnerID: "p1", Flavor: "dashboard_viewed"}
	tests := []struct {
		name   string
		edit   func(a *domain.NewActivity)
		fields string // invalid fields, sorted; "" = valid
	}{
		{name: "minimal", edit: func(*domain.NewActivity) {}},
		{name: "custom flavor", edit: func(a *domain.NewActivity) { a.Flavor = "custom.webinar_joined" }},
		{name: "every field", edit: func(a *domain.NewActivity) {
			a.ActivityID, a.OccurredAt, a.Campaign, a.MessageID = "a-1", "2026-11-22T11:00:00+01:00", "bf", "m_1"
			a.Device, a.Platform, a.Browser, a.SourceURL, a.ReferrerURL = "tablet", "iOS", "Safari", "https://a.example/x", "http://b.example/"
		}},
		{name: "missing", edit: func(a *domain.NewActivity) { a.PartnerID, a.Flavor = "", "" }, fields: "flavor,partner_id"},
		{name: "free-form flavor", edit: func(a *domain.NewActivity) { a.Flavor = "login" }},
		{name: "free-form flavor, every allowed character", edit: func(a *domain.NewActivity) { a.Flavor = "Shop:cart-item_added.v2" }},
		{name: "flavor of 64 characters", edit: func(a *domain.NewActivity) { a.Flavor = strings.Repeat("f", 64) }},
		{name: "flavor of 65 characters", edit: func(a *domain.NewActivity) { a.Flavor = strings.Repeat("f", 65) }, fields: "flavor"},
		{name: "flavor with a space", edit: func(a *domain.NewActivity) { a.Flavor = "logged in" }, fields: "flavor"},
		{name: "flavor starting with punctuation", edit: func(a *domain.NewActivity) { a.Flavor = ".login" }, fields: "flavor"},
		{name: "flavor ending in a dot", edit: func(a *domain.NewActivity) { a.Flavor = "custom." }},
		{name: "flavor with a slash", edit: func(a *domain.NewActivity) { a.Flavor = "a/b" }, fields: "flavor"},
		{name: "device", edit: func(a *domain.NewActivity) { a.Device = "watch" }, fields: "device"},
		{name: "urls", edit: func(a *domain.NewActivity) { a.SourceURL, a.ReferrerURL = "ftp://x.example", "/relative" }, fields: "referrer_url,source_url"},
		{name: "time", edit: func(a *domain.NewActivity) { a.OccurredAt = "yesterday" }, fields: "occurred_at"},
		{name: "future", edit: func(a *domain.NewActivity) { a.OccurredAt = "2026-11-22T14:00:00Z" }, fields: "occurred_at"},
		{name: "before 2000", edit: func(a *domain.NewActivity) { a.OccurredAt = "1999-12-31T23:59:59Z" }, fields: "occurred_at"},
		{name: "within the feed's max age", edit: func(a *domain.NewActivity) { a.OccurredAt = "2026-08-24T12:00:00Z" }},
		{name: "older than the feed's max age", edit: func(a *domain.NewActivity) { a.OccurredAt = "2026-08-24T11:59:59Z" }, fields: "occurred_at"},
		{name: "ids", edit: func(a *domain.NewActivity) { a.ActivityID, a.MessageID, a.PartnerID = "-x", "a b", "p/1" }, fields: "activity_id,message_id,partner_id"},
		{name: "long text", edit: func(a *domain.NewActivity) { a.Platform = strings.Repeat("x", 201) }, fields: "platform"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok
			tt.edit(&in)
			a, err := in.Validate(now, maxAge)
			var ve *domain.ValidationError
			if tt.fields == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if in.OccurredAt == "" && !a.OccurredAt.Equal(now) {
					t.Fatalf("occurred_at defaulted to %s, want now", a.OccurredAt)
				}
				if in.OccurredAt != "" && a.OccurredAt.Location() != time.UTC {
					t.Fatalf("occurred_at %s not in UTC", a.OccurredAt)
				}
				return
			}
			if !errors.As(err, &ve) {
				t.Fatalf("want a validation error on %s, got %v", tt.fields, err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
			}
			sort.Strings(got)
			if strings.Join(got, ",") != tt.fields {
				t.Fatalf("invalid fields %v, want %s", got, tt.fields)
			}
		})
	}
}

// TestNewActivityMaxAge: an activity older than the feed keeps is a field
// error on occurred_at that names the setting; with no limit (0) only the
// year 2000 rule holds.
func TestNewActivityMaxAge(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	old := domain.NewActivity{PartnerID: "p1", Flavor: "login", OccurredAt: "2001-03-04T05:06:07Z"}
	_, err := old.Validate(now, 2160*time.Hour)
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != "occurred_at" {
		t.Fatalf("old activity with a max age: %v", err)
	}
	if msg := ve.Fields[0].Message; msg != "is older than the activity feed keeps (PARTNERD_ACTIVITY_MAX_AGE = 2160h0m0s)" {
		t.Fatalf("message %q", msg)
	}
	a, err := old.Validate(now, 0)
	if err != nil || !a.OccurredAt.Equal(time.Date(2001, 3, 4, 5, 6, 7, 0, time.UTC)) {
		t.Fatalf("old activity without a max age: %v %v", a.OccurredAt, err)
	}
	if _, err := (domain.NewActivity{PartnerID: "p1", Flavor: "login", OccurredAt: "1999-01-01T00:00:00Z"}).Validate(now, 0); err == nil {
		t.Fatal("an activity before 2000 was accepted without a max age")
	}
}

// TestValidFlavor: flavors are free-form tokens, the well-known ones among them.
func TestValidFlavor(t *testing.T) {
	t.Parallel()
	for _, f := range domain.ActivityFlavors {
		if !domain.ValidFlavor(f) {
			t.Errorf("well-known flavor %q refused", f)
		}
	}
	for _, f := range []string{"login", "custom.webinar_joined", "custom.Webinar", "teleported", "a", "9lives", "ns:event-1.v2", strings.Repeat("x", 64)} {
		if !domain.ValidFlavor(f) {
			t.Errorf("flavor %q refused", f)
		}
	}
	for _, f := range []string{"", "logged in", "_x", "-x", ".x", ":x", "a/b", "é", "a\tb", strings.Repeat("x", 65)} {
		if domain.ValidFlavor(f) {
			t.Errorf("flavor %q accepted", f)
		}
	}
}
