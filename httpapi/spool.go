package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"

	"github.com/gin-gonic/gin"
)

// ctxSpool holds the *spooledBody of a request whose body went to disk.
const ctxSpool = "spooled_body"

// spooledBody is a request body copied to a temporary file, so that a large
// upload (CSV, up to 20 MiB) is read in full — its size checked and its
// fingerprint taken — before anything is applied, without holding it in
// memory.
type spooledBody struct {
	f *os.File
	// Fingerprint is the hex SHA-256 of method, path, query and body, as
	// the idempotency records use it.
	Fingerprint string
}

// fingerprintPrefix is what the fingerprint hashes before the body: the
// method, the path and the query parameters (in key order, so their order
// does not matter; a request without any hashes as before they counted).
// The query is part of the request: DELETE …/links/{id}?reason=… with
// another reason, or a preview's next page, under a used key got the first
// answer back instead of 422.
func fingerprintPrefix(c *gin.Context) []byte {
	p := c.Request.Method + " " + c.Request.URL.Path
	if q := c.Request.URL.Query(); len(q) > 0 {
		p += "?" + q.Encode()
	}
	return []byte(p + "\n")
}

// spool copies the request body (at most limit bytes, else errTooLarge) to
// a temporary file; the caller closes it. A body spooled earlier in the
// same request is returned again, rewound.
func spool(c *gin.Context, limit int64) (*spooledBody, error) {
	if v, ok := c.Get(ctxSpool); ok {
		sb := v.(*spooledBody)
		if _, err := sb.f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return sb, nil
	}
	f, err := os.CreateTemp("", "partnerd-upload-*")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name()) // unlinked at once: nothing is left behind, even on a crash
	h := sha256.New()
	h.Write(fingerprintPrefix(c))
	_, err = io.Copy(io.MultiWriter(f, h), http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, badRequest("reading body: %v", err)
	}
	sb := &spooledBody{f: f, Fingerprint: hex.EncodeToString(h.Sum(nil))}
	c.Set(ctxSpool, sb)
	c.Request.Body = io.NopCloser(f)
	return sb, nil
}

// Close removes the spooled copy.
func (s *spooledBody) Close() error { return s.f.Close() }

// Read reads the spooled body.
func (s *spooledBody) Read(p []byte) (int, error) { return s.f.Read(p) }
