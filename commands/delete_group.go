package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// DeleteGroupHandler deletes a group and then, as a process, removes it
// from its members.
type DeleteGroupHandler struct{ d Deps }

// Handle appends group.deleted (nothing when the group is deleted already),
// then asks index for the group's members and decides Partner.LeaveGroup on
// each, in its own stream. Like the archival of a template term it is
// eventually consistent and idempotent: a caller whose request failed
// half-way repeats it to finish. Once the group is deleted the removal goes
// on if the caller hangs up (see sweepTimeout).
func (h *DeleteGroupHandler) Handle(ctx context.Context, program, id string, meta Meta, index PartnerIndex) (Result, error) {
	if !domain.ValidEntityID(id) {
		return Result{}, fmt.Errorf("group %q: %w", id, domain.ErrNotFound)
	}
	stream := domain.GroupStream(program, id)
	res, _, err := execute(ctx, h.d, stream, program, meta, func(g *domain.Group) ([]domain.Event, error) {
		return g.Delete(h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, fmt.Errorf("delete group %s: %w", id, err)
	}
	ctx, cancel := detach(ctx)
	defer cancel()
	partners, err := index.PartnersOfGroup(ctx, program, id, res.Version, res.Position)
	if err == nil {
		res.Process, err = h.d.sweep(ctx, program, partners, processMeta(ActorGroupDeletion, meta, stream, res.Version),
			func(p *domain.Partner) ([]domain.Event, error) { return p.LeaveGroup(id, h.d.Now().UTC()) })
	}
	if err != nil {
		return Result{}, fmt.Errorf("group %s is deleted, but removing it from its partners did not finish (repeat the request): %w", id, err)
	}
	return res, nil
}
