package domain

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// ContractStage is where a partner's current contract stands (SPEC §2).
type ContractStage string

// The 16 contract stages.
const (
	StageAwaitingPublisherApproval  ContractStage = "awaiting_publisher_approval"
	StageAwaitingAdvertiserApproval ContractStage = "awaiting_advertiser_approval"
	StagePublisherCountered         ContractStage = "publisher_countered"
	StageAdvertiserCountered        ContractStage = "advertiser_countered"
	StagePublisherDeclined          ContractStage = "publisher_declined"
	StageAdvertiserDeclined         ContractStage = "advertiser_declined"
	StagePublisherRetracted         ContractStage = "publisher_retracted"
	StageAdvertiserRetracted        ContractStage = "advertiser_retracted"
	StagePendingContractExpired     ContractStage = "pending_contract_expired"
	StageAwaitingContractStart      ContractStage = "awaiting_contract_start"
	StageJoined                     ContractStage = "joined"
	StageSuspended                  ContractStage = "suspended"
	StageExpired                    ContractStage = "expired"
	StageCancelled                  ContractStage = "cancelled"
	StageArchived                   ContractStage = "archived"
	StagePublisherDeactivated       ContractStage = "publisher_deactivated"
)

// ContractStages lists every stage in SPEC order.
var ContractStages = []ContractStage{
	StageAwaitingPublisherApproval, StageAwaitingAdvertiserApproval, StagePublisherCountered,
	StageAdvertiserCountered, StagePublisherDeclined, StageAdvertiserDeclined, StagePublisherRetracted,
	StageAdvertiserRetracted, StagePendingContractExpired, StageAwaitingContractStart, StageJoined,
	StageSuspended, StageExpired, StageCancelled, StageArchived, StagePublisherDeactivated,
}

// Negotiating reports whether an offer (proposal or counter) is open.
func (s ContractStage) Negotiating() bool { return s.awaiting() != "" }

// InForce reports whether the contract was accepted and has not ended:
// awaiting_contract_start, joined or suspended.
func (s ContractStage) InForce() bool {
	return s == StageAwaitingContractStart || s == StageJoined || s == StageSuspended
}

// Closed reports whether the contract ended: a new proposal may follow.
func (s ContractStage) Closed() bool { return s != "" && !s.Negotiating() && !s.InForce() }

// awaiting is the side that must answer the open offer, or "".
func (s ContractStage) awaiting() Side {
	switch s {
	case StageAwaitingPublisherApproval, StageAdvertiserCountered:
		return SidePublisher
	case StageAwaitingAdvertiserApproval, StagePublisherCountered:
		return SideAdvertiser
	}
	return ""
}

// Side is who makes a move: the brand (advertiser), the partner
// (publisher), or the system (deadlines, schedules, platform signals).
type Side string

// Sides.
const (
	SideAdvertiser Side = "advertiser"
	SidePublisher  Side = "publisher"
	SideSystem     Side = "system"
)

// other is the opposite negotiating side.
func (s Side) other() Side {
	if s == SideAdvertiser {
		return SidePublisher
	}
	return SideAdvertiser
}

// ContractMove names a move on a contract, as in the API's
// POST /partners/{id}/contract/{action}, plus the system moves.
type ContractMove string

// Moves a side asks for.
const (
	MovePropose   ContractMove = "propose"
	MoveAccept    ContractMove = "accept"
	MoveCounter   ContractMove = "counter"
	MoveDecline   ContractMove = "decline"
	MoveRetract   ContractMove = "retract"
	MoveSwitch    ContractMove = "switch"
	MoveSuspend   ContractMove = "suspend"
	MoveReinstate ContractMove = "reinstate"
	MoveExpire    ContractMove = "expire"
	MoveCancel    ContractMove = "cancel"
	MoveModify    ContractMove = "modify"
)

// Moves the system makes when a time arrives or something outside the
// contract happens.
const (
	MoveProposalDeadlinePassed ContractMove = "proposal_deadline_passed"
	MoveStartDateReached       ContractMove = "start_date_reached"
	MoveScheduledExpiryReached ContractMove = "scheduled_expiry_reached"
	MoveScheduledSwitchReached ContractMove = "scheduled_switch_reached"
	MoveTemplateTermArchived   ContractMove = "template_term_archived"
	MovePublisherDeactivated   ContractMove = "publisher_deactivated"
)

// ContractActions lists the moves the API accepts as {action}.
var ContractActions = []ContractMove{
	MovePropose, MoveAccept, MoveCounter, MoveDecline, MoveRetract, MoveSwitch,
	MoveSuspend, MoveReinstate, MoveExpire, MoveCancel, MoveModify,
}

// IllegalMoveError: the move is not legal in the contract's current stage, or
// not for this side. It matches ErrConflict with errors.Is. Stage is "" when
// the partner has no contract.
type IllegalMoveError struct {
	Stage ContractStage
	Move  ContractMove
	By    Side
	Why   string // optional detail, e.g. a passed deadline
}

func (e *IllegalMoveError) Error() string {
	where := "in contract stage " + string(e.Stage)
	if e.Stage == "" {
		where = "without a contract"
	}
	msg := fmt.Sprintf("%s by %s is not allowed %s", e.Move, e.By, where)
	if e.Why != "" {
		msg += ": " + e.Why
	}
	return msg
}

// Is makes errors.Is(err, ErrConflict) hold.
func (e *IllegalMoveError) Is(target error) bool { return target == ErrConflict }

// ScheduledSwitch is a switch to another template term planned for a time.
type ScheduledSwitch struct {
	TemplateTermID string    `json:"template_term_id"`
	EffectiveAt    time.Time `json:"effective_at"`
}

// ContractState is a snapshot of one contract, current or past. Times that
// are not set are null. Treat it as read-only: pointers may be shared.
type ContractState struct {
	ID             string        `json:"id"`
	TemplateTermID string        `json:"template_term_id"`
	Stage          ContractStage `json:"stage"`
	// ProposedBy is the side that made the first proposal (the brand for a
	// contract created by a switch).
	ProposedBy Side       `json:"proposed_by"`
	StartDate  *time.Time `json:"start_date"`
	// EndDate is the scheduled expiry (while in force), or when it expired.
	EndDate *time.Time `json:"end_date"`
	// RespondBy is the deadline of the open offer.
	RespondBy       *time.Time       `json:"respond_by"`
	ScheduledSwitch *ScheduledSwitch `json:"scheduled_switch"`
	// SwitchedFrom is the contract this one replaced by a switch.
	SwitchedFrom string `json:"switched_from,omitempty"`
	// ReplacedBy is the contract that replaced this one by a switch.
	ReplacedBy     string     `json:"replaced_by,omitempty"`
	Reason         string     `json:"reason,omitempty"`
	ProposedAt     time.Time  `json:"proposed_at"`
	AcceptedAt     *time.Time `json:"accepted_at,omitempty"`
	JoinedAt       *time.Time `json:"joined_at,omitempty"`
	EndedAt        *time.Time `json:"ended_at,omitempty"`
	StageChangedAt time.Time  `json:"stage_changed_at"`
}

func (c *ContractState) clone() *ContractState {
	if c == nil {
		return nil
	}
	cp := *c
	return &cp
}

// nextContractID names the partner's next contract "<partner_id>:<n>", n
// counting every contract the partner had. A partner ID never ends in
// ":<digits>" of another's, so contract IDs are unique in the program.
func (p *Partner) nextContractID() string {
	n := len(p.history) + 1
	if p.contract != nil {
		n++
	}
	return p.id + ":" + strconv.Itoa(n)
}

func (p *Partner) stage() ContractStage {
	if p.contract == nil {
		return ""
	}
	return p.contract.Stage
}

func (p *Partner) illegal(move ContractMove, by Side, why string) error {
	return &IllegalMoveError{Stage: p.stage(), Move: move, By: by, Why: why}
}

func cloneHistory(h []ContractState) []ContractState { return slices.Clone(h) }

// optTime turns a zero time into nil and anything else into a UTC pointer.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func timePtr(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}
