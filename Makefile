# The two README commands:
#   make run   install what is missing, build, fetch the default model, run the main job
#   make test  install what is missing, build, run every test
# Everything else here is a convenience wrapper around CMake presets.

PRESET ?= release
BUILD := build/$(PRESET)
SUANLI := $(BUILD)/suanli
VENV := .cache/venv
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60

CUDA_ARCHS ?= 80;90
HIP_ARCHS ?= gfx90a

.PHONY: run test deps test-deps build build-asan build-fuzz build-cuda build-hip model unit-test asan-test fuzz-smoke pytest cross-check clean format

# `make run` serves the default model (SUANLI_PORT / SUANLI_HOST and every
# other SUANLI_* variable configure it; see docs/server.md). Ctrl-C stops it.
PORT ?= $(or $(SUANLI_PORT),8080)
run: deps build model
	$(SUANLI) inspect "$$($(SUANLI) pull default --print-path)"
	@echo
	@echo "Starting suanli serve on http://127.0.0.1:$(PORT)/ (Ctrl-C stops it). Talk to it with:"
	@echo "  browser:  http://127.0.0.1:$(PORT)/   (chat + live status)"
	@echo "  curl:     curl http://127.0.0.1:$(PORT)/v1/chat/completions -H 'Content-Type: application/json' \\"
	@echo "              -d '{\"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}], \"stream\": true}'"
	@echo "  python:   from openai import OpenAI"
	@echo "            c = OpenAI(base_url='http://127.0.0.1:$(PORT)/v1', api_key='none')"
	@echo "            print(c.chat.completions.create(model='default', messages=[{'role': 'user', 'content': 'Hello!'}]).choices[0].message.content)"
	@echo
	$(SUANLI) serve --port $(PORT)

test: test-deps build build-asan build-fuzz build-cuda build-hip model unit-test asan-test fuzz-smoke pytest cross-check

deps:
	@scripts/setup.sh

test-deps:
	@scripts/setup.sh --test

build:
	@cmake --preset $(PRESET) >/dev/null
	cmake --build --preset $(PRESET) -j $(JOBS)

build-asan:
	@cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS) --target suanli_unit_tests suanli_conformance

build-fuzz:
	@cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(JOBS) --target fuzz_gguf fuzz_chat_template fuzz_tokenizer fuzz_json_schema fuzz_openai_request

# Compile-only GPU builds: CI has the CUDA toolkit and Debian's HIP clang but
# no GPU. build-cuda builds the CLI and the conformance suite (the C++ files
# are ccache hits from the release build; only the .cu files compile);
# build-hip, whose clang-15 shares no cache with the other builds, only the
# conformance suite (all the GPU code, linked). Then they run what needs no
# GPU: the device list (the GPU skipped with its reason) and the Gpu tests
# (skipped: "no CUDA device: ..."). The op tests run on a GPU machine:
# ctest --preset cuda, tests/gpu/greedy_matches_cpu.sh (docs/cuda.md).
build-cuda:
	@if [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null; then \
	  cmake --preset cuda -DCMAKE_CUDA_ARCHITECTURES="$(CUDA_ARCHS)" >/dev/null && \
	  cmake --build --preset cuda -j $(JOBS) --target suanli suanli_conformance && \
	  build/cuda/suanli devices --json >/dev/null && \
	  build/cuda/tests/suanli_conformance --gtest_filter='Gpu*' --gtest_brief=1; \
	else echo "build-cuda: no CUDA toolkit (nvcc), skipped"; fi

build-hip:
	@if command -v clang++-15 >/dev/null && [ -f /usr/include/hip/hip_runtime.h ]; then \
	  cmake --preset hip -DSUANLI_HIP_ARCHITECTURES="$(HIP_ARCHS)" >/dev/null && \
	  cmake --build --preset hip -j $(JOBS) --target suanli_conformance && \
	  build/hip/tests/suanli_conformance --gtest_filter='Gpu.*' --gtest_brief=1; \
	else echo "build-hip: no HIP toolchain (apt-get install hipcc), skipped"; fi

model: build
	$(SUANLI) pull default

unit-test:
	ctest --preset $(PRESET) -j $(JOBS)

# The sanitizer build runs every test except the slowest model-level one
# (64 requests alone and batched), which the release run covers.
asan-test:
	ctest --preset asan -j $(JOBS) -E 'Engine.concurrent_greedy'

fuzz-smoke:
	scripts/fuzz.sh $(FUZZ_SECONDS)

pytest:
	SUANLI_BIN=$(abspath $(SUANLI)) $(VENV)/bin/python -m pytest -q tests/py

# The Highway kernels (matmul_hwy.cc, ops_hwy.cc) on aarch64 (NEON, SVE,
# SVE2) and riscv64 (EMU128) under qemu-user: the packed matmul bit for bit
# against the portable kernels, the row kernels against float64. Installs
# the cross toolchains, qemu-user and libhwy-dev:arm64 itself (~1 min on a
# clean machine, then ~30 s).
cross-check:
	scripts/cross_check.sh

clean:
	rm -rf build

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')
