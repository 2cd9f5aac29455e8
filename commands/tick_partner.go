package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// TickPartnerHandler appends the partner's time-based contract transitions
// that are due (proposal deadline, start date, scheduled expiry or switch).
// It is what the scheduler calls; calling it early or twice appends nothing.
type TickPartnerHandler struct{ d Deps }

// Handle runs the due transitions as of the handler's clock.
func (h *TickPartnerHandler) Handle(ctx context.Context, program, partnerID string, meta Meta) (Result, error) {
	res, _, err := execute(ctx, h.d, domain.PartnerStream(program, partnerID), program, meta, func(p *domain.Partner) ([]domain.Event, error) {
		return p.Tick(h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, fmt.Errorf("tick partner %s: %w", partnerID, err)
	}
	return res, nil
}
