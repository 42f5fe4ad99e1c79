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

.PHONY: run test deps test-deps build build-asan build-fuzz model unit-test asan-test fuzz-smoke pytest clean format

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

test: test-deps build build-asan build-fuzz model unit-test asan-test fuzz-smoke pytest

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
	cmake --build --preset fuzz -j $(JOBS) --target fuzz_gguf fuzz_chat_template fuzz_tokenizer

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

clean:
	rm -rf build

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')
