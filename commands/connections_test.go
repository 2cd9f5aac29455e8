package commands_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
)

func emailConnection(id, credential string) domain.NewConnection {
	return domain.NewConnection{ProgramID: "acme", ID: id, ConnectionConfig: domain.ConnectionConfig{Name: "Mail",
		Direction: "upload", DataType: "audiences", Method: "email", Methodology: "push", Pattern: "a_*.csv", CredentialID: credential}}
}

func loadCredential(t *testing.T, cmds commands.EventStore, id string) *domain.Credential {
	t.Helper()
	c, _, _, err := commands.Load[domain.Credential](context.Background(), cmds, domain.CredentialStream("acme", id))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A credential is never deleted under a live connection, however the
// deletion races with connections being created on it.
func TestCredentialDeletionRacesConnectionCreation(t *testing.T) {
	cmds, store := setup(t)
	ctx := context.Background()
	for round := range 20 {
		cred := fmt.Sprintf("cr%d", round)
		if _, _, _, err := cmds.CreateCredential.Handle(ctx, commands.NewCredential{ProgramID: "acme", ID: cred, Name: "c", Type: "password"}, commands.Meta{}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		created := make([]bool, 4)
		for i := range created {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := cmds.CreateConnection.Handle(ctx, emailConnection(fmt.Sprintf("c%d-%d", round, i), cred), commands.Meta{})
				var ve *domain.ValidationError
				switch {
				case err == nil:
					created[i] = true
				case !errors.As(err, &ve):
					t.Error(err)
				}
			}()
		}
		var deleted bool
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := cmds.DeleteCredential.Handle(ctx, "acme", cred, commands.Meta{})
			switch {
			case err == nil:
				deleted = true
			case !errors.Is(err, domain.ErrConflict):
				t.Error(err)
			}
		}()
		wg.Wait()
		c := loadCredential(t, store, cred)
		t.Logf("round %d: deleted %v, created %v", round, deleted, created)
		if c.Live() == deleted {
			t.Fatalf("round %d: deletion answered %v, credential live %v", round, deleted, c.Live())
		}
		for i, ok := range created {
			conn, _, _, err := commands.Load[domain.Connection](ctx, store, domain.ConnectionStream("acme", fmt.Sprintf("c%d-%d", round, i)))
			if err != nil {
				t.Fatal(err)
			}
			if conn.Live() != ok {
				t.Fatalf("round %d: connection %d created %v, live %v", round, i, ok, conn.Live())
			}
			if ok && !c.Live() {
				t.Fatalf("round %d: connection %d is live on deleted credential %s", round, i, cred)
			}
		}
	}
}

// A connection whose own write fails leaves no attachment behind, and a
// move to another credential detaches the old one.
func TestConnectionAttachments(t *testing.T) {
	cmds, store := setup(t)
	ctx := context.Background()
	for _, id := range []string{"one", "two"} {
		if _, _, _, err := cmds.CreateCredential.Handle(ctx, commands.NewCredential{ProgramID: "acme", ID: id, Name: id, Type: "password"}, commands.Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := cmds.CreateConnection.Handle(ctx, emailConnection("c1", "one"), commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	// The same ID again, on the other credential: refused before any write.
	if _, _, err := cmds.CreateConnection.Handle(ctx, emailConnection("c1", "two"), commands.Meta{}); !errors.Is(err, domain.ErrAlreadyExists) {
		t.Fatalf("duplicate connection: %v", err)
	}
	if got := loadCredential(t, store, "two").Attached(); len(got) != 0 {
		t.Fatalf("credential two has attachments %v after a refused creation", got)
	}
	two := "two"
	if _, _, err := cmds.UpdateConnection.Handle(ctx, "acme", "c1", domain.ConnectionPatch{CredentialID: &two}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	if a, b := loadCredential(t, store, "one").Attached(), loadCredential(t, store, "two").Attached(); len(a) != 0 || fmt.Sprint(b) != "[c1]" {
		t.Fatalf("after the move: one %v, two %v", a, b)
	}
	if _, err := cmds.DeleteCredential.Handle(ctx, "acme", "two", commands.Meta{}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("deleting a credential in use: %v", err)
	}
	if _, err := cmds.DeleteConnection.Handle(ctx, "acme", "c1", commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	if b := loadCredential(t, store, "two").Attached(); len(b) != 0 {
		t.Fatalf("after deleting the connection two has %v", b)
	}
	if _, err := cmds.DeleteCredential.Handle(ctx, "acme", "two", commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	// A connection deleted after it was created does not block a deletion.
	if _, _, err := cmds.CreateConnection.Handle(ctx, emailConnection("c2", "one"), commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cmds.DeleteConnection.Handle(ctx, "acme", "c2", commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cmds.DeleteCredential.Handle(ctx, "acme", "one", commands.Meta{}); err != nil {
		t.Fatal(err)
	}
}
