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

.PHONY: deps build demo test bench clean

deps:
	@pkg-config --exists openblas 2>/dev/null || { \
	  echo "installing OpenBLAS (libopenblas-dev) and pkg-config"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libopenblas-dev pkg-config; }

build: deps
	swift build -c release --product balcony

demo: build
	$(BALCONY) info
	$(BALCONY) generate --prompt "Once upon a time" --temperature 0 --max-tokens 120

test: deps
	swift test

bench: build
	@mkdir -p .bench
	[ -d .bench/llama110m ] || $(BALCONY) random-model --config scripts/configs/llama-110m.json --out .bench/llama110m
	$(BALCONY) bench .bench/llama110m --threads 2

clean:
	rm -rf .build .bench
