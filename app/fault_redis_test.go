//go:build faults

package app_test

import (
	"slices"
	"testing"
	"time"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/internal/testenv"
	"github.com/partnerd/partnerd/projections"
)

// redisFault runs a write load against partnerd on a private Redis, breaks
// Redis with fault while the projections are busy, heals it, and checks
// that /readyz said not-ready meanwhile, that every acknowledged write is in
// the log, and that the read models converge by themselves to exactly what
// a rebuild from the log gives.
func redisFault(t *testing.T, fault func(t *testing.T, srv *testenv.RedisServer, h *harness), kafka ...string) {
	redisFaultLoad(t, 8, fault, kafka...)
}

// redisFaultLoad is redisFault with a load of the given number of writers.
func redisFaultLoad(t *testing.T, writers int, fault func(t *testing.T, srv *testenv.RedisServer, h *harness), kafka ...string) {
	srv := testenv.StartRedisServer(t)
	cfg := config(t, srv.URL(0))
	if len(kafka) > 0 {
		cfg.KafkaBrokers = kafka
		cfg.KafkaNamespace = testenv.UniquePrefix(t) + "."
	}
	h := start(t, cfg)
	if r := h.do("POST", "/groups", map[string]any{"id": "vip", "name": "VIP"}); r.status != 201 {
		t.Fatal(r.status, string(r.body))
	}
	// The load's partners enter this segment when created (DE) and leave
	// it when updated (NL): membership events flow throughout.
	if r := h.do("POST", "/segments", map[string]any{"id": "de", "name": "DE", "conditions": rows(row("country", "any_of", "DE"))}); r.status != 201 {
		t.Fatal(r.status, string(r.body))
	}
	c := newClient(h.base, h.key)
	_, progress, stop := load(c, writers, "p")
	defer stop()
	for progress() < 300 {
		time.Sleep(10 * time.Millisecond)
	}
	fault(t, srv, h)
	healed := progress()
	deadline := time.Now().Add(30 * time.Second)
	for progress() < healed+300 {
		if time.Now().After(deadline) {
			n, failed := stop().counts()
			t.Fatalf("writes did not resume after Redis came back: %d acknowledged, failures %v", n, failed)
		}
		time.Sleep(10 * time.Millisecond)
	}
	l := stop()
	n, failed := l.counts()
	t.Logf("%d writes acknowledged, failed by status: %v", n, failed)
	if failed[500] > 0 {
		t.Errorf("%d writes answered 500 while Redis was down: a dependency outage is 503", failed[500])
	}
	if failed[401] > 0 {
		t.Errorf("%d writes with a valid API key answered 401: while Redis is down or rebuilt, that is 503", failed[401])
	}
	checkAcked(t, h.app.Store, l)
	began := time.Now()
	waitReadyz(t, h.srv.URL, 200, 30*time.Second)
	// Membership events are still being appended to the log after the
	// load stops; compare with a rebuild once they are all in.
	membershipStreamAgrees(t, h, "de", 60*time.Second)
	outboxDrained(t, h, 30*time.Second)
	converges(t, h.app.Redis, h.app.Store, scratchRedis(t, srv), 60*time.Second)
	t.Logf("read models converged %s after the load stopped", time.Since(began))
	// Announcements made while the projections caught up are in the
	// stream now: it still repeats nothing and agrees.
	outboxDrained(t, h, 30*time.Second)
	membershipStreamAgrees(t, h, "de", 30*time.Second)
}

// outboxDrained waits until the program's segment outbox is empty and
// every event in the log is projected.
func outboxDrained(t *testing.T, h *harness, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n, err := h.app.Redis.LLen(t.Context(), projections.SegmentOutKeys("acme").Outbox()).Result()
		if err == nil && n == 0 {
			if err := h.app.WaitCaughtUp(t.Context()); err != nil {
				t.Fatal(err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment outbox not drained within %s: %d entries, %v", timeout, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// membershipStreamAgrees waits until a segment's members stream, folded,
// equals its current members, and checks that the stream never repeats
// itself: seqs run 1, 2, 3… (h.membership) and every event changes the
// folded membership (an enter of a partner not in it, a leave of one in
// it), so whatever happened to Redis, downstream was told each change
// exactly once.
func membershipStreamAgrees(t *testing.T, h *harness, seg string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		in := map[string]bool{}
		var repeated []string
		stream := h.membership(seg)
		for _, e := range stream {
			p, enter := e[1:], e[0] == '+'
			if in[p] == enter {
				repeated = append(repeated, e)
			}
			in[p] = enter
		}
		if len(repeated) > 0 {
			t.Fatalf("members stream of %s repeats announcements: %v", seg, repeated)
		}
		var members []string
		for p, ok := range in {
			if ok {
				members = append(members, p)
			}
		}
		current, err := h.app.Queries.SegmentMemberIDs(t.Context(), "acme", seg)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(members)
		slices.Sort(current)
		if slices.Equal(members, current) {
			t.Logf("members stream of %s: %d events, %d members, agrees with the membership", seg, len(stream), len(current))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("members stream of %s (%d events) folds to %d members, the segment has %d", seg, len(stream), len(members), len(current))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Redis is killed and restarted while partners are being projected.
func TestFaultRedisRestartMidProjection(t *testing.T) {
	redisFault(t, restartRedis)
}

// The same with Kafka as the bus: the consumers nack and get the messages
// again; the relay's lease is lost and taken again.
func TestFaultRedisRestartMidProjectionKafka(t *testing.T) {
	redisFault(t, restartRedis, testenv.KafkaBrokers(t)...)
}

func restartRedis(t *testing.T, srv *testenv.RedisServer, h *harness) {
	srv.Kill()
	waitReadyz(t, h.srv.URL, 503, 10*time.Second)
	time.Sleep(time.Second)
	srv.Start()
	took := waitReadyz(t, h.srv.URL, 200, 30*time.Second)
	t.Logf("ready again %s after Redis restarted", took)
}

// Redis stops answering for 30 s (frozen with SIGSTOP: connections hang as
// in a network partition, nothing is refused).
func TestFaultRedisUnreachableFor30s(t *testing.T) {
	redisFault(t, func(t *testing.T, srv *testenv.RedisServer, h *harness) {
		srv.Pause()
		defer srv.Resume()
		began := time.Now()
		waitReadyz(t, h.srv.URL, 503, 10*time.Second)
		for time.Since(began) < 30*time.Second {
			if code, body := readyz(h.srv.URL); code != 503 {
				t.Fatalf("/readyz answered %d while Redis was unreachable: %s", code, body)
			}
			time.Sleep(time.Second)
		}
		srv.Resume()
		took := waitReadyz(t, h.srv.URL, 200, 30*time.Second)
		t.Logf("ready again %s after Redis came back", took)
	})
}

// Redis comes back empty (no persistence, or a failover to an empty
// replica): guards, generation pointers, API keys and the relay checkpoint
// are gone. partnerd notices, says not ready, rebuilds every read model
// from the log by itself and serves again.
func TestFaultRedisComesBackEmpty(t *testing.T) {
	redisFault(t, restartRedisEmpty)
}

// The same with Kafka: the relay republishes the log (at least once) and
// the consumers' redeliveries are skipped by the rebuilt guards.
func TestFaultRedisComesBackEmptyKafka(t *testing.T) {
	redisFault(t, restartRedisEmpty, testenv.KafkaBrokers(t)...)
}

// Twice: the second rebuild must not build into a generation number a
// live runner was still writing to, nor re-announce old membership
// changes.
func TestFaultRedisComesBackEmptyTwice(t *testing.T) {
	redisFaultLoad(t, 3, func(t *testing.T, srv *testenv.RedisServer, h *harness) {
		restartRedisEmpty(t, srv, h)
		time.Sleep(time.Second)
		restartRedisEmpty(t, srv, h)
	})
}

func restartRedisEmpty(t *testing.T, srv *testenv.RedisServer, h *harness) {
	epoch := h.app.Redis.Get(t.Context(), app.EpochKey).Val()
	srv.RestartEmpty()
	// Not ready from the moment the data is gone (until partnerd notices,
	// within a second, and while it rebuilds); a rebuild of a small log
	// may end before a poll sees it, so only a 200 in between is an error.
	if code, body := readyz(h.srv.URL); code != 503 && h.app.Redis.Get(t.Context(), app.EpochKey).Val() == "" {
		t.Errorf("/readyz with the read models gone: %d %s", code, body)
	}
	// Once partnerd noticed, a query of the read models is a 503 until
	// they are rebuilt, not a 200 with part of them.
	time.Sleep(1500 * time.Millisecond)
	r := h.do("GET", "/partners?limit=1", nil)
	if code, _ := readyz(h.srv.URL); code == 503 && r.status != 503 {
		t.Errorf("GET /partners while the read models are rebuilt: %d %s", r.status, r.body)
	}
	took := waitRebuilt(t, h, epoch, 2*time.Minute)
	t.Logf("ready again %s after Redis came back empty", took)
}

// waitRebuilt waits until partnerd set a new Redis epoch (it noticed the
// loss of the one given) and is ready again.
func waitRebuilt(t *testing.T, h *harness, epoch string, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		now := h.app.Redis.Get(t.Context(), app.EpochKey).Val()
		if code, _ := readyz(h.srv.URL); now != "" && now != epoch && code == 200 {
			return time.Since(began)
		}
		if time.Since(began) > within {
			code, body := readyz(h.srv.URL)
			t.Fatalf("not rebuilt within %s after Redis lost its data: epoch %q (was %q), /readyz %d %s", within, now, epoch, code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// With nothing written, a Redis that comes back empty changes no segment
// membership, so downstream is told nothing new: the members stream, which
// the drainer restores from and the rebuild reconciles with, gets no event.
// Each partner enters, leaves and enters again, so a replay that announced
// against an empty or a restored set would show (an audit saw it at
// restarts, once a segment had some history).
func TestFaultRedisComesBackEmptyAnnouncesNothingNew(t *testing.T) {
	redisEmptyAnnouncesNothingNew(t)
}

// The same with Kafka, where the relay republishes the whole log (its
// checkpoint was in Redis) and the live runners see it all again.
func TestFaultRedisComesBackEmptyAnnouncesNothingNewKafka(t *testing.T) {
	redisEmptyAnnouncesNothingNew(t, testenv.KafkaBrokers(t)...)
}

func redisEmptyAnnouncesNothingNew(t *testing.T, kafka ...string) {
	srv := testenv.StartRedisServer(t)
	cfg := config(t, srv.URL(0))
	if len(kafka) > 0 {
		cfg.KafkaBrokers = kafka
		cfg.KafkaNamespace = testenv.UniquePrefix(t) + "."
	}
	h := start(t, cfg)
	const partners = 100
	h.enterLeaveEnter("q", partners)
	for deadline := time.Now().Add(60 * time.Second); len(h.membership("de")) < 3*partners && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	outboxDrained(t, h, 30*time.Second)
	before := len(h.membership("de"))
	if before != 3*partners {
		t.Fatalf("members stream before: %d events, want %d (entered, left, entered again)", before, 3*partners)
	}
	epoch := h.app.Redis.Get(t.Context(), app.EpochKey).Val()
	srv.RestartEmpty()
	waitRebuilt(t, h, epoch, time.Minute)
	time.Sleep(3 * time.Second) // the drainer and the reconcile have run
	outboxDrained(t, h, 30*time.Second)
	if after := len(h.membership("de")); after != before {
		t.Fatalf("members stream after Redis came back empty: %d events, was %d: old changes announced again", after, before)
	}
	membershipStreamAgrees(t, h, "de", 30*time.Second)
}
