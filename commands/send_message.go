package commands

import (
	"context"
	"fmt"

	"github.com/partnerd/partnerd/domain"
)

// SendMessageHandler records a message or e-mail to a partner for the
// downstream mailer (partnerd sends nothing itself).
type SendMessageHandler struct{ d Deps }

// Handle records the message and returns its ID ("m_" + 16 random
// characters; in.MessageID is ignored).
func (h *SendMessageHandler) Handle(ctx context.Context, program, partnerID string, in domain.NewMessage, meta Meta) (Result, string, error) {
	in.MessageID = "m_" + randomID(16)
	res, _, err := h.d.onPartner(ctx, program, partnerID, meta, func(p *domain.Partner) ([]domain.Event, error) {
		return p.SendMessage(in, h.d.Now().UTC())
	})
	if err != nil {
		return Result{}, "", fmt.Errorf("send message to partner %s: %w", partnerID, err)
	}
	return res, in.MessageID, nil
}
