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
	write(s, c, http.StatusCreated, func(body *createTemplateTermBody, m commands.Meta) (commands.Result, any, error) {
		res, st, err := s.Commands.CreateTemplateTerm.Handle(c.Request.Context(), domain.NewTemplateTerm{
			ProgramID: c.GetString(ctxProgram), ID: body.ID, Name: body.Name, Description: body.Description}, m)
		if err == nil {
			c.Header("Location", c.Request.URL.Path+"/"+st.ID)
		}
		return res, projections.TermViewOf(st, res.Version), err
	})
}

func (s *Server) updateTemplateTerm(c *gin.Context) {
	write(s, c, http.StatusOK, func(body *updateTemplateTermBody, m commands.Meta) (commands.Result, any, error) {
		res, st, err := s.Commands.UpdateTemplateTerm.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"),
			domain.TemplateTermPatch{Name: body.Name, Description: body.Description}, m)
		return res, projections.TermViewOf(st, res.Version), err
	})
}

func (s *Server) archiveTemplateTerm(c *gin.Context) {
	write(s, c, http.StatusOK, func(_ *noBody, m commands.Meta) (commands.Result, any, error) {
		res, st, err := s.Commands.ArchiveTemplateTerm.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), m, s.Queries)
		return res, projections.TermViewOf(st, res.Version), err
	})
}

func (s *Server) getTemplateTerm(c *gin.Context) {
	asOfOr(s, c, func(c *gin.Context, program, id string, at queries.AsOf) (projections.TemplateTermView, error) {
		return s.Queries.TemplateTermAsOf(c.Request.Context(), program, id, at)
	}, func(c *gin.Context) { s.readDoc(c, s.Queries.GetTemplateTerm) })
}

func (s *Server) listTemplateTerms(c *gin.Context) { idPage(s, c, s.Queries.ListTemplateTerms) }

type groupBody struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type renameGroupBody struct {
	Name *string `json:"name"`
}

func (s *Server) createGroup(c *gin.Context) {
	write(s, c, http.StatusCreated, func(body *groupBody, m commands.Meta) (commands.Result, any, error) {
		res, st, err := s.Commands.CreateGroup.Handle(c.Request.Context(), domain.NewGroup{
			ProgramID: c.GetString(ctxProgram), ID: body.ID, Name: body.Name}, m)
		if err == nil {
			c.Header("Location", c.Request.URL.Path+"/"+st.ID)
		}
		return res, projections.GroupViewOf(st, res.Version), err
	})
}

func (s *Server) renameGroup(c *gin.Context) {
	write(s, c, http.StatusOK, func(body *renameGroupBody, m commands.Meta) (commands.Result, any, error) {
		if body.Name == nil {
			return commands.Result{}, nil, fieldError("name", "is required")
		}
		res, st, err := s.Commands.RenameGroup.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), *body.Name, m)
		return res, projections.GroupViewOf(st, res.Version), err
	})
}

func (s *Server) deleteGroup(c *gin.Context) {
	write(s, c, http.StatusNoContent, func(_ *noBody, m commands.Meta) (commands.Result, any, error) {
		res, err := s.Commands.DeleteGroup.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), m, s.Queries)
		return res, nil, err
	})
}

func (s *Server) getGroup(c *gin.Context) {
	asOfOr(s, c, func(c *gin.Context, program, id string, at queries.AsOf) (projections.GroupView, error) {
		return s.Queries.GroupAsOf(c.Request.Context(), program, id, at)
	}, func(c *gin.Context) { s.readDoc(c, s.Queries.GetGroup) })
}

func (s *Server) listGroups(c *gin.Context) { idPage(s, c, s.Queries.ListGroups) }

type partnerGroupsBody struct {
	Groups *[]string `json:"groups"`
}

func (s *Server) setPartnerGroups(c *gin.Context) {
	write(s, c, http.StatusOK, func(body *partnerGroupsBody, m commands.Meta) (commands.Result, any, error) {
		if body.Groups == nil {
			return commands.Result{}, nil, fieldError("groups", "is required: the whole set of group IDs ([] for none)")
		}
		res, st, err := s.Commands.SetGroups.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), *body.Groups, m)
		return res, projections.ViewOf(st, res.Version), err
	})
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
	c.Header("X-Consistency-Token", tokenOf(c, res))
	c.Status(http.StatusNoContent)
}
