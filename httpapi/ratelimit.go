package httpapi

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// RateLimit is the token bucket every API key gets: Rate requests per
// second on average, bursts of up to Burst. A zero Rate turns limiting off.
type RateLimit struct {
	Rate  float64
	Burst int
}

// keyLimiters holds one token bucket per API key (by key hash). Only keys
// that authenticated get a bucket, so their number is bounded by the keys
// issued; a bucket idle long enough to be full again is dropped.
type keyLimiters struct {
	cfg     RateLimit
	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newKeyLimiters(cfg RateLimit) *keyLimiters {
	if cfg.Rate <= 0 {
		return nil
	}
	if cfg.Burst < 1 {
		cfg.Burst = max(1, int(math.Ceil(cfg.Rate)))
	}
	return &keyLimiters{cfg: cfg, buckets: map[string]*bucket{}}
}

// allow takes a token from the key's bucket. When there is none it returns
// false and how long until one is there.
func (k *keyLimiters) allow(keyHash string, now time.Time) (bool, time.Duration) {
	if k == nil {
		return true, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sweep(now)
	b := k.buckets[keyHash]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(k.cfg.Rate), k.cfg.Burst)}
		k.buckets[keyHash] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops, once a minute, the buckets that have refilled completely.
func (k *keyLimiters) sweep(now time.Time) {
	if now.Sub(k.swept) < time.Minute {
		return
	}
	k.swept = now
	full := time.Duration(float64(k.cfg.Burst) / k.cfg.Rate * float64(time.Second))
	for h, b := range k.buckets {
		if now.Sub(b.last) > full {
			delete(k.buckets, h)
		}
	}
}

// rateLimited answers 429 with Retry-After (whole seconds, at least 1) when
// the key has used up its bucket, and reports whether it did.
func (s *Server) rateLimited(c *gin.Context, keyHash string) bool {
	ok, wait := s.limiters.allow(keyHash, time.Now())
	if ok {
		return false
	}
	secs := max(1, int(math.Ceil(wait.Seconds())))
	c.Header("Retry-After", strconv.Itoa(secs))
	writeProblem(c, Problem{Type: "urn:partnerd:problem:too-many-requests", Title: "Too Many Requests", Status: 429,
		Detail: "this API key is over its rate limit; retry after " + strconv.Itoa(secs) + " s"})
	return true
}
