#!/usr/bin/env python3
"""Side-by-side decode and prefill speed of Balcony and llama.cpp on quantized GGUF files
(issue 13's benchmark; docs/performance.md has the table). Not a test.

Makes, in ~/.cache/balcony/bench (once):
  llama110m-F32.gguf       the 110M shape of scripts/configs/llama-110m.json with random weights
                           (speed does not depend on the values) and LLaMA-2's 32000-piece vocabulary
  llama110m-<TYPE>.gguf    its quantizations by llama.cpp's llama-quantize: Q4_0 Q4_K_M Q5_K_M Q6_K Q8_0
  smollm2-Q4_K_M.gguf      SmolLM2-135M-Instruct requantized to Q4_K_M from its F32 dequantization
then alternates `llama-bench -t 2 -p 512 -n 64` and `balcony bench --prompt-tokens 512 --gen-tokens 64`
ROUNDS times per file and prints medians and ratios.

Run: eval "$(scripts/fetch_llama_cpp.sh)"; python3 scripts/bench_quantized.py [--rounds N] [--balcony PATH] [FILES...]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
CACHE = os.path.join(os.environ.get("BALCONY_CACHE", os.path.expanduser("~/.cache/balcony")), "bench")
BIN = os.path.dirname(os.environ.get("LLAMA_QUANTIZE", os.path.expanduser("~/.cache/balcony/llama.cpp/build/bin/llama-quantize")))
TYPES = ["Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"]


def make_110m():
    import gguf
    from make_quant_model_fixtures import read_llama2c_tokenizer
    path = os.path.join(CACHE, "llama110m-F32.gguf")
    if os.path.exists(path):
        return path
    cfg = json.load(open(os.path.join(ROOT, "scripts", "configs", "llama-110m.json")))
    dim, hidden, layers, heads = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
    tokens, scores = read_llama2c_tokenizer(os.path.join(ROOT, "..", "shared", "tokenizers", "llama2", "tokenizer.bin"))
    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(path + ".tmp", "llama")
    w.add_context_length(cfg["max_position_embeddings"]); w.add_embedding_length(dim); w.add_block_count(layers)
    w.add_feed_forward_length(hidden); w.add_head_count(heads); w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_dimension_count(dim // heads); w.add_layer_norm_rms_eps(1e-5); w.add_rope_freq_base(10000.0)
    w.add_file_type(0); w.add_tokenizer_model("llama"); w.add_token_list(tokens); w.add_token_scores(scores)
    w.add_token_types([2 if i == 0 else 3 if i in (1, 2) else 6 if 3 <= i < 259 else 1 for i in range(len(tokens))])
    w.add_bos_token_id(1); w.add_eos_token_id(2)

    def m(r, c):
        return (0.02 * rng.standard_normal((r, c))).astype(np.float32)

    w.add_tensor("token_embd.weight", m(len(tokens), dim))
    w.add_tensor("output_norm.weight", np.ones(dim, np.float32))
    for i in range(layers):
        p = f"blk.{i}."
        for n in ("attn_norm", "ffn_norm"):
            w.add_tensor(p + n + ".weight", np.ones(dim, np.float32))
        for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(p + n + ".weight", m(dim, dim))
        w.add_tensor(p + "ffn_gate.weight", m(hidden, dim)); w.add_tensor(p + "ffn_up.weight", m(hidden, dim))
        w.add_tensor(p + "ffn_down.weight", m(dim, hidden))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    os.replace(path + ".tmp", path)
    return path


def quantize(src, dst, kind, requantize=False):
    if not os.path.exists(dst):
        args = [os.path.join(BIN, "llama-quantize")] + (["--allow-requantize"] if requantize else []) + [src, dst + ".tmp", kind]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.replace(dst + ".tmp", dst)
    return dst


def files():
    os.makedirs(CACHE, exist_ok=True)
    f32 = make_110m()
    out = [f32] + [quantize(f32, os.path.join(CACHE, f"llama110m-{t}.gguf"), t) for t in TYPES]
    smol = subprocess.run([os.path.join(ROOT, "scripts", "fetch_smollm2.sh")], check=True, capture_output=True, text=True).stdout.strip()
    widened = quantize(smol, os.path.join(CACHE, "smollm2-F32.gguf"), "F32", requantize=True)
    return out + [smol, quantize(widened, os.path.join(CACHE, "smollm2-Q4_K_M.gguf"), "Q4_K_M", requantize=True)]


def llama_bench(path):
    out = subprocess.run([os.path.join(BIN, "llama-bench"), "-m", path, "-t", "2", "-p", "512", "-n", "64", "-r", "3", "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    rows = json.loads(out)
    return ({r["n_prompt"] and "prefill" or "decode": r["avg_ts"] for r in rows})


def balcony_bench(binary, path):
    out = subprocess.run([binary, "bench", path, "--threads", "2", "--prompt-tokens", "512", "--gen-tokens", "64",
                          "--repeats", "3", "--json"], check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return {"prefill": r["prefill_tokens_per_s"], "decode": r["decode_tokens_per_s"],
            "bound": r["decode_bound_tokens_per_s"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--balcony", default=os.path.join(ROOT, ".build", "release", "balcony"))
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    paths = a.files or files()
    print("| file | llama.cpp pp512 | Balcony pp512 | ratio | llama.cpp tg64 | Balcony tg64 | ratio | Balcony / bandwidth bound |")
    print("|---|---|---|---|---|---|---|---|")
    for path in paths:
        runs = {"lp": [], "bp": [], "ld": [], "bd": [], "bound": []}
        for _ in range(a.rounds):
            l = llama_bench(path)
            b = balcony_bench(a.balcony, path)
            runs["lp"].append(l["prefill"]); runs["ld"].append(l["decode"])
            runs["bp"].append(b["prefill"]); runs["bd"].append(b["decode"]); runs["bound"].append(b["bound"])
        med = {k: statistics.median(v) for k, v in runs.items()}
        pr = statistics.median([b / l for b, l in zip(runs["bp"], runs["lp"])])
        dr = statistics.median([b / l for b, l in zip(runs["bd"], runs["ld"])])
        print(f"| {os.path.basename(path)} | {med['lp']:.1f} | {med['bp']:.1f} | {pr:.2f} | {med['ld']:.1f} | {med['bd']:.1f} | "
              f"{dr:.2f} | {med['bd'] / med['bound']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
