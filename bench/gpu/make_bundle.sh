#!/usr/bin/env bash
# Prepares what a lent GPU machine needs to run bench/gpu/device_check.sh,
# in .gpu/ (ignored by git; the device tool carries it with `carry: [".gpu"]`
# or the single files named below):
#   .gpu/bundle.tar.xz   build/cuda's suanli and conformance suite (sm_90),
#                        plus the shared libraries they link, for the case
#                        the GPU machine's image lacks one (the check script
#                        links only the missing ones)
#   .gpu/vocab.gguf      a vocabulary-only GGUF, the tokenizer for `suanli synth`
#   .gpu/model.a/.b      the default model in two halves (94 MB does not fit
#                        one call's 64 MiB; device_check.sh joins them)
# The GPU machine cannot reach any registry and the build there would cost
# lease time, so everything is built here.
set -euo pipefail
cd "$(dirname "$0")/../.."
archs=${CUDA_ARCHS:-90}
cmake --preset cuda -DCMAKE_CUDA_ARCHITECTURES="$archs" >/dev/null
cmake --build --preset cuda -j "${JOBS:-2}" --target suanli suanli_conformance
rm -rf .gpu/stage && mkdir -p .gpu/stage/bin .gpu/stage/lib
cp build/cuda/suanli build/cuda/tests/suanli_conformance .gpu/stage/bin/
ldd build/cuda/suanli build/cuda/tests/suanli_conformance | awk '/=>/ {print $3}' | sort -u |
  grep -v -E '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*|libcublasLt|libcublas)\.so' |
  while read -r lib; do cp -L "$lib" .gpu/stage/lib/; done
tar -C .gpu/stage -cJf .gpu/bundle.tar.xz bin lib
rm -rf .gpu/stage
vocab=${VOCAB:-../shared/data/vocab/ggml-vocab-gpt-2.gguf}
[[ -f $vocab ]] && cp "$vocab" .gpu/vocab.gguf
model=$(build/release/suanli pull default --print-path 2>/dev/null || true)
if [[ -n $model && -f $model ]]; then
  half=$(( ($(stat -c %s "$model") + 1) / 2 ))
  head -c "$half" "$model" > .gpu/model.a
  tail -c +$((half + 1)) "$model" > .gpu/model.b
  sha256sum "$model" | cut -d' ' -f1 > .gpu/model.sha256
fi
ls -la .gpu
