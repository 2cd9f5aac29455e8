package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
)

type messageBody struct {
	Subject string `json:"subject"`
	Body    string `json:"body"`
	Channel string `json:"channel"`
}

type messageAnswer struct {
	MessageID string `json:"message_id"`
	PartnerID string `json:"partner_id"`
	Channel   string `json:"channel"`
}

// sendMessage records a message for the downstream mailer: 202, as the
// message is accepted, not delivered.
func (s *Server) sendMessage(c *gin.Context) {
	write(s, c, http.StatusAccepted, func(body *messageBody, m commands.Meta) (commands.Result, any, error) {
		id := c.Param("id")
		res, msgID, err := s.Commands.SendMessage.Handle(c.Request.Context(), c.GetString(ctxProgram), id,
			domain.NewMessage{Channel: body.Channel, Subject: body.Subject, Body: body.Body}, m)
		channel := body.Channel
		if channel == "" {
			channel = "message"
		}
		return res, messageAnswer{MessageID: msgID, PartnerID: id, Channel: channel}, err
	})
}

type inviteBody struct {
	Kind     string `json:"kind"`
	TargetID string `json:"target_id"`
	Message  string `json:"message"`
}

type inviteAnswer struct {
	InviteID  string `json:"invite_id"`
	PartnerID string `json:"partner_id"`
	Kind      string `json:"kind"`
	TargetID  string `json:"target_id"`
}

func (s *Server) invitePartner(c *gin.Context) {
	write(s, c, http.StatusAccepted, func(body *inviteBody, m commands.Meta) (commands.Result, any, error) {
		id := c.Param("id")
		res, inviteID, err := s.Commands.Invite.Handle(c.Request.Context(), c.GetString(ctxProgram), id,
			domain.NewInvite{Kind: body.Kind, TargetID: body.TargetID, Message: body.Message}, m)
		return res, inviteAnswer{InviteID: inviteID, PartnerID: id, Kind: body.Kind, TargetID: body.TargetID}, err
	})
}
