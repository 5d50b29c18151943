#!/usr/bin/env bash
# Proves the README's two commands on a fresh Debian 12 (bookworm), as a new user would run them:
#   1. a Debian 12 root filesystem made with mmdebstrap from Debian's mirror (cached between runs
#      under /var/cache/afsteer-fresh-debian; `FRESH_REBUILD=1` makes it anew),
#   2. a clone of this repository's HEAD commit in it (/root/afsteer),
#   3. inside that root, entered as a container runtime enters one (systemd-nspawn, runc): its own
#      mount namespace whose root mount is the new root (pivot_root, not chroot — under a chroot
#      the mount namespace's root stays the host's, so `runc exec` into a container, which joins
#      the container's mount namespace, lands in the host's / and runs the host's binaries: the
#      containerd test's `ping` printed the host's iputils summary, not the image's busybox one),
#      with what a booted machine has — proc, sysfs, bpffs on /sys/fs/bpf, this machine's cgroup
#      tree bound in (`mount --rbind /sys/fs/cgroup`: a fresh cgroup2 mount has no controllers on
#      a cgroup v1 or hybrid host, and runc then fails on cpu.weight), dev, dev/pts, dev/shm, a
#      tmpfs on /run with /run/lock, the host's CA certificates (npm's cafile points at the
#      bundle), a clean environment — run `bash scripts/demo.sh`, then `bash scripts/test.sh` in the
#      same root: the demo on a machine that has nothing, then the tests on one it set up.
#      `FRESH_ORDER=test-demo` runs them the other way round; `FRESH_SEPARATE=1` runs each in
#      its own fresh copy of the base; `FRESH_INTERRUPT=SECONDS` first starts the first command
#      and interrupts it (SIGINT to its process group, as Ctrl-C) after that many seconds, then
#      runs both as usual in the same root: the set-up must recover from the half-done run
#      (apt ignores SIGINT, so a run still going 10 s later is SIGKILLed; pick a time within
#      the set-up — ~50 s lands in apt — not in the tests, whose host-side cleanup would not run).
# Prints pass/fail, the test summary line and the wall time of each command; logs are kept in
# /var/tmp/afsteer-fresh-debian-logs/. Unmounts and removes the root on any exit.
# As root; needs the Debian mirror and the npm registry, and several minutes. Not part of .ci/run.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=/var/cache/afsteer-fresh-debian
LOGS=/var/tmp/afsteer-fresh-debian-logs
SUITE=bookworm
MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
SECURITY=${FRESH_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
ORDER=${FRESH_ORDER:-demo-test}
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

say() { printf 'check-fresh-debian: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (pivot_root, mounts, network namespaces): run it with sudo"
command -v apt-get >/dev/null || die "needs Debian's apt-get (to install mmdebstrap)"
git -C "$REPO" rev-parse --verify -q HEAD >/dev/null || die "$REPO is not a git checkout with a commit"
COMMIT=$(git -C "$REPO" rev-parse HEAD)
if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]; then
  say "note: uncommitted changes in $REPO are not part of the check (it clones HEAD ${COMMIT:0:12})"
fi

mkdir -p "$CACHE" "$LOGS"
if ! command -v mmdebstrap >/dev/null; then
  say "installing mmdebstrap (apt, ~30 s; log: $LOGS/apt-mmdebstrap.log)"
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mmdebstrap; } \
    >"$LOGS/apt-mmdebstrap.log" 2>&1 || die "apt-get install mmdebstrap failed: see $LOGS/apt-mmdebstrap.log"
fi

# --- the base root filesystem, cached -------------------------------------------------------
# What a minimal Debian 12 server has: priority required + important, apt, ca-certificates and
# git (to clone). Nothing of the project's.
MMDEB_ARGS=(--variant=important --include=ca-certificates,git
  --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Check-Date "false"'
  --aptopt='Acquire::Languages "none"'
)
MIRRORS=("deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY $SUITE-security main")
KEY=$(printf '%s\n' "${MMDEB_ARGS[@]}" "$SUITE" "${MIRRORS[@]}" | sha256sum | cut -c1-12)
BASE=$CACHE/$SUITE-$KEY.tar
if [ ! -s "$BASE" ] || [ "${FRESH_REBUILD:-0}" = 1 ]; then
  say "building the Debian 12 base rootfs with mmdebstrap (once, ~2-4 min; log: $LOGS/mmdebstrap.log)"
  t0=$SECONDS
  rm -f "$BASE.tmp"
  mmdebstrap --format=tar "${MMDEB_ARGS[@]}" "$SUITE" "$BASE.tmp" "${MIRRORS[@]}" >"$LOGS/mmdebstrap.log" 2>&1 \
    || { rm -f "$BASE.tmp"; die "mmdebstrap failed: see $LOGS/mmdebstrap.log"; }
  mv "$BASE.tmp" "$BASE"
  say "base rootfs cached: $BASE ($((SECONDS - t0)) s)"
else
  say "base rootfs from cache: $BASE"
fi
[ "${FRESH_BASE_ONLY:-0}" = 1 ] && exit 0

# --- one run: a fresh copy of the base, the clone, the mounts, the commands -----------------
WORK=$(mktemp -d /var/tmp/afsteer-fresh.XXXXXX)
# Every process in a root of ours: in one of the mount namespaces in_root made (each records its
# own in $WORK/mntns-*), or with its root directory under $WORK.
kill_in_roots() {
  local pid root ns
  local mine=" $(cat "$WORK"/mntns-* 2>/dev/null | tr '\n' ' ') "
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$pid" = $$ ] && continue
    ns=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null) || continue
    root=$(readlink "/proc/$pid/root" 2>/dev/null) || continue
    case "$mine" in *" $ns "*) kill -9 "$pid" 2>/dev/null; continue ;; esac
    case "$root" in "$WORK"/*) kill -9 "$pid" 2>/dev/null ;; esac
  done
}
cleanup() {
  local rc=$? pid root
  set +e
  # Processes still running in a root of ours (an interrupted command): only those.
  kill_in_roots
  sleep 0.2
  # The mounts live in a private mount namespace that ends with its last process; unmount
  # anything that leaked into ours anyway, deepest first.
  awk -v w="$WORK/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf --one-file-system "$WORK"
  [ -e "$WORK" ] && say "could not remove $WORK entirely"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A new root from the cached base, with the host's CA certificates and resolver, and this
# repository's HEAD cloned into /root/afsteer.
new_root() {
  local r=$WORK/root$1
  mkdir -p "$r"
  tar -C "$r" -xf "$BASE"
  cp -L /etc/resolv.conf "$r/etc/resolv.conf"
  # The host's own CAs (a proxy's, a company's) stay in the bundle if ca-certificates regenerates it.
  if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
    cp -a /usr/local/share/ca-certificates/. "$r/usr/local/share/ca-certificates/"
  fi
  cp -L "$CA_BUNDLE" "$r/etc/ssl/certs/ca-certificates.crt"
  mkdir -p "$r/usr/etc"
  printf 'cafile=/etc/ssl/certs/ca-certificates.crt\n' | tee "$r/etc/npmrc" >"$r/usr/etc/npmrc"
  git clone -q --no-hardlinks "$REPO" "$r/root/afsteer"
  git -C "$r/root/afsteer" checkout -q --detach "$COMMIT"
  echo "$r"
}

# Runs `bash scripts/$1` in root $2 as root with a clean environment; output to $3. The root is
# entered as a container runtime enters one: a private mount namespace (recorded for the cleanup),
# the machine's file systems mounted under the root, then pivot_root into it and the old root
# detached, so the namespace's root mount is the new root (what runc's exec relies on).
in_root() {
  local cmd=$1 r=$2 log=$3
  unshare --mount --propagation private -- bash -euc '
    r=$1 cmd=$2 work=$3
    readlink /proc/self/ns/mnt >"$work/mntns-$$"
    mount --bind "$r" "$r"
    mount -t proc proc "$r/proc"
    mount -t sysfs sysfs "$r/sys"
    mount -t bpf bpf "$r/sys/fs/bpf"
    # This machine'"'"'s cgroup tree, whatever its layout (v2, or v1/hybrid with per-controller
    # mounts): runc creates the pods'"'"' cgroups there, as on the host.
    mount --rbind /sys/fs/cgroup "$r/sys/fs/cgroup"
    mount --bind /dev "$r/dev"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$r/dev/pts"
    mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
    mount -t tmpfs -o mode=755 tmpfs "$r/run"
    mkdir -m 1777 "$r/run/lock"
    cd "$r"
    mkdir -p .old-root
    pivot_root . .old-root
    exec /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      bash -c "umount -l /.old-root && rmdir /.old-root && cd /root/afsteer && exec bash scripts/$cmd </dev/null"
  ' _ "$r" "$cmd" "$WORK" >"$log" 2>&1
}

case "$ORDER" in
  demo-test) CMDS=(demo.sh test.sh) ;;
  test-demo) CMDS=(test.sh demo.sh) ;;
  *) die "FRESH_ORDER must be demo-test or test-demo" ;;
esac
say "commit ${COMMIT:0:12}; running ${CMDS[*]} as root in a fresh Debian 12 root$([ "${FRESH_SEPARATE:-0}" = 1 ] && echo ', each in its own copy' || echo ', one after the other in the same one')"
failed=0
n=0
ROOTFS=
if [ -n "${FRESH_INTERRUPT:-}" ]; then
  ROOTFS=$(new_root 0)
  log=$LOGS/${CMDS[0]%.sh}-interrupted.log
  say "starting bash scripts/${CMDS[0]} and interrupting it after ${FRESH_INTERRUPT} s"
  set -m
  in_root "${CMDS[0]}" "$ROOTFS" "$log" &
  pid=$!
  set +m
  for ((i = 0; i < FRESH_INTERRUPT; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -INT -- "-$pid" 2>/dev/null || true
  # apt (and dpkg under it) ignore SIGINT and finish; a run that does not stop within 10 s is
  # then killed outright, everything in the root (a lost session: the harder case).
  for ((i = 0; i < 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  how=SIGINT
  if kill -0 "$pid" 2>/dev/null; then
    how="SIGINT, then SIGKILL to everything in the root"
    kill_in_roots
    kill -9 -- "-$pid" 2>/dev/null || true
  fi
  rc=0; wait "$pid" || rc=$?
  say "interrupted ($how; exit $rc) during: $(grep -E '^(setup|build|test|demo):|^== ' "$log" | tail -1)"
fi
for cmd in "${CMDS[@]}"; do
  n=$((n + 1))
  if [ -z "$ROOTFS" ] || [ "${FRESH_SEPARATE:-0}" = 1 ]; then ROOTFS=$(new_root "$n"); fi
  log=$LOGS/${cmd%.sh}.log
  t0=$SECONDS
  rc=0
  in_root "$cmd" "$ROOTFS" "$log" || rc=$?
  dt=$((SECONDS - t0))
  summary=$(grep -E '^vitest: [0-9]+ passed' "$log" | tail -1 || true)
  [ -n "$summary" ] || summary=$(grep -v '^\s*$' "$log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g')
  errors=$(grep -cE '"level":"error"' "$log" || true)
  if [ $rc = 0 ]; then
    say "PASS bash scripts/$cmd  ($dt s)  $summary"
  else
    failed=1
    say "FAIL bash scripts/$cmd  (exit $rc, $dt s)  $summary; last lines of $log:"
    tail -n 30 "$log" | sed 's/^/  | /'
  fi
  grep -E '^setup: ' "$log" | sed 's/^/    /' || true
  [ "$errors" = 0 ] || say "  note: $errors error-looking log lines (\"level\":\"error\") in the output of $cmd"
done
if [ $failed = 0 ]; then say "PASS (logs: $LOGS)"; else say "FAIL (logs: $LOGS)"; fi
exit $failed
