"""Skeleton profiles: how each source skeleton reaches the canonical 19 joints.

A profile is a table canonical joint -> recipe (see recipes.py). Profiles are detected from the
joint or marker names a file carries, or chosen by name (`--profile`). NPY files have no names,
so a profile with a `layout` (the joint order of the array) names their columns.

To add a profile: write a `Profile(...)` below (or in marker_profiles.py for marker sets) and add
it to `PROFILES`. docs/profiles.md walks through an example.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from eai.converters.recipes import P, Points, Recipe, normalize_name
from eai.toolkit.skeleton import CANONICAL_JOINTS, NUM_JOINTS


class ProfileError(ValueError):
    """A skeleton no profile can place, or a profile that does not fit the file."""


# Joints without which a clip is not a usable body: a profile must place all of them.
CORE_JOINTS = ("pelvis", "head", "l_hip", "r_hip", "l_knee", "r_knee", "l_shoulder", "r_shoulder")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    joints: dict[str, Recipe]
    kind: str = "joints"  # "joints" (a skeleton) or "markers" (joint centres estimated)
    layout: tuple[str, ...] | None = None  # NPY column order, when the profile has one
    aliases: tuple[str, ...] = ()
    approximate: str | None = None  # a note added to every clip: how joint centres were estimated
    default_units: str | None = None  # the unit this source is known to use, when it states none
    extra_signature: tuple[str, ...] = field(default=())  # names that tell this skeleton apart
    required: tuple[str, ...] = CORE_JOINTS  # joints it must place for a clip to be usable

    def __post_init__(self) -> None:
        unknown = set(self.joints) - set(CANONICAL_JOINTS)
        if unknown:
            raise ValueError(f"profile {self.name!r}: unknown canonical joints {sorted(unknown)}")

    @cached_property
    def signature(self) -> frozenset[str]:
        """The source names this profile expects; detection scores how many a file has."""
        names: set[str] = set()
        for recipe in self.joints.values():
            names |= recipe.names()
        return frozenset(names | {normalize_name(n) for n in self.extra_signature})

    def match_score(self, names: set[str]) -> float:
        sig = self.signature
        return len(sig & names) / len(sig) if sig else 0.0

    def retarget(self, positions: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Source points (T, P, 3) -> canonical (T, 19, 3) and the joint mask (19,)."""
        pts = Points(positions, names)
        out = np.full((positions.shape[0], NUM_JOINTS, 3), np.nan, dtype=np.float64)
        mask = np.zeros(NUM_JOINTS, dtype=bool)
        for j, joint in enumerate(CANONICAL_JOINTS):
            recipe = self.joints.get(joint)
            if recipe is None:
                continue
            p = recipe(pts)
            if p is not None:
                out[:, j] = p
                mask[j] = True
        missing_core = [j for j in self.required if not mask[CANONICAL_JOINTS.index(j)]]
        if missing_core:
            wanted = ", ".join(f"{j} (from {self.joints[j]})" if j in self.joints else j
                               for j in missing_core)
            raise ProfileError(
                f"profile {self.name!r} could not place {wanted}; the file has "
                f"{_preview(names)}. Pick another --profile or add one (docs/profiles.md)."
            )
        return out, mask


def _preview(names: list[str], n: int = 12) -> str:
    shown = ", ".join(names[:n])
    return f"{len(names)} points: {shown}{', ...' if len(names) > n else ''}"


def _sided(template: dict[str, Recipe | str], left: str, right: str) -> dict[str, Recipe]:
    """Expand `{side}` in a table of per-side joints into l_ and r_ entries."""
    out: dict[str, Recipe] = {}
    for joint, recipe in template.items():
        for side, word in (("l", left), ("r", right)):
            key = joint.replace("{side}", side)
            if isinstance(recipe, str):
                out[key] = P(*(alt.replace("{side}", word) for alt in recipe.split("|")))
            else:
                out[key] = recipe
    return out


def _joint_profile(name: str, description: str, trunk: dict[str, str],
                   limbs: dict[str, str], left: str, right: str, **kw) -> Profile:
    joints: dict[str, Recipe] = {k: P(*v.split("|")) for k, v in trunk.items()}
    joints.update(_sided(limbs, left, right))
    return Profile(name=name, description=description, joints=joints, **kw)


BANDAI_NAMCO = _joint_profile(
    "bandai-namco", "Bandai-Namco Research Motiondataset (22 joints, cm, Y up)",
    trunk={"pelvis": "Hips", "spine": "Spine", "chest": "Chest", "neck": "Neck", "head": "Head"},
    limbs={"{side}_shoulder": "UpperArm_{side}", "{side}_elbow": "LowerArm_{side}",
           "{side}_wrist": "Hand_{side}", "{side}_hip": "UpperLeg_{side}",
           "{side}_knee": "LowerLeg_{side}", "{side}_ankle": "Foot_{side}",
           "{side}_foot": "Toes_{side}"},
    left="L", right="R", default_units="cm", extra_signature=("joint_Root",),
)

CMU = _joint_profile(
    "cmu", "CMU Graphics Lab mocap BVH (31 joints; about 5.64 cm per unit)",
    trunk={"pelvis": "Hips", "spine": "Spine|LowerBack", "chest": "Spine1", "neck": "Neck",
           "head": "Head"},
    limbs={"{side}_shoulder": "{side}Arm", "{side}_elbow": "{side}ForeArm",
           "{side}_wrist": "{side}Hand", "{side}_hip": "{side}UpLeg", "{side}_knee": "{side}Leg",
           "{side}_ankle": "{side}Foot", "{side}_foot": "{side}ToeBase"},
    left="Left", right="Right", extra_signature=("LHipJoint", "RHipJoint", "LowerBack", "Neck1"),
)

MIXAMO = _joint_profile(
    "mixamo", "Mixamo rig (mixamorig:Hips ...), usually centimetres",
    trunk={"pelvis": "Hips", "spine": "Spine", "chest": "Spine2|Spine1", "neck": "Neck",
           "head": "Head"},
    limbs={"{side}_shoulder": "{side}Arm", "{side}_elbow": "{side}ForeArm",
           "{side}_wrist": "{side}Hand", "{side}_hip": "{side}UpLeg", "{side}_knee": "{side}Leg",
           "{side}_ankle": "{side}Foot", "{side}_foot": "{side}ToeBase|{side}Foot_End"},
    left="Left", right="Right", extra_signature=("HeadTop_End", "Spine1", "Spine2"),
)

MOCAPBANK = _joint_profile(
    "mocapbank", "MocapBank free BVH (19 joints, collars, feet end at the ankle's End Site)",
    trunk={"pelvis": "Hips", "spine": "Chest", "chest": "Chest2|Chest", "neck": "Neck",
           "head": "Head"},
    limbs={"{side}_shoulder": "{side}Shoulder", "{side}_elbow": "{side}Elbow",
           "{side}_wrist": "{side}Wrist", "{side}_hip": "{side}Hip", "{side}_knee": "{side}Knee",
           "{side}_ankle": "{side}Ankle", "{side}_foot": "{side}Ankle_End"},
    left="Left", right="Right", extra_signature=("LeftCollar", "RightCollar"),
)

CANONICAL_19 = Profile(
    name="canonical-19", description="eai's own canonical skeleton (names and order)",
    joints={j: P(j) for j in CANONICAL_JOINTS}, layout=CANONICAL_JOINTS, aliases=("canonical",),
)

SMPL_22_LAYOUT = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)
SMPL_22 = _joint_profile(
    "smpl-22", "SMPL / SMPL-X body joints 0-21 (AMASS, HumanML3D joints), metres, Y up",
    trunk={"pelvis": "pelvis", "spine": "spine1", "chest": "spine3", "neck": "neck",
           "head": "head"},
    limbs={"{side}_shoulder": "{side}_shoulder", "{side}_elbow": "{side}_elbow",
           "{side}_wrist": "{side}_wrist", "{side}_hip": "{side}_hip",
           "{side}_knee": "{side}_knee", "{side}_ankle": "{side}_ankle",
           "{side}_foot": "{side}_foot"},
    left="left", right="right", layout=SMPL_22_LAYOUT, aliases=("smpl",),
    extra_signature=("left_collar", "right_collar", "spine2"),
)

KINECT_V2_LAYOUT = (
    "SpineBase", "SpineMid", "Neck", "Head", "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
    "ShoulderRight", "ElbowRight", "WristRight", "HandRight", "HipLeft", "KneeLeft", "AnkleLeft",
    "FootLeft", "HipRight", "KneeRight", "AnkleRight", "FootRight", "SpineShoulder",
    "HandTipLeft", "ThumbLeft", "HandTipRight", "ThumbRight",
)
KINECT_V2_25 = _joint_profile(
    "kinect-v2-25", "Microsoft Kinect v2 body tracking (25 joints, JointType order), metres",
    trunk={"pelvis": "SpineBase", "spine": "SpineMid", "chest": "SpineShoulder", "neck": "Neck",
           "head": "Head"},
    limbs={"{side}_shoulder": "Shoulder{side}", "{side}_elbow": "Elbow{side}",
           "{side}_wrist": "Wrist{side}", "{side}_hip": "Hip{side}", "{side}_knee": "Knee{side}",
           "{side}_ankle": "Ankle{side}", "{side}_foot": "Foot{side}"},
    left="Left", right="Right", layout=KINECT_V2_LAYOUT, aliases=("kinect",),
    default_units="m",
)

EMOTION_GAIT_LAYOUT = (
    "root", "spine", "neck", "head", "l_shoulder", "l_elbow", "l_hand", "r_shoulder", "r_elbow",
    "r_hand", "l_hip", "l_knee", "l_foot", "r_hip", "r_knee", "r_foot",
)
# Emotion-Gait (STEP) "foot" points sit at the ankle; it has no chest point and no toes.
EMOTION_GAIT_16 = _joint_profile(
    "emotion-gait-16", "Emotion-Gait / STEP gaits (16 joints, root-centred, Y up)",
    trunk={"pelvis": "root", "spine": "spine", "neck": "neck", "head": "head"},
    limbs={"{side}_shoulder": "{side}_shoulder", "{side}_elbow": "{side}_elbow",
           "{side}_wrist": "{side}_hand", "{side}_hip": "{side}_hip", "{side}_knee": "{side}_knee",
           "{side}_ankle": "{side}_foot"},
    left="l", right="r", layout=EMOTION_GAIT_LAYOUT, aliases=("emotion-gait", "step-16"),
    default_units="m",
)


@lru_cache(maxsize=1)
def _all_profiles() -> tuple[Profile, ...]:
    from eai.converters.marker_profiles import MARKER_PROFILES

    return (BANDAI_NAMCO, CMU, MIXAMO, MOCAPBANK, CANONICAL_19, SMPL_22, KINECT_V2_25,
            EMOTION_GAIT_16, *MARKER_PROFILES)


def profiles() -> dict[str, Profile]:
    return {p.name: p for p in _all_profiles()}


def get_profile(name: str) -> Profile:
    key = name.strip().lower()
    for p in _all_profiles():
        if key == p.name or key in p.aliases:
            return p
    known = ", ".join(sorted(profiles()))
    raise ProfileError(f"unknown profile {name!r}; known profiles: {known}")


def layouts() -> dict[str, Profile]:
    """Profiles usable as NPY joint layouts, by name."""
    return {p.name: p for p in _all_profiles() if p.layout is not None}


def detect_profile(names: list[str], kind: str | None = None) -> Profile:
    """The profile whose expected names this file carries best.

    Ties go to the profile with the larger signature (the more specific skeleton). A clear
    error names the closest profile and the names it could not find.
    """
    return _detect(tuple(names), kind)


@lru_cache(maxsize=64)  # files of one dataset share their names: detect once
def _detect(names: tuple[str, ...], kind: str | None) -> Profile:
    have = {normalize_name(n) for n in names}
    candidates = [p for p in _all_profiles() if kind is None or p.kind == kind]
    scored = sorted(candidates, key=lambda p: (p.match_score(have), len(p.signature)),
                    reverse=True)
    best = scored[0]
    if best.match_score(have) >= 0.75:
        return best
    missing = sorted(best.signature - have)
    raise ProfileError(
        f"unknown skeleton: no profile matches its {_preview(names)}. Closest is "
        f"{best.name!r}, which could not find {', '.join(missing[:10])}"
        f"{' ...' if len(missing) > 10 else ''}. Pass --profile NAME (known: "
        f"{', '.join(sorted(profiles()))}) or add a profile (docs/profiles.md)."
    )
