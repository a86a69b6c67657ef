#!/usr/bin/env bash
# Runs a command against a private redis-server: started on a free port, with a bus
# configuration file for it exported as LIGHTBUS_CONFIG, and stopped when the command ends.
#
#   scripts/with-private-redis.sh WORKDIR COMMAND [ARGS...]
#
# WORKDIR receives redis.log and bus.yaml. The command's exit status is returned.
set -euo pipefail
work=$1; shift
mkdir -p "$work"
command -v redis-server >/dev/null || { echo "redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "private redis-server on 127.0.0.1:$port" >&2
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null || true' EXIT
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
status=0
LIGHTBUS_CONFIG="$work/bus.yaml" "$@" || status=$?
exit "$status"
