package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
)

type createPartnerBody struct {
	PartnerID     string `json:"partner_id"`
	ProspectStage string `json:"prospect_stage"`
	SignupSource  string `json:"signup_source"`
	domain.Profile
	domain.Personal
}

func (s *Server) createPartner(c *gin.Context) {
	write(s, c, http.StatusCreated, func(body *createPartnerBody, m commands.Meta) (commands.Result, any, error) {
		res, st, err := s.Commands.CreatePartner.Handle(c.Request.Context(), domain.NewPartner{
			ProgramID: c.GetString(ctxProgram), PartnerID: body.PartnerID, Profile: body.Profile,
			Personal: body.Personal, ProspectStage: body.ProspectStage, SignupSource: body.SignupSource}, m)
		if err == nil {
			c.Header("Location", c.Request.URL.Path+"/"+st.PartnerID)
		}
		return res, projections.ViewOf(st, res.Version), err
	})
}

func (s *Server) updatePartner(c *gin.Context) {
	write(s, c, http.StatusOK, func(patch *domain.Patch, m commands.Meta) (commands.Result, any, error) {
		res, st, err := s.Commands.UpdatePartner.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), *patch, m)
		return res, projections.ViewOf(st, res.Version), err
	})
}

func (s *Server) getPartner(c *gin.Context) {
	program, id := c.GetString(ctxProgram), c.Param("id")
	if !domain.ValidEntityID(id) {
		s.writeError(c, domain.ErrNotFound)
		return
	}
	if asOf := c.Query("as_of"); asOf != "" {
		t, err := time.Parse(time.RFC3339Nano, asOf)
		if err != nil {
			s.writeError(c, badRequest("as_of must be an RFC 3339 time, e.g. 2026-03-01T00:00:00Z"))
			return
		}
		v, err := s.Queries.PartnerAsOf(c.Request.Context(), program, id, t)
		if err != nil {
			s.writeError(c, err)
			return
		}
		c.JSON(http.StatusOK, v)
		return
	}
	doc, err := s.Queries.GetPartner(c.Request.Context(), program, id)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", doc)
}

// pageParams reads limit (1–1000, default 50) and cursor.
func pageParams(c *gin.Context) (int, string, error) {
	limit := 50
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			return 0, "", badRequest("limit must be a whole number")
		}
		if n < 1 || n > 1000 {
			return 0, "", fieldError("limit", "must be between 1 and 1000")
		}
		limit = n
	}
	cursor := c.Query("cursor")
	if len(cursor) > 200 {
		return 0, "", badRequest("cursor is not one this server issued")
	}
	return limit, cursor, nil
}

func (s *Server) partnerHistory(c *gin.Context) {
	limit, cursor, err := pageParams(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	var after uint64
	if cursor != "" {
		if after, err = strconv.ParseUint(cursor, 10, 64); err != nil {
			s.writeError(c, badRequest("cursor is not one this server issued"))
			return
		}
	}
	id := c.Param("id")
	if !domain.ValidEntityID(id) {
		s.writeError(c, domain.ErrNotFound)
		return
	}
	page, err := s.Queries.PartnerHistory(c.Request.Context(), c.GetString(ctxProgram), id, after, limit)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}
