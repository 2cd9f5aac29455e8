package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
)

var errIdempotencyInFlight = errors.New("a request with this Idempotency-Key is still being processed; retry shortly")

// How long a finished request's answer is kept for replays, and how long an
// unfinished one holds its key. The hold is renewed every quarter of
// idemLockTTL while the request runs, so it only has to outlive a stall of
// the process; after a crash mid-request the key is free again (the client
// may retry for real) within idemLockTTL.
const (
	idemTTL     = 24 * time.Hour
	idemLockTTL = 30 * time.Second
)

type idemRecord struct {
	Fingerprint string            `json:"fp"`
	Status      int               `json:"status"`
	Headers     map[string]string `json:"headers"`
	Body        []byte            `json:"body"`
}

type captureWriter struct {
	gin.ResponseWriter
	buf bytes.Buffer
}

func (w *captureWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *captureWriter) WriteString(s string) (int, error) {
	w.buf.WriteString(s)
	return w.ResponseWriter.WriteString(s)
}

// idempotency makes a write with an Idempotency-Key happen once: a repeat
// with the same key and body gets the first answer and appends nothing; the
// same key with another body is 422. Keys are scoped by program.
func (s *Server) idempotency(c *gin.Context) {
	key := c.GetHeader("Idempotency-Key")
	if c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead {
		c.Next()
		return
	}
	if key == "" {
		if _, sent := c.Request.Header["Idempotency-Key"]; sent {
			s.writeError(c, badRequest("Idempotency-Key must not be empty"))
			return
		}
		c.Next()
		return
	}
	if len(key) > 255 {
		s.writeError(c, badRequest("Idempotency-Key must be at most 255 characters"))
		return
	}
	var fp string
	if strings.HasPrefix(c.ContentType(), "text/csv") {
		// A CSV upload goes to disk, not memory; the handler reads it there.
		sb, err := spool(c, maxCSVBody)
		if err != nil {
			s.writeError(c, err)
			return
		}
		defer sb.Close()
		fp = sb.Fingerprint
	} else {
		body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxJSONBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				s.writeError(c, errTooLarge)
				return
			}
			s.writeError(c, badRequest("reading body: %v", err))
			return
		}
		c.Request.Body = io.NopCloser(bytes.NewReader(body))
		h := sha256.New()
		h.Write(fingerprintPrefix(c))
		h.Write(body)
		fp = hex.EncodeToString(h.Sum(nil))
	}
	ks := sha256.Sum256([]byte(key))
	rkey := "pd:idem:{" + c.GetString(ctxProgram) + "}:" + hex.EncodeToString(ks[:])
	ctx := c.Request.Context()

	won, err := s.Redis.SetNX(ctx, rkey, "pending:"+fp, idemLockTTL).Result()
	if err != nil {
		s.writeError(c, err)
		return
	}
	if !won {
		s.replay(c, rkey, fp)
		return
	}
	cw := &captureWriter{ResponseWriter: c.Writer}
	c.Writer = cw
	stop := s.holdIdempotencyLock(ctx, rkey)
	c.Next()
	stop()
	status := cw.Status()
	if status >= 500 || status == http.StatusServiceUnavailable {
		_ = s.Redis.Del(ctx, rkey).Err() // a failed attempt may be retried for real
		return
	}
	rec := idemRecord{Fingerprint: fp, Status: status, Headers: map[string]string{}, Body: cw.buf.Bytes()}
	if kept, ok := c.Get(ctxIdemBody); ok {
		rec.Body, _ = kept.([]byte)
	}
	for _, name := range []string{"Content-Type", "X-Position", "X-Consistency-Token", "Location", "ETag"} {
		if v := cw.Header().Get(name); v != "" {
			rec.Headers[name] = v
		}
	}
	raw, _ := json.Marshal(rec)
	if err := s.Redis.Set(ctx, rkey, raw, idemTTL).Err(); err != nil {
		s.log.Error("saving idempotency record", "err", err)
	}
}

// holdIdempotencyLock keeps an unfinished request's key locked while it
// runs, however long (a large import), by renewing the lock's TTL; a
// crashed process stops renewing, so its lock still expires. stop waits for
// the renewer to end.
func (s *Server) holdIdempotencyLock(ctx context.Context, rkey string) (stop func()) {
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(idemLockTTL / 4)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = s.Redis.Expire(context.WithoutCancel(ctx), rkey, idemLockTTL).Err()
			}
		}
	}()
	return func() { close(done); <-ended }
}

func (s *Server) replay(c *gin.Context, rkey, fp string) {
	val, err := s.Redis.Get(c.Request.Context(), rkey).Result()
	if errors.Is(err, redis.Nil) {
		s.writeError(c, errIdempotencyInFlight) // expired between the two calls
		return
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	if pending, ok := strings.CutPrefix(val, "pending:"); ok {
		if pending != fp {
			s.writeError(c, fieldError("Idempotency-Key", "was already used with a different request body"))
			return
		}
		s.writeError(c, errIdempotencyInFlight)
		return
	}
	var rec idemRecord
	if err := json.Unmarshal([]byte(val), &rec); err != nil {
		s.writeError(c, err)
		return
	}
	if rec.Fingerprint != fp {
		s.writeError(c, fieldError("Idempotency-Key", "was already used with a different request body"))
		return
	}
	for k, v := range rec.Headers {
		c.Header(k, v)
	}
	c.Header("Idempotent-Replayed", "true")
	c.Data(rec.Status, rec.Headers["Content-Type"], rec.Body)
	c.Abort()
}
