package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
)

// assignBody is the body of PUT /partners/{id}/assigned-to: user is a
// string, or null to unassign; it must be present.
type assignBody struct {
	User json.RawMessage `json:"user"`
}

func (s *Server) assignPartner(c *gin.Context) {
	write(s, c, http.StatusOK, func(body *assignBody, m commands.Meta) (commands.Result, any, error) {
		var user string
		switch {
		case len(body.User) == 0:
			return commands.Result{}, nil, fieldError("user", "is required: a user of the brand, or null to unassign")
		case string(body.User) == "null":
		case json.Unmarshal(body.User, &user) != nil:
			return commands.Result{}, nil, fieldError("user", "must be a JSON string, or null to unassign")
		case user == "":
			return commands.Result{}, nil, fieldError("user", "must not be empty; send null to unassign")
		}
		res, st, err := s.Commands.Assign.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), user, m)
		return res, projections.ViewOf(st, res.Version), err
	})
}

type prospectStageBody struct {
	Stage *string `json:"stage"`
}

func (s *Server) setProspectStage(c *gin.Context) {
	write(s, c, http.StatusOK, func(body *prospectStageBody, m commands.Meta) (commands.Result, any, error) {
		if body.Stage == nil {
			return commands.Result{}, nil, fieldError("stage", "is required")
		}
		res, st, err := s.Commands.SetProspectStage.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), *body.Stage, m)
		return res, projections.ViewOf(st, res.Version), err
	})
}

// deactivatePartner records that the partner left the platform: its
// contract, whatever its stage, becomes publisher_deactivated (no body).
func (s *Server) deactivatePartner(c *gin.Context) {
	write(s, c, http.StatusOK, func(_ *noBody, m commands.Meta) (commands.Result, any, error) {
		res, st, err := s.Commands.Deactivate.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), m)
		return res, projections.ViewOf(st, res.Version), err
	})
}

type noteBody struct {
	Text *string `json:"text"`
}

func (s *Server) addNote(c *gin.Context) {
	write(s, c, http.StatusCreated, func(body *noteBody, m commands.Meta) (commands.Result, any, error) {
		if body.Text == nil {
			return commands.Result{}, nil, fieldError("text", "is required")
		}
		res, note, err := s.Commands.AddNote.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), *body.Text, m)
		return res, noteView{Note: note, Version: 1}, err
	})
}

// noteView is a note as the API shows it. A note never changes once
// written, so its version is always 1.
type noteView struct {
	domain.Note
	Version uint64 `json:"version"`
}

// listNotes pages through a partner's notes, newest first. The cursor is
// the ID of the last note of the previous page.
func (s *Server) listNotes(c *gin.Context) {
	limit, cursor, err := idPageParams(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	notes, _, err := s.Commands.Notes.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	slices.Reverse(notes)
	start := 0
	if cursor != "" {
		i := slices.IndexFunc(notes, func(n domain.Note) bool { return n.ID == cursor })
		if i < 0 {
			s.writeError(c, badRequest("cursor is not one this server issued"))
			return
		}
		start = i + 1
	}
	page := struct {
		Items      []noteView `json:"items"`
		NextCursor *string    `json:"next_cursor"`
		Total      int        `json:"total"`
	}{Items: []noteView{}, Total: len(notes)}
	for _, n := range notes[start:min(start+limit, len(notes))] {
		page.Items = append(page.Items, noteView{Note: n, Version: 1})
	}
	if start+limit < len(notes) {
		next := page.Items[len(page.Items)-1].ID
		page.NextCursor = &next
	}
	c.JSON(http.StatusOK, page)
}

// Bodies of PUT /partners/{id}/settings/{kind}: the whole settings of the
// kind; required fields are pointers, so that a missing one is reported.
type (
	trackingBody struct {
		PostbackURL   *string `json:"postback_url"`
		TrackingPixel *bool   `json:"tracking_pixel"`
	}
	clientCostBody struct {
		Enabled         *bool                  `json:"enabled"`
		DefaultCostType *string                `json:"default_cost_type"`
		Exceptions      []domain.CostException `json:"exceptions"`
	}
	complianceBody struct {
		ReviewSchedule *string  `json:"review_schedule"`
		AuditRate      *float64 `json:"audit_rate"`
	}
)

// settingsKinds are the {kind} values of PUT /partners/{id}/settings/{kind}.
var settingsKinds = []string{"tracking", "client-cost", "compliance"}

func (s *Server) changeSettings(c *gin.Context) {
	kind := c.Param("kind")
	if !slices.Contains(settingsKinds, kind) {
		writeProblem(c, Problem{Type: "urn:partnerd:problem:not-found", Title: "Not Found", Status: http.StatusNotFound,
			Detail: "no settings " + kind + "; settings are tracking, client-cost, compliance"})
		return
	}
	ch, err := decodeSettings(c, kind)
	if err != nil {
		s.writeError(c, err)
		return
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	res, st, err := s.Commands.ChangeSettings.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), ch, m)
	if err != nil {
		s.writeError(c, err)
		return
	}
	answerCommand(c, http.StatusOK, res, projections.ViewOf(st, res.Version))
}

// decodeSettings reads the body of one kind of settings, reporting every
// missing required field at once.
func decodeSettings(c *gin.Context, kind string) (domain.SettingsChange, error) {
	var missing []domain.FieldError
	need := func(set bool, field string) {
		if !set {
			missing = append(missing, domain.FieldError{Field: field, Message: "is required"})
		}
	}
	var ch domain.SettingsChange
	switch kind {
	case "tracking":
		var b trackingBody
		if err := decodeJSON(c, &b); err != nil {
			return ch, err
		}
		need(b.TrackingPixel != nil, "tracking_pixel")
		if b.TrackingPixel != nil {
			ch.Tracking = &domain.TrackingSettings{PostbackURL: b.PostbackURL, TrackingPixel: *b.TrackingPixel}
		}
	case "client-cost":
		var b clientCostBody
		if err := decodeJSON(c, &b); err != nil {
			return ch, err
		}
		need(b.Enabled != nil, "enabled")
		if b.Enabled != nil {
			ch.ClientCost = &domain.ClientCostSettings{Enabled: *b.Enabled, DefaultCostType: b.DefaultCostType, Exceptions: b.Exceptions}
		}
	default:
		var b complianceBody
		if err := decodeJSON(c, &b); err != nil {
			return ch, err
		}
		need(b.ReviewSchedule != nil, "review_schedule")
		need(b.AuditRate != nil, "audit_rate")
		if b.ReviewSchedule != nil && b.AuditRate != nil {
			ch.Compliance = &domain.ComplianceSettings{ReviewSchedule: *b.ReviewSchedule, AuditRate: *b.AuditRate}
		}
	}
	if len(missing) > 0 {
		return ch, &domain.ValidationError{Fields: missing}
	}
	return ch, nil
}
