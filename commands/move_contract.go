package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// MoveContract is one contract action of the API on a partner.
type MoveContract struct {
	ProgramID string
	PartnerID string
	Move      domain.ContractMove
	Input     domain.ContractInput
	// NewTerm, for a switch only, is a template term to create first and
	// switch to ("switch to a new contract"); Input.TemplateTermID is then
	// empty and NewTerm.ID may be (it is assigned).
	NewTerm *domain.NewTemplateTerm
}

// MoveContractHandler handles every contract action.
type MoveContractHandler struct{ d Deps }

// usesTerm reports whether a move puts the contract (or its scheduled
// switch) on Input.TemplateTermID, which must then exist and not be archived.
func usesTerm(m domain.ContractMove) bool {
	switch m {
	case domain.MovePropose, domain.MoveCounter, domain.MoveSwitch, domain.MoveModify:
		return true
	}
	return false
}

// Handle decides the move on the partner. The template term it names is
// checked (it exists in the program and is not archived: else a
// ValidationError on template_term_id) once the move is otherwise legal,
// and checked again after the append: a term archived in between archives
// the new contract at once (see ArchiveTemplateTermHandler).
func (h *MoveContractHandler) Handle(ctx context.Context, cmd MoveContract, meta Meta) (Result, domain.PartnerState, error) {
	fail := func(err error) (Result, domain.PartnerState, error) {
		return Result{}, domain.PartnerState{}, fmt.Errorf("%s contract of partner %s: %w", cmd.Move, cmd.PartnerID, err)
	}
	if !domain.ValidEntityID(cmd.PartnerID) {
		return fail(domain.ErrNotFound)
	}
	if cmd.NewTerm != nil {
		if err := h.createTermToSwitchTo(ctx, &cmd, meta); err != nil {
			return fail(err)
		}
	}
	terms := map[string]error{} // checked terms, kept across retries
	stream := domain.PartnerStream(cmd.ProgramID, cmd.PartnerID)
	res, p, err := execute(ctx, h.d, stream, cmd.ProgramID, meta, func(p *domain.Partner) ([]domain.Event, error) {
		evs, err := p.DecideContract(cmd.Move, cmd.Input, h.d.Now().UTC())
		if err != nil || len(evs) == 0 || !usesTerm(cmd.Move) || cmd.Input.TemplateTermID == "" {
			return evs, err
		}
		id := cmd.Input.TemplateTermID
		if _, done := terms[id]; !done {
			err := h.d.termUsable(ctx, cmd.ProgramID, id)
			var ve *domain.ValidationError
			if err != nil && !errors.As(err, &ve) {
				return nil, err
			}
			terms[id] = err
		}
		if terms[id] != nil {
			return nil, terms[id]
		}
		return evs, nil
	})
	if err != nil {
		return fail(err)
	}
	if res.Appended > 0 && usesTerm(cmd.Move) && cmd.Input.TemplateTermID != "" {
		if res, p, err = h.d.recheckTerm(ctx, cmd.ProgramID, cmd.PartnerID, cmd.Input.TemplateTermID, meta, res, p); err != nil {
			return fail(err)
		}
	}
	return res, p.State(), nil
}

// CheckRequest makes the checks of a move that do not depend on the
// partner (its template term exists and is not archived, its effective_at
// is not in the past), for a bulk action to refuse the whole request
// rather than fail it partner by partner. Handle makes them again.
func (h *MoveContractHandler) CheckRequest(ctx context.Context, program string, move domain.ContractMove, in domain.ContractInput) error {
	if err := domain.NotBeforeToday("effective_at", in.EffectiveAt, h.d.Now()); err != nil {
		return err
	}
	if !usesTerm(move) || in.TemplateTermID == "" {
		return nil
	}
	return h.d.termUsable(ctx, program, in.TemplateTermID)
}

// termUsable is TemplateTerm.Usable on the term as stored.
func (d Deps) termUsable(ctx context.Context, program, id string) error {
	t, _, _, err := Load[domain.TemplateTerm](ctx, d.Store, domain.TemplateTermStream(program, id))
	if err != nil {
		return err
	}
	return t.Usable(id)
}

// createTermToSwitchTo creates cmd.NewTerm and points the switch at it,
// after checking on the partner as it is now that the switch would be
// legal, so that a refused switch leaves no new term behind. (A partner
// that changes in between still can: the term then stays, unused.)
func (h *MoveContractHandler) createTermToSwitchTo(ctx context.Context, cmd *MoveContract, meta Meta) error {
	if cmd.Move != domain.MoveSwitch {
		return &domain.ValidationError{Fields: []domain.FieldError{{Field: "new_template_term", Message: "is used by switch only"}}}
	}
	if cmd.Input.TemplateTermID != "" {
		return &domain.ValidationError{Fields: []domain.FieldError{{Field: "template_term_id", Message: "give either template_term_id or new_template_term, not both"}}}
	}
	in := *cmd.NewTerm
	in.ProgramID = cmd.ProgramID
	if in.ID == "" {
		in.ID = "tt_" + randomID(12)
	}
	// Validate the term as its own creation would, before touching anything.
	if _, err := new(domain.TemplateTerm).Create(in, h.d.Now().UTC()); err != nil {
		return prefixFields(err, "new_template_term.")
	}
	p, version, _, err := Load[domain.Partner](ctx, h.d.Store, domain.PartnerStream(cmd.ProgramID, cmd.PartnerID))
	if err != nil {
		return err
	}
	if meta.IfMatch != nil && *meta.IfMatch != uint64(version+1) {
		return fmt.Errorf("partner is at version %d, If-Match %d: %w", version+1, *meta.IfMatch, ErrStale)
	}
	dry := cmd.Input
	dry.TemplateTermID = in.ID
	if _, err := p.DecideContract(cmd.Move, dry, h.d.Now().UTC()); err != nil {
		return err
	}
	termMeta := meta
	termMeta.IfMatch = nil // If-Match is the partner's version
	if _, _, err := execute(ctx, h.d, domain.TemplateTermStream(cmd.ProgramID, in.ID), cmd.ProgramID, termMeta, func(t *domain.TemplateTerm) ([]domain.Event, error) {
		return t.Create(in, h.d.Now().UTC())
	}); err != nil {
		return fmt.Errorf("create template term %s: %w", in.ID, err)
	}
	cmd.Input.TemplateTermID = in.ID
	return nil
}

// prefixFields renames the fields of a ValidationError (nested input).
func prefixFields(err error, prefix string) error {
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	out := &domain.ValidationError{Fields: make([]domain.FieldError, len(ve.Fields))}
	for i, f := range ve.Fields {
		out.Fields[i] = domain.FieldError{Field: prefix + f.Field, Message: f.Message}
	}
	return out
}
