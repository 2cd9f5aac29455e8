package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

//go:embed openapi.json
var openapiDoc []byte

func (s *Server) openapi(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", openapiDoc)
}

func (s *Server) readyz(c *gin.Context) {
	checks := map[string]string{}
	ready := true
	if s.Ready != nil {
		for _, ch := range s.Ready(c.Request.Context()) {
			if ch.Err != nil {
				ready = false
				checks[ch.Name] = ch.Err.Error()
			} else {
				checks[ch.Name] = "ok"
			}
		}
	}
	status := http.StatusOK
	state := "ready"
	if !ready {
		status, state = http.StatusServiceUnavailable, "not ready"
	}
	c.JSON(status, gin.H{"status": state, "checks": checks})
}

func (s *Server) projections(c *gin.Context) {
	items := []ProjectionStatus{}
	if s.Projections != nil {
		items = s.Projections(c.Request.Context())
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
}

func (s *Server) rebuild(c *gin.Context) {
	if s.Rebuild == nil {
		s.writeError(c, ErrUnknownProjection)
		return
	}
	if err := s.Rebuild(c.Param("name")); err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"projection": c.Param("name"), "status": "rebuilding"})
}
