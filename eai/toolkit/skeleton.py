"""The canonical skeleton every source is retargeted to.

Conventions (DESIGN.md): 19 joints, metres, Y up, right-handed, the subject facing +Z at the
first frame (so the subject's left is +X), the floor at y = 0, global translation kept.
"shoulder" is the glenohumeral joint (top of the upper arm), not the clavicle; "foot" is the
ball of the foot / toe base; "head" is the head joint as the source defines it (often the base
of the skull).
"""

from __future__ import annotations

CANONICAL_JOINTS: tuple[str, ...] = (
    "pelvis", "spine", "chest", "neck", "head",
    "l_shoulder", "l_elbow", "l_wrist",
    "r_shoulder", "r_elbow", "r_wrist",
    "l_hip", "l_knee", "l_ankle", "l_foot",
    "r_hip", "r_knee", "r_ankle", "r_foot",
)

CANONICAL_PARENTS: dict[str, str | None] = {
    "pelvis": None, "spine": "pelvis", "chest": "spine", "neck": "chest", "head": "neck",
    "l_shoulder": "chest", "l_elbow": "l_shoulder", "l_wrist": "l_elbow",
    "r_shoulder": "chest", "r_elbow": "r_shoulder", "r_wrist": "r_elbow",
    "l_hip": "pelvis", "l_knee": "l_hip", "l_ankle": "l_knee", "l_foot": "l_ankle",
    "r_hip": "pelvis", "r_knee": "r_hip", "r_ankle": "r_knee", "r_foot": "r_ankle",
}

JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(CANONICAL_JOINTS)}
NUM_JOINTS = len(CANONICAL_JOINTS)

# Parent index per joint (-1 for the root), in CANONICAL_JOINTS order.
PARENT_INDEX: tuple[int, ...] = tuple(
    -1 if CANONICAL_PARENTS[j] is None else JOINT_INDEX[CANONICAL_PARENTS[j]]  # type: ignore[index]
    for j in CANONICAL_JOINTS
)

# Bones as (parent, child) index pairs: the segments whose lengths stay constant over time.
BONES: tuple[tuple[int, int], ...] = tuple(
    (p, c) for c, p in enumerate(PARENT_INDEX) if p >= 0
)

# Left/right pairs, used by mirroring augmentation and symmetry descriptors.
MIRROR_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (j, "r" + j[1:]) for j in CANONICAL_JOINTS if j.startswith("l_")
)

FOOT_JOINTS = ("l_ankle", "l_foot", "r_ankle", "r_foot")
