"""Stick-figure animation frames drawn with OpenCV straight into uint8 frame buffers.

Review renders one animation per clip, so drawing a frame must cost a fraction of what the
H.264 encoder spends on it (about half a millisecond). Matplotlib's Agg, even called directly,
cost more than the encoder; OpenCV draws the same anti-aliased lines with round caps and
sub-pixel end points in microseconds. (OpenCV, as opencv-python-headless, comes with
label-studio-sdk, which eai requires.)

`ViewSprite` holds one view's moving parts in pixels for every frame and draws a frame of them
over a static picture made once per clip (render.py). It draws in whatever colour space the
buffer is in: anti-aliasing blends a colour into the pixels under it linearly and RGB ->
Y'CbCr is affine, so drawing Y'CbCr colours over a Y'CbCr picture gives the Y'CbCr of the RGB
drawing, and a video frame needs no colour conversion, only its chroma halved (`to_yuv420p`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

SHIFT = 4  # fractional bits of OpenCV's fixed-point coordinates: 1/16 px, so slow motion glides
_FAR = 1e5  # pixels; coordinates are clamped here so fixed point cannot overflow
# RGB -> Y'CbCr, BT.601 with video range: what ffmpeg and players assume for video of this size
_YCC = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0],
                 [112.0, -93.786, -18.214]], dtype=np.float32) / 255
_YCC_OFF = np.array([16.0, 128.0, 128.0], dtype=np.float32)
WHITE = "#ffffff"


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB as (..., 3) uint8 Y'CbCr (BT.601, video range), rounded."""
    ycc = np.asarray(rgb, dtype=np.float32) @ _YCC.T + (_YCC_OFF + 0.5)
    return ycc.astype(np.uint8)  # all values lie in 16..240: no clipping needed


def palette(colours: Sequence[str], space: str) -> dict[str, tuple[int, ...]]:
    """Hex colours as the pixel values OpenCV draws them with in `space` ("rgb" or "ycbcr")."""
    rgb = np.array([hex_rgb(c) for c in colours], dtype=np.uint8)
    values = rgb if space == "rgb" else rgb_to_ycbcr(rgb)
    return {c: tuple(int(x) for x in v) for c, v in zip(colours, values)}


def to_yuv420p(frame: np.ndarray, y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> None:
    """A (h, w, 3) Y'CbCr frame or part of one (even sizes) into the Y (h, w), Cb and Cr
    (h/2, w/2) planes of 4:2:0 video, in place: luma as it is, chroma the rounded mean of each
    2x2 block. (OpenCV's own RGB -> I420 conversion takes the block's top-left pixel instead,
    which makes thin coloured lines shimmer as they move.)"""
    half = cv2.resize(frame, (cb.shape[1], cb.shape[0]), interpolation=cv2.INTER_AREA)
    cv2.mixChannels([frame], [y], [0, 0])  # quicker than extractChannel, split or numpy here
    cv2.mixChannels([half], [cb, cr], [1, 0, 2, 1])


def stroke_width(thickness: int) -> float:
    """Pixels across an anti-aliased OpenCV line (coverage summed across it): its
    anti-aliasing widens it, and thicknesses 2k - 1 and 2k (k > 1) draw alike."""
    return 1.4 if thickness <= 1 else 2 * -(-thickness // 2) + 1.4


def _even_boxes(lo: np.ndarray, hi: np.ndarray, panel: tuple[slice, slice]
                ) -> list[tuple[slice, slice] | None]:
    """Boxes from lo to hi ((N, 2): x y in the panel) as image (rows, cols) slices: clipped
    to the panel, then widened to even bounds; None where a box is empty or not finite."""
    rows, cols = panel
    origin = np.array([cols.start, rows.start])
    size = np.array([cols.stop, rows.stop]) - origin
    a = np.clip(np.floor(lo), 0, size)  # NaN stays NaN
    b = np.clip(np.ceil(hi), 0, size)
    ok = np.isfinite(a).all(1) & np.isfinite(b).all(1) & (b > a).all(1)
    a = (np.where(ok[:, None], a, 0).astype(int) + origin) // 2 * 2
    b = np.where(ok[:, None], b, 0).astype(int) + origin
    b += b % 2
    return [(slice(y0, y1), slice(x0, x1)) if good else None
            for (x0, y0), (x1, y1), good in zip(a.tolist(), b.tolist(), ok.tolist())]


def _fixed(xy: np.ndarray) -> np.ndarray:
    """Pixel coordinates (x right, y down, a pixel's centre at +0.5) as OpenCV fixed point
    (a pixel's centre at its integer index); NaN becomes 0 (callers skip those points)."""
    xy = np.clip(np.nan_to_num(np.asarray(xy, dtype=np.float64) - 0.5), -_FAR, _FAR)
    return np.round(xy * (1 << SHIFT)).astype(np.int32, order="C")  # a frame's points together


class _Segments:
    """Line segments of every frame, ends (T, S, 2, 2) in pixels (x y of both ends), ready
    for OpenCV; a segment with an end not finite is left out of its frame."""

    def __init__(self, ends: np.ndarray):
        self.ends, self.ok = _fixed(ends), np.isfinite(ends).all(axis=(2, 3))
        self.all_ok = self.ok.all(1)  # the usual case: no selecting needed

    def draw(self, view: np.ndarray, i: int, colour: tuple[int, ...], thickness: int) -> None:
        ends = self.ends[i] if self.all_ok[i] else self.ends[i][self.ok[i]]
        if len(ends):
            cv2.polylines(view, ends, False, colour, thickness, cv2.LINE_AA, SHIFT)


class ViewSprite:
    """One view's moving parts, every frame in pixels of its panel (x right, y down).

    strokes: (colour, ends) in drawing order; ends (T, S, 2, 2): S bones of one colour, both
             ends, x y. A bone with an end not finite is not drawn.
    head:    (T, 2) centre of the head (a white disc edged in head_colour); NaN: not drawn.
    ticks:   (T, K) x of the floor ticks (NaN: none), TICK_PX long below the floor at row
             floor_y; drawn once with the floor (`draw_static`) unless ticks_move.
    """

    TICK_PX = 4.0

    def __init__(self, panel: tuple[slice, slice], strokes: Sequence[tuple[str, np.ndarray]],
                 head: np.ndarray, head_radius_px: float, floor_y: float, ticks: np.ndarray,
                 ticks_move: bool, line_px: float, head_colour: str, floor_colour: str,
                 band_colour: str):
        self.panel, self.floor_y, self.ticks_move = panel, floor_y, ticks_move
        self.thickness = min(range(1, 16), key=lambda t: abs(stroke_width(t) - line_px))
        self.strokes = [(colour, _Segments(ends)) for colour, ends in strokes]
        self.head, self.head_ok = _fixed(head), np.isfinite(head).all(-1)
        # The head: a disc in head_colour and a white one inside, its edge 0.8 times as thick
        # as a bone. Discs, not a thick circle: OpenCV draws that as a polygon of short lines
        # with round caps, which looks knobbly. Anti-aliasing widens a disc by about half a
        # pixel: taken off the radii (fixed point too).
        edge = 0.8 * stroke_width(self.thickness)
        self.head_discs = [(max(1, round((head_radius_px + d) * (1 << SHIFT))), colour)
                           for d, colour in ((edge / 2 - 0.5, head_colour),
                                             (-edge / 2 - 0.5, WHITE))]
        tops = np.full_like(ticks, floor_y)
        self.ticks = _Segments(np.stack([np.stack([ticks, tops], -1),
                                         np.stack([ticks, tops + self.TICK_PX], -1)], 2))
        self.floor_colour, self.band_colour = floor_colour, band_colour
        self._regions([ends for _, ends in strokes], head, head_radius_px + edge / 2)

    def _regions(self, ends: list[np.ndarray], head: np.ndarray, head_r: float) -> None:
        """Per frame, the parts of the image it draws on (`drawn`), and those that can differ
        from the frame before (`changed`: the union of both frames' boxes), as (rows, cols)
        slices on even bounds (the 2x2 grid of 4:2:0 chroma): the figure's box, and the
        floor's strip when the ticks move. (A figure's box is typically a tenth of a frame.)"""
        pts = np.concatenate([e.reshape(len(e), -1, 2) for e in ends], 1)  # (T, points, 2)
        margin = stroke_width(self.thickness) / 2 + 1  # round caps and anti-aliasing
        lo = np.fmin(np.fmin.reduce(pts, 1) - margin, head - head_r - 1)  # fmin: NaN only
        hi = np.fmax(np.fmax.reduce(pts, 1) + margin, head + head_r + 1)  # where all are
        width = self.panel[1].stop - self.panel[1].start
        strip = [b for b in _even_boxes(np.array([[0.0, self.floor_y - 2]]),
                                        np.array([[width, self.floor_y + self.TICK_PX + 2]]),
                                        self.panel) if b and self.ticks_move]
        boxes = lambda a, b: [([box] if box else []) + strip
                              for box in _even_boxes(a, b, self.panel)]
        self.drawn = boxes(lo, hi)
        before = lambda a: np.concatenate([a[:1], a[:-1]])  # frame 0: itself
        self.changed = boxes(np.fmin(lo, before(lo)), np.fmax(hi, before(hi)))

    def colours(self) -> set[str]:
        """Every colour drawn, for `palette`."""
        return {c for c, _ in self.strokes} | {c for _, c in self.head_discs} | {
            self.floor_colour, self.band_colour}

    def draw_static(self, image: np.ndarray, colours: Mapping[str, tuple[int, ...]]) -> None:
        """The floor: a band below it and its line, and its ticks when they stand still."""
        view = image[self.panel]
        view[max(0, int(np.ceil(self.floor_y - 0.5))):] = colours[self.band_colour]
        line = _Segments(np.array([[[[0.0, self.floor_y], [view.shape[1], self.floor_y]]]]))
        line.draw(view, 0, colours[self.floor_colour], 1)
        if not self.ticks_move:
            self.ticks.draw(view, 0, colours[self.floor_colour], 1)

    def draw(self, image: np.ndarray, i: int, colours: Mapping[str, tuple[int, ...]]) -> None:
        """Frame i's figure (and the ticks, when they move) onto image, clipped to the panel."""
        view = image[self.panel]  # a numpy view: OpenCV draws into it in place and clips to it
        if self.ticks_move:
            self.ticks.draw(view, i, colours[self.floor_colour], 1)
        for colour, bones in self.strokes:
            bones.draw(view, i, colours[colour], self.thickness)
        if self.head_ok[i]:
            centre = tuple(self.head[i].tolist())
            for radius, colour in self.head_discs:
                cv2.circle(view, centre, radius, colours[colour], -1, cv2.LINE_AA, SHIFT)
