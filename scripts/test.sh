#!/usr/bin/env bash
# The one test command: set up (packages, npm ci, build), type-check, run unit + integration tests.
# Integration tests need root; as another user they are skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent typecheck
exec npx vitest run
