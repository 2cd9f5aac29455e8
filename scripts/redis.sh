#!/usr/bin/env bash
# Start or stop a throwaway Redis instance for partnerd's tests.
#
#   eval "$(scripts/redis.sh start)"   # exports PARTNERD_TEST_REDIS_URL
#   scripts/redis.sh status            # exit 0 if a Redis answers PING on the port
#   scripts/redis.sh stop              # stops the instance that `start` launched
#
# The instance listens on 127.0.0.1:${PARTNERD_TEST_REDIS_PORT:-6390}, keeps
# nothing on disk (no RDB, no AOF) and runs from a directory under
# ${TMPDIR:-/tmp}. If no redis-server is on PATH, `start` installs Debian's
# redis-server package with apt-get. A server that already answers PING on
# the port is reused as is (and `stop` leaves it alone unless `start` launched
# it).
#
# Only the `export ...` line goes to stdout; everything else goes to stderr.
set -euo pipefail

PORT="${PARTNERD_TEST_REDIS_PORT:-6390}"
RUN_DIR="${TMPDIR:-/tmp}/partnerd-test-redis-${PORT}"
PID_FILE="${RUN_DIR}/redis.pid"
LOG_FILE="${RUN_DIR}/redis.log"
START_TIMEOUT_S=10

log() {
	printf 'redis.sh: %s\n' "$*" >&2
}

die() {
	log "error: $*"
	exit 1
}

usage() {
	printf 'usage: %s start|stop|status\n' "$0" >&2
	exit 2
}

# ping succeeds if a Redis server on 127.0.0.1:$PORT answers PING with PONG.
# It speaks RESP over bash's /dev/tcp so it works before redis-cli exists.
ping_redis() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/${PORT}" || exit 1
		printf 'PING\r\n' >&3
		reply=""
		IFS= read -r -t 1 reply <&3 || exit 1
		[[ "${reply}" == "+PONG"* ]]
	) 2>/dev/null
}

# pid_is_ours prints the pid from our pidfile if that process is still a
# running redis-server.
pid_is_ours() {
	local pid comm
	[[ -f "${PID_FILE}" ]] || return 1
	pid="$(tr -dc '0-9' <"${PID_FILE}")"
	[[ -n "${pid}" ]] || return 1
	kill -0 "${pid}" 2>/dev/null || return 1
	if [[ -r "/proc/${pid}/comm" ]]; then
		comm="$(<"/proc/${pid}/comm")"
		[[ "${comm}" == redis-server* ]] || return 1
	fi
	printf '%s\n' "${pid}"
}

install_redis() {
	command -v apt-get >/dev/null 2>&1 ||
		die "redis-server is not on PATH and apt-get is unavailable; install Redis (>= 7) yourself"
	local sudo=()
	if [[ "$(id -u)" -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "installing redis-server needs root or sudo"
		sudo=(sudo)
	fi
	log "redis-server not found; installing Debian package redis-server"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends redis-server >&2
	command -v redis-server >/dev/null 2>&1 || die "redis-server still not on PATH after install"
}

print_env() {
	printf 'export PARTNERD_TEST_REDIS_URL=redis://127.0.0.1:%s/0\n' "${PORT}"
}

cmd_start() {
	if ping_redis; then
		log "reusing the Redis that answers PING on 127.0.0.1:${PORT}"
		print_env
		return 0
	fi

	command -v redis-server >/dev/null 2>&1 || install_redis

	mkdir -p "${RUN_DIR}"
	rm -f "${PID_FILE}"
	: >"${LOG_FILE}"
	log "starting redis-server on 127.0.0.1:${PORT} (dir ${RUN_DIR})"
	redis-server \
		--port "${PORT}" \
		--bind 127.0.0.1 \
		--save '' \
		--appendonly no \
		--databases 64 \
		--daemonize yes \
		--pidfile "${PID_FILE}" \
		--logfile "${LOG_FILE}" \
		--dir "${RUN_DIR}" >&2 ||
		die "redis-server failed to start; log: ${LOG_FILE}"

	local deadline=$((SECONDS + START_TIMEOUT_S))
	until ping_redis; do
		if grep -q 'aborting' "${LOG_FILE}" 2>/dev/null; then
			tail -n 5 "${LOG_FILE}" >&2 || true
			die "redis-server on 127.0.0.1:${PORT} aborted; is the port taken? (set PARTNERD_TEST_REDIS_PORT)"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 20 "${LOG_FILE}" >&2 || true
			die "Redis on 127.0.0.1:${PORT} did not answer PING within ${START_TIMEOUT_S}s"
		fi
		sleep 0.1
	done
	log "Redis is up on 127.0.0.1:${PORT}"
	print_env
}

cmd_stop() {
	local pid
	if ! pid="$(pid_is_ours)"; then
		log "no Redis started by this script is running on port ${PORT}; nothing to stop"
		rm -rf "${RUN_DIR}"
		return 0
	fi
	log "stopping redis-server (pid ${pid}) on 127.0.0.1:${PORT}"
	kill -TERM "${pid}" 2>/dev/null || true
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "${pid}" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "${pid}" 2>/dev/null; then
		log "redis-server (pid ${pid}) ignored SIGTERM; sending SIGKILL"
		kill -KILL "${pid}" 2>/dev/null || true
	fi
	rm -rf "${RUN_DIR}"
}

cmd_status() {
	if ping_redis; then
		log "a Redis answers PING on 127.0.0.1:${PORT}"
		return 0
	fi
	log "no Redis answers PING on 127.0.0.1:${PORT}"
	return 1
}

[[ $# -eq 1 ]] || usage
[[ "${PORT}" =~ ^[0-9]+$ ]] || die "PARTNERD_TEST_REDIS_PORT must be a port number, got '${PORT}'"
case "$1" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) usage ;;
esac
