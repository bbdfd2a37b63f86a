"""Pure mappings between eai and Label Studio: draft -> task and prediction, annotation ->
CuratedPair. No server here, so all of it is tested without one (tests/test_review_mapping.py).

Task data holds what belongs to the clip (its render, the evidence) and a compact summary of
every model version's draft (`eai.drafts`), from which the panels and the review priority are
rebuilt when a new model version is pushed. Predictions hold what the reviewer edits: the
emotion choice and the explanation, with model_version and score (the draft's confidence).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from eai.toolkit.drafting.draft import Draft
from eai.toolkit.review.curated import CuratedPair
from eai.toolkit.review.display import draft_html, evidence_html
from eai.toolkit.review.template import FLAG_CONTRADICTS, FLAG_REJECT, OBJECT

TASK_FORMAT = 1
_FLAG_TEXT = {"The drafted explanation contradicts the motion": FLAG_CONTRADICTS,
              "Reject: not usable for training": FLAG_REJECT}  # values when no alias is kept


def draft_summary(d: Draft) -> dict[str, Any]:
    """What task data keeps of one draft (enough for the panels and the priority)."""
    f = d.faithfulness or {}
    return {
        "model_version": d.model_version, "emotion": d.emotion, "confidence": d.confidence,
        "classifier": d.classifier, "explanation": d.explanation, "created_at": d.created_at,
        "label_source": d.label_source, "faithful": f.get("faithful"),
        "faithfulness_checked": f.get("checked"),
        "contradictions": [{k: c.get(k) for k in ("phrase", "descriptor", "claimed", "measured")}
                           for c in f.get("contradictions") or []],
        "warnings": list(d.warnings or []),
    }


def priority(s: dict[str, Any]) -> float:
    """How much a reviewer's look is worth, higher first: uncertainty (1 - confidence), +1 when
    the classifier disagrees with the drafted label, +1 when the faithfulness check found a
    contradiction (+0.25 per further one, up to +2), +1 when the draft has no label."""
    conf = s.get("confidence")
    p = 1.0 - float(conf) if conf is not None else 1.0
    cls = (s.get("classifier") or {}).get("emotion")
    if cls and s.get("emotion") and cls != s["emotion"]:
        p += 1.0
    n = len(s.get("contradictions") or [])
    if n or s.get("faithful") is False:
        p += 1.0 + min(max(n - 1, 0) * 0.25, 1.0)
    if not s.get("emotion"):
        p += 1.0
    return round(p, 4)


def newest_first(summaries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(summaries.values(), key=lambda s: (s.get("created_at") or "",
                                                     s["model_version"]), reverse=True)


def prediction_result(emotion: str | None, explanation: str) -> list[dict[str, Any]]:
    out = []
    if emotion:
        out.append({"from_name": "emotion", "to_name": OBJECT, "type": "choices",
                    "value": {"choices": [emotion]}})
    if explanation:
        out.append({"from_name": "explanation", "to_name": OBJECT, "type": "textarea",
                    "value": {"text": [explanation]}})
    return out


def draft_prediction(d: Draft) -> dict[str, Any]:
    p: dict[str, Any] = {"model_version": d.model_version,
                         "result": prediction_result(d.emotion, d.explanation)}
    if d.confidence is not None:
        p["score"] = float(d.confidence)
    return p


def task_data(clip_id: str, dataset: str | None, action: str | None, video_url: str,
              fps: float, evidence: dict[str, dict[str, Any]],
              summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The data of a clip's task; the newest draft sets the priority and the highlights."""
    ordered = newest_first(summaries)
    latest = ordered[0]
    contradicted = {c.get("descriptor") for c in latest.get("contradictions") or []}
    title = " · ".join(x for x in (clip_id, dataset, action) if x)
    return {"clip_id": clip_id, "dataset": dataset, "action": action, "title": title,
            "video": video_url, "fps": float(fps),
            "evidence_html": evidence_html(evidence, contradicted),
            "draft_html": draft_html(ordered), "priority": priority(latest),
            "eai": {"task_format": TASK_FORMAT, "drafts": summaries}}


# -- annotations back ---------------------------------------------------------------------------
def result_values(result: list[dict[str, Any]] | None) -> dict[str, Any]:
    """{emotion, explanation, rating, flags} of a Label Studio result list."""
    out: dict[str, Any] = {"emotion": None, "explanation": "", "rating": None, "flags": set()}
    texts = []
    for r in result or []:
        name, value = r.get("from_name"), r.get("value") or {}
        if name == "emotion" and value.get("choices"):
            out["emotion"] = value["choices"][0]
        elif name == "explanation":
            texts += [t for t in value.get("text") or [] if isinstance(t, str)]
        elif name == "quality" and value.get("rating") is not None:
            out["rating"] = int(value["rating"])
        elif name == "flags":
            out["flags"] |= {_FLAG_TEXT.get(c, c) for c in value.get("choices") or []}
    out["explanation"] = "\n".join(texts).strip()
    return out


def same_text(a: str | None, b: str | None) -> bool:
    return " ".join((a or "").split()) == " ".join((b or "").split())


def pick_prediction(task: dict[str, Any], annotation: dict[str, Any],
                    preferred_model_version: str | None = None
                    ) -> tuple[dict[str, Any] | None, str | None]:
    """(prediction, how it was found): the annotation's parent_prediction, else the
    prediction of the project's model version (the one Label Studio pre-fills), else the
    newest one."""
    preds = task.get("predictions") or []
    parent = annotation.get("parent_prediction")
    for p in preds:
        if parent is not None and p.get("id") == parent:
            return p, "parent_prediction"
    for p in preds:
        if preferred_model_version and p.get("model_version") == preferred_model_version:
            return p, "project_model_version"
    if preds:
        return max(preds, key=lambda p: (str(p.get("created_at") or ""), p.get("id") or 0)), \
            "newest"
    return None, None


def outcome_of(final: dict[str, Any], draft_emotion: str | None, draft_text: str,
               cancelled: bool) -> tuple[str, str | None, bool]:
    """(outcome, rejected_because, text_edited), in this order of precedence: skipped,
    marked reject, no emotion, empty text, contradiction flagged but the text left as drafted
    (all rejected); then relabelled (another emotion), edited (other text), accepted."""
    edited = not same_text(final["explanation"], draft_text)
    if cancelled:
        return "rejected", "skipped", edited
    if FLAG_REJECT in final["flags"]:
        return "rejected", "marked_reject", edited
    if not final["emotion"]:
        return "rejected", "no_emotion", edited
    if not final["explanation"]:
        return "rejected", "empty_explanation", edited
    if FLAG_CONTRADICTS in final["flags"] and not edited:
        return "rejected", "contradiction_not_fixed", edited
    if final["emotion"] != draft_emotion:
        return "relabelled", None, edited
    return ("edited" if edited else "accepted"), None, edited


def iso(value: Any) -> str | None:
    """UTC ISO 8601 of a datetime or a Label Studio timestamp string."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def annotation_to_pair(task: dict[str, Any], annotation: dict[str, Any], *, url: str,
                       project: str, project_id: int, reviewers: dict[int, str] | None = None,
                       preferred_model_version: str | None = None) -> CuratedPair:
    """The CuratedPair of one annotation of one task (both as Label Studio's JSON)."""
    data = task.get("data") or {}
    final = result_values(annotation.get("result"))
    pred, matched_by = pick_prediction(task, annotation, preferred_model_version)
    drafted = result_values(pred.get("result")) if pred else result_values([])
    outcome, because, edited = outcome_of(final, drafted["emotion"], drafted["explanation"],
                                          bool(annotation.get("was_cancelled")))
    draft = None if pred is None else {
        "model_version": pred.get("model_version"), "emotion": drafted["emotion"],
        "explanation": drafted["explanation"], "confidence": pred.get("score"),
        "prediction_id": pred.get("id"), "matched_by": matched_by}
    user = annotation.get("completed_by")
    if isinstance(user, dict):  # some exports inline the user
        user = user.get("email") or user.get("id")
    reviewer = (reviewers or {}).get(user, None) if isinstance(user, int) else user
    lead = annotation.get("lead_time")
    return CuratedPair(
        clip_id=data.get("clip_id") or f"label-studio/task-{task.get('id')}",
        emotion=final["emotion"], explanation=final["explanation"], outcome=outcome,
        draft=draft, reviewer=reviewer if reviewer is not None else
        (str(user) if user is not None else None),
        rating=final["rating"], contradiction=FLAG_CONTRADICTS in final["flags"],
        lead_time_s=round(float(lead), 3) if lead is not None else None,
        label_studio={"url": url, "project": project, "project_id": project_id,
                      "task_id": task.get("id"), "annotation_id": annotation.get("id")},
        updated_at=iso(annotation.get("updated_at") or annotation.get("created_at")) or "",
        created_at=iso(annotation.get("created_at")), text_edited=edited,
        rejected_because=because, dataset=data.get("dataset"), action=data.get("action"))
