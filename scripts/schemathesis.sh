#!/usr/bin/env bash
# OpenAPI-driven HTTP fuzzing: schemathesis generates requests from
# httpapi/openapi.json and sends them to a real partnerd (built from this
# tree, embedded store, embedded Redis, in-process bus, a bootstrap program
# and key). Any 5xx, or a response that breaks the spec, fails the run.
#
#   bash scripts/schemathesis.sh                       # bounded CI run
#   PARTNERD_ST_MAX_EXAMPLES=200 PARTNERD_ST_MAX_TIME=600 bash scripts/schemathesis.sh
#
# schemathesis (pinned below) is installed into a virtualenv under
# ${PARTNERD_ST_VENV:-.cache/schemathesis-venv} on first use.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly st_version="4.32.5"
venv="${PARTNERD_ST_VENV:-.cache/schemathesis-venv}"
max_examples="${PARTNERD_ST_MAX_EXAMPLES:-25}"
max_time="${PARTNERD_ST_MAX_TIME:-150}"
seed="${PARTNERD_ST_SEED:-20261122}"

log() {
	printf 'schemathesis.sh: %s\n' "$*" >&2
}

if [[ ! -x "${venv}/bin/schemathesis" ]] || [[ "$("${venv}/bin/schemathesis" --version 2>/dev/null)" != *"${st_version}"* ]]; then
	log "installing schemathesis ${st_version} into ${venv}"
	python3 -m venv "${venv}"
	"${venv}/bin/pip" install --quiet --disable-pip-version-check "schemathesis==${st_version}"
fi

work="$(mktemp -d)"
pid=""
cleanup() {
	local rc=$?
	if [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null; then
		kill "${pid}" 2>/dev/null || true
		wait "${pid}" 2>/dev/null || true
	fi
	if ((rc != 0)) && [[ -f "${work}/partnerd.log" ]]; then
		log "partnerd's log (last 50 lines):"
		tail -n 50 "${work}/partnerd.log" >&2 || true
	fi
	rm -rf "${work}"
	exit "${rc}"
}
trap cleanup EXIT

log "building partnerd"
go build -o "${work}/partnerd" ./cmd/partnerd

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
key="st-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
base="http://127.0.0.1:${port}"
# Rate limiting is tested on its own; here it would only turn findings into 429s.
PARTNERD_ADDR="127.0.0.1:${port}" PARTNERD_DATA="${work}/data" PARTNERD_REDIS_URL="" \
	PARTNERD_KAFKA_BROKERS="" PARTNERD_BOOTSTRAP_PROGRAM=demo PARTNERD_BOOTSTRAP_KEY="${key}" \
	PARTNERD_RATE_LIMIT=0 \
	"${work}/partnerd" serve >"${work}/partnerd.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	if curl -fsS "${base}/healthz" >/dev/null 2>&1; then
		break
	fi
	if ! kill -0 "${pid}" 2>/dev/null; then
		log "partnerd exited before it served"
		exit 1
	fi
	sleep 0.1
done

log "fuzzing ${base} (max ${max_examples} examples per operation, ${max_time} s)"
# The program path parameter is pinned to the bootstrap program (see
# schemathesis.toml), so requests reach the handlers rather than all
# stopping at 404. Projection rebuilds are left out: each one restarts a
# read model for seconds, and a rebuild has its own tests. Which checks run
# is in schemathesis.toml (all of them, bar the exceptions it explains).
"${venv}/bin/schemathesis" --config-file scripts/schemathesis.toml run httpapi/openapi.json \
	--url "${base}" \
	--header "Authorization: Bearer ${key}" \
	--max-examples "${max_examples}" \
	--max-time "${max_time}" \
	--seed "${seed}" \
	--workers 1 \
	--exclude-path-regex '/rebuild$' \
	--request-timeout 10 \
	--suppress-health-check all \
	--no-shrink \
	--report junit --report-dir "${work}/report"

if ! kill -0 "${pid}" 2>/dev/null; then
	log "partnerd died during the run"
	exit 1
fi
if grep -q 'level=ERROR' "${work}/partnerd.log"; then
	log "partnerd logged errors during the run:"
	grep 'level=ERROR' "${work}/partnerd.log" | head -n 20 >&2
	exit 1
fi
log "no findings"
