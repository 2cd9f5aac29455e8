// Package gctune gives a small heap room to grow before the garbage
// collector runs.
//
// Go's default pacing (GOGC=100) starts a collection each time the heap has
// grown by as much as survived the last one. partnerd's live heap is small
// (~30 MB serving 100k partners: its read models live in Redis, its log in
// Pebble's own memory), so under a command load it collected some twenty
// times a second, and each collection taxed the allocating request and
// projection goroutines with mark assists. Start keeps the heap goal at
//
//	live + max(live, headroom)
//
// instead of live + live: a heap below headroom collects as if it were
// headroom large, a larger heap exactly as Go's default would. The extra
// memory is bounded by headroom, whatever the load. On partnerbench's
// commands scenario a 64 MiB headroom cut the CPU per create by ~10 % (see
// cmd/partnerbench/HISTORY.md).
//
// Start also keeps a soft memory limit (runtime/debug.SetMemoryLimit): the
// heap goal above stays under limit, unless the live heap needs more, when
// the limit is live × 1.5 (never a tighter pacing than GOGC=50, so a large
// live heap does not make the collector run without pause). A rebuild at
// start (every partner folded in memory, see projections.Rebuild) doubles
// a 130 MB live heap by Go's pacing: the limit takes that peak from ~400 MB
// of RSS to under 300 MB at no measured cost in time (cmd/partnerbench/HISTORY.md).
//
// An operator's own GOGC or GOMEMLIMIT wins: Start does nothing when either
// is set in the environment.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// maxPercent bounds GOGC for a nearly empty heap (a process just started).
const maxPercent = 10_000

// Limit is the soft memory limit for a heap of live bytes: limit, or
// live × 1.5 when that is more.
func Limit(live, limit uint64) uint64 { return max(limit, live+live/2) }

// Percent is the GOGC that gives a heap of live bytes the goal
// live + max(live, headroom).
func Percent(live, headroom uint64) int {
	if live == 0 {
		return maxPercent
	}
	if headroom <= live {
		return 100
	}
	return int(min(maxPercent, headroom*100/live))
}

var (
	mu      sync.Mutex
	running *tuner
)

type tuner struct {
	headroom uint64
	limit    uint64           // 0: none
	sample   []metrics.Sample // touched by retune only: cleanups run one at a time

	mu        sync.Mutex // orders retune's SetGCPercent against stop's
	stopped   bool
	last      int
	lastLimit uint64
}

// Start retunes GOGC after every collection for a headroom of headroomMiB,
// and the memory limit for limitMiB (0: none), until the returned stop is
// called, which restores the GOGC and limit there were. It does nothing
// (and stop does nothing) when headroomMiB is 0 or less, when GOGC or
// GOMEMLIMIT is set in the environment, or when a tuner already runs.
func Start(headroomMiB, limitMiB int) (stop func()) {
	if headroomMiB <= 0 || os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	headroom := uint64(headroomMiB) << 20
	mu.Lock()
	if running != nil {
		mu.Unlock()
		return func() {}
	}
	t := &tuner{headroom: headroom, last: 100, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	if limitMiB > 0 {
		t.limit = uint64(limitMiB) << 20
	}
	running = t
	mu.Unlock()
	before := debug.SetGCPercent(100)
	beforeLimit := debug.SetMemoryLimit(-1)
	t.retune()
	t.arm()
	return func() {
		mu.Lock()
		if running == t {
			running = nil
		}
		mu.Unlock()
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.stopped {
			t.stopped = true
			debug.SetGCPercent(before)
			debug.SetMemoryLimit(beforeLimit)
		}
	}
}

// arm attaches a cleanup to a fresh object nothing refers to: the next
// collection frees it, and the cleanup retunes and arms the one after.
// (The object is 64 bytes so that it is not batched with others by the
// tiny allocator, whose objects can outlive a collection.)
func (t *tuner) arm() {
	runtime.AddCleanup(new([64]byte), func(t *tuner) {
		if t.retune() {
			t.arm()
		}
	}, t)
}

// retune sets GOGC for the live heap the last collection left; false once
// stopped.
func (t *tuner) retune() bool {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return false
	}
	live := t.sample[0].Value.Uint64()
	p := Percent(live, t.headroom)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	if t.limit > 0 {
		if l := Limit(live, t.limit); l > t.lastLimit+t.lastLimit/16 || l+t.lastLimit/16 < t.lastLimit {
			debug.SetMemoryLimit(int64(l))
			t.lastLimit = l
		}
	}
	// SetGCPercent recomputes the pacing under the heap lock: skip changes
	// that would hardly move the goal.
	if d := p - t.last; d > t.last/16 || -d > t.last/16 {
		debug.SetGCPercent(p)
		t.last = p
	}
	return true
}

// Current is the GOGC the running tuner set last (0 when none runs).
func Current() int {
	mu.Lock()
	t := running
	mu.Unlock()
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}
