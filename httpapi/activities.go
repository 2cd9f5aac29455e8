package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
	"github.com/partnerd/partnerd/queries"
)

// activityBody is one activity, or a batch under "activities".
type activityBody struct {
	domain.NewActivity
	Activities *[]domain.NewActivity `json:"activities"`
}

// activityResult is one item of a batch answer.
type activityResult struct {
	Index      int                 `json:"index"`
	Status     string              `json:"status"`
	ActivityID string              `json:"activity_id,omitempty"`
	Position   string              `json:"position,omitempty"`
	Error      string              `json:"error,omitempty"`
	Errors     []domain.FieldError `json:"errors,omitempty"`
}

type batchAnswer struct {
	Results          []activityResult `json:"results"`
	Accepted         int              `json:"accepted"`
	Duplicates       int              `json:"duplicates"`
	Rejected         int              `json:"rejected"`
	Position         string           `json:"position"`
	ConsistencyToken string           `json:"consistency_token,omitempty"`
}

// recordActivities: POST /activities. One activity: 202 with it (422 when
// invalid). A batch: 202 with per-item results; bad items are reported by
// index and the good ones kept.
func (s *Server) recordActivities(c *gin.Context) {
	body, err := readBody(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	items, batch, itemErrs, err := decodeActivities(body)
	if err != nil {
		s.writeError(c, err)
		return
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	// Items that did not even decode are left out of the command.
	var valid []domain.NewActivity
	var at []int
	for i := range items {
		if itemErrs[i] == nil {
			valid = append(valid, items[i])
			at = append(at, i)
		}
	}
	outs, res, err := s.Commands.RecordActivities.Handle(c.Request.Context(), c.GetString(ctxProgram), valid, m)
	if err != nil {
		s.writeError(c, err)
		return
	}
	writes := queries.Writes{}
	for _, o := range outs {
		if o.Status == commands.ActivityAccepted {
			writes.Add(domain.ActivityStream(c.GetString(ctxProgram), o.Activity.PartnerID), o.Version)
		}
	}
	tok := s.token(c, writes)
	c.Header("X-Position", res.Position.String())
	if !batch {
		o := outs[0]
		if o.Status == commands.ActivityRejected {
			s.writeError(c, o.Err)
			return
		}
		// The activity's position, as in the body: a duplicate's is where
		// the first request put it (the append itself wrote nothing).
		c.Header("X-Position", o.Position.String())
		view := projections.ActivityView{Activity: o.Activity.Activity, RecordedAt: o.Activity.RecordedAt, Position: o.Position.String()}
		doc, _ := mergeJSON(view, map[string]string{"consistency_token": tok})
		if o.Status == commands.ActivityDuplicate {
			// Every command answer has a token; a duplicate wrote nothing, so
			// its token is the empty batch's (the first request's token is
			// the one that waits for the activity).
			doc, _ = json.Marshal(map[string]string{"activity_id": o.Activity.ActivityID, "status": o.Status, "position": o.Position.String(),
				"consistency_token": tok})
		}
		c.Data(http.StatusAccepted, "application/json; charset=utf-8", doc)
		return
	}
	ans := batchAnswer{Results: make([]activityResult, len(items)), Position: res.Position.String(), ConsistencyToken: tok}
	for i, e := range itemErrs {
		if e != nil {
			ans.Results[i] = itemError(i, e)
		}
	}
	for j, o := range outs {
		i := at[j]
		switch o.Status {
		case commands.ActivityRejected:
			ans.Results[i] = itemError(i, o.Err)
		default:
			ans.Results[i] = activityResult{Index: i, Status: o.Status, ActivityID: o.Activity.ActivityID, Position: o.Position.String()}
		}
	}
	for _, r := range ans.Results {
		switch r.Status {
		case commands.ActivityAccepted:
			ans.Accepted++
		case commands.ActivityDuplicate:
			ans.Duplicates++
		default:
			ans.Rejected++
		}
	}
	c.JSON(http.StatusAccepted, ans)
}

func itemError(i int, err error) activityResult {
	r := activityResult{Index: i, Status: commands.ActivityRejected, Error: err.Error()}
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		r.Errors = ve.Fields
		parts := make([]string, len(ve.Fields))
		for k, f := range ve.Fields {
			parts[k] = f.Field + ": " + f.Message
		}
		r.Error = strings.Join(parts, "; ")
	}
	var br errBadRequest
	if errors.As(err, &br) {
		r.Error = br.msg
	}
	return r
}

func readBody(c *gin.Context) ([]byte, error) {
	var buf bytes.Buffer
	if c.Request.ContentLength > 0 && c.Request.ContentLength <= maxJSONBody {
		buf.Grow(int(c.Request.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(c.Writer, c.Request.Body, maxJSONBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, badRequest("reading body: %v", err)
	}
	return buf.Bytes(), nil
}

// decodeActivities reads one activity or a batch. The whole body is
// decoded strictly in one pass; only when that fails is a batch decoded
// item by item, to report each malformed item by its index (itemErrs)
// while keeping the others.
func decodeActivities(body []byte) (items []domain.NewActivity, batch bool, itemErrs []error, err error) {
	var b activityBody
	if err = decodeJSONBytes(body, &b); err == nil {
		if b.Activities == nil {
			return []domain.NewActivity{b.NewActivity}, false, make([]error, 1), nil
		}
		if b.NewActivity != (domain.NewActivity{}) {
			return nil, true, nil, fieldError("activities", "send either one activity or a batch under \"activities\", not both")
		}
		items = *b.Activities
		if err := checkBatchSize(len(items)); err != nil {
			return nil, true, nil, err
		}
		return items, true, make([]error, len(items)), nil
	}
	var raw struct {
		Activities []json.RawMessage `json:"activities"`
	}
	if json.Unmarshal(body, &raw) != nil || raw.Activities == nil {
		return nil, false, nil, err // not a batch: the single activity's error
	}
	var whole map[string]json.RawMessage
	if json.Unmarshal(body, &whole) == nil && len(whole) > 1 {
		return nil, true, nil, fieldError("activities", "send either one activity or a batch under \"activities\", not both")
	}
	if err := checkBatchSize(len(raw.Activities)); err != nil {
		return nil, true, nil, err
	}
	items = make([]domain.NewActivity, len(raw.Activities))
	itemErrs = make([]error, len(raw.Activities))
	for i, r := range raw.Activities {
		itemErrs[i] = decodeJSONBytes(r, &items[i])
	}
	return items, true, itemErrs, nil
}

func checkBatchSize(n int) error {
	if n < 1 || n > commands.MaxActivityBatch {
		return fieldError("activities", fmt.Sprintf("must hold 1 to %d activities, not %d", commands.MaxActivityBatch, n))
	}
	return nil
}

// activityFilter parses partner_id, flavor, message_id (repeatable),
// since and until; allowed are the extra parameters the route accepts.
func activityFilter(c *gin.Context, allowed ...string) (queries.ActivityFilter, error) {
	var f queries.ActivityFilter
	var fields []domain.FieldError
	bad := func(field, msg string) { fields = append(fields, domain.FieldError{Field: field, Message: msg}) }
	for name, vals := range c.Request.URL.Query() {
		switch name {
		case "partner_id", "message_id":
			for _, v := range vals {
				if !domain.ValidEntityID(v) {
					bad(name, fmt.Sprintf("%q is not a valid ID", v))
				}
			}
			if name == "partner_id" {
				f.PartnerIDs = vals
			} else {
				f.MessageIDs = vals
			}
		case "flavor":
			for _, v := range vals {
				if !domain.ValidFlavor(v) {
					bad(name, fmt.Sprintf("%q: a flavor %s", v, domain.EntityIDRule))
				}
			}
			f.Flavors = vals
		case "since", "until":
			if len(vals) != 1 {
				return f, badRequest("%s may be given once", name)
			}
			t, err := domain.ParseRFC3339(vals[0])
			if err != nil {
				return f, badRequest("%s must be an RFC 3339 time, e.g. 2026-03-01T00:00:00Z", name)
			}
			if name == "since" {
				f.Since = &t
			} else {
				f.Until = &t
			}
		default:
			if !contains(allowed, name) {
				return f, badRequest("unknown query parameter %q", name)
			}
		}
	}
	if f.Since != nil && f.Until != nil && !f.Since.Before(*f.Until) {
		bad("until", "must be after since") // as on the histories: an empty window is a mistake
	}
	if len(fields) > 0 {
		return f, &domain.ValidationError{Fields: fields}
	}
	return f, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// listActivities: GET /activities, newest first.
func (s *Server) listActivities(c *gin.Context) {
	f, err := activityFilter(c, "limit", "cursor")
	if err != nil {
		s.writeError(c, err)
		return
	}
	limit, cursor, err := pageParams(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	page, err := s.Queries.Activities(c.Request.Context(), c.GetString(ctxProgram), f, limit, cursor)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

// Live stream tuning.
const (
	streamHeartbeat = 15 * time.Second // comment line that keeps proxies from closing an idle stream
	streamWriteWait = 10 * time.Second // a write that takes longer ends the stream
	resumeMax       = 100000           // activities replayed for one Last-Event-ID (the log keeps at least as many)
)

// streamActivities: GET /activities/stream, Server-Sent Events. Each
// event is "id: <activity log entry ID>", "event: activity", "data:
// <activity>"; IDs grow in the order activities were projected. With
// Last-Event-ID (header, or ?last_event_id=) it first replays the log
// after that ID, then goes live; the live subscription is opened before
// the replay and its entries up to the last replayed one are skipped, so
// there is neither a gap nor a repeat.
func (s *Server) streamActivities(c *gin.Context) {
	f, err := activityFilter(c, "last_event_id")
	if err != nil {
		s.writeError(c, err)
		return
	}
	last := c.GetHeader("Last-Event-ID")
	if last == "" {
		last = c.Query("last_event_id")
	}
	if last != "" && !queries.ValidLogID(last) {
		s.writeError(c, badRequest("Last-Event-ID must be the id of an event of this stream"))
		return
	}
	if s.Hub == nil {
		s.writeError(c, errors.New("no activity hub"))
		return
	}
	program, ctx := c.GetString(ctxProgram), c.Request.Context()
	buf := s.StreamBuffer
	if buf <= 0 {
		buf = 8192
	}
	sub, err := s.Hub.Subscribe(ctx, program, f, buf)
	if err != nil {
		s.writeError(c, err)
		return
	}
	defer s.Hub.Unsubscribe(sub)
	w := c.Writer
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(la queries.LiveActivity) error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteWait))
		_, err := fmt.Fprintf(w, "id: %s\nevent: activity\ndata: %s\n\n", la.ID, la.Doc)
		return err
	}
	_ = rc.SetWriteDeadline(time.Now().Add(streamWriteWait))
	if _, err := w.WriteString(": stream open\n\n"); err != nil {
		return
	}
	if last != "" && last != "0-0" {
		// An ID older than the log's oldest entry is from entries trimmed
		// since, or from a log rebuilt since (a restart on the embedded
		// Redis, a Redis that lost its data: every entry has a new ID, in
		// another order). Either way what the client missed cannot be told
		// apart from what it saw: say so, rather than replay with a gap or
		// repeats, and go on from now. An ID newer than the newest entry
		// was never one of this log's (another program's, a log rebuilt
		// on a host whose clock ran behind): taken as is, the stream would
		// skip every activity until that moment.
		first, err := s.Queries.LogFirst(ctx, program)
		if err != nil {
			s.log.Warn("activity stream: reading the log failed", "err", err)
			return
		}
		_, tail, err := s.Queries.LogAfter(ctx, program, "", nil, 0)
		if err != nil {
			s.log.Warn("activity stream: reading the log failed", "err", err)
			return
		}
		reason := ""
		switch {
		case first != "" && logIDAfter(first, last):
			reason = "Last-Event-ID is older than the activity log (trimmed or rebuilt since): what was missed cannot be replayed exactly; re-read GET /activities, then use the IDs of this stream"
		case logIDAfter(last, tail):
			reason = "Last-Event-ID is newer than the activity log's newest entry, so it is not an ID of this stream (another program's, or a log rebuilt since): re-read GET /activities, then use the IDs of this stream"
		}
		if reason != "" {
			last = tail
			_ = rc.SetWriteDeadline(time.Now().Add(streamWriteWait))
			if _, err := fmt.Fprintf(w, "event: reset\ndata: {\"reason\":%q,\"oldest_id\":%q,\"newest_id\":%q}\n\n", reason, first, tail); err != nil {
				return
			}
		}
	}
	if last != "" {
		for sent := 0; sent < resumeMax; {
			page, next, err := s.Queries.LogAfter(ctx, program, last, &f, 512)
			if err != nil {
				s.log.Warn("activity stream: replay failed", "err", err)
				return
			}
			for _, la := range page {
				if err := send(la); err != nil {
					return
				}
			}
			sent += len(page)
			if next == last {
				break
			}
			last = next
		}
	}
	if err := rc.Flush(); err != nil {
		return
	}
	beat := time.NewTicker(streamHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			return // the server shuts down: the client reconnects elsewhere or later
		case <-sub.Gone:
			_, _ = w.WriteString("event: dropped\ndata: {\"reason\":\"the client fell too far behind; reconnect with Last-Event-ID\"}\n\n")
			_ = rc.Flush()
			return
		case <-beat.C:
			_ = rc.SetWriteDeadline(time.Now().Add(streamWriteWait))
			if _, err := w.WriteString(": ping\n\n"); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		case la := <-sub.C:
			for pending := true; pending; {
				if last == "" || logIDAfter(la.ID, last) {
					if err := send(la); err != nil {
						return
					}
				}
				select {
				case la = <-sub.C:
				default:
					pending = false
				}
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}

// logIDAfter reports whether log entry ID a comes after b ("<ms>-<seq>").
func logIDAfter(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	amn, _ := strconv.ParseUint(am, 10, 64)
	bmn, _ := strconv.ParseUint(bm, 10, 64)
	if amn != bmn {
		return amn > bmn
	}
	asn, _ := strconv.ParseUint(as, 10, 64)
	bsn, _ := strconv.ParseUint(bs, 10, 64)
	return asn > bsn
}

// partnerHistoryWithActivity: GET /partners/{id}/history?include=activity.
func (s *Server) partnerHistoryWithActivity(c *gin.Context, limit int, cursor string, f queries.HistoryFilter) {
	id := c.Param("id")
	if !domain.ValidEntityID(id) {
		s.writeError(c, domain.ErrNotFound)
		return
	}
	page, err := s.Queries.PartnerHistoryWithActivity(c.Request.Context(), c.GetString(ctxProgram), id, cursor, limit, f)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}
