// Package idemstore keeps idempotency records on disk for a partnerd that
// runs with the embedded, in-process Redis. That Redis starts empty at
// every start (the read models are rebuilt from the log), but idempotency
// records are no read model: nothing in the log says what a request
// answered. Without them on disk a client retrying across a restart would
// apply its command twice.
//
// The store is a small Pebble database of key → (expiry, value). It is used
// by one process only (Pebble locks its folder), so a mutex makes "set if
// absent" atomic.
package idemstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
)

// Disk is an on-disk store of records that expire.
type Disk struct {
	db  *pebble.DB
	mu  sync.Mutex
	now func() time.Time

	stop chan struct{}
	done chan struct{}
}

// SweepEvery is how often expired records are deleted.
const SweepEvery = time.Hour

// Open opens (or creates) the store in dir.
func Open(dir string) (*Disk, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, fmt.Errorf("open idempotency store %s: %w", dir, err)
	}
	d := &Disk{db: db, now: time.Now, stop: make(chan struct{}), done: make(chan struct{})}
	d.Sweep()
	go d.sweepLoop()
	return d, nil
}

// Close stops the sweeper and closes the database.
func (d *Disk) Close() error {
	close(d.stop)
	<-d.done
	return d.db.Close()
}

func (d *Disk) sweepLoop() {
	defer close(d.done)
	t := time.NewTicker(SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			d.Sweep()
		}
	}
}

// Sweep deletes the records that expired.
func (d *Disk) Sweep() {
	d.mu.Lock()
	defer d.mu.Unlock()
	it, err := d.db.NewIter(nil)
	if err != nil {
		return
	}
	b := d.db.NewBatch()
	now := d.now()
	for it.First(); it.Valid(); it.Next() {
		if _, live := decode(it.Value(), now); !live {
			_ = b.Delete(it.Key(), nil)
		}
	}
	_ = it.Close()
	_ = b.Commit(pebble.NoSync)
}

func encode(val string, ttl time.Duration, now time.Time) []byte {
	out := make([]byte, 8, 8+len(val))
	binary.BigEndian.PutUint64(out, uint64(now.Add(ttl).UnixNano()))
	return append(out, val...)
}

func decode(raw []byte, now time.Time) (string, bool) {
	if len(raw) < 8 {
		return "", false
	}
	if int64(binary.BigEndian.Uint64(raw)) <= now.UnixNano() {
		return "", false
	}
	return string(raw[8:]), true
}

func (d *Disk) get(key string) (string, bool, error) {
	raw, closer, err := d.db.Get([]byte(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer closer.Close()
	v, live := decode(raw, d.now())
	return v, live, nil
}

// Reserve stores val under key for ttl unless a live record is there; it
// reports whether it stored. The reservation is not synced: after a crash
// it may be gone, which frees the key as an expiring lock would.
func (d *Disk) Reserve(_ context.Context, key, val string, ttl time.Duration) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, live, err := d.get(key); err != nil || live {
		return false, err
	}
	return true, d.db.Set([]byte(key), encode(val, ttl, d.now()), pebble.NoSync)
}

// Get returns the live record under key; found is false when there is none.
func (d *Disk) Get(_ context.Context, key string) (val string, found bool, err error) {
	return d.get(key)
}

// Put stores val under key for ttl, durably (synced before it returns).
func (d *Disk) Put(_ context.Context, key, val string, ttl time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.db.Set([]byte(key), encode(val, ttl, d.now()), pebble.Sync)
}

// Touch gives a live record ttl from now.
func (d *Disk) Touch(_ context.Context, key string, ttl time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, live, err := d.get(key)
	if err != nil || !live {
		return err
	}
	return d.db.Set([]byte(key), encode(v, ttl, d.now()), pebble.NoSync)
}

// Delete removes the record under key.
func (d *Disk) Delete(_ context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.db.Delete([]byte(key), pebble.NoSync)
}

// quietLogger drops Pebble's informational logs (it logs every flush)
// and keeps its errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble (idempotency store): "+format+"\n", args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
