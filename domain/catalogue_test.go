package domain_test

import (
	"os"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/domain"
)

// Every event type this build knows is documented in EVENTS.md.
func TestEventCatalogueIsComplete(t *testing.T) {
	doc, err := os.ReadFile("../EVENTS.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range domain.EventTypes() {
		if !strings.Contains(string(doc), "| `"+typ+"` |") {
			t.Errorf("event type %s is not documented in EVENTS.md", typ)
		}
	}
}
