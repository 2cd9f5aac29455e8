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
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
)

var errIdempotencyInFlight = errors.New("a request with this Idempotency-Key is still being processed; retry shortly")

// How long a finished request's answer is kept for replays, and how long an
// unfinished one holds its key. The hold is renewed every quarter of
// idemLockTTL while the request runs, so it only has to outlive a stall of
// the process; after a crash mid-request the key is free again (the client
// may retry for real) within idemLockTTL, so a retry that comes right
// after the crash waits (up to idemWait) and then runs, rather than being
// told 409 for half a minute. Should a stall outlast it, the events' Once
// keys still apply a retried command once. A repeat that arrives while the
// first request runs waits up to idemWait for its answer (then 409).
const (
	idemTTL     = 24 * time.Hour
	idemLockTTL = 8 * time.Second
	idemWait    = 10 * time.Second
	idemPoll    = 20 * time.Millisecond
)

// IdempotencyStore keeps idempotency records: "pending:<fingerprint>"
// while the first request with a key runs, then its answer.
type IdempotencyStore interface {
	// Reserve stores val under key for ttl unless a record is there, and
	// reports whether it stored.
	Reserve(ctx context.Context, key, val string, ttl time.Duration) (bool, error)
	// Get returns the record under key; found is false when there is none.
	Get(ctx context.Context, key string) (val string, found bool, err error)
	// Put stores val under key for ttl, as durably as the store can before
	// it returns: the answer is sent only after.
	Put(ctx context.Context, key, val string, ttl time.Duration) error
	// Touch gives the record under key ttl from now.
	Touch(ctx context.Context, key string, ttl time.Duration) error
	// Delete removes the record under key.
	Delete(ctx context.Context, key string) error
}

// RedisIdempotency keeps idempotency records in Redis (shared by every
// instance on that Redis).
type RedisIdempotency struct{ Client redis.UniversalClient }

// Reserve implements IdempotencyStore.
func (r RedisIdempotency) Reserve(ctx context.Context, key, val string, ttl time.Duration) (bool, error) {
	return r.Client.SetNX(ctx, key, val, ttl).Result()
}

// Get implements IdempotencyStore.
func (r RedisIdempotency) Get(ctx context.Context, key string) (string, bool, error) {
	v, err := r.Client.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	return v, err == nil, err
}

// Put implements IdempotencyStore.
func (r RedisIdempotency) Put(ctx context.Context, key, val string, ttl time.Duration) error {
	return r.Client.Set(ctx, key, val, ttl).Err()
}

// Touch implements IdempotencyStore.
func (r RedisIdempotency) Touch(ctx context.Context, key string, ttl time.Duration) error {
	return r.Client.Expire(ctx, key, ttl).Err()
}

// Delete implements IdempotencyStore.
func (r RedisIdempotency) Delete(ctx context.Context, key string) error {
	return r.Client.Del(ctx, key).Err()
}

type idemRecord struct {
	Fingerprint string            `json:"fp"`
	Status      int               `json:"status"`
	Headers     map[string]string `json:"headers"`
	Body        []byte            `json:"body"`
}

// heldWriter keeps a response back: the idempotency middleware sends it
// only once its record is saved, so an answer a client got is never one a
// crash could make it get again by applying the command twice.
type heldWriter struct {
	gin.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (w *heldWriter) WriteHeader(code int) {
	if code > 0 && w.status == 0 {
		w.status = code
	}
}

func (w *heldWriter) WriteHeaderNow() {}

func (w *heldWriter) Flush() {}

func (w *heldWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.buf.Write(b)
}

func (w *heldWriter) WriteString(s string) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.buf.WriteString(s)
}

func (w *heldWriter) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

func (w *heldWriter) Size() int { return w.buf.Len() }

func (w *heldWriter) Written() bool { return w.status != 0 }

// send writes the held response to the client.
func (w *heldWriter) send(to gin.ResponseWriter) {
	to.WriteHeader(w.Status())
	if w.buf.Len() == 0 {
		to.WriteHeaderNow()
		return
	}
	_, _ = to.Write(w.buf.Bytes())
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
	// fp names the request: method, path and body. A JSON body counts by
	// its content, not its bytes (whitespace and key order aside, the same
	// object is the same request); rawFP is the bytes' fingerprint, which
	// records written before that rule hold.
	var fp, rawFP string
	if strings.EqualFold(c.ContentType(), "text/csv") { // as the import reads it: media types ignore case
		// A CSV upload goes to disk, not memory; the handler reads it there.
		sb, err := spool(c, maxCSVBody)
		if err != nil {
			s.writeError(c, err)
			return
		}
		defer sb.Close()
		fp, rawFP = sb.Fingerprint, sb.Fingerprint
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
		fp, rawFP = bodyFingerprints(fingerprintPrefix(c), body)
	}
	c.Set(ctxIdemOnce, key+"#"+fp[:16])
	ks := sha256.Sum256([]byte(key))
	rkey := "pd:idem:{" + c.GetString(ctxProgram) + "}:" + hex.EncodeToString(ks[:])
	ctx := c.Request.Context()

	deadline := time.Now().Add(idemWait)
	for {
		won, err := s.Idempotency.Reserve(ctx, rkey, "pending:"+fp, idemLockTTL)
		if err != nil {
			s.writeError(c, err)
			return
		}
		if won {
			break
		}
		val, found, err := s.Idempotency.Get(ctx, rkey)
		if err != nil {
			s.writeError(c, err)
			return
		}
		if !found {
			continue // freed meanwhile (the first attempt failed): run it
		}
		pending, inFlight := strings.CutPrefix(val, "pending:")
		if !inFlight {
			s.replay(c, val, fp, rawFP)
			return
		}
		if pending != fp && pending != rawFP {
			s.writeError(c, fieldError("Idempotency-Key", "was already used with a different request body"))
			return
		}
		// The first request with this key still runs: wait for its answer.
		if time.Now().After(deadline) {
			s.writeError(c, errIdempotencyInFlight)
			return
		}
		select {
		case <-ctx.Done():
			s.writeError(c, errIdempotencyInFlight)
			return
		case <-time.After(idemPoll):
		}
	}
	real := c.Writer
	hw := &heldWriter{ResponseWriter: real}
	c.Writer = hw
	stop := s.holdIdempotencyLock(ctx, rkey)
	defer func() {
		if p := recover(); p != nil {
			// The recoverer answers 500 on the real writer; the key is
			// free again, as after any failed attempt.
			stop()
			c.Writer = real
			_ = s.Idempotency.Delete(context.WithoutCancel(ctx), rkey)
			panic(p)
		}
	}()
	c.Next()
	stop()
	c.Writer = real
	status := hw.Status()
	// A request the server could not read (400 malformed, 413 too large,
	// 415 not JSON or CSV) never ran: its key stays free for the corrected
	// request, which a saved answer would refuse forever. Like a failed
	// attempt's, which may be retried for real.
	unread := status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge || status == http.StatusUnsupportedMediaType
	if status >= 500 || unread || c.GetBool(ctxIdemRetry) {
		_ = s.Idempotency.Delete(context.WithoutCancel(ctx), rkey)
		hw.send(real)
		return
	}
	rec := idemRecord{Fingerprint: fp, Status: status, Headers: map[string]string{}, Body: hw.buf.Bytes()}
	if kept, ok := c.Get(ctxIdemBody); ok {
		rec.Body, _ = kept.([]byte)
	}
	for _, name := range []string{"Content-Type", "X-Position", "X-Consistency-Token", "Location", "ETag"} {
		if v := hw.Header().Get(name); v != "" {
			rec.Headers[name] = v
		}
	}
	raw, _ := json.Marshal(rec)
	if err := s.Idempotency.Put(context.WithoutCancel(ctx), rkey, string(raw), idemTTL); err != nil {
		// The command is done; its answer goes out, but a retry would not
		// find it. Say so loudly: that retry would apply it again.
		s.log.Error("saving idempotency record; a retry with this key would apply the request again", "err", err)
	}
	hw.send(real)
}

// holdIdempotencyLock keeps an unfinished request's key locked while it
// runs, however long (a large import), by renewing the lock's TTL; a
// crashed process stops renewing, so its lock still expires. stop waits for
// the renewer to end (calling it again does nothing).
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
				_ = s.Idempotency.Touch(context.WithoutCancel(ctx), rkey, idemLockTTL)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-ended }) }
}

// replay answers with a finished request's record, if this request has the
// same body (its canonical or, for records of older versions, its raw
// fingerprint).
func (s *Server) replay(c *gin.Context, val, fp, rawFP string) {
	var rec idemRecord
	if err := json.Unmarshal([]byte(val), &rec); err != nil {
		s.writeError(c, err)
		return
	}
	if rec.Fingerprint != fp && rec.Fingerprint != rawFP {
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

// bodyFingerprints returns the fingerprint of a JSON body by its content
// (canonical: compact, object keys sorted, numbers as written) and of its
// raw bytes; a body that is not JSON has the raw one twice.
func bodyFingerprints(prefix, body []byte) (canonical, raw string) {
	h := sha256.New()
	h.Write(prefix)
	h.Write(body)
	raw = hex.EncodeToString(h.Sum(nil))
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil || d.More() {
		return raw, raw
	}
	if _, err := d.Token(); err != io.EOF {
		return raw, raw
	}
	norm, err := json.Marshal(v)
	if err != nil {
		return raw, raw
	}
	h.Reset()
	h.Write(prefix)
	h.Write([]byte("json:"))
	h.Write(norm)
	return hex.EncodeToString(h.Sum(nil)), raw
}
