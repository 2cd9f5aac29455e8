package httpapi

import (
	"strconv"
	"unicode/utf8"
)

// Bounds on the shape of a JSON request body, checked before it is decoded,
// so that a hostile body cannot make the decoder (or what later walks the
// decoded value: merge patches, conditions, Redis writes) do unbounded work.
// Real requests stay far below them: the deepest API document (segment
// conditions) nests about six levels, and the widest object is a partner's
// custom fields (at most 100).
const (
	maxJSONDepth   = 32
	maxJSONMembers = 1000
)

// checkJSONShape scans body and reports the first object nested deeper than
// maxJSONDepth or holding more than maxJSONMembers members, as a
// ValidationError on the field "body" (422). It does not validate the JSON:
// the decoder does that next, so malformed input still gets its 400.
func checkJSONShape(body []byte) error {
	// members[i] counts the members of the i-th open container when it is
	// an object; -1 marks an array.
	members := make([]int, 0, 8)
	inString, escaped := false, false
	for _, b := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
			continue
		}
		switch b {
		case '"':
			inString = true
		case '{', '[':
			if len(members) == maxJSONDepth {
				return fieldError("body", "nests deeper than "+strconv.Itoa(maxJSONDepth)+" levels of objects and arrays")
			}
			if b == '{' {
				members = append(members, 0)
			} else {
				members = append(members, -1)
			}
		case '}', ']':
			if len(members) > 0 {
				members = members[:len(members)-1]
			}
		case ':':
			if n := len(members); n > 0 && members[n-1] >= 0 {
				members[n-1]++
				if members[n-1] > maxJSONMembers {
					return fieldError("body", "has an object with more than "+strconv.Itoa(maxJSONMembers)+" members")
				}
			}
		}
	}
	return nil
}

// checkJSONText refuses (400) a body that is not UTF-8, or whose strings
// escape half of a UTF-16 surrogate pair ("\ud800" alone): Go's decoder
// would turn either into U+FFFD, so the stored text would not be the text
// sent.
func checkJSONText(body []byte) error {
	if !utf8.Valid(body) {
		return badRequest("the body is not valid UTF-8")
	}
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		if i+1 < len(body) && body[i+1] != 'u' {
			i++ // another escape (\\, \", \n, ...): skip its letter
			continue
		}
		r, ok := hex4(body, i+2)
		if !ok {
			continue // not a \uXXXX escape: the decoder reports it
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return badRequest("malformed JSON: a lone UTF-16 surrogate \\u%04x in a string", r)
		case r >= 0xD800 && r <= 0xDBFF:
			low, ok := rune(0), false
			if i+7 < len(body) && body[i+6] == '\\' && body[i+7] == 'u' {
				low, ok = hex4(body, i+8)
			}
			if !ok || low < 0xDC00 || low > 0xDFFF {
				return badRequest("malformed JSON: a lone UTF-16 surrogate \\u%04x in a string", r)
			}
			i += 11
		default:
			i += 5
		}
	}
	return nil
}

// hex4 reads the 4 hex digits at body[at:].
func hex4(body []byte, at int) (rune, bool) {
	if at+4 > len(body) {
		return 0, false
	}
	var r rune
	for _, c := range body[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
