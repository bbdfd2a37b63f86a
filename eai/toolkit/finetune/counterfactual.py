"""Counterfactual evidence: a reviewed explanation with one claim and its evidence flipped.

Why: the curated pairs teach *what* an explanation looks like, but with a few dozen of them a
small model also learns which claims go with which emotion ("long strides" for anger) and then
writes them whatever the evidence says; measured on Bandai-Namco (BENCHMARKS.md section 7) those
stereotypes were most of the contradictions left after finetuning. A counterfactual example
shows the same clip, emotion and reviewed text, with one measurement in the prompt's evidence
replaced by the opposite level and the claim about it flipped to match: one word, or a fixed
phrase such as "close to", of the reviewer's text changed ("short steps" -> "long steps"). The
only thing that differs between the two examples is the evidence line and the claim, so the one
thing they teach together is that the claim follows the evidence.

Which claims flip: plain ones the evidence supports ("short steps" for short steps), weak ones
(a claimed extreme where the clip is typical: reviewers accept "long strides" for a typical
stride, and those are the stereotypes a small model learns), and claims negated by "lack of" /
"absence of" ("a lack of bounce" -> "a lot of bounce"), the way the reviewed texts mention
bounce. The evidence flips to the level opposite to the claim.

Rules that keep a counterfactual honest:
- the flipped value is a real one: borrowed from a training clip of the same dataset and
  action whose level of that descriptor is opposite to the claim; no donor, no counterfactual;
- the descriptor must be one the prompt shows (its evidence line changes);
- the faithfulness check confirms both sides: the original text is faithful to the original
  evidence, the flipped text is faithful to the flipped evidence with the flipped claim
  supported, and the original text contradicts the flipped evidence;
- the emotion is given in the prompt, not trained on: the flipped evidence may not fit the
  label, so the example teaches the explanation only (eai.toolkit.finetune.examples).
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eai.toolkit.drafting.evidence import evidence_lines
from eai.toolkit.drafting.faithfulness import check_faithfulness

# What flips a claim: a fixed phrase (tried first: word by word "arms close to" would become
# "arms wide to"), else one word; lower case, the case of the text is kept.
PHRASE_OPPOSITES: dict[str, str] = {"close to": "away from", "away from": "close to"}
OPPOSITES: dict[str, str] = {}
for _a, _b in [("high", "low"), ("higher", "lower"), ("slow", "fast"), ("slowly", "quickly"),
               ("slower", "faster"), ("short", "long"), ("shorter", "longer"),
               ("raised", "lowered"), ("raises", "lowers"), ("raise", "lower"),
               ("raising", "lowering"), ("up", "down"), ("small", "large"),
               ("reduced", "increased"), ("wide", "narrow"), ("open", "closed"),
               ("rapid", "slow"), ("quick", "slow"), ("quickly", "slowly"), ("brisk", "slow"),
               ("little", "much"), ("upright", "stooped"), ("straight", "rounded"),
               ("close", "wide"), ("minimal", "large"), ("limited", "large")]:
    OPPOSITES.setdefault(_a, _b)
    OPPOSITES.setdefault(_b, _a)
del _a, _b
_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)?")
_OTHER = {"low": "high", "high": "low"}


@dataclass(frozen=True)
class Counterfactual:
    descriptor: str
    evidence: dict  # the clip's evidence with that descriptor's value and level replaced
    explanation: str  # the reviewed text with the claim flipped
    original_phrase: str
    flipped_phrase: str


def _match_case(word: str, like: str) -> str:
    return word.capitalize() if like[:1].isupper() else word


def flip_phrase(phrase: str) -> str | None:
    """The phrase with its first part that has an opposite replaced by it, or None."""
    for words, opposite in PHRASE_OPPOSITES.items():
        m = re.search(rf"\b{words}\b", phrase, re.IGNORECASE)
        if m:
            return phrase[:m.start()] + _match_case(opposite, m.group()) + phrase[m.end():]
    for m in _WORD.finditer(phrase):
        opposite = OPPOSITES.get(m.group().lower())
        if opposite:
            return phrase[:m.start()] + _match_case(opposite, m.group()) + phrase[m.end():]
    return None


# "a lack of [vertical] bounce" -> "a lot of [vertical] bounce"; "their lack of bounce" -> "their
# bounce": the negators whose removal states the opposite claim in plain words.
_LACK = re.compile(r"\b(?P<article>an? )?(?:lack|absence) of (?P<adjective>[A-Za-z-]+ )?$",
                   re.IGNORECASE)


def _flip_claim(text: str, claim) -> tuple[int, int, str] | None:
    """(start, end, replacement) of the text span that states the opposite of `claim`."""
    if not claim.negated:
        flipped = flip_phrase(claim.phrase)
        return None if flipped is None else (claim.start, claim.start + len(claim.phrase),
                                             flipped)
    m = _LACK.search(text[:claim.start])
    if m is None:
        return None
    lead = ("a lot of " if m.group("article") else "") + (m.group("adjective") or "")
    return m.start(), claim.start + len(claim.phrase), lead + claim.phrase


def counterfactuals(text: str, evidence: Mapping, donors: Sequence[Mapping],
                    rng: random.Random, limit: int = 1) -> list[Counterfactual]:
    """Up to `limit` counterfactuals of `text` (one claim flipped each, different descriptors),
    in random order among the candidates that pass every rule of the module doc. `donors`:
    the evidence of other training clips of the same action."""
    original = check_faithfulness(text, evidence)
    if not original.faithful:
        return []
    shown = evidence_lines(evidence)  # what the prompt shows of it
    claims = [c for c in original.claims if c.status in ("supported", "weak")
              and c.claimed in _OTHER]
    rng.shuffle(claims)
    out: list[Counterfactual] = []
    for claim in claims:
        if len(out) >= limit:
            break
        if any(cf.descriptor == claim.descriptor for cf in out):
            continue
        span = _flip_claim(text, claim)
        if span is None:
            continue
        start, end, flipped = span
        want = _OTHER[claim.claimed]
        pool = [d for d in donors
                if (d.get(claim.descriptor) or {}).get("level") == want
                and (d.get(claim.descriptor) or {}).get("value") is not None]
        if not pool:
            continue
        cf_evidence = copy.deepcopy(dict(evidence))
        cf_evidence[claim.descriptor] = dict(rng.choice(pool)[claim.descriptor])
        if evidence_lines(cf_evidence) == shown:  # the prompt would not show the change
            continue
        new_text = text[:start] + flipped + text[end:]
        on_cf = check_faithfulness(new_text, cf_evidence)
        new_end = start + len(flipped)
        supported = any(c.descriptor == claim.descriptor and c.status == "supported"
                        and not c.negated and c.start < new_end and c.start + len(c.phrase) > start
                        for c in on_cf.claims)
        contradicts = any(c.descriptor == claim.descriptor
                          for c in check_faithfulness(text, cf_evidence).contradictions)
        if on_cf.faithful and supported and contradicts:
            out.append(Counterfactual(claim.descriptor, cf_evidence, new_text, text[start:end],
                                      flipped))
    return out
