package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// CreateSegmentHandler saves segments.
type CreateSegmentHandler struct{ d Deps }

// Handle creates the segment; an empty ID is assigned ("s_" + 12 random characters).
func (h *CreateSegmentHandler) Handle(ctx context.Context, in domain.NewSegment, meta Meta) (Result, domain.SegmentState, error) {
	if in.ID == "" {
		in.ID = "s_" + randomID(12)
	}
	res, s, err := execute(ctx, h.d, domain.SegmentStream(in.ProgramID, in.ID), in.ProgramID, meta, func(s *domain.Segment) ([]domain.Event, error) {
		return s.Create(in, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.SegmentState{}, fmt.Errorf("create segment %s: %w", in.ID, err)
	}
	return res, s.State(), nil
}

// UpdateSegmentHandler replaces a segment's name and conditions (PUT).
type UpdateSegmentHandler struct{ d Deps }

// Handle renames and/or changes the conditions; a deleted segment is not found.
func (h *UpdateSegmentHandler) Handle(ctx context.Context, program, id, name string, c *domain.Conditions, meta Meta) (Result, domain.SegmentState, error) {
	if !domain.ValidEntityID(id) {
		return Result{}, domain.SegmentState{}, fmt.Errorf("segment %q: %w", id, domain.ErrNotFound)
	}
	res, s, err := execute(ctx, h.d, domain.SegmentStream(program, id), program, meta, func(s *domain.Segment) ([]domain.Event, error) {
		return s.Update(name, c, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.SegmentState{}, fmt.Errorf("update segment %s: %w", id, err)
	}
	return res, s.State(), nil
}

// DeleteSegmentHandler deletes segments. Membership is the read model's:
// the segments projection removes every member (segment.partner_left each).
type DeleteSegmentHandler struct{ d Deps }

// Handle appends segment.deleted (nothing when it is deleted already).
func (h *DeleteSegmentHandler) Handle(ctx context.Context, program, id string, meta Meta) (Result, error) {
	if !domain.ValidEntityID(id) {
		return Result{}, fmt.Errorf("segment %q: %w", id, domain.ErrNotFound)
	}
	res, _, err := execute(ctx, h.d, domain.SegmentStream(program, id), program, meta, func(s *domain.Segment) ([]domain.Event, error) {
		return s.Delete(h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, fmt.Errorf("delete segment %s: %w", id, err)
	}
	return res, nil
}
