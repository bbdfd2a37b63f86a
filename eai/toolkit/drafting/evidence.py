"""The evidence of a draft: the clip's kinematic descriptors, with levels, as data and as text.

Every draft line stores the whole evidence (all descriptors the clip has, value, unit and level
relative to the skeleton tokenizer's reference population for that kind of movement), because
reviewers and the faithfulness check need what the model was given. The prompt shows a short,
readable subset: the descriptors in PROMPT_DESCRIPTORS, unusual ones (low/high) first.
"""

from __future__ import annotations

import math
from typing import Any

from eai.toolkit.clip import Clip
from eai.toolkit.descriptors import DESCRIPTORS, DescriptorLevels, compute_descriptors

# Descriptors a reader understands without a manual: (what it is, what its low level means,
# what its high level means). The prompt states the unusual levels in these plain words (a small
# instruct model repeats words it is given far more faithfully than it interprets numbers);
# order = priority when more are unusual than the prompt shows.
PROMPT_DESCRIPTORS: dict[str, tuple[str, str, str]] = {
    "root_speed_mean": ("travel speed", "travels slowly", "travels fast"),
    "quantity_of_motion": ("overall movement", "moves little overall", "moves a lot overall"),
    "head_pitch_mean": ("head inclination", "holds the head up", "keeps the head lowered"),
    "trunk_lean_mean": ("trunk lean", "keeps the trunk upright", "leans the trunk forward"),
    "arm_expansion": ("arm openness", "keeps the arms close to the body",
                      "holds the arms wide, away from the body"),
    "wrist_speed_mean": ("hand speed", "moves the hands slowly", "moves the hands fast"),
    "stride_length": ("stride length", "takes short steps", "takes long strides"),
    "hand_height_mean": ("hand height", "keeps the hands low", "raises the hands"),
    "shoulder_elevation": ("shoulder height", "drops the shoulders", "raises the shoulders"),
    "spine_flexion": ("upper-back rounding", "keeps the back straight",
                      "rounds the upper back"),
    "pelvis_bounce": ("vertical bounce", "moves with little bounce", "bounces up and down"),
    "arm_swing": ("arm swing", "swings the arms little", "swings the arms widely"),
    "stride_frequency": ("step rate", "steps slowly", "steps quickly"),
    "wrist_jerk": ("jerkiness of the hands", "moves the hands smoothly",
                   "moves the hands jerkily"),
    "knee_flexion_mean": ("knee bend", "keeps the knees straight", "bends the knees"),
    "stillness_fraction": ("time spent still", "is rarely still", "pauses often"),
    "duration": ("duration", "is brief", "takes a long time"),
}
_UNITS = {d.name: d.unit for d in DESCRIPTORS}


def clip_evidence(clip: Clip, levels: DescriptorLevels | None) -> dict[str, dict[str, Any]]:
    """{descriptor: {"value", "unit", "level"}} for every descriptor of the clip (value None
    where it could not be computed; level None without levels or without a value). Levels are
    relative to the clip's action when the reference population had enough clips of it."""
    values = compute_descriptors(clip).values
    lv = levels.levels(values, group=clip.action) if levels is not None else {}
    out = {}
    for d in DESCRIPTORS:
        v = values.get(d.name, math.nan)
        finite = v is not None and math.isfinite(v)
        out[d.name] = {"value": round(float(v), 4) if finite else None, "unit": d.unit,
                       "level": lv.get(d.name) if finite else None}
    return out


def _number(value: float, unit: str) -> str:
    if unit == "1":
        return f"{value:.3g}"
    if unit.startswith("1 (per "):  # "1 (per leg length)" -> "0.42 x leg length"
        return f"{value:.3g} x {unit[len('1 (per '):-1]}"
    return f"{value:.3g} {unit}"


def evidence_lines(evidence: dict[str, dict[str, Any]], limit: int = 8) -> list[str]:
    """Readable lines for the prompt, the unusual levels in plain words first:
    "- travels slowly (travel speed 0.61 m/s, low)"; then typical ones ("- has a typical hand
    speed (0.8 m/s)"); without levels, the measurements alone. At most `limit` lines, in
    PROMPT_DESCRIPTORS order within each group."""
    return [line for _, line in _shown(evidence, limit)]


def shown_descriptors(evidence: dict[str, dict[str, Any]], limit: int = 8) -> list[str]:
    """The descriptors `evidence_lines` shows, in its order."""
    return [name for name, _ in _shown(evidence, limit)]


def _shown(evidence: dict[str, dict[str, Any]], limit: int) -> list[tuple[str, str]]:
    unusual, typical = [], []
    for name, (what, low, high) in PROMPT_DESCRIPTORS.items():
        e = evidence.get(name)
        if not e or e.get("value") is None:
            continue
        number, level = _number(e["value"], e["unit"]), e.get("level")
        if level in ("low", "high"):
            unusual.append((name, f"- {low if level == 'low' else high} ({what} {number}, "
                                  f"{level})"))
        elif level == "typical":
            typical.append((name, f"- has a typical {what} ({number})"))
        else:
            typical.append((name, f"- has a {what} of {number}"))
    return (unusual + typical)[:limit]


def evidence_text(evidence: dict[str, dict[str, Any]], limit: int = 8) -> str:
    lines = evidence_lines(evidence, limit)
    return "\n".join(lines) if lines else "- no measurements available"
