"""BVH reader: any hierarchy and channel layout -> global joint positions -> canonical Clip.

Supported: per-joint CHANNELS in any order and count (3 rotations; 3 positions + 3 rotations;
9 with scales; position channels on any joint), a different Euler order on every joint, End Sites
(exposed as points named `<parent>_End`), tabs and odd spacing, frame times like `.0083333`.

A joint's position channels give its local translation *in place of* its OFFSET, never added to
it (Bandai-Namco's Hips OFFSET is a leftover of up to 4.5 m while its position channels hold the
real root position). Rotations are intrinsic, applied in the order written: `Zrotation
Xrotation Yrotation` means R = Rz @ Rx @ Ry acting on column vectors.

Forward kinematics is vectorised over frames: one loop over joints, none over frames.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eai.converters.base import ReadOptions, raw_to_clip
from eai.converters.errors import ConvertError
from eai.toolkit.clip import Clip, RawMotion
from eai.toolkit.rotations import euler_to_matrix

_VALID_CHANNELS = {f"{a}{kind}" for a in "xyz" for kind in ("position", "rotation", "scale")}


@dataclass
class BvhJoint:
    name: str
    parent: int  # index into BvhHierarchy.joints, -1 for the root
    offset: np.ndarray  # (3,)
    channels: list[str] = field(default_factory=list)  # lower-case, e.g. "zrotation"
    channel_start: int = 0  # column of its first channel in a MOTION row
    end_site: np.ndarray | None = None  # (3,) offset of an End Site child, if any


@dataclass
class BvhHierarchy:
    joints: list[BvhJoint]
    num_channels: int
    _plan: "_FkPlan | None" = field(default=None, repr=False)

    @property
    def plan(self) -> "_FkPlan":
        if self._plan is None:
            self._plan = _FkPlan.build(self.joints)
        return self._plan


@dataclass
class _FkPlan:
    """What forward kinematics needs from a hierarchy, worked out once per skeleton."""

    offsets: np.ndarray  # (J, 3)
    pos_joint: np.ndarray  # (K,) joint index of each position channel
    pos_axis: np.ndarray  # (K,) its axis
    pos_col: np.ndarray  # (K,) its MOTION column
    rot_groups: list[tuple[str, np.ndarray, np.ndarray]]  # (order, joints, (n, 3) columns | -1)
    scale_cols: dict[int, list[tuple[int, int]]]  # joint -> [(axis, column)]

    @staticmethod
    def build(joints: list[BvhJoint]) -> "_FkPlan":
        pos = [(j, "xyz".index(c[0]), jt.channel_start + k) for j, jt in enumerate(joints)
               for k, c in enumerate(jt.channels) if c.endswith("position")]
        by_order: dict[str, list[tuple[int, list[int]]]] = {}
        scale_cols: dict[int, list[tuple[int, int]]] = {}
        for j, jt in enumerate(joints):
            rot = [(c[0].upper(), jt.channel_start + k) for k, c in enumerate(jt.channels)
                   if c.endswith("rotation")]
            if rot:
                order = "".join(a for a, _ in rot)
                cols = [col for _, col in rot]
                if len(order) < 3:
                    # Fewer than three rotation channels: pad with unused axes at zero angle.
                    pad = "".join(a for a in "XYZ" if a not in order)[: 3 - len(order)]
                    order, cols = order + pad, cols + [-1] * len(pad)
                by_order.setdefault(order, []).append((j, cols))
            scales = [("xyz".index(c[0]), jt.channel_start + k)
                      for k, c in enumerate(jt.channels) if c.endswith("scale")]
            if scales:
                scale_cols[j] = scales
        groups = [(order, np.array([j for j, _ in members]),
                   np.array([cols for _, cols in members])) for order, members in by_order.items()]
        arr = np.array(pos, dtype=np.int64).reshape(-1, 3)
        return _FkPlan(offsets=np.stack([jt.offset for jt in joints]), pos_joint=arr[:, 0],
                       pos_axis=arr[:, 1], pos_col=arr[:, 2], rot_groups=groups,
                       scale_cols=scale_cols)


@dataclass
class BvhFile:
    hierarchy: BvhHierarchy
    frame_time: float
    motion: np.ndarray  # (T, num_channels) float64
    sha256: str = ""  # of the file's bytes, computed from the one read


# Datasets share one skeleton across thousands of files: parse each HIERARCHY text once.
_HIERARCHY_CACHE: dict[str, BvhHierarchy] = {}
_HIERARCHY_CACHE_SIZE = 16


def _cached_hierarchy(text: str, path: str) -> BvhHierarchy:
    hierarchy = _HIERARCHY_CACHE.get(text)
    if hierarchy is None:
        hierarchy = parse_hierarchy(text, path)
        if len(_HIERARCHY_CACHE) >= _HIERARCHY_CACHE_SIZE:
            _HIERARCHY_CACHE.pop(next(iter(_HIERARCHY_CACHE)))
        _HIERARCHY_CACHE[text] = hierarchy
    return hierarchy


def _tokens_with_lines(text: str, first_line: int = 1):
    for lineno, line in enumerate(text.splitlines(), start=first_line):
        for tok in line.split():
            yield tok, lineno


def parse_hierarchy(text: str, path: str) -> BvhHierarchy:
    """Parse the HIERARCHY section (everything before MOTION)."""
    toks = list(_tokens_with_lines(text))
    pos = 0

    def fail(msg: str, at: int, fix: str | None = None) -> ConvertError:
        line = toks[min(at, len(toks) - 1)][1] if toks else 1
        return ConvertError(path, msg, position=f"line {line}", fix=fix)

    def take() -> tuple[str, int]:
        nonlocal pos
        if pos >= len(toks):
            raise fail("the HIERARCHY section ends early", pos,
                       "the file is truncated or a '}' is missing")
        pos += 1
        return toks[pos - 1]

    def take_floats(n: int, what: str) -> np.ndarray:
        vals = []
        for _ in range(n):
            tok, _line = take()
            try:
                vals.append(float(tok))
            except ValueError:
                raise fail(f"{what}: expected a number, found {tok!r}", pos - 1) from None
        return np.array(vals)

    tok, _ = take()
    if tok.upper() != "HIERARCHY":
        raise fail(f"expected 'HIERARCHY' at the start of a BVH file, found {tok!r}", 0,
                   "is this really a BVH file?")
    joints: list[BvhJoint] = []
    stack: list[int] = []  # open joints; -2 marks an open End Site
    num_channels = 0
    while pos < len(toks):
        tok, _ = take()
        key = tok.upper()
        if key in ("ROOT", "JOINT"):
            if key == "ROOT" and stack:
                raise fail("ROOT inside another joint", pos - 1)
            name, _ = take()
            parent = stack[-1] if stack else -1
            if parent == -2:
                raise fail("a JOINT inside an End Site", pos - 1)
            if key == "JOINT" and not stack:
                raise fail(f"JOINT {name!r} outside the ROOT", pos - 1)
            if key == "ROOT" and joints:
                raise fail("a second ROOT; only one skeleton per file is supported", pos - 1)
            brace, _ = take()
            if brace != "{":
                raise fail(f"expected '{{' after {key} {name}, found {brace!r}", pos - 1)
            joints.append(BvhJoint(name=name, parent=parent, offset=np.zeros(3)))
            stack.append(len(joints) - 1)
        elif key == "END":
            site, _ = take()
            brace, _ = take()
            if site.upper() != "SITE" or brace != "{":
                raise fail("expected 'End Site {'", pos - 2)
            if not stack or stack[-1] < 0:
                raise fail("End Site outside a joint", pos - 1)
            stack.append(-2)
        elif key == "OFFSET":
            if not stack:
                raise fail("OFFSET outside a joint", pos - 1)
            off = take_floats(3, "OFFSET")
            if stack[-1] == -2:
                joints[stack[-2]].end_site = off
            else:
                joints[stack[-1]].offset = off
        elif key == "CHANNELS":
            if not stack or stack[-1] < 0:
                raise fail("CHANNELS outside a joint", pos - 1)
            count_tok, _ = take()
            try:
                count = int(count_tok)
            except ValueError:
                raise fail(f"CHANNELS count must be an integer, found {count_tok!r}",
                           pos - 1) from None
            chans = [take()[0].lower() for _ in range(count)]
            bad = [c for c in chans if c not in _VALID_CHANNELS]
            if bad:
                raise fail(f"unknown channel {bad[0]!r} (CHANNELS {count} {' '.join(chans)})",
                           pos - 1, "channel names are X/Y/Z + position/rotation/scale; "
                           "is the CHANNELS count right?")
            if sum(c.endswith("rotation") for c in chans) > 3:
                raise fail(f"more than 3 rotation channels ({' '.join(chans)})", pos - 1)
            joint = joints[stack[-1]]
            joint.channels, joint.channel_start = chans, num_channels
            num_channels += count
        elif key == "}":
            if not stack:
                raise fail("unbalanced '}'", pos - 1)
            stack.pop()
        else:
            raise fail(f"unexpected {tok!r} in HIERARCHY", pos - 1,
                       "expected ROOT, JOINT, End Site, OFFSET, CHANNELS or '}'")
    if stack:
        raise fail("the HIERARCHY section ends with unclosed joints", len(toks) - 1,
                   "a '}' is missing or the file is truncated")
    if not joints:
        raise ConvertError(path, "no ROOT joint in HIERARCHY", position="line 1")
    return BvhHierarchy(joints=joints, num_channels=num_channels)


_FRAMES_RE = re.compile(r"Frames\s*:\s*(\S+)", re.IGNORECASE)
_FRAME_TIME_RE = re.compile(r"Frame\s+Time\s*:\s*(\S+)", re.IGNORECASE)
_MOTION_RE = re.compile(r"^\s*MOTION\s*$", re.MULTILINE)


def parse_bvh(path: str | Path) -> BvhFile:
    """Parse a BVH file into its hierarchy and its raw MOTION matrix (no kinematics)."""
    path = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConvertError(path, f"cannot read the file: {e.strerror}") from None
    text = data.decode("utf-8", errors="replace")
    m = _MOTION_RE.search(text)
    if m is None:
        raise ConvertError(path, "no MOTION section", position="end of file",
                           fix="the file is truncated or not a BVH file")
    hierarchy = _cached_hierarchy(text[: m.start()], path)
    motion_line = text.count("\n", 0, m.start()) + 1
    rest = text[m.end():]

    lines = rest.split("\n", 3)
    frames_m = _FRAMES_RE.search(lines[1]) if len(lines) > 1 else None
    time_m = _FRAME_TIME_RE.search(lines[2]) if len(lines) > 2 else None
    if frames_m is None or time_m is None:
        raise ConvertError(path, "expected 'Frames: N' and 'Frame Time: SECONDS' after MOTION",
                           position=f"line {motion_line + 1}")
    try:
        n_frames = int(frames_m.group(1))
        frame_time = float(time_m.group(1))
    except ValueError:
        raise ConvertError(path, f"bad frame count or frame time "
                           f"({frames_m.group(1)!r}, {time_m.group(1)!r})",
                           position=f"line {motion_line + 1}") from None
    if not frame_time > 0:
        raise ConvertError(path, f"Frame Time must be positive, found {frame_time}",
                           position=f"line {motion_line + 2}")
    body = lines[3] if len(lines) > 3 else ""
    first_data_line = motion_line + 3
    motion = _parse_motion(body, n_frames, hierarchy.num_channels, path, first_data_line)
    return BvhFile(hierarchy=hierarchy, frame_time=frame_time, motion=motion,
                   sha256=hashlib.sha256(data).hexdigest())


def _parse_motion(body: str, n_frames: int, n_channels: int, path: str,
                  first_line: int) -> np.ndarray:
    expected = f"{n_frames} frames of {n_channels} numbers (the CHANNELS in HIERARCHY)"
    try:
        data = np.loadtxt(io.StringIO(body), dtype=np.float64, ndmin=2)
    except ValueError:
        # A slow pass, only on failure, to say exactly where and what.
        raise _locate_motion_error(body, n_channels, path, first_line, expected) from None
    if data.size and data.shape[1] != n_channels:
        flat = data.reshape(-1)  # some writers wrap frames over several lines
        if flat.size != n_frames * n_channels:
            raise ConvertError(path, f"MOTION rows have {data.shape[1]} numbers, expected "
                               f"{n_channels}", position=f"line {first_line}",
                               fix="the CHANNELS counts and the MOTION data disagree")
        data = flat.reshape(n_frames, n_channels)
    if data.shape[0] < n_frames:
        raise ConvertError(path, f"the file ends after {data.shape[0]} of {n_frames} frames",
                           position=f"line {first_line + data.shape[0]}",
                           fix="the file is truncated; re-export it or fix 'Frames:'")
    if data.shape[0] > n_frames:
        data = data[:n_frames]
    if not np.isfinite(data).all():
        row = int(np.flatnonzero(~np.isfinite(data).all(axis=1))[0])
        raise ConvertError(path, "non-finite number (nan/inf) in MOTION",
                           position=f"line {first_line + row}")
    return data


def _locate_motion_error(body: str, n_channels: int, path: str, first_line: int,
                         expected: str) -> ConvertError:
    for i, line in enumerate(body.splitlines()):
        fields = line.split()
        if not fields:
            continue
        for col, tok in enumerate(fields, start=1):
            try:
                float(tok)
            except ValueError:
                return ConvertError(path, f"non-numeric value {tok!r} in MOTION (value {col})",
                                    position=f"line {first_line + i}",
                                    fix=f"expected {expected}")
        if len(fields) != n_channels:
            return ConvertError(path, f"a MOTION row has {len(fields)} numbers, expected "
                                f"{n_channels}", position=f"line {first_line + i}",
                                fix="the file is truncated or CHANNELS counts are wrong")
    return ConvertError(path, f"MOTION data could not be read; expected {expected}",
                        position=f"line {first_line}")


def forward_kinematics(bvh: BvhFile) -> tuple[np.ndarray, list[str]]:
    """Global positions (T, J + E, 3) of every joint and End Site, and their names."""
    joints, motion, plan = bvh.hierarchy.joints, bvh.motion, bvh.hierarchy.plan
    n = motion.shape[0]
    # Local translations of all joints at once: OFFSETs, replaced by position channels.
    local_t = np.broadcast_to(plan.offsets, (n, len(joints), 3)).copy()
    local_t[:, plan.pos_joint, plan.pos_axis] = motion[:, plan.pos_col]
    local_m = _local_matrices(plan, motion, len(joints))
    glob_m = np.empty((len(joints), n, 3, 3))
    glob_p = np.empty((len(joints), n, 3))
    ends: list[tuple[str, np.ndarray]] = []
    for j, joint in enumerate(joints):
        if joint.parent < 0:
            glob_p[j] = local_t[:, j]
            glob_m[j] = local_m[j] if local_m[j] is not None else np.eye(3)
        else:
            pm = glob_m[joint.parent]
            # einsum beats matmul for a batch of 3x3 matrix-vector products (measured 2x).
            np.einsum("tij,tj->ti", pm, local_t[:, j], out=glob_p[j])
            glob_p[j] += glob_p[joint.parent]
            if local_m[j] is None:
                glob_m[j] = pm
            else:
                np.matmul(pm, local_m[j], out=glob_m[j])
        if joint.end_site is not None:
            ends.append((f"{joint.name}_End", glob_p[j] + glob_m[j] @ joint.end_site))
    names = [jt.name for jt in joints] + [name for name, _ in ends]
    points = [glob_p.transpose(1, 0, 2)] + [p[:, None] for _, p in ends]
    return np.concatenate(points, axis=1), names


def _local_matrices(plan: _FkPlan, motion: np.ndarray,
                    num_joints: int) -> list[np.ndarray | None]:
    """Per joint: (T, 3, 3) local rotation (times scale, if any), or None for the identity.

    Joints sharing an Euler order are converted in one batch.
    """
    out: list[np.ndarray | None] = [None] * num_joints
    source = motion
    if any((cols < 0).any() for _, _, cols in plan.rot_groups):
        # Padded axes read column -1, which this extra column of zeros provides.
        source = np.concatenate([motion, np.zeros((motion.shape[0], 1))], axis=1)
    for order, members, cols in plan.rot_groups:
        mats = euler_to_matrix(source[:, cols], order)  # (T, members, 3, 3)
        for m, j in enumerate(members):
            out[j] = mats[:, m]
    for j, scales in plan.scale_cols.items():
        scale = np.ones((motion.shape[0], 3))
        for axis, col in scales:
            scale[:, axis] = motion[:, col]
        base = out[j] if out[j] is not None else np.eye(3)
        out[j] = base * scale[:, None, :]
    return out


def read_raw(path: str | Path) -> RawMotion:
    """Global joint and End Site positions of a BVH file, in its own units and axes."""
    bvh = parse_bvh(path)
    positions, names = forward_kinematics(bvh)
    return RawMotion(positions=positions, names=names, fps=1.0 / bvh.frame_time, units=None,
                     sha256=bvh.sha256)


def read(path: str | Path, opts: ReadOptions = ReadOptions()) -> Clip:
    """A BVH file as a canonical Clip (units guessed from body size unless stated)."""
    return raw_to_clip(read_raw(path), path, "bvh", opts)
