"""The vLLM environment the tests that start a real server need (scripts/setup_vllm.sh)."""

from __future__ import annotations

import os

import pytest


def need_vllm() -> str:
    """The vLLM environment's interpreter, or skip the test with what to do."""
    from eai.toolkit.serving import ServeError, vllm_python

    if not os.environ.get("EAI_VLLM_PYTHON"):
        pytest.skip("EAI_VLLM_PYTHON is not set: make the vLLM environment with "
                    "`bash scripts/setup_vllm.sh` and export the line it prints")
    try:
        return vllm_python()[0]
    except ServeError as e:
        pytest.skip(f"no usable vLLM environment: {e}")
