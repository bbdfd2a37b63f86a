"""Reading the model's answer: `<emotion>LABEL</emotion><explanation>TEXT</explanation>`.

Nothing here raises on a bad answer: an answer whose label is not in the label set is kept with
emotion None, its raw text and a warning, so one odd answer never stops a drafting run.
"""

from __future__ import annotations

import re

from eai.toolkit.model.info import STRUCTURAL_TOKENS

EMOTION_START, EMOTION_END = STRUCTURAL_TOKENS["emotion_start"], STRUCTURAL_TOKENS["emotion_end"]
EXPLANATION_START = STRUCTURAL_TOKENS["explanation_start"]
EXPLANATION_END = STRUCTURAL_TOKENS["explanation_end"]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_TAG = re.compile(r"<[^<>\s]+>")
MAX_SENTENCES = 5


def match_label(text: str, labels: list[str]) -> str | None:
    """The label `text` names (case and surrounding spaces/punctuation ignored), else None."""
    key = text.strip().strip(".:;,!\"'").strip().lower()
    for label in labels:
        if key == label.lower():
            return label
    return None


def clean_explanation(text: str, max_sentences: int = MAX_SENTENCES) -> tuple[str, list[str]]:
    """Whitespace collapsed, leftover markup tokens removed, at most max_sentences sentences;
    with warnings for what was changed or is short."""
    warnings = []
    text = _TAG.sub(" ", text)
    text = " ".join(text.split())
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    if len(sentences) > max_sentences:
        text = " ".join(sentences[:max_sentences])
        warnings.append(f"explanation cut to its first {max_sentences} of {len(sentences)} "
                        f"sentences")
    elif text and text[-1] not in ".!?\"'":
        # an unfinished last sentence (the token limit cut it): keep the finished ones
        if len(sentences) > 1:
            text = " ".join(sentences[:-1])
        warnings.append("the explanation ended mid-sentence (raise --max-new-tokens)")
    if not text:
        warnings.append("the answer has no explanation")
    elif len(_SENTENCE_END.split(text)) < 2:
        warnings.append("the explanation has fewer than 2 sentences")
    return text, warnings


def parse_model_answer(continuation: str, labels: list[str]) -> tuple[str | None, str, list[str]]:
    """(emotion or None, explanation, warnings) of the text generated after `<emotion>`."""
    warnings: list[str] = []
    head, sep, rest = continuation.partition(EMOTION_END)
    emotion = match_label(head, labels) if sep else None
    if not sep:
        warnings.append(f"the answer has no {EMOTION_END}; no label could be read")
    elif emotion is None:
        shown = head.strip()[:40]
        warnings.append(f"the answer's label {shown!r} is not in the label set "
                        f"({', '.join(labels)})")
    body = rest if sep else continuation
    body = body.split(EXPLANATION_START, 1)[1] if EXPLANATION_START in body else body
    body = body.split(EXPLANATION_END, 1)[0]
    explanation, more = clean_explanation(body)
    return emotion, explanation, warnings + more
