#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need (Java,
# Maven, stock Telegraf builds), starts a real Kafka broker, runs every Go
# test against it (and against every real CnosDB binary scripts/cnosdb.sh
# finds, when there is one), runs the fuzz targets briefly, and stops the
# broker.
#
#   scripts/test.sh              # everything
#   scripts/test.sh -short       # unit tests only: no broker, no Telegraf
#   FUZZTIME=5m scripts/test.sh  # fuzz longer (default 15s per target)
set -euo pipefail
cd "$(dirname "$0")/.."

short=false
[[ "${1:-}" == "-short" ]] && short=true
fuzztime=${FUZZTIME:-15s}

step() { printf '\n==> %s\n' "$*" >&2; }

step "go vet"
go vet ./...

if $short; then
  step "unit tests (-short: no broker, no Telegraf)"
  go test -short -count=1 ./...
  exit 0
fi

step "installing test dependencies (Java 17, Maven)"
scripts/install-deps.sh

step "building stock Telegraf (cached after the first run)"
TELEGRAF_OLD=$(scripts/telegraf.sh build 1.27.1)
TELEGRAF_NEW=$(scripts/telegraf.sh build latest)
export TELEGRAF_OLD TELEGRAF_NEW

step "real CnosDB tier"
# The tests find the binaries themselves (internal/cnosdbreal runs
# scripts/cnosdb.sh); this only says, once, whether the tier runs.
if versions=$(scripts/cnosdb.sh versions 2>/tmp/cnosdb-versions.$$); then
	echo "running against real CnosDB $(awk '{print $1}' <<<"$versions" | paste -sd, -) as well as the test server" >&2
else
	echo "skipped, every CnosDB test runs against the test server alone: $(tr '\n' ' ' </tmp/cnosdb-versions.$$)" >&2
fi
rm -f /tmp/cnosdb-versions.$$

step "starting the Kafka broker"
trap 'scripts/kafka.sh stop >&2 || true' EXIT
scripts/kafka.sh start --fresh
eval "$(scripts/kafka.sh env)"

step "go test (unit, differential, real broker, end-to-end)"
go test -count=1 -timeout 20m ./...

step "Debian packages: build, inspect, install/upgrade/purge in a throw-away root"
scripts/package-test.sh

step "fuzzing briefly ($fuzztime per target)"
go test -run '^$' -fuzz '^FuzzAppend$' -fuzztime "$fuzztime" ./plugins/parsers/jsonlp
go test -run '^$' -fuzz '^FuzzReaderWritesDecodableLines$' -fuzztime "$fuzztime" ./plugins/outputs/cnosdb
