"""Write BVH files: any skeleton with per-joint Euler orders, and canonical Clips for Blender.

`write_bvh` writes rotations you already have (the sample-data generator, tests of the reader).
`clip_to_bvh` exports a canonical Clip, which holds positions only, by solving joint rotations:

- Rest pose: T-pose-like. Bones from a joint with one child point along a fixed direction
  (spine and neck +Y, left arm +X, right arm -X, legs -Y, feet +Z) with the clip's median bone
  length. Joints with several children (pelvis: spine and hips; chest: neck and shoulders) get
  a frame from two vectors (up = to the midline child, left = left child - right child), and
  their children's rest offsets are the median offsets seen in that frame.
- Per frame, a one-child joint gets the smallest rotation, relative to its parent, that turns
  its rest bone onto the observed bone (a swing, no twist), so twist follows the parent.
- Limits: twist about a bone's own axis is not recoverable from positions; each bone takes
  the least rotation from its parent, so the file carries no twist of its own.
  Bone lengths are fixed (medians), so a joint comes back off by its bone's deviation from the
  median (large only for estimated joint centres, e.g. C3D markers). Children of a multi-child
  joint come back exactly only while their group is rigid: the pelvis group usually is; the
  chest group is not when the source's collars move, so shoulders (and the arms below them, by
  the same translation) can be a few millimetres off. Errors never grow down a chain: each
  one-child bone keeps its observed direction. Measured on sample data read back through the
  BVH reader: pelvis, spine, neck, head and legs within 0.2 mm, arms within about 1 cm.
  The left-right differences of the pelvis and chest groups are exact at frame 0, so readers
  that derive the heading from frame 0 (eai's canonicalisation) rotate the clip identically.
- Masked joints (joint_mask false or never observed) are left out of the BVH; their children
  hang from the nearest present ancestor, so reading the file back gives the same mask. BVH
  cannot say "missing", so NaN gaps in present joints are interpolated linearly over time (and
  held at the clip's ends).

Rotations are intrinsic, applied in the written channel order (eai.toolkit.rotations). Files are
written atomically.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eai.toolkit.canonical import unit_scale
from eai.toolkit.clip import Clip
from eai.toolkit.rotations import (
    ORDERS,
    euler_to_matrix,
    frame_from_two_vectors,
    matrix_between_vectors,
    matrix_to_euler,
)
from eai.toolkit.skeleton import CANONICAL_JOINTS, PARENT_INDEX


@dataclass
class BvhSkeleton:
    """A BVH hierarchy. Joints are listed parents first (parents[j] < j); root is joint 0.

    names: J joint names (no whitespace). parents: J parent indices, -1 for the root.
    offsets: (J, 3) rest offsets from the parent (the root's is its rest position).
    end_sites: joint index -> (3,) End Site offset; a childless joint without one gets a zero one.
    """

    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.offsets = np.asarray(self.offsets, dtype=np.float64).reshape(-1, 3)
        n = len(self.names)
        if len(self.parents) != n or self.offsets.shape[0] != n:
            raise ValueError(f"{n} names, {len(self.parents)} parents and "
                             f"{self.offsets.shape[0]} offsets: they must match")
        if n == 0 or self.parents[0] != -1:
            raise ValueError("joint 0 must be the root (parent -1)")
        for j, p in enumerate(self.parents[1:], start=1):
            if not 0 <= p < j:
                raise ValueError(f"joint {self.names[j]!r}: parent index {p} must be in "
                                 f"[0, {j}) (list parents before children, one root)")
        bad = [s for s in self.names if not s or any(c.isspace() for c in s)]
        if bad or len(set(self.names)) != n:
            raise ValueError(f"joint names must be unique and without spaces; bad: {bad}")

    def children(self, j: int) -> list[int]:
        return [c for c, p in enumerate(self.parents) if p == j]

    def orders(self, rotation_order: str = "ZXY",
               joint_orders: dict[str, str] | None = None) -> list[str]:
        """The Euler order of every joint, validated."""
        joint_orders = joint_orders or {}
        unknown = set(joint_orders) - set(self.names)
        if unknown:
            raise ValueError(f"joint_orders names unknown joints: {sorted(unknown)}")
        out = [joint_orders.get(name, rotation_order).upper() for name in self.names]
        for name, order in zip(self.names, out):
            if order not in ORDERS:
                raise ValueError(f"joint {name!r}: unknown rotation order {order!r}; "
                                 f"use one of {', '.join(ORDERS)}")
        return out

    def forward_kinematics(self, root_positions: np.ndarray, local_rotations_deg: np.ndarray,
                           rotation_order: str = "ZXY",
                           joint_orders: dict[str, str] | None = None,
                           ) -> tuple[np.ndarray, np.ndarray]:
        """Global joint positions (T, J, 3) and rotations (T, J, 3, 3).

        root_positions (T, 3) replace the root's offset, as the root's position channels do.
        local_rotations_deg (T, J, 3): per joint, angles in its order's channel order.
        """
        orders = self.orders(rotation_order, joint_orders)
        angles = np.asarray(local_rotations_deg, dtype=np.float64)
        local = np.empty(angles.shape[:2] + (3, 3))
        for order in set(orders):  # one batch per order, not one call per joint
            cols = [j for j, o in enumerate(orders) if o == order]
            local[:, cols] = euler_to_matrix(angles[:, cols], order)
        n = angles.shape[0]
        glob_r = np.empty_like(local)
        glob_p = np.empty((n, len(self.names), 3))
        glob_r[:, 0], glob_p[:, 0] = local[:, 0], root_positions
        for j in range(1, len(self.names)):
            p = self.parents[j]
            glob_r[:, j] = glob_r[:, p] @ local[:, j]
            glob_p[:, j] = glob_p[:, p] + glob_r[:, p] @ self.offsets[j]
        return glob_p, glob_r


def write_bvh(path: str | Path, skeleton: BvhSkeleton, root_positions: np.ndarray,
              local_rotations_deg: np.ndarray, fps: float, rotation_order: str = "ZXY",
              joint_orders: dict[str, str] | None = None) -> None:
    """Write a BVH file. The root gets 6 channels (position, then rotation), others 3.

    root_positions: (T, 3) in the skeleton's units. local_rotations_deg: (T, J, 3), per joint
    the angles in its channel order (e.g. Z, X, Y for "ZXY"). rotation_order: every joint's
    order unless joint_orders (joint name -> order) says otherwise.
    """
    orders = skeleton.orders(rotation_order, joint_orders)
    angles = np.asarray(local_rotations_deg, dtype=np.float64)
    root = np.asarray(root_positions, dtype=np.float64)
    n, n_joints = angles.shape[0], len(skeleton.names)
    if angles.shape != (n, n_joints, 3) or root.shape != (n, 3) or n < 1:
        raise ValueError(f"expected root_positions (T, 3) and local_rotations_deg (T, "
                         f"{n_joints}, 3), got {root.shape} and {angles.shape}")
    if not (np.isfinite(angles).all() and np.isfinite(root).all()):
        raise ValueError("BVH cannot store missing values: fill NaN before writing")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")

    out = io.StringIO()
    out.write("HIERARCHY\n")
    dfs: list[int] = []  # MOTION columns follow the order joints appear in the hierarchy

    def joint(j: int, depth: int) -> None:
        dfs.append(j)
        pad = "\t" * depth
        kind = "ROOT" if j == 0 else "JOINT"
        rot = " ".join(f"{a}rotation" for a in orders[j])
        chans = f"6 Xposition Yposition Zposition {rot}" if j == 0 else f"3 {rot}"
        out.write(f"{pad}{kind} {skeleton.names[j]}\n{pad}{{\n")
        out.write(f"{pad}\tOFFSET {_fmt(skeleton.offsets[j])}\n{pad}\tCHANNELS {chans}\n")
        kids = skeleton.children(j)
        for c in kids:
            joint(c, depth + 1)
        if j in skeleton.end_sites or not kids:
            end = skeleton.end_sites.get(j, np.zeros(3))
            out.write(f"{pad}\tEnd Site\n{pad}\t{{\n{pad}\t\tOFFSET {_fmt(end)}\n{pad}\t}}\n")
        out.write(f"{pad}}}\n")

    joint(0, 0)
    # repr keeps every digit of the frame time, so readers get the exact frame rate back.
    out.write(f"MOTION\nFrames: {n}\nFrame Time: {1.0 / fps!r}\n")
    motion = np.concatenate([root, angles[:, dfs].reshape(n, -1)], axis=1)
    np.savetxt(out, motion, fmt="%.6f")
    _write_atomic(Path(path), out.getvalue())


def _fmt(v: np.ndarray) -> str:
    return " ".join(f"{x:.6f}" for x in np.asarray(v, dtype=np.float64))


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="ascii", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- canonical Clip -> BVH --------------------------------------------------------------------

_X, _Y, _Z = np.eye(3)
# T-pose-like rest direction of the bone that ends at each joint.
REST_DIRECTION = {"spine": _Y, "chest": _Y, "neck": _Y, "head": _Y,
                  "l_shoulder": _X, "l_elbow": _X, "l_wrist": _X,
                  "r_shoulder": -_X, "r_elbow": -_X, "r_wrist": -_X,
                  "l_hip": _X, "l_knee": -_Y, "l_ankle": -_Y, "l_foot": _Z,
                  "r_hip": -_X, "r_knee": -_Y, "r_ankle": -_Y, "r_foot": _Z}
END_SITE_M = 0.08  # length of the End Site bones Blender draws at leaves


def _present_filled(clip: Clip) -> tuple[np.ndarray, list[int]]:
    """Positions (T, 19, 3) float64 with NaN gaps interpolated, and the joints kept."""
    pos = np.array(clip.positions, dtype=np.float64)
    frames = np.arange(pos.shape[0])
    kept = []
    for j in range(pos.shape[1]):
        ok = np.isfinite(pos[:, j]).all(axis=-1)
        if not (clip.joint_mask[j] and ok.any()):
            continue
        kept.append(j)
        if not ok.all():
            for c in range(3):
                pos[~ok, j, c] = np.interp(frames[~ok], frames[ok], pos[ok, j, c])
    if 0 not in kept:
        raise ValueError(f"clip {clip.clip_id!r} has no pelvis: a BVH needs a root joint")
    return pos, kept


def clip_to_bvh_motion(clip: Clip) -> tuple[BvhSkeleton, np.ndarray, np.ndarray, list[int]]:
    """Solve a BVH skeleton and motion for a canonical clip (metres, order "ZXY").

    Returns (skeleton, root_positions (T, 3), local_rotations_deg (T, K, 3), kept) where kept
    lists the canonical joint index of each of the K BVH joints.
    """
    pos, kept = _present_filled(clip)
    n = pos.shape[0]
    parent = {}
    for j in kept[1:]:
        p = PARENT_INDEX[j]
        while p not in kept:  # hang from the nearest present ancestor
            p = PARENT_INDEX[p]
        parent[j] = p
    kids = {j: [c for c in kept if parent.get(c) == j] for j in kept}
    offsets = {kept[0]: pos[0, kept[0]]}
    glob = {}
    for j in kept:
        parent_r = glob[parent[j]] if j in parent else np.broadcast_to(np.eye(3), (n, 3, 3))
        children = kids[j]
        if len(children) >= 2:
            glob[j] = _branch_frame(pos, j, children, parent_r)
            local = {c: np.einsum("tji,tj->ti", glob[j], pos[:, c] - pos[:, j])
                     for c in children}
            offsets.update({c: np.median(v, axis=0) for c, v in local.items()})
            for left, right in _pairs(children):
                # Median midpoint, but the left-right difference of frame 0: the heading that
                # readers derive from frame 0 (hips and shoulders) then comes back exactly.
                mid = np.median((local[left] + local[right]) / 2, axis=0)
                half = (local[left][0] - local[right][0]) / 2
                offsets[left], offsets[right] = mid + half, mid - half
        elif len(children) == 1:
            c = children[0]
            bone = pos[:, c] - pos[:, j]
            offsets[c] = REST_DIRECTION[CANONICAL_JOINTS[c]] * np.median(
                np.linalg.norm(bone, axis=-1))
            in_parent = np.einsum("tji,tj->ti", parent_r, bone)
            glob[j] = parent_r @ matrix_between_vectors(offsets[c], in_parent)
        else:
            glob[j] = parent_r  # a leaf: its rotation only turns its End Site
    local = [glob[j] if j not in parent else np.swapaxes(glob[parent[j]], -1, -2) @ glob[j]
             for j in kept]
    angles = matrix_to_euler(np.stack(local, axis=1), "ZXY")
    angles = np.unwrap(angles, period=360.0, axis=0)  # no 360-degree jumps for animation curves
    end_sites = {}
    for k, j in enumerate(kept):
        if not kids[j]:  # a leaf: an End Site along the bone that would have followed
            name = _first_child(j) or CANONICAL_JOINTS[j]
            end_sites[k] = REST_DIRECTION.get(name, _Y) * END_SITE_M
    skeleton = BvhSkeleton(names=[CANONICAL_JOINTS[j] for j in kept],
                           parents=[-1] + [kept.index(parent[j]) for j in kept[1:]],
                           offsets=np.stack([offsets[j] for j in kept]), end_sites=end_sites)
    return skeleton, pos[:, kept[0]].copy(), angles, kept


def _first_child(j: int) -> str | None:
    for c, p in enumerate(PARENT_INDEX):
        if p == j:
            return CANONICAL_JOINTS[c]
    return None


def _pairs(children: list[int]) -> list[tuple[int, int]]:
    """(left, right) canonical index pairs among children, e.g. (l_hip, r_hip)."""
    names = [CANONICAL_JOINTS[c] for c in children]
    return [(c, children[names.index("r" + n[1:])]) for c, n in zip(children, names)
            if n.startswith("l_") and "r" + n[1:] in names]


def _branch_frame(pos: np.ndarray, j: int, children: list[int],
                  parent_r: np.ndarray) -> np.ndarray:
    """(T, 3, 3) frame of a joint with several children: Y toward the midline children,
    X from the right children toward the left ones (the parent's X when no pair exists)."""
    mid = [c for c in children if not CANONICAL_JOINTS[c].startswith(("l_", "r_"))]
    up = pos[:, mid or children].mean(axis=1) - pos[:, j]
    left = sum((pos[:, a] - pos[:, b] for a, b in _pairs(children)), np.zeros_like(up))
    if not np.any(left):
        left = parent_r[..., 0]
    return frame_from_two_vectors(up, left, "yx")


def clip_to_bvh(path: str | Path, clip: Clip, units: str = "m") -> None:
    """Export a canonical clip as a BVH with canonical-19 joint names (Blender: File > Import >
    Motion Capture). units: the file's length unit ("m" imports at true size in Blender; "cm"
    is what most other tools expect). See the module docstring for what rotations can and
    cannot carry."""
    skeleton, root, angles, _ = clip_to_bvh_motion(clip)
    scale = 1.0 / unit_scale(units)
    skeleton.offsets *= scale
    skeleton.end_sites = {k: v * scale for k, v in skeleton.end_sites.items()}
    write_bvh(path, skeleton, root * scale, angles, clip.fps, rotation_order="ZXY")
