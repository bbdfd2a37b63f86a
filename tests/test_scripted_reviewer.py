"""The scripted reviewer's rules (scripts/scripted_reviewer.py), without a server; the
Label Studio round trip it drives is exercised in tests/test_review_labelstudio.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from eai.toolkit.review.mapping import outcome_of, result_values

_path = Path(__file__).resolve().parents[1] / "scripts" / "scripted_reviewer.py"
_spec = importlib.util.spec_from_file_location("scripted_reviewer", _path)
reviewer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reviewer)

TEXT = "The person walks slowly with the head lowered, which shows they are tired."


def _outcome(truth: str, draft: dict) -> tuple[str, dict]:
    outcome, result, rating = reviewer.decide(truth, draft)
    final = result_values(result)
    # the pull side must read the same outcome from what the reviewer submitted
    derived = outcome_of(final, draft.get("emotion"), draft.get("explanation", ""), False)[0]
    assert derived == outcome, (derived, outcome)
    assert final["rating"] == rating
    return outcome, final


def test_accepts_a_right_and_faithful_draft():
    outcome, final = _outcome("tired", {"emotion": "tired", "explanation": TEXT,
                                        "faithful": True, "contradictions": []})
    assert outcome == "accepted" and final["explanation"] == TEXT and not final["flags"]


def test_relabels_a_wrong_emotion_and_fixes_the_word():
    outcome, final = _outcome("sad", {"emotion": "tired", "explanation": TEXT,
                                      "faithful": True, "contradictions": []})
    assert outcome == "relabelled" and final["emotion"] == "sad"
    assert final["explanation"] == TEXT.replace("tired", "sad")


def test_rejects_a_contradicting_explanation_even_with_the_right_label():
    outcome, final = _outcome("tired", {"emotion": "tired", "explanation": TEXT,
                                        "faithful": False,
                                        "contradictions": [{"descriptor": "root_speed_mean"}]})
    assert outcome == "rejected" and {"reject", "contradicts"} <= final["flags"]
