package commands

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/partnerd/partnerd/domain"
)

// LinkAccountsHandler links two partner accounts of a program.
//
// A link is recorded on both partners, each in its own stream: first on
// the partner of the request, then the mirror on the other one (retried on
// version races like every command). The two appends are not one
// transaction: if the second fails, the link is recorded on one side only,
// and repeating the request finishes it (a side that has the link already is
// left alone). Only a pair linked on both sides is a conflict.
type LinkAccountsHandler struct{ d Deps }

// Handle links partnerID to other with a reason and returns partnerID's state.
func (h *LinkAccountsHandler) Handle(ctx context.Context, program, partnerID, other, reason string, meta Meta) (Result, domain.PartnerState, error) {
	fail := func(err error) (Result, domain.PartnerState, error) {
		return Result{}, domain.PartnerState{}, fmt.Errorf("link partner %s to %s: %w", partnerID, other, err)
	}
	var hadLink, checked bool
	var otherErr error
	res, p, err := h.d.onPartner(ctx, program, partnerID, meta, func(p *domain.Partner) ([]domain.Event, error) {
		evs, err := p.Link(other, partnerID, reason, h.d.Now().UTC())
		hadLink = errors.Is(err, domain.ErrConflict) && p.LinkedTo(other)
		if hadLink {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if !checked {
			checked, otherErr = true, h.checkOther(ctx, program, partnerID, other)
		}
		return evs, otherErr
	})
	if err != nil {
		return fail(err)
	}
	if hadLink { // finish a link recorded on this side only, with its reason
		for _, l := range p.State().Links {
			if l.PartnerID == other {
				reason = l.Reason
			}
		}
	}
	var hadMirror bool
	mirror, _, err := h.d.onPartner(ctx, program, other, causedBy(meta, res), func(q *domain.Partner) ([]domain.Event, error) {
		hadMirror = q.LinkedTo(partnerID)
		if hadMirror {
			return nil, nil
		}
		return q.Link(partnerID, partnerID, reason, h.d.Now().UTC())
	})
	switch {
	case err != nil:
		return fail(fmt.Errorf("recorded on %s but not yet on %s; repeat the request to finish: %w", partnerID, other, err))
	case hadLink && hadMirror:
		return fail(fmt.Errorf("the partners are linked already: %w", domain.ErrConflict))
	}
	if mirror.Appended > 0 {
		res.Position = mirror.Position
	}
	return res, p.State(), nil
}

// checkOther checks that the other partner exists and can take one more link.
func (h *LinkAccountsHandler) checkOther(ctx context.Context, program, partnerID, other string) error {
	q, _, _, err := Load[domain.Partner](ctx, h.d.Store, domain.PartnerStream(program, other))
	if err != nil {
		return err
	}
	switch {
	case !q.Exists():
		return &domain.ValidationError{Fields: []domain.FieldError{{Field: "partner_id", Message: "no partner " + other + " in this program"}}}
	case !q.LinkedTo(partnerID) && len(q.State().Links) >= domain.MaxAccountLinks:
		return fmt.Errorf("partner %s has %d account links, the most allowed: %w", other, domain.MaxAccountLinks, domain.ErrConflict)
	}
	return nil
}

// UnlinkAccountsHandler removes the link between two partner accounts,
// from both partners, in the same two steps as LinkAccountsHandler.
type UnlinkAccountsHandler struct{ d Deps }

// Handle unlinks partnerID from other (reason optional) and returns
// partnerID's state. A link recorded on neither side is not found; one
// recorded on one side only (a link or an unlink that was interrupted) is
// removed there.
func (h *UnlinkAccountsHandler) Handle(ctx context.Context, program, partnerID, other, reason string, meta Meta) (Result, domain.PartnerState, error) {
	fail := func(err error) (Result, domain.PartnerState, error) {
		return Result{}, domain.PartnerState{}, fmt.Errorf("unlink partner %s from %s: %w", partnerID, other, err)
	}
	if !domain.ValidEntityID(other) {
		return fail(fmt.Errorf("partner %q: %w", other, domain.ErrNotFound))
	}
	var hadLink bool
	res, p, err := h.d.onPartner(ctx, program, partnerID, meta, func(p *domain.Partner) ([]domain.Event, error) {
		evs, err := p.Unlink(other, partnerID, reason, h.d.Now().UTC())
		hadLink = err == nil
		if errors.Is(err, domain.ErrNotFound) && p.Exists() {
			return nil, nil // not on this side: maybe on the other
		}
		return evs, err
	})
	if err != nil {
		return fail(err)
	}
	var hadMirror bool
	mirror, _, err := h.d.onPartner(ctx, program, other, causedBy(meta, res), func(q *domain.Partner) ([]domain.Event, error) {
		hadMirror = q.LinkedTo(partnerID)
		if !hadMirror {
			return nil, nil
		}
		return q.Unlink(partnerID, partnerID, reason, h.d.Now().UTC())
	})
	switch {
	case err != nil:
		return fail(fmt.Errorf("removed on %s but not yet on %s; repeat the request to finish: %w", partnerID, other, err))
	case !hadLink && !hadMirror:
		return fail(fmt.Errorf("partner %s has no account link to %s: %w", partnerID, other, domain.ErrNotFound))
	}
	if mirror.Appended > 0 {
		res.Position = mirror.Position
	}
	return res, p.State(), nil
}

// causedBy is the metadata of the mirror event on the other partner: the
// same actor and correlation, caused by the first write, never pinned to a
// version (If-Match is about the request's partner).
func causedBy(meta Meta, res Result) Meta {
	return Meta{Actor: meta.Actor, CorrelationID: meta.CorrelationID,
		CausationID: res.Stream + "@" + strconv.FormatUint(res.Version, 10)}
}
