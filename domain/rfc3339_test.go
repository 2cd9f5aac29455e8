package domain_test

import (
	"testing"
	"time"

	"github.com/partnerd/partnerd/domain"
)

// RFC 3339 allows a lower-case "t" and "z" (§5.6); Go's layout does not.
func TestParseRFC3339TakesLowerCaseTAndZ(t *testing.T) {
	want := time.Date(2027, 1, 1, 8, 30, 0, 500_000_000, time.UTC)
	for _, s := range []string{"2027-01-01T08:30:00.5Z", "2027-01-01t08:30:00.5z", "2027-01-01t09:30:00.5+01:00", "2027-01-01T08:00:00.5-00:30",
		"2027-01-02T08:29:00.5+23:59"} {
		got, err := domain.ParseRFC3339(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseRFC3339(%q) = %v, %v; want %v", s, got, err, want)
		}
		if !domain.IsDate(s) {
			t.Errorf("IsDate(%q) = false", s)
		}
	}
	for _, s := range []string{"2027-01-01 08:30:00Z", "2027-01-01x08:30:00Z", "2027-01-01T08:30:00", "z", "",
		"2027-01-01T08:30:00+24:00", "2027-01-01T08:30:00-24:00", "2027-01-01T08:30:00+23:60"} {
		if _, err := domain.ParseRFC3339(s); err == nil {
			t.Errorf("ParseRFC3339(%q) accepted", s)
		}
	}
}
