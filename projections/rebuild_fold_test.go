package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/internal/testenv"
)

// memLog is a LogReader over events kept in memory. failAfter > 0 makes
// ReadAll fail once it has been called that many times.
type memLog struct {
	evs       []eventstore.RecordedEvent
	reads     int
	failAfter int
}

var errLogBroke = errors.New("log read failed")

func (l *memLog) ReadAll(_ context.Context, after eventstore.Position, max int) ([]eventstore.RecordedEvent, error) {
	l.reads++
	if l.failAfter > 0 && l.reads > l.failAfter {
		return nil, errLogBroke
	}
	var out []eventstore.RecordedEvent
	for _, e := range l.evs {
		if e.Position > after && len(out) < max {
			out = append(out, e)
		}
	}
	return out, nil
}

func (l *memLog) Head(context.Context) (eventstore.Position, error) {
	return eventstore.Position(len(l.evs)), nil
}

// NewMemLog is a memLog for the package's external tests.
func NewMemLog(evs []eventstore.RecordedEvent) LogReader { return &memLog{evs: evs} }

// interleavedLog makes a log of partners of two programs whose events
// interleave: each partner is created, then changes name, country,
// groups, account manager and prospect stage in random order with other
// partners' events in between.
func interleavedLog(t *testing.T, seed uint64, partners int) *memLog {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	type partner struct {
		program, id string
		version     uint64
		profile     domain.Profile
	}
	var ps []*partner
	log := &memLog{}
	add := func(p *partner, ev domain.Event) {
		data, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		log.evs = append(log.evs, eventstore.RecordedEvent{ID: fmt.Sprintf("%s-%d", p.id, p.version), StreamID: domain.PartnerStream(p.program, p.id),
			Type: ev.EventType(), Version: p.version, Position: eventstore.Position(len(log.evs) + 1), RecordedAt: now, Data: data,
			Metadata: []byte(`{"schema":1,"program":"` + p.program + `"}`)})
		p.version++
	}
	names := []string{"Alpha", "Beta", "Gamma Shop", "Délices", "zeta.io", "Ünïcode"}
	for len(log.evs) < partners*6 {
		if len(ps) < partners && (len(ps) == 0 || rng.IntN(3) == 0) {
			p := &partner{program: []string{"pa", "pb"}[len(ps)%2], id: fmt.Sprintf("p%03d", len(ps))}
			p.profile = domain.Profile{Name: names[rng.IntN(len(names))], Country: "DE", RelationshipType: "direct"}
			ps = append(ps, p)
			add(p, domain.PartnerCreated{PartnerID: p.id, ProgramID: p.program, Profile: p.profile, ProspectStage: "new", CreatedAt: now})
			continue
		}
		p := ps[rng.IntN(len(ps))]
		now = now.Add(time.Second)
		switch rng.IntN(5) {
		case 0:
			p.profile.Name = names[rng.IntN(len(names))] + fmt.Sprint(rng.IntN(10))
			p.profile.Country = []string{"DE", "FR", "IT"}[rng.IntN(3)]
			add(p, domain.PartnerProfileUpdated{PartnerID: p.id, ProgramID: p.program, Changed: []string{"name", "country"}, Profile: p.profile, UpdatedAt: now})
		case 1:
			gs := []string{"g1", "g2", "g3"}[:rng.IntN(4)]
			add(p, domain.PartnerGroupsChanged{PartnerID: p.id, ProgramID: p.program, Groups: gs})
		case 2:
			add(p, domain.PartnerAssigned{PartnerID: p.id, ProgramID: p.program, User: fmt.Sprintf("u%d", rng.IntN(3)), AssignedAt: now})
		case 3:
			add(p, domain.PartnerUnassigned{PartnerID: p.id, ProgramID: p.program})
		case 4:
			add(p, domain.PartnerProspectStageChanged{PartnerID: p.id, ProgramID: p.program, Stage: []string{"new", "contacted", "qualified"}[rng.IntN(3)], ChangedAt: now})
		}
	}
	return log
}

// liveProject applies the log through the live runner's guarded path in
// batches of random sizes, as the bus would, and returns the generation.
func liveProject(t *testing.T, rdb redis.UniversalClient, log *memLog, seed uint64) int64 {
	t.Helper()
	ctx := context.Background()
	r := NewRunner(rdb, Partners{})
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 9))
	for i := 0; i < len(log.evs); {
		n := min(1+rng.IntN(7), len(log.evs)-i)
		var evs []Event
		for _, re := range log.evs[i : i+n] {
			evs = append(evs, envelope(re))
		}
		if err := r.Apply(ctx, evs); err != nil {
			t.Fatal(err)
		}
		i += n
	}
	return r.gen.Load()
}

// generationKeys lists one generation's keys of the partners projection
// with their contents (testenv.DumpGeneration).
func generationKeys(t *testing.T, rdb redis.UniversalClient, gen int64) map[string]string {
	t.Helper()
	m, err := testenv.DumpGeneration(context.Background(), rdb, "partners", gen)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameKeys(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: nothing to compare", what)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: extra key %s = %q", what, k, got[k])
		}
	}
}

// partnerWrites counts the HSETs of partner hashes a client sends.
type partnerWrites struct{ n atomic.Int64 }

func (h *partnerWrites) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *partnerWrites) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.count([]redis.Cmder{cmd}); return next(ctx, cmd) }
}
func (h *partnerWrites) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.count(cmds); return next(ctx, cmds) }
}
func (h *partnerWrites) count(cmds []redis.Cmder) {
	for _, c := range cmds {
		if a := c.Args(); len(a) > 1 && strings.EqualFold(fmt.Sprint(a[0]), "hset") && strings.Contains(fmt.Sprint(a[1]), "}:partner:") {
			h.n.Add(1)
		}
	}
}

func envelope(re eventstore.RecordedEvent) Event {
	var m struct{ Program string }
	_ = json.Unmarshal(re.Metadata, &m)
	return Event{ID: re.ID, Type: re.Type, Stream: re.StreamID, Program: m.Program, Version: re.Version + 1,
		Position: re.Position, Schema: 1, RecordedAt: re.RecordedAt, Data: re.Data}
}

// A rebuild folds each partner's events in memory and writes each partner
// once; the generation it builds equals, key by key, what the live runner
// built from the same interleaved log, also when the workers must write
// and forget their partners mid-log (a bounded fold) and later events
// start again from the state written.
func TestRebuildFoldEqualsLive(t *testing.T) {
	for _, tc := range []struct {
		name              string
		streams, batch    int
		oneWritePerStream bool
	}{
		{"whole log folded", rebuildFoldStreams, 3, true},
		{"bounded fold", 4, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(s, b int) { foldStreams, workerBatch = s, b }(foldStreams, workerBatch)
			foldStreams, workerBatch = tc.streams, tc.batch
			rdb := testenv.Miniredis(t)
			log := interleavedLog(t, 1, 40)
			live := generationKeys(t, rdb, liveProject(t, rdb, log, 1))
			hook := &partnerWrites{}
			rdb.AddHook(hook)
			res, err := Rebuild(context.Background(), rdb, log, Partners{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Events != uint64(len(log.evs)) {
				t.Fatalf("rebuild applied %d events, want %d", res.Events, len(log.evs))
			}
			sameKeys(t, "rebuilt vs live", generationKeys(t, rdb, res.NewGeneration), live)
			if tc.oneWritePerStream && hook.n.Load() != 40 {
				t.Fatalf("%d partner hash writes for 40 partners and %d events, want one per partner", hook.n.Load(), len(log.evs))
			} else if !tc.oneWritePerStream && hook.n.Load() <= 40 {
				t.Fatalf("%d partner hash writes: the bounded fold never wrote a partner mid-log", hook.n.Load())
			}
		})
	}
}

// A rebuild that fails mid-log leaves the live generation serving,
// untouched; the next rebuild drops what the failed one wrote and builds
// the same read model.
func TestRebuildFailureLeavesLiveGeneration(t *testing.T) {
	defer func(s, b int) { foldStreams, workerBatch = s, b }(foldStreams, workerBatch)
	foldStreams, workerBatch = 8, 4 // the failed rebuild has written some partners
	rdb := testenv.Miniredis(t)
	ctx := context.Background()
	log := interleavedLog(t, 2, 60)
	gen := liveProject(t, rdb, log, 2)
	live := generationKeys(t, rdb, gen)
	// A page is 8192 events: fail the second read of a log longer than that.
	long := &memLog{failAfter: 1}
	for len(long.evs) < rebuildReadPage+100 {
		for _, e := range log.evs {
			e.Position = eventstore.Position(len(long.evs) + 1)
			long.evs = append(long.evs, e)
		}
	}
	if _, err := Rebuild(ctx, rdb, long, Partners{}, nil); !errors.Is(err, errLogBroke) {
		t.Fatalf("rebuild over a failing log: %v, want %v", err, errLogBroke)
	}
	if g, _ := rdb.Get(ctx, GenerationKey("partners")).Int64(); g != gen {
		t.Fatalf("live generation %d after a failed rebuild, want %d", g, gen)
	}
	sameKeys(t, "live generation after a failed rebuild", generationKeys(t, rdb, gen), live)
	building, err := rdb.Get(ctx, "pd:partners:building").Int64()
	if err != nil || len(generationKeys(t, rdb, building)) == 0 {
		t.Fatalf("the failed rebuild left no partial generation to drop (building %d, %v): the test did not fail mid-write", building, err)
	}
	res, err := Rebuild(ctx, rdb, log, Partners{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameKeys(t, "rebuilt after a failed rebuild vs live", generationKeys(t, rdb, res.NewGeneration), live)
	if n := len(generationKeys(t, rdb, building)); n != 0 {
		t.Fatalf("%d keys of the failed rebuild's generation remain", n)
	}
}

// filteredLog is a memLog that also reads filtered
// (eventstore.FilteredReader), counting the scans it is asked for.
type filteredLog struct {
	*memLog
	scans int
}

func (l *filteredLog) ReadAllFiltered(_ context.Context, after eventstore.Position, max int, keep func(string) bool) ([]eventstore.RecordedEvent, eventstore.Position, error) {
	if after == 0 {
		l.scans++
	}
	var out []eventstore.RecordedEvent
	last := after
	for _, e := range l.evs {
		if e.Position <= after || len(out) == max {
			continue
		}
		if keep(e.StreamID) {
			out = append(out, e)
		}
		last = e.Position
		if len(out) == max {
			break
		}
	}
	return out, last, nil
}

func (l *filteredLog) CountStreams(_ context.Context, prefix string) (int, error) {
	seen := map[string]bool{}
	for _, e := range l.evs {
		if strings.HasPrefix(e.StreamID, prefix) {
			seen[e.StreamID] = true
		}
	}
	return len(seen), nil
}

// Over a log that reads filtered, a rebuild with more partners than its
// fold holds splits them into slices, reads the log once and spills the
// later slices' events to temporary files, so it still writes each
// partner exactly once, builds what the live runner built, and leaves no
// file behind.
func TestRebuildSlicesTheLogToFoldEveryPartnerWhole(t *testing.T) {
	defer func(s, b int) { foldStreams, workerBatch = s, b }(foldStreams, workerBatch)
	foldStreams, workerBatch = 96, 3 // 120 partners: 3 slices of ~40 (43 each at most: two of them under the bound of 96)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	rdb := testenv.Miniredis(t)
	log := &filteredLog{memLog: interleavedLog(t, 3, 120)}
	live := generationKeys(t, rdb, liveProject(t, rdb, log.memLog, 3))
	hook := &partnerWrites{}
	rdb.AddHook(hook)
	var last eventstore.Position
	res, err := Rebuild(context.Background(), rdb, log, Partners{}, func(done, total eventstore.Position, _ uint64) {
		if done < last || done > total {
			t.Errorf("progress went from %d to %d of %d", last, done, total)
		}
		last = done
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != uint64(len(log.evs)) {
		t.Fatalf("rebuild applied %d events, want %d", res.Events, len(log.evs))
	}
	sameKeys(t, "rebuilt in slices vs live", generationKeys(t, rdb, res.NewGeneration), live)
	if log.scans != 1 {
		t.Fatalf("%d scans of the log for 3 slices, want 1", log.scans)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("the rebuild left %d entries in the temporary directory (%s…)", len(left), left[0].Name())
	}
	if hook.n.Load() != 120 {
		t.Fatalf("%d partner hash writes for 120 partners, want one each", hook.n.Load())
	}
}

// The same over the embedded store itself: its filtered reads and stream
// count drive the slices.
func TestRebuildSlicesOverTheEmbeddedStore(t *testing.T) {
	defer func(s, b int) { foldStreams, workerBatch = s, b }(foldStreams, workerBatch)
	foldStreams, workerBatch = 96, 3
	rdb := testenv.Miniredis(t)
	log := interleavedLog(t, 4, 120)
	st, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for _, e := range log.evs {
		if _, err := st.Append(ctx, e.StreamID, eventstore.Any, []eventstore.EventData{{ID: e.ID, Type: e.Type, Data: e.Data, Metadata: e.Metadata}}); err != nil {
			t.Fatal(err)
		}
	}
	// Events of another category are skipped, and do not count as partners.
	if _, err := st.Append(ctx, "group-pa-g1", eventstore.Any, []eventstore.EventData{{ID: "g", Type: domain.TypeGroupCreated, Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	live := generationKeys(t, rdb, liveProject(t, rdb, log, 4))
	hook := &partnerWrites{}
	rdb.AddHook(hook)
	res, err := Rebuild(ctx, rdb, st, Partners{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != uint64(len(log.evs)) {
		t.Fatalf("rebuild applied %d events, want %d", res.Events, len(log.evs))
	}
	sameKeys(t, "rebuilt in slices from the embedded store vs live", generationKeys(t, rdb, res.NewGeneration), live)
	if hook.n.Load() != 120 {
		t.Fatalf("%d partner hash writes for 120 partners, want one each", hook.n.Load())
	}
}

// A spilled record reads back as it was written, and a file cut short is
// an error, not a clean end.
func TestSpillRoundTrip(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	sp, err := newSpill(2)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.remove()
	if left, _ := os.ReadDir(tmp); runtime.GOOS != "windows" && len(left) != 0 {
		t.Fatalf("the spill files are still named in the temporary directory (%s): a killed rebuild would leave them", left[0].Name())
	}
	at := time.Date(2026, 12, 3, 9, 30, 1, 123456789, time.UTC)
	recs := []eventstore.RecordedEvent{
		{ID: "e1", StreamID: "partner-acme-p1", Type: "partner.created", Version: 0, Position: 7, RecordedAt: at, Data: []byte(`{"a":1}`), Metadata: []byte(`{"schema":1}`)},
		{ID: "e2", StreamID: "partner-acme-p2", Type: "partner.updated", Version: 12345, Position: 1 << 40, RecordedAt: at.Add(time.Hour), Data: []byte(`{}`)},
	}
	for _, re := range recs {
		if err := sp.write(2, re); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.finish(); err != nil {
		t.Fatal(err)
	}
	got, last, err := sp.reader(2, 10, 99)(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) || last != recs[1].Position {
		t.Fatalf("read back %+v (last %d), want %+v", got, last, recs)
	}
	if evs, last, err := sp.reader(1, 10, 99)(context.Background(), 0); len(evs) != 0 || last != 99 || err != nil {
		t.Fatalf("an empty slice: %v %d %v, want nothing, the head, no error", evs, last, err)
	}
	// Cut the last record short.
	info, _ := sp.files[1].Stat()
	if err := sp.files[1].Truncate(info.Size() - 3); err != nil {
		t.Fatal(err)
	}
	_, _ = sp.files[1].Seek(0, 0)
	if _, _, err := sp.reader(2, 10, 99)(context.Background(), 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a record cut short: %v, want io.ErrUnexpectedEOF", err)
	}
}
