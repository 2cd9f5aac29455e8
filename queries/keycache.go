package queries

import (
	"sync"
	"time"
)

// keyCache remembers, for a short while, the program an API key belongs
// to: every authenticated request asked Redis for it, one round trip
// (and ~8 % of a create's CPU) for an answer that changes only when a key
// is issued or revoked. An entry is trusted while it is younger than
// keyCacheTTL and the programs projection has applied nothing since it
// was read (KeysVersion), so a revocation projected by this process takes
// effect at once, and one projected by another instance (sharing the
// programs projection's consumer group) within keyCacheTTL. Unknown keys
// are never cached: they ask Redis every time.
type keyCache struct {
	mu sync.RWMutex
	m  map[string]keyEntry
}

type keyEntry struct {
	program string
	version uint64
	at      time.Time
}

const (
	keyCacheTTL = time.Second
	// keyCacheMax bounds the entries; past it the cache starts afresh.
	keyCacheMax = 4096
)

func (c *keyCache) get(hash string, version uint64, now time.Time) (string, bool) {
	c.mu.RLock()
	e, ok := c.m[hash]
	c.mu.RUnlock()
	if !ok || e.version != version || now.Sub(e.at) >= keyCacheTTL || now.Before(e.at) {
		return "", false
	}
	return e.program, true
}

func (c *keyCache) put(hash, program string, version uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= keyCacheMax {
		c.m = make(map[string]keyEntry)
	}
	c.m[hash] = keyEntry{program: program, version: version, at: now}
}
