"""Scores of a model's drafts against the clips' true emotions (`eai evaluate --model`).

Pure functions over plain `Answer` records, so every number can be checked by hand
(docs/evaluate.md defines each):

- accuracy and macro-F1 over all clips and per dataset: an answer without a label (it did not
  parse, or the clip could not be drafted) counts as wrong;
- per-class recall and a confusion matrix whose last column is "unparsed";
- the share of answers that parse, the share of drafts with an explanation, of those the
  share of faithful ones, and the share of drafts whose explanation cites at least one
  measurement the evidence supports (a text that claims nothing cannot contradict anything, so
  a degenerate one passes the faithfulness check; this share shows it);
- what the explanations state about the movement: the distinct checked statements by status,
  their precision (supported / checked), and the share of drafts that are grounded (cite the
  evidence and contradict none of it). These do not reward a text for saying nothing;
- calibration of the confidences: their mean, the accuracy of the most confident third and the
  expected calibration error;
- ROUGE-L F1 of explanations against curated reference explanations.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eai.toolkit.drafting.faithfulness import CHECKED_STATUSES
from eai.toolkit.evaluation import macro_f1

UNPARSED = "unparsed"
ECE_BINS = 10
_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class Answer:
    """One labelled clip of the evaluated selection and what the model made of it."""

    clip_id: str
    dataset: str
    truth: str
    emotion: str | None  # the model's label; None when unparsed or not drafted
    confidence: float | None = None
    drafted: bool = True  # False: the clip could not be prepared (no draft line)
    faithful: bool | None = None
    explanation: str = ""
    # distinct checked statements by status (FaithfulnessResult.statement_counts; None: the
    # explanation was not checked)
    statements: Mapping[str, int] | None = None

    def states(self, status: str) -> int:
        return (self.statements or {}).get(status, 0)


# -- ROUGE-L ----------------------------------------------------------------------------------
def rouge_tokens(text: str) -> list[str]:
    """Lowercase words (runs of letters and digits); punctuation is dropped."""
    return _WORD.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (O(len(a) len(b)) time,
    O(len(b)) memory)."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(candidate: str, references: str | Sequence[str]) -> float:
    """ROUGE-L F1 of `candidate` against one reference, or the best over several.

    Lin (2004), "ROUGE: A Package for Automatic Evaluation of Summaries", sect. 3.1: with
    LCS the longest common subsequence of the candidate's n and the reference's m words,
    R = LCS / m, P = LCS / n and F = (1 + b^2) R P / (R + b^2 P); here b = 1 (the F1 that
    common ROUGE implementations report). Words are rouge_tokens(); an empty side scores 0.
    """
    refs = [references] if isinstance(references, str) else list(references)
    cand = rouge_tokens(candidate)
    best = 0.0
    for ref in refs:
        r = rouge_tokens(ref)
        lcs = lcs_length(cand, r) if cand and r else 0
        if lcs:
            p, rec = lcs / len(cand), lcs / len(r)
            best = max(best, 2 * p * rec / (p + rec))
    return best


# -- classification ---------------------------------------------------------------------------
def classes_of(labels: Sequence[str], answers: Sequence[Answer]) -> list[str]:
    """The model's label set, then true emotions it lacks (sorted): those can never be right."""
    extra = sorted({a.truth for a in answers} - set(labels))
    return list(labels) + extra


def _codes(answers: Sequence[Answer], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    index = {c: i for i, c in enumerate(classes)}
    truth = np.array([index[a.truth] for a in answers], dtype=int)
    pred = np.array([index.get(a.emotion, -1) if a.emotion is not None else -1
                     for a in answers], dtype=int)
    return truth, pred


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


def accuracy_and_f1(answers: Sequence[Answer], classes: list[str]) -> tuple[float, float]:
    """Accuracy and macro-F1 (over the true classes present; "unparsed" is never right)."""
    truth, pred = _codes(answers, classes)
    return float(np.mean(truth == pred)), macro_f1(truth, pred, len(classes))


def confusion(answers: Sequence[Answer], classes: list[str]) -> dict[str, Any]:
    """{"rows": true emotions present, "columns": classes + ["unparsed"], "matrix": counts}."""
    rows = [c for c in classes if any(a.truth == c for a in answers)]
    columns = classes + [UNPARSED]
    m = np.zeros((len(rows), len(columns)), dtype=int)
    for a in answers:
        j = columns.index(a.emotion) if a.emotion in classes else len(classes)
        m[rows.index(a.truth), j] += 1
    return {"rows": rows, "columns": columns, "matrix": m.tolist()}


def per_class_recall(conf: Mapping[str, Any]) -> dict[str, float]:
    m = np.asarray(conf["matrix"])
    return {c: float(m[i, conf["columns"].index(c)] / m[i].sum())
            for i, c in enumerate(conf["rows"])}


def calibration(answers: Sequence[Answer], bins: int = ECE_BINS) -> dict[str, Any]:
    """Over the answers with a label and a confidence: mean confidence, the accuracy of the most
    confident third (ceil(n/3) answers, highest confidence first) and the expected calibration
    error: sum over `bins` equal-width confidence bins of (share of answers) x |accuracy -
    mean confidence| (Guo et al. 2017, "On Calibration of Modern Neural Networks")."""
    scored = [a for a in answers if a.emotion is not None and a.confidence is not None]
    if not scored:
        return {"answers": 0, "mean_confidence": None, "top_third_accuracy": None,
                "top_third_answers": 0, "ece": None}
    conf = np.array([a.confidence for a in scored], dtype=float)
    right = np.array([a.emotion == a.truth for a in scored], dtype=float)
    k = math.ceil(len(scored) / 3)
    top = np.argsort(-conf, kind="stable")[:k]
    which = np.minimum((conf * bins).astype(int), bins - 1)
    ece = sum(abs(right[which == b].mean() - conf[which == b].mean()) * np.sum(which == b)
              for b in np.unique(which)) / len(scored)
    return {"answers": len(scored), "mean_confidence": float(conf.mean()),
            "top_third_accuracy": float(right[top].mean()), "top_third_answers": k,
            "ece": float(ece)}


def _counts(answers: Sequence[Answer]) -> dict[str, Any]:
    drafted = [a for a in answers if a.drafted]
    parsed = sum(a.emotion is not None for a in drafted)
    return {"clips": len(answers), "drafted": len(drafted), "parsed": parsed,
            "unparsed": len(drafted) - parsed, "failed": len(answers) - len(drafted),
            "parse_share": _share(parsed, len(drafted))}


def statement_scores(explained: Sequence[Answer], drafted: int) -> dict[str, Any]:
    """What the explanations state: distinct checked statements by status summed over the
    explained answers, their precision (supported / checked: of what the texts say about the
    movement, how much the measurements bear out) and the grounded share (drafts whose
    explanation cites at least one supported statement and contradicts none / drafted)."""
    counts = {s: sum(a.states(s) for a in explained) for s in CHECKED_STATUSES}
    checked = sum(counts.values())
    grounded = sum(a.states("supported") > 0 and not a.states("contradicted") for a in explained)
    return {"statements": {**counts, "checked": checked},
            "claim_precision": _share(counts["supported"], checked),
            "grounded_share": _share(grounded, drafted)}


def score_answers(answers: Sequence[Answer], labels: Sequence[str],
                  references: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """Every metric of docs/evaluate.md (`--model`) over the answers. references maps clip ids
    to curated reference explanations: ROUGE-L is computed for the drafted clips that have one
    (None: no curated file was given, and rouge_l is None)."""
    if not answers:
        raise ValueError("no labelled clips to score")
    classes = classes_of(labels, answers)
    acc, f1 = accuracy_and_f1(answers, classes)
    conf = confusion(answers, classes)
    drafted = [a for a in answers if a.drafted]
    explained = [a for a in drafted if a.explanation.strip()]
    # an empty explanation claims nothing, so it cannot contradict: it is not counted as
    # faithful (nor at all); the share of drafts that explain anything is reported beside it
    faithful = [a.faithful for a in explained if a.faithful is not None]
    per_dataset = {}
    for name in sorted({a.dataset for a in answers}):
        part = [a for a in answers if a.dataset == name]
        d_acc, d_f1 = accuracy_and_f1(part, classes)
        c = _counts(part)
        per_dataset[name] = {"clips": c["clips"], "accuracy": d_acc, "macro_f1": d_f1,
                             "parse_share": c["parse_share"]}
    rouge = None
    if references is not None:
        scores = [rouge_l(a.explanation, references[a.clip_id]) for a in drafted
                  if references.get(a.clip_id)]
        rouge = {"f1": float(np.mean(scores)) if scores else None, "clips": len(scores)}
    counts = _counts(answers)
    return {
        "counts": {k: v for k, v in counts.items() if k != "parse_share"},
        "metrics": {"accuracy": acc, "macro_f1": f1, "parse_share": counts["parse_share"],
                    "faithful_share": _share(sum(faithful), len(faithful)),
                    "explained_share": _share(len(explained), len(drafted)),
                    "cites_evidence_share": _share(
                        sum(a.states("supported") > 0 for a in explained), len(drafted)),
                    **statement_scores(explained, len(drafted)),
                    "per_class_recall": per_class_recall(conf),
                    "calibration": calibration(answers), "rouge_l": rouge},
        "per_dataset": per_dataset,
        "confusion": conf,
        "labels_outside_model": [c for c in classes if c not in labels],
    }
