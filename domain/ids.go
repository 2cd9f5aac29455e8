package domain

import "regexp"

// Stream categories; the stream of an aggregate is "<category>-<program>-<id>"
// (a program's own stream is "program-<program>"). Program IDs cannot contain
// '-', so a stream name never belongs to two programs. No category may be
// "snapshot": the event store keeps snapshots in streams named
// "snapshot-<stream>" (eventstore.SnapshotStreamPrefix), which the log's
// consumers skip; since every aggregate stream starts with its category,
// whatever the IDs, none can be taken for one.
const (
	CategoryProgram = "program"
	CategoryPartner = "partner"
)

var (
	programIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{0,39}$`)
	entityIDPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
)

// ValidProgramID reports whether id may name a program: 1–40 of a–z, 0–9, '_'.
func ValidProgramID(id string) bool { return programIDPattern.MatchString(id) }

// ValidEntityID reports whether id may name a partner or another entity:
// 1–64 of letters, digits, '_', '.', ':', '-', starting with a letter or digit.
func ValidEntityID(id string) bool { return entityIDPattern.MatchString(id) }

// EntityIDRule says what ValidEntityID accepts, for field errors.
const EntityIDRule = "must be 1-64 of letters, digits, '_', '.', ':', '-', starting with a letter or digit"

// ProgramStream is the stream of a program aggregate.
func ProgramStream(program string) string { return CategoryProgram + "-" + program }

// PartnerStream is the stream of one partner of a program.
func PartnerStream(program, partnerID string) string {
	return CategoryPartner + "-" + program + "-" + partnerID
}

// Category returns the category of a stream name (its text before the first '-').
func Category(stream string) string {
	for i := 0; i < len(stream); i++ {
		if stream[i] == '-' {
			return stream[:i]
		}
	}
	return stream
}
