#!/usr/bin/env bash
# Builds .venv with the Python Lightbus 1.1.2 peer used by the interoperability tests.
# Lightbus 1.1.2 needs the old aioredis 1.x on Python 3.10+ (see PROTOCOL.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
if "$venv/bin/python" -c 'import lightbus, aioredis' >/dev/null 2>&1; then
  exit 0
fi
python=${PYTHON:-python3}
echo "setting up the Python Lightbus peer in $venv" >&2
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'lightbus==1.1.2' 'aioredis<2'
"$venv/bin/python" -c 'import lightbus, aioredis; print("python peer ready: lightbus", lightbus.__version__ if hasattr(lightbus, "__version__") else "1.1.2")' >&2
