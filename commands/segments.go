package commands

import (
	"context"
	"fmt"
	"strconv"

	"github.com/partnerd/partnerd/domain"
)

// CreateSegmentHandler saves segments.
type CreateSegmentHandler struct{ d Deps }

// Handle creates the segment; an empty ID is assigned ("s_" + 12 random characters).
func (h *CreateSegmentHandler) Handle(ctx context.Context, in domain.NewSegment, meta Meta) (Result, domain.SegmentState, error) {
	if in.ID == "" {
		in.ID = "s_" + randomID(12)
	}
	if in.Conditions != nil {
		if err := h.CheckReferences(ctx, in.ProgramID, "conditions", *in.Conditions); err != nil {
			return Result{}, domain.SegmentState{}, err
		}
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
	if c != nil {
		// A group deleted after the segment was saved stays in its
		// conditions (it matches nobody now): a rename or another change
		// that sends the stored conditions back is no reason to refuse.
		cur, _, _, err := Load[domain.Segment](ctx, h.d.Store, domain.SegmentStream(program, id))
		if err != nil {
			return Result{}, domain.SegmentState{}, fmt.Errorf("update segment %s: %w", id, err)
		}
		if err := checkConditionRefs(ctx, h.d, program, "conditions", *c, groupsOf(cur.State().Conditions)); err != nil {
			return Result{}, domain.SegmentState{}, err
		}
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

// CheckReferences reports, as a ValidationError naming each value
// ("conditions.any[0].all[1].values[0]"), every group of a group row that
// does not exist in the program or was deleted, and every template term of
// a template_term row that does not exist (an archived one still has
// contracts to match): such a row would match nobody (any_of) or everybody
// (none_of) without saying so, where every other use of the ID is refused.
// Conditions that do not validate are left to the domain to report.
func (h *CreateSegmentHandler) CheckReferences(ctx context.Context, program, root string, c domain.Conditions) error {
	return checkConditionRefs(ctx, h.d, program, root, c, nil)
}

// groupsOf is the set of groups the group rows of c name.
func groupsOf(c domain.Conditions) map[string]bool {
	out := map[string]bool{}
	for _, b := range c.Any {
		for _, r := range b.All {
			if r.Field == "group" {
				for _, v := range r.Values {
					out[v.S] = true
				}
			}
		}
	}
	return out
}

// checkConditionRefs is CheckReferences; the groups in kept (those the
// saved conditions already name) are not checked.
func checkConditionRefs(ctx context.Context, d Deps, program, root string, c domain.Conditions, kept map[string]bool) error {
	if c.Validate(root) != nil {
		return nil
	}
	var bad []domain.FieldError
	for bi, b := range c.Any {
		for ri, r := range b.All {
			if r.Field != "group" && r.Field != "template_term" {
				continue
			}
			for vi, v := range r.Values {
				if r.Field == "group" && kept[v.S] {
					continue
				}
				at := root + ".any[" + strconv.Itoa(bi) + "].all[" + strconv.Itoa(ri) + "].values[" + strconv.Itoa(vi) + "]"
				msg, err := missingRef(ctx, d, program, r.Field, v.S)
				if err != nil {
					return err
				}
				if msg != "" {
					bad = append(bad, domain.FieldError{Field: at, Message: msg})
				}
			}
		}
	}
	if len(bad) > 0 {
		return &domain.ValidationError{Fields: bad}
	}
	return nil
}

// missingRef says what is wrong with the group or template term id of a
// condition row of field ("" when nothing is).
func missingRef(ctx context.Context, d Deps, program, field, id string) (string, error) {
	what := "group"
	if field == "template_term" {
		what = "template term"
	}
	if !domain.ValidEntityID(id) {
		return "no " + what + " " + strconv.Quote(id) + " in this program", nil
	}
	if field == "group" {
		return groupProblem(ctx, d.Store, program, id)
	}
	// An archived term is fine: it still has contracts to match.
	t, _, _, err := Load[domain.TemplateTerm](ctx, d.Store, domain.TemplateTermStream(program, id))
	if err != nil || t.Exists() {
		return "", err
	}
	return "no template term " + id + " in this program", nil
}
