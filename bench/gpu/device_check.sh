#!/usr/bin/env bash
# The GPU checks of issue 7, as one script for a short lease on a lent GPU
# machine (see /work/.library/device/METHOD.md): it runs what the CPU-only
# CI cannot — the op conformance suite on the CUDA device, greedy tokens
# against the CPU device, the roofline, benchmarks of synthetic llama3-8b
# models — each step under its own time limit, logs under $OUT.
#
# Prepare here with bench/gpu/make_bundle.sh, then on the GPU machine:
#   bench/gpu/device_check.sh STEP...
# Steps (fields separated by '/'):
#   devices                      suanli devices --json (the measured roofline)
#   conf, conf-v1                the conformance suite (conf-v1: the matmul tests
#                                with the byte-wise v1 kernel)
#   conf-tc                      the matmul tests on the opt-in tensor-core path
#   greedy-synth, greedy-default tests/gpu/greedy_matches_cpu.sh on a synthetic
#                                SmolLM2-shaped model / on the default model
#   bgsynth/FMT,FMT...           make llama3-8b models in the background
#   bench-8b/FMT, bench-v1-8b/FMT, bench-tc-8b/FMT, bench-default
#                                suanli bench (FMT: q4_k, q8_0, bf16, mxfp8_e4m3)
#   serve-8b/FMT/CONC/REQUESTS/IN/OUT   suanli bench serve
#   sanitize/GTEST_FILTER        conformance tests under compute-sanitizer
#   prof/SHAPE/FMT               GPU time per op (SUANLI_CUDA_PROFILE=1) over tg32
#   devmap                       suanli run with the layers split between cuda and cpu
#   sanitize-eval                suanli eval (prefill + greedy decode) under compute-sanitizer
#   pytest-ref                   tests/py/test_model_vs_reference.py with
#                                SUANLI_TEST_DEVICE=cuda (needs .gpu/whl/gguf-*.whl)
# A step may start with VAR=VALUE,VAR=VALUE@ to run with those variables,
# e.g. SUANLI_CUDA_GRAPHS=0@bench-8b/q4_k.
# DEADLINE (seconds from start, default 540) stops starting new steps.
set -uo pipefail
cd "$(dirname "$0")/../.."
START=$(date +%s)
DEADLINE=${DEADLINE:-540}
OUT=${OUT:-/tmp/suanli-out}
mkdir -p "$OUT"
LOG=$OUT/all.log
W=.gpu/work  # models made here; kept between calls on a warm machine
mkdir -p "$W"

left() { echo $((DEADLINE - ($(date +%s) - START))); }
say() { echo "[$(($(date +%s) - START))s] $*" | tee -a "$LOG"; }
SUMMARY=()
note() { SUMMARY+=("$*"); say "$*"; }

# Runs "$@" under min(limit, time left) seconds, output appended to the log.
run_step() {
  local name=$1 limit=$2
  shift 2
  local l
  l=$(left)
  if ((l < 15)); then
    note "$name: SKIPPED (deadline)"
    return 99
  fi
  ((limit > l)) && limit=$l
  say "---- $name (limit ${limit}s): $*"
  local t0=$(date +%s)
  timeout --kill-after=5 "$limit" env ${STEP_ENV//,/ } "$@" >>"$LOG" 2>&1
  local rc=$?
  note "${STEP_ENV:+$STEP_ENV@}$name: rc=$rc in $(($(date +%s) - t0))s"
  return $rc
}

# ---- the bundle: binaries built on the CPU machine, libraries if missing ----
if [[ ! -x .gpu/run/bin/suanli ]]; then
  mkdir -p .gpu/run && tar -C .gpu/run -xJf .gpu/bundle.tar.xz || { say "no bundle"; exit 2; }
fi
BIN=$PWD/.gpu/run/bin
cub=$(find /usr/local /usr/lib /opt -name 'libcublasLt.so.13' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=${cub:+$(dirname "$cub"):}/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p .gpu/run/libx
for _ in 1 2 3; do
  for m in $(ldd "$BIN/suanli" "$BIN/suanli_conformance" 2>/dev/null | awk '/not found/ {print $1}' | sort -u); do
    [[ -f .gpu/run/lib/$m ]] && ln -sf "$PWD/.gpu/run/lib/$m" .gpu/run/libx/
  done
  export LD_LIBRARY_PATH=$PWD/.gpu/run/libx:$LD_LIBRARY_PATH
done
say "cublasLt: ${cub:-NOT FOUND}; carried libs used: $(ls .gpu/run/libx | tr '\n' ' ')"
ldd "$BIN/suanli" | grep 'not found' | tee -a "$LOG"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader 2>&1 |
  tee -a "$LOG"
export SUANLI_BIN=$BIN/suanli

BG_PID=
synth() {  # synth SHAPE TYPE → path (made once; waits for a background synth)
  local path=$W/$1.$2.gguf
  while [[ ! -s $path && -n $BG_PID ]] && kill -0 "$BG_PID" 2>/dev/null; do sleep 1; done
  if [[ ! -s $path ]]; then
    "$BIN/suanli" synth "$1" --type "$2" -o "$path.tmp" --tokenizer-from .gpu/vocab.gguf -t "${SYNTH_THREADS:-12}" \
      >>"$LOG" 2>&1 && mv "$path.tmp" "$path"
  fi
  echo "$path"
}

default_model() {
  local m=$W/default.gguf
  if [[ ! -s $m && -f .gpu/model.a && -f .gpu/model.b ]]; then
    cat .gpu/model.a .gpu/model.b > "$m.tmp"
    if [[ $(sha256sum "$m.tmp" | cut -d' ' -f1) == $(cat .gpu/model.sha256) ]]; then mv "$m.tmp" "$m"; else
      say "default model: sha256 mismatch"; rm -f "$m.tmp"; fi
  fi
  [[ -s $m ]] && echo "$m"
}

for step in "$@"; do
  STEP_ENV=
  if [[ $step == *@* ]]; then STEP_ENV=${step%%@*}; step=${step#*@}; fi
  IFS=/ read -r what fmt a b c d <<<"$step"
  case $what in
    devices)
      run_step devices 90 "$BIN/suanli" devices --json
      ;;
    conf)
      run_step conformance 240 "$BIN/suanli_conformance" --gtest_brief=1
      grep -E '^\[  FAILED  \]|Failure|error' "$LOG" | sort | uniq -c | sort -rn | head -30 >"$OUT/conf_failures.txt"
      ;;
    conf-v1)
      SUANLI_CUDA_MATMUL=v1 run_step conformance-v1 120 "$BIN/suanli_conformance" --gtest_brief=1 \
        --gtest_filter='Matmul.*'
      ;;
    bgsynth)
      (for f in ${fmt//,/ }; do synth llama3-8b "$f" >/dev/null; done) &
      BG_PID=$!
      say "background synth of llama3-8b ${fmt}: pid $BG_PID"
      ;;
    conf-tc)  # the opt-in tensor-core path: float tolerance and invariance fail by design
      SUANLI_CUDA_TC_MIN_TOKENS=16 run_step conformance-tc 120 "$BIN/suanli_conformance" --gtest_brief=1 \
        --gtest_filter='Matmul.*'
      ;;
    sanitize)
      run_step sanitizer 200 compute-sanitizer --tool memcheck --print-limit 20 "$BIN/suanli_conformance" \
        --gtest_brief=1 --gtest_filter="${fmt:-*}"
      ;;
    greedy-synth)
      m=$(synth smollm2-135m q4_1)
      GREEDY_STEPS=16 run_step greedy-synth 150 tests/gpu/greedy_matches_cpu.sh "$m"
      ;;
    prof)  # prof/SHAPE/FMT: GPU time per op over a short tg run (SUANLI_CUDA_PROFILE=1)
      m=$(synth "$fmt" "$a")
      SUANLI_CUDA_PROFILE=1 run_step "prof-$fmt-$a" 90 "$BIN/suanli" bench -m "$m" --device cuda -p 0 -n 32 -r 1
      ;;
    devmap)  # one model split between the GPU and the CPU: the text of each split
      if m=$(default_model); then :; else m=$(synth smollm2-135m q4_1); fi
      for dm in "--device cpu" "--device cuda" "--device-map cuda:0-14,cpu:15-29" "--device-map cpu:0-9,cuda:10-29" \
        "--device cuda --gpu-layers 12"; do
        say "devmap $dm: $("$BIN/suanli" run -m "$m" -p "The capital of France is" -n 24 --temp 0 $dm 2>>"$LOG" |
          tr '\n' ' ')"
      done
      run_step devmap-bench 60 "$BIN/suanli" bench -m "$m" --device-map cuda:0-14,cpu:15-29 -p 128 \
        -n 32 -r 1 --json
      ;;
    sanitize-eval)  # the whole forward under the memory checker (graphs too with SUANLI_CUDA_GRAPHS=1@)
      m=$(synth smollm2-135m q4_1)
      run_step sanitize-eval 120 compute-sanitizer --tool memcheck --print-limit 20 "$BIN/suanli" eval -m "$m" \
        --ids "1 2 3 4 5 6 7 8 9 10 11 12" --greedy 24 --chunk 5 --device cuda
      ;;
    pytest-ref)
      if m=$(default_model); then
        mkdir -p .gpu/home && ln -sf "$PWD/$m" .gpu/home/SmolLM2-135M-Instruct.Q4_1.gguf
        python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl >>"$LOG" 2>&1
        PYTHONPATH=/tmp/site SUANLI_HOME=$PWD/.gpu/home SUANLI_TEST_DEVICE=cuda run_step pytest-ref 240 \
          python3 -m pytest -q -p no:cacheprovider tests/py/test_model_vs_reference.py
      else note "pytest-ref: no model"; fi
      ;;
    greedy-default)
      if m=$(default_model); then
        run_step greedy-default 200 tests/gpu/greedy_matches_cpu.sh "$m"
      else note "greedy-default: no model"; fi
      ;;
    bench-default)
      if m=$(default_model); then
        run_step bench-default 90 "$BIN/suanli" bench -m "$m" --device cuda -p 512 -n 128 -r 3 --json
      fi
      ;;
    bench-8b)
      m=$(synth llama3-8b "$fmt")
      run_step "bench-8b-$fmt" 150 "$BIN/suanli" bench -m "$m" --device cuda -p 512 -n 128 -r 2 --json
      ;;
    bench-v1-8b)
      m=$(synth llama3-8b "$fmt")
      SUANLI_CUDA_MATMUL=v1 run_step "bench-v1-8b-$fmt" 120 "$BIN/suanli" bench -m "$m" --device cuda -p 0 -n 64 \
        -r 2 --json
      ;;
    bench-tc-8b)
      m=$(synth llama3-8b "$fmt")
      SUANLI_CUDA_TC_MIN_TOKENS=16 run_step "bench-tc-8b-$fmt" 120 "$BIN/suanli" bench -m "$m" --device cuda \
        -p 512 -n 0 -r 2 --json
      ;;
    serve-8b)
      m=$(synth llama3-8b "$fmt")
      run_step "serve-8b-$fmt" 300 "$BIN/suanli" bench serve -m "$m" --device cuda --concurrency "${a:-16}" \
        --requests "${b:-16}" --prompt-tokens "${c:-1024}" --output-tokens "${d:-128}" --max-seqs 256 \
        -b "${BATCH:-2048}" --kv-memory "${KV:-40%}"
      ;;
    *) note "unknown step $step" ;;
  esac
done

say "==== summary"
printf '%s\n' "${SUMMARY[@]}"
grep -E '"test"|tokens_per_s|roofline_fraction|"name"|memory_gbs|gops|gflops' "$LOG" | head -60
grep -E '^ *(ok|DIFF) |SKIP' "$LOG" | head -40
grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$LOG" | head -40
tail -c 3000 "$LOG" | grep -E 'Output token throughput|TPOT|TTFT|Concurrency|concurrency' | head -30
