#!/usr/bin/env python3
"""Reference dequantizations for every GGML block type Balcony multiplies.

Expected values come from llama.cpp's `gguf` package (`gguf.quants.dequantize`, a NumPy port of
ggml's dequantize_row_*), never from Balcony's code. Writes, under
Tests/BalconyCoreTests/Fixtures/quants/:

    <TYPE>-random.bin   ROWS x COLS values of random blocks: every byte uniform, except the F16
                        block scales, which are drawn from realistic magnitudes (a random F16 could
                        be Inf or NaN, whose products mean nothing)
    <TYPE>-random.f32   the same rows dequantized by gguf.quants.dequantize, little-endian float32
    <TYPE>-quantized.*  (where the gguf package can quantize the type) a smooth random matrix
                        quantized by gguf.quants.quantize, the reference quantizer ported from ggml,
                        and its dequantization; the k-quants made by llama.cpp's own quantizer are
                        covered by the model fixtures (scripts/make_quant_model_fixtures.py)
    index.json          rows, cols, block geometry and file names per type

Run: python3 scripts/make_quant_fixtures.py   (numpy, gguf)
"""
import json
import os
from importlib.metadata import version

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "BalconyCoreTests", "Fixtures", "quants")
ROWS, COLS = 3, 768  # 768 = 3 super-blocks of 256, 24 blocks of 32

# Byte offsets of each block's F16 scales (d, and m/dmin where present), from ggml-common.h.
SCALE_OFFSETS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0], T.IQ4_NL: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208], T.IQ4_XS: [0],
}


def random_blocks(t, rng):
    block_values, block_bytes = quants.GGML_QUANT_SIZES[t]
    blocks = ROWS * COLS // block_values
    raw = rng.integers(0, 256, size=(blocks, block_bytes), dtype=np.uint8)
    for off in SCALE_OFFSETS[t]:
        scale = (rng.uniform(0.2, 2.0, size=blocks) * rng.choice([-1, 1], size=blocks) * 2.0 ** -7).astype(np.float16)
        raw[:, off:off + 2] = scale.view(np.uint8).reshape(blocks, 2)
    return raw.reshape(ROWS, -1)


def write(name, raw, values):
    raw.astype(np.uint8).tofile(os.path.join(OUT, name + ".bin"))
    values.astype("<f4").tofile(os.path.join(OUT, name + ".f32"))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(1234)
    index = {"rows": ROWS, "cols": COLS, "gguf_version": version("gguf"), "types": {}}
    smooth = (np.sin(np.arange(ROWS * COLS, dtype=np.float32) * 0.37) * rng.standard_normal(ROWS * COLS)).astype(np.float32)
    smooth = smooth.reshape(ROWS, COLS) * 0.05
    for t in SCALE_OFFSETS:
        raw = random_blocks(t, rng)
        values = quants.dequantize(raw, t)
        assert values.shape == (ROWS, COLS) and np.isfinite(values).all()
        write(f"{t.name}-random", raw, values)
        entry = {"type_id": int(t), "block_values": quants.GGML_QUANT_SIZES[t][0],
                 "block_bytes": quants.GGML_QUANT_SIZES[t][1], "files": [f"{t.name}-random"]}
        try:
            q = quants.quantize(smooth, t)
        except NotImplementedError:
            q = None
        if q is not None:
            write(f"{t.name}-quantized", q, quants.dequantize(q, t))
            entry["files"].append(f"{t.name}-quantized")
        index["types"][t.name] = entry
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
