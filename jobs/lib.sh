# Shared by the jobs/ scripts: install what a fresh Debian machine lacks, and build.
# shellcheck shell=bash

# apt_install PKG...: installs with apt-get (sudo when not root); runs `apt-get update` only when the first try
# fails (a fresh machine may have no package lists). Log: /tmp/homefeed-apt.log.
apt_install() {
  local SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  echo "homefeed: installing $* with apt-get" >&2
  if $SUDO apt-get install -y -q "$@" >/tmp/homefeed-apt.log 2>&1; then return 0; fi
  if ! $SUDO apt-get update -q >>/tmp/homefeed-apt.log 2>&1 || ! $SUDO apt-get install -y -q "$@" >>/tmp/homefeed-apt.log 2>&1; then
    echo "homefeed: apt-get install $* failed; see /tmp/homefeed-apt.log" >&2
    return 1
  fi
}

# Installs librocksdb-dev (RocksDB 7.8, the one system library) when pkg-config cannot find it.
ensure_rocksdb() {
  pkg-config --exists rocksdb 2>/dev/null && return 0
  apt_install librocksdb-dev pkg-config || return 1
  pkg-config --exists rocksdb || { echo "homefeed: librocksdb-dev installed but pkg-config cannot find rocksdb" >&2; return 1; }
}

# Builds the release binaries (progress on stderr) and prints their folder.
build_release() {
  [ -n "${HOMEFEED_TARGET_CPU:-}" ] && echo "homefeed: building for -target-cpu $HOMEFEED_TARGET_CPU" >&2
  swift build -c release >&2
  swift build -c release --show-bin-path
}
