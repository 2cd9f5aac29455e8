package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
)

type createCredentialBody struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	PublicKey string `json:"public_key"`
}

// rotateCredentialBody may be left out: a password credential needs none.
type rotateCredentialBody struct {
	PublicKey string `json:"public_key"`
}

func (*rotateCredentialBody) optionalBody() {}

// credentialWithSecret is a credential answer that shows a generated
// password: the create and rotate answers, and only them.
type credentialWithSecret struct {
	projections.CredentialView
	Password string `json:"password,omitempty"`
}

func (s *Server) createCredential(c *gin.Context) {
	write(s, c, http.StatusCreated, func(body *createCredentialBody, m commands.Meta) (commands.Result, any, error) {
		res, st, password, err := s.Commands.CreateCredential.Handle(c.Request.Context(), commands.NewCredential{
			ProgramID: c.GetString(ctxProgram), ID: body.ID, Name: body.Name, Type: body.Type, PublicKey: body.PublicKey}, m)
		if err != nil {
			return res, nil, err
		}
		c.Header("Location", c.Request.URL.Path+"/"+st.ID)
		return res, s.secretAnswer(c, res, projections.CredentialViewOf(st, res.Version), password), nil
	})
}

func (s *Server) rotateCredential(c *gin.Context) {
	write(s, c, http.StatusOK, func(body *rotateCredentialBody, m commands.Meta) (commands.Result, any, error) {
		res, st, password, err := s.Commands.RotateCredential.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), body.PublicKey, m)
		if err != nil {
			return res, nil, err
		}
		view := projections.CredentialViewOf(st, res.Version)
		view.UsedBy = st.Attached
		return res, s.secretAnswer(c, res, view, password), nil
	})
}

// secretAnswer returns the answer that shows the password, and hands the
// idempotency layer the same answer without it: a replay must not keep
// the password in Redis, so it answers the credential alone (the password
// is shown exactly once).
func (s *Server) secretAnswer(c *gin.Context, res commands.Result, view projections.CredentialView, password string) any {
	if view.UsedBy == nil {
		view.UsedBy = []string{}
	}
	if password != "" {
		keepForReplay(c, res, view)
	}
	return credentialWithSecret{CredentialView: view, Password: password}
}

func (s *Server) deleteCredential(c *gin.Context) {
	write(s, c, http.StatusNoContent, func(_ *noBody, m commands.Meta) (commands.Result, any, error) {
		res, err := s.Commands.DeleteCredential.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), m)
		return res, nil, err
	})
}

func (s *Server) getCredential(c *gin.Context) { s.readDoc(c, s.Queries.GetCredential) }

func (s *Server) listCredentials(c *gin.Context) { idPage(s, c, s.Queries.ListCredentials) }

type createConnectionBody struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Direction    string `json:"direction"`
	DataType     string `json:"data_type"`
	Method       string `json:"method"`
	Methodology  string `json:"methodology"`
	Pattern      string `json:"pattern"`
	Folder       string `json:"folder"`
	CredentialID string `json:"credential_id"`
}

type updateConnectionBody struct {
	Name         *string `json:"name"`
	Direction    *string `json:"direction"`
	DataType     *string `json:"data_type"`
	Method       *string `json:"method"`
	Methodology  *string `json:"methodology"`
	Pattern      *string `json:"pattern"`
	Folder       *string `json:"folder"`
	CredentialID *string `json:"credential_id"`
}

func (*updateConnectionBody) notNullable() map[string]string {
	const required = "every connection has one"
	return map[string]string{"name": required, "direction": required, "data_type": required, "method": required,
		"methodology": required, "credential_id": required,
		"pattern": "an email connection needs one, and other methods drop it by themselves",
		"folder":  "a pull connection needs one, and push drops it by itself"}
}

func (s *Server) createConnection(c *gin.Context) {
	write(s, c, http.StatusCreated, func(b *createConnectionBody, m commands.Meta) (commands.Result, any, error) {
		res, st, err := s.Commands.CreateConnection.Handle(c.Request.Context(), domain.NewConnection{
			ProgramID: c.GetString(ctxProgram), ID: b.ID, ConnectionConfig: domain.ConnectionConfig{
				Name: b.Name, Direction: b.Direction, DataType: b.DataType, Method: b.Method, Methodology: b.Methodology,
				Pattern: b.Pattern, Folder: b.Folder, CredentialID: b.CredentialID}}, m)
		if err == nil {
			c.Header("Location", c.Request.URL.Path+"/"+st.ID)
		}
		return res, projections.ConnectionViewOf(st, res.Version), err
	})
}

func (s *Server) updateConnection(c *gin.Context) {
	write(s, c, http.StatusOK, func(b *updateConnectionBody, m commands.Meta) (commands.Result, any, error) {
		res, st, err := s.Commands.UpdateConnection.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"),
			domain.ConnectionPatch{Name: b.Name, Direction: b.Direction, DataType: b.DataType, Method: b.Method,
				Methodology: b.Methodology, Pattern: b.Pattern, Folder: b.Folder, CredentialID: b.CredentialID}, m)
		return res, projections.ConnectionViewOf(st, res.Version), err
	})
}

func (s *Server) deleteConnection(c *gin.Context) {
	write(s, c, http.StatusNoContent, func(_ *noBody, m commands.Meta) (commands.Result, any, error) {
		res, err := s.Commands.DeleteConnection.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), m)
		return res, nil, err
	})
}

func (s *Server) getConnection(c *gin.Context) { s.readDoc(c, s.Queries.GetConnection) }

func (s *Server) listConnections(c *gin.Context) { idPage(s, c, s.Queries.ListConnections) }

type checkEmailBody struct {
	Attachments []string `json:"attachments"`
}

// checkEmail answers the intake verdict; it writes nothing.
func (s *Server) checkEmail(c *gin.Context) {
	var body checkEmailBody
	if err := decodeJSON(c, &body); err != nil {
		s.writeError(c, err)
		return
	}
	v, err := s.Commands.CheckEmail.Handle(c.Request.Context(), c.GetString(ctxProgram), c.Param("id"), body.Attachments)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}
