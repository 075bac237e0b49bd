#!/usr/bin/env python3
"""SmolLM2-135M-Instruct requantized by llama.cpp to Q4_K_M, Q6_K and Q8_0 (from the F32
dequantization of its Q4_1 file): Balcony's prefill log-probabilities (`balcony score --json`,
float activations) against llama.cpp's on each file's own F32 requantization (the dequantized
weights, float activations). The files are 60-140 MB and need llama-quantize, so this is a script
whose figures go in docs/quantization.md, not a test. Prints one line per type.

Run: eval "$(scripts/fetch_llama_cpp.sh)"; python3 scripts/bench_quantized.py (makes the files once);
     python3 scripts/check_smollm2_requantized.py [--balcony PATH]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from bench_quantized import CACHE, quantize  # noqa: E402
from make_smollm2_fixtures import TEXTS, next_token_log_probs, open_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--balcony", default=os.path.join(ROOT, ".build", "release", "balcony"))
    a = ap.parse_args()
    widened = os.path.join(CACHE, "smollm2-F32.gguf")
    texts = [t for t in TEXTS if "<|" not in t]  # `balcony score` does not parse control tokens
    for kind in ["Q4_K_M", "Q6_K", "Q8_0"]:
        path = quantize(widened, os.path.join(CACHE, f"smollm2-{kind}.gguf"), kind, requantize=True)
        with tempfile.TemporaryDirectory() as tmp:
            f32 = quantize(path, os.path.join(tmp, "f32.gguf"), "F32", requantize=True)
            llm = open_model(f32, one_token_at_a_time=False)
            gaps = []
            for text in texts:
                out = subprocess.run([a.balcony, "score", path, "--text", text, "--json"], check=True,
                                     capture_output=True, text=True).stdout
                ours = json.loads(out.strip().splitlines()[-1])
                ids = llm.tokenize(text.encode(), add_bos=False, special=False)
                assert ids[1:] == ours["tokens"], "tokenization differs"
                ref = next_token_log_probs(llm, ids)
                gaps.append(float(np.mean(np.abs(-np.array(ours["nll"]) - np.array(ref)))))
            del llm
        print(f"{kind:7s} prefill vs llama.cpp on the dequantized weights: mean |diff| per text "
              + ", ".join(f"{g:.2e}" for g in gaps) + " nats", flush=True)


if __name__ == "__main__":
    main()
