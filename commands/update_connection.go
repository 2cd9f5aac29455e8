package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// UpdateConnectionHandler changes connections.
type UpdateConnectionHandler struct{ d Deps }

// Handle applies the patch. When it moves the connection to another
// credential, the new one is attached first (as in CreateConnectionHandler)
// and the old one detached after.
func (h *UpdateConnectionHandler) Handle(ctx context.Context, program, id string, patch domain.ConnectionPatch, meta Meta) (Result, domain.ConnectionState, error) {
	fail := func(err error) (Result, domain.ConnectionState, error) {
		return Result{}, domain.ConnectionState{}, fmt.Errorf("update connection %s: %w", id, err)
	}
	if !domain.ValidEntityID(id) {
		return fail(fmt.Errorf("connection %q: %w", id, domain.ErrNotFound))
	}
	stream := domain.ConnectionStream(program, id)
	c, version, _, err := Load[domain.Connection](ctx, h.d.Store, stream)
	if err != nil {
		return fail(err)
	}
	if meta.IfMatch != nil && *meta.IfMatch != uint64(version+1) {
		return fail(fmt.Errorf("connection %s is at version %d, If-Match %d: %w", id, version+1, *meta.IfMatch, ErrStale))
	}
	cfg := c.Merged(patch)
	cred, err := h.d.loadCredential(ctx, program, cfg.CredentialID)
	if err != nil {
		return fail(err)
	}
	evs, err := c.Update(patch, cred, h.d.Now().UTC())
	if err != nil {
		return fail(err)
	}
	old := c.CredentialID()
	moving := len(evs) > 0 && cfg.CredentialID != old
	if moving {
		if cred, err = h.d.attach(ctx, program, cfg.CredentialID, id, cfg.Method, meta); err != nil {
			return fail(err)
		}
	}
	res, c, err := execute(ctx, h.d, stream, program, meta, func(c *domain.Connection) ([]domain.Event, error) {
		return c.Update(patch, cred, h.d.Now().UTC())
	})
	if err != nil {
		if moving {
			h.d.withdraw(ctx, program, cfg.CredentialID, id, meta)
		}
		return fail(err)
	}
	if now := c.CredentialID(); now != old {
		dctx, cancel := detach(ctx)
		defer cancel()
		_ = h.d.detachCredential(dctx, program, old, id, processMeta(ActorConnectionCredential, meta, res.Stream, res.Version))
	}
	return res, c.State(), nil
}

// DeleteConnectionHandler deletes connections.
type DeleteConnectionHandler struct{ d Deps }

// Handle deletes the connection (its stream stays: its history), then
// detaches it from its credential. Repeating it on a deleted connection
// appends nothing to the connection and finishes the detachment.
func (h *DeleteConnectionHandler) Handle(ctx context.Context, program, id string, meta Meta) (Result, error) {
	if !domain.ValidEntityID(id) {
		return Result{}, fmt.Errorf("delete connection %q: %w", id, domain.ErrNotFound)
	}
	res, c, err := execute(ctx, h.d, domain.ConnectionStream(program, id), program, meta, func(c *domain.Connection) ([]domain.Event, error) {
		return c.Delete(h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, fmt.Errorf("delete connection %s: %w", id, err)
	}
	dctx, cancel := detach(ctx)
	defer cancel()
	_ = h.d.detachCredential(dctx, program, c.CredentialID(), id, processMeta(ActorConnectionCredential, meta, res.Stream, res.Version))
	return res, nil
}

// CheckEmailHandler applies a connection's email intake rules. It reads
// the connection's stream (the write side), so a connection changed or
// deleted a moment ago is judged by its current configuration.
type CheckEmailHandler struct{ d Deps }

// Handle returns the verdict on an email with these attachment names.
func (h *CheckEmailHandler) Handle(ctx context.Context, program, id string, attachments []string) (domain.EmailVerdict, error) {
	if !domain.ValidEntityID(id) {
		return domain.EmailVerdict{}, fmt.Errorf("connection %q: %w", id, domain.ErrNotFound)
	}
	c, _, _, err := Load[domain.Connection](ctx, h.d.Store, domain.ConnectionStream(program, id))
	if err != nil {
		return domain.EmailVerdict{}, err
	}
	return c.CheckEmail(attachments)
}
