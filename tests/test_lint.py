"""The code keeps the style pyproject.toml sets for ruff (line length, pyflakes, import order):
run as a test so CI holds every change to it, not only the ones someone linted by hand."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
    out = subprocess.run([ruff, "check", "--no-cache", "eai", "tests", "benchmarks", "scripts"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
