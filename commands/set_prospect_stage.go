package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// SetProspectStageHandler sets a partner's prospect stage by hand.
type SetProspectStageHandler struct{ d Deps }

// Handle sets the prospect stage of a partner without a contract.
func (h *SetProspectStageHandler) Handle(ctx context.Context, program, partnerID, stage string, meta Meta) (Result, domain.PartnerState, error) {
	res, p, err := h.d.onPartner(ctx, program, partnerID, meta, func(p *domain.Partner) ([]domain.Event, error) {
		return p.SetProspectStage(stage, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.PartnerState{}, fmt.Errorf("set prospect stage of partner %s: %w", partnerID, err)
	}
	return res, p.State(), nil
}
