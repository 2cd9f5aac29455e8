package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// DeleteCredentialHandler deletes credentials no connection uses.
type DeleteCredentialHandler struct{ d Deps }

// Handle deletes the credential, or fails with a conflict naming the
// connections that use it. The credential's stream lists the attached
// connections; each one's own stream says whether it still uses the
// credential. An attachment whose connection does not exist (yet) counts
// as a use: its creation may be under way. The deletion appends with the
// credential's version, so an attachment that lands meanwhile makes it
// decide again.
func (h *DeleteCredentialHandler) Handle(ctx context.Context, program, id string, meta Meta) (Result, error) {
	if !domain.ValidEntityID(id) {
		return Result{}, fmt.Errorf("credential %q: %w", id, domain.ErrNotFound)
	}
	res, _, err := execute(ctx, h.d, domain.CredentialStream(program, id), program, meta, func(c *domain.Credential) ([]domain.Event, error) {
		var inUse []string
		for _, conn := range c.Attached() {
			cn, _, _, err := Load[domain.Connection](ctx, h.d.Store, domain.ConnectionStream(program, conn))
			if err != nil {
				return nil, err
			}
			if !cn.Exists() || (cn.Live() && cn.CredentialID() == id) {
				inUse = append(inUse, conn)
			}
		}
		return c.Delete(inUse, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, fmt.Errorf("delete credential %s: %w", id, err)
	}
	return res, nil
}
