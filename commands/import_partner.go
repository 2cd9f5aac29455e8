package commands

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/partnerd/partnerd/domain"
)

// ImportPartnerHandler applies one row of a CSV bulk edit: it creates the
// partner or changes it, all of the row in one append (see
// domain.Partner.Import).
type ImportPartnerHandler struct{ d Deps }

// GroupCache remembers, for one import, which groups exist and are live,
// so that a hundred thousand rows naming the same few groups load each
// group once. A group deleted during the import is still caught: after
// the append the added groups are read again, uncached.
type GroupCache struct {
	mu    sync.Mutex
	known map[string]groupStatus
}

type groupStatus int

const (
	groupMissing groupStatus = iota + 1
	groupDeleted
	groupLive
)

// NewGroupCache returns an empty cache for one import.
func NewGroupCache() *GroupCache { return &GroupCache{known: map[string]groupStatus{}} }

// ImportResult is what one row did.
type ImportResult struct {
	Result
	// Created: the row created the partner.
	Created bool
	// PartnerID is the row's partner (assigned when the row named none).
	PartnerID string
}

// Handle applies in; an empty PartnerID is assigned ("p_" + 12 random
// characters). With meta.Once and an IdempotencyKey per row, a row applied
// before is not applied again (Result.AlreadyApplied).
func (h *ImportPartnerHandler) Handle(ctx context.Context, in domain.PartnerImport, groups *GroupCache, meta Meta) (ImportResult, error) {
	if in.PartnerID == "" {
		in.PartnerID = "p_" + randomID(12)
	}
	out := ImportResult{PartnerID: in.PartnerID}
	fail := func(err error) (ImportResult, error) {
		return out, fmt.Errorf("import partner %s: %w", in.PartnerID, err)
	}
	if !domain.ValidEntityID(in.PartnerID) {
		return fail(&domain.ValidationError{Fields: []domain.FieldError{{Field: "partner_id",
			Message: domain.EntityIDRule}}})
	}
	if in.Groups != nil {
		if err := h.checkGroups(ctx, in.ProgramID, *in.Groups, groups); err != nil {
			return fail(err)
		}
	}
	var added []string
	stream := domain.PartnerStream(in.ProgramID, in.PartnerID)
	res, _, err := execute(ctx, h.d, stream, in.ProgramID, meta, func(p *domain.Partner) ([]domain.Event, error) {
		out.Created = !p.Exists()
		evs, err := p.Import(in, h.d.Now().UTC())
		added = nil
		for _, ev := range evs {
			if e, ok := ev.(domain.PartnerGroupsChanged); ok {
				added = append(added, e.Added...)
			}
		}
		return evs, err
	})
	if err != nil {
		return fail(err)
	}
	out.Result = res
	if res.AlreadyApplied || res.Appended == 0 {
		// A retry reports what the row did the first time: created, when
		// its events open the stream.
		out.Created = res.AlreadyApplied && res.AppliedAt == 0
		return out, nil
	}
	// A group deleted while this row was decided may have missed the
	// partner: leave it now, as SetPartnerGroupsHandler does.
	for _, id := range added {
		g, _, _, err := Load[domain.Group](ctx, h.d.Store, domain.GroupStream(in.ProgramID, id))
		if err != nil {
			return fail(err)
		}
		if g.Live() {
			continue
		}
		left, _, err := execute(ctx, h.d, stream, in.ProgramID, processMeta(ActorGroupDeletion, meta, res.Stream, res.Version),
			func(p *domain.Partner) ([]domain.Event, error) { return p.LeaveGroup(id, h.d.Now().UTC()) })
		if err != nil {
			return fail(err)
		}
		out.Version, out.Position = left.Version, left.Position
	}
	return out, nil
}

// checkGroups reports every group of the row that does not exist or was
// deleted, at once (fields groups[i]).
func (h *ImportPartnerHandler) checkGroups(ctx context.Context, program string, groups []string, cache *GroupCache) error {
	var bad []domain.FieldError
	for i, id := range groups {
		if !domain.ValidEntityID(id) || slices.Contains(groups[:i], id) {
			continue // the domain reports a malformed ID; a repeat is checked once
		}
		st, err := cache.status(ctx, h.d.Store, program, id)
		if err != nil {
			return err
		}
		field := "groups[" + strconv.Itoa(i) + "]"
		switch st {
		case groupMissing:
			bad = append(bad, domain.FieldError{Field: field, Message: "no group " + id + " in this program"})
		case groupDeleted:
			bad = append(bad, domain.FieldError{Field: field, Message: "group " + id + " was deleted"})
		}
	}
	if len(bad) > 0 {
		return &domain.ValidationError{Fields: bad}
	}
	return nil
}

func (c *GroupCache) status(ctx context.Context, store EventStore, program, id string) (groupStatus, error) {
	if c != nil {
		c.mu.Lock()
		st, ok := c.known[id]
		c.mu.Unlock()
		if ok {
			return st, nil
		}
	}
	g, _, _, err := Load[domain.Group](ctx, store, domain.GroupStream(program, id))
	if err != nil {
		return 0, err
	}
	st := groupLive
	switch {
	case !g.Exists():
		st = groupMissing
	case g.Deleted():
		st = groupDeleted
	}
	if c != nil {
		c.mu.Lock()
		c.known[id] = st
		c.mu.Unlock()
	}
	return st, nil
}
