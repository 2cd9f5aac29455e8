//go:build faults

package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/internal/testenv"
)

const dbKill = 12

type proc struct {
	cmd  *exec.Cmd
	base string
	log  *bytes.Buffer
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (p *proc) call(t *testing.T, method, path, key string, body any, hdr ...string) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, p.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, resp.Header, m
}

// SIGKILL the partnerd process that holds the relay lease: the other one
// takes over within seconds, and every event reaches Kafka at least once,
// under its own event ID.
func TestFaultKillTheLeader(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	kcat := testenv.Kcat(t)
	redisURL := redisDB(t, dbKill)
	bin := filepath.Join(t.TempDir(), "partnerd")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/partnerd").CombinedOutput(); err != nil {
		t.Fatalf("build partnerd: %v\n%s", err, out)
	}
	esdbURL, backing := testenv.KurrentDB(t)
	ns := testenv.UniquePrefix(t) + "."
	const key = "kill-test-key-0123456789"
	var procs []*proc
	for i := 0; i < 2; i++ {
		addr := freeAddr(t)
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "PARTNERD_ADDR="+addr, "PARTNERD_EVENTSTORE="+esdbURL,
			"PARTNERD_REDIS_URL="+redisURL, "PARTNERD_KAFKA_BROKERS="+strings.Join(brokers, ","), "PARTNERD_KAFKA_NAMESPACE="+ns,
			"PARTNERD_BOOTSTRAP_PROGRAM=acme", "PARTNERD_BOOTSTRAP_KEY="+key)
		p := &proc{cmd: cmd, base: "http://" + addr, log: &bytes.Buffer{}}
		cmd.Stdout, cmd.Stderr = p.log, p.log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		procs = append(procs, p)
	}
	for _, p := range procs {
		deadline := time.Now().Add(60 * time.Second)
		for {
			if code, _, _ := p.call(t, "GET", "/v1/programs/acme/partners", key, nil); code == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("partnerd did not come up:\n%s", p.log)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	create := func(p *proc, id string) string {
		code, hdr, body := p.call(t, "POST", "/v1/programs/acme/partners", key, map[string]any{"partner_id": id, "name": "P", "relationship_type": "direct"})
		if code != 201 {
			t.Fatalf("create %s: %d %v", id, code, body)
		}
		return hdr.Get("X-Consistency-Token")
	}
	for i := 0; i < 30; i++ {
		create(procs[i%2], fmt.Sprintf("a%02d", i))
	}
	leaderOf := func() int {
		for i, p := range procs {
			_, _, st := p.call(t, "GET", "/v1/projections", key, nil)
			items, _ := st["items"].([]any)
			for _, it := range items {
				if m := it.(map[string]any); m["name"] == "relay" && m["applied"].(float64) > 0 {
					return i
				}
			}
		}
		return -1
	}
	deadline := time.Now().Add(30 * time.Second)
	leader := leaderOf()
	for leader < 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		leader = leaderOf()
	}
	if leader < 0 {
		t.Fatal("no relay published anything")
	}
	survivor := procs[1-leader]
	if err := procs[leader].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var last string
	for i := 0; i < 30; i++ {
		last = create(survivor, fmt.Sprintf("b%02d", i))
	}
	for {
		code, _, _ := survivor.call(t, "GET", "/v1/programs/acme/partners/b29", key, nil, "X-Consistency-Token", last)
		if code == 200 {
			break
		}
		if time.Since(killed) > 60*time.Second {
			t.Fatalf("the survivor never projected the writes made after the kill:\n%s", survivor.log)
		}
	}
	took := time.Since(killed)
	t.Logf("after SIGKILL of the leader, the survivor published and projected within %s", took)
	if took > 20*time.Second {
		t.Fatalf("takeover took %s, want seconds", took)
	}
	// Every event is on the topic at least once, under its event ID.
	want := map[string]bool{}
	for _, r := range mustReadAll(t, backing) {
		if strings.HasPrefix(r, "partner-") {
			want[r] = true
		}
	}
	out, err := exec.Command(kcat, "-b", strings.Join(brokers, ","), "-C", "-t", ns+"partnerd.partners", "-o", "beginning", "-e", "-J", "-q").Output()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var rec struct {
			Key     string   `json:"key"`
			Headers []string `json:"headers"`
		}
		_ = json.Unmarshal([]byte(line), &rec)
		for i := 0; i+1 < len(rec.Headers); i += 2 {
			if rec.Headers[i] == "ce_id" {
				seen[rec.Key+"|"+rec.Headers[i+1]] = true
			}
		}
	}
	for k := range want {
		if !seen[k] {
			t.Fatalf("event %s never reached Kafka", k)
		}
	}
	if len(want) != 60 {
		t.Fatalf("%d partner events in the log, want 60", len(want))
	}
}

// mustReadAll lists "stream|event ID" of every event in the store.
func mustReadAll(t *testing.T, s *embedded.Store) []string {
	evs, err := s.ReadAll(t.Context(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.StreamID + "|" + e.ID
	}
	return out
}
