package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Event types of temporary access links into a partner's account.
const (
	TypePartnerAccessLinkIssued   = "partner.access_link_issued"
	TypePartnerAccessLinkRedeemed = "partner.access_link_redeemed"
)

// Signup sources: how a partner joined the program's partner list. It is set
// when the partner is created and never changes; "" means unknown (partners
// created before the field existed, or without it).
var SignupSources = []string{"direct_link", "marketplace", "brand_invite", "import", "other"}

// SignupDirectLink: the partner signed up through the program's direct
// sign-up link.
const SignupDirectLink = "direct_link"

// AccessLinkPurpose is the only purpose an access link token is good for.
const AccessLinkPurpose = "partner_access"

// MaxAccessLinkTTL bounds how long an access link lives.
const MaxAccessLinkTTL = 15 * time.Minute

// PartnerAccessLinkIssued: a temporary, single-use link into the partner's
// account was issued. The signed token itself is never stored.
type PartnerAccessLinkIssued struct {
	PartnerID string    `json:"partner_id"`
	ProgramID string    `json:"program_id"`
	LinkID    string    `json:"link_id"`
	Purpose   string    `json:"purpose"`
	ExpiresAt time.Time `json:"expires_at"`
	IssuedAt  time.Time `json:"issued_at"`
}

// PartnerAccessLinkRedeemed: an access link was used; it cannot be used again.
type PartnerAccessLinkRedeemed struct {
	PartnerID  string    `json:"partner_id"`
	ProgramID  string    `json:"program_id"`
	LinkID     string    `json:"link_id"`
	RedeemedAt time.Time `json:"redeemed_at"`
}

func (PartnerAccessLinkIssued) EventType() string   { return TypePartnerAccessLinkIssued }
func (PartnerAccessLinkRedeemed) EventType() string { return TypePartnerAccessLinkRedeemed }

// accessLink is an issued access link the partner remembers to make it
// single use. Links that expired before a later one was issued are dropped.
type accessLink struct {
	id         string
	expiresAt  time.Time
	redeemedAt *time.Time
}

// InvalidAccessLink is the error of a token that is not an access link this
// program issued (malformed, tampered, signed with another secret, for
// another program or partner): a ValidationError on the field "token", the
// same whatever the reason, so it tells a forger nothing.
func InvalidAccessLink() error {
	return &ValidationError{Fields: []FieldError{{Field: "token", Message: "is not a valid access link"}}}
}

// AccessLinkAllowed reports why the partner may not get an access link, or
// nil: only a partner that joined only through a direct sign-up link (signup
// source direct_link, relationship type direct) and is still on the platform.
func (p *Partner) AccessLinkAllowed() error {
	if err := p.found(); err != nil {
		return err
	}
	source := p.signupSource
	if source == "" {
		source = "unknown"
	}
	switch {
	case p.signupSource != SignupDirectLink:
		return fmt.Errorf("access links are only for partners who joined only through a direct sign-up link; partner %s's signup source is %s: %w",
			p.id, source, ErrConflict)
	case p.profile.RelationshipType != "direct":
		return fmt.Errorf("access links are only for partners who joined only through a direct sign-up link; partner %s's relationship type is %s: %w",
			p.id, p.profile.RelationshipType, ErrConflict)
	}
	return p.reachable()
}

// IssueAccessLink decides a new access link that expires at expiresAt
// (after now, at most MaxAccessLinkTTL later). The caller signs the token.
func (p *Partner) IssueAccessLink(linkID string, expiresAt, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	var pr problems
	if !ValidEntityID(linkID) {
		pr.add("link_id", EntityIDRule)
	}
	if !expiresAt.After(now) || expiresAt.Sub(now) > MaxAccessLinkTTL {
		pr.add("ttl_seconds", "an access link lives more than 0 seconds and at most %d", int(MaxAccessLinkTTL.Seconds()))
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	if err := p.AccessLinkAllowed(); err != nil {
		return nil, err
	}
	if slices.ContainsFunc(p.accessLinks, func(l accessLink) bool { return l.id == linkID }) {
		return nil, fmt.Errorf("access link %s: %w", linkID, ErrAlreadyExists)
	}
	return []Event{PartnerAccessLinkIssued{PartnerID: p.id, ProgramID: p.program, LinkID: linkID,
		Purpose: AccessLinkPurpose, ExpiresAt: expiresAt.UTC(), IssuedAt: now.UTC()}}, nil
}

// RedeemAccessLink decides using an access link whose signed token was
// verified and said it expires at expiresAt. The link must have been issued
// to this partner with that expiry, not used, not expired, and the partner
// must still qualify.
func (p *Partner) RedeemAccessLink(linkID string, expiresAt, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, InvalidAccessLink()
	}
	i := slices.IndexFunc(p.accessLinks, func(l accessLink) bool { return l.id == linkID })
	if i < 0 || !p.accessLinks[i].expiresAt.Equal(expiresAt) {
		if !now.Before(expiresAt) {
			return nil, accessLinkExpired(expiresAt)
		}
		return nil, InvalidAccessLink()
	}
	l := p.accessLinks[i]
	switch {
	case l.redeemedAt != nil:
		return nil, fmt.Errorf("access link was already used at %s; ask for a new one: %w", l.redeemedAt.Format(time.RFC3339), ErrConflict)
	case !now.Before(l.expiresAt):
		return nil, accessLinkExpired(l.expiresAt)
	}
	if err := p.AccessLinkAllowed(); err != nil {
		return nil, err
	}
	return []Event{PartnerAccessLinkRedeemed{PartnerID: p.id, ProgramID: p.program, LinkID: linkID, RedeemedAt: now.UTC()}}, nil
}

func accessLinkExpired(at time.Time) error {
	return fmt.Errorf("access link expired at %s; ask for a new one: %w", at.UTC().Format(time.RFC3339), ErrConflict)
}

// applyAccessLink folds the access link events copy-on-write.
func (p *Partner) applyAccessLink(ev Event) {
	switch e := ev.(type) {
	case PartnerAccessLinkIssued:
		kept := slices.DeleteFunc(slices.Clone(p.accessLinks), func(l accessLink) bool {
			return l.expiresAt.Before(e.IssuedAt)
		})
		p.accessLinks = append(kept, accessLink{id: e.LinkID, expiresAt: e.ExpiresAt})
	case PartnerAccessLinkRedeemed:
		out := slices.Clone(p.accessLinks)
		for i := range out {
			if out[i].id == e.LinkID {
				at := e.RedeemedAt
				out[i].redeemedAt = &at
			}
		}
		p.accessLinks = out
	}
}

// signupSource checks an optional signup source.
func (pr *problems) signupSource(s string) {
	if s != "" && !oneOf(s, SignupSources) {
		pr.add("signup_source", "must be one of %s", strings.Join(SignupSources, ", "))
	}
}
