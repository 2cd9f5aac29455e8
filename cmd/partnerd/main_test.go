package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestProgramsCreatePrintsTheKeyOnce(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run([]string{"programs", "create", "acme", "--data", dir}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	key := lines[len(lines)-1]
	if !strings.HasPrefix(key, "pd_") || len(key) < 40 || strings.ContainsAny(key, " \t") {
		t.Fatalf("last stdout line %q is not an API key alone", key)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"programs", "create", "acme", "--data", dir}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "already exists") {
		t.Fatalf("second create: exit %d, stderr %q", code, errOut.String())
	}
	if strings.Contains(out.String(), "pd_") {
		t.Fatal("a failed create printed a key")
	}
	if code := run([]string{"programs", "create", "Bad-Name", "--data", dir}, &out, &errOut); code == 0 {
		t.Fatal("an invalid program ID was accepted")
	}
	// A chosen key is bound to one program: another program cannot take it.
	errOut.Reset()
	if code := run([]string{"programs", "create", "one", "--key", key, "--data", dir}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "already in use") {
		t.Fatalf("acme's key for another program: exit %d, stderr %q", code, errOut.String())
	}
	// A wrong flag is a usage error (exit 2) before anything is created.
	errOut.Reset()
	if code := run([]string{"programs", "create", "two", "--bogus", "--data", dir}, &out, &errOut); code != 2 {
		t.Fatalf("an unknown flag: exit %d, stderr %q", code, errOut.String())
	}
	if code := run([]string{"programs", "keys", "list", "two", "--data", dir}, &out, &errOut); code != 1 {
		t.Fatalf("the program of the refused create exists (exit %d)", code)
	}
	// rebuild takes one projection: a second word is not ignored.
	errOut.Reset()
	if code := run([]string{"rebuild", "partners", "extra", "--data", dir}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "extra") {
		t.Fatalf("rebuild with an extra argument: exit %d, stderr %q", code, errOut.String())
	}
}

func TestHelpListsEveryEnvVariable(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"serve", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, env := range []string{"PARTNERD_ADDR", "PARTNERD_DATA", "PARTNERD_EVENTSTORE", "PARTNERD_REDIS_URL",
		"PARTNERD_KAFKA_BROKERS", "PARTNERD_BOOTSTRAP_PROGRAM", "PARTNERD_BOOTSTRAP_KEY"} {
		if !strings.Contains(errOut.String(), env) {
			t.Errorf("--help does not mention %s", env)
		}
	}
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown command: exit %d, want 2", code)
	}
}

func TestConfigProblemsAreReportedTogether(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"serve", "--eventstore", "mysql://x", "--redis-url", "http://x", "--bootstrap-key", "short"}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"PARTNERD_EVENTSTORE", "PARTNERD_REDIS_URL", "PARTNERD_BOOTSTRAP_KEY"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("error output does not name %s: %s", want, errOut.String())
		}
	}
}

// Every key can be revoked, the first one too: create names its ID, keys
// list shows the live ones, and revoke takes the ID or the key itself,
// never echoing a key back. Wrong arguments create no store.
func TestProgramsKeysListAndRevoke(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run([]string{"programs", "create", "acme", "--data", dir}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	first := strings.TrimSpace(out.String())
	_, rest, _ := strings.Cut(errOut.String(), "key ")
	firstID, _, _ := strings.Cut(rest, ",")
	out.Reset()
	errOut.Reset()
	if code := run([]string{"programs", "keys", "issue", "acme", "--data", dir}, &out, &errOut); code != 0 {
		t.Fatalf("issue: exit %d: %s", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"programs", "keys", "list", "acme", "--data", dir}, &out, &errOut); code != 0 {
		t.Fatalf("list: exit %d: %s", code, errOut.String())
	}
	ids := strings.Fields(out.String())
	if len(ids) != 2 || !strings.Contains(out.String(), firstID) || firstID == "" {
		t.Fatalf("keys list %q, want 2 IDs with the first key's %q", out.String(), firstID)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"programs", "keys", "revoke", "acme", first, "--data", dir}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "key "+firstID+" of") || strings.Contains(out.String()+errOut.String(), first) {
		t.Fatalf("revoke by the key itself: exit %d, %q %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"programs", "keys", "revoke", "acme", first, "--data", dir}, &out, &errOut); code != 1 || strings.Contains(errOut.String(), first) {
		t.Fatalf("revoke it again: exit %d, stderr %q (must not echo the key)", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"programs", "keys", "list", "acme", "--data", dir}, &out, &errOut); code != 0 || len(strings.Fields(out.String())) != 1 {
		t.Fatalf("list after revoke: exit %d %q", code, out.String())
	}
	empty := t.TempDir() + "/none"
	for _, args := range [][]string{{"programs", "create"}, {"programs", "keys", "issue"}, {"programs", "keys", "revoke", "x"}} {
		if code := run(append(args, "--data", empty), &out, &errOut); code != 2 {
			t.Fatalf("%v: exit %d, want 2", args, code)
		}
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Fatalf("wrong arguments created a store at %s (%v)", empty, err)
	}
}
