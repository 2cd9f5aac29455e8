#!/usr/bin/env bash
# Runs every Go fuzz target of the repository for a bounded time each:
#
#   bash scripts/fuzz.sh                   # each Fuzz* target for 5 s
#   PARTNERD_FUZZTIME=1m bash scripts/fuzz.sh
#
# Targets are discovered, not listed: `go test -list '^Fuzz'` over ./...,
# so a new Fuzz* function anywhere is run without touching this script.
# `go test -fuzz` takes one target of one package at a time. A failing
# input is saved under the package's testdata/fuzz/ and fails this script.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime="${PARTNERD_FUZZTIME:-5s}"

log() {
	printf 'fuzz.sh: %s\n' "$*" >&2
}

# `go test -list` prints a package's matching names, then "ok <package> …".
listing="$(go test -list '^Fuzz' ./...)"
targets=()
names=()
while IFS= read -r line; do
	case "${line}" in
	Fuzz*)
		names+=("${line}")
		;;
	ok*)
		pkg="$(awk '{print $2}' <<<"${line}")"
		for n in "${names[@]+"${names[@]}"}"; do
			targets+=("${pkg} ${n}")
		done
		names=()
		;;
	esac
done <<<"${listing}"

if ((${#targets[@]} == 0)); then
	log "no fuzz targets found"
	exit 1
fi
log "${#targets[@]} fuzz targets, ${fuzztime} each"
for t in "${targets[@]}"; do
	read -r pkg name <<<"${t}"
	log "${pkg} ${name}"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "${fuzztime}" "${pkg}"
done
