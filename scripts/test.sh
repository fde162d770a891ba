#!/usr/bin/env bash
# Runs Purser's whole test suite: the contracts' forge tests, unit, property,
# storage (SQLite and PostgreSQL), HTTP, chain (anvil) and end-to-end CLI tests, the
# x402 interop tests against the reference npm packages, and the dashboard in a real
# browser (Playwright + Chromium).
#
# Node tools: contracts/ci.sh installs anvil, forge and solc from npm and builds and
# tests TestUSDC; e2e/ gets the reference @x402/* packages with `npm ci`. Missing
# node or npm fails the run. The same `npm ci` brings playwright-core for the
# dashboard's browser test (crates/purser-cli/tests/dashboard.rs), which drives
# Debian's Chromium: when neither /usr/bin/chromium nor `chromium` on the PATH is
# there, the script installs the `chromium` package (apt-get, as root or through
# sudo) and exports CHROMIUM for the test. Screenshots of every page land in
# target/dashboard-screenshots/.
#
# PostgreSQL: uses PURSER_TEST_POSTGRES_URL when set; otherwise the server at
# 127.0.0.1:5432 (database "test") when it answers; otherwise installs Debian's
# postgresql package if needed and starts a throwaway cluster on a free port,
# stopped again when the tests end (PURSER_TEST_THROWAWAY_PG=1 forces that path).
# A missing database fails the run: nothing skips.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "error: '$*' needs root (or sudo)" >&2; exit 1; fi
}

postgres_answers() {
  command -v psql >/dev/null && psql "$1" -tAc 'SELECT 1' >/dev/null 2>&1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_throwaway_postgres() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    log "installing Debian's postgresql"
    need_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local bin port dir run
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  port=$(free_port)
  dir=$(mktemp -d /tmp/purser-pg.XXXXXX)
  PURSER_PG_DIR=$dir
  run=()
  if [ "$(id -u)" -eq 0 ]; then
    # initdb refuses to run as root; the cluster belongs to the postgres user.
    chown postgres "$dir"
    run=(runuser -u postgres --)
  fi
  log "starting a throwaway PostgreSQL on 127.0.0.1:$port ($dir)"
  "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
  "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
  PURSER_PG_STOP=("${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop)
  trap 'log "stopping the throwaway PostgreSQL"; "${PURSER_PG_STOP[@]}" >/dev/null || true; rm -rf "$PURSER_PG_DIR"' EXIT
  "${run[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres test
  export PURSER_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/test"
}

if [ -z "${PURSER_TEST_POSTGRES_URL:-}" ]; then
  default_url="postgres://postgres@127.0.0.1:5432/test"
  # PURSER_TEST_THROWAWAY_PG=1 takes the fresh-machine path even when a server answers.
  if [ -z "${PURSER_TEST_THROWAWAY_PG:-}" ] && postgres_answers "$default_url"; then
    export PURSER_TEST_POSTGRES_URL="$default_url"
  else
    start_throwaway_postgres
  fi
fi
postgres_answers "$PURSER_TEST_POSTGRES_URL" || { echo "error: PostgreSQL at $PURSER_TEST_POSTGRES_URL does not answer" >&2; exit 1; }
log "PostgreSQL for the tests: $PURSER_TEST_POSTGRES_URL"

command -v node >/dev/null && command -v npm >/dev/null || {
  echo "error: node and npm are required (anvil, forge and the x402 reference packages come from npm)" >&2; exit 1; }
log "contracts: npm ci, forge build, forge test"
./contracts/ci.sh
log "e2e: npm ci (reference @x402 packages)"
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)

# Chromium for the dashboard's browser test (Playwright drives it headless).
if [ -z "${CHROMIUM:-}" ]; then
  if [ -x /usr/bin/chromium ]; then
    CHROMIUM=/usr/bin/chromium
  elif command -v chromium >/dev/null; then
    CHROMIUM=$(command -v chromium)
  else
    log "installing Debian's chromium (for the dashboard browser test)"
    need_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    CHROMIUM=$(command -v chromium || echo /usr/bin/chromium)
  fi
fi
[ -x "$CHROMIUM" ] || { echo "error: Chromium not found at $CHROMIUM (the dashboard browser test needs it)" >&2; exit 1; }
export CHROMIUM
log "Chromium for the dashboard test: $CHROMIUM"

log "cargo test --workspace"
cargo test --workspace --all-targets
cargo test --workspace --doc
