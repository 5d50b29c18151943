#!/usr/bin/env bash
# The one test command: set up (packages, npm ci, build), type-check, run unit + integration tests.
# Integration tests need root; as another user they are skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent typecheck
mkdir -p build
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=build/vitest-report.json "$@" || status=$?
# A plain closing line any CI reader understands.
if [ -f build/vitest-report.json ]; then
  jq -r '"vitest: \(.numPassedTests) passed, \(.numFailedTests) failed, \(.numPendingTests + .numTodoTests) skipped"' build/vitest-report.json
fi
exit $status
