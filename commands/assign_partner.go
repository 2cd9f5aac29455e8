package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// AssignPartnerHandler sets or clears a partner's account manager.
type AssignPartnerHandler struct{ d Deps }

// Handle makes user (a user of the brand) the partner's account manager;
// an empty user unassigns.
func (h *AssignPartnerHandler) Handle(ctx context.Context, program, partnerID, user string, meta Meta) (Result, domain.PartnerState, error) {
	res, p, err := h.d.onPartner(ctx, program, partnerID, meta, func(p *domain.Partner) ([]domain.Event, error) {
		return p.Assign(user, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.PartnerState{}, fmt.Errorf("assign partner %s: %w", partnerID, err)
	}
	return res, p.State(), nil
}

// onPartner runs load → decide → append on one partner of the program. An
// ID that cannot name a partner is not found.
func (d Deps) onPartner(ctx context.Context, program, partnerID string, meta Meta,
	decide func(p *domain.Partner) ([]domain.Event, error)) (Result, *domain.Partner, error) {
	if !domain.ValidEntityID(partnerID) {
		return Result{}, nil, fmt.Errorf("partner %q: %w", partnerID, domain.ErrNotFound)
	}
	return execute(ctx, d, domain.PartnerStream(program, partnerID), program, meta, decide)
}
