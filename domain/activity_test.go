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
		{name: "unknown flavor", edit: func(a *domain.NewActivity) { a.Flavor = "teleported" }, fields: "flavor"},
		{name: "bad custom flavor", edit: func(a *domain.NewActivity) { a.Flavor = "custom." }, fields: "flavor"},
		{name: "upper-case custom flavor", edit: func(a *domain.NewActivity) { a.Flavor = "custom.Webinar" }, fields: "flavor"},
		{name: "device", edit: func(a *domain.NewActivity) { a.Device = "watch" }, fields: "device"},
		{name: "urls", edit: func(a *domain.NewActivity) { a.SourceURL, a.ReferrerURL = "ftp://x.example", "/relative" }, fields: "referrer_url,source_url"},
		{name: "time", edit: func(a *domain.NewActivity) { a.OccurredAt = "yesterday" }, fields: "occurred_at"},
		{name: "future", edit: func(a *domain.NewActivity) { a.OccurredAt = "2026-11-22T14:00:00Z" }, fields: "occurred_at"},
		{name: "ids", edit: func(a *domain.NewActivity) { a.ActivityID, a.MessageID, a.PartnerID = "-x", "a b", "p/1" }, fields: "activity_id,message_id,partner_id"},
		{name: "long text", edit: func(a *domain.NewActivity) { a.Platform = strings.Repeat("x", 201) }, fields: "platform"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok
			tt.edit(&in)
			a, err := in.Validate(now)
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
