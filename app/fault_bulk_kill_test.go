//go:build faults

package app_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/internal/testenv"
	"github.com/partnerd/partnerd/projections"
)

// startBinary runs the partnerd binary and waits until it serves.
func startBinary(t *testing.T, bin string, env []string) *proc {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), env...), "PARTNERD_ADDR="+addr)
	p := &proc{cmd: cmd, base: "http://" + addr, log: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _, _ := p.call(t, "GET", "/readyz", "", nil); code != 0 {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("partnerd did not come up:\n%s", p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// caughtUp waits until the relay and every projection of p reached the
// log head, and returns the head.
func caughtUp(t *testing.T, p *proc, key string, within time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, _, st := p.call(t, "GET", "/v1/projections", key, nil)
		items, _ := st["items"].([]any)
		done := code == 200 && len(items) > 1
		var head float64
		for _, it := range items {
			m := it.(map[string]any)
			if m["lag_events"] != 0.0 {
				done = false
			}
			fmt.Sscan(fmt.Sprint(m["head"]), &head)
		}
		if done {
			return head
		}
		if time.Now().After(deadline) {
			t.Fatalf("partnerd did not catch up within %s: %d %v\n%s", within, code, st, p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SIGKILL partnerd while a bulk action over thousands of partners runs
// (and single writes go on beside it). Started again, it catches up by
// itself; no acknowledged write is lost; a retry of the bulk action
// completes it, changing each partner exactly once; and the read models
// equal a from-scratch replay of the log.
func TestFaultKillDuringBulkAction(t *testing.T) {
	srv := testenv.StartRedisServer(t)
	bin := filepath.Join(t.TempDir(), "partnerd")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/partnerd").CombinedOutput(); err != nil {
		t.Fatalf("build partnerd: %v\n%s", err, out)
	}
	cfg := config(t, srv.URL(0))
	const n = 3000
	appendPartners(t, cfg, "k", n)
	const key = "kill-bulk-key-0123456789"
	env := []string{"PARTNERD_DATA=" + cfg.Data, "PARTNERD_REDIS_URL=" + cfg.RedisURL, "PARTNERD_KAFKA_BROKERS=",
		"PARTNERD_BOOTSTRAP_PROGRAM=acme", "PARTNERD_BOOTSTRAP_KEY=" + key}
	p := startBinary(t, bin, env)
	before := caughtUp(t, p, key, 60*time.Second)
	if code, _, body := p.call(t, "POST", "/v1/programs/acme/groups", key, map[string]any{"id": "vip", "name": "VIP"}); code != 201 {
		t.Fatal(code, body)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("k%05d", i)
	}
	bulk := map[string]any{"partner_ids": ids, "add": []string{"vip"}}
	c := newClient(p.base+"/v1/programs/acme", key)
	answered := make(chan int, 1)
	go func() { code, _, _ := c.send("POST", "/bulk/groups", bulk); answered <- code }()
	_, _, stopLoad := load(c, 4, "s")
	for {
		_, _, st := p.call(t, "GET", "/v1/projections", key, nil)
		var head float64
		if items, _ := st["items"].([]any); len(items) > 0 {
			fmt.Sscan(fmt.Sprint(items[0].(map[string]any)["head"]), &head)
		}
		if head >= before+300 {
			break
		}
		select {
		case code := <-answered:
			t.Fatalf("the bulk action finished (%d) before partnerd was killed", code)
		default:
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	l := stopLoad()
	if code := <-answered; code != 0 {
		t.Fatalf("the killed bulk action was answered %d", code)
	}

	p = startBinary(t, bin, env)
	began := time.Now()
	caughtUp(t, p, key, 60*time.Second)
	t.Logf("restarted partnerd caught up by itself in %s", time.Since(began))
	waitReadyz(t, p.base, 200, 30*time.Second)
	// The client retries the bulk action: partners the killed run changed
	// are unchanged now, the others are changed.
	code, _, res := p.call(t, "POST", "/v1/programs/acme/bulk/groups", key, bulk)
	if code != 200 {
		t.Fatalf("retried bulk: %d %v", code, res)
	}
	status := map[string]int{}
	for _, r := range res["results"].([]any) {
		status[r.(map[string]any)["status"].(string)]++
	}
	t.Logf("retried bulk: %v", status)
	if status["unchanged"] == 0 || status["ok"] == 0 || status["ok"]+status["unchanged"] != n {
		t.Fatalf("retried bulk results %v: want some unchanged (done before the kill) and the rest ok", status)
	}
	caughtUp(t, p, key, 60*time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("partnerd after SIGTERM: %v\n%s", err, p.log)
	}

	store, err := app.OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	acked, failed := l.counts()
	t.Logf("single writes beside the bulk: %d acknowledged, failed by status %v", acked, failed)
	checkAcked(t, store, l)
	// Each bulk partner joined vip by exactly one event.
	for _, id := range ids {
		evs, err := store.ReadStream(t.Context(), domain.PartnerStream("acme", id), 0, eventstore.Forwards, 100)
		if err != nil {
			t.Fatal(err)
		}
		joins := 0
		for _, e := range evs {
			if e.Type == domain.TypePartnerGroupsChanged {
				joins++
			}
		}
		if joins != 1 {
			t.Fatalf("%s has %d group changes in the log, want 1", id, joins)
		}
	}
	live := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 0, DisableIdentity: true})
	defer live.Close()
	converges(t, live, store, scratchRedis(t, srv), 10*time.Second)
	gen, err := live.Get(t.Context(), projections.GenerationKey("partners")).Int64()
	if err != nil {
		t.Fatal(err)
	}
	vip := projections.NewKeyspace("partners", gen, "acme").FilterKey("group", "vip")
	for _, id := range ids {
		if ok, err := live.SIsMember(t.Context(), vip, id).Result(); err != nil || !ok {
			t.Fatalf("%s is not in the vip filter set (%v)", id, err)
		}
	}
}
