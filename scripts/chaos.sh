#!/usr/bin/env bash
# Chaos runs with counts (crates/lightbus/tests/chaos.rs and chaos_poison.rs), one after
# another, each printing its table:
#   - N calls while the two worker processes serving them are SIGKILLed in turn every
#     300-700 ms: executions per call (never twice), calls answered OK that never ran (none);
#   - N events while the two listener processes are SIGKILLed the same way and Redis
#     restarts once (append-only file, fsync always): events lost (none), duplicates;
#   - calls and events under load through `CLIENT PAUSE 2000 ALL` and `DEBUG SLEEP 2`: how
#     long callers stalled, how soon work flowed again, events lost, calls run twice;
#   - N/50 events of which every 10th has a handler slower than acknowledgement_timeout:
#     handled at most twice;
#   - one poison event among N good ones, under the default OnError::Shutdown with the
#     worker restarted after every stop: all good ones handled, the poison dead-lettered.
#
#   scripts/chaos.sh            # full size: 10,000 calls and 10,000 events
#   scripts/chaos.sh 300        # the reduced size CI runs (the tests' defaults)
#
# Needs the Rust toolchain and redis-server on PATH (or REDIS_SERVER=/path/to/redis-server).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
unset LIGHTBUS_CONFIG LIGHTBUS_SERVICE_NAME LIGHTBUS_PROCESS_NAME LIGHTBUS_MODULE

n=${1:-10000}
case $n in
  ''|*[!0-9]*) echo "error: the size must be a number of calls and events, not '$n'" >&2; exit 2 ;;
esac
slow=$(( n / 50 > 40 ? n / 50 : 40 ))
echo "==> chaos at $n calls and $n events (slow-handler run: $slow events)" >&2
export CHAOS_CALLS=$n CHAOS_EVENTS=$n CHAOS_SLOW_EVENTS=$slow
# One test at a time, so that no run's figures are skewed by another's load.
cargo test -p lightbus --test chaos --test chaos_poison -- --test-threads 1 --nocapture 2>&1 \
  | grep -E '^\||^test .* (ok|FAILED)$|test result|panicked|gave up' \
  | grep -v 'chaos_child_process'
