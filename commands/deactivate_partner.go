package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// DeactivatePartnerHandler records that a partner left the platform (SPEC
// §2: its contract, whatever its stage, becomes publisher_deactivated).
type DeactivatePartnerHandler struct{ d Deps }

// Handle records the partner's departure; a partner that left already (and
// got no proposal since) changes nothing.
func (h *DeactivatePartnerHandler) Handle(ctx context.Context, program, partnerID string, meta Meta) (Result, domain.PartnerState, error) {
	res, p, err := h.d.onPartner(ctx, program, partnerID, meta, func(p *domain.Partner) ([]domain.Event, error) {
		return p.PublisherDeactivated(h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.PartnerState{}, fmt.Errorf("deactivate partner %s: %w", partnerID, err)
	}
	return res, p.State(), nil
}
