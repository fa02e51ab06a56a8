#!/usr/bin/env bash
# Builds one .deb per binary and architecture with nfpm: drop-ins for an
# existing Telegraf install (see packaging/README.md).
#
#   scripts/package.sh [options]          build; the last stdout lines are the .deb paths
#     --version V      package version: 1.2.3, or a tag such as v1.2.3-rc.1 (converted
#                      like `git describe` output; default: from `git describe --tags`)
#     --arch "A B"     Debian architectures (default: "amd64 arm64")
#     --out DIR        where the .deb files go (default: dist)
#     --prebuilt DIR   take DIR/<arch>/<binary> instead of building it, when present
#   scripts/package.sh version [DESCRIBE] the Debian version for `git describe` output
#                                         (default: the current checkout's)
#   scripts/package.sh nfpm               the path of nfpm (built if needed)
#
# nfpm is built once from the Go module proxy into
# ${KAFKA_CNOSDB_CACHE:-$HOME/.cache/kafka-cnosdb}/tools. SOURCE_DATE_EPOCH
# (default: the commit time) stamps the files; PACKAGE_MAINTAINER overrides
# the Maintainer field.
set -euo pipefail

readonly NFPM_MODULE=github.com/goreleaser/nfpm/v2
readonly NFPM_VERSION=v2.45.2
readonly VERSION_VAR=github.com/kafka-cnosdb/telegraf-execd/plugins/common/execd.Version
readonly BINARIES=(telegraf-kafka-json telegraf-cnosdb)
readonly TOOLS_DIR="${KAFKA_CNOSDB_CACHE:-$HOME/.cache/kafka-cnosdb}/tools"

REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
readonly REPO_ROOT

log() { printf 'package.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

usage() {
	sed -n '2,19s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

# Converts `git describe --tags` output (or a version given by hand) into a
# Debian version that sorts the way releases do:
#   v1.2.3 -> 1.2.3, v1.2.3-rc.1 -> 1.2.3~rc.1 (before 1.2.3),
#   v1.2.3-4-gabc1234 -> 1.2.3+4.gabc1234 (after 1.2.3, before 1.2.4).
debian_version() {
	local v=${1#v} commits_after_tag='' release metadata=''
	if [[ $v =~ ^(.+)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		v=${BASH_REMATCH[1]}
		commits_after_tag="${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}"
	fi
	release=${v%%+*}
	[[ $v == *+* ]] && metadata=${v#*+}
	# A semver pre-release (after the first '-') sorts before its release: '~'.
	if [[ $release == *-* ]]; then
		release="${release%%-*}~${release#*-}"
	fi
	v=$release${metadata:++$metadata}${commits_after_tag:++$commits_after_tag}
	# No Debian revision: a '-' would start one, and '_' or ':' are not allowed.
	v=${v//[-_:]/.}
	[[ $v =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "cannot make a Debian version of '$1' (got '$v')"
	printf '%s\n' "$v"
}

# `git describe` of the checkout; with no release tag yet, 0.0.0~git<commits>.<sha>,
# which sorts before any release and, on one branch, by commit count.
checkout_version() {
	local describe count sha
	git -C "$REPO_ROOT" rev-parse --git-dir >/dev/null 2>&1 || die "not a git checkout: pass --version"
	if describe=$(git -C "$REPO_ROOT" describe --tags --match 'v[0-9]*' 2>/dev/null); then
		debian_version "$describe"
		return
	fi
	count=$(git -C "$REPO_ROOT" rev-list --count HEAD)
	sha=$(git -C "$REPO_ROOT" rev-parse --short=7 HEAD)
	printf '0.0.0~git%s.%s\n' "$count" "$sha"
}

# The caller's Go settings must not leak into a tool build or change what we
# cross-compile (GOFLAGS=-mod=vendor, a workspace, a GOOS...).
sane_go_env() {
	export GOWORK=off GO111MODULE=on CGO_ENABLED=0 GOFLAGS=-buildvcs=false
	export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
	unset GOOS GOARCH GOEXPERIMENT GOARM GOAMD64 GOARM64
}

# Prints the path of nfpm, building it from the module proxy the first time.
nfpm_binary() {
	local dir=$TOOLS_DIR/nfpm-$NFPM_VERSION
	if [[ ! -x $dir/nfpm ]]; then
		log "building nfpm $NFPM_VERSION (once, into $dir)"
		mkdir -p "$dir"
		# Outside any module, so our go.mod cannot change nfpm's dependencies.
		(cd / && GOBIN=$dir go install -trimpath "$NFPM_MODULE/cmd/nfpm@$NFPM_VERSION") >&2 ||
			die "go install $NFPM_MODULE/cmd/nfpm@$NFPM_VERSION failed (output above)"
	fi
	printf '%s\n' "$dir/nfpm"
}

go_arch() {
	case $1 in
	amd64 | arm64 | riscv64 | s390x) echo "$1" ;;
	ppc64el) echo ppc64le ;;
	*) die "unsupported architecture: $1 (Debian names: amd64, arm64, ...)" ;;
	esac
}

host_arch() {
	case $(go env GOHOSTARCH) in
	ppc64le) echo ppc64el ;;
	*) go env GOHOSTARCH ;;
	esac
}

# Builds (or takes from --prebuilt) every binary for one architecture into $2.
build_binaries() {
	local arch=$1 dest=$2 version=$3 prebuilt=$4 binary to_build=()
	mkdir -p "$dest"
	for binary in "${BINARIES[@]}"; do
		if [[ -n $prebuilt && -f $prebuilt/$arch/$binary ]]; then
			log "$arch: using prebuilt $prebuilt/$arch/$binary"
			cp "$prebuilt/$arch/$binary" "$dest/$binary"
		else
			to_build+=("./cmd/$binary")
		fi
	done
	((${#to_build[@]})) || return 0
	log "$arch: go build ${to_build[*]}"
	# With several packages, -o DIR/ writes one binary per main package into DIR.
	(cd "$REPO_ROOT" && GOOS=linux GOARCH=$(go_arch "$arch") go build -trimpath \
		-ldflags "-s -w -X $VERSION_VAR=$version" -o "$dest/" "${to_build[@]}") ||
		die "$arch: go build failed (output above)"
}

# The README shipped with a package: the plugin's own, else the repository's,
# else the packaging notes.
readme_for() {
	local plugin_dir candidate
	case $1 in
	telegraf-kafka-json) plugin_dir=plugins/inputs/kafka_consumer ;;
	telegraf-cnosdb) plugin_dir=plugins/outputs/cnosdb ;;
	esac
	for candidate in "$plugin_dir/README.md" README.md packaging/README.md; do
		if [[ -f $REPO_ROOT/$candidate ]]; then
			[[ $candidate == packaging/* ]] && log "warning: $1: no plugin or repository README; shipping packaging/README.md"
			printf '%s\n' "$REPO_ROOT/$candidate"
			return
		fi
	done
	die "no README for $1"
}

# The plugin's config: the binary's own -sample-config under a header that
# says how to enable it. Installing it runs nothing: only a *.conf in
# telegraf.d makes Telegraf start the binary, and the package ships none.
write_plugin_conf() {
	local package=$1 binary=$2 out=$3 name=${1#telegraf-} sample
	sample=$("$binary" -sample-config) || die "$binary -sample-config failed"
	[[ -n $sample ]] || die "$binary -sample-config printed nothing"
	{
		cat <<EOF
# /etc/telegraf/$name.conf, from the $package package: the config of
# /usr/bin/$package. Your edits are kept on upgrade and on removal; purge
# deletes this file. It may hold credentials: only root and group telegraf
# can read it.
#
# Telegraf runs this plugin only once it is enabled. Edit the settings
# below, then enable it with one step and restart Telegraf:
#   sudo ln -s $name.conf.available /etc/telegraf/telegraf.d/$name.conf
#   sudo systemctl restart telegraf
# See /usr/share/doc/$package/README.Debian.
#
# The rest of this file is the output of \`$package -sample-config\`.

EOF
		printf '%s\n' "$sample"
	} >"$out"
}

build_packages() {
	local version='' arches='amd64 arm64' out=$REPO_ROOT/dist prebuilt='' nfpm work arch package host
	while (($#)); do
		case $1 in
		--version) version=${2:?--version needs a value} ;;
		--arch) arches=${2:?--arch needs a value} ;;
		--out) out=${2:?--out needs a value} ;;
		--prebuilt) prebuilt=${2:?--prebuilt needs a value} ;;
		*) usage ;;
		esac
		shift 2
	done
	if [[ -n $version ]]; then
		version=$(debian_version "$version")
	else
		version=$(checkout_version)
	fi
	if [[ -n $prebuilt ]]; then
		prebuilt=$(cd "$prebuilt" && pwd)
	fi
	for arch in $arches; do
		go_arch "$arch" >/dev/null # dies here on a name Go does not know
	done
	mkdir -p "$out"
	out=$(cd "$out" && pwd)
	: "${SOURCE_DATE_EPOCH:=$(git -C "$REPO_ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}"
	export SOURCE_DATE_EPOCH
	nfpm=$(nfpm_binary)
	work=$(mktemp -d)
	# shellcheck disable=SC2064 # expand now: $work is local
	trap "rm -rf '$work'" EXIT
	log "version $version, architectures: $arches"

	for arch in $arches; do
		build_binaries "$arch" "$work/bin/$arch" "$version" "$prebuilt"
	done
	# -sample-config must come from a binary this machine can run.
	host=$(host_arch)
	[[ -d $work/bin/$host ]] || build_binaries "$host" "$work/bin/$host" "$version" "$prebuilt"

	local built=()
	for package in "${BINARIES[@]}"; do
		local stage=$work/stage/$package
		mkdir -p "$stage"
		write_plugin_conf "$package" "$work/bin/$host/$package" "$stage/plugin.conf"
		cp "$(readme_for "$package")" "$stage/README.md"
		for arch in $arches; do
			log "packaging $package $version $arch"
			# nfpm.yaml names repository files relative to the repository root
			# and generated ones under $STAGE; see packaging/<package>/nfpm.yaml.
			(cd "$REPO_ROOT" && VERSION=$version ARCH=$arch STAGE=$stage BINARY=$work/bin/$arch/$package \
				MAINTAINER=${PACKAGE_MAINTAINER:-The kafka-cnosdb telegraf-execd authors} \
				"$nfpm" package --packager deb --config "packaging/$package/nfpm.yaml" \
				--target "$out/${package}_${version}_${arch}.deb" >&2) ||
				die "nfpm failed for $package $arch"
			built+=("$out/${package}_${version}_${arch}.deb")
		done
	done
	printf '%s\n' "${built[@]}"
}

main() {
	command -v go >/dev/null || die "go is not installed"
	sane_go_env
	case ${1:-} in
	version)
		shift
		(($# <= 1)) || usage
		if (($#)); then debian_version "$1"; else checkout_version; fi
		;;
	nfpm)
		(($# == 1)) || usage
		nfpm_binary
		;;
	-h | --help) usage ;;
	*) build_packages "$@" ;;
	esac
}

main "$@"
