//go:build faults

package app_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/testenv"
)

const dbFaults = 11

// brokerPID is the process of the test broker (scripts/kafka.sh exports its
// pidfile).
func brokerPID(t *testing.T) int {
	f := os.Getenv("PARTNERD_TEST_KAFKA_PIDFILE")
	raw, err := os.ReadFile(f)
	if f == "" || err != nil {
		if testenv.InCI() {
			t.Fatalf("PARTNERD_TEST_KAFKA_PIDFILE (%q) is not readable: the fault test must pause the broker", f)
		}
		t.Skip("PARTNERD_TEST_KAFKA_PIDFILE not set: start the broker with scripts/kafka.sh")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// With Kafka down, commands still succeed (the log is the outbox); when it
// comes back the relay drains the backlog, in order, and the read models
// catch up without any manual step.
func TestFaultKafkaDownCommandsSucceedThenDrain(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	kcat := testenv.Kcat(t)
	pid := brokerPID(t)
	cfg := config(t, redisDB(t, dbFaults))
	cfg.KafkaBrokers = brokers
	cfg.KafkaNamespace = testenv.UniquePrefix(t) + "."
	h := start(t, cfg)
	if r := h.do("POST", "/partners", map[string]any{"partner_id": "before", "name": "B", "relationship_type": "direct"}); r.status != 201 {
		t.Fatal(r.status)
	}

	// Kafka stops answering (the process is frozen: connections hang, as
	// with a partition, rather than being refused).
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	tokens := map[string]string{}
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("p%02d", i%10)
		began := time.Now()
		var r response
		if i < 10 {
			r = h.do("POST", "/partners", map[string]any{"partner_id": id, "name": "P", "relationship_type": "direct"})
		} else {
			r = h.do("PATCH", "/partners/"+id, map[string]any{"name": "P2"})
		}
		if r.status != 201 && r.status != 200 {
			t.Fatalf("command %d while Kafka is down: %d %s", i, r.status, r.body)
		}
		if d := time.Since(began); d > 2*time.Second {
			t.Fatalf("command %d took %s while Kafka was down", i, d)
		}
		tokens[id] = r.header.Get("X-Consistency-Token")
	}
	time.Sleep(2 * time.Second)
	head, _ := h.app.Store.Head(t.Context())
	if h.app.Relay.Position() >= head {
		t.Fatalf("the relay claims to have published up to %d while Kafka was frozen", h.app.Relay.Position())
	}
	resume()

	for id, tok := range tokens {
		deadline := time.Now().Add(90 * time.Second)
		for {
			g := h.do("GET", "/partners/"+id, nil, "X-Consistency-Token", tok)
			if g.status == 200 && g.json(t)["name"] == "P2" && g.json(t)["version"] == 2.0 {
				break
			}
			if g.status != 503 || time.Now().After(deadline) {
				t.Fatalf("partner %s after Kafka came back: %d %s", id, g.status, g.body)
			}
		}
	}
	// On the topic, each partner's records are in log order.
	out, err := exec.Command(kcat, "-b", strings.Join(brokers, ","), "-C", "-t", cfg.KafkaNamespace+"partnerd.partners",
		"-o", "beginning", "-e", "-J", "-q").Output()
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int{}
	records := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var rec struct {
			Key     string   `json:"key"`
			Headers []string `json:"headers"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(rec.Headers); i += 2 {
			if rec.Headers[i] == "partnerd_position" {
				p, _ := strconv.Atoi(rec.Headers[i+1])
				if p <= last[rec.Key] {
					t.Fatalf("%s: position %d after %d on the topic", rec.Key, p, last[rec.Key])
				}
				last[rec.Key] = p
				records++
			}
		}
	}
	if records < 21 {
		t.Fatalf("%d records on the topic, want at least the 21 partner events", records)
	}
}
