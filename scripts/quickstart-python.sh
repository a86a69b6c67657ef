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

bold=$(tput bold 2>/dev/null || true); green=$(tput setaf 2 2>/dev/null || true)
red=$(tput setaf 1 2>/dev/null || true); reset=$(tput sgr0 2>/dev/null || true)
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }
fail() { printf '%sFAILED: %s%s\n' "$red" "$*" "$reset" >&2; exit 1; }

# Without a configured Redis, run this script again against a private one.
if [ -z "${LIGHTBUS_CONFIG:-}" ]; then
  exec "$root/scripts/with-private-redis.sh" "$work" "$root/scripts/quickstart-python.sh" "$@"
fi

worker_pid=""
cleanup() { [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null || true; }
trap cleanup EXIT

step "Building the Python package (pip install ./python into .lightbus-python/venv)"
python=$(scripts/setup-python-front.sh)
bin=$(dirname "$python")
cp python/examples/quickstart/{bus.py,call_procedure.py,fire_event.py} "$work/app/"
step "Using the Redis configured in $LIGHTBUS_CONFIG"
cd "$work/app"

step "lightbus run   (the worker, in the background; its output: $work/worker.log)"
"$bin/lightbus" run --service-name quickstart >"$work/worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 100); do
  grep -q "send_welcome_email" "$work/worker.log" 2>/dev/null && break
  kill -0 "$worker_pid" 2>/dev/null || { cat "$work/worker.log"; fail "the worker exited"; }
  sleep 0.1
done
sed 's/^/    /' "$work/worker.log"
grep -q "API \`auth\`" "$work/worker.log" || fail "the worker did not log the auth API"

step "python3 call_procedure.py"
output=$("$python" call_procedure.py)
echo "    $output"
[ "$output" = "Password valid!" ] || fail "expected 'Password valid!'"

step "python3 fire_event.py"
"$python" fire_event.py | sed 's/^/    /'

step "Waiting for the worker to send the welcome email"
for _ in $(seq 100); do
  grep -q "^To: admin@example.com" "$work/worker.log" && break
  sleep 0.1
done
grep -E "^(Subject|To):" "$work/worker.log" | sed 's/^/    /'
grep -q "^Subject: Welcome to our site, admin$" "$work/worker.log" || fail "the worker printed no welcome email"

step "Stopping the worker (SIGTERM)"
kill -TERM "$worker_pid"
status=0; wait "$worker_pid" || status=$?
worker_pid=""
[ "$status" -eq 0 ] || fail "the worker exited with status $status"
printf '\n%s%sPython quickstart complete: the seed'"'"'s files ran unchanged on the Rust engine.%s\n' "$green" "$bold" "$reset"
