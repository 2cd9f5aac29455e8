package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// InvitePartnerHandler records an invitation of a partner to a campaign or
// a survey, for the downstream mailer.
type InvitePartnerHandler struct{ d Deps }

// Handle records the invitation and returns its ID ("i_" + 16 random
// characters; in.InviteID is ignored).
func (h *InvitePartnerHandler) Handle(ctx context.Context, program, partnerID string, in domain.NewInvite, meta Meta) (Result, string, error) {
	in.InviteID = "i_" + randomID(16)
	res, _, err := h.d.onPartner(ctx, program, partnerID, meta, func(p *domain.Partner) ([]domain.Event, error) {
		return p.Invite(in, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, "", fmt.Errorf("invite partner %s: %w", partnerID, err)
	}
	return res, in.InviteID, nil
}
