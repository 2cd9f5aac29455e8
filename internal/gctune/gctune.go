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
// BENCHMARKS.md).
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
	sample   []metrics.Sample // touched by retune only: cleanups run one at a time

	mu      sync.Mutex // orders retune's SetGCPercent against stop's
	stopped bool
	last    int
}

// Start retunes GOGC after every collection for a headroom of headroomMiB
// until the returned stop is called, which restores the GOGC there was. It
// does nothing (and stop does nothing) when headroomMiB is 0 or less, when
// GOGC or GOMEMLIMIT is set in the environment, or when a tuner already runs.
func Start(headroomMiB int) (stop func()) {
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
	running = t
	mu.Unlock()
	before := debug.SetGCPercent(100)
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
	p := Percent(t.sample[0].Value.Uint64(), t.headroom)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
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
