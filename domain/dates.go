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
// time.RFC3339 layout refuses; and it bounds an offset's hour to 00-23
// and its minute to 00-59 (time-numoffset), which Go's layout does not
// (it takes "+24:00" and "+23:60").
func ParseRFC3339(s string) (time.Time, error) {
	if len(s) > 10 && s[10] == 't' {
		s = s[:10] + "T" + s[11:]
	}
	if n := len(s); n > 0 && s[n-1] == 'z' {
		s = s[:n-1] + "Z"
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, err
	}
	if n := len(s); n >= 6 && (s[n-6] == '+' || s[n-6] == '-') && s[n-3] == ':' {
		if h, m := s[n-5:n-3], s[n-2:]; h > "23" || m > "59" {
			return time.Time{}, &time.ParseError{Layout: time.RFC3339Nano, Value: s, LayoutElem: "Z07:00", ValueElem: s[n-6:],
				Message: ": time zone offset out of range"}
		}
	}
	return t, nil
}
