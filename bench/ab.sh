#!/usr/bin/env bash
# A/B of two suanli builds on the same machine, alternating them round by
# round (this VM's memory bandwidth drifts by 2x within minutes, so runs of
# one build after the other compare states, not builds):
#   OLD=path/to/old/suanli NEW=build/release/suanli bench/ab.sh [WORKDIR] [ROUNDS]
# Default model pp512 / tg128, its F16 and Q8_0 versions, random-weight
# llama3.2-1b Q4_0, depth 4,096, and bench serve at 1 and 16 streams
# (128-token prompts, 128 output tokens). ~8 min per build per round on 2 cores.
set -u
cd "$(dirname "$0")/.."
: "${OLD:?set OLD to the baseline suanli binary}" "${NEW:?set NEW to the suanli binary under test}"
WORK=${1:-/tmp/suanli-bench}
ROUNDS=${2:-2}
BIN=$NEW
source bench/models.sh
rows() { grep -E '^\| [^-]|^tg[0-9]+' | grep -v '^| model' | sed -E 's/^\| [^|]+\|[^|]+\|[^|]+\|[^|]+\|[^|]+\|//'; }
for round in $(seq "$ROUNDS"); do
  for bin in OLD NEW; do
    B=${!bin}
    echo "### round $round $bin"
    echo "default Q4_1:"; "$B" bench -m "$MODEL" -p 512 -n 128 -r 3 2>&1 | rows
    echo "F16:"; "$B" bench -m "$WORK/smollm2-f16.gguf" -p 512 -n 64 -r 2 2>&1 | rows
    echo "Q8_0:"; "$B" bench -m "$WORK/smollm2-q8_0.gguf" -p 512 -n 128 -r 2 2>&1 | rows
    echo "llama3.2-1b Q4_0:"; "$B" bench -m "$WORK/llama3.2-1b-q4_0.gguf" -p 512 -n 64 -r 2 2>&1 | rows
    echo "depth 4096:"; "$B" bench -m "$MODEL" -d 4096 -p 512 -n 64 -r 1 2>&1 | rows
    echo "serve c1 / c16 (128/128):"
    for c in 1 16; do
      n=$(( c < 4 ? 6 : 2 * c ))
      "$B" bench serve -m "$MODEL" --concurrency "$c" --requests "$n" --prompt-tokens 128 --output-tokens 128 \
        --kv-memory 1GiB 2>&1 | grep -E "Output token throughput|Median TPOT|Median TTFT"
    done
  done
done
