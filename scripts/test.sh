#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, docs, then every test — unit, integration
# (each starts its own redis-server on a free port) and interop with the Python Lightbus peer.
#
#   scripts/test.sh            # from anywhere in the repository
#
# Needs: the Rust toolchain, redis-server on PATH (or REDIS_SERVER=/path/to/redis-server) and
# python3 (3.10+) with venv; the Python peer's .venv is built on first use. Uses cargo-nextest
# when installed, else cargo test. Extra arguments go to the test runner (a name filter, say).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Tests are hermetic: no bus configuration or names leak in from the caller's environment.
unset LIGHTBUS_CONFIG LIGHTBUS_SERVICE_NAME LIGHTBUS_PROCESS_NAME LIGHTBUS_MODULE

if ! command -v "${REDIS_SERVER:-redis-server}" >/dev/null 2>&1; then
  echo "error: redis-server not found; install it (apt-get install redis-server)" \
       "or set REDIS_SERVER" >&2
  exit 1
fi
scripts/setup-python-peer.sh

step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo clippy -p lightbus --features otlp -- -D warnings (the OTLP exporter builds)"
cargo clippy -p lightbus --features otlp -- -D warnings

step "cargo doc --workspace --no-deps (warnings are errors: no broken links)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

# Every test runs even when an earlier group fails; the exit status reports any failure.
status=0
if cargo nextest --version >/dev/null 2>&1; then
  # nextest does not run doctests: run them first, so nextest's summary ends the output.
  step "cargo test --workspace --doc"
  cargo test --workspace --doc || status=$?
  step "cargo nextest run --workspace"
  cargo nextest run --workspace --no-fail-fast "$@" || status=$?
else
  step "cargo test --workspace"
  cargo test --workspace --no-fail-fast "$@" || status=$?
fi
step "scripts/test-python.sh (the Python front: pytest)"
scripts/test-python.sh || status=$?
exit "$status"
