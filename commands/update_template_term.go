package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// UpdateTemplateTermHandler renames or re-describes template terms.
type UpdateTemplateTermHandler struct{ d Deps }

// Handle applies the patch.
func (h *UpdateTemplateTermHandler) Handle(ctx context.Context, program, id string, patch domain.TemplateTermPatch, meta Meta) (Result, domain.TemplateTermState, error) {
	if !domain.ValidEntityID(id) {
		return Result{}, domain.TemplateTermState{}, fmt.Errorf("template term %q: %w", id, domain.ErrNotFound)
	}
	res, t, err := execute(ctx, h.d, domain.TemplateTermStream(program, id), program, meta, func(t *domain.TemplateTerm) ([]domain.Event, error) {
		return t.Update(patch, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.TemplateTermState{}, fmt.Errorf("update template term %s: %w", id, err)
	}
	return res, t.State(), nil
}
