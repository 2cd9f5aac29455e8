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

## bench: every partnerbench scenario against a Redis and Kafka it starts
## (figures in bench.json; BENCHMARKS.md has the latest, with anchors). Go micro-benchmarks:
## go test -run '^$$' -bench . ./...
bench:
	bash scripts/bench.sh

## vet: static checks
vet:
	$(GO) vet ./...

## fmt: rewrite Go files in gofmt style
fmt:
	gofmt -l -w .
