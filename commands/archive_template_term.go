package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// ArchiveTemplateTermHandler archives a template term and then, as a
// process, moves the open contracts on it to archived.
type ArchiveTemplateTermHandler struct{ d Deps }

// Handle appends template_term.archived (nothing when the term is archived
// already), then asks index for the partners whose open contract or
// scheduled switch uses the term and decides Partner.TemplateTermArchived
// on each, in its own stream. The partners' events follow the term's: the
// archival is eventually consistent, and idempotent, so a caller whose
// request failed half-way repeats it to finish the sweep. The error then
// says the term is archived but the sweep is not complete. Once the term
// is archived the sweep goes on if the caller hangs up (see sweepTimeout).
func (h *ArchiveTemplateTermHandler) Handle(ctx context.Context, program, id string, meta Meta, index PartnerIndex) (Result, domain.TemplateTermState, error) {
	if !domain.ValidEntityID(id) {
		return Result{}, domain.TemplateTermState{}, fmt.Errorf("template term %q: %w", id, domain.ErrNotFound)
	}
	stream := domain.TemplateTermStream(program, id)
	res, t, err := execute(ctx, h.d, stream, program, meta, func(t *domain.TemplateTerm) ([]domain.Event, error) {
		return t.Archive(h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, domain.TemplateTermState{}, fmt.Errorf("archive template term %s: %w", id, err)
	}
	ctx, cancel := detach(ctx)
	defer cancel()
	partners, err := index.PartnersOfTemplateTerm(ctx, program, id, res.Version, res.Position)
	if err == nil {
		res.Process, err = h.d.sweep(ctx, program, partners, processMeta(ActorTermArchival, meta, stream, res.Version),
			func(p *domain.Partner) ([]domain.Event, error) { return p.TemplateTermArchived(id, h.d.Now().UTC()) })
	}
	if err != nil {
		return Result{}, domain.TemplateTermState{}, fmt.Errorf("template term %s is archived, but archiving its contracts did not finish (repeat the request): %w", id, err)
	}
	return res, t.State(), nil
}

// recheckTerm is the contract side of the archival process: after a move
// put partnerID on termID, it re-reads the term, and if the term was
// archived meanwhile (and the sweep may have missed this partner), it
// archives the contract itself. It returns the outcome to report, which is
// the move's own when nothing had to be done.
func (d Deps) recheckTerm(ctx context.Context, program, partnerID, termID string, meta Meta, moved Result, p *domain.Partner) (Result, *domain.Partner, error) {
	t, _, _, err := Load[domain.TemplateTerm](ctx, d.Store, domain.TemplateTermStream(program, termID))
	if err != nil || !t.Archived() {
		return moved, p, err
	}
	res, q, err := execute(ctx, d, domain.PartnerStream(program, partnerID), program,
		processMeta(ActorTermArchival, meta, moved.Stream, moved.Version),
		func(p *domain.Partner) ([]domain.Event, error) { return p.TemplateTermArchived(termID, d.Now().UTC()) })
	if err != nil {
		return Result{}, nil, err
	}
	if res.Appended == 0 {
		res.Appended = moved.Appended
	}
	return res, q, nil
}
