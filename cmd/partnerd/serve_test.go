package main

import (
	"bufio"
	"bytes"
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

	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
)

// The real binary: it prints where it listens and the demo key, serves,
// and on SIGTERM shuts down cleanly (exit 0), releasing the data folder and
// keeping every acknowledged write.
func TestServeShutsDownGracefullyOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "partnerd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data := t.TempDir()
	cmd := exec.Command(bin, "--addr", addr, "--data", data)
	cmd.Env = append(os.Environ(), "PARTNERD_REDIS_URL=", "PARTNERD_KAFKA_BROKERS=", "PARTNERD_BOOTSTRAP_KEY=")
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	sc := bufio.NewScanner(stdout)
	var key string
	for sc.Scan() {
		line := sc.Text()
		if _, k, ok := strings.Cut(line, "API key: "); ok {
			key = k
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if !strings.HasPrefix(key, "pd_") {
		t.Fatalf("no demo API key printed; stderr:\n%s", stderr.String())
	}
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/programs/demo/partners",
		strings.NewReader(`{"partner_id":"kept","name":"K","relationship_type":"direct"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	var resp *http.Response
	for i := 0; i < 100; i++ {
		if resp, err = http.DefaultClient.Do(req.Clone(req.Context())); err == nil && resp.StatusCode != 401 {
			break
		}
		time.Sleep(50 * time.Millisecond) // the key may not be projected yet
		req.Body = io.NopCloser(strings.NewReader(`{"partner_id":"kept","name":"K","relationship_type":"direct"}`))
	}
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create: %v %v", err, resp)
	}
	resp.Body.Close()
	// An open activity stream (a dashboard) does not hold the shutdown
	// for the whole grace period: it is ended.
	sreq, _ := http.NewRequest("GET", "http://"+addr+"/v1/programs/demo/activities/stream", nil)
	sreq.Header.Set("Authorization", "Bearer "+key)
	sresp, err := http.DefaultClient.Do(sreq)
	if err != nil || sresp.StatusCode != 200 {
		t.Fatalf("activity stream: %v %v", err, sresp)
	}
	streamEnded := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, sresp.Body); close(streamEnded) }()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(8 * time.Second):
		t.Fatalf("partnerd did not stop within 8 s of SIGTERM with an activity stream open; stderr:\n%s", stderr.String())
	}
	select {
	case <-streamEnded:
	case <-time.After(time.Second):
		t.Fatal("the activity stream was not ended")
	}
	if strings.Contains(stderr.String(), "HTTP shutdown") {
		t.Fatalf("the HTTP shutdown ran out of time; stderr:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Fatalf("no shutdown message; stderr:\n%s", stderr.String())
	}
	// The folder is released and the acknowledged partner is in the log.
	store, err := embedded.Open(data, embedded.Options{})
	if err != nil {
		t.Fatalf("data folder still locked or broken after shutdown: %v", err)
	}
	defer store.Close()
	evs, err := store.ReadStream(t.Context(), "partner-demo-kept", 0, eventstore.Forwards, 10)
	if err != nil || len(evs) != 1 || evs[0].Type != "partner.created" {
		t.Fatalf("the acknowledged partner is not in the log: %v %v", evs, err)
	}
}

// A configured bootstrap key is never printed or logged, neither on the
// first start (which creates the program) nor on the next.
func TestServeNeverPrintsAConfiguredKey(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "partnerd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data := t.TempDir()
	const secret = "configured-secret-key-0123456789"
	for run := 0; run < 2; run++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cmd := exec.Command(bin, "--addr", addr, "--data", data)
		cmd.Env = append(os.Environ(), "PARTNERD_REDIS_URL=", "PARTNERD_KAFKA_BROKERS=", "PARTNERD_BOOTSTRAP_KEY="+secret, "PARTNERD_LOG_LEVEL=debug")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ok := false
		for i := 0; i < 200 && !ok; i++ {
			req, _ := http.NewRequest("GET", "http://"+addr+"/v1/programs/demo/partners", nil)
			req.Header.Set("Authorization", "Bearer "+secret)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				ok = resp.StatusCode == 200
				resp.Body.Close()
			}
			time.Sleep(25 * time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if !ok {
			t.Fatalf("run %d: the configured key never worked:\n%s", run, out.String())
		}
		if strings.Contains(out.String(), secret) {
			t.Fatalf("run %d printed the configured key:\n%s", run, out.String())
		}
		if !strings.Contains(out.String(), "PARTNERD_BOOTSTRAP_KEY") {
			t.Fatalf("run %d does not say which key the program has:\n%s", run, out.String())
		}
	}
}
