"""What `eai finetune` trains on: the curated pairs and the dataset's training clips, checked.

Clips of the evaluation split never train. That is checked here, not assumed: a curated pair
of a test clip is refused with an error (it would leak the answer of a clip the model is scored
on), label-only and alignment examples come from the training split only, and the final example
list is checked once more against the test ids.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eai.toolkit.finetune.examples import Example, ExampleBuilder


class FinetuneDataError(ValueError):
    pass


@dataclass
class TrainingData:
    stage1: list[Example]
    stage2: list[Example]
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)  # lineage for eai.json


def _curated_pairs(path: Path | None, labels: list[str], warnings: list[str]
                   ) -> tuple[dict[str, list[tuple[str, str]]], dict[str, int]]:
    from eai.toolkit.review.curated import read_curated

    by_clip: dict[str, list[tuple[str, str]]] = defaultdict(list)
    counts = {"curated_lines": 0, "curated_trainable": 0, "curated_rejected": 0}
    if path is None:
        return by_clip, counts
    for pair in read_curated(path):
        counts["curated_lines"] += 1
        if not pair.trainable:
            counts["curated_rejected"] += 1
            continue
        if pair.emotion not in labels:
            warnings.append(f"{path}: {pair.clip_id}: emotion {pair.emotion!r} is not in the "
                            f"model's label set; pair skipped")
            continue
        if not pair.explanation.strip():
            warnings.append(f"{path}: {pair.clip_id}: empty explanation; pair skipped")
            continue
        by_clip[pair.clip_id].append((pair.emotion, pair.explanation.strip()))
        counts["curated_trainable"] += 1
    return by_clip, counts


def _training_evidence(dataset: Path, builder: ExampleBuilder, train_ids: list[str],
                       pairs: dict) -> tuple[dict[str, dict], dict[tuple, list]]:
    """Evidence of every training clip, and the clips of each (dataset, action): the donors of
    the counterfactual examples (only computed when there are curated pairs to flip). A pass
    of its own over the clips: keeping them all loaded for the second would cost the memory of
    the whole dataset, the evidence is a few kB per clip."""
    from eai.toolkit.dataset import iter_clips
    from eai.toolkit.drafting.evidence import clip_evidence

    evidence: dict[str, dict] = {}
    by_action: dict[tuple, list] = defaultdict(list)
    if not builder.counterfactuals or not pairs:
        return evidence, by_action
    for clip in iter_clips(dataset, clip_ids=train_ids):
        evidence[clip.clip_id] = clip_evidence(clip, builder.skeleton.levels)
        by_action[(clip.dataset, clip.action)].append((clip.clip_id, evidence[clip.clip_id]))
    return evidence, by_action


def build_training_data(dataset: Path, builder: ExampleBuilder, curated: Path | None,
                        split_file: Path | None, use_split: bool = True,
                        max_length: int = 1024, on_clip=None) -> TrainingData:
    """Examples of both stages from the training clips of `dataset` and the curated pairs."""
    from eai.toolkit.dataset import iter_clips, read_table
    from eai.toolkit.model.files import sha256_file
    from eai.toolkit.splits import SPLITS_FILE, read_splits

    warnings: list[str] = []
    ids = read_table(dataset, ["clip_id"]).column("clip_id").to_pylist()
    test_ids: set[str] = set()
    sources: list[dict[str, Any]] = [{"kind": "dataset", "path": str(Path(dataset).resolve()),
                                      "manifest_sha256": sha256_file(Path(dataset) /
                                                                     "manifest.json"),
                                      "clips": len(ids)}]
    if use_split:
        doc = read_splits(dataset, split_file)
        test_ids = set(doc["splits"].get("test", []))
        path = Path(split_file) if split_file else Path(dataset) / SPLITS_FILE
        sources.append({"kind": "splits", "path": str(path.resolve()),
                        "sha256": sha256_file(path), "test_clips": len(test_ids)})
    pairs, counts = _curated_pairs(curated, builder.labels, warnings)
    if curated is not None:
        sources.append({"kind": "curated", "path": str(Path(curated).resolve()),
                        "sha256": sha256_file(Path(curated)), **counts})
    leaked = sorted(set(pairs) & test_ids)
    if leaked:
        raise FinetuneDataError(
            f"{curated}: {len(leaked)} curated pair(s) belong to clips of the evaluation split "
            f"(e.g. {', '.join(leaked[:3])}); training on them would score the model on its own "
            f"training answers. Review only training clips (eai draft-explanations --split "
            f"train) or remove those lines")
    unknown = sorted(set(pairs) - set(ids))
    if unknown:
        warnings.append(f"{len(unknown)} curated pair(s) name clips that are not in {dataset} "
                        f"(e.g. {unknown[0]}); skipped")
    train_ids = [i for i in ids if i not in test_ids]
    evidence, by_action = _training_evidence(dataset, builder, train_ids, pairs)
    stage1, stage2, too_long = [], [], 0
    for clip in iter_clips(dataset, clip_ids=train_ids):
        donors = [e for cid, e in by_action.get((clip.dataset, clip.action), [])
                  if cid != clip.clip_id]
        for ex in builder.for_clip(clip, pairs.get(clip.clip_id, []),
                                   evidence.get(clip.clip_id), donors):
            if ex.length > max_length:
                too_long += 1
                continue
            (stage1 if ex.stage == 1 else stage2).append(ex)
        if on_clip:
            on_clip(clip.clip_id)
    if too_long:
        warnings.append(f"{too_long} example(s) longer than --max-length {max_length} tokens "
                        f"were left out")
    trained = {e.clip_id for e in stage1 + stage2}
    if trained & test_ids:  # cannot happen by construction; refuse rather than trust it
        raise FinetuneDataError(f"internal error: evaluation clips reached the training data: "
                                f"{sorted(trained & test_ids)[:3]}")
    kinds = defaultdict(int)
    for e in stage1 + stage2:
        kinds[e.kind] += 1
    counts.update({f"examples_{k}": v for k, v in sorted(kinds.items())})
    masks = [m for e in stage2 for m in e.claim_mask or []]
    if masks:  # --claim-weight / --skip-unsupported-claims: target ids of each kind of claim
        counts.update(claim_tokens_weighted=masks.count(1), claim_tokens_skipped=masks.count(-1))
    counts.update(train_clips=len(train_ids), test_clips=len(test_ids), too_long=too_long)
    return TrainingData(stage1, stage2, counts, warnings, sources)
