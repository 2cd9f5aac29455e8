package httpapi

import (
	_ "embed"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/partnerd/partnerd/domain"
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

// Starting is what partnerd answers on its address while it builds its
// read models at start, before its API is served: /healthz says the
// process is up, /readyz that it is not ready yet, and every other route
// is a 503 problem with Retry-After (clients and probes see a starting
// server, not a refused connection).
func Starting() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_, _ = w.Write([]byte(`{"status":"ok"}`))
		case "/readyz":
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"not ready","checks":{"startup":"building the read models from the log"}}`))
		default:
			body, _ := json.Marshal(Problem{Type: "urn:partnerd:problem:service-unavailable", Title: "Service Unavailable", Status: http.StatusServiceUnavailable,
				Detail: errBuilding.Error(), Errors: []domain.FieldError{}})
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(body)
		}
	})
}
