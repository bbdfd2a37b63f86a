"""`eai evaluate --model`: the scores of a model's own answers, checked against hand counts.

A scripted backend (fixed answers and label probabilities through the real tokenizer) answers
known labels for known clips, so accuracy, macro-F1, calibration and ROUGE-L have exact
expected values; one CLI run uses the real in-process backend on the tiny random model.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from typer.testing import CliRunner

from eai.cli import app
from eai.toolkit.dataset import shard_paths
from eai.toolkit.drafting.backends import Generation
from eai.toolkit.drafting.draft import read_drafts
from eai.toolkit.llm_eval import EvalError, eval_paths, evaluate_model, read_references
from eai.toolkit.llm_eval_report import compare_rows, compare_table
from eai.toolkit.llm_metrics import (
    Answer,
    calibration,
    lcs_length,
    rouge_l,
    score_answers,
)
from eai.toolkit.model import read_info
from eai.toolkit.review.curated import CuratedPair
from eai.toolkit.splits import write_splits

EXPL = "The person walks fast with light steps. The arms swing widely."


# -- ROUGE-L ----------------------------------------------------------------------------------
def test_rouge_l_hand_computed():
    assert rouge_l(EXPL, EXPL) == 1.0
    assert rouge_l("Slow heavy steps.", "The arms swing widely.") == 0.0
    assert rouge_l("", EXPL) == 0.0 and rouge_l(EXPL, "") == 0.0
    # Lin (2004)'s example: reference "police killed the gunman"
    assert rouge_l("police kill the gunman", "police killed the gunman") == pytest.approx(0.75)
    assert rouge_l("the gunman kill police", "police killed the gunman") == pytest.approx(0.5)
    # 11 candidate words, 4 reference words, LCS 4: P = 4/11, R = 1, F1 = 8/15
    assert rouge_l(EXPL, "the ARMS swing, widely!") == pytest.approx(8 / 15)
    # several references: the best one counts
    assert rouge_l("a b c d", ["x y", "a b z z"]) == pytest.approx(2 * 0.5 * 0.5 / 1.0)
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4


# -- scoring, pure ----------------------------------------------------------------------------
def test_score_answers_per_dataset_unparsed_and_failed():
    t = "The steps are quick."
    a = [Answer("A/1", "A", "happy", "happy", 0.9, faithful=True, explanation=t),
         Answer("A/2", "A", "sad", "happy", 0.6, faithful=False, explanation=t),
         Answer("A/3", "A", "sad", None, None, faithful=True),  # did not parse, no text
         Answer("B/1", "B", "sad", "sad", 0.8, faithful=True, explanation=t),
         Answer("B/2", "B", "angry", None, None, drafted=False),  # could not be drafted
         Answer("B/3", "B", "fearful", "sad", 0.7, faithful=True, explanation=t)]  # not a label
    s = score_answers(a, ["angry", "happy", "sad"])
    m = s["metrics"]
    assert m["accuracy"] == pytest.approx(2 / 6)
    # F1 per true class: angry 0; happy 2/(2+1+0); sad tp 1, fp 1 (B/3), fn 2 -> 2/5; fearful 0
    assert m["macro_f1"] == pytest.approx((0 + 2 / 3 + 2 / 5 + 0) / 4)
    assert m["parse_share"] == pytest.approx(4 / 5)
    # an empty explanation is not faithful by default: 3 of the 4 that explain anything
    assert m["explained_share"] == pytest.approx(4 / 5)
    assert m["faithful_share"] == pytest.approx(3 / 4)
    assert s["counts"] == {"clips": 6, "drafted": 5, "parsed": 4, "unparsed": 1, "failed": 1}
    assert s["labels_outside_model"] == ["fearful"]
    conf = s["confusion"]
    assert conf["rows"] == ["angry", "happy", "sad", "fearful"]
    assert conf["columns"] == ["angry", "happy", "sad", "fearful", "unparsed"]
    assert conf["matrix"] == [[0, 0, 0, 0, 1], [0, 1, 0, 0, 0], [0, 1, 1, 0, 1], [0, 0, 1, 0, 0]]
    assert m["per_class_recall"] == {"angry": 0.0, "happy": 1.0, "sad": pytest.approx(1 / 3),
                                     "fearful": 0.0}
    A, B = s["per_dataset"]["A"], s["per_dataset"]["B"]
    assert (A["clips"], A["accuracy"], A["parse_share"]) == (3, pytest.approx(1 / 3),
                                                             pytest.approx(2 / 3))
    assert A["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)  # happy 2/3, sad 0 (tp 0)
    assert (B["clips"], B["accuracy"], B["parse_share"]) == (3, pytest.approx(1 / 3), 1.0)
    assert B["macro_f1"] == pytest.approx((0 + 2 / 3 + 0) / 3)  # angry, sad, fearful
    assert m["rouge_l"] is None
    assert score_answers(a, ["sad"], {"Z/9": ["x"]})["metrics"]["rouge_l"] == {"f1": None,
                                                                             "clips": 0}
    with pytest.raises(ValueError, match="no labelled clips"):
        score_answers([], ["sad"])


def test_cites_evidence_share_exposes_text_that_claims_nothing():
    """A degenerate explanation passes the faithfulness check (it claims nothing); the share of
    drafts that cite supported evidence does not count it."""
    one = {"supported": 1, "weak": 0, "contradicted": 0}
    none = {"supported": 0, "weak": 0, "contradicted": 0}
    a = [Answer("A/1", "A", "sad", "sad", 0.9, faithful=True, explanation="The steps are slow.",
                statements=one),
         Answer("A/2", "A", "sad", "sad", 0.9, faithful=True, explanation="sad sad sad sad",
                statements=none),
         Answer("A/3", "A", "sad", "sad", 0.9, faithful=True, explanation="", statements=none),
         Answer("A/4", "A", "sad", "sad", 0.9, faithful=None, explanation="Slow.")]
    m = score_answers(a, ["sad", "happy"])["metrics"]
    assert m["faithful_share"] == 1.0 and m["explained_share"] == pytest.approx(3 / 4)
    assert m["cites_evidence_share"] == pytest.approx(1 / 4)
    assert m["grounded_share"] == pytest.approx(1 / 4)


def test_statement_scores_do_not_reward_saying_nothing():
    """Claim precision is over what the texts state; grounded drafts cite the evidence and
    contradict none of it. A model that writes nothing checkable is 'faithful' throughout but
    grounded nowhere and has no precision at all."""
    st = lambda s, w, c: {"supported": s, "weak": w, "contradicted": c}
    said = lambda i, faithful, counts: Answer(f"A/{i}", "A", "sad", "sad", 0.9,
                                              faithful=faithful, explanation="x",
                                              statements=counts)
    talker = [said(1, True, st(3, 1, 0)), said(2, False, st(2, 0, 1)),
              said(3, True, st(0, 1, 0)), Answer("A/4", "A", "sad", None, None, drafted=False)]
    m = score_answers(talker, ["sad"])["metrics"]
    assert m["statements"] == {"supported": 5, "weak": 2, "contradicted": 1, "checked": 8}
    assert m["claim_precision"] == pytest.approx(5 / 8)
    assert m["grounded_share"] == pytest.approx(1 / 3)  # A/1 only; A/4 was not drafted
    assert m["faithful_share"] == pytest.approx(2 / 3)
    silent = [said(i, True, st(0, 0, 0)) for i in range(3)]  # "What is the emotion?"
    m = score_answers(silent, ["sad"])["metrics"]
    assert m["faithful_share"] == 1.0
    assert m["grounded_share"] == 0.0 and m["claim_precision"] is None


def test_calibration_with_no_scored_answer():
    c = calibration([Answer("x", "d", "sad", None)])
    assert c["answers"] == 0 and c["ece"] is None and c["top_third_accuracy"] is None


def test_read_references(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"clip_id": "a", "outcome": "edited", "explanation": "x y", "new": 1}\n\n'
                 '{"clip_id": "a", "outcome": "accepted", "explanation": "z"}\n'
                 '{"clip_id": "b", "outcome": "rejected", "explanation": ""}\n'
                 '{"clip_id": "c", "outcome": "relabelled", "explanation": " "}\n')
    assert read_references(p) == ({"a": ["x y", "z"]}, 4)
    p.write_text('{"clip_id": "a"}\n')
    with pytest.raises(EvalError, match="line 1: not a curated pair"):
        read_references(p)


# -- end to end with a scripted backend -------------------------------------------------------
class ScriptedBackend:
    """Answers the prompts in the order drafting sends them: plan[k] = (label, p), the label's
    probability over the label set. Model mode scores first (the label), then generates the
    explanation; cold start only generates."""

    name = "scripted"

    def __init__(self, tokenizer, labels, plan):
        self.tok, self.labels, self.plan = tokenizer, labels, list(plan)
        self.scored: list | None = None
        self.prompts = 0

    def _take(self, n: int) -> list:
        if n > len(self.plan):
            raise AssertionError("drafted more clips than planned")
        batch, self.plan = self.plan[:n], self.plan[n:]
        return batch

    def generate(self, prompts, max_new_tokens, stop_token_ids, temperature=0.0, seed=0):
        batch = self.scored if self.scored is not None else self._take(len(prompts))
        self.scored = None
        self.prompts += len(batch)
        text = f"{EXPL}</explanation>"
        return [Generation(self.tok(text, add_special_tokens=False)["input_ids"], "stop")
                for _ in batch]

    def score(self, prompts, options):
        self.scored = self._take(len(prompts))
        n = len(self.labels)
        rows = []
        for lab, p in self.scored:
            row = np.full(n, (1 - p) / (n - 1))
            row[self.labels.index(lab)] = p
            rows.append(np.log(row))
        return np.array(rows)

    def close(self):
        pass


def _dataset(src: Path, dst: Path, unlabel: tuple[str, ...] = ()) -> Path:
    """A copy of the (read-only) sample dataset, some clips' emotions removed."""
    shutil.copytree(src, dst)
    for path in shard_paths(dst):
        t = pq.read_table(path)
        i = t.schema.get_field_index("emotion")
        em = [None if c in unlabel else e for c, e in zip(t["clip_id"].to_pylist(),
                                                           t["emotion"].to_pylist())]
        pq.write_table(t.set_column(i, t.schema.field(i), pa.array(em, pa.string())), path)
    return dst


def _write_split(dataset: Path, test: list[str]) -> None:
    doc = {"format_version": 1, "kind": "eai.splits", "splits": {"train": [], "test": test}}
    (dataset / "splits.json").write_text(json.dumps(doc))


def _model(src: Path, dst: Path, version: str | None = None) -> Path:
    shutil.copytree(src, dst)  # evaluation writes into MODEL/eval/; the fixture is read-only
    if version:
        info = json.loads((dst / "eai.json").read_text())
        info["model_version"] = version
        (dst / "eai.json").write_text(json.dumps(info))
    return dst


S = "sd/{}/sample_{}_walk_s01_01"
# (clip, scripted label, its probability), in dataset order; bvh neutral is made unlabelled
PLAN = [(S.format("bvh", "angry"), "angry", 0.95), (S.format("bvh", "happy"), "happy", 0.45),
        (S.format("bvh", "sad"), "happy", 0.85), (S.format("c3d", "angry"), "angry", 0.65),
        (S.format("c3d", "happy"), "angry", 0.5), (S.format("npy", "sad"), "sad", 0.25)]
UNLABELLED = S.format("bvh", "neutral")


@pytest.fixture
def setup(sample_dataset, tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    ds = _dataset(sample_dataset, tmp_path / "ds", unlabel=(UNLABELLED,))
    _write_split(ds, [p[0] for p in PLAN] + [UNLABELLED])
    model = _model(tiny_model_dir, tmp_path / "model")
    labels = read_info(model).label_set
    tok = AutoTokenizer.from_pretrained(model)
    make = lambda plan=PLAN: ScriptedBackend(tok, labels, [(lab, p) for _, lab, p in plan])
    return ds, model, labels, make


def test_scripted_answers_scored_exactly(setup, tmp_path):
    ds, model, labels, make = setup
    curated = tmp_path / "curated.jsonl"
    pair = {"emotion": "angry", "draft": None, "reviewer": "r@x", "rating": 4,
            "contradiction": False, "lead_time_s": 3.0, "label_studio": {"annotation_id": 1},
            "updated_at": "2025-01-01"}
    lines = [CuratedPair(clip_id=PLAN[0][0], explanation=EXPL, outcome="accepted", **pair),
             CuratedPair(clip_id=PLAN[1][0], explanation="The arms swing widely.",
                         outcome="edited", **pair),
             CuratedPair(clip_id=PLAN[3][0], explanation="", outcome="rejected",
                         rejected_because="skipped", **pair)]
    curated.write_text("".join(p.to_json() + "\n" for p in lines) + json.dumps(
        {"clip_id": S.format("npy", "angry"), "outcome": "relabelled", "explanation": EXPL,
         "future_field": [1]}) + "\n")
    backend = make()
    doc = evaluate_model(model, ds, curated=curated, backend_impl=backend)
    assert backend.prompts == 6  # the unlabelled clip of the split is not drafted
    m, c = doc["metrics"], doc["counts"]
    assert c == {"clips": 6, "drafted": 6, "parsed": 6, "unparsed": 0, "failed": 0,
                 "unlabelled_left_out": 1}
    assert m["accuracy"] == pytest.approx(4 / 6)
    # F1: angry tp 2, fp 1, fn 0 -> 4/5; happy tp 1, fp 1, fn 1 -> 1/2; sad tp 1, fn 1 -> 2/3
    assert m["macro_f1"] == pytest.approx((4 / 5 + 1 / 2 + 2 / 3) / 3)
    assert m["parse_share"] == 1.0  # constrained decoding: always a label of the set
    assert m["per_class_recall"] == {"angry": 1.0, "happy": 0.5, "sad": 0.5}
    cal = m["calibration"]
    assert cal["mean_confidence"] == pytest.approx(
        (0.95 + 0.45 + 0.85 + 0.65 + 0.5 + 0.25) / 6, abs=1e-5)
    assert cal["top_third_answers"] == 2 and cal["top_third_accuracy"] == 0.5  # 0.95 ok, 0.85 no
    # every confidence in its own bin: ECE = mean |correct - confidence|
    assert cal["ece"] == pytest.approx((0.05 + 0.55 + 0.85 + 0.35 + 0.5 + 0.75) / 6, abs=1e-5)
    assert m["rouge_l"] == {"f1": pytest.approx((1 + 8 / 15) / 2), "clips": 2}
    assert doc["curated"]["pairs"] == 4 and doc["curated"]["clips_with_reference"] == 3
    drafts = list(read_drafts(eval_paths(model)["drafts"]))
    assert m["faithful_share"] == pytest.approx(
        sum(d.faithfulness["faithful"] for d in drafts) / 6)
    cites = [any(c["status"] == "supported" for c in d.faithfulness["claims"]) for d in drafts]
    assert m["cites_evidence_share"] == pytest.approx(sum(cites) / 6)
    grounded = [ok and f["faithful"] for ok, f in zip(cites, (d.faithfulness for d in drafts))]
    assert m["grounded_share"] == pytest.approx(sum(grounded) / 6)
    assert doc["per_dataset"] == {"sd": {"clips": 6, "accuracy": m["accuracy"],
                                         "macro_f1": m["macro_f1"],
                                         "parse_share": m["parse_share"]}}
    conf = doc["confusion"]
    assert conf["rows"] == ["angry", "happy", "sad"] and conf["columns"] == labels + ["unparsed"]
    row = lambda **kw: [kw.get(col, 0) for col in conf["columns"]]
    assert conf["matrix"] == [row(angry=2), row(happy=1, angry=1), row(happy=1, sad=1)]
    # eval.json holds the same, complete, beside the PNG and the drafts
    saved = json.loads((model / "eval" / "eval.json").read_text())
    assert saved == {k: v for k, v in doc.items() if k != "paths"}
    for key in ("format_version", "model_version", "dataset", "split", "counts", "metrics",
                "per_dataset", "confusion", "created_at", "eai_version", "mode"):
        assert saved[key] is not None, key
    assert saved["model_version"] == read_info(model).model_version and saved["mode"] == "model"
    assert (model / "eval" / "confusion-test.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_drafts_nothing_and_a_changed_model_drafts_again(setup):
    ds, model, _, make = setup
    first = evaluate_model(model, ds, backend_impl=make())
    again = evaluate_model(model, ds, backend_impl=make([]))  # any drafting would fail
    assert again["drafting"]["drafted_now"] == 0 and again["drafting"]["already_drafted"] == 6
    assert again["metrics"] == first["metrics"]
    info = json.loads((model / "eai.json").read_text())
    info["model_version"] = "eai-tiny-v1-changed"
    (model / "eai.json").write_text(json.dumps(info))
    flipped = [(c, "sad", 0.9) for c, _, _ in PLAN]
    third = evaluate_model(model, ds, backend_impl=make(flipped))
    assert third["drafting"]["drafted_now"] == 6 and third["model_version"] == info[
        "model_version"]
    assert third["metrics"]["accuracy"] == pytest.approx(2 / 6)
    assert len(list(read_drafts(eval_paths(model)["drafts"]))) == 12  # old drafts kept


def test_scoring_checks_the_explanations_again(setup):
    """eval.json reads each explanation with this eai's faithfulness check, not the result
    stored in the draft line by the eai that drafted it: two models compared side by side are
    read by the same rules however long ago one of them was drafted."""
    ds, model, _, make = setup
    first = evaluate_model(model, ds, backend_impl=make())
    path = eval_paths(model)["drafts"]
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    stale = {"faithful": False, "checked": 1, "claims": [], "contradictions": [{"x": 1}]}
    path.write_text("".join(json.dumps(dict(d, faithfulness=stale)) + "\n" for d in lines))
    again = evaluate_model(model, ds, backend_impl=make([]))
    assert again["drafting"]["already_drafted"] == 6
    assert again["metrics"] == first["metrics"]
    assert first["metrics"]["statements"]["checked"] > 0  # EXPL states something checkable


def test_limit_and_errors(setup, tmp_path):
    ds, model, _, make = setup
    doc = evaluate_model(model, ds, limit=2, backend_impl=make())
    assert doc["counts"]["clips"] == 2 and doc["metrics"]["accuracy"] == 1.0
    _write_split(ds, [UNLABELLED])
    with pytest.raises(EvalError, match="has no clip with an emotion"):
        evaluate_model(model, ds, backend_impl=make())
    (ds / "splits.json").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"eai dataset split {ds}")):
        evaluate_model(model, ds, backend_impl=make())


def test_cold_start_mode_keeps_its_own_files(setup):
    ds, model, _, make = setup
    doc = evaluate_model(model, ds, mode="cold-start", backend_impl=make())
    paths = eval_paths(model, "test", "cold-start")
    assert doc["mode"] == "cold-start" and paths["results"].name == "eval-test-cold-start.json"
    assert paths["results"].is_file() and paths["confusion"].is_file()
    assert not (model / "eval" / "eval.json").exists()
    drafts = {d.clip_id: d for d in read_drafts(paths["drafts"])}
    truth = {c: c.split("_")[1] for c, _, _ in PLAN}
    assert doc["metrics"]["parse_share"] == 1.0  # the classifier always names a label
    assert doc["metrics"]["accuracy"] == pytest.approx(
        sum(drafts[c].emotion == t for c, t in truth.items()) / len(truth))


def test_compare_table_shows_both_models(setup, tmp_path):
    ds, model, _, make = setup
    other = _model(model, tmp_path / "other", version="eai-tiny-v1-other")
    this_doc = evaluate_model(model, ds, backend_impl=make())
    truthful = [(c, c.split("_")[1], 0.9) for c, _, _ in PLAN]  # sample_<emotion>_walk
    other_doc = evaluate_model(other, ds, backend_impl=make(truthful))
    assert other_doc["metrics"]["accuracy"] == 1.0  # it answers every true label
    rows = {r[0]: r for r in compare_rows(this_doc, other_doc)}
    assert rows["accuracy"][3] == pytest.approx(4 / 6 - 1.0)
    assert rows["parsed"][1:] == (1.0, 1.0, 0.0)
    console = Console(record=True, width=200)
    console.print(compare_table(this_doc, other_doc))
    text = console.export_text()
    assert this_doc["model_version"] in text and "eai-tiny-v1-other" in text
    assert "-0.333" in text


# -- the command line, real in-process backend ------------------------------------------------
def test_cli_with_the_transformers_backend(sample_dataset, tiny_model_dir, tmp_path):
    ds = _dataset(sample_dataset, tmp_path / "ds")
    write_splits(ds, test_fraction=0.4, seed=0)
    model = _model(tiny_model_dir, tmp_path / "m")
    other = _model(tiny_model_dir, tmp_path / "o", version="eai-tiny-v0-other")
    args = ["evaluate", "--model", str(model), "--dataset", str(ds), "--limit", "2",
            "--max-new-tokens", "4", "--compare", str(other)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    version = read_info(model).model_version
    lines = r.output.strip().splitlines()
    assert lines[-2].startswith(f"{version}  accuracy ") and "macro-F1" in lines[-2]
    assert lines[-1].startswith("eai-tiny-v0-other  accuracy ") and "faithful" in lines[-1]
    assert "unparsed" in r.output and "difference" in r.output
    for m in (model, other):
        doc = json.loads((m / "eval" / "eval.json").read_text())
        assert doc["counts"]["clips"] == doc["counts"]["drafted"] == 2
        assert 0.0 <= doc["metrics"]["parse_share"] <= 1.0
        assert 0.0 <= doc["metrics"]["accuracy"] <= 1.0 and doc["split"] == "test"
        assert (m / "eval" / "confusion-test.png").is_file()
    for a in (["--protocol", "kfold"], ["--dataset", str(ds)]):
        bad = CliRunner().invoke(app, args + a)
        assert bad.exit_code == 1 and "error:" in bad.output


def test_cli_llm_options_need_model(sample_dataset, tmp_path):
    r = CliRunner().invoke(app, ["evaluate", "--dataset", str(sample_dataset), "--compare",
                                 str(tmp_path)])
    assert r.exit_code == 1 and "need --model" in r.output
    r = CliRunner().invoke(app, ["evaluate", "--model", str(tmp_path), "--dataset",
                                 str(sample_dataset)])
    assert r.exit_code == 1 and "not an EAI-LLM model directory" in " ".join(r.output.split())


def test_cross_validation_protocols_unchanged(sample_dataset, tmp_path):
    r = CliRunner().invoke(app, ["evaluate", "--dataset", str(sample_dataset), "--folds", "2",
                                 "--repeats", "1", "-o", str(tmp_path / "cv")])
    assert r.exit_code == 0, r.output
    results = json.loads((tmp_path / "cv" / "results.json").read_text())
    assert results["protocol"] == "kfold" and len(results["methods"]) == 3
    assert r.output.strip().splitlines()[-1].startswith("mgst ")
