package domain

import "time"

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

// ActivityFlavors are the well-known activity flavors (SPEC §4), as
// documentation and for clients to reuse. The list is not closed: any
// token ValidFlavor accepts is a flavor (e.g. "login", "custom.webinar_joined").
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

// ValidFlavor reports whether f may be an activity flavor: a free-form
// token of 1–64 letters, digits, '_', '.', ':', '-', starting with a
// letter or digit (the rule of ValidEntityID). ActivityFlavors are the
// well-known ones; any other such token is as valid.
func ValidFlavor(f string) bool { return ValidEntityID(f) }

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
// now. It reports every problem at once. maxAge is how long the activity
// feed keeps an activity (PARTNERD_ACTIVITY_MAX_AGE): an occurred_at older
// than now - maxAge is refused, since the feed would drop it; 0 = no limit
// (only the year 2000 or later).
func (n NewActivity) Validate(now time.Time, maxAge time.Duration) (Activity, error) {
	var pr problems
	a := Activity{ActivityID: n.ActivityID, PartnerID: n.PartnerID, Flavor: n.Flavor, Campaign: n.Campaign,
		MessageID: n.MessageID, Device: n.Device, Platform: n.Platform, Browser: n.Browser,
		SourceURL: n.SourceURL, ReferrerURL: n.ReferrerURL, OccurredAt: now.UTC()}
	if a.ActivityID != "" && !ValidEntityID(a.ActivityID) {
		pr.add("activity_id", EntityIDRule)
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
		pr.add("flavor", EntityIDRule)
	}
	if n.OccurredAt != "" {
		t, err := ParseRFC3339(n.OccurredAt)
		switch {
		case err != nil:
			pr.add("occurred_at", "must be an RFC 3339 time")
		case t.After(now.Add(MaxActivityFuture)):
			pr.add("occurred_at", "must not be more than an hour in the future")
		case t.Year() < 2000:
			pr.add("occurred_at", "must be in the year 2000 or later")
		case maxAge > 0 && t.Before(now.Add(-maxAge)):
			pr.add("occurred_at", "is older than the activity feed keeps (PARTNERD_ACTIVITY_MAX_AGE = %s)", maxAge)
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
		pr.text(f.name, f.v, 200, false)
	}
	if a.SourceURL != "" && !validURL(a.SourceURL) {
		pr.add("source_url", "must be an absolute http(s) URL of at most 2048 characters")
	}
	if a.ReferrerURL != "" && !validURL(a.ReferrerURL) {
		pr.add("referrer_url", "must be an absolute http(s) URL of at most 2048 characters")
	}
	return a, pr.err()
}
