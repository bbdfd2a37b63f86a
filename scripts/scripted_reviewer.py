"""A SCRIPTED reviewer for Label Studio: reviews eai's drafts by rule, from ground-truth labels.

This is not a person. It exists so that the whole loop (draft -> Label Studio -> curated pairs ->
finetune) can be run and measured reproducibly on a labelled dataset (BENCHMARKS.md), and every
number it produces must be reported as coming from a scripted reviewer.

For every task of the project whose clip carries a ground-truth emotion in DATASET, it takes
the prediction of --model-version (default: the newest) and, through the Label Studio API as a
reviewer would:

  - rejects the draft when the faithfulness check found a claim that contradicts the clip's
    measured descriptors (the "reject" and "contradicts" flags set, rating 1);
  - otherwise, relabels it when the drafted emotion is not the ground truth: the emotion choice
    is set to the truth and, where the text names the wrong emotion word, that word is replaced
    by the true one (as a reviewer fixing one word would; the rest of the text is kept),
    rating 2;
  - otherwise accepts it as it is (rating 4).

Tasks already annotated by this reviewer are left alone, so re-running adds nothing. Clips
without a ground-truth emotion are skipped.

Usage: python scripts/scripted_reviewer.py --project NAME --dataset DATASET
       [--model-version V] [--url URL]   (the token as for `eai review`: the local server's,
       or LABEL_STUDIO_API_KEY with --url)
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

from eai.toolkit.dataset import read_table
from eai.toolkit.review.connection import connect
from eai.toolkit.review.mapping import prediction_result, result_values
from eai.toolkit.review.project import project_tasks, require_project
from eai.toolkit.review.template import FLAG_CONTRADICTS, FLAG_REJECT, OBJECT


def decide(truth: str, draft: dict) -> tuple[str, list[dict], int]:
    """(outcome, Label Studio result, rating) for one draft summary (task data eai.drafts)."""
    emotion, text = draft.get("emotion"), draft.get("explanation") or ""
    flags: list[str] = []
    if draft.get("contradictions") or draft.get("faithful") is False:
        outcome, rating, flags = "rejected", 1, [FLAG_REJECT, FLAG_CONTRADICTS]
    elif emotion != truth:
        outcome, rating = "relabelled", 2
        if emotion:
            text = re.sub(rf"\b{re.escape(emotion)}\b", truth, text, flags=re.IGNORECASE)
        emotion = truth
    else:
        outcome, rating = "accepted", 4
    result = prediction_result(emotion, text)
    result.append({"from_name": "quality", "to_name": OBJECT, "type": "rating",
                   "value": {"rating": rating}})
    if flags:
        result.append({"from_name": "flags", "to_name": OBJECT, "type": "choices",
                       "value": {"choices": flags}})
    return outcome, result, rating


def annotated_by(annotation: dict) -> int | str | None:
    """The id of the annotation's author: an id in Label Studio's export, but some exports
    inline the user as an object."""
    user = annotation.get("completed_by")
    return user.get("id") if isinstance(user, dict) else user


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--project", required=True)
    ap.add_argument("--dataset", required=True, type=Path)
    ap.add_argument("--model-version")
    ap.add_argument("--url")
    a = ap.parse_args()
    table = read_table(a.dataset, ["clip_id", "emotion"]).to_pydict()
    truth = {c: e for c, e in zip(table["clip_id"], table["emotion"]) if e}
    conn = connect(a.url)
    ls = conn.client()
    project = require_project(ls, a.project, conn.url)
    me = ls.users.whoami().id
    counts: Counter[str] = Counter()
    # the export-based listing: two requests whatever the project's size
    for task in project_tasks(ls, project.id):
        clip_id = task["data"].get("clip_id")
        if clip_id not in truth:
            counts["no ground truth"] += 1
            continue
        if any(annotated_by(ann) == me for ann in task.get("annotations") or []):
            counts["already reviewed"] += 1
            continue
        preds = task.get("predictions") or []
        if a.model_version:
            preds = [p for p in preds if p.get("model_version") == a.model_version]
        if not preds:
            counts["no prediction of that model version"] += 1
            continue
        pred = max(preds, key=lambda p: (str(p.get("created_at") or ""), p.get("id") or 0))
        drafts = task["data"].get("eai", {}).get("drafts", {})
        draft = dict(drafts.get(pred["model_version"]) or {})
        shown = result_values(pred.get("result"))  # what the reviewer sees pre-filled
        draft.update(emotion=shown["emotion"], explanation=shown["explanation"])
        outcome, result, _ = decide(truth[clip_id], draft)
        ls.annotations.create(id=task["id"], result=result, parent_prediction=pred["id"],
                              lead_time=5.0)
        counts[outcome] += 1
    print(", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no tasks")


if __name__ == "__main__":
    main()
