#!/usr/bin/env python3
"""Reference weight quantizations: F32 rows and the blocks gguf-py's quantizer makes of them.

Balcony quantizes balconies at load (`--balcony-type`) with a C port of llama.cpp's reference
quantizers (quantize_row_*_ref). The expected blocks here come from the `gguf` package
(`gguf.quants.quantize`, a NumPy port of the same functions that its authors test bit for bit
against ggml), never from Balcony's code. Writes, under
Tests/BalconyCoreTests/Fixtures/quants/requantize/:

    source.f32      ROWS x COLS little-endian float32 inputs: rows of several magnitudes, plus
                    edge cases (an all-zero block, ties for the largest magnitude, a constant
                    block, values that land exactly on .5 after scaling)
    <TYPE>.bin      the same rows quantized by gguf.quants.quantize
    index.json      rows, cols, types

Run: python3 scripts/make_requantize_fixtures.py   (numpy, gguf)
"""
import json
import os
from importlib.metadata import version

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "BalconyCoreTests", "Fixtures", "quants", "requantize")
ROWS, COLS = 8, 128
TYPES = [T.Q8_0, T.Q5_1, T.Q5_0, T.Q4_1, T.Q4_0]


def source() -> np.ndarray:
    rng = np.random.default_rng(20261203)
    x = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    for r, scale in enumerate([0.02, 1.0, 1e-4, 300.0, 0.05, 3.0]):
        x[r] *= np.float32(scale)
    x[6, 0:32] = 0                                   # an all-zero block: scale 0
    x[6, 32:64] = np.float32(0.75)                   # a constant block
    x[6, 64:96] = np.linspace(-1, 1, 32, dtype=np.float32)
    x[6, 64] = np.float32(-1.0)                      # +-1 tie for the largest magnitude: first wins
    x[6, 95] = np.float32(1.0)
    x[7] = (np.arange(COLS, dtype=np.float32) - 64) / np.float32(8)  # many exact halves after scaling
    return x


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    x = source()
    x.astype("<f4").tofile(os.path.join(OUT, "source.f32"))
    for t in TYPES:
        quants.quantize(x, t).tofile(os.path.join(OUT, f"{t.name}.bin"))
    index = {"rows": ROWS, "cols": COLS, "types": [t.name for t in TYPES], "gguf": version("gguf")}
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
