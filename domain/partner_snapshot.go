package domain

import (
	"time"
)

// PartnerSnapshotVersion changes whenever what Partner keeps, or how Apply
// folds an event into it, changes: snapshots taken by another version are
// discarded (never trusted, never upcast). The snapshot's shape is
// fingerprinted separately by its reader.
const PartnerSnapshotVersion = 2 // 2: updated_at follows every change of the state, not only the profile

// PartnerSnapshot is everything a Partner holds, for a snapshot stored
// beside the log. A snapshot is a cache: the stream stays authoritative.
type PartnerSnapshot struct {
	State       PartnerState         `json:"state"`
	Settings    Settings             `json:"settings"` // as folded, without defaults
	Notes       []Note               `json:"notes,omitempty"`
	AccessLinks []AccessLinkSnapshot `json:"access_links,omitempty"`
}

// AccessLinkSnapshot is an issued access link as a Partner keeps it.
type AccessLinkSnapshot struct {
	ID         string     `json:"id"`
	ExpiresAt  time.Time  `json:"expires_at"`
	RedeemedAt *time.Time `json:"redeemed_at,omitempty"`
}

// Snapshot returns the partner's whole state.
func (p *Partner) Snapshot() PartnerSnapshot {
	s := PartnerSnapshot{State: p.State(), Settings: p.settings, Notes: p.Notes()}
	s.State.Links = p.links
	for _, l := range p.accessLinks {
		s.AccessLinks = append(s.AccessLinks, AccessLinkSnapshot{ID: l.id, ExpiresAt: l.expiresAt, RedeemedAt: l.redeemedAt})
	}
	return s
}

// RestoreSnapshot makes the Partner a snapshot was taken of.
func RestoreSnapshot(s PartnerSnapshot) Partner {
	p := RestorePartner(s.State)
	p.settings = s.Settings
	p.groups = s.State.Groups
	if len(s.State.Groups) == 0 {
		p.groups = nil
	}
	for _, n := range s.Notes {
		p.notes = &noteList{note: n, prev: p.notes, n: p.notes.len() + 1}
	}
	for _, l := range s.AccessLinks {
		p.accessLinks = append(p.accessLinks, accessLink{id: l.ID, expiresAt: l.ExpiresAt, redeemedAt: l.RedeemedAt})
	}
	return p
}
