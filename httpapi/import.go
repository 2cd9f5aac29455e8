package httpapi

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	"golang.org/x/text/encoding/htmlindex"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/queries"
)

// importWorkers is how many rows an import applies at once; like bulk's
// workers, they let the event store commit concurrent appends together.
const importWorkers = 64

// ImportResult is what happened to one row of a CSV import.
type ImportResult struct {
	// Row is the row's number as a spreadsheet shows it: the header is 1,
	// a blank line counts, a quoted line break does not.
	Row       int    `json:"row"`
	PartnerID string `json:"partner_id"`
	Status    string `json:"status"` // ok, unchanged, error
	// Created: the row created the partner.
	Created bool   `json:"created,omitempty"`
	Error   string `json:"error,omitempty"`
	Code    int    `json:"code,omitempty"`
}

// importJob is one parsed row on its way to a worker.
type importJob struct {
	index int
	row   int
	in    domain.PartnerImport
	err   error // the row could not be read; no command runs
}

// importPartners is the bulk edit by CSV (POST /partners/import). The body
// is spooled to disk (≤ 20 MiB, else 413 and nothing applied), the header
// checked (an unknown column is 422 for the whole upload), then the rows
// are read one at a time and applied by importWorkers workers, each row in
// one append; a bad row never stops the others. Rows of one partner go to
// one worker, in file order. With an Idempotency-Key every row's events
// carry a key derived from it, the body and the row, so a retry after a
// crash applies only the rows the first attempt did not.
func (s *Server) importPartners(c *gin.Context) {
	if ct := c.ContentType(); !strings.EqualFold(ct, "text/csv") { // media types ignore case (RFC 9110 §8.3.1)
		writeProblem(c, Problem{Type: "urn:partnerd:problem:unsupported-media-type", Title: "Unsupported Media Type",
			Status: http.StatusUnsupportedMediaType, Detail: "the body must be text/csv (RFC 4180) with a header row"})
		return
	}
	decode, err := csvCharset(c.GetHeader("Content-Type"))
	if err != nil {
		writeProblem(c, Problem{Type: "urn:partnerd:problem:unsupported-media-type", Title: "Unsupported Media Type",
			Status: http.StatusUnsupportedMediaType, Detail: err.Error()})
		return
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if m.IfMatch != nil {
		s.writeError(c, badRequest("If-Match does not apply to an import"))
		return
	}
	body, err := spool(c, maxCSVBody)
	if err != nil {
		s.writeError(c, err)
		return
	}
	defer body.Close()
	// First pass: the header, and the number of rows, before anything is applied.
	plan, rows, err := scanImport(decode(body))
	if err != nil {
		s.writeError(c, err)
		return
	}
	if _, err := body.f.Seek(0, io.SeekStart); err != nil {
		s.writeError(c, err)
		return
	}
	program := c.GetString(ctxProgram)
	rowKey := func(int) string { return "" }
	if m.IdempotencyKey != "" {
		sum := sha256.Sum256([]byte(m.IdempotencyKey + "\n" + body.Fingerprint))
		prefix := "import:" + hex.EncodeToString(sum[:12]) + ":row:"
		rowKey = func(row int) string { return prefix + strconv.Itoa(row) }
		m.Once = true
	}
	results := make([]ImportResult, rows)
	var mu sync.Mutex
	var last eventstore.Position
	writes := queries.Writes{}
	groups := commands.NewGroupCache()
	// The body is all here: the import runs to its end even if the client
	// goes away, so that the answer saved for its Idempotency-Key tells
	// every row's outcome (a cancelled context made the rest "500" rows,
	// replayed as such forever) and an import without a key is not cut off
	// at a random row.
	ctx := context.WithoutCancel(c.Request.Context())
	queues := make([]chan importJob, importWorkers)
	var wg sync.WaitGroup
	for w := range queues {
		queues[w] = make(chan importJob, 64)
		wg.Add(1)
		go func(jobs <-chan importJob) {
			defer wg.Done()
			for j := range jobs {
				r := s.importRow(ctx, program, j, groups, m, rowKey(j.row))
				mu.Lock()
				results[j.index] = r.ImportResult
				if r.res.Appended > 0 {
					last = max(last, r.res.Position)
				}
				writes.Add(r.res.Stream, r.res.Version)
				mu.Unlock()
			}
		}(queues[w])
	}
	readErr := readImportRows(decode(body), plan, rows, func(j importJob) {
		j.in.ProgramID = program
		w := j.index % importWorkers
		if j.in.PartnerID != "" {
			h := fnv.New32a()
			h.Write([]byte(j.in.PartnerID))
			w = int(h.Sum32() % importWorkers)
		} else if m.IdempotencyKey != "" && j.err == nil {
			// A new partner without an ID gets one derived from the row's key,
			// so that a retry finds the partner it created.
			sum := sha256.Sum256([]byte(rowKey(j.row)))
			j.in.PartnerID = "p_" + strings.ToLower(hex.EncodeToString(sum[:6]))
		}
		queues[w] <- j
	})
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if readErr != nil { // the file changed under us: it is ours alone, so this is an I/O failure
		s.writeError(c, readErr)
		return
	}
	if slices.ContainsFunc(results, func(r ImportResult) bool { return r.Code >= 500 }) {
		c.Set(ctxIdemRetry, true)
	}
	tok := s.token(c, writes)
	c.Header("X-Position", last.String())
	c.JSON(http.StatusOK, gin.H{"results": results, "position": last.String(), "consistency_token": tok,
		"ignored_columns": nonNil(plan.Ignored)})
}

type rowOutcome struct {
	ImportResult
	res commands.Result
}

// importRow applies one row and says what happened, as bulk does.
func (s *Server) importRow(ctx context.Context, program string, j importJob, groups *commands.GroupCache, m commands.Meta, key string) rowOutcome {
	out := rowOutcome{ImportResult: ImportResult{Row: j.row, PartnerID: j.in.PartnerID, Status: "ok"}}
	err := j.err
	if err == nil {
		m.IdempotencyKey = key
		m.IfMatch = j.in.IfVersion
		var r commands.ImportResult
		r, err = s.Commands.ImportPartner.Handle(ctx, j.in, groups, m)
		out.PartnerID, out.res, out.Created = r.PartnerID, r.Result, r.Created
		if err == nil && r.Appended == 0 && !r.AlreadyApplied {
			out.Status = "unchanged"
		}
	}
	if err != nil {
		p := classify(err)
		out.Status, out.Code, out.Error, out.Created = "error", p.Status, bulkError(p), false
		if p.Status == http.StatusInternalServerError {
			s.log.Error("import failed for a row", "program", program, "row", j.row, "request_id", m.CorrelationID, "err", err)
		}
	}
	return out
}

// newImportReader reads CSV strictly (RFC 4180 quoting; CRLF or LF line
// ends; see csvReader), after a UTF-8 byte order mark if there is one;
// rows may differ in length (checked per row).
func newImportReader(r io.Reader) *csvReader {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	return newCSVReader(br)
}

// scanImport checks the header and counts the rows; a header that breaks
// the CSV rules, a quoted field that never ends or too many rows refuse
// the file whole (422). A row that breaks them on its own line is counted:
// it gets its own error and the others are applied.
func scanImport(r io.Reader) (*importPlan, int, error) {
	cr := newImportReader(r)
	header, _, _, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, 0, fieldError("body", "is empty: a header row of column names is required")
	}
	if err != nil {
		return nil, 0, csvError(err)
	}
	plan, err := parseImportHeader(header)
	if err != nil {
		return nil, 0, err
	}
	rows := 0
	for {
		_, _, _, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return plan, rows, nil
		}
		if _, ok := rowError(err); err != nil && !ok {
			return nil, 0, csvError(err)
		}
		if rows++; rows > maxImportRows {
			return nil, 0, fieldError("body", "holds more than "+strconv.Itoa(maxImportRows)+" rows; split the file")
		}
	}
}

// readImportRows reads the rows again (scanImport checked them) and hands
// each, parsed, to emit; a row the reader could not read carries its error.
//
// A row's number is the one a spreadsheet shows: the header is row 1, a
// record spanning lines (a quoted line break) is one row, and a blank line,
// which the reader skips, still counts as a row.
func readImportRows(r io.Reader, plan *importPlan, rows int, emit func(importJob)) error {
	cr := newImportReader(r)
	_, _, end, err := cr.Read()
	if err != nil {
		return err
	}
	row := 1
	for i := 0; i < rows; i++ {
		rec, start, last, err := cr.Read()
		re, bad := rowError(err)
		if err != nil && !bad {
			return err
		}
		row += 1 + max(0, start-end-1) // the blank lines since the last record
		end = last
		if bad {
			emit(importJob{index: i, row: row, in: domain.PartnerImport{PartnerID: plan.partnerIDOf(rec)},
				err: fieldError("row", "is not RFC 4180 CSV: "+re.Msg)})
			continue
		}
		in, err := plan.row(rec)
		emit(importJob{index: i, row: row, in: in, err: err})
	}
	return nil
}

// csvError turns a CSV syntax error into a 422 naming its line.
func csvError(err error) error {
	var se *csvSyntaxError
	if errors.As(err, &se) {
		return fieldError("body", "is not RFC 4180 CSV: "+se.Error())
	}
	return badRequest("reading body: %v", err)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// csvCharset reads the charset of an import's Content-Type: UTF-8 (also
// when none is given, and US-ASCII, its subset) is read as it is; another
// one a browser knows (WHATWG labels: windows-1252, which ISO-8859-1 means
// there too, Shift_JIS…) is decoded to UTF-8 as it is read, as a
// spreadsheet saving "CSV" in a legacy code page sends it. Any other
// charset is refused rather than read as UTF-8.
func csvCharset(contentType string) (func(io.Reader) io.Reader, error) {
	asIs := func(r io.Reader) io.Reader { return r }
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("Content-Type %q does not parse: %v", contentType, err)
	}
	cs := strings.ToLower(strings.TrimSpace(params["charset"]))
	switch cs {
	case "", "utf-8", "utf8", "us-ascii":
		return asIs, nil
	}
	enc, err := htmlindex.Get(cs)
	if err != nil {
		return nil, fmt.Errorf("charset %q is not one this server reads: send UTF-8 (or a charset such as windows-1252)", cs)
	}
	if name, _ := htmlindex.Name(enc); name == "utf-8" {
		return asIs, nil
	}
	return func(r io.Reader) io.Reader { return enc.NewDecoder().Reader(r) }, nil
}
