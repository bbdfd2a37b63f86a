"""Prompt templates (eai/templates/prompts/<id>.json) rendered to token ids.

A template holds the system and user messages of the two ways a draft is made (DESIGN.md):
the model reading skeleton tokens (`system`, `user`, answer `<emotion>..</emotion>
<explanation>..</explanation>`) and the cold start (`cold_start`: the label is given, the
instruct model writes the explanation). Prompts are rendered with the model's own chat template
into token ids here, once, so every backend sees exactly the same ids; finetuning renders its
training examples with the same functions, so training and drafting never drift apart.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from eai.toolkit.drafting.evidence import evidence_text

_ID = re.compile(r"[A-Za-z0-9._-]+")


class PromptError(ValueError):
    pass


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    system: str
    user: str
    answer: str
    label_only_answer: str
    cold_start_system: str
    cold_start_user: str
    align_describe_user: str
    align_label_user: str

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> PromptTemplate:
        try:
            cold, align = d["cold_start"], d["alignment"]
            tpl = cls(d["id"], d["system"], d["user"], d["answer"], d["label_only_answer"],
                      cold["system"], cold["user"], align["describe_user"], align["label_user"])
        except (KeyError, TypeError) as e:
            raise PromptError(f"{where}: prompt template lacks {e}") from None
        needs = [("user", "{motion}"), ("answer", "{emotion}"), ("cold_start_user", "{emotion}")]
        if "{semantic}" in tpl.user:  # the block must reach the alignment prompts too
            needs += [("align_describe_user", "{semantic}"), ("align_label_user", "{semantic}")]
        for field, need in needs:
            if need not in getattr(tpl, field):
                raise PromptError(f"{where}: the template's {field} must contain {need}")
        return tpl


@lru_cache(maxsize=16)
def load_template(name_or_path: str) -> PromptTemplate:
    """A bundled template by id (e.g. "emotion_explain_v1") or a JSON file path."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.is_file():
        return PromptTemplate.from_dict(json.loads(path.read_text()), str(path))
    if not _ID.fullmatch(name_or_path):
        raise PromptError(f"prompt template {name_or_path!r}: not a file and not a template id")
    res = resources.files("eai") / "templates" / "prompts" / f"{name_or_path}.json"
    if not res.is_file():
        known = sorted(p.name[:-5] for p in (resources.files("eai") / "templates" / "prompts")
                       .iterdir() if p.name.endswith(".json"))
        raise PromptError(f"prompt template {name_or_path!r} not found; bundled: "
                          f"{', '.join(known)} (or pass a .json file)")
    return PromptTemplate.from_dict(json.loads(res.read_text()), str(res))


def separate_semantic(tpl: PromptTemplate) -> bool:
    """Templates with a `{semantic}` placeholder take the `<semantic>` block apart from the
    motion (emotion_explain_v2 puts it right before the question, see motion_texts)."""
    return "{semantic}" in tpl.user


def motion_texts(tpl: PromptTemplate, skeleton, clip, spatio_temporal: bool = True
                 ) -> tuple[str, str]:
    """(motion, semantic) token text of a clip for this template. v1 templates: the semantic
    block inside the motion, semantic "". Templates with `{semantic}`: the motion without it,
    and the block apart. spatio_temporal=False leaves out the `<t>` steps (finetuning's
    `--align-view semantic`).

    Why v2 moves the block: the label a model learns to read from the block in short alignment
    prompts carries over to the long drafting prompt only when the block sits at the same
    distance from the answer in both, i.e. in the same closing lines. Measured on Bandai-Namco
    (BENCHMARKS.md section 7): 0.77 test accuracy with the short prompt, 0.31 in the v1 drafting
    prompt (the block at the start of ~300 motion tokens), 0.73 with the block moved last."""
    if not separate_semantic(tpl):
        return skeleton.tokens_text(clip, sep="", spatio_temporal=spatio_temporal), ""
    return (skeleton.tokens_text(clip, sep="", semantic=False, spatio_temporal=spatio_temporal),
            skeleton.semantic_text(clip, sep=""))


def _action(action: str | None) -> str:
    return f"action: {action}" if action else "action unknown"


def model_messages(tpl: PromptTemplate, motion: str, evidence: dict, action: str | None,
                   labels: list[str], semantic: str = "") -> list[dict[str, str]]:
    user = tpl.user.format(motion=motion, evidence=evidence_text(evidence), semantic=semantic,
                           action=_action(action), labels=", ".join(labels))
    return [{"role": "system", "content": tpl.system}, {"role": "user", "content": user}]


def cold_start_messages(tpl: PromptTemplate, emotion: str, evidence: dict,
                        action: str | None) -> list[dict[str, str]]:
    user = tpl.cold_start_user.format(emotion=emotion, evidence=evidence_text(evidence),
                                      action=_action(action))
    return [{"role": "system", "content": tpl.cold_start_system},
            {"role": "user", "content": user}]


def alignment_messages(tpl: PromptTemplate, kind: str, motion: str, action: str | None,
                       labels: list[str], semantic: str = "") -> list[dict[str, str]]:
    """Finetuning's first stage: the skeleton tokens alone, asked to be described ("describe")
    or labelled ("label")."""
    user = tpl.align_describe_user if kind == "describe" else tpl.align_label_user
    user = user.format(motion=motion, semantic=semantic, action=_action(action),
                       labels=", ".join(labels))
    return [{"role": "system", "content": tpl.system}, {"role": "user", "content": user}]


def prompt_text(tokenizer, messages: list[dict[str, str]]) -> str:
    """The messages as the model expects them, ending where the assistant's answer starts."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    # a base model without a chat template: plain text turns
    return "".join(f"{m['role'].capitalize()}: {m['content']}\n\n" for m in messages) + \
        "Assistant: "


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of already-templated text (special tokens are in the text itself)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
