"""`eai finetune` from end to end: data -> stage 1 -> stage 2 -> merged model with lineage."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

import eai
from eai.toolkit.finetune.data import TrainingData, build_training_data
from eai.toolkit.finetune.examples import ExampleBuilder
from eai.toolkit.finetune.step_speed import training_model, use_compile
from eai.toolkit.finetune.train import (
    STAGES,
    FinetuneConfig,
    FinetuneError,
    ProgressHook,
    check_run,
    load_stage_adapter,
    lora_model,
    run_stage,
    stage_steps,
    use_bf16,
)


def _callbacks(on_progress: ProgressHook | None, stop_after: int | None) -> list:
    """Trainer callbacks: progress (step, total, last loss) and, for tests of resuming, a stop
    after N optimiser steps that behaves like Ctrl-C."""
    from transformers import TrainerCallback

    class Hooks(TrainerCallback):
        loss: float | None = None

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.loss = float(logs["loss"])

        def on_step_end(self, args, state, control, **kw):
            if on_progress and state.is_world_process_zero:
                on_progress("step", state.global_step, state.max_steps, self.loss)
            if stop_after is not None and state.global_step >= stop_after:
                control.should_save = True  # the checkpoint a real interruption would find

        def on_save(self, args, state, control, **kw):
            if stop_after is not None and state.global_step >= stop_after:
                raise KeyboardInterrupt(f"stopped after step {state.global_step}")

    return [Hooks()]


def is_main_process() -> bool:
    """Rank 0 under torchrun / accelerate launch (they set RANK), or a single process."""
    return int(os.environ.get("RANK", "0")) == 0


def main_process_first():
    """Under a multi-process launch, the other ranks wait at a barrier until rank 0 has left the
    block: rank 0 checks and prepares `<out>.partial`, and a faster rank creating its stage
    folder first made rank 0 see "an interrupted run" there. The same process group the Trainer
    uses later (accelerate's shared state). A single process goes straight through."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return contextlib.nullcontext()
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available()).main_process_first()


def merge_in_float32(model_dir: Path, peft_model, new_token_ids: list[int],
                     cfg: FinetuneConfig):
    """The trained adapter merged into a fresh float32 copy of the parent: training may have
    held the frozen weights in bfloat16 (step_speed.prepare_base), and the new model must not
    inherit that rounding."""
    import torch
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    frozen = [p for p in peft_model.parameters() if not p.requires_grad]
    if all(p.dtype == torch.float32 for p in frozen):
        return peft_model.merge_and_unload()  # trained on the float32 weights themselves
    state = get_peft_model_state_dict(peft_model)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                local_files_only=True)
    fresh = lora_model(base, new_token_ids, cfg)
    set_peft_model_state_dict(fresh, {k: v.float() for k, v in state.items()})
    return fresh.merge_and_unload()


def _new_version(parent, out: Path, weights_sha: str) -> tuple[str, int]:
    version = parent.version + 1
    digest = hashlib.sha256(f"{weights_sha}\n{parent.model_version}".encode()).hexdigest()
    return f"{parent.name}-v{version}-{digest[:8]}", version


def run_finetune(model_dir: str | Path, dataset: str | Path, out: str | Path,
                 curated: str | Path | None = None, config: FinetuneConfig | None = None,
                 split_file: str | Path | None = None, use_split: bool = True,
                 resume: bool = False, force: bool = False,
                 on_progress: ProgressHook | None = None, stop_after: int | None = None):
    """Finetune MODEL_DIR into a new directory `out`; returns the new ModelInfo (eai.json), or
    None on the non-main processes of a multi-process launch."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from eai.toolkit.drafting.prompts import load_template
    from eai.toolkit.model import load_skeleton_tokenizer, read_info
    from eai.toolkit.model.files import (
        ModelDirExistsError,
        publish_dir,
        sha256_files,
        temp_sibling,
        weight_files,
    )
    from eai.toolkit.model.info import SKELETON_DIR, write_info

    cfg = config or FinetuneConfig()
    model_dir, dataset, out = Path(model_dir), Path(dataset), Path(out).absolute()
    parent = read_info(model_dir)
    if out.exists() and any(out.iterdir()) and not force:
        raise ModelDirExistsError(f"{out} exists; choose another -o or pass --force")
    if out.resolve() == model_dir.resolve():
        raise FinetuneError("-o is the model being finetuned; the parent directory is never "
                            "modified: choose a new -o")
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    skeleton = load_skeleton_tokenizer(model_dir)
    builder = ExampleBuilder(tokenizer, skeleton, load_template(parent.prompt_template),
                             parent.label_set, cfg.align_view, cfg.counterfactuals,
                             cfg.seed, claim_tokens=cfg.claim_weight > 0,
                             skip_unsupported=cfg.skip_unsupported_claims,
                             align_phrasing=cfg.align_phrasing)
    if on_progress:
        on_progress("data", 0, 0, None)
    data: TrainingData = build_training_data(dataset, builder, Path(curated) if curated else None,
                                             Path(split_file) if split_file else None,
                                             use_split, cfg.max_length)
    if not data.stage2:
        raise FinetuneError(f"nothing to learn in stage 2: no trainable curated pair and no "
                            f"labelled training clip in {dataset} ({data.counts})")
    work = out.with_name(out.name + ".partial")
    run = {"parent": parent.model_version, "config": cfg.to_dict(),
           "data": [{k: v for k, v in s.items() if k in ("kind", "sha256", "manifest_sha256")}
                    for s in data.sources]}
    with main_process_first():
        if is_main_process():
            check_run(work, run, resume, force)

    epochs = {1: cfg.align_epochs, 2: cfg.epochs}
    steps = sum(stage_steps(len(ex), epochs[i], cfg)
                for i, ex in ((1, data.stage1), (2, data.stage2)))
    torch.manual_seed(cfg.seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                 local_files_only=True)
    peft_model, compiled = training_model(model, parent.new_token_ids, cfg, use_bf16(cfg),
                                          use_compile(cfg, steps))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else \
        tokenizer.eos_token_id
    metrics: dict[str, Any] = {"counts": data.counts, "warnings": data.warnings,
                               "compiled": compiled}
    for stage, examples in ((1, data.stage1), (2, data.stage2)):
        stage_dir = work / f"stage{stage}"
        if (stage_dir / "done.json").is_file():
            metrics[STAGES[stage]] = load_stage_adapter(peft_model, stage_dir)
            continue
        if not examples or epochs[stage] == 0:
            metrics[STAGES[stage]] = {"stage": STAGES[stage], "skipped": True}
            continue
        if on_progress:
            on_progress(STAGES[stage], 0, 0, None)
        metrics[STAGES[stage]] = run_stage(peft_model, stage, examples, stage_dir,
                                           epochs[stage], cfg, pad_id, resume,
                                           _callbacks(on_progress, stop_after))
    if not is_main_process():
        return None  # the other ranks trained; rank 0 alone merges and writes
    merged = merge_in_float32(model_dir, peft_model, parent.new_token_ids, cfg)
    tmp = temp_sibling(out)
    try:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        shutil.copytree(model_dir / SKELETON_DIR, tmp / SKELETON_DIR)
        weights_sha = sha256_files(weight_files(tmp))
        model_version, version = _new_version(parent, out, weights_sha)
        info = parent.__class__.from_dict({
            **parent.to_dict(), "model_version": model_version, "version": version,
            "parent_version": parent.model_version, "weights_sha256": weights_sha,
            "dtype": str(merged.dtype).removeprefix("torch."),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "eai_version": eai.__version__,
            "training_data": [*parent.training_data, {"model_version": model_version,
                                                      "sources": data.sources}],
            "metrics": {**{k: v for k, v in parent.metrics.items() if k != "finetune"},
                        "finetune": metrics},
            "finetune": {"parent_dir": str(model_dir.resolve()), "config": cfg.to_dict(),
                         "lora": "peft LoRA on all linear layers + trainable added-token rows, "
                                 "merged"}})
        write_info(tmp, info)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not publish_dir(tmp, out, replace=force):
        raise ModelDirExistsError(f"{out} appeared while finetuning; nothing was replaced")
    shutil.rmtree(work, ignore_errors=True)
    return info
