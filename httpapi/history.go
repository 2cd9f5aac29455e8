package httpapi

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/queries"
)

// histories maps each resource path to the stream category of its
// aggregate: GET /<path>/{id}/history pages through the stream
// <category>-<program>-<id>. A new aggregate gets its history endpoint by
// adding one line here, plus its path in openapi.json (copy the
// /groups/{id}/history item, with its own operationId and id parameter).
var histories = []struct{ path, category string }{
	{"partners", domain.CategoryPartner},
	{"groups", domain.CategoryGroup},
	{"template-terms", domain.CategoryTemplateTerm},
	{"connections", domain.CategoryConnection},
	{"segments", domain.CategorySegment},
	// Credentials' events carry password hashes, which no answer may
	// show: their history leaves them out (redactSecret).
	{"credentials", domain.CategoryCredential},
}

func (s *Server) historyRoutes(g *gin.RouterGroup) {
	for _, h := range histories {
		g.GET("/"+h.path+"/:id/history", s.history(h.category))
	}
	// A segment's membership events (segment.partner_entered and
	// segment.partner_left, stream segment-<program>-<id>~members, see
	// EVENTS.md). The segments read model appends them just after it
	// applies a change: with a consistency token the query waits for that
	// read model (consistency), and the event follows a moment later.
	g.GET("/segments/:id/members/history", s.historyOf(domain.CategorySegment, domain.SegmentMembersSuffix))
}

// history answers GET /<resource>/{id}/history: limit, cursor (the next
// resource version), type (repeatable: any of), since (inclusive) and
// until (exclusive), RFC 3339.
func (s *Server) history(category string) gin.HandlerFunc { return s.historyOf(category, "") }

// historyOf is history of the stream <category>-<program>-<id><suffix>. A
// suffix names a stream beside the resource's own: while it has no events
// its page is empty if the resource exists, 404 if it never did.
func (s *Server) historyOf(category, suffix string) gin.HandlerFunc {
	return func(c *gin.Context) {
		limit, cursor, err := pageParams(c)
		if err != nil {
			s.writeError(c, err)
			return
		}
		f, err := historyFilter(c)
		if err != nil {
			s.writeError(c, err)
			return
		}
		inc, include := c.Request.URL.Query()["include"]
		if include && (len(inc) != 1 || inc[0] != "activity") { // an empty or repeated one is not "none"
			s.writeError(c, fieldError("include", `must be "activity", given once`))
			return
		}
		var after uint64
		if cursor != "" && !include {
			if after, err = strconv.ParseUint(cursor, 10, 64); err != nil {
				s.writeError(c, badRequest("cursor is not one this server issued"))
				return
			}
		}
		if include && category == domain.CategoryPartner {
			s.partnerHistoryWithActivity(c, limit, cursor, f)
			return
		}
		id := c.Param("id")
		if !domain.ValidEntityID(id) {
			s.writeError(c, domain.ErrNotFound)
			return
		}
		ctx, program := c.Request.Context(), c.GetString(ctxProgram)
		page, err := s.Queries.History(ctx, category, program, id+suffix, after, limit, f)
		if suffix != "" && errors.Is(err, domain.ErrNotFound) {
			if _, err = s.Queries.History(ctx, category, program, id, 0, 1, queries.HistoryFilter{}); err == nil {
				page = queries.Page[queries.HistoryEntry]{Items: []queries.HistoryEntry{}}
			}
		}
		if err != nil {
			s.writeError(c, err)
			return
		}
		if category == domain.CategoryCredential {
			for i := range page.Items {
				page.Items[i].Data = redactSecret(page.Items[i].Data)
			}
		}
		c.JSON(200, page)
	}
}

// redactSecret is an event's data without secret.password_hash (a
// public key and its fingerprint stay: they are public). Data that does
// not decode is left out whole rather than shown.
func redactSecret(data json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return json.RawMessage(`null`)
	}
	raw, ok := m["secret"]
	if !ok {
		return data
	}
	var secret map[string]json.RawMessage
	if json.Unmarshal(raw, &secret) != nil {
		delete(m, "secret")
	} else {
		delete(secret, "password_hash")
		m["secret"], _ = json.Marshal(secret)
	}
	out, err := json.Marshal(m)
	if err != nil {
		return json.RawMessage(`null`)
	}
	return out
}

func historyFilter(c *gin.Context) (queries.HistoryFilter, error) {
	var f queries.HistoryFilter
	known := domain.EventTypes()
	for _, t := range c.QueryArray("type") {
		if !slices.Contains(known, t) {
			return f, fieldError("type", "unknown event type "+strconv.Quote(t)+" (see EVENTS.md)")
		}
		f.Types = append(f.Types, t)
	}
	var err error
	if f.Since, err = timeParam(c, "since"); err != nil {
		return f, err
	}
	if f.Until, err = timeParam(c, "until"); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, fieldError("until", "must be after since")
	}
	return f, nil
}

func timeParam(c *gin.Context, name string) (time.Time, error) {
	vals, given := c.Request.URL.Query()[name]
	if !given {
		return time.Time{}, nil
	}
	t, err := domain.ParseRFC3339(vals[0])
	if err != nil || len(vals) > 1 || !inTimeRange(t) { // an empty or repeated value is not "none"
		return time.Time{}, badRequest("%s must be one RFC 3339 time in the years 0001–9999 (UTC), e.g. 2026-03-01T00:00:00Z", name)
	}
	if t.IsZero() {
		// 0001-01-01T00:00:00Z is a time like any other, but the zero
		// time.Time reads as "not given" downstream (as_of=0001-… answered
		// the current state, until=0001-… every event). Nothing is
		// recorded in its first nanosecond, so one past it answers the same.
		t = t.Add(time.Nanosecond)
	}
	return t, nil
}

// asOfParams reads as_of (RFC 3339) and as_of_version (a resource version
// ≥ 1); ok is false when neither is given.
func asOfParams(c *gin.Context) (at queries.AsOf, ok bool, err error) {
	if at.Time, err = timeParam(c, "as_of"); err != nil {
		return at, false, err
	}
	if vals, given := c.Request.URL.Query()["as_of_version"]; given {
		n, perr := strconv.ParseUint(vals[0], 10, 64)
		if perr != nil || len(vals) > 1 {
			return at, false, badRequest("as_of_version must be a whole number")
		}
		if n == 0 {
			return at, false, fieldError("as_of_version", "must be 1 or more (the first version is 1)")
		}
		at.Version = n
	}
	return at, !at.Time.IsZero() || at.Version > 0, nil
}

// asOfOr answers the resource as of the query's as_of/as_of_version by
// folding its stream, or, without them, calls current.
func asOfOr[V any](s *Server, c *gin.Context, fold func(c *gin.Context, program, id string, at queries.AsOf) (V, error), current func(c *gin.Context)) {
	at, ok, err := asOfParams(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if !ok {
		current(c)
		return
	}
	id := c.Param("id")
	if !domain.ValidEntityID(id) {
		s.writeError(c, domain.ErrNotFound)
		return
	}
	v, err := fold(c, c.GetString(ctxProgram), id, at)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(200, v)
}
