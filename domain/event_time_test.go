package domain_test

import (
	"testing"

	"github.com/partnerd/partnerd/domain"
)

// Every event type a command appends names when it took effect, which
// commands write as its metadata occurred_at. Activities and segment
// membership changes are written by their own paths, with their own times.
func TestEveryCommandEventIsTimed(t *testing.T) {
	for _, typ := range domain.EventTypes() {
		ev, err := domain.DecodeEvent(typ, domain.SchemaOf(typ), []byte(`{}`))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		_, timed := ev.(domain.Timed)
		switch typ {
		case domain.TypeActivityRecorded, domain.TypeSegmentPartnerEntered, domain.TypeSegmentPartnerLeft:
			continue
		}
		if !timed {
			t.Errorf("%s does not say when it took effect (domain.Timed)", typ)
		}
	}
}
