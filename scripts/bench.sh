#!/usr/bin/env bash
# npm run bench: set-up, then the three benchmarks on the pinned Node (root; ~15 min):
# CNI latency, data plane (host veth, then secondary networks: macvlan, programs in the pod), afsteerd failover / false switches / probe overhead, protected pairs.
# Each prints medians and ratios against baselines from the same run, PASS/FAIL per target;
# the exit status is non-zero when any target is missed.
set -uo pipefail
cd "$(dirname "$0")/.."
AFSTEER_ENTRY=bench bash scripts/setup.sh || exit 1
source scripts/node-env.sh
require_pinned_node bench
status=0
node test/bench/cni-latency.mjs || status=1
node scripts/run-ts.mjs test/bench/dataplane.ts || status=1
node scripts/run-ts.mjs test/bench/secondary.ts || status=1
node scripts/run-ts.mjs test/bench/failover.ts || status=1
node scripts/run-ts.mjs test/bench/scale.ts || status=1
node scripts/run-ts.mjs test/bench/protect.ts || status=1
exit $status
