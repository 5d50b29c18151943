#!/usr/bin/env bash
# The afsteer demo, as root on Debian 12:
#  part 1: two pods brought up through the real chain (bridge + host-local, then afsteer) with
#          cnitool, their dual-stack addresses, the tc programs on their host veths and the
#          per-family counters moving with real traffic; then CHECK, DEL, and nothing left.
#  part 2: two simulated nodes, one pod each; a TCP stream runs while the operator command
#          flips the pair's wire family; the middle router's per-family counters move from one
#          family to the other and the stream never breaks (scripts/demo/steering.ts).
#  part 3: the same two nodes with afsteerd running: discovery, a pair negotiated on its first
#          packet, the stream's family blackholed, both nodes switch by themselves within
#          ~150 ms, the stream intact; restored, held down, back to native (demo-negotiator.ts).
#  part 4: a protected pair (AFSTEER_PROTECT=always) next to an unprotected one, each crossing a
#          blackhole under TCP and 10,000 UDP datagrams/s: stall and loss side by side (demo-protect.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces, BPF, tc): run sudo bash scripts/demo.sh" >&2; exit 1; }
AFSTEER_ENTRY=demo.sh bash scripts/setup.sh
source scripts/node-env.sh
require_pinned_node demo

DEMO=$(mktemp -d /tmp/afsteer-demo.XXXXXX)
NETDIR=$DEMO/net.d
PIN=/sys/fs/bpf/afsteer-demo
STATE=$DEMO/state
BR=afdemo0
mkdir -p "$NETDIR" "$DEMO/bin"
ln -s "$ROOT/dist/afsteer" "$DEMO/bin/afsteer"
export CNI_PATH=$DEMO/bin:/usr/lib/cni NETCONFPATH=$NETDIR
CNITOOL=$ROOT/build/cnitool
FWD4=$(cat /proc/sys/net/ipv4/ip_forward) FWD6=$(cat /proc/sys/net/ipv6/conf/all/forwarding)

cleanup() {
  set +e
  for p in a b; do "$CNITOOL" del afsteer-demo /run/netns/afdemo-$p 2>/dev/null; ip netns del afdemo-$p 2>/dev/null; done
  ip link del $BR 2>/dev/null
  rm -rf "$PIN" "$DEMO"
  echo "$FWD4" > /proc/sys/net/ipv4/ip_forward; echo "$FWD6" > /proc/sys/net/ipv6/conf/all/forwarding
}
trap cleanup EXIT

# The example conflist from conf/, pointed at this demo's bridge, pin dir, state and IPAM dirs.
jq --arg br $BR --arg pin "$PIN" --arg state "$STATE" --arg ipam "$DEMO/ipam" '
  .name = "afsteer-demo"
  | .plugins[0].bridge = $br | .plugins[0].ipam.dataDir = $ipam
  | .plugins[1].pinDir = $pin | .plugins[1].stateDir = $state | del(.plugins[1].logFile)' \
  conf/10-afsteer.conflist > "$NETDIR/10-afsteer-demo.conflist"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "conflist: bridge + host-local (IPv4 + IPv6), then afsteer"
cat "$NETDIR/10-afsteer-demo.conflist"

for p in a b; do
  ip netns add afdemo-$p
  ip -n afdemo-$p link set lo up
  say "cnitool add afsteer-demo /run/netns/afdemo-$p"
  "$CNITOOL" add afsteer-demo /run/netns/afdemo-$p 2>/dev/null | tee "$DEMO/result-$p.json" | jq -c '.ips'
done

say "pod a: dual-stack eth0, MTU leaves 40 bytes for the outer header"
ip -n afdemo-a addr show dev eth0

VETH=$(jq -r .hostIfname "$STATE"/attachments/*.json | sed -n 1p)   # sed reads to the end: head could SIGPIPE jq under pipefail
say "tc programs on the host veth $VETH (clsact ingress = from pod, egress = to pod)"
tc filter show dev "$VETH" ingress
tc filter show dev "$VETH" egress
say "pinned under $PIN"
find "$PIN" | sort

B4=$(jq -r '.ips[] | select(.address | contains(".")) | .address' "$DEMO/result-b.json" | cut -d/ -f1)
B6=$(jq -r '.ips[] | select(.address | contains(":")) | .address' "$DEMO/result-b.json" | cut -d/ -f1)
say "traffic a -> b over IPv4 ($B4) and IPv6 ($B6)"
ip netns exec afdemo-a ping -c 3 -i 0.2 "$B4" | tail -2
ip netns exec afdemo-a ping -c 5 -i 0.2 "$B6" | tail -2

say "per-endpoint, per-family counters (afsteer show)"
"$ROOT/dist/afsteer" show --pin-dir "$PIN" --state-dir "$STATE"

say "cnitool check"
"$CNITOOL" check afsteer-demo /run/netns/afdemo-a && echo "CHECK a: ok"

say "cnitool del (twice: DEL is idempotent)"
for p in a b; do "$CNITOOL" del afsteer-demo /run/netns/afdemo-$p; "$CNITOOL" del afsteer-demo /run/netns/afdemo-$p; done
echo "state files left: $(find "$STATE" -name '*.json' | wc -l)"
echo "endpoints left:   $(bpftool map dump pinned "$PIN/afsteer_endpoints" -j | jq length)"
echo "bridge ports left: $(ip -o link show master $BR | wc -l)"
say "part 2: steering between two simulated nodes, by hand (afsteer steer)"
node scripts/run-ts.mjs scripts/demo/steering.ts
say "part 3: afsteerd measures, negotiates and switches by itself"
node scripts/run-ts.mjs scripts/demo/negotiator.ts
say "part 4: a protected pair crosses a blackhole"
node scripts/run-ts.mjs scripts/demo/protect.ts
say "demo done"
