package httpapi

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// declaredParams maps "METHOD /gin/route/:param" to the query parameters
// its operation declares in openapi.json, the one list of what each
// endpoint takes. A name ending in "." is a prefix the operation lists in
// its x-query-prefixes extension (the list's custom.<name> filters). strictQuery refuses any other: a misspelt as_of_version
// or limit would otherwise answer the current state or the default page,
// as if it had been honoured.
var declaredParams = sync.OnceValue(func() map[string][]string {
	m, err := queryParamsOf(openapiDoc)
	if err != nil {
		panic(fmt.Sprintf("openapi.json: %v", err)) // embedded, and checked by TestOpenAPI…
	}
	return m
})

func queryParamsOf(doc []byte) (map[string][]string, error) {
	type param struct {
		Ref  string `json:"$ref"`
		Name string `json:"name"`
		In   string `json:"in"`
	}
	var d struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Parameters map[string]param `json:"parameters"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	resolve := func(ps []param) ([]string, error) {
		var names []string
		for _, p := range ps {
			if p.Ref != "" {
				var ok bool
				if p, ok = d.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]; !ok {
					return nil, fmt.Errorf("parameter %s not found", p.Ref)
				}
			}
			if p.In == "query" {
				names = append(names, p.Name)
			}
		}
		return names, nil
	}
	out := map[string][]string{}
	for path, item := range d.Paths {
		var shared []param
		if raw, ok := item["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
		route := ginRoute(path)
		for method, raw := range item {
			if method == "parameters" || method == "summary" || method == "description" || method == "servers" {
				continue
			}
			var op struct {
				Parameters []param  `json:"parameters"`
				Prefixes   []string `json:"x-query-prefixes"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, path, err)
			}
			names, err := resolve(append(slices.Clone(shared), op.Parameters...))
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, path, err)
			}
			names = append(names, op.Prefixes...)
			slices.Sort(names)
			out[strings.ToUpper(method)+" "+route] = names
		}
	}
	return out, nil
}

// ginRoute turns an OpenAPI path template into gin's: {id} → :id.
func ginRoute(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			parts[i] = ":" + p[1:len(p)-1]
		}
	}
	return strings.Join(parts, "/")
}

// unknownParam returns a problem for the first query parameter (in name
// order) that the route's operation does not declare, or nil. A route
// openapi.json does not describe is not checked.
func unknownParam(method, route string, query map[string][]string) error {
	allowed, described := declaredParams()[method+" "+route]
	if !described {
		return nil
	}
	var unknown []string
	for name := range query {
		if !slices.ContainsFunc(allowed, func(a string) bool { return a == name || strings.HasSuffix(a, ".") && strings.HasPrefix(name, a) }) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	takes := "no query parameters"
	if len(allowed) > 0 {
		shown := make([]string, len(allowed))
		for i, a := range allowed {
			if shown[i] = a; strings.HasSuffix(a, ".") {
				shown[i] = a + "<name>"
			}
		}
		takes = "only " + strings.Join(shown, ", ")
	}
	return badRequest("unknown parameter %s: this endpoint takes %s", quoteField(unknown[0]), takes)
}
