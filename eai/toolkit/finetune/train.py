"""`eai finetune`: LoRA on EAI-LLM in two stages, merged into a new model directory.

peft LoRA on every linear layer of the LM, plus the rows of the tokens eai added
(`trainable_token_indices`: only those rows of the embedding train; tied input/output
embeddings stay tied). Training runs through `transformers.Trainer`, so `accelerate launch` /
torchrun spread it over several GPUs unchanged. Stage 1 (alignment) then stage 2 (instruction),
the second continuing from the first's adapter.

Interruptions: work happens in `<out>.partial/` (run.json, one folder per stage with Trainer
checkpoints every --save-steps and a done.json when the stage is complete). `--resume`
continues from the last checkpoint; the Trainer restores weights, optimiser, scheduler, RNG and
the data order, so a resumed run ends where an uninterrupted one would. Only when both stages
are done is the merged model written to a temporary sibling and renamed to `out`; the parent
model directory is only read.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from eai.toolkit.finetune.examples import Example

STAGES = {1: "alignment", 2: "instruction"}


class FinetuneError(RuntimeError):
    pass


@dataclass
class FinetuneConfig:
    epochs: float = 3.0  # stage 2 (instruction)
    align_epochs: float = 1.0  # stage 1 (alignment); 0 skips it
    max_steps: int | None = None  # caps each stage's optimiser steps
    lr: float = 2e-4
    lora_r: int = 16
    lora_alpha: int | None = None  # default 2 * lora_r
    lora_dropout: float = 0.0  # a dropout copies every LoRA input: ~30% more memory
    # 4 x 2 = 8 examples per step; 4 at a time keeps a CPU run of 1,024-token examples near 7 GB
    batch_size: int = 4
    grad_accum: int = 2
    max_length: int = 1024
    warmup_ratio: float = 0.05
    save_steps: int = 25
    seed: int = 0
    bf16: bool | None = None  # None: where the hardware does it fast (see use_bf16)
    gradient_checkpointing: bool = False  # less memory for ~30% more time
    # torch.compile each decoder layer; None: on CPU for runs of 20+ steps (step_speed.use_compile)
    compile: bool | None = None
    # 0: one mean over all answer tokens; > 0: text mean + label_weight x label mean (see
    # answer_loss and BENCHMARKS.md section 7 for what it did on Bandai-Namco)
    label_weight: float = 0.0
    # what alignment examples show of the motion: "full", or "semantic" (the <semantic> block
    # alone: ~40% of the tokens per example; see eai.toolkit.finetune.examples)
    align_view: str = "full"
    # the words of the alignment statements: "prompt" (the prompt's own), or "varied" (also
    # the words reviewed explanations use; eai.toolkit.finetune.phrasing)
    align_phrasing: str = "prompt"
    # per curated pair, up to N examples with one evidence line and its claim flipped
    # (eai.toolkit.finetune.counterfactual)
    counterfactuals: int = 0
    # 0: off; > 0: + claim_weight x the mean loss on the ids of claims that an evidence line
    # of the prompt supports (Example.claim_mask; answer_loss)
    claim_weight: float = 0.0
    # True: the target ids of claims the prompt does not support (contradicted, weak, or about
    # a descriptor it does not show) carry no loss (Example.claim_mask)
    skip_unsupported_claims: bool = False

    def __post_init__(self) -> None:
        from eai.toolkit.finetune.examples import ALIGN_VIEWS
        from eai.toolkit.finetune.phrasing import ALIGN_PHRASINGS

        if self.align_view not in ALIGN_VIEWS:
            raise FinetuneError(f"--align-view {self.align_view}: expected one of "
                                f"{', '.join(ALIGN_VIEWS)}")
        if self.align_phrasing not in ALIGN_PHRASINGS:
            raise FinetuneError(f"--align-phrasing {self.align_phrasing}: expected one of "
                                f"{', '.join(ALIGN_PHRASINGS)}")
        checks = [("epochs", self.epochs >= 0), ("align_epochs", self.align_epochs >= 0),
                  ("lr", self.lr > 0), ("lora_r", self.lora_r > 0),
                  ("batch_size", self.batch_size > 0), ("grad_accum", self.grad_accum > 0),
                  ("max_length", self.max_length > 16), ("save_steps", self.save_steps > 0),
                  ("max_steps", self.max_steps is None or self.max_steps > 0),
                  ("label_weight", self.label_weight >= 0),
                  ("counterfactuals", self.counterfactuals >= 0),
                  ("claim_weight", self.claim_weight >= 0)]
        for name, ok in checks:
            if not ok:
                raise FinetuneError(f"--{name.replace('_', '-')} {getattr(self, name)}: "
                                    f"must be positive" + (" or 0" if name in (
                                        "label_weight", "counterfactuals", "claim_weight")
                                        else ""))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lora_alpha"] = self.lora_alpha or 2 * self.lora_r
        return d


class ExampleDataset:
    """Examples as the Trainer wants them: input_ids, and labels -100 on the prompt."""

    def __init__(self, examples: list[Example]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        e = self.examples[i]
        rest = len(e.target_ids) - e.label_len
        claims = e.claim_mask or [0] * len(e.target_ids)
        # ids of unsupported claims (-1) are context but not targets
        targets = [-100 if m < 0 else t for t, m in zip(e.target_ids, claims)]
        return {"input_ids": e.prompt_ids + e.target_ids,
                "labels": [-100] * len(e.prompt_ids) + targets,
                "label_mask": [0] * len(e.prompt_ids) + [1] * e.label_len + [0] * rest,
                "claim_mask": [0] * len(e.prompt_ids) + [int(m > 0) for m in claims]}


def make_collator(pad_id: int):
    """Left padding, so that every row's answer ends at the last position: the LM head then
    only has to run on the last `keep` positions (the longest answer in the batch), not on the
    whole prompt. Position ids count real tokens only, as in drafting."""
    import torch

    def collate(rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        n = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
        labels = torch.full((len(rows), n), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), n), dtype=torch.long)
        masks = {name: torch.zeros((len(rows), n), dtype=torch.bool)
                 for name in ("label_mask", "claim_mask")}
        keep = 1
        for k, r in enumerate(rows):
            m = len(r["input_ids"])
            ids[k, n - m:] = torch.tensor(r["input_ids"])
            labels[k, n - m:] = torch.tensor(r["labels"])
            mask[k, n - m:] = 1
            for name, mask_rows in masks.items():
                if name in r:
                    mask_rows[k, n - m:] = torch.tensor(r[name], dtype=torch.bool)
            answer = next((i for i, x in enumerate(r["labels"]) if x != -100), m)
            keep = max(keep, m - answer)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        return {"input_ids": ids, "labels": labels, "attention_mask": mask,
                "position_ids": positions, "keep": torch.tensor(keep), **masks}

    return collate


def answer_loss(model, inputs: dict[str, Any], label_weight: float = 0.0,
                claim_weight: float = 0.0):
    """Cross-entropy over the answer tokens, with logits computed for the last `keep` + 1
    positions only (the LM head over a 50k vocabulary is a large share of a small model's cost,
    and the prompt positions carry no loss). Called through the model's own forward, so DDP and
    accelerate wrappers keep working.

    label_weight 0 (the default, or no label tokens in the batch): one mean over all answer
    tokens. label_weight > 0: the label's tokens (`label_mask`: `LABEL</emotion>`) and the
    other answer tokens are averaged apart and added, the label's mean weighted by
    label_weight; in one plain mean the two tokens that decide the emotion weigh 2% of an
    example with a 100-token explanation. On Bandai-Namco, weight 1 taught more labels but
    the explanations degenerated into repeated words (BENCHMARKS.md section 7).

    claim_weight > 0 adds claim_weight x the mean over the ids of supported claims
    (`claim_mask`: "short steps" where the evidence shows short steps); they stay in the
    text mean too. A claim is a few ids of a long answer, and with counterfactual examples the
    one place where two targets differ: the term makes getting it right from the evidence
    line count for more than re-learning the rest of a text the model has seen."""
    import torch.nn.functional as F

    inputs = dict(inputs)
    keep, labels = int(inputs.pop("keep")), inputs.pop("labels")
    label_mask = inputs.pop("label_mask", None)
    claim_mask = inputs.pop("claim_mask", None)
    logits = model(**inputs, logits_to_keep=keep + 1, use_cache=False).logits
    target = labels[:, -keep:]
    ce = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                         target.reshape(-1), ignore_index=-100, reduction="none")
    valid = target.reshape(-1) != -100
    is_label = (label_mask[:, -keep:].reshape(-1) & valid) if label_mask is not None else None
    if not label_weight or is_label is None or not is_label.any():
        loss = ce[valid].mean()
    else:
        is_text = valid & ~is_label
        loss = label_weight * ce[is_label].mean()
        loss = loss + ce[is_text].mean() if is_text.any() else loss
    if claim_weight and claim_mask is not None:
        is_claim = claim_mask[:, -keep:].reshape(-1) & valid
        if is_claim.any():
            loss = loss + claim_weight * ce[is_claim].mean()
    return loss


def make_trainer_class(label_weight: float = 0.0, claim_weight: float = 0.0):
    from transformers import Trainer

    class AnswerTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = answer_loss(model, inputs, label_weight, claim_weight)
            return (loss, None) if return_outputs else loss

    return AnswerTrainer


def stage_steps(n_examples: int, epochs: float, cfg: FinetuneConfig) -> int:
    per_epoch = math.ceil(n_examples / (cfg.batch_size * cfg.grad_accum))
    steps = max(1, math.ceil(per_epoch * epochs)) if n_examples and epochs > 0 else 0
    return min(steps, cfg.max_steps) if cfg.max_steps else steps


def lora_model(model, new_token_ids: list[int], cfg: FinetuneConfig):
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha or 2 * cfg.lora_r,
                      lora_dropout=cfg.lora_dropout, target_modules="all-linear",
                      trainable_token_indices=list(new_token_ids), task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def latest_checkpoint(stage_dir: Path) -> Path | None:
    ckpts = [p for p in stage_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return max(ckpts, key=lambda p: int(p.name.split("-")[-1])) if ckpts else None


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX: bfloat16 matrix products there run ~3x faster than float32 (on
    the 2-core reference machine a LoRA step took 4.4 s instead of 11 s, and 4.8 GB instead of
    7.5 GB)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(cfg: FinetuneConfig) -> bool:
    """bfloat16 autocast (weights and optimiser stay float32) where it is fast: a GPU that
    supports it, or a CPU with bf16 instructions; cfg.bf16 overrides."""
    import torch

    if cfg.bf16 is not None:
        return cfg.bf16
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def _group_by_length(args_class) -> dict[str, Any]:
    """Batches of similar lengths: motion token sequences vary 10x between clips, and a random
    batch pays for its longest example in every row. (The option was renamed in transformers
    5.x: train_sampling_strategy replaced group_by_length.)"""
    if "train_sampling_strategy" in args_class.__dataclass_fields__:
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}


def _training_args(stage_dir: Path, steps: int, cfg: FinetuneConfig):
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(stage_dir), max_steps=steps, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.lr,
        lr_scheduler_type="cosine", warmup_steps=int(round(cfg.warmup_ratio * steps)),
        weight_decay=0.0, logging_steps=1, save_strategy="steps", save_steps=cfg.save_steps,
        save_total_limit=2, seed=cfg.seed, data_seed=cfg.seed, report_to=[],
        disable_tqdm=True, use_cpu=not cuda, bf16=use_bf16(cfg),
        gradient_checkpointing=cfg.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        **_group_by_length(TrainingArguments),
        dataloader_num_workers=0, remove_unused_columns=False, save_only_model=False)


def run_stage(peft_model, stage: int, examples: list[Example], stage_dir: Path, epochs: float,
              cfg: FinetuneConfig, pad_id: int, resume: bool, callbacks: list) -> dict[str, Any]:
    """Train one stage (resuming from its last checkpoint when asked); returns its metrics."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    steps = stage_steps(len(examples), epochs, cfg)
    stage_dir.mkdir(parents=True, exist_ok=True)
    trainer = make_trainer_class(cfg.label_weight, cfg.claim_weight)(
        model=peft_model, args=_training_args(stage_dir, steps, cfg),
        train_dataset=ExampleDataset(examples), data_collator=make_collator(pad_id),
        callbacks=callbacks)
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # our progress bar shows the loss instead
    ckpt = latest_checkpoint(stage_dir) if resume else None
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    metrics = {"stage": STAGES[stage], "examples": len(examples), "steps": steps,
               "epochs": epochs, "resumed_from": ckpt.name if ckpt else None,
               "first_loss": losses[0] if losses else None,
               "final_loss": losses[-1] if losses else None,
               "seconds": round(time.perf_counter() - started, 1)}
    if trainer.is_world_process_zero():
        state = {k: v.detach().cpu().contiguous() for k, v in
                 get_peft_model_state_dict(peft_model).items()}
        save_file(state, str(stage_dir / "adapter.safetensors"))
        (stage_dir / "done.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def load_stage_adapter(peft_model, stage_dir: Path) -> dict[str, Any]:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(peft_model, load_file(str(stage_dir / "adapter.safetensors")))
    return json.loads((stage_dir / "done.json").read_text())


def check_run(work: Path, run: dict[str, Any], resume: bool, force: bool) -> None:
    """A partial run may only be continued with the same parent, data and settings."""
    path = work / "run.json"
    if work.exists() and not resume:
        if not force:
            raise FinetuneError(f"{work} holds an interrupted run; pass --resume to continue it "
                                f"or --force to start over")
        shutil.rmtree(work)
    if resume and path.is_file():
        before = json.loads(path.read_text())
        # an option added to eai since the run began is unchanged at its default value
        before["config"] = {**FinetuneConfig().to_dict(), **before.get("config", {})}
        changed = [k for k in run if before.get(k) != run[k]]
        if changed:
            raise FinetuneError(f"--resume: {', '.join(changed)} differ from the interrupted run "
                                f"in {work}; rerun with the same options or pass --force")
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=2))


ProgressHook = Callable[[str, int, int, float | None], None]
