package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// ChangePartnerSettingsHandler replaces one kind of a partner's settings.
type ChangePartnerSettingsHandler struct{ d Deps }

// Handle replaces the kind of settings the change holds.
func (h *ChangePartnerSettingsHandler) Handle(ctx context.Context, program, partnerID string, ch domain.SettingsChange, meta Meta) (Result, domain.PartnerState, error) {
	res, p, err := h.d.onPartner(ctx, program, partnerID, meta, func(p *domain.Partner) ([]domain.Event, error) {
		return p.ChangeSettings(ch, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.PartnerState{}, fmt.Errorf("change settings of partner %s: %w", partnerID, err)
	}
	return res, p.State(), nil
}
