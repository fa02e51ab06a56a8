#!/usr/bin/env bash
# Builds the .deb packages (scripts/package.sh) and checks them the way
# Debian's tools see them: dpkg-deb control fields, contents, modes and
# conffiles, then a real dpkg install / upgrade / remove / purge cycle in
# throw-away roots (dpkg --root, maintainer scripts run chrooted), asserting
# files, modes, conffile handling, and that the installed binaries run.
# Nothing outside a temporary directory is changed.
#
#   scripts/package-test.sh [--stand-in BINARY]...
#
# --stand-in BINARY packages a tiny program honouring -config, -sample-config
# (the plugin's sample.conf) and -version instead of building ./cmd/BINARY:
# for checking the packaging while that command does not build yet.
# With TELEGRAF_OLD and/or TELEGRAF_NEW (stock Telegraf binaries, as
# scripts/test.sh exports them), also checks that those releases load the
# enabled snippets. Needs root (chroot, mknod), dpkg, dpkg-deb and Go;
# KEEP_WORK=1 keeps the temporary directory for a look after a failure.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
readonly REPO_ROOT
readonly PACKAGES=(telegraf-kafka-json telegraf-cnosdb)
# gid of group telegraf in the test roots: one no real system uses, so a
# leak onto the host would show.
readonly TELEGRAF_GID=64123

step() { printf '\n==> package-test: %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
fail() {
	printf '\npackage-test: FAILED: %s\n' "$*" >&2
	exit 1
}

usage() {
	sed -n '2,18s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

stand_ins=()
while (($#)); do
	case $1 in
	--stand-in)
		[[ " ${PACKAGES[*]} " == *" ${2:-} "* ]] || fail "--stand-in takes one of: ${PACKAGES[*]}"
		stand_ins+=("$2")
		shift 2
		;;
	*) usage ;;
	esac
done

# ---------------------------------------------------------------- helpers

name_of() { printf '%s\n' "${1#telegraf-}"; } # telegraf-kafka-json -> kafka-json

table_of() {
	case $1 in
	telegraf-kafka-json) echo '[[inputs.kafka_consumer]]' ;;
	telegraf-cnosdb) echo '[[outputs.cnosdb]]' ;;
	esac
}

plugin_dir_of() {
	case $1 in
	telegraf-kafka-json) echo plugins/inputs/kafka_consumer ;;
	telegraf-cnosdb) echo plugins/outputs/cnosdb ;;
	esac
}

expect_eq() { # actual expected what
	[[ $1 == "$2" ]] || fail "$3: expected '$2', got '$1'"
}

expect_contains() { # haystack needle what
	[[ $1 == *"$2"* ]] || fail "$3: '$2' not found in: $1"
}

expect_file() { # path octal-mode uid gid
	[[ -f $1 && ! -L $1 ]] || fail "missing file $1"
	expect_eq "$(stat -c '%a %u %g' "$1")" "$2 $3 $4" "mode uid gid of $1"
}

expect_absent() {
	[[ ! -e $1 && ! -L $1 ]] || fail "$1 should not exist"
}

expect_same_content() { # path expected-content-file what
	cmp -s "$1" "$2" || fail "$3: $1 differs from what was expected ($2)"
}

# Files Telegraf loads from a root: its main config and every *.conf under
# telegraf.d, recursively, with their content.
telegraf_loads() {
	local root=$1
	{
		[[ ! -f $root/etc/telegraf/telegraf.conf ]] || md5sum "$root/etc/telegraf/telegraf.conf"
		if [[ -d $root/etc/telegraf/telegraf.d ]]; then
			find "$root/etc/telegraf/telegraf.d" -name '*.conf' -exec md5sum {} +
		fi
	} | sort
}

# dpkg on a throw-away root; maintainer scripts run chrooted into it. stdin
# is closed so that a conffile prompt fails the test instead of waiting.
root_dpkg() {
	local root=$1
	shift
	note "dpkg --root=ROOT $*"
	timeout 300 dpkg --root="$root" --force-unsafe-io "$@" </dev/null >"$work/dpkg.log" 2>&1 || {
		cat "$work/dpkg.log" >&2
		fail "dpkg $* failed"
	}
	sed 's/^/      | /' "$work/dpkg.log" >&2
}

package_status() { # root package -> dpkg's Status, or "not-installed"
	dpkg --root="$1" -s "$2" 2>/dev/null | sed -n 's/^Status: //p' | grep . || echo not-installed
}

# A root just big enough for dpkg and our maintainer scripts: the host's
# shell, coreutils, getent and dpkg-statoverride with their libraries, an
# empty dpkg database, /dev/null.
make_root() {
	local root=$1 tool path real lib
	mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc,dev,tmp,root,var/log,var/lib/dpkg/{info,updates,triggers}}
	for lib in bin lib lib64 sbin; do ln -s "usr/$lib" "$root/$lib"; done
	chmod 1777 "$root/tmp"
	mknod -m 666 "$root/dev/null" c 1 3
	for tool in sh getent chgrp chmod stat mv rm cat dpkg-statoverride; do
		path=$(command -v "$tool") || fail "$tool is not installed"
		real=$(readlink -f "$path")
		mkdir -p "$root${real%/*}" "$root${path%/*}"
		cp "$real" "$root$real"
		[[ $path == "$real" ]] || ln -sfn "$real" "$root$path"
		# Every shared library the tool loads, at the same path.
		for lib in $(ldd "$real" 2>/dev/null | grep -o '/[^ ]*'); do
			[[ -e $root$lib ]] && continue
			mkdir -p "$root${lib%/*}"
			cp -L "$lib" "$root$lib"
		done
	done
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
	printf 'root:x:0:\n' >"$root/etc/group"
	: >"$root/var/lib/dpkg/status"
	: >"$root/var/lib/dpkg/available"
}

# A stand-in for Debian's telegraf package: /usr/bin/telegraf, the config
# directory, and group/user telegraf created by its postinst.
build_fake_telegraf() {
	local dir=$work/fake-telegraf
	mkdir -p "$dir"
	printf '#!/bin/sh\necho "Telegraf (test stand-in)"\n' >"$dir/telegraf"
	printf '[agent]\n  interval = "10s"\n' >"$dir/telegraf.conf"
	cat >"$dir/postinst" <<EOF
#!/bin/sh
set -e
if [ "\$1" = configure ] && ! getent group telegraf >/dev/null; then
	echo 'telegraf:x:$TELEGRAF_GID:' >>/etc/group
	echo 'telegraf:x:$TELEGRAF_GID:$TELEGRAF_GID::/etc/telegraf:/bin/false' >>/etc/passwd
fi
EOF
	cat >"$dir/nfpm.yaml" <<EOF
name: telegraf
version: 1.27.1
version_schema: none
arch: $host_arch
maintainer: package-test
description: stand-in for the telegraf package
contents:
  - src: $dir/telegraf
    dst: /usr/bin/telegraf
    file_info: {mode: 0755}
  - src: $dir/telegraf.conf
    dst: /etc/telegraf/telegraf.conf
    type: config
  - dst: /etc/telegraf/telegraf.d
    type: dir
scripts:
  postinstall: $dir/postinst
EOF
	"$nfpm" package --packager deb --config "$dir/nfpm.yaml" --target "$work/telegraf_test.deb" >/dev/null ||
		fail "could not build the fake telegraf package"
}

# Builds a stand-in for each --stand-in binary and architecture into $1/<arch>/.
build_stand_ins() {
	local out=$1 version=$2 arches=$3 binary arch src
	for binary in "${stand_ins[@]}"; do
		src=$work/stand-in/$binary
		mkdir -p "$src"
		cp "$REPO_ROOT/$(plugin_dir_of "$binary")/sample.conf" "$src/sample.conf"
		printf 'module standin\n\ngo 1.21\n' >"$src/go.mod"
		cat >"$src/main.go" <<'EOF'
// Stand-in with the command-line conventions of our binaries.
package main

import (
	_ "embed"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

//go:embed sample.conf
var sampleConfig string

var version = "(devel)"

func main() {
	config := flag.String("config", "", "plugin config file")
	sample := flag.Bool("sample-config", false, "print the sample config")
	showVersion := flag.Bool("version", false, "print the version")
	flag.Parse()
	switch {
	case *showVersion:
		fmt.Printf("%s %s (stand-in)\n", filepath.Base(os.Args[0]), version)
	case *sample:
		fmt.Print(sampleConfig)
	case *config != "":
		if _, err := os.ReadFile(*config); err != nil {
			fmt.Fprintln(os.Stderr, "E!", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "E! -config is required")
		os.Exit(2)
	}
}
EOF
		for arch in $arches; do
			(cd "$src" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOFLAGS=-buildvcs=false GOWORK=off \
				go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out/$arch/$binary" .) ||
				fail "building the stand-in $binary for $arch"
		done
	done
}

build_packages() { # out-dir version arches
	local prebuilt=() debs=()
	if ((${#stand_ins[@]})); then
		build_stand_ins "$work/prebuilt-$2" "$2" "$3"
		prebuilt=(--prebuilt "$work/prebuilt-$2")
	fi
	mapfile -t debs < <("$REPO_ROOT/scripts/package.sh" --version "$2" --arch "$3" --out "$1" "${prebuilt[@]}" ||
		echo FAILED)
	[[ ${debs[-1]:-FAILED} != FAILED ]] || fail "scripts/package.sh failed (output above)"
	note "built: ${debs[*]##*/}"
}

deb_of() { # dir package version arch
	local deb="$1/${2}_${3}_${4}.deb"
	[[ -f $deb ]] || fail "no package $deb"
	printf '%s\n' "$deb"
}

elf_machine() { # e_machine of an ELF file, as Debian names the architecture
	case $(od -An -tx1 -j18 -N2 "$1" | tr -d ' \n') in
	3e00) echo amd64 ;;
	b700) echo arm64 ;;
	*) echo unknown ;;
	esac
}

# ------------------------------------------------------- static checks

check_deb() { # deb package version arch
	local deb=$1 package=$2 version=$3 arch=$4 name field value contents ctrl data
	name=$(name_of "$package")
	note "$(basename "$deb")"
	dpkg-deb --info "$deb" >/dev/null || fail "dpkg-deb cannot read $deb"

	expect_eq "$(dpkg-deb -f "$deb" Package)" "$package" "Package of $deb"
	expect_eq "$(dpkg-deb -f "$deb" Version)" "$version" "Version of $deb"
	expect_eq "$(dpkg-deb -f "$deb" Architecture)" "$arch" "Architecture of $deb"
	for field in Maintainer Section Priority Description Installed-Size; do
		[[ -n $(dpkg-deb -f "$deb" "$field") ]] || fail "$deb has no $field field"
	done
	expect_contains "$(dpkg-deb -f "$deb" Enhances)" telegraf "Enhances of $deb"
	expect_contains "$(dpkg-deb -f "$deb" Suggests)" telegraf "Suggests of $deb"
	# A hard dependency on telegraf is what the issue rules out.
	for field in Depends Pre-Depends Recommends; do
		value=$(dpkg-deb -f "$deb" "$field")
		[[ $value != *telegraf* ]] || fail "$deb: $field must not name telegraf: $value"
	done

	# Regular files with mode and owner; directories are checked by dpkg.
	contents=$(dpkg-deb --contents "$deb" | awk '$1 !~ /^d/ { print $1, $2, $6 }' | sort)
	expect_eq "$contents" "$(sort <<EOF
-rw------- root/root ./etc/telegraf/$name.conf
-rw-r--r-- root/root ./etc/telegraf/telegraf.d/$name.conf.available
-rw-r--r-- root/root ./usr/share/doc/$package/LICENSE
-rw-r--r-- root/root ./usr/share/doc/$package/README.Debian
-rw-r--r-- root/root ./usr/share/doc/$package/README.md
-rw-r--r-- root/root ./usr/share/doc/$package/copyright
-rwxr-xr-x root/root ./usr/bin/$package
EOF
)" "files, modes and owners in $deb"

	expect_eq "$(dpkg-deb -I "$deb" conffiles | sort)" \
		"$(printf '/etc/telegraf/%s.conf\n/etc/telegraf/telegraf.d/%s.conf.available' "$name" "$name")" \
		"conffiles of $deb"
	expect_eq "$(dpkg-deb -I "$deb" triggers)" "interest-noawait /usr/bin/telegraf" "triggers of $deb"

	ctrl=$work/ctrl/$(basename "$deb")
	data=$work/data/$(basename "$deb")
	mkdir -p "$ctrl" "$data"
	dpkg-deb --control "$deb" "$ctrl" || fail "dpkg-deb --control $deb"
	dpkg-deb --extract "$deb" "$data" || fail "dpkg-deb --extract $deb"
	for field in postinst postrm; do
		[[ -x $ctrl/$field ]] || fail "$deb: $field missing or not executable"
		sh -n "$ctrl/$field" || fail "$deb: $field is not valid sh"
	done
	expect_same_content "$ctrl/postinst" "$REPO_ROOT/packaging/maintainer-scripts/postinst" "postinst of $deb"
	expect_same_content "$ctrl/postrm" "$REPO_ROOT/packaging/maintainer-scripts/postrm" "postrm of $deb"
	expect_same_content "$data/etc/telegraf/telegraf.d/$name.conf.available" \
		"$REPO_ROOT/packaging/$package/telegraf.d/$name.conf.available" "snippet of $deb"
	expect_same_content "$data/usr/share/doc/$package/LICENSE" "$REPO_ROOT/LICENSE" "LICENSE of $deb"
	expect_eq "$(elf_machine "$data/usr/bin/$package")" "$arch" "machine of /usr/bin/$package in $deb"
	grep -qxF "$(table_of "$package")" "$data/etc/telegraf/$name.conf" ||
		fail "$deb: /etc/telegraf/$name.conf has no $(table_of "$package") table"
	# The snippet must start nothing as shipped: Telegraf loads only *.conf.
	[[ -z $(find "$data/etc/telegraf/telegraf.d" -name '*.conf') ]] ||
		fail "$deb ships a *.conf file in telegraf.d: Telegraf would load it at once"
}

# ------------------------------------------------------- install checks

# The installed binary runs.
check_installed_binary() { # root package version
	local root=$1 package=$2 version=$3 out
	out=$(chroot "$root" "/usr/bin/$package" -version) || fail "$package -version failed"
	expect_contains "$out" "$package $version" "$package -version"
	out=$(chroot "$root" "/usr/bin/$package" -sample-config) || fail "$package -sample-config failed"
	expect_contains "$out" "$(table_of "$package")" "$package -sample-config"
}

# The plugin config as shipped: the installed binary's -sample-config under our header.
check_pristine_conf() { # root package
	local root=$1 package=$2 conf sample
	conf=$root/etc/telegraf/$(name_of "$package").conf
	sample=$(chroot "$root" "/usr/bin/$package" -sample-config)
	[[ $(tail -n "$(wc -l <<<"$sample")" "$conf") == "$sample" ]] ||
		fail "${conf#"$root"} does not end with the output of $package -sample-config"
}

# Group telegraf can read the plugin config, others cannot.
check_conf_readers() { # root package
	local conf
	conf=/etc/telegraf/$(name_of "$2").conf
	chroot --userspec=$TELEGRAF_GID:$TELEGRAF_GID "$1" cat "$conf" >/dev/null 2>&1 ||
		fail "user telegraf cannot read $conf"
	if chroot --userspec=65534:65534 "$1" cat "$conf" >/dev/null 2>&1; then
		fail "$conf is readable by users outside group telegraf"
	fi
}

verify_root() { # dpkg --verify: files as packaged, except conffiles the test edited
	local root=$1 allowed=$2 report
	report=$(dpkg --root="$root" --verify 2>&1 | grep -vE "$allowed" || true)
	[[ -z $report ]] || fail "dpkg --verify reports: $report"
}

# Repacks a kafka-json package as version $3 with one line added to its
# snippet: a release that changes the snippet.
repack_with_changed_snippet() { # deb out-dir version
	local dir=$work/repack
	dpkg-deb --raw-extract "$1" "$dir" || fail "dpkg-deb --raw-extract $1"
	printf '# changed in %s\n' "$3" >>"$dir/etc/telegraf/telegraf.d/kafka-json.conf.available"
	sed -i "s/^Version: .*/Version: $3/" "$dir/DEBIAN/control"
	(cd "$dir" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | xargs -0 md5sum) >"$dir/DEBIAN/md5sums"
	mkdir -p "$2"
	dpkg-deb --root-owner-group --build "$dir" "$2/telegraf-kafka-json_${3}_$host_arch.deb" >/dev/null ||
		fail "dpkg-deb --build $dir"
}

# Stock Telegraf (TELEGRAF_OLD / TELEGRAF_NEW, as scripts/test.sh exports
# them) loads the enabled snippets: every option known to that release. The
# command becomes /bin/true, so that nothing connects anywhere.
check_telegraf_loads_snippets() { # telegraf.d of a root
	local var telegraf dir=$work/telegraf-check out
	for var in TELEGRAF_OLD TELEGRAF_NEW; do
		telegraf=${!var:-}
		if [[ -z $telegraf ]]; then
			note "$var not set: not checking the snippets with that Telegraf"
			continue
		fi
		[[ -x $telegraf ]] || fail "$var=$telegraf is not an executable"
		rm -rf "$dir" && mkdir -p "$dir/telegraf.d"
		printf '[agent]\n  omit_hostname = true\n' >"$dir/telegraf.conf"
		cp -L "$1"/*.conf "$dir/telegraf.d/"
		sed -i 's#^  command = .*#  command = ["/bin/true"]#' "$dir/telegraf.d/"*.conf
		out=$(timeout 60 "$telegraf" --config "$dir/telegraf.conf" --config-directory "$dir/telegraf.d" \
			--test --test-wait 0 2>&1) || true
		note "$("$telegraf" --version 2>/dev/null || echo "$telegraf"): $(grep -c 'Loading config' <<<"$out") files loaded"
		[[ $out != *"error loading config"* ]] || fail "$var rejects the snippets: $out"
		expect_contains "$out" "Loaded inputs: execd" "$var loading the snippets"
	done
}

# Enables a plugin the way the README says: a link Telegraf loads.
enable_by_link() { # root name
	ln -s "$2.conf.available" "$1/etc/telegraf/telegraf.d/$2.conf"
}

# Root 1: Telegraf installed first (group telegraf exists), then both
# packages: install, edit and enable, upgrade, remove, purge.
cycle_with_telegraf() {
	local root=$work/root-with-telegraf package name loaded_before conf snippets leftovers
	step "root 1: Telegraf (stand-in package) installed first"
	make_root "$root"
	root_dpkg "$root" -i "$work/telegraf_test.deb"
	loaded_before=$(telegraf_loads "$root")
	snippets=$root/etc/telegraf/telegraf.d

	step "root 1: install $v1"
	root_dpkg "$root" -i "$(deb_of "$work/v1" telegraf-kafka-json "$v1" "$host_arch")" \
		"$(deb_of "$work/v1" telegraf-cnosdb "$v1" "$host_arch")"
	for package in "${PACKAGES[@]}"; do
		name=$(name_of "$package")
		expect_eq "$(package_status "$root" "$package")" "install ok installed" "status of $package"
		expect_file "$root/usr/bin/$package" 755 0 0
		expect_file "$root/etc/telegraf/$name.conf" 640 0 "$TELEGRAF_GID"
		expect_file "$snippets/$name.conf.available" 644 0 0
		expect_file "$root/usr/share/doc/$package/README.md" 644 0 0
		expect_file "$root/usr/share/doc/$package/README.Debian" 644 0 0
		expect_file "$root/usr/share/doc/$package/LICENSE" 644 0 0
		expect_file "$root/usr/share/doc/$package/copyright" 644 0 0
		check_installed_binary "$root" "$package" "$v1"
		check_pristine_conf "$root" "$package"
		check_conf_readers "$root" "$package"
	done
	expect_eq "$(telegraf_loads "$root")" "$loaded_before" "what Telegraf loads after installing"
	verify_root "$root" '^$'

	step "root 1: edit kafka-json.conf and the cnosdb snippet, enable both (the README's step)"
	conf=$root/etc/telegraf/kafka-json.conf
	sed -i 's/^  brokers = .*/  brokers = ["127.0.0.1:19092"]/' "$conf"
	printf '# edited by package-test\n' >>"$conf"
	cp "$conf" "$work/kafka-json.conf.edited"
	sed -i 's/^  # namepass = /  namepass = /' "$snippets/cnosdb.conf.available"
	grep -q '^  namepass = ' "$snippets/cnosdb.conf.available" || fail "could not edit the cnosdb snippet"
	cp "$snippets/cnosdb.conf.available" "$work/cnosdb.snippet.edited"
	cp "$root/etc/telegraf/cnosdb.conf" "$work/cnosdb.conf.v1"
	enable_by_link "$root" kafka-json
	enable_by_link "$root" cnosdb
	# Telegraf now loads both snippets, through the links.
	expect_eq "$(telegraf_loads "$root" | grep -c telegraf.d/)" 2 "snippets Telegraf loads once enabled"
	expect_same_content "$snippets/cnosdb.conf" "$work/cnosdb.snippet.edited" "enabled cnosdb snippet"
	check_telegraf_loads_snippets "$snippets"

	step "root 1: upgrade to $v2"
	root_dpkg "$root" -i "$(deb_of "$work/v2" telegraf-kafka-json "$v2" "$host_arch")" \
		"$(deb_of "$work/v2" telegraf-cnosdb "$v2" "$host_arch")"
	for package in "${PACKAGES[@]}"; do
		name=$(name_of "$package")
		expect_eq "$(package_status "$root" "$package")" "install ok installed" "status of $package"
		expect_eq "$(dpkg --root="$root" -s "$package" | sed -n 's/^Version: //p')" "$v2" "version of $package"
		check_installed_binary "$root" "$package" "$v2"
		check_conf_readers "$root" "$package"
		expect_file "$root/etc/telegraf/$name.conf" 640 0 "$TELEGRAF_GID"
		expect_eq "$(readlink "$snippets/$name.conf")" "$name.conf.available" "link enabling $name after upgrade"
	done
	expect_same_content "$conf" "$work/kafka-json.conf.edited" "edited plugin config after upgrade"
	expect_same_content "$snippets/cnosdb.conf.available" "$work/cnosdb.snippet.edited" "edited snippet after upgrade"
	expect_same_content "$root/etc/telegraf/cnosdb.conf" "$work/cnosdb.conf.v1" "unedited plugin config after upgrade"
	check_pristine_conf "$root" telegraf-cnosdb
	expect_same_content "$snippets/kafka-json.conf.available" \
		"$REPO_ROOT/packaging/telegraf-kafka-json/telegraf.d/kafka-json.conf.available" "unedited snippet after upgrade"
	# Only what the test edited differs from the packages.
	verify_root "$root" ' c /etc/telegraf/(kafka-json\.conf|telegraf\.d/cnosdb\.conf\.available)$'

	step "root 1: upgrade kafka-json to $v3, whose snippet changed (no prompt, the link serves it)"
	root_dpkg "$root" -i "$work/v3/telegraf-kafka-json_${v3}_$host_arch.deb"
	expect_eq "$(tail -n1 "$snippets/kafka-json.conf")" "# changed in $v3" "enabled snippet after an upgrade that changed it"
	expect_same_content "$conf" "$work/kafka-json.conf.edited" "edited plugin config after the second upgrade"
	leftovers=$(find "$root/etc" -name '*.dpkg-*' -print)
	[[ -z $leftovers ]] || fail "dpkg left conffile copies: $leftovers"

	step "root 1: remove (config kept, plugins disabled)"
	root_dpkg "$root" -r "${PACKAGES[@]}"
	for package in "${PACKAGES[@]}"; do
		name=$(name_of "$package")
		expect_eq "$(package_status "$root" "$package")" "deinstall ok config-files" "status of $package"
		expect_absent "$root/usr/bin/$package"
		expect_absent "$root/usr/share/doc/$package"
		expect_absent "$snippets/$name.conf"
		expect_file "$snippets/$name.conf.available" 644 0 0
		expect_file "$root/etc/telegraf/$name.conf" 640 0 "$TELEGRAF_GID"
	done
	expect_same_content "$conf" "$work/kafka-json.conf.edited" "edited plugin config after remove"
	expect_same_content "$snippets/cnosdb.conf.available" "$work/cnosdb.snippet.edited" "edited snippet after remove"
	expect_same_content "$root/etc/telegraf/cnosdb.conf" "$work/cnosdb.conf.v1" "plugin config after remove"
	expect_eq "$(telegraf_loads "$root")" "$loaded_before" "what Telegraf loads after removing"

	step "root 1: enable kafka-json again while removed, then purge (config gone, Telegraf's files kept)"
	enable_by_link "$root" kafka-json
	root_dpkg "$root" --purge "${PACKAGES[@]}"
	for package in "${PACKAGES[@]}"; do
		expect_eq "$(package_status "$root" "$package")" not-installed "status of $package"
	done
	leftovers=$(find "$root" \( -name '*kafka-json*' -o -name '*cnosdb*' \) -print)
	[[ -z $leftovers ]] || fail "left after purge: $leftovers"
	expect_file "$root/etc/telegraf/telegraf.conf" 644 0 0
	[[ -d $snippets ]] || fail "purge removed Telegraf's /etc/telegraf/telegraf.d"
	expect_eq "$(telegraf_loads "$root")" "$loaded_before" "what Telegraf loads after purging"
}

# Root 2: our packages first (no group telegraf), then Telegraf: the trigger
# hands the configs to group telegraf, except one under a dpkg-statoverride.
# Then plugins enabled against the README (rename, copy) and a purge
# straight from installed.
cycle_without_telegraf() {
	local root=$work/root-without-telegraf package name snippets leftovers
	snippets=$root/etc/telegraf/telegraf.d
	step "root 2: install $v1 with no group telegraf"
	make_root "$root"
	root_dpkg "$root" -i "$(deb_of "$work/v1" telegraf-kafka-json "$v1" "$host_arch")" \
		"$(deb_of "$work/v1" telegraf-cnosdb "$v1" "$host_arch")"
	for package in "${PACKAGES[@]}"; do
		expect_file "$root/etc/telegraf/$(name_of "$package").conf" 600 0 0
		check_installed_binary "$root" "$package" "$v1"
	done
	# An admin's dpkg-statoverride wins over the package's choice.
	dpkg-statoverride --root="$root" --add root root 0600 /etc/telegraf/cnosdb.conf ||
		fail "dpkg-statoverride --add"

	step "root 2: install Telegraf afterwards (trigger on /usr/bin/telegraf)"
	root_dpkg "$root" -i "$work/telegraf_test.deb"
	for package in "${PACKAGES[@]}"; do
		expect_eq "$(package_status "$root" "$package")" "install ok installed" "status of $package"
	done
	expect_file "$root/etc/telegraf/kafka-json.conf" 640 0 "$TELEGRAF_GID"
	check_conf_readers "$root" telegraf-kafka-json
	expect_file "$root/etc/telegraf/cnosdb.conf" 600 0 0

	step "root 2: enable kafka-json by renaming, cnosdb by copying; purge"
	mv "$snippets/kafka-json.conf.available" "$snippets/kafka-json.conf"
	cp "$snippets/cnosdb.conf.available" "$snippets/cnosdb.conf"
	root_dpkg "$root" --purge "${PACKAGES[@]}"
	for package in "${PACKAGES[@]}"; do
		expect_eq "$(package_status "$root" "$package")" not-installed "status of $package"
	done
	leftovers=$(find "$root" \( -name '*kafka-json*' -o -name '*cnosdb*' \) -print)
	[[ -z $leftovers ]] || fail "left after purge: $leftovers"
}

# ------------------------------------------------------------------ main

started=$SECONDS
[[ $EUID -eq 0 ]] || fail "needs root: dpkg --root runs maintainer scripts through chroot(2)"
for tool in dpkg dpkg-deb go chroot mknod ldd timeout od cmp md5sum; do
	command -v "$tool" >/dev/null || fail "$tool is not installed"
done
work=$(mktemp -d "${TMPDIR:-/tmp}/package-test.XXXXXX")
if [[ ${KEEP_WORK:-} == 1 ]]; then
	trap 'echo "package-test: work directory kept: $work" >&2' EXIT
else
	trap 'rm -rf "$work"' EXIT
fi
host_arch=$(dpkg --print-architecture)
[[ $host_arch == amd64 || $host_arch == arm64 ]] || fail "host architecture $host_arch: the test installs amd64 or arm64 packages"

step "Debian versions from git describe"
while read -r describe expected; do
	expect_eq "$("$REPO_ROOT/scripts/package.sh" version "$describe")" "$expected" "Debian version of $describe"
	dpkg --validate-version "$expected" || fail "not a Debian version: $expected"
done <<'EOF'
v1.2.3 1.2.3
v1.2.3-4-gabc1234 1.2.3+4.gabc1234
v1.2.3-rc.1 1.2.3~rc.1
v1.2.3-rc.1-2-gabc1234 1.2.3~rc.1+2.gabc1234
v1.2.3+meta 1.2.3+meta
1.0.0+pkgtest 1.0.0+pkgtest
EOF
for pair in "1.2.3~rc.1 1.2.3" "1.2.3~rc.1+2.gabc1234 1.2.3" "1.2.3 1.2.3+4.gabc1234" "1.2.3+4.gabc1234 1.2.4" \
	"0.0.0~git5.abc1234 0.0.0~git12.def5678" "0.0.0~git12.def5678 0.1.0~rc.1"; do
	# shellcheck disable=SC2086 # two words: older newer
	dpkg --compare-versions ${pair% *} lt ${pair#* } || fail "${pair% *} should sort before ${pair#* }"
done
v1=$("$REPO_ROOT/scripts/package.sh" version) || fail "no version for this checkout"
dpkg --validate-version "$v1" || fail "checkout version '$v1' is not a Debian version"
# The upgrade: sorts after v1 whatever v1 is.
v2=$v1+pkgtest
v3=$v2.1
dpkg --compare-versions "$v2" gt "$v1" || fail "$v2 does not sort after $v1"
note "this checkout: $v1; upgrade test: $v2"

step "building packages $v1 (amd64 arm64)${stand_ins[*]:+, stand-ins: ${stand_ins[*]}}"
build_packages "$work/v1" "$v1" "amd64 arm64"
step "building packages $v2 ($host_arch)"
build_packages "$work/v2" "$v2" "$host_arch"
repack_with_changed_snippet "$(deb_of "$work/v2" telegraf-kafka-json "$v2" "$host_arch")" "$work/v3" "$v3"
nfpm=$("$REPO_ROOT/scripts/package.sh" nfpm)
build_fake_telegraf

step "dpkg-deb: control fields, files, modes, conffiles"
for package in "${PACKAGES[@]}"; do
	for arch in amd64 arm64; do
		check_deb "$(deb_of "$work/v1" "$package" "$v1" "$arch")" "$package" "$v1" "$arch"
	done
	check_deb "$(deb_of "$work/v2" "$package" "$v2" "$host_arch")" "$package" "$v2" "$host_arch"
done

cycle_with_telegraf
cycle_without_telegraf

step "all package checks passed in $((SECONDS - started))s"
