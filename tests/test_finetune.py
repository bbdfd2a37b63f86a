"""`eai finetune`: training examples, the evaluation-split guard, and LoRA runs on the tiny model
(interrupted and resumed runs end with the same weights as an uninterrupted one)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from eai.cli import app
from eai.toolkit.dataset import load_clips
from eai.toolkit.drafting.faithfulness import check_faithfulness
from eai.toolkit.drafting.prompts import load_template, motion_texts
from eai.toolkit.finetune import FinetuneConfig, FinetuneDataError, FinetuneError, run_finetune
from eai.toolkit.finetune.data import build_training_data
from eai.toolkit.finetune.examples import ExampleBuilder, descriptor_statements
from eai.toolkit.finetune.step_speed import can_compile
from eai.toolkit.finetune.train import ExampleDataset
from eai.toolkit.model import load_skeleton_tokenizer, read_info
from eai.toolkit.model.files import sha256_tree
from eai.toolkit.review.curated import CuratedPair
from eai.toolkit.splits import split_ids, write_splits

TINY = dict(max_steps=2, batch_size=2, lora_r=4, save_steps=1, max_length=4096)


@pytest.fixture(scope="module")
def dataset(sample_dataset, tmp_path_factory):
    """A copy of the sample set with a fixed split (the session's copy stays read-only)."""
    ds = Path(shutil.copytree(sample_dataset, tmp_path_factory.mktemp("ft") / "ds"))
    write_splits(ds, test_fraction=0.3, seed=0)
    return ds


@pytest.fixture(scope="module")
def builder(tiny_model_dir):
    from transformers import AutoTokenizer

    info = read_info(tiny_model_dir)
    return ExampleBuilder(AutoTokenizer.from_pretrained(tiny_model_dir),
                          load_skeleton_tokenizer(tiny_model_dir),
                          load_template(info.prompt_template), info.label_set)


def _pair(clip_id: str, emotion: str | None, text: str, outcome: str = "accepted") -> dict:
    return CuratedPair(clip_id=clip_id, emotion=emotion, explanation=text, outcome=outcome,
                       draft=None, reviewer="r@example.org", rating=4, contradiction=False,
                       lead_time_s=12.0, label_studio={"annotation_id": 1, "task_id": 1},
                       updated_at="2026-11-26T00:00:00Z",
                       rejected_because="marked_reject" if outcome == "rejected" else None
                       ).to_dict()


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# -- examples ---------------------------------------------------------------------------------
def test_example_targets_and_loss_mask(builder, dataset):
    tok = builder.tok
    clip = load_clips(dataset)[0]
    examples = builder.for_clip(clip, [("sad", "The head hangs low. The steps are slow.")])
    kinds = [e.kind for e in examples]
    assert kinds == ["describe", "label", "curated"]
    describe, label, curated = examples
    assert tok.decode(label.target_ids) == f"{clip.emotion}</emotion>"  # no end token after it
    assert tok.decode(curated.target_ids) == ("sad</emotion><explanation>The head hangs low. "
                                              "The steps are slow.</explanation>")
    assert tok.decode(curated.prompt_ids).endswith("<emotion>")
    assert "<motion>" in tok.decode(curated.prompt_ids)
    assert describe.target_ids[-1] == tok.eos_token_id
    assert tok.decode(describe.target_ids[:-1]).startswith("The person ")
    row = ExampleDataset([curated])[0]
    n = len(curated.prompt_ids)
    assert row["labels"][:n] == [-100] * n and row["labels"][n:] == curated.target_ids
    only = builder.for_clip(clip, [])
    assert [e.kind for e in only] == ["describe", "label", "label_only"]


def test_semantic_align_view_shortens_alignment_examples_only(builder, dataset):
    semantic = ExampleBuilder(builder.tok, builder.skeleton, builder.tpl, builder.labels,
                              align_view="semantic")
    clip = load_clips(dataset)[0]
    full, short = builder.for_clip(clip, []), semantic.for_clip(clip, [])
    for f, s in zip(full[:2], short[:2]):  # describe and label: the semantic block only
        text = builder.tok.decode(s.prompt_ids)
        assert "<semantic>" in text and "<st_" not in text and "<t>" not in text
        assert s.target_ids == f.target_ids and len(s.prompt_ids) < len(f.prompt_ids)
    assert short[2].prompt_ids == full[2].prompt_ids  # drafting's prompt is never shortened
    with pytest.raises(ValueError, match="align view"):
        ExampleBuilder(builder.tok, builder.skeleton, builder.tpl, builder.labels,
                       align_view="half")
    with pytest.raises(FinetuneError, match="--align-view"):
        FinetuneConfig(align_view="half")


def test_alignment_and_drafting_prompts_close_alike(builder, dataset, tiny_model_dir):
    """emotion_explain_v2: the semantic block and the question close every prompt, so the
    label read from the block in a short alignment prompt sits at the same distance from the
    answer in the drafting prompt."""
    assert read_info(tiny_model_dir).prompt_template == "emotion_explain_v2"
    semantic = ExampleBuilder(builder.tok, builder.skeleton, builder.tpl, builder.labels,
                              align_view="semantic")
    clip = next(c for c in load_clips(dataset) if c.emotion in builder.labels)
    _, label, label_only = semantic.for_clip(clip, [])
    _, sem = motion_texts(builder.tpl, builder.skeleton, clip)
    n = len(builder.tok(sem, add_special_tokens=False)["input_ids"])
    tail = 0
    while label.prompt_ids[-1 - tail] == label_only.prompt_ids[-1 - tail]:
        tail += 1
    assert tail > n  # the block and everything after it: the same ids


def test_descriptor_statements_follow_levels():
    ev = {"root_speed_mean": {"level": "low"}, "head_pitch_mean": {"level": "high"},
          "arm_expansion": {"level": "typical"}}
    assert descriptor_statements(ev) == ("The person travels slowly. The person keeps the head "
                                         "lowered.")
    assert "typical" in descriptor_statements({})


def test_varied_alignment_statements_drawn_per_clip_and_seed(builder, dataset):
    from eai.toolkit.finetune.phrasing import level_phrasings

    ev = {"trunk_lean_mean": {"level": "high"}, "arm_expansion": {"level": "low"}}
    drawn = {descriptor_statements(ev, random.Random(i)) for i in range(40)}
    assert drawn == {f"The person {t}. The person {a}."
                     for t in level_phrasings("trunk_lean_mean", "high")
                     for a in level_phrasings("arm_expansion", "low")}

    def describe_targets(phrasing: str, seed: int) -> list[str]:
        b = ExampleBuilder(builder.tok, builder.skeleton, builder.tpl, builder.labels,
                           seed=seed, align_phrasing=phrasing)
        return [builder.tok.decode(b.for_clip(c, [])[0].target_ids[:-1])
                for c in load_clips(dataset)]

    plain, varied = describe_targets("prompt", 0), describe_targets("varied", 0)
    assert varied == describe_targets("varied", 0)  # reproducible
    assert varied != plain and varied != describe_targets("varied", 1)
    assert all(t.startswith("The person ") for t in varied)
    with pytest.raises(FinetuneError, match="--align-phrasing"):
        FinetuneConfig(align_phrasing="poetic")


def test_answer_loss_equals_the_full_loss(tiny_model_dir):
    """Left padding + logits for the answer positions only = the plain loss of each row."""
    from transformers import AutoModelForCausalLM

    from eai.toolkit.finetune.examples import Example
    from eai.toolkit.finetune.train import answer_loss, make_collator

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(0)
    rows = [Example("a", 2, "curated", torch.randint(5, 300, (n,), generator=g).tolist(),
                    torch.randint(5, 300, (k,), generator=g).tolist()) for n, k in
            ((40, 7), (25, 12), (31, 3))]
    batch = make_collator(pad_id=0)([ExampleDataset(rows)[i] for i in range(3)])
    assert int(batch["keep"]) == 12 and (batch["attention_mask"][:, -1] == 1).all()
    with torch.no_grad():
        got = answer_loss(model, batch)
        total, count = 0.0, 0
        for e in rows:  # each row alone, unpadded, full logits
            ids = torch.tensor([e.prompt_ids + e.target_ids])
            labels = torch.tensor([[-100] * len(e.prompt_ids) + e.target_ids])
            loss = model(input_ids=ids, labels=labels).loss
            total, count = total + loss * len(e.target_ids), count + len(e.target_ids)
    torch.testing.assert_close(got, total / count, rtol=1e-4, atol=1e-5)


def test_label_and_text_losses_are_averaged_apart(tiny_model_dir):
    """label_weight W > 0: the label's tokens and the explanation's tokens are two means, the
    label's weighted W; 0 (the default) is the single mean over all answer tokens."""
    from transformers import AutoModelForCausalLM

    from eai.toolkit.finetune.examples import Example
    from eai.toolkit.finetune.train import answer_loss, make_collator

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(1)
    rows = [Example("a", 2, "curated", torch.randint(5, 300, (n,), generator=g).tolist(),
                    torch.randint(5, 300, (k,), generator=g).tolist(), label) for n, k, label in
            ((40, 9, 2), (25, 3, 3), (31, 14, 0))]
    batch = make_collator(pad_id=0)([ExampleDataset(rows)[i] for i in range(3)])
    per_token, is_label = [], []
    with torch.no_grad():
        for e in rows:
            logits = model(input_ids=torch.tensor([e.prompt_ids + e.target_ids])).logits[0]
            ce = torch.nn.functional.cross_entropy(
                logits[len(e.prompt_ids) - 1:-1], torch.tensor(e.target_ids), reduction="none")
            per_token += ce.tolist()
            is_label += [k < e.label_len for k in range(len(e.target_ids))]
        ce, is_label = torch.tensor(per_token), torch.tensor(is_label)
        want = ce[is_label].mean() + ce[~is_label].mean()
        torch.testing.assert_close(answer_loss(model, batch, label_weight=1.0), want,
                                   rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(answer_loss(model, batch), ce.mean(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(answer_loss(model, batch, label_weight=3.0),
                                   3 * ce[is_label].mean() + ce[~is_label].mean(),
                                   rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(answer_loss(model, batch, label_weight=0), ce.mean(),
                                   rtol=1e-4, atol=1e-5)


def test_label_tokens_of_each_example_kind(builder, dataset):
    tok = builder.tok
    clip = load_clips(dataset)[0]
    describe, label, curated = builder.for_clip(clip, [("sad", "Slow steps.")])
    assert describe.label_len == 0
    assert tok.decode(label.target_ids[:label.label_len]) == f"{clip.emotion}</emotion>"
    assert label.label_len == len(label.target_ids)
    assert tok.decode(curated.target_ids[:curated.label_len]) == "sad</emotion>"
    row = ExampleDataset([curated])[0]
    assert len(row["label_mask"]) == len(row["input_ids"])
    assert sum(row["label_mask"]) == curated.label_len


def test_counterfactual_examples_train_the_explanation_under_flipped_evidence(builder, dataset):
    from eai.toolkit.descriptors import DESCRIPTORS

    def evidence(level):
        ev = {d.name: {"value": 1.0, "unit": d.unit, "level": "typical"} for d in DESCRIPTORS}
        ev["stride_length"] = {"value": {"low": 0.5, "high": 2.5}[level], "unit": "1",
                               "level": level}
        return ev

    tok = builder.tok
    cf_builder = ExampleBuilder(tok, builder.skeleton, builder.tpl, builder.labels,
                                counterfactuals=1, seed=3)
    clip = load_clips(dataset)[0]
    motion, semantic = motion_texts(builder.tpl, builder.skeleton, clip)
    pairs = [("sad", "The person takes short steps.")]
    plain = builder.instruction(clip, motion, evidence("low"), pairs, semantic,
                                [evidence("high")])
    assert [e.kind for e in plain] == ["curated"]  # off by default
    curated, cf = cf_builder.instruction(clip, motion, evidence("low"), pairs, semantic,
                                         [evidence("high")])
    assert (curated.kind, cf.kind) == ("curated", "counterfactual")
    assert curated.prompt_ids == plain[0].prompt_ids and curated.target_ids == plain[0].target_ids
    prompt = tok.decode(cf.prompt_ids)
    assert prompt.endswith("<emotion>sad</emotion><explanation>")  # the label is given
    assert "takes long strides (stride length 2.5" in prompt
    assert "takes short steps" not in prompt and "takes short steps" in tok.decode(
        curated.prompt_ids)
    assert tok.decode(cf.target_ids) == "The person takes long steps.</explanation>"
    assert cf.label_len == 0
    # no donor with the other level: nothing is made up
    assert [e.kind for e in cf_builder.instruction(clip, motion, evidence("low"), pairs,
                                                   semantic, [evidence("low")])] == ["curated"]
    with pytest.raises(FinetuneError, match="--counterfactuals -1: must be positive or 0"):
        FinetuneConfig(counterfactuals=-1)


def test_claim_masks_mark_the_supported_claims_only(builder, dataset):
    from eai.toolkit.descriptors import DESCRIPTORS

    def evidence(level):
        ev = {d.name: {"value": 1.0, "unit": d.unit, "level": "typical"} for d in DESCRIPTORS}
        ev["stride_length"] = {"value": {"low": 0.5, "high": 2.5}[level], "unit": "1",
                               "level": level}
        ev["head_height"] = {"value": 0.5, "unit": "1", "level": "low"}  # never in the prompt
        return ev

    tok = builder.tok
    marking = ExampleBuilder(tok, builder.skeleton, builder.tpl, builder.labels,
                             counterfactuals=1, claim_tokens=True)
    clip = load_clips(dataset)[0]
    motion, semantic = motion_texts(builder.tpl, builder.skeleton, clip)
    # "short steps": supported and shown; "walks slowly": weak (typical); "low head height":
    # supported, but the prompt does not show head height
    text = "The person takes short steps and walks slowly, with a low head height."
    assert any(c.phrase == "low head height" and c.status == "supported"
               for c in check_faithfulness(text, evidence("low")).claims)
    pairs = [("sad", text)]
    plain = builder.instruction(clip, motion, evidence("low"), pairs, semantic,
                                [evidence("high")])
    curated, cf = marking.instruction(clip, motion, evidence("low"), pairs, semantic,
                                      [evidence("high")])
    assert plain[0].claim_mask is None and curated.target_ids == plain[0].target_ids
    assert len(curated.claim_mask) == len(curated.target_ids)

    def marked(e):
        return tok.decode([t for t, m in zip(e.target_ids, e.claim_mask) if m]).strip()

    assert marked(curated) == "short steps"
    assert tok.decode(cf.target_ids).startswith("The person takes long steps")
    assert marked(cf) == "long steps"
    row = ExampleDataset([cf])[0]
    assert len(row["claim_mask"]) == len(row["input_ids"]) and sum(row["claim_mask"]) == sum(
        cf.claim_mask)
    with pytest.raises(FinetuneError, match="--claim-weight -1: must be positive or 0"):
        FinetuneConfig(claim_weight=-1)


def test_claim_weight_adds_the_mean_loss_of_claim_tokens(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from eai.toolkit.finetune.examples import Example
    from eai.toolkit.finetune.train import answer_loss, make_collator

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(2)
    rows = []
    for n, k, claims in ((30, 9, [3, 4]), (22, 6, []), (35, 11, [0, 7, 8])):
        target = torch.randint(5, 300, (k,), generator=g).tolist()
        rows.append(Example("a", 2, "curated", torch.randint(5, 300, (n,), generator=g).tolist(),
                            target, 0, [int(i in claims) for i in range(k)]))
    batch = make_collator(pad_id=0)([ExampleDataset(rows)[i] for i in range(3)])
    per_token, is_claim = [], []
    with torch.no_grad():
        for e in rows:
            logits = model(input_ids=torch.tensor([e.prompt_ids + e.target_ids])).logits[0]
            per_token += torch.nn.functional.cross_entropy(
                logits[len(e.prompt_ids) - 1:-1], torch.tensor(e.target_ids),
                reduction="none").tolist()
            is_claim += [bool(m) for m in e.claim_mask]
        ce, is_claim = torch.tensor(per_token), torch.tensor(is_claim)
        torch.testing.assert_close(answer_loss(model, batch, claim_weight=0.5),
                                   ce.mean() + 0.5 * ce[is_claim].mean(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(answer_loss(model, batch), ce.mean(), rtol=1e-4, atol=1e-5)


def test_counterfactual_donors_are_other_training_clips_of_the_same_action(
        builder, dataset, tmp_path, monkeypatch):
    import eai.toolkit.finetune.examples as examples

    train = split_ids(dataset, "train")
    clips = {c.clip_id: c for c in load_clips(dataset)}
    calls = []

    def spy(text, evidence, donors, rng, limit):
        calls.append((text, len(donors), limit))
        return []

    monkeypatch.setattr(examples, "counterfactuals", spy)
    cf_builder = ExampleBuilder(builder.tok, builder.skeleton, builder.tpl, builder.labels,
                                counterfactuals=2)
    curated = _write(tmp_path / "c.jsonl", [_pair(train[0], builder.labels[0], "Slow steps.")])
    build_training_data(dataset, cf_builder, curated, None)
    key = (clips[train[0]].dataset, clips[train[0]].action)
    same = [i for i in train if (clips[i].dataset, clips[i].action) == key and i != train[0]]
    assert calls == [("Slow steps.", len(same), 2)]  # curated clips only, never the clip itself


# -- the evaluation split ---------------------------------------------------------------------
def test_an_evaluation_clip_in_the_curated_pairs_is_refused(builder, dataset, tmp_path):
    test_clip = split_ids(dataset, "test")[0]
    curated = _write(tmp_path / "c.jsonl", [_pair(test_clip, "sad", "Slow. Low head.")])
    with pytest.raises(FinetuneDataError, match="evaluation split"):
        build_training_data(dataset, builder, curated, None)


def test_training_data_keeps_test_clips_and_rejected_pairs_out(builder, dataset, tmp_path):
    train = split_ids(dataset, "train")
    label = builder.labels[0]
    curated = _write(tmp_path / "c.jsonl", [
        _pair(train[0], label, "The steps are quick. The arms swing."),
        _pair(train[1], None, "", outcome="rejected"),
        _pair(train[2], label, "Edited text. Two sentences.", outcome="edited")])
    data = build_training_data(dataset, builder, curated, None)
    test = set(split_ids(dataset, "test"))
    assert not {e.clip_id for e in data.stage1 + data.stage2} & test
    curated_clips = [e.clip_id for e in data.stage2 if e.kind == "curated"]
    assert curated_clips == [train[0], train[2]] or sorted(curated_clips) == sorted(
        [train[0], train[2]])
    assert data.counts["curated_rejected"] == 1 and data.counts["curated_trainable"] == 2
    rejected = [e for e in data.stage2 if e.clip_id == train[1]]
    assert [e.kind for e in rejected] == ["label_only"]  # its label, never its text
    kinds = [s["kind"] for s in data.sources]
    assert kinds == ["dataset", "splits", "curated"]
    assert "claim_tokens_weighted" not in data.counts  # no claim marking asked for
    marking = ExampleBuilder(builder.tok, builder.skeleton, builder.tpl, builder.labels,
                             claim_tokens=True, skip_unsupported=True)
    marked = build_training_data(dataset, marking, curated, None)
    masks = [m for e in marked.stage2 for m in e.claim_mask or []]
    assert (marked.counts["claim_tokens_weighted"], marked.counts["claim_tokens_skipped"]) == (
        masks.count(1), masks.count(-1))
    assert masks.count(1) + masks.count(-1) > 0  # "quick" steps: a claim either way


# -- LoRA runs --------------------------------------------------------------------------------
def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    out = {}
    for f in sorted(model_dir.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def test_finetune_writes_a_new_model_with_lineage(tiny_model_dir, dataset, tmp_path):
    parent = read_info(tiny_model_dir)
    before = sha256_tree(tiny_model_dir)
    train = split_ids(dataset, "train")
    curated = _write(tmp_path / "c.jsonl", [_pair(train[0], parent.label_set[1],
                                                  "The steps are quick. The arms swing.")])
    # bf16: the frozen weights are held in bfloat16 while training; the merge must still start
    # from the float32 parent (the base embedding rows are compared exactly below)
    info = run_finetune(tiny_model_dir, dataset, tmp_path / "v1", curated,
                        FinetuneConfig(**TINY, bf16=True))
    assert sha256_tree(tiny_model_dir) == before  # the parent is only read
    assert info.version == 1 and info.parent_version == parent.model_version
    assert info.model_version.startswith(f"{parent.name}-v1-")
    assert read_info(tmp_path / "v1").to_dict() == info.to_dict()
    m = info.metrics["finetune"]
    assert m["alignment"]["steps"] == 2 and m["instruction"]["steps"] == 2
    assert m["counts"]["examples_curated"] == 1 and m["counts"]["test_clips"] > 0
    sources = info.training_data[-1]["sources"]
    assert {s["kind"] for s in sources} == {"dataset", "splits", "curated"}
    assert info.extra["finetune"]["config"]["lora_r"] == 4
    old, new = _weights(tiny_model_dir), _weights(tmp_path / "v1")
    assert set(old) == set(new)  # a plain checkpoint: no adapter tensors left
    emb = next(k for k in new if "embed_tokens" in k)
    ids = parent.new_token_ids
    assert not torch.equal(old[emb][ids], new[emb][ids])  # the added rows trained
    assert torch.equal(old[emb][:ids[0]], new[emb][:ids[0]])  # the base rows did not
    assert all(new[k].dtype == torch.float32 for k in new)
    assert info.metrics["finetune"]["compiled"] is False  # 4 steps: compiling would not pay
    assert not (tmp_path / "v1.partial").exists()
    with pytest.raises(Exception, match="exists"):
        run_finetune(tiny_model_dir, dataset, tmp_path / "v1", curated, FinetuneConfig(**TINY))


def test_resume_accepts_a_run_begun_before_an_option_existed(tmp_path):
    """run.json of an older eai lacks the options added since: at their defaults the run
    continues; set otherwise, it is a different run."""
    from eai.toolkit.finetune.train import check_run

    work = tmp_path / "m.partial"
    run = {"parent": "p", "config": FinetuneConfig().to_dict(), "data": []}
    older = {**run, "config": {k: v for k, v in run["config"].items() if k != "align_phrasing"}}
    work.mkdir()
    (work / "run.json").write_text(json.dumps(older))
    check_run(work, run, resume=True, force=False)
    (work / "run.json").write_text(json.dumps(older))
    varied = {**run, "config": FinetuneConfig(align_phrasing="varied").to_dict()}
    with pytest.raises(FinetuneError, match="config differ"):
        check_run(work, varied, resume=True, force=False)


def test_interrupted_run_resumes_to_the_same_weights(tiny_model_dir, dataset, tmp_path):
    cfg = FinetuneConfig(**{**TINY, "max_steps": 3})
    run_finetune(tiny_model_dir, dataset, tmp_path / "straight", None, cfg)
    with pytest.raises(KeyboardInterrupt):
        run_finetune(tiny_model_dir, dataset, tmp_path / "cut", None, cfg, stop_after=2)
    work = tmp_path / "cut.partial"
    assert (work / "stage1" / "checkpoint-2").is_dir() and not (tmp_path / "cut").exists()
    with pytest.raises(FinetuneError, match="--resume"):
        run_finetune(tiny_model_dir, dataset, tmp_path / "cut", None, cfg)
    with pytest.raises(FinetuneError, match="differ"):
        run_finetune(tiny_model_dir, dataset, tmp_path / "cut", None,
                     FinetuneConfig(**{**TINY, "max_steps": 3, "lr": 1e-3}), resume=True)
    info = run_finetune(tiny_model_dir, dataset, tmp_path / "cut", None, cfg, resume=True)
    assert info.metrics["finetune"]["alignment"]["resumed_from"] == "checkpoint-2"
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "cut")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not can_compile(), reason="torch.compile on CPU needs a C++ compiler on PATH")
def test_compiled_layers_train_like_uncompiled(tiny_model_dir, dataset, tmp_path):
    """torch.compile of the decoder layers (the CPU default for long runs) through the whole
    Trainer path: checkpoints, adapter files and the merge see the same parameter names, and
    the weights match an uncompiled run (float32, so that only kernel order differs)."""
    cfg = {**TINY, "bf16": False}
    plain = run_finetune(tiny_model_dir, dataset, tmp_path / "plain", None,
                         FinetuneConfig(**cfg, compile=False))
    fast = run_finetune(tiny_model_dir, dataset, tmp_path / "fast", None,
                        FinetuneConfig(**cfg, compile=True))
    assert fast.metrics["finetune"]["compiled"] and not plain.metrics["finetune"]["compiled"]
    a, b = _weights(tmp_path / "plain"), _weights(tmp_path / "fast")
    assert set(a) == set(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_compiling_is_the_default_for_long_cpu_runs_only(monkeypatch):
    from eai.toolkit.finetune import step_speed

    monkeypatch.setattr(step_speed, "can_compile", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    n = step_speed.COMPILE_MIN_STEPS
    assert step_speed.use_compile(FinetuneConfig(), n)
    assert not step_speed.use_compile(FinetuneConfig(), n - 1)  # compiling would not pay
    assert not step_speed.use_compile(FinetuneConfig(gradient_checkpointing=True), n)
    assert step_speed.use_compile(FinetuneConfig(compile=True), 1)
    assert not step_speed.use_compile(FinetuneConfig(compile=False), 10 * n)
    monkeypatch.setattr(step_speed, "can_compile", lambda: False)  # no C++ compiler on PATH
    assert not step_speed.use_compile(FinetuneConfig(), n)


@pytest.mark.parametrize("length", [9, 600])  # the matrix-product path, and SDPA's
def test_length_aware_attention_matches_sdpa(length):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from eai.toolkit.finetune.step_speed import SHORT_ATTENTION, length_aware_attention

    class Attention(torch.nn.Module):
        num_key_value_groups, is_causal = 3, True

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, h, length, 16, generator=g) for h in (9, 3, 3))  # grouped KV
    keep = torch.ones(2, length, dtype=torch.bool)
    keep[0, :4] = False  # left padding in the first row
    allowed = torch.tril(torch.ones(length, length, dtype=torch.bool))[None, None] & \
        keep[:, None, None, :]
    additive = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
    got, _ = length_aware_attention(Attention().eval(), q, k, v, additive, 0.25)
    want, _ = sdpa_attention_forward(Attention().eval(), q, k, v, allowed, scaling=0.25)
    assert (length <= SHORT_ATTENTION) == (length == 9)
    torch.testing.assert_close(got[0, 4:], want[0, 4:], rtol=1e-5, atol=1e-5)  # real tokens
    torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-5)


def test_cli_finetune(tiny_model_dir, dataset, tmp_path):
    r = CliRunner().invoke(app, ["finetune", "--model", str(tiny_model_dir), "--dataset",
                                 str(dataset), "-o", str(tmp_path / "m"), "--max-steps", "1",
                                 "--batch-size", "2", "--lora-r", "2", "--max-length", "4096"])
    assert r.exit_code == 0, r.output
    assert "evaluation clips kept out" in r.output and "written to" in r.output
    assert read_info(tmp_path / "m").version == 1
    r = CliRunner().invoke(app, ["finetune", "--model", str(tiny_model_dir), "--dataset",
                                 str(tmp_path), "-o", str(tmp_path / "m2")])
    assert r.exit_code == 1 and "error:" in r.output


def test_tokenizer_trained_on_the_training_split_only(dataset, tmp_path):
    from eai.toolkit.tokenizer import TokenizerConfig, load_tokenizer, train_tokenizer

    cfg = TokenizerConfig(steps=2, hidden=8, depth=1, batch_size=4, crop_frames=16,
                          held_out_fraction=0.0, threads=1)
    train_tokenizer([dataset], tmp_path / "tok", cfg, progress=False, split="train")
    meta = load_tokenizer(tmp_path / "tok").meta
    assert meta["datasets"][0]["split"] == "train"
    assert meta["datasets"][0]["clips"] == len(split_ids(dataset, "train"))
    assert meta["emotion"].get("clips", 0) <= len(split_ids(dataset, "train"))


@pytest.mark.slow
def test_torchrun_data_parallel_on_cpu(tiny_model_dir, dataset, tmp_path):
    """The multi-GPU route of the docs (`torchrun -m eai.cli finetune`), here with two CPU
    processes (gloo): both train, rank 0 alone draws progress and writes the model."""
    import os
    import subprocess
    import sys

    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this Python")
    out = tmp_path / "ddp"
    r = subprocess.run([str(torchrun), "--nproc_per_node", "2", "-m", "eai.cli", "finetune",
                        "--model", str(tiny_model_dir), "--dataset", str(dataset), "-o",
                        str(out), "--max-steps", "1", "--batch-size", "2", "--lora-r", "2",
                        "--max-length", "4096", "--threads", "1"],
                       capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count("written to") == 1  # one merged model, from rank 0
    assert "1/1" in r.stdout and "0/?" not in r.stdout  # rank 1 draws no (empty) bars
    info = read_info(out)
    assert info.version == 1 and info.metrics["finetune"]["alignment"]["steps"] == 1
    assert not (tmp_path / "ddp.partial").exists()


@pytest.mark.slow
def test_ctrl_c_to_a_background_job_stops_it_with_the_resume_hint(tiny_model_dir, dataset,
                                                                 tmp_path):
    """A non-interactive shell starts `eai finetune ... &` with SIGINT ignored: Ctrl-C and
    `kill -INT` once did nothing. Now they, and SIGTERM, stop it as Ctrl-C in a terminal does."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "bg"
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the child, across exec
    try:
        cli = subprocess.Popen([sys.executable, "-m", "eai.cli", "finetune", "--model",
                                str(tiny_model_dir), "--dataset", str(dataset), "-o", str(out),
                                "--align-epochs", "1000", "--batch-size", "2", "--lora-r", "2",
                                "--max-length", "4096", "--threads", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    finally:
        signal.signal(signal.SIGINT, old)
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "bg.partial" / "stage1").exists():
            assert cli.poll() is None and time.monotonic() < deadline, cli.communicate()[0]
            time.sleep(0.2)
        time.sleep(2)  # inside the training loop now
        cli.send_signal(signal.SIGINT)
        text = cli.communicate(timeout=60)[0]
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    assert cli.returncode == 130, text
    assert "interrupted; continue with the same command and --resume" in text
    assert not out.exists()


RANKS_IN_ORDER = """import os, sys, time
from eai.toolkit.finetune.run import is_main_process, main_process_first
if is_main_process():
    time.sleep(3)  # rank 0 late, as a busy rank 0 can be
with main_process_first():
    with open(sys.argv[1], "a") as log:
        log.write(os.environ["RANK"] + "\\n")
"""


@pytest.mark.slow
def test_torchrun_rank_zero_prepares_the_run_first(tmp_path):
    """The other ranks wait for rank 0 to check `<out>.partial`: a rank that went ahead once
    created its stage folder there first, and rank 0 refused "an interrupted run"."""
    import os
    import subprocess
    import sys

    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this Python")
    script, log = tmp_path / "ranks.py", tmp_path / "order.txt"
    script.write_text(RANKS_IN_ORDER)
    r = subprocess.run([str(torchrun), "--nproc_per_node", "2", str(script), str(log)],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert log.read_text().split() == ["0", "1"]


def test_unsupported_claims_are_context_but_not_targets(builder, dataset):
    from eai.toolkit.descriptors import DESCRIPTORS

    ev = {d.name: {"value": 1.0, "unit": d.unit, "level": "typical"} for d in DESCRIPTORS}
    ev["stride_length"] = {"value": 0.5, "unit": "1", "level": "low"}
    ev["head_height"] = {"value": 0.5, "unit": "1", "level": "low"}  # never in the prompt
    tok = builder.tok
    skipping = ExampleBuilder(tok, builder.skeleton, builder.tpl, builder.labels,
                              skip_unsupported=True)
    both = ExampleBuilder(tok, builder.skeleton, builder.tpl, builder.labels,
                          claim_tokens=True, skip_unsupported=True)
    clip = load_clips(dataset)[0]
    motion, semantic = motion_texts(builder.tpl, builder.skeleton, clip)
    # supported and shown / weak (typical speed) / supported but not shown
    text = "The person takes short steps and walks slowly, with a low head height."
    pairs = [("sad", text)]
    plain = builder.instruction(clip, motion, ev, pairs, semantic)[0]
    skip = skipping.instruction(clip, motion, ev, pairs, semantic)[0]
    weighted = both.instruction(clip, motion, ev, pairs, semantic)[0]
    assert skip.target_ids == plain.target_ids == weighted.target_ids

    def decoded(e, value):
        return tok.decode([t for t, m in zip(e.target_ids, e.claim_mask) if m == value])

    assert "walks slowly" in decoded(skip, -1) and "low head height" in decoded(skip, -1)
    assert "short" not in decoded(skip, -1) and 1 not in skip.claim_mask
    assert decoded(weighted, 1).strip() == "short steps"
    assert decoded(weighted, -1) == decoded(skip, -1)
    row = ExampleDataset([weighted])[0]
    n = len(weighted.prompt_ids)
    targets = row["labels"][n:]
    assert [t for t in targets if t != -100] == [
        t for t, m in zip(weighted.target_ids, weighted.claim_mask) if m >= 0]
    assert set(row["claim_mask"]) == {0, 1} and sum(row["claim_mask"]) == sum(
        m == 1 for m in weighted.claim_mask)
