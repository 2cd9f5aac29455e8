package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
)

// ingestCategories attribute CPU samples of the ingest load, first match wins.
var ingestCategories = [][2]string{
	{"projection", "partnerd/projections."},
	{"projection", "partnerd/relay."},
	{"projection", "partnerd/bus."},
	{"projection", "ThreeDotsLabs/watermill"},
	{"storage_background", "pebble.(*DB).flush"},
	{"storage_background", "pebble.(*DB).compact"},
	{"append", "eventstore/embedded."},
	{"append", "cockroachdb/pebble"},
	{"http_decode_validate", "httpapi.decodeActivities"},
	{"http_decode_validate", "httpapi.readBody"},
	{"http_decode_validate", "domain.NewActivity.Validate"},
	{"partner_check", "RecordActivitiesHandler).partnersExist"},
	{"encode_events", "RecordActivitiesHandler).Handle"},
	{"http_respond", "httpapi.(*Server).recordActivities"},
	{"http_server_other", "net/http.(*conn).serve"},
	{"bench_client", "main.benchIngest"},
	{"bench_client", "net/http.(*persistConn)"},
	{"bench_client", "net/http.(*Transport)"},
	{"gc", "runtime.gcBgMarkWorker"},
	{"gc", "runtime.bgsweep"},
	{"gc", "runtime.bgscavenge"},
}

// activityBatches builds n batch bodies of size activities over partners,
// every activity with its own ID (a repeat would be dropped, not ingested).
func activityBatches(n, size, partners int) [][]byte {
	flavors := []string{"dashboard_viewed", "logged_in", "message_opened", "link_clicked", "custom.webinar_joined"}
	devices := []string{"desktop", "mobile", "tablet"}
	out := make([][]byte, n)
	base := time.Now().UTC().Add(-time.Minute)
	for b := range out {
		var buf bytes.Buffer
		buf.WriteString(`{"activities":[`)
		for i := 0; i < size; i++ {
			k := b*size + i
			if i > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, `{"activity_id":"b%d-%d","partner_id":"p%d","flavor":%q,"occurred_at":%q,"device":%q,"platform":"macOS","browser":"Firefox","campaign":"spring-sale","message_id":"m%d","source_url":"https://partners.example/dashboard/%d","referrer_url":"https://mail.example/inbox"}`,
				b, i, k%partners, flavors[k%len(flavors)], base.Add(time.Duration(k)*time.Millisecond).Format(time.RFC3339Nano), devices[k%3], k%50, k%1000)
		}
		buf.WriteString(`]}`)
		out[b] = buf.Bytes()
	}
	return out
}

// benchIngest: activities/s through POST /activities in batches of 1000
// (8 connections, embedded store, real Redis, everything else running),
// the CPU share of each part of the work, and how fast the projections
// catch up; baseline: encoding/json decoding the same bodies in one
// goroutine.
func benchIngest(redisURL string, total int, res Results) error {
	const size, partners = 1000, 1000
	conns := 8
	if v, err := strconv.Atoi(os.Getenv("PARTNERBENCH_INGEST_CONNS")); err == nil && v > 0 {
		conns = v
	}
	s, err := startServer(redisURL)
	if err != nil {
		return err
	}
	defer s.stop()
	ctx := context.Background()
	for i := 0; i < partners; i++ {
		_, _, err := s.app.Commands.CreatePartner.Handle(ctx, domain.NewPartner{ProgramID: "bench", PartnerID: fmt.Sprintf("p%d", i),
			Profile: domain.Profile{Name: fmt.Sprintf("Partner %d", i), RelationshipType: "direct"}}, commands.Meta{Actor: "bench"})
		if err != nil {
			return err
		}
	}
	if err := s.app.WaitCaughtUp(ctx); err != nil {
		return err
	}
	bodies := activityBatches(max(1, total/size), size, partners)

	// Baseline: decoding the same bodies, one goroutine.
	t0 := time.Now()
	for _, b := range bodies[:min(len(bodies), 50)] {
		var v struct{ Activities []domain.NewActivity }
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
	}
	res["ingest.baseline.json_decode_activities_per_s"] = rate(min(len(bodies), 50)*size, time.Since(t0))

	var next, accepted atomic.Int64
	var firstErr atomic.Value
	var elapsed time.Duration
	load := func() error {
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < conns; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if int(i) >= len(bodies) {
						return
					}
					n, err := s.postBatch(bodies[i])
					if err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					accepted.Add(int64(n))
				}
			}()
		}
		wg.Wait()
		elapsed = time.Since(start)
		if err, _ := firstErr.Load().(error); err != nil {
			return err
		}
		return nil
	}
	startAll := time.Now()
	cpu0 := processCPU()
	shares, err := cpuShares(load, ingestCategories)
	cpu := (processCPU() - cpu0).Seconds()
	res["ingest.process_cpu_utilization"] = cpu / elapsed.Seconds() / float64(runtime.NumCPU())
	// Load-independent: activities per second of this process's CPU
	// (HTTP, append, and the relay and projections running meanwhile).
	res["ingest.activities_per_cpu_s"] = float64(accepted.Load()) / cpu
	if err != nil && elapsed == 0 {
		if err = load(); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if int(accepted.Load()) != len(bodies)*size {
		return fmt.Errorf("ingest: %d of %d activities accepted", accepted.Load(), len(bodies)*size)
	}
	res["ingest.activities"] = float64(accepted.Load())
	res["ingest.activities_per_s"] = rate(int(accepted.Load()), elapsed)
	res["ingest.ratio_to_json_decode"] = res["ingest.activities_per_s"] / res["ingest.baseline.json_decode_activities_per_s"]
	for k, v := range shares {
		res["ingest.cpu_share."+k] = v
	}
	// How long until every activity is in the feed.
	if err := s.app.WaitCaughtUp(ctx); err != nil {
		return err
	}
	res["ingest.projected_per_s"] = rate(int(accepted.Load()), time.Since(startAll))
	return s.streamLatency(res)
}

// streamLatency: one SSE client; 200 single activities posted one by one;
// the time from each POST's answer to its SSE event (relay, bus,
// projection and hub included: an upper bound of "projection → client").
func (s *server) streamLatency(res Results) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.base+"/v1/programs/bench/activities/stream", nil)
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("stream: %d", resp.StatusCode)
	}
	rd := bufio.NewReader(resp.Body)
	var lat []time.Duration
	for i := 0; i < 200; i++ {
		id := fmt.Sprintf("lat-%d", i)
		code, _, err := s.do("POST", "/v1/programs/bench/activities", []byte(`{"activity_id":"`+id+`","partner_id":"p1","flavor":"logged_in"}`))
		if err != nil || code != 202 {
			return fmt.Errorf("post: %d %v", code, err)
		}
		t0 := time.Now()
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return fmt.Errorf("stream: %w", err)
			}
			if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"activity_id":"`+id+`"`) {
				break
			}
		}
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res["ingest.stream_latency_p50_ms"] = float64(lat[len(lat)/2].Microseconds()) / 1000
	res["ingest.stream_latency_p99_ms"] = float64(lat[len(lat)*99/100].Microseconds()) / 1000
	return nil
}

// postBatch posts one batch and returns how many activities were accepted.
func (s *server) postBatch(body []byte) (int, error) {
	req, err := http.NewRequest("POST", s.base+"/v1/programs/bench/activities", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 202 {
		return 0, fmt.Errorf("post activities: %d %.300s", resp.StatusCode, raw)
	}
	// The counts follow the results array: read them from the tail.
	var counts struct{ Accepted int }
	if i := bytes.LastIndex(raw, []byte(`],"accepted":`)); i >= 0 {
		_ = json.Unmarshal(append([]byte("{"), raw[i+2:]...), &counts)
	}
	return counts.Accepted, nil
}

// processCPU is the CPU time (user + system) this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
