package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/queries"
)

// MaxBulkPartners bounds the partners one bulk request may touch.
const MaxBulkPartners = 10000

// bulkWorkers is how many partners a bulk request changes at once: the
// embedded store commits concurrent appends together, so this is what makes
// 10k partners take seconds rather than minutes.
const bulkWorkers = 32

// bulkTarget selects the partners: explicit IDs, or every partner matching a
// list filter (the query parameters of GET /partners, as a JSON object of
// strings or lists of strings), validated and evaluated as the list is.
type bulkTarget struct {
	PartnerIDs []string       `json:"partner_ids"`
	Filter     map[string]any `json:"filter"`
}

type (
	bulkGroupsBody struct {
		bulkTarget
		Add    []string `json:"add"`
		Remove []string `json:"remove"`
	}
	bulkAssignBody struct {
		bulkTarget
		User json.RawMessage `json:"user"`
	}
	bulkEmailBody struct {
		bulkTarget
		Subject string `json:"subject"`
		Body    string `json:"body"`
	}
	bulkContractBody struct {
		bulkTarget
		Action string `json:"action"`
		contractBody
	}
)

// BulkResult is what happened to one partner.
type BulkResult struct {
	PartnerID string `json:"partner_id"`
	Status    string `json:"status"` // ok, unchanged, error
	Error     string `json:"error,omitempty"`
	// Code is the HTTP status the same change alone would have answered.
	Code int `json:"code,omitempty"`
}

// bulk runs one action over many partners. One partner's failure never stops
// the others; each gets its own result. With an Idempotency-Key a retried
// request is answered from the first run and applies nothing twice.
func (s *Server) bulk(c *gin.Context) {
	action := c.Param("action")
	program := c.GetString(ctxProgram)
	var run func(ctx context.Context, id string, m commands.Meta) (commands.Result, error)
	var target *bulkTarget
	switch action {
	case "groups":
		var b bulkGroupsBody
		if err := decodeJSON(c, &b); err != nil {
			s.writeError(c, err)
			return
		}
		if len(b.Add) == 0 && len(b.Remove) == 0 {
			s.writeError(c, fieldError("add", "add or remove at least one group"))
			return
		}
		for i, g := range b.Remove {
			if slices.Contains(b.Add, g) {
				s.writeError(c, fieldError("remove["+strconv.Itoa(i)+"]", "group "+g+" is also in add: add it or remove it, not both"))
				return
			}
		}
		// A group that does not exist fails the whole request (422), not
		// every partner one by one; each change checks again as it runs.
		if err := s.Commands.SetGroups.CheckGroups(c.Request.Context(), program, "add", b.Add); err != nil {
			s.writeError(c, err)
			return
		}
		target = &b.bulkTarget
		run = func(ctx context.Context, id string, m commands.Meta) (commands.Result, error) {
			res, _, err := s.Commands.SetGroups.Change(ctx, program, id, b.Add, b.Remove, m)
			return res, err
		}
	case "assigned-to":
		var b bulkAssignBody
		if err := decodeJSON(c, &b); err != nil {
			s.writeError(c, err)
			return
		}
		var user string
		if len(b.User) == 0 || (string(b.User) != "null" && (json.Unmarshal(b.User, &user) != nil || user == "")) {
			s.writeError(c, fieldError("user", "is required: a user of the brand, or null to unassign"))
			return
		}
		target = &b.bulkTarget
		run = func(ctx context.Context, id string, m commands.Meta) (commands.Result, error) {
			res, _, err := s.Commands.Assign.Handle(ctx, program, id, user, m)
			return res, err
		}
	case "email":
		var b bulkEmailBody
		if err := decodeJSON(c, &b); err != nil {
			s.writeError(c, err)
			return
		}
		if err := (domain.NewMessage{Channel: "email", Subject: b.Subject, Body: b.Body}).ValidateContent(); err != nil {
			s.writeError(c, err)
			return
		}
		target = &b.bulkTarget
		run = func(ctx context.Context, id string, m commands.Meta) (commands.Result, error) {
			res, _, err := s.Commands.SendMessage.Handle(ctx, program, id, domain.NewMessage{Channel: "email", Subject: b.Subject, Body: b.Body}, m)
			return res, err
		}
	case "contract":
		var b bulkContractBody
		if err := decodeJSON(c, &b); err != nil {
			s.writeError(c, err)
			return
		}
		move := domain.ContractMove(b.Action)
		if !slices.Contains(domain.ContractActions, move) {
			s.writeError(c, fieldError("action", "must be a contract action: propose, accept, counter, decline, retract, switch, suspend, reinstate, expire, cancel, modify"))
			return
		}
		if b.NewTemplateTerm != nil {
			s.writeError(c, fieldError("new_template_term", "create the template term first, then switch in bulk to its ID"))
			return
		}
		in, err := b.input()
		if err == nil {
			// A term that does not exist, or a date in the past, fails the
			// whole request (422), not each partner with the same error.
			err = s.Commands.MoveContract.CheckRequest(c.Request.Context(), program, move, in)
		}
		if err != nil {
			s.writeError(c, err)
			return
		}
		target = &b.bulkTarget
		run = func(ctx context.Context, id string, m commands.Meta) (commands.Result, error) {
			res, _, err := s.Commands.MoveContract.Handle(ctx, commands.MoveContract{ProgramID: program, PartnerID: id, Move: move, Input: in}, m)
			return res, err
		}
	default:
		writeProblem(c, Problem{Type: "urn:partnerd:problem:not-found", Title: "Not Found", Status: http.StatusNotFound,
			Detail: "no bulk action " + action + "; actions are groups, assigned-to, email, contract"})
		return
	}
	ids, err := s.bulkTargets(c.Request.Context(), program, target)
	if err != nil {
		s.writeError(c, err)
		return
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if m.IfMatch != nil {
		s.writeError(c, badRequest("If-Match does not apply to a bulk action"))
		return
	}
	// Run to the end even if the client goes away (see importPartners).
	results, last, writes := s.runBulk(context.WithoutCancel(c.Request.Context()), ids, m, run)
	if slices.ContainsFunc(results, func(r BulkResult) bool { return r.Code >= 500 }) {
		c.Set(ctxIdemRetry, true)
	}
	tok := s.token(c, writes)
	c.Header("X-Position", last.Position.String())
	c.JSON(http.StatusOK, gin.H{"results": results, "position": last.Position.String(), "consistency_token": tok})
}

// bulkTargets validates the target and returns the partner IDs, deduplicated,
// in the order given.
func (s *Server) bulkTargets(ctx context.Context, program string, t *bulkTarget) ([]string, error) {
	switch {
	case t.PartnerIDs != nil && t.Filter != nil:
		// Also an empty list beside a filter: a client that sends its
		// (empty) selection with a default filter of {} must not change
		// every partner of the program.
		return nil, fieldError("partner_ids", "give partner_ids or filter, not both")
	case t.Filter != nil:
		q := url.Values{}
		for k, v := range t.Filter {
			switch v := v.(type) {
			case string:
				q.Add(k, v)
			case []any:
				for _, x := range v {
					str, ok := x.(string)
					if !ok {
						return nil, fieldError("filter."+k, "must be a string or a list of strings")
					}
					q.Add(k, str)
				}
			default:
				return nil, fieldError("filter."+k, "must be a string or a list of strings")
			}
		}
		lq, _, err := parseListQuery(q)
		var ve *domain.ValidationError
		if errors.As(err, &ve) { // name the fields as the body has them
			fields := make([]domain.FieldError, len(ve.Fields))
			for i, f := range ve.Fields {
				fields[i] = domain.FieldError{Field: "filter." + f.Field, Message: f.Message}
			}
			return nil, &domain.ValidationError{Fields: fields}
		}
		if err != nil {
			return nil, err
		}
		page, err := s.Queries.SearchPartnerIDs(ctx, program, lq, MaxBulkPartners+1, "")
		if err != nil {
			return nil, err
		}
		ids := page.IDs
		if page.Total > MaxBulkPartners || len(ids) > MaxBulkPartners {
			return nil, fieldError("filter", "matches more than 10000 partners; narrow it")
		}
		return ids, nil
	case len(t.PartnerIDs) == 0:
		return nil, fieldError("partner_ids", "give the partners to change: partner_ids or filter")
	case len(t.PartnerIDs) > MaxBulkPartners:
		return nil, fieldError("partner_ids", "at most 10000 partners per bulk request")
	}
	seen := make(map[string]bool, len(t.PartnerIDs))
	ids := make([]string, 0, len(t.PartnerIDs))
	for _, id := range t.PartnerIDs {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// runBulk applies run to every partner with bulkWorkers at once. Results
// keep the order of ids; last is the result at the highest position (the
// answer's position); writes are every stream written and its version (the
// answer's consistency token).
func (s *Server) runBulk(ctx context.Context, ids []string, m commands.Meta, run func(context.Context, string, commands.Meta) (commands.Result, error)) ([]BulkResult, commands.Result, queries.Writes) {
	results := make([]BulkResult, len(ids))
	var mu sync.Mutex
	var last commands.Result
	writes := queries.Writes{}
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(bulkWorkers, len(ids)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				id := ids[i]
				r := BulkResult{PartnerID: id, Status: "ok"}
				var res commands.Result
				var err error
				if !domain.ValidEntityID(id) {
					err = domain.ErrNotFound
				} else {
					res, err = run(ctx, id, m)
				}
				switch {
				case err != nil:
					p := classify(err)
					r.Status, r.Code, r.Error = "error", p.Status, bulkError(p)
					if p.Status == http.StatusInternalServerError {
						s.log.Error("bulk action failed for a partner", "partner", id, "request_id", m.CorrelationID, "err", err)
					}
				case res.Appended == 0 && !res.AlreadyApplied:
					// A retry's partner that the first attempt changed (its
					// event carries the request's key) is "ok", as it was.
					r.Status = "unchanged"
				}
				results[i] = r
				mu.Lock()
				if err == nil && res.Stream != "" && res.Position >= last.Position {
					last = res
				}
				if err == nil {
					// Unchanged partners too: the answer says what they are
					// now, which may be an earlier write still being projected.
					writes.Add(res.Stream, res.Version)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range ids {
		work <- i
	}
	close(work)
	wg.Wait()
	return results, last, writes
}

// bulkError is one line saying why a partner was not changed.
func bulkError(p Problem) string {
	if len(p.Errors) == 0 {
		return p.Detail
	}
	parts := make([]string, len(p.Errors))
	for i, f := range p.Errors {
		parts[i] = f.Field + ": " + f.Message
	}
	return strings.Join(parts, "; ")
}
