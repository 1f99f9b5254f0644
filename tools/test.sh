#!/usr/bin/env bash
# `npm test`: installs what is missing (Node 24, npm packages, Debian packages), brings the local stack
# up, builds the test images, then runs the type check, the module boundary check and every test file.
# The last line reads `N passed, N failed`; the exit code is non-zero on any failure.
#   npm test -- services/api      only test files whose path contains one of the arguments
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$NEBULA_ROOT"
bash tools/stack.sh up
bash tools/images/build.sh
# The dashboard (services/api/ui) the API serves at /ui, for the browser tests (tools/test/ui-*.test.ts).
node services/api/ui/build.ts --if-stale
# Leftovers of an earlier run that was killed: containers the tests labelled, testcontainers' ones.
docker ps -aq --filter label=io.nebula.test=true --filter label=org.testcontainers=true | xargs -r docker rm -f >/dev/null 2>&1 || true
export TESTCONTAINERS_RYUK_DISABLED=true
exec node tools/src/run-tests.ts "$@"
