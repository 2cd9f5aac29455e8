package commands

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// CreateProgram opens a program. Key is its first API key; when empty a
// random one is made. The key is returned once and only its hash is kept.
type CreateProgram struct {
	ProgramID string
	Name      string
	Key       string
}

// CreateProgramHandler handles CreateProgram.
type CreateProgramHandler struct{ d Deps }

// Handle creates the program and returns the API key in clear, once.
func (h *CreateProgramHandler) Handle(ctx context.Context, cmd CreateProgram, meta Meta) (Result, string, error) {
	res, _, key, err := h.HandleWithKeyID(ctx, cmd, meta)
	return res, key, err
}

// HandleWithKeyID is Handle that also returns the first key's ID (what
// revoking it takes).
func (h *CreateProgramHandler) HandleWithKeyID(ctx context.Context, cmd CreateProgram, meta Meta) (Result, string, string, error) {
	key := cmd.Key
	if key == "" {
		key = NewAPIKey()
	} else if len(key) < 16 {
		return Result{}, "", "", &domain.ValidationError{Fields: []domain.FieldError{{Field: "key", Message: "must be at least 16 characters"}}}
	}
	keyID := randomID(10)
	res, _, err := execute(ctx, h.d, domain.ProgramStream(cmd.ProgramID), cmd.ProgramID, meta, func(p *domain.Program) ([]domain.Event, error) {
		return p.CreateProgram(cmd.ProgramID, cmd.Name, keyID, HashAPIKey(key), h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, "", "", fmt.Errorf("create program %s: %w", cmd.ProgramID, err)
	}
	return res, keyID, key, nil
}

// NewAPIKey returns a fresh API key: "pd_" and 32 random bytes, base64url.
func NewAPIKey() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "pd_" + base64.RawURLEncoding.EncodeToString(b)
}

// HashAPIKey is how keys are kept at rest and looked up: hex SHA-256. Keys
// are 256-bit random values, so a fast hash is enough.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// IssueAPIKeyHandler issues another key to an existing program.
type IssueAPIKeyHandler struct{ d Deps }

// Handle issues a key and returns it in clear, once.
func (h *IssueAPIKeyHandler) Handle(ctx context.Context, program string, meta Meta) (Result, string, string, error) {
	key, keyID := NewAPIKey(), randomID(10)
	res, _, err := execute(ctx, h.d, domain.ProgramStream(program), program, meta, func(p *domain.Program) ([]domain.Event, error) {
		return p.IssueKey(keyID, HashAPIKey(key), h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, "", "", fmt.Errorf("issue key for %s: %w", program, err)
	}
	return res, keyID, key, nil
}

// RevokeAPIKeyHandler revokes a key by its ID.
type RevokeAPIKeyHandler struct{ d Deps }

// Handle revokes the key.
func (h *RevokeAPIKeyHandler) Handle(ctx context.Context, program, keyID string, meta Meta) (Result, error) {
	res, _, err := execute(ctx, h.d, domain.ProgramStream(program), program, meta, func(p *domain.Program) ([]domain.Event, error) {
		return p.RevokeKey(keyID, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, fmt.Errorf("revoke key %s of %s: %w", keyID, program, err)
	}
	return res, nil
}
