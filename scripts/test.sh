#!/usr/bin/env bash
# The one command that checks partnerd: bash scripts/test.sh [go test flags]
#
#   bash scripts/test.sh                  # gofmt, go vet, go test -race on ./...
#   bash scripts/test.sh -run TestAppend  # extra arguments go to `go test`
#   PARTNERD_TEST_PKGS=./eventstore/... bash scripts/test.sh -v
#
# It starts a throwaway Redis (scripts/redis.sh, installing redis-server if
# needed) and exports PARTNERD_TEST_REDIS_URL for the tests; it stops that
# Redis on exit only if it started it. If scripts/kafka.sh exists and is
# executable, `scripts/kafka.sh start` is evaluated the same way.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() {
	printf 'test.sh: %s\n' "$*" >&2
}

redis_started=0
kafka_started=0
cleanup() {
	local rc=$?
	if ((redis_started)); then
		bash scripts/redis.sh stop || true
	fi
	if ((kafka_started)); then
		bash scripts/kafka.sh stop || true
	fi
	exit "${rc}"
}
trap cleanup EXIT

# --- services -------------------------------------------------------------
if bash scripts/redis.sh status 2>/dev/null; then
	log "reusing the Redis already running for tests"
else
	redis_started=1
fi
# Capture first, then eval: `eval "$(cmd)"` would hide a failing cmd.
redis_env="$(bash scripts/redis.sh start)"
eval "${redis_env}"
export PARTNERD_TEST_REDIS_URL
log "PARTNERD_TEST_REDIS_URL=${PARTNERD_TEST_REDIS_URL}"

# Hook for the Kafka-backed tests: `scripts/kafka.sh start` prints export lines
# on stdout (like redis.sh) and manages the lifetime of what it starts.
if [[ -x scripts/kafka.sh ]]; then
	if ! bash scripts/kafka.sh status 2>/dev/null; then
		kafka_started=1
	fi
	kafka_env="$(scripts/kafka.sh start)"
	eval "${kafka_env}"
	export PARTNERD_TEST_KAFKA_BROKERS PARTNERD_TEST_KAFKA_PIDFILE
	log "PARTNERD_TEST_KAFKA_BROKERS=${PARTNERD_TEST_KAFKA_BROKERS}"
fi

# --- checks ---------------------------------------------------------------
log "gofmt -l"
unformatted="$(gofmt -l .)"
if [[ -n "${unformatted}" ]]; then
	log "these files need gofmt -w:"
	printf '%s\n' "${unformatted}" >&2
	exit 1
fi

pkgs="${PARTNERD_TEST_PKGS:-./...}"
# shellcheck disable=SC2086 # PARTNERD_TEST_PKGS may hold several patterns.
set -- "$@" ${pkgs}

log "go vet ${pkgs}"
# shellcheck disable=SC2086
go vet ${pkgs}

log "go test -race -count=1 $*"
go test -race -count=1 "$@"

# Fault tests pause real services (the Kafka broker) and kill, freeze and
# empty private redis-server processes they start themselves (redis-server
# must be on PATH; scripts/redis.sh installs it), so they run alone, after
# everything else: build tag `faults`.
if [[ -z "${PARTNERD_TEST_PKGS:-}" ]]; then
	log "fault tests: go test -race -count=1 -timeout 20m -tags faults -run Fault ./app/"
	go test -race -count=1 -timeout 20m -tags faults -run Fault ./app/
fi

# Fuzzing, bounded: every Go Fuzz* target for PARTNERD_FUZZTIME (5 s) each,
# then schemathesis against a running partnerd (scripts/schemathesis.sh,
# PARTNERD_ST_MAX_EXAMPLES / PARTNERD_ST_MAX_TIME). PARTNERD_TEST_FUZZ=0
# skips both.
if [[ -z "${PARTNERD_TEST_PKGS:-}" && "${PARTNERD_TEST_FUZZ:-1}" != "0" ]]; then
	log "fuzz: bash scripts/fuzz.sh"
	bash scripts/fuzz.sh
	log "OpenAPI fuzz: bash scripts/schemathesis.sh"
	bash scripts/schemathesis.sh
fi
