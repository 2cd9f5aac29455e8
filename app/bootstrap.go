package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
)

// demoKeyFile keeps the generated demo key of a bare `partnerd` (embedded
// store, no PARTNERD_BOOTSTRAP_KEY) beside the data, so every start can
// print it. It is never written when a key is configured.
const demoKeyFile = "demo-api-key"

// bootstrapWait bounds how long Bootstrap waits for a new program's key to
// reach the programs read model.
const bootstrapWait = 30 * time.Second

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
		if key != "" {
			// The program was created before, maybe with another key: say
			// so, rather than let every request with this one get a 401.
			p, _, _, lerr := commands.Load[domain.Program](ctx, a.Store, domain.ProgramStream(c.BootstrapProgram))
			if lerr == nil && !p.HasKeyHash(commands.HashAPIKey(key)) {
				a.Logger.Warn("the bootstrap key is not a live key of the bootstrap program, which exists already: requests with it will be refused (issue a key with `partnerd programs keys issue`)",
					"program", c.BootstrapProgram)
			}
		}
		return key, false, nil
	}
	if err != nil {
		return "", false, err
	}
	// Return (and so start listening) once the key is projected: a client
	// that reads "ready" must not get a 401 for the key it was given. With
	// Kafka, readiness at start counts what the relay published, which
	// the projections may not have consumed yet.
	hash := commands.HashAPIKey(key2)
	for deadline := time.Now().Add(bootstrapWait); ; {
		if p, err := a.Queries.ProgramOfKey(ctx, hash); err == nil && p == c.BootstrapProgram {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			a.Logger.Warn("the bootstrap program's key is not projected yet; requests with it may be refused until it is", "program", c.BootstrapProgram, "waited", bootstrapWait)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if saveKey {
		if err := os.WriteFile(keyFile, []byte(key2+"\n"), 0o600); err != nil {
			a.Logger.Warn("could not save the demo key", "err", err)
		}
	}
	return key2, true, nil
}
