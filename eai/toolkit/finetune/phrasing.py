"""Other words for a descriptor's level, for the alignment statements (`--align-phrasing varied`).

The alignment stage teaches the LM to state what the evidence makes true. In the prompt's own
words alone ("keeps the trunk upright") it never meets the words reviewed explanations use for
the same levels ("an upright posture", "stooped", "arms open", "high overall movement"), and
finetuned models wrote exactly those words against the evidence (BENCHMARKS.md section 7).
`varied` states each unusual level in one of these phrasings, drawn per clip from the seed.
Every phrasing is read by the faithfulness check as its descriptor's claim at that level
(tests/test_faithfulness.py), so the statements stay true by the same measure that judges
the model.
"""

from __future__ import annotations

import random

from eai.toolkit.drafting.evidence import PROMPT_DESCRIPTORS

ALIGN_PHRASINGS = ("prompt", "varied")

# descriptor -> (low phrasings, high phrasings), besides the prompt's own (PROMPT_DESCRIPTORS)
OTHER_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "root_speed_mean": (("moves forward at a slow pace", "covers ground slowly"),
                        ("moves forward at a fast pace", "covers ground quickly")),
    "quantity_of_motion": (("shows low overall movement", "makes small, restrained movements"),
                           ("shows high overall movement", "makes large, energetic movements")),
    "head_pitch_mean": (("keeps the head raised", "looks up"), ("bows the head", "looks down")),
    "trunk_lean_mean": (("stands upright", "has an upright posture"),
                        ("has a stooped posture", "hunches forward")),
    "arm_expansion": (("holds the arms close",), ("opens the arms", "spreads the arms wide")),
    "wrist_speed_mean": (("makes slow hand movements",), ("makes quick hand movements",)),
    "stride_length": (("walks with short strides",), ("walks with long steps",)),
    "hand_height_mean": (("holds the hands down",), ("holds the hands up high",)),
    "shoulder_elevation": (("lets the shoulders sag",), ("lifts the shoulders",)),
    "spine_flexion": (("holds the back straight",), ("curves the upper back",)),
    "pelvis_bounce": (("shows little vertical bounce",), ("moves with a lot of bounce",)),
    "arm_swing": (("barely swings the arms",), ("swings the arms a lot",)),
    "stride_frequency": ((), ("takes quick steps",)),
    "wrist_jerk": (("makes smooth hand movements",), ("makes jerky hand movements",)),
    "knee_flexion_mean": (("keeps the legs straight",), ("walks with bent knees",)),
    "stillness_fraction": (("keeps moving",), ("stays still for long stretches",)),
    "duration": ((), ()),
}


def level_phrasings(name: str, level: str) -> list[str]:
    """Every phrasing of `name` at `level` ("low" / "high"): the prompt's first."""
    _, low, high = PROMPT_DESCRIPTORS[name]
    low_others, high_others = OTHER_WORDS.get(name, ((), ()))
    return [low, *low_others] if level == "low" else [high, *high_others]


def level_phrase(name: str, level: str, rng: random.Random | None = None) -> str:
    """The prompt's phrasing without rng; one drawn from level_phrasings with it."""
    options = level_phrasings(name, level)
    return options[0] if rng is None else rng.choice(options)
