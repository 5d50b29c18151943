#!/usr/bin/env bash
# Node bootstrap installer (as root): a thin wrapper around `afsteer install`, which does the
# work (the same executable does it inside the afsteer image, which has no shell or jq).
#   bash scripts/install.sh [--root DIR] [--dry-run] [--node-name NAME] [--peer IPV4[,IPV6][:PORT]]...
#                           [--key FILE] [--multicast] [--port N] [--write-conflist] [--cni-only]
#                           [--afsteer-conf JSON] [--allow-plugin TYPE]...
#   bash scripts/install.sh --uninstall [--root DIR] [--dry-run] [--force] [--pin-dir DIR] [--state-dir DIR]
# The executable installed is $AFSTEER_BIN, else dist/afsteer of this checkout (npm run build).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${AFSTEER_BIN:-$here/dist/afsteer}
[ -x "$bin" ] || { echo "install.sh: no executable at $bin: build it (bash scripts/setup.sh) or set AFSTEER_BIN" >&2; exit 2; }
case " $* " in
  *" --uninstall "*) exec "$bin" install "$@" ;;
  *) exec "$bin" install --bin "$bin" "$@" ;;
esac
