package domain

import (
	"regexp"
	"slices"
	"strings"
	"time"
)

// CategoryActivity is the stream category of partner activity. Each partner
// has one activity stream, "activity-<program>-<partner_id>": activities
// have no invariants, so they are appended without reading it (expected
// version "any"), and one partner's activities stay in order on the bus.
const CategoryActivity = "activity"

// ActivityStream is the activity stream of one partner of a program.
func ActivityStream(program, partnerID string) string {
	return CategoryActivity + "-" + program + "-" + partnerID
}

// TypeActivityRecorded is the one activity event type.
const TypeActivityRecorded = "activity.recorded"

// ActivityFlavors are the known activity flavors (SPEC §4). A brand's own
// flavors are "custom.<name>" (see ValidFlavor).
var ActivityFlavors = []string{
	"dashboard_viewed",      // the partner opened its dashboard
	"logged_in",             // the partner logged in
	"message_opened",        // opened a partner message (message_id)
	"message_clicked",       // clicked a link in a partner message (message_id)
	"email_invite_sent",     // sent an e-mail invite to the brand's campaign
	"invite_content_shared", // shared invite content (social, link)
	"link_clicked",          // clicked a tracking or campaign link
	"link_generated",        // generated a tracking link
	"campaign_viewed",       // viewed a campaign or event page
	"contract_viewed",       // viewed its contract / terms
	"asset_downloaded",      // downloaded a creative or an asset
	"report_downloaded",     // downloaded a performance report
	"profile_updated",       // edited its own profile on the partner side
}

// Devices is the device enumeration of an activity.
var Devices = []string{"desktop", "mobile", "tablet"}

var customFlavor = regexp.MustCompile(`^custom\.[a-z0-9][a-z0-9_.-]{0,62}$`)

// ValidFlavor reports whether f is a known flavor or custom.<name>
// (name: 1–63 of a–z, 0–9, '_', '.', '-', starting with a letter or digit).
func ValidFlavor(f string) bool {
	return slices.Contains(ActivityFlavors, f) || customFlavor.MatchString(f)
}

// Activity is something a partner did on its side, as recorded.
type Activity struct {
	ActivityID  string    `json:"activity_id"`
	PartnerID   string    `json:"partner_id"`
	Flavor      string    `json:"flavor"`
	OccurredAt  time.Time `json:"occurred_at"`
	Campaign    string    `json:"campaign,omitempty"`
	MessageID   string    `json:"message_id,omitempty"`
	Device      string    `json:"device,omitempty"`
	Platform    string    `json:"platform,omitempty"`
	Browser     string    `json:"browser,omitempty"`
	SourceURL   string    `json:"source_url,omitempty"`
	ReferrerURL string    `json:"referrer_url,omitempty"`
}

// ActivityRecorded: an activity entered the program's log.
type ActivityRecorded struct {
	ProgramID string `json:"program_id"`
	Activity
	RecordedAt time.Time `json:"recorded_at"`
}

// EventType implements Event.
func (ActivityRecorded) EventType() string { return TypeActivityRecorded }

// MaxActivityFuture is how far in the future an occurred_at may lie (clock skew).
const MaxActivityFuture = time.Hour

// NewActivity is an activity as a client sends it; OccurredAt is the raw
// RFC 3339 text so a bad time is a field error, not malformed JSON.
type NewActivity struct {
	ActivityID  string `json:"activity_id"`
	PartnerID   string `json:"partner_id"`
	Flavor      string `json:"flavor"`
	OccurredAt  string `json:"occurred_at"`
	Campaign    string `json:"campaign"`
	MessageID   string `json:"message_id"`
	Device      string `json:"device"`
	Platform    string `json:"platform"`
	Browser     string `json:"browser"`
	SourceURL   string `json:"source_url"`
	ReferrerURL string `json:"referrer_url"`
}

// Validate checks every field (not the partner's existence, which needs
// the read side) and returns the activity with occurred_at defaulted to
// now. It reports every problem at once.
func (n NewActivity) Validate(now time.Time) (Activity, error) {
	var pr problems
	a := Activity{ActivityID: n.ActivityID, PartnerID: n.PartnerID, Flavor: n.Flavor, Campaign: n.Campaign,
		MessageID: n.MessageID, Device: n.Device, Platform: n.Platform, Browser: n.Browser,
		SourceURL: n.SourceURL, ReferrerURL: n.ReferrerURL, OccurredAt: now.UTC()}
	if a.ActivityID != "" && !ValidEntityID(a.ActivityID) {
		pr.add("activity_id", "must be 1-64 of letters, digits, '_', '.', ':', '-', starting with a letter or digit")
	}
	switch {
	case a.PartnerID == "":
		pr.add("partner_id", "is required")
	case !ValidEntityID(a.PartnerID):
		pr.add("partner_id", "is not a valid partner ID")
	}
	switch {
	case a.Flavor == "":
		pr.add("flavor", "is required")
	case !ValidFlavor(a.Flavor):
		pr.add("flavor", "is not a known flavor (%s) nor custom.<name>", strings.Join(ActivityFlavors, ", "))
	}
	if n.OccurredAt != "" {
		t, err := time.Parse(time.RFC3339Nano, n.OccurredAt)
		switch {
		case err != nil:
			pr.add("occurred_at", "must be an RFC 3339 time")
		case t.After(now.Add(MaxActivityFuture)):
			pr.add("occurred_at", "must not be more than an hour in the future")
		case t.Year() < 2000:
			pr.add("occurred_at", "must be in the year 2000 or later")
		default:
			a.OccurredAt = t.UTC()
		}
	}
	if a.MessageID != "" && !ValidEntityID(a.MessageID) {
		pr.add("message_id", "is not a valid message ID")
	}
	if a.Device != "" && !oneOf(a.Device, Devices) {
		pr.add("device", "must be one of desktop, mobile, tablet")
	}
	for _, f := range []struct{ name, v string }{{"campaign", a.Campaign}, {"platform", a.Platform}, {"browser", a.Browser}} {
		if len(f.v) > 200 {
			pr.add(f.name, "must be at most 200 characters")
		}
	}
	if a.SourceURL != "" && !validURL(a.SourceURL) {
		pr.add("source_url", "must be an absolute http(s) URL of at most 2048 characters")
	}
	if a.ReferrerURL != "" && !validURL(a.ReferrerURL) {
		pr.add("referrer_url", "must be an absolute http(s) URL of at most 2048 characters")
	}
	return a, pr.err()
}
