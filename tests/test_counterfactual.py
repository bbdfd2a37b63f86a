"""Counterfactual evidence examples of `eai finetune` (eai.toolkit.finetune.counterfactual)."""

from __future__ import annotations

import random

import pytest

from eai.toolkit.descriptors import DESCRIPTORS
from eai.toolkit.drafting.evidence import evidence_text
from eai.toolkit.drafting.faithfulness import check_faithfulness
from eai.toolkit.finetune.counterfactual import counterfactuals, flip_phrase


def evidence(**levels) -> dict:
    """Every descriptor typical (value 1.0) except the given levels (value 0.5 low, 2.0 high)."""
    out = {d.name: {"value": 1.0, "unit": d.unit, "level": "typical"} for d in DESCRIPTORS}
    for name, level in levels.items():
        out[name] = {"value": {"low": 0.5, "high": 2.0}[level], "unit": out[name]["unit"],
                     "level": level}
    return out


@pytest.mark.parametrize("phrase,flipped", [
    ("short steps", "long steps"), ("walks slowly", "walks quickly"),
    ("High stride length", "Low stride length"), ("trunk upright", "trunk stooped"),
    ("arms close to the body", "arms away from the body"), ("head down", "head up"),
    ("bobbing", None)])
def test_flip_phrase(phrase, flipped):
    assert flip_phrase(phrase) == flipped


def test_one_claim_and_its_evidence_flip_together():
    ev = evidence(root_speed_mean="low", stride_length="low")
    text = "The person walks slowly, with short steps."
    donor = evidence(stride_length="high")
    donor["stride_length"]["value"] = 3.25
    got = counterfactuals(text, ev, [donor, evidence()], random.Random(0), limit=2)
    by_name = {cf.descriptor: cf for cf in got}
    assert set(by_name) == {"stride_length"}  # no donor travels fast: speed cannot flip
    cf = by_name["stride_length"]
    assert cf.explanation == "The person walks slowly, with long steps."
    assert cf.evidence["stride_length"] == donor["stride_length"]  # a real value, borrowed
    assert cf.evidence["root_speed_mean"] == ev["root_speed_mean"]
    assert "takes long strides" in evidence_text(cf.evidence)
    assert "takes short steps" in evidence_text(ev)
    assert check_faithfulness(cf.explanation, cf.evidence).faithful
    assert not check_faithfulness(cf.explanation, ev).faithful
    assert ev["stride_length"]["level"] == "low"  # the clip's own evidence is not touched


def test_no_counterfactual_without_a_safe_flip():
    ev = evidence(stride_length="low")
    donor = evidence(stride_length="high")
    flip = lambda text, e=ev: counterfactuals(text, e, [donor], random.Random(0))
    assert flip("The person takes short steps.")  # the control: this one flips
    assert not flip("The person takes long strides.")  # unfaithful to its own evidence
    assert not flip("The person does not take long steps.")  # negated claims stay as they are
    assert not flip("The person is sad.")  # no claim to flip
    assert not counterfactuals("The person takes short steps.", ev, [evidence()],
                               random.Random(0))  # no donor with the other level
    # a ninth unusual descriptor: the prompt shows eight lines, so it would not show the flip
    first_eight = ("root_speed_mean", "quantity_of_motion", "head_pitch_mean", "trunk_lean_mean",
                   "arm_expansion", "wrist_speed_mean", "stride_length", "hand_height_mean")
    text = "The person keeps the shoulders lowered."
    shown = evidence(shoulder_elevation="low")
    hidden = evidence(shoulder_elevation="low", **{n: "low" for n in first_eight})
    donors = [evidence(shoulder_elevation="high")]
    assert counterfactuals(text, shown, donors, random.Random(0))  # the control
    assert "drops the shoulders" not in evidence_text(hidden)
    assert not counterfactuals(text, hidden, donors, random.Random(0))


def test_counterfactuals_are_seeded():
    ev = evidence(root_speed_mean="low", stride_length="low", head_pitch_mean="high")
    donor = evidence(root_speed_mean="high", stride_length="high", head_pitch_mean="low")
    text = "The person walks slowly with short steps and keeps the head lowered."
    runs = [[cf.descriptor for cf in counterfactuals(text, ev, [donor], random.Random(s))]
            for s in (1, 1, 2, 3, 4, 5)]
    assert runs[0] == runs[1] and all(len(r) == 1 for r in runs)
    assert len({r[0] for r in runs}) > 1  # the seed picks which claim flips


def test_weak_claims_flip_against_the_claim():
    # reviewers accept "long strides" for a typical stride (a weak claim); the counterfactual
    # shows short steps and says so, and the original text contradicts that evidence
    ev = evidence()
    text = "The person takes long strides."
    assert check_faithfulness(text, ev).claims[0].status == "weak"
    got = counterfactuals(text, ev, [evidence(stride_length="low")], random.Random(0))
    assert [cf.explanation for cf in got] == ["The person takes short strides."]
    assert got[0].evidence["stride_length"]["level"] == "low"
    assert not check_faithfulness(text, got[0].evidence).faithful
    assert not counterfactuals(text, ev, [evidence(stride_length="high")], random.Random(0))


@pytest.mark.parametrize("text,flipped", [
    ("The person walks with a lack of bounce.", "The person walks with a lot of bounce."),
    ("Their lack of vertical bounce shows it.", "Their vertical bounce shows it."),
    ("There is an absence of bounce here.", "There is a lot of bounce here.")])
def test_lack_of_claims_flip_by_dropping_the_negator(text, flipped):
    ev = evidence(pelvis_bounce="low")
    got = counterfactuals(text, ev, [evidence(pelvis_bounce="high")], random.Random(0))
    assert [cf.explanation for cf in got] == [flipped]
    assert check_faithfulness(flipped, got[0].evidence).faithful
    assert got[0].original_phrase.lower().endswith("bounce")
