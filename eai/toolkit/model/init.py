"""`eai model init`: a base causal LM + the skeleton tokenizer's tokens -> an EAI-LLM directory.

The directory is a plain Hugging Face checkpoint (config.json, model.safetensors, tokenizer
files with the added tokens, chat template) that transformers and vLLM load as it is, plus
`skeleton_tokenizer/` (the MGST tokenizer's own files) and `eai.json` (docs/model.md).

Every token string of the skeleton tokenizer's vocabulary and the four STRUCTURAL_TOKENS are
added as whole, non-special tokens (`normalized=False`, so no normaliser can split them; not
special, so decoding with skip_special_tokens=True, vLLM's default, keeps them in the text).
Their embedding rows start as what they stand for (eai/toolkit/model/embeddings.py: tokens
with words at the mean of their words, clip-embedding codes at their emotions' words, motion
codes drawn like real tokens; seeded); tied input/output embeddings stay tied. The build
happens in a temporary sibling directory that is renamed into place at the end.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import eai
from eai.toolkit.model.base import base_record, resolve_base
from eai.toolkit.model.embeddings import init_added_rows
from eai.toolkit.model.files import (
    ModelDirExistsError,
    ModelError,
    publish_dir,
    sha256_files,
    sha256_tree,
    temp_sibling,
    weight_files,
)
from eai.toolkit.model.info import (
    SKELETON_DIR,
    STRUCTURAL_TOKENS,
    ModelInfo,
    read_info,
    write_info,
)

# Used when no label set is given and the tokenizer's training datasets cannot be read: the
# basic emotion categories most body-movement emotion datasets use.
DEFAULT_LABELS = ["neutral", "happy", "sad", "angry", "fearful", "surprised", "disgusted"]
DEFAULT_PROMPT_TEMPLATE = "emotion_explain_v2"
_TOKEN = re.compile(r"<[^<>\s]+>")


def model_name(out_dir: Path) -> str:
    """The default model name: the directory's name, lower-cased, [a-z0-9._-] only."""
    return re.sub(r"[^a-z0-9._-]+", "-", out_dir.name.lower()).strip("-.") or "eai-llm"


def parse_labels(labels: str | Sequence[str]) -> list[str]:
    items = labels.split(",") if isinstance(labels, str) else list(labels)
    out = [str(x).strip() for x in items if str(x).strip()]
    for x in out:
        if re.search(r"[<>\n,]", x):
            raise ModelError(f"label {x!r}: labels may not contain '<', '>', ',' or newlines")
    dup = sorted({x for x in out if out.count(x) > 1})
    if dup:
        raise ModelError(f"labels repeat: {', '.join(dup)}")
    if len(out) < 2:
        raise ModelError(f"need at least two labels, got {out!r} (e.g. --labels happy,sad)")
    return out


def dataset_labels(skeleton_tok) -> list[str]:
    """The union of the label vocabularies of the tokenizer's training datasets (read from
    their manifests where they still exist), sorted; empty when none can be read."""
    from eai.toolkit.dataset import read_manifest

    labels: set[str] = set()
    for d in skeleton_tok.meta.get("datasets", []):
        try:
            manifest = read_manifest(d["path"])
        except (OSError, ValueError, KeyError):
            continue
        vocab = manifest.get("label_vocabulary") or list(
            (manifest.get("counts") or {}).get("by_emotion", {}))
        labels.update(str(v) for v in vocab if v)
    return sorted(labels)


def _check_single_ids(tokenizer, skeleton_tok, vocab: list[str]) -> None:
    """Each added string must encode to exactly its own id, alone and inside token text."""
    ids = tokenizer.convert_tokens_to_ids(vocab)
    enc = tokenizer(vocab, add_special_tokens=False)["input_ids"]
    bad = [(t, e) for t, i, e in zip(vocab, ids, enc) if e != [i]]
    if bad:
        t, e = bad[0]
        raise ModelError(f"the base tokenizer splits added tokens ({len(bad)}, e.g. {t!r} -> "
                         f"{tokenizer.convert_ids_to_tokens(e)}); this base cannot be used")
    n = skeleton_tok.num_codes
    codes = (np.arange(40) * 37 % n).reshape(8, 5)
    tag = skeleton_tok.datasets[0] if skeleton_tok.datasets else None
    lookup, added = dict(zip(vocab, ids)), set(ids)
    for sep in ("", " "):
        text = skeleton_tok.codes_text(codes, tag, sep=sep)
        want = [lookup[t] for t in _TOKEN.findall(text)]
        got = tokenizer(f"Motion: {text}\nEmotion:", add_special_tokens=False)["input_ids"]
        if [i for i in got if i in added] != want:
            raise ModelError(f"the base tokenizer does not keep skeleton tokens whole inside "
                             f"token text (sep={sep!r}); this base cannot be used")


def _code_phrases(skeleton_tok) -> dict[str, list[tuple[str, float]]]:
    """The emotions each `<emb_K>` code stands for (embeddings.code_phrases), when the
    tokenizer has its emotion level."""
    from eai.toolkit.model.embeddings import code_phrases
    from eai.toolkit.tokenizer.emotion import embedding_token

    if not skeleton_tok.emotion.get("trained"):
        return {}
    probabilities, emotions = skeleton_tok.code_emotions()
    return {embedding_token(k): p
            for k, p in enumerate(code_phrases(probabilities, emotions))}


def _add_tokens(model, tokenizer, vocab: list[str], seed: int,
                phrases: dict[str, list[tuple[str, float]]]) -> dict[str, Any]:
    import torch
    from tokenizers import AddedToken

    n_before = len(tokenizer)
    rows_before = model.get_input_embeddings().weight.shape[0]
    tokenizer.add_tokens([AddedToken(t, normalized=False, special=False) for t in vocab])
    ids = tokenizer.convert_tokens_to_ids(vocab)
    new = sorted(i for i in ids if i >= n_before)
    if new != list(range(n_before, len(tokenizer))):
        raise ModelError(f"added token ids are not one contiguous range after {n_before}: "
                         f"{new[:3]}...; the base tokenizer is unusual")
    if len(tokenizer) > rows_before:
        # the new rows are set below (transformers' own start would only be overwritten); its
        # random init would still draw from the caller's RNG, hence the fork
        with torch.random.fork_rng(devices=[]):
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    # every added id, also those that took spare rows of bases like Qwen
    new_tokens = [t for t, i in zip(vocab, ids) if i >= n_before]
    rows = init_added_rows(model, tokenizer, new_tokens,
                           tokenizer.convert_tokens_to_ids(new_tokens), n_before, seed, phrases)
    pre = [t for t, i in zip(vocab, ids) if i < n_before]
    return {"first_id": new[0] if new else None, "last_id": new[-1] if new else None,
            "count": len(new), "preexisting": pre, **rows}


def _tied(model) -> bool:
    out = model.get_output_embeddings()
    return out is not None and out.weight is model.get_input_embeddings().weight


def _copy_skeleton(src: Path, dst: Path) -> None:
    """The tokenizer directory as it is, its emotion classifier (classifier/) included."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".*"), copy_function=shutil.copyfile)


def init_model(out_dir: str | Path, tokenizer_dir: str | Path, base: str | Path | None = None,
               label_set: str | Sequence[str] | None = None,
               prompt_template: str = DEFAULT_PROMPT_TEMPLATE, *, name: str | None = None,
               force: bool = False, seed: int = 0) -> ModelInfo:
    """Build an EAI-LLM model directory at out_dir (see the module doc); returns its eai.json.

    base: None / "smollm2-135m-instruct" (the offline default), a local HF model directory or
    a hub id. label_set: labels (list or "a,b,c"); default: the emotions of the tokenizer's
    training datasets, else DEFAULT_LABELS. force: replace an existing directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from eai.toolkit.tokenizer import load_tokenizer

    out = Path(out_dir).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise ModelDirExistsError(f"{out} exists; choose another -o or pass --force to "
                                  f"replace it")
    tok_dir = Path(tokenizer_dir).expanduser()
    skeleton = load_tokenizer(tok_dir)
    if label_set is not None:
        labels, label_source = parse_labels(label_set), "option"
    else:
        found = dataset_labels(skeleton)
        labels, label_source = (found, "datasets") if len(found) >= 2 else (
            list(DEFAULT_LABELS), "default")
    for what, value in (("prompt template id", prompt_template), ("model name", name)):
        if value is not None and not re.fullmatch(r"[A-Za-z0-9._-]+", value):
            raise ModelError(f"{what} {value!r}: use letters, digits, '.', '_' and '-' only")
    base_dir = resolve_base(base)
    for src in (tok_dir.resolve(), base_dir.resolve()):
        if out.resolve() == src or out.resolve() in src.parents:
            raise ModelError(f"-o {out} would replace the input {src}; choose another -o")

    tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
    tokenizer.init_kwargs.pop("local_files_only", None)  # not a property of the saved files
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto", local_files_only=True)
    base_info = base_record(base, base_dir)
    base_info.update(architecture=(model.config.architectures or [type(model).__name__])[0],
                     parameters=model.num_parameters(), vocab_size=len(tokenizer),
                     chat_template=bool(tokenizer.chat_template))
    vocab = list(skeleton.vocabulary()) + list(STRUCTURAL_TOKENS.values())
    added = _add_tokens(model, tokenizer, vocab, seed, _code_phrases(skeleton))
    _check_single_ids(tokenizer, skeleton, vocab)
    if getattr(model.config, "tie_word_embeddings", False) and not _tied(model):
        raise ModelError("the input and output embeddings came apart while resizing")

    tmp = temp_sibling(out)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _copy_skeleton(tok_dir, tmp / SKELETON_DIR)
        if load_tokenizer(tmp / SKELETON_DIR).vocabulary() != skeleton.vocabulary():
            raise ModelError(f"{tok_dir}: the copied skeleton tokenizer differs from the source")
        weights_sha = sha256_files(weight_files(tmp))
        digest = hashlib.sha256((weights_sha + "\n" + "\n".join(vocab)).encode()).hexdigest()
        name = name or model_name(out)
        meta = skeleton.meta
        info = ModelInfo(
            model_version=f"{name}-v0-{digest[:8]}", name=name, version=0, parent_version=None,
            base=base_info,
            tokenizer={"dir": SKELETON_DIR, "source": str(tok_dir.resolve()),
                       "sha256": sha256_tree(tmp / SKELETON_DIR),
                       "kind": meta.get("kind"), "format_version": meta.get("format_version"),
                       "config": skeleton.config.to_dict(), "num_codes": skeleton.num_codes,
                       "vocabulary_size": len(skeleton.vocabulary()),
                       "dataset_names": list(skeleton.datasets),
                       "created_at": meta.get("created_at")},
            label_set=labels, label_source=label_source, prompt_template=prompt_template,
            structural_tokens=dict(STRUCTURAL_TOKENS), added_tokens=added,
            vocab_size=len(tokenizer),
            embedding_rows=int(model.get_input_embeddings().weight.shape[0]),
            tied_embeddings=_tied(model), dtype=str(model.dtype).removeprefix("torch."),
            weights_sha256=weights_sha,
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            eai_version=eai.__version__, transformers_version=_transformers_version())
        write_info(tmp, info)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not publish_dir(tmp, out, replace=force):
        raise ModelDirExistsError(f"{out} appeared while the model was being built; nothing "
                                  f"was replaced (pass --force to replace it)")
    return info


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def load_model(model_dir: str | Path, dtype: Any = "auto", device: Any = None):
    """(model, tokenizer, info) of an EAI-LLM directory: plain transformers classes, eval mode.
    dtype: "auto" (as saved) or a torch dtype; device: e.g. "cuda" (default: CPU)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info = read_info(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, local_files_only=True)
    if device is not None:
        model.to(device)
    return model.eval(), tokenizer, info


def load_skeleton_tokenizer(model_dir: str | Path):
    """The MGST tokenizer saved in the model directory (`skeleton_tokenizer/`)."""
    from eai.toolkit.tokenizer import load_tokenizer

    return load_tokenizer(Path(model_dir) / SKELETON_DIR)
