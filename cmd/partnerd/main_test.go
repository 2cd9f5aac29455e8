package main

import (
	"bytes"
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
