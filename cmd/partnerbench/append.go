package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/google/uuid"

	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
)

func benchAppend(dir string, perRun int, res Results) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "partnerbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	fsyncs, err := rawFsyncs(dir, 2*time.Second)
	if err != nil {
		return err
	}
	res["append.baseline.disk_fsyncs_per_s"] = fsyncs
	payload := make([]byte, 300)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	for _, writers := range []int{1, 64} {
		n := perRun
		if writers == 1 {
			n = perRun / 10 // one writer is bounded by the disk's fsync rate
		}
		pr, err := pebbleSync(filepath.Join(dir, fmt.Sprintf("pebble-%d", writers)), writers, n, payload)
		if err != nil {
			return err
		}
		res[fmt.Sprintf("append.baseline.pebble_sync_writes_per_s.w%d", writers)] = pr
		st, err := embedded.Open(filepath.Join(dir, fmt.Sprintf("store-%d", writers)), embedded.Options{})
		if err != nil {
			return err
		}
		d := parallel(writers, n, func(w, i int) error {
			_, err := st.Append(context.Background(), fmt.Sprintf("partner-bench-%d", w*1000003+i%50), eventstore.Any,
				[]eventstore.EventData{{ID: uuid.NewString(), Type: "partner.created", Data: payload, Metadata: []byte(`{"schema":1}`)}})
			return err
		})
		stats := st.Stats()
		res[fmt.Sprintf("append.appends_per_s.w%d", writers)] = rate(n, d)
		res[fmt.Sprintf("append.events_per_fsync.w%d", writers)] = float64(stats.Events.Load()) / float64(max(1, stats.Commits.Load()))
		res[fmt.Sprintf("append.ratio_to_pebble.w%d", writers)] = rate(n, d) / pr
		_ = st.Close()
	}
	return nil
}

// parallel runs n calls of f spread over `writers` goroutines and times them.
func parallel(writers, n int, f func(w, i int) error) time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	per := n / writers
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if err := f(w, i); err != nil {
					panic(err)
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

func rawFsyncs(dir string, d time.Duration) (float64, error) {
	f, err := os.Create(filepath.Join(dir, "fsync-probe"))
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if _, err := f.WriteAt(buf, int64(n%256)*4096); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		n++
	}
	return rate(n, time.Since(start)), nil
}

func pebbleSync(dir string, writers, n int, payload []byte) (float64, error) {
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	d := parallel(writers, n, func(w, i int) error {
		return db.Set([]byte(fmt.Sprintf("k-%d-%d", w, i)), payload, pebble.Sync)
	})
	return rate(n, d), nil
}
