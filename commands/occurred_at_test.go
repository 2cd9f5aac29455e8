package commands_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/queries"
)

// expiring is a fixture on a clock of its own with partner p1 joined on
// term gold and its expiry scheduled an hour ahead, at end. Moving *clock
// moves the commands' time.
func expiring(t *testing.T, terms ...string) (f *fixture, clock *time.Time, end time.Time) {
	t.Helper()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clock = &now
	f = newFixtureAt(t, func() time.Time { return *clock })
	f.partner("p1")
	for _, id := range append([]string{"gold"}, terms...) {
		f.term(id)
	}
	f.mustMove("p1", domain.MovePropose, domain.ContractInput{TemplateTermID: "gold"})
	f.mustMove("p1", domain.MoveAccept, domain.ContractInput{By: domain.SidePublisher})
	end = now.Add(time.Hour)
	f.mustMove("p1", domain.MoveExpire, domain.ContractInput{EffectiveAt: end})
	return f, clock, end
}

// stream reads p1's events, each with its metadata.
func (f *fixture) stream() ([]eventstore.RecordedEvent, []commands.EventMeta) {
	f.t.Helper()
	evs, err := f.store.ReadStream(ctx, domain.PartnerStream("acme", "p1"), 0, eventstore.Forwards, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	mds := make([]commands.EventMeta, len(evs))
	for i, re := range evs {
		if err := json.Unmarshal(re.Metadata, &mds[i]); err != nil {
			f.t.Fatal(err)
		}
	}
	return evs, mds
}

// Each event's metadata says when it took effect: a command's decision
// time, or a scheduled move's due time even when the scheduler runs hours
// later (it was down). as_of folds by it, so the contract shows as expired
// from its end date on, not from when the expiry was recorded.
func TestScheduledMovesOccurAtTheirDueTime(t *testing.T) {
	f, clock, end := expiring(t)
	scheduledAt := *clock
	*clock = clock.Add(5 * time.Hour) // the scheduler was down meanwhile
	if _, err := f.cmds.TickPartner.Handle(ctx, "acme", "p1", commands.Meta{Actor: "system:scheduler"}); err != nil {
		t.Fatal(err)
	}
	evs, mds := f.stream()
	n := len(evs)
	if last := evs[n-1]; last.Type != domain.TypeContractExpired || !mds[n-1].OccurredAt.Equal(end) {
		t.Fatalf("last event %s occurred at %v, want %s at %v", last.Type, mds[n-1].OccurredAt, domain.TypeContractExpired, end)
	}
	if before := evs[n-2]; before.Type != domain.TypeContractExpiryScheduled || !mds[n-2].OccurredAt.Equal(scheduledAt) {
		t.Fatalf("event %s occurred at %v, want %s at its decision %v", before.Type, mds[n-2].OccurredAt, domain.TypeContractExpiryScheduled, scheduledAt)
	}
	q := queries.New(nil, f.store, nil)
	for at, want := range map[time.Time]domain.ContractStage{end.Add(-time.Nanosecond): domain.StageJoined, end: domain.StageExpired,
		end.Add(time.Hour): domain.StageExpired} {
		v, err := q.PartnerAsOf(ctx, "acme", "p1", queries.AsOf{Time: at})
		if err != nil {
			t.Fatal(err)
		}
		if v.Contract == nil || v.Contract.Stage != want {
			t.Errorf("as of %v: contract %+v, want stage %s", at, v.Contract, want)
		}
	}
}

// A command that comes after a scheduled move fell due, before the
// scheduler appended it, decides on the moved contract: the due move is
// appended first (by the scheduler's actor, caused by the state it was
// scheduled in), so a switch 20 ms after the end date is refused as on an
// expired contract, and a profile edit an hour later lands after the
// expiry, which as_of shows from its due time on.
func TestCommandsApplyDueMovesFirst(t *testing.T) {
	f, clock, end := expiring(t, "silver")
	*clock = end.Add(20 * time.Millisecond) // due, and the scheduler has not run
	if _, err := f.move("p1", domain.MoveSwitch, domain.ContractInput{TemplateTermID: "silver"}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("switch after the end date: %v, want a conflict (the contract expired)", err)
	}
	*clock = end.Add(time.Hour)
	_, st, err := f.cmds.UpdatePartner.Handle(ctx, "acme", "p1", domain.Patch{"name": json.RawMessage(`"Renamed"`)}, commands.Meta{Actor: "u", CorrelationID: "req-1"})
	if err != nil || st.Contract.Stage != domain.StageExpired || !st.UpdatedAt.Equal(*clock) {
		t.Fatalf("update after the end date = %+v, %v", st, err)
	}
	evs, mds := f.stream()
	n := len(evs)
	if evs[n-2].Type != domain.TypeContractExpired || evs[n-1].Type != domain.TypePartnerProfileUpdated {
		t.Fatalf("the stream ends %s, %s; want the expiry, then the edit", evs[n-2].Type, evs[n-1].Type)
	}
	if md := mds[n-2]; md.Actor != commands.SchedulerActor || md.CorrelationID != "req-1" ||
		md.CausationID != fmt.Sprintf("%s@%d", domain.PartnerStream("acme", "p1"), n-2) || !md.OccurredAt.Equal(end) {
		t.Fatalf("the expiry's metadata = %+v", md)
	}
	if md := mds[n-1]; md.Actor != "u" || !md.OccurredAt.Equal(*clock) {
		t.Fatalf("the edit's metadata = %+v", md)
	}
	v, err := queries.New(nil, f.store, nil).PartnerAsOf(ctx, "acme", "p1", queries.AsOf{Time: end.Add(time.Minute)})
	if err != nil || v.Contract == nil || v.Contract.Stage != domain.StageExpired || v.Name != "p1" {
		t.Fatalf("as of a minute after the end date: %+v, %v", v, err)
	}
}
