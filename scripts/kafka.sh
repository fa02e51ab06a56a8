#!/usr/bin/env bash
# Runs a real Apache Kafka broker on 127.0.0.1 for the tests, from jars that
# Maven fetches once into a cache.
#
#   scripts/kafka.sh [--kafka-version V] start [--fresh]   start, wait until it serves; a no-op when V runs
#                                                           already, else restarts (--fresh: wipe data)
#   scripts/kafka.sh stop                                   SIGTERM, wait, SIGKILL; remove pid files
#   scripts/kafka.sh status                                 exit 0 when running, 3 when stopped
#   scripts/kafka.sh env                                    `export KAFKA_BROKERS=...` for eval
#   scripts/kafka.sh create-topic NAME [PARTITIONS]         create a topic (idempotent, default 1 partition)
#   scripts/kafka.sh logs [-f]                              the broker log: its tail, or follow it
#   scripts/kafka.sh [--kafka-version V] fetch              only download the jars
#
# Default version 4.4.0: KRaft, one process as broker and controller, with
# listeners PLAINTEXT, SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; user
# telegraf / kafka-secret-pw) and SSL (throw-away CA; client cert offered, not
# required). --kafka-version 2.5.1 runs the guide's Kafka with ZooKeeper,
# PLAINTEXT only, and always starts with empty data.
#
# Environment: KAFKA_CNOSDB_CACHE (default ~/.cache/kafka-cnosdb), KAFKA_CNOSDB_STATE
# (default /tmp/kafka-cnosdb), KAFKA_CNOSDB_PLAINTEXT_PORT (19092), _SASL_PORT (19093),
# _SSL_PORT (19094), _CONTROLLER_PORT (19095), _ZOOKEEPER_PORT (19096),
# KAFKA_CNOSDB_HEAP (512m), KAFKA_CNOSDB_START_TIMEOUT (seconds, 120),
# KAFKA_CNOSDB_VERSION (instead of --kafka-version).
set -euo pipefail

readonly DEFAULT_VERSION=4.4.0
# Kafka 4.x ships log4j2 but no slf4j binding in its Maven poms; this is the
# log4j2 of 4.4.0 (newer than that of 4.0-4.3, which is harmless).
readonly LOG4J2_VERSION=2.25.5
readonly SASL_USER=telegraf
readonly SASL_PASSWORD=kafka-secret-pw
# Protects only throw-away keystores under the state dir.
readonly STORE_PASSWORD=kafka-cnosdb-test

readonly CACHE_ROOT="${KAFKA_CNOSDB_CACHE:-$HOME/.cache/kafka-cnosdb}/kafka"
readonly STATE="${KAFKA_CNOSDB_STATE:-/tmp/kafka-cnosdb}"
readonly PLAINTEXT_PORT=${KAFKA_CNOSDB_PLAINTEXT_PORT:-19092}
readonly SASL_PORT=${KAFKA_CNOSDB_SASL_PORT:-19093}
readonly SSL_PORT=${KAFKA_CNOSDB_SSL_PORT:-19094}
readonly CONTROLLER_PORT=${KAFKA_CNOSDB_CONTROLLER_PORT:-19095}
readonly ZOOKEEPER_PORT=${KAFKA_CNOSDB_ZOOKEEPER_PORT:-19096}
readonly HEAP=${KAFKA_CNOSDB_HEAP:-512m}
readonly START_TIMEOUT=${KAFKA_CNOSDB_START_TIMEOUT:-120}
readonly STOP_TIMEOUT=30

readonly DATA_DIR=$STATE/data
readonly ZK_DATA_DIR=$STATE/zookeeper
readonly LOG_DIR=$STATE/logs
readonly TLS_DIR=$STATE/tls
readonly BROKER_LOG=$LOG_DIR/server.log
readonly ZK_LOG=$LOG_DIR/zookeeper.log
readonly BROKER_PID=$STATE/kafka.pid
readonly ZK_PID=$STATE/zookeeper.pid
# The version of the broker that runs, or last ran, on this state dir.
readonly VERSION_FILE=$STATE/version

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

usage() {
	sed -n '2,24s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

now_ms() { date +%s%3N; }

# --- versions ---------------------------------------------------------------

# "kraft" for 4.x, "zookeeper" for 2.x; other lines are not supported.
mode_of() {
	case $1 in
	4.*) echo kraft ;;
	2.*) echo zookeeper ;;
	*) die "unsupported Kafka version $1: use 4.x (KRaft) or 2.5.1 (ZooKeeper)" ;;
	esac
}

libs_of() { echo "$CACHE_ROOT/$1/libs"; }

# The version the state dir belongs to: what is running, else what ran last.
recorded_version() {
	if [[ -f $VERSION_FILE ]]; then cat "$VERSION_FILE"; else echo "$DEFAULT_VERSION"; fi
}

java_major() {
	java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9.]*\).*/\1/p' | head -n1 |
		awk -F. '{ print ($1 == 1) ? $2 : $1 }'
}

require_tools() {
	local version=$1 tool major
	for tool in java mvn; do
		command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/install-deps.sh"
	done
	major=$(java_major)
	if [[ $(mode_of "$version") == kraft ]] && ((major < 17)); then
		die "Kafka $version needs Java >= 17, found $major: run scripts/install-deps.sh"
	fi
}

# --- jars -------------------------------------------------------------------

write_pom() {
	local version=$1 pom=$2 deps
	case $(mode_of "$version") in
	kraft)
		# kafka_2.13 is the broker (kafka.Kafka, kafka.tools.StorageTool);
		# kafka-tools has TopicCommand. kafka-tools drags in Kafka Connect's
		# runtime (Jetty, Jersey...) which no tool we run needs.
		deps="
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$version</version>
      <exclusions><exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion></exclusions>
    </dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>$LOG4J2_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J2_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J2_VERSION</version></dependency>"
		;;
	zookeeper)
		# Scala 2.12 build, as in the guide; ZooKeeper comes with it. The
		# binding and log4j 1 are the ones the 2.5.1 release ships.
		deps="
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.12</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-log4j12</artifactId><version>1.7.30</version></dependency>
    <dependency><groupId>log4j</groupId><artifactId>log4j</artifactId><version>1.2.17</version></dependency>"
		;;
	esac
	cat >"$pom" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/kafka.sh: only used to download Kafka $version and its runtime jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.kafka-cnosdb</groupId>
  <artifactId>kafka-jars</artifactId>
  <version>$version</version>
  <packaging>pom</packaging>
  <dependencies>$deps
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>3.8.1</version>
      </plugin>
    </plugins>
  </build>
</project>
EOF
}

# Downloads once; afterwards the .complete marker keeps Maven (and the network) out.
fetch_jars() {
	local version=$1 dir libs tmp started
	dir=$CACHE_ROOT/$version
	libs=$(libs_of "$version")
	if [[ -f $libs/.complete ]]; then
		log "jars of Kafka $version: cached in $libs"
		return
	fi
	log "downloading Kafka $version and its runtime jars with Maven into $libs"
	started=$(now_ms)
	mkdir -p "$dir"
	write_pom "$version" "$dir/pom.xml"
	tmp=$dir/libs.partial
	rm -rf "$tmp"
	if ! mvn -B -q -Dstyle.color=never -f "$dir/pom.xml" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$tmp" >"$dir/mvn.log" 2>&1; then
		tail -n 30 "$dir/mvn.log" >&2
		die "Maven could not fetch Kafka $version (full output: $dir/mvn.log)"
	fi
	ls "$tmp"/kafka_2.1[23]-"$version".jar >/dev/null 2>&1 || die "Maven finished but no kafka_2.1x-$version.jar in $tmp"
	rm -rf "$libs"
	mv "$tmp" "$libs"
	touch "$libs/.complete"
	log "downloaded $(find "$libs" -name '*.jar' | wc -l) jars in $((($(now_ms) - started) / 1000))s"
}

# --- processes --------------------------------------------------------------

# Prints the pid in FILE when that process is alive and is ours: a recycled
# pid must never be signalled.
live_pid() {
	local file=$1 pid
	[[ -f $file ]] || return 1
	pid=$(<"$file")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-Dkafka.cnosdb.state=$STATE " || return 1
	echo "$pid"
}

# Common JVM flags; the state marker identifies our processes (see live_pid).
jvm_flags() {
	printf '%s\n' -Djava.awt.headless=true -XX:-UsePerfData "-Dkafka.cnosdb.state=$STATE"
}

# Short-lived tool JVMs: C1 only and a serial GC start faster on 2 cores.
run_tool() {
	local version=$1 class=$2 libs
	shift 2
	libs=$(libs_of "$version")
	local -a flags
	mapfile -t flags < <(jvm_flags)
	if [[ $(mode_of "$version") == kraft ]]; then
		flags+=("-Dlog4j2.configurationFile=$STATE/tools-log4j2.properties")
	else
		flags+=("-Dlog4j.configuration=file:$STATE/tools-log4j.properties")
	fi
	java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "${flags[@]}" -cp "$libs/*" "$class" "$@" 9>&-
}

# Starts CLASS with ARGS in its own session, output to LOGFILE, pid to PIDFILE.
launch() {
	local version=$1 pidfile=$2 logfile=$3 class=$4 libs pid
	shift 4
	libs=$(libs_of "$version")
	local -a flags
	mapfile -t flags < <(jvm_flags)
	if [[ $(mode_of "$version") == kraft ]]; then
		flags+=("-Dlog4j2.configurationFile=$STATE/log4j2.properties")
	else
		flags+=("-Dlog4j.configuration=file:$STATE/log4j.properties")
	fi
	printf '\n===== %s starting %s =====\n' "$(date '+%F %T')" "$class" >>"$logfile"
	# setsid: a later Ctrl-C or closed terminal must not reach the broker. A
	# background child of a non-interactive shell is no group leader, so setsid
	# execs without forking and $! is the JVM's pid.
	setsid java "-Xms$HEAP" "-Xmx$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "${flags[@]}" \
		-cp "$libs/*" "$class" "$@" </dev/null >>"$logfile" 2>&1 9>&- &
	pid=$!
	echo "$pid" >"$pidfile"
	launched_pids+=("$pid")
	log "started $class (pid $pid), log: $logfile"
}

# SIGTERM, up to STOP_TIMEOUT seconds for a clean shutdown, then SIGKILL.
stop_pidfile() {
	local name=$1 file=$2 pid i
	if ! pid=$(live_pid "$file"); then
		rm -f "$file"
		return
	fi
	log "stopping $name (pid $pid): SIGTERM"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name did not exit within ${STOP_TIMEOUT}s: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	fi
	rm -f "$file"
	log "$name stopped"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- configuration ------------------------------------------------------------

write_log_configs() {
	# Broker: everything at INFO to stdout, which launch() sends to the log file.
	cat >"$STATE/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = warn
EOF
	# Tools: only problems, on stderr, so their stdout stays parseable.
	cat >"$STATE/tools-log4j2.properties" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = err
EOF
	cat >"$STATE/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
EOF
	cat >"$STATE/tools-log4j.properties" <<'EOF'
log4j.rootLogger=WARN, err
log4j.appender.err=org.apache.log4j.ConsoleAppender
log4j.appender.err.Target=System.err
log4j.appender.err.layout=org.apache.log4j.PatternLayout
log4j.appender.err.layout.ConversionPattern=%p %m (%c)%n
EOF
}

# A throw-away CA, a broker cert for 127.0.0.1/localhost and a client cert, as
# PEM for Go clients and as PKCS12 stores for the broker. Kept across restarts
# so that clients may cache the CA; delete the tls dir to renew.
generate_tls() {
	if [[ -f $TLS_DIR/.complete ]]; then
		log "TLS material: reusing $TLS_DIR"
		return
	fi
	command -v openssl >/dev/null 2>&1 || die "openssl not found: run scripts/install-deps.sh"
	command -v keytool >/dev/null 2>&1 || die "keytool not found: run scripts/install-deps.sh"
	log "generating a throw-away CA, broker and client certificates in $TLS_DIR"
	rm -rf "$TLS_DIR"
	mkdir -p "$TLS_DIR"
	(
		cd "$TLS_DIR"
		openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
			-subj "/CN=kafka-cnosdb test CA" -keyout ca-key.pem -out ca.pem \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
		issue() { # NAME CN EXTENSIONS
			openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$2" \
				-keyout "$1-key.pem" -out "$1.csr" 2>/dev/null
			printf '%b' "$3" >"$1.ext"
			openssl x509 -req -sha256 -days 3650 -in "$1.csr" -CA ca.pem -CAkey ca-key.pem \
				-set_serial "0x$(openssl rand -hex 8)" -extfile "$1.ext" -out "$1.pem" 2>/dev/null
			rm -f "$1.csr" "$1.ext"
		}
		issue broker localhost 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n'
		issue client "$SASL_USER" 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n'
		openssl pkcs12 -export -name broker -in broker.pem -inkey broker-key.pem -certfile ca.pem \
			-passout "pass:$STORE_PASSWORD" -out broker.p12
		keytool -importcert -noprompt -alias ca -file ca.pem -storetype PKCS12 \
			-keystore truststore.p12 -storepass "$STORE_PASSWORD" >/dev/null 2>&1
		openssl verify -CAfile ca.pem broker.pem client.pem >/dev/null
	) || die "generating TLS material failed"
	touch "$TLS_DIR/.complete"
}

write_kraft_properties() {
	local jaas_scram='org.apache.kafka.common.security.scram.ScramLoginModule required;'
	cat >"$STATE/server.properties" <<EOF
# Generated by scripts/kafka.sh for tests: one node, broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$PLAINTEXT_PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$SSL_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PLAINTEXT_PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$SSL_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA_DIR

# Tests create their topics; a typo must fail, not create a topic.
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1

sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=$jaas_scram
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$jaas_scram

ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/broker.p12
ssl.keystore.password=$STORE_PASSWORD
ssl.key.password=$STORE_PASSWORD
ssl.truststore.type=PKCS12
ssl.truststore.location=$TLS_DIR/truststore.p12
ssl.truststore.password=$STORE_PASSWORD
ssl.client.auth=requested
EOF
}

write_zookeeper_properties() {
	cat >"$STATE/zookeeper.properties" <<EOF
# Generated by scripts/kafka.sh for tests.
dataDir=$ZK_DATA_DIR
clientPort=$ZOOKEEPER_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
EOF
	cat >"$STATE/server.properties" <<EOF
# Generated by scripts/kafka.sh for tests: Kafka 2.x with ZooKeeper.
broker.id=0
zookeeper.connect=127.0.0.1:$ZOOKEEPER_PORT
zookeeper.connection.timeout.ms=18000
listeners=PLAINTEXT://127.0.0.1:$PLAINTEXT_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PLAINTEXT_PORT
log.dirs=$DATA_DIR
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
}

# A random Kafka Uuid: 16 bytes, URL-safe base64 without padding. Not
# starting with '-', which the tool's argument parser would take for an option.
random_cluster_id() {
	local id=-
	while [[ $id == -* ]]; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
	done
	echo "$id"
}

format_storage() {
	local version=$1
	if [[ -f $DATA_DIR/meta.properties ]]; then
		log "storage already formatted: $DATA_DIR"
		return
	fi
	log "formatting KRaft storage in $DATA_DIR with SCRAM credentials for $SASL_USER"
	mkdir -p "$DATA_DIR"
	(run_tool "$version" kafka.tools.StorageTool format \
		--config "$STATE/server.properties" --cluster-id "$(random_cluster_id)" \
		--add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]" \
		--add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]") >"$LOG_DIR/format.log" 2>&1 || {
		cat "$LOG_DIR/format.log" >&2
		rm -rf "$DATA_DIR" # half-formatted storage would block the next try
		die "formatting storage failed"
	}
}

topic_command_class() {
	if [[ $(mode_of "$1") == kraft ]]; then echo org.apache.kafka.tools.TopicCommand; else echo kafka.admin.TopicCommand; fi
}

# --- start ------------------------------------------------------------------

launched_pids=()

# Stops what this run started when start fails or is interrupted, so a broken
# start leaves nothing running.
abort_start() {
	local pid
	trap - INT TERM EXIT
	for pid in "${launched_pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${launched_pids[@]}"; do
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -f "$BROKER_PID" "$ZK_PID"
}

fail_start() {
	local logfile=$1
	shift
	log "error: $*"
	if [[ -f $logfile ]]; then
		log "last lines of $logfile:"
		tail -n 40 "$logfile" >&2
	fi
	abort_start
	exit 1
}

# Waits until PORT accepts connections while PID lives.
wait_port() {
	local pid=$1 port=$2 logfile=$3 deadline=$4
	until port_open "$port"; do
		kill -0 "$pid" 2>/dev/null || fail_start "$logfile" "process $pid exited before port $port opened"
		(($(now_ms) < deadline)) || fail_start "$logfile" "port $port not open after ${START_TIMEOUT}s"
		sleep 0.2
	done
}

# Ready means a real client round trip: the topic tool lists topics.
wait_serving() {
	local version=$1 pid=$2 deadline=$3 class
	class=$(topic_command_class "$version")
	wait_port "$pid" "$PLAINTEXT_PORT" "$BROKER_LOG" "$deadline"
	log "port $PLAINTEXT_PORT open; checking that the broker answers requests"
	# The subshell keeps the redirection away from the INT trap's messages,
	# which would otherwise land in the file when Ctrl-C hits during the check.
	until (run_tool "$version" "$class" --bootstrap-server "127.0.0.1:$PLAINTEXT_PORT" --list) >/dev/null 2>"$LOG_DIR/ready-check.log"; do
		kill -0 "$pid" 2>/dev/null || fail_start "$BROKER_LOG" "broker exited during start"
		(($(now_ms) < deadline)) || fail_start "$BROKER_LOG" "broker does not answer after ${START_TIMEOUT}s (see also $LOG_DIR/ready-check.log)"
		sleep 0.5
	done
}

cmd_start() {
	local version=$1 fresh=$2 mode started deadline pid running
	mode=$(mode_of "$version")
	started=$(now_ms)
	require_tools "$version"
	fetch_jars "$version"

	# start converges on what was asked: the running broker stays only when
	# it is the wanted version and no fresh start was requested.
	if pid=$(live_pid "$BROKER_PID"); then
		running=$(recorded_version)
		if [[ $running == "$version" ]] && ! $fresh; then
			log "Kafka $version already running (pid $pid): nothing to do"
			return
		fi
		if [[ $running != "$version" ]]; then
			log "Kafka $running is running (pid $pid) but $version was asked for: restarting"
		else
			log "--fresh: restarting Kafka $version (pid $pid) with empty data"
		fi
		stop_pidfile "Kafka broker" "$BROKER_PID"
	fi
	# A half-dead setup (ZooKeeper without broker) is stopped before starting anew.
	stop_pidfile zookeeper "$ZK_PID"

	mkdir -p "$STATE" "$LOG_DIR"
	if [[ -f $VERSION_FILE && $(<"$VERSION_FILE") != "$version" ]]; then
		log "state dir holds data of Kafka $(<"$VERSION_FILE"): wiping it for $version"
		fresh=true
	fi
	# ZooKeeper mode: a SIGKILLed broker leaves its ephemeral registration
	# behind, which blocks the next start; start from empty data every time.
	[[ $mode == zookeeper ]] && fresh=true
	if $fresh; then
		log "wiping data: $DATA_DIR $ZK_DATA_DIR"
		rm -rf "$DATA_DIR" "$ZK_DATA_DIR"
		: >"$BROKER_LOG"
	fi
	echo "$version" >"$VERSION_FILE"

	trap 'log "interrupted: stopping what was started"; abort_start; exit 130' INT TERM
	trap 'abort_start' EXIT
	write_log_configs
	deadline=$(($(now_ms) + START_TIMEOUT * 1000))
	case $mode in
	kraft)
		generate_tls
		write_kraft_properties
		format_storage "$version"
		;;
	zookeeper)
		write_zookeeper_properties
		mkdir -p "$ZK_DATA_DIR"
		: >"$ZK_LOG"
		launch "$version" "$ZK_PID" "$ZK_LOG" org.apache.zookeeper.server.quorum.QuorumPeerMain "$STATE/zookeeper.properties"
		log "waiting for ZooKeeper on 127.0.0.1:$ZOOKEEPER_PORT"
		wait_port "$(<"$ZK_PID")" "$ZOOKEEPER_PORT" "$ZK_LOG" "$deadline"
		;;
	esac
	launch "$version" "$BROKER_PID" "$BROKER_LOG" kafka.Kafka "$STATE/server.properties"
	log "waiting for the broker on 127.0.0.1:$PLAINTEXT_PORT (up to ${START_TIMEOUT}s)"
	wait_serving "$version" "$(<"$BROKER_PID")" "$deadline"
	trap - INT TERM EXIT

	log "Kafka $version ($mode) ready in $(awk -v ms=$(($(now_ms) - started)) 'BEGIN { printf "%.1f", ms / 1000 }')s: PLAINTEXT 127.0.0.1:$PLAINTEXT_PORT$(
		[[ $mode == kraft ]] && printf ', SASL_PLAINTEXT 127.0.0.1:%s, SSL 127.0.0.1:%s' "$SASL_PORT" "$SSL_PORT"
	)"
}

# --- other commands ---------------------------------------------------------

cmd_stop() {
	if ! live_pid "$BROKER_PID" >/dev/null && ! live_pid "$ZK_PID" >/dev/null; then
		rm -f "$BROKER_PID" "$ZK_PID"
		log "not running"
		return
	fi
	# The broker first: it deregisters from ZooKeeper on a clean shutdown.
	stop_pidfile "Kafka broker" "$BROKER_PID"
	stop_pidfile zookeeper "$ZK_PID"
}

cmd_status() {
	local pid version
	version=$(recorded_version)
	if pid=$(live_pid "$BROKER_PID"); then
		echo "running: Kafka $version ($(mode_of "$version")), pid $pid, state $STATE"
		return 0
	fi
	echo "stopped (state $STATE)"
	return 3
}

cmd_env() {
	local version
	version=$(recorded_version)
	local -a vars=("KAFKA_BROKERS=127.0.0.1:$PLAINTEXT_PORT" "KAFKA_VERSION=$version")
	if [[ $(mode_of "$version") == kraft ]]; then
		vars+=(
			"KAFKA_SASL_BROKERS=127.0.0.1:$SASL_PORT"
			"KAFKA_TLS_BROKERS=127.0.0.1:$SSL_PORT"
			"KAFKA_TLS_CA=$TLS_DIR/ca.pem"
			"KAFKA_TLS_CERT=$TLS_DIR/client.pem"
			"KAFKA_TLS_KEY=$TLS_DIR/client-key.pem"
			"KAFKA_SASL_USER=$SASL_USER"
			"KAFKA_SASL_PASSWORD=$SASL_PASSWORD"
		)
		printf 'export'
		printf ' %q' "${vars[@]}"
		printf '\n'
	else
		printf 'export'
		printf ' %q' "${vars[@]}"
		# This broker has no SASL or TLS listener: tests for them must skip.
		printf '\nunset KAFKA_SASL_BROKERS KAFKA_TLS_BROKERS KAFKA_TLS_CA KAFKA_TLS_CERT KAFKA_TLS_KEY KAFKA_SASL_USER KAFKA_SASL_PASSWORD\n'
	fi
}

cmd_create_topic() {
	local name=${1:-} partitions=${2:-1} version
	[[ -n $name ]] || usage
	[[ $name =~ ^[a-zA-Z0-9._-]{1,249}$ ]] || die "invalid topic name: $name"
	[[ $partitions =~ ^[1-9][0-9]*$ ]] || die "invalid partition count: $partitions"
	live_pid "$BROKER_PID" >/dev/null || die "broker not running: scripts/kafka.sh start"
	version=$(recorded_version)
	log "creating topic $name with $partitions partition(s)"
	# Kafka 2.5's tool refuses --if-not-exists with --bootstrap-server, so an
	# existing topic is recognised by the error instead.
	local out
	if out=$(run_tool "$version" "$(topic_command_class "$version")" --bootstrap-server "127.0.0.1:$PLAINTEXT_PORT" \
		--create --topic "$name" --partitions "$partitions" --replication-factor 1 2>&1); then
		printf '%s\n' "$out" >&2
	elif [[ $out == *"already exists"* ]]; then
		log "topic $name already exists: nothing to do"
	else
		printf '%s\n' "$out" >&2
		die "creating topic $name failed"
	fi
}

cmd_logs() {
	[[ -f $BROKER_LOG ]] || die "no broker log yet: $BROKER_LOG"
	if [[ ${1:-} == -f ]]; then
		exec tail -n 50 -F "$BROKER_LOG"
	fi
	tail -n 200 "$BROKER_LOG"
}

# --- main -------------------------------------------------------------------

main() {
	local version=${KAFKA_CNOSDB_VERSION:-} fresh=false cmd=""
	local -a rest=()
	while (($#)); do
		case $1 in
		--kafka-version) version=${2:?--kafka-version needs a version}; shift 2 ;;
		--kafka-version=*) version=${1#*=}; shift ;;
		--fresh) fresh=true; shift ;;
		-h | --help) usage ;;
		*)
			if [[ -z $cmd ]]; then cmd=$1; else rest+=("$1"); fi
			shift
			;;
		esac
	done
	[[ -n $cmd ]] || usage

	# One state-changing command at a time on a state dir.
	mkdir -p "$STATE"
	exec 9>"$STATE/.lock"
	case $cmd in
	start | stop | create-topic) flock 9 ;;
	esac

	case $cmd in
	start) cmd_start "${version:-$DEFAULT_VERSION}" "$fresh" ;;
	stop) cmd_stop ;;
	status) cmd_status ;;
	env) cmd_env ;;
	create-topic) cmd_create_topic "${rest[@]}" ;;
	logs) cmd_logs "${rest[@]}" ;;
	fetch)
		version=${version:-$DEFAULT_VERSION}
		require_tools "$version"
		fetch_jars "$version"
		;;
	*) usage ;;
	esac
}

main "$@"
