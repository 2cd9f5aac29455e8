package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// CreatePartnerHandler handles partner creation.
type CreatePartnerHandler struct{ d Deps }

// Handle creates the partner; an empty PartnerID is assigned ("p_" + 12
// random characters; with Meta.Once, derived from the program and the
// idempotency key, so that a retry finds the partner its first attempt
// created). It returns the partner's state after the command.
func (h *CreatePartnerHandler) Handle(ctx context.Context, in domain.NewPartner, meta Meta) (Result, domain.PartnerState, error) {
	if in.PartnerID == "" {
		if meta.Once && meta.IdempotencyKey != "" {
			in.PartnerID = "p_" + derivedID(12, in.ProgramID+"\n"+meta.IdempotencyKey)
		} else {
			in.PartnerID = "p_" + randomID(12)
		}
	}
	res, p, err := executeNew(ctx, h.d, domain.PartnerStream(in.ProgramID, in.PartnerID), in.ProgramID, meta, func(p *domain.Partner) ([]domain.Event, error) {
		return p.Create(in, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.PartnerState{}, fmt.Errorf("create partner %s: %w", in.PartnerID, err)
	}
	return res, p.State(), nil
}
