package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/internal/testenv"
)

const (
	dbSegmentsOrder      = 39
	dbSegmentsOrderKafka = 42
)

// Membership events tell the story of the log: each enter and leave is the
// one that folding the log in its order gives, with the event that caused
// it, even while a segment's conditions change under a stream of partner
// changes. The projection used to take partner events and segment events
// as two inputs, in whatever order they arrived: with Kafka an audit saw
// 892 of 2265 announcements contradict the log (a partner entering by a
// condition the log had already replaced; moves the log implies never
// announced), the final membership right all the same.
func TestSegmentAnnouncementsFollowTheLog(t *testing.T) {
	backends(t, dbSegmentsOrder, func(t *testing.T, h *harness) {
		raceConditionsAndPartners(t, h.app, "acme")
		h.settle()
		checkAnnouncementsFollowTheLog(t, h.app, "acme", "flip")
	})
}

// TestSegmentAnnouncementsFollowTheLogWithKafka is the same through a
// real broker, where the two topics are consumed apart.
func TestSegmentAnnouncementsFollowTheLogWithKafka(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	cfg := config(t, redisDB(t, dbSegmentsOrderKafka))
	cfg.KafkaBrokers = brokers
	cfg.KafkaNamespace = testenv.UniquePrefix(t) + "."
	h := start(t, cfg)
	raceConditionsAndPartners(t, h.app, "acme")
	// Published is not projected with Kafka: wait for the last write.
	waitAnnouncementsSettle(t, h)
	checkAnnouncementsFollowTheLog(t, h.app, "acme", "flip")
}

// waitAnnouncementsSettle waits until the members stream of flip holds
// as many events as the log implies (or a minute passed).
func waitAnnouncementsSettle(t *testing.T, h *harness) {
	t.Helper()
	want := len(storyOfTheLog(t, h.app, "flip"))
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if len(h.membership("flip")) >= want {
			break
		}
	}
	h.settle()
}

// raceConditionsAndPartners creates segment flip (country is DE) over
// partners q0..q15, then for a while moves the partners between DE and FR
// from several writers while another flips the segment's country.
func raceConditionsAndPartners(t *testing.T, a *app.App, program string) {
	t.Helper()
	ctx := t.Context()
	m := commands.Meta{Actor: "test"}
	const partners = 16
	for i := range partners {
		if _, _, err := a.Commands.CreatePartner.Handle(ctx, domain.NewPartner{ProgramID: program, PartnerID: fmt.Sprintf("q%d", i),
			Profile: domain.Profile{Name: fmt.Sprintf("Q %d", i), RelationshipType: "direct", Country: []string{"DE", "FR"}[i%2]}}, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := a.Commands.CreateSegment.Handle(ctx, domain.NewSegment{ProgramID: program, ID: "flip", Name: "Flip",
		Conditions: countryIs(t, "DE")}, m); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("q%d", (w*4+i)%partners)
				country := []string{"DE", "FR"}[(i/4+w)%2]
				if _, _, err := a.Commands.UpdatePartner.Handle(ctx, program, id, domain.Patch{"country": json.RawMessage(`"` + country + `"`)}, m); err != nil &&
					!strings.Contains(err.Error(), "nothing to change") {
					errs <- fmt.Errorf("update %s: %w", id, err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; time.Now().Before(deadline); i++ {
			if _, _, err := a.Commands.UpdateSegment.Handle(ctx, program, "flip", "Flip", countryIs(t, []string{"FR", "DE"}[i%2]), m); err != nil {
				errs <- fmt.Errorf("update segment: %w", err)
				return
			}
			time.Sleep(3 * time.Millisecond)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func countryIs(t *testing.T, country string) *domain.Conditions {
	t.Helper()
	c, err := domain.ParseConditions("conditions", []byte(`{"any":[{"all":[{"field":"country","op":"eq","values":["`+country+`"]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// checkAnnouncementsFollowTheLog folds the log in order (partners'
// countries, the segment's country) and compares every membership change
// that gives, with its cause, to the segment's members stream.
func checkAnnouncementsFollowTheLog(t *testing.T, a *app.App, program, seg string) {
	t.Helper()
	want := storyOfTheLog(t, a, seg)
	stream, err := a.Store.ReadStream(context.Background(), domain.SegmentMembersStream(program, seg), 0, eventstore.Forwards, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, re := range stream {
		var m domain.SegmentMembershipChanged
		if err := json.Unmarshal(re.Data, &m); err != nil {
			t.Fatal(err)
		}
		sign := "+"
		if re.Type == domain.TypeSegmentPartnerLeft {
			sign = "-"
		}
		got = append(got, fmt.Sprintf("%s%s by %s", sign, m.PartnerID, m.CausationEventID))
	}
	if len(want) < 50 {
		t.Fatalf("only %d membership changes in the log: the race did not race", len(want))
	}
	// A batch announces one event's moves in partner order too, so the
	// sequences compare one event's moves as a set.
	if !sameStory(got, want) {
		bad := 0
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				bad = i
				break
			}
		}
		t.Fatalf("%d announcements, the log implies %d; first difference at %d: got %v, want %v", len(got), len(want), bad,
			got[bad:min(bad+4, len(got))], want[bad:min(bad+4, len(want))])
	}
}

// storyOfTheLog folds the log in order (partners' countries, segment seg's
// country) into the membership changes that gives, as "+id by cause" /
// "-id by cause".
func storyOfTheLog(t *testing.T, a *app.App, seg string) []string {
	t.Helper()
	ctx := context.Background()
	country := map[string]string{}
	members := map[string]bool{}
	segCountry := ""
	var want []string
	for after := eventstore.Position(0); ; {
		page, err := a.Store.ReadAll(ctx, after, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].Position
		for _, re := range page {
			ev, err := domain.DecodeEvent(re.Type, 1, re.Data)
			if err != nil {
				continue
			}
			switch ev := ev.(type) {
			case domain.PartnerCreated:
				country[ev.PartnerID] = ev.Profile.Country
			case domain.PartnerProfileUpdated:
				country[ev.PartnerID] = ev.Profile.Country
			case domain.SegmentCreated:
				if ev.SegmentID != seg {
					continue
				}
				segCountry = conditionCountry(t, ev.Conditions)
			case domain.SegmentConditionsChanged:
				if ev.SegmentID != seg {
					continue
				}
				segCountry = conditionCountry(t, ev.Conditions)
			default:
				continue
			}
			ids := make([]string, 0, len(country))
			for id := range country {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids {
				in := segCountry != "" && country[id] == segCountry
				if in != members[id] {
					members[id] = in
					want = append(want, fmt.Sprintf("%s%s by %s", map[bool]string{true: "+", false: "-"}[in], id, re.ID))
				}
			}
		}
	}
	return want
}

// sameStory compares two announcement lists, each run of one cause as a set.
func sameStory(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	cause := func(s string) string { _, c, _ := strings.Cut(s, " by "); return c }
	for i := 0; i < len(got); {
		j := i
		for j < len(want) && cause(want[j]) == cause(want[i]) {
			j++
		}
		g, w := slices.Clone(got[i:j]), slices.Clone(want[i:j])
		slices.Sort(g)
		slices.Sort(w)
		if !slices.Equal(g, w) {
			return false
		}
		i = j
	}
	return true
}

func conditionCountry(t *testing.T, c domain.Conditions) string {
	t.Helper()
	raw, _ := json.Marshal(c)
	for _, cc := range []string{"DE", "FR"} {
		if strings.Contains(string(raw), `"`+cc+`"`) {
			return cc
		}
	}
	t.Fatalf("conditions %s", raw)
	return ""
}
