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


# -- tiny language models (tests/tiny_models.py) ----------------------------------------------
@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """A local HF model directory: random 2-layer Llama (head_dim 64, tied embeddings)."""
    from tiny_models import make_tiny_base

    return make_tiny_base(tmp_path_factory.mktemp("tiny-base"))


@pytest.fixture(scope="session")
def tiny_skeleton_dir(sample_dataset, tmp_path_factory) -> Path:
    """A 2-step MGST tokenizer on the sample data (with its emotion classifier). Read-only."""
    from eai.toolkit.tokenizer import TokenizerConfig, train_tokenizer

    out = tmp_path_factory.mktemp("tiny-tok")
    cfg = TokenizerConfig(steps=2, hidden=8, depth=1, batch_size=4, crop_frames=16,
                          held_out_fraction=0.0, threads=1)
    train_tokenizer([sample_dataset], out, cfg, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_base, tiny_skeleton_dir, tmp_path_factory) -> Path:
    """`eai model init` of the tiny base with the tiny skeleton tokenizer. Read-only."""
    from eai.toolkit.model import init_model

    out = tmp_path_factory.mktemp("tiny-models") / "eai-tiny"
    init_model(out, tiny_skeleton_dir, base=str(tiny_base))
    return out


@pytest.fixture(scope="session")
def tiny_taught_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A copy of tiny_model_dir taught (a few seconds) to answer in the EAI-LLM format with
    prompt-dependent answers (tiny_models.TAUGHT). Read-only."""
    from tiny_models import teach_answer_format

    return teach_answer_format(tiny_model_dir, tmp_path_factory.mktemp("taught") / "eai-taught")
