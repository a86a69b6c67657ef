#!/usr/bin/env bash
# The Python front's tests (python/tests, pytest): the seed's quickstart files unchanged,
# the Lightbus 1.x API, schemas byte-identical to Python Lightbus 1.1.2's, and interop of
# one bus shared by Lightbus 1.1.2, the Python front and lightbus-rs. Each test starts its
# own redis-server on a free port and stops every process it started.
#
#   scripts/test-python.sh [pytest arguments]
#
# Needs: python3 with venv, redis-server, the Rust toolchain. Builds what is missing: the
# Python front's venv (scripts/setup-python-front.sh), the Lightbus 1.1.2 peer's .venv
# (scripts/setup-python-peer.sh) and the lightbus-rs binary for the interop test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
unset LIGHTBUS_CONFIG LIGHTBUS_SERVICE_NAME LIGHTBUS_PROCESS_NAME LIGHTBUS_MODULE
scripts/setup-python-peer.sh
# A debug build: it reuses what the Rust test suite built, and the tests measure no speed.
python=$(scripts/setup-python-front.sh --with-tests --debug)
nice -n 10 cargo build --quiet -p lightbus-cli
exec "$python" -m pytest "$root/python/tests" -p no:cacheprovider "$@"
