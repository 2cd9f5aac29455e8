package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// UpdatePartnerHandler applies a profile merge patch.
type UpdatePartnerHandler struct{ d Deps }

// Handle patches the partner's profile.
func (h *UpdatePartnerHandler) Handle(ctx context.Context, program, partnerID string, patch domain.Patch, meta Meta) (Result, domain.PartnerState, error) {
	if !domain.ValidEntityID(partnerID) {
		return Result{}, domain.PartnerState{}, fmt.Errorf("partner %q: %w", partnerID, domain.ErrNotFound)
	}
	res, p, err := execute(ctx, h.d, domain.PartnerStream(program, partnerID), program, meta, func(p *domain.Partner) ([]domain.Event, error) {
		return p.UpdateProfile(patch, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.PartnerState{}, fmt.Errorf("update partner %s: %w", partnerID, err)
	}
	return res, p.State(), nil
}
