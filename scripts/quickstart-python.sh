#!/usr/bin/env bash
# The quickstart in Python, end to end: the seed's bus.py, call_procedure.py and
# fire_event.py, unchanged (python/examples/quickstart), on the Python front. Builds the
# package into a private venv (.lightbus-python/venv), then runs `lightbus run`,
# `python3 call_procedure.py` and `python3 fire_event.py` in a folder holding just those files.
#
# Redis: if LIGHTBUS_CONFIG names a configuration file, its Redis is used. Otherwise a
# private redis-server is started on a free port (scripts/with-private-redis.sh) and stopped
# at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work="$root/.lightbus-python/quickstart"
if [ -z "${LIGHTBUS_CONFIG:-}" ]; then rm -rf "$work"; fi
mkdir -p "$work/app"

source "$root/scripts/lib/quickstart-steps.sh"

# Without a configured Redis, run this script again against a private one.
if [ -z "${LIGHTBUS_CONFIG:-}" ]; then
  exec "$root/scripts/with-private-redis.sh" "$work" "$root/scripts/quickstart-python.sh" "$@"
fi

step "Building the Python package (pip install ./python into .lightbus-python/venv)"
python=$(scripts/setup-python-front.sh)
bin=$(dirname "$python")
cp python/examples/quickstart/{bus.py,call_procedure.py,fire_event.py} "$work/app/"
step "Using the Redis configured in $LIGHTBUS_CONFIG"
cd "$work/app"

step "lightbus run   (the worker, in the background; its output: $work/worker.log)"
start_worker "$work/worker.log" "$bin/lightbus" run --service-name quickstart
grep -q "API \`auth\`" "$work/worker.log" || fail "the worker did not log the auth API"

step "python3 call_procedure.py"
check_call "$python" call_procedure.py

step "python3 fire_event.py"
"$python" fire_event.py | sed 's/^/    /'

expect_welcome_email "$work/worker.log"
stop_worker
done_in_green "Python quickstart complete: the seed's files ran unchanged on the Rust engine."
