package main

import (
	"context"
	"fmt"
	"io"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/commands"
)

func programs(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"programs: want create NAME, keys issue NAME or keys revoke NAME KEY_ID"}
	}
	sub := args[0]
	if sub == "keys" {
		if len(args) < 2 {
			return usageError{"programs keys: want issue NAME or revoke NAME KEY_ID"}
		}
		sub, args = "keys "+args[1], args[1:]
	}
	fs := newFlagSet("programs "+sub, stderr)
	cfg := flags(fs)
	name := fs.String("name", "", "display name of the program (create only; default: its ID)")
	key := fs.String("key", "", "use this API key instead of a random one (create only; at least 16 characters)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	// Flags may also follow the positional arguments.
	pos := fs.Args()
	for i := 0; i < len(pos); i++ {
		if len(pos[i]) > 1 && pos[i][0] == '-' {
			if err := fs.Parse(pos[i:]); err != nil {
				return err
			}
			pos = append(pos[:i:i], fs.Args()...)
			i--
		}
	}
	store, err := app.OpenStore(*cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	cmds := commands.New(commands.Deps{Store: store})
	ctx := context.Background()
	meta := commands.Meta{Actor: "cli"}
	switch {
	case sub == "create" && len(pos) == 1:
		_, k, err := cmds.CreateProgram.Handle(ctx, commands.CreateProgram{ProgramID: pos[0], Name: *name, Key: *key}, meta)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "program %q created; its API key (shown once):\n", pos[0])
		fmt.Fprintln(stdout, k)
	case sub == "keys issue" && len(pos) == 1:
		_, id, k, err := cmds.IssueAPIKey.Handle(ctx, pos[0], meta)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "key %s issued for %q (shown once):\n", id, pos[0])
		fmt.Fprintln(stdout, k)
	case sub == "keys revoke" && len(pos) == 2:
		if _, err := cmds.RevokeAPIKey.Handle(ctx, pos[0], pos[1], meta); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %s of %q revoked\n", pos[1], pos[0])
	default:
		return usageError{fmt.Sprintf("programs %s: wrong arguments %q", sub, pos)}
	}
	return nil
}
