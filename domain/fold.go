package domain

import "strings"

// FoldCase is s as every case-insensitive comparison of text sees it
// (search, segment contains): lower case, with the Greek final sigma as
// the other sigma, since strings.ToLower maps Σ to σ and never to ς, so
// "ΟΔΟΣ" and "οδός" would not meet.
func FoldCase(s string) string {
	l := strings.ToLower(s)
	if strings.ContainsRune(l, 'ς') {
		l = strings.ReplaceAll(l, "ς", "σ")
	}
	return l
}
