package domain

// Contract statuses (SPEC §1 list filter "status").
const (
	ContractStatusActive    = "active"
	ContractStatusExpired   = "expired"
	ContractStatusSuspended = "suspended"
)

// Relationship stages (SPEC §2).
const (
	RelationshipNew         = "new"
	RelationshipOutreach    = "outreach"
	RelationshipNegotiating = "negotiating"
	RelationshipJoined      = "joined"
	RelationshipExpired     = "expired"
)

// ContractStatus is active (joined), expired or suspended; "" for any other
// stage and for a partner without a contract.
func ContractStatus(s PartnerState) string {
	if s.Contract == nil {
		return ""
	}
	switch s.Contract.Stage {
	case StageJoined:
		return ContractStatusActive
	case StageExpired:
		return ContractStatusExpired
	case StageSuspended:
		return ContractStatusSuspended
	}
	return ""
}

// RelationshipStage derives where the brand stands with the partner:
//   - no contract: the prospect stage when it is outreach, negotiating,
//     joined or expired (set by hand, e.g. after an e-mail), else new;
//   - the brand's proposal unanswered (awaiting_publisher_approval): outreach;
//   - the partner's application or any counter open: negotiating;
//   - accepted and not ended (awaiting_contract_start, joined, suspended): joined;
//   - expired or cancelled: expired;
//   - declined, retracted, proposal expired, archived or deactivated:
//     expired if the partner was ever joined, else outreach (contacted, no deal).
func RelationshipStage(s PartnerState) string {
	c := s.Contract
	if c == nil {
		switch s.ProspectStage {
		case RelationshipOutreach, RelationshipNegotiating, RelationshipJoined, RelationshipExpired:
			return s.ProspectStage
		}
		return RelationshipNew
	}
	switch {
	case c.Stage == StageAwaitingPublisherApproval:
		return RelationshipOutreach
	case c.Stage.Negotiating():
		return RelationshipNegotiating
	case c.Stage.InForce():
		return RelationshipJoined
	case c.Stage == StageExpired || c.Stage == StageCancelled || s.DateJoined != nil:
		return RelationshipExpired
	}
	return RelationshipOutreach
}

// ProspectStageOf derives the prospect stage: the relationship stage, or
// rejected_by_partner / rejected_by_you after a decline, or suspended.
// Without a contract it is the prospect stage kept on the partner.
func ProspectStageOf(s PartnerState) string {
	if s.Contract == nil {
		return s.ProspectStage
	}
	switch s.Contract.Stage {
	case StagePublisherDeclined:
		return "rejected_by_partner"
	case StageAdvertiserDeclined:
		return "rejected_by_you"
	case StageSuspended:
		return "suspended"
	}
	return RelationshipStage(s)
}
