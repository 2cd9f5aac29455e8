package httpapi

import (
	"bytes"
	"encoding/csv"
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
	cr.ReuseRecord = false
	return cr.ReadAll()
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

// What the export writes, the import reads back: LF and a lone CR inside
// quoted values byte for byte; a quoted CRLF as LF (encoding/csv's reader
// normalizes line ends, so that files written with CRLF throughout, by
// Windows tools or encoding/csv's UseCRLF, import with LF line breaks).
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
				for i, v := range rec {
					want[k][i] = strings.ReplaceAll(v, "\r\n", "\n")
				}
			}
			if err != nil || !slices.EqualFunc(got, want, slices.Equal[[]string]) {
				t.Fatalf("chunk %d: %q read back as %q (%v), want %q", chunk, b.String(), got, err, recs)
			}
		}
	}
}
