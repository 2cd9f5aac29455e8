package domain

import (
	"fmt"
	"net/mail"
	"net/url"
	"sort"
	"strings"
)

// Profile is a partner's non-personal profile, as kept in events and read models.
type Profile struct {
	Name                       string            `json:"name"`
	URL                        string            `json:"url,omitempty"`
	Description                string            `json:"description,omitempty"`
	Country                    string            `json:"country,omitempty"`
	State                      string            `json:"state,omitempty"`
	Size                       string            `json:"size,omitempty"`
	BusinessModel              string            `json:"business_model,omitempty"`
	MediaProperties            []string          `json:"media_properties,omitempty"`
	SocialReach                *int64            `json:"social_reach,omitempty"` // 0..MaxSocialReach
	AudienceCountry            string            `json:"audience_country,omitempty"`
	PromotionalAreas           []string          `json:"promotional_areas,omitempty"`
	MozDomainAuthority         *int              `json:"moz_domain_authority,omitempty"`
	Categories                 []string          `json:"categories,omitempty"`
	CustomFields               map[string]string `json:"custom_fields,omitempty"`
	RelationshipType           string            `json:"relationship_type"`
	MarketplaceApplicationDate string            `json:"marketplace_application_date,omitempty"`
	ProspectingSource          string            `json:"prospecting_source,omitempty"`
}

// Personal is the personal data of a partner. It sits in its own part of
// every event so that it can be encrypted per partner and erased by
// destroying the key (crypto-shredding) without touching other fields.
type Personal struct {
	Email        string   `json:"email,omitempty"`
	ContactNames []string `json:"contact_names,omitempty"`
	Address      string   `json:"address,omitempty"`
}

// Enumerations of SPEC §1.
var (
	Sizes              = []string{"xs", "s", "m", "l", "xl"}
	BusinessModels     = []string{"loyalty", "email", "coupon", "content", "creator", "comparison", "network", "sub_network", "review", "search", "social", "other"}
	RelationshipTypes  = []string{"direct", "marketplace"}
	ProspectingSources = []string{"applications", "marketplace", "extended_search", "ai", "messaging", "staff_recommended", "prospect_import", "creator_search", "other"}
	ProspectStages     = []string{"new", "outreach", "negotiating", "joined", "expired", "rejected_by_partner", "rejected_by_you", "suspended"}
)

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && len(s) <= 2048
}

// Validate reports every problem of a profile and its personal data at once.
// Field names are those of the API.
func (p Profile) Validate(personal Personal) error {
	var pr problems
	pr.text("name", p.Name, 200, true)
	if p.URL != "" && !validURL(p.URL) {
		pr.add("url", "must be an absolute http or https URL")
	}
	pr.text("description", p.Description, 5000, false)
	if p.Country != "" && !IsCountry(p.Country) {
		pr.add("country", "must be an ISO 3166-1 alpha-2 code, e.g. DE")
	}
	if p.AudienceCountry != "" && !IsCountry(p.AudienceCountry) {
		pr.add("audience_country", "must be an ISO 3166-1 alpha-2 code")
	}
	for _, c := range p.PromotionalAreas {
		if !IsCountry(c) {
			pr.add("promotional_areas", "%q is not an ISO 3166-1 alpha-2 code", c)
			break
		}
	}
	pr.text("state", p.State, 100, false)
	if p.Size != "" && !oneOf(p.Size, Sizes) {
		pr.add("size", "must be one of %s", strings.Join(Sizes, ", "))
	}
	if p.BusinessModel != "" && !oneOf(p.BusinessModel, BusinessModels) {
		pr.add("business_model", "must be one of %s", strings.Join(BusinessModels, ", "))
	}
	if p.RelationshipType == "" {
		pr.add("relationship_type", "is required: direct or marketplace")
	} else if !oneOf(p.RelationshipType, RelationshipTypes) {
		pr.add("relationship_type", "must be direct or marketplace")
	}
	if p.ProspectingSource != "" && !oneOf(p.ProspectingSource, ProspectingSources) {
		pr.add("prospecting_source", "must be one of %s", strings.Join(ProspectingSources, ", "))
	}
	if p.SocialReach != nil && *p.SocialReach < 0 {
		pr.add("social_reach", "must be 0 or more")
	} else if p.SocialReach != nil && *p.SocialReach > MaxSocialReach {
		pr.add("social_reach", "must be at most %d (2^53 - 1: JSON readers and the sort keep integers exact only up to it)", int64(MaxSocialReach))
	}
	if p.MozDomainAuthority != nil && (*p.MozDomainAuthority < 0 || *p.MozDomainAuthority > 100) {
		pr.add("moz_domain_authority", "must be between 0 and 100")
	}
	if p.MarketplaceApplicationDate != "" && !IsDate(p.MarketplaceApplicationDate) {
		pr.add("marketplace_application_date", "must be a date (YYYY-MM-DD) or an RFC 3339 time")
	}
	if len(p.MediaProperties) > 100 || len(p.Categories) > 100 {
		pr.add("media_properties", "at most 100 entries each for media properties and categories")
	}
	for _, l := range []struct {
		field string
		list  []string
	}{{"media_properties", p.MediaProperties}, {"categories", p.Categories}} {
		for i, v := range l.list {
			pr.text(fmt.Sprintf("%s[%d]", l.field, i), v, 1000, false)
		}
	}
	if len(p.CustomFields) > 100 {
		pr.add("custom_fields", "at most 100 custom fields")
	}
	for _, k := range sortedKeys(p.CustomFields) {
		if !ValidEntityID(k) {
			pr.add("custom_fields."+k, "name must be 1-64 of letters, digits, '_', '.', ':', '-'")
		} else if msg := textProblem(p.CustomFields[k], 1000, false); msg != "" {
			pr.add("custom_fields."+k, "value %s", msg)
		}
	}
	if personal.Email != "" {
		if a, err := mail.ParseAddress(personal.Email); err != nil || a.Address != personal.Email {
			pr.add("email", "must be a plain e-mail address like name@example.com")
		}
	}
	pr.text("address", personal.Address, 1000, false)
	for i, name := range personal.ContactNames {
		pr.text(fmt.Sprintf("contact_names[%d]", i), name, 200, false)
	}
	return pr.err()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// normalize canonicalises codes (upper-case countries) so equal profiles
// compare equal, and trims list items (dropping empty ones) as the CSV
// import reads a list cell, so that a list exports and imports back as it was.
func (p Profile) normalize() Profile {
	p.Name = strings.TrimSpace(p.Name)
	p.MediaProperties = trimmedItems(p.MediaProperties)
	p.Categories = trimmedItems(p.Categories)
	p.Country = strings.ToUpper(p.Country)
	p.AudienceCountry = strings.ToUpper(p.AudienceCountry)
	areas := make([]string, len(p.PromotionalAreas))
	for i, c := range p.PromotionalAreas {
		areas[i] = strings.ToUpper(c)
	}
	if len(areas) > 0 {
		p.PromotionalAreas = areas
	}
	return p
}

// MaxSocialReach is the largest social_reach a profile takes: 2^53 - 1, the
// last integer a float64 (a JavaScript number, a Redis sorted-set score)
// holds exactly, so that every reader sees the number sent and the sort
// orders it.
const MaxSocialReach = 1<<53 - 1

func (p Personal) normalize() Personal {
	p.ContactNames = trimmedItems(p.ContactNames)
	return p
}

// trimmedItems is the list with every item trimmed and empty items dropped
// (nil when none is left).
func trimmedItems(l []string) []string {
	var out []string
	for _, it := range l {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}
