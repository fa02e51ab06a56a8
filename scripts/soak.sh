#!/usr/bin/env bash
# Soak test: runs the pipeline (Kafka -> stock Telegraf with our two execd
# children -> CnosDB test server) at a fixed rate for N minutes, samples the
# memory, threads and open files of both children every few seconds, prints
# the series and a verdict: do they stay flat?
#
#   scripts/soak.sh [--minutes 2] [--rate 200] [--every 5] [--telegraf latest|1.27.1] [--rev REV]
#
# Bounded and local: 1 to 60 minutes, 1 to 2000 messages/s (rate x minutes
# messages in all), loopback only. --rev REV tests the binaries of a git
# revision instead of the working tree.
#
# What is sampled: VmRSS and Threads from /proc/PID/status and the number of
# open fds (/proc/PID/fd). The binaries expose no goroutine count (no pprof
# or expvar endpoint), so OS threads stand in for it: a goroutine leak that
# blocks in syscalls grows them, one that parks in channels does not, but
# shows in RSS over a long enough run.
#
# Verdict: after a warm-up (the first quarter of the samples), the last
# third of each series is compared with the first third: RSS may grow by
# at most max(10%, 8 MiB), threads and fds by at most 3. Exit 1 when not flat
# or when messages were lost.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=2 rate=200 every=5 telegraf_version=latest rev=""
while (($#)); do
	case $1 in
	--minutes) minutes=${2:?}; shift 2 ;;
	--rate) rate=${2:?}; shift 2 ;;
	--every) every=${2:?}; shift 2 ;;
	--telegraf) telegraf_version=${2:?}; shift 2 ;;
	--rev) rev=${2:?}; shift 2 ;;
	-h | --help) sed -n '2,23s/^# \{0,1\}//p' "$0" >&2; exit 0 ;;
	*) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
[[ $minutes =~ ^[0-9]+$ ]] && ((minutes >= 1 && minutes <= 60)) || { echo "soak.sh: --minutes must be 1..60" >&2; exit 2; }
[[ $rate =~ ^[0-9]+$ ]] && ((rate >= 1 && rate <= 2000)) || { echo "soak.sh: --rate must be 1..2000 messages/s" >&2; exit 2; }
[[ $every =~ ^[0-9]+$ ]] && ((every >= 1 && every <= 60)) || { echo "soak.sh: --every must be 1..60 seconds" >&2; exit 2; }

log() { printf 'soak.sh: %s\n' "$*" >&2; }
count=$((rate * 60 * minutes))
interval=$(awk -v r="$rate" 'BEGIN { printf "%.6f", 1 / r }')

work=$(mktemp -d /tmp/soak.XXXXXX)
telegraf_pid="" server_pid="" producer_pid=""
cleanup() {
	local pid
	for pid in $producer_pid $telegraf_pid $server_pid; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in $producer_pid $telegraf_pid $server_pid; do
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building into $work/bin${rev:+ (revision $rev)}"
src=$PWD
if [[ -n $rev ]]; then
	src=$work/src
	mkdir -p "$src"
	git archive --format=tar "$rev" | tar -x -C "$src"
fi
for cmd in telegraf-kafka-json telegraf-cnosdb cnosdb-test-server oceanic-producer; do
	(cd "$src" && go build -o "$work/bin/$cmd" "./cmd/$cmd")
done
telegraf=$(scripts/telegraf.sh build "$telegraf_version" | tail -n1)

scripts/kafka.sh start
eval "$(scripts/kafka.sh env)"
topic=faults-soak
scripts/kafka.sh create-topic "$topic" 2
group=soak-$(date +%s)-$$

"$work/bin/cnosdb-test-server" -listen 127.0.0.1:0 2>"$work/cnosdb.log" &
server_pid=$!
for _ in $(seq 100); do
	url=$(sed -n 's/.* on \(http:[^ ]*\)$/\1/p' "$work/cnosdb.log")
	[[ -n $url ]] && break
	sleep 0.1
done
[[ -n $url ]] || { log "the CnosDB test server did not start"; cat "$work/cnosdb.log" >&2; exit 1; }

cat >"$work/kafka-json.conf" <<EOF
[[inputs.kafka_consumer]]
  brokers = ["$KAFKA_BROKERS"]
  topics = ["$topic"]
  consumer_group = "$group"
  offset = "newest"
  data_format = "json"
EOF
cat >"$work/cnosdb.conf" <<EOF
[[outputs.cnosdb]]
  urls = ["$url"]
EOF
cat >"$work/telegraf.conf" <<EOF
[agent]
  interval = "1s"
  flush_interval = "1s"
  hostname = "soak"
[[inputs.execd]]
  command = ["$work/bin/telegraf-kafka-json", "-config", "$work/kafka-json.conf"]
  signal = "none"
  data_format = "influx"
[[outputs.execd]]
  command = ["$work/bin/telegraf-cnosdb", "-config", "$work/cnosdb.conf"]
  data_format = "influx"
EOF
"$telegraf" --config "$work/telegraf.conf" >"$work/telegraf.log" 2>&1 &
telegraf_pid=$!
for _ in $(seq 600); do
	grep -q "joined group" "$work/telegraf.log" && break
	kill -0 "$telegraf_pid" 2>/dev/null || { log "telegraf exited"; cat "$work/telegraf.log" >&2; exit 1; }
	sleep 0.1
done
grep -q "joined group" "$work/telegraf.log" || { log "the input did not join its group"; tail -n 30 "$work/telegraf.log" >&2; exit 1; }

child() { # NAME: the pid of Telegraf's child with that name
	ps --ppid "$telegraf_pid" -o pid=,args= | awk -v n="$1" '$2 ~ n { print $1; exit }'
}
status_of() { # PID: "rss_kib threads fds", zeros when gone
	local pid=$1
	if [[ -z $pid || ! -r /proc/$pid/status ]]; then
		echo "0 0 0"
		return
	fi
	awk '/^VmRSS:/ { r = $2 } /^Threads:/ { t = $2 } END { printf "%d %d ", r, t }' "/proc/$pid/status"
	find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}
stored() { curl -fsS "$url/_test/stats" | jq -r '.lines_stored'; }

log "Telegraf $telegraf_version, topic $topic, group $group, CnosDB test server $url"
log "producing $count messages at $rate/s for $minutes min; sampling every ${every}s"
"$work/bin/oceanic-producer" -brokers "$KAFKA_BROKERS" -topic "$topic" -count "$count" -interval "$interval" -quiet >"$work/producer.log" 2>&1 &
producer_pid=$!

series=$work/series.tsv
printf 'seconds\tin_rss_mib\tin_threads\tin_fds\tout_rss_mib\tout_threads\tout_fds\tstored\n' | tee "$series"
started=$(date +%s)
deadline=$((started + minutes * 60 + 120))
in_pid=$(child telegraf-kafka-json)
out_pid=$(child telegraf-cnosdb)
while :; do
	read -r in_rss in_threads in_fds < <(status_of "$in_pid")
	read -r out_rss out_threads out_fds < <(status_of "$out_pid")
	printf '%d\t%.1f\t%d\t%d\t%.1f\t%d\t%d\t%d\n' $(($(date +%s) - started)) \
		"$(awk -v k="$in_rss" 'BEGIN { print k / 1024 }')" "$in_threads" "$in_fds" \
		"$(awk -v k="$out_rss" 'BEGIN { print k / 1024 }')" "$out_threads" "$out_fds" "$(stored)" | tee -a "$series"
	kill -0 "$producer_pid" 2>/dev/null || break
	(($(date +%s) < deadline)) || { log "the producer did not finish in time"; break; }
	sleep "$every"
done
wait "$producer_pid" || log "the producer failed: $(tail -n 3 "$work/producer.log")"
producer_pid=""
sent=$(grep -o 'sent [0-9]*' "$work/producer.log" | tail -n1 | awk '{ print $2 }')
sent=${sent:-$count}
for _ in $(seq 600); do
	(($(stored) >= sent)) && break
	sleep 0.1
done
final=$(stored)
elapsed=$(($(date +%s) - started))

kill -TERM "$telegraf_pid"
wait "$telegraf_pid" || true
telegraf_pid=""

printf '\nsent %s, stored %s lines in %ss (%s/s achieved)\n' "$sent" "$final" "$elapsed" \
	"$(awk -v n="$final" -v s="$elapsed" 'BEGIN { printf "%.0f", n / (s > 0 ? s : 1) }')"
printf 'children restarted: %s\n' "$(grep -c 'exited' "$work/telegraf.log" || true)"

# Flatness: warm-up skipped, last third against first third of the rest.
verdict=$(awk -F'\t' '
	NR == 1 { for (i = 2; i <= 7; i++) name[i] = $i; next }
	{ n++; for (i = 2; i <= 7; i++) v[n, i] = $i }
	END {
		start = int(n / 4) + 1
		len = n - start + 1
		if (len < 3) { print "too few samples for a verdict (run longer or sample more often)"; exit }
		third = int(len / 3)
		bad = ""
		for (i = 2; i <= 7; i++) {
			a = 0; b = 0
			for (k = start; k < start + third; k++) a += v[k, i]
			for (k = n - third + 1; k <= n; k++) b += v[k, i]
			a /= third; b /= third
			if (name[i] ~ /rss/) { allowed = (a * 0.10 > 8) ? a * 0.10 : 8 } else { allowed = 3 }
			printf "%s: %.1f -> %.1f (allowed growth %.1f)\n", name[i], a, b, allowed > "/dev/stderr"
			if (b - a > allowed) bad = bad " " name[i]
		}
		if (bad == "") print "flat"; else print "GROWING:" bad
	}' "$series")
printf 'verdict: %s\n' "$verdict"
printf 'series: %s, logs: %s\n' "$series" "$work"
[[ $verdict == flat && $final -ge $sent ]]
