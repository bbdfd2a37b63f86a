"""The faithfulness check: claims in drafted text against the clip's descriptor levels."""

from __future__ import annotations

import json
import math

import pytest

from eai.toolkit.descriptors import (
    DESCRIPTORS,
    DESCRIPTORS_BY_NAME,
    DescriptorLevels,
    compute_descriptors,
    descriptor_matrix,
)
from eai.toolkit.drafting.evidence import PROMPT_DESCRIPTORS
from eai.toolkit.drafting.faithfulness import (
    LEXICON,
    FaithfulnessResult,
    check_faithfulness,
    compile_lexicon,
    summarise,
)
from eai.toolkit.finetune.phrasing import level_phrasings

OPPOSITE = {"low": "high", "high": "low"}


def ev(**levels):
    """Evidence with the given levels (None: present without a level); others absent."""
    return {n: {"value": None if lv is None else 1.0, "unit": DESCRIPTORS_BY_NAME[n].unit,
                "level": lv} for n, lv in levels.items()}


def only_claim(text, evidence):
    res = check_faithfulness(text, evidence)
    assert len(res.claims) == 1, [c.to_dict() for c in res.claims]
    return res.claims[0]


# (text, the phrase that must be matched, the descriptor it compares with, the claimed level)
FAMILIES = [
    # speed
    ("He walks slowly.", "walks slowly", "root_speed_mean", "low"),
    ("Her movements are sluggish.", "sluggish", "quantity_of_motion", "low"),
    ("A hurried gait.", "hurried gait", "root_speed_mean", "high"),
    ("She moves quickly.", "quickly", "quantity_of_motion", "high"),
    ("Her hands move rapidly.", "hands move rapidly", "wrist_speed_mean", "high"),
    ("His hands move slowly.", "hands move slowly", "wrist_speed_mean", "low"),
    # energy, stillness, hesitation
    ("An energetic performance.", "energetic", "quantity_of_motion", "high"),
    ("She seems listless.", "listless", "quantity_of_motion", "low"),
    ("There is little movement.", "little movement", "quantity_of_motion", "low"),
    ("He stands still.", "stands still", "stillness_fraction", "high"),
    ("She hesitates.", "hesitates", "root_speed_std", "high"),
    # head (positive head pitch = pitched down)
    ("The head is bowed.", "head is bowed", "head_pitch_mean", "high"),
    ("She looks down at the floor.", "looks down", "head_pitch_mean", "high"),
    ("He hangs his head.", "hangs his head", "head_pitch_mean", "high"),
    ("Head held high.", "Head held high", "head_pitch_mean", "low"),
    ("Chin up, she goes.", "Chin up", "head_pitch_mean", "low"),
    # trunk
    ("A slumped figure.", "slumped", "spine_flexion", "high"),
    ("He leans forward.", "leans forward", "trunk_lean_mean", "high"),
    ("She is upright.", "upright", "trunk_lean_mean", "low"),
    ("Leaning back slightly.", "Leaning back", "trunk_lean_mean", "low"),
    # shoulders (closer to zero = raised)
    ("Raised shoulders.", "Raised shoulders", "shoulder_elevation", "high"),
    ("His shoulders sag.", "shoulders sag", "shoulder_elevation", "low"),
    # arms
    ("Outstretched arms.", "Outstretched arms", "arm_expansion", "high"),
    ("Arms held close to the body.", "Arms held close to the body", "arm_expansion", "low"),
    ("She raises both hands.", "raises both hands", "hand_height_peak", "high"),
    ("The arms hang at the sides.", "arms hang at the sides", "hand_height_mean", "low"),
    ("A large arm swing.", "large arm swing", "arm_swing", "high"),
    ("Little arm swing.", "Little arm swing", "arm_swing", "low"),
    # steps, stance, bounce, smoothness, knees
    ("Long strides.", "Long strides", "stride_length", "high"),
    ("Short steps.", "Short steps", "stride_length", "low"),
    ("He shuffles.", "shuffles", "stride_length", "low"),
    ("A wide stance.", "wide stance", "step_width", "high"),
    ("Quick steps.", "Quick steps", "stride_frequency", "high"),
    ("A bouncy walk.", "bouncy", "pelvis_bounce", "high"),
    ("Heavy steps.", "Heavy steps", "pelvis_bounce", "low"),
    ("Jerky gestures.", "Jerky", "wrist_jerk", "high"),
    ("Smooth.", "Smooth", "wrist_jerk", "low"),
    ("Bent knees.", "Bent knees", "knee_flexion_mean", "high"),
    ("Stiff knees.", "Stiff knees", "knee_flexion_mean", "low"),
    # turning, duration, descriptor names as words
    ("She looks around.", "looks around", "turn_rate", "high"),
    ("He walks in a straight line.", "in a straight line", "turn_rate", "low"),
    ("A lingering gesture.", "lingering", "duration", "high"),
    ("The quantity of motion is low.", "quantity of motion is low", "quantity_of_motion", "low"),
    ("arm_swing: high", "arm_swing: high", "arm_swing", "high"),
]


@pytest.mark.parametrize("text,phrase,name,claimed", FAMILIES)
def test_families_supported_contradicted_weak_unverifiable(text, phrase, name, claimed):
    c = only_claim(text, ev(**{name: claimed}))
    assert (c.phrase, c.descriptor, c.claimed, c.status) == (phrase, name, claimed, "supported")
    assert text[c.start:c.start + len(c.phrase)] == phrase and not c.negated
    assert only_claim(text, ev(**{name: OPPOSITE[claimed]})).status == "contradicted"
    assert only_claim(text, ev(**{name: "typical"})).status == "weak"
    assert only_claim(text, ev(**{name: None})).status == "unverifiable"
    assert only_claim(text, {}).status == "unverifiable"


def test_result_shape_and_counts():
    text = "She walks slowly, her head bowed, with a large arm swing."
    res = check_faithfulness(text, ev(root_speed_mean="low", head_pitch_mean="typical",
                                      arm_swing="low"))
    d = res.to_dict()
    assert set(d) == {"faithful", "checked", "claims", "contradictions"}
    assert d["faithful"] is False and d["checked"] == 3
    assert [c["status"] for c in d["claims"]] == ["supported", "weak", "contradicted"]
    assert [c["phrase"] for c in d["contradictions"]] == ["large arm swing"]
    claim = d["claims"][0]
    assert set(claim) == {"phrase", "start", "descriptor", "claimed", "measured", "value",
                          "unit", "status", "negated"}
    assert claim["unit"] == "m/s" and claim["value"] == 1.0 and claim["measured"] == "low"
    json.dumps(d, allow_nan=False)


def test_first_descriptor_with_a_level_is_compared():
    # walking speed has no level here: the overall quantity of motion stands in
    c = only_claim("He walks slowly.", ev(root_speed_mean=None, quantity_of_motion="high"))
    assert (c.descriptor, c.status) == ("quantity_of_motion", "contradicted")
    c = only_claim("He walks slowly.", ev(root_speed_mean="low", quantity_of_motion="high"))
    assert (c.descriptor, c.status) == ("root_speed_mean", "supported")


def test_inverted_descriptor_sense():
    # "energetic" claims little stillness; with only stillness measured it is compared inverted
    c = only_claim("An energetic walk.", ev(stillness_fraction="high"))
    assert (c.descriptor, c.claimed, c.status) == ("stillness_fraction", "low", "contradicted")
    c = only_claim("Motionless.", ev(quantity_of_motion="low"))
    assert (c.descriptor, c.claimed, c.status) == ("quantity_of_motion", "low", "supported")


@pytest.mark.parametrize("text,name,measured,status", [
    ("The person does not move fast.", "quantity_of_motion", "low", "supported"),
    ("The person does not move fast.", "quantity_of_motion", "typical", "supported"),
    ("The person does not move fast.", "quantity_of_motion", "high", "contradicted"),
    ("She doesn't seem to move very fast.", "quantity_of_motion", "high", "contradicted"),
    ("He is no longer slow.", "quantity_of_motion", "low", "contradicted"),
    ("He never raises his head.", "head_pitch_mean", "high", "supported"),
    ("He never raises his head.", "head_pitch_mean", "low", "contradicted"),
    ("She walks without raising the arms.", "hand_height_peak", "high", "contradicted"),
    ("There is hardly any bounce.", "pelvis_bounce", "low", "supported"),
    ("It is less energetic.", "quantity_of_motion", "high", "contradicted"),
    ("She is unable to walk fast.", "root_speed_mean", "high", "contradicted"),
    ("Their inability to move with a lot of bounce.", "pelvis_bounce", "low", "supported"),
    ("Their inability to move with a lot of bounce.", "pelvis_bounce", "high", "contradicted"),
])
def test_negation_flips_and_only_rules_out_the_other_extreme(text, name, measured, status):
    c = only_claim(text, ev(**{name: measured}))
    assert c.negated and c.descriptor == name and c.status == status


def test_negation_reaches_what_one_noun_phrase_coordinates():
    # "a lack of bounce and energy": both are lacking (no determiner before "energy")
    c = only_claim("A lack of energy and bounce.", ev(pelvis_bounce="high"))
    assert c.negated and c.status == "contradicted"


def test_neither_nor():
    res = check_faithfulness("The walk is neither fast nor slow.", ev(quantity_of_motion="typical"))
    assert [(c.phrase, c.negated, c.status) for c in res.claims] == [
        ("fast", True, "supported"), ("slow", True, "supported")]
    res = check_faithfulness("The walk is neither fast nor slow.", ev(quantity_of_motion="high"))
    assert [c.phrase for c in res.contradictions] == ["fast"]


@pytest.mark.parametrize("text", [
    "Not only is the gait slow, the head is lowered too.",
    "There is no doubt the gait is slow.",
    "He does not look up, but walks slowly.",
    "She is not happy; she walks slowly.",
    "Their lack of bounce and their slow walk.",
    "There is no bounce, and the walk is slow.",
    "There is no bounce and the walk is slow.",
])
def test_negation_scope_and_idioms(text):
    slow = [c for c in check_faithfulness(text, ev(root_speed_mean="low")).claims
            if c.descriptor == "root_speed_mean"]
    assert len(slow) == 1 and not slow[0].negated and slow[0].status == "supported"


@pytest.mark.parametrize("text", [
    "An angry person would walk fast, but this one walks slowly.",
    "The gait is slower than a brisk walk.",
    "Unlike a brisk walk, this gait is slow.",
])
def test_counterfactual_claims_are_dropped(text):
    res = check_faithfulness(text, ev(root_speed_mean="low", quantity_of_motion="low"))
    assert len(res.claims) == 1 and res.faithful and res.claims[0].claimed == "low"


def test_longest_match_one_claim_per_span():
    res = check_faithfulness("Head held high.", ev(head_pitch_mean="low", hand_height_peak="low"))
    assert [(c.phrase, c.descriptor) for c in res.claims] == [("Head held high",
                                                               "head_pitch_mean")]
    assert res.faithful
    c = only_claim("Slumped shoulders.", ev(shoulder_elevation="low", spine_flexion="low"))
    assert (c.phrase, c.descriptor) == ("Slumped shoulders", "shoulder_elevation")
    c = only_claim("He raises his arms high above his head.", ev(hand_height_peak="high"))
    assert c.phrase == "raises his arms high above his head"


def test_slowly_raises_the_arms_is_two_claims():
    res = check_faithfulness("She slowly raises the arms.",
                             ev(wrist_speed_mean="low", hand_height_peak="high"))
    assert [(c.phrase, c.descriptor, c.claimed) for c in res.claims] == [
        ("slowly", "wrist_speed_mean", "low"), ("raises the arms", "hand_height_peak", "high")]
    assert res.faithful and res.checked == 2


@pytest.mark.parametrize("text,claimed", [
    ("She walks slower than before.", "low"), ("He moves faster.", "high"),
    ("She moves more slowly.", "low"), ("The fastest of the clips.", "high")])
def test_comparatives_count(text, claimed):
    c = only_claim(text, ev(quantity_of_motion=OPPOSITE[claimed], root_speed_mean=None))
    assert c.claimed == claimed and c.status == "contradicted"


@pytest.mark.parametrize("text", [
    "",
    "The model predicts sadness with moderate confidence.",
    "The person is still walking.",
    "The clip is fast-forwarded while fastening a coat after breakfast.",
    "A steadfast walker.",
    "He looks straight ahead and takes a quick look at the door.",
    "High arousal suggests anger; low valence suggests sadness.",
    "The head of the line heads down the corridor.",
    '<span class="fast slow">The emotion is sad.</span>',
])
def test_texts_without_claims(text):
    res = check_faithfulness(text, ev(quantity_of_motion="high", root_speed_mean="high",
                                      head_pitch_mean="low"))
    assert res.claims == [] and res.faithful and res.checked == 0


def test_offsets_point_at_phrases_in_markup_and_case():
    text = "<p>She <b>WALKS SLOWLY</b>,\nhead\n bowed.</p>"
    res = check_faithfulness(text, ev(root_speed_mean="low", head_pitch_mean="high"))
    assert [c.phrase for c in res.claims] == ["WALKS SLOWLY", "head\n bowed"]
    for c in res.claims:
        assert text[c.start:c.start + len(c.phrase)] == c.phrase
    assert res.claims[0].start == text.index("WALKS") and res.faithful


def test_robust_to_odd_evidence():
    text = "She walks slowly with her head bowed and little arm swing."
    assert check_faithfulness(None, None).to_dict() == {
        "faithful": True, "checked": 0, "claims": [], "contradictions": []}
    evidence = {
        "root_speed_mean": {"value": None, "unit": "m/s", "level": None},
        "quantity_of_motion": {"value": float("nan"), "level": "LOW"},  # case, NaN, no unit
        "head_pitch_mean": {"value": "n/a", "unit": "deg", "level": "medium"},  # unknown level
        "arm_swing": 3,  # not a mapping
        "no_such_descriptor": {"value": 1.0, "unit": "?", "level": "high"},
    }
    res = check_faithfulness(text, evidence)
    got = [(c.descriptor, c.measured, c.value, c.unit, c.status) for c in res.claims]
    assert got == [("quantity_of_motion", "low", None, "m/s", "supported"),
                   ("head_pitch_mean", None, None, "deg", "unverifiable"),
                   ("arm_swing", None, None, "1 (per leg length)", "unverifiable")]
    assert res.checked == 1 and res.faithful
    json.dumps(res.to_dict(), allow_nan=False)


def test_realistic_paragraph():
    text = ("The figure walks slowly and heavily, its head bowed toward the floor and its "
            "shoulders slumped. The arms hang limply at the sides with little arm swing, and "
            "the short, shuffling steps suggest fatigue rather than haste. Nothing in the "
            "movement is abrupt; it does not speed up at any point. These cues point to sadness.")
    sad = ev(root_speed_mean="low", head_pitch_mean="high", shoulder_elevation="low",
             hand_height_mean="low", arm_swing="low", stride_length="typical",
             wrist_jerk="low", quantity_of_motion="low")
    res = check_faithfulness(text, sad)
    got = {(c.descriptor, c.status, c.negated) for c in res.claims}
    assert got == {("root_speed_mean", "supported", False), ("head_pitch_mean", "supported", False),
                   ("shoulder_elevation", "supported", False),
                   ("hand_height_mean", "supported", False), ("arm_swing", "supported", False),
                   ("stride_length", "weak", False), ("quantity_of_motion", "supported", True),
                   ("wrist_jerk", "supported", True)}
    assert res.faithful and res.checked == len(res.claims) == 8
    # the same text against a happy clip's evidence
    happy = dict(sad, root_speed_mean={"value": 1.6, "unit": "m/s", "level": "high"},
                 head_pitch_mean={"value": -8.0, "unit": "deg", "level": "low"})
    bad = check_faithfulness(text, happy)
    assert not bad.faithful
    assert [(c.phrase, c.descriptor) for c in bad.contradictions] == [
        ("walks slowly", "root_speed_mean"), ("head bowed", "head_pitch_mean")]


def test_lexicon_is_data_and_validated():
    assert all(isinstance(p, str) for _, _, pats in LEXICON for p in pats)
    extra = [*LEXICON, ("duration", "high", [r"takes ages"])]
    res = check_faithfulness("It takes ages.", ev(duration="low"), lexicon=extra)
    assert [(c.descriptor, c.status) for c in res.claims] == [("duration", "contradicted")]
    with pytest.raises(ValueError, match="no_such"):
        compile_lexicon([("no_such", "high", ["x"])])
    with pytest.raises(ValueError, match="'up'"):
        compile_lexicon([("duration", "up", ["x"])])


def test_statement_counts_count_a_repeated_claim_once():
    """A text that says the same thing three ways makes one statement: a degenerate repetition
    ("quickly ... quickly ... quickly") must not outweigh a text that says several things."""
    evidence = ev(root_speed_mean="low", quantity_of_motion="high", stride_length="typical")
    r = check_faithfulness("She walks slowly, at a slow pace; she walks slowly. Slowly, slowly. "
                           "She is energetic and takes long strides.", evidence)
    statuses = [c.status for c in r.claims]
    assert statuses.count("supported") == 4 and statuses.count("contradicted") == 2
    # walks slowly / slow pace: travel speed low; energetic: movement high; "slowly" alone:
    # movement low (contradicted); long strides for a typical stride: weak
    assert r.statement_counts() == {"supported": 2, "weak": 1, "contradicted": 1}
    assert check_faithfulness("What is the emotion?", evidence).statement_counts() == {
        "supported": 0, "weak": 0, "contradicted": 0}


def test_summarise():
    evidence = ev(root_speed_mean="high", head_pitch_mean="high")
    results = [check_faithfulness(t, evidence) for t in (
        "She walks slowly.", "He walks slowly with his head held high.", "A brisk walk.")]
    s = summarise([results[0], results[1].to_dict(), results[2], {}])
    assert s["drafts"] == 3 and s["faithful"] == 1 and s["skipped"] == 1
    assert math.isclose(s["faithful_share"], 1 / 3)
    assert s["claims"] == 4 and s["checked"] == 4
    assert s["statuses"] == {"supported": 1, "weak": 0, "contradicted": 3, "unverifiable": 0}
    assert s["most_contradicted"] == [{"descriptor": "root_speed_mean", "count": 2},
                                      {"descriptor": "head_pitch_mean", "count": 1}]
    assert summarise([])["faithful_share"] is None
    assert isinstance(results[0], FaithfulnessResult)


def test_on_real_descriptor_levels(sample_dataset):
    from eai.toolkit.dataset import load_clips

    clips = load_clips(sample_dataset)
    levels = DescriptorLevels().fit(descriptor_matrix(clips), [c.action for c in clips])
    seen = set()
    for clip in clips:
        values = compute_descriptors(clip).values
        lv = levels.levels(values, clip.action)
        evidence = {d.name: {"value": None if math.isnan(values[d.name]) else values[d.name],
                             "unit": d.unit, "level": lv[d.name]} for d in DESCRIPTORS}
        speed = lv["root_speed_mean"]
        if speed not in ("low", "high"):
            continue
        seen.add(speed)
        says = {"low": "The person walks slowly.", "high": "The person walks briskly."}
        agree = check_faithfulness(says[speed], evidence)
        assert agree.faithful and agree.checked == 1, (clip.clip_id, agree.to_dict())
        wrong = check_faithfulness(says[OPPOSITE[speed]], evidence)
        assert not wrong.faithful, clip.clip_id
        assert wrong.contradictions[0].descriptor == "root_speed_mean"
        assert wrong.contradictions[0].value == pytest.approx(values["root_speed_mean"])
    assert seen == {"low", "high"}  # the sample set has both slow and fast walkers


@pytest.mark.parametrize("text,claimed", [
    ("a high vertical bounce", "high"), ("a lot of bounce", "high"), ("a low bounce", "low"),
    ("little vertical bounce", "low"), ("bouncing along", "high"),
    ("a low-level bounce", "low")])
def test_bounce_phrases_are_one_claim(text, claimed):
    c = only_claim(text, ev(pelvis_bounce="low"))
    assert (c.phrase in text, c.claimed, c.negated) == (True, claimed, False)
    assert c.status == ("supported" if claimed == "low" else "contradicted")


@pytest.mark.parametrize("text,claimed", [
    ("a low degree of tail-bouncing", "low"), ("a small amount of vertical bouncing", "low"),
    ("a low level of bounce", "low"), ("a high degree of bouncing", "high")])
def test_a_low_degree_of_something_claims_its_low_level(text, claimed):
    c = only_claim(text, ev(pelvis_bounce="low"))
    assert (c.claimed, c.negated) == (claimed, False)
    assert c.status == ("supported" if claimed == "low" else "contradicted")


@pytest.mark.parametrize("text,claimed", [
    ("with a high overall movement", "high"), ("considerable body movements", "high"),
    ("a low overall movement", "low"), ("little overall motion", "low")])
def test_overall_movement_claims_both_ways(text, claimed):
    # "a high overall movement" was read as nothing while "low overall movement" was a claim
    c = only_claim(text, ev(quantity_of_motion="low"))
    assert (c.descriptor, c.claimed) == ("quantity_of_motion", claimed)
    assert c.status == ("supported" if claimed == "low" else "contradicted")


@pytest.mark.parametrize("text,claimed", [
    ("their low-speed movement", "low"), ("a low speed", "low"), ("a high-speed run", "high")])
def test_hyphenated_speed_compounds_claim_speed(text, claimed):
    c = only_claim(text, ev(root_speed_mean="low"))
    assert (c.descriptor, c.claimed) == ("root_speed_mean", claimed)


# The prompt's own words for a level that the check reads as a claim on another descriptor:
# "steps slowly" / "steps quickly" (step rate) read as travel speed, as a reader would; "is
# brief" has no subject the check could tie to the clip.
PROMPT_PHRASES_READ_OTHERWISE = {("stride_frequency", "low"), ("stride_frequency", "high"),
                                 ("duration", "low")}


@pytest.mark.parametrize("name", list(PROMPT_DESCRIPTORS))
def test_level_phrases_of_prompt_and_alignment_are_claims(name):
    """What the prompt says about a level ("The person leans the trunk forward.") is what a
    model repeats most, and the other words of `--align-phrasing varied` are statements the
    model is trained to make: the check reads each as that descriptor's claim alone, supported
    at that level and contradicted at the other. "Leans the trunk forward", "rounds the upper
    back", "swings the arms little" and "is rarely still" were once read as nothing."""
    for level, other in (("low", "high"), ("high", "low")):
        prompts_own, *others = level_phrasings(name, level)
        skip_own = (name, level) in PROMPT_PHRASES_READ_OTHERWISE
        for phrase in others if skip_own else [prompts_own, *others]:
            text = f"The person {phrase}."
            same = check_faithfulness(text, {name: {"value": 1.0, "level": level}})
            assert [(c.descriptor, c.status) for c in same.claims] == [(name, "supported")], text
            opposite = check_faithfulness(text, {name: {"value": 1.0, "level": other}})
            assert [(c.descriptor, c.status) for c in opposite.claims] == \
                [(name, "contradicted")], text
