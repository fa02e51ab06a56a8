#!/usr/bin/env bash
# The guide's scenario end to end, in one command: Kafka topic "oceanic" ->
# stock Telegraf with this project's execd input and output -> CnosDB.
#
#   scripts/demo.sh [flags]
#
#   --telegraf VERSION     stock Telegraf to build and run: 1.27.1 (the guide's,
#                          default), another release such as 1.37.2, or latest
#   --producer python|go   python (default): the guide's producer, scripts/producer.py,
#                          with kafka-python; go: cmd/oceanic-producer, for large runs
#   --count N              messages to send (default 20; the guide sends 2000)
#   --interval D           pause between messages: 5s, 0.2s, 200ms, 0 = full speed
#                          (default 0.2s; the guide waits 5s)
#   --cnosdb-url URL       use this running CnosDB (e.g. http://127.0.0.1:8902)
#                          instead of the embedded CnosDB test server
#   --cnosdb real[:V]      start a real CnosDB (the newest binary scripts/cnosdb.sh
#                          finds, or version V) for the run, and stop it after
#   --path ours|stock      ours (default): our execd input and output, as in
#                          sample.conf; stock: the guide's [[inputs.kafka_consumer]]
#                          and [[outputs.http]] blocks, for comparison
#   --cnosdb-user USER     its user (default root)
#   --cnosdb-password PW   its password (default empty)
#   --kafka-version V      Kafka to run (default: scripts/kafka.sh's, 4.4.0; 2.5.1 is the guide's)
#   --keep-kafka           leave the Kafka broker running at the end
#   --show N|all           rows to print at the end: all of them, or the newest N
#                          when there are more (default 50)
#   --timeout SECONDS      give up when no new row arrives for this long (default 60)
#   -h, --help             this text
#
# Steps: 1 dependencies and Kafka, 2 builds, 3 CnosDB, 4 configs and Telegraf,
# 5 producing with progress, 6 the stored rows and shutdown. Everything it
# starts is stopped at the end, on a failure and on Ctrl-C. Kafka and the
# test server listen on 127.0.0.1 only.
#
# Environment: KAFKA_CNOSDB_CACHE (downloads, Telegraf builds, the Python venv;
# default ~/.cache/kafka-cnosdb), KAFKA_CNOSDB_DEMO_STATE (configs, our binaries,
# logs; default /tmp/kafka-cnosdb-demo), and those of scripts/kafka.sh
# (KAFKA_CNOSDB_STATE, KAFKA_CNOSDB_PLAINTEXT_PORT, ...).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly CACHE=${KAFKA_CNOSDB_CACHE:-$HOME/.cache/kafka-cnosdb}
readonly STATE=${KAFKA_CNOSDB_DEMO_STATE:-/tmp/kafka-cnosdb-demo}
readonly BIN=$STATE/bin
readonly LOGS=$STATE/logs
readonly RUN=$STATE/run

readonly TOPIC=oceanic
readonly DATABASE=public
readonly MEASUREMENT=kafka_consumer
# The guide's [[inputs.kafka_consumer]] block sets no consumer_group, so the
# input uses Telegraf's default; the demo asks Kafka for that group's backlog.
readonly CONSUMER_GROUP=telegraf_metrics_consumers
# Tested against Kafka 4.4.0 and 2.5.1. kafka-python (2.0.2 and this version
# alike) asks the broker which protocol versions it serves (ApiVersions) and
# picks ones Kafka 4 still accepts, so the producer needs no api_version pin.
readonly KAFKA_PYTHON_VERSION=3.0.12
readonly TELEGRAF_STOP_TIMEOUT=30

# --- output -----------------------------------------------------------------

step_no=0
step_name="start-up"
step_log=""
step_started=$SECONDS
reported=false

say() { printf '%s\n' "$*"; }
indent() { sed -u 's/^/    /'; }

step() {
	if ((step_no > 0)); then say "    done in $((SECONDS - step_started))s"; fi
	step_no=$1
	step_name=$2
	step_log=""
	step_started=$SECONDS
	say ""
	say "==> [$step_no/6] $step_name"
}

# fail WHY [LOG]: names the step, shows the log's tail, and exits; the EXIT
# trap then stops whatever was started.
fail() {
	local why=$1 log=${2:-$step_log}
	reported=true
	{
		say ""
		say "demo.sh: step $step_no/6 ($step_name) failed: $why"
		if [[ -n $log && -s $log ]]; then
			say "last lines of $log:"
			tail -n 30 "$log" | indent
		fi
	} >&2
	exit 1
}

usage() {
	sed -n '2,33s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
	exit "${1:-0}"
}

usage_error() {
	printf 'demo.sh: %s (see --help)\n' "$*" >&2
	exit 2
}

# run_logged LOG CMD...: the command's output indented on the terminal and
# kept in LOG for the failure report; returns the command's status.
run_logged() {
	local log=$1
	shift
	"$@" 2>&1 | tee -a "$log" | indent
}

# --- flags ------------------------------------------------------------------

telegraf_version=1.27.1
producer=python
count=20
interval=0.2s
cnosdb_url=""
cnosdb_user=root
cnosdb_password=""
kafka_version=""
keep_kafka=false
real_cnosdb=""
path=ours
show=50
stall_timeout=60

parse_flags() {
	local -A seen_user_or_password=()
	while (($#)); do
		local flag=$1 value=""
		case $flag in
		--*=*)
			value=${flag#*=}
			flag=${flag%%=*}
			;;
		--telegraf | --producer | --count | --interval | --cnosdb-url | --cnosdb-user | --cnosdb-password | \
			--kafka-version | --show | --timeout | --cnosdb | --path)
			(($# >= 2)) || usage_error "$flag needs a value"
			value=$2
			shift
			;;
		esac
		shift
		case $flag in
		--telegraf) telegraf_version=$value ;;
		--producer) producer=$value ;;
		--count) count=$value ;;
		--interval) interval=$value ;;
		--cnosdb-url) cnosdb_url=${value%/} ;;
		--cnosdb)
			[[ $value == real || $value == real:* ]] || usage_error "--cnosdb takes real or real:VERSION, not $value"
			real_cnosdb=$value
			;;
		--path) path=$value ;;
		--cnosdb-user) cnosdb_user=$value seen_user_or_password[user]=1 ;;
		--cnosdb-password) cnosdb_password=$value seen_user_or_password[password]=1 ;;
		--kafka-version) kafka_version=$value ;;
		--keep-kafka) keep_kafka=true ;;
		--show) show=$value ;;
		--timeout) stall_timeout=$value ;;
		-h | --help) usage 0 ;;
		*) usage_error "unknown flag: $flag" ;;
		esac
	done
	[[ $producer == python || $producer == go ]] || usage_error "--producer must be python or go, not $producer"
	[[ $path == ours || $path == stock ]] || usage_error "--path must be ours or stock, not $path"
	[[ -z $real_cnosdb || -z $cnosdb_url ]] || usage_error "--cnosdb real and --cnosdb-url exclude each other"
	[[ $count =~ ^[0-9]+$ ]] || usage_error "--count must be a whole number, not $count"
	count=$((10#$count))
	# Both producers read this form: a number of seconds, or with ms/s/m/h.
	[[ $interval =~ ^([0-9]+(\.[0-9]*)?|\.[0-9]+)(ms|s|m|h)?$ ]] ||
		usage_error "--interval must look like 5s, 0.2s, 200ms or 0, not $interval"
	[[ $show == all || $show =~ ^[0-9]+$ ]] || usage_error "--show must be a number or all, not $show"
	[[ $stall_timeout =~ ^[1-9][0-9]*$ ]] || usage_error "--timeout must be a positive number of seconds"
	if [[ -n $cnosdb_url ]]; then
		[[ $cnosdb_url =~ ^https?://[^/]+$ ]] ||
			usage_error "--cnosdb-url must be like http://127.0.0.1:8902 (scheme, host and port only), not $cnosdb_url"
	elif ((${#seen_user_or_password[@]} > 0)); then
		usage_error "--cnosdb-user and --cnosdb-password go with --cnosdb-url"
	fi
	[[ $STATE != *[\"\\\|\&$'\n']* ]] || usage_error "KAFKA_CNOSDB_DEMO_STATE must not contain \", \\, |, & or a newline"
}

# Zero when D (as validated above) means no pause: 0, 0s, 0.0ms ...
is_full_speed() { [[ ${1%%[a-z]*} =~ ^0*\.?0*$ ]]; }

# --- processes --------------------------------------------------------------

kafka_ours=false
real_ours=false
telegraf_pid=""
server_pid=""
monitor_pid=""
producer_pid=""
display_pid=""

# A pid file from an earlier run names a process to stop only while that
# process still runs one of our binaries or configs: pids get recycled.
stale_pid() {
	local file=$1 pid
	[[ -f $file ]] || return 1
	pid=$(<"$file")
	[[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -e "$STATE/" -e "$REPO/scripts/producer.py" || return 1
	echo "$pid"
}

# Whether PID runs. Not kill -0: an exited child of ours stays a zombie
# until bash reaps it, which it does not do while running a trap.
alive() {
	local stat
	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# Whether a live process is left in process group PGID.
group_alive() {
	local file stat state pgrp
	for file in /proc/[0-9]*/stat; do
		read -r stat 2>/dev/null <"$file" || continue
		read -r state _ pgrp _ <<<"${stat##*) }"
		[[ $pgrp == "$1" && $state != Z ]] && return 0
	done
	return 1
}

# stop_process NAME PID TIMEOUT: SIGTERM, wait, then SIGKILL. Telegraf and
# the test server lead their own process group (setsid), so the group's
# leftovers (Telegraf's execd children) are signalled too.
stop_process() {
	local name=$1 pid=$2 timeout=$3 i
	if alive "$pid"; then
		say "    stopping $name (pid $pid): SIGTERM"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < timeout * 10; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			say "    $name did not exit within ${timeout}s: SIGKILL"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	if group_alive "$pid"; then
		kill -TERM -- "-$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			group_alive "$pid" || return 0
			sleep 0.1
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
}

# Upstream first, as at the end of a run.
stop_stale() {
	local name pid
	for name in producer telegraf cnosdb-test-server; do
		if pid=$(stale_pid "$RUN/$name.pid"); then
			say "    a previous run left $name running"
			stop_process "$name" "$pid" "$TELEGRAF_STOP_TIMEOUT"
		fi
		rm -f "$RUN/$name.pid"
	done
}

# launch NAME LOG CMD...: starts CMD in its own session (Ctrl-C reaches only
# this script, which then stops it in order) and records its pid. A
# background child of a non-interactive shell leads no group, so setsid
# execs without forking and $! is the command's pid.
launch() {
	local name=$1 log=$2
	shift 2
	setsid "$@" </dev/null >>"$log" 2>&1 8>&- &
	launched_pid=$!
	echo "$launched_pid" >"$RUN/$name.pid"
}

stop_producer() {
	if [[ -n $producer_pid ]]; then
		stop_process producer "$producer_pid" 10
		producer_pid=""
		rm -f "$RUN/producer.pid"
	fi
	if [[ -n $display_pid ]]; then
		kill "$display_pid" 2>/dev/null || true
		wait "$display_pid" 2>/dev/null || true
		display_pid=""
	fi
}

stop_monitor() {
	if [[ -n $monitor_pid ]]; then
		kill "$monitor_pid" 2>/dev/null || true
		wait "$monitor_pid" 2>/dev/null || true
		monitor_pid=""
	fi
}

stop_telegraf() {
	if [[ -n $telegraf_pid ]]; then
		stop_process Telegraf "$telegraf_pid" "$TELEGRAF_STOP_TIMEOUT"
		telegraf_pid=""
		rm -f "$RUN/telegraf.pid"
	fi
}

stop_server() {
	if $real_ours; then
		real_ours=false
		say "    stopping the real CnosDB"
		"$REPO/scripts/cnosdb.sh" --dir "$RUN/cnosdb" stop 2>&1 | indent || true
	fi
	if [[ -n $server_pid ]]; then
		stop_process "the CnosDB test server" "$server_pid" 10
		server_pid=""
		rm -f "$RUN/cnosdb-test-server.pid"
	fi
}

stop_kafka() {
	if $kafka_ours; then
		kafka_ours=false
		rm -f "$RUN/kafka.ours"
		if $keep_kafka; then
			say "    --keep-kafka: leaving the broker running (stop it with scripts/kafka.sh stop)"
		else
			say "    stopping the Kafka broker"
			"$REPO/scripts/kafka.sh" stop 2>&1 8>&- | indent || true
		fi
	fi
}

interrupted() {
	# A second signal (timeout(1) signals us and then our process group)
	# must not cut the cleanup short.
	trap '' INT TERM HUP PIPE # PIPE: see on_exit
	reported=true
	say ""
	say "demo.sh: SIG$1 during step $step_no/6 ($step_name)"
	exit 130
}

on_exit() {
	local status=$?
	trap - EXIT
	# Cleanup is bounded (at most TELEGRAF_STOP_TIMEOUT and kafka.sh's
	# stop timeout) and must finish: further signals are ignored. PIPE too,
	# for `demo.sh | tee log` where Ctrl-C killed tee: a failed write must
	# not end the cleanup.
	trap '' INT TERM HUP PIPE
	set +e
	if ((status != 0)) && ! $reported; then
		{
			say ""
			say "demo.sh: step $step_no/6 ($step_name) failed (exit status $status)"
			if [[ -n $step_log && -s $step_log ]]; then
				say "last lines of $step_log:"
				tail -n 30 "$step_log" | indent
			fi
		} >&2
	fi
	if [[ -n $producer_pid$monitor_pid$telegraf_pid$server_pid ]] || $kafka_ours; then
		say ""
		say "==> stopping what the demo started"
	fi
	stop_producer
	stop_monitor
	stop_telegraf
	stop_server
	stop_kafka
	exit "$status"
}

# --- CnosDB over HTTP -------------------------------------------------------

auth_header_file=$RUN/auth.header

write_auth_header() {
	# A header file keeps the password out of curl's command line (ps).
	(
		umask 077
		printf 'Authorization: Basic %s\n' "$(printf '%s:%s' "$cnosdb_user" "$cnosdb_password" | base64 -w0)" >"$auth_header_file"
	)
}

# sql STATEMENT: the answer's body, then a last line with the HTTP status.
sql() {
	curl -sS --max-time 10 -H "@$auth_header_file" -H 'Accept: application/csv' -X POST \
		--data-binary "$1" -w '\n%{http_code}' "$cnosdb_url/api/v1/sql?db=$DATABASE" 2>&1 || true
}

# Rows of the measurement; 0 while the table does not exist yet. Fails (no
# output) when CnosDB gives no answer, e.g. a busy server past curl's timeout.
count_rows() {
	local answer status n
	answer=$(sql "select count(*) from $MEASUREMENT")
	status=${answer##*$'\n'}
	case $status in
	200)
		n=$(printf '%s\n' "$answer" | sed -n 2p | tr -d '\r"')
		[[ $n =~ ^[0-9]+$ ]] || return 1
		echo "$n"
		;;
	# The credentials passed SHOW DATABASES, so a refused query of the
	# measurement means that no row has made its table yet.
	4[0-9][0-9]) [[ $answer == *"$MEASUREMENT"* ]] && echo 0 ;;
	*) return 1 ;;
	esac
}

# CSV (as CnosDB answers by default) drawn as a table.
csv_to_table() {
	awk '
	function parse(line, r, n, i, c, field, inq) {
		if (index(line, "\"") == 0) {
			n = split(line, parts, ",")
			for (i = 1; i <= n; i++) cell[r, i] = parts[i]
			return n
		}
		n = 0; field = ""; inq = 0
		for (i = 1; i <= length(line); i++) {
			c = substr(line, i, 1)
			if (inq) {
				if (c == "\"") {
					if (substr(line, i + 1, 1) == "\"") { field = field "\""; i++ } else inq = 0
				} else field = field c
			} else if (c == "\"") inq = 1
			else if (c == ",") { cell[r, ++n] = field; field = "" }
			else field = field c
		}
		cell[r, ++n] = field
		return n
	}
	function rule(   i, s) {
		s = "+"
		for (i = 1; i <= cols; i++) s = s sprintf("%" (w[i] + 2) "s+", "")
		gsub(/ /, "-", s)
		print s
	}
	function line(r,   i, s) {
		s = "|"
		for (i = 1; i <= cols; i++) s = s sprintf(" %-" w[i] "s |", cell[r, i])
		print s
	}
	{
		sub(/\r$/, "")
		if ($0 == "") next
		n = parse($0, ++rows)
		if (n > cols) cols = n
		for (i = 1; i <= n; i++) if (length(cell[rows, i]) > w[i]) w[i] = length(cell[rows, i])
	}
	END {
		if (rows == 0) exit
		rule(); line(1); rule()
		for (r = 2; r <= rows; r++) line(r)
		rule()
	}'
}

# --- steps ------------------------------------------------------------------

brokers=""

step_kafka() {
	step 1 "dependencies and the Kafka broker"
	step_log=$LOGS/deps.log
	say "    scripts/install-deps.sh --demo"
	run_logged "$step_log" "$REPO/scripts/install-deps.sh" --demo || fail "missing dependencies"

	step_log=$LOGS/kafka.log
	local -a version_flag=()
	[[ -n $kafka_version ]] && version_flag=(--kafka-version "$kafka_version")
	if ! "$REPO/scripts/kafka.sh" status >/dev/null 2>&1; then
		kafka_ours=true
	elif [[ -f $RUN/kafka.ours ]]; then
		say "    the broker was left running by a demo run that was killed: this run stops it"
		kafka_ours=true
	else
		say "    a Kafka broker already runs ($("$REPO/scripts/kafka.sh" status)); the demo uses it and leaves it running"
	fi
	# Remembered across runs, for a run that gets killed before its cleanup.
	if $kafka_ours; then touch "$RUN/kafka.ours"; fi
	say "    scripts/kafka.sh ${version_flag[*]}${version_flag[*]:+ }start"
	# 8>&-: the broker must not inherit the demo's lock.
	run_logged "$step_log" "$REPO/scripts/kafka.sh" "${version_flag[@]}" start 8>&- ||
		fail "the Kafka broker did not start (broker log: scripts/kafka.sh logs)"
	brokers=$(
		eval "$("$REPO/scripts/kafka.sh" env)"
		printf '%s' "${KAFKA_BROKERS%%,*}"
	)
	[[ -n $brokers ]] || fail "scripts/kafka.sh env named no broker"
	say "    creating topic $TOPIC (1 partition, as in the guide)"
	run_logged "$step_log" "$REPO/scripts/kafka.sh" create-topic "$TOPIC" 1 8>&- || fail "creating topic $TOPIC failed"
	say "    broker: $brokers"
}

telegraf_bin=""

step_build() {
	step 2 "building stock Telegraf $telegraf_version and our binaries"
	step_log=$LOGS/build.log
	: >"$step_log"
	say "    scripts/telegraf.sh build $telegraf_version (cached after the first build)"
	run_logged "$step_log" "$REPO/scripts/telegraf.sh" build "$telegraf_version" || fail "building Telegraf $telegraf_version failed"
	# telegraf.sh prints the binary last.
	telegraf_bin=$(tail -n 1 "$step_log")
	[[ -x $telegraf_bin ]] || fail "scripts/telegraf.sh did not name a binary (got: $telegraf_bin)"
	say "    $("$telegraf_bin" --version 2>/dev/null || echo "telegraf $telegraf_version"): $telegraf_bin"

	local -a commands=(telegraf-kafka-json telegraf-cnosdb)
	[[ -z $cnosdb_url ]] && commands+=(cnosdb-test-server)
	# Also for the Python producer: it reads the consumer group's backlog.
	commands+=(oceanic-producer)
	local -a packages=("${commands[@]/#/./cmd/}")
	say "    go build -o $BIN/ ${packages[*]}"
	(cd "$REPO" && GOWORK=off go build -o "$BIN/" "${packages[@]}") >>"$step_log" 2>&1 ||
		fail "go build failed"
}

step_cnosdb() {
	step 3 "CnosDB"
	if [[ -n $real_cnosdb ]]; then
		step_log=$LOGS/cnosdb.log
		local version=${real_cnosdb#real}
		version=${version#:}
		say "    starting a real CnosDB${version:+ $version} with scripts/cnosdb.sh (data in $RUN/cnosdb, fresh)"
		real_ours=true
		CNOSDB_VERSION=$version "$REPO/scripts/cnosdb.sh" --dir "$RUN/cnosdb" start --fresh >"$step_log" 2>&1 ||
			fail "the real CnosDB did not start (scripts/cnosdb.sh path says where it looks for a binary)"
		indent <"$step_log"
		cnosdb_url=$(CNOSDB_VERSION=$version "$REPO/scripts/cnosdb.sh" --dir "$RUN/cnosdb" env | sed -n 's/.*CNOSDB_URL=\([^ ]*\).*/\1/p')
		cnosdb_user=root cnosdb_password=""
	fi
	if [[ -n $cnosdb_url ]]; then
		write_auth_header
		say "    using the CnosDB at $cnosdb_url (user $cnosdb_user)"
	else
		step_log=$LOGS/cnosdb-test-server.log
		: >"$step_log"
		say "    no --cnosdb-url: starting the embedded CnosDB test server (in memory, CnosDB 2.3.0 dialect)"
		launch cnosdb-test-server "$step_log" "$BIN/cnosdb-test-server" -listen 127.0.0.1:0 -dialect 2.3.0 -db "$DATABASE"
		server_pid=$launched_pid
		local i
		# It picks a free port and names it in its first log line.
		for ((i = 0; i < 100; i++)); do
			cnosdb_url=$(sed -n 's|.*serving CnosDB .* on \(http://[0-9.:]*\).*|\1|p' "$step_log" | head -n 1)
			[[ -n $cnosdb_url ]] && break
			alive "$server_pid" || fail "the test server exited"
			sleep 0.1
		done
		[[ -n $cnosdb_url ]] || fail "the test server did not say where it listens within 10s"
		cnosdb_user=root cnosdb_password=""
		write_auth_header
		say "    test server (pid $server_pid) on $cnosdb_url, log: $step_log"
	fi

	local ping
	ping=$(curl -fsS --max-time 5 -H "@$auth_header_file" "$cnosdb_url/api/v1/ping" 2>&1) ||
		fail "$cnosdb_url/api/v1/ping does not answer: $ping"
	say "    ping: $ping"
	local answer
	answer=$(sql "SHOW DATABASES")
	[[ ${answer##*$'\n'} == 200 ]] || fail "SHOW DATABASES was refused (user or password wrong?): ${answer//$'\n'/ }"
	if ! printf '%s\n' "$answer" | tr -d '\r"' | grep -qx "$DATABASE"; then
		fail "database $DATABASE does not exist on $cnosdb_url"
	fi
}

toml_string() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

# sed replacement text: escape \, & and the | delimiter.
sed_replacement() { printf '%s' "$1" | sed 's/[\\&|]/\\&/g'; }

step_telegraf() {
	step 4 "plugin configs and Telegraf"
	step_log=$LOGS/telegraf.log
	local input_conf=$STATE/kafka-json.conf output_conf=$STATE/cnosdb.conf telegraf_conf=$STATE/telegraf.conf
	cat >"$input_conf" <<EOF
# Written by scripts/demo.sh: the guide's [[inputs.kafka_consumer]] block,
# with the address of the demo's broker.
[[inputs.kafka_consumer]]
brokers = [$(toml_string "$brokers")]
topics = [$(toml_string "$TOPIC")]
data_format = "json"
EOF
	(
		umask 077
		cat >"$output_conf" <<EOF
# Written by scripts/demo.sh: where the guide's [[outputs.http]] wrote.
[[outputs.cnosdb]]
  urls = [$(toml_string "$cnosdb_url")]
  database = $(toml_string "$DATABASE")
  username = $(toml_string "$cnosdb_user")
  password = $(toml_string "$cnosdb_password")
EOF
	)
	if [[ $path == stock ]]; then
		stock_config "$telegraf_conf"
		say "    $telegraf_conf: the guide's [[inputs.kafka_consumer]] and [[outputs.http]] (stock Telegraf alone)"
		start_telegraf "$telegraf_conf"
		return
	fi
	# The repo's sample.conf, with our binaries and the two configs above.
	local input_cmd output_cmd
	input_cmd="command = [\"$BIN/telegraf-kafka-json\", \"-config\", \"$input_conf\"]"
	output_cmd="command = [\"$BIN/telegraf-cnosdb\", \"-config\", \"$output_conf\"]"
	sed -e "s|^\([[:space:]]*\)command = \[\"[^\"]*/telegraf-kafka-json\".*|\1$(sed_replacement "$input_cmd")|" \
		-e "s|^\([[:space:]]*\)command = \[\"[^\"]*/telegraf-cnosdb\".*|\1$(sed_replacement "$output_cmd")|" \
		"$REPO/sample.conf" >"$telegraf_conf"
	if ! grep -qF "$input_cmd" "$telegraf_conf" || ! grep -qF "$output_cmd" "$telegraf_conf"; then
		fail "sample.conf has no command = [...] line for telegraf-kafka-json or telegraf-cnosdb to replace"
	fi
	say "    $input_conf: [[inputs.kafka_consumer]] brokers = [\"$brokers\"], topics = [\"$TOPIC\"], data_format = \"json\""
	say "    $output_conf: [[outputs.cnosdb]] urls = [\"$cnosdb_url\"], database = \"$DATABASE\""
	say "    $telegraf_conf: sample.conf with the command paths replaced"
	start_telegraf "$telegraf_conf"
}

# stock_config FILE writes the guide's stock pipeline: its kafka_consumer
# block (plus version, which Kafka 4 needs) and its outputs.http block,
# pointed at the demo's broker and CnosDB.
stock_config() {
	(
		umask 077
		cat >"$1" <<EOF
# Written by scripts/demo.sh --path stock: the guide's blocks, for comparison.
[agent]
  interval = "10s"
  flush_interval = "1s"
  omit_hostname = false
[[inputs.kafka_consumer]]
  brokers = [$(toml_string "$brokers")]
  topics = [$(toml_string "$TOPIC")]
  version = "2.1.0"
  data_format = "json"
[[outputs.http]]
  url = $(toml_string "$cnosdb_url/api/v1/write?db=$DATABASE")
  timeout = "5s"
  method = "POST"
  username = $(toml_string "$cnosdb_user")
  password = $(toml_string "$cnosdb_password")
  data_format = "influx"
  use_batch_format = true
  content_encoding = "identity"
  idle_conn_timeout = 10
EOF
	)
}

start_telegraf() {
	local telegraf_conf=$1
	take_baseline
	: >"$step_log"
	say "    $telegraf_bin --config $telegraf_conf (log: $step_log)"
	launch telegraf "$step_log" "$telegraf_bin" --config "$telegraf_conf"
	telegraf_pid=$launched_pid
	local i
	for ((i = 0; i < 100; i++)); do
		alive "$telegraf_pid" || fail "Telegraf exited at start-up"
		grep -q 'Loaded outputs' "$step_log" && break
		sleep 0.1
	done
	# Config errors of the children show within a moment of the start.
	sleep 1.5
	alive "$telegraf_pid" || fail "Telegraf exited at start-up"
	if [[ -n $(telegraf_errors) ]]; then
		fail "Telegraf or a plugin reported an error at start-up"
	fi
	say "    Telegraf runs (pid $telegraf_pid)"
}

# The error lines of the Telegraf log. Telegraf before 1.28 relays every
# stderr line of an execd child as E!, so the child's own I!/D!/W! lines are
# not errors. Neither is "read |0: file already closed": at shutdown stock
# execd (1.27 and 1.37 alike) reaps the child while still reading its pipes.
telegraf_errors() {
	grep -E '^[0-9TZ:-]+ E! ' "$LOGS/telegraf.log" |
		grep -v -E 'E! \[(inputs|outputs)\.execd\] stderr: "[IDW]! ' |
		grep -v -F 'read |0: file already closed' || true
}

# Metrics Telegraf dropped because an output's buffer (metric_buffer_limit)
# was full: stock's inputs, and ours without delivery tracking, do not wait
# for room there.
telegraf_dropped() {
	sed -n 's/.*Metric buffer overflow; \([0-9]*\) metrics have been dropped.*/\1/p' "$LOGS/telegraf.log" |
		awk '{ n += $1 } END { print n + 0 }'
}

baseline=0
backlog=0
expected=0

# take_baseline counts, before Telegraf starts (it would consume them at
# once), what an earlier run left: messages the group has not consumed, and
# rows already stored.
take_baseline() {
	backlog=$("$BIN/oceanic-producer" -brokers "$brokers" -topic "$TOPIC" -backlog "$CONSUMER_GROUP" 2>>"$LOGS/producer.log") ||
		fail "could not read the backlog of consumer group $CONSUMER_GROUP"
	baseline=$(count_rows) || fail "select count(*) from $MEASUREMENT: no answer from CnosDB"
}

# Prints the stored rows when their number changes, until killed or until
# the demo is gone (killed with SIGKILL, it runs no cleanup).
monitor() {
	local demo_pid=$1 last=-1 n rate=""
	while alive "$demo_pid"; do
		if n=$(count_rows) && [[ $n != "$last" ]]; then
			if ((last >= 0 && expected >= 10000)); then rate=" ($(((n - last) / 2)) rows/s)"; fi
			say "    [cnosdb] $((n - baseline)) of $expected rows stored$rate"
			last=$n
		fi
		sleep 2
	done
}

step_produce() {
	local pace="one every $interval"
	is_full_speed "$interval" && pace="at full speed"
	step 5 "producing the guide's sensor messages"
	say "    $count messages, $pace, with the $producer producer"
	step_log=$LOGS/producer.log
	: >"$step_log"

	expected=$((count + backlog))
	if ((backlog > 0)); then
		say "    topic $TOPIC holds $backlog messages that group $CONSUMER_GROUP has not consumed yet (an earlier run): expecting $expected rows"
	fi
	if ((baseline > 0)); then
		say "    $MEASUREMENT already holds $baseline rows: counting from there"
	fi

	local -a cmd
	if [[ $producer == python ]]; then
		local venv=$CACHE/python/kafka-python-$KAFKA_PYTHON_VERSION
		if [[ ! -f $venv/.complete ]] || ! "$venv/bin/python" -c 'import kafka' >/dev/null 2>&1; then
			say "    installing kafka-python $KAFKA_PYTHON_VERSION into $venv"
			rm -rf "$venv"
			run_logged "$step_log" python3 -m venv "$venv" || fail "python3 -m venv failed"
			run_logged "$step_log" "$venv/bin/python" -m pip install --disable-pip-version-check -q \
				"kafka-python==$KAFKA_PYTHON_VERSION" || fail "pip install kafka-python failed"
			touch "$venv/.complete"
		else
			say "    kafka-python $KAFKA_PYTHON_VERSION: cached in $venv"
		fi
		cmd=("$venv/bin/python" "$REPO/scripts/producer.py" --bootstrap-server "$brokers" --topic "$TOPIC"
			--count "$count" --interval "$interval")
		# At full speed a line per message only slows it down.
		if is_full_speed "$interval" && ((count > 100)); then cmd+=(--quiet); fi
	else
		cmd=("$BIN/oceanic-producer" -brokers "$brokers" -topic "$TOPIC" -count "$count" -interval "$interval")
	fi
	say "    ${cmd[*]#"$REPO/"}"

	monitor "$$" 8>&- &
	monitor_pid=$!
	local started=$SECONDS status=0
	# In the background, because bash runs a trap only once the foreground
	# command is done: Ctrl-C or SIGTERM must not wait for the producer
	# (2000 messages at 5s are close to 3 hours).
	"${cmd[@]}" >>"$step_log" 2>&1 8>&- &
	producer_pid=$!
	echo "$producer_pid" >"$RUN/producer.pid"
	{ tail -n +1 -f --pid="$producer_pid" "$step_log" 2>/dev/null | sed -u 's/^/    [producer] /'; } 8>&- &
	display_pid=$!
	wait "$producer_pid" || status=$?
	producer_pid=""
	rm -f "$RUN/producer.pid"
	wait "$display_pid" || true
	display_pid=""
	stop_monitor
	((status == 0)) || fail "the producer exited with status $status"
	say "    producer done in $((SECONDS - started))s"

	# Telegraf flushes every second; wait until the last message is a row.
	step_log=$LOGS/telegraf.log
	local n last=-1 last_change=$SECONDS stored last_time=$SECONDS rate=""
	while :; do
		n=$(count_rows) || n=$last
		stored=$((n - baseline))
		if [[ $n != "$last" ]]; then
			# A rate says something only for large runs.
			if ((last >= 0 && expected >= 10000 && SECONDS > last_time)); then
				rate=" ($(((n - last) / (SECONDS - last_time))) rows/s)"
			fi
			say "    [cnosdb] $stored of $expected rows stored$rate"
			last=$n
			last_change=$SECONDS
			last_time=$SECONDS
		fi
		((stored >= expected)) && break
		alive "$telegraf_pid" || fail "Telegraf exited while $stored of $expected rows were stored"
		if ((SECONDS - last_change >= 5)); then
			local dropped
			dropped=$(telegraf_dropped)
			if ((dropped > 0 && stored + dropped >= expected)); then
				fail "$stored of $expected rows stored: Telegraf dropped $dropped metrics because its output buffer overflowed (metric_buffer_limit on telegraf-cnosdb's [[outputs.execd]] in sample.conf: raise it, or send fewer or slower messages)"
			fi
		fi
		if [[ -n $server_pid ]] && ! alive "$server_pid"; then
			fail "the CnosDB test server exited" "$LOGS/cnosdb-test-server.log"
		fi
		((SECONDS - last_change < stall_timeout)) ||
			fail "no new row for ${stall_timeout}s: $stored of $expected rows stored"
		sleep 1
	done
}

step_results() {
	step 6 "the rows CnosDB stored, and shutdown"
	step_log=$LOGS/telegraf.log
	# SIGTERM first, so that Telegraf and the output child flush what they hold.
	stop_telegraf
	local total answer query
	total=$(count_rows) || fail "select count(*) from $MEASUREMENT: no answer from CnosDB"
	if [[ $show == all ]] || ((total <= show)); then
		query="select * from $MEASUREMENT"
	else
		query="select * from $MEASUREMENT order by time desc limit $show"
	fi
	say "    POST $cnosdb_url/api/v1/sql?db=$DATABASE: $query"
	answer=$(sql "$query")
	[[ ${answer##*$'\n'} == 200 ]] || fail "the query was refused: ${answer//$'\n'/ }"
	printf '%s\n' "${answer%$'\n'*}" | csv_to_table
	if [[ $query == *limit* ]]; then
		say "($show newest of $total rows; --show all prints every row)"
	else
		say "($total rows)"
	fi
	local stored=$((total - baseline))
	say ""
	say "Sent $count messages; CnosDB stored $stored new rows of $MEASUREMENT (expected $expected)."
	local errors
	errors=$(telegraf_errors)
	if [[ -n $errors ]]; then
		say "Telegraf logged $(wc -l <<<"$errors") error lines ($LOGS/telegraf.log), the first:"
		head -n 5 <<<"$errors" | indent
	fi
	if ((stored != expected)); then
		say "warning: $stored rows stored, $expected expected"
	fi
	stop_server
	stop_kafka
}

main() {
	parse_flags "$@"
	mkdir -p "$STATE" "$BIN" "$LOGS" "$RUN" "$CACHE"
	# One demo at a time on a state dir; children get 8>&- so the lock dies with us.
	exec 8>"$STATE/.lock"
	flock -n 8 || usage_error "another scripts/demo.sh runs on $STATE"
	trap on_exit EXIT
	trap 'interrupted INT' INT
	trap 'interrupted TERM' TERM
	trap 'interrupted HUP' HUP
	stop_stale
	: >"$LOGS/deps.log"
	: >"$LOGS/kafka.log"

	local started=$SECONDS
	say "Kafka -> Telegraf (our execd input and output) -> CnosDB: the guide's scenario"
	say "state: $STATE, cache: $CACHE"
	step_kafka
	step_build
	step_cnosdb
	step_telegraf
	step_produce
	step_results
	say ""
	say "demo finished in $((SECONDS - started))s"
}

main "$@"
