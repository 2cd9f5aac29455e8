#!/usr/bin/env bash
# Start or stop a throwaway single-node Apache Kafka broker (KRaft mode, no
# ZooKeeper, no Docker) for partnerd's tests.
#
#   eval "$(scripts/kafka.sh start)"   # exports PARTNERD_TEST_KAFKA_BROKERS
#   scripts/kafka.sh status            # exit 0 if a broker answers a metadata request
#   scripts/kafka.sh stop              # stops the broker that `start` launched
#
# The broker's jars come from Maven Central only: `mvn
# dependency:copy-dependencies` on a tiny generated pom that depends on
# org.apache.kafka:kafka_2.13:${PARTNERD_TEST_KAFKA_VERSION:-3.9.1}. They are
# kept in ${XDG_CACHE_HOME:-$HOME/.cache}/partnerd/kafka-VERSION and reused.
# The broker listens on 127.0.0.1:${PARTNERD_TEST_KAFKA_PORT:-9192} (its KRaft
# controller on the next port), keeps its log under ${TMPDIR:-/tmp}, and
# starts empty every time this script launches it. Debian's kcat is installed
# with apt-get when missing: it checks that the broker answers and the tests
# use it as an independent client. A broker that already answers on the port
# is reused as is (and `stop` leaves it alone unless `start` launched it).
#
# Only the `export ...` line goes to stdout; everything else goes to stderr.
set -euo pipefail

VERSION="${PARTNERD_TEST_KAFKA_VERSION:-3.9.1}"
PORT="${PARTNERD_TEST_KAFKA_PORT:-9192}"
CONTROLLER_PORT="${PARTNERD_TEST_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
CACHE_DIR="${XDG_CACHE_HOME:-${HOME}/.cache}/partnerd/kafka-${VERSION}"
LIB_DIR="${CACHE_DIR}/lib"
RUN_DIR="${TMPDIR:-/tmp}/partnerd-test-kafka-${PORT}"
PID_FILE="${RUN_DIR}/kafka.pid"
LOG_FILE="${RUN_DIR}/kafka.log"
START_TIMEOUT_S="${PARTNERD_TEST_KAFKA_START_TIMEOUT:-60}"
DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

log() {
	printf 'kafka.sh: %s\n' "$*" >&2
}

die() {
	log "error: $*"
	exit 1
}

usage() {
	printf 'usage: %s start|stop|status\n' "$0" >&2
	exit 2
}

apt_install() {
	command -v apt-get >/dev/null 2>&1 || die "$1 is not on PATH and apt-get is unavailable; install it yourself"
	local sudo=()
	if [[ "$(id -u)" -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "installing $1 needs root or sudo"
		sudo=(sudo)
	fi
	log "$1 not found; installing Debian package $1"
	# Update the package lists only when apt does not know the package yet.
	if ! apt-cache show "$1" >/dev/null 2>&1; then
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	fi
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >&2 ||
		{
			"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
			"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >&2
		}
	command -v "$1" >/dev/null 2>&1 || die "$1 still not on PATH after install"
}

# broker_answers succeeds if a Kafka broker on 127.0.0.1:$PORT answers a
# metadata request.
broker_answers() {
	kcat -b "127.0.0.1:${PORT}" -L -m 2 >/dev/null 2>&1
}

# port_open succeeds if something accepts TCP connections on the port.
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pid_is_ours prints the pid from our pidfile if that process is still running java.
pid_is_ours() {
	local pid comm
	[[ -f "${PID_FILE}" ]] || return 1
	pid="$(tr -dc '0-9' <"${PID_FILE}")"
	[[ -n "${pid}" ]] || return 1
	kill -0 "${pid}" 2>/dev/null || return 1
	if [[ -r "/proc/${pid}/comm" ]]; then
		comm="$(<"/proc/${pid}/comm")"
		[[ "${comm}" == java* ]] || return 1
	fi
	printf '%s\n' "${pid}"
}

# fetch_jars fills LIB_DIR from Maven Central, once.
fetch_jars() {
	if [[ -f "${CACHE_DIR}/.complete" ]]; then
		return 0
	fi
	command -v mvn >/dev/null 2>&1 || apt_install maven
	command -v java >/dev/null 2>&1 || die "java (>= 17) is not on PATH"
	log "fetching Kafka ${VERSION} jars from Maven Central into ${CACHE_DIR}"
	rm -rf "${LIB_DIR}"
	mkdir -p "${CACHE_DIR}"
	local dep deps=""
	for dep in \
		"org.apache.kafka kafka_2.13 ${VERSION}" \
		"org.apache.kafka kafka-server ${VERSION}" \
		"org.apache.kafka kafka-storage ${VERSION}" \
		"org.apache.kafka kafka-metadata ${VERSION}" \
		"org.apache.kafka kafka-raft ${VERSION}" \
		"org.slf4j slf4j-reload4j 1.7.36"; do
		read -r g a v <<<"${dep}"
		deps+="<dependency><groupId>${g}</groupId><artifactId>${a}</artifactId><version>${v}</version></dependency>"
	done
	cat >"${CACHE_DIR}/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>partnerd.test</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>${VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>${deps}</dependencies>
</project>
EOF
	if ! mvn -B -q -Dstyle.color=never -f "${CACHE_DIR}/pom.xml" "${DEPENDENCY_PLUGIN}:copy-dependencies" \
		-DincludeScope=runtime -DoutputDirectory="${LIB_DIR}" >"${CACHE_DIR}/mvn.log" 2>&1; then
		tail -n 30 "${CACHE_DIR}/mvn.log" >&2 || true
		die "mvn could not fetch org.apache.kafka:kafka_2.13:${VERSION} (log ${CACHE_DIR}/mvn.log; set PARTNERD_TEST_KAFKA_VERSION?)"
	fi
	compgen -G "${LIB_DIR}/kafka_2.13-*.jar" >/dev/null || die "no kafka_2.13 jar in ${LIB_DIR}"
	touch "${CACHE_DIR}/.complete"
}

write_config() {
	cat >"${RUN_DIR}/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CONTROLLER_PORT}
listeners=PLAINTEXT://127.0.0.1:${PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${PORT}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${RUN_DIR}/data
num.partitions=1
auto.create.topics.enable=false
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
EOF
	cat >"${RUN_DIR}/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
EOF
}

print_env() {
	printf 'export PARTNERD_TEST_KAFKA_BROKERS=127.0.0.1:%s\n' "${PORT}"
	# The fault tests pause and resume the broker by its process ID.
	if [[ -f "${PID_FILE}" ]] && kill -0 "$(tr -dc '0-9' <"${PID_FILE}")" 2>/dev/null; then
		printf 'export PARTNERD_TEST_KAFKA_PIDFILE=%s\n' "${PID_FILE}"
	fi
}

cmd_start() {
	command -v kcat >/dev/null 2>&1 || apt_install kcat
	if broker_answers; then
		log "reusing the Kafka broker that answers on 127.0.0.1:${PORT}"
		print_env
		return 0
	fi
	if port_open "${PORT}" || port_open "${CONTROLLER_PORT}"; then
		die "port ${PORT} or ${CONTROLLER_PORT} is taken by something that is not a Kafka broker (set PARTNERD_TEST_KAFKA_PORT)"
	fi
	local started=${SECONDS}
	fetch_jars
	if pid_is_ours >/dev/null; then
		die "a broker started by this script (pid $(pid_is_ours)) runs but does not answer; run $0 stop"
	fi
	rm -rf "${RUN_DIR}"
	mkdir -p "${RUN_DIR}"
	write_config
	local java_opts=(-Xms128m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true
		"-Dlog4j.configuration=file:${RUN_DIR}/log4j.properties" -cp "${LIB_DIR}/*")
	# A cluster ID is a base64url (unpadded) random 16-byte UUID.
	local cluster_id
	cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
	log "formatting a KRaft log dir in ${RUN_DIR}/data (cluster ${cluster_id})"
	java "${java_opts[@]}" kafka.tools.StorageTool format --ignore-formatted \
		-t "${cluster_id}" -c "${RUN_DIR}/server.properties" >>"${LOG_FILE}" 2>&1 ||
		{
			tail -n 20 "${LOG_FILE}" >&2 || true
			die "kafka.tools.StorageTool format failed; log: ${LOG_FILE}"
		}
	log "starting Kafka ${VERSION} on 127.0.0.1:${PORT} (controller ${CONTROLLER_PORT}, log ${LOG_FILE})"
	# setsid: the broker outlives this script and the shell that ran it; it
	# runs in RUN_DIR so that nothing it may write lands in the work tree.
	(cd "${RUN_DIR}" && exec setsid java "${java_opts[@]}" kafka.Kafka "${RUN_DIR}/server.properties") \
		</dev/null >>"${LOG_FILE}" 2>&1 &
	echo $! >"${PID_FILE}"
	local pid
	pid="$(<"${PID_FILE}")"

	local deadline=$((SECONDS + START_TIMEOUT_S))
	until broker_answers; do
		if ! kill -0 "${pid}" 2>/dev/null; then
			tail -n 30 "${LOG_FILE}" >&2 || true
			die "the Kafka broker (pid ${pid}) exited during start; log: ${LOG_FILE}"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 30 "${LOG_FILE}" >&2 || true
			die "Kafka on 127.0.0.1:${PORT} did not answer a metadata request within ${START_TIMEOUT_S}s (pid ${pid} still runs; $0 stop ends it)"
		fi
		sleep 0.2
	done
	log "Kafka is up on 127.0.0.1:${PORT} (pid ${pid}) after $((SECONDS - started))s"
	print_env
}

cmd_stop() {
	local pid
	if ! pid="$(pid_is_ours)"; then
		log "no Kafka broker started by this script is running on port ${PORT}; nothing to stop"
		rm -rf "${RUN_DIR}"
		return 0
	fi
	log "stopping Kafka (pid ${pid}) on 127.0.0.1:${PORT}"
	kill -TERM "${pid}" 2>/dev/null || true
	local i
	for ((i = 0; i < 300; i++)); do
		kill -0 "${pid}" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "${pid}" 2>/dev/null; then
		log "Kafka (pid ${pid}) ignored SIGTERM for 30s; sending SIGKILL"
		kill -KILL "${pid}" 2>/dev/null || true
	fi
	rm -rf "${RUN_DIR}"
}

cmd_status() {
	command -v kcat >/dev/null 2>&1 || die "kcat is not installed (scripts/kafka.sh start installs it)"
	if broker_answers; then
		log "a Kafka broker answers on 127.0.0.1:${PORT}"
		return 0
	fi
	log "no Kafka broker answers on 127.0.0.1:${PORT}"
	return 1
}

[[ $# -eq 1 ]] || usage
[[ "${PORT}" =~ ^[0-9]+$ ]] || die "PARTNERD_TEST_KAFKA_PORT must be a port number, got '${PORT}'"
[[ "${CONTROLLER_PORT}" =~ ^[0-9]+$ ]] || die "PARTNERD_TEST_KAFKA_CONTROLLER_PORT must be a port number"
case "$1" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) usage ;;
esac
