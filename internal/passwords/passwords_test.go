package passwords_test

import (
	"strings"
	"testing"

	"github.com/partnerd/partnerd/internal/passwords"
)

func TestGenerateIsLongAndVaries(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	letters := map[rune]bool{}
	for range 200 {
		p := passwords.Generate()
		if len(p) < 24 {
			t.Fatalf("password %d chars, want >= 24", len(p))
		}
		if seen[p] {
			t.Fatalf("password repeated")
		}
		seen[p] = true
		for _, r := range p {
			letters[r] = true
		}
	}
	if len(letters) < 60 { // 6400 draws over 62 letters: all appear unless the source is broken
		t.Fatalf("only %d distinct letters in 200 passwords", len(letters))
	}
}

func TestHashVerify(t *testing.T) {
	t.Parallel()
	pw := passwords.Generate()
	h := passwords.Hash(pw, passwords.Default)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not the expected PHC form", h)
	}
	if strings.Contains(h, pw) {
		t.Fatal("hash holds the password")
	}
	if h2 := passwords.Hash(pw, passwords.Default); h2 == h {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	for _, tc := range []struct {
		name, pw string
		want     bool
	}{{"right", pw, true}, {"wrong", pw + "x", false}, {"empty", "", false}} {
		ok, err := passwords.Verify(h, tc.pw)
		if err != nil || ok != tc.want {
			t.Errorf("%s: Verify = %v, %v; want %v", tc.name, ok, err, tc.want)
		}
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", "$argon2id$v=19$m=99999999,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", strings.TrimSuffix(h, h[len(h)-10:]) + "!!!"} {
		if _, err := passwords.Verify(bad, pw); err == nil {
			t.Errorf("Verify(%q) accepted a malformed hash", bad)
		}
	}
}
