package gctune

import (
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercentKeepsTheGoalAtLivePlusTheLargerOfLiveAndHeadroom(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{live: 16 * mib, headroom: 64 * mib, want: 400},  // goal 80 MiB = 16 + 64
		{live: 32 * mib, headroom: 64 * mib, want: 200},  // goal 96 MiB
		{live: 64 * mib, headroom: 64 * mib, want: 100},  // Go's own pacing from here on
		{live: 500 * mib, headroom: 64 * mib, want: 100}, // never below it
		{live: 1, headroom: 64 * mib, want: maxPercent},  // a nearly empty heap is bounded
		{live: 0, headroom: 64 * mib, want: maxPercent},
	} {
		if got := Percent(c.live, c.headroom); got != c.want {
			t.Errorf("Percent(%d MiB, %d MiB) = %d, want %d", c.live/mib, c.headroom/mib, got, c.want)
		}
	}
}

// gcPercent reads the GOGC in force (SetGCPercent returns the old one).
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestStartRetunesAfterCollectionsAndStopRestores(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetGCPercent(150)
	defer debug.SetGCPercent(before)

	// A test binary's live heap is a few MiB: with 64 MiB of headroom the
	// goal is 64 MiB more, far above Go's 100 %.
	stop := Start(64, 0)
	defer stop()
	if again := Start(64, 0); again == nil {
		t.Fatal("a second Start returned no stop")
	} else {
		again() // must not stop the first
	}
	waitFor := func(what string, ok func(int) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok(gcPercent()) {
			if time.Now().After(deadline) {
				t.Fatalf("GOGC is %d after collections, want %s", gcPercent(), what)
			}
			runtime.GC()
			time.Sleep(time.Millisecond)
		}
	}
	small := func(p int) bool { return p >= 400 }
	waitFor(">= 400 for a small heap with 64 MiB of headroom", small)
	if Current() != gcPercent() {
		t.Fatalf("Current() = %d, GOGC = %d", Current(), gcPercent())
	}
	// Each collection retunes, not only the first: a live heap past the
	// headroom gets Go's own pacing, and a small one again the headroom.
	for round := range 2 {
		ballast := make([]byte, 128<<20)
		waitFor(fmt.Sprintf("100 with a 128 MiB live heap (round %d)", round), func(p int) bool { return p == 100 })
		runtime.KeepAlive(ballast)
		ballast = nil
		waitFor(fmt.Sprintf(">= 400 once the ballast is garbage (round %d)", round), small)
	}

	stop()
	if p := gcPercent(); p != 150 {
		t.Fatalf("after stop GOGC is %d, want the 150 there was", p)
	}
	// Stopped for good: collections no longer touch GOGC.
	debug.SetGCPercent(170)
	for range 3 {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if p := gcPercent(); p != 170 {
		t.Fatalf("a stopped tuner set GOGC to %d", p)
	}
	if Current() != 0 {
		t.Fatalf("Current() = %d with no tuner running", Current())
	}
}

func TestAnOperatorsGOGCOrGOMEMLIMITWins(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv("GOGC", "")
			t.Setenv("GOMEMLIMIT", "")
			t.Setenv(env, map[string]string{"GOGC": "100", "GOMEMLIMIT": "1GiB"}[env])
			before := debug.SetGCPercent(130)
			defer debug.SetGCPercent(before)
			stop := Start(1024, 64)
			defer stop()
			for range 3 {
				runtime.GC()
				time.Sleep(time.Millisecond)
			}
			if p := gcPercent(); p != 130 || Current() != 0 {
				t.Fatalf("with %s set, GOGC became %d (tuner %d)", env, p, Current())
			}
			if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
				t.Fatalf("with %s set, the memory limit became %d", env, l)
			}
		})
	}
}

func TestLimitIsTheConfiguredOneUnlessTheLiveHeapNeedsMore(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct{ live, limit, want uint64 }{
		{live: 50 * mib, limit: 240 * mib, want: 240 * mib},
		{live: 160 * mib, limit: 240 * mib, want: 240 * mib},
		{live: 200 * mib, limit: 240 * mib, want: 300 * mib}, // never tighter than GOGC=50
		{live: 0, limit: 240 * mib, want: 240 * mib},
	} {
		if got := Limit(c.live, c.limit); got != c.want {
			t.Errorf("Limit(%d MiB, %d MiB) = %d MiB, want %d", c.live/mib, c.limit/mib, got/mib, c.want/mib)
		}
	}
}

// Start sets the memory limit, raises it for a live heap that needs more,
// lowers it again, and stop restores the one there was.
func TestStartKeepsTheMemoryLimitAndStopRestoresIt(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	const mib = 1 << 20
	before := debug.SetMemoryLimit(-1)
	stop := Start(64, 64)
	limit := func() int64 { return debug.SetMemoryLimit(-1) }
	waitFor := func(what string, ok func(int64) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok(limit()) {
			if time.Now().After(deadline) {
				t.Fatalf("memory limit %d MiB, want %s", limit()/mib, what)
			}
			runtime.GC()
			time.Sleep(time.Millisecond)
		}
	}
	waitFor("64 MiB", func(l int64) bool { return l == 64*mib })
	ballast := make([]byte, 128<<20)
	waitFor("about 192 MiB for a 128 MiB live heap", func(l int64) bool { return l >= 190*mib && l <= 200*mib })
	runtime.KeepAlive(ballast)
	ballast = nil
	waitFor("64 MiB once the ballast is garbage", func(l int64) bool { return l == 64*mib })
	stop()
	if l := limit(); l != before {
		t.Fatalf("after stop the memory limit is %d, want the %d there was", l, before)
	}
}
