"""Shared test fixtures. Real data is read in place from ../shared (never copied here)."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
BANDAI = SHARED / "datasets" / "bandai-namco-1"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (tests read ../shared relative to the "
                    f"project root)")
    return path


@pytest.fixture
def fixtures_dir() -> Path:
    return _need(FIXTURES)


@pytest.fixture
def bandai_dir() -> Path:
    return _need(BANDAI)
