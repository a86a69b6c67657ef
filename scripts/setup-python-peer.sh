#!/usr/bin/env bash
# Builds .venv with the Python Lightbus 1.1.2 peer used by the interoperability tests.
# Lightbus 1.1.2 needs the old aioredis 1.x on Python 3.10+ (see docs/protocol.md, "Living with
# the Python peer").
#
# When a CPython 3.10 is found (PYTHON310, python3.10 on PATH, or a pyenv 3.10 such as this
# project's machine image ships), also builds .venv310: tests/interop_values.rs then runs its
# table against the peer on 3.10 too (the oldest Python the peer supports, with the strictest
# datetime parsing). Without one that leg is skipped with a note.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

# setup VENV PYTHON: the peer in VENV, built with PYTHON unless it is already there.
setup() {
  local venv=$1 python=$2
  if "$venv/bin/python" -c 'import lightbus, aioredis' >/dev/null 2>&1; then
    return 0
  fi
  echo "setting up the Python Lightbus peer in $venv ($python)" >&2
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'lightbus==1.1.2' 'aioredis<2'
  "$venv/bin/python" -c 'import sys, lightbus, aioredis; print("python peer ready:", sys.version.split()[0])' >&2
}

setup "$root/.venv" "${PYTHON:-python3}"

# A CPython 3.10 interpreter, or nothing.
find_python310() {
  local candidate
  for candidate in "${PYTHON310:-}" python3.10 \
      "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.10*/bin/python3.10; do
    if [ -n "$candidate" ] && "$candidate" -c \
        'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
}

python310=$(find_python310 || true)
if [ -n "$python310" ]; then
  setup "$root/.venv310" "$python310"
else
  echo "no CPython 3.10 found: the Python 3.10 leg of the interop tests will be skipped" >&2
fi
