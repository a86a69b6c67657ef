#!/usr/bin/env bash
# Runs the quickstart end to end: the auth worker, an RPC, and an event.
#
# Redis: if LIGHTBUS_CONFIG names a configuration file, its Redis is used. Otherwise a
# private redis-server is started on a free port (and stopped at the end), so the quickstart
# never touches a Redis you already run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work="$root/.lightbus-quickstart"
mkdir -p "$work"

bold=$(tput bold 2>/dev/null || true); green=$(tput setaf 2 2>/dev/null || true)
red=$(tput setaf 1 2>/dev/null || true); reset=$(tput sgr0 2>/dev/null || true)
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }
fail() { printf '%sFAILED: %s%s\n' "$red" "$*" "$reset" >&2; exit 1; }

worker_pid=""; redis_pid=""
cleanup() {
  [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null || true
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true
}
trap cleanup EXIT

step "Building the examples"
cargo build --quiet --examples -p lightbus
bin="$root/target/debug/examples"

if [ -z "${LIGHTBUS_CONFIG:-}" ]; then
  command -v redis-server >/dev/null || fail "redis-server is not installed (apt-get install redis-server), and LIGHTBUS_CONFIG is not set"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  step "Starting a private redis-server on 127.0.0.1:$port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  url="redis://127.0.0.1:$port/0"
  cat >"$work/bus.yaml" <<YAML
bus:
  schema:
    transport: {redis: {url: "$url"}}
apis:
  default:
    rpc_transport: {redis: {url: "$url"}}
    result_transport: {redis: {url: "$url"}}
    event_transport: {redis: {url: "$url"}}
YAML
  export LIGHTBUS_CONFIG="$work/bus.yaml"
else
  step "Using the Redis configured in $LIGHTBUS_CONFIG"
fi

step "auth_service run   (the worker, in the background; its output: $work/worker.log)"
"$bin/auth_service" run --service-name quickstart >"$work/worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 100); do
  grep -q "send_welcome_email" "$work/worker.log" 2>/dev/null && break
  kill -0 "$worker_pid" 2>/dev/null || { cat "$work/worker.log"; fail "the worker exited"; }
  sleep 0.1
done
sed 's/^/    /' "$work/worker.log"

step "call_procedure"
output=$("$bin/call_procedure")
echo "    $output"
[ "$output" = "Password valid!" ] || fail "expected 'Password valid!'"

step "fire_event"
"$bin/fire_event" | sed 's/^/    /'

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
printf '\n%s%sQuickstart complete: RPC and event both worked.%s\n' "$green" "$bold" "$reset"

# The same quickstart with the seed's Python files, unchanged, on the Python front.
"$root/scripts/quickstart-python.sh"
