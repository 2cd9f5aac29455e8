package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// RenameGroupHandler renames partner groups.
type RenameGroupHandler struct{ d Deps }

// Handle renames the group; a deleted group is not found.
func (h *RenameGroupHandler) Handle(ctx context.Context, program, id, name string, meta Meta) (Result, domain.GroupState, error) {
	if !domain.ValidEntityID(id) {
		return Result{}, domain.GroupState{}, fmt.Errorf("group %q: %w", id, domain.ErrNotFound)
	}
	res, g, err := execute(ctx, h.d, domain.GroupStream(program, id), program, meta, func(g *domain.Group) ([]domain.Event, error) {
		return g.Rename(name, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.GroupState{}, fmt.Errorf("rename group %s: %w", id, err)
	}
	return res, g.State(), nil
}
