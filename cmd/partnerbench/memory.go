package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// benchMemory: the resident memory of a real partnerd process (the binary,
// built from this checkout) serving a program of n partners after ingesting
// activities through the batch endpoint, with real Redis holding the read
// models. RSS is read from /proc/<pid>/status once everything is projected.
func benchMemory(redisURL string, n, activities int, res Results) error {
	work, err := os.MkdirTemp("", "partnerbench-memory-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "partnerd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/partnerd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build partnerd (run partnerbench from the repository root): %w", err)
	}
	data := filepath.Join(work, "data")
	if err := writePartners(data, n); err != nil {
		return err
	}
	if err := flushRedis(redisURL); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	const key = "bench-key-0123456789abcdef"
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "PARTNERD_ADDR="+addr, "PARTNERD_DATA="+data, "PARTNERD_REDIS_URL="+redisURL,
		"PARTNERD_BOOTSTRAP_PROGRAM=bench", "PARTNERD_BOOTSTRAP_KEY="+key, "PARTNERD_KAFKA_BROKERS=")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()
	base := "http://" + addr
	if err := waitReady(base, 5*time.Minute); err != nil {
		return err
	}
	sent := 0
	client := &http.Client{Timeout: time.Minute}
	start := time.Now()
	for sent < activities {
		var body bytes.Buffer
		body.WriteString(`{"activities":[`)
		for i := 0; i < 1000 && sent+i < activities; i++ {
			if i > 0 {
				body.WriteByte(',')
			}
			fmt.Fprintf(&body, `{"partner_id":"p%07d","flavor":"link_clicked","activity_id":"m%d","device":"desktop","source_url":"https://p%07d.example/x"}`,
				(sent+i)%n, sent+i, (sent+i)%n)
		}
		body.WriteString(`]}`)
		req, _ := http.NewRequest("POST", base+"/v1/programs/bench/activities", &body)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			fmt.Fprintln(os.Stderr, "partnerbench: memory: this partnerd has no activity endpoint; measuring partners only")
			break
		}
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("post activities: %d %s", resp.StatusCode, msg)
		}
		sent = min(sent+1000, activities)
	}
	if sent > 0 {
		res["memory.ingest_activities_per_s"] = rate(sent, time.Since(start))
	}
	if err := waitReady(base, 5*time.Minute); err != nil {
		return err
	}
	rss, peak, err := procMemory(cmd.Process.Pid)
	if err != nil {
		return err
	}
	res["memory.partners"] = float64(n)
	res["memory.activities"] = float64(sent)
	res["memory.rss_mb"] = rss
	res["memory.peak_rss_mb"] = peak
	return nil
}

// waitReady polls /readyz (store, Redis and bus up, projections within
// 10 s) and then /metrics until the relay has published the whole log and
// the projections' applied counters stand still for half a second.
func waitReady(base string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	last := -1.0
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			continue
		}
		m, err := metrics(base)
		if err != nil {
			continue
		}
		applied := m["partnerd_projection_applied_total"]
		if m["partnerd_relay_position"] == m["partnerd_log_head_position"] && applied == last {
			return nil
		}
		last = applied
	}
	return fmt.Errorf("partnerd at %s not caught up after %s", base, limit)
}

// metrics reads the Prometheus text of base, summing each metric's series.
func metrics(base string) (map[string]float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(f[0], "{")
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			out[name] += v
		}
	}
	return out, sc.Err()
}

// procMemory reads VmRSS and VmHWM (peak) of pid, in MiB.
func procMemory(pid int) (rss, peak float64, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return rss, peak, nil
}
