package app_test

import (
	"testing"

	"github.com/partnerd/partnerd/app"
)

// PARTNERD_BOOTSTRAP_PROGRAM set empty means no program, as the flag does
// (it bootstrapped "demo"); unset keeps the default.
func TestBootstrapProgramSetEmptyIsNone(t *testing.T) {
	t.Setenv("PARTNERD_BOOTSTRAP_PROGRAM", "")
	if c := app.FromEnv(app.Defaults()); c.BootstrapProgram != "" {
		t.Fatalf("PARTNERD_BOOTSTRAP_PROGRAM= gave %q", c.BootstrapProgram)
	}
	t.Setenv("PARTNERD_BOOTSTRAP_PROGRAM", "acme")
	if c := app.FromEnv(app.Defaults()); c.BootstrapProgram != "acme" {
		t.Fatalf("PARTNERD_BOOTSTRAP_PROGRAM=acme gave %q", c.BootstrapProgram)
	}
}
