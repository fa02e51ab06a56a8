#!/usr/bin/env bash
# Builds stock Telegraf from the Go module proxy, with only the plugins the
# end-to-end tests use, and caches one binary per version.
#
#   scripts/telegraf.sh build [VERSION]   build (or reuse) VERSION; last stdout line is the binary
#   scripts/telegraf.sh path VERSION      print the cached binary, fail if it is not built
#   scripts/telegraf.sh versions          the versions we test: the guide's and the newest release
#
# VERSION is 1.27.1, v1.27.1 or `latest` (the newest release the module proxy
# serves). Cache: ${KAFKA_CNOSDB_CACHE:-$HOME/.cache/kafka-cnosdb}/telegraf/<version>/telegraf
set -euo pipefail

readonly GUIDE_VERSION=1.27.1
readonly TELEGRAF_MODULE=github.com/influxdata/telegraf
readonly TELEGRAF_MAIN=$TELEGRAF_MODULE/cmd/telegraf
# `custom` drops every plugin whose all/*.go file is not selected by one of
# the other tags (same names in 1.27.1 and 1.37.x).
readonly BUILD_TAGS="custom inputs.execd inputs.kafka_consumer outputs.execd outputs.http outputs.file outputs.discard parsers.json parsers.influx serializers.influx"
readonly CACHE_ROOT="${KAFKA_CNOSDB_CACHE:-$HOME/.cache/kafka-cnosdb}/telegraf"

log() { printf 'telegraf.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

usage() {
	sed -n '2,10s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

# The caller's Go settings must not leak into a build of someone else's module:
# a workspace, -mod=vendor or a cross-compile target would break `go install
# pkg@version`. Release builds of Telegraf are static (CGO off) too.
sane_go_env() {
	export GOWORK=off GO111MODULE=on CGO_ENABLED=0 GOFLAGS=-buildvcs=false
	# Never fetch another toolchain behind our back; a release needing a newer Go
	# fails with a clear "requires go >= X" instead.
	export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
	unset GOOS GOARCH GOEXPERIMENT
}

# Runs go outside any module so the caller's go.mod cannot influence queries.
go_outside_module() {
	(cd / && go "$@")
}

# Prints the bare version (no leading v) for 1.27.1, v1.27.1 or latest.
resolve_version() {
	local requested=$1 resolved
	case $requested in
	latest)
		if ! resolved=$(go_outside_module list -m -json "$TELEGRAF_MODULE@latest" | jq -r .Version); then
			# Offline: the module cache is a proxy of everything fetched so far.
			log "module proxy unreachable; resolving latest from the module cache"
			resolved=$(GOPROXY="file://$(go env GOMODCACHE)/cache/download" GOSUMDB=off \
				go_outside_module list -m -json "$TELEGRAF_MODULE@latest" | jq -r .Version) ||
				die "cannot resolve the latest Telegraf release"
		fi
		;;
	v[0-9]* | [0-9]*) resolved=$requested ;;
	*) die "not a version: $requested" ;;
	esac
	[[ $resolved =~ ^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || die "not a version: $resolved"
	printf '%s\n' "${resolved#v}"
}

# Everything that shapes the binary; a cached binary built differently is rebuilt.
build_recipe() {
	local version=$1
	printf 'module %s@v%s\ntags %s\nldflags %s\ngo %s\n' \
		"$TELEGRAF_MODULE" "$version" "$BUILD_TAGS" "$(ldflags_for "$version")" "$(go env GOVERSION)"
}

ldflags_for() {
	# Without -X the binary reports "Telegraf unknown": the Makefile stamps it.
	printf '%s' "-s -w -X $TELEGRAF_MODULE/internal.Version=$1"
}

cached_binary() { printf '%s\n' "$CACHE_ROOT/$1/telegraf"; }

is_cached() {
	local version=$1 dir=$CACHE_ROOT/$1
	[[ -x $dir/telegraf && -f $dir/recipe ]] && [[ "$(cat "$dir/recipe")" == "$(build_recipe "$version")" ]]
}

# go install pkg@version refuses modules whose go.mod has replace or exclude
# directives (it would build them differently than their own authors do). Then
# build in a writable copy of the same module-proxy zip, as its main module.
build_from_module_copy() {
	local version=$1 out=$2 work=$3 source_dir
	source_dir=$(go_outside_module mod download -json "$TELEGRAF_MODULE@v$version" | jq -r .Dir) ||
		die "cannot download $TELEGRAF_MODULE@v$version"
	cp -R "$source_dir" "$work/src"
	chmod -R u+w "$work/src"
	(cd "$work/src" && go build -mod=mod -trimpath -tags "$BUILD_TAGS" \
		-ldflags "$(ldflags_for "$version")" -o "$out" ./cmd/telegraf)
}

build() {
	local version dir work install_log started
	version=$(resolve_version "${1:-$GUIDE_VERSION}")
	dir=$CACHE_ROOT/$version
	if is_cached "$version"; then
		cached_binary "$version"
		return
	fi
	mkdir -p "$dir"
	# Concurrent callers wait for one build instead of compiling twice on 2 cores.
	exec 9>"$dir/.lock"
	flock 9
	if is_cached "$version"; then
		cached_binary "$version"
		return
	fi

	work=$(mktemp -d "$dir/.build.XXXXXX")
	# shellcheck disable=SC2064 # expand now: $work is local
	trap "rm -rf '$work'" EXIT
	install_log=$work/install.log
	started=$SECONDS
	log "building Telegraf $version (tags: $BUILD_TAGS)"
	if ! GOBIN=$work/bin go_outside_module install -trimpath -tags "$BUILD_TAGS" \
		-ldflags "$(ldflags_for "$version")" "$TELEGRAF_MAIN@v$version" 2>&1 | tee "$install_log" >&2; then
		grep -q 'interpreted differently' "$install_log" ||
			die "go install of Telegraf $version failed (output above)"
		log "go install refused the module (replace/exclude directives); building a copy of its source"
		mkdir -p "$work/bin"
		build_from_module_copy "$version" "$work/bin/telegraf" "$work"
	fi
	build_recipe "$version" >"$work/recipe"
	# Rename last so an interrupted build never looks cached.
	mv -f "$work/bin/telegraf" "$dir/telegraf"
	mv -f "$work/recipe" "$dir/recipe"
	log "built Telegraf $version in $((SECONDS - started))s"
	cached_binary "$version"
}

path() {
	local version
	[[ $# -eq 1 ]] || usage
	version=$(resolve_version "$1")
	is_cached "$version" || die "Telegraf $version is not built; run: $0 build $version"
	cached_binary "$version"
}

versions() {
	printf '%s\n' "$GUIDE_VERSION" "$(resolve_version latest)"
}

main() {
	[[ $# -ge 1 ]] || usage
	command -v go >/dev/null || die "go is not installed"
	command -v jq >/dev/null || die "jq is not installed"
	sane_go_env
	local command=$1
	shift
	case $command in
	build)
		[[ $# -le 1 ]] || usage
		build "$@"
		;;
	path) path "$@" ;;
	versions)
		[[ $# -eq 0 ]] || usage
		versions
		;;
	*) usage ;;
	esac
}

main "$@"
