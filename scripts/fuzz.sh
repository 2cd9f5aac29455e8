#!/usr/bin/env bash
# Runs every Go fuzz target of the repository for a bounded time each:
#
#   bash scripts/fuzz.sh                   # each Fuzz* target for 5 s
#   PARTNERD_FUZZTIME=1m bash scripts/fuzz.sh
#
# Targets are discovered, not listed: every package whose tests define a
# Fuzz* function, confirmed by `go test -list '^Fuzz'`, so a new target
# anywhere is run without touching this script.
# `go test -fuzz` takes one target of one package at a time. A failing
# input is saved under the package's testdata/fuzz/ and fails this script.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime="${PARTNERD_FUZZTIME:-5s}"

log() {
	printf 'fuzz.sh: %s\n' "$*" >&2
}

# Packages with fuzz functions are found by their source (no compiling of
# the rest); `go test -list` then names the targets each really has. It
# prints a package's matching names, then "ok <package> …".
mapfile -t dirs < <(grep -rlE --include='*_test.go' --exclude-dir=.git --exclude-dir=.cache '^func Fuzz' . | xargs -r -n1 dirname | sort -u)
targets=()
for dir in "${dirs[@]+"${dirs[@]}"}"; do
	names=()
	listing="$(go test -list '^Fuzz' "${dir}")" # a package that does not build fails here
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
			;;
		esac
	done <<<"${listing}"
done

if ((${#targets[@]} == 0)); then
	log "no fuzz targets found"
	exit 1
fi
log "${#targets[@]} fuzz targets, ${fuzztime} each"
for t in "${targets[@]}"; do
	read -r pkg name <<<"${t}"
	log "${pkg} ${name}"
	out="$(mktemp)"
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "${fuzztime}" "${pkg}" 2>&1 | tee "${out}"; then
		rm -f "${out}"
		continue
	fi
	# Go's fuzzer sometimes reports its own time limit as a failure
	# ("context deadline exceeded", no failing input written) when a worker
	# is mid-input as -fuzztime ends. That is not a finding: run once more.
	# A real finding names a failing input under testdata/fuzz and fails.
	if grep -q 'context deadline exceeded' "${out}" && ! grep -q 'Failing input written to' "${out}"; then
		rm -f "${out}"
		log "${name}: the fuzzer hit its own deadline without a finding; running it once more"
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "${fuzztime}" "${pkg}"
		continue
	fi
	rm -f "${out}"
	exit 1
done
