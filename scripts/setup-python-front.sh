#!/usr/bin/env bash
# Builds the Python front (python/, the `lightbus` package on the Rust engine) into a private
# virtualenv, .lightbus-python/venv, with `pip install ./python` (maturin comes from the
# package index; cargo builds the engine). Prints the venv's python on stdout.
#
#   scripts/setup-python-front.sh [--with-tests] [--debug]
#
# --with-tests also installs pytest (and `schedule`, for the task tests); --debug builds the
# engine with cargo's dev profile (reusing the test suite's debug build; slower at run time).
#
# Needs python3 (3.9+) with venv, and the Rust toolchain. Re-running rebuilds the package
# (cargo's cache makes an unchanged engine quick).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.lightbus-python/venv"
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  echo "creating the Python front's virtualenv in $venv" >&2
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
extras=()
for option in "$@"; do
  case "$option" in
    --with-tests)
      "$venv/bin/python" -c 'import pytest' >/dev/null 2>&1 || extras+=(pytest)
      "$venv/bin/python" -c 'import schedule' >/dev/null 2>&1 || extras+=(schedule)
      ;;
    # maturin reads extra build arguments from MATURIN_PEP517_ARGS.
    --debug) export MATURIN_PEP517_ARGS="--profile dev" ;;
    *) echo "unknown option $option" >&2; exit 2 ;;
  esac
done
if [ ${#extras[@]} -gt 0 ]; then
  "${pip[@]}" install "${extras[@]}" >&2
fi
echo "building and installing the lightbus Python package (python/) into $venv" >&2
# The package has no dependencies; cargo builds on 2 shared cores, so stay polite.
nice -n 10 "${pip[@]}" install --force-reinstall --no-deps "$root/python" >&2
"$venv/bin/python" -c 'import lightbus._engine' >&2
echo "$venv/bin/python"
