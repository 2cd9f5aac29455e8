package relay_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/internal/testenv"
	"github.com/partnerd/partnerd/relay"
)

type node struct {
	relay *relay.Relay
	lease *relay.Lease
	got   func() []eventstore.Position
	stop  context.CancelFunc
	done  chan struct{}
}

func startNode(t *testing.T, store eventstore.Store, rdb redis.UniversalClient, prefix string) *node {
	b := bus.NewInProcess(4, watermill.NopLogger{})
	got, stopSub := collect(t, b)
	t.Cleanup(stopSub)
	n := &node{
		relay: &relay.Relay{Store: store, Publisher: b, Checkpoints: relay.RedisCheckpoints{Client: rdb, Key: prefix + ":checkpoint"}},
		lease: &relay.Lease{Client: rdb, Key: prefix + ":lease", TTL: 300 * time.Millisecond},
		got:   got,
		done:  make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	go func() { defer close(n.done); _ = n.lease.Run(ctx, n.relay) }()
	t.Cleanup(func() { cancel(); <-n.done })
	return n
}

func TestLeaseOneRelayPublishesAndFencesTheOldLeader(t *testing.T) {
	for name, rdb := range map[string]func(testing.TB) *redis.Client{"real redis": testenv.Redis, "embedded redis": testenv.Miniredis} {
		t.Run(name, func(t *testing.T) {
			rdb := rdb(t)
			prefix := "test:" + strings.ToLower(testenv.UniquePrefix(t))
			store, err := embedded.Open(t.TempDir(), embedded.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			appendN(t, store, 100)
			a := startNode(t, store, rdb, prefix)
			b := startNode(t, store, rdb, prefix)
			cp := relay.RedisCheckpoints{Client: rdb, Key: prefix + ":checkpoint"}
			waitFor(t, func() bool { p, _ := cp.Load(context.Background()); return p == 100 })
			la, lb := len(a.got()), len(b.got())
			if (la == 0) == (lb == 0) {
				t.Fatalf("relay A published %d and B %d: exactly one must publish", la, lb)
			}
			leader, follower := a, b
			if la == 0 {
				leader, follower = b, a
			}
			// The leader's lease expires and the leader is gone (crashed, or
			// paused for good): the standby takes over.
			if err := rdb.Del(context.Background(), prefix+":lease").Err(); err != nil {
				t.Fatal(err)
			}
			leader.stop()
			<-leader.done
			waitFor(t, func() bool {
				h, _ := follower.lease.Holder(context.Background())
				return h != ""
			})
			appendN(t, store, 50)
			waitFor(t, func() bool { p, _ := cp.Load(context.Background()); return p == 150 })
			if len(follower.got()) == 0 {
				t.Fatal("the new leader published nothing")
			}
			seen := map[eventstore.Position]bool{}
			for _, p := range append(leader.got(), follower.got()...) {
				seen[p] = true
			}
			for p := eventstore.Position(1); p <= 150; p++ {
				if !seen[p] {
					t.Fatalf("position %d was never published", p)
				}
			}
			// Fencing: someone else holds the lease now (the old leader has
			// not noticed yet). New events may still be published by the old
			// leader (at least once), but its checkpoint writes are refused.
			if err := rdb.Set(context.Background(), prefix+":lease", "intruder:999999", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			appendN(t, store, 10)
			time.Sleep(500 * time.Millisecond)
			if p, _ := cp.Load(context.Background()); p != 150 {
				t.Fatalf("checkpoint moved to %d while another process held the lease", p)
			}
		})
	}
}
