package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/internal/passwords"
)

// CreateCredentialHandler creates connection credentials.
type CreateCredentialHandler struct{ d Deps }

// NewCredential is the input of creating a credential: for type password
// the password is generated here, for public_key the key is pasted.
type NewCredential struct {
	ProgramID string
	ID        string
	Name      string
	Type      string
	PublicKey string
}

// Handle creates the credential; an empty ID is assigned ("cr_" + 12
// random characters). For a password credential it returns the generated
// password: the only time it exists in clear. Only its argon2id hash is
// stored.
func (h *CreateCredentialHandler) Handle(ctx context.Context, in NewCredential, meta Meta) (Result, domain.CredentialState, string, error) {
	if in.ID == "" {
		in.ID = "cr_" + randomID(12)
	}
	var password, hash string
	if in.Type == domain.CredentialPassword {
		password = passwords.Generate()
		var err error
		if hash, err = h.d.hashPassword(ctx, password); err != nil {
			return Result{}, domain.CredentialState{}, "", err
		}
	}
	res, c, err := execute(ctx, h.d, domain.CredentialStream(in.ProgramID, in.ID), in.ProgramID, meta, func(c *domain.Credential) ([]domain.Event, error) {
		return c.Create(domain.NewCredential{ProgramID: in.ProgramID, ID: in.ID, Name: in.Name, Type: in.Type,
			PublicKey: in.PublicKey, PasswordHash: hash}, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.CredentialState{}, "", fmt.Errorf("create credential %s: %w", in.ID, err)
	}
	return res, c.State(), password, nil
}

// RotateCredentialHandler gives credentials a new secret.
type RotateCredentialHandler struct{ d Deps }

// Handle rotates the credential: a password credential gets a new
// generated password (returned, and stored only as its hash); a public_key
// credential takes the new publicKey.
func (h *RotateCredentialHandler) Handle(ctx context.Context, program, id, publicKey string, meta Meta) (Result, domain.CredentialState, string, error) {
	if !domain.ValidEntityID(id) {
		return Result{}, domain.CredentialState{}, "", fmt.Errorf("credential %q: %w", id, domain.ErrNotFound)
	}
	var password string
	res, c, err := execute(ctx, h.d, domain.CredentialStream(program, id), program, meta, func(c *domain.Credential) ([]domain.Event, error) {
		hash := ""
		if c.Live() && c.Type() == domain.CredentialPassword {
			if password == "" { // a retried decision keeps the password it drew
				password = passwords.Generate()
			}
			var err error
			if hash, err = h.d.hashPassword(ctx, password); err != nil {
				return nil, err
			}
		}
		return c.Rotate(publicKey, hash, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.CredentialState{}, "", fmt.Errorf("rotate credential %s: %w", id, err)
	}
	return res, c.State(), password, nil
}

// hashPassword hashes a generated password with argon2id. At most
// hashSlots hashes run at once: each holds PasswordParams.Memory (19 MiB
// by default), so a burst of creations must queue, not exhaust memory.
func (d Deps) hashPassword(ctx context.Context, password string) (string, error) {
	select {
	case d.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-d.hashSlots }()
	return passwords.Hash(password, d.PasswordParams), nil
}
