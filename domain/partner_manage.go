package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Event types of managing one partner: account manager, prospect stage, notes.
const (
	TypePartnerAssigned             = "partner.assigned"
	TypePartnerUnassigned           = "partner.unassigned"
	TypePartnerProspectStageChanged = "partner.prospect_stage_changed"
	TypePartnerNoteAdded            = "partner.note_added"
)

// Limits of the partner management inputs.
const (
	MaxUserIDLen = 200
	MaxNoteLen   = 10000
)

// PartnerAssigned: a user of the brand became the partner's account manager.
// PreviousUser is absent when nobody was assigned.
type PartnerAssigned struct {
	PartnerID    string    `json:"partner_id"`
	ProgramID    string    `json:"program_id"`
	User         string    `json:"user"`
	PreviousUser string    `json:"previous_user,omitempty"`
	AssignedAt   time.Time `json:"assigned_at"`
}

// PartnerUnassigned: the partner no longer has an account manager.
type PartnerUnassigned struct {
	PartnerID    string    `json:"partner_id"`
	ProgramID    string    `json:"program_id"`
	PreviousUser string    `json:"previous_user"`
	UnassignedAt time.Time `json:"unassigned_at"`
}

// PartnerProspectStageChanged: the prospect stage kept on the partner
// changed, by hand or (Cause "message_sent", "invited") because the brand
// contacted a new prospect.
type PartnerProspectStageChanged struct {
	PartnerID     string    `json:"partner_id"`
	ProgramID     string    `json:"program_id"`
	Stage         string    `json:"stage"`
	PreviousStage string    `json:"previous_stage"`
	Cause         string    `json:"cause,omitempty"`
	ChangedAt     time.Time `json:"changed_at"`
}

// NoteText is the personal part of a note: its free text.
type NoteText struct {
	Text string `json:"text"`
}

// PartnerNoteAdded: a user of the brand wrote a note about the partner. The
// text is personal data and sits under "personal".
type PartnerNoteAdded struct {
	PartnerID string    `json:"partner_id"`
	ProgramID string    `json:"program_id"`
	NoteID    string    `json:"note_id"`
	Author    string    `json:"author"`
	Personal  NoteText  `json:"personal"`
	AddedAt   time.Time `json:"added_at"`
}

func (PartnerAssigned) EventType() string             { return TypePartnerAssigned }
func (PartnerUnassigned) EventType() string           { return TypePartnerUnassigned }
func (PartnerProspectStageChanged) EventType() string { return TypePartnerProspectStageChanged }
func (PartnerNoteAdded) EventType() string            { return TypePartnerNoteAdded }

// Note is one note on a partner, as the API shows it.
type Note struct {
	ID        string    `json:"id"`
	Text      string    `json:"text"`
	Author    string    `json:"author"`
	CreatedAt time.Time `json:"created_at"`
}

// Notes returns the partner's notes, oldest first. Notes are kept only by
// folding the partner's stream: they are not part of PartnerState, so a
// partner restored from a saved state has none.
func (p *Partner) Notes() []Note {
	out := make([]Note, p.notes.len())
	for l, i := p.notes, len(out)-1; l != nil; l, i = l.prev, i-1 {
		out[i] = l.note
	}
	return out
}

// noteList is an immutable list of notes, newest first. Adding a note
// makes a new head that shares the older ones, so folding N notes costs
// O(N) (a copied slice per note cost O(N²): 0.3 GB of copies for a
// partner with 2 500 notes), and a copied Partner still never sees notes
// added to the original.
type noteList struct {
	note Note
	prev *noteList
	n    int
}

func (l *noteList) len() int {
	if l == nil {
		return 0
	}
	return l.n
}

func (l *noteList) has(id string) bool {
	for ; l != nil; l = l.prev {
		if l.note.ID == id {
			return true
		}
	}
	return false
}

// ValidUserID reports whether s may name a user of the brand (an account
// manager): 1–200 characters, an e-mail address or an ID, without spaces or
// control characters.
func ValidUserID(s string) bool {
	if s == "" || len(s) > MaxUserIDLen || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// Assign decides who of the brand manages the partner; an empty user
// unassigns. Assigning the current user (or unassigning nobody) yields no event.
func (p *Partner) Assign(user string, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	if user != "" && !ValidUserID(user) {
		var pr problems
		pr.add("user", "must be a user of the brand: an e-mail address or an ID, 1-%d characters without spaces, or null to unassign", MaxUserIDLen)
		return nil, pr.err()
	}
	switch {
	case user == p.assignedTo:
		return nil, nil
	case user == "":
		return []Event{PartnerUnassigned{PartnerID: p.id, ProgramID: p.program, PreviousUser: p.assignedTo, UnassignedAt: now.UTC()}}, nil
	}
	return []Event{PartnerAssigned{PartnerID: p.id, ProgramID: p.program, User: user, PreviousUser: p.assignedTo, AssignedAt: now.UTC()}}, nil
}

// SetProspectStage decides a hand-set prospect stage. The kept stage is
// what the partner shows only while it has no contract; with a contract the
// prospect stage follows the contract, and setting it is a conflict.
func (p *Partner) SetProspectStage(stage string, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	if !oneOf(stage, ProspectStages) {
		var pr problems
		pr.add("stage", "must be one of %s", strings.Join(ProspectStages, ", "))
		return nil, pr.err()
	}
	if p.contract != nil {
		return nil, fmt.Errorf("the prospect stage follows the partner's contract (stage %s) and cannot be set by hand: %w",
			p.contract.Stage, ErrConflict)
	}
	if stage == p.prospectStage {
		return nil, nil
	}
	return []Event{PartnerProspectStageChanged{PartnerID: p.id, ProgramID: p.program, Stage: stage,
		PreviousStage: p.prospectStage, ChangedAt: now.UTC()}}, nil
}

// contacted returns the prospect stage change that contacting a new
// prospect without a contract implies (new → outreach), or nothing.
func (p *Partner) contacted(cause string, now time.Time) []Event {
	if p.contract != nil || p.prospectStage != RelationshipNew {
		return nil
	}
	return []Event{PartnerProspectStageChanged{PartnerID: p.id, ProgramID: p.program, Stage: RelationshipOutreach,
		PreviousStage: p.prospectStage, Cause: cause, ChangedAt: now.UTC()}}
}

// AddNote decides a new note. The caller names it (noteID, unique on the
// partner) and says who wrote it.
func (p *Partner) AddNote(noteID, author, text string, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	var pr problems
	if !ValidEntityID(noteID) {
		pr.add("id", EntityIDRule)
	}
	pr.text("text", text, MaxNoteLen, true)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if p.notes.has(noteID) {
		return nil, fmt.Errorf("note %s: %w", noteID, ErrAlreadyExists)
	}
	return []Event{PartnerNoteAdded{PartnerID: p.id, ProgramID: p.program, NoteID: noteID, Author: author,
		Personal: NoteText{Text: text}, AddedAt: now.UTC()}}, nil
}

// text checks a free-text field: at most max characters (runes), valid
// UTF-8, and not blank when required.
func (pr *problems) text(field, s string, max int, required bool) {
	if msg := textProblem(s, max, required); msg != "" {
		pr.add(field, "%s", msg)
	}
}

// textProblem says what is wrong with a text field ("" when nothing): not
// UTF-8; a control character other than tab and line breaks (NUL, ESC...:
// they break the CSV export, logs and terminals downstream); blank while
// required (nothing visible: only spaces and format characters such as a
// zero-width space); more than max characters (not bytes).
func textProblem(s string, max int, required bool) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8 text"
	}
	visible, n := false, 0
	for _, r := range s {
		n++
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return "must not contain control characters (other than tab and line breaks)"
		case !visible && !unicode.IsSpace(r) && !unicode.Is(unicode.Cf, r):
			visible = true
		}
	}
	switch {
	case required && !visible:
		return "is required"
	case n > max:
		return fmt.Sprintf("must be at most %d characters", max)
	}
	return ""
}
