package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
)

const dbSegmentsRestart = 35

// A restart over a Redis with nothing in it (the embedded Redis always; a
// real one that lost its data while partnerd was down) tells downstream
// only what changed meanwhile: the read models are built from the log as
// a rebuild, and the segment announcements reconciled against the members
// streams, not replayed. An audit saw every start append hundreds of old enters and
// leaves, with new seqs, once a segment had some history.
func TestRestartOnEmptyRedisAnnouncesNothingNew(t *testing.T) {
	configs(t, dbSegmentsRestart, func(t *testing.T, cfg app.Config) {
		h := start(t, cfg)
		const partners = 120
		h.enterLeaveEnter("r", partners)
		const announced = 3 * partners
		waitMembership(t, h, announced)
		h.stop()
		if cfg.RedisURL != "" {
			opt, err := redis.ParseURL(cfg.RedisURL)
			if err != nil {
				t.Fatal(err)
			}
			c := redis.NewClient(opt)
			err = c.FlushDB(context.Background()).Err()
			_ = c.Close()
			if err != nil {
				t.Fatal(err)
			}
		}

		// While partnerd is down, r1 moves away and a new partner
		// arrives: the restart must tell exactly that, once.
		store, err := app.OpenStore(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cmds := commands.New(commands.Deps{Store: store})
		if _, _, err := cmds.UpdatePartner.Handle(t.Context(), "acme", "r1", domain.Patch{"country": json.RawMessage(`"FR"`)}, commands.Meta{Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := cmds.CreatePartner.Handle(t.Context(), domain.NewPartner{ProgramID: "acme", PartnerID: "late",
			Profile: domain.Profile{Name: "Late", RelationshipType: "direct", Country: "DE"}}, commands.Meta{Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}

		h = start(t, cfg)
		time.Sleep(time.Second) // the outbox drainer polls every 20 ms
		waitMembership(t, h, announced+2)
		got := h.membership("de")
		if tail := got[announced:]; !slices.Equal(tail, []string{"+late", "-r1"}) && !slices.Equal(tail, []string{"-r1", "+late"}) {
			t.Fatalf("announced after the restart: %v, want -r1 and +late", tail)
		}
		members, err := h.app.Queries.SegmentMemberIDs(t.Context(), "acme", "de")
		if err != nil || len(members) != partners {
			t.Fatalf("members after the restart: %d (%v), want %d", len(members), err, partners)
		}
		// Announcing goes on from where the stream is.
		h.expect(200, "PATCH", "/partners/r0", map[string]any{"country": "FR"})
		waitMembership(t, h, announced+3)
		if last := h.membership("de")[announced+2]; last != "-r0" {
			t.Fatalf("announcement after the restart: %q, want -r0", last)
		}
	})
}

// enterLeaveEnter creates segment de (country DE) and n partners
// prefix0… that enter it, leave it and enter it again: 3n announcements.
func (h *harness) enterLeaveEnter(prefix string, n int) {
	h.t.Helper()
	h.mustCreate("/segments", map[string]any{"id": "de", "name": "DE", "conditions": rows(row("country", "any_of", "DE"))})
	// With Kafka the segments projection reads the segments and partners
	// topics apart: a partner change it sees before the segment is only
	// folded into the membership the segment starts with, not announced.
	// (WaitCaughtUp counts what the relay published, not what Kafka
	// delivered: wait for the segment itself.)
	for deadline := time.Now().Add(30 * time.Second); h.do("GET", "/segments/de", nil).status != 200; {
		if time.Now().After(deadline) {
			h.t.Fatal("segment de never reached the segments read model")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		h.mustCreate("/partners", map[string]any{"partner_id": id, "name": "R", "relationship_type": "direct", "country": "DE"})
		h.expect(200, "PATCH", "/partners/"+id, map[string]any{"country": "US"})
		h.expect(200, "PATCH", "/partners/"+id, map[string]any{"country": "DE"})
	}
}

// waitMembership waits until the members stream of segment de has n
// events and the outbox is empty, and fails if it ever has more.
func waitMembership(t *testing.T, h *harness, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := len(h.membership("de"))
		left, err := h.app.Redis.LLen(t.Context(), projections.SegmentOutKeys("acme").Outbox()).Result()
		if got > n {
			t.Fatalf("members stream of de: %d events, want %d", got, n)
		}
		if got == n && err == nil && left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("members stream of de: %d events after 30 s, want %d (outbox %d, %v)", got, n, left, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
