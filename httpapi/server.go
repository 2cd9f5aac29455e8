package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/queries"
)

// Context keys set by middleware.
const (
	ctxRequestID = "request_id"
	ctxProgram   = "program"
	ctxActor     = "actor"
	// ctxIdemBody, when a handler sets it ([]byte), is the answer the
	// idempotency layer keeps for replays instead of the one sent: the
	// answer without a secret shown once.
	ctxIdemBody = "idempotency_body"
	// ctxIdemOnce is the key a keyed request's events carry: the client's
	// Idempotency-Key and its body's fingerprint (see meta).
	ctxIdemOnce = "idempotency_once"
	// ctxIdemRetry, when a handler sets it, keeps the idempotency layer
	// from saving a 2xx answer: some of its items failed on the server's
	// side (a per-row or per-partner 500), and a retry must run them again
	// (their events' Once keys skip the items that did apply) rather than
	// replay those failures forever.
	ctxIdemRetry = "idempotency_retry"
	// ctxToken, when set, is the consistency token of a command that wrote
	// more than its own stream (see foldProcess).
	ctxToken = "consistency_token"
)

// Check is one readiness probe.
type Check struct {
	Name string
	Err  error
}

// ProjectionStatus is one projection's progress, for GET /v1/projections.
type ProjectionStatus struct {
	Name       string         `json:"name"`
	Generation int64          `json:"generation"`
	Checkpoint string         `json:"checkpoint"`
	Head       string         `json:"head"`
	LagEvents  uint64         `json:"lag_events"`
	LagSeconds float64        `json:"lag_seconds"` // age of the oldest event not applied yet
	Applied    uint64         `json:"applied"`
	Rebuild    *RebuildStatus `json:"rebuild,omitempty"`
}

// RebuildStatus is the progress of the last rebuild this process ran.
type RebuildStatus struct {
	Running bool   `json:"running"`
	Done    string `json:"done"`  // log position replayed so far
	Total   string `json:"total"` // log head when the replay started
	// Progress is done/total as a share (0 to 1).
	Progress float64 `json:"progress"`
	// Events applied to the new generation, and their rate.
	Events          uint64  `json:"events"`
	EventsPerSecond float64 `json:"events_per_second"`
	Error           string  `json:"error,omitempty"`
}

// ErrUnknownProjection: no projection has that name (404).
var ErrUnknownProjection = errors.New("no such projection")

// Deps are the server's collaborators.
type Deps struct {
	Commands *commands.Commands
	Queries  *queries.Queries
	// Redis holds idempotency records (unless Idempotency is set) and
	// rate-limit state.
	Redis redis.UniversalClient
	// Idempotency keeps idempotency records instead of Redis (optional):
	// with the embedded Redis, which starts empty, they live on disk.
	Idempotency IdempotencyStore
	// Ready runs the readiness checks.
	Ready func(ctx context.Context) []Check
	// Projections reports projection progress.
	Projections func(ctx context.Context) []ProjectionStatus
	// Rebuild starts rebuilding a projection in the background.
	Rebuild func(name string) error
	// Recovering reports that the read models are being rebuilt because
	// Redis lost them: an unknown API key may then be a valid one not
	// rebuilt yet, so it is a 503, not a 401 (optional).
	Recovering func(ctx context.Context) bool
	// Building reports that the read models are incomplete: being built at
	// start, or rebuilt after Redis lost them. Queries of read models then
	// answer 503 rather than a partial list (optional; it must be cheap:
	// it runs on every query).
	Building func(ctx context.Context) bool
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// RateLimit is each API key's token bucket; zero means no limit.
	RateLimit RateLimit
	// Hub fans projected activities out to GET /activities/stream.
	Hub *queries.ActivityHub
	// StreamBuffer is how many activities a live stream may fall behind
	// before it is dropped (default 8192; keep it well above the hub's read chunk).
	StreamBuffer int
}

// Server is the HTTP API.
type Server struct {
	Deps
	limiters *keyLimiters
	log      *slog.Logger
	engine   *gin.Engine
	reqDur   *prometheus.HistogramVec
	// closing ends the endless responses (activity streams) when the
	// HTTP server shuts down, which otherwise waits for them until its
	// grace period runs out.
	closing   chan struct{}
	closeOnce sync.Once
}

// CloseStreams ends every open activity stream (clients reconnect with
// Last-Event-ID); pass it to http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() { s.closeOnce.Do(func() { close(s.closing) }) }

// New builds the server and its routes.
func New(d Deps) *Server {
	gin.SetMode(gin.ReleaseMode)
	s := &Server{Deps: d, log: d.Logger, engine: gin.New(), limiters: newKeyLimiters(d.RateLimit), closing: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.Registry == nil {
		s.Registry = prometheus.NewRegistry()
	}
	if s.Idempotency == nil {
		s.Idempotency = RedisIdempotency{Client: s.Redis}
	}
	s.reqDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "partnerd_http_request_duration_seconds", Help: "HTTP requests by route, method and status.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "method", "status"})
	s.Registry.MustRegister(s.reqDur)
	s.routes()
	return s
}

// Handler is the http.Handler to serve.
func (s *Server) Handler() http.Handler { return s.engine }

// Routes lists method and path of every route (for the OpenAPI check and
// the isolation test).
func (s *Server) Routes() gin.RoutesInfo { return s.engine.Routes() }

func (s *Server) routes() {
	e := s.engine
	e.HandleMethodNotAllowed = true
	e.Use(s.recoverer, s.requestID, s.metrics, s.strictQuery)
	e.NoRoute(func(c *gin.Context) {
		writeProblem(c, Problem{Type: "urn:partnerd:problem:not-found", Title: "Not Found", Status: 404, Detail: "no such route"})
	})
	e.NoMethod(func(c *gin.Context) {
		writeProblem(c, Problem{Type: "urn:partnerd:problem:method-not-allowed", Title: "Method Not Allowed", Status: 405, Detail: "method not allowed on this route"})
	})

	e.GET("/healthz", func(c *gin.Context) { c.JSON(200, gin.H{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{})))
	e.GET("/openapi.json", s.openapi)
	e.GET("/v1/projections", s.authAny, s.projections)
	e.POST("/v1/projections/:name/rebuild", s.authAny, s.rebuild)

	p := e.Group("/v1/programs/:program", s.auth, s.consistency, s.idempotency)
	p.POST("/partners", s.createPartner)
	p.POST("/bulk/:action", s.bulk)
	p.POST("/partners/import", s.importPartners)
	p.GET("/partners", s.listPartners)
	p.GET("/partners.csv", s.exportPartners)
	p.GET("/partners/:id", s.getPartner)
	p.PATCH("/partners/:id", s.updatePartner)
	p.POST("/partners/:id/contract/:action", s.moveContract)
	p.PUT("/partners/:id/groups", s.setPartnerGroups)
	p.PUT("/partners/:id/assigned-to", s.assignPartner)
	p.POST("/partners/:id/deactivate", s.deactivatePartner)
	p.PUT("/partners/:id/prospect-stage", s.setProspectStage)
	p.POST("/partners/:id/notes", s.addNote)
	p.GET("/partners/:id/notes", s.listNotes)
	p.PUT("/partners/:id/settings/:kind", s.changeSettings)
	p.POST("/partners/:id/links", s.linkAccounts)
	p.DELETE("/partners/:id/links/:other", s.unlinkAccounts)
	p.POST("/partners/:id/messages", s.sendMessage)
	p.POST("/partners/:id/invites", s.invitePartner)
	p.POST("/partners/:id/access-link", s.issueAccessLink)
	p.POST("/access-links/redeem", s.redeemAccessLink)
	p.POST("/template-terms", s.createTemplateTerm)
	p.GET("/template-terms", s.listTemplateTerms)
	p.GET("/template-terms/:id", s.getTemplateTerm)
	p.PATCH("/template-terms/:id", s.updateTemplateTerm)
	p.POST("/template-terms/:id/archive", s.archiveTemplateTerm)
	p.POST("/groups", s.createGroup)
	p.GET("/groups", s.listGroups)
	p.GET("/groups/:id", s.getGroup)
	p.PATCH("/groups/:id", s.renameGroup)
	p.DELETE("/groups/:id", s.deleteGroup)
	p.POST("/credentials", s.createCredential)
	p.GET("/credentials", s.listCredentials)
	p.GET("/credentials/:id", s.getCredential)
	p.POST("/credentials/:id/rotate", s.rotateCredential)
	p.DELETE("/credentials/:id", s.deleteCredential)
	p.POST("/connections", s.createConnection)
	p.GET("/connections", s.listConnections)
	p.GET("/connections/:id", s.getConnection)
	p.PATCH("/connections/:id", s.updateConnection)
	p.DELETE("/connections/:id", s.deleteConnection)
	p.POST("/connections/:id/check-email", s.checkEmail)
	s.historyRoutes(p)
	p.POST("/segments", s.createSegment)
	p.POST("/segments/preview", s.previewSegment)
	p.GET("/segments", s.listSegments)
	p.GET("/segments/:id", s.getSegment)
	p.PUT("/segments/:id", s.updateSegment)
	p.DELETE("/segments/:id", s.deleteSegment)
	p.GET("/segments/:id/members", s.segmentMembers)
	p.POST("/activities", s.recordActivities)
	p.GET("/activities", s.listActivities)
	p.GET("/activities/stream", s.streamActivities)
}

// strictQuery refuses a query string that does not parse (a broken
// %-escape, a ';' separator) with 400. Go's parser drops such a pair and
// gin reads what is left, so "q=%" would have listed every partner: a
// broken filter must fail, not widen the result.
//
// It also refuses, on the API's routes, a parameter the route's operation
// in openapi.json does not declare (see declaredParams).
func (s *Server) strictQuery(c *gin.Context) {
	q, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		s.writeError(c, badRequest("the query string is malformed: %v", err))
		return
	}
	if route := c.FullPath(); strings.HasPrefix(route, "/v1/") && len(q) > 0 { // not probes and scrapers
		if err := unknownParam(c.Request.Method, route, q); err != nil {
			s.writeError(c, err)
			return
		}
	}
	c.Next()
}

func (s *Server) recoverer(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error("panic in handler", "path", c.FullPath(), "panic", r)
			writeProblem(c, Problem{Type: "about:blank", Title: "Internal Server Error", Status: 500, Detail: "an unexpected error occurred; it was logged"})
		}
	}()
	c.Next()
}

func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-ID")
	if id == "" || len(id) > 200 || !printable(id) {
		id = uuid.NewString()
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-ID", id)
	c.Next()
}

func (s *Server) metrics(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	s.reqDur.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Observe(time.Since(start).Seconds())
}

func bearer(c *gin.Context) string {
	h := c.GetHeader("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(h[7:])
}

// keyProgram resolves the request's API key to its program. The key is
// never compared as such: it is hashed (SHA-256) and the hash looked up,
// so the time a lookup takes tells nothing about how much of a guessed key
// was right; auth compares the program with the path's in constant time.
// The key itself is never logged or stored.
func (s *Server) keyProgram(c *gin.Context) (program, keyHash string, err error) {
	key := bearer(c)
	if key == "" || len(key) > 512 {
		return "", "", errUnauthorized
	}
	keyHash = commands.HashAPIKey(key)
	program, err = s.Queries.ProgramOfKey(c.Request.Context(), keyHash)
	if err != nil {
		return "", "", err
	}
	if program == "" {
		if s.Recovering != nil && s.Recovering(c.Request.Context()) {
			return "", "", errRecovering
		}
		return "", "", errUnauthorized
	}
	return program, keyHash, nil
}

// auth: a valid key of the path's program. A key of another program gets
// 404, exactly like a program that does not exist.
func (s *Server) auth(c *gin.Context) {
	program, keyHash, err := s.keyProgram(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if s.rateLimited(c, keyHash) {
		return
	}
	if subtle.ConstantTimeCompare([]byte(program), []byte(c.Param("program"))) != 1 {
		writeProblem(c, Problem{Type: "urn:partnerd:problem:not-found", Title: "Not Found", Status: 404, Detail: "no such program"})
		return
	}
	c.Set(ctxProgram, program)
	actor := "apikey:" + keyHash[:12]
	if a := strings.TrimSpace(c.GetHeader("X-Actor")); a != "" {
		if len(a) > 200 || !printable(a) {
			s.writeError(c, fieldError("X-Actor", "must be at most 200 printable characters"))
			return
		}
		if strings.Contains(a, " via ") {
			// The actor reads "user:<X-Actor> via apikey:<hash>": a value
			// with its own " via " would pass for another key's user.
			s.writeError(c, fieldError("X-Actor", `must not contain " via " (the actor is recorded as "user:<X-Actor> via apikey:…")`))
			return
		}
		actor = "user:" + a + " via " + actor
	}
	c.Set(ctxActor, actor)
	c.Next()
}

// printable reports whether a header value is UTF-8 without control characters.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

func (s *Server) authAny(c *gin.Context) {
	_, keyHash, err := s.keyProgram(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if s.rateLimited(c, keyHash) {
		return
	}
	c.Next()
}

// token sets X-Consistency-Token to one token covering every write of the
// request and returns it ("" when nothing was written). A token that could
// not be recorded (Redis failing right after the writes were committed)
// is left out rather than failing an answer whose writes are durable.
func (s *Server) token(c *gin.Context, w queries.Writes) string {
	tok, err := s.Queries.Token(c.Request.Context(), c.GetString(ctxProgram), w)
	if err != nil {
		s.log.Warn("answering without a consistency token", "request_id", c.GetString(ctxRequestID), "err", err)
		return ""
	}
	if tok != "" {
		c.Header("X-Consistency-Token", tok)
	}
	return tok
}

// consistency makes a query with X-Consistency-Token wait for its write: a
// GET, or POST /segments/preview (a query with a body). The queries of
// the segments read model wait for its projection (WaitForSegments).
//
// It also answers 503 to a query of the read models while they are being
// built (Deps.Building): a list, a partner, members or a bulk action's
// filter must not see half a rebuild. Histories and notes read the log
// and are answered meanwhile.
func (s *Server) consistency(c *gin.Context) {
	tok := c.GetHeader("X-Consistency-Token")
	preview := c.Request.Method == http.MethodPost && c.FullPath() == segmentPreviewRoute
	readsModels := (c.Request.Method == http.MethodGet || preview || c.FullPath() == bulkRoute) &&
		!strings.HasSuffix(c.FullPath(), "/history") && !strings.HasSuffix(c.FullPath(), "/notes")
	if readsModels && s.Building != nil && s.Building(c.Request.Context()) {
		s.writeError(c, errBuilding)
		return
	}
	if tok == "" || (c.Request.Method != http.MethodGet && !preview) {
		c.Next()
		return
	}
	wait := s.Queries.WaitFor
	if preview || c.FullPath() == segmentMembersRoute || c.FullPath() == membershipHistory {
		wait = s.Queries.WaitForSegments
	}
	if err := wait(c.Request.Context(), c.GetString(ctxProgram), tok); err != nil {
		s.writeError(c, err)
		return
	}
	c.Next()
}

// meta builds command metadata from the request.
func meta(c *gin.Context) (commands.Meta, error) {
	m := commands.Meta{Actor: c.GetString(ctxActor), CorrelationID: c.GetString(ctxRequestID),
		CausationID: c.GetHeader("X-Causation-ID"), IdempotencyKey: c.GetHeader("Idempotency-Key")}
	// A keyed request's events carry its key and body fingerprint, and the
	// command is not decided again where its stream already holds them: a
	// retry after a crash that came between the append and the saving of
	// the answer applies nothing twice (and finds the partner its first
	// attempt created, whose ID is derived from the key).
	if once := c.GetString(ctxIdemOnce); once != "" {
		m.IdempotencyKey, m.Once = once, true
	}
	if len(m.CausationID) > 200 {
		return m, fieldError("X-Causation-ID", "must be at most 200 characters")
	}
	// "If-Match: *" (RFC 9110: any current version) sets no version: every
	// command on an existing resource already requires it to exist.
	if im := strings.TrimSpace(c.GetHeader("If-Match")); im != "" && im != "*" {
		// The version bare (API.md) or as an entity tag, "3". A weak tag
		// (W/"3") never matches under If-Match's strong comparison (RFC 9110
		// §13.1.1): refused rather than taken as a match. Trim let "3W"
		// and "\"3" through.
		num := im
		if len(im) >= 2 && im[0] == '"' && im[len(im)-1] == '"' {
			num = im[1 : len(im)-1]
		}
		v, err := strconv.ParseUint(num, 10, 64)
		if err != nil { // ParseUint takes no sign and no empty string
			return m, badRequest("If-Match must be a resource version number (3 or \"3\"; weak tags never match), got %q", im)
		}
		m.IfMatch = &v
	}
	return m, nil
}

// answerCommand writes a command's resource with its position and token.
func answerCommand(c *gin.Context, status int, res commands.Result, resource any) {
	tok := tokenOf(c, res)
	c.Header("X-Position", res.Position.String())
	c.Header("X-Consistency-Token", tok)
	c.Header("ETag", etag(res.Version))
	// Rendered here rather than by c.JSON, which would validate and
	// compact withPosition's MarshalJSON output once more.
	body, err := withPosition{Resource: resource, Position: res.Position.String(), ConsistencyToken: tok}.MarshalJSON()
	if err != nil {
		_ = c.Error(err)
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	c.Data(status, "application/json; charset=utf-8", body)
}

// etag renders a resource version as an entity tag: the version, quoted
// (RFC 9110 8.8.3); If-Match takes it quoted or bare.
func etag(version uint64) string { return `"` + strconv.FormatUint(version, 10) + `"` }

// tokenOf is the consistency token answered for res: its stream's, or
// the one foldProcess made for the request.
func tokenOf(c *gin.Context, res commands.Result) string {
	if tok := c.GetString(ctxToken); tok != "" {
		return tok
	}
	return queries.ConsistencyToken(res.Stream, res.Version)
}

// foldProcess makes the answer of a command that also ran a process
// (res.Process) cover the process's writes too: its position becomes the
// last write's, and its consistency token one that waits for every stream
// written (a batch token), so a read passing it sees, say, a deleted group
// gone from every partner it was on.
func (s *Server) foldProcess(c *gin.Context, res *commands.Result) error {
	if len(res.Process) == 0 {
		return nil
	}
	w := queries.Writes{}
	w.Add(res.Stream, res.Version)
	for _, p := range res.Process {
		w.Add(p.Stream, p.Version)
		res.Position = max(res.Position, p.Position)
	}
	tok, err := s.Queries.Token(c.Request.Context(), c.GetString(ctxProgram), w)
	if err != nil {
		return fmt.Errorf("consistency token: %w", err)
	}
	c.Set(ctxToken, tok)
	return nil
}

// keepForReplay hands the idempotency layer the answer to keep and replay
// for this request instead of the one sent: resource as answerCommand
// renders it, without what is shown once (a password, a token).
func keepForReplay(c *gin.Context, res commands.Result, resource any) {
	body, err := json.Marshal(withPosition{Resource: resource, Position: res.Position.String(),
		ConsistencyToken: tokenOf(c, res)})
	if err == nil {
		c.Set(ctxIdemBody, body)
	}
}

// withPosition flattens a resource and the command's position into one object.
type withPosition struct {
	Resource         any
	Position         string
	ConsistencyToken string
}

// MarshalJSON implements json.Marshaler.
func (w withPosition) MarshalJSON() ([]byte, error) {
	return mergeJSON(w.Resource, map[string]string{"position": w.Position, "consistency_token": w.ConsistencyToken})
}
