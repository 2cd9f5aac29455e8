package httpapi

import "strconv"

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
