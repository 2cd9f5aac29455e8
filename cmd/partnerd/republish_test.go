package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/internal/testenv"
)

// Republishing a range puts the same events (same ce_id) on the topic
// again; Debian's kcat reads them back.
func TestRepublishCommand(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	kcat := testenv.Kcat(t)
	dir := t.TempDir()
	// The topic outlives test runs on a shared broker: a unique program.
	program := "repub" + strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(testenv.UniquePrefix(t)))
	var out, errOut bytes.Buffer
	if code := run([]string{"programs", "create", program, "--data", dir}, &out, &errOut); code != 0 {
		t.Fatal(errOut.String())
	}
	args := []string{"republish", "--from", "1", "--to", "2", "--category", "program", "--data", dir, "--kafka-brokers", strings.Join(brokers, ",")}
	for i := 0; i < 2; i++ {
		out.Reset()
		errOut.Reset()
		if code := run(args, &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		if !strings.Contains(out.String(), "republished 2 events") {
			t.Fatalf("output %q", out.String())
		}
	}
	// Both runs' records for this program carry the same two event IDs.
	cmd := exec.Command(kcat, "-b", strings.Join(brokers, ","), "-C", "-t", "partnerd.programs", "-o", "beginning", "-e", "-J", "-q")
	raw, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec struct {
			Key     string   `json:"key"`
			Headers []string `json:"headers"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Key != "program-"+program {
			continue
		}
		for i := 0; i+1 < len(rec.Headers); i += 2 {
			if rec.Headers[i] == "ce_id" {
				ids[rec.Headers[i+1]]++
			}
		}
	}
	if len(ids) != 2 {
		t.Fatalf("distinct ce_id for program-%s = %v, want 2 IDs", program, ids)
	}
	for id, n := range ids {
		if n < 2 {
			t.Fatalf("event %s published %d times, want once per run", id, n)
		}
	}
	if code := run([]string{"republish", "--data", dir}, &out, &errOut); code != 2 {
		t.Fatalf("missing --from: exit %d", code)
	}
}

// Every argument mistake is a usage error (exit 2) that says what is
// wrong, before anything is opened or published (no broker needed).
func TestRepublishRefusesBadArguments(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	for _, args := range [][]string{
		{},
		{"--from", "x"},
		{"--from", "5", "--to", "4"},
		{"--from", "1", "--bogus", "1"},
		{"--from", "1", "--to", "0"},
		{"--from", "1", "--category", "nosuch"},
		{"--from", "1", "--category", "partnerd.nosuch"},
	} {
		errOut.Reset()
		if code := run(append([]string{"republish", "--data", dir}, args...), &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("republish %v: exit %d %q, want 2 and a message", args, code, errOut.String())
		}
	}
}
