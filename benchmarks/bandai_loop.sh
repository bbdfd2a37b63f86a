#!/usr/bin/env bash
# The whole loop on the real Bandai-Namco set with a SCRIPTED reviewer (BENCHMARKS.md section 7):
# convert, split, tokenizer, untuned model, drafts of the training clips, a Label Studio review
# round by scripts/scripted_reviewer.py (not a person), pull, then per seed: finetune with the
# recipe below and evaluate on the held-out clips. Each step is skipped when its output exists
# and finetuning runs with --resume, so an interrupted run continues where it stopped; the
# evaluations always run (quickly, once their drafts exist).
#
#   bash benchmarks/bandai_loop.sh [OUT_DIR] [SEED ...]      (default: exp 0 1 2)
#
# About 20 minutes before the first seed and 40-45 minutes per seed on two CPU cores.
# EAI_HOME is OUT_DIR/home, so the review server and its data belong to this experiment; the
# server is stopped at the end. Needs ../shared/datasets/bandai-namco-1 and eai in the active
# environment (bash scripts/setup.sh; . .venv/bin/activate).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${EAI_BANDAI:-$ROOT/../shared/datasets/bandai-namco-1}
OUT=${1:-exp}
shift || true
SEEDS=${*:-0 1 2}
# The recipe of section 7, tenth round: the alignment stage on the semantic block with varied
# words, five instruction epochs with counterfactual evidence and the claim weight, no loss on
# reviewed claims the prompt does not support.
RECIPE=(--align-view semantic --align-epochs 6 --lr 1e-3 --epochs 5 --label-weight 0.1
        --counterfactuals 2 --claim-weight 0.3 --skip-unsupported-claims --align-phrasing varied)

[ -d "$DATA" ] || { echo "no Bandai-Namco data at $DATA (set EAI_BANDAI)" >&2; exit 2; }
mkdir -p "$OUT"
cd "$OUT"
export EAI_HOME=$PWD/home
step() { echo "[$(date +%T)] $*"; }

[ -f bandai/manifest.json ] || { step convert; eai convert "$DATA" -o bandai; }
[ -f bandai/splits.json ] || { step split; eai dataset split bandai --test-fraction 0.3; }
[ -d tok ] || { step tokenizer; eai tokenizer train bandai --split train -o tok; }
[ -d m0 ] || { step "untuned model"; eai model init -o m0 --tokenizer tok; }
if [ ! -f curated.jsonl ]; then
  step "drafts of the training clips"
  eai draft-explanations bandai --split train -o drafts.jsonl --model m0
  trap 'eai review server stop >/dev/null 2>&1 || true' EXIT
  eai review server start
  eai review push drafts.jsonl --dataset bandai --project bandai-train
  step "scripted review (not a person)"
  python "$ROOT/scripts/scripted_reviewer.py" --project bandai-train --dataset bandai
  eai review pull --project bandai-train -o curated.jsonl
  eai review server stop
fi
# Evaluation always runs: a re-run drafts only the clips still missing and scores every
# explanation with this eai's check, so all models of the summary are read alike.
step "evaluate m0"
eai evaluate --model m0 --dataset bandai --split test
for seed in $SEEDS; do
  if [ ! -f "v$seed/eai.json" ]; then
    step "finetune v$seed"
    eai finetune "${RECIPE[@]}" --seed "$seed" --resume --model m0 --dataset bandai \
      --curated curated.jsonl -o "v$seed"
  fi
  step "evaluate v$seed"
  eai evaluate --model "v$seed" --dataset bandai --split test
done
step "summary (the untuned model, then each seed)"
for m in m0 $(for s in $SEEDS; do echo "v$s"; done); do
  python -c "import json,sys; m=json.load(open(sys.argv[1]))['metrics']; \
print(sys.argv[2], *(f'{k} {m[k]:.3f}' if m.get(k) is not None else f'{k} n/a' for k in \
('accuracy', 'macro_f1', 'faithful_share', 'grounded_share', 'claim_precision')))" \
    "$m/eval/eval.json" "$m"
done
