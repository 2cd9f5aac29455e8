package httpapi

import (
	"bufio"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// csvWriter writes RFC 4180 CSV: records end with CRLF and every field is
// written verbatim. encoding/csv's Writer with UseCRLF rewrites a "\n"
// inside a quoted field as "\r\n" (and drops a lone "\r"), changing the
// values; this one only quotes, and quotes the fields encoding/csv would.
// It buffers a little (bufio) and writes through on Flush: it streams.
type csvWriter struct {
	w *bufio.Writer
}

func newCSVWriter(w io.Writer) *csvWriter { return &csvWriter{w: bufio.NewWriter(w)} }

// Write writes one record; errors stick and are reported by Flush. A
// record of one empty field is written as "" (encoding/csv writes an empty
// line, which readers skip).
func (w *csvWriter) Write(record []string) {
	if len(record) == 1 && record[0] == "" {
		_, _ = w.w.WriteString("\"\"\r\n")
		return
	}
	for i, field := range record {
		if i > 0 {
			_ = w.w.WriteByte(',')
		}
		if !csvNeedsQuotes(field) {
			_, _ = w.w.WriteString(field)
			continue
		}
		_ = w.w.WriteByte('"')
		for {
			j := strings.IndexByte(field, '"')
			if j < 0 {
				break
			}
			_, _ = w.w.WriteString(field[:j+1]) // up to and including the quote
			_ = w.w.WriteByte('"')
			field = field[j+1:]
		}
		_, _ = w.w.WriteString(field)
		_ = w.w.WriteByte('"')
	}
	_, _ = w.w.WriteString("\r\n")
}

// Flush writes what is buffered and returns the first error of any write.
func (w *csvWriter) Flush() error { return w.w.Flush() }

// csvNeedsQuotes is encoding/csv's rule (Writer.fieldNeedsQuotes with a
// comma): a field with a comma, a quote, CR or LF, one that begins with a
// space, and `\.` (which PostgreSQL would read as the end of data).
func csvNeedsQuotes(field string) bool {
	if field == "" {
		return false
	}
	if field == `\.` || strings.ContainsAny(field, ",\"\r\n") {
		return true
	}
	r, _ := utf8.DecodeRuneInString(field)
	return unicode.IsSpace(r)
}
