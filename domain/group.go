package domain

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// CategoryGroup is the stream category of partner groups.
const CategoryGroup = "group"

// GroupStream is the stream of one partner group of a program.
func GroupStream(program, groupID string) string {
	return CategoryGroup + "-" + program + "-" + groupID
}

// Group event type names (stream group-<program>-<id>), and the partner
// event of group membership (stream partner-<program>-<id>).
const (
	TypeGroupCreated         = "group.created"
	TypeGroupRenamed         = "group.renamed"
	TypeGroupDeleted         = "group.deleted"
	TypePartnerGroupsChanged = "partner.groups_changed"
)

// MaxPartnerGroups bounds how many groups one partner is in.
const MaxPartnerGroups = 100

// GroupCreated: a partner group (a named label) was created.
type GroupCreated struct {
	GroupID   string    `json:"group_id"`
	ProgramID string    `json:"program_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// GroupRenamed: a group got a new name.
type GroupRenamed struct {
	GroupID      string    `json:"group_id"`
	ProgramID    string    `json:"program_id"`
	Name         string    `json:"name"`
	PreviousName string    `json:"previous_name"`
	RenamedAt    time.Time `json:"renamed_at"`
}

// GroupDeleted: a group was deleted. Its members leave it, each by its own
// partner.groups_changed event (a process, see Partner.LeaveGroup). A
// deleted group's ID is never used again.
type GroupDeleted struct {
	GroupID   string    `json:"group_id"`
	ProgramID string    `json:"program_id"`
	DeletedAt time.Time `json:"deleted_at"`
}

// PartnerGroupsChanged: the partner's set of groups changed. Groups is the
// whole new set (sorted), Added and Removed the difference.
type PartnerGroupsChanged struct {
	PartnerID string    `json:"partner_id"`
	ProgramID string    `json:"program_id"`
	Added     []string  `json:"added"`
	Removed   []string  `json:"removed"`
	Groups    []string  `json:"groups"`
	ChangedAt time.Time `json:"changed_at"`
}

func (GroupCreated) EventType() string         { return TypeGroupCreated }
func (GroupRenamed) EventType() string         { return TypeGroupRenamed }
func (GroupDeleted) EventType() string         { return TypeGroupDeleted }
func (PartnerGroupsChanged) EventType() string { return TypePartnerGroupsChanged }

// Group is the aggregate of one partner group. Membership is kept on the
// partners, not here.
type Group struct {
	id, program string
	name        string
	createdAt   time.Time
	updatedAt   time.Time
	deleted     bool
}

// GroupState is a read-only copy of a group.
type GroupState struct {
	ID        string    `json:"id"`
	ProgramID string    `json:"program_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Exists reports whether the group was created (deleted or not).
func (g *Group) Exists() bool { return g.id != "" }

// Deleted reports whether the group was deleted.
func (g *Group) Deleted() bool { return g.deleted }

// Live reports whether the group exists and was not deleted.
func (g *Group) Live() bool { return g.Exists() && !g.deleted }

// State returns a copy of the group's state.
func (g *Group) State() GroupState {
	return GroupState{ID: g.id, ProgramID: g.program, Name: g.name, CreatedAt: g.createdAt, UpdatedAt: g.updatedAt}
}

// Apply folds one event into the group.
func (g *Group) Apply(ev Event) {
	switch e := ev.(type) {
	case GroupCreated:
		g.id, g.program, g.name = e.GroupID, e.ProgramID, e.Name
		g.createdAt, g.updatedAt = e.CreatedAt, e.CreatedAt
	case GroupRenamed:
		g.name, g.updatedAt = e.Name, e.RenamedAt
	case GroupDeleted:
		g.deleted, g.updatedAt = true, e.DeletedAt
	}
}

// NewGroup is the input of creating a group.
type NewGroup struct {
	ProgramID string
	ID        string
	Name      string
}

// Create decides the creation of a group. The ID of a deleted group is
// taken (ErrAlreadyExists): old events still name it.
func (g *Group) Create(in NewGroup, now time.Time) ([]Event, error) {
	var pr problems
	if !ValidEntityID(in.ID) {
		pr.add("id", EntityIDRule)
	}
	name := pr.name(in.Name, true)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if g.Exists() {
		return nil, fmt.Errorf("group %s: %w", in.ID, ErrAlreadyExists)
	}
	return []Event{GroupCreated{GroupID: in.ID, ProgramID: in.ProgramID, Name: name, CreatedAt: now.UTC()}}, nil
}

// Rename decides a new name; the same name yields no event. A deleted
// group is not found.
func (g *Group) Rename(name string, now time.Time) ([]Event, error) {
	if !g.Live() {
		return nil, fmt.Errorf("group: %w", ErrNotFound)
	}
	var pr problems
	name = pr.name(name, true)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if name == g.name {
		return nil, nil
	}
	return []Event{GroupRenamed{GroupID: g.id, ProgramID: g.program, Name: name, PreviousName: g.name, RenamedAt: now.UTC()}}, nil
}

// Delete decides deleting the group. Deleting a deleted group yields no
// event, so a caller may repeat it (to re-run the removal of members).
func (g *Group) Delete(now time.Time) ([]Event, error) {
	if !g.Exists() {
		return nil, fmt.Errorf("group: %w", ErrNotFound)
	}
	if g.deleted {
		return nil, nil
	}
	return []Event{GroupDeleted{GroupID: g.id, ProgramID: g.program, DeletedAt: now.UTC()}}, nil
}

// SetGroups decides replacing the partner's groups by the given set (order
// and repeats do not matter). The caller checks that every group exists
// and is not deleted. The same set yields no event.
func (p *Partner) SetGroups(groups []string, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	var pr problems
	for i, g := range groups {
		if !ValidEntityID(g) {
			pr.add("groups["+strconv.Itoa(i)+"]", "must be a group ID: 1-64 of letters, digits, '_', '.', ':', '-', starting with a letter or digit")
		}
	}
	next := slices.Compact(slices.Sorted(slices.Values(groups)))
	if len(next) > MaxPartnerGroups {
		pr.add("groups", "a partner can be in at most %d groups", MaxPartnerGroups)
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	return p.groupsChanged(next, now), nil
}

// LeaveGroup decides removing the partner from a (deleted) group. A
// partner that is not in the group yields no event, so the process that
// removes a deleted group's members may visit any partner, any number of
// times.
func (p *Partner) LeaveGroup(groupID string, now time.Time) ([]Event, error) {
	if err := p.found(); err != nil {
		return nil, err
	}
	next := slices.DeleteFunc(slices.Clone(p.groups), func(g string) bool { return g == groupID })
	return p.groupsChanged(next, now), nil
}

// groupsChanged returns the event that moves p to the sorted set next, or
// nothing when next is the current set.
func (p *Partner) groupsChanged(next []string, now time.Time) []Event {
	if next == nil {
		next = []string{}
	}
	added, removed := []string{}, []string{}
	for _, g := range next {
		if !slices.Contains(p.groups, g) {
			added = append(added, g)
		}
	}
	for _, g := range p.groups {
		if !slices.Contains(next, g) {
			removed = append(removed, g)
		}
	}
	if len(added) == 0 && len(removed) == 0 {
		return nil
	}
	return []Event{PartnerGroupsChanged{PartnerID: p.id, ProgramID: p.program, Added: added, Removed: removed,
		Groups: next, ChangedAt: now.UTC()}}
}
