package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
	"github.com/partnerd/partnerd/queries"
)

type createTemplateTermBody struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

type updateTemplateTermBody struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

func (s *Server) createTemplateTerm(c *gin.Context) {
	var body createTemplateTermBody
	if err := decodeJSON(c, &body); err != nil {
		s.writeError(c, err)
		return
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	res, st, err := s.Commands.CreateTemplateTerm.Handle(c.Request.Context(), domain.NewTemplateTerm{
		ProgramID: c.GetString(ctxProgram), ID: body.ID, Name: body.Name, Description: body.Description}, m)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Header("Location", c.Request.URL.Path+"/"+st.ID)
	answerCommand(c, http.StatusCreated, res, projections.TermViewOf(st, res.Version))
}

func (s *Server) updateTemplateTerm(c *gin.Context) {
	var body updateTemplateTermBody
	if err := decodeJSON(c, &body); err != nil {
		s.writeError(c, err)
		return
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	res, st, err := s.Commands.UpdateTemplateTerm.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"),
		domain.TemplateTermPatch{Name: body.Name, Description: body.Description}, m)
	if err != nil {
		s.writeError(c, err)
		return
	}
	answerCommand(c, http.StatusOK, res, projections.TermViewOf(st, res.Version))
}

func (s *Server) archiveTemplateTerm(c *gin.Context) {
	if err := decodeOptionalJSON(c, &struct{}{}); err != nil {
		s.writeError(c, err)
		return
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	res, st, err := s.Commands.ArchiveTemplateTerm.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), m, s.Queries)
	if err != nil {
		s.writeError(c, err)
		return
	}
	answerCommand(c, http.StatusOK, res, projections.TermViewOf(st, res.Version))
}

func (s *Server) getTemplateTerm(c *gin.Context) {
	id := c.Param("id")
	if !domain.ValidEntityID(id) {
		s.writeError(c, domain.ErrNotFound)
		return
	}
	doc, err := s.Queries.GetTemplateTerm(c.Request.Context(), c.GetString(ctxProgram), id)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", doc)
}

func (s *Server) listTemplateTerms(c *gin.Context) {
	limit, cursor, err := idPageParams(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	page, err := s.Queries.ListTemplateTerms(c.Request.Context(), c.GetString(ctxProgram), limit, cursor)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

type groupBody struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type renameGroupBody struct {
	Name *string `json:"name"`
}

func (s *Server) createGroup(c *gin.Context) {
	var body groupBody
	if err := decodeJSON(c, &body); err != nil {
		s.writeError(c, err)
		return
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	res, st, err := s.Commands.CreateGroup.Handle(c.Request.Context(), domain.NewGroup{
		ProgramID: c.GetString(ctxProgram), ID: body.ID, Name: body.Name}, m)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Header("Location", c.Request.URL.Path+"/"+st.ID)
	answerCommand(c, http.StatusCreated, res, projections.GroupViewOf(st, res.Version))
}

func (s *Server) renameGroup(c *gin.Context) {
	var body renameGroupBody
	if err := decodeJSON(c, &body); err != nil {
		s.writeError(c, err)
		return
	}
	if body.Name == nil {
		s.writeError(c, fieldError("name", "is required"))
		return
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	res, st, err := s.Commands.RenameGroup.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), *body.Name, m)
	if err != nil {
		s.writeError(c, err)
		return
	}
	answerCommand(c, http.StatusOK, res, projections.GroupViewOf(st, res.Version))
}

func (s *Server) deleteGroup(c *gin.Context) {
	if err := decodeOptionalJSON(c, &struct{}{}); err != nil {
		s.writeError(c, err)
		return
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	res, err := s.Commands.DeleteGroup.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), m, s.Queries)
	if err != nil {
		s.writeError(c, err)
		return
	}
	answerNoContent(c, res)
}

func (s *Server) getGroup(c *gin.Context) {
	id := c.Param("id")
	if !domain.ValidEntityID(id) {
		s.writeError(c, domain.ErrNotFound)
		return
	}
	doc, err := s.Queries.GetGroup(c.Request.Context(), c.GetString(ctxProgram), id)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", doc)
}

func (s *Server) listGroups(c *gin.Context) {
	limit, cursor, err := idPageParams(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	page, err := s.Queries.ListGroups(c.Request.Context(), c.GetString(ctxProgram), limit, cursor)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

type partnerGroupsBody struct {
	Groups *[]string `json:"groups"`
}

func (s *Server) setPartnerGroups(c *gin.Context) {
	var body partnerGroupsBody
	if err := decodeJSON(c, &body); err != nil {
		s.writeError(c, err)
		return
	}
	if body.Groups == nil {
		s.writeError(c, fieldError("groups", "is required: the whole set of group IDs ([] for none)"))
		return
	}
	m, err := meta(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	res, st, err := s.Commands.SetGroups.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), *body.Groups, m)
	if err != nil {
		s.writeError(c, err)
		return
	}
	answerCommand(c, http.StatusOK, res, projections.ViewOf(st, res.Version))
}

// idPageParams reads limit and a cursor that must be an entity ID.
func idPageParams(c *gin.Context) (int, string, error) {
	limit, cursor, err := pageParams(c)
	if err == nil && cursor != "" && !domain.ValidEntityID(cursor) {
		err = badRequest("cursor is not one this server issued")
	}
	return limit, cursor, err
}

// decodeOptionalJSON is decodeJSON for a command whose body may be left
// out: an empty body leaves v as it is.
func decodeOptionalJSON(c *gin.Context, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxJSONBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return badRequest("reading body: %v", err)
	}
	if strings.TrimSpace(string(body)) == "" {
		return nil
	}
	return decodeJSONBytes(body, v)
}

// answerNoContent answers a command that returns nothing (204), with its
// position and token in the headers only.
func answerNoContent(c *gin.Context, res commands.Result) {
	c.Header("X-Position", res.Position.String())
	c.Header("X-Consistency-Token", queries.ConsistencyToken(res.Stream, res.Version))
	c.Status(http.StatusNoContent)
}
