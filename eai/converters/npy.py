"""NPY / NPZ reader: joint position arrays (T, J, 3) or (T, J*3) with a named joint layout.

The layout (which joint each column is) comes from `--layout`, a sidecar JSON
(`{"layout": "smpl-22", "fps": 20}`), or is inferred when the joint count matches exactly one
known layout (the clip's notes say so). Files are loaded with `allow_pickle=False`: a pickle can
run code, so eai never loads one.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from eai.converters.base import ReadOptions, raw_to_clip
from eai.converters.errors import ConvertError
from eai.converters.profiles import ProfileError, get_profile, layouts
from eai.converters.sidecar import load_sidecar
from eai.toolkit.clip import Clip, RawMotion

# Keys tried, in order, when an .npz holds several arrays.
NPZ_POSITION_KEYS = ("positions", "joints", "joint_positions", "keypoints", "keypoints3d",
                     "pose", "poses", "data")
NPZ_FPS_KEYS = ("fps", "mocap_framerate", "frame_rate", "framerate")
DEFAULT_FPS = 30.0


def _load(path: Path) -> tuple[np.ndarray, float | None]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise ConvertError(str(path), "the array holds pickled Python objects, which eai "
                               "never loads (a pickle can run code)", position="header",
                               fix="save plain numbers: np.save(path, positions.astype("
                               "np.float32))") from None
        raise ConvertError(str(path), f"not a readable NumPy file: {e}", position="header",
                           fix="write it with np.save / np.savez") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise ConvertError(str(path), f"not a readable NumPy file: {e}", position="header",
                           fix="the file is truncated or corrupt; write it with np.save") from None
    if isinstance(loaded, np.ndarray):
        return loaded, None
    with loaded:
        keys = list(loaded.files)
        fps = next((float(loaded[k]) for k in NPZ_FPS_KEYS if k in keys), None)
        arrays = [k for k in keys if k not in NPZ_FPS_KEYS]
        key = next((k for k in NPZ_POSITION_KEYS if k in arrays), None)
        if key is None and len(arrays) == 1:
            key = arrays[0]
        if key is None:
            raise ConvertError(str(path), f"cannot tell which array holds joint positions "
                               f"(arrays: {', '.join(keys)})",
                               fix=f"name it one of {', '.join(NPZ_POSITION_KEYS[:4])}")
        try:
            return loaded[key], fps
        except ValueError:
            raise ConvertError(str(path), f"array {key!r} holds pickled Python objects, which "
                               "eai never loads", fix="save plain numbers") from None


def _as_joints(arr: np.ndarray, path: Path) -> np.ndarray:
    """(T, J, 3) float64 from (T, J, 3) or (T, J*3); a clear error for anything else."""
    expected = "joint positions shaped (frames, joints, 3) or (frames, joints*3)"
    if not np.issubdtype(arr.dtype, np.number):
        raise ConvertError(str(path), f"array of {arr.dtype} values, expected numbers",
                           fix=f"save {expected}")
    if arr.ndim == 3 and arr.shape[2] == 3:
        return arr.astype(np.float64)
    if arr.ndim == 2 and arr.shape[1] % 3 == 0 and arr.shape[1] >= 9:
        return arr.reshape(arr.shape[0], -1, 3).astype(np.float64)
    hint = ""
    if arr.ndim == 2 and arr.shape[1] % 3:
        hint = (f"; {arr.shape[1]} columns is not a multiple of 3, so this looks like a feature "
                f"matrix (e.g. HumanML3D's 263-d vectors), not joint positions")
    raise ConvertError(str(path), f"array of shape {arr.shape}, expected {expected}{hint}",
                       fix="convert features back to joint positions first")


def _choose_layout(n_joints: int, path: Path, opts: ReadOptions, side: dict):
    name = opts.layout or side.get("layout")
    if name:
        try:
            profile = get_profile(str(name))
        except ProfileError as e:
            raise ConvertError(str(path), str(e)) from None
        if profile.layout is None:
            raise ConvertError(str(path), f"profile {profile.name!r} has no joint order",
                               fix=f"use a layout: {', '.join(sorted(layouts()))}")
        if len(profile.layout) != n_joints:
            raise ConvertError(str(path), f"layout {profile.name!r} has {len(profile.layout)} "
                               f"joints but the array has {n_joints}",
                               fix="pass the --layout that matches the array")
        return profile, None
    matches = [p for p in layouts().values() if len(p.layout) == n_joints]
    if len(matches) == 1:
        return matches[0], (f"layout {matches[0].name!r} inferred from the joint count "
                            f"({n_joints}); pass --layout to state it")
    known = ", ".join(f"{p.name} ({len(p.layout)})" for p in layouts().values())
    raise ConvertError(str(path), f"cannot tell the joint layout of {n_joints} joints",
                       fix=f"pass --layout or a sidecar JSON {{\"layout\": ...}}; known: {known}")


def read(path: str | Path, opts: ReadOptions = ReadOptions()) -> Clip:
    path = Path(path)
    side = load_sidecar(path)
    arr, npz_fps = _load(path)
    joints = _as_joints(arr, path)
    profile, note = _choose_layout(joints.shape[1], path, opts, side)
    notes = [note] if note else []
    fps = side.get("fps") or npz_fps or opts.source_fps
    if not fps:
        fps = DEFAULT_FPS
        notes.append(f"frame rate not stated; assumed {DEFAULT_FPS:g} fps (pass --source-fps "
                     f"or a sidecar JSON {{\"fps\": ...}})")
    raw = RawMotion(positions=joints, names=list(profile.layout), fps=float(fps),
                    units=None, notes=notes)
    return raw_to_clip(raw, path, "npy", opts, profile=profile, sidecar=side)
