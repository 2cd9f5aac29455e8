package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/partnerd/partnerd/domain"
)

// RedeemAccessLinkHandler uses an access link: once, before it expires.
type RedeemAccessLinkHandler struct{ d Deps }

// Redemption tells whose account an access link opened.
type Redemption struct {
	PartnerID string
	LinkID    string
}

// Handle verifies the token (signature, program, shape), then lets the
// partner decide (issued, unused, unexpired, partner still qualifies) and
// appends the redemption with the stream's expected version: of two
// concurrent redemptions one wins, the other sees the link used (conflict).
// A token that is not a valid access link of this program is a
// ValidationError on "token", whatever the reason.
func (h *RedeemAccessLinkHandler) Handle(ctx context.Context, program, token string, meta Meta) (Result, Redemption, error) {
	c, ok := verifyAccessToken(h.d.AccessLinkSecret, token)
	if !ok || c.Program != program {
		return Result{}, Redemption{}, fmt.Errorf("redeem access link: %w", domain.InvalidAccessLink())
	}
	meta.IfMatch = nil // the token names the partner; the caller knows no version
	res, _, err := h.d.onPartner(ctx, program, c.Partner, meta, func(p *domain.Partner) ([]domain.Event, error) {
		return p.RedeemAccessLink(c.Link, time.Unix(c.Exp, 0).UTC(), h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, Redemption{}, fmt.Errorf("redeem access link %s: %w", c.Link, err)
	}
	return res, Redemption{PartnerID: c.Partner, LinkID: c.Link}, nil
}
