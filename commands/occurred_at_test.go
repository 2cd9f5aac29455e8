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
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/queries"
)

// Each event's metadata says when it took effect: a command's decision
// time, or a scheduled move's due time even when the scheduler runs hours
// later (it was down). as_of folds by it, so the contract shows as expired
// from its end date on, not from when the expiry was recorded.
func TestScheduledMovesOccurAtTheirDueTime(t *testing.T) {
	s, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	clock := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	f := &fixture{t: t, store: s, cmds: commands.New(commands.Deps{Store: s, Now: func() time.Time { return clock }})}
	f.partner("p1")
	f.term("gold")
	f.mustMove("p1", domain.MovePropose, domain.ContractInput{TemplateTermID: "gold"})
	f.mustMove("p1", domain.MoveAccept, domain.ContractInput{By: domain.SidePublisher})
	end := clock.Add(time.Hour)
	f.mustMove("p1", domain.MoveExpire, domain.ContractInput{EffectiveAt: end})
	scheduledAt := clock
	clock = clock.Add(5 * time.Hour) // the scheduler was down meanwhile
	if _, err := f.cmds.TickPartner.Handle(ctx, "acme", "p1", commands.Meta{Actor: "system:scheduler"}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ReadStream(ctx, domain.PartnerStream("acme", "p1"), 0, eventstore.Forwards, 100)
	if err != nil {
		t.Fatal(err)
	}
	occurred := func(re eventstore.RecordedEvent) time.Time {
		var md commands.EventMeta
		if err := json.Unmarshal(re.Metadata, &md); err != nil {
			t.Fatal(err)
		}
		return md.OccurredAt
	}
	last, before := evs[len(evs)-1], evs[len(evs)-2]
	if last.Type != domain.TypeContractExpired || !occurred(last).Equal(end) {
		t.Fatalf("last event %s occurred at %v, want %s at %v", last.Type, occurred(last), domain.TypeContractExpired, end)
	}
	if before.Type != domain.TypeContractExpiryScheduled || !occurred(before).Equal(scheduledAt) {
		t.Fatalf("event %s occurred at %v, want %s at its decision %v", before.Type, occurred(before), domain.TypeContractExpiryScheduled, scheduledAt)
	}
	q := queries.New(nil, s, nil)
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
	s, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	clock := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	f := &fixture{t: t, store: s, cmds: commands.New(commands.Deps{Store: s, Now: func() time.Time { return clock }})}
	f.partner("p1")
	f.term("gold")
	f.term("silver")
	f.mustMove("p1", domain.MovePropose, domain.ContractInput{TemplateTermID: "gold"})
	f.mustMove("p1", domain.MoveAccept, domain.ContractInput{By: domain.SidePublisher})
	end := clock.Add(time.Hour)
	f.mustMove("p1", domain.MoveExpire, domain.ContractInput{EffectiveAt: end})
	clock = end.Add(20 * time.Millisecond) // due, and the scheduler has not run
	if _, err := f.move("p1", domain.MoveSwitch, domain.ContractInput{TemplateTermID: "silver"}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("switch after the end date: %v, want a conflict (the contract expired)", err)
	}
	clock = end.Add(time.Hour)
	_, st, err := f.cmds.UpdatePartner.Handle(ctx, "acme", "p1", domain.Patch{"name": json.RawMessage(`"Renamed"`)}, commands.Meta{Actor: "u", CorrelationID: "req-1"})
	if err != nil || st.Contract.Stage != domain.StageExpired || !st.UpdatedAt.Equal(clock) {
		t.Fatalf("update after the end date = %+v, %v", st, err)
	}
	evs, err := s.ReadStream(ctx, domain.PartnerStream("acme", "p1"), 0, eventstore.Forwards, 100)
	if err != nil {
		t.Fatal(err)
	}
	meta := func(re eventstore.RecordedEvent) commands.EventMeta {
		var md commands.EventMeta
		if err := json.Unmarshal(re.Metadata, &md); err != nil {
			t.Fatal(err)
		}
		return md
	}
	n := len(evs)
	expired, edit := evs[n-2], evs[n-1]
	if expired.Type != domain.TypeContractExpired || edit.Type != domain.TypePartnerProfileUpdated {
		t.Fatalf("the stream ends %s, %s; want the expiry, then the edit", expired.Type, edit.Type)
	}
	if md := meta(expired); md.Actor != commands.SchedulerActor || md.CorrelationID != "req-1" ||
		md.CausationID != fmt.Sprintf("%s@%d", domain.PartnerStream("acme", "p1"), n-2) || !md.OccurredAt.Equal(end) {
		t.Fatalf("the expiry's metadata = %+v", md)
	}
	if md := meta(edit); md.Actor != "u" || !md.OccurredAt.Equal(clock) {
		t.Fatalf("the edit's metadata = %+v", md)
	}
	v, err := queries.New(nil, s, nil).PartnerAsOf(ctx, "acme", "p1", queries.AsOf{Time: end.Add(time.Minute)})
	if err != nil || v.Contract == nil || v.Contract.Stage != domain.StageExpired || v.Name != "p1" {
		t.Fatalf("as of a minute after the end date: %+v, %v", v, err)
	}
}
