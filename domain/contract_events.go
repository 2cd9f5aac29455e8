package domain

import "time"

// Contract event type names (stream partner-<program>-<id>).
const (
	TypeContractProposed         = "partner.contract_proposed"
	TypeContractCountered        = "partner.contract_countered"
	TypeContractAccepted         = "partner.contract_accepted"
	TypeContractDeclined         = "partner.contract_declined"
	TypeContractRetracted        = "partner.contract_retracted"
	TypeContractStarted          = "partner.contract_started"
	TypeContractProposalExpired  = "partner.contract_proposal_expired"
	TypeContractSuspended        = "partner.contract_suspended"
	TypeContractReinstated       = "partner.contract_reinstated"
	TypeContractSwitched         = "partner.contract_switched"
	TypeContractSwitchScheduled  = "partner.contract_switch_scheduled"
	TypeContractExpiryScheduled  = "partner.contract_expiry_scheduled"
	TypeContractScheduleReverted = "partner.contract_schedule_reverted"
	TypeContractExpired          = "partner.contract_expired"
	TypeContractCancelled        = "partner.contract_cancelled"
	TypeContractArchived         = "partner.contract_archived"
	TypePartnerDeactivated       = "partner.deactivated"
)

// ContractProposed: a side proposed a new contract; it replaces a closed
// one, which goes to the partner's contract history.
type ContractProposed struct {
	PartnerID      string        `json:"partner_id"`
	ProgramID      string        `json:"program_id"`
	ContractID     string        `json:"contract_id"`
	By             Side          `json:"by"`
	Stage          ContractStage `json:"stage"`
	TemplateTermID string        `json:"template_term_id"`
	StartDate      *time.Time    `json:"start_date,omitempty"`
	EndDate        *time.Time    `json:"end_date,omitempty"`
	RespondBy      *time.Time    `json:"respond_by,omitempty"`
	ProposedAt     time.Time     `json:"proposed_at"`
}

// ContractCountered: the side that received the open offer answered with
// another one. It carries the whole new offer; Changed names what differs.
type ContractCountered struct {
	PartnerID      string        `json:"partner_id"`
	ProgramID      string        `json:"program_id"`
	ContractID     string        `json:"contract_id"`
	By             Side          `json:"by"`
	Stage          ContractStage `json:"stage"`
	Changed        []string      `json:"changed"`
	TemplateTermID string        `json:"template_term_id"`
	StartDate      *time.Time    `json:"start_date,omitempty"`
	EndDate        *time.Time    `json:"end_date,omitempty"`
	RespondBy      *time.Time    `json:"respond_by,omitempty"`
	CounteredAt    time.Time     `json:"countered_at"`
}

// ContractAccepted: the side that received the open offer accepted it.
// Stage is joined, or awaiting_contract_start when the start date is later.
type ContractAccepted struct {
	PartnerID      string        `json:"partner_id"`
	ProgramID      string        `json:"program_id"`
	ContractID     string        `json:"contract_id"`
	By             Side          `json:"by"`
	Stage          ContractStage `json:"stage"`
	TemplateTermID string        `json:"template_term_id"`
	AcceptedAt     time.Time     `json:"accepted_at"`
}

// ContractDeclined: the side that received the open offer declined it.
type ContractDeclined struct {
	PartnerID  string        `json:"partner_id"`
	ProgramID  string        `json:"program_id"`
	ContractID string        `json:"contract_id"`
	By         Side          `json:"by"`
	Stage      ContractStage `json:"stage"`
	Reason     string        `json:"reason,omitempty"`
	DeclinedAt time.Time     `json:"declined_at"`
}

// ContractRetracted: the side that made the open offer withdrew it.
type ContractRetracted struct {
	PartnerID   string        `json:"partner_id"`
	ProgramID   string        `json:"program_id"`
	ContractID  string        `json:"contract_id"`
	By          Side          `json:"by"`
	Stage       ContractStage `json:"stage"`
	Reason      string        `json:"reason,omitempty"`
	RetractedAt time.Time     `json:"retracted_at"`
}

// ContractStarted: an accepted contract's start date arrived; it is joined.
// StartedAt is the start date, not when the scheduler noticed.
type ContractStarted struct {
	PartnerID      string        `json:"partner_id"`
	ProgramID      string        `json:"program_id"`
	ContractID     string        `json:"contract_id"`
	Stage          ContractStage `json:"stage"`
	TemplateTermID string        `json:"template_term_id"`
	StartedAt      time.Time     `json:"started_at"`
}

// ContractProposalExpired: the open offer was not answered by its
// respond_by deadline. ExpiredAt is that deadline.
type ContractProposalExpired struct {
	PartnerID  string        `json:"partner_id"`
	ProgramID  string        `json:"program_id"`
	ContractID string        `json:"contract_id"`
	Stage      ContractStage `json:"stage"`
	ExpiredAt  time.Time     `json:"expired_at"`
}

// ContractSuspended: the brand suspended a joined contract.
type ContractSuspended struct {
	PartnerID   string        `json:"partner_id"`
	ProgramID   string        `json:"program_id"`
	ContractID  string        `json:"contract_id"`
	By          Side          `json:"by"`
	Stage       ContractStage `json:"stage"`
	Reason      string        `json:"reason,omitempty"`
	SuspendedAt time.Time     `json:"suspended_at"`
}

// ContractReinstated: the brand lifted a suspension.
type ContractReinstated struct {
	PartnerID    string        `json:"partner_id"`
	ProgramID    string        `json:"program_id"`
	ContractID   string        `json:"contract_id"`
	By           Side          `json:"by"`
	Stage        ContractStage `json:"stage"`
	Reason       string        `json:"reason,omitempty"`
	ReinstatedAt time.Time     `json:"reinstated_at"`
}

// ContractSwitched: the contract was replaced by a new, joined one on another
// template term (now, or when a scheduled switch came due: By is system and
// SwitchedAt the scheduled time). The old contract goes to the history; the
// new one keeps the old one's scheduled expiry (EndDate).
type ContractSwitched struct {
	PartnerID              string        `json:"partner_id"`
	ProgramID              string        `json:"program_id"`
	ContractID             string        `json:"contract_id"`
	PreviousContractID     string        `json:"previous_contract_id"`
	By                     Side          `json:"by"`
	Stage                  ContractStage `json:"stage"`
	TemplateTermID         string        `json:"template_term_id"`
	PreviousTemplateTermID string        `json:"previous_template_term_id"`
	EndDate                *time.Time    `json:"end_date,omitempty"`
	SwitchedAt             time.Time     `json:"switched_at"`
}

// ContractSwitchScheduled: a switch to another template term was planned
// (or re-planned) for EffectiveAt.
type ContractSwitchScheduled struct {
	PartnerID      string    `json:"partner_id"`
	ProgramID      string    `json:"program_id"`
	ContractID     string    `json:"contract_id"`
	By             Side      `json:"by"`
	TemplateTermID string    `json:"template_term_id"`
	EffectiveAt    time.Time `json:"effective_at"`
	ScheduledAt    time.Time `json:"scheduled_at"`
}

// ContractExpiryScheduled: the contract's scheduled expiry (end_date) was
// set or moved.
type ContractExpiryScheduled struct {
	PartnerID   string    `json:"partner_id"`
	ProgramID   string    `json:"program_id"`
	ContractID  string    `json:"contract_id"`
	By          Side      `json:"by"`
	EndDate     time.Time `json:"end_date"`
	ScheduledAt time.Time `json:"scheduled_at"`
}

// Schedule kinds a ContractScheduleReverted can name.
const (
	ScheduleExpiry = "expiry"
	ScheduleSwitch = "switch"
)

// ContractScheduleReverted: a scheduled expiry or switch was removed.
// By is system when an archived template term removed a scheduled switch.
type ContractScheduleReverted struct {
	PartnerID  string    `json:"partner_id"`
	ProgramID  string    `json:"program_id"`
	ContractID string    `json:"contract_id"`
	By         Side      `json:"by"`
	Schedule   string    `json:"schedule"`
	Reason     string    `json:"reason,omitempty"`
	RevertedAt time.Time `json:"reverted_at"`
}

// ContractExpired: the contract ended, by the brand now or by the system at
// its scheduled expiry (then ExpiredAt is the scheduled time).
type ContractExpired struct {
	PartnerID  string        `json:"partner_id"`
	ProgramID  string        `json:"program_id"`
	ContractID string        `json:"contract_id"`
	By         Side          `json:"by"`
	Stage      ContractStage `json:"stage"`
	Reason     string        `json:"reason,omitempty"`
	ExpiredAt  time.Time     `json:"expired_at"`
}

// ContractCancelled: the brand cancelled the contract.
type ContractCancelled struct {
	PartnerID   string        `json:"partner_id"`
	ProgramID   string        `json:"program_id"`
	ContractID  string        `json:"contract_id"`
	By          Side          `json:"by"`
	Stage       ContractStage `json:"stage"`
	Reason      string        `json:"reason,omitempty"`
	CancelledAt time.Time     `json:"cancelled_at"`
}

// ContractArchived: the open contract's template term was archived.
type ContractArchived struct {
	PartnerID      string        `json:"partner_id"`
	ProgramID      string        `json:"program_id"`
	ContractID     string        `json:"contract_id"`
	Stage          ContractStage `json:"stage"`
	TemplateTermID string        `json:"template_term_id"`
	ArchivedAt     time.Time     `json:"archived_at"`
}

// PartnerDeactivated: the partner left the platform. Its current contract,
// if any (ContractID, else ""), is publisher_deactivated whatever its stage.
type PartnerDeactivated struct {
	PartnerID     string        `json:"partner_id"`
	ProgramID     string        `json:"program_id"`
	ContractID    string        `json:"contract_id"`
	Stage         ContractStage `json:"stage,omitempty"`
	DeactivatedAt time.Time     `json:"deactivated_at"`
}

func (ContractProposed) EventType() string         { return TypeContractProposed }
func (ContractCountered) EventType() string        { return TypeContractCountered }
func (ContractAccepted) EventType() string         { return TypeContractAccepted }
func (ContractDeclined) EventType() string         { return TypeContractDeclined }
func (ContractRetracted) EventType() string        { return TypeContractRetracted }
func (ContractStarted) EventType() string          { return TypeContractStarted }
func (ContractProposalExpired) EventType() string  { return TypeContractProposalExpired }
func (ContractSuspended) EventType() string        { return TypeContractSuspended }
func (ContractReinstated) EventType() string       { return TypeContractReinstated }
func (ContractSwitched) EventType() string         { return TypeContractSwitched }
func (ContractSwitchScheduled) EventType() string  { return TypeContractSwitchScheduled }
func (ContractExpiryScheduled) EventType() string  { return TypeContractExpiryScheduled }
func (ContractScheduleReverted) EventType() string { return TypeContractScheduleReverted }
func (ContractExpired) EventType() string          { return TypeContractExpired }
func (ContractCancelled) EventType() string        { return TypeContractCancelled }
func (ContractArchived) EventType() string         { return TypeContractArchived }
func (PartnerDeactivated) EventType() string       { return TypePartnerDeactivated }
