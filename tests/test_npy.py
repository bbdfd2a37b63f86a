"""NPY / NPZ reader: layouts, inference, sidecars, refusing pickles and feature matrices."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from eai.converters import npy
from eai.converters.base import ReadOptions
from eai.converters.errors import ConvertError
from eai.toolkit.skeleton import JOINT_INDEX as J


@pytest.mark.parametrize("name,label", [("emotiongait_002_Sad.npy", "Sad"),
                                        ("emotiongait_004_Angry.npy", "Angry"),
                                        ("emotiongait_008_Happy.npy", "Happy")])
def test_emotion_gait_fixtures_infer_their_layout(fixtures_dir, name, label):
    clip = npy.read(fixtures_dir / "npy" / name)
    assert clip.source.profile == "emotion-gait-16"
    assert any("inferred from the joint count (16)" in n for n in clip.source.notes)
    assert any("frame rate not stated" in n for n in clip.source.notes)
    pos = clip.positions
    assert not clip.joint_mask[J["chest"]] and np.isnan(pos[:, J["chest"]]).all()
    assert clip.joint_mask[J["head"]]
    assert pos[0, J["l_hip"], 0] > pos[0, J["r_hip"], 0]  # facing +Z
    assert np.nanmin(pos[:, [J["l_ankle"], J["r_ankle"]], 1]) == pytest.approx(0, abs=1e-6)
    assert np.nanmedian(pos[:, J["head"], 1]) > np.nanmedian(pos[:, J["pelvis"], 1]) + 0.3


def _smpl_like(frames: int = 20) -> np.ndarray:
    """A standing SMPL-22 body in metres (Y up, facing +Z), swaying a little."""
    from eai.converters.profiles import SMPL_22_LAYOUT
    rest = {"pelvis": (0, .95, 0), "left_hip": (.09, .88, 0), "right_hip": (-.09, .88, 0),
            "spine1": (0, 1.05, 0), "left_knee": (.1, .5, 0), "right_knee": (-.1, .5, 0),
            "spine2": (0, 1.18, 0), "left_ankle": (.1, .08, 0), "right_ankle": (-.1, .08, 0),
            "spine3": (0, 1.3, 0), "left_foot": (.1, .02, .12), "right_foot": (-.1, .02, .12),
            "neck": (0, 1.5, 0), "left_collar": (.08, 1.45, 0), "right_collar": (-.08, 1.45, 0),
            "head": (0, 1.62, .03), "left_shoulder": (.18, 1.42, 0),
            "right_shoulder": (-.18, 1.42, 0), "left_elbow": (.2, 1.15, 0),
            "right_elbow": (-.2, 1.15, 0), "left_wrist": (.21, .9, 0),
            "right_wrist": (-.21, .9, 0)}
    base = np.array([rest[n] for n in SMPL_22_LAYOUT])
    sway = np.sin(np.linspace(0, 2 * np.pi, frames))[:, None, None] * np.array([0.02, 0, 0])
    return (base[None] + sway).astype(np.float32)


def test_layout_option_and_flat_columns(tmp_path):
    arr = _smpl_like()
    path = tmp_path / "flat.npy"
    np.save(path, arr.reshape(len(arr), -1))  # (T, 66)
    clip = npy.read(path, ReadOptions(layout="smpl-22", source_fps=20))
    assert clip.source.profile == "smpl-22" and clip.source.fps == 20
    assert clip.num_frames == 29  # 19 intervals of 1/20 s at 30 fps
    assert clip.joint_mask.all()
    np.testing.assert_allclose(clip.positions[0, J["head"], 1], 1.62 - 0.02, atol=1e-5)


def test_sidecar_states_layout_fps_and_units(tmp_path):
    path = tmp_path / "walk.npz"
    np.savez(path, joints=_smpl_like() * 1000.0)
    (tmp_path / "walk.json").write_text(json.dumps({"layout": "smpl", "fps": 30,
                                                    "units": "mm"}))
    clip = npy.read(path)
    assert clip.source.units == "mm"
    np.testing.assert_allclose(clip.positions[0, J["head"], 1], 1.60, atol=1e-4)


def test_layout_with_wrong_joint_count_is_refused(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, _smpl_like())
    with pytest.raises(ConvertError, match="has 25 joints but the array has 22"):
        npy.read(path, ReadOptions(layout="kinect-v2-25"))


def test_pickled_array_is_refused(tmp_path):
    path = tmp_path / "evil.npy"
    np.save(path, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ConvertError, match="pickled Python objects"):
        npy.read(path)
    raw_pickle = tmp_path / "raw.npy"
    raw_pickle.write_bytes(pickle.dumps(np.zeros((3, 16, 3))))
    with pytest.raises(ConvertError, match="pickled Python objects"):
        npy.read(raw_pickle)
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(ConvertError, match="not a readable NumPy file"):
        npy.read(garbage)


def test_feature_matrix_is_rejected_with_the_expected_shape(tmp_path):
    path = tmp_path / "humanml.npy"
    np.save(path, np.zeros((40, 263), dtype=np.float32))
    with pytest.raises(ConvertError) as info:
        npy.read(path)
    msg = str(info.value)
    assert "(40, 263)" in msg and "(frames, joints, 3)" in msg and "not a multiple of 3" in msg


def test_unknown_joint_count_asks_for_a_layout(tmp_path):
    path = tmp_path / "odd.npy"
    np.save(path, np.zeros((10, 17, 3)))
    with pytest.raises(ConvertError, match="pass --layout"):
        npy.read(path)
