// Package commands holds one handler per use case on the write side: load
// the aggregate's stream, let the domain decide, append with the expected
// version, retry on a version race where that is safe.
package commands

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/internal/passwords"
)

// EventStore is what the write side needs of the log.
type EventStore interface {
	Append(ctx context.Context, stream string, expected int64, events []eventstore.EventData) (eventstore.AppendResult, error)
	ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, max int) ([]eventstore.RecordedEvent, error)
}

// resourceOf names the resource of a stream "<category>-<program>-<id>" as
// an answer may ("partner p1"), without the stream's internal name.
func resourceOf(stream, program string) string {
	cat := domain.Category(stream)
	name := cat
	if cat == domain.CategoryTemplateTerm {
		name = "template term"
	}
	if id, ok := strings.CutPrefix(stream, cat+"-"+program+"-"); ok {
		return name + " " + id
	}
	return name
}

// ErrStale: the If-Match version is not the resource's current version.
var ErrStale = errors.New("resource version does not match If-Match")

// ErrContended: the command lost the race for its stream to other writers
// on every retry; it changed nothing and may be sent again.
var ErrContended = errors.New("other writes to the resource kept winning; nothing was changed, retry")

// Meta is who and why: it goes into every appended event's metadata.
type Meta struct {
	Actor          string
	CorrelationID  string
	CausationID    string
	IdempotencyKey string
	// IfMatch, when set, is the resource version the caller last saw; the
	// command fails with ErrStale if the resource moved on.
	IfMatch *uint64
	// Once makes IdempotencyKey a guard: when an event of the stream already
	// carries the key, the command is not decided again and its Result says
	// AlreadyApplied. Imports use it with one key per row, so a retry after
	// a crash skips the rows the first attempt applied.
	Once bool
}

// EventMeta is the metadata stored with each event.
type EventMeta struct {
	Schema         int    `json:"schema"`
	Program        string `json:"program,omitempty"`
	Actor          string `json:"actor,omitempty"`
	CorrelationID  string `json:"correlation_id,omitempty"`
	CausationID    string `json:"causation_id,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// OccurredAt is when the event took effect (domain.Timed): the time the
	// command put in its data (updated_at, changed_at…), or for a scheduled
	// move the time it was due; the command's clock before it decided for
	// an event that names no time. The log records the events later
	// (recorded_at, after the sync; a scheduled move when it was applied).
	// as_of folds by it, so the version a command answered is the one
	// as_of=<its updated_at> shows, and a contract that expired at T shows
	// as expired as of T.
	OccurredAt time.Time `json:"occurred_at,omitzero"`
}

// Result tells where a command's events landed.
type Result struct {
	Stream string
	// Version is the resource version after the command (number of events in
	// its stream); unchanged when the command appended nothing.
	Version  uint64
	Position eventstore.Position
	Appended int
	// AlreadyApplied: Meta.Once found the key in the stream; nothing was
	// decided. AppliedAt is then the version the key's first event has
	// (0: that request created the stream).
	AlreadyApplied bool
	AppliedAt      uint64
	// Process lists the writes of the process the command ran before it
	// answered (an archival's or a group deletion's sweep), one per
	// partner it changed; Position is the command's own write.
	Process []Result
}

// Commands lists every write use case.
type Commands struct {
	CreateProgram *CreateProgramHandler
	IssueAPIKey   *IssueAPIKeyHandler
	RevokeAPIKey  *RevokeAPIKeyHandler
	CreatePartner *CreatePartnerHandler
	UpdatePartner *UpdatePartnerHandler
	TickPartner   *TickPartnerHandler
	MoveContract  *MoveContractHandler
	SetGroups     *SetPartnerGroupsHandler
	ImportPartner *ImportPartnerHandler

	Assign           *AssignPartnerHandler
	SetProspectStage *SetProspectStageHandler
	Deactivate       *DeactivatePartnerHandler
	AddNote          *AddNoteHandler
	// Notes is a read of the write side: notes live only in the partner's stream.
	Notes            *PartnerNotesHandler
	ChangeSettings   *ChangePartnerSettingsHandler
	LinkAccounts     *LinkAccountsHandler
	UnlinkAccounts   *UnlinkAccountsHandler
	SendMessage      *SendMessageHandler
	Invite           *InvitePartnerHandler
	IssueAccessLink  *IssueAccessLinkHandler
	RedeemAccessLink *RedeemAccessLinkHandler

	CreateTemplateTerm  *CreateTemplateTermHandler
	UpdateTemplateTerm  *UpdateTemplateTermHandler
	ArchiveTemplateTerm *ArchiveTemplateTermHandler
	CreateGroup         *CreateGroupHandler
	RenameGroup         *RenameGroupHandler
	DeleteGroup         *DeleteGroupHandler

	CreateCredential *CreateCredentialHandler
	RotateCredential *RotateCredentialHandler
	DeleteCredential *DeleteCredentialHandler
	CreateConnection *CreateConnectionHandler
	UpdateConnection *UpdateConnectionHandler
	DeleteConnection *DeleteConnectionHandler
	// CheckEmail is a read of the write side: the intake rules on the
	// connection's current configuration.
	CheckEmail    *CheckEmailHandler
	CreateSegment *CreateSegmentHandler
	UpdateSegment *UpdateSegmentHandler
	DeleteSegment *DeleteSegmentHandler

	RecordActivities *RecordActivitiesHandler
}

// Deps are what the handlers share.
type Deps struct {
	Store EventStore
	Now   func() time.Time
	NewID func() string // event IDs; default UUIDv7
	// AccessLinkSecret signs partner access links (HMAC-SHA256); use at
	// least 32 random bytes. Empty: New draws a random secret for this
	// process, and links then die when it restarts and are refused by any
	// other instance.
	AccessLinkSecret []byte
	// AccessLinkURL is the partner app's page an access link opens; the
	// token is appended as the query parameter "token". Default "/partner-access".
	AccessLinkURL string
	// PasswordParams are the argon2id costs of credential password hashes;
	// zero means passwords.Default.
	PasswordParams passwords.Params
	// Snapshots, when set (the app passes the event store's own), let
	// partner commands start folding from a snapshot, taken every
	// SnapshotEvery events (default 500).
	Snapshots     Snapshots
	SnapshotEvery int
	// Partners answers "do these partners exist?" for activity ingest; nil
	// means every check reads the log.
	Partners PartnerDirectory
	// ActivityMaxAge is how long the activity feed keeps an activity
	// (config ActivityMaxAge): ingest refuses an older occurred_at rather
	// than record one the feed would drop. 0 = no limit.
	ActivityMaxAge time.Duration

	hashSlots chan struct{}
}

// New wires every handler.
func New(d Deps) *Commands {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.NewID == nil {
		d.NewID = func() string { return uuid.Must(uuid.NewV7()).String() }
	}
	d.AccessLinkSecret = slices.Clone(d.AccessLinkSecret)
	if len(d.AccessLinkSecret) == 0 {
		d.AccessLinkSecret = make([]byte, 32)
		if _, err := rand.Read(d.AccessLinkSecret); err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
	}
	if d.PasswordParams == (passwords.Params{}) {
		d.PasswordParams = passwords.Default
	}
	d.hashSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	if d.AccessLinkURL == "" {
		d.AccessLinkURL = "/partner-access"
	}
	return &Commands{
		CreateProgram: &CreateProgramHandler{d: d},
		IssueAPIKey:   &IssueAPIKeyHandler{d: d},
		RevokeAPIKey:  &RevokeAPIKeyHandler{d: d},
		CreatePartner: &CreatePartnerHandler{d: d},
		UpdatePartner: &UpdatePartnerHandler{d: d},
		TickPartner:   &TickPartnerHandler{d: d},
		MoveContract:  &MoveContractHandler{d: d},
		SetGroups:     &SetPartnerGroupsHandler{d: d},
		ImportPartner: &ImportPartnerHandler{d: d},

		Assign:           &AssignPartnerHandler{d: d},
		SetProspectStage: &SetProspectStageHandler{d: d},
		Deactivate:       &DeactivatePartnerHandler{d: d},
		AddNote:          &AddNoteHandler{d: d},
		Notes:            &PartnerNotesHandler{d: d},
		ChangeSettings:   &ChangePartnerSettingsHandler{d: d},
		LinkAccounts:     &LinkAccountsHandler{d: d},
		UnlinkAccounts:   &UnlinkAccountsHandler{d: d},
		SendMessage:      &SendMessageHandler{d: d},
		Invite:           &InvitePartnerHandler{d: d},
		IssueAccessLink:  &IssueAccessLinkHandler{d: d},
		RedeemAccessLink: &RedeemAccessLinkHandler{d: d},

		CreateTemplateTerm:  &CreateTemplateTermHandler{d: d},
		UpdateTemplateTerm:  &UpdateTemplateTermHandler{d: d},
		ArchiveTemplateTerm: &ArchiveTemplateTermHandler{d: d},
		CreateGroup:         &CreateGroupHandler{d: d},
		RenameGroup:         &RenameGroupHandler{d: d},
		DeleteGroup:         &DeleteGroupHandler{d: d},

		CreateCredential: &CreateCredentialHandler{d: d},
		RotateCredential: &RotateCredentialHandler{d: d},
		DeleteCredential: &DeleteCredentialHandler{d: d},
		CreateConnection: &CreateConnectionHandler{d: d},
		UpdateConnection: &UpdateConnectionHandler{d: d},
		DeleteConnection: &DeleteConnectionHandler{d: d},
		CheckEmail:       &CheckEmailHandler{d: d},
		CreateSegment:    &CreateSegmentHandler{d: d},
		UpdateSegment:    &UpdateSegmentHandler{d: d},
		DeleteSegment:    &DeleteSegmentHandler{d: d},

		RecordActivities: &RecordActivitiesHandler{d: d},
	}
}

type aggregate interface{ Apply(domain.Event) }

// Load folds a stream into a fresh aggregate and returns it with the stream
// version (-1 when the stream does not exist) and the position of its last event.
func Load[T any, PT interface {
	*T
	aggregate
}](ctx context.Context, store EventStore, stream string) (PT, int64, eventstore.Position, error) {
	agg, version, pos, _, err := loadOnce[T, PT](ctx, store, stream, "")
	return agg, version, pos, err
}

// loadOnce is Load that also reports the version of the first event whose
// metadata carries the idempotency key once (-1: none, always when once is
// empty). It reads the whole stream, never a snapshot: a key applied
// before the snapshot must be seen.
func loadOnce[T any, PT interface {
	*T
	aggregate
}](ctx context.Context, store EventStore, stream, once string) (PT, int64, eventstore.Position, int64, error) {
	agg, version, pos, seen, _, err := loadUpTo[T, PT](ctx, store, stream, once, math.MaxInt64)
	return agg, version, pos, seen, err
}

// loadUpTo is loadOnce folding only the events up to version upTo; it
// also returns the version of the key's last event (-1: none). The
// first answer of a keyed command is its aggregate as of that event.
func loadUpTo[T any, PT interface {
	*T
	aggregate
}](ctx context.Context, store EventStore, stream, once string, upTo int64) (agg PT, version int64, pos eventstore.Position, seen, last int64, err error) {
	agg = PT(new(T))
	seen, last = -1, -1             // the versions of the key's first and last events
	needle, _ := json.Marshal(once) // as the metadata holds it
	version = -1
	var from uint64
	for {
		evs, err := store.ReadStream(ctx, stream, from, eventstore.Forwards, 512)
		if err != nil {
			return nil, 0, 0, -1, -1, fmt.Errorf("load %s: %w", stream, err)
		}
		for _, re := range evs {
			if int64(re.Version) > upTo {
				return agg, version, pos, seen, last, nil
			}
			ev, err := DecodeRecorded(re)
			if err != nil {
				return nil, 0, 0, -1, -1, fmt.Errorf("load %s: %w", stream, err)
			}
			agg.Apply(ev)
			version, pos = int64(re.Version), re.Position
			if once != "" && bytes.Contains(re.Metadata, needle) {
				var md EventMeta
				if json.Unmarshal(re.Metadata, &md) == nil && md.IdempotencyKey == once {
					if seen < 0 {
						seen = int64(re.Version)
					}
					last = int64(re.Version)
				}
			}
		}
		if len(evs) < 512 {
			return agg, version, pos, seen, last, nil
		}
		from = evs[len(evs)-1].Version + 1
	}
}

// load is Load, from a snapshot where the aggregate has them (partners).
func load[T any, PT interface {
	*T
	aggregate
}](ctx context.Context, d Deps, stream string) (PT, int64, eventstore.Position, error) {
	if d.Snapshots != nil {
		if _, ok := any(PT(nil)).(*domain.Partner); ok {
			p, version, pos, err := LoadPartner(ctx, d.Store, d.Snapshots, d.SnapshotEvery, stream)
			return any(p).(PT), version, pos, err
		}
	}
	return Load[T, PT](ctx, d.Store, stream)
}

// DecodeRecorded decodes a stored event into its domain event, upcasting old
// schema versions.
func DecodeRecorded(re eventstore.RecordedEvent) (domain.Event, error) {
	ev, err := domain.DecodeStored(re.Type, re.Metadata, re.Data)
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", re.ID, err)
	}
	return ev, nil
}

// maxRaceRetries bounds the retries of a command that lost a version race:
// with N writers on one stream, each round lets one of them through.
const maxRaceRetries = 20

// execute runs load → decide → append, retrying a lost version race (up to
// maxRaceRetries times, after a short random pause so that writers racing
// for one stream spread out) when the caller did not pin a version with
// If-Match: the decision is then simply taken again on the newer state.
func execute[T any, PT interface {
	*T
	aggregate
}](ctx context.Context, d Deps, stream, program string, meta Meta, decide func(PT) ([]domain.Event, error)) (Result, PT, error) {
	return run[T, PT](ctx, d, stream, program, meta, decide, false)
}

// executeNew is execute for a command that creates its stream. Its first
// attempt decides on the empty aggregate and appends expecting no stream,
// without reading the stream (for a partner: two seeks, ~6 % of a create's
// CPU). When the stream exists after all, or the decision fails, it runs
// as execute does, so the answer is the one the full path gives (409 for a
// partner that exists).
func executeNew[T any, PT interface {
	*T
	aggregate
}](ctx context.Context, d Deps, stream, program string, meta Meta, decide func(PT) ([]domain.Event, error)) (Result, PT, error) {
	return run[T, PT](ctx, d, stream, program, meta, decide, !meta.Once && meta.IfMatch == nil)
}

// run is execute; with assumeNew its first attempt is executeNew's guess.
func run[T any, PT interface {
	*T
	aggregate
}](ctx context.Context, d Deps, stream, program string, meta Meta, decide func(PT) ([]domain.Event, error), assumeNew bool) (Result, PT, error) {
	once := ""
	if meta.Once {
		once = meta.IdempotencyKey
	}
	for attempt := 0; ; attempt++ {
		var agg PT
		var version int64
		var pos eventstore.Position
		seen, last := int64(-1), int64(-1)
		var err error
		guess := assumeNew && attempt == 0
		decidedAt := d.Now().UTC()
		switch {
		case guess:
			agg, version = PT(new(T)), -1
		case once != "":
			agg, version, pos, seen, last, err = loadUpTo[T, PT](ctx, d.Store, stream, once, math.MaxInt64)
		default:
			agg, version, pos, err = load[T, PT](ctx, d, stream)
		}
		if err != nil {
			return Result{}, nil, err
		}
		if seen >= 0 && last < version {
			// Answer as the first attempt did (its answer was lost): the
			// aggregate as of the key's last event, not what later
			// requests made of it (a note request answers its own note).
			if agg, version, pos, _, _, err = loadUpTo[T, PT](ctx, d.Store, stream, once, last); err != nil {
				return Result{}, nil, err
			}
		}
		if seen >= 0 {
			return Result{Stream: stream, Version: uint64(version + 1), Position: pos, AlreadyApplied: true, AppliedAt: uint64(seen)}, agg, nil
		}
		if meta.IfMatch != nil && *meta.IfMatch != uint64(version+1) {
			return Result{}, nil, fmt.Errorf("%s is at version %d, If-Match %d: %w", resourceOf(stream, program), version+1, *meta.IfMatch, ErrStale)
		}
		due, err := d.dueFirst(ctx, program, agg, decidedAt)
		if err != nil {
			return Result{}, nil, err
		}
		evs, err := decide(agg)
		if guess && (err != nil || len(evs) == 0) {
			continue // decide again on the stream as it is
		}
		if err != nil {
			return Result{}, nil, err
		}
		if len(evs) == 0 && len(due) == 0 {
			return Result{Stream: stream, Version: uint64(version + 1), Position: pos}, agg, nil
		}
		data, err := encode(d, program, processMeta(SchedulerActor, meta, stream, uint64(version+1)), decidedAt, due)
		if err != nil {
			return Result{}, nil, err
		}
		own, err := encode(d, program, meta, decidedAt, evs)
		if err != nil {
			return Result{}, nil, err
		}
		data = append(data, own...)
		evs = append(due, evs...)
		expected := version
		if version < 0 {
			expected = eventstore.NoStream
		}
		res, err := d.Store.Append(ctx, stream, expected, data)
		if errors.Is(err, eventstore.ErrWrongVersion) && guess {
			continue // the stream exists: load it and decide again
		}
		if errors.Is(err, eventstore.ErrWrongVersion) && meta.IfMatch == nil && attempt < maxRaceRetries {
			pause := time.Duration(mrand.Int64N(int64(min(attempt+1, 10)) * int64(time.Millisecond)))
			select {
			case <-time.After(pause):
			case <-ctx.Done():
				return Result{}, nil, ctx.Err()
			}
			continue
		}
		if errors.Is(err, eventstore.ErrWrongVersion) && meta.IfMatch != nil {
			return Result{}, nil, fmt.Errorf("%s moved on: %w", stream, ErrStale)
		}
		if errors.Is(err, eventstore.ErrWrongVersion) {
			return Result{}, nil, fmt.Errorf("%s: %w", stream, ErrContended)
		}
		if err != nil {
			return Result{}, nil, err
		}
		for _, ev := range evs[len(due):] { // the due ones are applied already
			agg.Apply(ev)
		}
		return Result{Stream: stream, Version: res.Version + 1, Position: res.Position, Appended: len(evs)}, agg, nil
	}
}

// SchedulerActor is the actor of the time-based contract moves: the
// scheduler's, and those a command applies first (dueFirst).
const SchedulerActor = "system:scheduler"

// dueFirst applies to a partner the time-based contract moves due by now
// that the scheduler has not appended yet (it runs about once a second,
// and not at all while partnerd is down), and returns them, to be appended
// before the command's own events: a command that comes just after a
// contract's end date decides on the expired contract, and the stream
// keeps the expiry before what followed it. Other aggregates have none.
//
// When something is due it first finishes an archival whose sweep did not
// reach this partner (the archive request failed half-way and was not
// repeated): a due switch must not move the contract onto an archived
// term, nor a start or expiry run on a contract whose term is archived.
// The archival's events (contract_archived, contract_schedule_reverted)
// then come first. Only reading a term can fail.
//
// A tick that fails (it should not) leaves the partner as the archival's
// events left it: the command decides as it would have without the tick,
// and the scheduler reports the failure.
func (d Deps) dueFirst(ctx context.Context, program string, agg aggregate, now time.Time) ([]domain.Event, error) {
	p, ok := agg.(*domain.Partner)
	if !ok || !p.DueBy(now) {
		return nil, nil
	}
	archived, err := d.archivedTerms(ctx, program, p, now)
	if err != nil {
		return nil, err
	}
	due, err := p.Tick(now)
	if err != nil {
		return archived, nil
	}
	for _, ev := range due {
		p.Apply(ev)
	}
	return append(archived, due...), nil
}

// archivedTerms decides Partner.TemplateTermArchived for the terms of p's
// contract and of its scheduled switch that are archived, and applies
// those events to p.
func (d Deps) archivedTerms(ctx context.Context, program string, p *domain.Partner, now time.Time) ([]domain.Event, error) {
	c := p.State().Contract
	if c == nil {
		return nil, nil
	}
	terms := []string{c.TemplateTermID}
	if sw := c.ScheduledSwitch; sw != nil && sw.TemplateTermID != c.TemplateTermID {
		terms = append(terms, sw.TemplateTermID)
	}
	var out []domain.Event
	for _, id := range terms {
		if id == "" {
			continue
		}
		t, _, _, err := Load[domain.TemplateTerm](ctx, d.Store, domain.TemplateTermStream(program, id))
		if err != nil {
			return nil, fmt.Errorf("template term %s: %w", id, err)
		}
		if !t.Archived() {
			continue
		}
		evs, err := p.TemplateTermArchived(id, now)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			p.Apply(ev)
		}
		out = append(out, evs...)
	}
	return out, nil
}

func encode(d Deps, program string, meta Meta, decidedAt time.Time, evs []domain.Event) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, len(evs))
	for i, ev := range evs {
		at := decidedAt
		if te, ok := ev.(domain.Timed); ok && !te.At().IsZero() {
			at = te.At().UTC()
		}
		md, err := json.Marshal(EventMeta{Schema: domain.SchemaOf(ev.EventType()), Program: program, Actor: meta.Actor,
			CorrelationID: meta.CorrelationID, CausationID: meta.CausationID, IdempotencyKey: meta.IdempotencyKey, OccurredAt: at})
		if err != nil {
			return nil, err
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", ev.EventType(), err)
		}
		out[i] = eventstore.EventData{ID: d.NewID(), Type: ev.EventType(), Data: data, Metadata: md}
	}
	return out, nil
}

// randomID returns n random characters of a lower-case base-32 alphabet.
func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return idOf(b)
}

// derivedID is an ID of n characters, like randomID's, that depends only on
// seed: a retried request derives the ID its first attempt chose.
func derivedID(n int, seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return idOf(sum[:n])
}

func idOf(b []byte) string {
	const alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
	out := make([]byte, len(b))
	for i := range b {
		out[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(out)
}
