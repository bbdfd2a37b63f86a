"""Tiny language models for fast tests of everything model-related.

A random 2-layer Llama with head_dim 64 (vLLM's CPU attention needs at least that) and a
byte-level BPE tokenizer trained here on text that contains skeleton-token look-alikes, so that
without the added tokens they would split into several pieces; it has a chat template.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                 "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
                 "{% endif %}")
CORPUS = ["The person walks slowly with the head lowered and the shoulders dropped.",
          "She jumps and raises both arms quickly; the steps are light and fast.",
          "Motion: <motion> <t> <st_12> <st_3> <st_45> <st_7> <st_100> </motion> happy sad",
          "angry fearful neutral surprised disgusted emotion explanation <emotion> <t> <st_1>"]


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=384, show_progress=False,
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator(CORPUS * 20, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<|im_start|>",
                                  eos_token="<|im_end|>", unk_token="<|endoftext|>",
                                  pad_token="<|im_end|>", model_max_length=4096)
    tok.chat_template = CHAT_TEMPLATE
    return tok


def make_tiny_base(out: Path) -> Path:
    """Save the tiny base (model + tokenizer) as a local HF model directory at out."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer()
    cfg = LlamaConfig(hidden_size=128, num_attention_heads=2, num_key_value_heads=2,
                      intermediate_size=256, num_hidden_layers=2, vocab_size=len(tok),
                      max_position_embeddings=4096, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out




# The tiny model is random and greedy-repeats one token whatever the prompt, which would let
# wrong padding or positions pass unseen. A few seconds of teaching gives it prompt-dependent
# answers in the EAI-LLM format, structural tokens and eos included.
TAUGHT = [("The person walks slowly with the head lowered.", "sad",
           " The head is lowered and the steps are slow."),
          ("She jumps and raises both arms quickly.", "happy",
           " The arms rise quickly and the steps are light."),
          ("Motion: <motion> <st_1> <st_3> </motion>", "angry", " The motion is fast.")]
UNSEEN = ["She jumps", "happy sad angry fearful neutral <emotion>"]


def chat_ids(tokenizer, text: str) -> list[int]:
    out = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                        add_generation_prompt=True, tokenize=True)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def teach_answer_format(model_dir: Path, out: Path, steps: int = 100) -> Path:
    """A copy of model_dir trained (a few seconds) to answer TAUGHT in the answer format."""
    from eai.toolkit.model import load_model

    shutil.copytree(model_dir, out)
    model, tok, _ = load_model(out, dtype=torch.float32)
    seqs = []
    for question, label, text in TAUGHT:
        answer = f"<emotion>{label}</emotion><explanation>{text}</explanation>"
        seqs.append((chat_ids(tok, question),
                     tok.encode(answer, add_special_tokens=False) + [tok.eos_token_id]))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: more threads only wait for each other on a busy CPU
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            model.train()
            for _ in range(steps):
                loss = 0
                for p, a in seqs:
                    ids = torch.tensor([p + a])
                    labels = ids.clone()
                    labels[0, :len(p)] = -100
                    loss = loss + model(input_ids=ids, labels=labels).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(out)
    return out
