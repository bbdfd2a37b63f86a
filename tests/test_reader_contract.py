"""One contract every format reader keeps (run against each entry of the format table)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from eai.converters.base import ReadOptions
from eai.converters.errors import ConvertError
from eai.converters.registry import FORMATS
from eai.toolkit.clip import Clip
from eai.toolkit.skeleton import JOINT_INDEX as J

# One real file per suffix in the format table.
EXAMPLES = {
    ".bvh": "bvh/bvhpython_test_mocapbank.bvh",
    ".c3d": "c3d/ktk_tennis_serve_nan.c3d",
    ".npy": "npy/emotiongait_008_Happy.npy",
}


def test_every_format_has_an_example():
    assert set(FORMATS) - {".npz"} == set(EXAMPLES)


@pytest.mark.parametrize("suffix", sorted(EXAMPLES))
def test_reader_contract(fixtures_dir, suffix):
    path = fixtures_dir / EXAMPLES[suffix]
    fmt, reader = FORMATS[suffix]
    clip = reader(path, ReadOptions(fps=25.0))
    assert isinstance(clip, Clip)
    assert clip.positions.dtype == np.float32 and clip.positions.shape[1:] == (19, 3)
    assert clip.num_frames >= 2 and clip.fps == 25.0
    assert clip.joint_mask.dtype == bool and clip.joint_mask[J["pelvis"]]
    # Joints the source lacks are NaN everywhere; joints it has are mostly finite.
    assert np.isnan(clip.positions[:, ~clip.joint_mask]).all()
    assert np.isfinite(clip.positions[:, clip.joint_mask]).mean() > 0.95
    assert clip.source.format == fmt
    assert clip.source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert clip.source.joint_names and clip.source.profile and clip.source.units
    # Canonical conventions.
    assert abs(np.nanmin(clip.positions[..., 1])) < 0.05  # floor at y = 0
    assert clip.positions[0, J["l_hip"], 0] > clip.positions[0, J["r_hip"], 0]  # facing +Z
    np.testing.assert_allclose(clip.positions[0, J["pelvis"], [0, 2]], 0.0, atol=1e-5)
    assert np.nanmedian(clip.positions[:, J["head"], 1]) > np.nanmedian(
        clip.positions[:, J["pelvis"], 1])


@pytest.mark.parametrize("suffix", sorted(FORMATS))
def test_garbage_raises_convert_error_naming_the_file(tmp_path, suffix):
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(np.random.default_rng(1).bytes(2048))
    _, reader = FORMATS[suffix]
    with pytest.raises(ConvertError) as info:
        reader(path, ReadOptions())
    assert str(path) in str(info.value)


@pytest.mark.parametrize("suffix", sorted(FORMATS))
def test_empty_file_raises_convert_error(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    _, reader = FORMATS[suffix]
    with pytest.raises(ConvertError):
        reader(path, ReadOptions())
