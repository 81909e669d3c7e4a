#!/usr/bin/env bash
# Install what this machine lacks for the workspace and the local stack: make, a Java 17 (or
# newer) JDK, Maven, PostgreSQL's server package, Chromium (from apt) and uv (with pip). Kafka
# needs the runtime; the reference partner consumer (partners/java-consumer) needs the
# compiler too, so the JDK is installed; the console's browser tests drive Chromium.
# Idempotent, and silent and quick when everything is there: `make install` runs it before
# every `make demo` and `make test`, and `.ci/run` runs it first.
#
#   deploy/local/bootstrap.sh              install what is missing
#   deploy/local/bootstrap.sh uv-command   print how to run uv: `uv`, or `python3 -m uv`
#                                          when pip put it off PATH (the Makefile's UV)
#
# PYTHON (default python3) is the interpreter pip installs uv for.
set -euo pipefail

PYTHON=${PYTHON:-python3}

say() { printf 'bootstrap: %s\n' "$*" >&2; }

uv_command() {
  if command -v uv >/dev/null; then
    echo uv
  else
    echo "$PYTHON -m uv"
  fi
}

has_uv() { command -v uv >/dev/null || "$PYTHON" -m uv --version >/dev/null 2>&1; }

# The major version of the Java that runs `java` (or compiles with `javac`): nothing when
# there is none.
java_major() {
  local tool=${1:-java} path release
  path=$(command -v "$tool") || return 0
  # The JDK's release file answers without starting a JVM.
  release="$(dirname "$(dirname "$(readlink -f "$path")")")/release"
  if [[ -r $release ]]; then
    sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$release"
  else
    "$path" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p; s/^javac \([0-9]*\).*/\1/p' | head -1
  fi
}

has_postgres_server() {
  command -v pg_ctl >/dev/null && return 0
  compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null
}

apt_install() {
  command -v apt-get >/dev/null || { say "no apt-get here: install $* yourself"; exit 1; }
  local as_root=(env DEBIAN_FRONTEND=noninteractive)
  if ((EUID != 0)); then
    command -v sudo >/dev/null || { say "installing $* needs root or sudo"; exit 1; }
    as_root=(sudo "${as_root[@]}")
  fi
  "${as_root[@]}" apt-get update -q
  local packages=()
  for package in "$@"; do
    if [[ $package == jdk ]]; then
      # Debian 12 has openjdk-17; later releases only a newer default, which Kafka 4 also
      # runs on and which compiles for 17. The JDK brings the runtime with it.
      if apt-cache show openjdk-17-jdk-headless >/dev/null 2>&1; then
        package=openjdk-17-jdk-headless
      else
        package=default-jdk-headless
      fi
    fi
    packages+=("$package")
  done
  say "apt-get install ${packages[*]}"
  "${as_root[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"
}

install_missing() {
  local missing=() major compiler
  command -v make >/dev/null || missing+=(make)
  major=$(java_major java)
  compiler=$(java_major javac)
  if [[ -z $major || -z $compiler ]] || ((major < 17 || compiler < 17)); then
    missing+=(jdk)
  fi
  command -v mvn >/dev/null || missing+=(maven)
  has_postgres_server || missing+=(postgresql)
  # the console's browser tests drive Debian's Chromium (Playwright, no browser download)
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  local need_uv=0
  if ! has_uv; then
    need_uv=1
    "$PYTHON" -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
  fi
  if ((${#missing[@]})); then
    apt_install "${missing[@]}"
  fi
  if ((need_uv)); then
    say "$PYTHON -m pip install uv"
    # A Debian-managed Python refuses system-wide installs (PEP 668): then install uv for
    # this user alone; it is a self-contained binary that touches no Debian package.
    "$PYTHON" -m pip install --quiet uv 2>/dev/null ||
      "$PYTHON" -m pip install --quiet --user --break-system-packages uv
    has_uv || { say "uv was installed but $PYTHON -m uv does not run"; exit 1; }
  fi
}

case "${1:-}" in
  "") install_missing ;;
  uv-command) uv_command ;;
  *) say "unknown argument '$1' (expected nothing or uv-command)"; exit 2 ;;
esac
