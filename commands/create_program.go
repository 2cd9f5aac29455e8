package commands

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
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
	if cmd.Key != "" {
		if err := h.checkKeyUnused(ctx, cmd.ProgramID, HashAPIKey(key)); err != nil {
			return Result{}, "", "", fmt.Errorf("create program %s: %w", cmd.ProgramID, err)
		}
	}
	res, _, err := execute(ctx, h.d, domain.ProgramStream(cmd.ProgramID), cmd.ProgramID, meta, func(p *domain.Program) ([]domain.Event, error) {
		return p.CreateProgram(cmd.ProgramID, cmd.Name, keyID, HashAPIKey(key), h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, "", "", fmt.Errorf("create program %s: %w", cmd.ProgramID, err)
	}
	return res, keyID, key, nil
}

// checkKeyUnused refuses a chosen key (the CLI's --key, the bootstrap
// key) that any program was ever issued: a key is bound to one program,
// and the programs read model maps a key to the last program given it, so
// reusing one would move it away from its program without a word (and
// revoking it there would cut off the other). Generated keys are 256-bit
// random and need no check. The program itself existing already wins
// (ErrAlreadyExists from the command), so a restart's bootstrap with its
// own key is not refused.
//
// It reads the programs' streams of the whole log (few events, skipped
// without decoding where the store can filter), which is fine for the
// rare creation with a chosen key.
func (h *CreateProgramHandler) checkKeyUnused(ctx context.Context, program, hash string) error {
	if _, version, _, err := Load[domain.Program](ctx, h.d.Store, domain.ProgramStream(program)); err != nil || version >= 0 {
		return err
	}
	prefix := domain.CategoryProgram + "-"
	needle := []byte(hash)
	after := eventstore.Position(0)
	for {
		var page []eventstore.RecordedEvent
		var last eventstore.Position
		var err error
		if fr, ok := h.d.Store.(eventstore.FilteredReader); ok {
			page, last, err = fr.ReadAllFiltered(ctx, after, 4096, func(s string) bool { return strings.HasPrefix(s, prefix) })
		} else if all, ok := h.d.Store.(allReader); ok {
			page, err = all.ReadAll(ctx, after, 4096)
			if len(page) > 0 {
				last = page[len(page)-1].Position
			}
		} else {
			return nil // a store that cannot read its log (test doubles only)
		}
		if err != nil {
			return fmt.Errorf("look for the key among the programs' keys: %w", err)
		}
		for _, re := range page {
			if re.Type != domain.TypeProgramAPIKeyIssued || !strings.HasPrefix(re.StreamID, prefix) || !bytes.Contains(re.Data, needle) {
				continue
			}
			ev, err := DecodeRecorded(re)
			if err != nil {
				return err
			}
			if k, ok := ev.(domain.ProgramAPIKeyIssued); ok && k.KeyHash == hash {
				return fmt.Errorf("this API key is already in use (a key is bound to one program for good; choose another, or let partnerd generate one): %w", domain.ErrConflict)
			}
		}
		if last <= after {
			return nil
		}
		after = last
	}
}

// allReader is the log reading of eventstore.Store.
type allReader interface {
	ReadAll(ctx context.Context, after eventstore.Position, max int) ([]eventstore.RecordedEvent, error)
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
