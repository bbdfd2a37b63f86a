#!/usr/bin/env bash
# Create .venv with eai and everything its tests need, on a fresh machine.
# Conversion needs no torch. Later stages will pin the CPU build first (torch==2.13.0): a bare
# `torch` requirement can pull several GB of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[test,bench]"
echo "eai installed in $(pwd)/.venv ($(eai --help >/dev/null && echo 'eai --help works'))"
