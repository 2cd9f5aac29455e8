package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/projections"
)

type linkBody struct {
	PartnerID string `json:"partner_id"`
	Reason    string `json:"reason"`
}

func (s *Server) linkAccounts(c *gin.Context) {
	write(s, c, http.StatusOK, func(body *linkBody, m commands.Meta) (commands.Result, any, error) {
		res, st, err := s.Commands.LinkAccounts.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), body.PartnerID, body.Reason, m)
		return res, projections.ViewOf(st, res.Version), err
	})
}

type unlinkBody struct {
	Reason *string `json:"reason"`
}

// unlinkAccounts takes an optional reason in the body or, for clients that
// send no body with DELETE, in the query parameter "reason".
func (s *Server) unlinkAccounts(c *gin.Context) {
	var body unlinkBody
	if err := decodeOptionalJSON(c, &body); err != nil {
		s.writeError(c, err)
		return
	}
	reason := c.Query("reason")
	if body.Reason != nil {
		if reason != "" && reason != *body.Reason {
			s.writeError(c, badRequest("reason is given in the body and in the query string, differently"))
			return
		}
		reason = *body.Reason
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	res, st, err := s.Commands.UnlinkAccounts.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), c.Param("other"), reason, m)
	if err != nil {
		s.writeError(c, err)
		return
	}
	answerCommand(c, http.StatusOK, res, projections.ViewOf(st, res.Version))
}
