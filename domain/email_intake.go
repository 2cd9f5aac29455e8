package domain

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of email intake.
const (
	maxPatternLen     = 255
	maxAttachmentName = 255
	// MaxAttachments bounds the attachments of one email check.
	MaxAttachments = 1000
)

// ReservedPrefixes name attachments that intake always ignores: the
// platform's own receipts and results, which travel on the same threads.
// The check is case-sensitive, like the pattern.
var reservedPrefixes = [...]string{"receipt_", "result_"}

// Reserved reports whether an attachment name is reserved (receipt_* or
// result_*): such attachments neither count nor block.
func Reserved(name string) bool {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// ValidatePattern checks an email filename pattern: 1–255 characters of
// valid UTF-8 without control characters; '*' is any run of characters,
// '?' exactly one, everything else is literal. It is refused when it
// contains a path separator ('/' or '\'), when it matches (nearly) every
// name (it has no literal character), or when every name it matches is reserved
// (it starts with receipt_ or result_), since such a connection could
// never accept a file. The message is for the field "pattern".
func ValidatePattern(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("is required for method email, e.g. audiences_*.csv")
	case !utf8.ValidString(p):
		return fmt.Errorf("must be valid UTF-8")
	case utf8.RuneCountInString(p) > maxPatternLen:
		return fmt.Errorf("must be at most %d characters", maxPatternLen)
	case strings.ContainsAny(p, `/\`):
		return fmt.Errorf("must be a file name pattern without a path separator ('/' or '\\')")
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return fmt.Errorf("must not contain control characters")
	case strings.Trim(p, "*?") == "":
		return fmt.Errorf("has no literal character, so it matches (nearly) every file name; give literal characters too, e.g. audiences_*.csv")
	case Reserved(p):
		return fmt.Errorf("matches only reserved names (receipt_*, result_*), which are always ignored")
	}
	return nil
}

// MatchPattern reports whether name matches the pattern: '*' matches any
// run of characters (also none), '?' exactly one character, anything else
// itself. Characters are runes; the pattern is assumed valid
// (ValidatePattern). It runs in O(len(pattern)·len(name)) at worst, never
// exponential: on a mismatch it only moves the last '*' on.
func MatchPattern(pattern, name string) bool {
	p, n := []rune(pattern), []rune(name)
	pi, ni := 0, 0
	star, mark := -1, 0 // position of the last '*' in p, and where in n it started matching
	for ni < len(n) {
		switch {
		case pi < len(p) && (p[pi] == '?' || (p[pi] != '*' && p[pi] == n[ni])):
			pi++
			ni++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ni
			pi++
		case star >= 0:
			mark++
			pi, ni = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// EmailVerdict is the intake decision on one email.
type EmailVerdict struct {
	Accepted bool `json:"accepted"`
	// Files are the attachments taken, in the email's order; empty when
	// the email is refused.
	Files []string `json:"files"`
	// Reason says why the email was refused; nil when accepted.
	Reason *string `json:"reason"`
}

// CheckEmail decides whether an email with these attachment names is
// taken by an email connection with this pattern. Reserved attachments
// (receipt_*, result_*) are ignored: they neither count nor block. The
// email is accepted only when at least one attachment remains and every
// remaining one matches; otherwise nothing is taken and Reason says why.
// A name that is not valid UTF-8, is empty, too long, or holds a path
// separator never matches.
func CheckEmail(pattern string, attachments []string) EmailVerdict {
	refuse := func(format string, args ...any) EmailVerdict {
		r := fmt.Sprintf(format, args...)
		return EmailVerdict{Files: []string{}, Reason: &r}
	}
	files := []string{}
	for i, a := range attachments {
		if Reserved(a) {
			continue
		}
		switch {
		case a == "":
			return refuse("attachment %d has no file name", i)
		case !utf8.ValidString(a):
			return refuse("attachment %d: file name is not valid UTF-8", i)
		case utf8.RuneCountInString(a) > maxAttachmentName:
			return refuse("attachment %d: file name is longer than %d characters", i, maxAttachmentName)
		case strings.ContainsAny(a, `/\`):
			return refuse("attachment %d: file name %q holds a path separator", i, a)
		case !MatchPattern(pattern, a):
			return refuse("attachment %d: %q does not match the pattern %q; an email is taken only when all its attachments match", i, a, pattern)
		}
		files = append(files, a)
	}
	if len(files) == 0 {
		return refuse("no attachment to take (reserved receipt_* and result_* attachments are ignored)")
	}
	return EmailVerdict{Accepted: true, Files: files}
}
