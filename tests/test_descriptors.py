"""Kinematic descriptors on hand-built motions with known answers, plus real-file smoke checks."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from eai.toolkit.clip import Clip, SourceInfo
from eai.toolkit.descriptors import (
    DESCRIPTOR_NAMES,
    DESCRIPTORS,
    DESCRIPTORS_BY_NAME,
    DescriptorLevels,
    compute_descriptors,
    descriptor_matrix,
    mirror_clip,
    rotate_y,
    time_warp,
)
from eai.toolkit.skeleton import CANONICAL_JOINTS, NUM_JOINTS
from eai.toolkit.skeleton import JOINT_INDEX as J

FPS = 30.0

# A standing body facing +Z (its left is +X), arms hanging, feet on the floor.
REST = {
    "pelvis": (0.0, 0.95, 0.0), "spine": (0.0, 1.10, 0.0), "chest": (0.0, 1.25, 0.0),
    "neck": (0.0, 1.45, 0.0), "head": (0.0, 1.55, 0.0),
    "l_shoulder": (0.18, 1.42, 0.0), "l_elbow": (0.20, 1.14, 0.0), "l_wrist": (0.21, 0.88, 0.0),
    "l_hip": (0.10, 0.95, 0.0), "l_knee": (0.10, 0.52, 0.0), "l_ankle": (0.10, 0.08, 0.0),
    "l_foot": (0.10, 0.0, 0.12),
}
for _name in list(REST):
    if _name.startswith("l_"):
        x, y, z = REST[_name]
        REST["r" + _name[1:]] = (-x, y, z)
UPPER = [J[n] for n in ("spine", "chest", "neck", "head", "l_shoulder", "l_elbow", "l_wrist",
                        "r_shoulder", "r_elbow", "r_wrist")]


def rest_positions(seconds: float = 4.0) -> np.ndarray:
    t = round(seconds * FPS)
    frame = np.array([REST[j] for j in CANONICAL_JOINTS])
    return np.repeat(frame[None], t, axis=0).astype(np.float64)


def make_clip(pos: np.ndarray, mask: np.ndarray | None = None, emotion: str | None = "sad") -> Clip:
    mask = np.ones(NUM_JOINTS, bool) if mask is None else mask
    pos = pos.copy()
    pos[:, ~mask] = np.nan
    src = SourceInfo(path="synthetic", format="npy", sha256="0" * 64, fps=FPS,
                     joint_names=list(CANONICAL_JOINTS), units="m", profile="canonical")
    return Clip(clip_id="test/synthetic", positions=pos, joint_mask=mask, fps=FPS, source=src,
                dataset="test", emotion=emotion, action="walk")


def rot_x(deg: float) -> np.ndarray:
    """Rotation about +X that tips +Y towards +Z (forward for a body facing +Z)."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def swing(pos: np.ndarray, root: str, limb: list[str], degrees: np.ndarray) -> None:
    """Rotate a limb rigidly about its root joint by a per-frame angle (about +X)."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    rel = pos[:, [J[n] for n in limb]] - pos[:, J[root]][:, None]
    y, z = rel[..., 1].copy(), rel[..., 2].copy()
    rel[..., 1] = c[:, None] * y - s[:, None] * z
    rel[..., 2] = s[:, None] * y + c[:, None] * z
    pos[:, [J[n] for n in limb]] = pos[:, J[root]][:, None] + rel


def walking(seconds: float = 4.0, speed: float = 1.2, stride_hz: float = 1.0,
            left_arm_only: bool = False) -> np.ndarray:
    """A body travelling along +Z at `speed`, rigid legs and arms swinging at stride_hz."""
    pos = rest_positions(seconds)
    t = np.arange(pos.shape[0]) / FPS
    phase = np.sin(2 * np.pi * stride_hz * t)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        swing(pos, f"{side}_hip", [f"{side}_knee", f"{side}_ankle", f"{side}_foot"],
              -sign * 20.0 * phase)
        if side == "l" or not left_arm_only:  # arms swing against the legs
            swing(pos, f"{side}_shoulder", [f"{side}_elbow", f"{side}_wrist"], sign * 15.0 * phase)
    pos[:, :, 1] += 0.02 * np.abs(np.cos(2 * np.pi * stride_hz * t))[:, None]  # bounce
    pos[:, :, 2] += speed * t[:, None]
    return pos


def values(pos: np.ndarray, **kw) -> dict[str, float]:
    return compute_descriptors(make_clip(pos, **kw)).values


# --- the registry ------------------------------------------------------------------------

def test_registry_has_named_units_and_documented_descriptors():
    assert len(DESCRIPTORS) >= 30
    assert len(set(DESCRIPTOR_NAMES)) == len(DESCRIPTOR_NAMES)
    assert DESCRIPTOR_NAMES == tuple(d.name for d in DESCRIPTORS)
    for d in DESCRIPTORS:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", d.name), d.name
        assert d.unit.strip(), d.name
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", d.doc.strip()) if len(s) > 10]
        assert len(sentences) >= 2, f"{d.name}: doc needs at least 2 sentences"
        assert re.search(r"(19|20)\d\d|Laban", d.doc), f"{d.name}: doc cites no literature"
        assert all(j in J for j in d.joints), d.name
        assert d.mirror_sign in (1, -1)


# --- known answers -------------------------------------------------------------------------

def test_walking_at_1_2_m_s_reads_1_2_and_a_1_hz_stride():
    v = values(walking(speed=1.2, stride_hz=1.0))
    assert v["root_speed_mean"] == pytest.approx(1.2, abs=1e-6)
    assert v["root_speed_std"] == pytest.approx(0.0, abs=1e-6)
    assert v["stride_frequency"] == pytest.approx(1.0, abs=0.03)
    assert v["gait_periodicity"] > 0.9
    leg = 0.43 + 0.44
    assert v["stride_length"] == pytest.approx(1.2 / 1.0 / leg, rel=0.04)
    assert v["step_width"] == pytest.approx(0.2 / leg, rel=1e-6)
    assert v["duration"] == pytest.approx(4.0)
    assert v["turn_rate"] == pytest.approx(0.0, abs=1e-6)
    assert v["pelvis_bounce"] > 0


@pytest.mark.parametrize("hz", [0.7, 1.0, 1.6])
def test_stride_frequency_follows_the_gait(hz):
    v = values(walking(stride_hz=hz, seconds=6.0))
    assert v["stride_frequency"] == pytest.approx(hz, rel=0.03)


def test_standing_still_has_no_stride_and_no_speed():
    v = values(rest_positions())
    assert v["root_speed_mean"] == pytest.approx(0.0, abs=1e-9)
    assert v["stride_frequency"] == 0.0
    assert v["stride_length"] == 0.0
    assert v["quantity_of_motion"] == pytest.approx(0.0, abs=1e-9)
    assert v["stillness_fraction"] == 1.0
    assert v["trunk_lean_mean"] == pytest.approx(0.0, abs=1e-9)
    assert v["knee_flexion_mean"] == pytest.approx(0.0, abs=1e-6)
    assert v["hip_height"] == pytest.approx(0.95 / 0.87, rel=1e-6)
    assert v["head_height"] == pytest.approx(1.55 / 0.87, rel=1e-6)


def test_head_pitched_30_degrees_down_reads_30_absolute_and_relative():
    pos = rest_positions()
    neck = pos[:, J["neck"]]
    pos[:, J["head"]] = neck + 0.1 * np.array([0.0, math.cos(math.radians(30)),
                                               math.sin(math.radians(30))])
    v = values(pos)
    # (positions are stored as float32: angles are exact to about 1e-4 degrees)
    assert v["head_pitch_mean"] == pytest.approx(30.0, abs=1e-3)
    assert v["head_pitch_rel_trunk"] == pytest.approx(30.0, abs=1e-3)
    assert v["head_pitch_std"] == pytest.approx(0.0, abs=1e-3)
    assert v["head_forward"] > 0
    assert v["head_tilt"] == pytest.approx(0.0, abs=1e-3)


def test_trunk_leaning_10_degrees_forward_reads_10():
    pos = rest_positions()
    pelvis = pos[:, J["pelvis"]][:, None]
    pos[:, UPPER] = pelvis + (pos[:, UPPER] - pelvis) @ rot_x(10.0).T
    v = values(pos)
    assert v["trunk_lean_mean"] == pytest.approx(10.0, abs=1e-3)
    assert v["trunk_lean_std"] == pytest.approx(0.0, abs=1e-3)
    assert v["head_pitch_mean"] == pytest.approx(10.0, abs=1e-3)  # carried by the trunk
    assert v["head_pitch_rel_trunk"] == pytest.approx(0.0, abs=1e-3)
    assert v["spine_flexion"] == pytest.approx(0.0, abs=1e-3)


def test_directions_follow_the_body_heading_not_the_world():
    """A lean reads the same whichever way the body faces or travels; every descriptor is
    invariant to a rotation about the vertical."""
    pos = walking()
    pelvis = pos[:, J["pelvis"]][:, None]
    pos[:, UPPER] = pelvis + (pos[:, UPPER] - pelvis) @ rot_x(10.0).T
    clip = make_clip(pos)
    base = compute_descriptors(clip).as_array()
    for deg in (90.0, -135.0, 37.0):
        turned = compute_descriptors(rotate_y(clip, deg)).as_array()
        np.testing.assert_allclose(turned, base, rtol=1e-4, atol=1e-4)


def test_walking_backwards_and_sideways_swing_the_arms_in_the_body_frame():
    fwd = values(walking(speed=1.0))
    back = values(walking(speed=-1.0))
    assert back["root_speed_mean"] == pytest.approx(1.0, abs=1e-6)
    assert back["arm_swing"] == pytest.approx(fwd["arm_swing"], rel=1e-6)
    side = walking(speed=0.0)
    side[:, :, 0] += 0.8 * np.arange(side.shape[0])[:, None] / FPS  # drift to the left
    v = values(side)
    assert v["root_speed_mean"] == pytest.approx(0.8, abs=1e-6)
    assert v["arm_swing"] == pytest.approx(fwd["arm_swing"], rel=1e-6)


# --- mirroring -----------------------------------------------------------------------------

def test_mirroring_swaps_left_and_right():
    clip = make_clip(walking(left_arm_only=True))
    orig = compute_descriptors(clip).values
    mirrored_clip = mirror_clip(clip)
    mirrored = compute_descriptors(mirrored_clip).values
    assert mirrored_clip.emotion == clip.emotion and mirrored_clip.clip_id == clip.clip_id
    assert mirrored_clip.extra["augmentation"] == ["mirror"]
    # only the left arm swings: positive asymmetry, and the mirror image swings the right arm
    assert orig["wrist_speed_asymmetry"] > 0.5
    assert mirrored["wrist_speed_asymmetry"] == pytest.approx(-orig["wrist_speed_asymmetry"])
    lw, rw = J["l_wrist"], J["r_wrist"]
    np.testing.assert_allclose(mirrored_clip.positions[:, rw, 2], clip.positions[:, lw, 2])
    np.testing.assert_allclose(mirrored_clip.positions[:, rw, 0], -clip.positions[:, lw, 0])
    for d in DESCRIPTORS:  # symmetric descriptors are unchanged, lateralised ones flip sign
        assert mirrored[d.name] == pytest.approx(d.mirror_sign * orig[d.name], rel=1e-5,
                                                 abs=1e-6), d.name
    np.testing.assert_array_equal(mirror_clip(mirrored_clip).positions, clip.positions)


def test_mirroring_swaps_the_joint_mask():
    mask = np.ones(NUM_JOINTS, bool)
    mask[J["l_wrist"]] = False
    m = mirror_clip(make_clip(rest_positions(), mask=mask))
    assert not m.joint_mask[J["r_wrist"]] and m.joint_mask[J["l_wrist"]]
    assert np.isnan(m.positions[:, J["r_wrist"]]).all()


# --- masked joints -------------------------------------------------------------------------

def test_masked_wrists_give_nan_and_are_listed_missing():
    mask = np.ones(NUM_JOINTS, bool)
    mask[[J["l_wrist"], J["r_wrist"]]] = False
    res = compute_descriptors(make_clip(walking(), mask=mask))
    needs_wrists = {d.name for d in DESCRIPTORS if {"l_wrist", "r_wrist"} & set(d.joints)}
    assert {"wrist_speed_mean", "wrist_speed_peak", "arm_expansion", "wrist_jerk",
            "arm_swing", "elbow_flexion_mean"} <= needs_wrists
    assert set(res.missing) == needs_wrists
    for name, v in res.values.items():
        assert math.isnan(v) == (name in needs_wrists), name
    assert list(res.values) == list(DESCRIPTOR_NAMES)


def test_gaps_inside_present_joints_are_skipped():
    pos = walking()
    pos[40:43, J["l_wrist"]] = np.nan  # a short dropout the converter did not fill
    res = compute_descriptors(make_clip(pos))
    assert res.missing == []
    ref = values(walking())
    assert res.values["wrist_speed_mean"] == pytest.approx(ref["wrist_speed_mean"], rel=0.05)


def test_degenerate_clips_do_not_raise():
    for frames in (1, 2, 5):
        res = compute_descriptors(make_clip(walking()[:frames]))
        assert res.values["duration"] == pytest.approx(frames / FPS)
        assert set(res.missing) <= set(DESCRIPTOR_NAMES)


def test_real_masked_chest_fixture(fixtures_dir):
    """Emotion-Gait NPY: no chest and no feet; nothing the descriptors need is lost. The clip
    lasts about one second, too short to find a stride period of up to 2.5 s, so the gait
    rhythm descriptors may be missing, and only those."""
    from eai.converters import npy
    clip = npy.read(fixtures_dir / "npy" / "emotiongait_002_Sad.npy")
    assert not clip.joint_mask[J["chest"]]
    res = compute_descriptors(clip)
    assert set(res.missing) <= {"gait_periodicity", "stride_frequency", "stride_length"}
    assert math.isfinite(res.values["spine_flexion"])
    assert 0.5 < res.values["hip_height"] < 1.5


def test_real_bandai_clips_are_complete_and_sane(bandai_dir):
    from eai.converters import bvh
    walk = bvh.read(bandai_dir / "data" / "dataset-1_walk_normal_001.bvh")
    bow = bvh.read(bandai_dir / "data" / "dataset-1_bow_sad_001.bvh")
    w, b = compute_descriptors(walk), compute_descriptors(bow)
    assert w.missing == [] and b.missing == []
    assert 0.8 < w.values["root_speed_mean"] < 2.0
    assert 0.6 < w.values["stride_frequency"] < 1.3
    assert b.values["stride_frequency"] == 0.0
    assert b.values["trunk_lean_std"] > w.values["trunk_lean_std"]


# --- matrix, augmentation, levels ----------------------------------------------------------

def test_descriptor_matrix_is_in_name_order():
    clips = [make_clip(walking(speed=s)) for s in (0.5, 1.0, 1.5)]
    m = descriptor_matrix(clips)
    assert m.shape == (3, len(DESCRIPTORS)) and m.dtype == np.float64
    k = DESCRIPTOR_NAMES.index("root_speed_mean")
    np.testing.assert_allclose(m[:, k], [0.5, 1.0, 1.5], atol=1e-6)
    assert descriptor_matrix([]).shape == (0, len(DESCRIPTORS))
    assert DESCRIPTORS_BY_NAME["root_speed_mean"].unit == "m/s"


def test_time_warp_changes_tempo():
    clip = make_clip(walking(seconds=4.0, speed=1.0, stride_hz=1.0))
    fast = compute_descriptors(time_warp(clip, 2.0)).values
    assert fast["duration"] == pytest.approx(2.0, abs=0.05)
    assert fast["root_speed_mean"] == pytest.approx(2.0, rel=1e-3)
    assert fast["stride_frequency"] == pytest.approx(2.0, rel=0.05)
    with pytest.raises(ValueError):
        time_warp(clip, 0.0)


def test_levels_per_group_and_round_trip():
    rng = np.random.default_rng(0)
    d = len(DESCRIPTOR_NAMES)
    walks = rng.normal(10.0, 1.0, size=(12, d))
    bows = rng.normal(0.0, 1.0, size=(9, d))
    rare = rng.normal(5.0, 1.0, size=(3, d))
    matrix = np.vstack([walks, bows, rare])
    matrix[0, 1] = np.nan
    groups = ["walk"] * 12 + ["bow"] * 9 + ["kick"] * 3
    levels = DescriptorLevels().fit(matrix, groups)
    assert set(levels.group_thresholds) == {"walk", "bow"}  # kick has < 8 clips
    row = np.full(d, 5.0)
    assert set(levels.levels(row, "walk").values()) == {"low"}  # 5 is low for a walk...
    assert set(levels.levels(row, "bow").values()) == {"high"}  # ...and high for a bow
    glob = levels.levels(row, "kick")  # small group: the global population
    assert glob == levels.levels(row, None)
    assert set(glob.values()) <= {"low", "typical", "high"}
    named = levels.levels({n: 5.0 for n in DESCRIPTOR_NAMES[:3]}, "walk")
    assert named[DESCRIPTOR_NAMES[0]] == "low" and named[DESCRIPTOR_NAMES[5]] is None
    nan_row = row.copy()
    nan_row[2] = np.nan
    assert levels.levels(nan_row, "walk")[DESCRIPTOR_NAMES[2]] is None

    restored = DescriptorLevels.from_dict(json.loads(json.dumps(levels.to_dict(),
                                                                allow_nan=False)))
    assert restored.to_dict() == levels.to_dict()
    for g in ("walk", "bow", "kick", None):
        assert restored.levels(row, g) == levels.levels(row, g)
    with pytest.raises(ValueError):
        DescriptorLevels().fit(matrix[:, :5])
    with pytest.raises(ValueError):
        DescriptorLevels.from_dict({"kind": "something else"})


def test_docs_list_every_descriptor_with_its_unit():
    from pathlib import Path

    from eai.toolkit.descriptors import DESCRIPTORS

    text = (Path(__file__).resolve().parents[1] / "docs" / "descriptors.md").read_text()
    for d in DESCRIPTORS:
        assert f"| `{d.name}` | {d.unit} |" in text, f"docs/descriptors.md lacks {d.name}"
