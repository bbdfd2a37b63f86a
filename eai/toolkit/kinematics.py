"""Kinematic helpers shared by the descriptors: derivatives, smoothing, the body's heading frame,
angles, periodicity, body-size measures and NaN-aware reductions.

Conventions (DESIGN.md): positions are (T, J, 3) or (T, 3) arrays in metres, time first, Y up,
right-handed; the subject's left is +X when facing +Z. The *heading frame* of a frame is the
body's own horizontal frame: `left` (the direction from the right to the left hip / shoulder,
made horizontal), `up` (+Y) and `forward = left x up`. Angles are in degrees. Every function is
vectorised over frames; missing samples are NaN and propagate, and the reductions at the end
ignore them (a fast path is taken when nothing is missing).
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import uniform_filter1d

from eai.toolkit.skeleton import JOINT_INDEX as _J

UP = np.array([0.0, 1.0, 0.0])


# --- NaN-aware reductions: plain numpy first, the nan* variants only when something is missing --

def _reduce(x: np.ndarray, fast, nan_aware) -> float:
    """fast(x), or nan_aware(x) (warnings silenced) when fast met a NaN; NaN for empty x."""
    if not np.size(x):
        return math.nan
    value = float(fast(x))
    if not math.isnan(value):
        return value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(nan_aware(x))


def nanmean(x: np.ndarray) -> float:
    return _reduce(x, np.mean, np.nanmean)


def nanstd(x: np.ndarray) -> float:
    return _reduce(x, np.std, np.nanstd)


def nanmedian(x: np.ndarray) -> float:
    if not np.size(x):
        return math.nan
    m = float(np.median(x))
    if not math.isnan(m):
        return m
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmedian(x))


def nanpercentile(x: np.ndarray, q, axis: int | None = None) -> np.ndarray:
    """Percentiles (linear interpolation, like np.percentile) ignoring NaN; NaN where a slice
    has no finite value. One sort instead of np.percentile's machinery: several times faster
    on the short arrays of one clip. q: a number or a sequence (then stacked first)."""
    a = np.asarray(x, dtype=np.float64)
    if axis is None:
        a = a.reshape(-1)
        axis = 0
    a = np.sort(np.moveaxis(a, axis, 0), axis=0)  # NaN sorts last
    scalar_q = np.ndim(q) == 0
    qs = np.atleast_1d(np.asarray(q, dtype=np.float64)) / 100.0
    m = a.shape[0]
    if m and not np.isnan(a[-1]).any():  # nothing missing: the same index for every slice
        pos = qs * (m - 1)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, m - 1)
        frac = (pos - lo).reshape((-1,) + (1,) * (a.ndim - 1))
        out = a[lo] + (a[hi] - a[lo]) * frac
        return out[0] if scalar_q else out
    n = m - np.isnan(a).sum(axis=0)  # finite count per slice
    qs = qs.reshape((-1,) + (1,) * (a.ndim - 1))
    pos = qs * np.maximum(n - 1, 0)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    frac = pos - lo
    if m == 0:
        out = np.full(np.broadcast_shapes(pos.shape, a.shape[1:]), math.nan)
    else:
        lo_v = np.take_along_axis(a, np.broadcast_to(lo, pos.shape), axis=0)
        hi_v = np.take_along_axis(a, np.broadcast_to(hi, pos.shape), axis=0)
        out = np.where(n > 0, lo_v + (hi_v - lo_v) * frac, math.nan)
    return out[0] if scalar_q else out


def norm(v: np.ndarray) -> np.ndarray:
    """Euclidean norm over the last axis (cheaper than np.linalg.norm on small arrays)."""
    return np.sqrt(np.einsum("...i,...i->...", v, v))


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis (broadcasting; cheaper than np.cross on small arrays)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


# --- derivatives and smoothing ---------------------------------------------------------------

def odd_window(fps: float, seconds: float, num_frames: int, minimum: int) -> int:
    """An odd window length of about `seconds`, at least `minimum`, at most num_frames."""
    w = max(minimum, round(seconds * fps) | 1)
    if w > num_frames:
        w = num_frames if num_frames % 2 else num_frames - 1
    return w


@lru_cache(maxsize=64)
def _savgol_operator(window: int, polyorder: int, deriv: int) -> np.ndarray:
    """(window, window) matrix: row t is the deriv-th derivative, at sample t of a window, of the
    least-squares polynomial of degree `polyorder` through the window's samples (unit spacing).
    The centre row is the classic Savitzky-Golay filter; the other rows handle the edges exactly
    like scipy's mode="interp", so a linear motion keeps a constant velocity to the last frame."""
    pos = np.arange(window, dtype=np.float64)
    vander = pos[:, None] ** np.arange(polyorder + 1)[None, :]
    fit = np.linalg.pinv(vander)  # (p+1, w): polynomial coefficients from samples
    diff = np.zeros((window, polyorder + 1))
    for k in range(deriv, polyorder + 1):
        diff[:, k] = math.factorial(k) / math.factorial(k - deriv) * pos ** (k - deriv)
    return diff @ fit


def savgol(x: np.ndarray, fps: float, *, window_s: float, polyorder: int, deriv: int = 0
           ) -> np.ndarray:
    """Savitzky-Golay smoothing / differentiation along axis 0, in units per second**deriv.

    x: (T, ...) array. The window is about window_s seconds (odd, shrunk for short clips). With
    fewer than polyorder + 2 frames the derivative is NaN (not enough samples to fit).
    """
    t = x.shape[0]
    w = odd_window(fps, window_s, t, polyorder + 2)
    if t < polyorder + 2 or w <= polyorder:
        return np.full(x.shape, math.nan)
    op = _savgol_operator(w, polyorder, deriv)
    h = w // 2
    flat = x.reshape(t, -1)
    out = np.empty_like(flat, dtype=np.float64)
    # interior: one sliding dot product with the centre row; edges: the fitted end polynomials
    out[h:t - h] = sliding_window_view(flat, w, axis=0) @ op[h]
    out[:h] = op[:h] @ flat[:w]
    out[t - h:] = op[h + 1:] @ flat[t - w:]
    return (out * fps ** deriv).reshape(x.shape)


def moving_average(x: np.ndarray, fps: float, window_s: float) -> np.ndarray:
    """Centred moving average along axis 0 (edges repeat the end samples)."""
    w = max(1, round(window_s * fps))
    if w <= 1:
        return x
    return uniform_filter1d(x, size=min(w, x.shape[0]), axis=0, mode="nearest")


# --- the heading frame and angles ------------------------------------------------------------

def heading_axes(positions: np.ndarray, joint_mask: np.ndarray, fps: float,
                 smooth_s: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(left, forward): (T, 3) horizontal unit vectors of the body's own heading per frame.

    Left is the sum of the right-to-left hip and shoulder vectors (whichever pairs exist),
    made horizontal and smoothed over about smooth_s seconds so that the pelvis' and shoulders'
    rotation within a gait cycle does not count as a change of heading. forward = left x up.
    NaN where neither pair is available.
    """
    pairs = [(a, b) for a, b in (("l_hip", "r_hip"), ("l_shoulder", "r_shoulder"))
             if joint_mask[_J[a]] and joint_mask[_J[b]]]
    t = positions.shape[0]
    if not pairs:
        nan = np.full((t, 3), math.nan)
        return nan, nan
    lat = np.zeros((t, 3))
    for a, b in pairs:
        d = positions[:, _J[a]] - positions[:, _J[b]]
        lat += d / np.maximum(norm(d), 1e-9)[:, None]
    lat[:, 1] = 0.0
    if np.isnan(lat).any():  # a gap in one frame: borrow the nearest good heading
        ok = ~np.isnan(lat).any(axis=1)
        if not ok.any():
            nan = np.full((t, 3), math.nan)
            return nan, nan
        idx = np.where(ok, np.arange(t), 0)
        np.maximum.accumulate(idx, out=idx)
        first = np.argmax(ok)
        idx[:first] = first
        lat = lat[idx]
    lat = moving_average(lat, fps, smooth_s)
    left = lat / np.maximum(norm(lat), 1e-9)[:, None]
    fwd = np.stack([-left[:, 2], np.zeros(t), left[:, 0]], axis=1)  # left x up
    return left, fwd


def to_heading_frame(vectors: np.ndarray, left: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """Vectors (T, ..., 3) expressed as (left, up, forward) components of each frame's heading."""
    t = vectors.shape[0]
    flat = vectors.reshape(t, -1, 3)
    out = np.empty_like(flat, dtype=np.float64)
    np.einsum("tjk,tk->tj", flat, left, out=out[..., 0])
    out[..., 1] = flat[..., 1]
    np.einsum("tjk,tk->tj", flat, fwd, out=out[..., 2])
    return out.reshape(vectors.shape)


def pitch_deg(vec: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """Inclination of vectors (T, 3) from vertical in the sagittal plane; positive = forward."""
    return np.degrees(np.arctan2((vec * fwd).sum(-1), vec[..., 1]))


def roll_deg(vec: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Inclination of vectors (T, 3) from vertical in the frontal plane; positive = to the left."""
    return np.degrees(np.arctan2((vec * left).sum(-1), vec[..., 1]))


def yaw_deg(vec: np.ndarray) -> np.ndarray:
    """Heading angle of (T, 3) vectors about +Y, unwrapped over time (degrees)."""
    return np.degrees(np.unwrap(np.arctan2(vec[..., 0], vec[..., 2]), axis=0))


def angle_between_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between vectors a and b (..., 3) in degrees, numerically stable (atan2)."""
    return np.degrees(np.arctan2(norm(cross(a, b)), (a * b).sum(-1)))


def flexion_deg(positions: np.ndarray, proximal: str, middle: str, distal: str) -> np.ndarray:
    """(T,) flexion at `middle`: 0 when the limb is straight, growing as it bends."""
    p, m, d = (positions[:, _J[n]] for n in (proximal, middle, distal))
    return angle_between_deg(m - p, d - m)


# --- periodicity ----------------------------------------------------------------------------

def autocorrelation_peak(signal: np.ndarray, fps: float, min_lag_s: float, max_lag_s: float
                         ) -> tuple[float, float]:
    """(strength, period in seconds) of the strongest repetition of a 1-D signal.

    The autocorrelation (FFT, mean removed, normalised to 1 at lag 0) is searched for local
    maxima between min_lag_s and max_lag_s (at most half the clip). The highest maximum of the
    biased estimate is chosen (it favours the fundamental period over its multiples) and its lag
    refined by a parabola through the peak; the strength is the unbiased value at that lag,
    clipped to [0, 1]. (0, NaN) when the autocorrelation has no peak in the range (no rhythm);
    (NaN, NaN) when the signal is flat, or the clip is too short to hold two periods of
    max_lag_s and no peak was found.
    """
    x = np.asarray(signal, dtype=np.float64)
    if np.isnan(x).any():
        x = np.where(np.isnan(x), np.nanmean(x) if (~np.isnan(x)).any() else 0.0, x)
    n = x.shape[0]
    lo = max(1, math.floor(min_lag_s * fps))
    hi = min(math.ceil(max_lag_s * fps), n // 2)
    if hi - lo < 2:
        return math.nan, math.nan
    x = x - x.mean()
    size = 1 << (2 * n - 1).bit_length()
    spec = np.fft.rfft(x, size)
    ac = np.fft.irfft(spec.real ** 2 + spec.imag ** 2, size)[:hi + 2]
    if ac[0] <= 1e-12 * n:
        return math.nan, math.nan
    ac = ac / ac[0]
    mid = ac[lo:hi + 1]
    peaks = (mid > ac[lo - 1:hi]) & (mid >= ac[lo + 1:hi + 2])
    if not peaks.any():  # no rhythm; unless the clip was too short to see one
        return (0.0 if hi >= max_lag_s * fps else math.nan), math.nan
    k = lo + int(np.argmax(np.where(peaks, mid, -np.inf)))
    a, b, c = ac[k - 1], ac[k], ac[k + 1]
    den = a - 2 * b + c
    lag = k + 0.5 * (a - c) / den if den < 0 else float(k)
    strength = float(np.clip(b * n / (n - k), 0.0, 1.0))
    return strength, lag / fps


# --- body size -------------------------------------------------------------------------------

def segment_length(positions: np.ndarray, a: str, b: str) -> float:
    """Median length of the a-b segment over frames (NaN when either joint is missing)."""
    return nanmedian(norm(positions[:, _J[a]] - positions[:, _J[b]]))


_LEG_TOP = [_J[n] for n in ("l_hip", "l_knee", "r_hip", "r_knee")]
_LEG_BOTTOM = [_J[n] for n in ("l_knee", "l_ankle", "r_knee", "r_ankle")]


def leg_length(positions: np.ndarray) -> float:
    """Median thigh + shin length, averaged over the legs that are present (metres)."""
    seg = norm(positions[:, _LEG_TOP] - positions[:, _LEG_BOTTOM])  # (T, 4)
    med = np.median(seg, axis=0)  # l thigh, l shin, r thigh, r shin
    if np.isnan(med).any():
        med = nanpercentile(seg, 50, axis=0)
    legs = med[0::2] + med[1::2]
    legs = legs[~np.isnan(legs)]
    return float(legs.mean()) if legs.size else math.nan
