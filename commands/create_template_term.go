package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// CreateTemplateTermHandler creates template terms.
type CreateTemplateTermHandler struct{ d Deps }

// Handle creates the term; an empty ID is assigned ("tt_" + 12 random
// characters).
func (h *CreateTemplateTermHandler) Handle(ctx context.Context, in domain.NewTemplateTerm, meta Meta) (Result, domain.TemplateTermState, error) {
	if in.ID == "" {
		in.ID = "tt_" + randomID(12)
	}
	res, t, err := execute(ctx, h.d, domain.TemplateTermStream(in.ProgramID, in.ID), in.ProgramID, meta, func(t *domain.TemplateTerm) ([]domain.Event, error) {
		return t.Create(in, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.TemplateTermState{}, fmt.Errorf("create template term %s: %w", in.ID, err)
	}
	return res, t.State(), nil
}
