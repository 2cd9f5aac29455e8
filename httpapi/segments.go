package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
)

// segmentBody is the body of POST and PUT /segments. Conditions stay raw
// so that every problem in them is a 422 naming its row
// (domain.ParseConditions), not a 400 from the JSON decoder.
type segmentBody struct {
	ID         string          `json:"id"`
	Name       *string         `json:"name"`
	Conditions json.RawMessage `json:"conditions"`
}

// conditions parses the body's conditions; nil when they are missing.
func (b *segmentBody) conditions() (*domain.Conditions, error) {
	if len(b.Conditions) == 0 || string(b.Conditions) == "null" {
		return nil, nil
	}
	c, err := domain.ParseConditions("conditions", b.Conditions)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func (b *segmentBody) name() string {
	if b.Name == nil {
		return ""
	}
	return *b.Name
}

func (s *Server) createSegment(c *gin.Context) {
	write(s, c, http.StatusCreated, func(body *segmentBody, m commands.Meta) (commands.Result, any, error) {
		conds, err := body.conditions()
		if err != nil {
			return commands.Result{}, nil, err
		}
		res, st, err := s.Commands.CreateSegment.Handle(c.Request.Context(), domain.NewSegment{
			ProgramID: c.GetString(ctxProgram), ID: body.ID, Name: body.name(), Conditions: conds}, m)
		if err == nil {
			c.Header("Location", c.Request.URL.Path+"/"+st.ID)
		}
		return res, projections.SegmentViewOf(st, res.Version), err
	})
}

func (s *Server) updateSegment(c *gin.Context) {
	write(s, c, http.StatusOK, func(body *segmentBody, m commands.Meta) (commands.Result, any, error) {
		if body.ID != "" && body.ID != c.Param("id") {
			return commands.Result{}, nil, fieldError("id", "must be left out or equal the segment ID of the path")
		}
		conds, err := body.conditions()
		if err != nil {
			return commands.Result{}, nil, err
		}
		res, st, err := s.Commands.UpdateSegment.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), body.name(), conds, m)
		return res, projections.SegmentViewOf(st, res.Version), err
	})
}

func (s *Server) deleteSegment(c *gin.Context) {
	write(s, c, http.StatusNoContent, func(_ *noBody, m commands.Meta) (commands.Result, any, error) {
		res, err := s.Commands.DeleteSegment.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), m)
		return res, nil, err
	})
}

func (s *Server) getSegment(c *gin.Context) { s.readDoc(c, s.Queries.GetSegment) }

func (s *Server) listSegments(c *gin.Context) { idPage(s, c, s.Queries.ListSegments) }

func (s *Server) segmentMembers(c *gin.Context) {
	id := c.Param("id")
	if !domain.ValidEntityID(id) {
		s.writeError(c, domain.ErrNotFound)
		return
	}
	limit, cursor, err := pageParams(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	page, err := s.Queries.SegmentMembers(c.Request.Context(), c.GetString(ctxProgram), id, limit, cursor)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

// The routes of the segments read model's queries (see Server.consistency).
const (
	segmentPreviewRoute = "/v1/programs/:program/segments/preview"
	segmentMembersRoute = "/v1/programs/:program/segments/:id/members"
	membershipHistory   = "/v1/programs/:program/segments/:id/members/history"
	bulkRoute           = "/v1/programs/:program/bulk/:action"
)

type previewBody struct {
	Conditions json.RawMessage `json:"conditions"`
}

// previewSegment answers the partners that conditions match now, paged
// like a list (limit and cursor in the query string), with an exact total.
func (s *Server) previewSegment(c *gin.Context) {
	var body previewBody
	if err := decodeJSON(c, &body); err != nil {
		s.writeError(c, err)
		return
	}
	limit, cursor, err := pageParams(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if len(body.Conditions) == 0 || string(body.Conditions) == "null" {
		s.writeError(c, fieldError("conditions", "is required"))
		return
	}
	conds, err := domain.ParseConditions("conditions", body.Conditions)
	if err == nil {
		err = s.Commands.CreateSegment.CheckReferences(c.Request.Context(), c.GetString(ctxProgram), "conditions", conds)
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	page, err := s.Queries.PreviewSegment(c.Request.Context(), c.GetString(ctxProgram), conds, limit, cursor)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}
