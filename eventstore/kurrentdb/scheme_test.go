package kurrentdb

import "testing"

func TestRewriteScheme(t *testing.T) {
	cases := map[string]string{
		"kurrentdb://h:2113?tls=false":       "esdb://h:2113?tls=false",
		"KurrentDB+discover://a,b":           "esdb+discover://a,b",
		"kurrent://h":                        "esdb://h",
		"kdb://u:p@h":                        "esdb://u:p@h",
		"esdb://h":                           "esdb://h",
		"esdb+discover://h":                  "esdb+discover://h",
		"http://h":                           "http://h",
		"no scheme at all":                   "no scheme at all",
		"kurrentdb://h/?tls=false&x=kdb://y": "esdb://h/?tls=false&x=kdb://y",
	}
	for in, want := range cases {
		if got := rewriteScheme(in); got != want {
			t.Errorf("rewriteScheme(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseActual(t *testing.T) {
	cases := []struct {
		msg    string
		actual int64
		ok     bool
	}{
		{"[ErrorCodeWrongExpectedVersion] ...: wrong expected version: expecting '3' but got '7'", 7, true},
		{"wrong expected version: expecting 'any' but got 'no_stream'", -1, true},
		{"wrong expected version: expecting 'no_stream' but got '0'", 0, true},
		{"wrong expected version", 0, false},
		{"expecting '1' but got 'x'", 0, false},
		{"expecting '1' but got '-3'", 0, false},
	}
	for _, tc := range cases {
		actual, ok := parseActual(tc.msg)
		if actual != tc.actual || ok != tc.ok {
			t.Errorf("parseActual(%q) = %d, %v; want %d, %v", tc.msg, actual, ok, tc.actual, tc.ok)
		}
	}
}
