#!/usr/bin/env bash
# suanli bench against llama.cpp's llama-bench on the same GGUF files, the
# same threads and the same test shapes (pp512, tg128), alternating the two
# engines model by model so that both see the same state of the machine
# (a shared VM's memory bandwidth drifts by 2x over minutes).
#
# llama.cpp is not part of this project and is never built by it: point
# LLAMA_BENCH at a llama-bench binary you built (bench/results/peer-*.md says
# how the recorded one was built). The models are bench/cpu.sh's (run it
# first, or let this script make them):
#   LLAMA_BENCH=/path/to/llama-bench bench/peer_llamacpp.sh [WORKDIR] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SUANLI_BIN:-build/release/suanli}
LB=${LLAMA_BENCH:?set LLAMA_BENCH to a llama-bench binary}
WORK=${1:-/tmp/suanli-bench}
ROUNDS=${2:-2}
THREADS=${THREADS:-2}
source bench/models.sh

echo "## machine"
echo '```'
lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core|L3" || true
uptime
echo '```'
echo "## $(basename "$LB") -t $THREADS -p 512 -n 128 -r 3, then suanli bench -t $THREADS -p 512 -n 128 -r 3, per model"
echo '```'
for round in $(seq "$ROUNDS"); do
  for m in "$MODEL" "$WORK/smollm2-q8_0.gguf" "$WORK/smollm2-f16.gguf" "$WORK/llama3.2-1b-q4_0.gguf" \
           "$WORK/llama3.2-1b-q8_0.gguf"; do
    echo "== round $round: $(basename "$m")"
    "$LB" -m "$m" -t "$THREADS" -p 512 -n 128 -r 3 -o md 2>/dev/null | grep -E '^\| .*(pp|tg)[0-9]' |
      sed 's/^/llama.cpp /'
    "$BIN" bench -m "$m" -t "$THREADS" -p 512 -n 128 -r 3 2>/dev/null | grep -E '^\| .*(pp|tg)[0-9]|^tg[0-9]+' |
      sed 's/^/suanli    /'
  done
done
echo '```'
