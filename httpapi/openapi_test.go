package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/httpapi"
)

// openapiMethods are the operation keys of an OpenAPI path item.
var openapiMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// ginParam matches a gin path parameter (":id") or catch-all ("*path").
var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// templateParam matches an OpenAPI path template parameter ("{id}").
var templateParam = regexp.MustCompile(`\{([^}]+)\}`)

func loadOpenAPI(t *testing.T) ([]byte, map[string]any) {
	t.Helper()
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatalf("reading openapi.json: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	return raw, doc
}

// documentedOperations lists "METHOD /path" of every operation in doc.
func documentedOperations(t *testing.T, doc map[string]any) map[string]bool {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatalf("openapi.json has no paths object")
	}
	ops := map[string]bool{}
	for path, item := range paths {
		pi, ok := item.(map[string]any)
		if !ok {
			t.Errorf("path item %s is not an object", path)
			continue
		}
		for _, m := range openapiMethods {
			if _, ok := pi[m]; ok {
				ops[strings.ToUpper(m)+" "+path] = true
			}
		}
	}
	return ops
}

// routedOperations lists "METHOD /path" of every route the server
// registers, with gin's ":param" written as OpenAPI's "{param}".
func routedOperations(s *httpapi.Server) map[string]bool {
	ops := map[string]bool{}
	for _, r := range s.Routes() {
		ops[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	return ops
}

func diff(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIMatchesRoutes: every route is documented and every documented
// operation is routed.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	s := httpapi.New(httpapi.Deps{})
	_, doc := loadOpenAPI(t)
	routed := routedOperations(s)
	documented := documentedOperations(t, doc)
	if len(routed) == 0 {
		t.Fatal("the server registers no routes")
	}
	for _, op := range diff(routed, documented) {
		t.Errorf("route %s is not documented in openapi.json", op)
	}
	for _, op := range diff(documented, routed) {
		t.Errorf("openapi.json documents %s, which the server does not route", op)
	}
}

// TestOpenAPIServed: GET /openapi.json answers the checked-in document.
func TestOpenAPIServed(t *testing.T) {
	s := httpapi.New(httpapi.Deps{})
	raw, _ := loadOpenAPI(t)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.json: status %d, body %s", rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET /openapi.json: Content-Type %q, want application/json", ct)
	}
	if !bytes.Equal(rec.Body.Bytes(), raw) {
		t.Errorf("GET /openapi.json does not serve the checked-in openapi.json")
	}
	var served map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &served); err != nil {
		t.Fatalf("GET /openapi.json: not valid JSON: %v", err)
	}
	if v, _ := served["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
}

// TestOpenAPIConsistent: every local $ref resolves, operation IDs are
// unique, every path template parameter is declared, and the /v1 routes
// require the bearer scheme while the operational ones do not.
func TestOpenAPIConsistent(t *testing.T) {
	_, doc := loadOpenAPI(t)

	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				if _, err := resolvePointer(doc, r); err != "" {
					t.Errorf("%s: $ref %q: %s", at, r, err)
				}
			}
			for k, e := range v {
				walk(e, at+"/"+k)
			}
		case []any:
			for _, e := range v {
				walk(e, at+"/[]")
			}
		}
	}
	walk(doc, "#")

	ids := map[string]string{}
	paths, _ := doc["paths"].(map[string]any)
	for path, item := range paths {
		pi, _ := item.(map[string]any)
		for _, m := range openapiMethods {
			op, ok := pi[m].(map[string]any)
			if !ok {
				continue
			}
			where := strings.ToUpper(m) + " " + path
			id, _ := op["operationId"].(string)
			if id == "" {
				t.Errorf("%s has no operationId", where)
			} else if prev, dup := ids[id]; dup {
				t.Errorf("operationId %q is used by %s and %s", id, prev, where)
			}
			ids[id] = where

			declared := map[string]bool{}
			for _, list := range []any{pi["parameters"], op["parameters"]} {
				ps, _ := list.([]any)
				for _, p := range ps {
					pm, _ := p.(map[string]any)
					if r, ok := pm["$ref"].(string); ok {
						rv, _ := resolvePointer(doc, r)
						pm, _ = rv.(map[string]any)
					}
					if pm["in"] == "path" {
						name, _ := pm["name"].(string)
						declared[name] = true
					}
				}
			}
			for _, tp := range templateParam.FindAllStringSubmatch(path, -1) {
				if !declared[tp[1]] {
					t.Errorf("%s: path parameter %q is not declared", where, tp[1])
				}
			}

			sec, hasSec := op["security"].([]any)
			if !hasSec {
				t.Errorf("%s: no security requirement (use [] for none)", where)
			}
			wantAuth := strings.HasPrefix(path, "/v1/")
			if gotAuth := len(sec) > 0; gotAuth != wantAuth {
				t.Errorf("%s: requires auth = %v, want %v", where, gotAuth, wantAuth)
			}
		}
	}
}

// resolvePointer resolves a local JSON pointer ("#/a/b") in doc.
func resolvePointer(doc map[string]any, ref string) (any, string) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, "not a local reference"
	}
	var cur any = doc
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, "does not resolve"
		}
		if cur, ok = m[tok]; !ok {
			return nil, "does not resolve"
		}
	}
	return cur, ""
}
