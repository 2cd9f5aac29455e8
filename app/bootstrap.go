package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
)

// demoKeyFile keeps the generated demo key of a bare `partnerd` (embedded
// store, no PARTNERD_BOOTSTRAP_KEY) beside the data, so every start can
// print it. It is never written when a key is configured.
const demoKeyFile = "demo-api-key"

// Bootstrap creates the bootstrap program if it does not exist yet. It
// returns the key to show the user ("" when none can be shown) and whether
// the program was created now.
func (a *App) Bootstrap(ctx context.Context) (key string, created bool, err error) {
	c := a.Config
	if c.BootstrapProgram == "" {
		return "", false, nil
	}
	key = c.BootstrapKey
	keyFile := filepath.Join(c.Data, demoKeyFile)
	saveKey := key == "" && c.EventStore == "embedded"
	if saveKey {
		if b, err := os.ReadFile(keyFile); err == nil {
			key = strings.TrimSpace(string(b))
		}
	}
	_, key2, err := a.Commands.CreateProgram.Handle(ctx, commands.CreateProgram{ProgramID: c.BootstrapProgram, Name: c.BootstrapProgram, Key: key},
		commands.Meta{Actor: "system:bootstrap"})
	if errors.Is(err, domain.ErrAlreadyExists) {
		return key, false, nil
	}
	if err != nil {
		return "", false, err
	}
	if saveKey {
		if err := os.WriteFile(keyFile, []byte(key2+"\n"), 0o600); err != nil {
			a.Logger.Warn("could not save the demo key", "err", err)
		}
	}
	return key2, true, nil
}
