#!/usr/bin/env bash
# Build the libcni-based CNI test driver (tools/libcni-driver) into
# build/cni-driver, and a cnitool (tools/cnitool, a re-implementation of
# upstream containernetworking/cni cnitool, which Debian does not package)
# into build/cnitool.
#
# The driver links against Debian's golang-github-appc-cni-dev (libcni 1.1.2)
# installed under /usr/share/gocode, and is built in GOPATH mode because there
# is no network access for Go modules. libcni and its pkg/... depend only on
# the Go standard library, so nothing else needs to be installed.
#
# Skips each build if its binary is newer than its main.go (set FORCE=1 to
# rebuild anyway).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
OUT_DIR="${REPO_ROOT}/build"
GOCODE="${GOCODE:-/usr/share/gocode}"
CNI_SRC="${GOCODE}/src/github.com/containernetworking/cni"

# True if OUT is missing or older than SRC_DIR/main.go (or FORCE=1).
needs_build() {
  local src_dir="$1" out="$2"
  [[ "${FORCE:-0}" == "1" || ! -x "${out}" || ! "${out}" -nt "${src_dir}/main.go" ]]
}

# One-time toolchain checks and GOPATH-mode environment, done lazily so an
# all-up-to-date run needs no Go toolchain (as before).
GO_READY=0
setup_go() {
  if [[ "${GO_READY}" == "1" ]]; then
    return 0
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "build-driver: 'go' not found on PATH (apt-get install golang-go)" >&2
    exit 1
  fi
  if [[ ! -d "${CNI_SRC}/libcni" ]]; then
    echo "build-driver: libcni not found at ${CNI_SRC} (apt-get install golang-github-appc-cni-dev)" >&2
    exit 1
  fi

  export GO111MODULE=off
  export GOPATH="${GOCODE}"
  export GOFLAGS=""
  export CGO_ENABLED=0
  # The go command needs a writable build cache; HOME may be unset in CI/sudo.
  if [[ -z "$(go env GOCACHE 2>/dev/null)" || "$(go env GOCACHE 2>/dev/null)" == "off" ]]; then
    export GOCACHE="${OUT_DIR}/.gocache"
  fi
  mkdir -p "${OUT_DIR}"
  GO_READY=1
}

# The temp file of the build in progress (builds run one at a time); removed
# by the EXIT trap if the script fails or is interrupted mid-build.
tmp=""
cleanup_tmp() {
  if [[ -n "${tmp}" ]]; then
    rm -f "${tmp}"
  fi
}
trap cleanup_tmp EXIT

# build SRC_DIR OUT: go build the package in SRC_DIR into OUT atomically,
# unless OUT is up to date.
build() {
  local src_dir="$1" out="$2"
  if ! needs_build "${src_dir}" "${out}"; then
    echo "build-driver: ${out} is up to date"
    return 0
  fi
  setup_go

  tmp="$(mktemp "${OUT_DIR}/.$(basename "${out}").XXXXXX")"
  # Build from inside the source dir so "." is resolved in GOPATH mode.
  (cd "${src_dir}" && go build -trimpath -o "${tmp}" .)
  chmod 0755 "${tmp}"
  mv -f "${tmp}" "${out}"
  tmp=""
  echo "build-driver: built ${out}"
}

# Call build directly (not in an if/&&/|| context) so set -e stays in effect
# inside it.
build "${REPO_ROOT}/tools/libcni-driver" "${OUT_DIR}/cni-driver"
build "${REPO_ROOT}/tools/cnitool" "${OUT_DIR}/cnitool"
