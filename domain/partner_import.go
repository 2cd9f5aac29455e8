package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"
)

// PartnerImport is one row of a bulk edit by CSV: the partner and the
// columns the row sets. A nil field is a column the upload does not have;
// the partner keeps what it holds there.
type PartnerImport struct {
	ProgramID string
	PartnerID string
	// Profile sets profile and personal fields (API names, as in Patch); a
	// JSON null clears a field.
	Profile Patch
	// ProspectStage is the prospect stage to set; equal to the stage the
	// partner shows (which follows its contract, if any) it changes nothing.
	ProspectStage *string
	// Groups is the full set of groups (IDs) the partner is to be in.
	Groups *[]string
	// AssignedTo is the account manager; "" unassigns.
	AssignedTo *string
	// IfVersion, when set, is the version the partner must be at (the
	// row's version column, as exported): the import's If-Match.
	IfVersion *uint64
}

// Import decides one import row as a whole: it creates the partner when it
// does not exist (the row must then hold name and relationship_type), else
// updates its profile and prospect stage, then sets groups and the account
// manager. Either every change of the row is valid and its events are
// returned together (to be appended at once), or nothing is; a row that
// matches the partner yields no event. Field names in errors are the
// columns': prospect_stage, groups[i], assigned_to.
func (p *Partner) Import(in PartnerImport, now time.Time) ([]Event, error) {
	next := *p // folding into a copy never changes p
	var out []Event
	step := func(evs []Event, err error) error {
		if err != nil {
			return err
		}
		for _, ev := range evs {
			next.Apply(ev)
		}
		out = append(out, evs...)
		return nil
	}
	if !p.Exists() {
		var fields editable
		if err := decodePatch(in.Profile, &fields); err != nil {
			return nil, err
		}
		stage := ""
		if in.ProspectStage != nil {
			stage = *in.ProspectStage
		}
		if err := step(next.Create(NewPartner{ProgramID: in.ProgramID, PartnerID: in.PartnerID, Profile: fields.Profile,
			Personal: fields.Personal, ProspectStage: stage}, now)); err != nil {
			return nil, err
		}
	} else {
		if len(in.Profile) > 0 {
			if err := step(next.SetProfile(in.Profile, now)); err != nil {
				return nil, err
			}
		}
		if in.ProspectStage != nil && *in.ProspectStage != ProspectStageOf(next.State()) {
			if err := step(next.SetProspectStage(*in.ProspectStage, now)); err != nil {
				return nil, renameField(err, "stage", "prospect_stage")
			}
		}
	}
	if in.Groups != nil {
		if err := step(next.SetGroups(*in.Groups, now)); err != nil {
			return nil, err
		}
	}
	if in.AssignedTo != nil {
		if err := step(next.Assign(*in.AssignedTo, now)); err != nil {
			return nil, renameField(err, "user", "assigned_to")
		}
	}
	return out, nil
}

// decodePatch reads the non-null fields of a patch into an editable value,
// strictly: unknown fields and wrong types are validation errors.
func decodePatch(patch Patch, into *editable) error {
	doc := map[string]json.RawMessage{}
	var pr problems
	for k, v := range patch {
		if !patchable(k) {
			pr.add(k, "is not an editable partner field")
			continue
		}
		if !bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			doc[k] = v
		}
	}
	if err := pr.err(); err != nil {
		return err
	}
	raw, _ := json.Marshal(doc)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		pr.add(jsonErrorField(err), "has the wrong type: %v", err)
		return pr.err()
	}
	return nil
}

// renameField renames a field of a ValidationError (a command's body field
// to the import column that fed it); other errors pass unchanged.
func renameField(err error, from, to string) error {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	out := &ValidationError{Fields: make([]FieldError, len(ve.Fields))}
	for i, f := range ve.Fields {
		if f.Field == from {
			f.Field = to
		}
		out.Fields[i] = f
	}
	return out
}
