// Package httpapi is the gin HTTP adapter: routes, request parsing and
// validation, problem+json errors, auth, idempotency, read-your-writes.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"syscall"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
	"github.com/partnerd/partnerd/queries"
)

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Errors lists field errors; always present (empty when the problem
	// is not about fields), so a client can read it without a check.
	Errors []domain.FieldError `json:"errors"`
}

// errBadRequest marks malformed input (400).
type errBadRequest struct{ msg string }

func (e errBadRequest) Error() string { return e.msg }

// errUnauthorized marks a missing or invalid API key (401).
var errUnauthorized = errors.New("missing or invalid API key")

// errRecovering: the read models (API keys among them) are being rebuilt
// after Redis lost them (503).
var errRecovering = errors.New("the read models are being rebuilt after Redis lost its data; retry shortly")

// errBuilding: a query of read models that are being built (at start, or
// after Redis lost them) is not answered with part of them (503).
var errBuilding = errors.New("the read models are being built (partnerd started, or Redis lost its data); retry shortly")

// errTooLarge marks a body over the limit (413).
var errTooLarge = errors.New("request body too large")

func badRequest(format string, args ...any) error { return errBadRequest{fmt.Sprintf(format, args...)} }

func fieldError(field, msg string) error {
	return &domain.ValidationError{Fields: []domain.FieldError{{Field: field, Message: msg}}}
}

// writeError answers an error as problem+json; classify decides its status.
func (s *Server) writeError(c *gin.Context, err error) {
	p := classify(err)
	switch {
	case p.Status == http.StatusUnauthorized:
		c.Header("WWW-Authenticate", `Bearer realm="partnerd"`)
	case p.Status == http.StatusServiceUnavailable, errors.Is(err, errIdempotencyInFlight):
		c.Header("Retry-After", "1")
	case p.Status == http.StatusInternalServerError:
		s.log.Error("request failed", "method", c.Request.Method, "path", c.FullPath(), "request_id", c.GetString(ctxRequestID), "err", err)
	}
	writeProblem(c, p)
}

// classify maps an error to its problem document, in this one place. An
// unexpected error becomes a 500 whose detail reveals nothing.
func classify(err error) Problem {
	var ve *domain.ValidationError
	var br errBadRequest
	p := Problem{Status: http.StatusInternalServerError, Title: "Internal Server Error", Detail: "an unexpected error occurred; it was logged"}
	switch {
	case errors.As(err, &ve):
		p = Problem{Status: http.StatusUnprocessableEntity, Title: "Unprocessable Content", Detail: "the request is well-formed but invalid", Errors: ve.Fields}
	case errors.As(err, &br):
		p = Problem{Status: http.StatusBadRequest, Title: "Bad Request", Detail: br.msg}
	case errors.Is(err, errUnauthorized):
		p = Problem{Status: http.StatusUnauthorized, Title: "Unauthorized", Detail: err.Error()}
	case errors.Is(err, errTooLarge):
		p = Problem{Status: http.StatusRequestEntityTooLarge, Title: "Content Too Large", Detail: err.Error()}
	case errors.Is(err, domain.ErrNotFound), errors.Is(err, ErrUnknownProjection):
		p = Problem{Status: http.StatusNotFound, Title: "Not Found", Detail: err.Error()}
	case errors.Is(err, domain.ErrAlreadyExists), errors.Is(err, domain.ErrConflict), errors.Is(err, commands.ErrStale),
		errors.Is(err, projections.ErrRebuildRunning), errors.Is(err, errIdempotencyInFlight):
		p = Problem{Status: http.StatusConflict, Title: "Conflict", Detail: err.Error()}
	case errors.Is(err, queries.ErrBadCursor):
		p = Problem{Status: http.StatusBadRequest, Title: "Bad Request", Detail: queries.ErrBadCursor.Error()}
	case errors.Is(err, queries.ErrBadToken), errors.Is(err, queries.ErrTokenExpired):
		p = Problem{Status: http.StatusBadRequest, Title: "Bad Request", Detail: "X-Consistency-Token: " + err.Error()}
	case errors.Is(err, queries.ErrNotCaughtUp):
		p = Problem{Status: http.StatusServiceUnavailable, Title: "Service Unavailable", Detail: err.Error()}
	case errors.Is(err, errRecovering), errors.Is(err, errBuilding), errors.Is(err, commands.ErrContended):
		p = Problem{Status: http.StatusServiceUnavailable, Title: "Service Unavailable", Detail: err.Error()}
	case dependencyDown(err):
		detail := "a backing service (Redis or the event store) is unreachable; retry later"
		if timedOut(err) {
			// Most often an overloaded service, not one that is down.
			detail = "a backing service (Redis or the event store) did not answer in time; retry later"
		}
		p = Problem{Status: http.StatusServiceUnavailable, Title: "Service Unavailable", Detail: detail}
	}
	p.Type = "about:blank"
	if p.Status != http.StatusInternalServerError {
		p.Type = "urn:partnerd:problem:" + strings.ToLower(strings.ReplaceAll(p.Title, " ", "-"))
	}
	return p
}

// dependencyDown reports an error of a backing service that is down or
// unreachable (refused, reset, timed out, pool exhausted) or not serving
// yet (a Redis still loading its data after a restart): the request may
// succeed later, so it is a 503 with Retry-After, not a 500.
func dependencyDown(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, redis.ErrPoolTimeout) {
		return true
	}
	var re redis.Error
	if errors.As(err, &re) {
		for _, p := range []string{"LOADING ", "BUSY ", "TRYAGAIN ", "CLUSTERDOWN ", "MASTERDOWN "} {
			if strings.HasPrefix(re.Error(), p) {
				return true
			}
		}
	}
	return false
}

// timedOut reports a dependency error that is a timeout (of the network,
// the connection pool, or the request's deadline).
func timedOut(err error) bool {
	var ne net.Error
	return (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, context.DeadlineExceeded)
}

func writeProblem(c *gin.Context, p Problem) {
	if p.Errors == nil {
		p.Errors = []domain.FieldError{}
	}
	if p.Detail == "" {
		p.Detail = p.Title
	}
	body, _ := json.Marshal(p)
	c.Data(p.Status, "application/problem+json", body)
	c.Abort()
}

// Body limits.
const (
	maxJSONBody = 1 << 20
	maxCSVBody  = 20 << 20
)

// decodeJSON reads one JSON value into v, strictly: unknown fields are 422,
// malformed JSON 400, a body over the limit 413.
func decodeJSON(c *gin.Context, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxJSONBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return badRequest("reading body: %v", err)
	}
	return decodeJSONBytes(body, v)
}

func decodeJSONBytes(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return badRequest("a JSON body is required")
	}
	if err := checkJSONText(body); err != nil {
		return err
	}
	if err := checkJSONShape(body); err != nil {
		return err
	}
	if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		return badRequest("the body must be a JSON object, not null")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
			return badRequest("malformed JSON: %v", err)
		case errors.As(err, &te):
			field := domain.JSONField(te)
			if field == "" {
				return badRequest("the body must be a JSON %s", jsonKind(te.Type.Kind().String()))
			}
			kind := jsonKind(te.Type.Kind().String())
			if kind == "number" && te.Type.Kind() != reflect.Float32 && te.Type.Kind() != reflect.Float64 {
				if v := strings.TrimPrefix(te.Value, "number "); v != te.Value && !strings.ContainsAny(v, ".eE") {
					return fieldError(field, "is out of range ("+v+" is too far from 0)")
				}
				kind = "whole number"
			}
			return fieldError(field, fmt.Sprintf("must be a JSON %s, not %s", kind, te.Value))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return fieldError(name, "is not a known field")
		default:
			return badRequest("malformed JSON: %v", err)
		}
	}
	if dec.More() {
		return badRequest("malformed JSON: more than one value in the body")
	}
	if nr, ok := v.(nullRefuser); ok {
		return refuseNulls(body, nr.notNullable())
	}
	return nil
}

// nullRefuser is a merge-patch body with fields that null cannot clear
// (they are required, or follow from others): decoded into a pointer, a
// null would read as "not given" and the patch as changing nothing.
type nullRefuser interface{ notNullable() map[string]string }

// refuseNulls names each top-level field of body that is null and listed
// in why (field → why it cannot be cleared).
func refuseNulls(body []byte, why map[string]string) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil
	}
	var bad []domain.FieldError
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if msg, ok := why[k]; ok && bytes.Equal(bytes.TrimSpace(top[k]), []byte("null")) {
			bad = append(bad, domain.FieldError{Field: k, Message: "cannot be cleared (null): " + msg})
		}
	}
	if len(bad) > 0 {
		return &domain.ValidationError{Fields: bad}
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	case "bool":
		return "boolean"
	}
	return "number"
}
