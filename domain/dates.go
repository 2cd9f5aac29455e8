package domain

import "time"

// IsDate reports whether s is a calendar date (2006-01-02) or an RFC 3339 time.
func IsDate(s string) bool {
	if _, err := time.Parse(time.DateOnly, s); err == nil {
		return true
	}
	_, err := ParseRFC3339(s)
	return err == nil
}

// ParseRFC3339 reads an RFC 3339 time, fractional seconds allowed. RFC
// 3339 lets the "T" and "Z" be lower case (§5.6, NOTE), which Go's
// time.RFC3339 layout refuses.
func ParseRFC3339(s string) (time.Time, error) {
	if len(s) > 10 && s[10] == 't' {
		s = s[:10] + "T" + s[11:]
	}
	if n := len(s); n > 0 && s[n-1] == 'z' {
		s = s[:n-1] + "Z"
	}
	return time.Parse(time.RFC3339Nano, s)
}
