"""Training examples of `eai finetune`: (prompt ids, target ids) pairs for the two stages.

Stage 1, alignment (no human text needed): the skeleton tokens alone ->
  - "describe": statements the clip's own descriptors make true ("The person travels slowly.
    The person keeps the head lowered."), from the levels that are unusual for its action;
  - "label": `<emotion>LABEL</emotion>` for clips that carry an emotion.
Stage 2, instruction tuning, with the drafting prompt (skeleton tokens + evidence), so what the
model learns is exactly what drafting asks:
  - "curated": a reviewed pair (accepted / edited / relabelled) -> `<emotion>..</emotion>
    <explanation>..</explanation>`; rejected pairs never become targets;
  - "label_only": a labelled clip without a usable reviewed pair -> `<emotion>LABEL</emotion>`
    and nothing after it (no invented explanation, and no end token that would teach the model
    to stop before explaining);
  - "counterfactual": a curated pair with one evidence line and the claim about it flipped
    (eai.toolkit.finetune.counterfactual); the emotion is part of the prompt, the target is the
    explanation alone.
Alignment examples show the whole motion (`align_view="full"`) or its `<semantic>` block alone
(`"semantic"`: descriptor levels and the clip-embedding code, ~140 tokens instead of ~350 on
Bandai-Namco, so a CPU gets about three times the alignment steps for the same time; what the
model must learn to read for the label sits in that block). The loss is on the target ids only;
`label_len` marks the label's ids, which `--label-weight` can average apart from the text's,
and `claim_mask` the ids of the claims about movement that an evidence line of the example's
prompt supports (as the faithfulness check reads them), which `--claim-weight` adds a term for
(eai.toolkit.finetune.train.answer_loss). Prompts are rendered by eai.toolkit.drafting.prompts,
the same code drafting uses.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eai.toolkit.clip import Clip
from eai.toolkit.drafting.answer import EMOTION_END, EMOTION_START
from eai.toolkit.drafting.evidence import PROMPT_DESCRIPTORS, clip_evidence, shown_descriptors
from eai.toolkit.drafting.faithfulness import check_faithfulness
from eai.toolkit.drafting.prompts import (
    PromptTemplate,
    alignment_messages,
    encode,
    model_messages,
    motion_texts,
    prompt_text,
    separate_semantic,
)
from eai.toolkit.finetune.counterfactual import Counterfactual, counterfactuals
from eai.toolkit.finetune.phrasing import ALIGN_PHRASINGS, level_phrase


@dataclass
class Example:
    clip_id: str
    stage: int  # 1 alignment, 2 instruction
    kind: str  # describe | label | curated | label_only
    prompt_ids: list[int]
    target_ids: list[int]
    label_len: int = 0  # leading target ids that give the emotion (`LABEL</emotion>`)
    # 1 on the target ids of claims that an evidence line of the prompt supports (--claim-weight);
    # -1 on those of claims it does not support, which carry no loss (--skip-unsupported-claims)
    claim_mask: list[int] | None = None

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.target_ids)


def descriptor_statements(evidence: dict, rng: random.Random | None = None) -> str:
    """Sentences the evidence makes true, e.g. "The person travels slowly. The person keeps the
    head lowered."; a neutral sentence when no level is unusual. In the prompt's words, or with
    rng in words drawn from eai.toolkit.finetune.phrasing (`--align-phrasing varied`)."""
    out = []
    for name in PROMPT_DESCRIPTORS:
        level = (evidence.get(name) or {}).get("level")
        if level in ("low", "high"):
            out.append(f"The person {level_phrase(name, level, rng)}.")
    return " ".join(out) if out else "The person moves in a typical way for this movement."


ALIGN_VIEWS = ("full", "semantic")


class ExampleBuilder:
    """Renders examples for one model directory (its tokenizers, template and label set)."""

    def __init__(self, tokenizer, skeleton, template: PromptTemplate, labels: Sequence[str],
                 align_view: str = "full", counterfactuals: int = 0, seed: int = 0,
                 claim_tokens: bool = False, skip_unsupported: bool = False,
                 align_phrasing: str = "prompt"):
        if align_view not in ALIGN_VIEWS:
            raise ValueError(f"align view {align_view!r}: expected one of "
                             f"{', '.join(ALIGN_VIEWS)}")
        if align_phrasing not in ALIGN_PHRASINGS:
            raise ValueError(f"align phrasing {align_phrasing!r}: expected one of "
                             f"{', '.join(ALIGN_PHRASINGS)}")
        self.align_phrasing = align_phrasing
        self.tok, self.skeleton, self.tpl, self.labels = tokenizer, skeleton, template, list(labels)
        self.align_view, self.counterfactuals, self.seed = align_view, counterfactuals, seed
        # mark supported claims' ids, and unsupported ones to skip (Example.claim_mask)
        self.claim_tokens, self.skip_unsupported = claim_tokens, skip_unsupported
        eos = tokenizer.eos_token_id
        self.eos = [eos] if eos is not None else []
        self.emotion_end = tokenizer.convert_tokens_to_ids(EMOTION_END)

    def _prompt(self, messages, prefix: str = "") -> list[int]:
        return encode(self.tok, prompt_text(self.tok, messages) + prefix)

    def _label_answer(self, emotion: str) -> list[int]:
        # the prompt ends with <emotion>, as in drafting; the target is what follows it
        return encode(self.tok, self.tpl.label_only_answer.format(emotion=emotion)
                      .removeprefix(EMOTION_START))

    def _explanation_target(self, lead: str, explanation: str, trail: str, evidence: dict
                            ) -> tuple[list[int], list[int] | None]:
        """(ids of `lead + explanation + trail`, claim mask or None without claim_tokens and
        skip_unsupported). The mask is 1 on the ids inside a claim of the explanation that an
        evidence line of the prompt supports (the faithfulness check's reading) when
        claim_tokens, -1 on the ids of every other checked claim when skip_unsupported, else 0;
        all zeros from a tokenizer without offsets. Claims about descriptors the prompt does not
        show are true of the clip but cannot be read from the prompt: weighting them up taught
        a model to make them anyway ("low head height" for clips that hold the head high).
        Unsupported claims are the contradicted ones a reviewer missed, the weak ones (an
        extreme claimed where the clip is typical, as a reviewer lets pass) and those about
        descriptors the prompt does not show: learned, they are claims a model makes from the
        emotion, whatever the evidence says."""
        text = lead + explanation + trail
        if not (self.claim_tokens or self.skip_unsupported):
            return encode(self.tok, text), None
        shown = set(shown_descriptors(evidence))
        marked = []  # (start, end, mask value) of each claim to mark; claims never overlap
        for c in check_faithfulness(explanation, evidence).claims:
            if c.status == "unverifiable":
                continue
            value = 1 if c.status == "supported" and c.descriptor in shown else -1
            if self.claim_tokens if value == 1 else self.skip_unsupported:
                marked.append((len(lead) + c.start, len(lead) + c.start + len(c.phrase), value))
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc.get("offset_mapping") or [(0, 0)] * len(enc["input_ids"])
        return list(enc["input_ids"]), [next((v for s, e, v in marked if a < e and b > s), 0)
                                        for a, b in offsets]

    def _curated(self, clip_id: str, prompt: list[int], emotion: str, text: str,
                 evidence: dict) -> Example:
        # the answer after the prompt's <emotion>, as in drafting
        head, tail = self.tpl.answer.split("{explanation}")
        target, mask = self._explanation_target(
            head.format(emotion=emotion).removeprefix(EMOTION_START), text,
            tail.format(emotion=emotion), evidence)
        return Example(clip_id, 2, "curated", prompt, target, self._label_len(target), mask)

    def _label_len(self, target: list[int]) -> int:
        return target.index(self.emotion_end) + 1 if self.emotion_end in target else 0

    def alignment(self, clip: Clip, motion: str, evidence: dict, semantic: str = ""
                  ) -> list[Example]:
        msgs = alignment_messages(self.tpl, "describe", motion, clip.action, self.labels,
                                  semantic)
        # varied words drawn per clip, the same in every run with this seed
        rng = random.Random(f"{self.seed}:{clip.clip_id}") \
            if self.align_phrasing == "varied" else None
        out = [Example(clip.clip_id, 1, "describe", self._prompt(msgs),
                       encode(self.tok, descriptor_statements(evidence, rng)) + self.eos)]
        if clip.emotion in self.labels:
            msgs = alignment_messages(self.tpl, "label", motion, clip.action, self.labels,
                                      semantic)
            target = self._label_answer(clip.emotion)
            out.append(Example(clip.clip_id, 1, "label", self._prompt(msgs, EMOTION_START),
                               target, self._label_len(target)))
        return out

    def instruction(self, clip: Clip, motion: str, evidence: dict,
                    pairs: Iterable[tuple[str, str]], semantic: str = "",
                    donors: Sequence[dict] = ()) -> list[Example]:
        """pairs: (emotion, explanation) of the clip's trainable curated pairs; none -> one
        label-only example when the clip carries an emotion of the label set. donors: evidence
        of other training clips of the same action, for the counterfactuals."""
        msgs = model_messages(self.tpl, motion, evidence, clip.action, self.labels, semantic)
        prompt = self._prompt(msgs, EMOTION_START)
        pairs = list(dict.fromkeys(pairs))
        out = [self._curated(clip.clip_id, prompt, e, text, evidence) for e, text in pairs]
        if not out and clip.emotion in self.labels:
            target = self._label_answer(clip.emotion)
            out.append(Example(clip.clip_id, 2, "label_only", prompt, target,
                               self._label_len(target)))
        for i, (emotion, text) in enumerate(pairs if self.counterfactuals else []):
            rng = random.Random(f"{self.seed}\t{clip.clip_id}\t{i}")
            for cf in counterfactuals(text, evidence, donors, rng, self.counterfactuals):
                out.append(self._counterfactual(clip, motion, semantic, emotion, cf))
        return out

    def _counterfactual(self, clip: Clip, motion: str, semantic: str, emotion: str,
                        cf: Counterfactual) -> Example:
        # the answer up to the explanation is prompt: the flipped evidence may not fit the
        # label, so only the explanation is trained
        head, tail = self.tpl.answer.split("{explanation}")
        msgs = model_messages(self.tpl, motion, cf.evidence, clip.action, self.labels, semantic)
        target, mask = self._explanation_target("", cf.explanation,
                                                tail.format(emotion=emotion), cf.evidence)
        return Example(clip.clip_id, 2, "counterfactual",
                       self._prompt(msgs, head.format(emotion=emotion)), target,
                       claim_mask=mask)

    def for_clip(self, clip: Clip, pairs: Sequence[tuple[str, str]],
                 evidence: dict | None = None, donors: Sequence[dict] = ()) -> list[Example]:
        motion, semantic = motion_texts(self.tpl, self.skeleton, clip)
        if evidence is None:
            evidence = clip_evidence(clip, self.skeleton.levels)
        # the semantic view: the motion without its steps (and, in v2 templates, without the
        # semantic block, which `semantic` already holds)
        align_motion = motion if self.align_view == "full" else self.skeleton.tokens_text(
            clip, sep="", semantic=not separate_semantic(self.tpl), spatio_temporal=False)
        return self.alignment(clip, align_motion, evidence, semantic) + \
            self.instruction(clip, motion, evidence, pairs, semantic, donors)
