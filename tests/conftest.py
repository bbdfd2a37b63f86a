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


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory) -> Path:
    """The synthetic sample set (one clip per emotion and format), converted once per session.

    Read-only for tests: copy it before changing anything.
    """
    from eai.converters.pipeline import ConvertConfig, run_convert
    from eai.toolkit.sample_data import write_sample_data

    tmp = tmp_path_factory.mktemp("sample")
    write_sample_data(tmp / "sd", clips_per_emotion=1)
    run_convert(ConvertConfig(inputs=[str(tmp / "sd")], out_dir=tmp / "ds", workers=1))
    return tmp / "ds"


@pytest.fixture
def fixtures_dir() -> Path:
    return _need(FIXTURES)


@pytest.fixture
def bandai_dir() -> Path:
    return _need(BANDAI)
