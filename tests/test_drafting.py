"""`eai draft-explanations`: answers, evidence, prompts, resuming, and the two drafting modes.

Model-mode drafting runs on a scripted backend (fixed answers, real tokenizer) so that parsing,
probabilities and bookkeeping are tested exactly; cold-start drafting runs the real in-process
backend on the tiny random model (its English is noise, the bookkeeping is not).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import eai
from eai.cli import app
from eai.toolkit.dataset import load_clips
from eai.toolkit.descriptors import DESCRIPTOR_NAMES, DescriptorLevels, descriptor_matrix
from eai.toolkit.drafting.answer import clean_explanation, match_label, parse_model_answer
from eai.toolkit.drafting.backends import BackendError, Generation
from eai.toolkit.drafting.draft import Draft, DraftFileError, read_drafts
from eai.toolkit.drafting.evidence import clip_evidence, evidence_lines
from eai.toolkit.drafting.prompts import (
    PromptError,
    load_template,
    motion_texts,
    separate_semantic,
)
from eai.toolkit.drafting.run import DraftConfig, DraftingError, repair_tail, run_drafting
from eai.toolkit.model import load_skeleton_tokenizer, read_info
from eai.toolkit.splits import SplitError, make_split, split_ids, write_splits

LABELS = ["angry", "happy", "sad"]


# -- answers ----------------------------------------------------------------------------------
def test_parse_model_answer():
    e, text, w = parse_model_answer("Happy</emotion><explanation>Quick light steps. The arms "
                                    "swing widely.</explanation>", LABELS)
    assert (e, text, w) == ("happy", "Quick light steps. The arms swing widely.", [])
    e, text, w = parse_model_answer("joyful</emotion><explanation>Fast. Open.</explanation>",
                                    LABELS)
    assert e is None and text == "Fast. Open." and "'joyful' is not in the label set" in w[0]
    e, text, w = parse_model_answer("the person seems sad and slow", LABELS)
    assert e is None and "no </emotion>" in w[0]
    assert match_label(" SAD. ", LABELS) == "sad" and match_label("sadness", LABELS) is None


def test_clean_explanation():
    six = " ".join(f"Sentence number {i}." for i in range(6))
    text, w = clean_explanation(six)
    assert text.count(".") == 5 and "cut to its first 5 of 6" in w[0]
    text, w = clean_explanation("The head hangs low.  The steps are slow. And then the")
    assert text == "The head hangs low. The steps are slow." and "mid-sentence" in w[0]
    text, w = clean_explanation("Only one <st_3> sentence.")
    assert text == "Only one sentence." and "fewer than 2" in w[0]
    assert clean_explanation("")[1] == ["the answer has no explanation"]


# -- evidence and prompts ---------------------------------------------------------------------
def test_evidence_has_every_descriptor_with_levels(sample_dataset):
    clips = load_clips(sample_dataset)
    levels = DescriptorLevels().fit(descriptor_matrix(clips), [c.action for c in clips])
    ev = clip_evidence(clips[0], levels)
    assert list(ev) == list(DESCRIPTOR_NAMES)
    assert all(set(v) == {"value", "unit", "level"} for v in ev.values())
    assert {v["level"] for v in ev.values()} <= {"low", "typical", "high", None}
    assert any(v["level"] in ("low", "high") for v in ev.values())
    json.dumps(ev, allow_nan=False)  # no NaN reaches a draft line
    lines = evidence_lines(ev, limit=5)
    assert len(lines) == 5
    unusual = [i for i, line in enumerate(lines) if line.endswith((", low)", ", high)"))]
    assert unusual and unusual == list(range(len(unusual)))  # unusual levels come first
    no_levels = clip_evidence(clips[0], None)
    assert all(v["level"] is None for v in no_levels.values())
    assert evidence_lines(no_levels)[0].startswith("- has a travel speed of ")


def test_prompt_templates(tmp_path):
    tpl = load_template("emotion_explain_v1")
    assert "{motion}" in tpl.user and "{emotion}" in tpl.cold_start_user
    with pytest.raises(PromptError, match="not found; bundled: emotion_explain_v1, "
                                          "emotion_explain_v2"):
        load_template("no_such_template")
    v2 = load_template("emotion_explain_v2")
    assert separate_semantic(v2) and not separate_semantic(tpl)
    # the semantic block closes the drafting prompt as it closes the alignment label prompt
    assert v2.user.endswith(v2.align_label_user.split("\n", 1)[1])
    # a template that moves the block must move it in the alignment prompts too
    doc = json.loads((Path(eai.__file__).parent / "templates/prompts/emotion_explain_v2.json")
                     .read_text())
    doc["alignment"]["label_user"] = "Motion: {motion}\nWhich emotion? {labels}."
    (tmp_path / "t.json").write_text(json.dumps(doc))
    with pytest.raises(PromptError, match="align_label_user must contain {semantic}"):
        load_template(str(tmp_path / "t.json"))


def test_motion_texts_follow_the_template(tiny_model_dir, sample_dataset):
    skeleton = load_skeleton_tokenizer(tiny_model_dir)
    clip = load_clips(sample_dataset)[0]
    motion, semantic = motion_texts(load_template("emotion_explain_v1"), skeleton, clip)
    assert semantic == "" and motion == skeleton.tokens_text(clip, sep="")
    motion, semantic = motion_texts(load_template("emotion_explain_v2"), skeleton, clip)
    assert "<semantic>" not in motion and "<t>" in motion
    assert semantic.startswith("<semantic>") and semantic.endswith("</semantic>")
    tags = motion.split("<t>", 1)[0]  # "<motion><ds_..>"
    assert skeleton.tokens_text(clip, sep="") == tags + semantic + motion[len(tags):]
    short, _ = motion_texts(load_template("emotion_explain_v2"), skeleton, clip,
                            spatio_temporal=False)
    assert short == tags + "</motion>"


# -- splits -----------------------------------------------------------------------------------
def test_make_split_stratified_and_grouped():
    ids = [f"c{i}" for i in range(40)]
    emotions = ["happy", "sad"] * 18 + [None] * 4
    groups = [f"act{i % 8}" for i in range(40)]
    s = make_split(ids, emotions, test_fraction=0.25, seed=1)
    assert set(s["train"]) | set(s["test"]) == set(ids) and not set(s["train"]) & set(s["test"])
    test_em = [emotions[ids.index(i)] for i in s["test"]]
    assert abs(test_em.count("happy") - test_em.count("sad")) <= 1 and None not in test_em
    g = make_split(ids, emotions, groups, test_fraction=0.25, seed=1)
    test_groups = {groups[ids.index(i)] for i in g["test"]}
    assert not test_groups & {groups[ids.index(i)] for i in g["train"] if emotions[ids.index(i)]}
    with pytest.raises(SplitError, match="between 0 and 1"):
        make_split(ids, emotions, test_fraction=1.5)


# -- a scripted backend -----------------------------------------------------------------------
class ScriptedBackend:
    """Answers every prompt with the same text; scores favour one label; can fail on demand."""

    name = "scripted"

    def __init__(self, tokenizer, answer: str, favour: int, n_labels: int, fail_on_call=None):
        self.ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        self.favour, self.n_labels, self.fail_on_call = favour, n_labels, fail_on_call
        self.calls, self.prompts = 0, []

    def generate(self, prompts, max_new_tokens, stop_token_ids, temperature=0.0, seed=0):
        self.calls += 1
        if self.fail_on_call == self.calls:
            raise BackendError("the server went away")
        self.prompts.extend(prompts)
        return [Generation(list(self.ids), "stop") for _ in prompts]

    def score(self, prompts, options):
        assert len(options) == self.n_labels
        s = np.full((len(prompts), len(options)), -3.0)
        s[:, self.favour] = -1.0
        return s

    def close(self):
        pass


@pytest.fixture
def drafting(tiny_model_dir, sample_dataset, tmp_path):
    from transformers import AutoTokenizer

    info = read_info(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    labels = info.label_set
    # model mode: drafting picks the label and writes `LABEL</emotion><explanation>` itself;
    # the backend generates the explanation that follows
    answer = "The person walks fast with light steps. The arms swing widely.</explanation>"

    def make(**kw):
        return ScriptedBackend(tok, answer, favour=1, n_labels=len(labels), **kw)

    cfg = DraftConfig(dataset=sample_dataset, out=tmp_path / "drafts.jsonl",
                      model_dir=tiny_model_dir, mode="model", batch_size=4)
    return cfg, make, labels, tok


def test_model_mode_draft_lines(drafting):
    cfg, make, labels, tok = drafting
    backend = make()
    s = run_drafting(cfg, backend=backend)
    drafts = list(read_drafts(cfg.out))
    n = len(load_clips(cfg.dataset))
    assert s.failed == [] and s.unparsed == 0
    assert s.drafted == len(drafts) == n
    d = drafts[0]
    assert d.emotion == labels[1] and d.label_source == "model"
    want = math.exp(-1) / (math.exp(-1) + (len(labels) - 1) * math.exp(-3))
    assert d.confidence == pytest.approx(want, abs=1e-6)
    assert sum(d.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert d.explanation == "The person walks fast with light steps. The arms swing widely."
    assert d.raw_text.startswith("<emotion>") and d.backend == "scripted"
    assert d.model_version == read_info(cfg.model_dir).model_version
    assert set(d.faithfulness) >= {"faithful", "claims", "contradictions"}
    assert d.classifier["emotion"] in d.classifier["probabilities"]
    assert set(d.evidence) == set(DESCRIPTOR_NAMES)
    # the prompt the model saw holds the clip's skeleton tokens as single added ids
    first_added = read_info(cfg.model_dir).added_tokens["first_id"]
    text = tok.decode(backend.prompts[0])
    assert "<motion>" in text and text.endswith(f"<emotion>{labels[1]}</emotion><explanation>")
    assert sum(i >= first_added for i in backend.prompts[0]) > 10


def test_the_label_is_the_most_probable_of_the_set_whatever_the_text(drafting):
    """Constrained decoding: the label comes from the label-set scores, the text after it."""
    cfg, _, labels, tok = drafting
    backend = ScriptedBackend(tok, "I cannot tell.", favour=0, n_labels=len(labels))
    s = run_drafting(cfg, backend=backend)
    d = next(read_drafts(cfg.out))
    assert s.unparsed == 0 and d.emotion == labels[0] and d.explanation == "I cannot tell."
    assert d.raw_text == f"<emotion>{labels[0]}</emotion><explanation>I cannot tell."
    assert d.confidence == d.probabilities[labels[0]] > 0.5
    assert tok.decode(backend.prompts[0]).endswith(
        f"<emotion>{labels[0]}</emotion><explanation>")


def test_sampled_labels_follow_the_probabilities_and_the_seed(drafting, tmp_path):
    cfg, make, labels, tok = drafting
    picked = []
    for run in range(2):
        out = tmp_path / f"sampled-{run}.jsonl"
        run_drafting(replace(cfg, out=out, temperature=1.0, seed=7), backend=make())
        picked.append([d.emotion for d in read_drafts(out)])
    assert picked[0] == picked[1]  # the same seed, the same labels
    assert set(picked[0]) <= set(labels) and len(set(picked[0])) > 1  # not always the argmax
    assert picked[0].count(labels[1]) > len(picked[0]) / len(labels)  # the favoured one leads


def test_resume_after_interruption_never_duplicates(drafting):
    cfg, make, _, _ = drafting
    n = len(load_clips(cfg.dataset))
    with pytest.raises(BackendError):
        run_drafting(cfg, backend=make(fail_on_call=2))
    first = [d.clip_id for d in read_drafts(cfg.out)]
    assert len(first) == cfg.batch_size  # the first batch was flushed, the second lost
    with cfg.out.open("a") as f:
        f.write('{"clip_id": "half a line')  # a crash in the middle of a write
    s = run_drafting(cfg, backend=make())
    ids = [d.clip_id for d in read_drafts(cfg.out)]
    assert s.already_drafted == cfg.batch_size and s.drafted == n - cfg.batch_size
    assert len(ids) == len(set(ids)) == n and ids[:len(first)] == first
    again = run_drafting(cfg, backend=make())
    assert again.drafted == 0 and again.already_drafted == n
    assert len(list(read_drafts(cfg.out))) == n


def test_selection_split_limit_and_ids(drafting):
    cfg, make, _, _ = drafting
    ds = _copy(cfg.dataset, cfg.out.parent)  # the session's dataset is read-only
    write_splits(ds, test_fraction=0.4, seed=0)
    with pytest.raises(SplitError, match="exists"):
        write_splits(ds)
    cfg.dataset = ds
    cfg.split = "test"
    s = run_drafting(cfg, backend=make())
    assert sorted(d.clip_id for d in read_drafts(cfg.out)) == split_ids(ds, "test")
    assert s.selected == len(split_ids(ds, "test"))
    cfg.split, cfg.limit, cfg.out = None, 3, cfg.out.with_name("limited.jsonl")
    assert run_drafting(cfg, backend=make()).drafted == 3
    cfg.limit, cfg.clip_ids = None, ["no/such-clip"]
    with pytest.raises(DraftingError, match="not in"):
        run_drafting(cfg, backend=make())


def _copy(src: Path, parent: Path) -> Path:
    import shutil

    return Path(shutil.copytree(src, parent / "ds"))


def test_one_bad_clip_does_not_stop_the_batch(drafting, monkeypatch):
    import eai.toolkit.drafting.run as run

    cfg, make, _, _ = drafting
    bad = load_clips(cfg.dataset)[1].clip_id
    real = run.clip_evidence

    def flaky(clip, levels):
        if clip.clip_id == bad:
            raise ValueError("positions are all NaN")
        return real(clip, levels)

    monkeypatch.setattr(run, "clip_evidence", flaky)
    s = run_drafting(cfg, backend=make())
    assert s.failed == [{"clip_id": bad, "error": "ValueError: positions are all NaN"}]
    assert bad not in {d.clip_id for d in read_drafts(cfg.out)}
    assert s.drafted == len(load_clips(cfg.dataset)) - 1


def test_repair_tail_and_broken_lines(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"a": 1}\n{"b"')
    assert repair_tail(p) and p.read_text() == '{"a": 1}\n'
    assert not repair_tail(p)
    p.write_text('not json\n{"clip_id": "x"}\n')
    with pytest.raises(DraftFileError, match="line 1"):
        list(read_drafts(p))


# -- cold start, the real in-process backend --------------------------------------------------
def test_cold_start_with_the_transformers_backend(tiny_model_dir, sample_dataset, tmp_path):
    out = tmp_path / "cold.jsonl"
    result = CliRunner().invoke(app, ["draft-explanations", str(sample_dataset), "-o", str(out),
                                      "--model", str(tiny_model_dir), "--limit", "3",
                                      "--max-new-tokens", "12"])
    assert result.exit_code == 0, result.output
    assert "3 drafted, 0 already drafted" in result.output and "faithful:" in result.output
    drafts = list(read_drafts(out))
    assert len(drafts) == 3
    for d in drafts:  # read_info(...).version == 0: auto picks the cold start
        assert d.label_source == "classifier" and d.backend == "transformers"
        assert d.emotion == d.classifier["emotion"] == max(d.probabilities,
                                                          key=d.probabilities.get)
        assert 0.0 <= d.confidence <= 1.0 and d.confidence == d.classifier["confidence"]
        assert any("max-new-tokens" in w for w in d.warnings)  # 12 tokens cut every answer
    again = CliRunner().invoke(app, ["draft-explanations", str(sample_dataset), "-o", str(out),
                                     "--model", str(tiny_model_dir), "--limit", "3"])
    assert "0 drafted, 3 already drafted" in again.output and len(list(read_drafts(out))) == 3


def test_cli_errors_are_one_line(tiny_model_dir, sample_dataset, tmp_path):
    r = CliRunner().invoke(app, ["draft-explanations", str(sample_dataset), "-o",
                                 str(tmp_path / "d.jsonl"), "--model", str(tiny_model_dir),
                                 "--backend", "openai"])
    assert r.exit_code == 1 and "needs --base-url" in r.output
    r = CliRunner().invoke(app, ["draft-explanations", str(sample_dataset), "-o",
                                 str(tmp_path / "d.jsonl"), "--model", str(tmp_path)])
    assert r.exit_code == 1 and "not an EAI-LLM model directory" in " ".join(r.output.split())


def test_draft_round_trip():
    d = Draft(clip_id="a/b", model_version="m-v0-1", emotion="sad", confidence=0.5,
              explanation="x", evidence={}, prompt_template="t")
    assert Draft.from_dict(json.loads(d.to_json())) == d
    with pytest.raises(ValueError, match="lacks"):
        Draft.from_dict({"clip_id": "x"})
