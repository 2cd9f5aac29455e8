package domain

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Event types of a partner's settings. Each carries the whole new settings
// of its kind, so a reader never needs the old ones.
const (
	TypePartnerTrackingSettingsChanged   = "partner.tracking_settings_changed"
	TypePartnerClientCostSettingsChanged = "partner.client_cost_settings_changed"
	TypePartnerComplianceSettingsChanged = "partner.compliance_settings_changed"
)

// Enumerations of the settings.
var (
	CostTypes       = []string{"cpa", "cpc", "cpm", "flat", "revshare"}
	ReviewSchedules = []string{"none", "weekly", "monthly", "quarterly", "yearly"}
)

// MaxCostExceptions bounds the per-action-tracker exceptions of the client
// cost settings.
const MaxCostExceptions = 100

// TrackingSettings: tracking and partner-integration settings.
type TrackingSettings struct {
	// PostbackURL is an absolute http(s) URL the partner's conversions are
	// posted back to; nil when there is none.
	PostbackURL   *string `json:"postback_url"`
	TrackingPixel bool    `json:"tracking_pixel"`
}

// ClientCostSettings: what the brand is charged for the partner's actions.
type ClientCostSettings struct {
	Enabled bool `json:"enabled"`
	// DefaultCostType is one of CostTypes; required when Enabled, else
	// optional (kept while the client cost is off).
	DefaultCostType *string `json:"default_cost_type"`
	// Exceptions override the default per action tracker; never nil.
	Exceptions []CostException `json:"exceptions"`
}

// CostException is the cost type of one action tracker.
type CostException struct {
	ActionTrackerID string `json:"action_tracker_id"`
	CostType        string `json:"cost_type"`
}

// ComplianceSettings: how often the partner is reviewed and what share of
// its actions is audited.
type ComplianceSettings struct {
	ReviewSchedule string `json:"review_schedule"` // one of ReviewSchedules
	// AuditRate is the audited share of the partner's actions, in percent (0–100).
	AuditRate float64 `json:"audit_rate"`
}

// Settings are all the settings of a partner. A partner starts with no
// postback URL, the tracking pixel off, client cost off, no review and an
// audit rate of 0. Treat a Settings value as read-only: pointers may be shared.
type Settings struct {
	Tracking   TrackingSettings   `json:"tracking"`
	ClientCost ClientCostSettings `json:"client_cost"`
	Compliance ComplianceSettings `json:"compliance"`
}

// withDefaults returns a copy of the settings with their unset parts set to
// the defaults; applying it twice changes nothing.
func (s Settings) withDefaults() Settings {
	s.ClientCost.Exceptions = slices.Clone(s.ClientCost.Exceptions)
	if s.ClientCost.Exceptions == nil {
		s.ClientCost.Exceptions = []CostException{}
	}
	if s.Compliance.ReviewSchedule == "" {
		s.Compliance.ReviewSchedule = "none"
	}
	return s
}

// SettingsChange sets one kind of a partner's settings: exactly one field is set.
type SettingsChange struct {
	Tracking   *TrackingSettings
	ClientCost *ClientCostSettings
	Compliance *ComplianceSettings
}

// PartnerTrackingSettingsChanged: the tracking settings changed.
type PartnerTrackingSettingsChanged struct {
	PartnerID string `json:"partner_id"`
	ProgramID string `json:"program_id"`
	TrackingSettings
	Changed   []string  `json:"changed"`
	ChangedAt time.Time `json:"changed_at"`
}

// PartnerClientCostSettingsChanged: the client cost settings changed.
type PartnerClientCostSettingsChanged struct {
	PartnerID string `json:"partner_id"`
	ProgramID string `json:"program_id"`
	ClientCostSettings
	Changed   []string  `json:"changed"`
	ChangedAt time.Time `json:"changed_at"`
}

// PartnerComplianceSettingsChanged: the compliance settings changed.
type PartnerComplianceSettingsChanged struct {
	PartnerID string `json:"partner_id"`
	ProgramID string `json:"program_id"`
	ComplianceSettings
	Changed   []string  `json:"changed"`
	ChangedAt time.Time `json:"changed_at"`
}

func (PartnerTrackingSettingsChanged) EventType() string { return TypePartnerTrackingSettingsChanged }
func (PartnerClientCostSettingsChanged) EventType() string {
	return TypePartnerClientCostSettingsChanged
}
func (PartnerComplianceSettingsChanged) EventType() string {
	return TypePartnerComplianceSettingsChanged
}

// ChangeSettings decides replacing one kind of the partner's settings with
// the given ones (a PUT: every field of the kind is given). Invalid values
// are reported all at once; settings equal to the current ones yield no event.
func (p *Partner) ChangeSettings(ch SettingsChange, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	cur := p.settings.withDefaults()
	var pr problems
	switch {
	case ch.Tracking != nil:
		next := *ch.Tracking
		if next.PostbackURL != nil && !validURL(*next.PostbackURL) {
			pr.add("postback_url", "must be an absolute http or https URL (at most 2048 characters), or null for none")
		}
		if err := pr.err(); err != nil {
			return nil, err
		}
		if changed := changedJSONFields(cur.Tracking, next); len(changed) > 0 {
			return []Event{PartnerTrackingSettingsChanged{PartnerID: p.id, ProgramID: p.program,
				TrackingSettings: next, Changed: changed, ChangedAt: now.UTC()}}, nil
		}
	case ch.ClientCost != nil:
		next := *ch.ClientCost
		next.Exceptions = slices.Clone(next.Exceptions)
		if next.Exceptions == nil {
			next.Exceptions = []CostException{}
		}
		pr.clientCost(next)
		if err := pr.err(); err != nil {
			return nil, err
		}
		if changed := changedJSONFields(cur.ClientCost, next); len(changed) > 0 {
			return []Event{PartnerClientCostSettingsChanged{PartnerID: p.id, ProgramID: p.program,
				ClientCostSettings: next, Changed: changed, ChangedAt: now.UTC()}}, nil
		}
	case ch.Compliance != nil:
		next := *ch.Compliance
		if !oneOf(next.ReviewSchedule, ReviewSchedules) {
			pr.add("review_schedule", "must be one of %s", strings.Join(ReviewSchedules, ", "))
		}
		if !(next.AuditRate >= 0 && next.AuditRate <= 100) {
			pr.add("audit_rate", "must be a percentage between 0 and 100")
		}
		if err := pr.err(); err != nil {
			return nil, err
		}
		if changed := changedJSONFields(cur.Compliance, next); len(changed) > 0 {
			return []Event{PartnerComplianceSettingsChanged{PartnerID: p.id, ProgramID: p.program,
				ComplianceSettings: next, Changed: changed, ChangedAt: now.UTC()}}, nil
		}
	default:
		pr.add("kind", "no settings given")
		return nil, pr.err()
	}
	return nil, nil
}

func (pr *problems) clientCost(s ClientCostSettings) {
	switch {
	case s.DefaultCostType == nil && s.Enabled:
		pr.add("default_cost_type", "is required when the client cost is enabled: one of %s", strings.Join(CostTypes, ", "))
	case s.DefaultCostType != nil && !oneOf(*s.DefaultCostType, CostTypes):
		pr.add("default_cost_type", "must be one of %s", strings.Join(CostTypes, ", "))
	}
	if len(s.Exceptions) > MaxCostExceptions {
		pr.add("exceptions", "at most %d exceptions", MaxCostExceptions)
		return
	}
	seen := map[string]bool{}
	for i, e := range s.Exceptions {
		at := "exceptions[" + strconv.Itoa(i) + "]"
		switch {
		case !ValidEntityID(e.ActionTrackerID):
			pr.add(at+".action_tracker_id", EntityIDRule)
		case seen[e.ActionTrackerID]:
			pr.add(at+".action_tracker_id", "action tracker %s has an exception already", e.ActionTrackerID)
		}
		seen[e.ActionTrackerID] = true
		if !oneOf(e.CostType, CostTypes) {
			pr.add(at+".cost_type", "must be one of %s", strings.Join(CostTypes, ", "))
		}
	}
}

// changedJSONFields names (by JSON name) the fields of two values of one
// struct type that differ.
func changedJSONFields[T any](a, b T) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := 0; i < va.NumField(); i++ {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, jsonName(va.Type().Field(i)))
		}
	}
	return out
}
