#!/usr/bin/env python3
"""Cross-implementation fixtures for Balcony's model readers and writers.

Everything here is produced by the reference implementations -- PyTorch + Hugging Face transformers
for models and expected log-probabilities, the `safetensors` package for safetensors bytes, and
llama.cpp's `gguf` package for GGUF files -- never by Balcony's own code. Fixed seeds make the
output reproducible. Writes, under Tests/BalconyCoreTests/Fixtures/:

models/llama-gqa/      LlamaForCausalLM, GQA (4 heads, 2 KV heads), untied output
    hf-f32/            save_pretrained, F32
    hf-bf16/           save_pretrained, BF16, sharded (model.safetensors.index.json)
    gguf-{f32,f16,q8_0}.gguf   the same weights written with the `gguf` package the way
                       llama.cpp's convert_hf_to_gguf.py writes them (q/k rows permuted)
    expected.json      tokens and per-token log-probabilities for every variant
models/llama3-rope/    LlamaForCausalLM with LLaMA-3 rope scaling, rope_theta 500000
    hf-f32/, gguf-f32.gguf (rope scaling as a rope_freqs.weight tensor), expected.json
models/qwen2-tied/     Qwen2ForCausalLM: q/k/v biases, tied output
    hf-f32/, gguf-{f32,f16,q8_0}.gguf (no q/k permutation, as for qwen2), expected.json
safetensors/python.safetensors + python.json   tensors written by safetensors.torch.save_file

Weights are not transformers' default init (N(0, 0.02) makes attention nearly uniform and every
log-probability close to -log(vocab), so a RoPE or bias bug would hide in the noise). They are
scaled so that attention is peaked and log-probabilities spread over several nats; each
expected.json records how far a deliberately wrong reading (wrong RoPE pairing, no rope scaling,
no biases) moves the log-probabilities, to show the fixtures can catch those bugs.

Expected values: transformers in float32 (eager attention) on exactly the values each file holds:
the BF16/F16 weights upcast, and for Q8_0 the blocks dequantized by gguf.quants. A float64 run of
the same weights is recorded too, to show the float32 reference's own rounding error.

Run: python3 scripts/make_model_fixtures.py   (torch, transformers 5.x, gguf, safetensors, numpy)
     python3 scripts/make_model_fixtures.py --check-folder DIR   (log-probabilities of any HF folder)
"""
import copy
import json
import math
import os
import shutil
from importlib.metadata import version

import gguf
import numpy as np
import torch
from gguf import GGMLQuantizationType as QT
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "BalconyCoreTests", "Fixtures")
MODELS = os.path.join(FIXTURES, "models")

# 24 token ids below the vocabulary size 128, fixed here so the tests can state them literally.
TOKENS = [1, 17, 93, 4, 55, 120, 8, 8, 61, 33, 2, 77, 101, 45, 12, 127, 0, 64, 89, 23, 5, 110, 38, 71]

VERSIONS = {p: version(p) for p in ("torch", "transformers", "gguf", "safetensors", "numpy")}


# ---------------------------------------------------------------------------------------------
# Models


def randomize(model, seed):
    """Deterministic weights with enough scale that attention is peaked (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.2 * r)
            elif name.endswith(".bias"):
                p.copy_(0.5 * r)
            elif "q_proj" in name or "k_proj" in name:
                p.copy_(0.25 * r)  # q, k entries ~ N(0, 4): attention scores with std ~4
            elif name in ("lm_head.weight", "model.embed_tokens.weight"):
                p.copy_(0.25 * r)
            else:
                p.copy_(0.125 * r)  # keeps the residual stream at unit scale
    return model


def llama_gqa():
    c = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                    rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                    bos_token_id=1, eos_token_id=2)
    return randomize(LlamaForCausalLM(c), seed=1234).eval()


LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  # Small, so that all three regimes of the rule (kept, smoothed, divided by
                  # factor) occur among the 8 frequencies of a 16-wide head.
                  "original_max_position_embeddings": 64}


def llama3_rope(scaling=True):
    c = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                    rms_norm_eps=1e-5, rope_theta=500000.0, rope_scaling=dict(LLAMA3_SCALING) if scaling else None,
                    tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    m = LlamaForCausalLM(c)
    if scaling:
        assert m.config.rope_parameters["rope_type"] == "llama3", m.config.rope_parameters
        assert m.config.rope_parameters["rope_theta"] == 500000.0
    return randomize(m, seed=5678).eval()


def qwen2_tied():
    c = Qwen2Config(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                    rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True)
    m = randomize(Qwen2ForCausalLM(c), seed=9012).eval()
    assert m.lm_head.weight.data_ptr() == m.model.embed_tokens.weight.data_ptr(), "output is not tied"
    assert m.model.layers[0].self_attn.q_proj.bias is not None and m.model.layers[0].self_attn.o_proj.bias is None
    return m


def log_probs(model, dtype=torch.float32):
    """log p(TOKENS[i] | TOKENS[:i]) for i = 1..n-1, computed by transformers in `dtype`."""
    # A copy: Module.to() converts in place.
    model = copy.deepcopy(model).to(dtype)
    model.config._attn_implementation = "eager"
    ids = torch.tensor([TOKENS])
    with torch.no_grad():
        logits = model(ids).logits[0]
    lp = torch.log_softmax(logits, dim=-1)
    return [float(lp[i - 1, TOKENS[i]]) for i in range(1, len(TOKENS))]


def with_state(model, state):
    """A copy of `model` holding `state` (upcast to float32)."""
    m = type(model)(model.config)
    m.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=False)
    if model.config.tie_word_embeddings:
        m.tie_weights()
    return m.eval()


def max_diff(a, b):
    return max(abs(x - y) for x, y in zip(a, b))


# ---------------------------------------------------------------------------------------------
# GGUF, the way llama.cpp's convert_hf_to_gguf.py writes it


def permute(weights, n_head, n_head_kv):
    """convert_hf_to_gguf.py's LlamaModel.permute: HF half-split rows -> interleaved rows."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def unpermute(weights, n_head):
    """The inverse of `permute` (interleaved rows -> HF rows)."""
    return (weights.reshape(n_head, weights.shape[0] // n_head // 2, 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def llama3_rope_factors(cfg):
    """convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors for rope_type llama3, with the
    scaling parameters taken from the rope parameters (the converter reads
    original_max_position_embeddings from the top level, defaulting to 8192, which is what
    LLaMA 3.1 uses; the tiny fixture needs its own value)."""
    rp = cfg.rope_parameters
    base = rp["rope_theta"]
    dim = head_dim(cfg)
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor, low, high = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
    old_context_len = rp["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low
    high_freq_wavelen = old_context_len / high
    rope_factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            rope_factors.append(1)
        elif wavelen > low_freq_wavelen:
            rope_factors.append(factor)
        else:
            smooth = (old_context_len / wavelen - low) / (high - low)
            rope_factors.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(rope_factors, dtype=torch.float32)


FILE_TYPES = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
              "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}


def head_dim(cfg):
    return getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads


def write_gguf(model, arch_name, path, outtype, name):
    """Writes `model` as GGUF and returns the state dict (HF names and row order, float32) of the
    values the file actually holds, for computing expected outputs."""
    cfg = model.config
    arch = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}[arch_name]
    tmap = gguf.get_tensor_name_map(arch, cfg.num_hidden_layers)
    w = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[arch])
    w.add_name(name)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_key_length(head_dim(cfg))
    w.add_value_length(head_dim(cfg))
    if arch_name == "llama":
        w.add_vocab_size(cfg.vocab_size)
        w.add_rope_dimension_count(head_dim(cfg))
    w.add_file_type(FILE_TYPES[outtype])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    held = {}
    state = model.state_dict()
    if cfg.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # save_pretrained drops it too; llama.cpp falls back to token_embd
    n_head, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    for hf_name, t in state.items():
        data = t.to(torch.float32)
        permuted = None
        if arch_name == "llama":
            # convert_hf_to_gguf.py LlamaModel.modify_tensors (qwen2 is NEOX-style: no permutation).
            if hf_name.endswith(("q_proj.weight", "q_proj.bias")):
                permuted = n_head
                data = permute(data, n_head, n_head)
            if hf_name.endswith(("k_proj.weight", "k_proj.bias")):
                permuted = n_kv
                data = permute(data, n_head, n_kv)
        gg_name = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        assert gg_name is not None, hf_name
        arr = data.numpy()
        # As the converter does: 1-D tensors (norms, biases) stay F32.
        if arr.ndim <= 1 or outtype == "f32":
            w.add_tensor(gg_name, arr.astype(np.float32))
            stored = arr.astype(np.float32)
        elif outtype == "f16":
            w.add_tensor(gg_name, arr.astype(np.float16))
            stored = arr.astype(np.float16).astype(np.float32)
        else:
            q = gguf.quants.quantize(arr, QT.Q8_0)
            w.add_tensor(gg_name, q, raw_dtype=QT.Q8_0)
            stored = gguf.quants.dequantize(q, QT.Q8_0).astype(np.float32).reshape(arr.shape)
        stored = torch.from_numpy(np.ascontiguousarray(stored))
        if permuted is not None:
            stored = unpermute(stored, permuted)
        held[hf_name] = stored
    if cfg.rope_parameters.get("rope_type") == "llama3":
        w.add_tensor(gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", llama3_rope_factors(cfg).numpy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return held


# ---------------------------------------------------------------------------------------------
# Fixture sets


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


def save_hf(model, path, dtype=torch.float32, max_shard_size=None):
    # A copy: Module.to() converts in place, and rounding the original would leak into later variants.
    m = copy.deepcopy(model).to(dtype)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    m.save_pretrained(path, **kwargs)
    # The weights as stored, upcast: what the expected values must be computed on.
    return {k: v.detach().to(torch.float32).clone() for k, v in m.state_dict().items()}


def write_expected(path, meta, variants, sensitivity):
    doc = {
        "generator": "scripts/make_model_fixtures.py",
        "versions": VERSIONS,
        "tokens": TOKENS,
        "config": meta,
        "note": "logprobs[v][i-1] = log p(tokens[i] | tokens[:i]) by transformers (float32, eager) on the "
                "values variant v stores; logprobs_float64 is the same on float64 for reference.",
        "logprobs": {k: v[0] for k, v in variants.items()},
        "logprobs_float64": {k: v[1] for k, v in variants.items()},
        "float32_reference_error": {k: max_diff(v[0], v[1]) for k, v in variants.items()},
        "sensitivity": sensitivity,
    }
    with open(os.path.join(path, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def both(model):
    return log_probs(model), log_probs(model, torch.float64)


def make_llama_gqa():
    out = os.path.join(MODELS, "llama-gqa")
    fresh(out)
    model = llama_gqa()
    variants = {}
    save_hf(model, os.path.join(out, "hf-f32"))
    variants["hf-f32"] = both(model)
    bf16 = save_hf(model, os.path.join(out, "hf-bf16"), torch.bfloat16, max_shard_size="100KB")
    assert os.path.exists(os.path.join(out, "hf-bf16", "model.safetensors.index.json")), "BF16 copy is not sharded"
    variants["hf-bf16"] = both(with_state(model, bf16))
    for t in ("f32", "f16", "q8_0"):
        held = write_gguf(model, "llama", os.path.join(out, f"gguf-{t}.gguf"), t, "llama-gqa")
        variants[f"gguf-{t}"] = both(with_state(model, held))
    assert variants["gguf-f32"][0] == variants["hf-f32"][0]

    # What a reader that kept GGUF's interleaved rows but rotated half-split pairs would compute.
    cfg = model.config
    wrong = {k: v.clone() for k, v in model.state_dict().items()}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}.self_attn."
        wrong[p + "q_proj.weight"] = permute(wrong[p + "q_proj.weight"], cfg.num_attention_heads, cfg.num_attention_heads)
        wrong[p + "k_proj.weight"] = permute(wrong[p + "k_proj.weight"], cfg.num_attention_heads, cfg.num_key_value_heads)
    sensitivity = {"wrong_rope_pairing": max_diff(log_probs(with_state(model, wrong)), variants["hf-f32"][0])}
    meta = {"architecture": "llama", "dim": 64, "hidden_dim": 96, "layers": 2, "heads": 4, "kv_heads": 2,
            "head_dim": 16, "vocab": 128, "context": 64, "norm_eps": 1e-5, "rope_theta": 10000.0, "tied": False}
    write_expected(out, meta, variants, sensitivity)


def make_llama3_rope():
    out = os.path.join(MODELS, "llama3-rope")
    fresh(out)
    model = llama3_rope()
    save_hf(model, os.path.join(out, "hf-f32"))
    variants = {"hf-f32": both(model)}
    held = write_gguf(model, "llama", os.path.join(out, "gguf-f32.gguf"), "f32", "llama3-rope")
    variants["gguf-f32"] = both(with_state(model, held))
    plain = llama3_rope(scaling=False)
    plain.load_state_dict(model.state_dict())
    sensitivity = {"no_rope_scaling": max_diff(log_probs(plain), variants["hf-f32"][0])}
    meta = {"architecture": "llama", "dim": 64, "hidden_dim": 96, "layers": 2, "heads": 4, "kv_heads": 4,
            "head_dim": 16, "vocab": 128, "context": 256, "norm_eps": 1e-5, "rope_theta": 500000.0, "tied": False,
            "rope_scaling": LLAMA3_SCALING,
            "rope_freqs": [float(x) for x in llama3_rope_factors(model.config)],
            # transformers' own scaled inverse frequencies (float32), for checking the config mapping.
            "inv_freq": [float(x) for x in model.model.rotary_emb.inv_freq]}
    write_expected(out, meta, variants, sensitivity)


def make_qwen2_tied():
    out = os.path.join(MODELS, "qwen2-tied")
    fresh(out)
    model = qwen2_tied()
    save_hf(model, os.path.join(out, "hf-f32"))
    variants = {"hf-f32": both(model)}
    for t in ("f32", "f16", "q8_0"):
        held = write_gguf(model, "qwen2", os.path.join(out, f"gguf-{t}.gguf"), t, "qwen2-tied")
        variants[f"gguf-{t}"] = both(with_state(model, held))
    nobias = {k: (torch.zeros_like(v) if k.endswith(".bias") else v) for k, v in model.state_dict().items()}
    sensitivity = {"no_bias": max_diff(log_probs(with_state(model, nobias)), variants["hf-f32"][0])}
    meta = {"architecture": "qwen2", "dim": 64, "hidden_dim": 96, "layers": 2, "heads": 4, "kv_heads": 2,
            "head_dim": 16, "vocab": 128, "context": 128, "norm_eps": 1e-6, "rope_theta": 1000000.0, "tied": True}
    write_expected(out, meta, variants, sensitivity)


# ---------------------------------------------------------------------------------------------
# safetensors bytes


def st_value(k):
    """Exactly representable inputs, the same in Swift: float32(((k*37) % 101) - 50) / float32(7)."""
    return np.float32(((k * 37) % 101) - 50) / np.float32(7)


def make_safetensors():
    out = os.path.join(FIXTURES, "safetensors")
    fresh(out)
    # Names chosen so that the reference's order (element type, then name) differs from plain
    # name order; an empty tensor and a scalar cover the edge cases of offsets and shapes.
    specs = [("weight", torch.float32, [2, 3]), ("half", torch.float16, [5]), ("brain", torch.bfloat16, [3, 2, 2]),
             ("scalar", torch.float32, []), ("empty", torch.float32, [2, 0]), ("a/b.c", torch.bfloat16, [2])]
    tensors, doc, k = {}, {"generator": "scripts/make_model_fixtures.py (safetensors.torch.save_file)",
                           "versions": VERSIONS, "metadata": {"format": "pt"}, "value_rule":
                           "value of element j of the n-th tensor below = float32(((k*37) % 101) - 50) / float32(7), "
                           "k counting elements across tensors in this order", "tensors": []}, 0
    for name, dtype, shape in specs:
        n = int(np.prod(shape)) if shape else 1
        vals = np.array([st_value(k + j) for j in range(n)], dtype=np.float32).reshape(shape)
        k += n
        t = torch.from_numpy(vals).to(dtype)
        tensors[name] = t
        bits_dtype = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}[dtype]
        mask = 0xFFFFFFFF if dtype == torch.float32 else 0xFFFF
        doc["tensors"].append({
            "name": name, "dtype": {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}[dtype],
            "shape": shape, "inputs": [float(x) for x in vals.reshape(-1)],
            "bits": [int(b) & mask for b in t.reshape(-1).view(bits_dtype).tolist()],
            "values": [float(x) for x in t.to(torch.float32).reshape(-1).tolist()]})
    save_file(tensors, os.path.join(out, "python.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out, "python.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def check_folder(path):
    """Loads a model folder (e.g. one written by Balcony's RandomModel) with transformers and prints
    its log-probabilities of TOKENS (taken modulo the vocabulary) as JSON, to compare by hand with
    Balcony's forward pass on the same folder."""
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    vocab = model.config.vocab_size
    global TOKENS
    TOKENS = [t % vocab for t in TOKENS]
    print(json.dumps({"tokens": TOKENS, "logprobs": log_probs(model)}))


if __name__ == "__main__":
    import sys
    torch.set_num_threads(1)  # deterministic reductions
    if len(sys.argv) == 3 and sys.argv[1] == "--check-folder":
        check_folder(sys.argv[2])
        sys.exit(0)
    make_safetensors()
    make_llama_gqa()
    make_llama3_rope()
    make_qwen2_tied()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(FIXTURES) for f in fs)
    print(f"fixtures: {total / 1e6:.2f} MB")
