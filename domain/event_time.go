package domain

import "time"

// Timed is an event that names when it took effect: the time the deciding
// command put in its data (its clock when it decided), or for a scheduled
// move (a start, an expiry, a switch, a proposal's deadline) the time it
// was due, which may be well before the scheduler appended it. Commands
// write it into each event's metadata as occurred_at, by which as_of
// folds, and a partner's updated_at is the latest of its state's events.
// Every event a command appends is Timed (TestEveryCommandEventIsTimed).
type Timed interface {
	Event
	At() time.Time
}

func (e ConnectionCreated) At() time.Time                { return e.CreatedAt }
func (e ConnectionDeleted) At() time.Time                { return e.DeletedAt }
func (e ConnectionUpdated) At() time.Time                { return e.UpdatedAt }
func (e ContractAccepted) At() time.Time                 { return e.AcceptedAt }
func (e ContractArchived) At() time.Time                 { return e.ArchivedAt }
func (e ContractCancelled) At() time.Time                { return e.CancelledAt }
func (e ContractCountered) At() time.Time                { return e.CounteredAt }
func (e ContractDeclined) At() time.Time                 { return e.DeclinedAt }
func (e ContractExpired) At() time.Time                  { return e.ExpiredAt }
func (e ContractExpiryScheduled) At() time.Time          { return e.ScheduledAt }
func (e ContractProposalExpired) At() time.Time          { return e.ExpiredAt }
func (e ContractProposed) At() time.Time                 { return e.ProposedAt }
func (e ContractReinstated) At() time.Time               { return e.ReinstatedAt }
func (e ContractRetracted) At() time.Time                { return e.RetractedAt }
func (e ContractScheduleReverted) At() time.Time         { return e.RevertedAt }
func (e ContractStarted) At() time.Time                  { return e.StartedAt }
func (e ContractSuspended) At() time.Time                { return e.SuspendedAt }
func (e ContractSwitchScheduled) At() time.Time          { return e.ScheduledAt }
func (e ContractSwitched) At() time.Time                 { return e.SwitchedAt }
func (e CredentialConnectionAttached) At() time.Time     { return e.AttachedAt }
func (e CredentialConnectionDetached) At() time.Time     { return e.DetachedAt }
func (e CredentialCreated) At() time.Time                { return e.CreatedAt }
func (e CredentialDeleted) At() time.Time                { return e.DeletedAt }
func (e CredentialRotated) At() time.Time                { return e.RotatedAt }
func (e GroupCreated) At() time.Time                     { return e.CreatedAt }
func (e GroupDeleted) At() time.Time                     { return e.DeletedAt }
func (e GroupRenamed) At() time.Time                     { return e.RenamedAt }
func (e PartnerAccessLinkIssued) At() time.Time          { return e.IssuedAt }
func (e PartnerAccessLinkRedeemed) At() time.Time        { return e.RedeemedAt }
func (e PartnerAccountLinked) At() time.Time             { return e.LinkedAt }
func (e PartnerAccountUnlinked) At() time.Time           { return e.UnlinkedAt }
func (e PartnerAssigned) At() time.Time                  { return e.AssignedAt }
func (e PartnerClientCostSettingsChanged) At() time.Time { return e.ChangedAt }
func (e PartnerComplianceSettingsChanged) At() time.Time { return e.ChangedAt }
func (e PartnerCreated) At() time.Time                   { return e.CreatedAt }
func (e PartnerDeactivated) At() time.Time               { return e.DeactivatedAt }
func (e PartnerGroupsChanged) At() time.Time             { return e.ChangedAt }
func (e PartnerInvited) At() time.Time                   { return e.InvitedAt }
func (e PartnerMessageSent) At() time.Time               { return e.SentAt }
func (e PartnerNoteAdded) At() time.Time                 { return e.AddedAt }
func (e PartnerProfileUpdated) At() time.Time            { return e.UpdatedAt }
func (e PartnerProspectStageChanged) At() time.Time      { return e.ChangedAt }
func (e PartnerTrackingSettingsChanged) At() time.Time   { return e.ChangedAt }
func (e PartnerUnassigned) At() time.Time                { return e.UnassignedAt }
func (e ProgramAPIKeyIssued) At() time.Time              { return e.IssuedAt }
func (e ProgramAPIKeyRevoked) At() time.Time             { return e.RevokedAt }
func (e ProgramCreated) At() time.Time                   { return e.CreatedAt }
func (e SegmentConditionsChanged) At() time.Time         { return e.ChangedAt }
func (e SegmentCreated) At() time.Time                   { return e.CreatedAt }
func (e SegmentDeleted) At() time.Time                   { return e.DeletedAt }
func (e SegmentRenamed) At() time.Time                   { return e.RenamedAt }
func (e TemplateTermArchived) At() time.Time             { return e.ArchivedAt }
func (e TemplateTermCreated) At() time.Time              { return e.CreatedAt }
func (e TemplateTermUpdated) At() time.Time              { return e.UpdatedAt }
