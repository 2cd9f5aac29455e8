# Shortcuts for the usual commands; each is a plain Go or shell command you
# can also run by hand.
GO ?= go

.PHONY: run test bench vet fmt

## run: start partnerd with the embedded defaults (see API.md for PARTNERD_* settings)
run:
	$(GO) run ./cmd/partnerd

## test: gofmt + go vet + go test -race with a throwaway Redis (same as CI)
test:
	bash scripts/test.sh

## bench: benchmarks. To become `go run ./cmd/partnerbench` once that tool
## exists; until then, run every Go benchmark once as a smoke test.
bench:
	$(GO) test -run '^$$' -bench . -benchtime=1x ./...

## vet: static checks
vet:
	$(GO) vet ./...

## fmt: rewrite Go files in gofmt style
fmt:
	gofmt -l -w .
