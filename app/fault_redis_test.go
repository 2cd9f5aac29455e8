//go:build faults

package app_test

import (
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/testenv"
)

// redisFault runs a write load against partnerd on a private Redis, breaks
// Redis with fault while the projections are busy, heals it, and checks
// that /readyz said not-ready meanwhile, that every acknowledged write is in
// the log, and that the read models converge by themselves to exactly what
// a rebuild from the log gives.
func redisFault(t *testing.T, fault func(t *testing.T, srv *testenv.RedisServer, base string), kafka ...string) {
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
	c := newClient(h.base, h.key)
	_, progress, stop := load(c, 8, "p")
	defer stop()
	for progress() < 300 {
		time.Sleep(10 * time.Millisecond)
	}
	fault(t, srv, h.srv.URL)
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
	converges(t, h.app.Redis, h.app.Store, scratchRedis(t, srv), 60*time.Second)
	t.Logf("read models converged %s after the load stopped", time.Since(began))
	waitReadyz(t, h.srv.URL, 200, 30*time.Second)
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

func restartRedis(t *testing.T, srv *testenv.RedisServer, base string) {
	srv.Kill()
	waitReadyz(t, base, 503, 10*time.Second)
	time.Sleep(time.Second)
	srv.Start()
	took := waitReadyz(t, base, 200, 30*time.Second)
	t.Logf("ready again %s after Redis restarted", took)
}

// Redis stops answering for 30 s (frozen with SIGSTOP: connections hang as
// in a network partition, nothing is refused).
func TestFaultRedisUnreachableFor30s(t *testing.T) {
	redisFault(t, func(t *testing.T, srv *testenv.RedisServer, base string) {
		srv.Pause()
		defer srv.Resume()
		began := time.Now()
		waitReadyz(t, base, 503, 10*time.Second)
		for time.Since(began) < 30*time.Second {
			if code, body := readyz(base); code != 503 {
				t.Fatalf("/readyz answered %d while Redis was unreachable: %s", code, body)
			}
			time.Sleep(time.Second)
		}
		srv.Resume()
		took := waitReadyz(t, base, 200, 30*time.Second)
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

func restartRedisEmpty(t *testing.T, srv *testenv.RedisServer, base string) {
	srv.RestartEmpty()
	waitReadyz(t, base, 503, 10*time.Second)
	took := waitReadyz(t, base, 200, 60*time.Second)
	t.Logf("ready again %s after Redis came back empty", took)
}
