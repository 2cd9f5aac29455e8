//go:build faults

package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/internal/testenv"
)

// appendPartners writes n partners, each created and then renamed, to the
// log directly (as the CLI or another instance would), with the app down.
func appendPartners(t *testing.T, cfg app.Config, prefix string, n int) {
	t.Helper()
	store, err := app.OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cmds := commands.New(commands.Deps{Store: store})
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				id := fmt.Sprintf("%s%05d", prefix, i)
				if _, _, err := cmds.CreatePartner.Handle(context.Background(), domain.NewPartner{ProgramID: "acme", PartnerID: id,
					Profile: domain.Profile{Name: "P " + id, RelationshipType: "direct", Country: "DE"}}, commands.Meta{Actor: "test"}); err != nil {
					t.Error(err)
					continue
				}
				patch := domain.Patch{"name": json.RawMessage(`"Q ` + id + `"`)}
				if _, _, err := cmds.UpdatePartner.Handle(context.Background(), "acme", id, patch, commands.Meta{Actor: "test"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
}

// subscriberStopsMidBatch stops partnerd's projection subscribers (the
// whole app, gracefully) while they are working through a backlog, then
// starts partnerd again: the read models must converge to exactly the log,
// with nothing lost and nothing applied twice.
func subscriberStopsMidBatch(t *testing.T, cfg app.Config, scratch redis.UniversalClient) {
	h := start(t, cfg)
	h.stop()
	const n = 2000
	appendPartners(t, cfg, "b", n)

	a, err := app.New(cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Close()
		t.Fatal(err)
	}
	var partners interface{ Applied() uint64 }
	for _, r := range a.Runners {
		if r.Projection().Name() == "partners" {
			partners = r
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for partners.Applied() < n/4 {
		if time.Now().After(deadline) {
			a.Close()
			t.Fatalf("partners applied only %d events in 60 s", partners.Applied())
		}
		time.Sleep(time.Millisecond)
	}
	a.Close()
	applied := partners.Applied()
	t.Logf("stopped after the partners projection applied %d of %d events", applied, 2*n)
	if applied >= 2*n {
		t.Fatal("the backlog was drained before the stop: the test did not stop anything mid-batch")
	}

	h = startCatchingUp(t, cfg)
	began := time.Now()
	converges(t, h.app.Redis, h.app.Store, scratch, 60*time.Second)
	t.Logf("converged %s after the restart", time.Since(began))
	if r := h.do("GET", "/partners?limit=1", nil); r.json(t)["total"] != float64(n) {
		t.Fatalf("total = %v, want %d: %d %s", r.json(t)["total"], n, r.status, r.body)
	}
}

// The in-process bus: the relay must not count as published what a
// stopping subscriber never applied.
func TestFaultInProcessSubscriberStopsMidBatch(t *testing.T) {
	srv := testenv.StartRedisServer(t)
	subscriberStopsMidBatch(t, config(t, srv.URL(0)), scratchRedis(t, srv))
}

// Kafka: the consumer group stops mid-batch; messages it took but did not
// commit are delivered again to the next consumer, and the version guards
// make the redelivery harmless.
func TestFaultKafkaSubscriberStopsMidBatch(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	srv := testenv.StartRedisServer(t)
	cfg := config(t, srv.URL(0))
	cfg.KafkaBrokers = brokers
	cfg.KafkaNamespace = testenv.UniquePrefix(t) + "."
	subscriberStopsMidBatch(t, cfg, scratchRedis(t, srv))
}
