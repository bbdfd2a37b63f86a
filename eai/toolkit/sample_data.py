"""A small, SYNTHETIC, emotion-labelled motion set in BVH, C3D and NPY (`eai sample-data OUT`).

Motion is procedural: a sinusoidal gait (or a standing idle) whose parameters follow what
studies of emotional gait report, rather than captured data:

- Roether, Omlor, Christensen & Giese (2009), J. Vision 9(6):15: sad gait is slow with a flexed
  head and trunk and little arm swing; angry has large arm swing with flexed elbows and is fast;
  happy is fast with large arm swing and the head up; fearful has flexed elbows, arms close to
  the body and a reduced speed.
- Montepare, Goldstein & Clausen (1987), J. Nonverbal Behav. 11:33: angry walkers are heavy-
  footed with long strides; happy walkers are faster; sad walkers swing their arms less.
- Gross, Crane & Fredrickson (2012), Cognition & Emotion 26:1262: joy and anger enlarge
  movement; sadness shrinks it and bows the head; fear and sadness slow the walker down.

Each clip: joint rotations (Euler ZXY, degrees) on a Mixamo-named skeleton scaled per subject,
forward kinematics to positions, the root lifted so the lowest foot point touches the floor.
Subjects differ in height and limb proportions; clips in phase, cadence and smooth noise.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eai.converters.bvh_writer import BvhSkeleton, write_bvh

EMOTIONS = ("neutral", "happy", "sad", "angry", "fearful")
FPS = 30
SECONDS = 4.0


@dataclass(frozen=True)
class Style:
    cadence: float  # gait cycles (two steps) per second
    stride: float  # stride length in leg lengths
    arm_swing: float  # shoulder flexion amplitude, degrees
    elbow: float  # mean elbow flexion, degrees
    abduction: float  # arms away from the body, degrees
    trunk: float  # forward trunk flexion, degrees
    head: float  # forward head flexion on the trunk, degrees (negative: head up)
    bounce: float  # extra vertical bounce at mid-stance, metres
    shrug: float  # shoulders raised, degrees
    knee: float  # swing-phase knee flexion, degrees
    noise: float  # smooth random joint motion, degrees


STYLES = {
    "neutral": Style(0.92, 1.45, 16, 15, 6, 2, 0, 0.000, 0, 60, 1.0),
    "happy": Style(1.02, 1.60, 26, 25, 9, -2, -12, 0.025, 0, 65, 1.0),
    "sad": Style(0.78, 1.10, 5, 8, 4, 10, 24, 0.000, -4, 50, 0.7),
    "angry": Style(1.00, 1.65, 28, 55, 10, 6, 5, 0.008, 3, 66, 1.2),
    "fearful": Style(0.95, 1.20, 6, 45, 2, 8, 10, 0.000, 10, 55, 1.8),
}

# Mixamo names, so the BVH is detected by the "mixamo" profile; parents listed first.
_JOINTS = [("Hips", None), ("Spine", "Hips"), ("Spine1", "Spine"), ("Spine2", "Spine1"),
           ("Neck", "Spine2"), ("Head", "Neck"), ("HeadTop_End", "Head")]
for _s in ("Left", "Right"):
    _JOINTS += [(f"{_s}Shoulder", "Spine2"), (f"{_s}Arm", f"{_s}Shoulder"),
                (f"{_s}ForeArm", f"{_s}Arm"), (f"{_s}Hand", f"{_s}ForeArm")]
for _s in ("Left", "Right"):
    _JOINTS += [(f"{_s}UpLeg", "Hips"), (f"{_s}Leg", f"{_s}UpLeg"), (f"{_s}Foot", f"{_s}Leg"),
                (f"{_s}ToeBase", f"{_s}Foot"), (f"{_s}Toe_End", f"{_s}ToeBase")]
NAMES = [n for n, _ in _JOINTS]
J = {n: i for i, n in enumerate(NAMES)}
# smpl-22 layout (profiles.SMPL_22_LAYOUT) from the skeleton's joints.
SMPL_FROM = ["Hips", "LeftUpLeg", "RightUpLeg", "Spine", "LeftLeg", "RightLeg", "Spine1",
             "LeftFoot", "RightFoot", "Spine2", "LeftToeBase", "RightToeBase", "Neck",
             "LeftShoulder", "RightShoulder", "Head", "LeftArm", "RightArm", "LeftForeArm",
             "RightForeArm", "LeftHand", "RightHand"]


def make_skeleton(rng: np.random.Generator) -> tuple[BvhSkeleton, dict[str, float]]:
    """A subject: height 1.58-1.90 m, limb proportions within a few percent (metres, Y up,
    facing +Z, left = +X, arms hanging at rest)."""
    h = rng.uniform(1.58, 1.90)
    arm, leg, trunk, width = rng.uniform(0.96, 1.04, 4)
    d = dict(h=h, s=h / 1.75, thigh=0.245 * h * leg, shin=0.246 * h * leg, ankle=0.039 * h,
             upper=0.172 * h * arm, fore=0.157 * h * arm, hip_x=0.052 * h * width,
             hip_y=-0.045 * h, neck=0.095 * h * trunk, toe=0.075 * h, arm_x=0.085 * h * width)
    off = {"Spine": (0, 0.055 * h * trunk, 0), "Spine1": (0, 0.065 * h * trunk, 0),
           "Spine2": (0, 0.075 * h * trunk, 0), "Neck": (0, d["neck"], 0),
           "Head": (0, 0.05 * h, 0.01 * h), "HeadTop_End": (0, 0.085 * h, 0)}
    for side, sign in (("Left", 1.0), ("Right", -1.0)):
        off.update({f"{side}Shoulder": (sign * 0.02 * h, 0.07 * h * trunk, 0),
                    f"{side}Arm": (sign * d["arm_x"], 0, 0),
                    f"{side}ForeArm": (0, -d["upper"], 0), f"{side}Hand": (0, -d["fore"], 0),
                    f"{side}UpLeg": (sign * d["hip_x"], d["hip_y"], 0.005 * h),
                    f"{side}Leg": (0, -d["thigh"], 0), f"{side}Foot": (0, -d["shin"], 0),
                    f"{side}ToeBase": (0, -0.8 * d["ankle"], d["toe"]),
                    f"{side}Toe_End": (0, 0, 0.045 * h)})
    d["leg"] = d["thigh"] + d["shin"] + d["ankle"]
    offsets = np.array([(0, d["leg"] - d["hip_y"], 0)] + [off[n] for n in NAMES[1:]])
    ends = {J[n]: np.array(v) * h for n, v in (
        ("HeadTop_End", (0, 0.02, 0)), ("LeftHand", (0, -0.1, 0)), ("RightHand", (0, -0.1, 0)),
        ("LeftToe_End", (0, 0, 0.01)), ("RightToe_End", (0, 0, 0.01)))}
    parents = [-1] + [J[p] for _, p in _JOINTS[1:]]
    return BvhSkeleton(NAMES, parents, offsets, ends), d


def _bump(phase: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A periodic bump (von Mises) of height 1 at `centre` cycles, about `width` cycles wide."""
    return np.exp((np.cos(2 * np.pi * (phase - centre)) - 1.0) / (2 * np.pi * width) ** 2)


@dataclass
class SampleMotion:
    skeleton: BvhSkeleton  # metres
    dims: dict[str, float]
    root: np.ndarray  # (T, 3) metres
    angles: np.ndarray  # (T, J, 3) degrees, Euler ZXY (columns Z, X, Y)
    positions: np.ndarray  # (T, J, 3) metres, Y up, facing +Z, floor at 0
    rotations: np.ndarray  # (T, J, 3, 3) global joint rotations


def generate_motion(emotion: str, action: str, subject_rng: np.random.Generator,
                    rng: np.random.Generator, seconds: float = SECONDS) -> SampleMotion:
    """One clip: `action` is "walk" or "idle". Subject and clip randomness come from two
    generators, so a subject keeps its body across emotions."""
    st = STYLES[emotion]
    skel, d = make_skeleton(subject_rng)
    t = np.arange(int(round(seconds * FPS))) / FPS
    cadence = st.cadence * rng.uniform(0.96, 1.04)
    walk = action == "walk"
    p = cadence * t + rng.uniform(0, 1)  # gait phase in cycles, left heel strike at 0
    amp = np.degrees(np.arcsin(st.stride * rng.uniform(0.96, 1.04) / 4)) if walk else 0.0
    rot = np.zeros((len(t), len(NAMES), 3))  # columns: Z, X, Y angles (order ZXY)
    z_, x_, y_ = 0, 1, 2
    swing = st.arm_swing * rng.uniform(0.9, 1.1) * (1.0 if walk else 0.15)
    for side, ph, sign in (("Left", p, 1.0), ("Right", p + 0.5, -1.0)):
        c = np.cos(2 * np.pi * ph)
        if walk:  # sagittal leg angles: + X bends a downward bone backward (see rotations)
            rot[:, J[f"{side}UpLeg"], x_] = -(amp * c + 5)
            # Knee: a small flexion after heel strike, the large one in swing (two bumps).
            rot[:, J[f"{side}Leg"], x_] = (5 + 15 * _bump(ph, 0.12, 0.07)
                                           + st.knee * _bump(ph, 0.72, 0.09))
            # Ankle: dorsiflexion in mid-stance, plantarflexion at push-off.
            rot[:, J[f"{side}Foot"], x_] = (3 - 10 * _bump(ph, 0.42, 0.12)
                                            + 18 * _bump(ph, 0.63, 0.05))
            rot[:, J[f"{side}ToeBase"], x_] = -20 * _bump(ph, 0.55, 0.06)
        else:  # idle: knees soft, happy idlers bob
            bob = (1 - np.cos(2 * np.pi * 1.5 * t)) * (4 if emotion == "happy" else 0)
            rot[:, J[f"{side}UpLeg"], x_] = -3 - bob
            rot[:, J[f"{side}Leg"], x_] = 4 + 2 * bob
            rot[:, J[f"{side}Foot"], x_] = -1 - bob
        # Arms swing against the leg of the same side; the elbow flexes more on the fore-swing.
        rot[:, J[f"{side}Arm"], x_] = swing * c
        rot[:, J[f"{side}Arm"], z_] = sign * st.abduction
        rot[:, J[f"{side}ForeArm"], x_] = -(st.elbow + 0.3 * swing * (1 - c) / 2)
        rot[:, J[f"{side}Shoulder"], z_] = sign * st.shrug
    c = np.cos(2 * np.pi * p)
    if walk:
        rot[:, J["Hips"], y_] = -0.3 * amp * c  # pelvis turns with the forward leg
        rot[:, J["Hips"], z_] = 0.2 * amp * np.sin(2 * np.pi * p)  # swing-side hip drops
        rot[:, J["Spine"], z_] = -0.12 * amp * np.sin(2 * np.pi * p)
        rot[:, [J["Spine1"], J["Spine2"]], y_] = (0.15 * amp * c)[:, None]  # thorax counter-turn
    else:
        rot[:, J["Hips"], z_] = 2 * np.sin(2 * np.pi * 0.2 * t)  # weight shift
    rot[:, [J["Spine"], J["Spine1"], J["Spine2"]], x_] += st.trunk / 3
    rot[:, J["Spine2"], x_] += 1.0 * np.sin(2 * np.pi * 0.25 * t)  # breathing
    rot[:, [J["Neck"], J["Head"]], x_] += st.head / 2
    if emotion == "fearful":  # vigilant scanning
        rot[:, J["Neck"], y_] += 12 * np.sin(2 * np.pi * 0.35 * t + rng.uniform(0, 6.3))
    rot += _smooth_noise(rng, t, len(NAMES), st.noise)

    speed = cadence * st.stride * d["leg"] if walk else 0.0
    sway = 0.02 * np.sin(2 * np.pi * p) if walk else 0.025 * np.sin(2 * np.pi * 0.2 * t)
    root = np.stack([sway, np.zeros_like(t), speed * t], axis=-1)
    pos, glob = skel.forward_kinematics(root, rot)
    # Lift the body so its lowest foot point (heel, toe base or toe tip) touches the floor.
    heel = np.array([0, -d["ankle"], -0.02 * d["h"]])
    feet = [pos[:, J[f"{s}Foot"]] + glob[:, J[f"{s}Foot"]] @ heel for s in ("Left", "Right")]
    feet += [pos[:, J[f"{s}{n}"]] for s in ("Left", "Right") for n in ("ToeBase", "Toe_End")]
    lift = -np.min(np.stack(feet)[..., 1], axis=0)
    lift += st.bounce * (0.5 + 0.5 * np.cos(4 * np.pi * (p - 0.25))) if walk else 0.0
    root[:, 1] = lift
    pos[..., 1] += lift[:, None]
    return SampleMotion(skel, d, root, rot, pos, glob)


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, n_joints: int,
                  amp: float) -> np.ndarray:
    """(T, J, 3) sums of three slow sinusoids per angle: natural wobble, not sensor noise."""
    freq = rng.uniform(0.2, 1.5, (3, n_joints, 3))
    phase = rng.uniform(0, 2 * np.pi, (3, n_joints, 3))
    waves = np.sin(2 * np.pi * freq * t[:, None, None, None] + phase)
    return amp / np.sqrt(3) * waves.sum(axis=1)


# Plug-in-Gait markers: (label, segment joint, offset in the segment's rest frame, metres).
# Offsets agree with the plug-in-gait profile's estimates (Bell hip regression from the ASIS,
# knee/ankle markers one typical half-width lateral, shoulder markers above the joint).
def _markers(d: dict[str, float]) -> list[tuple[str, str, tuple[float, float, float]]]:
    s, iad = d["s"], d["hip_x"] / 0.36
    asis = (d["hip_y"] + 0.30 * iad, 0.19 * iad)  # (height, forward) of mid-ASIS from Hips
    out = [("C7", "Spine2", (0, d["neck"] + 0.005 * s, -0.07 * s)),
           ("CLAV", "Spine2", (0, d["neck"] - 0.015 * s, 0.065 * s)),
           ("STRN", "Spine2", (0, 0.02 * s, 0.10 * s)),
           ("T10", "Spine2", (0, -0.02 * s, -0.10 * s)),
           ("RBAK", "Spine2", (-0.07 * s, 0.04 * s, -0.09 * s))]
    for side, k in (("L", 1.0), ("R", -1.0)):
        full = "Left" if side == "L" else "Right"
        table = [("ASI", "Hips", (iad / 2, *asis)),
                 ("PSI", "Hips", (0.045 * s, asis[0], asis[1] - 0.15 * s)),
                 ("THI", "UpLeg", (0.075 * s, -0.55 * d["thigh"], 0.01 * s)),
                 ("KNE", "UpLeg", (0.24 * iad, -d["thigh"], 0)),
                 ("TIB", "Leg", (0.055 * s, -0.5 * d["shin"], 0.01 * s)),
                 ("ANK", "Leg", (0.17 * iad, -d["shin"], 0)),
                 ("HEE", "Foot", (0, -0.7 * d["ankle"], -0.06 * s)),
                 ("TOE", "Foot", (0, -0.8 * d["ankle"] + 0.012 * s, d["toe"])),
                 ("SHO", "Shoulder", (d["arm_x"], 0.20 * iad, 0)),
                 ("UPA", "Arm", (0.045 * s, -0.55 * d["upper"], -0.02 * s)),
                 ("ELB", "Arm", (0.035 * s, -d["upper"], 0)),
                 ("FRM", "ForeArm", (0.035 * s, -0.5 * d["fore"], -0.01 * s)),
                 ("WRA", "ForeArm", (0, -d["fore"], 0.028 * s)),
                 ("WRB", "ForeArm", (0, -d["fore"], -0.028 * s)),
                 ("FIN", "Hand", (0, -0.075 * s, 0.005 * s)),
                 ("FHD", "Head", (0.045 * s, 0.075 * s, 0.085 * s)),
                 ("BHD", "Head", (0.05 * s, 0.085 * s, -0.075 * s))]
        for name, seg, (x, y, z) in table:
            joint = seg if seg in ("Hips", "Head") else full + seg
            out.append((side + name, joint, (k * x, y, z)))
    return out


def plug_in_gait_markers(m: SampleMotion, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Marker trajectories (T, P, 3) in millimetres, Z up as Vicon writes them (X = walking
    direction, Y = subject's left), with 0.5 mm jitter and one short occlusion (NaN)."""
    table = _markers(m.dims)
    seg = [J[joint] for _, joint, _ in table]
    off = np.array([o for _, _, o in table])
    pts = m.positions[:, seg] + np.einsum("tmij,mj->tmi", m.rotations[:, seg], off)
    pts = pts[..., [2, 0, 1]] * 1000.0  # (x, y, z) Y-up -> (z, x, y) Z-up: a proper rotation
    pts += rng.normal(0.0, 0.5, pts.shape)
    gap = rng.integers(0, len(table)), rng.integers(5, pts.shape[0] - 10), rng.integers(2, 6)
    pts[gap[1]:gap[1] + gap[2], gap[0]] = np.nan
    return pts, [label for label, _, _ in table]


def smpl22_positions(m: SampleMotion) -> np.ndarray:
    """(T, 22, 3) float32 joint positions in the smpl-22 layout, metres, Y up."""
    return m.positions[:, [J[n] for n in SMPL_FROM]].astype(np.float32)


README = """SYNTHETIC emotion-labelled motion: procedurally generated demo data, not motion capture.

Made by `eai sample-data` (eai.toolkit.sample_data, seed {seed}). Every clip is a sinusoidal
walk or a standing idle on a Mixamo-named skeleton whose joint rotations follow the emotional
gait literature (Roether et al. 2009, J. Vision; Montepare et al. 1987; Gross, Crane &
Fredrickson 2012): sad = slow, short strides, head and trunk bowed, little arm swing; angry =
fast, long strides, large arm swing with bent elbows; happy = fast, bouncy, large arm swing,
head up; fearful = slower, tense bent arms held close, raised shoulders, scanning head;
neutral = in between. Subjects differ in height and proportions; clips in phase and noise.
Use it to try the toolkit and for tests, never as evidence about real emotional movement.

Formats (one subfolder each, same clips):
  bvh/  joint rotations (Euler ZXY), centimetres, Y up ("mixamo" profile)
  c3d/  Plug-in-Gait markers on the body segments, millimetres, Z up, one short occlusion
  npy/  joint positions (T, 22, 3), smpl-22 layout, metres, Y up; sidecar JSON names the layout
Labels: in each file name (sample_EMOTION_ACTION_SUBJECT_NN), in a sidecar JSON beside each
file and in labels.csv (file, emotion, subject, action). Frame rate {fps} fps.
"""


def write_sample_data(out_dir: str | Path, clips_per_emotion: int = 4, seed: int = 0,
                      formats: tuple[str, ...] = ("bvh", "c3d", "npy")) -> list[Path]:
    """Write the demo set into out_dir (fmt/ subfolders, labels.csv, README.txt).

    Every fourth clip of an emotion is a standing "idle", the others walk; three subjects take
    turns. Deterministic for a given seed. Returns the motion files written, in order.
    """
    unknown = set(formats) - {"bvh", "c3d", "npy"}
    if unknown or clips_per_emotion < 1:
        raise ValueError(f"formats must be among bvh, c3d, npy (got {sorted(unknown)}) and "
                         f"clips_per_emotion >= 1 (got {clips_per_emotion})")
    if "c3d" in formats:
        from eai.converters.c3d_writer import write_c3d
    out = Path(out_dir)
    for fmt in formats:
        (out / fmt).mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    rows = []
    for e, emotion in enumerate(EMOTIONS):
        for n in range(clips_per_emotion):
            action = "idle" if n % 4 == 3 else "walk"
            subject = n % 3
            m = generate_motion(emotion, action, np.random.default_rng([seed, 1, subject]),
                                np.random.default_rng([seed, 2, e, n]))
            stem = f"sample_{emotion}_{action}_s{subject + 1:02d}_{n + 1:02d}"
            labels = {"emotion": emotion, "subject": f"s{subject + 1:02d}", "action": action,
                      "synthetic": True}
            for fmt in formats:
                path = out / fmt / f"{stem}.{fmt}"
                side = dict(labels)
                if fmt == "bvh":
                    skel = BvhSkeleton(m.skeleton.names, m.skeleton.parents,
                                       m.skeleton.offsets * 100.0,
                                       {k: v * 100.0 for k, v in m.skeleton.end_sites.items()})
                    write_bvh(path, skel, m.root * 100.0, m.angles, FPS, rotation_order="ZXY")
                    side["units"] = "cm"  # BVH cannot say; the sidecar can
                elif fmt == "c3d":
                    pts, names = plug_in_gait_markers(m, np.random.default_rng([seed, 3, e, n]))
                    write_c3d(path, pts, names, FPS, units="mm")
                else:
                    np.save(path, smpl22_positions(m), allow_pickle=False)
                    side = {"layout": "smpl-22", "fps": FPS, "units": "m", **labels}
                path.with_suffix(".json").write_text(json.dumps(side, indent=1) + "\n")
                written.append(path)
                rows.append({"file": f"{fmt}/{path.name}", "emotion": emotion,
                             "subject": labels["subject"], "action": action})
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "emotion", "subject", "action"])
        writer.writeheader()
        writer.writerows(rows)
    (out / "README.txt").write_text(README.format(seed=seed, fps=FPS))
    return written
