package httpapi

import (
	"fmt"
	"strings"
	"testing"
)

// The declared parameters come from openapi.json, with shared ($ref)
// parameters resolved and path templates turned into gin's routes.
func TestDeclaredParamsFromOpenAPI(t *testing.T) {
	m := declaredParams()
	for route, want := range map[string]string{
		"GET /v1/programs/:program/partners/:id":                 "[as_of as_of_version]",
		"GET /v1/programs/:program/groups":                       "[cursor limit]",
		"POST /v1/programs/:program/segments/preview":            "[cursor limit]",
		"DELETE /v1/programs/:program/partners/:id/links/:other": "[reason]",
		"PATCH /v1/programs/:program/partners/:id":               "[]",
	} {
		got, ok := m[route]
		if !ok {
			t.Errorf("%s: not described", route)
			continue
		}
		if fmt.Sprint(got) != want {
			t.Errorf("%s takes %v, want %s", route, got, want)
		}
	}
	if got := m["GET /v1/programs/:program/partners"]; len(got) < 15 {
		t.Errorf("the partner list declares only %v", got)
	}
	list := "/v1/programs/:program/partners.csv"
	if err := unknownParam("GET", list, map[string][]string{"custom.niche": {"x"}, "country": {"DE"}}); err != nil {
		t.Errorf("custom.<name> on the export: %v", err)
	}
	if err := unknownParam("GET", list, map[string][]string{"customer": {"x"}}); err == nil || !strings.Contains(err.Error(), "custom.<name>") {
		t.Errorf("customer on the export: %v", err)
	}
	if err := unknownParam("GET", "/v1/programs/:program/groups", map[string][]string{"limit": {"1"}, "zeta": nil, "alpha": nil}); err == nil ||
		err.Error() != "unknown parameter 'alpha': this endpoint takes only cursor, limit" {
		t.Errorf("unknown alpha and zeta: %v", err)
	}
	if err := unknownParam("GET", "/not/described", map[string][]string{"x": nil}); err != nil {
		t.Errorf("a route openapi.json does not describe: %v", err)
	}
}
