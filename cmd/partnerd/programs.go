package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
)

func programs(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"programs: want create NAME, keys issue NAME, keys list NAME or keys revoke NAME KEY_ID"}
	}
	sub := args[0]
	if sub == "keys" {
		if len(args) < 2 {
			return usageError{"programs keys: want issue NAME, list NAME or revoke NAME KEY_ID"}
		}
		sub, args = "keys "+args[1], args[1:]
	}
	fs := newFlagSet("programs "+sub, stderr)
	cfg := flags(fs)
	name := fs.String("name", "", "display name of the program (create only; default: its ID)")
	key := fs.String("key", "", "use this API key instead of a random one (create only; at least 16 characters)")
	if err := fs.Parse(args[1:]); err != nil {
		return flagError(err)
	}
	// Flags may also follow the positional arguments.
	pos := fs.Args()
	for i := 0; i < len(pos); i++ {
		if len(pos[i]) > 1 && pos[i][0] == '-' {
			if err := fs.Parse(pos[i:]); err != nil {
				return flagError(err)
			}
			pos = append(pos[:i:i], fs.Args()...)
			i--
		}
	}
	// Wrong arguments are told before the store is opened (which would
	// create an empty one where there was none).
	want := map[string]int{"create": 1, "keys issue": 1, "keys list": 1, "keys revoke": 2}
	if n, ok := want[sub]; !ok || len(pos) != n {
		return usageError{fmt.Sprintf("programs %s: wrong arguments %q", sub, pos)}
	}
	store, err := app.OpenStore(*cfg)
	if err != nil {
		return fmt.Errorf("%w (with the embedded store, stop the server first)", err)
	}
	defer store.Close()
	cmds := commands.New(commands.Deps{Store: store})
	ctx := context.Background()
	meta := commands.Meta{Actor: "cli"}
	switch sub {
	case "create":
		_, id, k, err := cmds.CreateProgram.HandleWithKeyID(ctx, commands.CreateProgram{ProgramID: pos[0], Name: *name, Key: *key}, meta)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "program %q created; key %s, its API key (shown once):\n", pos[0], id)
		fmt.Fprintln(stdout, k)
	case "keys issue":
		_, id, k, err := cmds.IssueAPIKey.Handle(ctx, pos[0], meta)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "key %s issued for %q (shown once):\n", id, pos[0])
		fmt.Fprintln(stdout, k)
	case "keys list":
		p, _, _, err := commands.Load[domain.Program](ctx, store, domain.ProgramStream(pos[0]))
		if err != nil {
			return err
		}
		if !p.Exists() {
			return fmt.Errorf("program %q: %w", pos[0], domain.ErrNotFound)
		}
		for _, id := range p.KeyIDs() {
			fmt.Fprintln(stdout, id)
		}
	case "keys revoke":
		// A key ID, or the key itself (the first key's ID was not shown
		// before): never echoed back, it may be a secret.
		p, _, _, err := commands.Load[domain.Program](ctx, store, domain.ProgramStream(pos[0]))
		if err != nil {
			return err
		}
		id := pos[1]
		if !slices.Contains(p.KeyIDs(), id) {
			var ok bool
			if id, ok = p.KeyIDOf(commands.HashAPIKey(pos[1])); !ok {
				return fmt.Errorf("program %q has no live key with that ID or value (programs keys list %s shows the IDs): %w", pos[0], pos[0], domain.ErrConflict)
			}
		}
		if _, err := cmds.RevokeAPIKey.Handle(ctx, pos[0], id, meta); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %s of %q revoked\n", id, pos[0])
	}
	return nil
}
