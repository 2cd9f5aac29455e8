package projections_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
)

// connectionsState reads every key of the connections read model of a program.
func connectionsState(t *testing.T, rdb *redis.Client, program string) map[string]string {
	t.Helper()
	ctx := context.Background()
	ks := projections.NewKeyspace("connections", 1, program)
	out := map[string]string{}
	for _, k := range []string{"conns", "creds"} {
		out[k] = fmt.Sprint(rdb.ZRange(ctx, ks.Key(k), 0, -1).Val())
	}
	for _, id := range []string{"mail", "pull"} {
		out["conndoc "+id] = rdb.HGet(ctx, ks.Key("conndoc", id), "doc").Val()
	}
	for _, id := range []string{"pw", "key"} {
		out["creddoc "+id] = rdb.HGet(ctx, ks.Key("creddoc", id), "doc").Val()
		m := rdb.SMembers(ctx, ks.Key("creduse", id)).Val()
		sort.Strings(m)
		out["creduse "+id] = fmt.Sprint(m)
	}
	return out
}

func TestConnectionsProjection(t *testing.T) {
	backends(t, func(t *testing.T, rdb *redis.Client, program string) {
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		l := &catalogLog{t: t, program: program, versions: map[string]uint64{}}
		pw, key := domain.CredentialStream(program, "pw"), domain.CredentialStream(program, "key")
		mail, pull := domain.ConnectionStream(program, "mail"), domain.ConnectionStream(program, "pull")
		l.add(pw, domain.CredentialCreated{CredentialID: "pw", ProgramID: program, Name: "PW", Type: "password",
			Secret: domain.Secret{PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$SECRETHASH"}, CreatedAt: at})
		l.add(key, domain.CredentialCreated{CredentialID: "key", ProgramID: program, Name: "Key", Type: "public_key",
			Secret: domain.Secret{PublicKey: "ssh-ed25519 AAAA", Fingerprint: "SHA256:one"}, CreatedAt: at})
		mailCfg := domain.ConnectionConfig{Name: "Mail", Direction: "upload", DataType: "audiences", Method: "email",
			Methodology: "push", Pattern: "a_*.csv", CredentialID: "pw"}
		l.add(pw, domain.CredentialConnectionAttached{CredentialID: "pw", ProgramID: program, ConnectionID: "mail", AttachedAt: at})
		l.add(mail, domain.ConnectionCreated{ConnectionID: "mail", ProgramID: program, ConnectionConfig: mailCfg, CreatedAt: at})
		pullCfg := domain.ConnectionConfig{Name: "Pull", Direction: "download", DataType: "reports", Method: "sftp",
			Methodology: "pull", Folder: "/out", CredentialID: "key"}
		l.add(key, domain.CredentialConnectionAttached{CredentialID: "key", ProgramID: program, ConnectionID: "pull", AttachedAt: at})
		l.add(pull, domain.ConnectionCreated{ConnectionID: "pull", ProgramID: program, ConnectionConfig: pullCfg, CreatedAt: at})
		mid := len(l.events)
		moved := mailCfg
		moved.CredentialID, moved.Pattern = "key", "b_*.csv"
		l.add(key, domain.CredentialConnectionAttached{CredentialID: "key", ProgramID: program, ConnectionID: "mail", AttachedAt: at})
		l.add(mail, domain.ConnectionUpdated{ConnectionID: "mail", ProgramID: program, Changed: []string{"pattern", "credential_id"},
			ConnectionConfig: moved, PreviousCredentialID: "pw", UpdatedAt: at.Add(time.Hour)})
		l.add(pw, domain.CredentialConnectionDetached{CredentialID: "pw", ProgramID: program, ConnectionID: "mail", DetachedAt: at})
		l.add(pw, domain.CredentialDeleted{CredentialID: "pw", ProgramID: program, DeletedAt: at.Add(time.Hour)})
		l.add(key, domain.CredentialRotated{CredentialID: "key", ProgramID: program,
			Secret: domain.Secret{PublicKey: "ssh-ed25519 BBBB", Fingerprint: "SHA256:two"}, RotatedAt: at.Add(2 * time.Hour)})
		l.add(pull, domain.ConnectionDeleted{ConnectionID: "pull", ProgramID: program, CredentialID: "key", DeletedAt: at.Add(3 * time.Hour)})

		r := projections.NewRunner(rdb, projections.Connections{})
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Apply(ctx, append([]projections.Event{}, l.events[:mid]...)); err != nil {
			t.Fatal(err)
		}
		if st := connectionsState(t, rdb, program); st["conns"] != "[mail pull]" || st["creduse pw"] != "[mail]" || st["creduse key"] != "[pull]" {
			t.Fatalf("mid-way = %v", st)
		}
		if err := r.Apply(ctx, append([]projections.Event{}, l.events[mid:]...)); err != nil {
			t.Fatal(err)
		}
		st := connectionsState(t, rdb, program)
		want := map[string]string{"conns": "[mail]", "creds": "[key]", "creduse key": "[mail]", "creduse pw": "[]",
			"creddoc pw": "", "conndoc pull": ""}
		for k, v := range want {
			if st[k] != v {
				t.Errorf("%s = %q, want %q", k, st[k], v)
			}
		}
		if d := st["conndoc mail"]; !strings.Contains(d, `"pattern":"b_*.csv"`) || !strings.Contains(d, `"credential_id":"key"`) ||
			!strings.Contains(d, `"version":2`) || !strings.Contains(d, `"created_at":"2026-03-01T12:00:00Z"`) {
			t.Errorf("mail = %s", d)
		}
		if d := st["creddoc key"]; !strings.Contains(d, `"fingerprint":"SHA256:two"`) || !strings.Contains(d, `"rotated_at":"2026-03-01T14:00:00Z"`) || strings.Contains(d, "ssh-ed25519") {
			t.Errorf("key = %s", d)
		}
		for k, v := range st {
			if strings.Contains(v, "SECRETHASH") {
				t.Errorf("%s holds the password hash: %s", k, v)
			}
		}
		// One batch, or event by event, each redelivered: the same state.
		for name, batches := range map[string][][]projections.Event{
			"one batch": {l.events},
			"one by one": func() (out [][]projections.Event) {
				for _, e := range l.events {
					out = append(out, []projections.Event{e})
				}
				return out
			}(),
		} {
			other := program + "x" + fmt.Sprint(len(batches))
			for _, b := range batches {
				if err := r.Apply(ctx, rewrite(b, program, other)); err != nil {
					t.Fatal(err)
				}
				if err := r.Apply(ctx, rewrite(b, program, other)); err != nil { // redelivery
					t.Fatal(err)
				}
			}
			if got := connectionsState(t, rdb, other); fmt.Sprint(got) != fmt.Sprint(st) {
				t.Errorf("%s:\n got %v\nwant %v", name, got, st)
			}
		}
	})
}
