#!/usr/bin/env bash
# Build the libcni-based CNI test driver (test/libcni-driver) into
# build/cni-driver.
#
# The driver links against Debian's golang-github-appc-cni-dev (libcni 1.1.2)
# installed under /usr/share/gocode, and is built in GOPATH mode because there
# is no network access for Go modules. libcni and its pkg/... depend only on
# the Go standard library, so nothing else needs to be installed.
#
# Skips the build if build/cni-driver is newer than main.go (set FORCE=1 to
# rebuild anyway).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
SRC_DIR="${REPO_ROOT}/test/libcni-driver"
OUT_DIR="${REPO_ROOT}/build"
OUT="${OUT_DIR}/cni-driver"
GOCODE="${GOCODE:-/usr/share/gocode}"
CNI_SRC="${GOCODE}/src/github.com/containernetworking/cni"

if [[ "${FORCE:-0}" != "1" && -x "${OUT}" && "${OUT}" -nt "${SRC_DIR}/main.go" ]]; then
  echo "build-driver: ${OUT} is up to date"
  exit 0
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
tmp="$(mktemp "${OUT_DIR}/.cni-driver.XXXXXX")"
trap 'rm -f "${tmp}"' EXIT

# Build from inside the source dir so "." is resolved in GOPATH mode.
(cd "${SRC_DIR}" && go build -trimpath -o "${tmp}" .)
chmod 0755 "${tmp}"
mv -f "${tmp}" "${OUT}"
trap - EXIT
echo "build-driver: built ${OUT}"
