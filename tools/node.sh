#!/usr/bin/env bash
# Runs a TypeScript (or JavaScript) file with Node 24, installing Node and dependencies if missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$NEBULA_ROOT"
exec node "$@"
