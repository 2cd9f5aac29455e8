package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/domain"
)

type issueAccessLinkBody struct {
	// TTLSeconds shortens the link's life (1–900 s; default 900).
	TTLSeconds *int `json:"ttl_seconds"`
}

// accessLinkAnswer is the answer of POST /partners/{id}/access-link: the
// token (also inside url) is shown this once and never stored.
type accessLinkAnswer struct {
	PartnerID string    `json:"partner_id"`
	LinkID    string    `json:"link_id"`
	URL       string    `json:"url,omitempty"`   // left out of a replay
	Token     string    `json:"token,omitempty"` // left out of a replay
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) issueAccessLink(c *gin.Context) {
	var body issueAccessLinkBody
	if err := decodeOptionalJSON(c, &body); err != nil {
		s.writeError(c, err)
		return
	}
	var ttl time.Duration
	if t := body.TTLSeconds; t != nil {
		max := int(domain.MaxAccessLinkTTL / time.Second)
		if *t < 1 || *t > max {
			s.writeError(c, fieldError("ttl_seconds", fmt.Sprintf("must be between 1 and %d", max)))
			return
		}
		ttl = time.Duration(*t) * time.Second
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	id := c.Param("id")
	res, link, err := s.Commands.IssueAccessLink.Handle(c.Request.Context(), c.GetString(ctxProgram), id, ttl, m)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	answer := accessLinkAnswer{PartnerID: id, LinkID: link.LinkID, ExpiresAt: link.ExpiresAt}
	// The idempotency layer keeps the answer (24 h, on disk or in Redis)
	// to replay it: without the token, which is shown once and never
	// stored (a replay names the link it issued; issue another for a new
	// token).
	keepForReplay(c, res, answer)
	answer.URL, answer.Token = link.URL, link.Token
	answerCommand(c, http.StatusCreated, res, answer)
}

type redeemAccessLinkBody struct {
	Token *string `json:"token"`
}

type redemptionAnswer struct {
	PartnerID string `json:"partner_id"`
	LinkID    string `json:"link_id"`
}

func (s *Server) redeemAccessLink(c *gin.Context) {
	var body redeemAccessLinkBody
	if err := decodeJSON(c, &body); err != nil {
		s.writeError(c, err)
		return
	}
	if body.Token == nil || *body.Token == "" {
		s.writeError(c, fieldError("token", "is required: the token of the access link"))
		return
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	res, r, err := s.Commands.RedeemAccessLink.Handle(c.Request.Context(), c.GetString(ctxProgram), *body.Token, m)
	if err != nil {
		s.writeError(c, err)
		return
	}
	answerCommand(c, http.StatusOK, res, redemptionAnswer{PartnerID: r.PartnerID, LinkID: r.LinkID})
}
