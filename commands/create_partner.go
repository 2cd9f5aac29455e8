package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// CreatePartnerHandler handles partner creation.
type CreatePartnerHandler struct{ d Deps }

// Handle creates the partner; an empty PartnerID is assigned ("p_" + 12
// random characters). It returns the partner's state after the command.
func (h *CreatePartnerHandler) Handle(ctx context.Context, in domain.NewPartner, meta Meta) (Result, domain.PartnerState, error) {
	if in.PartnerID == "" {
		in.PartnerID = "p_" + randomID(12)
	}
	res, p, err := executeNew(ctx, h.d, domain.PartnerStream(in.ProgramID, in.PartnerID), in.ProgramID, meta, func(p *domain.Partner) ([]domain.Event, error) {
		return p.Create(in, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.PartnerState{}, fmt.Errorf("create partner %s: %w", in.PartnerID, err)
	}
	return res, p.State(), nil
}
