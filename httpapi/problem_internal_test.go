package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
)

type redisErr string

func (e redisErr) Error() string { return string(e) }
func (redisErr) RedisError()     {}

// A backing service that is down is a 503 (retry later), never a 500; a
// Redis error about the request itself stays a 500.
func TestClassifyDependencyDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{name: "dial refused", err: fmt.Errorf("read guards: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), want: 503},
		{name: "reset", err: fmt.Errorf("x: %w", syscall.ECONNRESET), want: 503},
		{name: "redis loading", err: fmt.Errorf("auth: %w", redisErr("LOADING Redis is loading the dataset in memory")), want: 503},
		{name: "redis wrong type", err: redisErr("WRONGTYPE Operation against a key holding the wrong kind of value"), want: 500},
		{name: "canceled", err: fmt.Errorf("x: %w", context.Canceled), want: 500},
		{name: "not found", err: domain.ErrNotFound, want: 404},
		{name: "lost every race", err: fmt.Errorf("partner-acme-x: %w", commands.ErrContended), want: 503},
		{name: "other", err: errors.New("boom"), want: http.StatusInternalServerError},
	} {
		if got := classify(tc.err).Status; got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// A dependency that timed out is most often overloaded, not down: the
// problem says so, where a refused connection says unreachable.
func TestTimeoutIsNotCalledUnreachable(t *testing.T) {
	slow := classify(fmt.Errorf("list partners: %w", &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}))
	down := classify(fmt.Errorf("list partners: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}))
	if slow.Status != 503 || !strings.Contains(slow.Detail, "did not answer in time") {
		t.Errorf("timeout: %d %q", slow.Status, slow.Detail)
	}
	if down.Status != 503 || !strings.Contains(down.Detail, "unreachable") {
		t.Errorf("refused: %d %q", down.Status, down.Detail)
	}
}

// Every problem carries the whole RFC 9457 shape of API.md: errors is an
// empty list when the problem is not about fields, and detail is never
// left out.
func TestProblemsAlwaysCarryErrorsAndDetail(t *testing.T) {
	for _, p := range []Problem{
		classify(domain.ErrNotFound),
		classify(badRequest("the body must be a JSON object")),
		{Type: "urn:partnerd:problem:method-not-allowed", Title: "Method Not Allowed", Status: 405},
		classify(fieldError("name", "is required")),
	} {
		w := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(w)
		writeProblem(c, p)
		var got map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		errs, ok := got["errors"].([]any)
		if !ok {
			t.Errorf("%d: errors = %#v, want a list: %s", p.Status, got["errors"], w.Body)
		}
		if d, _ := got["detail"].(string); d == "" {
			t.Errorf("%d: no detail: %s", p.Status, w.Body)
		}
		if p.Status == 422 && len(errs) != 1 {
			t.Errorf("422: errors = %v", errs)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%d: content type %q", p.Status, ct)
		}
	}
}

// A body that is not UTF-8, or escapes half a surrogate pair, is 400:
// the decoder would store U+FFFD instead of the text sent.
func TestJSONBodiesMustBeText(t *testing.T) {
	for body, ok := range map[string]bool{
		`{"name":"a\u00e9b"}`:                       true,
		`{"name":"😀 \ud83d\ude00"}`:                 true,
		`{"name":"\\ud800 is text, not an escape"}`: true,
		`{"name":"tab\t\"q\" \\"}`:                  true,
		"{\"name\":\"a\xff\xfeb\"}":                 false,
		`{"name":"\ud800"}`:                         false,
		`{"name":"\udc00x"}`:                        false,
		`{"name":"\ud800\u0041"}`:                   false,
		`{"name":"\ud83d"}`:                         false,
	} {
		var v struct {
			Name string `json:"name"`
		}
		err := decodeJSONBytes([]byte(body), &v)
		if ok && err != nil {
			t.Errorf("%q: %v", body, err)
		}
		if !ok && classify(err).Status != 400 {
			t.Errorf("%q: %v, want a 400", body, err)
		}
	}
}

// Type errors name the API's fields, without the Go names of embedded
// structs, and the body's kind in JSON terms.
func TestDecodeJSONNamesAPIFields(t *testing.T) {
	var b struct {
		bulkTarget
		Add []string `json:"add"`
	}
	err := decodeJSONBytes([]byte(`{"partner_ids":"p1"}`), &b)
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != "partner_ids" {
		t.Fatalf("partner_ids as a string: %v", err)
	}
	if err := decodeJSONBytes([]byte(`["p1"]`), &b); err == nil || err.Error() != "the body must be a JSON object" {
		t.Fatalf("an array body: %v", err)
	}
}

// A number that is not a whole one, or out of range, says so in JSON terms.
func TestDecodeJSONNumberErrors(t *testing.T) {
	var b struct {
		N int64 `json:"n"`
	}
	for body, want := range map[string]string{
		`{"n":1.5}`:                 "must be a JSON whole number, not number 1.5",
		`{"n":9223372036854775808}`: "is out of range",
		`{"n":"x"}`:                 "must be a JSON whole number, not string",
	} {
		err := decodeJSONBytes([]byte(body), &b)
		var ve *domain.ValidationError
		if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != "n" || !strings.Contains(ve.Fields[0].Message, want) {
			t.Errorf("%s: %v, want a field error on n saying %q", body, err, want)
		}
	}
}
