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

Animations are drawn for speed (review renders one per clip): the static picture once, then per
frame only what moves, straight onto the Agg renderer (`_Sprite`, the same pixels as the
artists of `_Panel`); MP4 frames go to ffmpeg as Y'CbCr 4:2:0, converted here only where a frame
can differ from the static picture.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from matplotlib import __version__ as mpl_version
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.markers import MarkerStyle
from matplotlib.patches import Rectangle
from matplotlib.path import Path as MplPath
from matplotlib.transforms import Bbox, IdentityTransform

from eai.toolkit.clip import Clip
from eai.toolkit.skeleton import BONES, CANONICAL_JOINTS, JOINT_INDEX

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


def _gc(renderer, colour: str, width: float, cap: str, clip):
    g = renderer.new_gc()
    g.set_foreground(colour)
    g.set_linewidth(width)  # points, as artists give it
    g.set_capstyle(cap)
    g.set_joinstyle("round")
    g.set_antialiased(True)
    g.set_clip_rectangle(clip)
    return g


class _Sprite:
    """One view of an animation, drawn straight onto the Agg renderer.

    The picture of a `_Panel` (colours, widths, caps, order, clipping, the head marker, the
    floor and its ticks), pixel for pixel, without artists: every frame's coordinates are
    converted to pixels up front with numpy, and a frame is a handful of renderer calls (going
    through Line2D, draw_artist and set_xlim cost about ten times more than the pixels). It
    also knows which pixels each frame can touch (`rects`), so only those need converting.
    """

    def __init__(self, renderer, box, ylim, pos: np.ndarray, view: str, scale: float, centres,
                 half: float, lw: float):
        sx, sy = box.width / (2 * half), box.height / (ylim[1] - ylim[0])
        x_off = box.x0 - (np.asarray(centres, dtype=np.float64) - half) * sx  # per frame
        ty = box.y0 - ylim[0] * sy  # display y of world y = 0, the floor
        self.renderer, self.box, self.sx, self.x_off, self.floor = renderer, box, sx, x_off, ty
        self.moving = bool(np.ptp(x_off) > 0) if len(x_off) else False  # the camera follows
        bones = np.array(BONES)
        xy = np.stack([pos[:, bones[:, 0]], pos[:, bones[:, 1]]], 2)[..., [VIEW_AXIS[view], 1]]
        xy[..., 0] = xy[..., 0] * sx + x_off[:, None, None]  # (T, bones, 2 ends, x y) in pixels
        xy[..., 1] = xy[..., 1] * sy + ty
        # Side view: the right limbs are near the camera, draw them over the trunk and the left.
        order = ("left", "trunk", "right") if view == "side" else ("trunk", "left", "right")
        self.groups = []
        for group in order:
            if not GROUPS[group]:
                continue
            ends = xy[:, [BONES.index(b) for b in GROUPS[group]]].reshape(len(pos), -1, 2)
            path = MplPath(ends[0].copy(), np.tile(_SEGMENT, len(GROUPS[group])))
            self.groups.append((_gc(renderer, COLOURS[group], lw, "round", box), ends, path))
        head = pos[:, JOINT_INDEX["head"], [VIEW_AXIS[view], 1]]
        self.head = np.stack([head[:, 0] * sx + x_off, head[:, 1] * sy + ty], -1)
        self.head_gc = _gc(renderer, COLOURS["trunk"], lw * 0.8, "butt", box)
        marker, px = MarkerStyle("o"), renderer.points_to_pixels(0.2 / scale * 72 / DPI)
        self.marker = (marker.get_path(), marker.get_transform().scale(px, px))  # 20 cm head
        xs = pos[..., VIEW_AXIS[view]][np.isfinite(pos[..., VIEW_AXIS[view]])]
        lo, hi = (xs.min() - 5, xs.max() + 5) if xs.size else (-5.0, 5.0)  # 5 m: beyond a window
        self.ticks = np.arange(np.floor(lo / TICK_M), np.ceil(hi / TICK_M) + 1) * TICK_M
        self.tick_y = (ty, -4 * scale * sy + ty)
        self.tick_gc = _gc(renderer, "#999999", 1.0, "butt", box)
        self.head_ok = np.isfinite(self.head).all(-1)
        self.head_path = MplPath(self.head[:1].copy())
        # Per frame, the pixels the figure can touch, as two rectangles (upper body with the
        # head, lower body: a walker's legs spread where the arms do not): bone ends and the
        # head, widened by half a line (round caps), the head's radius and edge, and a pixel of
        # antialiasing. yuv420p converts only these.
        lw_px = renderer.points_to_pixels(lw)
        lower = np.array([CANONICAL_JOINTS[p] == "pelvis" or CANONICAL_JOINTS[c].endswith(
            ("hip", "knee", "ankle", "foot")) for p, c in BONES])
        head_r = px / 2 + lw_px * 0.4
        self.rects = [[] for _ in range(len(pos))]
        for part, extra in ((~lower, self.head), (lower, None)):
            pts = xy[:, part].reshape(len(pos), -1, 2)
            pad = np.full(pts.shape[1], lw_px / 2)
            if extra is not None:
                pts, pad = np.concatenate([pts, extra[:, None]], 1), np.append(pad, head_r)
            lo = np.where(np.isfinite(pts), pts - pad[:, None], np.inf).min(1) - 2.0
            hi = np.where(np.isfinite(pts), pts + pad[:, None], -np.inf).max(1) + 2.0
            for i, r in enumerate(_pixel_rects(lo, hi, renderer.height, renderer.width)):
                if r is not None:
                    self.rects[i].append(r)
        if self.moving:  # the floor ticks scroll
            strip = _pixel_rects(np.array([[box.x0, self.tick_y[1] - 2]]),
                                 np.array([[box.x1, ty + 2]]), renderer.height, renderer.width)[0]
            for r in self.rects:
                r.append(strip)
        self.rects = [_merged(r) for r in self.rects]

    def draw_static(self) -> None:
        """The floor: a grey band below y = 0 and its line (axhspan and axhline in _Panel),
        and the ticks too when the camera stands still."""
        b, r = self.box, self.renderer
        band = _gc(r, "#eeeeee", 0.0, "butt", b)
        r.draw_path(band, MplPath([(b.x0, b.y0), (b.x1, b.y0), (b.x1, self.floor),
                                   (b.x0, self.floor), (b.x0, b.y0)], closed=True),
                    _IDENTITY, band.get_rgb())
        r.draw_path(_gc(r, "#999999", 1.0, "projecting", b),
                    MplPath([(b.x0, self.floor), (b.x1, self.floor)]), _IDENTITY)
        if not self.moving and len(self.x_off):
            self._ticks(0)

    def _ticks(self, i: int) -> None:
        x = self.ticks * self.sx + self.x_off[i]
        x = x[(x > self.box.x0 - 2) & (x < self.box.x1 + 2)]
        if x.size:
            v = np.empty((2 * x.size, 2))
            v[:, 0] = np.repeat(x, 2)
            v[0::2, 1], v[1::2, 1] = self.tick_y
            self.renderer.draw_path(self.tick_gc, MplPath(v, np.tile(_SEGMENT, x.size)),
                                    _IDENTITY)

    def draw(self, i: int) -> None:
        r = self.renderer
        if self.moving:
            self._ticks(i)
        # One Path per group, its vertices overwritten in place each frame: building a Path
        # costs more than drawing it. (Our own objects; the renderer reads them when called.)
        for gc, xy, path in self.groups:
            path.vertices[...] = xy[i]
            r.draw_path(gc, path, _IDENTITY)
        if self.head_ok[i]:
            self.head_path.vertices[0] = self.head[i]
            r.draw_markers(self.head_gc, *self.marker, self.head_path, _IDENTITY,
                           (1.0, 1.0, 1.0, 1.0))


def _merged(rects: list) -> list:
    """Rectangles (row0, row1, col0, col1) with overlapping pairs joined where converting
    their union costs less than converting both (a call costs about 2,000 pixels' worth)."""
    def area(r):
        return (r[1] - r[0]) * (r[3] - r[2])

    rects = list(rects)
    k = 0
    while k < len(rects):
        for j in range(k + 1, len(rects)):
            a, b = rects[k], rects[j]
            u = (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))
            if area(u) <= area(a) + area(b) + 2000:
                rects[k] = u
                del rects[j]
                break
        else:
            k += 1
    return rects


def _pixel_rects(lo: np.ndarray, hi: np.ndarray, height: int, width: int) -> list:
    """Display rectangles (rows of lo and hi: x0, y0 and x1, y1; y up) as buffer slices
    (row0, row1, col0, col1), snapped outward to even bounds (the 2x2 chroma grid); None where
    a rectangle is empty or not finite."""
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(lo).all(1) & np.isfinite(hi).all(1) & (hi > lo).all(1)
        lo, hi = np.where(ok[:, None], lo, 0), np.where(ok[:, None], hi, 0)
    r0 = np.clip(np.floor(height - hi[:, 1]) // 2 * 2, 0, height).astype(int)
    r1 = np.clip(np.ceil(np.ceil(height - lo[:, 1]) / 2) * 2, 0, height).astype(int)
    c0 = np.clip(np.floor(lo[:, 0]) // 2 * 2, 0, width).astype(int)
    c1 = np.clip(np.ceil(np.ceil(hi[:, 0]) / 2) * 2, 0, width).astype(int)
    ok &= (r1 > r0) & (c1 > c0)
    return [(a, b, c, d) if k else None for a, b, c, d, k in
            zip(r0.tolist(), r1.tolist(), c0.tolist(), c1.tolist(), ok.tolist())]


_IDENTITY = IdentityTransform()
_SEGMENT = np.array([MplPath.MOVETO, MplPath.LINETO], dtype=MplPath.code_type)
# The clock's pixels by (text, frame size, the pixels under it): clips at 30 fps all show the
# same times, and drawing text costs more than the rest of a frame.
_CLOCK_CACHE: dict[tuple[str, int, int, bytes], np.ndarray] = {}
_CLOCK_CACHE_MAX = 5000  # about 13 MB; a minute at 30 fps shows 1,800 times
CLOCK_W = 46  # pixels at the top right that the clock may use (the colour key ends left of it)
# RGB -> Y'CbCr, BT.601 with video range (what ffmpeg's own conversion and players assume for
# video of this size): RGBA -> Y' weights, 2x2 RGBA sum -> Cb, Cr weights; +0.5 rounds.
_YCC = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0],
                 [112.0, -93.786, -18.214]], dtype=np.float32).T / 255
_Y4 = np.append(_YCC[:, 0], 0).astype(np.float32)
_CC4 = np.vstack([_YCC[:, 1:] / 4, [0, 0]]).astype(np.float32)
_YCC_OFF = np.array([16.5, 128.5, 128.5], dtype=np.float32)
# The clock's corner as Y, Cb, Cr, by the same key as _CLOCK_CACHE
_CLOCK_YUV: dict[tuple[str, int, int, bytes], tuple[np.ndarray, ...]] = {}


class _Animation:
    """The frames of one clip's animation. The static picture (texts, floor) is drawn once;
    each frame restores it and draws the figure, the moving floor ticks and the clock."""

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
        # +0.5 px: Agg truncates the float canvas size, so this lands exactly on W x h.
        fig = Figure(figsize=((W + 0.5) / DPI, (h + 0.5) / DPI), dpi=DPI, facecolor="white")
        canvas = FigureCanvasAgg(fig)
        lw = float(np.clip(2.0 * h / 240, 1.0, 4.0))
        n = len(views)
        for k, v in enumerate(views):  # where a _Panel's axes would put its label
            fig.text((k + 0.02) / n, 0.97 * ah / h, v, fontsize=6.5, color="#888888", va="top")
        for k, side in enumerate(("left", "right")):  # the colour key, as the front view sees it
            fig.text(1 - (50 + 30 * k) / W, 1 - 2 / h, side, color=COLOURS[side], fontsize=7,
                     va="top", ha="right")
        title, room = _label(clip), max(8, int((W - 110) / 5.2))  # characters that fit
        title = title if len(title) <= room else "…" + title[-(room - 1):]
        fig.text(3 / W, 1 - 2 / h, title, fontsize=7, va="top", ha="left", color="#222222")
        self.clock = fig.text(1 - 3 / W, 1 - 2 / h, "", fontsize=7, va="top", ha="right",
                              color="#222222", animated=True)
        canvas.draw()  # the texts; no Axes: building two costs more than a clip's frames
        renderer, fw, fh = canvas.get_renderer(), fig.bbox.width, fig.bbox.height
        self.sprites = []
        for k, v in enumerate(views):
            box = Bbox.from_extents(k / n * fw, 0.0, (k + 1) / n * fw, ah / h * fh)
            self.sprites.append(_Sprite(renderer, box, ylim, pos[indices], v, scale,
                                        centres[v][indices], w * scale / 2, lw))
            self.sprites[-1].draw_static()
        self.fig, self.canvas, self.renderer = fig, canvas, renderer
        self.background = canvas.copy_from_bbox(fig.bbox)
        self.buf = np.asarray(canvas.buffer_rgba())  # (h, W, 4), the canvas itself
        self.n, self.h, self.W = len(indices), h, W
        # the clock's corner, on even bounds (the 2x2 chroma grid), and what it is drawn over
        self.corner = (slice(0, TITLE_PX + TITLE_PX % 2), slice(max(0, (W - CLOCK_W) // 2 * 2), W))
        self._under = self.buf[self.corner].tobytes()
        self.clock_key: tuple[str, int, int, bytes] | None = None  # that of the clock shown

    def _clock(self, text: str) -> None:
        key = (text, self.W, self.h, self._under)
        block = _CLOCK_CACHE.get(key)
        self.clock_key = key if block is not None else None
        if block is not None:
            self.buf[self.corner] = block
            return
        self.clock.set_text(text)
        self.fig.draw_artist(self.clock)
        box = self.clock.get_window_extent(self.renderer)
        if box.x0 >= self.W - CLOCK_W and box.y0 >= self.h - TITLE_PX:  # all in the corner
            if len(_CLOCK_CACHE) >= _CLOCK_CACHE_MAX:
                _CLOCK_CACHE.clear()
                _CLOCK_YUV.clear()
            _CLOCK_CACHE[key] = self.buf[self.corner].copy()
            self.clock_key = key

    def _draw(self, i: int) -> None:
        self.canvas.restore_region(self.background)
        for s in self.sprites:
            s.draw(i)
        self._clock(f"{i / self.fps:5.2f} s")

    def rgba(self) -> Iterator[np.ndarray]:
        """Each frame as the canvas's (h, W, 4) buffer, valid until the next is drawn."""
        for i in range(self.n):
            self._draw(i)
            yield self.buf

    def yuv420p(self) -> Iterator[np.ndarray]:
        """Each frame as planar Y'CbCr 4:2:0 (one flat uint8 array, reused), for even sizes.

        Converting here costs less than sending four bytes a pixel through the pipe for ffmpeg
        to convert, because little changes: the background is converted once, and a frame
        only where it can have drawn (the sprites' rectangles) and the clock (cached by text).
        """
        h, W = self.h, self.W
        if h % 2 or W % 2:
            raise ValueError(f"yuv420p needs even sizes, got {W} x {h}")
        out = np.empty(h * W * 3 // 2, np.uint8)
        planes = (out[:h * W].reshape(h, W), out[h * W:h * W * 5 // 4].reshape(h // 2, W // 2),
                  out[h * W * 5 // 4:].reshape(h // 2, W // 2))
        rows, cols = self.corner
        corner = (rows.start, rows.stop, cols.start, cols.stop)
        chroma = (slice(rows.start // 2, rows.stop // 2), slice(cols.start // 2, cols.stop // 2))
        # The products below are small: BLAS's thread pool would only spin (on a busy machine
        # that costs more than the arithmetic), so BLAS runs on this thread meanwhile.
        with _one_blas_thread():
            _to_yuv(self.buf, planes, 0, h, 0, W)
            still = out.copy()
            for i in range(self.n):
                self._draw(i)
                out[:] = still
                for s in self.sprites:
                    for r0, r1, c0, c1 in s.rects[i]:
                        _to_yuv(self.buf, planes, r0, r1, c0, c1)
                clock = _CLOCK_YUV.get(self.clock_key)
                if clock is None:
                    _to_yuv(self.buf, planes, *corner)
                    if self.clock_key is not None:
                        _CLOCK_YUV[self.clock_key] = (planes[0][rows, cols].copy(),
                                                      planes[1][chroma].copy(),
                                                      planes[2][chroma].copy())
                else:
                    planes[0][rows, cols], planes[1][chroma], planes[2][chroma] = clock
                yield out


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits  # comes with scikit-learn
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _to_yuv(rgba: np.ndarray, planes, r0: int, r1: int, c0: int, c1: int) -> None:
    """Convert rgba[r0:r1, c0:c1] (even bounds) into the Y, Cb, Cr planes; chroma from the
    mean of each 2x2 block. The block sums add whole pixels at once: a pixel widened to four
    16-bit lanes is one 64-bit word (sums of four bytes never carry into the next lane)."""
    r, c = r1 - r0, c1 - c0
    u = rgba[r0:r1, c0:c1].astype(np.uint16)  # RGBA; alpha weighs nothing below
    planes[0][r0:r1, c0:c1] = (u.reshape(-1, 4) @ _Y4 + _YCC_OFF[0]).reshape(r, c)
    px = u.view(np.uint64).reshape(r, c)
    px = px[0::2] + px[1::2]
    px = px[:, 0::2] + px[:, 1::2]
    cc = px.view(np.uint16).reshape(-1, 4).astype(np.float32) @ _CC4 + _YCC_OFF[1:]
    planes[1][r0 // 2:r1 // 2, c0 // 2:c1 // 2] = cc[:, 0].reshape(r // 2, c // 2)
    planes[2][r0 // 2:r1 // 2, c0 // 2:c1 // 2] = cc[:, 1].reshape(r // 2, c // 2)


def render_frames(clip: Clip, views: Sequence[str] = ("front", "side"),
                  size: tuple[int, int] = (320, 240), fps: float | None = None
                  ) -> Iterator[np.ndarray]:
    """(h, w * len(views), 3) uint8 RGB frames, one panel per view; size is (w, h) per view.

    fps resamples in time (nearest frame); None keeps the clip's own frame rate. The static
    picture is drawn once; each frame restores it and redraws only what moves.
    """
    anim = _Animation(clip, views, size, fps)  # bad arguments fail here, not at next()
    return (f[..., :3].copy() for f in anim.rgba())


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
        else:  # yuv420p wants even sizes: pad the RGBA frames by a row or column
            pad = ((0, anim.h % 2), (0, anim.W % 2), (0, 0))
            _write_mp4((np.pad(f, pad, "edge") for f in anim.rgba()), "rgba",
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
