"""Write 3D points to C3D: float storage, Intel, DEC or SGI (big-endian) encodings.

The `c3d` package's Writer lays out the header and the parameter section, but it only writes
Intel files (and keeps stale coordinates in invalid samples). So the writer here:

1. lets `c3d.Writer` produce an Intel-float file in memory (header + parameters),
2. writes the POINT data itself, vectorised: float32 (x, y, z, residual) per point and frame,
   coordinates 0 and residual -1 for missing (NaN) samples, residual 0 otherwise,
3. re-encodes the bytes for DEC or SGI when asked (`_reencode`): the header's 16-bit words and
   floats, every parameter value by its type, and the float data. There is no SGI fixture among
   the real files, so this is how the reader's big-endian path gets tested.

Encodings (C3D manual, "processor type" byte 4 of the parameter section):
  84 Intel: little-endian integers, IEEE floats.
  85 DEC:   little-endian integers, VAX F-floats (16-bit halves swapped, exponent bias 128 + 1).
  86 SGI:   big-endian integers and IEEE floats (MIPS).
"""

from __future__ import annotations

import io
import math
import os
import struct
import tempfile
import warnings
from pathlib import Path

import c3d as c3dlib
import numpy as np

from eai.toolkit.skeleton import CANONICAL_JOINTS

PROCESSORS = {"intel": 84, "dec": 85, "sgi": 86}
# Header layout of the first 512 bytes (the c3d package's own), little-endian.
_HEADER = "BBHHHHHfHHf274sHHH164s44s"


def write_c3d(path: str | Path, points: np.ndarray, labels: list[str], fps: float,
              units: str = "mm", processor: str = "intel") -> None:
    """Write points (T, P, 3), NaN where missing, as a float C3D file at `path`.

    labels: P point labels; fps: POINT:RATE; units: POINT:UNITS ("mm" or "m");
    processor: "intel", "dec" or "sgi" (big-endian). The file is written atomically.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 3 or points.shape[2] != 3 or points.shape[0] < 1:
        raise ValueError(f"points must have shape (T, P, 3) with T >= 1, got {points.shape}")
    if len(labels) != points.shape[1]:
        raise ValueError(f"{len(labels)} labels for {points.shape[1]} points")
    key = processor.strip().lower()
    if key not in PROCESSORS:
        raise ValueError(f"processor must be one of {', '.join(PROCESSORS)}, got {processor!r}")
    data = _reencode(_intel_bytes(points, labels, fps, units), PROCESSORS[key])
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_clip_c3d(path: str | Path, clip, processor: str = "intel") -> None:
    """Export a canonical Clip: its 19 joints as points labelled with the canonical names,
    millimetres, Y up as in the clip (Blender and Mokka read it; eai reads it back as canonical-19).
    Joints the clip lacks (joint_mask false) are written as missing samples."""
    pos = np.asarray(clip.positions, dtype=np.float64) * 1000.0
    pos[:, ~np.asarray(clip.joint_mask, dtype=bool)] = np.nan
    write_c3d(path, pos, list(CANONICAL_JOINTS), clip.fps, units="mm", processor=processor)


def _intel_bytes(points: np.ndarray, labels: list[str], fps: float, units: str) -> bytes:
    """An Intel-float C3D: metadata from c3d.Writer, POINT data written here in one go."""
    n_frames, n_points = points.shape[:2]
    w = c3dlib.Writer(point_rate=float(fps), point_scale=-1.0, point_units=units.ljust(4))
    # ANALOG:RATE = POINT:RATE with no channels (as Vicon writes it), not 0.0: the c3d package
    # decodes a DEC-encoded scalar 0.0 as -1.7e38 and then rejects the file.
    w.analog_rate = float(fps)
    w.set_point_labels([str(label) for label in labels])
    w.set_screen_axis("+X", "+Y")  # informative only; the reader detects the up axis itself
    blank = (np.zeros((n_points, 5), np.float32), np.zeros((0, 0), np.float32))
    w.add_frames([blank] * n_frames)  # placeholders: the Writer derives counts from them
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No analog data found in file.": none is intended
        w.write(buf)
    out = bytearray(buf.getvalue())

    frames = np.zeros((n_frames, n_points, 4), dtype="<f4")
    ok = np.isfinite(points).all(axis=-1)
    frames[..., :3] = np.where(ok[..., None], points, 0.0)
    frames[..., 3] = np.where(ok, 0.0, -1.0)
    start = (struct.unpack_from("<H", out, 16)[0] - 1) * 512  # header word 9: data block
    out[start:start + frames.nbytes] = frames.tobytes()
    return bytes(out)


def _reencode(data: bytes, proc: int) -> bytes:
    """Re-encode an Intel C3D written by `_intel_bytes` for processor `proc` (84, 85 or 86).

    Assumes what that writer produces: float storage (POINT:SCALE < 0), no events, parameter
    values of type char (-1), byte (1), int16 (2) or float32 (4).
    """
    if proc == 84:
        return data
    out = bytearray(data)
    big = proc == 86
    # Header: repack its integer words and floats in the target encoding.
    fields = list(struct.unpack_from("<" + _HEADER, data, 0))
    if big:
        struct.pack_into(">" + _HEADER, out, 0, *fields)
    else:
        for offset in (12, 20):  # scale factor (words 7-8) and frame rate (words 11-12)
            out[offset:offset + 4] = _floats(data[offset:offset + 4], proc)

    # Parameter section: walk groups and parameters, converting each value by its type.
    pos = (data[0] - 1) * 512
    out[pos + 3] = proc
    pos += 4
    while True:
        name_len, group_id = struct.unpack_from("<bb", data, pos)
        if name_len == 0 or group_id == 0:
            break
        name_len = abs(name_len)
        off_pos = pos + 2 + name_len
        offset = struct.unpack_from("<h", data, off_pos)[0]
        if big:
            struct.pack_into(">h", out, off_pos, offset)
        if group_id > 0:  # a parameter: type, dimensions, then the values
            p = off_pos + 2
            elem, ndim = struct.unpack_from("<bB", data, p)
            count = math.prod(data[p + 2:p + 2 + ndim])  # bytes iterate as ints; () -> 1
            p += 2 + ndim
            size = abs(elem) * count
            if elem == 2 and big:
                out[p:p + size] = np.frombuffer(data, "<i2", count, p).astype(">i2").tobytes()
            elif elem == 4:
                out[p:p + size] = _floats(data[p:p + size], proc)
        pos = off_pos + offset

    # Data section: every word is a float32 (coordinates and residuals).
    start = (struct.unpack_from("<H", data, 16)[0] - 1) * 512
    out[start:] = _floats(data[start:], proc)
    return bytes(out)


def _floats(raw: bytes, proc: int) -> bytes:
    """Little-endian IEEE float32 bytes -> SGI (big-endian IEEE) or DEC (VAX F-float) bytes."""
    f = np.frombuffer(raw, dtype="<f4")
    if proc == 86:
        return f.astype(">f4").tobytes()
    # VAX F-float = IEEE bit pattern with the exponent raised by 2 (bias 128 and the hidden bit
    # counted as 0.1b instead of 1.b), stored as two little-endian 16-bit halves, high half
    # first. Zero stays all-zero bytes (DEC's zero has exponent 0). Our values are far from
    # the exponent limits, so no overflow handling is needed.
    bits = f.view("<u4").astype(np.uint32)
    nonzero = (bits & 0x7FFFFFFF) != 0
    bits = np.where(nonzero, bits + (2 << 23), 0).astype(np.uint32)
    swapped = ((bits >> 16) | (bits << 16)).astype("<u4")
    return swapped.tobytes()
