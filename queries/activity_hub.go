package queries

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ActivityHub fans newly projected activities out to the live streams of
// this process. The activities projection appends each activity to its
// program's activity log (a Redis stream) and PUBLISHes a notice on the
// program's channel, both inside the same atomic step as its writes. One
// pattern subscription per process receives every notice, from whichever
// instance applied the batch; for a program with open streams the hub
// then reads the log from where it stopped (so order is the log's, and a
// lost notice only delays delivery until the next one or the next poll)
// and hands each stream the activities that match its filter. A stream whose buffer is full is
// dropped (its Gone channel closes): the hub never waits for a client, so
// a slow client cannot slow the projection.
type ActivityHub struct {
	q      *Queries
	rdb    redis.UniversalClient
	gens   Generations
	logger *slog.Logger
	// Poll is how often programs with open streams are read even without
	// a notice (default 1 s).
	Poll time.Duration

	mu      sync.Mutex
	streams map[string]map[*ActivityStream]struct{} // by program
	last    map[string]string                       // program → last log entry handed out
	ready   chan struct{}
	once    sync.Once
	// Dropped counts streams dropped for being too slow.
	Dropped atomic.Uint64
}

// ActivityStream is one live subscriber.
type ActivityStream struct {
	program string
	filter  ActivityFilter
	// C delivers matching activities in projection order.
	C chan LiveActivity
	// Gone is closed when the hub dropped the stream (its buffer was full).
	Gone chan struct{}
}

// NewActivityHub makes a hub; Run starts it.
func NewActivityHub(q *Queries, logger *slog.Logger) *ActivityHub {
	if logger == nil {
		logger = slog.Default()
	}
	return &ActivityHub{q: q, rdb: q.rdb, gens: q.gens, logger: logger, Poll: time.Second, streams: map[string]map[*ActivityStream]struct{}{},
		last: map[string]string{}, ready: make(chan struct{})}
}

// LivePattern is the pattern of every program's live channel, all generations.
const LivePattern = "pd:activities:g*:live"

// Run receives published batches until ctx ends.
func (h *ActivityHub) Run(ctx context.Context) {
	ps := h.rdb.PSubscribe(ctx, LivePattern)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil && ctx.Err() == nil {
		h.logger.Error("activity hub: subscribe", "err", err)
	}
	h.once.Do(func() { close(h.ready) })
	ch := ps.Channel(redis.WithChannelSize(4096))
	poll := time.NewTicker(h.Poll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			gen, program, ok := parseLive(m.Channel)
			// A rebuild replays the log into a new generation: not news.
			if ok && gen == h.gens.Generation("activities") {
				h.fetch(ctx, program)
			}
		case <-poll.C:
			h.mu.Lock()
			programs := make([]string, 0, len(h.last))
			for p := range h.last {
				programs = append(programs, p)
			}
			h.mu.Unlock()
			for _, p := range programs {
				h.fetch(ctx, p)
			}
		}
	}
}

// Ready is closed once the hub's subscription is in place.
func (h *ActivityHub) Ready() <-chan struct{} { return h.ready }

// parseLive reads generation and program from
// "pd:activities:g<N>:{<program>}:live".
func parseLive(channel string) (int64, string, bool) {
	rest, ok := strings.CutPrefix(channel, "pd:activities:g")
	if !ok {
		return 0, "", false
	}
	gen, rest, ok := strings.Cut(rest, ":{")
	if !ok {
		return 0, "", false
	}
	program, ok := strings.CutSuffix(rest, "}:live")
	g, err := strconv.ParseInt(gen, 10, 64)
	return g, program, ok && err == nil
}

// fetch reads a program's log from where the hub stopped and hands the
// entries out, if the program has open streams.
func (h *ActivityHub) fetch(ctx context.Context, program string) {
	for {
		h.mu.Lock()
		after, ok := h.last[program]
		h.mu.Unlock()
		if !ok {
			return
		}
		entries, next, err := h.q.LogAfter(ctx, program, after, nil, hubChunk)
		if err != nil {
			if ctx.Err() == nil {
				h.logger.Warn("activity hub: read log", "program", program, "err", err)
			}
			return
		}
		h.dispatch(program, after, next, entries)
		if len(entries) < hubChunk {
			return
		}
	}
}

func (h *ActivityHub) dispatch(program, from, next string, live []LiveActivity) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last[program] != from {
		return // the program lost all its streams meanwhile
	}
	h.last[program] = next
	for s := range h.streams[program] {
		for i := range live {
			if !s.filter.Match(&live[i].View) {
				continue
			}
			select {
			case s.C <- live[i]:
			default:
				h.drop(s)
			}
			if _, still := h.streams[program][s]; !still {
				break
			}
		}
	}
}

// drop removes a stream; h.mu is held.
func (h *ActivityHub) drop(s *ActivityStream) {
	if _, ok := h.streams[s.program][s]; !ok {
		return
	}
	delete(h.streams[s.program], s)
	if len(h.streams[s.program]) == 0 {
		delete(h.streams, s.program)
		delete(h.last, s.program)
	}
	close(s.Gone)
	h.Dropped.Add(1)
}

// Subscribe opens a live stream of a program's activities matching f,
// with a buffer of buf activities.
// Every activity logged after the call returns is delivered (or the
// stream dropped).
func (h *ActivityHub) Subscribe(ctx context.Context, program string, f ActivityFilter, buf int) (*ActivityStream, error) {
	s := &ActivityStream{program: program, filter: f, C: make(chan LiveActivity, buf), Gone: make(chan struct{})}
	h.mu.Lock()
	_, tracked := h.last[program]
	h.mu.Unlock()
	var tail string
	if !tracked {
		var err error
		if _, tail, err = h.q.LogAfter(ctx, program, "", nil, 0); err != nil {
			return nil, err
		}
	}
	h.mu.Lock()
	if _, ok := h.last[program]; !ok {
		h.last[program] = tail
	}
	if h.streams[program] == nil {
		h.streams[program] = map[*ActivityStream]struct{}{}
	}
	h.streams[program][s] = struct{}{}
	h.mu.Unlock()
	return s, nil
}

// Unsubscribe closes a stream (a no-op if the hub dropped it already).
func (h *ActivityHub) Unsubscribe(s *ActivityStream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.streams[s.program][s]; ok {
		delete(h.streams[s.program], s)
		if len(h.streams[s.program]) == 0 {
			delete(h.streams, s.program)
			delete(h.last, s.program)
		}
	}
}

// Streams is the number of open live streams.
func (h *ActivityHub) Streams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.streams {
		n += len(m)
	}
	return n
}

// hubChunk is how many log entries the hub reads at once; a stream's
// buffer must be well above it.
const hubChunk = 512
