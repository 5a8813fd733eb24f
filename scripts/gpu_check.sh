#!/usr/bin/env bash
# A short check of a machine with an NVIDIA GPU (under five minutes):
#   1. the transformers backend on CUDA with the embedded model: tokens/s at batch 1, 8, 64;
#   2. one generation of the quickstart on CUDA.
#
#   bash scripts/gpu_check.sh                 # after `make install` (or pip install -e .)
#
# Environment:
#   PYTHON            the interpreter (default: .venv/bin/python if present, else python3)
#   GPU_CHECK_MODEL   a model folder instead of the embedded model
#   GPU_CHECK_RANDOM_INIT=1   random weights from GPU_CHECK_MODEL's config (a machine that
#                     has the architecture and tokenizer but not the weights: same work per
#                     token, so the same tokens/s; the quickstart then accepts nothing)
#   GPU_CHECK_EXECUTOR  sandbox for the quickstart (default auto)
#   GPU_CHECK_OUT     where the quickstart run goes (default: a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
MODEL=${GPU_CHECK_MODEL:-embedded}
EXECUTOR=${GPU_CHECK_EXECUTOR:-auto}
OUT=${GPU_CHECK_OUT:-$(mktemp -d)/gpu-check}
RANDOM_ARGS=() RANDOM_SET=()
if [ "${GPU_CHECK_RANDOM_INIT:-0}" = 1 ]; then
    RANDOM_ARGS=(--random-init)
    RANDOM_SET=(--set backends.default.options.random_init=true)
fi

echo "== GPU"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" - <<'PY'
import sys
import torch
import transformers
if not torch.cuda.is_available():
    sys.exit("gpu_check: torch sees no CUDA device (a CPU build of torch?)")
print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
      f"{torch.cuda.get_device_name(0)}")
PY

echo "== transformers backend on CUDA, 128 new tokens per row (model: $MODEL)"
t0=$SECONDS
timeout 150 "$PY" benchmarks/backend_throughput.py --model "$MODEL" --device cuda \
    --batches 1,8,64 --new-tokens 128 "${RANDOM_ARGS[@]}"
echo "   ($((SECONDS - t0)) s)"

echo "== quickstart, one generation on CUDA -> $OUT"
t0=$SECONDS
timeout 150 "$PY" -m genetic_instruct.cli evolve --config configs/quickstart.yaml --out "$OUT" \
    --set backends.default.device=cuda --set "backends.default.model=$MODEL" \
    --set evolution.max_generations=1 --set "execution.executor=$EXECUTOR" "${RANDOM_SET[@]}"
echo "   ($((SECONDS - t0)) s)"
echo "gpu_check: ok"
