#!/usr/bin/env bash
# Makes sure the tools the tests need are installed; safe to run again and again.
#
#   scripts/install-deps.sh [--demo]
#
# Needs: Java >= 17 (java, keytool) and Maven (mvn) for the real Kafka broker
# (scripts/kafka.sh), openssl for its throw-away certificates. --demo also
# checks what scripts/demo.sh needs: curl, jq, and python3 with venv and pip
# for the guide's Python producer (kafka-python goes into a venv). What is missing
# is installed from Debian packages when we are root and have apt-get;
# otherwise the script names what to install and exits non-zero.
set -euo pipefail

readonly MIN_JAVA=17

log() { printf 'install-deps.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# Debian packages still to install, gathered by the check_* functions so that
# one `apt-get update` and one `apt-get install` cover them all.
missing_packages=()

need_package() {
	local pkg
	for pkg in "$@"; do
		[[ " ${missing_packages[*]} " == *" $pkg "* ]] || missing_packages+=("$pkg")
	done
}

# Major version of the `java` on PATH, or 0 when there is none.
java_major() {
	command -v java >/dev/null 2>&1 || {
		echo 0
		return
	}
	# `java -version` prints e.g.: openjdk version "17.0.15" 2025-04-15 (or "1.8.0_392").
	java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9.]*\).*/\1/p' | head -n1 |
		awk -F. '{ print ($1 == 1) ? $2 : $1 }'
}

check_java() {
	local major
	major=$(java_major)
	if ((major >= MIN_JAVA)) && command -v keytool >/dev/null 2>&1; then
		log "ok: Java $major ($(command -v java)), keytool"
		return
	fi
	if ((major > 0)); then
		log "missing: Java >= $MIN_JAVA with keytool (found Java $major)"
	else
		log "missing: Java >= $MIN_JAVA (java, keytool)"
	fi
	# The headless JDK brings the JRE, keytool and jcmd (handy for debugging the broker).
	need_package openjdk-17-jdk-headless
}

check_maven() {
	if command -v mvn >/dev/null 2>&1; then
		log "ok: Maven ($(command -v mvn))"
		return
	fi
	log "missing: Maven (mvn)"
	need_package maven
}

# check_tool TOOL PACKAGE: a command the scripts call, from its Debian package.
check_tool() {
	if command -v "$1" >/dev/null 2>&1; then
		log "ok: $1 ($(command -v "$1"))"
		return
	fi
	log "missing: $1"
	need_package "$2"
}

# Debian splits venv (and the pip it bootstraps) out of python3.
check_demo_tools() {
	local tool
	check_tool curl curl
	if ! command -v python3 >/dev/null 2>&1; then
		log "missing: python3"
		need_package python3 python3-venv
	elif python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
		log "ok: python3 with venv ($(command -v python3))"
	else
		log "missing: the venv module of python3"
		need_package python3-venv
	fi
}

install_missing() {
	((${#missing_packages[@]} > 0)) || return 0
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		die "please install: ${missing_packages[*]} (or equivalents for your system); automatic install needs root and apt-get"
	fi
	log "running: apt-get update"
	apt-get update -qq >&2 || die "apt-get update failed"
	log "running: apt-get install -y --no-install-recommends ${missing_packages[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_packages[@]}" >&2 ||
		die "apt-get install ${missing_packages[*]} failed"
}

# A package can install fine yet leave an older `java` first on PATH
# (update-alternatives), so check again rather than trust apt-get.
verify() {
	local major
	major=$(java_major)
	((major >= MIN_JAVA)) || die "java on PATH is version $major, need >= $MIN_JAVA (check update-alternatives --config java or PATH)"
	command -v keytool >/dev/null 2>&1 || die "keytool not found on PATH"
	command -v mvn >/dev/null 2>&1 || die "mvn not found on PATH"
	command -v openssl >/dev/null 2>&1 || die "openssl not found on PATH"
	command -v jq >/dev/null 2>&1 || die "jq not found on PATH"
	if $demo; then
		command -v curl >/dev/null 2>&1 || die "curl not found on PATH"
		python3 -c 'import venv, ensurepip' >/dev/null 2>&1 ||
			die "python3 on PATH ($(command -v python3 || echo none)) cannot create venvs; install python3-venv for it"
	fi
}

demo=false

main() {
	case ${1:-} in
	"") ;;
	--demo) demo=true ;;
	*)
		sed -n '2,12s/^# \{0,1\}//p' "$0" >&2
		exit 2
		;;
	esac
	check_java
	check_maven
	# openssl: the broker's throw-away certificates; jq and flock:
	# scripts/telegraf.sh; dpkg-deb: scripts/package-test.sh.
	check_tool openssl openssl
	check_tool jq jq
	check_tool flock util-linux
	check_tool dpkg-deb dpkg
	if $demo; then check_demo_tools; fi
	install_missing
	verify
	log "all test dependencies present"
}

main "$@"
