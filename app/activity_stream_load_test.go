package app_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// 1000 concurrent streams on real Redis each get every matching activity.
func TestActivityThousandStreams(t *testing.T) {
	h := start(t, config(t, redisDB(t, dbActivityRestart)))
	h.mustPartner("p1")
	h.mustPartner("p2")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 1000
	streams := make([]*sse, n)
	for i := range streams {
		q := ""
		if i%2 == 1 {
			q = "?partner_id=p2"
		}
		s, err := h.stream(ctx, q)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		streams[i] = s
		defer s.close()
	}
	for h.app.Hub.Streams() < n {
		time.Sleep(5 * time.Millisecond)
	}
	var items []any
	for i := 0; i < 10; i++ {
		items = append(items, map[string]any{"activity_id": fmt.Sprintf("t%d", i), "partner_id": []string{"p1", "p2"}[i%2], "flavor": "logged_in"})
	}
	if r := h.do("POST", "/activities", map[string]any{"activities": items}); r.status != 202 {
		t.Fatalf("post: %d %s", r.status, r.body)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, s := range streams {
		want := 10
		if i%2 == 1 {
			want = 5
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := map[string]bool{}
			for len(seen) < want {
				ev, err := s.next()
				if err != nil {
					errs <- fmt.Errorf("stream %d after %d events: %v", i, len(seen), err)
					return
				}
				seen[ev.data] = true
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// A client that stops reading is dropped; the projection and a client
// that keeps reading are not held up.
func TestActivitySlowClientIsDropped(t *testing.T) {
	for name, url := range map[string]func(*testing.T) string{"embedded redis": func(*testing.T) string { return "" }, "real redis": func(t *testing.T) string { return redisDB(t, dbActivityRestart) }} {
		t.Run(name, func(t *testing.T) { slowClientIsDropped(t, url(t)) })
	}
}

func slowClientIsDropped(t *testing.T, redisURL string) {
	{
		cfg := config(t, redisURL)
		cfg.StreamBuffer = 2048 // well above the hub's read chunk (512)
		h := start(t, cfg)
		h.mustPartner("p1")
		ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
		defer cancel()
		fast, err := h.stream(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		defer fast.close()
		// The slow client: a raw connection with a small receive buffer that never reads.
		addr := h.srv.Listener.Addr().String()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.(*net.TCPConn).SetReadBuffer(4096)
		fmt.Fprintf(conn, "GET /v1/programs/acme/activities/stream HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", addr, h.key)
		for h.app.Hub.Streams() < 2 {
			time.Sleep(5 * time.Millisecond)
		}
		const batches, size = 15, 400 // 6000 activities of ~2 KiB (12 MiB): more than the slow client's socket buffers hold
		got := make(chan int, 1)
		t0 := time.Now()
		go func() {
			seen := 0
			for seen < batches*size {
				if _, err := fast.next(); err != nil {
					break
				}
				seen++
			}
			got <- seen
		}()
		for b := 0; b < batches; b++ {
			var items []any
			for i := 0; i < size; i++ {
				items = append(items, map[string]any{"activity_id": fmt.Sprintf("s%d-%d", b, i), "partner_id": "p1", "flavor": "link_clicked",
					"source_url": "https://partners.example/" + strings.Repeat("x", 1900) + fmt.Sprint(i)})
			}
			if r := h.do("POST", "/activities", map[string]any{"activities": items}); r.status != 202 {
				t.Fatalf("post: %d %s", r.status, r.body)
			}
		}
		if n := <-got; n != batches*size {
			ks := "pd:activities:g1:{acme}:"
			feed, _ := h.app.Redis.ZCard(context.Background(), ks+"feed").Result()
			xl, _ := h.app.Redis.XLen(context.Background(), ks+"log").Result()
			t.Logf("feed %d, log %d, dropped %d, open %d", feed, xl, h.app.Hub.Dropped.Load(), h.app.Hub.Streams())
			t.Fatalf("the reading client got %d of %d activities", n, batches*size)
		}
		// Dropped either by the hub (its buffer filled) or by its own
		// handler (a write blocked past the write deadline), whichever
		// comes first on this machine.
		deadline := time.Now().Add(15 * time.Second)
		for h.app.Hub.Streams() != 1 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if h.app.Hub.Streams() != 1 {
			t.Fatalf("the slow client was not dropped: %d streams open", h.app.Hub.Streams())
		}
		t.Logf("%d activities streamed in %s; hub drops: %d", batches*size, time.Since(t0), h.app.Hub.Dropped.Load())
	}
}
