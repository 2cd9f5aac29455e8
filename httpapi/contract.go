package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
)

// contractBody is the body of POST /partners/{id}/contract/{action}. Times
// are RFC 3339 or dates (YYYY-MM-DD, midnight UTC).
type contractBody struct {
	By              string           `json:"by"`
	TemplateTermID  string           `json:"template_term_id"`
	StartDate       string           `json:"start_date"`
	EndDate         string           `json:"end_date"`
	RespondBy       string           `json:"respond_by"`
	EffectiveAt     string           `json:"effective_at"`
	Reason          string           `json:"reason"`
	Revert          json.RawMessage  `json:"revert"` // "expiry", "switch" or a list of them
	NewTemplateTerm *newTemplateTerm `json:"new_template_term"`
}

type newTemplateTerm struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

func (s *Server) moveContract(c *gin.Context) {
	move := domain.ContractMove(c.Param("action"))
	if !slices.Contains(domain.ContractActions, move) {
		writeProblem(c, Problem{Type: "urn:partnerd:problem:not-found", Title: "Not Found", Status: http.StatusNotFound,
			Detail: "no contract action " + string(move) + "; actions are propose, accept, counter, decline, retract, switch, suspend, reinstate, expire, cancel, modify"})
		return
	}
	var body contractBody
	if err := decodeOptionalJSON(c, &body); err != nil {
		s.writeError(c, err)
		return
	}
	in, err := body.input()
	if err != nil {
		s.writeError(c, err)
		return
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	cmd := commands.MoveContract{ProgramID: c.GetString(ctxProgram), PartnerID: c.Param("id"), Move: move, Input: in}
	if nt := body.NewTemplateTerm; nt != nil {
		cmd.NewTerm = &domain.NewTemplateTerm{ID: nt.ID, Name: nt.Name, Description: nt.Description}
	}
	res, st, err := s.Commands.MoveContract.Handle(c.Request.Context(), cmd, m)
	if err != nil {
		s.writeError(c, err)
		return
	}
	answerCommand(c, http.StatusOK, res, projections.ViewOf(st, res.Version))
}

// input turns the body into the domain's input, reporting every bad time
// and revert value at once.
func (b contractBody) input() (domain.ContractInput, error) {
	in := domain.ContractInput{By: domain.Side(b.By), TemplateTermID: b.TemplateTermID, Reason: b.Reason}
	var bad []domain.FieldError
	for _, f := range []struct {
		name string
		raw  string
		to   *time.Time
	}{
		{name: "start_date", raw: b.StartDate, to: &in.StartDate},
		{name: "end_date", raw: b.EndDate, to: &in.EndDate},
		{name: "respond_by", raw: b.RespondBy, to: &in.RespondBy},
		{name: "effective_at", raw: b.EffectiveAt, to: &in.EffectiveAt},
	} {
		if f.raw == "" {
			continue
		}
		t, err := parseTime(f.raw)
		if err != nil {
			bad = append(bad, domain.FieldError{Field: f.name, Message: "must be an RFC 3339 time or a date (YYYY-MM-DD) in the years 0001–9999 (UTC)"})
			continue
		}
		*f.to = t
	}
	var reverts []string
	if len(b.Revert) > 0 && json.Unmarshal(b.Revert, &reverts) != nil {
		var one string
		if json.Unmarshal(b.Revert, &one) == nil {
			reverts = []string{one}
		} else {
			reverts = []string{"?"}
		}
	}
	for _, r := range reverts {
		switch r {
		case domain.ScheduleExpiry:
			in.RevertExpiry = true
		case domain.ScheduleSwitch:
			in.RevertSwitch = true
		default:
			bad = append(bad, domain.FieldError{Field: "revert", Message: `must be "expiry", "switch" or a list of them`})
		}
	}
	if len(bad) > 0 {
		return in, &domain.ValidationError{Fields: bad}
	}
	return in, nil
}

// parseTime reads an RFC 3339 time, or a date as midnight UTC, within the
// years 0001–9999 in UTC (see inTimeRange).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := domain.ParseRFC3339(s)
	if err == nil && !inTimeRange(t) {
		err = errTimeRange
	}
	return t.UTC(), err
}

// inTimeRange: times are kept in UTC and written as RFC 3339, which has
// four-digit years; 9999-12-31T23:00:00-05:00 parses, but is in the year
// 10000 in UTC (its event could not be encoded: a 500, an audit found).
func inTimeRange(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1 && y <= 9999
}

var errTimeRange = errors.New("time outside the years 0001–9999 (UTC)")
