#!/usr/bin/env bash
# On a machine with a GPU: greedy tokens of a model on the CUDA (or HIP)
# device must equal the CPU device's — the last step of docs/porting.md's
# "a device is done when". Several prompts, F16 and F32 KV, whole-prompt and
# chunked prefill (so that decode, prefill and mixed batches all run).
# Without a GPU it prints "SKIP: no CUDA device: <reason>" and exits 0.
#
#   tests/gpu/greedy_matches_cpu.sh [MODEL.gguf]   (default: the default model)
#   SUANLI_BIN=build/hip/suanli tests/gpu/greedy_matches_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${SUANLI_BIN:-build/cuda/suanli}
steps=${GREEDY_STEPS:-32}
model=${1:-$("$bin" pull default --print-path)}

if ! out=$("$bin" eval -m "$model" --ids 1 --device cuda 2>&1 >/dev/null); then
  reason=$(grep -m1 -E 'no device|skipped' <<<"$out" || head -1 <<<"$out")
  echo "SKIP: no CUDA device: ${reason#suanli eval: }"
  exit 0
fi

prompts=(
  "The capital of France is"
  "def fibonacci(n):"
  "Once upon a time, in a small village by the sea, there lived an old fisherman who"
  "1, 2, 3, 4, 5,"
)
fail=0
for p in "${prompts[@]}"; do
  ids=$("$bin" tokenize -m "$model" "$p")
  for kv in f16 f32; do
    for chunk in 0 5; do
      cpu=$("$bin" eval -m "$model" --ids "$ids" --greedy "$steps" --kv-type $kv --chunk $chunk --device cpu 2>/dev/null)
      gpu=$("$bin" eval -m "$model" --ids "$ids" --greedy "$steps" --kv-type $kv --chunk $chunk --device cuda 2>/dev/null)
      if [[ "$cpu" == "$gpu" ]]; then
        echo "ok    kv=$kv chunk=$chunk  '$p'"
      else
        echo "DIFF  kv=$kv chunk=$chunk  '$p'"
        echo "  cpu: $cpu"
        echo "  gpu: $gpu"
        fail=1
      fi
    done
  done
done
exit $fail
