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


@dataclass
class BvhFile:
    hierarchy: BvhHierarchy
    frame_time: float
    motion: np.ndarray  # (T, num_channels) float64


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
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
    except OSError as e:
        raise ConvertError(path, f"cannot read the file: {e.strerror}") from None
    m = _MOTION_RE.search(text)
    if m is None:
        raise ConvertError(path, "no MOTION section", position="end of file",
                           fix="the file is truncated or not a BVH file")
    hierarchy = parse_hierarchy(text[: m.start()], path)
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
    return BvhFile(hierarchy=hierarchy, frame_time=frame_time, motion=motion)


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
    joints, motion = bvh.hierarchy.joints, bvh.motion
    n = motion.shape[0]
    rotations = _local_rotations(joints, motion)
    glob_m = np.empty((len(joints), n, 3, 3))
    glob_p = np.empty((len(joints), n, 3))
    ends: list[tuple[str, np.ndarray]] = []
    for j, joint in enumerate(joints):
        local_t = np.broadcast_to(joint.offset, (n, 3)).copy()
        scale = np.ones((n, 3))
        for k, ch in enumerate(joint.channels):
            axis = "xyz".index(ch[0])
            if ch.endswith("position"):
                local_t[:, axis] = motion[:, joint.channel_start + k]
            elif ch.endswith("scale"):
                scale[:, axis] = motion[:, joint.channel_start + k]
        local_m = rotations[j] * scale[:, None, :] if rotations[j] is not None else None
        if joint.parent < 0:
            glob_p[j] = local_t
            glob_m[j] = local_m if local_m is not None else np.eye(3)
        else:
            pm = glob_m[joint.parent]
            glob_p[j] = glob_p[joint.parent] + np.einsum("tij,tj->ti", pm, local_t)
            glob_m[j] = pm @ local_m if local_m is not None else pm
        if joint.end_site is not None:
            ends.append((f"{joint.name}_End",
                         glob_p[j] + np.einsum("tij,j->ti", glob_m[j], joint.end_site)))
    names = [jt.name for jt in joints] + [name for name, _ in ends]
    points = [glob_p.transpose(1, 0, 2)] + [p[:, None] for _, p in ends]
    return np.concatenate(points, axis=1), names


def _local_rotations(joints: list[BvhJoint], motion: np.ndarray) -> list[np.ndarray | None]:
    """Per joint: (T, 3, 3) local rotation from its rotation channels, or None if it has none.

    Joints sharing an Euler order are converted in one batch.
    """
    by_order: dict[str, list[tuple[int, list[int]]]] = {}
    out: list[np.ndarray | None] = [None] * len(joints)
    for j, joint in enumerate(joints):
        cols = [joint.channel_start + k for k, c in enumerate(joint.channels)
                if c.endswith("rotation")]
        if not cols:
            continue
        order = "".join(c[0].upper() for c in joint.channels if c.endswith("rotation"))
        if len(order) < 3:
            # Fewer than three rotation channels: pad with unused axes at zero angle.
            order += "".join(a for a in "XYZ" if a not in order)[: 3 - len(order)]
        by_order.setdefault(order, []).append((j, cols))
    for order, members in by_order.items():
        angles = np.zeros((motion.shape[0], len(members), 3))
        for m, (_, cols) in enumerate(members):
            angles[:, m, : len(cols)] = motion[:, cols]
        mats = euler_to_matrix(angles, order)
        for m, (j, _) in enumerate(members):
            out[j] = mats[:, m]
    return out


def read_raw(path: str | Path) -> RawMotion:
    """Global joint and End Site positions of a BVH file, in its own units and axes."""
    bvh = parse_bvh(path)
    positions, names = forward_kinematics(bvh)
    return RawMotion(positions=positions, names=names, fps=1.0 / bvh.frame_time, units=None)


def read(path: str | Path, opts: ReadOptions = ReadOptions()) -> Clip:
    """A BVH file as a canonical Clip (units guessed from body size unless stated)."""
    return raw_to_clip(read_raw(path), path, "bvh", opts)
