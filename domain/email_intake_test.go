package domain_test

import (
	"path"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/partnerd/partnerd/domain"
)

func TestValidatePattern(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern string
		ok      bool
	}{
		{"audiences_*.csv", true},
		{"conv_????.csv", true},
		{"*.csv", true},
		{"[weird]_*.csv", true}, // '[' is a literal character here
		{"exact.csv", true},
		{"", false},
		{"*", false},
		{"**", false},
		{"?*?", false},
		{"dir/*.csv", false},
		{`dir\*.csv`, false},
		{"a\x00*.csv", false},
		{"a\n*.csv", false},
		{"\xff*.csv", false},
		{strings.Repeat("a", 256), false},
		{strings.Repeat("é", 255), true},
		{"receipt_*", false},
		{"result_*.csv", false},
		{"*receipt_*.csv", true},
	} {
		err := domain.ValidatePattern(tc.pattern)
		if (err == nil) != tc.ok {
			t.Errorf("ValidatePattern(%q) = %v, want ok %v", tc.pattern, err, tc.ok)
		}
	}
}

func TestMatchPattern(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"audiences_*.csv", "audiences_2026-03.csv", true},
		{"audiences_*.csv", "audiences_.csv", true},
		{"audiences_*.csv", "audiences_1.csv.gz", false},
		{"audiences_*.csv", "Audiences_1.csv", false},
		{"conv_????.csv", "conv_0301.csv", true},
		{"conv_????.csv", "conv_031.csv", false},
		{"conv_????.csv", "conv_éééé.csv", true}, // '?' is one character, not one byte
		{"*a*b*c", "xxaxxbxxc", true},
		{"*a*b*c", "xxaxxcxxb", false},
		{"[x]*", "[x]1", true},
		{"a*", "a", true},
		{strings.Repeat("*a", 30) + "b", strings.Repeat("a", 200), false}, // no exponential blow-up
	} {
		if got := domain.MatchPattern(tc.pattern, tc.name); got != tc.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestCheckEmail(t *testing.T) {
	t.Parallel()
	const pattern = "audiences_*.csv"
	for _, tc := range []struct {
		name        string
		attachments []string
		accepted    bool
		files       []string
		reason      string // part of the reason, when refused
	}{
		{name: "all match", attachments: []string{"audiences_1.csv", "audiences_2.csv"}, accepted: true,
			files: []string{"audiences_1.csv", "audiences_2.csv"}},
		{name: "reserved ones are ignored", attachments: []string{"receipt_1.pdf", "audiences_1.csv", "result_x.txt"}, accepted: true,
			files: []string{"audiences_1.csv"}},
		{name: "one mismatch refuses the whole email", attachments: []string{"audiences_1.csv", "notes.txt"},
			files: []string{}, reason: `"notes.txt" does not match`},
		{name: "only reserved attachments", attachments: []string{"receipt_1.csv", "result_1.csv"}, files: []string{}, reason: "no attachment"},
		{name: "no attachments", attachments: []string{}, files: []string{}, reason: "no attachment"},
		{name: "a path in the name", attachments: []string{"x/audiences_1.csv"}, files: []string{}, reason: "path separator"},
		{name: "an empty name", attachments: []string{"audiences_1.csv", ""}, files: []string{}, reason: "no file name"},
		{name: "reserved prefix is case-sensitive", attachments: []string{"Receipt_1.csv"}, files: []string{}, reason: "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := domain.CheckEmail(pattern, tc.attachments)
			if v.Accepted != tc.accepted || !reflect.DeepEqual(v.Files, tc.files) {
				t.Fatalf("verdict %+v, want accepted %v files %v", v, tc.accepted, tc.files)
			}
			switch {
			case tc.accepted && v.Reason != nil:
				t.Fatalf("accepted with reason %q", *v.Reason)
			case !tc.accepted && (v.Reason == nil || !strings.Contains(*v.Reason, tc.reason)):
				t.Fatalf("reason %v, want it to mention %q", v.Reason, tc.reason)
			}
		})
	}
}

// comparable reports whether path.Match is a fair reference for a pattern
// and name: it gives '[' and '\' meanings ours does not, and its '*' and
// '?' stop at '/', which intake refuses anyway.
func comparable(pattern, name string) bool {
	return utf8.ValidString(pattern) && utf8.ValidString(name) &&
		!strings.ContainsAny(pattern, `[]\/`) && !strings.ContainsAny(name, "/")
}

// FuzzMatchPattern checks the matcher against path.Match wherever the two
// grammars agree, and against the rules intake relies on everywhere.
// Run: go test ./domain -run '^$' -fuzz FuzzMatchPattern -fuzztime 30s
func FuzzMatchPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"audiences_*.csv", "audiences_1.csv"}, {"conv_????.csv", "conv_0301.csv"}, {"*a*b*c", "xxaxxbxxc"},
		{"*", ""}, {"?", "é"}, {"a*", "a"}, {"*.csv", "x.csv.gz"}, {"**x**", "xx"}, {"?*?", "ab"}, {"é?*", "éé"},
		{"[x]", "[x]"}, {"a\\*", "a*"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 64 || len(name) > 256 {
			return
		}
		got := domain.MatchPattern(pattern, name)
		if comparable(pattern, name) {
			want, err := path.Match(pattern, name)
			if err != nil {
				t.Fatalf("path.Match(%q, %q): %v", pattern, name, err)
			}
			if got != want {
				t.Fatalf("MatchPattern(%q, %q) = %v, path.Match = %v", pattern, name, got, want)
			}
		}
		if !utf8.ValidString(pattern) || !utf8.ValidString(name) {
			return
		}
		// A pattern without wildcards matches exactly itself.
		if !strings.ContainsAny(pattern, "*?") && got != (pattern == name) {
			t.Fatalf("literal pattern %q vs %q: %v", pattern, name, got)
		}
		// Every name matches itself with its characters turned to '?', and
		// to any pattern that only adds '*'s.
		q := strings.Map(func(rune) rune { return '?' }, name)
		if !domain.MatchPattern(q, name) || !domain.MatchPattern("*"+q+"*", name) {
			t.Fatalf("%q does not match %q", name, q)
		}
		// An email is accepted only if every non-reserved attachment matches.
		if domain.ValidatePattern(pattern) == nil {
			v := domain.CheckEmail(pattern, []string{name, "receipt_" + name})
			want := got && name != "" && !domain.Reserved(name) && !strings.ContainsAny(name, `/\`) && utf8.RuneCountInString(name) <= 255
			if domain.Reserved(name) {
				want = false // nothing left to take
			}
			if v.Accepted != want {
				t.Fatalf("CheckEmail(%q, %q) = %+v, want accepted %v", pattern, name, v, want)
			}
		}
	})
}
