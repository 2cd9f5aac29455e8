// Package eventstoretest is the contract every eventstore.Store adapter must
// pass: ordering, expected-version conflicts under concurrent writers,
// reading from positions, and catch-up-then-live subscriptions with no gaps
// and no duplicates.
package eventstoretest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/partnerd/partnerd/eventstore"
)

// Run runs the whole contract against stores made by open. Each subtest gets
// a fresh store.
func Run(t *testing.T, open func(t *testing.T) eventstore.Store) {
	t.Run("append and read a stream", func(t *testing.T) { testAppendRead(t, open(t)) })
	t.Run("expected version", func(t *testing.T) { testExpectedVersion(t, open(t)) })
	t.Run("concurrent writers on one stream", func(t *testing.T) { testConcurrentWriters(t, open(t)) })
	t.Run("read all from a position", func(t *testing.T) { testReadAll(t, open(t)) })
	t.Run("subscribe catches up then goes live", func(t *testing.T) { testSubscribe(t, open(t)) })
	t.Run("subscribe from the middle", func(t *testing.T) { testSubscribeFrom(t, open(t)) })
}

// Event returns test event data of the given type with a fresh ID.
func Event(typ string, data string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.NewString(), Type: typ, Data: []byte(data), Metadata: []byte(`{"actor":"test"}`)}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, expected int64, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctx(t), stream, expected, evs)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

func testAppendRead(t *testing.T, s eventstore.Store) {
	a := Event("thing.created", `{"n":0}`)
	b := Event("thing.renamed", `{"n":1}`)
	c := Event("thing.renamed", `{"n":2}`)
	res := mustAppend(t, s, "thing-p-1", eventstore.NoStream, a, b)
	if res.Version != 1 {
		t.Fatalf("version after two events = %d, want 1", res.Version)
	}
	res2 := mustAppend(t, s, "thing-p-1", 1, c)
	if res2.Version != 2 || res2.Position <= res.Position {
		t.Fatalf("second append = %+v after %+v: want version 2 and a later position", res2, res)
	}
	evs, err := s.ReadStream(ctx(t), "thing-p-1", 0, eventstore.Forwards, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("read %d events, want 3", len(evs))
	}
	for i, want := range []eventstore.EventData{a, b, c} {
		got := evs[i]
		if got.ID != want.ID || got.Type != want.Type || string(got.Data) != string(want.Data) ||
			string(got.Metadata) != string(want.Metadata) || got.Version != uint64(i) || got.StreamID != "thing-p-1" {
			t.Errorf("event %d = %+v, want %+v at version %d", i, got, want, i)
		}
		if got.RecordedAt.IsZero() || time.Since(got.RecordedAt) > time.Minute {
			t.Errorf("event %d recorded at %v, want about now", i, got.RecordedAt)
		}
		if i > 0 && got.Position <= evs[i-1].Position {
			t.Errorf("positions not increasing: %d then %d", evs[i-1].Position, got.Position)
		}
	}
	back, err := s.ReadStream(ctx(t), "thing-p-1", math.MaxUint64, eventstore.Backwards, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || back[0].ID != c.ID || back[1].ID != b.ID {
		t.Fatalf("backwards read = %v, want c then b", ids(back))
	}
	mid, err := s.ReadStream(ctx(t), "thing-p-1", 1, eventstore.Forwards, 1)
	if err != nil || len(mid) != 1 || mid[0].ID != b.ID {
		t.Fatalf("read from version 1 max 1 = %v, %v; want b", ids(mid), err)
	}
	back1, err := s.ReadStream(ctx(t), "thing-p-1", 1, eventstore.Backwards, 10)
	if err != nil || len(back1) != 2 || back1[0].ID != b.ID || back1[1].ID != a.ID {
		t.Fatalf("backwards from version 1 = %v, %v; want b, a", ids(back1), err)
	}
	none, err := s.ReadStream(ctx(t), "thing-p-missing", 0, eventstore.Forwards, 10)
	if err != nil || len(none) != 0 {
		t.Fatalf("missing stream read = %v, %v; want nothing, no error", ids(none), err)
	}
}

func testExpectedVersion(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "x-p-1", eventstore.NoStream, Event("x.a", `{}`))
	cases := []struct {
		name     string
		expected int64
		actual   int64
	}{
		{name: "no stream on existing", expected: eventstore.NoStream, actual: 0},
		{name: "stale version", expected: 5, actual: 0},
	}
	for _, tc := range cases {
		_, err := s.Append(ctx(t), "x-p-1", tc.expected, []eventstore.EventData{Event("x.b", `{}`)})
		if !errors.Is(err, eventstore.ErrWrongVersion) {
			t.Fatalf("%s: err = %v, want ErrWrongVersion", tc.name, err)
		}
		var ve *eventstore.VersionError
		if !errors.As(err, &ve) || ve.Actual != tc.actual {
			t.Fatalf("%s: err = %#v, want VersionError with actual %d", tc.name, err, tc.actual)
		}
	}
	if _, err := s.Append(ctx(t), "x-p-2", eventstore.StreamExists, []eventstore.EventData{Event("x.b", `{}`)}); !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Fatalf("StreamExists on a missing stream: err = %v, want ErrWrongVersion", err)
	}
	mustAppend(t, s, "x-p-1", eventstore.StreamExists, Event("x.c", `{}`))
	mustAppend(t, s, "x-p-1", eventstore.Any, Event("x.d", `{}`))
	mustAppend(t, s, "x-p-3", eventstore.Any, Event("x.e", `{}`))
	evs, _ := s.ReadStream(ctx(t), "x-p-1", 0, eventstore.Forwards, 10)
	if len(evs) != 3 {
		t.Fatalf("x-p-1 has %d events, want 3 (rejected appends must write nothing)", len(evs))
	}
}

// Many writers race on one stream with the version they last read; exactly
// one wins each version, and every winner's event is stored once.
func testConcurrentWriters(t *testing.T, s eventstore.Store) {
	const writers, perWriter = 8, 10
	stream := "race-p-1"
	mustAppend(t, s, stream, eventstore.NoStream, Event("race.started", `{}`))
	var mu sync.Mutex
	won := map[string]bool{}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; {
				last, err := s.ReadStream(ctx(t), stream, math.MaxUint64, eventstore.Backwards, 1)
				if err != nil || len(last) != 1 {
					t.Errorf("read last: %v", err)
					return
				}
				ev := Event("race.step", fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))
				_, err = s.Append(ctx(t), stream, int64(last[0].Version), []eventstore.EventData{ev})
				if errors.Is(err, eventstore.ErrWrongVersion) {
					continue
				}
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				won[ev.ID] = true
				mu.Unlock()
				i++
			}
		}()
	}
	wg.Wait()
	evs, err := s.ReadStream(ctx(t), stream, 0, eventstore.Forwards, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1+writers*perWriter {
		t.Fatalf("stream has %d events, want %d", len(evs), 1+writers*perWriter)
	}
	for i, ev := range evs[1:] {
		if !won[ev.ID] {
			t.Errorf("event %d (%s) was stored but its append was not acknowledged", i+1, ev.ID)
		}
		delete(won, ev.ID)
	}
	if len(won) != 0 {
		t.Errorf("%d acknowledged events missing", len(won))
	}
}

func testReadAll(t *testing.T, s eventstore.Store) {
	start, _ := s.Head(ctx(t))
	var want []string
	for i := 0; i < 30; i++ {
		ev := Event("all.x", fmt.Sprintf(`{"i":%d}`, i))
		want = append(want, ev.ID)
		mustAppend(t, s, fmt.Sprintf("all-p-%d", i%4), eventstore.Any, ev)
	}
	head, err := s.Head(ctx(t))
	if err != nil || head <= start {
		t.Fatalf("head = %d, %v; want past %d", head, err, start)
	}
	var got []eventstore.RecordedEvent
	after := start
	for {
		page, err := s.ReadAll(ctx(t), after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].Position
	}
	if fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Fatalf("ReadAll in pages = %v\nwant %v", ids(got), want)
	}
	if got[len(got)-1].Position != head {
		t.Fatalf("last position %d != head %d", got[len(got)-1].Position, head)
	}
	rest, err := s.ReadAll(ctx(t), got[9].Position, 1000)
	if err != nil || len(rest) != 20 || rest[0].ID != want[10] {
		t.Fatalf("ReadAll after the 10th event = %d events, %v; want the 20 after it", len(rest), err)
	}
}

func testSubscribe(t *testing.T, s eventstore.Store) {
	var want []string
	for i := 0; i < 50; i++ {
		ev := Event("sub.x", fmt.Sprintf(`{"i":%d}`, i))
		want = append(want, ev.ID)
		mustAppend(t, s, fmt.Sprintf("sub-p-%d", i%5), eventstore.Any, ev)
	}
	c, cancel := context.WithCancel(ctx(t))
	defer cancel()
	got := make(chan eventstore.RecordedEvent, 1000)
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(c, 0, func(ev eventstore.RecordedEvent) error { got <- ev; return nil })
	}()
	// Live appends, from several goroutines, while the catch-up may still run.
	var wg sync.WaitGroup
	var mu sync.Mutex
	live := map[string]bool{}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				ev := Event("sub.live", `{}`)
				mustAppend(t, s, fmt.Sprintf("live-p-%d", w), eventstore.Any, ev)
				mu.Lock()
				live[ev.ID] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var seen []eventstore.RecordedEvent
	timeout := time.After(20 * time.Second)
	for len(seen) < 150 {
		select {
		case ev := <-got:
			seen = append(seen, ev)
		case err := <-done:
			t.Fatalf("subscription ended early: %v", err)
		case <-timeout:
			t.Fatalf("got %d of 150 events", len(seen))
		}
	}
	if fmt.Sprint(ids(seen[:50])) != fmt.Sprint(want) {
		t.Fatalf("catch-up part out of order or wrong")
	}
	ids := map[string]bool{}
	for i, ev := range seen {
		if ids[ev.ID] {
			t.Fatalf("duplicate %s", ev.ID)
		}
		ids[ev.ID] = true
		if i > 0 && ev.Position <= seen[i-1].Position {
			t.Fatalf("positions out of order at %d: %d then %d", i, seen[i-1].Position, ev.Position)
		}
		if i >= 50 && !live[ev.ID] {
			t.Fatalf("unexpected event %s", ev.ID)
		}
	}
	select {
	case ev := <-got:
		t.Fatalf("extra event %s", ev.ID)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Subscribe did not return after its context ended")
	}
}

func testSubscribeFrom(t *testing.T, s eventstore.Store) {
	var res []eventstore.AppendResult
	for i := 0; i < 10; i++ {
		res = append(res, mustAppend(t, s, "from-p-1", eventstore.Any, Event("from.x", fmt.Sprintf(`{"i":%d}`, i))))
	}
	c, cancel := context.WithCancel(ctx(t))
	defer cancel()
	var got []eventstore.RecordedEvent
	stop := errors.New("enough")
	err := s.Subscribe(c, res[5].Position, func(ev eventstore.RecordedEvent) error {
		got = append(got, ev)
		if len(got) == 4 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Subscribe returned %v, want the handler's error", err)
	}
	if got[0].Version != 6 || got[3].Version != 9 {
		t.Fatalf("subscribe after position of version 5 delivered versions %d..%d, want 6..9", got[0].Version, got[3].Version)
	}
}

func ids(evs []eventstore.RecordedEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// RunSnapshots runs the contract of the eventstore.Snapshotter capability
// against stores made by open, which must have it: snapshots read back as
// written, the latest wins, and they never show in the log (ReadAll,
// ReadStream, Subscribe, Head). Each subtest gets a fresh store.
func RunSnapshots(t *testing.T, open func(t *testing.T) eventstore.Store) {
	snapshotter := func(t *testing.T) (eventstore.Store, eventstore.Snapshotter) {
		s := open(t)
		sn, ok := s.(eventstore.Snapshotter)
		if !ok {
			t.Fatalf("%T does not implement eventstore.Snapshotter", s)
		}
		return s, sn
	}
	t.Run("snapshots read back, latest wins", func(t *testing.T) { testSnapshotReadWrite(t, snapshotter) })
	t.Run("snapshots stay out of the log", func(t *testing.T) { testSnapshotsOutOfTheLog(t, snapshotter) })
}

func testSnapshotReadWrite(t *testing.T, open func(*testing.T) (eventstore.Store, eventstore.Snapshotter)) {
	s, sn := open(t)
	got, err := sn.ReadSnapshot(ctx(t), "snap-p-1")
	if err != nil || got != nil {
		t.Fatalf("snapshot of a stream without one = %q, %v; want nil, no error", got, err)
	}
	// A snapshot needs no events in its stream (it is not tied to the log).
	one := []byte("{\"v\":1,\"bin\":\"\x00\xff\"}")
	if err := sn.WriteSnapshot(ctx(t), "snap-p-1", one); err != nil {
		t.Fatal(err)
	}
	if got, err := sn.ReadSnapshot(ctx(t), "snap-p-1"); err != nil || string(got) != string(one) {
		t.Fatalf("snapshot = %q, %v; want %q", got, err, one)
	}
	mustAppend(t, s, "snap-p-2", eventstore.NoStream, Event("snap.x", `{}`))
	for i := 2; i <= 4; i++ {
		if err := sn.WriteSnapshot(ctx(t), "snap-p-2", fmt.Appendf(nil, `{"v":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := sn.ReadSnapshot(ctx(t), "snap-p-2"); err != nil || string(got) != `{"v":4}` {
		t.Fatalf("snapshot after three writes = %q, %v; want the last one", got, err)
	}
	if got, err := sn.ReadSnapshot(ctx(t), "snap-p-1"); err != nil || string(got) != string(one) {
		t.Fatalf("snapshot of snap-p-1 after writes to snap-p-2 = %q, %v", got, err)
	}
	// A stream whose name extends another's has its own snapshot.
	if got, err := sn.ReadSnapshot(ctx(t), "snap-p-"); err != nil || got != nil {
		t.Fatalf("snapshot of a name prefix = %q, %v; want none", got, err)
	}
	if err := sn.WriteSnapshot(ctx(t), "snap-p-3", nil); err == nil {
		t.Fatal("an empty snapshot was accepted (nil is the answer for none)")
	}
}

func testSnapshotsOutOfTheLog(t *testing.T, open func(*testing.T) (eventstore.Store, eventstore.Snapshotter)) {
	s, sn := open(t)
	var want []string
	for i := 0; i < 5; i++ {
		ev := Event("snap.x", fmt.Sprintf(`{"i":%d}`, i))
		want = append(want, ev.ID)
		mustAppend(t, s, "snap-p-1", eventstore.Any, ev)
	}
	head, err := s.Head(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		for _, stream := range []string{"snap-p-1", "snap-p-2"} {
			if err := sn.WriteSnapshot(ctx(t), stream, fmt.Appendf(nil, `{"snapshot":%d}`, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if h, err := s.Head(ctx(t)); err != nil || h != head {
		t.Fatalf("head after snapshots = %d, %v; want %d: a snapshot has no position", h, err, head)
	}
	all, err := s.ReadAll(ctx(t), 0, 1000)
	if err != nil || fmt.Sprint(ids(all)) != fmt.Sprint(want) {
		t.Fatalf("ReadAll after snapshots = %v, %v\nwant the 5 events %v", ids(all), err, want)
	}
	evs, err := s.ReadStream(ctx(t), "snap-p-1", 0, eventstore.Forwards, 100)
	if err != nil || fmt.Sprint(ids(evs)) != fmt.Sprint(want) {
		t.Fatalf("ReadStream after snapshots = %v, %v; want its 5 events", ids(evs), err)
	}
	if last, err := s.ReadStream(ctx(t), "snap-p-2", math.MaxUint64, eventstore.Backwards, 1); err != nil || len(last) != 0 {
		t.Fatalf("a stream with only a snapshot reads %v, %v; want no events", ids(last), err)
	}
	// An append after the snapshots lands right after the log's head, and a
	// subscription from the start delivers the log's events only.
	end := Event("snap.end", `{}`)
	want = append(want, end.ID)
	res := mustAppend(t, s, "snap-p-1", 4, end)
	if res.Version != 5 {
		t.Fatalf("append after snapshots at version %d, want 5", res.Version)
	}
	var got []eventstore.RecordedEvent
	stop := errors.New("at the end")
	err = s.Subscribe(ctx(t), 0, func(ev eventstore.RecordedEvent) error {
		got = append(got, ev)
		if ev.ID == end.ID {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Fatalf("Subscribe after snapshots = %v (%v)\nwant %v", ids(got), err, want)
	}
	for _, ev := range got {
		if eventstore.IsSnapshotStream(ev.StreamID) || ev.StreamID != "snap-p-1" {
			t.Fatalf("the log delivered an event of %s", ev.StreamID)
		}
	}
	if h, err := s.Head(ctx(t)); err != nil || h != res.Position {
		t.Fatalf("head = %d, %v; want the last append's %d", h, err, res.Position)
	}
}
