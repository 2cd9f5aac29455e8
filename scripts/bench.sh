#!/usr/bin/env bash
# Run every partnerbench scenario against services this script starts:
# a throwaway Redis (scripts/redis.sh) and, unless PARTNERD_BENCH_KAFKA=0,
# a single-node Kafka (scripts/kafka.sh). Arguments are passed to
# partnerbench (e.g. -scenarios query -partners 20000). Figures go to the
# terminal and, as one JSON object, to ${PARTNERD_BENCH_JSON:-bench.json}.
#
#   make bench            # or: bash scripts/bench.sh
#
# The Redis database ${PARTNERD_BENCH_REDIS_DB:-63} is flushed by the run.
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(bash scripts/redis.sh start)"
redis_url="${PARTNERD_TEST_REDIS_URL%/*}/${PARTNERD_BENCH_REDIS_DB:-63}"
kafka=()
if [[ "${PARTNERD_BENCH_KAFKA:-1}" != 0 ]]; then
	eval "$(bash scripts/kafka.sh start)"
	kafka=(-kafka-brokers "${PARTNERD_TEST_KAFKA_BROKERS}")
fi
exec go run ./cmd/partnerbench -scenarios all -redis-url "${redis_url}" "${kafka[@]}" \
	-json "${PARTNERD_BENCH_JSON:-bench.json}" "$@"
