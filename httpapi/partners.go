package httpapi

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
	"github.com/partnerd/partnerd/queries"
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
	asOfOr(s, c, func(c *gin.Context, program, id string, at queries.AsOf) (projections.PartnerView, error) {
		return s.Queries.PartnerAsOf(c.Request.Context(), program, id, at)
	}, func(c *gin.Context) { s.readDoc(c, s.Queries.GetPartner) })
}

// pageParams reads limit (1–1000, default 50) and cursor, each at most once.
func pageParams(c *gin.Context) (int, string, error) {
	q := c.Request.URL.Query()
	for _, name := range []string{"limit", "cursor"} {
		if len(q[name]) > 1 {
			return 0, "", badRequest("%s may be given once", name)
		}
	}
	limit := 50
	if l, ok := q["limit"]; ok {
		n, err := strconv.Atoi(l[0])
		if err != nil {
			return 0, "", badRequest("limit must be a whole number")
		}
		if n < 1 || n > 1000 {
			return 0, "", fieldError("limit", "must be between 1 and 1000")
		}
		limit = n
	}
	cursor := q.Get("cursor")
	if len(cursor) > 200 {
		return 0, "", badRequest("cursor is not one this server issued")
	}
	return limit, cursor, nil
}
