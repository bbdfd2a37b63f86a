"""`eai draft-explanations`: clips -> prompts -> answers -> checked Draft lines (docs/drafting.md).

Two ways to draft, as in DESIGN.md:
- "model": the LM reads the clip's skeleton tokens and the evidence; the label-set
  probabilities are read after `<emotion>` (teacher-forced scores of every label), the label
  is the most probable one (sampled from them when temperature > 0: constrained decoding, so
  the answer always names a label of the set), and the explanation is generated after
  `<emotion>LABEL</emotion><explanation>`.
- "cold-start" (the default for a model that was never finetuned): the skeleton tokenizer's
  classifier gives the label and its probabilities; the instruct LM writes the explanation from
  the label and the evidence.

Output is append-only JSONL, one line per clip, flushed after every batch: an interrupted run
loses at most the batch in flight, and re-running skips the clips this model_version already
drafted (a cut-off last line is removed first).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eai.toolkit.clip import Clip
from eai.toolkit.drafting.answer import (
    EMOTION_END,
    EMOTION_START,
    EXPLANATION_END,
    EXPLANATION_START,
    clean_explanation,
    parse_model_answer,
)
from eai.toolkit.drafting.draft import Draft, read_drafts
from eai.toolkit.drafting.evidence import clip_evidence
from eai.toolkit.drafting.prompts import (
    cold_start_messages,
    encode,
    load_template,
    model_messages,
    motion_texts,
    prompt_text,
)

MODES = ("auto", "model", "cold-start")


class DraftingError(RuntimeError):
    pass


@dataclass
class DraftConfig:
    dataset: Path
    out: Path
    model_dir: Path
    backend: str = "transformers"  # or "openai"
    base_url: str | None = None
    mode: str = "auto"
    split: str | None = None
    split_file: Path | None = None
    clip_ids: list[str] | None = None
    limit: int | None = None
    batch_size: int = 32
    max_new_tokens: int = 160
    temperature: float = 0.0
    seed: int = 0
    concurrency: int = 8
    device: str | None = None


@dataclass
class DraftSummary:
    out: Path
    model_version: str
    mode: str
    selected: int = 0
    already_drafted: int = 0
    drafted: int = 0
    unparsed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    faithful: int = 0  # over every draft of this model_version in the output file
    total_for_version: int = 0
    contradicted: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def faithful_share(self) -> float:
        return self.faithful / self.total_for_version if self.total_for_version else math.nan


def repair_tail(path: Path) -> bool:
    """Cut a last line that a crash left without its newline; True when something was cut."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return False
        f.seek(0)
        f.truncate(f.read().rfind(b"\n") + 1)
    return True


def _selection(cfg: DraftConfig) -> list[str] | None:
    """The clip ids to draft in dataset order (None = all), --limit applied: the selection is
    the same on every re-run, so a re-run resumes instead of drafting further clips."""
    from eai.toolkit.dataset import read_table
    from eai.toolkit.splits import split_ids

    ids = read_table(cfg.dataset, ["clip_id"]).column("clip_id").to_pylist()
    wanted_all = set(ids)
    wanted = set(ids)
    if cfg.split:
        wanted &= set(split_ids(cfg.dataset, cfg.split, cfg.split_file))
    if cfg.clip_ids:
        unknown = [c for c in cfg.clip_ids if c not in wanted_all]
        if unknown:
            raise DraftingError(f"{len(unknown)} clip id(s) not in {cfg.dataset}: "
                                f"{', '.join(unknown[:3])}")
        wanted &= set(cfg.clip_ids)
    chosen = [i for i in ids if i in wanted]
    return chosen[:cfg.limit] if cfg.limit is not None else chosen


def make_backend(cfg: DraftConfig):
    if cfg.backend == "transformers":
        from eai.toolkit.drafting.backend_transformers import TransformersBackend

        return TransformersBackend(cfg.model_dir, device=cfg.device, batch_size=cfg.batch_size)
    if cfg.backend == "openai":
        if not cfg.base_url:
            raise DraftingError("--backend openai needs --base-url (e.g. the URL `eai serve` "
                                "printed, http://127.0.0.1:8000/v1)")
        from eai.toolkit.drafting.backend_openai import OpenAIBackend

        return OpenAIBackend(cfg.base_url, concurrency=cfg.concurrency)
    raise DraftingError(f"--backend {cfg.backend!r}: use transformers or openai")


class Drafter:
    """Drafts batches of clips with one model directory and one backend."""

    def __init__(self, model_dir: Path, backend, mode: str = "auto", max_new_tokens: int = 160,
                 temperature: float = 0.0, seed: int = 0):
        from transformers import AutoTokenizer

        from eai.toolkit.model import load_skeleton_tokenizer, read_info

        self.info = read_info(model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.skeleton = load_skeleton_tokenizer(model_dir)
        self.template = load_template(self.info.prompt_template)
        self.backend = backend
        self.labels = list(self.info.label_set)
        if mode not in MODES:
            raise DraftingError(f"--mode {mode!r}: use one of {', '.join(MODES)}")
        self.mode = ("cold-start" if self.info.version == 0 else "model") if mode == "auto" \
            else mode
        if self.mode == "cold-start" and not self.skeleton.has_emotion_level:
            raise DraftingError(
                f"{model_dir}: cold-start drafting takes the label from the skeleton tokenizer's "
                f"classifier, and this tokenizer has none (it was trained on clips without "
                f"emotions); train the tokenizer on labelled clips, or pass --mode model")
        self.max_new_tokens, self.temperature, self.seed = max_new_tokens, temperature, seed
        tok = self.tokenizer
        self.eos_ids = sorted({i for i in (tok.eos_token_id, tok.pad_token_id) if i is not None})
        self.explanation_end_id = tok.convert_tokens_to_ids(EXPLANATION_END)
        self.options = [encode(tok, label + EMOTION_END) for label in self.labels]
        self.explanation_start_ids = encode(tok, EXPLANATION_START)
        # model mode appends the chosen label and <explanation> to the prompt before generating
        self.answer_prefix_len = max(map(len, self.options)) + len(self.explanation_start_ids)
        self._label_rng = np.random.default_rng(seed)
        self.max_positions = getattr(self._config(model_dir), "max_position_embeddings", None)

    @staticmethod
    def _config(model_dir: Path):
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(model_dir, local_files_only=True)

    def _decode(self, ids: Sequence[int], keep_special: bool) -> str:
        ids = [i for i in ids if i not in self.eos_ids]
        return self.tokenizer.decode(ids, skip_special_tokens=not keep_special)

    def _check_length(self, clip: Clip, ids: list[int]) -> None:
        prefix = self.answer_prefix_len if self.mode == "model" else 0
        if self.max_positions and len(ids) + prefix + self.max_new_tokens > self.max_positions:
            raise DraftingError(f"the prompt has {len(ids)} tokens; with --max-new-tokens "
                                f"{self.max_new_tokens} it exceeds the model's context of "
                                f"{self.max_positions} (a clip of {clip.duration_s:.1f} s is "
                                f"too long for this model; trim it or use a larger base)")

    @property
    def stop_ids(self) -> list[int]:
        return self.eos_ids + ([self.explanation_end_id] if self.mode == "model" else [])

    def prepare(self, clips: Sequence[Clip]) -> tuple[list[tuple], list[dict | None]]:
        """(prepared, results): for each clip that could be prepared (index, clip, evidence,
        classifier, prompt ids); results holds {"clip_id", "error"} at the others' index."""
        prepared, results = [], [None] * len(clips)
        cls_probs, classes = (self.skeleton.emotion_probabilities(clips)
                              if self.skeleton.has_emotion_level else (None, []))
        for k, clip in enumerate(clips):
            try:
                evidence = clip_evidence(clip, self.skeleton.levels)
                classifier = None
                if cls_probs is not None:
                    j = int(np.argmax(cls_probs[k]))
                    classifier = {"emotion": classes[j], "confidence": float(cls_probs[k, j]),
                                  "probabilities": {c: round(float(p), 6)
                                                    for c, p in zip(classes, cls_probs[k])}}
                if self.mode == "model":
                    motion, semantic = motion_texts(self.template, self.skeleton, clip)
                    msgs = model_messages(self.template, motion, evidence, clip.action,
                                          self.labels, semantic)
                    ids = encode(self.tokenizer, prompt_text(self.tokenizer, msgs) + EMOTION_START)
                else:
                    msgs = cold_start_messages(self.template, classifier["emotion"], evidence,
                                               clip.action)
                    ids = encode(self.tokenizer, prompt_text(self.tokenizer, msgs))
                self._check_length(clip, ids)
                prepared.append((k, clip, evidence, classifier, ids))
            except Exception as e:  # one odd clip never stops the batch
                results[k] = {"clip_id": clip.clip_id, "error": f"{type(e).__name__}: {e}"}
        return prepared, results

    def _label_probabilities(self, prompts: list[list[int]]) -> np.ndarray:
        """(clips, labels): the LM's own probabilities of each label after `<emotion>`."""
        scores = self.backend.score(prompts, self.options)
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        return probs / probs.sum(axis=1, keepdims=True)

    def _pick_labels(self, probs: np.ndarray) -> list[int]:
        """The most probable label (greedy), or one drawn from probs^(1/T) when sampling."""
        if self.temperature <= 0:
            return [int(j) for j in probs.argmax(axis=1)]
        tempered = probs ** (1.0 / self.temperature)
        tempered /= tempered.sum(axis=1, keepdims=True)
        return [int(self._label_rng.choice(len(row), p=row)) for row in tempered]

    def draft(self, clips: Sequence[Clip], backend_name: str) -> list[Draft | dict[str, str]]:
        """A Draft per clip, or {"clip_id", "error"} for a clip that could not be prepared."""
        from eai.toolkit.drafting.faithfulness import check_faithfulness

        prepared, results = self.prepare(clips)
        if not prepared:
            return results
        prompts = [p[4] for p in prepared]
        if self.mode == "model":
            probs = self._label_probabilities(prompts)
            picked = self._pick_labels(probs)
            prompts = [ids + self.options[j] + self.explanation_start_ids
                       for ids, j in zip(prompts, picked)]
        gens = self.backend.generate(prompts, self.max_new_tokens, self.stop_ids,
                                     temperature=self.temperature, seed=self.seed)
        for n, ((k, clip, evidence, classifier, _), gen) in enumerate(zip(prepared, gens)):
            if self.mode == "model":
                raw = (self.labels[picked[n]] + EMOTION_END + EXPLANATION_START
                       + self._decode(gen.token_ids, keep_special=True))
                emotion, explanation, warnings = parse_model_answer(raw, self.labels)
                raw = EMOTION_START + raw
                p = {lab: round(float(x), 6) for lab, x in zip(self.labels, probs[n])}
                confidence = p[emotion] if emotion is not None else None
                source = "model"
            else:
                raw = self._decode(gen.token_ids, keep_special=False)
                explanation, warnings = clean_explanation(raw)
                emotion, confidence = classifier["emotion"], classifier["confidence"]
                p, source = classifier["probabilities"], "classifier"
                if emotion not in self.labels:
                    warnings.append(f"the classifier's label {emotion!r} is not in the model's "
                                    f"label set")
            if gen.finish_reason == "length" and not any("mid-sentence" in w for w in warnings):
                warnings.append(f"the answer reached --max-new-tokens {self.max_new_tokens}")
            results[k] = Draft(
                clip_id=clip.clip_id, model_version=self.info.model_version, emotion=emotion,
                confidence=confidence, explanation=explanation, evidence=evidence,
                prompt_template=self.template.id, label_source=source, probabilities=p,
                classifier=classifier, raw_text=raw,
                faithfulness=check_faithfulness(explanation, evidence).to_dict(),
                warnings=warnings, dataset=clip.dataset, action=clip.action,
                backend=backend_name)
        return results


def _batches(items: Iterator[Clip], size: int) -> Iterator[list[Clip]]:
    batch: list[Clip] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_drafting(cfg: DraftConfig, backend=None,
                 on_progress: Callable[[int, int, DraftSummary], None] | None = None
                 ) -> DraftSummary:
    """Draft the selected clips of cfg.dataset into cfg.out (see the module doc)."""
    from eai.toolkit.dataset import iter_clips, read_manifest

    started = time.perf_counter()
    read_manifest(cfg.dataset)
    own_backend = backend is None
    backend = backend or make_backend(cfg)
    try:
        drafter = Drafter(cfg.model_dir, backend, cfg.mode, cfg.max_new_tokens,
                          cfg.temperature, cfg.seed)
        version = drafter.info.model_version
        summary = DraftSummary(cfg.out, version, drafter.mode)
        selected = _selection(cfg)
        summary.selected = len(selected)
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(cfg.out)
        done = ({d.clip_id for d in read_drafts(cfg.out) if d.model_version == version}
                if cfg.out.is_file() else set())
        todo = [i for i in selected if i not in done]
        summary.already_drafted = len(selected) - len(todo)
        if on_progress:
            on_progress(0, len(todo), summary)
        with cfg.out.open("a", encoding="utf-8") as out:
            for batch in _batches(iter_clips(cfg.dataset, clip_ids=todo), cfg.batch_size):
                lines = []
                for result in drafter.draft(batch, backend.name):
                    if isinstance(result, Draft):
                        lines.append(result.to_json() + "\n")
                        summary.drafted += 1
                        summary.unparsed += result.emotion is None
                    else:
                        summary.failed.append(result)
                out.write("".join(lines))  # whole lines only, one write per batch
                out.flush()
                os.fsync(out.fileno())
                if on_progress:
                    on_progress(len(batch), len(todo), summary)
    finally:
        if own_backend:
            backend.close()
    _faithfulness_totals(summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _faithfulness_totals(summary: DraftSummary) -> None:
    """Faithfulness over every draft of this model version in the output (earlier runs too)."""
    from eai.toolkit.drafting.faithfulness import summarise

    if not summary.out.is_file():
        return
    totals = summarise(d.faithfulness for d in read_drafts(summary.out)
                       if d.model_version == summary.model_version)
    summary.total_for_version, summary.faithful = totals["drafts"], totals["faithful"]
    summary.contradicted = {c["descriptor"]: c["count"] for c in totals["most_contradicted"]}


def draft_summary_dict(summary: DraftSummary) -> dict[str, Any]:
    return {"out": str(summary.out), "model_version": summary.model_version,
            "mode": summary.mode, "selected": summary.selected,
            "already_drafted": summary.already_drafted, "drafted": summary.drafted,
            "unparsed": summary.unparsed, "failed": summary.failed,
            "faithful_share": summary.faithful_share, "seconds": round(summary.seconds, 1)}
