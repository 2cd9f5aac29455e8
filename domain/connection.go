package domain

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// CategoryConnection is the stream category of batch-transfer connections.
const CategoryConnection = "connection"

// ConnectionStream is the stream of one connection of a program.
func ConnectionStream(program, connectionID string) string {
	return CategoryConnection + "-" + program + "-" + connectionID
}

// Connection event type names (stream connection-<program>-<id>).
const (
	TypeConnectionCreated = "connection.created"
	TypeConnectionUpdated = "connection.updated"
	TypeConnectionDeleted = "connection.deleted"
)

// Directions, methods and methodologies of a connection.
const (
	DirectionUpload   = "upload"
	DirectionDownload = "download"

	MethodEmail = "email"
	MethodSFTP  = "sftp"
	MethodFTP   = "ftp"

	MethodologyPush = "push"
	MethodologyPull = "pull"
)

const maxFolderLen = 1024

// DataTypes lists the data types legal for each direction.
var dataTypes = map[string][]string{
	DirectionUpload:   {"conversions", "audiences", "identities", "card_linked_transactions"},
	DirectionDownload: {"clicks", "conversions", "product_catalogs", "reports"},
}

// DataTypes returns the data types legal for a direction (nil for an
// unknown direction).
func DataTypes(direction string) []string { return slices.Clone(dataTypes[direction]) }

// ConnectionConfig is a connection's whole configuration.
type ConnectionConfig struct {
	Name         string `json:"name"`
	Direction    string `json:"direction"`
	DataType     string `json:"data_type"`
	Method       string `json:"method"`
	Methodology  string `json:"methodology"`
	Pattern      string `json:"pattern,omitempty"`
	Folder       string `json:"folder,omitempty"`
	CredentialID string `json:"credential_id"`
}

// ConnectionCreated: a connection was created from a complete, valid
// configuration.
type ConnectionCreated struct {
	ConnectionID string `json:"connection_id"`
	ProgramID    string `json:"program_id"`
	ConnectionConfig
	CreatedAt time.Time `json:"created_at"`
}

// ConnectionUpdated: a connection's configuration changed. It carries the
// whole new configuration; Changed names the fields that differ, and
// PreviousCredentialID is set when the credential changed.
type ConnectionUpdated struct {
	ConnectionID string   `json:"connection_id"`
	ProgramID    string   `json:"program_id"`
	Changed      []string `json:"changed"`
	ConnectionConfig
	PreviousCredentialID string    `json:"previous_credential_id,omitempty"`
	UpdatedAt            time.Time `json:"updated_at"`
}

// ConnectionDeleted: a connection was deleted. It accepts no more files;
// its stream (its history) stays.
type ConnectionDeleted struct {
	ConnectionID string    `json:"connection_id"`
	ProgramID    string    `json:"program_id"`
	CredentialID string    `json:"credential_id"`
	DeletedAt    time.Time `json:"deleted_at"`
}

func (ConnectionCreated) EventType() string { return TypeConnectionCreated }
func (ConnectionUpdated) EventType() string { return TypeConnectionUpdated }
func (ConnectionDeleted) EventType() string { return TypeConnectionDeleted }

// Connection is the aggregate of one batch-transfer connection.
type Connection struct {
	id, program string
	cfg         ConnectionConfig
	createdAt   time.Time
	updatedAt   time.Time
	deleted     bool
}

// ConnectionState is a read-only copy of a connection.
type ConnectionState struct {
	ID        string `json:"id"`
	ProgramID string `json:"program_id"`
	ConnectionConfig
	Deleted   bool      `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Exists reports whether the connection was created (deleted or not).
func (c *Connection) Exists() bool { return c.id != "" }

// Live reports whether the connection exists and was not deleted.
func (c *Connection) Live() bool { return c.Exists() && !c.deleted }

// CredentialID is the credential the connection uses.
func (c *Connection) CredentialID() string { return c.cfg.CredentialID }

// State returns a copy of the connection's state.
func (c *Connection) State() ConnectionState {
	return ConnectionState{ID: c.id, ProgramID: c.program, ConnectionConfig: c.cfg, Deleted: c.deleted,
		CreatedAt: c.createdAt, UpdatedAt: c.updatedAt}
}

// Apply folds one event into the connection.
func (c *Connection) Apply(ev Event) {
	switch e := ev.(type) {
	case ConnectionCreated:
		c.id, c.program, c.cfg = e.ConnectionID, e.ProgramID, e.ConnectionConfig
		c.createdAt, c.updatedAt = e.CreatedAt, e.CreatedAt
	case ConnectionUpdated:
		c.cfg, c.updatedAt = e.ConnectionConfig, e.UpdatedAt
	case ConnectionDeleted:
		c.deleted, c.updatedAt = true, e.DeletedAt
	}
}

// NewConnection is the input of creating a connection.
type NewConnection struct {
	ProgramID string
	ID        string
	ConnectionConfig
}

// Create decides the creation of a connection. cred is the credential
// named by CredentialID, as loaded (it must exist in the program and not
// be deleted). Every wizard rule is checked and every violation reported
// at once, naming its field.
func (c *Connection) Create(in NewConnection, cred *Credential, now time.Time) ([]Event, error) {
	var pr problems
	if !ValidEntityID(in.ID) {
		pr.add("id", EntityIDRule)
	}
	cfg := pr.config(in.ConnectionConfig, cred)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if c.Exists() {
		return nil, fmt.Errorf("connection %s: %w", in.ID, ErrAlreadyExists)
	}
	return []Event{ConnectionCreated{ConnectionID: in.ID, ProgramID: in.ProgramID, ConnectionConfig: cfg, CreatedAt: now.UTC()}}, nil
}

// ConnectionPatch changes a connection; nil fields stay as they are, with
// one exception: a pattern (folder) that the new configuration has no use
// for, because the method is no longer email (the methodology no longer
// pull), is dropped unless the patch gives it, and then it is refused.
type ConnectionPatch struct {
	Name         *string
	Direction    *string
	DataType     *string
	Method       *string
	Methodology  *string
	Pattern      *string
	Folder       *string
	CredentialID *string
}

// Merged returns the configuration the patch leads to.
func (c *Connection) Merged(p ConnectionPatch) ConnectionConfig {
	cfg := c.cfg
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&cfg.Name, p.Name)
	set(&cfg.Direction, p.Direction)
	set(&cfg.DataType, p.DataType)
	set(&cfg.Method, p.Method)
	set(&cfg.Methodology, p.Methodology)
	set(&cfg.Pattern, p.Pattern)
	set(&cfg.Folder, p.Folder)
	set(&cfg.CredentialID, p.CredentialID)
	if p.Pattern == nil && cfg.Method != MethodEmail {
		cfg.Pattern = ""
	}
	if p.Folder == nil && cfg.Methodology != MethodologyPull {
		cfg.Folder = ""
	}
	return cfg
}

// Update decides a change of configuration. cred is the credential the
// merged configuration names. A deleted connection is not found; a patch
// that changes nothing yields no event.
func (c *Connection) Update(p ConnectionPatch, cred *Credential, now time.Time) ([]Event, error) {
	if !c.Live() {
		return nil, fmt.Errorf("connection: %w", ErrNotFound)
	}
	var pr problems
	if p == (ConnectionPatch{}) {
		pr.add("body", "nothing to change: give at least one field")
	}
	cfg := pr.config(c.Merged(p), cred)
	if err := pr.err(); err != nil {
		return nil, err
	}
	var changed []string
	for _, f := range []struct {
		name     string
		old, new string
	}{
		{"name", c.cfg.Name, cfg.Name}, {"direction", c.cfg.Direction, cfg.Direction},
		{"data_type", c.cfg.DataType, cfg.DataType}, {"method", c.cfg.Method, cfg.Method},
		{"methodology", c.cfg.Methodology, cfg.Methodology}, {"pattern", c.cfg.Pattern, cfg.Pattern},
		{"folder", c.cfg.Folder, cfg.Folder}, {"credential_id", c.cfg.CredentialID, cfg.CredentialID},
	} {
		if f.old != f.new {
			changed = append(changed, f.name)
		}
	}
	if len(changed) == 0 {
		return nil, nil
	}
	ev := ConnectionUpdated{ConnectionID: c.id, ProgramID: c.program, Changed: changed, ConnectionConfig: cfg, UpdatedAt: now.UTC()}
	if cfg.CredentialID != c.cfg.CredentialID {
		ev.PreviousCredentialID = c.cfg.CredentialID
	}
	return []Event{ev}, nil
}

// Delete decides deleting the connection. Deleting a deleted connection
// yields no event, so a caller may repeat it (to finish detaching the
// credential).
func (c *Connection) Delete(now time.Time) ([]Event, error) {
	if !c.Exists() {
		return nil, fmt.Errorf("connection: %w", ErrNotFound)
	}
	if c.deleted {
		return nil, nil
	}
	return []Event{ConnectionDeleted{ConnectionID: c.id, ProgramID: c.program, CredentialID: c.cfg.CredentialID, DeletedAt: now.UTC()}}, nil
}

// CheckEmail applies the intake rules (see CheckEmail) for an email to this
// connection. A deleted connection, or one whose method is not email,
// takes no email: ErrConflict.
func (c *Connection) CheckEmail(attachments []string) (EmailVerdict, error) {
	switch {
	case !c.Exists():
		return EmailVerdict{}, fmt.Errorf("connection: %w", ErrNotFound)
	case c.deleted:
		return EmailVerdict{}, fmt.Errorf("connection %s is deleted and accepts no files: %w", c.id, ErrConflict)
	case c.cfg.Method != MethodEmail:
		return EmailVerdict{}, fmt.Errorf("connection %s uses method %s, not email: %w", c.id, c.cfg.Method, ErrConflict)
	}
	var pr problems
	switch {
	case attachments == nil:
		pr.add("attachments", "is required: the file names of the email's attachments")
	case len(attachments) > MaxAttachments:
		pr.add("attachments", "must hold at most %d names", MaxAttachments)
	}
	if err := pr.err(); err != nil {
		return EmailVerdict{}, err
	}
	return CheckEmail(c.cfg.Pattern, attachments), nil
}

// config checks a whole configuration against the wizard's rules and
// returns it normalised (name trimmed).
func (pr *problems) config(cfg ConnectionConfig, cred *Credential) ConnectionConfig {
	cfg.Name = pr.name(cfg.Name, true)
	switch types, ok := dataTypes[cfg.Direction]; {
	case cfg.Direction == "":
		pr.add("direction", "is required: upload or download")
	case !ok:
		pr.add("direction", "must be upload or download")
	case cfg.DataType == "":
		pr.add("data_type", "is required: for %s one of %s", cfg.Direction, strings.Join(types, ", "))
	case !slices.Contains(types, cfg.DataType):
		pr.add("data_type", "must be, for direction %s, one of %s", cfg.Direction, strings.Join(types, ", "))
	}
	methodOK := false
	switch cfg.Method {
	case MethodEmail, MethodSFTP, MethodFTP:
		methodOK = true
	case "":
		pr.add("method", "is required: email, sftp or ftp")
	default:
		pr.add("method", "must be email, sftp or ftp")
	}
	switch cfg.Methodology {
	case MethodologyPush, MethodologyPull:
	case "":
		pr.add("methodology", "is required: push or pull")
	default:
		pr.add("methodology", "must be push or pull")
	}
	if cfg.Method == MethodEmail {
		if err := ValidatePattern(cfg.Pattern); err != nil {
			pr.add("pattern", "%s", err.Error())
		}
	} else if cfg.Pattern != "" {
		pr.add("pattern", "only for method email")
	}
	if cfg.Methodology == MethodologyPull {
		if err := validateFolder(cfg.Folder); err != nil {
			pr.add("folder", "%s", err.Error())
		}
	} else if cfg.Folder != "" {
		pr.add("folder", "only for methodology pull")
	}
	switch {
	case cfg.CredentialID == "":
		pr.add("credential_id", "is required: choose an existing credential or create one (POST /credentials)")
	case !ValidEntityID(cfg.CredentialID):
		pr.add("credential_id", "no credential %s in this program", cfg.CredentialID)
	case cred == nil:
		pr.add("credential_id", "no credential %s in this program", cfg.CredentialID)
	default:
		method := ""
		if methodOK {
			method = cfg.Method
		}
		if err := cred.Usable(cfg.CredentialID, method); err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				*pr = append(*pr, ve.Fields...)
			}
		}
	}
	return cfg
}

// validateFolder checks a pull folder: an absolute, normalised path
// ("/home/acme/audiences"): no "..", ".", empty segment or trailing '/'.
func validateFolder(f string) error {
	switch {
	case f == "":
		return fmt.Errorf("is required for methodology pull: an absolute folder path such as /home/acme/audiences")
	case !utf8.ValidString(f):
		return fmt.Errorf("must be valid UTF-8")
	case utf8.RuneCountInString(f) > maxFolderLen:
		return fmt.Errorf("must be at most %d characters", maxFolderLen)
	case strings.IndexFunc(f, unicode.IsControl) >= 0:
		return fmt.Errorf("must not contain control characters")
	case !strings.HasPrefix(f, "/"):
		return fmt.Errorf("must be an absolute path (starting with '/')")
	case slices.Contains(strings.Split(f, "/"), ".."):
		return fmt.Errorf("must not contain '..'")
	case path.Clean(f) != f:
		return fmt.Errorf("must be normalised: no '.', '//' or trailing '/' (did you mean %s?)", path.Clean(f))
	}
	return nil
}
