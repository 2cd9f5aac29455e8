package relay

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
)

// RepublishRange selects what Republish sends again.
type RepublishRange struct {
	From eventstore.Position // first position to publish (inclusive; 0 or 1 = from the start)
	To   eventstore.Position // last position to publish (inclusive; 0 = the head when it starts)
	// Category limits the events to one stream category ("partner") or its
	// topic ("partnerd.partners"); empty means every category.
	Category string
}

// Republish publishes a range of history again, each event with its
// original ID (ce_id), so consumers that drop duplicates by ID see nothing
// new. Snapshot streams are never published. It does not touch the
// relay's checkpoint. progress is called after each published batch.
func Republish(ctx context.Context, log eventstore.Store, pub message.Publisher, rg RepublishRange, progress func(done, total eventstore.Position, published uint64)) (uint64, error) {
	to := rg.To
	if to == 0 {
		head, err := log.Head(ctx)
		if err != nil {
			return 0, err
		}
		to = head
	}
	after := eventstore.Position(0)
	if rg.From > 1 {
		after = rg.From - 1
	}
	r := &Relay{Publisher: pub}
	var published uint64
	for after < to {
		page, err := log.ReadAll(ctx, after, 1000)
		if err != nil {
			return published, err
		}
		if len(page) == 0 {
			break
		}
		batch := page[:0:0]
		for _, ev := range page {
			if ev.Position > to {
				break
			}
			if eventstore.IsSnapshotStream(ev.StreamID) {
				continue // not the log's: never published
			}
			if rg.Category == "" || rg.Category == domain.Category(ev.StreamID) || rg.Category == bus.Topic(domain.Category(ev.StreamID)) {
				batch = append(batch, ev)
			}
		}
		if len(batch) > 0 {
			n, err := r.publish(ctx, batch)
			if err != nil {
				return published, fmt.Errorf("republish: %w", err)
			}
			published += uint64(n)
		}
		after = page[len(page)-1].Position
		if progress != nil {
			progress(min(after, to), to, published)
		}
	}
	return published, nil
}
