#!/usr/bin/env bash
# Runs a real CnosDB server (singleton mode) for the tests,
# the demo and the benchmark, from a binary found on this machine.
#
#   scripts/cnosdb.sh path [--version V]        print the binary the tests use; exit 1 saying why there is none
#   scripts/cnosdb.sh versions                  list the binaries found, newest first: VERSION PATH
#   scripts/cnosdb.sh install FILE              keep a CnosDB binary (or a CnosDB .deb, or a .gz/.xz/.zst/.tar.gz of the binary) in the cache
#   scripts/cnosdb.sh start [--dir D] [--port P] [--auth] [--max-body SIZE] [--fresh]
#                                               start a server on D, wait until /api/v1/ping answers
#   scripts/cnosdb.sh stop [--dir D] [--kill]   SIGTERM, wait, SIGKILL (--kill: SIGKILL at once, as a crash)
#   scripts/cnosdb.sh status [--dir D]          exit 0 when running, 3 when stopped
#   scripts/cnosdb.sh env [--dir D]             `export CNOSDB_URL=... CNOSDB_BIN=...` for eval
#   scripts/cnosdb.sh sql [--dir D] [--db DB] STATEMENT
#                                               run SQL as root, print the CSV answer
#   scripts/cnosdb.sh logs [--dir D]            the tail of the server's log
#
# Where the binary comes from, first found wins:
#   1. $CNOSDB_BIN;
#   2. the cache, $KAFKA_CNOSDB_CACHE/cnosdb/<version>/cnosdb (default cache
#      ~/.cache/kafka-cnosdb), newest version first, or the one --version (or
#      $CNOSDB_VERSION) names, for every command that runs a server;
#   3. ../shared/cnosdb/ beside the repository: a `cnosdb` binary, or a
#      cnosdb*.gz, *.xz, *.zst, *.tar.gz or *.tgz holding one, unpacked into the
#      cache on first use.
# No package registry serves a CnosDB server. Get one from CnosDB's own
# release packages (the .deb of a release holds usr/bin/cnosdb: hand the
# .deb itself to `install`), or build it from its source as CnosDB's README
# describes and hand `install` the binary. Nothing here downloads or builds
# CnosDB.
#
# The server: `cnosdb run -M singleton` with a config this script writes into
# D/cnosdb.toml at every start, in the layout of the binary's version (2.3.x
# or 2.4.x): data, WAL and logs under D; HTTP on P, its meta service on P+1,
# gRPC on P+2 (2.3 also flight on P+3, TCP on P+4), host 127.0.0.1 in the
# config, though 2.3.0 and 2.4.3 listen on all addresses for HTTP and gRPC
# whatever it says (their DEFAULT_NODE_IP is 0.0.0.0; only the meta port keeps
# to 127.0.0.1): run it where those ports are not reachable from outside; usage
# reporting and self-metrics off; 2 CPUs; a query memory limit of 16 GiB on
# 2.4 (CnosDB's default) and 1 TiB on 2.3, where it is accounting only and
# 16 GiB runs out reading back tens of thousands of series. --auth turns on password checks
# (auth_enabled; root's password is whatever was set with ALTER USER); without
# it CnosDB takes any password. --max-body sets the largest write body
# (write_sql_limit, default 160M; e.g. 64K). --fresh wipes D's data first. Default D:
# $KAFKA_CNOSDB_STATE/cnosdb (default /tmp/kafka-cnosdb/cnosdb); default P:
# $CNOSDB_PORT or 18902.
set -euo pipefail

readonly CACHE_ROOT="${KAFKA_CNOSDB_CACHE:-$HOME/.cache/kafka-cnosdb}/cnosdb"
readonly REPO=$(cd "$(dirname "$0")/.." && pwd)
readonly SHARED=$(cd "$REPO/.." && pwd)/shared/cnosdb
readonly START_TIMEOUT=${CNOSDB_START_TIMEOUT:-90}
readonly STOP_TIMEOUT=20

dir=${KAFKA_CNOSDB_STATE:-/tmp/kafka-cnosdb}/cnosdb
port=${CNOSDB_PORT:-18902}
want=${CNOSDB_VERSION:-}

log() { printf 'cnosdb.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p;}' "$0" >&2
	exit 2
}
now_ms() { date +%s%3N; }

# --- the binary -------------------------------------------------------------

# version_of BIN prints "2.4.3" for `cnosdb 2.4.3, revision ...`.
version_of() {
	local out
	out=$("$1" --version 2>/dev/null | head -n 1) || return 1
	out=${out#cnosdb }
	out=${out%%,*}
	out=${out%% *}
	[[ $out =~ ^[0-9][0-9A-Za-z.+-]*$ ]] || return 1
	echo "$out"
}

# unpack FILE DEST: writes the cnosdb binary that FILE holds to DEST.
unpack() {
	local file=$1 dest=$2 tmp
	tmp=$(mktemp -d)
	# shellcheck disable=SC2064 # expand now: tmp is local
	trap "rm -rf '$tmp'" RETURN
	case $file in
	*.deb) command -v dpkg-deb >/dev/null || die "dpkg-deb is needed to unpack $file"; dpkg-deb -x "$file" "$tmp" ;;
	*.tar.gz | *.tgz) tar -xzf "$file" -C "$tmp" ;;
	*.tar.xz) tar -xJf "$file" -C "$tmp" ;;
	*.tar.zst) command -v zstd >/dev/null || die "zstd is needed to unpack $file"; zstd -dc "$file" | tar -x -C "$tmp" ;;
	*.gz) gzip -dc "$file" >"$tmp/cnosdb" ;;
	*.xz) command -v xz >/dev/null || die "xz is needed to unpack $file"; xz -dc "$file" >"$tmp/cnosdb" ;;
	*.zst) command -v zstd >/dev/null || die "zstd is needed to unpack $file"; zstd -dc "$file" >"$tmp/cnosdb" ;;
	*) cp "$file" "$tmp/cnosdb" ;;
	esac
	local found
	found=$(find "$tmp" -type f -name cnosdb | head -n 1)
	[[ -n $found ]] || die "$file holds no file named cnosdb"
	install -m 0755 "$found" "$dest"
}

# keep FILE: puts the binary FILE holds into the cache, prints its path.
keep() {
	local file=$1 tmp version
	[[ -f $file ]] || die "no such file: $file"
	mkdir -p "$CACHE_ROOT"
	tmp=$(mktemp "$CACHE_ROOT/.incoming.XXXXXX")
	unpack "$file" "$tmp"
	if ! version=$(version_of "$tmp"); then
		rm -f "$tmp"
		die "$file: not a CnosDB binary that runs here (\`cnosdb --version\` failed)"
	fi
	mkdir -p "$CACHE_ROOT/$version"
	mv -f "$tmp" "$CACHE_ROOT/$version/cnosdb"
	log "CnosDB $version kept in $CACHE_ROOT/$version/cnosdb"
	echo "$CACHE_ROOT/$version/cnosdb"
}

# find_binary prints the binary to use (of version $want when set), or says
# on stderr why there is none.
find_binary() {
	if [[ -n ${CNOSDB_BIN:-} ]]; then
		[[ -x $CNOSDB_BIN ]] || die "CNOSDB_BIN=$CNOSDB_BIN is not an executable file"
		if [[ -n $want && $(version_of "$CNOSDB_BIN") != "$want" ]]; then
			die "CNOSDB_BIN=$CNOSDB_BIN is CnosDB $(version_of "$CNOSDB_BIN"), not $want"
		fi
		echo "$CNOSDB_BIN"
		return
	fi
	if [[ -n $want ]]; then
		[[ -x $CACHE_ROOT/$want/cnosdb ]] && { echo "$CACHE_ROOT/$want/cnosdb"; return; }
		log "no CnosDB $want in $CACHE_ROOT (scripts/cnosdb.sh versions lists what is there)"
		return 1
	fi
	local cached
	cached=$(ls -d "$CACHE_ROOT"/*/cnosdb 2>/dev/null | sort -V -r | head -n 1 || true)
	if [[ -n $cached && -x $cached ]]; then
		echo "$cached"
		return
	fi
	local f
	for f in "$SHARED"/cnosdb "$SHARED"/cnosdb*.tar.gz "$SHARED"/cnosdb*.tgz "$SHARED"/cnosdb*.tar.xz \
		"$SHARED"/cnosdb*.tar.zst "$SHARED"/cnosdb*.gz "$SHARED"/cnosdb*.xz "$SHARED"/cnosdb*.zst; do
		[[ -f $f ]] || continue
		keep "$f"
		return
	done
	log "no CnosDB binary: CNOSDB_BIN is not set, $CACHE_ROOT holds none, and $SHARED holds none"
	log "get one from a CnosDB release package or a build of its source, then: scripts/cnosdb.sh install FILE"
	return 1
}

# --- the server -------------------------------------------------------------

pidfile() { echo "$dir/cnosdb.pid"; }

live_pid() {
	local file pid
	file=$(pidfile)
	[[ -f $file ]] || return 1
	pid=$(<"$file")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir/cnosdb.toml" || return 1
	echo "$pid"
}

recorded_port() {
	if [[ -f $dir/port ]]; then cat "$dir/port"; else echo "$port"; fi
}

# bytes_of 64K prints 65536.
bytes_of() {
	local n=${1%[KMG]}
	case $1 in
	*K) echo $((n << 10)) ;;
	*M) echo $((n << 20)) ;;
	*G) echo $((n << 30)) ;;
	*) echo "$n" ;;
	esac
}

# write_config_23 writes the config layout of CnosDB 2.3.x.
write_config_23() {
	local auth=$1 max_body=$2
	cat >"$dir/cnosdb.toml" <<EOF
# Written by scripts/cnosdb.sh at every start (CnosDB 2.3 layout); edits are lost.
reporting_disabled = true
host = "127.0.0.1"

# memory sizes only the query engine's accounting pool in 2.3 (main.rs: a
# GreedyMemoryPool of memory GiB): it reserves about 0.5 MB a series for
# every series a scan touches, whatever the filter, so 39,000 series after
# a restart ask for more than 16 GiB while the server's RSS stays near
# 400 MB.
[deployment]
mode = "singleton"
cpu = 2
memory = 1024

[query]
auth_enabled = $auth
write_sql_limit = $(bytes_of "$max_body")

[storage]
path = "$dir/data"

[wal]
path = "$dir/wal"

[cache]

[log]
level = "info"
path = "$dir/log"

[security]

[heartbeat]

[cluster]
name = "kafka-cnosdb-test"
meta_service_addr = ["127.0.0.1:$((port + 1))"]
http_listen_port = $port
grpc_listen_port = $((port + 2))
flight_rpc_listen_port = $((port + 3))
tcp_listen_port = $((port + 4))

[node_basic]
store_metrics = false

[hinted_off]
path = "$dir/hh"
EOF
}

write_config() {
	local auth=$1 max_body=$2 version=$3
	mkdir -p "$dir/data" "$dir/wal" "$dir/log"
	echo "$port" >"$dir/port"
	if [[ $version == 2.3.* ]]; then
		write_config_23 "$auth" "$max_body"
		return
	fi
	cat >"$dir/cnosdb.toml" <<EOF
# Written by scripts/cnosdb.sh at every start; edits are lost.
[global]
host = "127.0.0.1"
cluster_name = "kafka-cnosdb-test"
store_metrics = false
pre_create_bucket = false

[deployment]
mode = "singleton"
cpu = 2
memory = 16

[meta]
service_addr = ["127.0.0.1:$((port + 1))"]

[query]
auth_enabled = $auth
write_sql_limit = "$max_body"

[storage]
path = "$dir/data"

[wal]
path = "$dir/wal"

[log]
level = "info"
path = "$dir/log"

[service]
http_listen_port = $port
grpc_listen_port = $((port + 2))
enable_report = false
EOF
}

ping_ok() { curl -fsS -m 2 "http://127.0.0.1:$1/api/v1/ping" >/dev/null 2>&1; }

cmd_start() {
	local auth=$1 fresh=$2 max_body=$3 bin pid deadline
	bin=$(find_binary)
	if pid=$(live_pid); then
		log "already running (pid $pid) on $dir: stopping it first"
		cmd_stop false
	fi
	if $fresh; then
		rm -rf "$dir"
	fi
	local p version
	for p in $(seq "$port" $((port + 4))); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			die "port $p is in use: pick another with --port (P to P+4 are used)"
		fi
	done
	version=$(version_of "$bin") || die "$bin: \`cnosdb --version\` failed"
	write_config "$auth" "$max_body" "$version"
	printf '\n===== %s starting %s =====\n' "$(date '+%F %T')" "$bin" >>"$dir/cnosdb.out"
	# setsid: a Ctrl-C meant for the caller must not reach the server.
	(cd "$dir" && exec setsid "$bin" run --config "$dir/cnosdb.toml" -M singleton </dev/null >>"$dir/cnosdb.out" 2>&1 9>&-) &
	pid=$!
	echo "$pid" >"$(pidfile)"
	deadline=$(($(now_ms) + START_TIMEOUT * 1000))
	until ping_ok "$port"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$dir/cnosdb.out" >&2 || true
			die "CnosDB exited during start (log: $dir/cnosdb.out)"
		fi
		if (($(now_ms) > deadline)); then
			tail -n 30 "$dir/cnosdb.out" >&2 || true
			kill -KILL "$pid" 2>/dev/null || true
			die "CnosDB does not answer /api/v1/ping after ${START_TIMEOUT}s (log: $dir/cnosdb.out)"
		fi
		sleep 0.2
	done
	log "CnosDB $(version_of "$bin" || echo '?') serving on http://127.0.0.1:$port (pid $pid, dir $dir, auth $auth)"
}

cmd_stop() {
	local kill_now=$1 pid i
	if ! pid=$(live_pid); then
		rm -f "$(pidfile)"
		log "not running ($dir)"
		return
	fi
	if $kill_now; then
		kill -KILL "$pid" 2>/dev/null || true
	else
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "CnosDB did not exit within ${STOP_TIMEOUT}s of SIGTERM: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	rm -f "$(pidfile)"
	log "CnosDB stopped (pid $pid)"
}

cmd_status() {
	local pid
	if pid=$(live_pid); then
		echo "running: pid $pid, http://127.0.0.1:$(recorded_port), dir $dir"
		return 0
	fi
	echo "stopped (dir $dir)"
	return 3
}

cmd_versions() {
	local bin
	if [[ -n ${CNOSDB_BIN:-} ]]; then
		echo "$(version_of "$CNOSDB_BIN" || echo '?') $CNOSDB_BIN"
		return
	fi
	bin=$(find_binary) || return 1 # unpacks ../shared/cnosdb/ into an empty cache
	for bin in $(ls -d "$CACHE_ROOT"/*/cnosdb 2>/dev/null | sort -V -r); do
		[[ -x $bin ]] && echo "$(basename "$(dirname "$bin")") $bin"
	done
}

cmd_env() {
	local bin
	bin=$(find_binary)
	printf 'export CNOSDB_BIN=%q CNOSDB_URL=%q\n' "$bin" "http://127.0.0.1:$(recorded_port)"
}

cmd_sql() {
	local db=$1 stmt=$2
	curl -fsS -u root: -H 'Accept: application/csv' --data-binary "$stmt" \
		"http://127.0.0.1:$(recorded_port)/api/v1/sql?db=$db" || die "the query failed: $stmt"
}

main() {
	local cmd="" auth=false fresh=false kill_now=false db=public port_set=false max_body=160M
	local -a rest=()
	while (($#)); do
		case $1 in
		--dir) dir=${2:?--dir needs a directory}; shift 2 ;;
		--port) port=${2:?--port needs a port}; port_set=true; shift 2 ;;
		--db) db=${2:?--db needs a database}; shift 2 ;;
		--version) want=${2:?--version needs a version}; shift 2 ;;
		--auth) auth=true; shift ;;
		--max-body) max_body=${2:?--max-body needs a size}; shift 2 ;;
		--fresh) fresh=true; shift ;;
		--kill) kill_now=true; shift ;;
		-h | --help) usage ;;
		*)
			if [[ -z $cmd ]]; then cmd=$1; else rest+=("$1"); fi
			shift
			;;
		esac
	done
	[[ -n $cmd ]] || usage
	[[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65534)) || die "bad port: $port"
	dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
	# A server started again on its dir keeps its address.
	$port_set || [[ ! -f $dir/port ]] || port=$(<"$dir/port")
	case $cmd in
	path) find_binary ;;
	versions) cmd_versions ;;
	install) [[ ${#rest[@]} -eq 1 ]] || usage; keep "${rest[0]}" >/dev/null ;;
	start)
		[[ $max_body =~ ^[0-9]+[KMG]?$ ]] || die "bad --max-body: $max_body (e.g. 64K, 160M)"
		cmd_start "$auth" "$fresh" "$max_body"
		;;
	stop) cmd_stop "$kill_now" ;;
	status) cmd_status ;;
	env) cmd_env ;;
	sql) [[ ${#rest[@]} -eq 1 ]] || usage; cmd_sql "$db" "${rest[0]}" ;;
	logs) tail -n 100 "$dir/cnosdb.out" ;;
	*) usage ;;
	esac
}

main "$@"
