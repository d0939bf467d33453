#!/usr/bin/env bash
# Install edgesdk and its pinned stack into a virtual environment (.venv, or $EDGESDK_VENV).
#   bash scripts/install.sh         runtime only
#   bash scripts/install.sh --dev   plus pytest, ruff and mypy
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${EDGESDK_VENV:-.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv with $($python --version)"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip
echo "installing the pinned runtime stack (TensorFlow CPU, LiteRT, ...)"
"${pip[@]}" install -r requirements.txt
"${pip[@]}" install --no-deps -r requirements-nodeps.txt
"${pip[@]}" install --no-deps -e .
if [ "${1:-}" = "--dev" ]; then
  "${pip[@]}" install -r requirements-dev.txt
  # An old device runtime (tflite-runtime 2.14) for the tests of operator-version checks.
  old="${EDGESDK_OLD_RUNTIME_VENV:-.venv-tflite214}"
  if [ ! -x "$old/bin/python" ]; then
    "$python" -m venv "$old"
  fi
  "$old/bin/python" -m pip --disable-pip-version-check -q install -r requirements-device-old.txt
fi
echo "edgesdk installed in $venv: run $venv/bin/edgesdk --help"
