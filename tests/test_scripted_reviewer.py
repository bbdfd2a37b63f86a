"""The scripted reviewer's rules (scripts/scripted_reviewer.py), without a server; the
Label Studio round trip it drives is exercised in tests/test_review_labelstudio.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa

from eai.toolkit.review.mapping import outcome_of, prediction_result, result_values

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


def test_lists_the_tasks_with_the_export_and_skips_its_own_reviews(monkeypatch, capsys):
    """main() lists the project with project_tasks (Label Studio's export: two requests),
    whose annotations name their author by id, or inline as an object in some exports."""
    def task(tid, clip_id, annotations=()):
        pred = {"id": 10 + tid, "model_version": "m1", "created_at": "2026-01-01T00:00:00Z",
                "result": prediction_result("tired", TEXT)}
        drafts = {"m1": {"emotion": "tired", "faithful": True, "contradictions": []}}
        return {"id": tid, "data": {"clip_id": clip_id, "eai": {"drafts": drafts}},
                "annotations": list(annotations), "predictions": [pred]}

    tasks = [task(1, "a"), task(2, "b"), task(3, "c", [{"completed_by": 7}]),
             task(4, "d", [{"completed_by": {"id": 7, "email": "me@x"}}]), task(5, "nolabel")]
    created, listed = [], []
    ls = SimpleNamespace(users=SimpleNamespace(whoami=lambda: SimpleNamespace(id=7)),
                         annotations=SimpleNamespace(create=lambda **kw: created.append(kw)))
    monkeypatch.setattr(reviewer, "connect", lambda url: SimpleNamespace(
        client=lambda: ls, url="http://ls"))
    monkeypatch.setattr(reviewer, "require_project",
                        lambda client, title, url: SimpleNamespace(id=42, title=title))
    monkeypatch.setattr(reviewer, "project_tasks",
                        lambda client, pid: listed.append(pid) or tasks)
    monkeypatch.setattr(reviewer, "read_table", lambda path, columns: pa.table(
        {"clip_id": ["a", "b", "c", "d", "nolabel"], "emotion": ["tired", "sad", "sad", "sad",
                                                                 None]}))
    monkeypatch.setattr(sys, "argv", ["scripted_reviewer.py", "--project", "P", "--dataset",
                                      "ds"])
    reviewer.main()
    assert listed == [42]
    assert [c["id"] for c in created] == [1, 2] and created[0]["parent_prediction"] == 11
    out = capsys.readouterr().out
    assert out.strip() == "accepted 1, already reviewed 2, no ground truth 1, relabelled 1"
