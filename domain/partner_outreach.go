package domain

import (
	"fmt"
	"strings"
	"time"
)

// Event types of the brand contacting a partner. They are requests for a
// downstream mailer (partnerd sends nothing itself).
const (
	TypePartnerMessageSent = "partner.message_sent"
	TypePartnerInvited     = "partner.invited"
)

// Message channels and invitation kinds.
var (
	MessageChannels = []string{"message", "email"}
	InviteKinds     = []string{"campaign", "survey"}
)

// Limits of messages and invitations.
const (
	MaxSubjectLen       = 200
	MaxMessageBodyLen   = 50000
	MaxInviteMessageLen = 5000
)

// Causes of an automatic prospect stage change (PartnerProspectStageChanged.Cause).
const (
	CauseMessageSent = "message_sent"
	CauseInvited     = "invited"
)

// MessageContent is the personal part of a message: what it says and, for
// an e-mail, the address it goes to (the partner's at the time).
type MessageContent struct {
	To      string `json:"to,omitempty"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// PartnerMessageSent: the brand sent the partner a message, in the
// platform's inbox ("message") or by e-mail ("email").
type PartnerMessageSent struct {
	PartnerID string         `json:"partner_id"`
	ProgramID string         `json:"program_id"`
	MessageID string         `json:"message_id"`
	Channel   string         `json:"channel"`
	Personal  MessageContent `json:"personal"`
	SentAt    time.Time      `json:"sent_at"`
}

// InviteMessage is the personal part of an invitation: its optional
// message to the partner.
type InviteMessage struct {
	Message string `json:"message,omitempty"`
}

// PartnerInvited: the brand invited the partner to a campaign or a survey.
type PartnerInvited struct {
	PartnerID string        `json:"partner_id"`
	ProgramID string        `json:"program_id"`
	InviteID  string        `json:"invite_id"`
	Kind      string        `json:"kind"`
	TargetID  string        `json:"target_id"`
	Personal  InviteMessage `json:"personal"`
	InvitedAt time.Time     `json:"invited_at"`
}

func (PartnerMessageSent) EventType() string { return TypePartnerMessageSent }
func (PartnerInvited) EventType() string     { return TypePartnerInvited }

// NewMessage is the input of SendMessage.
type NewMessage struct {
	MessageID string // chosen by the caller
	Channel   string // default "message"
	Subject   string
	Body      string
}

// ValidateContent checks what a message says, apart from whom it goes to
// and its ID: channel (empty: message), subject and body. A bulk send
// checks it once for all its partners.
func (m NewMessage) ValidateContent() error { return m.validate(false) }

func (m NewMessage) validate(withID bool) error {
	channel := m.Channel
	if channel == "" {
		channel = "message"
	}
	var pr problems
	if withID && !ValidEntityID(m.MessageID) {
		pr.add("message_id", EntityIDRule)
	}
	if !oneOf(channel, MessageChannels) {
		pr.add("channel", "must be one of %s", strings.Join(MessageChannels, ", "))
	}
	pr.text("subject", m.Subject, MaxSubjectLen, true)
	if strings.ContainsAny(m.Subject, "\r\n") {
		// An e-mail header is one line: a line break in it would let the
		// text after it read as another header (Bcc: …) in a mailer.
		pr.add("subject", "must be one line (no line breaks)")
	}
	pr.text("body", m.Body, MaxMessageBodyLen, true)
	return pr.err()
}

// SendMessage decides a message to the partner. An e-mail needs the
// partner's e-mail address; a partner that left the platform gets nothing.
// Contacting a new prospect without a contract also moves its prospect
// stage to outreach.
func (p *Partner) SendMessage(m NewMessage, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	if m.Channel == "" {
		m.Channel = "message"
	}
	if err := m.validate(true); err != nil {
		return nil, err
	}
	if err := p.reachable(); err != nil {
		return nil, err
	}
	content := MessageContent{Subject: strings.TrimSpace(m.Subject), Body: m.Body}
	if m.Channel == "email" {
		if p.personal.Email == "" {
			return nil, fmt.Errorf("partner %s has no e-mail address; set email on the partner or send a message: %w", p.id, ErrConflict)
		}
		content.To = p.personal.Email
	}
	evs := []Event{PartnerMessageSent{PartnerID: p.id, ProgramID: p.program, MessageID: m.MessageID,
		Channel: m.Channel, Personal: content, SentAt: now.UTC()}}
	return append(evs, p.contacted(CauseMessageSent, now)...), nil
}

// NewInvite is the input of Invite.
type NewInvite struct {
	InviteID string // chosen by the caller
	Kind     string // campaign or survey
	TargetID string // the campaign's or survey's ID
	Message  string // optional
}

// Invite decides inviting the partner to a campaign or a survey. Campaigns
// and surveys live outside partnerd: their IDs are taken as given.
func (p *Partner) Invite(in NewInvite, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	var pr problems
	if !ValidEntityID(in.InviteID) {
		pr.add("invite_id", EntityIDRule)
	}
	if !oneOf(in.Kind, InviteKinds) {
		pr.add("kind", "must be one of %s", strings.Join(InviteKinds, ", "))
	}
	if !ValidEntityID(in.TargetID) {
		pr.add("target_id", "must be the campaign's or survey's ID: 1-64 of letters, digits, '_', '.', ':', '-'")
	}
	pr.text("message", in.Message, MaxInviteMessageLen, false)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if err := p.reachable(); err != nil {
		return nil, err
	}
	evs := []Event{PartnerInvited{PartnerID: p.id, ProgramID: p.program, InviteID: in.InviteID, Kind: in.Kind,
		TargetID: in.TargetID, Personal: InviteMessage{Message: in.Message}, InvitedAt: now.UTC()}}
	return append(evs, p.contacted(CauseInvited, now)...), nil
}

// reachable refuses to contact a partner that left the platform.
func (p *Partner) reachable() error {
	if p.deactivatedAt != nil {
		return fmt.Errorf("partner %s left the platform on %s: %w", p.id, p.deactivatedAt.Format(time.DateOnly), ErrConflict)
	}
	return nil
}
