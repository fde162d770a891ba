#!/usr/bin/env bash
# Builds and tests the contracts: npm dependencies, then forge build and
# forge test, all offline (see README.md). Any failure exits non-zero; so does
# a run in which forge executed no test at all.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "contracts/ci.sh: '$tool' is required but not on PATH" >&2
    exit 1
  fi
done

# npm writes node_modules/.package-lock.json on every install; when the
# committed lock file is newer, the installed tree may be stale.
if [[ ! -d node_modules || ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "==> npm ci"
  npm ci --no-audit --no-fund
fi

forge=node_modules/.bin/forge
if [[ ! -x "$forge" || ! -x node_modules/.bin/anvil ]]; then
  echo "contracts/ci.sh: forge or anvil missing from node_modules/.bin after install" >&2
  exit 1
fi

echo "==> forge build"
"$forge" build

echo "==> forge test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Keep forge's exit status, but print the summary below before acting on it.
status=0
"$forge" test 2>&1 | tee "$log" || status=$?

# forge's closing line reads, e.g.:
#   Ran 1 test suite in 180ms (170ms CPU time): 44 tests passed, 0 failed, 0 skipped (44 total tests)
summary="$(grep -E 'tests? passed, [0-9]+ failed, [0-9]+ skipped' "$log" | tail -n 1 || true)"
if [[ -z "$summary" ]]; then
  echo "contracts/ci.sh: no forge test summary found (forge exited ${status})" >&2
  exit 1
fi
passed="$(sed -E 's/.*: ([0-9]+) tests? passed.*/\1/' <<<"$summary")"
failed="$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$summary")"
skipped="$(sed -E 's/.* ([0-9]+) skipped.*/\1/' <<<"$summary")"

# One plain closing line, in the 'N passed, N failed' form CI readers expect.
echo "forge: ${passed} passed, ${failed} failed, ${skipped} skipped"

if [[ "$status" != 0 || "$failed" != 0 || "$passed" == 0 ]]; then
  echo "contracts/ci.sh: forge test failed (exit ${status})" >&2
  exit 1
fi
