package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// CreateConnectionHandler creates batch-transfer connections.
type CreateConnectionHandler struct{ d Deps }

// Handle creates the connection; an empty ID is assigned ("cn_" + 12
// random characters). It writes two streams: first the credential's
// (connection_attached, appended at the credential's version, so it fails
// on a credential deleted meanwhile), then the connection's. When the
// second write fails the attachment is withdrawn again.
func (h *CreateConnectionHandler) Handle(ctx context.Context, in domain.NewConnection, meta Meta) (Result, domain.ConnectionState, error) {
	if in.ID == "" {
		in.ID = "cn_" + randomID(12)
	}
	stream := domain.ConnectionStream(in.ProgramID, in.ID)
	fail := func(err error) (Result, domain.ConnectionState, error) {
		return Result{}, domain.ConnectionState{}, fmt.Errorf("create connection %s: %w", in.ID, err)
	}
	// Decide once on what is stored, to report every invalid field before
	// anything is written.
	c, _, _, err := Load[domain.Connection](ctx, h.d.Store, stream)
	if err != nil {
		return fail(err)
	}
	cred, err := h.d.loadCredential(ctx, in.ProgramID, in.CredentialID)
	if err != nil {
		return fail(err)
	}
	if _, err := c.Create(in, cred, h.d.Now().UTC()); err != nil {
		return fail(err)
	}
	cred, err = h.d.attach(ctx, in.ProgramID, in.CredentialID, in.ID, in.Method, meta)
	if err != nil {
		return fail(err)
	}
	res, c, err := execute(ctx, h.d, stream, in.ProgramID, meta, func(c *domain.Connection) ([]domain.Event, error) {
		return c.Create(in, cred, h.d.Now().UTC())
	})
	if err != nil {
		h.d.withdraw(ctx, in.ProgramID, in.CredentialID, in.ID, meta)
		return fail(err)
	}
	return res, c.State(), nil
}

// loadCredential loads the credential a connection names; nil when the ID
// cannot name one (the domain then reports credential_id).
func (d Deps) loadCredential(ctx context.Context, program, id string) (*domain.Credential, error) {
	if !domain.ValidEntityID(id) {
		return nil, nil
	}
	cred, _, _, err := Load[domain.Credential](ctx, d.Store, domain.CredentialStream(program, id))
	return cred, err
}

// unpinned is meta for a write to another stream than the one If-Match
// names.
func unpinned(meta Meta) Meta {
	meta.IfMatch = nil
	return meta
}

// attach records on the credential that a connection uses it; it fails
// with a ValidationError on credential_id when the credential is missing,
// deleted or unfit for the method.
func (d Deps) attach(ctx context.Context, program, credID, connID, method string, meta Meta) (*domain.Credential, error) {
	_, cred, err := execute(ctx, d, domain.CredentialStream(program, credID), program, unpinned(meta), func(c *domain.Credential) ([]domain.Event, error) {
		return c.Attach(connID, method, d.Now().UTC())
	})
	return cred, err
}

// detachCredential records that a connection no longer uses the
// credential. A failure is harmless to correctness (deleting the
// credential checks the connection's own stream) and is returned only for
// the caller to ignore or report.
func (d Deps) detachCredential(ctx context.Context, program, credID, connID string, meta Meta) error {
	if !domain.ValidEntityID(credID) {
		return nil
	}
	_, _, err := execute(ctx, d, domain.CredentialStream(program, credID), program, unpinned(meta), func(c *domain.Credential) ([]domain.Event, error) {
		return c.Detach(connID, d.Now().UTC())
	})
	return err
}

// withdraw undoes an attachment after the connection's own write failed,
// unless the connection (written by a concurrent request) does use the
// credential. Best effort: a leftover attachment of a connection that does
// not exist only makes deleting the credential refuse (safe side).
func (d Deps) withdraw(ctx context.Context, program, credID, connID string, meta Meta) {
	ctx, cancel := detach(ctx)
	defer cancel()
	c, _, _, err := Load[domain.Connection](ctx, d.Store, domain.ConnectionStream(program, connID))
	if err != nil || (c.Live() && c.CredentialID() == credID) {
		return
	}
	_ = d.detachCredential(ctx, program, credID, connID, meta)
}
