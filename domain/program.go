package domain

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Program event type names.
const (
	TypeProgramCreated       = "program.created"
	TypeProgramAPIKeyIssued  = "program.api_key_issued"
	TypeProgramAPIKeyRevoked = "program.api_key_revoked"
)

// ProgramCreated: a brand's partner program was opened.
type ProgramCreated struct {
	ProgramID string    `json:"program_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// ProgramAPIKeyIssued: an API key was issued. Only the key's SHA-256 hash is
// kept; the key itself is shown once to whoever issued it.
type ProgramAPIKeyIssued struct {
	ProgramID string    `json:"program_id"`
	KeyID     string    `json:"key_id"`
	KeyHash   string    `json:"key_hash"`
	IssuedAt  time.Time `json:"issued_at"`
}

// ProgramAPIKeyRevoked: a key stopped working.
type ProgramAPIKeyRevoked struct {
	ProgramID string    `json:"program_id"`
	KeyID     string    `json:"key_id"`
	RevokedAt time.Time `json:"revoked_at"`
}

func (ProgramCreated) EventType() string       { return TypeProgramCreated }
func (ProgramAPIKeyIssued) EventType() string  { return TypeProgramAPIKeyIssued }
func (ProgramAPIKeyRevoked) EventType() string { return TypeProgramAPIKeyRevoked }

// Program is the aggregate of one partner program and its API keys.
type Program struct {
	id      string
	name    string
	created bool
	keys    map[string]string // key ID → hash, for live keys
}

// ID of the program ("" before it is created).
func (p *Program) ID() string { return p.id }

// Exists reports whether the program was created.
func (p *Program) Exists() bool { return p.created }

// KeyIDs lists the IDs of the program's live API keys, sorted.
func (p *Program) KeyIDs() []string { return slices.Sorted(maps.Keys(p.keys)) }

// KeyIDOf returns the ID of the live key with this hash.
func (p *Program) KeyIDOf(hash string) (string, bool) {
	for id, h := range p.keys {
		if h == hash {
			return id, true
		}
	}
	return "", false
}

// Name of the program.
func (p *Program) Name() string { return p.name }

// HasKeyHash reports whether a live key has this hash.
func (p *Program) HasKeyHash(hash string) bool {
	for _, h := range p.keys {
		if h == hash {
			return true
		}
	}
	return false
}

// Apply folds one event into the program.
func (p *Program) Apply(ev Event) {
	switch e := ev.(type) {
	case ProgramCreated:
		p.id, p.name, p.created = e.ProgramID, e.Name, true
		p.keys = map[string]string{}
	case ProgramAPIKeyIssued:
		p.keys[e.KeyID] = e.KeyHash
	case ProgramAPIKeyRevoked:
		delete(p.keys, e.KeyID)
	}
}

// CreateProgram decides the creation of a program with its first API key.
func (p *Program) CreateProgram(id, name, keyID, keyHash string, now time.Time) ([]Event, error) {
	var pr problems
	if !ValidProgramID(id) {
		pr.add("id", "must be 1-40 characters of a-z, 0-9 and '_', starting with a letter or digit")
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = id
	}
	pr.text("name", name, 200, false)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if p.created {
		return nil, fmt.Errorf("program %s: %w", id, ErrAlreadyExists)
	}
	return []Event{
		ProgramCreated{ProgramID: id, Name: name, CreatedAt: now},
		ProgramAPIKeyIssued{ProgramID: id, KeyID: keyID, KeyHash: keyHash, IssuedAt: now},
	}, nil
}

// IssueKey decides issuing another API key.
func (p *Program) IssueKey(keyID, keyHash string, now time.Time) ([]Event, error) {
	if !p.created {
		return nil, fmt.Errorf("program: %w", ErrNotFound)
	}
	return []Event{ProgramAPIKeyIssued{ProgramID: p.id, KeyID: keyID, KeyHash: keyHash, IssuedAt: now}}, nil
}

// RevokeKey decides revoking a key; revoking an unknown key is a conflict.
func (p *Program) RevokeKey(keyID string, now time.Time) ([]Event, error) {
	if !p.created {
		return nil, fmt.Errorf("program: %w", ErrNotFound)
	}
	if _, ok := p.keys[keyID]; !ok {
		return nil, fmt.Errorf("key %s is not a live key of program %s: %w", keyID, p.id, ErrConflict)
	}
	return []Event{ProgramAPIKeyRevoked{ProgramID: p.id, KeyID: keyID, RevokedAt: now}}, nil
}
