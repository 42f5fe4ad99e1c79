#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time (seconds per target, default
# 60), seeded from the repo (tests/fuzz/corpus/gguf: small GGUFs written with
# the gguf package; tests/data/chat_templates: real chat templates;
# tests/fuzz/corpus/json_schema: a schema, a NUL, then output bytes;
# tests/fuzz/corpus/openai_request: an endpoint byte, then a request body). Findings
# land in build/fuzz/findings/ and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=build/fuzz
mkdir -p "$build/findings"
status=0
declare -A seed_dirs=(
  [fuzz_gguf]=tests/fuzz/corpus/gguf
  [fuzz_chat_template]=tests/data/chat_templates
  [fuzz_tokenizer]=tests/fuzz/corpus/tokenizer
  [fuzz_json_schema]=tests/fuzz/corpus/json_schema
  [fuzz_openai_request]=tests/fuzz/corpus/openai_request
)
for target in fuzz_gguf fuzz_chat_template fuzz_tokenizer fuzz_json_schema fuzz_openai_request; do
  seeds=${seed_dirs[$target]}
  work=$build/corpus/$target
  mkdir -p "$work"
  echo "fuzz: $target for ${seconds}s (seeds: $seeds)"
  if ! "$build/tests/fuzz/$target" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
      -timeout=10 -print_final_stats=1 -artifact_prefix="$build/findings/$target-" \
      "$work" "$seeds" 2>"$build/$target.log"; then
    echo "fuzz: $target FOUND A FAILURE:"; tail -40 "$build/$target.log"; status=1
  fi
  grep -E '^(stat::(number_of_executed_units|peak_rss_mb)|tokenizer_fuzz:)' "$build/$target.log" || true
done
exit $status
