#!/usr/bin/env bash
# Throughput, CPU and memory of the stock path against ours, on one machine,
# one real Kafka broker and one receiving server, in one command.
#
#   scripts/bench.sh [flags]
#
#   --messages N         messages to pre-load and deliver per run (default 300000
#                        for the guide's shape, 100000 for --shape nested)
#   --shape guide|nested guide: {"pressure": 5.1, "temperature": 23.4, "visibility": 80.2}
#                        (default); nested: a ~700-byte buoy report, ~35 fields
#   --telegraf VERSION   stock Telegraf to run: latest (default), 1.27.1, ...
#   --repeat K           run every scenario K times and report the medians (default 1)
#   --alone              also run each of our binaries alone: input -> a line
#                        counter, and a file of line protocol -> output -> server
#   --only LIST          run only these scenarios (comma-separated, from the list
#                        below), e.g. --only ours,ours-noloop to weigh the loop
#   --guide-defaults     the guide's and Telegraf's defaults for every Telegraf run
#                        (flush_interval 10s, buffer 10000, max_undelivered 1000)
#                        instead of the settings that avoid the stock stall
#   --buffer-limit N     metric_buffer_limit of the default settings (default:
#                        the message count, so that no run can drop a metric)
#   --flush-interval D   flush_interval of the default settings (default 1s, sample.conf's)
#   --execd-batch N      metric_batch_size of our [[outputs.execd]] block and the
#                        ceiling's (default 5000, sample.conf's)
#   --base-execd-batch N the same for ours-base (default: --execd-batch), to weigh
#                        a batch size (--baseline HEAD) or a release with its own
#   --no-bench-go        skip the Go benchmarks and benchstat
#   --bench-count C      -count of the Go benchmarks (default 6)
#   --partitions P       partitions of the pre-loaded topic (default 1, the guide's)
#   --cnosdb test|real[:V]  the receiving server: the CnosDB test server (default,
#                        2.3.0 dialect) or a real CnosDB started by scripts/cnosdb.sh
#                        (the newest binary it finds, or version V); with a real one,
#                        delivery is seen by counting its rows, and its CPU is measured
#   --baseline REV       also run ours built from git revision REV ("ours-base"),
#                        interleaved with the others: how a change moves the figures
#   --stats-interval D   stats_interval of the ours-stats scenario (default 10s)
#   --out DIR            results go to DIR/<date>-<time>/ (default bench-results)
#   --stall SECONDS      a run that delivers nothing new for this long ends (default 25)
#   --run-timeout SECONDS  longest a single run may take (default 300)
#   --keep-kafka         leave the broker running when this script started it
#   -h, --help           this text
#
# Scenarios, each with a fresh consumer group and a fresh CnosDB database:
#   stock    Telegraf: [[inputs.kafka_consumer]] data_format json + [[outputs.http]] (the guide)
#   ours     the same Telegraf: [[inputs.execd]] telegraf-kafka-json + [[outputs.execd]] telegraf-cnosdb
#   ours-noloop  ours with delivery_tracking = "off", when telegraf-kafka-json has that option
#   ours-stats   ours with stats_interval (--stats-interval) in both children (self-metrics on; --only)
#   ours-gzip    ours with content_encoding = "gzip" (--only); the test server then
#                speaks the 2.4 dialect (2.3.0 ignores Content-Encoding; CnosDB decodes
#                gzip from 2.3.4), and a real CnosDB must be 2.3.4 or later. Stock has
#                no such run: outputs.http sends gzip bodies chunked, which CnosDB
#                answers with 500 (docs/performance.md)
#   ours-base    ours built from --baseline REV
#   ceiling  the same Telegraf between `cat LINES -` and a child that only reads stdin
#   input-alone, output-alone  (--alone) our binaries without Telegraf
#
# Kafka: scripts/kafka.sh start (a running broker is used and left running);
# the CnosDB test server listens on a free 127.0.0.1 port. Everything this
# script starts is stopped on exit, failure and Ctrl-C. See docs/performance.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly CACHE=${KAFKA_CNOSDB_CACHE:-$HOME/.cache/kafka-cnosdb}

say() { printf '%s\n' "$*"; }
step() { printf '\n==> %s\n' "$*"; }
die() {
	printf 'bench.sh: %s\n' "$*" >&2
	exit 1
}
usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p;}' "${BASH_SOURCE[0]}"
	exit "${1:-0}"
}
usage_error() {
	printf 'bench.sh: %s (see --help)\n' "$*" >&2
	exit 2
}

# --- flags ------------------------------------------------------------------

messages=""
shape=guide
telegraf_version=latest
repeat=1
alone=false
guide_defaults=false
buffer_limit=""
flush_interval=1s
bench_go=true
bench_count=6
partitions=1
out_root=$REPO/bench-results
stall=25
run_timeout=300
keep_kafka=false
only=""
cnosdb=test
baseline=""
stats_interval=10s
execd_batch=5000
base_execd_batch=""

while (($#)); do
	flag=$1 value=""
	case $flag in
	--*=*) value=${flag#*=} flag=${flag%%=*} ;;
	--messages | --shape | --telegraf | --repeat | --buffer-limit | --flush-interval | --bench-count | --partitions | --out | --stall | --run-timeout | --only | --cnosdb | --baseline | --stats-interval | --execd-batch | --base-execd-batch)
		(($# >= 2)) || usage_error "$flag needs a value"
		value=$2
		shift
		;;
	esac
	shift
	case $flag in
	--messages) messages=$value ;;
	--shape) shape=$value ;;
	--telegraf) telegraf_version=$value ;;
	--repeat) repeat=$value ;;
	--alone) alone=true ;;
	--guide-defaults) guide_defaults=true ;;
	--buffer-limit) buffer_limit=$value ;;
	--flush-interval) flush_interval=$value ;;
	--bench-go) bench_go=true ;;
	--no-bench-go) bench_go=false ;;
	--bench-count) bench_count=$value ;;
	--partitions) partitions=$value ;;
	--out) out_root=$value ;;
	--stall) stall=$value ;;
	--run-timeout) run_timeout=$value ;;
	--keep-kafka) keep_kafka=true ;;
	--only) only=$value ;;
	--cnosdb) cnosdb=$value ;;
	--baseline) baseline=$value ;;
	--stats-interval) stats_interval=$value ;;
	--execd-batch) execd_batch=$value ;;
	--base-execd-batch) base_execd_batch=$value ;;
	-h | --help) usage 0 ;;
	*) usage_error "unknown flag: $flag" ;;
	esac
done
[[ $shape == guide || $shape == nested ]] || usage_error "--shape must be guide or nested"
[[ $cnosdb == test || $cnosdb == real || $cnosdb == real:* ]] || usage_error "--cnosdb must be test, real or real:VERSION"
if [[ -z $messages ]]; then
	if [[ $shape == guide ]]; then messages=300000; else messages=100000; fi
fi
for pair in "messages:$messages" "repeat:$repeat" "bench-count:$bench_count" "partitions:$partitions" "execd-batch:$execd_batch" "base-execd-batch:${base_execd_batch:-$execd_batch}" \
	"stall:$stall" "run-timeout:$run_timeout" "buffer-limit:${buffer_limit:-1}"; do
	[[ ${pair#*:} =~ ^[1-9][0-9]*$ ]] || usage_error "--${pair%%:*} must be a positive whole number"
done
[[ $flush_interval =~ ^[0-9]+(ms|s)$ ]] || usage_error "--flush-interval must look like 1s or 200ms"
[[ $stats_interval =~ ^[0-9]+(ms|s)$ ]] || usage_error "--stats-interval must look like 10s or 500ms"
if [[ -n $baseline ]]; then
	git -C "$REPO" rev-parse --verify --quiet "$baseline^{commit}" >/dev/null || usage_error "--baseline: $baseline is not a commit of this repository"
fi
wanted=()
[[ -n $only ]] && IFS=, read -ra wanted <<<"$only"
for scenario in "${wanted[@]}"; do
	case $scenario in
	stock | ours | ours-noloop | ours-stats | ours-base | ceiling | input-alone | output-alone | ours-gzip) ;;
	*) usage_error "--only: unknown scenario $scenario" ;;
	esac
done
[[ -n $buffer_limit ]] || buffer_limit=$((messages > 10000 ? messages : 10000))
[[ $out_root == /* ]] || out_root=$PWD/$out_root

stamp=$(date +%Y%m%d-%H%M%S)
readonly RESULTS=$out_root/$stamp
readonly BIN=$RESULTS/bin CONF=$RESULTS/configs LOGS=$RESULTS/logs DATA=$RESULTS/data
mkdir -p "$BIN" "$CONF" "$LOGS" "$DATA"
readonly RESULTS_FILE=$RESULTS/results.jsonl

# --- processes and cleanup --------------------------------------------------

kafka_ours=false
server_pid=""
fg_pid=""
topic=""
brokers=""

# run_fg CMD...: runs CMD in the background and waits, so that a signal
# reaches our trap at once instead of after CMD ends.
run_fg() {
	local status=0
	"$@" &
	fg_pid=$!
	wait "$fg_pid" || status=$?
	fg_pid=""
	return "$status"
}

cleanup() {
	local status=$?
	trap - EXIT
	trap '' INT TERM HUP
	set +e
	if [[ -n $fg_pid ]]; then
		# pipeline-bench stops its Telegraf and children on SIGTERM.
		kill -TERM "$fg_pid" 2>/dev/null
		wait "$fg_pid" 2>/dev/null
	fi
	if [[ -n $topic && -x $BIN/pipeline-bench ]]; then
		say "    deleting topic $topic"
		"$BIN/pipeline-bench" delete-topic -brokers "$brokers" -topic "$topic" >/dev/null 2>&1 ||
			say "    (could not delete topic $topic)"
	fi
	if [[ -n $server_pid && $cnosdb == real* ]]; then
		say "    stopping the real CnosDB (pid $server_pid)"
		"$REPO/scripts/cnosdb.sh" --dir "$RESULTS/cnosdb" stop --kill 2>&1 | sed 's/^/    /'
	elif [[ -n $server_pid ]]; then
		say "    stopping the CnosDB test server (pid $server_pid)"
		kill -TERM "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	if $kafka_ours; then
		if $keep_kafka; then
			say "    --keep-kafka: leaving the broker running (scripts/kafka.sh stop)"
		else
			say "    stopping the Kafka broker this script started"
			"$REPO/scripts/kafka.sh" stop
		fi
	fi
	if ((status != 0)); then
		say "bench.sh failed (exit status $status); logs in $LOGS" >&2
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

toml_string() {
	local s=${1//\\/\\\\}
	printf '"%s"' "${s//\"/\\\"}"
}

# --- steps ------------------------------------------------------------------

say "Kafka -> Telegraf -> CnosDB: stock kafka_consumer + outputs.http against our execd input + output"
say "results: $RESULTS"

step "1. Kafka broker"
if "$REPO/scripts/kafka.sh" status >/dev/null 2>&1; then
	say "    a broker already runs ($("$REPO/scripts/kafka.sh" status)): using it, leaving it running"
else
	say "    scripts/kafka.sh start (this script stops it at the end)"
	kafka_ours=true
	"$REPO/scripts/kafka.sh" start 2>&1 | sed 's/^/    /'
fi
brokers=$(
	eval "$("$REPO/scripts/kafka.sh" env)"
	printf '%s' "${KAFKA_BROKERS%%,*}"
)
[[ -n $brokers ]] || die "scripts/kafka.sh env named no broker"
say "    broker: $brokers"

step "2. Builds: stock Telegraf $telegraf_version, our binaries, the test server and pipeline-bench"
if ! telegraf_bin=$("$REPO/scripts/telegraf.sh" path "$telegraf_version" 2>/dev/null); then
	say "    scripts/telegraf.sh build $telegraf_version (cached after the first build)"
	telegraf_bin=$("$REPO/scripts/telegraf.sh" build "$telegraf_version" | tail -n 1)
fi
[[ -x $telegraf_bin ]] || die "no Telegraf binary for $telegraf_version"
telegraf_said=$("$telegraf_bin" --version 2>/dev/null || echo "Telegraf $telegraf_version")
# Telegraf 1.28 and later can hand an execd output a whole batch in one
# write (use_batch_format); the README recommends it, so the runs use it.
execd_batch_format=""
if [[ $telegraf_said =~ Telegraf\ 1\.([0-9]+)\. ]] && ((BASH_REMATCH[1] >= 28)); then
	execd_batch_format="  use_batch_format = true"
fi
# The batches Telegraf hands telegraf-cnosdb, as sample.conf sets them on
# its [[outputs.execd]] (the input reads them from Telegraf's config), and
# the buffer sample.conf gives that output where the agent's is Telegraf's
# default. The ceiling's child gets the same batches.
# execd_settings BATCH: what our [[outputs.execd]] block adds.
execd_settings() {
	printf '  metric_batch_size = %s' "$1"
	if $guide_defaults; then
		printf '\n  metric_buffer_limit = 50000'
	fi
}
base_execd_batch=${base_execd_batch:-$execd_batch}
execd_output_settings=$(execd_settings "$execd_batch")
say "    $telegraf_said: $telegraf_bin"
say "    go build -o $BIN/ ./cmd/telegraf-kafka-json ./cmd/telegraf-cnosdb ./cmd/cnosdb-test-server ./cmd/pipeline-bench"
(cd "$REPO" && GOWORK=off go build -o "$BIN/" ./cmd/telegraf-kafka-json ./cmd/telegraf-cnosdb \
	./cmd/cnosdb-test-server ./cmd/pipeline-bench)
PB=$BIN/pipeline-bench
if [[ -n $baseline ]]; then
	base_rev=$(git -C "$REPO" rev-parse --short "$baseline^{commit}")
	say "    ours-base: building telegraf-kafka-json and telegraf-cnosdb at $base_rev into $BIN/base/"
	base_tree=$(mktemp -d)
	git -C "$REPO" worktree add --detach --quiet "$base_tree/src" "$base_rev"
	(cd "$base_tree/src" && GOWORK=off go build -o "$BIN/base/" ./cmd/telegraf-kafka-json ./cmd/telegraf-cnosdb)
	git -C "$REPO" worktree remove --force "$base_tree/src"
	rm -rf "$base_tree"
fi
# delivery_tracking = "off" turns our input's delivery loop off: for the
# "ours (no loop)" run, and for the input alone, which no output acknowledges.
# Known from -sample-config, or else from whether a config holding the
# option is refused as unknown (the process then stops at once: stdin is
# /dev/null and the broker address refuses).
noloop=false
if "$BIN/telegraf-kafka-json" -sample-config 2>/dev/null | grep -q delivery_tracking; then
	noloop=true
	say "    telegraf-kafka-json -sample-config lists delivery_tracking: the \"ours (no loop)\" run is on"
else
	printf '[[inputs.kafka_consumer]]\nbrokers = ["127.0.0.1:1"]\ntopics = ["probe"]\ndata_format = "json"\ndelivery_tracking = "off"\n' >"$CONF/probe.conf"
	probe=$(timeout 20 "$BIN/telegraf-kafka-json" -config "$CONF/probe.conf" </dev/null 2>&1 || true)
	if [[ $probe != *"unknown option"* ]]; then
		noloop=true
		say "    telegraf-kafka-json accepts delivery_tracking (not yet in its -sample-config): the \"ours (no loop)\" run is on"
	else
		say "    telegraf-kafka-json has no delivery_tracking option: no \"ours (no loop)\" run"
	fi
fi

observe=server
if [[ $cnosdb == real* ]]; then
	step "3. A real CnosDB"
	real_version=${cnosdb#real}
	real_version=${real_version#:}
	CNOSDB_VERSION=$real_version "$REPO/scripts/cnosdb.sh" --dir "$RESULTS/cnosdb" start --fresh >"$LOGS/cnosdb.sh.log" 2>&1 ||
		die "the real CnosDB did not start: $(tail -n 3 "$LOGS/cnosdb.sh.log")"
	sed 's/^/    /' "$LOGS/cnosdb.sh.log"
	server_pid=$(<"$RESULTS/cnosdb/cnosdb.pid")
	server_url=$(CNOSDB_VERSION=$real_version "$REPO/scripts/cnosdb.sh" --dir "$RESULTS/cnosdb" env | sed -n 's/.*CNOSDB_URL=\([^ ]*\).*/\1/p')
	server_said=$(curl -fsS "$server_url/api/v1/ping")
	observe=rows
	say "    $server_said on $server_url, pid $server_pid (its CPU is the server column); delivery counted as rows, 4 times a second"
else
	step "3. CnosDB test server"
	# Made here: the server's shell opens it only after the loop below may read it.
	: >"$LOGS/cnosdb-test-server.log"
	# Every line is checked and counted; one row in 1000 is kept, so the
	# server's garbage collection of a million rows does not take the
	# machine from the pipelines it measures. The guide's 2.3.0 dialect,
	# unless a scenario sends gzip, which only 2.4's decodes.
	dialect=2.3.0 dialect_said="CnosDB 2.3.0 dialect (the guide's)"
	if [[ " ${wanted[*]} " == *" ours-gzip "* ]]; then
		dialect=2.4 dialect_said="CnosDB 2.4 dialect (it decodes gzip bodies; 2.3.0 does not)"
	fi
	"$BIN/cnosdb-test-server" -listen 127.0.0.1:0 -dialect "$dialect" -keep-every 1000 >"$LOGS/cnosdb-test-server.log" 2>&1 &
	server_pid=$!
	server_url=""
	for ((i = 0; i < 100; i++)); do
		server_url=$(sed -n 's|.*serving CnosDB .* on \(http://[0-9.:]*\).*|\1|p' "$LOGS/cnosdb-test-server.log" | head -n 1)
		[[ -n $server_url ]] && break
		kill -0 "$server_pid" 2>/dev/null || die "the test server exited: $(cat "$LOGS/cnosdb-test-server.log")"
		sleep 0.1
	done
	[[ -n $server_url ]] || die "the test server did not say where it listens"
	say "    $dialect_said on $server_url, pid $server_pid; each run writes to its own database, dropped after it"
fi

step "4. Pre-loading the topic and the line-protocol file"
topic=bench-$shape-$stamp-$$
say "    pipeline-bench preload: $messages $shape messages into new topic $topic ($partitions partition(s))"
run_fg "$PB" preload -brokers "$brokers" -topic "$topic" -count "$messages" -shape "$shape" -partitions "$partitions"
lines_file=$DATA/lines.lp
say "    pipeline-bench lines: $messages lines of the line protocol Telegraf hands the output, for the ceiling and --alone runs"
run_fg "$PB" lines -count "$messages" -shape "$shape" -out "$lines_file"
say "    $lines_file: $(wc -c <"$lines_file") bytes"

# --- configs ----------------------------------------------------------------

# The agent: identical for every Telegraf run.
if $guide_defaults; then
	settings_name="guide defaults"
	agent_block='[agent]
  ## The defaults of the telegraf.conf the guide edits (and of Telegraf itself).
  interval = "10s"
  round_interval = true
  metric_batch_size = 1000
  metric_buffer_limit = 10000
  collection_jitter = "0s"
  flush_interval = "10s"
  flush_jitter = "0s"
  precision = ""
  hostname = "bench-host"
  omit_hostname = false'
	undelivered_line=""
else
	settings_name="stall-free (default)"
	agent_block="[agent]
  interval = \"10s\"
  round_interval = true
  ## Telegraf's default batch; the output child batches again on its own.
  metric_batch_size = 1000
  ## As many as the run sends: no run can drop a metric for want of room.
  metric_buffer_limit = $buffer_limit
  collection_jitter = \"0s\"
  ## sample.conf's 1s unless --flush-interval; the guide's telegraf.conf has 10s.
  flush_interval = \"$flush_interval\"
  flush_jitter = \"0s\"
  precision = \"\"
  hostname = \"bench-host\"
  omit_hostname = false"
	# Stock reads at most max_undelivered_messages ahead of what its outputs
	# delivered. Below metric_batch_size no batch ever fills, so every batch
	# waits for flush_interval; 10 batches in flight keep the output busy.
	# Ours keeps its default, sized by the batches Telegraf hands its output.
	undelivered_line='  max_undelivered_messages = 10000'
fi

# kafka_block GROUP [EXTRA]: the guide's block with what a benchmark needs;
# stock's window (undelivered_line) unless kafka_window is empty.
kafka_window=stock
kafka_block() {
	cat <<EOF
[[inputs.kafka_consumer]]
  brokers = [$(toml_string "$brokers")]
  topics = [$(toml_string "$topic")]
  data_format = "json"
  ## Stock's default protocol (0.10.2.0) cannot talk to Kafka 4.
  version = "2.1.0"
  consumer_group = $(toml_string "$1")
  offset = "oldest"
${kafka_window:+${undelivered_line}}${2:+
$2}
EOF
}

# write_configs SCENARIO REPEAT: the run's files; sets run_db, run_group, run_conf.
write_configs() {
	local scenario=$1 rep=$2 dir
	dir=$CONF/$scenario-$rep
	mkdir -p "$dir"
	run_db=bench_${scenario//-/_}_$rep
	run_group=bench-$stamp-$scenario-$rep
	run_conf=$dir/telegraf.conf
	local write_url="$server_url/api/v1/write?db=$run_db"
	local encoding=identity
	[[ $scenario == ours-gzip ]] && encoding=gzip
	case $scenario in
	stock)
		{
			printf '%s\n\n' "$agent_block"
			kafka_block "$run_group"
			cat <<EOF

## The guide's [[outputs.http]] block, with the test server's address.
[[outputs.http]]
  url = $(toml_string "$write_url")
  timeout = "5s"
  method = "POST"
  username = "root"
  password = ""
  data_format = "influx"
  use_batch_format = true
  content_encoding = "identity"
  idle_conn_timeout = 10
EOF
		} >"$run_conf"
		;;
	ours | ours-noloop | ours-stats | ours-base | ours-gzip | input-alone | output-alone)
		local extra="" stats="" bin=$BIN execd_block=$execd_output_settings batch=$execd_batch
		if [[ $scenario == ours-base ]]; then
			bin=$BIN/base batch=$base_execd_batch
			execd_block=$(execd_settings "$batch")
		fi
		if $noloop && [[ $scenario == ours-noloop || $scenario == input-alone ]]; then
			extra='  delivery_tracking = "off"'
		fi
		if [[ $scenario == ours-stats ]]; then
			stats="  stats_interval = \"$stats_interval\""
			extra=$stats
		fi
		# The base build may not read the batch from Telegraf's config.
		[[ $scenario == ours-base ]] && extra+=$'\n'"  metric_batch_size = $batch"
		kafka_window="" kafka_block "$run_group" "$extra" >"$dir/kafka-json.conf"
		cat >"$dir/cnosdb.conf" <<EOF
## Where the guide's [[outputs.http]] wrote, as the README's migration table says.
[[outputs.cnosdb]]
  url = $(toml_string "$write_url")
  timeout = "5s"
  username = "root"
  password = ""
  content_encoding = "$encoding"
$stats
EOF
		{
			printf '%s\n\n' "$agent_block"
			cat <<EOF
[[inputs.execd]]
  command = [$(toml_string "$bin/telegraf-kafka-json"), "-config", $(toml_string "$dir/kafka-json.conf")]
  signal = "none"
  restart_delay = "10s"
  data_format = "influx"

[[outputs.execd]]
  command = [$(toml_string "$bin/telegraf-cnosdb"), "-config", $(toml_string "$dir/cnosdb.conf")]
  data_format = "influx"
  restart_delay = "0s"
$execd_block
$execd_batch_format
EOF
		} >"$run_conf"
		;;
	ceiling)
		run_sink=$dir/sink.json
		{
			printf '%s\n\n' "$agent_block"
			cat <<EOF
## Prints the pre-made lines, then waits on stdin until Telegraf closes it.
[[inputs.execd]]
  command = ["cat", $(toml_string "$lines_file"), "-"]
  signal = "none"
  data_format = "influx"

## Reads stdin and throws it away (counting newlines to see the last).
[[outputs.execd]]
  command = [$(toml_string "$PB"), "discard", "-expect", "$messages", "-done", $(toml_string "$run_sink")]
  data_format = "influx"
$execd_output_settings
$execd_batch_format
EOF
		} >"$run_conf"
		;;
	esac
}

step "5. Settings ($settings_name), identical for every Telegraf run"
{
	say "Telegraf: $telegraf_said ($telegraf_bin)"
	say "messages: $messages ($shape), topic partitions: $partitions, repeats: $repeat"
	say ""
	say "## agent (every Telegraf run)"
	say "$agent_block"
	say ""
	say "## stock: kafka_consumer block (ours reads the same block from its -config file, without max_undelivered_messages)"
	kafka_block "<fresh group per run>"
	say ""
	say "## ours and the ceiling: what [[outputs.execd]] adds"
	say "$execd_output_settings"
} >"$RESULTS/settings.txt"
sed 's/^/    /' "$RESULTS/settings.txt"
say "    full configs of every run: $CONF/"

# --- runs -------------------------------------------------------------------

# measure SCENARIO LABEL REPEAT FLAGS... -- COMMAND...
measure() {
	local scenario=$1 label=$2 rep=$3
	shift 3
	run_fg "$PB" run -scenario "$scenario" -label "$label" -repeat "$rep" -expect "$messages" \
		-log "$LOGS/$scenario-$rep.log" -result "$RESULTS_FILE" -server-pid "$server_pid" \
		-stall "${stall}s" -timeout "${run_timeout}s" "$@" ||
		say "    (pipeline-bench run $scenario #$rep failed; see $LOGS/$scenario-$rep.log)"
}

scenarios=(stock ours)
$noloop && scenarios+=(ours-noloop)
[[ -n $baseline ]] && scenarios+=(ours-base)
scenarios+=(ceiling)
$alone && scenarios+=(input-alone output-alone)
if [[ -n $only ]]; then
	scenarios=("${wanted[@]}")
	if [[ " ${scenarios[*]} " == *" ours-noloop "* ]] && ! $noloop; then
		die "--only ours-noloop: this telegraf-kafka-json has no delivery_tracking option"
	fi
fi

step "6. Runs: ${scenarios[*]}; $repeat time(s) each, interleaved"
for ((rep = 1; rep <= repeat; rep++)); do
	for scenario in "${scenarios[@]}"; do
		write_configs "$scenario" "$rep"
		case $scenario in
		stock)
			say "    [$rep/$repeat] stock: $(basename "$telegraf_bin") with inputs.kafka_consumer (json) + outputs.http, until $messages rows are stored"
			measure stock "stock (kafka_consumer + http)" "$rep" -mode telegraf -observe "$observe" \
				-server "$server_url" -db "$run_db" -- "$telegraf_bin" --config "$run_conf"
			;;
		ours | ours-noloop | ours-stats | ours-base | ours-gzip)
			local_label="ours (execd in + out)" bin=$BIN
			[[ $scenario == ours-noloop ]] && local_label="ours (no loop)"
			[[ $scenario == ours-gzip ]] && local_label="ours (gzip)"
			[[ $scenario == ours-stats ]] && local_label="ours (self-metrics $stats_interval)"
			[[ $scenario == ours-base ]] && local_label="ours at $base_rev" bin=$BIN/base
			say "    [$rep/$repeat] $scenario: the same Telegraf with inputs.execd telegraf-kafka-json + outputs.execd telegraf-cnosdb"
			measure "$scenario" "$local_label" "$rep" -mode telegraf -observe "$observe" \
				-server "$server_url" -db "$run_db" \
				-input-match "$bin/telegraf-kafka-json" -output-match "$bin/telegraf-cnosdb" \
				-- "$telegraf_bin" --config "$run_conf"
			;;
		ceiling)
			say "    [$rep/$repeat] ceiling: the same Telegraf between \`cat LINES -\` and a child that only reads stdin"
			measure ceiling "ceiling (cat -> discard)" "$rep" -mode telegraf -observe sink -sink "$run_sink" \
				-input-match "$lines_file" -output-match "$PB discard" \
				-- "$telegraf_bin" --config "$run_conf"
			;;
		input-alone)
			say "    [$rep/$repeat] input alone: telegraf-kafka-json -> a line counter, until $messages lines"
			measure input-alone "input alone (-> counter)" "$rep" -mode input-alone -observe stdout \
				-- "$BIN/telegraf-kafka-json" -config "$(dirname "$run_conf")/kafka-json.conf"
			;;
		output-alone)
			say "    [$rep/$repeat] output alone: $messages lines from a file -> telegraf-cnosdb -> test server"
			measure output-alone "output alone (file ->)" "$rep" -mode output-alone -observe "$observe" \
				-server "$server_url" -db "$run_db" -stdin "$lines_file" \
				-- "$BIN/telegraf-cnosdb" -config "$(dirname "$run_conf")/cnosdb.conf"
			;;
		esac
	done
done

step "7. Table (medians of $repeat run(s))"
[[ -s $RESULTS_FILE ]] || die "no run produced a result"
"$PB" table "$RESULTS_FILE" | tee "$RESULTS/table.txt"
"$PB" table -markdown "$RESULTS_FILE" >"$RESULTS/table.md"

# --- Go benchmarks ----------------------------------------------------------

bench_packages=(./plugins/parsers/jsonlp/ ./plugins/inputs/kafka_consumer/ ./plugins/outputs/cnosdb/)

# rename_bench FILE FROM TO: the benchmark lines of FROM under the name TO,
# with the header lines benchstat reads (goos, goarch, pkg, cpu).
rename_bench() {
	awk -v from="$2" -v to="$3" '
		/^(goos|goarch|pkg|cpu):/ { print; next }
		index($1, from) == 1 { sub("^" from, to, $1); print }
	' "$1"
}

if $bench_go; then
	step "8. Go benchmarks of the hot paths (-count $bench_count) and benchstat"
	say "    go test -run '^\$' -bench . -benchmem -count $bench_count ${bench_packages[*]}"
	bench_file=$RESULTS/go-bench.txt
	run_fg go -C "$REPO" test -run '^$' -bench . -benchmem -count "$bench_count" "${bench_packages[@]}" >"$bench_file" 2>&1 ||
		say "    go test -bench failed; see $bench_file"
	stat_file=$RESULTS/benchstat.txt
	benchstat_bin=$CACHE/bin/benchstat
	if [[ ! -x $benchstat_bin ]]; then
		say "    go install golang.org/x/perf/cmd/benchstat@latest (into $CACHE/bin)"
		mkdir -p "$CACHE/bin"
		(cd / && GOBIN=$CACHE/bin GOWORK=off GOFLAGS= go install golang.org/x/perf/cmd/benchstat@latest) >"$LOGS/benchstat-install.log" 2>&1 || true
	fi
	if [[ -x $benchstat_bin ]]; then
		previous=""
		for dir in "$out_root"/*/; do
			dir=${dir%/}
			[[ $dir != "$RESULTS" && -s $dir/go-bench.txt ]] && previous=$dir
		done
		{
			say "## benchstat go-bench.txt (this run, $bench_count samples each)"
			"$benchstat_bin" this-run="$bench_file"
			say ""
			say "## JSON -> line protocol per message: Telegraf's json parser + influx serializer (stock) vs jsonlp (ours)"
			rename_bench "$bench_file" BenchmarkTelegraf/ BenchmarkJSONToLineProtocol/ >"$DATA/bench-stock.txt"
			rename_bench "$bench_file" BenchmarkAppend/ BenchmarkJSONToLineProtocol/ >"$DATA/bench-ours.txt"
			"$benchstat_bin" stock="$DATA/bench-stock.txt" ours="$DATA/bench-ours.txt"
			say ""
			say "## line-protocol validation per line: line-protocol/v2 Decoder vs our scanner"
			rename_bench "$bench_file" BenchmarkValidate/decoder BenchmarkValidate >"$DATA/bench-decoder.txt"
			rename_bench "$bench_file" BenchmarkValidate/scanner BenchmarkValidate >"$DATA/bench-scanner.txt"
			"$benchstat_bin" decoder="$DATA/bench-decoder.txt" scanner="$DATA/bench-scanner.txt"
			if [[ -n $previous ]]; then
				say ""
				say "## the previous run ($(basename "$previous")) against this one"
				"$benchstat_bin" previous="$previous/go-bench.txt" current="$bench_file"
			fi
		} >"$stat_file" 2>&1
		sed 's/^/    /' "$stat_file"
	else
		say "    benchstat could not be installed (golang.org/x/perf not reachable?); see $LOGS/benchstat-install.log" |
			tee "$stat_file"
		grep -E '^(Benchmark|goos|goarch|pkg|cpu)' "$bench_file" | sed 's/^/    /' || true
	fi
fi

# --- machine ----------------------------------------------------------------

{
	say "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	say "nproc: $(nproc)"
	say "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	say "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	say "kernel: $(uname -sr)"
	say "go: $(go version)"
	say "telegraf: $telegraf_said"
	say "kafka: $(
		eval "$("$REPO/scripts/kafka.sh" env)"
		printf '%s' "${KAFKA_VERSION:-?}"
	) (scripts/kafka.sh, shared broker)"
	say "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RESULTS/machine.txt"
step "Machine"
sed 's/^/    /' "$RESULTS/machine.txt"
ln -sfn "$stamp" "$out_root/latest"
say ""
say "results: $RESULTS (table.txt, table.md, results.jsonl, settings.txt, machine.txt, benchstat.txt, logs/, configs/)"
