package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// CategoryCredential is the stream category of connection credentials.
const CategoryCredential = "credential"

// CredentialStream is the stream of one credential of a program.
func CredentialStream(program, credentialID string) string {
	return CategoryCredential + "-" + program + "-" + credentialID
}

// Credential event type names (stream credential-<program>-<id>).
const (
	TypeCredentialCreated            = "credential.created"
	TypeCredentialRotated            = "credential.rotated"
	TypeCredentialDeleted            = "credential.deleted"
	TypeCredentialConnectionAttached = "credential.connection_attached"
	TypeCredentialConnectionDetached = "credential.connection_detached"
)

// Credential types.
const (
	CredentialPassword  = "password"
	CredentialPublicKey = "public_key"
)

// maxPublicKeyLen bounds a pasted SSH public key (an RSA 16384-bit key in
// authorized_keys form is about 2.8 kB).
const maxPublicKeyLen = 16 << 10

// Secret is how a credential's secret is kept: never in clear. A password
// credential holds only PasswordHash (a PHC-format argon2id string); a
// public_key credential holds the public key (not a secret) and its
// SHA256 fingerprint.
type Secret struct {
	PasswordHash string `json:"password_hash,omitempty"`
	PublicKey    string `json:"public_key,omitempty"`
	Fingerprint  string `json:"fingerprint,omitempty"`
}

// CredentialCreated: a credential was created. For a password credential
// the event holds the argon2id hash of the generated password, never the
// password; the transfer service that checks logins reads it from here.
type CredentialCreated struct {
	CredentialID string    `json:"credential_id"`
	ProgramID    string    `json:"program_id"`
	Name         string    `json:"name"`
	Type         string    `json:"type"`
	Secret       Secret    `json:"secret"`
	CreatedAt    time.Time `json:"created_at"`
}

// CredentialRotated: a credential got a new secret (a new generated
// password, or a new public key); the old one no longer works.
type CredentialRotated struct {
	CredentialID string    `json:"credential_id"`
	ProgramID    string    `json:"program_id"`
	Secret       Secret    `json:"secret"`
	RotatedAt    time.Time `json:"rotated_at"`
}

// CredentialDeleted: a credential was deleted; no connection used it then,
// and none can use it again.
type CredentialDeleted struct {
	CredentialID string    `json:"credential_id"`
	ProgramID    string    `json:"program_id"`
	DeletedAt    time.Time `json:"deleted_at"`
}

// CredentialConnectionAttached: a connection is about to use (or uses) the
// credential. It is appended before the connection's own event, so a
// credential that is deleted concurrently can never end up under a live
// connection (the append races on the credential's version).
type CredentialConnectionAttached struct {
	CredentialID string    `json:"credential_id"`
	ProgramID    string    `json:"program_id"`
	ConnectionID string    `json:"connection_id"`
	AttachedAt   time.Time `json:"attached_at"`
}

// CredentialConnectionDetached: a connection stopped using the credential
// (it was deleted or moved to another credential).
type CredentialConnectionDetached struct {
	CredentialID string    `json:"credential_id"`
	ProgramID    string    `json:"program_id"`
	ConnectionID string    `json:"connection_id"`
	DetachedAt   time.Time `json:"detached_at"`
}

func (CredentialCreated) EventType() string            { return TypeCredentialCreated }
func (CredentialRotated) EventType() string            { return TypeCredentialRotated }
func (CredentialDeleted) EventType() string            { return TypeCredentialDeleted }
func (CredentialConnectionAttached) EventType() string { return TypeCredentialConnectionAttached }
func (CredentialConnectionDetached) EventType() string { return TypeCredentialConnectionDetached }

// Credential is the aggregate of one credential. It knows which
// connections are attached to it, so that deleting it can be refused while
// one uses it.
type Credential struct {
	id, program string
	name, typ   string
	fingerprint string
	createdAt   time.Time
	rotatedAt   *time.Time
	deleted     bool
	attached    []string // sorted connection IDs
}

// CredentialState is a read-only copy of a credential, without its secret.
type CredentialState struct {
	ID          string     `json:"id"`
	ProgramID   string     `json:"program_id"`
	Name        string     `json:"name"`
	Type        string     `json:"type"`
	Fingerprint *string    `json:"fingerprint"`
	CreatedAt   time.Time  `json:"created_at"`
	RotatedAt   *time.Time `json:"rotated_at"`
	Attached    []string   `json:"-"`
}

// Exists reports whether the credential was created (deleted or not).
func (c *Credential) Exists() bool { return c.id != "" }

// Live reports whether the credential exists and was not deleted.
func (c *Credential) Live() bool { return c.Exists() && !c.deleted }

// Type is the credential's type.
func (c *Credential) Type() string { return c.typ }

// Attached lists the connections attached to the credential (sorted).
func (c *Credential) Attached() []string { return slices.Clone(c.attached) }

// State returns a copy of the credential's state.
func (c *Credential) State() CredentialState {
	s := CredentialState{ID: c.id, ProgramID: c.program, Name: c.name, Type: c.typ, CreatedAt: c.createdAt,
		Attached: slices.Clone(c.attached)}
	if c.fingerprint != "" {
		fp := c.fingerprint
		s.Fingerprint = &fp
	}
	if c.rotatedAt != nil {
		at := *c.rotatedAt
		s.RotatedAt = &at
	}
	return s
}

// Apply folds one event into the credential.
func (c *Credential) Apply(ev Event) {
	switch e := ev.(type) {
	case CredentialCreated:
		c.id, c.program, c.name, c.typ = e.CredentialID, e.ProgramID, e.Name, e.Type
		c.fingerprint, c.createdAt = e.Secret.Fingerprint, e.CreatedAt
	case CredentialRotated:
		c.fingerprint, c.rotatedAt = e.Secret.Fingerprint, timePtr(e.RotatedAt)
	case CredentialDeleted:
		c.deleted = true
	case CredentialConnectionAttached:
		if i, found := slices.BinarySearch(c.attached, e.ConnectionID); !found {
			c.attached = slices.Insert(c.attached, i, e.ConnectionID)
		}
	case CredentialConnectionDetached:
		if i, found := slices.BinarySearch(c.attached, e.ConnectionID); found {
			c.attached = slices.Delete(c.attached, i, i+1)
		}
	}
}

// NewCredential is the input of creating a credential. For a password
// credential the caller generates the password and passes only its hash
// (PasswordHash); for a public_key one it passes the pasted PublicKey.
type NewCredential struct {
	ProgramID    string
	ID           string
	Name         string
	Type         string
	PublicKey    string
	PasswordHash string
}

// Create decides the creation of a credential. The ID of a deleted
// credential is taken.
func (c *Credential) Create(in NewCredential, now time.Time) ([]Event, error) {
	var pr problems
	if !ValidEntityID(in.ID) {
		pr.add("id", EntityIDRule)
	}
	name := pr.name(in.Name, true)
	secret := pr.secret(in.Type, in.PublicKey, in.PasswordHash)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if c.Exists() {
		return nil, fmt.Errorf("credential %s: %w", in.ID, ErrAlreadyExists)
	}
	return []Event{CredentialCreated{CredentialID: in.ID, ProgramID: in.ProgramID, Name: name, Type: in.Type,
		Secret: secret, CreatedAt: now.UTC()}}, nil
}

// Rotate decides a new secret: a new password hash for a password
// credential, a new public key for a public_key one.
func (c *Credential) Rotate(publicKey, passwordHash string, now time.Time) ([]Event, error) {
	if !c.Live() {
		return nil, fmt.Errorf("credential: %w", ErrNotFound)
	}
	var pr problems
	secret := pr.secret(c.typ, publicKey, passwordHash)
	if c.typ == CredentialPublicKey && secret.Fingerprint != "" && secret.Fingerprint == c.fingerprint {
		// The old key would go on working, while the rotation says it stopped.
		pr.add("public_key", "is the credential's current key: a rotation needs a new one")
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	return []Event{CredentialRotated{CredentialID: c.id, ProgramID: c.program, Secret: secret, RotatedAt: now.UTC()}}, nil
}

// Delete decides deleting the credential. inUse are the attached
// connections that still use it (the caller checks each attached
// connection's own stream); any → ErrConflict naming them. Deleting a
// deleted credential yields no event.
func (c *Credential) Delete(inUse []string, now time.Time) ([]Event, error) {
	if !c.Exists() {
		return nil, fmt.Errorf("credential: %w", ErrNotFound)
	}
	if c.deleted {
		return nil, nil
	}
	if len(inUse) > 0 {
		return nil, fmt.Errorf("credential %s is used by connection(s) %s; delete them or move them to another credential first: %w",
			c.id, strings.Join(inUse, ", "), ErrConflict)
	}
	return []Event{CredentialDeleted{CredentialID: c.id, ProgramID: c.program, DeletedAt: now.UTC()}}, nil
}

// Attach decides attaching a connection. A credential that does not exist
// or was deleted is a ValidationError on credential_id (the connection's
// field); attaching twice yields no event.
func (c *Credential) Attach(connectionID, method string, now time.Time) ([]Event, error) {
	if err := c.Usable(c.id, method); err != nil {
		return nil, err
	}
	if _, found := slices.BinarySearch(c.attached, connectionID); found {
		return nil, nil
	}
	return []Event{CredentialConnectionAttached{CredentialID: c.id, ProgramID: c.program, ConnectionID: connectionID,
		AttachedAt: now.UTC()}}, nil
}

// Detach decides detaching a connection; one that is not attached (or a
// missing credential) yields no event.
func (c *Credential) Detach(connectionID string, now time.Time) ([]Event, error) {
	if _, found := slices.BinarySearch(c.attached, connectionID); !c.Exists() || !found {
		return nil, nil
	}
	return []Event{CredentialConnectionDetached{CredentialID: c.id, ProgramID: c.program, ConnectionID: connectionID,
		DetachedAt: now.UTC()}}, nil
}

// Usable checks that a connection of the given method may use the
// credential: it exists, is not deleted, and an ftp connection (which has
// no key authentication) needs a password. Failures name credential_id.
func (c *Credential) Usable(id, method string) error {
	var pr problems
	switch {
	case !c.Live():
		pr.add("credential_id", "no credential %s in this program", id)
	case method == MethodFTP && c.typ != CredentialPassword:
		pr.add("credential_id", "ftp connections need a password credential; %s is a %s", id, c.typ)
	}
	return pr.err()
}

// secret checks the type and its secret and returns what the event keeps.
func (pr *problems) secret(typ, publicKey, passwordHash string) Secret {
	switch typ {
	case CredentialPassword:
		if publicKey != "" {
			pr.add("public_key", "only for type public_key")
		}
		if !strings.HasPrefix(passwordHash, "$argon2id$") {
			// A programming error, not user input: never store anything else.
			pr.add("type", "password credentials need an argon2id hash")
		}
		return Secret{PasswordHash: passwordHash}
	case CredentialPublicKey:
		fp, key, err := ParsePublicKey(publicKey)
		if err != nil {
			pr.add("public_key", "%s", err.Error())
		}
		return Secret{PublicKey: key, Fingerprint: fp}
	case "":
		pr.add("type", "is required: password or public_key")
	default:
		pr.add("type", "must be password or public_key")
	}
	return Secret{}
}

// ParsePublicKey checks an SSH public key in authorized_keys form (e.g.
// "ssh-ed25519 AAAA… comment") and returns its SHA256 fingerprint and the
// key in canonical form (type and base64, without options or comment).
// Its errors never quote the input.
func ParsePublicKey(s string) (fingerprint, canonical string, err error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", "", fmt.Errorf("is required for type public_key: an SSH public key such as \"ssh-ed25519 AAAA…\"")
	case len(s) > maxPublicKeyLen:
		return "", "", fmt.Errorf("must be at most %d bytes", maxPublicKeyLen)
	case strings.ContainsAny(s, "\r\n"):
		return "", "", fmt.Errorf("must be one SSH public key on one line")
	}
	key, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil || len(options) > 0 || len(rest) > 0 {
		return "", "", fmt.Errorf("is not an SSH public key in authorized_keys form (\"<type> <base64> [comment]\")")
	}
	if _, isCert := key.(*ssh.Certificate); isCert {
		return "", "", fmt.Errorf("must be a plain public key, not a certificate")
	}
	return ssh.FingerprintSHA256(key), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), nil
}
