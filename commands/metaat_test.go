package commands

import (
	"encoding/json"
	"testing"
	"time"
)

func TestMetaAtWritesWhatJSONMarshalWrites(t *testing.T) {
	at := time.Date(2026, 10, 1, 12, 30, 0, 123456789, time.FixedZone("x", 3600))
	for _, m := range []EventMeta{{Schema: 1, Program: "acme"}, {Schema: 1, Program: "acme", Actor: `user:"a" via apikey:x`, CorrelationID: "c", CausationID: "s@1", IdempotencyKey: "k"}} {
		base, _ := json.Marshal(m)
		m.OccurredAt = at.UTC()
		want, _ := json.Marshal(m)
		if got := metaAt(base, at); string(got) != string(want) {
			t.Errorf("metaAt = %s, want %s", got, want)
		}
	}
}
