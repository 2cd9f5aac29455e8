package domain_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/domain"
)

// testPublicKey is an ed25519 public key made for these tests; its
// fingerprint was computed with ssh-keygen -lf.
const (
	testPublicKey   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmIraug6ulRJTBD239wj6x+iz+zOabVIjjnWO7GAraE test@example"
	testFingerprint = "SHA256:bs2JQMgUScRaob/iLSeHGH0AuOZ7uo4pOyLesruVjOU"
	testHash        = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
)

var (
	pwCreated = domain.CredentialCreated{CredentialID: "cr1", ProgramID: "acme", Name: "SFTP login",
		Type: domain.CredentialPassword, Secret: domain.Secret{PasswordHash: testHash}, CreatedAt: now}
	keyCreated = domain.CredentialCreated{CredentialID: "cr2", ProgramID: "acme", Name: "Key", Type: domain.CredentialPublicKey,
		Secret: domain.Secret{PublicKey: strings.TrimSuffix(testPublicKey, " test@example"), Fingerprint: testFingerprint}, CreatedAt: now}
	emailPush = domain.ConnectionConfig{Name: "Audiences by mail", Direction: "upload", DataType: "audiences",
		Method: "email", Methodology: "push", Pattern: "audiences_*.csv", CredentialID: "cr1"}
	conCreated = domain.ConnectionCreated{ConnectionID: "c1", ProgramID: "acme", ConnectionConfig: emailPush, CreatedAt: now}
	conDeleted = domain.ConnectionDeleted{ConnectionID: "c1", ProgramID: "acme", CredentialID: "cr1", DeletedAt: days(1)}
)

func credential(evs ...domain.Event) *domain.Credential {
	var c domain.Credential
	for _, ev := range evs {
		c.Apply(ev)
	}
	return &c
}

func TestConnectionDecisions(t *testing.T) {
	t.Parallel()
	live := credential(pwCreated)
	with := func(f func(c *domain.ConnectionConfig)) domain.NewConnection {
		cfg := emailPush
		f(&cfg)
		return domain.NewConnection{ProgramID: "acme", ID: "c1", ConnectionConfig: cfg}
	}
	create := func(in domain.NewConnection, cred *domain.Credential) func(*domain.Connection) ([]domain.Event, error) {
		return func(c *domain.Connection) ([]domain.Event, error) { return c.Create(in, cred, now) }
	}
	str := func(s string) *string { return &s }
	sftpPull := domain.ConnectionConfig{Name: "Audiences by mail", Direction: "upload", DataType: "audiences",
		Method: "sftp", Methodology: "pull", Folder: "/home/acme/audiences", CredentialID: "cr1"}
	cases := []struct {
		name   string
		given  []domain.Event
		when   func(c *domain.Connection) ([]domain.Event, error)
		then   []domain.Event
		fields []string
		err    error
	}{
		{name: "create email push", when: create(with(func(*domain.ConnectionConfig) {}), live), then: []domain.Event{conCreated}},
		{name: "create sftp pull", when: create(domain.NewConnection{ProgramID: "acme", ID: "c1", ConnectionConfig: sftpPull}, live),
			then: []domain.Event{domain.ConnectionCreated{ConnectionID: "c1", ProgramID: "acme", ConnectionConfig: sftpPull, CreatedAt: now}}},
		{name: "everything missing", when: create(domain.NewConnection{ProgramID: "acme", ID: "c1"}, nil),
			fields: []string{"credential_id", "direction", "method", "methodology", "name"}},
		{name: "unknown enums", when: create(with(func(c *domain.ConnectionConfig) {
			c.Direction, c.Method, c.Methodology = "sideways", "pigeon", "shove"
		}), live), fields: []string{"direction", "method", "methodology", "pattern"}},
		{name: "data type of the other direction", when: create(with(func(c *domain.ConnectionConfig) {
			c.Direction, c.DataType = "download", "audiences"
		}), live), fields: []string{"data_type"}},
		{name: "download clicks is fine", when: create(with(func(c *domain.ConnectionConfig) {
			c.Direction, c.DataType = "download", "clicks"
		}), live), then: []domain.Event{domain.ConnectionCreated{ConnectionID: "c1", ProgramID: "acme", CreatedAt: now,
			ConnectionConfig: with(func(c *domain.ConnectionConfig) { c.Direction, c.DataType = "download", "clicks" }).ConnectionConfig}}},
		{name: "email without a pattern", when: create(with(func(c *domain.ConnectionConfig) { c.Pattern = "" }), live), fields: []string{"pattern"}},
		{name: "pattern matching everything", when: create(with(func(c *domain.ConnectionConfig) { c.Pattern = "*" }), live), fields: []string{"pattern"}},
		{name: "pattern with a path", when: create(with(func(c *domain.ConnectionConfig) { c.Pattern = "in/*.csv" }), live), fields: []string{"pattern"}},
		{name: "pattern on sftp", when: create(with(func(c *domain.ConnectionConfig) { c.Method = "sftp" }), live), fields: []string{"pattern"}},
		{name: "pull without a folder", when: create(with(func(c *domain.ConnectionConfig) { c.Methodology = "pull" }), live), fields: []string{"folder"}},
		{name: "relative folder", when: create(with(func(c *domain.ConnectionConfig) { c.Methodology, c.Folder = "pull", "home/acme" }), live), fields: []string{"folder"}},
		{name: "folder with ..", when: create(with(func(c *domain.ConnectionConfig) { c.Methodology, c.Folder = "pull", "/home/../etc" }), live), fields: []string{"folder"}},
		{name: "folder not normalised", when: create(with(func(c *domain.ConnectionConfig) { c.Methodology, c.Folder = "pull", "/home//acme/" }), live), fields: []string{"folder"}},
		{name: "folder of 1024 characters, 2047 bytes", when: create(domain.NewConnection{ProgramID: "acme", ID: "c1",
			ConnectionConfig: func() domain.ConnectionConfig { c := sftpPull; c.Folder = "/" + strings.Repeat("ä", 1023); return c }()}, live),
			then: []domain.Event{domain.ConnectionCreated{ConnectionID: "c1", ProgramID: "acme", CreatedAt: now,
				ConnectionConfig: func() domain.ConnectionConfig { c := sftpPull; c.Folder = "/" + strings.Repeat("ä", 1023); return c }()}}},
		{name: "folder of 1025 characters", when: create(domain.NewConnection{ProgramID: "acme", ID: "c1",
			ConnectionConfig: func() domain.ConnectionConfig { c := sftpPull; c.Folder = "/" + strings.Repeat("a", 1024); return c }()}, live),
			fields: []string{"folder"}},
		{name: "folder on push", when: create(with(func(c *domain.ConnectionConfig) { c.Folder = "/home/acme" }), live), fields: []string{"folder"}},
		{name: "missing credential", when: create(with(func(*domain.ConnectionConfig) {}), credential()), fields: []string{"credential_id"}},
		{name: "deleted credential", when: create(with(func(*domain.ConnectionConfig) {}),
			credential(pwCreated, domain.CredentialDeleted{CredentialID: "cr1", ProgramID: "acme", DeletedAt: now})), fields: []string{"credential_id"}},
		{name: "ftp needs a password", when: create(with(func(c *domain.ConnectionConfig) {
			c.Method, c.Pattern, c.CredentialID = "ftp", "", "cr2"
		}), credential(keyCreated)), fields: []string{"credential_id"}},
		{name: "create twice", given: []domain.Event{conCreated}, when: create(with(func(*domain.ConnectionConfig) {}), live), err: domain.ErrAlreadyExists},
		{name: "update to sftp pull drops the pattern", given: []domain.Event{conCreated}, when: func(c *domain.Connection) ([]domain.Event, error) {
			return c.Update(domain.ConnectionPatch{Method: str("sftp"), Methodology: str("pull"), Folder: str("/home/acme/audiences")}, live, days(1))
		}, then: []domain.Event{domain.ConnectionUpdated{ConnectionID: "c1", ProgramID: "acme", Changed: []string{"method", "methodology", "pattern", "folder"},
			ConnectionConfig: sftpPull, UpdatedAt: days(1)}}},
		{name: "update to sftp with an explicit pattern", given: []domain.Event{conCreated}, when: func(c *domain.Connection) ([]domain.Event, error) {
			return c.Update(domain.ConnectionPatch{Method: str("sftp"), Pattern: str("x_*.csv")}, live, days(1))
		}, fields: []string{"pattern"}},
		{name: "update to another credential", given: []domain.Event{conCreated}, when: func(c *domain.Connection) ([]domain.Event, error) {
			return c.Update(domain.ConnectionPatch{CredentialID: str("cr2")}, credential(keyCreated), days(1))
		}, then: []domain.Event{domain.ConnectionUpdated{ConnectionID: "c1", ProgramID: "acme", Changed: []string{"credential_id"},
			ConnectionConfig:     with(func(c *domain.ConnectionConfig) { c.CredentialID = "cr2" }).ConnectionConfig,
			PreviousCredentialID: "cr1", UpdatedAt: days(1)}}},
		{name: "update to a bad pattern", given: []domain.Event{conCreated}, when: func(c *domain.Connection) ([]domain.Event, error) {
			return c.Update(domain.ConnectionPatch{Pattern: str("**")}, live, days(1))
		}, fields: []string{"pattern"}},
		{name: "update changing nothing", given: []domain.Event{conCreated}, when: func(c *domain.Connection) ([]domain.Event, error) {
			return c.Update(domain.ConnectionPatch{Name: str(" Audiences by mail ")}, live, days(1))
		}},
		{name: "empty patch", given: []domain.Event{conCreated}, when: func(c *domain.Connection) ([]domain.Event, error) {
			return c.Update(domain.ConnectionPatch{}, live, days(1))
		}, fields: []string{"body"}},
		{name: "update a deleted connection", given: []domain.Event{conCreated, conDeleted}, when: func(c *domain.Connection) ([]domain.Event, error) {
			return c.Update(domain.ConnectionPatch{Name: str("x")}, live, days(2))
		}, err: domain.ErrNotFound},
		{name: "delete", given: []domain.Event{conCreated}, when: func(c *domain.Connection) ([]domain.Event, error) {
			return c.Delete(days(1))
		}, then: []domain.Event{conDeleted}},
		{name: "delete again", given: []domain.Event{conCreated, conDeleted}, when: func(c *domain.Connection) ([]domain.Event, error) {
			return c.Delete(days(2))
		}},
		{name: "delete a missing one", when: func(c *domain.Connection) ([]domain.Event, error) { return c.Delete(days(2)) }, err: domain.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c domain.Connection
			for _, ev := range tc.given {
				c.Apply(ev)
			}
			got, err := tc.when(&c)
			switch {
			case tc.fields != nil:
				if f := fields(err); strings.Join(f, ",") != strings.Join(tc.fields, ",") {
					t.Fatalf("invalid fields %v (err %v), want %v", f, err, tc.fields)
				}
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
			case err != nil:
				t.Fatalf("refused: %v", err)
			}
			if !reflect.DeepEqual(got, tc.then) {
				t.Fatalf("events = %#v\nwant     %#v", got, tc.then)
			}
		})
	}
}

func TestConnectionCheckEmail(t *testing.T) {
	t.Parallel()
	var c domain.Connection
	if _, err := c.CheckEmail([]string{"a.csv"}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("missing connection: %v", err)
	}
	c.Apply(conCreated)
	if v, err := c.CheckEmail([]string{"audiences_1.csv", "receipt_1.csv"}); err != nil || !v.Accepted || len(v.Files) != 1 {
		t.Fatalf("live connection: %+v, %v", v, err)
	}
	if _, err := c.CheckEmail(nil); !reflect.DeepEqual(fields(err), []string{"attachments"}) {
		t.Fatalf("no attachments field: %v", err)
	}
	if _, err := c.CheckEmail(make([]string, domain.MaxAttachments+1)); !reflect.DeepEqual(fields(err), []string{"attachments"}) {
		t.Fatalf("too many attachments: %v", err)
	}
	c.Apply(conDeleted)
	if _, err := c.CheckEmail([]string{"audiences_1.csv"}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("deleted connection: %v", err)
	}
	var sftp domain.Connection
	sftp.Apply(domain.ConnectionCreated{ConnectionID: "c2", ProgramID: "acme", ConnectionConfig: domain.ConnectionConfig{Method: "sftp"}})
	if _, err := sftp.CheckEmail([]string{"audiences_1.csv"}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("sftp connection: %v", err)
	}
}

func TestCredentialDecisions(t *testing.T) {
	t.Parallel()
	attached := domain.CredentialConnectionAttached{CredentialID: "cr1", ProgramID: "acme", ConnectionID: "c1", AttachedAt: now}
	deleted := domain.CredentialDeleted{CredentialID: "cr1", ProgramID: "acme", DeletedAt: days(1)}
	cases := []struct {
		name   string
		given  []domain.Event
		when   func(c *domain.Credential) ([]domain.Event, error)
		then   []domain.Event
		fields []string
		err    error
	}{
		{name: "create password", when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Create(domain.NewCredential{ProgramID: "acme", ID: "cr1", Name: " SFTP login ", Type: "password", PasswordHash: testHash}, now)
		}, then: []domain.Event{pwCreated}},
		{name: "create public key: canonical key and fingerprint", when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Create(domain.NewCredential{ProgramID: "acme", ID: "cr2", Name: "Key", Type: "public_key", PublicKey: " " + testPublicKey + "\t"}, now)
		}, then: []domain.Event{keyCreated}},
		{name: "password never without a hash", when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Create(domain.NewCredential{ProgramID: "acme", ID: "cr1", Name: "x", Type: "password", PasswordHash: "plain"}, now)
		}, fields: []string{"type"}},
		{name: "public key on a password credential", when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Create(domain.NewCredential{ProgramID: "acme", ID: "cr1", Name: "x", Type: "password", PasswordHash: testHash, PublicKey: testPublicKey}, now)
		}, fields: []string{"public_key"}},
		{name: "bad key, bad type, no name", when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Create(domain.NewCredential{ProgramID: "acme", ID: "cr1", Type: "token"}, now)
		}, fields: []string{"name", "type"}},
		{name: "key that does not parse", when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Create(domain.NewCredential{ProgramID: "acme", ID: "cr2", Name: "k", Type: "public_key", PublicKey: "ssh-ed25519 AAAAnotbase64!"}, now)
		}, fields: []string{"public_key"}},
		{name: "two keys", when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Create(domain.NewCredential{ProgramID: "acme", ID: "cr2", Name: "k", Type: "public_key", PublicKey: testPublicKey + "\n" + testPublicKey}, now)
		}, fields: []string{"public_key"}},
		{name: "rotate a password", given: []domain.Event{pwCreated}, when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Rotate("", testHash+"x", days(1))
		}, then: []domain.Event{domain.CredentialRotated{CredentialID: "cr1", ProgramID: "acme", Secret: domain.Secret{PasswordHash: testHash + "x"}, RotatedAt: days(1)}}},
		{name: "rotate a key without a key", given: []domain.Event{keyCreated}, when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Rotate("", "", days(1))
		}, fields: []string{"public_key"}},
		{name: "rotate a deleted credential", given: []domain.Event{pwCreated, deleted}, when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Rotate("", testHash, days(1))
		}, err: domain.ErrNotFound},
		{name: "attach", given: []domain.Event{pwCreated}, when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Attach("c1", "email", now)
		}, then: []domain.Event{attached}},
		{name: "attach twice", given: []domain.Event{pwCreated, attached}, when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Attach("c1", "email", now)
		}},
		{name: "attach to a deleted credential", given: []domain.Event{pwCreated, deleted}, when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Attach("c1", "email", now)
		}, fields: []string{"credential_id"}},
		{name: "delete while in use", given: []domain.Event{pwCreated, attached}, when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Delete([]string{"c1"}, days(1))
		}, err: domain.ErrConflict},
		{name: "delete", given: []domain.Event{pwCreated, attached}, when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Delete(nil, days(1))
		}, then: []domain.Event{deleted}},
		{name: "delete again", given: []domain.Event{pwCreated, deleted}, when: func(c *domain.Credential) ([]domain.Event, error) {
			return c.Delete(nil, days(2))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := credential(tc.given...)
			got, err := tc.when(c)
			switch {
			case tc.fields != nil:
				if f := fields(err); strings.Join(f, ",") != strings.Join(tc.fields, ",") {
					t.Fatalf("invalid fields %v (err %v), want %v", f, err, tc.fields)
				}
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
			case err != nil:
				t.Fatalf("refused: %v", err)
			}
			if !reflect.DeepEqual(got, tc.then) {
				t.Fatalf("events = %#v\nwant     %#v", got, tc.then)
			}
			if err != nil && strings.Contains(err.Error(), "AAAAC3NzaC1") {
				t.Fatalf("error quotes the key: %v", err)
			}
		})
	}
}
