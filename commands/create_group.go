package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// CreateGroupHandler creates partner groups.
type CreateGroupHandler struct{ d Deps }

// Handle creates the group; an empty ID is assigned ("g_" + 12 random
// characters).
func (h *CreateGroupHandler) Handle(ctx context.Context, in domain.NewGroup, meta Meta) (Result, domain.GroupState, error) {
	if in.ID == "" {
		in.ID = "g_" + randomID(12)
	}
	res, g, err := execute(ctx, h.d, domain.GroupStream(in.ProgramID, in.ID), in.ProgramID, meta, func(g *domain.Group) ([]domain.Event, error) {
		return g.Create(in, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.GroupState{}, fmt.Errorf("create group %s: %w", in.ID, err)
	}
	return res, g.State(), nil
}
