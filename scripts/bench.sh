#!/usr/bin/env bash
# npm run bench: set-up, then the seven benchmark parts on the pinned Node (root; tens of minutes):
#   1. CNI latency        test/bench/cni-latency.mjs
#   2. Data plane         test/bench/dataplane.ts
#   3. Secondary networks  test/bench/secondary.ts  (macvlan: programs in the pod's namespace)
#   4. afsteerd failover  test/bench/failover.ts   (failover, false switches, probe overhead)
#   5. Scale              test/bench/scale.ts      (1,000 peers, failover at that size, the UDP floor)
#   6. Protected pairs    test/bench/protect.ts
#   7. Authentication     test/bench/auth-cost.ts  (pairwise-key MAC vs cluster-key MAC per datagram)
# Each prints medians and ratios against baselines from the same run, PASS/FAIL per target;
# the exit status is non-zero when any target is missed. docs/benchmarks.md has one section per
# part (test/unit/docs.test.ts checks that this list, the commands below and that page agree).
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
node scripts/run-ts.mjs test/bench/auth-cost.ts || status=1   # identities: pairwise-key MAC vs cluster-key MAC per datagram
exit $status
