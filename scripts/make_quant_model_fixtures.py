#!/usr/bin/env python3
"""Quantized GGUF model fixtures: a small random LLaMA quantized by llama.cpp's own quantizer to
every block type Balcony multiplies, with log-probabilities computed by llama.cpp itself.

Needs llama.cpp's `llama-quantize` and the `llama_cpp` Python bindings (llama-cpp-python) over the
same build: scripts/fetch_llama_cpp.sh builds both into ~/.cache/balcony/llama.cpp. Writes, under
Tests/BalconyCoreTests/Fixtures/models/quantized/:

    model-<TYPE>.gguf   the random model (dim 256, hidden 512, 1 layer, 4 heads, 2 KV heads, the
                        stories260K SentencePiece vocabulary of 512 pieces, untied output)
                        quantized by `llama-quantize --pure` (every matrix in TYPE), and one
                        `Q4_K_M` file with llama.cpp's own per-tensor mix
    expected.json       for each file: the token ids of a fixed text and the log-probability of
                        each next token, two ways:
                        - "quantized_activations": llama.cpp on the quantized file, one token
                          per evaluation (its decode path: activations quantized to 8 bits), F32
                          KV cache;
                        - "float_activations": llama.cpp on the same file requantized to F32
                          (`llama-quantize --allow-requantize ... F32`: exactly the dequantized
                          weights) with float activations, the whole text in one batch.
                        It also records how far the two paths are apart, the size of the effect a
                        test of either path must resolve.
    dequantized-<TYPE>.f32  the first DEQUANT_ROWS rows of blk.0.ffn_down.weight of each file as the
                        gguf package dequantizes them (gguf.quants.dequantize), little-endian float32:
                        blocks made by llama.cpp's own quantizer, for a bit-exact check

Weights are scaled so that attention is peaked and log-probabilities spread over several nats.

Run: python3 scripts/make_quant_model_fixtures.py   (numpy, gguf, llama_cpp; LLAMA_CPP_LIB_PATH and
     LLAMA_QUANTIZE point at the build, as scripts/fetch_llama_cpp.sh prints)
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import gguf

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests", "BalconyCoreTests", "Fixtures", "models", "quantized")
TOKENIZER = os.path.join(ROOT, "..", "shared", "models", "stories260K", "tok512.bin")
QUANTIZE = os.environ.get("LLAMA_QUANTIZE", os.path.expanduser("~/.cache/balcony/llama.cpp/build/bin/llama-quantize"))

DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, CONTEXT = 256, 512, 1, 4, 2, 256
TEXT = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends."
# llama-quantize's names: with --pure every matrix gets the type itself.
DEQUANT_TENSOR, DEQUANT_ROWS = "blk.0.ffn_down.weight", 4
PURE_TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q4_K_S", "Q5_K_S", "Q6_K", "IQ4_NL", "IQ4_XS"]
MIXED_TYPES = ["Q4_K_M"]


def read_llama2c_tokenizer(path):
    """tokens, scores of a llama2.c tokenizer.bin (max_len, then per token: score, length, bytes)."""
    data = open(path, "rb").read()
    off = 4
    tokens, scores = [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        tokens.append(data[off:off + n].decode("utf-8", errors="surrogateescape"))
        scores.append(score)
        off += n
    return tokens, scores


def random_weights(seed, vocab):
    rng = np.random.default_rng(seed)
    head_dim = DIM // HEADS

    def m(rows, cols, scale):
        return (scale * rng.standard_normal((rows, cols))).astype(np.float32)

    t = {"token_embd.weight": m(vocab, DIM, 0.5), "output.weight": m(vocab, DIM, 0.125),
         "output_norm.weight": (1 + 0.2 * rng.standard_normal(DIM)).astype(np.float32)}
    for i in range(LAYERS):
        p = f"blk.{i}."
        t[p + "attn_norm.weight"] = (1 + 0.2 * rng.standard_normal(DIM)).astype(np.float32)
        t[p + "ffn_norm.weight"] = (1 + 0.2 * rng.standard_normal(DIM)).astype(np.float32)
        t[p + "attn_q.weight"] = m(HEADS * head_dim, DIM, 0.125)   # attention scores with std ~4
        t[p + "attn_k.weight"] = m(KV_HEADS * head_dim, DIM, 0.125)
        t[p + "attn_v.weight"] = m(KV_HEADS * head_dim, DIM, 0.0625)
        t[p + "attn_output.weight"] = m(DIM, HEADS * head_dim, 0.0625)
        t[p + "ffn_gate.weight"] = m(HIDDEN, DIM, 0.0625)
        t[p + "ffn_up.weight"] = m(HIDDEN, DIM, 0.0625)
        t[p + "ffn_down.weight"] = m(DIM, HIDDEN, 0.0625)
    return t


def write_f32(path, tokens, scores):
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("balcony-quant-fixture")
    w.add_context_length(CONTEXT)
    w.add_embedding_length(DIM)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(HIDDEN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(DIM // HEADS)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(0)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    types = []
    for i, tok in enumerate(tokens):
        if i == 0:
            types.append(gguf.TokenType.UNKNOWN)
        elif i in (1, 2):
            types.append(gguf.TokenType.CONTROL)
        elif tok.startswith("<0x") and tok.endswith(">") and len(tok) == 6:
            types.append(gguf.TokenType.BYTE)
        else:
            types.append(gguf.TokenType.NORMAL)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    for name, value in random_weights(7, len(tokens)).items():
        w.add_tensor(name, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def log_probs(model_path, ids, one_token_at_a_time):
    """Log-probability of each next token, from llama.cpp's logits (F32 KV cache)."""
    import llama_cpp
    llm = llama_cpp.Llama(model_path=model_path, n_ctx=CONTEXT, n_batch=1 if one_token_at_a_time else 512,
                          n_ubatch=1 if one_token_at_a_time else 512, logits_all=True, n_threads=2,
                          type_k=0, type_v=0, verbose=False)
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    lp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    out = [float(lp[i, ids[i + 1]]) for i in range(len(ids) - 1)]
    del llm
    return out


def main():
    import llama_cpp
    os.makedirs(OUT, exist_ok=True)
    tokens, scores = read_llama2c_tokenizer(TOKENIZER)
    expected = {"text": TEXT, "llama_cpp_python": llama_cpp.__version__, "files": {}}
    with tempfile.TemporaryDirectory() as tmp:
        f32 = os.path.join(tmp, "model-F32.gguf")
        write_f32(f32, tokens, scores)
        vocab = llama_cpp.Llama(model_path=f32, vocab_only=True, verbose=False)
        ids = vocab.tokenize(TEXT.encode(), add_bos=True)
        expected["tokens"] = ids
        for name in PURE_TYPES + MIXED_TYPES:
            out = os.path.join(OUT, f"model-{name}.gguf")
            args = [QUANTIZE] + (["--pure"] if name in PURE_TYPES else []) + [f32, out, name]
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            widened = os.path.join(tmp, f"widened-{name}.gguf")
            subprocess.run([QUANTIZE, "--allow-requantize", out, widened, "F32"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            reader = gguf.GGUFReader(out)
            tensor_types = sorted({t.tensor_type.name for t in reader.tensors})
            tensor = next(t for t in reader.tensors if t.name == DEQUANT_TENSOR)
            rows = gguf.quants.dequantize(np.array(tensor.data), tensor.tensor_type)[:DEQUANT_ROWS]
            rows.astype("<f4").tofile(os.path.join(OUT, f"dequantized-{name}.f32"))
            quantized = log_probs(out, ids, one_token_at_a_time=True)
            floats = log_probs(widened, ids, one_token_at_a_time=False)
            gap = float(np.mean(np.abs(np.array(quantized) - np.array(floats))))
            expected["files"][name] = {"file": f"model-{name}.gguf", "tensor_types": tensor_types,
                                       "dequantized": {"tensor": DEQUANT_TENSOR, "type": tensor.tensor_type.name,
                                                       "rows": DEQUANT_ROWS, "file": f"dequantized-{name}.f32"},
                                       "quantized_activations": quantized, "float_activations": floats,
                                       "mean_abs_gap_between_paths": gap,
                                       "mean_log_prob": float(np.mean(floats))}
            print(f"{name:8s} {','.join(tensor_types):24s} gap between paths {gap:.4f} nats, "
                  f"mean log p {np.mean(floats):.3f}", file=sys.stderr)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
