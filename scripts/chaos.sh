#!/usr/bin/env bash
# Chaos runs with counts. Today: one poison event among N good ones, for a listener under the
# default OnError::Shutdown whose worker is restarted every time the poison event stops it
# (crates/lightbus/tests/chaos_poison.rs). Prints a table: good events handled, duplicates,
# worker stops, the poison event's deliveries, dead letters, entries left pending.
#
#   scripts/chaos.sh            # full size: 10,000 good events
#   scripts/chaos.sh 200        # the reduced size CI runs (the test's default)
#
# Needs the Rust toolchain and redis-server on PATH (or REDIS_SERVER=/path/to/redis-server).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
unset LIGHTBUS_CONFIG LIGHTBUS_SERVICE_NAME LIGHTBUS_PROCESS_NAME LIGHTBUS_MODULE

events=${1:-10000}
case $events in
  ''|*[!0-9]*) echo "error: the size must be a number of events, not '$events'" >&2; exit 2 ;;
esac
echo "==> a poison event among $events good ones (max_deliveries 3)" >&2
CHAOS_EVENTS=$events cargo test -p lightbus --test chaos_poison -- --nocapture 2>&1 \
  | grep -E '^\||test result|panicked|gave up'
