package commands

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/partnerd/partnerd/domain"
)

// SetPartnerGroupsHandler replaces the set of groups a partner is in.
type SetPartnerGroupsHandler struct{ d Deps }

// Handle sets the partner's groups to the given set. Every group must
// exist in the program and not be deleted (else a ValidationError naming
// groups[i]). After the append the groups that were added are read again:
// one deleted meanwhile (whose deletion may have missed this partner) is
// left at once (see DeleteGroupHandler).
func (h *SetPartnerGroupsHandler) Handle(ctx context.Context, program, partnerID string, groups []string, meta Meta) (Result, domain.PartnerState, error) {
	return h.change(ctx, program, partnerID, func([]string) []string { return groups }, groups, meta)
}

// Change adds and removes groups relative to the partner's current set
// (bulk actions: concurrent changes of other groups are not lost). Only the
// added groups are checked; removing a group the partner is not in is a
// no-op.
func (h *SetPartnerGroupsHandler) Change(ctx context.Context, program, partnerID string, add, remove []string, meta Meta) (Result, domain.PartnerState, error) {
	return h.change(ctx, program, partnerID, func(current []string) []string {
		next := make([]string, 0, len(current)+len(add))
		for _, g := range append(append([]string{}, current...), add...) {
			if !slices.Contains(remove, g) && !slices.Contains(next, g) {
				next = append(next, g)
			}
		}
		return next
	}, add, meta)
}

func (h *SetPartnerGroupsHandler) change(ctx context.Context, program, partnerID string, next func(current []string) []string, check []string, meta Meta) (Result, domain.PartnerState, error) {
	fail := func(err error) (Result, domain.PartnerState, error) {
		return Result{}, domain.PartnerState{}, fmt.Errorf("set groups of partner %s: %w", partnerID, err)
	}
	if !domain.ValidEntityID(partnerID) {
		return fail(domain.ErrNotFound)
	}
	var checked error // the groups are checked once, on the first attempt
	first := true
	var added []string // by the last decision, the one appended
	stream := domain.PartnerStream(program, partnerID)
	res, p, err := execute(ctx, h.d, stream, program, meta, func(p *domain.Partner) ([]domain.Event, error) {
		evs, err := p.SetGroups(next(p.State().Groups), h.d.Now().UTC())
		if err != nil {
			return nil, err
		}
		if first {
			first, checked = false, h.CheckGroups(ctx, program, "groups", check)
		}
		added = nil
		for _, ev := range evs {
			if e, ok := ev.(domain.PartnerGroupsChanged); ok {
				added = append(added, e.Added...)
			}
		}
		return evs, checked
	})
	if err != nil {
		return fail(err)
	}
	if res.Appended == 0 {
		return res, p.State(), nil
	}
	for _, id := range added {
		g, _, _, err := Load[domain.Group](ctx, h.d.Store, domain.GroupStream(program, id))
		if err != nil {
			return fail(err)
		}
		if g.Live() {
			continue
		}
		left, q, err := execute(ctx, h.d, stream, program, processMeta(ActorGroupDeletion, meta, res.Stream, res.Version),
			func(p *domain.Partner) ([]domain.Event, error) { return p.LeaveGroup(id, h.d.Now().UTC()) })
		if err != nil {
			return fail(err)
		}
		res.Version, res.Position, p = left.Version, left.Position, q
	}
	return res, p.State(), nil
}

// checkGroups reports every group of the set that does not exist or was
// deleted, at once.
// CheckGroups reports, as a ValidationError naming field[i], every group
// of groups that does not exist in the program or was deleted.
func (h *SetPartnerGroupsHandler) CheckGroups(ctx context.Context, program, field string, groups []string) error {
	var bad []domain.FieldError
	seen := map[string]bool{}
	for i, id := range groups {
		if seen[id] {
			continue
		}
		seen[id] = true
		msg, err := groupProblem(ctx, h.d.Store, program, id)
		if err != nil {
			return err
		}
		if msg != "" {
			bad = append(bad, domain.FieldError{Field: field + "[" + strconv.Itoa(i) + "]", Message: msg})
		}
	}
	if len(bad) > 0 {
		return &domain.ValidationError{Fields: bad}
	}
	return nil
}

// groupProblem says why group id of program cannot be used: it does not
// exist, or it was deleted ("" when it can be).
func groupProblem(ctx context.Context, store EventStore, program, id string) (string, error) {
	g, _, _, err := Load[domain.Group](ctx, store, domain.GroupStream(program, id))
	switch {
	case err != nil:
		return "", err
	case !g.Exists():
		return "no group " + id + " in this program", nil
	case g.Deleted():
		return "group " + id + " was deleted", nil
	}
	return "", nil
}
