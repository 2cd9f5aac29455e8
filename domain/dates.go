package domain

import "time"

// IsDate reports whether s is a calendar date (2006-01-02) or an RFC 3339 time.
func IsDate(s string) bool {
	if _, err := time.Parse(time.DateOnly, s); err == nil {
		return true
	}
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}
