#!/usr/bin/env bash
# The CPU benchmarks recorded in bench/results/cpu-*.md: the roofline, suanli
# bench on the default model and its Q8_0 / F16 versions and on random-weight
# llama3.2-1b in Q4_0 / Q8_0, then suanli bench serve (128-in / 128-out at
# concurrency 1, 4, 16, 64; 1,024-token prompts with and without a shared
# 1,000-token prefix). Run on an otherwise idle machine:
#   bench/cpu.sh [WORKDIR]      (default /tmp/suanli-bench; ~15 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SUANLI_BIN:-build/release/suanli}
WORK=${1:-/tmp/suanli-bench}
source bench/models.sh
for t in q3_k q2_k; do
  [ -f "$WORK/qwen3-0.6b-$t.gguf" ] || "$BIN" synth qwen3-0.6b -o "$WORK/qwen3-0.6b-$t.gguf" --type "$t" \
    --tokenizer-from "$MODEL" >/dev/null
done

# The table's result rows, and the tg line comparing decode with a pure read
# of the same weights.
rows() { grep -E '^\| [^-]|^tg[0-9]+' | grep -v '^| model'; }

echo "## machine"
echo '```'
lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core|L3" || true
uptime
echo '```'
echo "## suanli devices"
echo '```'
"$BIN" devices 2>&1
echo '```'
echo "## suanli bench -p 512 -n 128 -r 5"
echo '```'
for m in "$MODEL" "$WORK/smollm2-q8_0.gguf" "$WORK/smollm2-f16.gguf" "$WORK/llama3.2-1b-q4_0.gguf" \
         "$WORK/llama3.2-1b-q8_0.gguf"; do
  echo "== $(basename "$m")"
  "$BIN" bench -m "$m" -r 5 2>&1 | rows
done
echo "== $(basename "$MODEL") -t 1"
"$BIN" bench -m "$MODEL" -r 5 -t 1 2>&1 | rows
for isa in avx2 hwy; do
  echo "== $(basename "$MODEL") SUANLI_CPU_ISA=$isa"
  SUANLI_CPU_ISA=$isa "$BIN" bench -m "$MODEL" -r 3 2>&1 | rows
done
echo "== $(basename "$MODEL") at depth 4096 (-d 4096)"
"$BIN" bench -m "$MODEL" -d 4096 -r 2 2>&1 | rows
for t in q3_k q2_k; do
  echo "== qwen3-0.6b-$t (random weights, every matrix $t)"
  "$BIN" bench -m "$WORK/qwen3-0.6b-$t.gguf" -p 128 -n 32 -r 2 2>&1 | rows
done
echo '```'
echo "## suanli bench serve (in-process), 128-token prompts, 128 output tokens"
echo '```'
for c in 1 4 16 64; do
  n=$(( c < 4 ? 8 : 2 * c ))
  echo "== concurrency $c, $n requests"
  "$BIN" bench serve -m "$MODEL" --concurrency "$c" --requests "$n" --prompt-tokens 128 --output-tokens 128 \
    --kv-memory 1GiB 2>&1 | grep -vE "^suanli:|^$"
done
echo '```'
echo "## prefix cache: 1,024-token prompts, 16 output tokens"
echo '```'
for p in 0 1000; do
  echo "== shared prefix $p"
  "$BIN" bench serve -m "$MODEL" --concurrency 1 --requests 8 --prompt-tokens 1024 --output-tokens 16 \
    --shared-prefix "$p" --kv-memory 1GiB 2>&1 | grep -E "TTFT|cached|throughput"
done
echo '```'
