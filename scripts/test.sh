#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, slow tests and real services included:
# Label Studio (from .venv), headless Chromium (Debian package) and a vLLM server (from its own
# environment, .venv-vllm, unless EAI_VLLM_PYTHON already names one). The tests start each
# service they need and stop it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_browser.sh
if [ -z "${EAI_VLLM_PYTHON:-}" ]; then
  # its last line is `export EAI_VLLM_PYTHON=...`
  eval "$(bash scripts/setup_vllm.sh | tail -n 1)"
fi
. .venv/bin/activate
python -m pytest -q "$@"
