package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// AddNoteHandler adds a note to a partner.
type AddNoteHandler struct{ d Deps }

// Handle adds a note written by the request's actor and returns it. The
// note is named "n_" + 16 random characters.
func (h *AddNoteHandler) Handle(ctx context.Context, program, partnerID, text string, meta Meta) (Result, domain.Note, error) {
	id := "n_" + randomID(16)
	res, p, err := h.d.onPartner(ctx, program, partnerID, meta, func(p *domain.Partner) ([]domain.Event, error) {
		return p.AddNote(id, meta.Actor, text, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.Note{}, fmt.Errorf("add note to partner %s: %w", partnerID, err)
	}
	notes := p.Notes()
	return res, notes[len(notes)-1], nil
}

// PartnerNotesHandler reads a partner's notes. It is a read, not a write:
// notes live only in the partner's stream (no read model keeps their
// text, which is personal data), so they are read by folding it.
type PartnerNotesHandler struct{ d Deps }

// Handle returns the partner's notes, oldest first, and the partner's version.
func (h *PartnerNotesHandler) Handle(ctx context.Context, program, partnerID string) ([]domain.Note, uint64, error) {
	if !domain.ValidEntityID(partnerID) {
		return nil, 0, fmt.Errorf("partner %q: %w", partnerID, domain.ErrNotFound)
	}
	p, version, _, err := Load[domain.Partner](ctx, h.d.Store, domain.PartnerStream(program, partnerID))
	if err != nil {
		return nil, 0, fmt.Errorf("notes of partner %s: %w", partnerID, err)
	}
	if !p.Exists() {
		return nil, 0, fmt.Errorf("partner %s: %w", partnerID, domain.ErrNotFound)
	}
	return p.Notes(), uint64(version + 1), nil
}
