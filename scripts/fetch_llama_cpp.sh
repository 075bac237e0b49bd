#!/usr/bin/env bash
# Builds the reference llama.cpp (the recent copy vendored in PyPI's llama-cpp-python source
# distribution) into the cache folder outside the repository: llama-bench (the speed bar),
# llama-quantize and llama-perplexity, libllama, and the llama_cpp Python bindings over that same
# library. Used by the fixture scripts and by docs/performance.md's side-by-side runs; the tests
# never need it. About 15 minutes on 2 cores. Prints the variables the scripts read.
#   eval "$(scripts/fetch_llama_cpp.sh)"
set -euo pipefail
VERSION=0.3.36
CACHE="${BALCONY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/balcony}"
ROOT="$CACHE/llama.cpp"
BUILD="$ROOT/build"
mkdir -p "$ROOT"
if [ ! -d "$ROOT/llama_cpp_python-$VERSION" ]; then
  echo "fetching llama-cpp-python $VERSION source from PyPI" >&2
  python3 -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$ROOT" >&2
  tar -xzf "$ROOT/llama_cpp_python-$VERSION.tar.gz" -C "$ROOT"
fi
SRC="$ROOT/llama_cpp_python-$VERSION"
if [ ! -x "$BUILD/bin/llama-bench" ] || [ ! -x "$BUILD/bin/llama-quantize" ]; then
  command -v cmake >/dev/null || python3 -m pip install --quiet cmake ninja >&2
  cmake -S "$SRC/vendor/llama.cpp" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DBUILD_SHARED_LIBS=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >&2
  cmake --build "$BUILD" -j"$(nproc)" --target llama-bench llama-quantize llama-perplexity llama >&2
fi
if ! python3 -c 'import llama_cpp' 2>/dev/null; then
  # The bindings alone (LLAMA_BUILD=OFF); LLAMA_CPP_LIB_PATH points them at the library built above.
  CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" python3 -m pip install --quiet "$SRC" >&2
fi
echo "export LLAMA_CPP_LIB_PATH=$BUILD/bin"
echo "export LLAMA_QUANTIZE=$BUILD/bin/llama-quantize"
echo "export LLAMA_BENCH=$BUILD/bin/llama-bench"
echo "export LLAMA_PERPLEXITY=$BUILD/bin/llama-perplexity"
