package httpapi

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
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

// csvReader reads RFC 4180 CSV as the export writes it: fields separated by
// commas, records by CRLF or LF, a quoted field holding anything (its
// line breaks kept as they are: encoding/csv turns a quoted CRLF into LF,
// so an exported address or description came back changed). Blank lines
// are skipped, as encoding/csv does. A record that breaks the quoting
// rules on its line (a bare quote in an unquoted field, text after a
// closing quote) is a csvSyntaxError for that record alone, and reading
// goes on at the next line; a quoted field that never ends is an error
// for the rest of the file.
type csvReader struct {
	r    *bufio.Reader
	line int // lines read so far
	rec  []string
	buf  []byte
}

func newCSVReader(r io.Reader) *csvReader { return &csvReader{r: bufio.NewReaderSize(r, 64<<10)} }

// csvSyntaxError is a break of the CSV rules at Line. When File is false
// only its record is lost (the reader goes on at the next line); when true
// the rest of the file cannot be read.
type csvSyntaxError struct {
	Line int
	Msg  string
	File bool
}

func (e *csvSyntaxError) Error() string { return "line " + strconv.Itoa(e.Line) + ": " + e.Msg }

// rowError reports whether err is a csvSyntaxError of one record only.
func rowError(err error) (*csvSyntaxError, bool) {
	var se *csvSyntaxError
	if errors.As(err, &se) && !se.File {
		return se, true
	}
	return nil, false
}

// Read returns the next record (valid until the next call), the lines it
// starts and ends on, and io.EOF after the last one. With a row error it
// returns the cells read before the one that broke the rules.
func (cr *csvReader) Read() (rec []string, start, end int, err error) {
	for {
		b, err := cr.r.ReadByte()
		if err == io.EOF {
			return nil, 0, 0, io.EOF
		}
		if err != nil {
			return nil, 0, 0, err
		}
		if b == '\n' {
			cr.line++ // a blank line
			continue
		}
		if b == '\r' {
			if next, err := cr.r.Peek(1); err == nil && next[0] == '\n' {
				_, _ = cr.r.ReadByte()
				cr.line++
				continue
			}
		}
		_ = cr.r.UnreadByte()
		break
	}
	start = cr.line + 1
	cr.rec = cr.rec[:0]
	for {
		field, last, err := cr.field(start)
		if err != nil {
			if _, ok := rowError(err); ok {
				// The cells before the bad one come back with the error
				// (they tell whose row it is).
				cr.skipLine()
				return cr.rec, start, cr.line, err
			}
			return nil, start, cr.line, err
		}
		cr.rec = append(cr.rec, field)
		if last {
			return cr.rec, start, cr.line, nil
		}
	}
}

// field reads one field and whether it ended the record (which consumes
// the line end; cr.line then counts it).
func (cr *csvReader) field(start int) (string, bool, error) {
	cr.buf = cr.buf[:0]
	b, err := cr.r.ReadByte()
	if err == io.EOF {
		cr.line++
		return "", true, nil
	}
	if err != nil {
		return "", false, err
	}
	if b != '"' {
		for {
			switch {
			case b == ',':
				return string(cr.buf), false, nil
			case b == '\n':
				cr.line++
				return string(bytes.TrimSuffix(cr.buf, []byte{'\r'})), true, nil
			case b == '"':
				return "", false, &csvSyntaxError{Line: cr.line + 1, Msg: `bare " in an unquoted field (quote the field and double the quote)`}
			}
			cr.buf = append(cr.buf, b)
			if b, err = cr.r.ReadByte(); err == io.EOF {
				cr.line++
				return string(cr.buf), true, nil
			} else if err != nil {
				return "", false, err
			}
		}
	}
	breaks := 0
	for {
		b, err := cr.r.ReadByte()
		if err == io.EOF {
			return "", false, &csvSyntaxError{Line: start, Msg: "a quoted field is never closed", File: true}
		}
		if err != nil {
			return "", false, err
		}
		if b != '"' {
			if b == '\n' {
				breaks++
			}
			cr.buf = append(cr.buf, b)
			continue
		}
		next, err := cr.r.ReadByte()
		switch {
		case err == io.EOF:
			cr.line += breaks + 1
			return string(cr.buf), true, nil
		case err != nil:
			return "", false, err
		case next == '"':
			cr.buf = append(cr.buf, '"')
		case next == ',':
			cr.line += breaks
			return string(cr.buf), false, nil
		case next == '\n':
			cr.line += breaks + 1
			return string(cr.buf), true, nil
		case next == '\r':
			if after, err := cr.r.Peek(1); err == nil && after[0] == '\n' {
				_, _ = cr.r.ReadByte()
				cr.line += breaks + 1
				return string(cr.buf), true, nil
			}
			fallthrough
		default:
			cr.line += breaks
			return "", false, &csvSyntaxError{Line: cr.line + 1, Msg: `text after a closing quote (a quote inside a quoted field is written "")`}
		}
	}
}

// skipLine drops the rest of the current line.
func (cr *csvReader) skipLine() {
	for {
		b, err := cr.r.ReadByte()
		if err != nil {
			cr.line++
			return
		}
		if b == '\n' {
			cr.line++
			return
		}
	}
}
