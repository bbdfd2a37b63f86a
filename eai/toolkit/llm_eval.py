"""`eai evaluate --model`: a model's own answers on a dataset's held-out split, scored.

The split's labelled clips are drafted with `run_drafting` (model mode by default: the LM
reads the skeleton tokens and answers with its label) and the answers are scored against the
clips' true emotions by eai.toolkit.llm_metrics. Files go to the model's eval folder,
MODEL_DIR/eval/ (docs/evaluate.md):

  drafts-TAG.jsonl    the drafts of the evaluated clips, appended and keyed by model_version:
                      a re-run drafts only what is missing, a changed model drafts again
  eval.json           the scores (TAG "test"; other splits or modes write eval-TAG.json)
  confusion-TAG.png   the confusion matrix, rows true, columns answered (+ "unparsed")

TAG is the split name, with "-cold-start" appended in cold-start mode.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eai
from eai.toolkit.llm_metrics import Answer, score_answers

EVAL_DIR = "eval"
EVAL_VERSION = 1
EVAL_MODES = ("model", "cold-start", "auto")


class EvalError(ValueError):
    pass


def eval_paths(model_dir: str | Path, split: str = "test", mode: str = "model"
               ) -> dict[str, Path]:
    """Where an evaluation of this split and (resolved) mode keeps its files."""
    tag = split + ("-cold-start" if mode == "cold-start" else "")
    folder = Path(model_dir) / EVAL_DIR
    return {"dir": folder, "drafts": folder / f"drafts-{tag}.jsonl",
            "results": folder / ("eval.json" if tag == "test" else f"eval-{tag}.json"),
            "confusion": folder / f"confusion-{tag}.png"}


def read_references(path: str | Path) -> tuple[dict[str, list[str]], int]:
    """({clip_id: [reference explanations]}, pairs read) from a curated JSONL file.

    A line is a CuratedPair (eai.toolkit.review.curated); only `clip_id`, `outcome` and
    `explanation` are read, so other fields may come and go. Outcomes accepted, edited and
    relabelled with a non-empty explanation are references; rejected pairs are not."""
    from eai.toolkit.review.curated import TRAINABLE

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such curated file (make one with `eai review pull`)")
    refs: dict[str, list[str]] = {}
    pairs = 0
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise EvalError(f"{path}, line {n}: not JSON ({e})") from None
        if not isinstance(d, dict) or not {"clip_id", "outcome"} <= set(d):
            raise EvalError(f"{path}, line {n}: not a curated pair (it needs clip_id and "
                            f"outcome)")
        pairs += 1
        text = d.get("explanation") or ""
        if d["outcome"] in TRAINABLE and text.strip():
            refs.setdefault(d["clip_id"], []).append(text)
    return refs, pairs


def labelled_selection(dataset: Path, split: str, split_file: Path | None,
                       limit: int | None) -> tuple[list[str], dict[str, tuple[str, str]], int]:
    """(clip ids to draft in dataset order, {clip_id: (emotion, dataset name)}, unlabelled
    clips of the split that were left out)."""
    from eai.toolkit.dataset import read_manifest, read_table
    from eai.toolkit.splits import split_ids

    read_manifest(dataset)
    wanted = set(split_ids(dataset, split, split_file))
    table = read_table(dataset, ["clip_id", "emotion", "dataset"]).to_pydict()
    rows = [r for r in zip(table["clip_id"], table["emotion"], table["dataset"])
            if r[0] in wanted]
    if not rows:
        raise EvalError(f"split {split!r} of {split_file or dataset / 'splits.json'} names no "
                        f"clip of {dataset} (a split of another dataset? make this one's with "
                        f"`eai dataset split {dataset}`)")
    labelled = [r for r in rows if r[1]]
    if not labelled:
        raise EvalError(f"split {split!r} of {dataset} has no clip with an emotion: there is "
                        f"nothing to score the answers against")
    labelled = labelled[:limit] if limit is not None else labelled
    return ([r[0] for r in labelled], {r[0]: (r[1], r[2]) for r in labelled},
            len(rows) - sum(1 for r in rows if r[1]))


def _answer(clip_id: str, truth: str, dataset: str, draft) -> Answer:
    """One clip's answer. The explanation is checked again here, with this eai's faithfulness
    check, rather than read from the draft line (the check of the eai that drafted it, which
    is what reviewers saw): models compared side by side are then read by the same rules."""
    from eai.toolkit.drafting.faithfulness import check_faithfulness

    if draft is None:
        return Answer(clip_id, dataset, truth, None, None, drafted=False)
    check = (check_faithfulness(draft.explanation, draft.evidence)
             if draft.explanation.strip() else None)
    return Answer(clip_id, dataset, truth, draft.emotion, draft.confidence, True,
                  check.faithful if check else None, draft.explanation,
                  check.statement_counts() if check else None)


def evaluate_model(model_dir: str | Path, dataset: str | Path, split: str = "test",
                   split_file: str | Path | None = None, curated: str | Path | None = None,
                   backend: str = "transformers", base_url: str | None = None,
                   mode: str = "model", batch_size: int = 32, max_new_tokens: int = 160,
                   limit: int | None = None, device: str | None = None, concurrency: int = 8,
                   backend_impl=None,
                   on_progress: Callable[[int, int, Any], None] | None = None) -> dict[str, Any]:
    """Draft the split's labelled clips with the model (resuming), score them, write eval.json
    and the confusion PNG into MODEL_DIR/eval/, and return what eval.json holds.

    backend_impl: a ready backend object (used instead of making one from `backend`)."""
    from eai.toolkit.dataset import atomic_write_json
    from eai.toolkit.drafting.draft import read_drafts
    from eai.toolkit.drafting.run import DraftConfig, run_drafting
    from eai.toolkit.llm_eval_report import plot_confusion_png
    from eai.toolkit.model import read_info

    model_dir, dataset = Path(model_dir), Path(dataset)
    info = read_info(model_dir)
    if mode not in EVAL_MODES:
        raise EvalError(f"--mode {mode!r}: use model, cold-start or auto")
    if mode == "auto":
        mode = "cold-start" if info.version == 0 else "model"
    if limit is not None and limit < 1:
        raise EvalError(f"--limit {limit}: use a positive number of clips")
    references, pairs = read_references(curated) if curated else ({}, 0)
    ids, truth, unlabelled = labelled_selection(dataset, split,
                                                Path(split_file) if split_file else None, limit)
    paths = eval_paths(model_dir, split, mode)
    paths["dir"].mkdir(parents=True, exist_ok=True)
    cfg = DraftConfig(dataset=dataset, out=paths["drafts"], model_dir=model_dir,
                      backend=backend, base_url=base_url, mode=mode, clip_ids=ids,
                      batch_size=batch_size, max_new_tokens=max_new_tokens,
                      concurrency=concurrency, device=device)
    summary = run_drafting(cfg, backend=backend_impl, on_progress=on_progress)
    drafts = {d.clip_id: d for d in read_drafts(paths["drafts"])
              if d.model_version == info.model_version and d.clip_id in truth}
    answers = [_answer(i, *truth[i], drafts.get(i)) for i in ids]
    scores = score_answers(answers, info.label_set, references if curated else None)
    scores["counts"]["unlabelled_left_out"] = unlabelled
    doc = {
        "format_version": EVAL_VERSION, "kind": "eai.eval",
        "model_version": info.model_version,
        "model": {"dir": str(model_dir), "version": info.version,
                  "parent_version": info.parent_version, "label_set": info.label_set},
        "dataset": {"dir": str(dataset), "names": sorted(scores["per_dataset"])},
        "split": split, "split_file": str(split_file) if split_file else None,
        "mode": summary.mode, "limit": limit,
        "drafting": {"backend": backend_impl.name if backend_impl else backend,
                     "drafts": paths["drafts"].name, "drafted_now": summary.drafted,
                     "already_drafted": summary.already_drafted, "failed": summary.failed,
                     "seconds": round(summary.seconds, 1), "max_new_tokens": max_new_tokens},
        "curated": ({"file": str(curated), "pairs": pairs,
                     "clips_with_reference": len(references)} if curated else None),
        **scores,
        "confusion_png": paths["confusion"].name,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "eai_version": eai.__version__,
    }
    plot_confusion_png(doc, paths["confusion"])
    atomic_write_json(paths["results"], doc)
    doc["paths"] = {k: str(v) for k, v in paths.items()}  # for the caller, not in the file
    return doc
