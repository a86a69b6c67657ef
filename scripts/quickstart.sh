#!/usr/bin/env bash
# Runs the quickstart end to end: the auth worker, an RPC, and an event, in Rust; then the
# same with the seed's Python files (scripts/quickstart-python.sh).
#
# Redis: if LIGHTBUS_CONFIG names a configuration file, its Redis is used. Otherwise a
# private redis-server is started on a free port (scripts/with-private-redis.sh) and stopped
# at the end, so the quickstart never touches a Redis you already run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work="$root/.lightbus-quickstart"
mkdir -p "$work"
source "$root/scripts/lib/quickstart-steps.sh"

# Without a configured Redis, run this script again against a private one.
if [ -z "${LIGHTBUS_CONFIG:-}" ]; then
  exec "$root/scripts/with-private-redis.sh" "$work" "$root/scripts/quickstart.sh" "$@"
fi

step "Building the examples"
cargo build --quiet --examples -p lightbus
bin="$root/target/debug/examples"
step "Using the Redis configured in $LIGHTBUS_CONFIG"

step "auth_service run   (the worker, in the background; its output: $work/worker.log)"
start_worker "$work/worker.log" "$bin/auth_service" run --service-name quickstart

step "call_procedure"
check_call "$bin/call_procedure"

step "fire_event"
"$bin/fire_event" | sed 's/^/    /'

expect_welcome_email "$work/worker.log"
stop_worker
done_in_green "Quickstart complete: RPC and event both worked."

# The same quickstart with the seed's Python files, unchanged, on the Python front.
"$root/scripts/quickstart-python.sh"
