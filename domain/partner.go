package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"
)

// Partner event type names.
const (
	TypePartnerCreated        = "partner.created"
	TypePartnerProfileUpdated = "partner.profile_updated"
)

// PartnerCreated: a partner joined the program's partner list (as a prospect
// or a partner). Profile fields are flattened into the event's data; personal
// data sits under "personal".
type PartnerCreated struct {
	PartnerID string `json:"partner_id"`
	ProgramID string `json:"program_id"`
	Profile
	ProspectStage string `json:"prospect_stage"`
	// SignupSource is how the partner joined (one of SignupSources); absent
	// when unknown. It never changes.
	SignupSource string    `json:"signup_source,omitempty"`
	Personal     Personal  `json:"personal"`
	CreatedAt    time.Time `json:"created_at"`
}

// PartnerProfileUpdated: profile fields changed. It carries the whole new
// profile (so readers never need the old one) and the names of the fields
// that changed.
type PartnerProfileUpdated struct {
	PartnerID string   `json:"partner_id"`
	ProgramID string   `json:"program_id"`
	Changed   []string `json:"changed"`
	Profile
	Personal  Personal  `json:"personal"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (PartnerCreated) EventType() string        { return TypePartnerCreated }
func (PartnerProfileUpdated) EventType() string { return TypePartnerProfileUpdated }

// Partner is the aggregate of one partner in one program. A Partner value
// may be copied: folding events into a copy never changes the original.
type Partner struct {
	id            string
	program       string
	profile       Profile
	personal      Personal
	prospectStage string
	createdAt     time.Time
	updatedAt     time.Time
	contract      *ContractState  // current contract, nil before the first proposal
	history       []ContractState // earlier contracts, oldest first
	dateJoined    *time.Time      // when a contract of the partner first became joined
	deactivatedAt *time.Time      // set when the partner left the platform, until a new proposal
	groups        []string        // IDs of the groups the partner is in, sorted
	signupSource  string          // how the partner joined; set at creation, never changed
	assignedTo    string          // the brand's user managing the partner, "" for none
	settings      Settings
	links         []AccountLink // linked partner accounts, sorted by partner ID
	// Kept by folding the stream only, not in PartnerState (see Notes):
	notes       *noteList    // newest first, immutable (see noteList)
	accessLinks []accessLink // issued access links not expired before a later one was issued
}

// PartnerState is a read-only copy of a partner's state, for answers and
// time-travel reads.
type PartnerState struct {
	PartnerID     string    `json:"partner_id"`
	ProgramID     string    `json:"program_id"`
	Profile       Profile   `json:"profile"`
	Personal      Personal  `json:"personal"`
	ProspectStage string    `json:"prospect_stage"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// Contract is the current contract (nil before the first proposal); a
	// closed one stays current until a new proposal or a switch replaces it.
	Contract *ContractState `json:"contract"`
	// ContractHistory holds the replaced contracts, oldest first.
	ContractHistory []ContractState `json:"contract_history,omitempty"`
	DateJoined      *time.Time      `json:"date_joined,omitempty"`
	DeactivatedAt   *time.Time      `json:"deactivated_at,omitempty"`
	// Groups are the IDs of the groups the partner is in, sorted; never nil.
	Groups       []string `json:"groups"`
	SignupSource string   `json:"signup_source,omitempty"`
	AssignedTo   string   `json:"assigned_to,omitempty"`
	// Settings are complete: unset parts hold their defaults.
	Settings Settings `json:"settings"`
	// Links are the linked partner accounts, sorted by partner ID; nil for none.
	Links []AccountLink `json:"links,omitempty"`
}

// Exists reports whether the partner was created.
func (p *Partner) Exists() bool { return p.id != "" }

// State returns a copy of the partner's state.
func (p *Partner) State() PartnerState {
	return PartnerState{PartnerID: p.id, ProgramID: p.program, Profile: p.profile, Personal: p.personal,
		ProspectStage: p.prospectStage, CreatedAt: p.createdAt, UpdatedAt: p.updatedAt,
		Contract: p.contract.clone(), ContractHistory: cloneHistory(p.history),
		DateJoined: p.dateJoined, DeactivatedAt: p.deactivatedAt, Groups: append([]string{}, p.groups...),
		SignupSource: p.signupSource, AssignedTo: p.assignedTo, Settings: p.settings.withDefaults(),
		Links: p.linkList()}
}

// Apply folds one event into the partner.
func (p *Partner) Apply(ev Event) {
	switch e := ev.(type) {
	case PartnerCreated:
		p.id, p.program = e.PartnerID, e.ProgramID
		p.profile, p.personal = e.Profile, e.Personal
		p.prospectStage, p.signupSource = e.ProspectStage, e.SignupSource
		p.createdAt = e.CreatedAt
	case PartnerProfileUpdated:
		p.profile, p.personal = e.Profile, e.Personal
	case PartnerGroupsChanged:
		p.groups = slices.Clone(e.Groups)
	case PartnerAssigned:
		p.assignedTo = e.User
	case PartnerUnassigned:
		p.assignedTo = ""
	case PartnerProspectStageChanged:
		p.prospectStage = e.Stage
	case PartnerNoteAdded:
		p.notes = &noteList{note: Note{ID: e.NoteID, Text: e.Personal.Text, Author: e.Author, CreatedAt: e.AddedAt}, prev: p.notes, n: p.notes.len() + 1}
	case PartnerTrackingSettingsChanged:
		p.settings.Tracking = e.TrackingSettings
	case PartnerClientCostSettingsChanged:
		p.settings.ClientCost = e.ClientCostSettings
	case PartnerComplianceSettingsChanged:
		p.settings.Compliance = e.ComplianceSettings
	case PartnerAccountLinked:
		p.links = p.linked(e)
	case PartnerAccountUnlinked:
		p.links = p.unlinked(e.LinkedPartnerID)
	case PartnerMessageSent, PartnerInvited:
		// facts for a downstream mailer; they change no state
	case PartnerAccessLinkIssued, PartnerAccessLinkRedeemed:
		p.applyAccessLink(ev)
	default:
		p.applyContract(ev)
	}
	switch ev.(type) {
	case PartnerNoteAdded, PartnerMessageSent, PartnerInvited, PartnerAccessLinkIssued, PartnerAccessLinkRedeemed:
		// not part of the state a partner answers with
	default:
		// updated_at: the latest change of the partner's state, of any kind
		if te, ok := ev.(Timed); ok && te.At().After(p.updatedAt) {
			p.updatedAt = te.At()
		}
	}
}

// NewPartner is the input of CreatePartner.
type NewPartner struct {
	ProgramID     string
	PartnerID     string
	Profile       Profile
	Personal      Personal
	ProspectStage string // default "new"
	SignupSource  string // optional, one of SignupSources
}

// Create decides the creation of a partner.
func (p *Partner) Create(in NewPartner, now time.Time) ([]Event, error) {
	in.Profile, in.Personal = in.Profile.normalize(), in.Personal.normalize()
	var pr problems
	if !ValidEntityID(in.PartnerID) {
		pr.add("partner_id", EntityIDRule)
	}
	if in.ProspectStage == "" {
		in.ProspectStage = "new"
	}
	if !oneOf(in.ProspectStage, ProspectStages) {
		pr.add("prospect_stage", "must be one of %v", ProspectStages)
	}
	pr.signupSource(in.SignupSource)
	if err := in.Profile.Validate(in.Personal); err != nil {
		pr = append(pr, err.(*ValidationError).Fields...)
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	if p.Exists() {
		return nil, fmt.Errorf("partner %s: %w", in.PartnerID, ErrAlreadyExists)
	}
	return []Event{PartnerCreated{PartnerID: in.PartnerID, ProgramID: in.ProgramID, Profile: in.Profile,
		ProspectStage: in.ProspectStage, SignupSource: in.SignupSource, Personal: in.Personal, CreatedAt: now}}, nil
}

// Patch is a JSON merge patch of a partner's editable fields (API names:
// profile fields plus email, contact_names, address).
type Patch map[string]json.RawMessage

// editable is the flat shape a Patch applies to.
type editable struct {
	Profile
	Personal
}

// UpdateProfile decides a profile change from a JSON merge patch (RFC
// 7396): a field set to null is cleared, and an object field (custom
// fields) is merged key by key, so {"custom_fields": {"tier": null}} drops
// one custom field and keeps the others. Unknown fields and invalid values
// are reported all at once; a patch that changes nothing yields no event.
func (p *Partner) UpdateProfile(patch Patch, now time.Time) ([]Event, error) {
	return p.updateProfile(patch, now, true)
}

// SetProfile is UpdateProfile with each field's value taken whole: an
// object field becomes exactly the object given (a CSV import's cell holds
// a field's full value).
func (p *Partner) SetProfile(patch Patch, now time.Time) ([]Event, error) {
	return p.updateProfile(patch, now, false)
}

func (p *Partner) updateProfile(patch Patch, now time.Time, deep bool) ([]Event, error) {
	if !p.Exists() {
		return nil, fmt.Errorf("partner: %w", ErrNotFound)
	}
	cur := editable{Profile: p.profile, Personal: p.personal}
	doc := map[string]json.RawMessage{}
	raw, _ := json.Marshal(cur)
	_ = json.Unmarshal(raw, &doc)
	var pr problems
	fields := make([]string, 0, len(patch))
	for k := range patch {
		fields = append(fields, k)
	}
	sort.Strings(fields)
	for _, k := range fields {
		if !patchable(k) {
			pr.add(k, "is not an editable partner field")
			continue
		}
		switch {
		case isJSONNull(patch[k]):
			delete(doc, k)
		case deep:
			doc[k] = mergePatch(doc[k], patch[k])
		default:
			doc[k] = patch[k]
		}
	}
	merged, _ := json.Marshal(doc)
	var next editable
	dec := json.NewDecoder(bytes.NewReader(merged))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&next); err != nil {
		pr.add(jsonErrorField(err), "has the wrong type: %v", err)
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	next.Profile, next.Personal = next.Profile.normalize(), next.Personal.normalize()
	if err := next.Profile.Validate(next.Personal); err != nil {
		return nil, err
	}
	changed := changedFields(cur, next)
	if len(changed) == 0 {
		return nil, nil
	}
	return []Event{PartnerProfileUpdated{PartnerID: p.id, ProgramID: p.program, Changed: changed,
		Profile: next.Profile, Personal: next.Personal, UpdatedAt: now}}, nil
}

func isJSONNull(v json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(v), []byte("null")) }

// mergePatch applies an RFC 7396 merge patch to a JSON value: a patch that
// is an object merges into the target's members (null removes one), any
// other patch replaces the target.
func mergePatch(target, patch json.RawMessage) json.RawMessage {
	var pm map[string]json.RawMessage
	if t := bytes.TrimSpace(patch); len(t) == 0 || t[0] != '{' || json.Unmarshal(patch, &pm) != nil {
		return patch
	}
	tm := map[string]json.RawMessage{}
	if t := bytes.TrimSpace(target); len(t) > 0 && t[0] == '{' {
		_ = json.Unmarshal(target, &tm)
	}
	for k, v := range pm {
		if isJSONNull(v) {
			delete(tm, k)
		} else {
			tm[k] = mergePatch(tm[k], v)
		}
	}
	out, _ := json.Marshal(tm)
	return out
}

func patchable(field string) bool {
	_, ok := editableFields()[field]
	return ok
}

// editableFields maps API field names to their index path in editable.
func editableFields() map[string][]int {
	out := map[string][]int{}
	t := reflect.TypeOf(editable{})
	for i := 0; i < t.NumField(); i++ {
		inner := t.Field(i).Type
		for j := 0; j < inner.NumField(); j++ {
			out[jsonName(inner.Field(j))] = []int{i, j}
		}
	}
	return out
}

func jsonName(f reflect.StructField) string {
	tag := f.Tag.Get("json")
	for i := 0; i < len(tag); i++ {
		if tag[i] == ',' {
			return tag[:i]
		}
	}
	return tag
}

func changedFields(a, b editable) []string {
	var out []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for name, idx := range editableFields() {
		if !reflect.DeepEqual(va.FieldByIndex(idx).Interface(), vb.FieldByIndex(idx).Interface()) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func jsonErrorField(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return JSONField(te)
	}
	return "body"
}

// JSONField names the API field of a JSON type error, dropping the Go names
// of embedded structs ("Profile.social_reach" → "social_reach").
func JSONField(te *json.UnmarshalTypeError) string {
	parts := strings.Split(te.Field, ".")
	// Leading Go names of embedded structs (Profile, bulkTarget) have an
	// upper-case letter somewhere; partnerd's JSON names never do.
	for len(parts) > 1 && parts[0] != "" && strings.ToLower(parts[0]) != parts[0] {
		parts = parts[1:]
	}
	return strings.Join(parts, ".")
}

// RestorePartner rebuilds a partner from a saved state (a read model's
// working copy or a snapshot). Snapshots are never authoritative: the log is.
// Notes and issued access links are not part of a state: a restored partner
// has none, so decisions on them (AddNote, RedeemAccessLink) are taken on a
// partner folded from its stream.
func RestorePartner(s PartnerState) Partner {
	return Partner{id: s.PartnerID, program: s.ProgramID, profile: s.Profile, personal: s.Personal,
		prospectStage: s.ProspectStage, createdAt: s.CreatedAt, updatedAt: s.UpdatedAt,
		contract: s.Contract.clone(), history: cloneHistory(s.ContractHistory),
		dateJoined: s.DateJoined, deactivatedAt: s.DeactivatedAt, groups: slices.Clone(s.Groups),
		signupSource: s.SignupSource, assignedTo: s.AssignedTo, settings: s.Settings, links: slices.Clone(s.Links)}
}
