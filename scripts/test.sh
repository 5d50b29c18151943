#!/usr/bin/env bash
# The one test command: set up (packages, pinned Node, npm ci, build), lint, type-check, run unit +
# integration tests, all on the pinned Node (scripts/node-env.sh).
# Integration tests need root; as another user they are skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
AFSTEER_ENTRY=test.sh bash scripts/setup.sh
source scripts/node-env.sh
require_pinned_node test
echo "test: lint and format check (biome: zero findings; npm run format fixes what it can)" >&2
node_modules/.bin/biome check .
echo "test: type-check (tsc)" >&2
node_modules/.bin/tsc -p .
echo "test: vitest, unit then root integration tests (~1-2 min)" >&2
status=0
rm -f build/vitest-report.json   # a stale report must not stand for this run
node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json=build/vitest-report.json "$@" || status=$?
# A plain closing line any CI reader understands.
if [ -f build/vitest-report.json ]; then
  jq -r '"vitest: \(.numPassedTests) passed, \(.numFailedTests) failed, \(.numPendingTests + .numTodoTests) skipped"' build/vitest-report.json
fi
exit $status
