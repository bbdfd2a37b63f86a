"""Marker-set profiles for C3D: joint centres estimated from surface markers.

Markers sit on the skin, not in the joints, so every profile here estimates joint centres and
says so in `Profile.approximate` (the note travels with every clip). The estimates are simple,
vectorised over frames, and need no subject measurements:

- hip centres: Bell et al. (1990) regression in the pelvis frame, as fractions of the inter-ASIS
  distance (IAD): 19% posterior, 30% inferior and 36% lateral of the mid-ASIS point.
- a joint marked by one lateral marker (Plug-in-Gait's KNE, ANK, ELB ...) is moved medially, a
  shoulder marker is moved down the trunk. These offsets are fractions of the IAD too (about
  25 cm in adults), so they work in any length unit before units are known.
- landmark sets with medial and lateral markers (ISB / Qualisys) use their midpoint.
- technical clusters (three markers per segment) only locate segments: a joint lies roughly
  halfway between the centroids of the two segments it links.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from eai.converters.profiles import CORE_JOINTS, Profile
from eai.converters.recipes import Custom, P, Points, lerp, mean

Frame = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]

# Fractions of the inter-ASIS distance (IAD, ~0.25 m): typical adult offsets from marker to centre.
KNEE_MEDIAL = 0.24  # half a knee width plus the marker radius (~6 cm)
ANKLE_MEDIAL = 0.17  # half an ankle width plus the marker radius (~4 cm)
SHOULDER_DOWN = 0.20  # glenohumeral centre below the acromion marker (~5 cm)


def _unit(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)


def pelvis_frame(pts: Points, lasi: str, rasi: str, lpsi: str, rpsi: str,
                 sacr: str | None = None) -> Frame | None:
    """Per-frame pelvis axes: (mid-ASIS (T,3), anterior, left, up unit vectors, IAD (T,1))."""
    la, ra = pts.get(lasi), pts.get(rasi)
    lp, rp = pts.get(lpsi), pts.get(rpsi)
    back = (lp + rp) / 2 if lp is not None and rp is not None else (pts.get(sacr) if sacr else None)
    if la is None or ra is None or back is None:
        return None
    origin = (la + ra) / 2
    left = _unit(la - ra)
    ant = origin - back
    ant = _unit(ant - np.sum(ant * left, axis=-1, keepdims=True) * left)
    up = np.cross(ant, left)  # x anterior, y left, z up: right-handed
    iad = np.linalg.norm(la - ra, axis=-1, keepdims=True)
    return origin, ant, left, up, iad


class MarkerSet:
    """The pelvis markers of one marker set, and the estimates built on its pelvis frame."""

    def __init__(self, lasi: str, rasi: str, lpsi: str, rpsi: str, sacr: str | None = None):
        self.pelvis = (lasi, rasi, lpsi, rpsi, sacr)
        self.uses = (lasi, rasi, lpsi, rpsi)

    def _custom(self, fn: Callable[[Points, Frame], np.ndarray | None], uses: tuple[str, ...],
                label: str) -> Custom:
        def run(pts: Points) -> np.ndarray | None:
            frame = pelvis_frame(pts, *self.pelvis)
            return None if frame is None else fn(pts, frame)
        return Custom(run, uses=self.uses + uses, label=label)

    def hip(self, side: str) -> Custom:
        """Bell et al. (1990): 0.19 IAD posterior, 0.30 IAD inferior, 0.36 IAD lateral."""
        sign = 1.0 if side == "l" else -1.0

        def fn(pts: Points, f: Frame) -> np.ndarray:
            origin, ant, left, up, iad = f
            return origin + iad * (-0.19 * ant - 0.30 * up + sign * 0.36 * left)
        return self._custom(fn, (), f"{side}_hip (Bell 1990 regression)")

    def medial(self, marker: str, side: str, k: float) -> Custom:
        """A lateral marker moved medially by k * IAD along the pelvis left-right axis (coarse
        when the limb rotates far from the pelvis, e.g. a turned-out foot)."""
        sign = -1.0 if side == "l" else 1.0

        def fn(pts: Points, f: Frame) -> np.ndarray | None:
            m = pts.get(marker)
            return None if m is None else m + sign * k * f[4] * f[2]
        return self._custom(fn, (marker,), f"{marker} moved {k:g} IAD medially")

    def below(self, marker: str, neck: tuple[str, str], k: float) -> Custom:
        """A marker moved down the trunk (mid-ASIS -> neck axis) by k * IAD."""
        def fn(pts: Points, f: Frame) -> np.ndarray | None:
            m, a, b = pts.get(marker), pts.get(neck[0]), pts.get(neck[1])
            if m is None or a is None or b is None:
                return None
            return m - k * f[4] * _unit((a + b) / 2 - f[0])
        return self._custom(fn, (marker, *neck), f"{marker} moved {k:g} IAD down the trunk")


# --- Vicon Plug-in-Gait full body -------------------------------------------------------------


def _plug_in_gait_joints() -> dict:
    pig = MarkerSet("LASI", "RASI", "LPSI", "RPSI", sacr="SACR")
    pelvis = mean("LASI", "RASI", P("LPSI", "SACR"), P("RPSI", "SACR"))
    chest = mean("T10", "STRN")
    joints = {"pelvis": pelvis, "spine": lerp(pelvis, chest, 0.5), "chest": chest,
              "neck": mean("C7", "CLAV"), "head": mean("LFHD", "RFHD", "LBHD", "RBHD")}
    for s in "lr":
        S = s.upper()  # noqa: N806 - the marker prefix, as Plug-in-Gait spells it
        joints.update({
            f"{s}_hip": pig.hip(s),
            f"{s}_knee": pig.medial(f"{S}KNE", s, KNEE_MEDIAL),
            f"{s}_ankle": pig.medial(f"{S}ANK", s, ANKLE_MEDIAL),
            f"{s}_foot": P(f"{S}TOE"),  # on the second metatarsal head: the ball of the foot
            f"{s}_shoulder": pig.below(f"{S}SHO", ("C7", "CLAV"), SHOULDER_DOWN),
            f"{s}_elbow": P(f"{S}ELB"),  # lateral epicondyle: ~3-4 cm lateral of the centre
            f"{s}_wrist": mean(f"{S}WRA", f"{S}WRB"),
        })
    return joints


PLUG_IN_GAIT = Profile(
    name="plug-in-gait",
    description="Vicon Plug-in-Gait full-body markers (LASI, LKNE, LSHO, C7, LFHD ...)",
    kind="markers", aliases=("pig", "vicon-pig"), joints=_plug_in_gait_joints(),
    extra_signature=("RBAK", *(f"{s}{m}" for s in "LR"
                               for m in ("THI", "TIB", "HEE", "FIN", "UPA", "FRM"))),
    approximate="joint centres estimated from Plug-in-Gait skin markers (hips by the Bell "
                "regression, knees, ankles and shoulders by typical offsets from one marker, "
                "elbows at the lateral marker): about 2-4 cm from the true centres.",
)

# --- ISB anatomical landmarks, as exported by Qualisys (L_IAS, L_FLE, L_FME ...) ----------------


def _isb_landmark_joints() -> dict:
    isb = MarkerSet("L_IAS", "R_IAS", "L_IPS", "R_IPS")
    pelvis = mean("L_IAS", "R_IAS", "L_IPS", "R_IPS")
    chest = mean("TV8", "SXS")
    joints = {"pelvis": pelvis, "spine": lerp(pelvis, chest, 0.5), "chest": chest,
              "neck": mean("CV7", "SNJ"), "head": mean("L_HDF", "R_HDF", "L_HDB", "R_HDB")}
    for s in "lr":
        S = s.upper()  # noqa: N806
        joints.update({
            f"{s}_hip": isb.hip(s),
            f"{s}_knee": mean(f"{S}_FLE", f"{S}_FME"),  # lateral and medial epicondyles
            f"{s}_ankle": mean(f"{S}_FAL", f"{S}_TAM"),  # lateral and medial malleoli
            f"{s}_foot": mean(f"{S}_FM1", f"{S}_FM5"),  # first and fifth metatarsal heads
            f"{s}_shoulder": isb.below(f"{S}_SAJ", ("CV7", "SNJ"), SHOULDER_DOWN),
            f"{s}_elbow": mean(f"{S}_HLE", f"{S}_HME"),  # humeral epicondyles
            f"{s}_wrist": mean(f"{S}_RSP", f"{S}_UHE"),  # radial and ulnar styloids
        })
    return joints


QUALISYS_GAIT = Profile(
    name="qualisys-gait",
    description="ISB anatomical landmarks as named by Qualisys (L_IAS, L_FLE, L_FME, CV7 ...)",
    kind="markers", aliases=("isb-landmarks",), joints=_isb_landmark_joints(),
    extra_signature=("R_SCAP", *(f"{s}_{m}" for s in "LR"
                                 for m in ("FTC", "FAX", "TTC", "FCC", "HM2", "HM5"))),
    approximate="joint centres estimated from anatomical landmarks (knees, ankles, elbows and "
                "wrists as medial-lateral midpoints, hips by the Bell regression, shoulders "
                "below the acromion marker): about 1-3 cm from the true centres.",
)

# --- Technical clusters: three markers per segment (c3d.org Sample02) ----------------------


def centroid(prefix: str, n: int = 3) -> Custom:
    """Centroid of a rigid cluster `prefix1..n`, still estimated when some markers are missing.

    Each present marker votes for the centroid as itself minus its mean offset from the centroid
    (measured on frames where the whole cluster is visible). Exact while the cluster only
    translates, about 1-2 cm off when it has rotated 30 degrees: better than letting a gap in
    one marker blank the whole segment.
    """
    names = tuple(f"{prefix}{i}" for i in range(1, n + 1))

    def fn(pts: Points) -> np.ndarray | None:
        arrays = [pts.get(name) for name in names]
        if any(a is None for a in arrays):
            return None
        x = np.stack(arrays, axis=1)  # (T, n, 3)
        ok = np.isfinite(x).all(axis=-1)  # (T, n)
        full = ok.all(axis=1)
        if not full.any():
            return None
        offsets = (x[full] - x[full].mean(axis=1, keepdims=True)).mean(axis=0)  # (n, 3)
        votes = np.where(ok[..., None], x - offsets, 0.0).sum(axis=1)
        count = ok.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore"):
            return np.where(count > 0, votes / np.maximum(count, 1), np.nan)
    return Custom(fn, uses=names, label=f"centroid({prefix}1-{n})")


def _cluster_joints() -> dict:
    """Each joint halfway between the centroids of the two segment clusters it links."""
    pv, ta = centroid("RPV"), centroid("RTA")  # one pelvis and one trunk cluster
    # No head or neck markers: those joints stay missing rather than being invented.
    joints = {"pelvis": pv, "spine": lerp(pv, ta, 0.5), "chest": ta}
    for s in "lr":
        ft, sk, th, ar, fa = (centroid(s.upper() + seg) for seg in ("FT", "SK", "TH", "AR", "FA"))
        joints.update({
            f"{s}_hip": lerp(pv, th, 0.5), f"{s}_knee": lerp(th, sk, 0.5),
            f"{s}_ankle": lerp(sk, ft, 0.5), f"{s}_foot": ft,
            f"{s}_shoulder": lerp(ta, ar, 0.5), f"{s}_elbow": lerp(ar, fa, 0.5),
            # The forearm cluster sits mid-forearm: the wrist lies as far beyond it as the elbow
            # lies before it.
            f"{s}_wrist": lerp(ar, fa, 1.5),
        })
    return joints


CLUSTER_MARKERS = Profile(
    name="cluster-markers",
    description="technical marker clusters, 3 per segment (RFT1-3 foot, RSK shank, RTH thigh, "
                "RPV1-3 pelvis, RTA1-3 trunk, RAR upper arm, RFA forearm; c3d.org Sample02)",
    kind="markers", aliases=("clusters",), joints=_cluster_joints(),
    required=tuple(j for j in CORE_JOINTS if j != "head"),
    approximate="joint centres estimated as midpoints between segment cluster centroids (wrists "
                "extrapolated along the forearm), coarse: about 5-10 cm; the set has no head or "
                "neck markers, so the head is not measured (masked) and the neck is absent.",
)

MARKER_PROFILES: list[Profile] = [PLUG_IN_GAIT, QUALISYS_GAIT, CLUSTER_MARKERS]
