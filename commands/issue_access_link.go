package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/partnerd/partnerd/domain"
)

// IssueAccessLinkHandler issues a temporary, single-use link into a
// partner's account, for partners who joined only through a direct sign-up
// link.
type IssueAccessLinkHandler struct{ d Deps }

// Handle issues a link that lives ttl (0: domain.MaxAccessLinkTTL, the
// most; the expiry is rounded down to the second). The token is signed with
// the access link secret and returned once; only the link's ID and expiry
// are stored.
func (h *IssueAccessLinkHandler) Handle(ctx context.Context, program, partnerID string, ttl time.Duration, meta Meta) (Result, AccessLink, error) {
	if ttl == 0 {
		ttl = domain.MaxAccessLinkTTL
	}
	now := h.d.Now().UTC()
	link := AccessLink{LinkID: "al_" + randomID(20), ExpiresAt: now.Add(ttl).Truncate(time.Second)}
	res, _, err := h.d.onPartner(ctx, program, partnerID, meta, func(p *domain.Partner) ([]domain.Event, error) {
		return p.IssueAccessLink(link.LinkID, link.ExpiresAt, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, AccessLink{}, fmt.Errorf("issue access link for partner %s: %w", partnerID, err)
	}
	link.Token = signAccessToken(h.d.AccessLinkSecret, accessClaims{V: accessTokenVersion, Purpose: domain.AccessLinkPurpose,
		Program: program, Partner: partnerID, Link: link.LinkID, Exp: link.ExpiresAt.Unix()})
	link.URL = accessURL(h.d.AccessLinkURL, link.Token)
	return res, link, nil
}
