"""BVH reader: parsing quirks, forward kinematics against scipy, real files, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from eai.converters import bvh
from eai.converters.base import ReadOptions
from eai.converters.errors import ConvertError
from eai.toolkit.skeleton import JOINT_INDEX

J = JOINT_INDEX
# Limb bones are one rigid source bone in every profile (trunk "bones" may span several source
# joints, e.g. CMU's Neck -> Neck1 -> Head), so their length must not change over time.
LIMB_BONES = [(J[f"{s}_{a}"], J[f"{s}_{b}"]) for s in "lr" for a, b in
              (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"),
               ("ankle", "foot"))]


def write(tmp_path: Path, text: str, name: str = "x.bvh") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# A 3-joint chain with a different Euler order on every joint, a 9-channel joint with scales,
# position channels on a non-root joint, tabs, odd spacing and a frame time without leading 0.
QUIRKY = """HIERARCHY
ROOT\tRoot
{
\tOFFSET 100 200 300
\tCHANNELS 6 Xposition Yposition Zposition Yrotation Xrotation Zrotation
  JOINT   Mid
  {
    OFFSET  0 10 0
    CHANNELS 9 Xposition Yposition Zposition Zrotation Yrotation Xrotation Xscale Yscale Zscale
    JOINT Tip
    {
      OFFSET 5 0 0
      CHANNELS 3 Xrotation Zrotation Yrotation
      End Site
      {
        OFFSET 0 0 7
      }
    }
  }
}
MOTION
Frames:\t2
Frame Time: .0083333
1 2 3 10 20 30  0 11 0 40 50 60 1 1 1  5 15 25
-1 -2 -3 -30 45 90   0.5 12 -1 0 0 0 2 1 1   0 0 0
"""


def _intrinsic(order: str, angles_deg) -> np.ndarray:
    return Rotation.from_euler(order.upper(), angles_deg, degrees=True).as_matrix()


def test_quirky_hierarchy_forward_kinematics_matches_scipy(tmp_path):
    parsed = bvh.parse_bvh(write(tmp_path, QUIRKY))
    assert parsed.frame_time == pytest.approx(0.0083333)
    assert [j.name for j in parsed.hierarchy.joints] == ["Root", "Mid", "Tip"]
    positions, names = bvh.forward_kinematics(parsed)
    assert names == ["Root", "Mid", "Tip", "Tip_End"]
    for f, row in enumerate(parsed.motion):
        r_root = _intrinsic("YXZ", row[3:6])
        p_root = row[0:3]  # position channels replace the OFFSET (100, 200, 300)
        r_mid = _intrinsic("ZYX", row[9:12]) @ np.diag(row[12:15])
        p_mid = p_root + r_root @ row[6:9]  # Mid's own position channels replace (0, 10, 0)
        m_mid = r_root @ r_mid
        p_tip = p_mid + m_mid @ np.array([5.0, 0, 0])
        m_tip = m_mid @ _intrinsic("XZY", row[15:18])
        p_end = p_tip + m_tip @ np.array([0, 0, 7.0])
        expected = np.stack([p_root, p_mid, p_tip, p_end])
        np.testing.assert_allclose(positions[f], expected, atol=1e-9)


@pytest.mark.parametrize("order", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
def test_every_rotation_order_on_the_root(tmp_path, order):
    chans = " ".join(f"{a}rotation" for a in order)
    text = (f"HIERARCHY\nROOT A\n{{\n OFFSET 0 0 0\n CHANNELS 3 {chans}\n JOINT B\n {{\n"
            f"  OFFSET 1 2 3\n  CHANNELS 3 Zrotation Xrotation Yrotation\n"
            f"  End Site\n  {{\n   OFFSET 0 1 0\n  }}\n }}\n}}\nMOTION\nFrames: 1\n"
            f"Frame Time: 0.1\n17 -33 71 0 0 0\n")
    positions, _ = bvh.forward_kinematics(bvh.parse_bvh(write(tmp_path, text)))
    expected = _intrinsic(order, [17, -33, 71]) @ np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(positions[0, 1], expected, atol=1e-9)


def _assert_plausible_body(clip, min_height=1.0, max_height=2.0):
    pos = clip.positions.astype(np.float64)
    # Bone lengths are constant over time: wrong kinematics or a mixed-up OFFSET break this.
    for p, c in LIMB_BONES:
        if clip.joint_mask[p] and clip.joint_mask[c]:
            length = np.linalg.norm(pos[:, c] - pos[:, p], axis=-1)
            assert np.nanstd(length) < 1e-3, (clip.clip_id, p, c, np.nanstd(length))
    head_above_ankles = pos[:, J["head"], 1] - np.minimum(pos[:, J["l_ankle"], 1],
                                                          pos[:, J["r_ankle"], 1])
    assert min_height < np.nanmedian(head_above_ankles) < max_height, clip.clip_id
    feet = pos[:, [J["l_ankle"], J["l_foot"], J["r_ankle"], J["r_foot"]], 1]
    assert abs(np.nanmin(feet)) < 0.03, "feet must reach the floor at y = 0"
    # Facing +Z at frame 0: the subject's left is +X.
    assert pos[0, J["l_hip"], 0] > pos[0, J["r_hip"], 0]
    assert pos[0, J["l_shoulder"], 0] > pos[0, J["r_shoulder"], 0]
    # Pelvis trajectory: human speeds and heights.
    pelvis = pos[:, J["pelvis"]]
    speed = np.linalg.norm(np.diff(pelvis, axis=0), axis=-1) * clip.fps
    assert np.nanmax(speed) < 12.0
    assert 0.3 < np.nanmedian(pelvis[:, 1]) < 1.4


@pytest.mark.parametrize("name,profile,units", [
    ("cmu_05_20_motionbuilder.bvh", "cmu", "cmu"),
    ("bvhpython_test_freebvh_mixamo.bvh", "mixamo", "cm"),
    ("bvhpython_test_mocapbank.bvh", "mocapbank", "cm"),
])
def test_fixture_bvh_converts_to_a_plausible_body(fixtures_dir, name, profile, units):
    clip = bvh.read(fixtures_dir / "bvh" / name)
    assert clip.source.profile == profile
    assert clip.source.units == units
    assert clip.fps == 30.0
    assert any("guessed" in n and "--units" in n for n in clip.source.notes)
    assert clip.joint_mask.all()
    _assert_plausible_body(clip)


def test_cmu_120fps_is_resampled_to_30(fixtures_dir):
    clip = bvh.read(fixtures_dir / "bvh" / "cmu_05_20_motionbuilder.bvh")
    assert clip.source.fps == pytest.approx(120.0, rel=1e-3)
    assert clip.num_frames == pytest.approx(1096 / 4, abs=1)


def test_units_option_overrides_the_guess(fixtures_dir):
    clip = bvh.read(fixtures_dir / "bvh" / "bvhpython_test_mocapbank.bvh", ReadOptions(units="cm"))
    assert not any("guessed" in n for n in clip.source.notes)


def test_bandai_walk_matches_documented_body(bandai_dir):
    clip = bvh.read(bandai_dir / "data" / "dataset-1_walk_normal_001.bvh")
    assert clip.source.profile == "bandai-namco"
    _assert_plausible_body(clip)
    pos = clip.positions.astype(np.float64)
    head = np.nanmedian(pos[:, J["head"], 1])
    assert 1.25 < head < 1.42  # the head joint sits at the base of the skull (~1.33 m)
    for hip, knee, ankle in (("l_hip", "l_knee", "l_ankle"), ("r_hip", "r_knee", "r_ankle")):
        thigh = np.linalg.norm(pos[:, J[knee]] - pos[:, J[hip]], axis=-1).mean()
        shin = np.linalg.norm(pos[:, J[ankle]] - pos[:, J[knee]], axis=-1).mean()
        assert 0.35 < thigh < 0.45 and 0.35 < shin < 0.45


def test_bandai_root_motion_on_joint_root(bandai_dir):
    # In a few clips the root motion sits on joint_Root instead of Hips.
    clip = bvh.read(bandai_dir / "data" / "dataset-1_walk-back_normal_001.bvh")
    _assert_plausible_body(clip)


@pytest.mark.slow
def test_all_bandai_clips_convert_plausibly(bandai_dir):
    files = sorted((bandai_dir / "data").glob("*.bvh"))
    assert len(files) == 174
    for f in files:
        _assert_plausible_body(bvh.read(f), min_height=0.5)


GOOD = """HIERARCHY
ROOT Hips
{
 OFFSET 0 0 0
 CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
 End Site
 {
  OFFSET 0 10 0
 }
}
MOTION
Frames: 3
Frame Time: 0.0333333
0 90 0 0 0 0
1 90 0 0 0 0
2 90 0 0 0 0
"""


@pytest.mark.parametrize("mutate,expected", [
    (lambda t: t.rsplit("\n", 2)[0] + "\n", "ends after 2 of 3 frames"),
    (lambda t: t.replace("2 90 0 0 0 0", "2 90 0 0 0"), "5 numbers, expected 6"),
    (lambda t: t.replace("1 90 0 0", "1 abc 0 0"), "non-numeric value 'abc'"),
    (lambda t: t.replace("CHANNELS 6", "CHANNELS 7"), "unknown channel"),
    (lambda t: t.split("MOTION")[0], "no MOTION section"),
    (lambda t: t.replace("HIERARCHY", "HIERARCHIE"), "expected 'HIERARCHY'"),
])
def test_bad_bvh_gives_a_clear_error(tmp_path, mutate, expected):
    path = write(tmp_path, mutate(GOOD))
    with pytest.raises(ConvertError) as info:
        bvh.parse_bvh(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)
    if "MOTION" not in expected:
        assert "line" in (info.value.position or "")


def test_error_names_the_line(tmp_path):
    path = write(tmp_path, GOOD.replace("1 90 0 0", "1 abc 0 0"))
    with pytest.raises(ConvertError) as info:
        bvh.parse_bvh(path)
    assert info.value.position == "line 15"  # the row "1 abc 0 0 0 0"
