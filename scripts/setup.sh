#!/usr/bin/env bash
# Prepares a Debian 12 machine (as root) to build and test afsteer: apt packages, npm ci, build.
# Idempotent: installs only what is missing and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(clang llvm libbpf-dev libbpf1 bpftool iproute2 iputils-ping util-linux ethtool jq
      containernetworking-plugins golang-go golang-github-appc-cni-dev
      nftables iperf3 tcpdump hyperfine python3)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  command -v npm >/dev/null || PKGS+=(nodejs npm)
  missing=()
  for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "setup: not root or no apt-get; assuming the packages are present: ${PKGS[*]}" >&2
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

# bpffs for pinned programs and maps (the plugin also mounts it when missing).
if [ "$(id -u)" = 0 ] && ! mount | grep -q ' /sys/fs/bpf type bpf'; then
  mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
fi

npm run --silent build
