"""What every format reader shares: read options, and the step from RawMotion to a Clip."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from eai.converters.errors import ConvertError
from eai.converters.profiles import Profile, ProfileError, detect_profile, get_profile
from eai.converters.sidecar import load_sidecar
from eai.toolkit.canonical import canonicalize
from eai.toolkit.clip import Clip, RawMotion, SourceInfo


@dataclass(frozen=True)
class ReadOptions:
    """Options of `eai convert` that reach the readers (validated when the command starts)."""

    profile: str | None = None  # skeleton profile name; None detects it from the names
    units: str | None = None  # source length unit when the file does not state it
    fps: float = 30.0  # target frame rate of the dataset
    layout: str | None = None  # NPY joint layout (a profile name with a layout)
    source_fps: float | None = None  # frame rate for sources that do not state one (NPY)
    max_gap_s: float = 0.25  # missing runs up to this long are interpolated

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.source_fps is not None and not self.source_fps > 0:
            raise ValueError(f"source_fps must be positive, got {self.source_fps}")
        if self.max_gap_s < 0:
            raise ValueError(f"max_gap_s must be >= 0, got {self.max_gap_s}")


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def choose_profile(path: str | Path, names: list[str], opts: ReadOptions,
                   kind: str | None = None) -> Profile:
    try:
        if opts.profile:
            return get_profile(opts.profile)
        return detect_profile(names, kind=kind)
    except ProfileError as e:
        raise ConvertError(str(path), str(e)) from None


def raw_to_clip(raw: RawMotion, path: str | Path, fmt: str, opts: ReadOptions,
                profile: Profile | None = None, sidecar: dict | None = None) -> Clip:
    """Retarget, canonicalize and wrap a parsed file. The clip id is provisional (the file stem);
    the conversion pipeline replaces it with `<dataset>/<relative path>`."""
    path = Path(path)
    if raw.positions.shape[0] < 2:
        raise ConvertError(str(path), f"only {raw.positions.shape[0]} frame(s) of motion",
                           fix="a clip needs at least 2 frames")
    profile = profile or choose_profile(path, raw.names, opts, kind=None)
    try:
        canon, mask = profile.retarget(raw.positions, raw.names)
    except ProfileError as e:
        raise ConvertError(str(path), str(e)) from None

    # Who states the units, most specific first: the file, its sidecar JSON, --units, the
    # profile's known unit; otherwise canonicalize guesses them and says so.
    side = load_sidecar(path) if sidecar is None else sidecar  # readers that read it pass it
    units = raw.units or side.get("units") or opts.units or profile.default_units
    result = canonicalize(canon, src_fps=raw.fps, dst_fps=opts.fps, units=units,
                          up_axis=raw.up_axis, max_gap_s=opts.max_gap_s,
                          floor_percentile=1.0 if profile.kind == "markers" else 0.0)
    notes = list(raw.notes) + result.notes
    if profile.approximate:
        notes.append(profile.approximate)
    source = SourceInfo(path=str(path), format=fmt, sha256=raw.sha256 or sha256_of(path),
                        fps=float(raw.fps), joint_names=list(raw.names), units=result.units,
                        profile=profile.name, notes=notes)
    return Clip(clip_id=path.stem, positions=result.positions, joint_mask=mask, fps=opts.fps,
                source=source, dataset="local")
