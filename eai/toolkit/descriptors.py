"""Interpretable clip-level kinematic descriptors: the semantic level of the skeleton tokenizer
and the evidence every drafted explanation must be faithful to.

Each descriptor is a small registered object (`Descriptor`) with a snake_case `name`, a `unit`,
a `doc` (what it measures and why it relates to emotional body expression, with the literature
behind it) and a function of a shared per-clip context. Heights and lengths are divided by a
body-size measure (leg length = thigh + shin, trunk length = pelvis to neck, shoulder width) so
that clips of different people and datasets compare; the unit then says so, e.g.
"1 (per leg length)". Directions (forward, left) come from the body's own heading in each frame
(hips and shoulders), not from the world axes, so walking sideways or backwards reads right.

Missing joints (joint_mask false) make the descriptors that need them NaN; `compute_descriptors`
lists those in `.missing`. Short gaps (NaN frames in a present joint) are skipped by NaN-aware
reductions. Everything is vectorised over frames.

Levels: `DescriptorLevels` turns values into "low" / "typical" / "high" against a reference
population (terciles), per group (e.g. per action) when the group is large enough, so "slow"
means slow for that kind of movement.

References cited in the docs: Wallbott 1998 (Eur J Soc Psychol 28:879); Roether et al. 2009
(J Vision 9(6):15); Gross, Crane & Fredrickson 2012 (Cogn Emot 26:1); Kleinsmith &
Bianchi-Berthouze 2013 (IEEE TAC 4:15); Karg et al. 2013 (IEEE TAC 4:341); Laban effort
qualities (Laban & Ullmann 1971; Camurri et al. 2003 for quantity of motion and contraction).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from eai.toolkit import kinematics as K
from eai.toolkit.augment import mirror_clip, rotate_y, time_warp
from eai.toolkit.clip import Clip
from eai.toolkit.skeleton import JOINT_INDEX as _J

__all__ = [
    "DESCRIPTORS",
    "DESCRIPTORS_BY_NAME",
    "DESCRIPTOR_NAMES",
    "Descriptor",
    "DescriptorLevels",
    "DescriptorResult",
    "compute_descriptors",
    "descriptor_matrix",
    "mirror_clip",
    "rotate_y",
    "time_warp",
]

# Trunk (pelvis-neck) length as a fraction of leg length (thigh + shin), for adults; used only to
# stand in for a body-size measure whose joints are missing.
TRUNK_PER_LEG = 0.52
STILL_SPEED = 0.1  # m/s: mean joint speed below which a frame counts as still
STEPPING_RANGE = 0.1  # per leg length: the least ankle-separation range that counts as stepping

_WRISTS = ("l_wrist", "r_wrist")
_ARMS = ("l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist")
_LEGS = ("l_hip", "l_knee", "l_ankle", "r_hip", "r_knee", "r_ankle")


@dataclass(frozen=True)
class Descriptor:
    """One clip-level descriptor: fn(context) -> float; NaN when `joints` are not all present.

    mirror_sign: +1 when a left/right mirror image of the clip has the same value, -1 when the
    value changes sign (lateralised descriptors such as wrist_speed_asymmetry).
    """

    name: str
    unit: str
    doc: str
    joints: tuple[str, ...]
    fn: Callable[[_Context], float] = field(repr=False)
    mirror_sign: int = 1


@dataclass
class DescriptorResult:
    values: dict[str, float]  # every descriptor, in DESCRIPTOR_NAMES order; NaN if not computed
    missing: list[str]  # the descriptors that could not be computed (their joints are missing)

    def as_array(self) -> np.ndarray:
        return np.array([self.values[n] for n in DESCRIPTOR_NAMES], dtype=np.float64)


_REGISTRY: list[Descriptor] = []


def _descriptor(name: str, unit: str, joints: Sequence[str], doc: str, mirror_sign: int = 1):
    def register(fn):
        _REGISTRY.append(Descriptor(name, unit, " ".join(doc.split()), tuple(joints), fn,
                                    mirror_sign))
        return fn
    return register


class _Context:
    """Per-clip intermediate quantities, each computed at most once and only when asked for."""

    def __init__(self, clip: Clip):
        self.P = clip.positions.astype(np.float64)
        self.mask = clip.joint_mask
        self.fps = float(clip.fps)
        self.T = self.P.shape[0]
        self.duration = self.T / self.fps

    def j(self, name: str) -> np.ndarray:
        return self.P[:, _J[name]]

    # --- body size
    @cached_property
    def leg(self) -> float:
        leg = K.leg_length(self.P)
        if math.isnan(leg):
            leg = K.segment_length(self.P, "pelvis", "neck") / TRUNK_PER_LEG
        return leg

    @cached_property
    def trunk_len(self) -> float:
        t = K.segment_length(self.P, "pelvis", "neck")
        return K.leg_length(self.P) * TRUNK_PER_LEG if math.isnan(t) else t

    @cached_property
    def shoulder_width(self) -> float:
        return K.segment_length(self.P, "l_shoulder", "r_shoulder")

    # --- velocities
    @cached_property
    def vel(self) -> np.ndarray:  # (T, 19, 3) m/s, lightly smoothed (0.2 s quadratic fit)
        return K.savgol(self.P, self.fps, window_s=0.2, polyorder=2, deriv=1)

    @cached_property
    def speed(self) -> np.ndarray:  # (T, 19) m/s
        return K.norm(self.vel)

    @cached_property
    def root_hspeed(self) -> np.ndarray:  # (T,) horizontal pelvis speed over a 0.5 s fit
        v = K.savgol(self.j("pelvis")[:, [0, 2]], self.fps, window_s=0.5, polyorder=2, deriv=1)
        return K.norm(v)

    @cached_property
    def wrist_rel_speed(self) -> np.ndarray:  # (T, 2) wrist speed relative to the pelvis
        v = self.vel
        return K.norm(v[:, [_J["l_wrist"], _J["r_wrist"]]] - v[:, _J["pelvis"], None])

    # --- heading frame and posture
    @cached_property
    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        return K.heading_axes(self.P, self.mask, self.fps)

    @property
    def left(self) -> np.ndarray:
        return self.axes[0]

    @property
    def fwd(self) -> np.ndarray:
        return self.axes[1]

    @cached_property
    def local(self) -> np.ndarray:  # (T, 19, 3): (left, up, forward) relative to the pelvis
        return K.to_heading_frame(self.P - self.P[:, _J["pelvis"], None], self.left, self.fwd)

    @cached_property
    def trunk_vec(self) -> np.ndarray:
        return self.j("neck") - self.j("pelvis")

    @cached_property
    def trunk_pitch(self) -> np.ndarray:
        return K.pitch_deg(self.trunk_vec, self.fwd)

    @cached_property
    def head_pitch(self) -> np.ndarray:
        return K.pitch_deg(self.j("head") - self.j("neck"), self.fwd)

    def flexion(self, left: tuple[str, str, str], right: tuple[str, str, str]) -> np.ndarray:
        """(T, 2) flexion (deg) at the middle joint of a left and a right limb, cached."""
        key = (left, right)
        cache = self.__dict__.setdefault("_flexion", {})
        if key not in cache:
            a, m, b = ([_J[l_], _J[r_]] for l_, r_ in zip(left, right))
            pm, pa, pb = self.P[:, m], self.P[:, a], self.P[:, b]
            cache[key] = K.angle_between_deg(pm - pa, pb - pm)
        return cache[key]

    # --- gait
    @cached_property
    def ankle_separation(self) -> np.ndarray:
        """(T,) signed left-minus-right ankle separation along its main horizontal direction in
        the heading frame (forward for ordinary gait, sideways for side-stepping): one cycle per
        stride whichever way the body travels."""
        d = self.j("l_ankle") - self.j("r_ankle")
        if np.isnan(self.left).all():
            h = d[:, [0, 2]]
        else:
            h = np.stack([(d * self.left).sum(-1), (d * self.fwd).sum(-1)], axis=1)
        if np.isnan(h).any():
            ok = ~np.isnan(h).any(axis=1)
            if ok.sum() < 2:
                return np.full(self.T, math.nan)
            h = h - h[ok].mean(axis=0)
            g = h[ok]
        else:
            h = h - h.mean(axis=0)
            g = h
        cxx, cyy, cxy = (g[:, 0] ** 2).sum(), (g[:, 1] ** 2).sum(), (g[:, 0] * g[:, 1]).sum()
        angle = 0.5 * math.atan2(2.0 * cxy, cxx - cyy)  # principal axis of the 2x2 covariance
        return h[:, 0] * math.cos(angle) + h[:, 1] * math.sin(angle)

    @cached_property
    def gait(self) -> tuple[float, float]:
        """(periodicity, stride frequency in Hz); (0, 0) when the feet do not step (separation
        range under STEPPING_RANGE leg lengths) or show no rhythm; NaN when the clip is too
        short to find one."""
        s = self.ankle_separation
        if np.isnan(s).all():
            return math.nan, math.nan
        if float(_range(s)) < STEPPING_RANGE * self.leg:
            return 0.0, 0.0
        strength, period = K.autocorrelation_peak(s, self.fps, 0.4, 2.5)
        if math.isnan(strength):
            return math.nan, math.nan
        return strength, (0.0 if math.isnan(period) else 1.0 / period)


def _range(x: np.ndarray, axis=0) -> np.ndarray:
    """Robust range: 95th minus 5th percentile."""
    p = K.nanpercentile(x, [5, 95], axis=axis)
    return p[1] - p[0]


def _robust_mean(x: np.ndarray) -> float:
    """Mean after clipping at the 95th percentile, so single spikes do not dominate."""
    hi = K.nanpercentile(x, 95)
    return K.nanmean(np.minimum(x, hi))


# ================================ descriptors ================================================
# Order matters: it is DESCRIPTOR_NAMES order, the column order of descriptor_matrix.

@_descriptor("duration", "s", (), """
Length of the clip in seconds. Sad and tired performances of the same action tend to take
longer and angry or happy ones shorter (Wallbott 1998: movement activity and tempo; Laban's
Time effort: sustained versus sudden).""")
def _(c: _Context) -> float:
    return c.duration


@_descriptor("root_speed_mean", "m/s", ("pelvis",), """
Mean horizontal speed of the pelvis (travel speed, from a 0.5 s polynomial fit). Walking speed
is among the strongest cues to arousal: fast for anger and joy, slow for sadness (Roether 2009;
Gross, Crane & Fredrickson 2012; Karg 2013).""")
def _(c: _Context) -> float:
    return K.nanmean(c.root_hspeed)


@_descriptor("root_speed_std", "m/s", ("pelvis",), """
Standard deviation of the horizontal pelvis speed over the clip: accelerations, hesitations and
stops. Irregular progression goes with uncertainty and low confidence, steady progression with
determined, confident gait (Kleinsmith & Bianchi-Berthouze 2013; Karg 2013).""")
def _(c: _Context) -> float:
    return K.nanstd(c.root_hspeed)


@_descriptor("wrist_speed_mean", "m/s", _WRISTS, """
Mean speed of the two wrists in the world frame. Hand speed is a core cue of movement activity:
high in anger and joy, low in sadness (Wallbott 1998; Roether 2009 found increased limb
velocity for anger and happiness).""")
def _(c: _Context) -> float:
    return K.nanmean(c.speed[:, [_J["l_wrist"], _J["r_wrist"]]])


@_descriptor("wrist_speed_peak", "m/s", _WRISTS, """
Peak wrist speed: the 95th percentile over frames of the faster wrist. Peaks separate sudden,
forceful gestures (anger, Laban's sudden Time and strong Weight) from sustained, light ones
(sadness, tiredness) (Wallbott 1998; Laban effort qualities).""")
def _(c: _Context) -> float:
    s = c.speed[:, [_J["l_wrist"], _J["r_wrist"]]]
    return float(K.nanpercentile(np.fmax(s[:, 0], s[:, 1]), 95))


@_descriptor("wrist_accel_mean", "m/s^2", _WRISTS, """
Mean magnitude of the wrists' acceleration. Acceleration measures Laban's Time effort (sudden
versus sustained) and is higher in high-arousal emotions such as anger and joy than in sadness
(Kleinsmith & Bianchi-Berthouze 2013; Karg 2013).""")
def _(c: _Context) -> float:
    idx = [_J["l_wrist"], _J["r_wrist"]]
    a = K.savgol(c.P[:, idx], c.fps, window_s=0.3, polyorder=2, deriv=2)
    return _robust_mean(K.norm(a))


@_descriptor("arm_activity", "m/s", ("pelvis", *_WRISTS), """
Mean wrist speed relative to the pelvis, i.e. how much the arms move independently of the
body's travel. Expressive arm movement is large in joy and anger and reduced in sadness, where
arms hang (Wallbott 1998; Gross, Crane & Fredrickson 2012).""")
def _(c: _Context) -> float:
    return K.nanmean(c.wrist_rel_speed)


@_descriptor("quantity_of_motion", "m/s", (), """
Mean speed over all present joints and frames (Camurri's quantity of motion). Overall activity
is the most robust correlate of arousal: high for anger and joy, low for sadness and tiredness
(Wallbott 1998; Camurri et al. 2003; Karg 2013).""")
def _(c: _Context) -> float:
    return K.nanmean(c.speed[:, c.mask]) if c.mask.any() else math.nan


@_descriptor("stillness_fraction", "1", (), f"""
Fraction of frames in which the mean joint speed is below {STILL_SPEED} m/s. Pauses and
freezing are typical of sadness, tiredness and hesitation (low confidence), and rare in anger
and joy (Wallbott 1998; Kleinsmith & Bianchi-Berthouze 2013).""")
def _(c: _Context) -> float:
    if not c.mask.any():
        return math.nan
    q = c.speed[:, c.mask]
    per_frame = q.mean(axis=1)
    if np.isnan(per_frame).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            per_frame = np.nanmean(q, axis=1)
        per_frame = per_frame[~np.isnan(per_frame)]
    return float(np.mean(per_frame < STILL_SPEED)) if per_frame.size else math.nan


@_descriptor("pelvis_bounce", "1 (per leg length)", ("pelvis",), """
Vertical bounce of the pelvis: standard deviation of its height after removing the slow trend
(1 s moving average), per leg length. Bouncy gait is a marker of joy and high arousal, flat gait
of sadness and tiredness (Roether 2009; Gross, Crane & Fredrickson 2012).""")
def _(c: _Context) -> float:
    y = c.j("pelvis")[:, 1]
    return K.nanstd(y - K.moving_average(y, c.fps, 1.0)) / c.leg


@_descriptor("head_bounce", "1 (per leg length)", ("head",), """
Vertical bobbing of the head: standard deviation of its height after removing the slow trend
(1 s moving average), per leg length. A springy, bobbing head goes with joyful, energetic
movement, a level one with sad, tired or tense movement (Roether 2009; Gross, Crane &
Fredrickson 2012).""")
def _(c: _Context) -> float:
    y = c.j("head")[:, 1]
    return K.nanstd(y - K.moving_average(y, c.fps, 1.0)) / c.leg


@_descriptor("hip_height", "1 (per leg length)", ("pelvis",), """
Mean pelvis height above the floor, per leg length. A lowered pelvis (bent knees, sagging
posture) goes with sadness and tiredness, an extended body with pride and joy (Wallbott 1998;
Kleinsmith & Bianchi-Berthouze 2013).""")
def _(c: _Context) -> float:
    return K.nanmean(c.j("pelvis")[:, 1]) / c.leg


@_descriptor("head_height", "1 (per leg length)", ("head",), """
Mean head height above the floor, per leg length: the body's overall vertical extension. A
collapsed, lowered posture signals sadness and shame, an upright, raised one pride and joy
(Wallbott 1998; Kleinsmith & Bianchi-Berthouze 2013).""")
def _(c: _Context) -> float:
    return K.nanmean(c.j("head")[:, 1]) / c.leg


@_descriptor("head_pitch_mean", "deg", ("neck", "head"), """
Mean absolute head inclination: the angle of the neck-to-head vector from vertical in the
body's sagittal plane, positive when the head is pitched down or forward. A lowered head is the
best-documented posture cue of sadness (and of low confidence and shame), a raised head of
pride and anger (Wallbott 1998; Roether 2009; Gross, Crane & Fredrickson 2012).""")
def _(c: _Context) -> float:
    return K.nanmean(c.head_pitch)


@_descriptor("head_pitch_std", "deg", ("neck", "head"), """
Standard deviation of the head inclination over the clip. Head movement (nodding, looking down
and up again) separates lively or uncertain expressions from the rigid head of anger or the
constantly lowered head of sadness (Kleinsmith & Bianchi-Berthouze 2013; Karg 2013).""")
def _(c: _Context) -> float:
    return K.nanstd(c.head_pitch)


@_descriptor("head_pitch_rel_trunk", "deg", ("pelvis", "neck", "head"), """
Mean head inclination relative to the trunk: head pitch minus trunk pitch (pelvis-to-neck), in
degrees, positive when the head is bent forward on the trunk. It separates a head dropped on an
upright trunk (sadness, low confidence) from a head that is merely carried by a leaning trunk
(Roether 2009 found head inclination the most important posture feature for sadness; Gross,
Crane & Fredrickson 2012).""")
def _(c: _Context) -> float:
    return K.nanmean(c.head_pitch - c.trunk_pitch)


@_descriptor("head_tilt", "deg", ("neck", "head"), """
Mean absolute sideways tilt of the head: the angle of the neck-to-head vector from vertical in
the body's frontal plane. A head tilted to one side reads as submissive, uncertain or sad, a
straight head as confident or assertive (Kleinsmith & Bianchi-Berthouze 2013; Wallbott 1998).
Mirroring leaves it unchanged.""")
def _(c: _Context) -> float:
    return K.nanmean(np.abs(K.roll_deg(c.j("head") - c.j("neck"), c.left)))


@_descriptor("head_forward", "1 (per trunk length)", ("head", "l_shoulder", "r_shoulder"), """
Forward displacement of the head from the shoulders' midpoint along the body's heading, per
trunk length. A protruding head goes with a slumped, sad or tired posture and with an
aggressive forward thrust in anger; a head held back over the shoulders with pride
(Wallbott 1998; Kleinsmith & Bianchi-Berthouze 2013).""")
def _(c: _Context) -> float:
    loc = c.local
    mid = 0.5 * (loc[:, _J["l_shoulder"], 2] + loc[:, _J["r_shoulder"], 2])
    return K.nanmean(loc[:, _J["head"], 2] - mid) / c.trunk_len


@_descriptor("trunk_lean_mean", "deg", ("pelvis", "neck"), """
Mean trunk lean: the angle of the pelvis-to-neck vector from vertical in the body's sagittal
plane, positive forward. Forward flexion of the trunk marks sadness, tiredness and low
confidence, a backward or upright trunk pride and joy; anger leans forward while advancing
(Wallbott 1998; Roether 2009; Kleinsmith & Bianchi-Berthouze 2013).""")
def _(c: _Context) -> float:
    return K.nanmean(c.trunk_pitch)


@_descriptor("trunk_lean_std", "deg", ("pelvis", "neck"), """
Standard deviation of the trunk lean over the clip (sagittal sway). A trunk that rocks back and
forth shows looseness and high arousal or instability (tiredness), a rigid trunk tension or
control (Kleinsmith & Bianchi-Berthouze 2013; Gross, Crane & Fredrickson 2012).""")
def _(c: _Context) -> float:
    return K.nanstd(c.trunk_pitch)


@_descriptor("spine_flexion", "deg", ("pelvis", "spine", "neck"), """
Mean curvature of the spine in the sagittal plane: the pitch of the upper trunk (spine to neck)
minus that of the lower trunk (pelvis to spine), positive when the upper back is rounded
forward. A slumped, collapsed chest marks sadness, tiredness and low confidence; an expanded,
arched chest marks pride (Wallbott 1998; Tracy & Robins 2004 via Kleinsmith &
Bianchi-Berthouze 2013).""")
def _(c: _Context) -> float:
    lower = K.pitch_deg(c.j("spine") - c.j("pelvis"), c.fwd)
    upper = K.pitch_deg(c.j("neck") - c.j("spine"), c.fwd)
    return K.nanmean(upper - lower)


@_descriptor("trunk_roll_std", "deg", ("pelvis", "neck"), """
Standard deviation of the trunk's sideways inclination (frontal-plane sway). Lateral sway is
larger in relaxed, happy or swaggering (proud) gait and in tired, unsteady gait than in tense
anger (Roether 2009; Karg 2013).""")
def _(c: _Context) -> float:
    return K.nanstd(K.roll_deg(c.trunk_vec, c.left))


@_descriptor("trunk_twist_range", "deg", ("l_hip", "r_hip", "l_shoulder", "r_shoulder"), """
Range (5th to 95th percentile) of the twist between the shoulder axis and the hip axis about the
vertical. Counter-rotation of shoulders and pelvis grows with expansive, energetic gait (joy,
pride, anger) and shrinks in the stiff, small gait of sadness (Roether 2009; Laban's
Space and Flow efforts).""")
def _(c: _Context) -> float:
    h = c.j("l_hip") - c.j("r_hip")
    s = c.j("l_shoulder") - c.j("r_shoulder")
    cross_y = h[:, 2] * s[:, 0] - h[:, 0] * s[:, 2]
    dot = h[:, 0] * s[:, 0] + h[:, 2] * s[:, 2]
    return float(_range(np.degrees(np.arctan2(cross_y, dot))))


@_descriptor("shoulder_elevation", "1 (per trunk length)", ("pelvis", "neck", "l_shoulder",
                                                            "r_shoulder"), """
Height of the shoulders' midpoint relative to the neck, measured along the trunk axis, per trunk
length (negative: below the neck; closer to zero: raised). Raised shoulders signal tension,
fear and anger, dropped shoulders sadness and resignation (Wallbott 1998; Kleinsmith &
Bianchi-Berthouze 2013).""")
def _(c: _Context) -> float:
    u = c.trunk_vec / np.maximum(K.norm(c.trunk_vec), 1e-9)[:, None]
    mid = 0.5 * (c.j("l_shoulder") + c.j("r_shoulder"))
    return K.nanmean(((mid - c.j("neck")) * u).sum(-1)) / c.trunk_len


@_descriptor("arm_expansion", "1 (per shoulder width)", ("pelvis", "neck", *_WRISTS,
                                                         "l_shoulder", "r_shoulder"), """
Mean distance of the wrists from the trunk axis (the pelvis-neck line), per shoulder width.
Expansive arms open the body to the space (joy, pride, anger), arms held close contract it
(sadness, fear, low confidence) (Wallbott 1998; Camurri et al. 2003's contraction index;
Kleinsmith & Bianchi-Berthouze 2013).""")
def _(c: _Context) -> float:
    u = c.trunk_vec / np.maximum(K.norm(c.trunk_vec), 1e-9)[:, None]
    rel = c.P[:, [_J["l_wrist"], _J["r_wrist"]]] - c.j("pelvis")[:, None]
    return K.nanmean(K.norm(K.cross(rel, u[:, None]))) / c.shoulder_width


@_descriptor("elbow_expansion", "1 (per shoulder width)", ("pelvis", "neck", "l_elbow",
                                                           "r_elbow", "l_shoulder", "r_shoulder"),
             """
Mean distance of the elbows from the trunk axis (the pelvis-neck line), per shoulder width.
Elbows held out (arms akimbo, squared-up stance) signal pride and dominance or anger; elbows
tucked to the sides signal sadness, fear and low confidence (Wallbott 1998; Kleinsmith &
Bianchi-Berthouze 2013).""")
def _(c: _Context) -> float:
    u = c.trunk_vec / np.maximum(K.norm(c.trunk_vec), 1e-9)[:, None]
    rel = c.P[:, [_J["l_elbow"], _J["r_elbow"]]] - c.j("pelvis")[:, None]
    return K.nanmean(K.norm(K.cross(rel, u[:, None]))) / c.shoulder_width


@_descriptor("body_volume", "1 (per leg length^3)", ("pelvis",), """
Mean volume of the body's bounding box in its own heading frame (all present joints), per cubed
leg length. A large, expanded body is typical of joy, pride and anger, a small, contracted one
of sadness and fear (Wallbott 1998; Camurri et al. 2003; Laban's Shape qualities).""")
def _(c: _Context) -> float:
    loc = c.local[:, c.mask]
    return K.nanmean(np.prod(loc.max(axis=1) - loc.min(axis=1), axis=-1)) / c.leg ** 3


@_descriptor("hand_height_mean", "1 (per trunk length)", ("pelvis", *_WRISTS), """
Mean height of the wrists above the pelvis, per trunk length. Raised hands accompany joy and
pride (and threat in anger); hands hanging low accompany sadness and tiredness
(Wallbott 1998; Dael, Mortillaro & Scherer 2012 via Kleinsmith & Bianchi-Berthouze 2013).""")
def _(c: _Context) -> float:
    return K.nanmean(c.local[:, [_J["l_wrist"], _J["r_wrist"]], 1]) / c.trunk_len


@_descriptor("hand_height_peak", "1 (per trunk length)", ("pelvis", *_WRISTS), """
Peak height of the higher wrist above the pelvis (95th percentile over frames), per trunk
length. Arms raised high are a classic display of elation, triumph and pride, absent in sadness
(Wallbott 1998; Kleinsmith & Bianchi-Berthouze 2013).""")
def _(c: _Context) -> float:
    y = c.local[:, [_J["l_wrist"], _J["r_wrist"]], 1]
    return float(K.nanpercentile(np.fmax(y[:, 0], y[:, 1]), 95)) / c.trunk_len


@_descriptor("arm_swing", "1 (per leg length)", ("pelvis", *_WRISTS), """
Forward/backward excursion of the wrists relative to the pelvis along the body's own heading
(5th to 95th percentile range, mean of both arms), per leg length. Arm swing is larger in
happy and angry gait and much reduced in sad gait (Roether 2009; Gross, Crane & Fredrickson
2012).""")
def _(c: _Context) -> float:
    return K.nanmean(_range(c.local[:, [_J["l_wrist"], _J["r_wrist"]], 2])) / c.leg


@_descriptor("wrist_jerk", "m/s^3", _WRISTS, """
Mean magnitude of the wrists' jerk (third derivative of position, from a 0.4 s cubic fit,
clipped at the 95th percentile). Jerky movement marks anger and nervousness, smooth movement
calm and sadness; Laban's Flow effort (bound versus free) (Karg 2013; Kleinsmith &
Bianchi-Berthouze 2013; Pollick et al. 2001 via Karg 2013).""")
def _(c: _Context) -> float:
    j = K.savgol(c.P[:, [_J["l_wrist"], _J["r_wrist"]]], c.fps, window_s=0.4, polyorder=3,
                 deriv=3)
    return _robust_mean(K.norm(j))


@_descriptor("pelvis_jerk", "m/s^3", ("pelvis",), """
Mean magnitude of the pelvis' jerk (third derivative, 0.4 s cubic fit, clipped at the 95th
percentile): abrupt changes of the whole body's motion. Heavy, abrupt steps (anger) raise it,
smooth or shuffling gait (sadness, tiredness) lowers it (Karg 2013; Laban's Weight and Flow
efforts).""")
def _(c: _Context) -> float:
    j = K.savgol(c.j("pelvis"), c.fps, window_s=0.4, polyorder=3, deriv=3)
    return _robust_mean(K.norm(j))


@_descriptor("wrist_speed_asymmetry", "1", ("pelvis", *_WRISTS), """
Left/right asymmetry of arm activity: (left - right) / (left + right) of the wrists' mean speed
relative to the pelvis, from -1 (right only) to +1 (left only); mirroring flips its sign.
Emotional expression is lateralised (the left side of the body is often more expressive) and
one-sided gestures differ from bilateral ones (Roether 2009; Kleinsmith & Bianchi-Berthouze
2013).""", mirror_sign=-1)
def _(c: _Context) -> float:
    s = c.wrist_rel_speed
    left, right = K.nanmean(s[:, 0]), K.nanmean(s[:, 1])
    total = left + right
    return (left - right) / total if total > 1e-9 else 0.0


@_descriptor("wrist_speed_correlation", "1", ("pelvis", *_WRISTS), """
Correlation between the left and right wrists' speed profiles (relative to the pelvis) over
time; 0 when one arm does not move. High values mean the arms move together (symmetric, e.g.
both raised in joy, or swinging in regular gait), low values one-sided or uncoordinated
movement; symmetry is a cue studied by Roether 2009 and Kleinsmith & Bianchi-Berthouze 2013.
Mirroring leaves it unchanged.""")
def _(c: _Context) -> float:
    s = c.wrist_rel_speed
    s = s[~np.isnan(s).any(axis=1)]
    if s.shape[0] < 3:
        return math.nan
    d = s - s.mean(axis=0)
    sd = np.sqrt((d * d).sum(axis=0))
    if sd.min() < 1e-9:
        return 0.0
    return float((d[:, 0] * d[:, 1]).sum() / (sd[0] * sd[1]))


@_descriptor("gait_periodicity", "1", ("l_ankle", "r_ankle"), """
Strength of the strongest repetition of the feet's relative position (the highest peak of the
autocorrelation of the left-minus-right ankle separation between 0.4 and 2.5 s lag; 1 =
perfectly periodic, 0 = no rhythm). Regular, rhythmic stepping marks fluent, confident gait;
irregular rhythm goes with hesitation and fatigue (Karg 2013; Gross, Crane & Fredrickson
2012).""")
def _(c: _Context) -> float:
    return c.gait[0]


@_descriptor("stride_frequency", "Hz", ("l_ankle", "r_ankle"), f"""
Stride (gait-cycle) frequency: the inverse of the period of the left-minus-right ankle
separation along its main direction in the body's heading frame (forward for ordinary gait,
sideways for side-stepping); 0 when the feet do not step (separation range under
{STEPPING_RANGE} leg length, or no rhythm). Cadence rises with arousal (joy, anger) and falls in
sadness (Roether 2009; Gross, Crane & Fredrickson 2012; Karg 2013).""")
def _(c: _Context) -> float:
    return c.gait[1]


@_descriptor("stride_length", "1 (per leg length)", ("pelvis", "l_ankle", "r_ankle"), """
Distance travelled per stride (travel speed divided by stride frequency), per leg length; 0
when the feet do not step. Long strides go with anger, joy and pride, short shuffling strides
with sadness and low confidence (Roether 2009; Gross, Crane & Fredrickson 2012).""")
def _(c: _Context) -> float:
    f = c.gait[1]
    if math.isnan(f) or f == 0.0:
        return f  # NaN: too short to tell; 0: not stepping
    return K.nanmean(c.root_hspeed) / f / c.leg


@_descriptor("step_width", "1 (per leg length)", ("l_ankle", "r_ankle"), """
Mean lateral distance between the ankles along the body's own left-right axis, per leg length.
A wide base of support goes with the swaggering gait of pride and anger and with unstable,
tired gait; a narrow one with the contracted gait of sadness and low confidence (Roether 2009;
Kleinsmith & Bianchi-Berthouze 2013).""")
def _(c: _Context) -> float:
    d = ((c.j("l_ankle") - c.j("r_ankle")) * c.left).sum(-1)
    return K.nanmean(np.abs(d)) / c.leg


@_descriptor("foot_lift", "1 (per leg length)", ("l_ankle", "r_ankle"), """
Vertical excursion of the ankles (5th to 95th percentile of height, mean of both feet), per leg
length. Heavy, shuffling feet are typical of sadness and tiredness, high foot lift of joy and
energetic gait (Roether 2009; Laban's Weight effort).""")
def _(c: _Context) -> float:
    return K.nanmean(_range(c.P[:, [_J["l_ankle"], _J["r_ankle"]], 1])) / c.leg


@_descriptor("knee_flexion_mean", "deg", _LEGS, """
Mean knee flexion (0 = straight leg), both legs. Bent knees lower and soften the body in
sadness and tiredness; stiff, extended knees go with anger and pride (Roether 2009 found knee
flexion among the joint angles that separate emotional gaits; Karg 2013).""")
def _(c: _Context) -> float:
    return K.nanmean(_knees(c))


@_descriptor("knee_flexion_range", "deg", _LEGS, """
Range of knee flexion (5th to 95th percentile, mean of both legs). A large knee range means
vigorous stepping (joy, anger), a small one a stiff or shuffling gait (sadness, tiredness)
(Roether 2009; Gross, Crane & Fredrickson 2012).""")
def _(c: _Context) -> float:
    return K.nanmean(_range(_knees(c)))


@_descriptor("elbow_flexion_mean", "deg", _ARMS, """
Mean elbow flexion (0 = straight arm), both arms. Bent, raised forearms accompany anger (fists)
and joy, straight hanging arms sadness (Roether 2009 reported elbow flexion for anger;
Wallbott 1998).""")
def _(c: _Context) -> float:
    return K.nanmean(_elbows(c))


@_descriptor("elbow_flexion_range", "deg", _ARMS, """
Range of elbow flexion (5th to 95th percentile, mean of both arms): how much the forearms move.
Large in lively gestures (joy, anger), small in sad, tired or inhibited movement
(Wallbott 1998; Kleinsmith & Bianchi-Berthouze 2013).""")
def _(c: _Context) -> float:
    return K.nanmean(_range(_elbows(c)))


@_descriptor("turn_rate", "deg/s", (), """
Mean absolute yaw rate of the body's heading (the hip and shoulder axes, smoothed over 0.5 s).
Frequent or fast turning shows agitation or looking around (uncertainty), a steady heading calm
or determined movement (Kleinsmith & Bianchi-Berthouze 2013; Laban's Space effort: direct
versus indirect).""")
def _(c: _Context) -> float:
    yaw = K.yaw_deg(c.fwd)
    if c.T < 2:
        return math.nan
    return K.nanmean(np.abs(np.gradient(yaw))) * c.fps


def _knees(c: _Context) -> np.ndarray:  # (T, 2)
    return c.flexion(("l_hip", "l_knee", "l_ankle"), ("r_hip", "r_knee", "r_ankle"))


def _elbows(c: _Context) -> np.ndarray:  # (T, 2)
    return c.flexion(("l_shoulder", "l_elbow", "l_wrist"), ("r_shoulder", "r_elbow", "r_wrist"))


DESCRIPTORS: tuple[Descriptor, ...] = tuple(_REGISTRY)
DESCRIPTOR_NAMES: tuple[str, ...] = tuple(d.name for d in DESCRIPTORS)
DESCRIPTORS_BY_NAME: dict[str, Descriptor] = {d.name: d for d in DESCRIPTORS}
_REQUIRED = [np.array([_J[j] for j in d.joints], dtype=int) for d in DESCRIPTORS]


# ================================ computing ==================================================

def compute_descriptors(clip: Clip) -> DescriptorResult:
    """Every descriptor of one clip; NaN (and listed in .missing) where its joints are absent."""
    ctx = _Context(clip)
    values: dict[str, float] = {}
    missing: list[str] = []
    with np.errstate(all="ignore"):
        for d, req in zip(DESCRIPTORS, _REQUIRED):
            v = math.nan
            if ctx.T > 0 and clip.joint_mask[req].all():
                v = float(d.fn(ctx))
            elif d.name == "duration":
                v = ctx.duration
            if not math.isfinite(v):
                v = math.nan
                missing.append(d.name)
            values[d.name] = v
    return DescriptorResult(values=values, missing=missing)


def descriptor_matrix(clips: Iterable[Clip]) -> np.ndarray:
    """(N, D) float64 matrix of descriptors, columns in DESCRIPTOR_NAMES order."""
    rows = [compute_descriptors(c).as_array() for c in clips]
    if not rows:
        return np.zeros((0, len(DESCRIPTORS)))
    return np.vstack(rows)


# ================================ levels =====================================================

Level = str  # "low" | "typical" | "high"


class DescriptorLevels:
    """Low / typical / high for each descriptor, by terciles of a reference population.

    Thresholds are fitted per group (e.g. per action) where the group has at least
    `min_group_size` clips with a finite value of that descriptor, else on the whole population,
    so that "slow" means slow for that kind of movement. JSON-serialisable (to_dict/from_dict),
    stored with the tokenizer.
    """

    QUANTILES = (100.0 / 3.0, 200.0 / 3.0)

    def __init__(self, names: Sequence[str] = DESCRIPTOR_NAMES, min_group_size: int = 8):
        self.names = tuple(names)
        self.min_group_size = int(min_group_size)
        self.global_thresholds: dict[str, tuple[float, float]] = {}
        self.group_thresholds: dict[str, dict[str, tuple[float, float]]] = {}
        self.group_counts: dict[str, int] = {}

    def _thresholds(self, matrix: np.ndarray, min_count: int) -> dict[str, tuple[float, float]]:
        out = {}
        for k, name in enumerate(self.names):
            col = matrix[:, k]
            col = col[np.isfinite(col)]
            if col.size >= max(min_count, 1):
                lo, hi = np.percentile(col, self.QUANTILES)
                out[name] = (float(lo), float(hi))
        return out

    def fit(self, matrix: np.ndarray, groups: Sequence[str | None] | None = None
            ) -> DescriptorLevels:
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.names):
            raise ValueError(f"DescriptorLevels.fit: matrix must have shape (N, {len(self.names)})"
                             f" in DESCRIPTOR_NAMES order, got {matrix.shape}")
        if groups is not None and len(groups) != matrix.shape[0]:
            raise ValueError(f"DescriptorLevels.fit: {len(groups)} groups for "
                             f"{matrix.shape[0]} rows; pass one group (or None) per row")
        self.global_thresholds = self._thresholds(matrix, 1)
        self.group_thresholds, self.group_counts = {}, {}
        if groups is not None:
            labels = np.array(["" if g is None else str(g) for g in groups], dtype=object)
            for g in sorted({str(g) for g in groups if g is not None}):
                rows = matrix[labels == g]
                self.group_counts[g] = int(rows.shape[0])
                if rows.shape[0] >= self.min_group_size:
                    th = self._thresholds(rows, self.min_group_size)
                    if th:
                        self.group_thresholds[g] = th
        return self

    def thresholds(self, name: str, group: str | None = None) -> tuple[float, float] | None:
        if group is not None and name in self.group_thresholds.get(str(group), {}):
            return self.group_thresholds[str(group)][name]
        return self.global_thresholds.get(name)

    def levels(self, values_row: Mapping[str, float] | Sequence[float] | np.ndarray,
               group: str | None = None) -> dict[str, Level | None]:
        """Level of each descriptor; None where the value is NaN or no threshold was fitted.

        values_row: a dict name -> value (e.g. DescriptorResult.values) or a row in this
        object's `names` order (a row of descriptor_matrix)."""
        if isinstance(values_row, Mapping):
            get = lambda k, n: values_row.get(n, math.nan)
        else:
            row = np.asarray(values_row, dtype=np.float64).ravel()
            if row.shape[0] != len(self.names):
                raise ValueError(f"DescriptorLevels.levels: row has {row.shape[0]} values, "
                                 f"expected {len(self.names)} (in DESCRIPTOR_NAMES order)")
            get = lambda k, n: row[k]
        out: dict[str, Level | None] = {}
        for k, name in enumerate(self.names):
            v = get(k, name)
            th = self.thresholds(name, group)
            if th is None or v is None or not math.isfinite(float(v)):
                out[name] = None
            elif v < th[0]:
                out[name] = "low"
            elif v > th[1]:
                out[name] = "high"
            else:
                out[name] = "typical"
        return out

    def to_dict(self) -> dict:
        def enc(th: dict[str, tuple[float, float]]) -> dict[str, list[float]]:
            return {n: [lo, hi] for n, (lo, hi) in th.items()}
        return {
            "kind": "eai.descriptor_levels", "version": 1,
            "names": list(self.names), "quantiles": list(self.QUANTILES),
            "min_group_size": self.min_group_size,
            "global": enc(self.global_thresholds),
            "groups": {g: enc(th) for g, th in self.group_thresholds.items()},
            "group_counts": dict(self.group_counts),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> DescriptorLevels:
        if data.get("kind") != "eai.descriptor_levels":
            raise ValueError("DescriptorLevels.from_dict: not a descriptor-levels object "
                             f"(kind={data.get('kind')!r})")
        obj = cls(names=data["names"], min_group_size=data.get("min_group_size", 8))
        dec = lambda th: {n: (float(v[0]), float(v[1])) for n, v in th.items()}
        obj.global_thresholds = dec(data.get("global", {}))
        obj.group_thresholds = {g: dec(th) for g, th in data.get("groups", {}).items()}
        obj.group_counts = {g: int(n) for g, n in data.get("group_counts", {}).items()}
        return obj
