package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
	"github.com/partnerd/partnerd/queries"
)

// filterValues are the allowed values of the enumerated list filters; the
// other filters take any value (IDs, countries, states, custom values).
var filterValues = map[string][]string{
	"status":             {domain.ContractStatusActive, domain.ContractStatusExpired, domain.ContractStatusSuspended},
	"contract_stage":     contractStageNames(),
	"terms_update":       {projections.TermsUpdatePendingProposal, projections.TermsUpdateRecentlyExpired},
	"relationship_type":  domain.RelationshipTypes,
	"relationship_stage": {domain.RelationshipNew, domain.RelationshipOutreach, domain.RelationshipNegotiating, domain.RelationshipJoined, domain.RelationshipExpired},
	"prospect_stage":     domain.ProspectStages,
	"size":               domain.Sizes,
	"business_model":     domain.BusinessModels,
	"prospecting_source": domain.ProspectingSources,
}

func contractStageNames() []string {
	out := make([]string, len(domain.ContractStages))
	for i, s := range domain.ContractStages {
		out[i] = string(s)
	}
	return out
}

// defaultCSVColumns are the CSV columns when `columns` is not given.
var defaultCSVColumns = []string{"partner_id", "name", "url", "country", "state", "size", "business_model",
	"relationship_type", "contract_status", "relationship_stage", "prospect_stage", "groups", "assigned_to",
	"date_joined", "social_reach"}

// Bounds of the list query: a filter value's bytes, the search's
// characters, the values of one filter and the filters of one query. They
// bound the Redis work one request can ask for.
const (
	maxFilterValue = 256
	// maxCustomFilterValue: a custom field value is up to 1000 characters.
	maxCustomFilterValue = 4000
	maxSearchChars       = 200
	maxFilterValues      = 100
	maxFilters           = 50
)

// partnerListParams parses the list query (filters, q, sort, columns);
// pageKeys are the extra parameters the caller accepts (limit, cursor).
// An unknown parameter or a malformed one is 400; an unknown sort, column
// or enumerated filter value is 422.
func partnerListParams(c *gin.Context, pageKeys ...string) (queries.PartnerListQuery, []string, error) {
	return parseListQuery(c.Request.URL.Query(), pageKeys...)
}

// parseListQuery is partnerListParams over plain values (bulk filters use it).
func parseListQuery(params url.Values, pageKeys ...string) (queries.PartnerListQuery, []string, error) {
	lq := queries.PartnerListQuery{Filters: map[string][]string{}}
	var columns []string
	var fields []domain.FieldError
	bad := func(field, msg string) { fields = append(fields, domain.FieldError{Field: field, Message: msg}) }
	if len(params) > maxFilters {
		return lq, nil, fieldError("filter", "at most 50 different parameters")
	}
	for name, vals := range params {
		if len(vals) > maxFilterValues {
			bad(name, "may be given at most 100 times")
			continue
		}
		switch {
		case slices.Contains(pageKeys, name):
		case name == "q":
			if len(vals) > 1 {
				return lq, nil, badRequest("q may be given once")
			}
			if !queries.ValidSearch(vals[0]) || utf8.RuneCountInString(vals[0]) > maxSearchChars {
				bad("q", "must be text of at most 200 characters without control characters")
			}
			lq.Q = vals[0]
		case name == "sort":
			if len(vals) > 1 {
				return lq, nil, badRequest("sort may be given once")
			}
			s := strings.TrimPrefix(vals[0], "-")
			if !slices.Contains(queries.PartnerSorts, s) {
				bad("sort", "must be one of "+strings.Join(queries.PartnerSorts, ", ")+", with '-' for descending")
			}
			lq.Sort, lq.Desc = s, strings.HasPrefix(vals[0], "-")
		case name == "columns":
			for _, v := range vals {
				for _, col := range strings.Split(v, ",") {
					col = strings.TrimSpace(col)
					if !slices.Contains(queries.PartnerColumns, col) {
						bad("columns", "unknown column "+quoteField(col))
						continue
					}
					if !slices.Contains(columns, col) {
						columns = append(columns, col)
					}
				}
			}
		case strings.HasPrefix(name, "custom."):
			field := strings.TrimPrefix(name, "custom.")
			if field == "" {
				return lq, nil, badRequest("custom. needs a field name, e.g. custom.niche=travel")
			}
			if !domain.ValidEntityID(field) {
				// No partner can hold it (a silent empty page before).
				bad(name, "no partner can have a custom field named "+quoteField(field)+": names are 1-64 of letters, digits, '_', '.', ':', '-'")
			}
			for _, v := range vals {
				// As long as a value a partner may hold (1000 characters).
				if v == "" || len(v) > maxCustomFilterValue {
					bad(name, "must be a value of 1-4000 bytes")
				}
			}
			lq.Filters[name] = vals
		case slices.Contains(projections.PartnerFilters, name):
			allowed := filterValues[name]
			for _, v := range vals {
				switch {
				case allowed != nil && !slices.Contains(allowed, v):
					bad(name, "must be one of "+strings.Join(allowed, ", "))
				case v == "" || len(v) > maxFilterValue:
					bad(name, "must be a value of 1-256 bytes")
				}
			}
			if name == "country" {
				// Partners keep country codes in upper case ("de" is
				// stored as "DE"): a filter matches them in any case. A
				// value no partner can hold (not an ISO 3166-1 alpha-2
				// code) is refused, as a size or stage no partner can
				// have is: a typo must not silently match nobody.
				up := make([]string, len(vals))
				for i, v := range vals {
					up[i] = strings.ToUpper(v)
					if v != "" && !domain.IsCountry(up[i]) {
						bad(name, "must be an ISO 3166-1 alpha-2 code, e.g. DE")
					}
				}
				vals = up
			}
			lq.Filters[name] = vals
		default:
			return lq, nil, badRequest("unknown parameter %s", quoteField(name))
		}
	}
	if len(fields) > 0 {
		return lq, nil, &domain.ValidationError{Fields: fields}
	}
	return lq, columns, nil
}

func quoteField(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return "'" + s + "'"
}

func (s *Server) listPartners(c *gin.Context) {
	limit, cursor, err := pageParams(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	lq, columns, err := partnerListParams(c, "limit", "cursor")
	if err != nil {
		s.writeError(c, err)
		return
	}
	page, err := s.Queries.SearchPartners(c.Request.Context(), c.GetString(ctxProgram), lq, columns, limit, cursor)
	if errors.Is(err, queries.ErrBadCursor) {
		err = badRequest("cursor is not one this server issued for this sort")
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	writeRawPage(c, page)
}

// csvPage is how many partners the export reads per round trip.
const csvPage = 1000

// exportPartners streams the filtered list as RFC 4180 CSV, page by page:
// it never holds more than one page.
func (s *Server) exportPartners(c *gin.Context) {
	lq, columns, err := partnerListParams(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if len(columns) == 0 {
		columns = defaultCSVColumns
	}
	ctx, program := c.Request.Context(), c.GetString(ctxProgram)
	// The first page is read before the status is sent, so a failure
	// there is still a proper problem response.
	var w *csvWriter
	gone := errors.New("the client went away")
	err = s.Queries.ExportPartners(ctx, program, lq, csvPage, func(docs []json.RawMessage) error {
		if w == nil {
			c.Header("Content-Type", "text/csv; charset=utf-8")
			c.Header("Content-Disposition", `attachment; filename="partners.csv"`)
			c.Status(http.StatusOK)
			w = newCSVWriter(c.Writer) // RFC 4180: CRLF record ends, values verbatim
			w.Write(columns)
		}
		for _, doc := range docs {
			rec, err := queries.CSVRecord(doc, columns)
			if err != nil {
				return err
			}
			w.Write(rec)
		}
		if w.Flush() != nil {
			return gone
		}
		c.Writer.Flush()
		return nil
	})
	switch {
	case err == nil || errors.Is(err, gone):
	case w == nil:
		s.writeError(c, err)
	default:
		// The status is sent: cut the body short so the client sees
		// an incomplete transfer rather than a silently short file.
		s.log.Error("partner export failed", "program", program, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// writeRawPage answers a page whose items are JSON documents we stored
// ourselves (json.Marshal output, compact and valid), copying them into the
// body as they are: c.JSON would re-validate and re-compact every byte of
// every item, about a sixth of a list request's CPU.
func writeRawPage(c *gin.Context, page queries.Page[json.RawMessage]) {
	n := 64
	for _, it := range page.Items {
		n += len(it) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"items":[`...)
	for i, it := range page.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	b = append(b, `],"next_cursor":`...)
	if page.NextCursor != nil {
		cur, _ := json.Marshal(*page.NextCursor)
		b = append(b, cur...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, page.Total, 10)
	b = append(b, '}')
	c.Data(http.StatusOK, "application/json; charset=utf-8", b)
}
