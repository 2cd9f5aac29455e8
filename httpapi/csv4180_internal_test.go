package httpapi

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The export's CSV writer ends records with CRLF, keeps every value's
// bytes (line breaks too), and quotes exactly the fields encoding/csv quotes.
func TestCSVWriterKeepsValues(t *testing.T) {
	rec := []string{"theta\nNewline", "crlf\r\ninside", "lone\rcr", "a,b", `say "hi"`, " lead", "trail ", "", `\.`, "plain"}
	var b bytes.Buffer
	w := newCSVWriter(&b)
	w.Write(rec)
	w.Write([]string{""}) // one empty cell: a row all the same
	w.Write([]string{"x"})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "\"theta\nNewline\",\"crlf\r\ninside\",\"lone\rcr\",\"a,b\",\"say \"\"hi\"\"\",\" lead\",trail ,,\"\\.\",plain\r\n\"\"\r\nx\r\n"
	if b.String() != want {
		t.Fatalf("got  %q\nwant %q", b.String(), want)
	}
	cr := csv.NewReader(&b)
	cr.FieldsPerRecord = -1
	got, err := cr.ReadAll()
	if err != nil || len(got) != 3 || len(got[1]) != 1 || got[1][0] != "" || got[2][0] != "x" {
		t.Fatalf("read back: %q %v", got, err)
	}
	for i, v := range rec {
		// encoding/csv's reader itself turns a quoted "\r\n" into "\n".
		if want := strings.ReplaceAll(v, "\r\n", "\n"); got[0][i] != want {
			t.Errorf("field %d read back as %q, want %q", i, got[0][i], want)
		}
	}
}

// For any record, the output is encoding/csv's (which writes values
// verbatim without UseCRLF) with the record's LF end turned into CRLF.
func TestCSVWriterMatchesEncodingCSV(t *testing.T) {
	alphabet := []string{"a", "b", " ", ",", "\"", "\r", "\n", "\t", "é", "\\", ".", "\u00a0", ";"}
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 5000; n++ {
		rec := make([]string, 1+r.IntN(4))
		for i := range rec {
			var sb strings.Builder
			for k := r.IntN(6); k > 0; k-- {
				sb.WriteString(alphabet[r.IntN(len(alphabet))])
			}
			rec[i] = sb.String()
		}
		if len(rec) == 1 && rec[0] == "" {
			continue // encoding/csv writes an empty line, which readers skip; see below
		}
		var std, ours bytes.Buffer
		sw := csv.NewWriter(&std)
		_ = sw.Write(rec)
		sw.Flush()
		w := newCSVWriter(&ours)
		w.Write(rec)
		_ = w.Flush()
		want := strings.TrimSuffix(std.String(), "\n") + "\r\n"
		if ours.String() != want {
			t.Fatalf("record %q:\ngot  %q\nwant %q", rec, ours.String(), want)
		}
	}
}

// readAllImport reads CSV the way an import does.
func readAllImport(s string, chunk int) ([][]string, error) {
	cr := newImportReader(&chunkReader{s: s, n: chunk})
	var out [][]string
	for {
		rec, _, _, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, slices.Clone(rec))
	}
}

// chunkReader returns s at most n bytes at a time.
type chunkReader struct {
	s string
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.s)
	c.s = c.s[n:]
	return n, nil
}

// What the export writes, the import reads back byte for byte: LF, CRLF
// and a lone CR inside quoted values too (encoding/csv's reader turned a
// quoted CRLF into LF, so re-uploading an export changed every address or
// description a web form had sent with CRLF line breaks).
func TestCSVExportImportRoundTrip(t *testing.T) {
	alphabet := []string{"a", " ", ",", "\"", "\r", "\n", "\r\n", "é"}
	r := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 3000; n++ {
		var recs [][]string
		var b bytes.Buffer
		w := newCSVWriter(&b)
		cols := 1 + r.IntN(3)
		for k := 1 + r.IntN(4); k > 0; k-- {
			rec := make([]string, cols)
			for i := range rec {
				var sb strings.Builder
				for j := r.IntN(5); j > 0; j-- {
					sb.WriteString(alphabet[r.IntN(len(alphabet))])
				}
				rec[i] = sb.String()
			}
			recs = append(recs, rec)
			w.Write(rec)
		}
		_ = w.Flush()
		for _, chunk := range []int{1, 7, 1 << 20} {
			got, err := readAllImport(b.String(), chunk)
			want := make([][]string, len(recs))
			for k, rec := range recs {
				want[k] = make([]string, len(rec))
				copy(want[k], rec)
			}
			if err != nil || !slices.EqualFunc(got, want, slices.Equal[[]string]) {
				t.Fatalf("chunk %d: %q read back as %q (%v), want %q", chunk, b.String(), got, err, recs)
			}
		}
	}
}

// A record that breaks the quoting rules on its line is an error for that
// record alone (the next line is read on), with the line it starts on and
// the cells before the bad one; a
// quoted field that never ends is an error for the rest of the file.
func TestCSVReaderRowErrors(t *testing.T) {
	in := "id,name\r\n" +
		"a,Widget 5\" Display\r\n" + // line 2: bare quote
		"b,\"two\r\nlines\"\r\n" + // lines 3-4
		"\r\n" + // line 5: blank
		"c,\"closed\"x\r\n" + // line 6: text after the closing quote
		"d,fine\n" + // line 7
		"e,\"never closed\r\nf,g\r\n" // line 8 on
	cr := newImportReader(strings.NewReader(in))
	type step struct {
		rec        string
		start, end int
		err        string
	}
	var got []step
	for {
		rec, start, end, err := cr.Read()
		if err == io.EOF {
			break
		}
		s := step{rec: strings.Join(rec, "|"), start: start, end: end}
		if err != nil {
			s.err = err.Error()
		}
		got = append(got, s)
		var se *csvSyntaxError
		if errors.As(err, &se) && se.File {
			break
		}
	}
	want := []step{
		{rec: "id|name", start: 1, end: 1},
		{rec: "a", start: 2, end: 2, err: `line 2: bare " in an unquoted field (quote the field and double the quote)`},
		{rec: "b|two\r\nlines", start: 3, end: 4},
		{rec: "c", start: 6, end: 6, err: `line 6: text after a closing quote (a quote inside a quoted field is written "")`},
		{rec: "d|fine", start: 7, end: 7},
		{start: 8, end: 7, err: "line 8: a quoted field is never closed"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}
