# Shared by the jobs/ scripts: install what a fresh Debian machine lacks, and build.
# shellcheck shell=bash

# Installs librocksdb-dev (RocksDB 7.8, the one system library) when pkg-config cannot find it.
ensure_rocksdb() {
  if pkg-config --exists rocksdb 2>/dev/null; then return 0; fi
  echo "homefeed: installing librocksdb-dev (and pkg-config) with apt-get" >&2
  local SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -q librocksdb-dev pkg-config >/tmp/homefeed-apt.log 2>&1; then
    $SUDO apt-get update -q >>/tmp/homefeed-apt.log 2>&1
    $SUDO apt-get install -y -q librocksdb-dev pkg-config >>/tmp/homefeed-apt.log 2>&1 \
      || { echo "homefeed: apt-get install librocksdb-dev failed, see /tmp/homefeed-apt.log" >&2; return 1; }
  fi
}

# Builds the release binaries and prints their folder.
build_release() {
  local extra=()
  [ -n "${HOMEFEED_TARGET_CPU:-}" ] && echo "homefeed: building for -target-cpu $HOMEFEED_TARGET_CPU" >&2
  swift build -c release "${extra[@]}" >&2
  swift build -c release --show-bin-path
}
