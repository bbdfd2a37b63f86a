"""Read C3D motion-capture files into Clips.

Two maintained libraries, each with a gap the other fills, so the reader uses both:

- ezc3d (C++, fast) is the primary reader: Intel and DEC encodings, integer and float storage,
  residual < 0 already turned into NaN, and files holding only a ROTATION group (markerless
  exports), on which the `c3d` package fails.
- the pure-Python `c3d` package reads big-endian SGI/MIPS files, which ezc3d refuses
  ("MIPS processor type not supported"). Those go straight to it, as do sections ezc3d would
  misread; any other file falls back to it only when ezc3d raises.

Neither library reports a truncated data section (both return the frames they found), their
errors on garbage are terse, and ezc3d crashes the whole process (segfault) on some corrupt
parameter sections. So the header and the parameter section's structure are checked here first
(magic byte, pointers, processor type, every entry's declared sizes) and the frame count after:
every failure becomes a ConvertError that names the byte and what was expected there.

Samples are missing when the residual is negative, the coordinates are NaN, or all three are
exactly 0 (some writers mark gaps that way). Only the first POINT:USED labels name the points;
units come from POINT:UNITS; the up axis is left to `canonicalize` to detect (Z is typical).
"""

from __future__ import annotations

import math
import struct
import warnings
from pathlib import Path

import numpy as np

from eai.converters.base import ReadOptions, choose_profile, raw_to_clip
from eai.converters.errors import ConvertError
from eai.converters.recipes import normalize_name
from eai.toolkit.clip import Clip, RawMotion

PROCESSORS = {84: "Intel", 85: "DEC", 86: "SGI/MIPS"}


def read(path: str | Path, opts: ReadOptions = ReadOptions()) -> Clip:
    """A C3D file -> Clip in the canonical skeleton (marker sets or joint centres)."""
    raw = read_raw(path)
    if opts.profile:
        profile = choose_profile(path, raw.names, opts)
    else:  # marker sets first; then joint centres named like a skeleton (e.g. canonical names)
        try:
            profile = choose_profile(path, raw.names, opts, kind="markers")
        except ConvertError:
            profile = choose_profile(path, raw.names, opts, kind=None)
    return raw_to_clip(raw, path, "c3d", opts, profile=profile)


def read_raw(path: str | Path) -> RawMotion:
    """The POINT data of a C3D file: positions (T, P, 3) in file units and axes, NaN if missing."""
    path = Path(path)
    proc, n_frames, ezc3d_safe = _check_header(path)
    errors: list[str] = []
    notes: list[str] = []
    readers = [_read_ezc3d, _read_c3dpkg] if proc != 86 and ezc3d_safe else [_read_c3dpkg]
    for reader in readers:
        try:
            positions, labels, fps, units = reader(path)
            break
        except Exception as e:  # noqa: BLE001 - library errors are reported, never raised raw
            first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
            errors.append(f"{reader.__doc__} says: {first_line}")
    else:
        raise ConvertError(str(path), f"expected a valid {PROCESSORS[proc]} C3D parameter "
                           f"and data section ({'; '.join(errors)})", position="parameter section",
                           fix="re-export the file from the capture software")
    if errors:
        notes.append(f"read with the c3d package after {errors[0]}")

    if positions.shape[1] == 0:
        raise ConvertError(str(path), "no 3D points (POINT:USED = 0): only analog or rotation "
                           "data", fix="export marker or joint-centre trajectories")
    if positions.shape[0] < n_frames:
        raise ConvertError(str(path), f"truncated data section: expected {n_frames} frames "
                           f"(header), the file holds {positions.shape[0]}",
                           position=f"byte {path.stat().st_size}", fix="copy the file again")
    positions[(positions == 0).all(axis=-1)] = np.nan  # (0, 0, 0): a gap, never a real marker

    names = [str(label).strip() for label in labels]
    counts: dict[str, int] = {}
    for name in names:  # compared as profiles compare them (case, "Subject:" prefix)
        counts[normalize_name(name)] = counts.get(normalize_name(name), 0) + 1
    dups = [n for n, c in counts.items() if c > 1]
    if dups:
        notes.append(f"duplicate point labels {', '.join(dups)}: the first of each is used")
    unit = str(units).strip().lower()
    if unit not in ("mm", "m", "cm"):
        notes.append(f"POINT:UNITS {units!r} not understood; units are guessed from the body size")
        unit = None
    return RawMotion(positions=positions, names=names, fps=fps, units=unit, notes=notes)


def _check_header(path: Path) -> tuple[int, int, bool]:
    """Validate the header and the parameter section: (processor, frames, safe for ezc3d)."""
    size = path.stat().st_size

    def fail(byte: int, message: str) -> ConvertError:
        return ConvertError(str(path), message, position=f"byte {byte}",
                            fix="check that this is a complete, uncorrupted C3D file")

    with open(path, "rb") as f:
        head = f.read(512)
        if len(head) < 512:
            raise fail(len(head), f"expected a 512-byte C3D header, the file has {len(head)} bytes")
        if head[1] != 0x50:
            raise fail(2, f"expected a C3D header: byte 2 must be 0x50, found 0x{head[1]:02x}")
        param_at = (head[0] - 1) * 512
        if head[0] < 2 or param_at + 4 > size:
            raise fail(1, f"expected byte 1 to point to the parameter section, found block "
                          f"{head[0]}, outside the file ({size} bytes)")
        f.seek(param_at)
        _, _, blocks, proc = f.read(4)
        # Some writers leave the block count 0: then the section runs to the end of the file.
        section = f.read(blocks * 512 - 4) if blocks else f.read()
    if proc not in PROCESSORS:
        raise fail(param_at + 4, f"expected processor type 84 (Intel), 85 (DEC) or 86 (SGI) at "
                                 f"the start of the parameter section, found {proc}")
    if blocks and len(section) < blocks * 512 - 4:
        raise fail(size, f"expected a parameter section of {blocks} blocks from byte "
                         f"{param_at + 1}; the file ends before it does")
    order = ">" if proc == 86 else "<"
    first, last = struct.unpack_from(order + "HH", head, 6)
    data_block = struct.unpack_from(order + "H", head, 16)[0]
    if (data_block - 1) * 512 > size:
        raise fail(17, f"expected the data section at block {data_block} (bytes 17-18), "
                       f"beyond the end of the file ({size} bytes)")
    ezc3d_safe = _check_parameters(section, param_at + 4, order, head, fail)
    return proc, max(0, last - first + 1), ezc3d_safe


def _check_parameters(sec: bytes, base: int, order: str, head: bytes, fail) -> bool:
    """Walk the parameter section's structure before ezc3d sees it, because ezc3d (C++) crashes
    the whole process on some corrupt sections instead of raising: a parameter with 157
    dimensions, ANALOG:USED disagreeing with the header, a description length >= 128 (it reads
    that byte as signed). Raises for a broken structure; returns False when the section is
    sound but ezc3d would misread it (then only the c3d package reads the file)."""
    groups: dict[str, int] = {}
    params: dict[tuple[int, str], tuple[int, int]] = {}  # (group id, NAME) -> (type, value at)
    ezc3d_safe, pos = True, 0
    while pos + 2 <= len(sec):
        n, gid = struct.unpack_from("bb", sec, pos)
        if n == 0 or gid == 0:
            break  # the end of the section
        name = sec[pos + 2:pos + 2 + abs(n)].decode("latin-1").upper()
        at = pos + 2 + abs(n)  # the 16-bit offset to the next entry
        offset = struct.unpack_from(order + "h", sec, at)[0] if at + 2 <= len(sec) else -1
        end = len(sec) if offset == 0 else at + offset
        if offset < 0 or end > len(sec) or at + 3 > end:
            raise fail(base + at + 1, f"expected the offset of parameter entry {name!r} to point "
                                      f"inside the parameter section, found {offset}")
        if gid < 0:
            groups[name] = -gid
            desc_at = at + 2
        else:
            kind, ndim = struct.unpack_from("bB", sec, at + 2)
            size = abs(kind) * math.prod(sec[at + 4:at + 4 + ndim])
            params[(gid, name)] = (kind, at + 4 + ndim)
            desc_at = at + 4 + ndim + size
            if kind not in (-1, 1, 2, 4) or ndim > 7:
                raise fail(base + at + 3, f"expected parameter {name!r} to have type -1, 1, 2 "
                                          f"or 4 and at most 7 dimensions, found {kind}, {ndim}")
        if desc_at >= end or desc_at + 1 + sec[desc_at] > end:
            raise fail(base + desc_at + 1, f"expected parameter entry {name!r} to fit its "
                                           f"declared size ({end - at} bytes)")
        ezc3d_safe &= sec[desc_at] < 128
        if offset == 0:
            break
        pos = end
    analog = params.get((groups.get("ANALOG", 0), "USED"))
    if analog and analog[0] == 2:
        used = struct.unpack_from(order + "H", sec, analog[1])[0]
        count, per_frame = (struct.unpack_from(order + "H", head, i)[0] for i in (4, 18))
        if used * per_frame != count:
            raise fail(base + analog[1] + 1, f"expected ANALOG:USED x samples per frame "
                                             f"({used} x {per_frame}) to equal the header's "
                                             f"analog count {count}")
    return ezc3d_safe


def _read_ezc3d(path: Path) -> tuple[np.ndarray, list[str], float, str]:
    """ezc3d"""
    import ezc3d

    c = ezc3d.c3d(str(path))
    point = c["parameters"]["POINT"]
    used = int(point["USED"]["value"][0])
    labels = _labels({k: v["value"] for k, v in point.items() if k.startswith("LABELS")}, used)
    xyz = c["data"]["points"][:3].transpose(2, 1, 0)  # (3, P, T) -> (T, P, 3); NaN if residual < 0
    units = point["UNITS"]["value"][0] if "UNITS" in point else ""
    rate = point["RATE"]["value"][0] if "RATE" in point else c["header"]["points"]["frame_rate"]
    return np.ascontiguousarray(xyz, dtype=np.float64), labels, float(rate), units


def _read_c3dpkg(path: Path) -> tuple[np.ndarray, list[str], float, str]:
    """the c3d package"""
    import c3d

    with open(path, "rb") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns about absent analog data, event blocks ...
        r = c3d.Reader(f)
        group = r.get("POINT")
        labels = _labels({k: list(p.string_array) for k, p in group.param_items()
                          if k.startswith("LABELS")}, r.point_used)
        frames = [p for _, p, _ in r.read_frames(copy=True)]
        units_param = r.get("POINT:UNITS")
        units = units_param.string_value if units_param is not None else ""
        fps = float(r.point_rate)
    data = np.stack(frames) if frames else np.zeros((0, len(labels), 5), np.float32)
    xyz = data[..., :3].astype(np.float64)
    xyz[data[..., 3] < 0] = np.nan  # residual -1: invalid sample (NaN coordinates included)
    return xyz, labels, fps, units


def _labels(params: dict, used: int) -> list[str]:
    """POINT:LABELS, continued in LABELS2, LABELS3 ... when there are many; the first `used`."""
    keys = sorted((k for k in params if k == "LABELS" or k[6:].isdigit()),
                  key=lambda k: int(k[6:] or 1))
    labels = [str(x) for k in keys for x in params[k]]
    labels += [f"POINT{i + 1}" for i in range(len(labels), used)]  # unlabelled points
    return labels[:used]
