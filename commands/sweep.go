package commands

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
)

// PartnerIndex finds the partners a catalog process must visit. It is a
// read model, so it may lag behind the log: each method first waits until
// the index reflects the whole log up to pos, the position of the write
// that starts the process (or, when the process only resumes, of the last
// event of its term's or group's stream, version), then answers. Every
// contract move or group change before pos is then in the answer, and
// every one after it sees the write in the re-check it makes after its
// own append, so between them no partner is missed. A partner listed
// needlessly costs a visit that appends nothing.
type PartnerIndex interface {
	// PartnersOfTemplateTerm lists the partners whose current open contract
	// or scheduled switch uses the term.
	PartnersOfTemplateTerm(ctx context.Context, program, termID string, version uint64, pos eventstore.Position) ([]string, error)
	// PartnersOfGroup lists the partners in the group.
	PartnersOfGroup(ctx context.Context, program, groupID string, version uint64, pos eventstore.Position) ([]string, error)
}

// Actors of the events the processes append.
const (
	ActorTermArchival  = "system:template-term-archival"
	ActorGroupDeletion = "system:group-deletion"
	// ActorConnectionCredential detaches a credential from a connection
	// that was deleted or moved to another credential.
	ActorConnectionCredential = "system:connection-credential"
)

// sweepWorkers bounds how many partners a process changes at once.
const sweepWorkers = 8

// processMeta is the metadata of the events a process appends on behalf of
// the request that started it: same correlation, caused by that request's
// write (named "<stream>@<version>"), never pinned to a version.
func processMeta(actor string, cause Meta, stream string, version uint64) Meta {
	return Meta{Actor: actor, CorrelationID: cause.CorrelationID,
		CausationID: stream + "@" + strconv.FormatUint(version, 10)}
}

// sweepTimeout bounds a process once its first write is stored. The process
// outlives the request that started it (a client hanging up must not leave
// it half done), but not forever.
const sweepTimeout = 2 * time.Minute

// detach returns a context for the rest of a process: it keeps ctx's values
// but not its cancellation.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), sweepTimeout)
}

// sweep runs decide on every listed partner (load → decide → append, with
// the usual retries), a few at a time. A partner that no longer exists is
// skipped. It returns the writes of the partners that got events; failures
// are joined.
func (d Deps) sweep(ctx context.Context, program string, partners []string, meta Meta,
	decide func(p *domain.Partner) ([]domain.Event, error)) ([]Result, error) {
	var (
		mu      sync.Mutex
		changed []Result
		errs    []error
		wg      sync.WaitGroup
		next    = make(chan string)
	)
	for range min(sweepWorkers, len(partners)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				res, _, err := execute(ctx, d, domain.PartnerStream(program, id), program, meta, decide)
				mu.Lock()
				switch {
				case errors.Is(err, domain.ErrNotFound):
				case err != nil:
					errs = append(errs, fmt.Errorf("partner %s: %w", id, err))
				case res.Appended > 0:
					changed = append(changed, res)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, id := range partners {
		if !domain.ValidEntityID(id) {
			continue
		}
		select {
		case next <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return changed, errors.Join(errs...)
}
