package httpapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
)

// noBody is the body type of commands that take none (an empty body, or
// an empty JSON object, is accepted).
type noBody struct{}

func (*noBody) optionalBody() {}

// optionalBody marks a body type that may be left out (an empty body
// leaves it at its zero value).
type optionalBody interface{ optionalBody() }

// write runs the shape every command handler shares: decode the body into
// B (strictly), build the metadata, run the command, then answer the
// resource with the command's position and consistency token (or, for
// 204, the headers alone), or map the error.
func write[B any](s *Server, c *gin.Context, status int, run func(body *B, m commands.Meta) (commands.Result, any, error)) {
	var body B
	decode := decodeJSON
	if _, optional := any(&body).(optionalBody); optional {
		decode = decodeOptionalJSON
	}
	if err := decode(c, &body); err != nil {
		s.writeError(c, err)
		return
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	res, resource, err := run(&body, m)
	if err == nil {
		err = s.foldProcess(c, &res)
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	if status == http.StatusNoContent {
		answerNoContent(c, res)
		return
	}
	answerCommand(c, status, res, resource)
}

// readDoc answers one read-model document found by the route's :id.
func (s *Server) readDoc(c *gin.Context, get func(ctx context.Context, program, id string) (json.RawMessage, error)) {
	id := c.Param("id")
	if !domain.ValidEntityID(id) {
		s.writeError(c, domain.ErrNotFound)
		return
	}
	doc, err := get(c.Request.Context(), c.GetString(ctxProgram), id)
	if err != nil {
		s.writeError(c, err)
		return
	}
	// The version a client passes back in If-Match, as command answers
	// give it.
	var v struct {
		Version *uint64 `json:"version"`
	}
	if json.Unmarshal(doc, &v) == nil && v.Version != nil {
		c.Header("ETag", etag(*v.Version))
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", doc)
}

// idPage answers one page of a list ordered by ID (limit, cursor = last ID).
func idPage[T any](s *Server, c *gin.Context, list func(ctx context.Context, program string, limit int, cursor string) (T, error)) {
	limit, cursor, err := idPageParams(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	page, err := list(c.Request.Context(), c.GetString(ctxProgram), limit, cursor)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}
