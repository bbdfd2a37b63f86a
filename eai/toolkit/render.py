"""Stick-figure pictures of clips: animations (MP4, GIF), filmstrips and a dataset overview.

Views are orthographic, world Y up on screen, metres equal on both screen axes:
- "front": the camera stands at +Z looking toward -Z, i.e. at the subject's face at frame 0;
  screen right is world +X, so the subject's left (+X) appears on the viewer's right.
- "side": the camera stands at the subject's right (-X) looking toward +X; screen right is
  world +Z, so a subject walking forward moves left to right and the right limbs are near.
Left limbs are blue, right limbs vermillion (Okabe-Ito, colour-blind safe), the trunk grey.
Vertical limits and the scale are fixed over the clip so motion shows. A view whose travel
would not fit at a useful scale follows the pelvis horizontally (smoothed over half a second
and clamped to the travel), and floor ticks every 0.5 m scroll past to show the travel.

Matplotlib is used through `Figure` + the Agg canvas directly, never pyplot, so the global
backend and figure registry of other users in the process are left alone.

Animations are drawn for speed (review renders one per clip), without matplotlib: the still
picture (texts by Pillow in matplotlib's font, the floor) once per clip, then per frame only
what moves, with OpenCV (stick_raster.py; the picture of `_Panel`, its lines a little bolder).
MP4 frames are drawn in Y'CbCr and go to ffmpeg as 4:2:0, with only the parts of a frame that
can have changed copied into the planes. BENCHMARKS.md, "Review loop speed".
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from matplotlib import __version__ as mpl_version
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from PIL import Image, ImageDraw, ImageFont

from eai.toolkit.clip import Clip
from eai.toolkit.skeleton import BONES, CANONICAL_JOINTS, JOINT_INDEX
from eai.toolkit.stick_raster import ViewSprite, palette, rgb_to_ycbcr, to_yuv420p

VIEW_AXIS = {"front": 0, "side": 2}  # world axis shown as screen x (screen y is always Y)
COLOURS = {"left": "#0072B2", "right": "#D55E00", "trunk": "#505050"}
DPI = 100
PAD = 0.12  # metres of margin around the body
PAD_TOP = 0.2  # more above: the head circle is drawn around the head joint
TITLE_PX = 14  # pixel height of the title band in animations
FOLLOW_RATIO = 1.3  # follow the pelvis when a fixed view would shrink the body by more than this
TICK_M = 0.5  # floor tick spacing, metres
# boxplot's `vert` became `orientation` in matplotlib 3.10 (and `vert` warns there)
_MPL = tuple(int(p) for p in mpl_version.split(".")[:2])
HORIZONTAL = {"orientation": "horizontal"} if _MPL >= (3, 10) else {"vert": False}
# H.264 of MP4 animations. The encoder is the largest share of a render: "ultrafast" runs about
# four times as fast as x264's default preset ("medium"), and at crf 23 it matches the pictures
# of medium at crf 15 (the earlier setting: 37.2 against 37.3 dB PSNR to the drawn frames; 4:2:0
# chroma alone caps it at 37.8) in files about 1.75 times as large (about 100 kB per second of
# 640 x 240 video). BENCHMARKS.md, "Review loop speed".
X264 = ["-preset", "ultrafast", "-crf", "23"]


def _side(joint: int) -> str:
    name = CANONICAL_JOINTS[joint]
    return "left" if name.startswith("l_") else "right" if name.startswith("r_") else "trunk"


# Bones coloured by their child joint, so the clavicles and the pelvis-to-hip bones show the side.
GROUPS = {g: [b for b in BONES if _side(b[1]) == g] for g in ("left", "right", "trunk")}


def _quiet(fn, *a, **kw):
    """numpy nan-reductions without the all-NaN warnings (missing joints are expected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*a, **kw)


def _clean_positions(clip: Clip) -> np.ndarray:
    pos = np.array(clip.positions, dtype=np.float64)
    pos[:, ~clip.joint_mask] = np.nan  # masked joints are never drawn, whatever they hold
    return pos


def _fill_nan(x: np.ndarray, default: float) -> np.ndarray:
    ok = np.isfinite(x)
    if not ok.any():
        return np.full_like(x, default)
    return np.interp(np.arange(len(x)), np.flatnonzero(ok), x[ok])


def _framing(pos: np.ndarray, views: Sequence[str], aw: float, ah: float,
             follow_frames: int | None):
    """Metres per pixel (shared by all views), fixed y limits, per view the screen-x centre of
    every frame. A view follows the pelvis (smoothed over follow_frames) when its travel would
    not fit; follow_frames=None centres every frame on its own pelvis (filmstrip panels)."""
    finite = np.isfinite(pos).all(-1)
    ys = pos[..., 1][finite]
    ymin, ymax = (min(0.0, ys.min()) - PAD, ys.max() + PAD_TOP) if ys.size else (-PAD, 1.9)
    base = (ymax - ymin) / ah
    spans = {}
    for v in views:
        x = pos[..., VIEW_AXIS[v]]
        xs = x[finite]
        lo, hi = (xs.min() - PAD, xs.max() + PAD) if xs.size else (-1.0, 1.0)
        pelvis = x[:, JOINT_INDEX["pelvis"]]
        pelvis = _fill_nan(np.where(np.isfinite(pelvis), pelvis, _quiet(np.nanmean, x, 1)),
                           (lo + hi) / 2)
        reach = np.nan_to_num(_quiet(np.nanmax, np.abs(x - pelvis[:, None]))) + PAD
        follow = follow_frames is None or (hi - lo) / aw > FOLLOW_RATIO * base
        spans[v] = (pelvis, lo, hi, follow, (2 * reach if follow else hi - lo) / aw)
    scale = max([base] + [s[4] for s in spans.values()])
    half = aw * scale / 2
    centres = {}
    for v, (pelvis, lo, hi, follow, _) in spans.items():
        if not follow:
            centres[v] = np.full(len(pos), (lo + hi) / 2)
        elif follow_frames is None:
            centres[v] = pelvis
        else:  # a moving camera: smooth out the gait's sway, never show beyond the travel
            k = max(1, follow_frames // 2)
            c = np.convolve(np.pad(pelvis, k, mode="edge"), np.ones(2 * k + 1) / (2 * k + 1),
                            "valid")
            centres[v] = np.clip(c, lo + half, max(lo + half, hi - half))
    return scale, (ymin, ymin + ah * scale), centres


def _segments(pos: np.ndarray, view: str, bones) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3*len(bones)) screen x and y per frame: parent, child, NaN break per bone."""
    if not bones:
        return np.zeros((len(pos), 0)), np.zeros((len(pos), 0))
    p, c = np.array(bones).T
    out = []
    for axis in (VIEW_AXIS[view], 1):
        a = np.stack([pos[:, p, axis], pos[:, c, axis], np.full((len(pos), len(p)), np.nan)], -1)
        out.append(a.reshape(len(pos), -1))
    return out[0], out[1]


class _Panel:
    """The artists of one view in one axes; `show(i)` moves them to frame i."""

    def __init__(self, ax, pos: np.ndarray, view: str, scale: float, ylim, lw: float,
                 animated: bool):
        self.ax, self.view = ax, view
        ax.set_axis_off()
        ax.set_ylim(*ylim)
        ax.axhspan(ylim[0], 0.0, color="#eeeeee", lw=0, zorder=0)
        ax.axhline(0.0, color="#999999", lw=1.0, zorder=0.5)
        xs = pos[..., VIEW_AXIS[view]][np.isfinite(pos[..., VIEW_AXIS[view]])]
        lo, hi = (xs.min() - 5, xs.max() + 5) if xs.size else (-5.0, 5.0)  # 5 m: beyond a window
        ticks = np.arange(np.floor(lo / TICK_M), np.ceil(hi / TICK_M) + 1) * TICK_M
        self.ticks = LineCollection([[(t, 0.0), (t, -4 * scale)] for t in ticks], colors="#999999",
                                    linewidths=1.0, animated=animated, zorder=0.6)
        ax.add_collection(self.ticks, autolim=False)
        # Side view: the right limbs are near the camera, draw them over the trunk and the left.
        order = ("left", "trunk", "right") if view == "side" else ("trunk", "left", "right")
        self.lines = []
        for z, group in enumerate(order):
            xs_, ys_ = _segments(pos, view, GROUPS[group])
            (line,) = ax.plot([], [], color=COLOURS[group], lw=lw, solid_capstyle="round",
                              animated=animated, zorder=2 + z)
            self.lines.append((line, xs_, ys_))
        head_px = 0.2 / scale  # a head about 20 cm across
        (self.head,) = ax.plot([], [], "o", ms=head_px * 72 / DPI, mfc="white",
                               mec=COLOURS["trunk"], mew=lw * 0.8, animated=animated, zorder=6)
        self.head_xy = pos[:, JOINT_INDEX["head"], [VIEW_AXIS[view], 1]]
        self.artists = [self.ticks] + [ln for ln, _, _ in self.lines] + [self.head]

    def show(self, i: int, centre: float, half: float) -> None:
        self.ax.set_xlim(centre - half, centre + half)
        for line, xs, ys in self.lines:
            line.set_data(xs[i], ys[i])
        self.head.set_data(self.head_xy[i, :1], self.head_xy[i, 1:])


def _label(clip: Clip) -> str:
    return f"{clip.clip_id} · {clip.emotion or clip.label_raw or 'unlabelled'}"


def _frame_indices(clip: Clip, fps: float | None) -> tuple[np.ndarray, float]:
    """Source frame per output frame (nearest in time) and the output frame rate."""
    if clip.num_frames == 0:
        raise ValueError(f"clip {clip.clip_id!r} has no frames to render")
    if fps is None or fps == clip.fps:
        return np.arange(clip.num_frames), clip.fps
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    n = int(np.floor((clip.num_frames - 1) / clip.fps * fps + 1e-9)) + 1
    return np.minimum(np.round(np.arange(n) * clip.fps / fps).astype(int), clip.num_frames - 1), fps


# Animations. Their texts are drawn with Pillow in matplotlib's font: matplotlib took about 6 ms
# for a clip's title and 2.5 ms for each new clock text, Pillow a twentieth of that.
FLOOR_COLOUR, BAND_COLOUR = "#999999", "#eeeeee"
TEXT_COLOUR, VIEW_NAME_COLOUR = "#222222", "#888888"
CLOCK_W = 46  # pixels at the top right that the clock uses (more for clips of 100 s and longer)
# The clock's pixels by (text, the pixels under it): clips at 30 fps all show the same times.
_CLOCK_CACHE: dict[tuple[str, tuple[int, ...], bytes], dict[str, np.ndarray]] = {}
_CLOCK_CACHE_MAX = 5000  # about 20 MB; a minute at 30 fps shows 1,800 times


@functools.lru_cache(maxsize=4)
def _font(points: float) -> ImageFont.FreeTypeFont:
    """matplotlib's default font (DejaVu Sans) at this size, for Pillow."""
    return ImageFont.truetype(font_manager.findfont(FontProperties()), points * DPI / 72)


def _clock_text(seconds: float) -> str:
    return f"{seconds:5.2f} s"


def _still_texts(clip: Clip, views: Sequence[str], w: int, h: int, clock_w: int) -> np.ndarray:
    """(h, W, 3) RGB: white with the title, the view names and the colour key; the clock's
    corner (clock_w wide) left empty."""
    W, ah = w * len(views), h - TITLE_PX
    image = Image.new("RGB", (W, h), "white")
    draw = ImageDraw.Draw(image)
    for k, v in enumerate(views):  # where a _Panel's axes would put its label
        draw.text(((k + 0.02) * w, h - 0.97 * ah), v, fill=VIEW_NAME_COLOUR, font=_font(6.5),
                  anchor="la")
    for k, side in enumerate(("left", "right")):  # the colour key, as the front view sees it
        draw.text((W - clock_w - 4 - 30 * k, 2), side, fill=COLOURS[side], font=_font(7),
                  anchor="ra")
    title, room = _label(clip), max(8, int((W - 110) / 5.2))  # characters that fit
    title = title if len(title) <= room else "…" + title[-(room - 1):]
    draw.text((3, 2), title, fill=TEXT_COLOUR, font=_font(7), anchor="la")
    return np.array(image)


class _Clock:
    """The time at the top right of each frame, drawn over the still picture's corner; its
    pixels are cached by text."""

    def __init__(self, still: np.ndarray, width: int):
        W = still.shape[1]
        self.corner = (slice(0, TITLE_PX), slice(max(0, W - width), W))
        self.under = still[self.corner].copy()
        self.key = (self.under.shape, self.under.tobytes())

    def pixels(self, seconds: float, space: str) -> np.ndarray:
        """The corner's pixels at that time, RGB or Y'CbCr."""
        text = _clock_text(seconds)
        cached = _CLOCK_CACHE.get((text, *self.key))
        if cached is None:
            if len(_CLOCK_CACHE) >= _CLOCK_CACHE_MAX:
                _CLOCK_CACHE.clear()
            image = Image.fromarray(self.under)
            ImageDraw.Draw(image).text((self.under.shape[1] - 3, 2), text, fill=TEXT_COLOUR,
                                       font=_font(7), anchor="ra")
            cached = _CLOCK_CACHE[(text, *self.key)] = {"rgb": np.array(image)}
        if space not in cached:
            cached[space] = rgb_to_ycbcr(cached["rgb"])
        return cached[space]


def _view_sprite(pos: np.ndarray, view: str, scale: float, ylim, centres: np.ndarray,
                 panel: tuple[slice, slice], lw: float) -> ViewSprite:
    """One view's figure, head and floor ticks for every frame, in pixels of its panel (x
    right, y down): the picture of a `_Panel` (colours, widths, order, the 20 cm head)."""
    w = panel[1].stop - panel[1].start
    px = 1.0 / scale  # pixels per metre, on both axes
    left = np.asarray(centres, dtype=np.float64)[:, None] - w * scale / 2  # world x at col 0
    x = pos[..., VIEW_AXIS[view]]
    screen = np.stack([(x - left) * px, (ylim[1] - pos[..., 1]) * px], -1)  # (T, joints, 2)
    # Side view: the right limbs are near the camera, draw them over the trunk and the left.
    order = ("left", "trunk", "right") if view == "side" else ("trunk", "left", "right")
    strokes = [(COLOURS[g], screen[:, np.array(GROUPS[g])]) for g in order if GROUPS[g]]
    xs = x[np.isfinite(x)]
    lo, hi = (xs.min() - 5, xs.max() + 5) if xs.size else (-5.0, 5.0)  # 5 m: beyond a window
    ticks = (np.arange(np.floor(lo / TICK_M), np.ceil(hi / TICK_M) + 1) * TICK_M - left) * px
    ticks[(ticks < -2) | (ticks > w + 2)] = np.nan
    return ViewSprite(panel, strokes, screen[:, JOINT_INDEX["head"]], head_radius_px=0.1 * px,
                      floor_y=ylim[1] * px, ticks=ticks, ticks_move=bool(np.ptp(left) > 0),
                      line_px=lw * DPI / 72, head_colour=COLOURS["trunk"],
                      floor_colour=FLOOR_COLOUR, band_colour=BAND_COLOUR)


class _Animation:
    """The frames of one clip's animation. The still picture (texts, the floor) is made once;
    each frame restores the parts the one before drew on, then draws the figure, the moving
    floor ticks and the clock (stick_raster.py)."""

    def __init__(self, clip: Clip, views: Sequence[str], size: tuple[int, int],
                 fps: float | None):
        if not views or any(v not in VIEW_AXIS for v in views):
            raise ValueError(f"views must be among {sorted(VIEW_AXIS)}, got {list(views)}")
        w, h = int(size[0]), int(size[1])
        if w < 32 or h < 32 + TITLE_PX:
            raise ValueError(f"size must be at least 32 x {32 + TITLE_PX} pixels, got {w} x {h}")
        indices, self.fps = _frame_indices(clip, fps)
        W, ah, pos = w * len(views), h - TITLE_PX, _clean_positions(clip)
        scale, ylim, centres = _framing(pos, views, w, ah, follow_frames=int(clip.fps / 2))
        self.n, self.h, self.W = len(indices), h, W
        lw = float(np.clip(2.0 * h / 240, 1.0, 4.0))  # points, as in _Panel
        self.sprites = [_view_sprite(pos[indices], v, scale, ylim, centres[v][indices],
                                     (slice(TITLE_PX, h), slice(k * w, (k + 1) * w)), lw)
                        for k, v in enumerate(views)]
        longest = _font(7).getlength(_clock_text((self.n - 1) / self.fps))
        clock_w = max(CLOCK_W, int(np.ceil((longest + 4) / 2)) * 2)  # even: the chroma grid
        still = _still_texts(clip, views, w, h, clock_w)
        colours = set().union(*(s.colours() for s in self.sprites))
        self.palettes = {space: palette(sorted(colours), space) for space in ("rgb", "ycbcr")}
        for s in self.sprites:
            s.draw_static(still, self.palettes["rgb"])
        self.clock = _Clock(still, clock_w)
        self.still = {"rgb": still}

    def frames(self, space: str = "rgb") -> Iterator[np.ndarray]:
        """Each frame as one (h, W, 3) uint8 buffer, reused: valid until the next is drawn.
        space: "rgb", or "ycbcr" (BT.601 video range) for video."""
        return (frame for frame, _ in self._frames(space))

    def _frames(self, space: str) -> Iterator[tuple[np.ndarray, list[tuple[slice, slice]]]]:
        """Each frame with the regions where it can differ from the one before (even
        bounds): the sprites' boxes of both frames and the clock."""
        if space not in self.still:
            self.still[space] = rgb_to_ycbcr(self.still["rgb"])
        still, colours, corner = self.still[space], self.palettes[space], self.clock.corner
        frame = still.copy()
        for i in range(self.n):
            for s in self.sprites:
                for region in s.drawn[i - 1] if i else []:  # the last frame's figure, gone
                    frame[region] = still[region]
            for s in self.sprites:
                s.draw(frame, i, colours)
            frame[corner] = self.clock.pixels(i / self.fps, space)
            yield frame, [region for s in self.sprites for region in s.changed[i]] + [corner]

    def yuv420p(self) -> Iterator[np.ndarray]:
        """Each frame as planar Y'CbCr 4:2:0 (one flat uint8 array, reused), for even sizes:
        drawn in Y'CbCr, so there is no colour conversion, and only the regions of a frame
        that can have changed are copied into the planes."""
        h, W = self.h, self.W
        if h % 2 or W % 2:
            raise ValueError(f"yuv420p needs even sizes, got {W} x {h}")
        out = np.empty(h * W * 3 // 2, np.uint8)
        y, cb, cr = (out[:h * W].reshape(h, W), out[h * W:h * W * 5 // 4].reshape(h // 2, W // 2),
                     out[h * W * 5 // 4:].reshape(h // 2, W // 2))
        everything = [(slice(0, h), slice(0, W))]
        for i, (frame, changed) in enumerate(self._frames("ycbcr")):
            for rows, cols in everything if i == 0 else changed:  # even bounds, all of them
                half = slice(rows.start // 2, rows.stop // 2), slice(cols.start // 2,
                                                                      cols.stop // 2)
                to_yuv420p(frame[rows, cols], y[rows, cols], cb[half], cr[half])
            yield out


def render_frames(clip: Clip, views: Sequence[str] = ("front", "side"),
                  size: tuple[int, int] = (320, 240), fps: float | None = None
                  ) -> Iterator[np.ndarray]:
    """(h, w * len(views), 3) uint8 RGB frames, one panel per view; size is (w, h) per view.

    fps resamples in time (nearest frame); None keeps the clip's own frame rate. The still
    picture is drawn once; each frame redraws only what moves.
    """
    anim = _Animation(clip, views, size, fps)  # bad arguments fail here, not at next()
    return (f.copy() for f in anim.frames("rgb"))


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[str]:
    """A temporary name beside path (same suffix: writers pick the format from it) that
    becomes path only when the block succeeds, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix,
                               dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a media server may run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_animation(clip: Clip, path: str | Path, fps: float | None = None,
                    views: Sequence[str] = ("front", "side"),
                    size: tuple[int, int] = (320, 240)) -> Path:
    """Write an .mp4 (H.264 via imageio-ffmpeg, yuv420p) or a looping .gif, atomically.

    MP4 keeps the clip's frame rate (or fps). GIF frame delays are whole 1/100 s, so its rate
    is snapped to 100/k frames/s (30 fps -> 25 fps, resampled in time, so durations stay true).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"{path}: animations are .mp4 or .gif (got {suffix or 'no suffix'!r})")
    if suffix == ".gif":
        fps = 100.0 / max(2, int(np.ceil(100.0 / (fps or clip.fps) - 1e-9)))
        frames = render_frames(clip, views=views, size=size, fps=fps)
    else:
        anim = _Animation(clip, views, size, fps)
    with _atomic(path) as tmp:
        if suffix == ".gif":
            # Pillow (imageio's own GIF backend) directly: quantising each frame to a small
            # palette here, without dithering, is 5x faster than letting the writer do it and
            # keeps one byte per pixel in memory instead of three.
            from PIL import Image

            quantised = (Image.fromarray(f).quantize(64, method=Image.Quantize.FASTOCTREE,
                                                     dither=Image.Dither.NONE) for f in frames)
            first = next(quantised)
            first.save(tmp, format="GIF", save_all=True, append_images=quantised,
                       duration=round(1000 / fps), loop=0)
            return path
        if anim.h % 2 == 0 and anim.W % 2 == 0:
            _write_mp4(anim.yuv420p(), "yuv420p", anim.W, anim.h, anim.fps, tmp)
        else:  # yuv420p wants even sizes: pad the RGB frames by a row or column
            pad = ((0, anim.h % 2), (0, anim.W % 2), (0, 0))
            _write_mp4((np.pad(f, pad, "edge") for f in anim.frames("rgb")), "rgb24",
                       anim.W + anim.W % 2, anim.h + anim.h % 2, anim.fps, tmp)
    return path


def _write_mp4(frames: Iterator[np.ndarray], pix_fmt: str, w: int, h: int, fps: float,
               path: str) -> None:
    """H.264 (yuv420p, BT.601 video range) through ffmpeg's stdin (imageio-ffmpeg's binary),
    with the X264 settings: the encoder is most of a clip's cost."""
    import subprocess

    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
           "-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{w}x{h}", "-r", repr(float(fps)),
           "-i", "-", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", *X264,
           "-colorspace", "smpte170m", "-color_range", "tv", "-movflags", "+faststart", path]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        try:
            for frame in frames:
                proc.stdin.write(frame)  # written before the next frame is drawn over it
        except BrokenPipeError:
            pass  # ffmpeg stopped: its message follows
        finally:
            proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0:
            raise OSError(f"ffmpeg could not write {path} (exit {proc.returncode}): "
                          f"{err[-500:] or 'no message'}")
    finally:
        if proc.poll() is None:  # an error or an interrupt on our side
            proc.kill()
            proc.wait()
        proc.stderr.close()


def _save_png(fig: Figure, path: str | Path) -> Path:
    with _atomic(Path(path)) as tmp:
        FigureCanvasAgg(fig).print_png(tmp)
    return Path(path)


def plot_filmstrip(clip: Clip, path: str | Path, n: int = 8,
                   panel: tuple[int, int] = (150, 240)) -> Path:
    """A PNG of n evenly spaced poses: front views on the top row, side views below.

    Every panel shares one scale and is centred on its pose's pelvis; the floor ticks (0.5 m)
    are fixed in the world, so travel shows as ticks shifting under the figure.
    """
    if clip.num_frames == 0:
        raise ValueError(f"clip {clip.clip_id!r} has no frames to draw")
    n = max(1, min(int(n), clip.num_frames))
    idx = np.round(np.linspace(0, clip.num_frames - 1, n)).astype(int)
    pos = _clean_positions(clip)[idx]
    pw, ph = panel
    head, views = 34, ("front", "side")
    W, H = n * pw, 2 * ph + head
    scale, ylim, centres = _framing(pos, views, pw, ph, follow_frames=None)
    fig = Figure(figsize=((W + 0.5) / DPI, (H + 0.5) / DPI), dpi=DPI, facecolor="white")
    lw = float(np.clip(2.0 * ph / 240, 1.0, 4.0))
    for r, v in enumerate(views):
        for k in range(n):
            ax = fig.add_axes((k / n, (ph * (1 - r)) / H, 1 / n, ph / H))
            _Panel(ax, pos, v, scale, ylim, lw, animated=False).show(k, centres[v][k],
                                                                      pw * scale / 2)
            ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False,
                                   ec="#dddddd", lw=1))
            if r == 0:
                ax.text(0.5, 1.0 + 2 / ph, f"{idx[k] / clip.fps:.2f} s", transform=ax.transAxes,
                        ha="center", va="bottom", fontsize=7, color="#444444")
            if k == 0:
                ax.text(0.04, 0.97, v, transform=ax.transAxes, fontsize=7, color="#888888",
                        va="top")
    fig.text(4 / W, 1 - 3 / H, f"{_label(clip)} · {clip.duration_s:.1f} s", fontsize=8,
             va="top", ha="left", color="#222222")
    for k, side in enumerate(("left", "right")):  # in the front view's order: right on the left
        fig.text(1 - (4 + 26 * k) / W, 1 - 3 / H, side, color=COLOURS[side], fontsize=8,
                 va="top", ha="right")
    return _save_png(fig, path)
