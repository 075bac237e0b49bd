#!/usr/bin/env python3
"""Cross-implementation fixtures for Balcony's reader of the authors' balcony checkpoints.

The authors' reference (`NestedLlamaForCausalLM`) keeps one `nn.ModuleList([decoder layer, RMSNorm])`
per exit in `model.exit_modules`, so PyTorch names balcony i (in the order of
`config.exit_layer_indices`) `model.exit_modules.{i}.0.<decoder layer>` and
`model.exit_modules.{i}.1.weight`. This script builds exactly that module structure on a tiny
transformers LlamaForCausalLM, fills the balconies from a fixed seed, and saves it the way their
training script does (`save_pretrained`: the whole model, base tensors included, plus config.json
with the exit fields). Nothing here uses Balcony's code. Writes, under
Tests/BalconyCoreTests/Fixtures/balcony/:

authors/                      save_pretrained output: config.json (exit_layer_indices [1, 3],
                              exit_decoder_layer, tie_exit_lm_head) + model.safetensors (F32)
authors-bf16-exits-only.safetensors   only the balcony tensors, BF16, no metadata (exits passed
                              explicitly by the test)
expected.json                 per exit: every tensor's shape and float64 sum, values at fixed flat
                              indices (HF row order), and q/k values at the same indices after
                              llama.cpp's convert_hf_to_gguf permutation to interleaved RoPE rows;
                              the BF16 file's values (upcast) at the same indices

Run: python3 scripts/make_balcony_fixtures.py   (torch, transformers, safetensors)
"""
import json
import os
from importlib.metadata import version

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRMSNorm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "BalconyCoreTests", "Fixtures", "balcony")
EXITS = [1, 3]
SAMPLE_INDICES = [0, 1, 7, 8, 13, 31, 32, 100, 255, 256, 511]


def hf_to_interleaved(w, n_head):
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute: HF half-split rows -> interleaved rows."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(20250305)
    config = LlamaConfig(
        hidden_size=32, intermediate_size=48, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=64, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    # The authors' structure: model.model.exit_modules[i] = ModuleList([decoder layer, exit norm]).
    model.model.exit_modules = torch.nn.ModuleList(
        torch.nn.ModuleList([LlamaDecoderLayer(config, config.num_hidden_layers + i), LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)])
        for i in range(len(EXITS))
    )
    with torch.no_grad():
        for name, p in model.model.exit_modules.named_parameters():
            if name.endswith("norm.weight") or name.endswith("1.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    config.exit_layer_indices = EXITS
    config.output_exit_layers = EXITS
    config.output_full_model = True
    config.exit_decoder_layer = True
    config.tie_exit_lm_head = True

    authors = os.path.join(OUT, "authors")
    model.save_pretrained(authors, safe_serialization=True)
    for extra in ("generation_config.json",):
        path = os.path.join(authors, extra)
        if os.path.exists(path):
            os.remove(path)

    state = {k: v for k, v in model.state_dict().items() if k.startswith("model.exit_modules.")}
    bf16 = {k: v.to(torch.bfloat16).contiguous() for k, v in state.items()}
    save_file(bf16, os.path.join(OUT, "authors-bf16-exits-only.safetensors"))

    heads = {"self_attn.q_proj.weight": config.num_attention_heads, "self_attn.k_proj.weight": config.num_key_value_heads}
    expected = {"versions": {p: version(p) for p in ("torch", "transformers", "safetensors")},
                "exits": EXITS, "sample_indices": SAMPLE_INDICES, "balconies": []}
    for i, exit_depth in enumerate(EXITS):
        tensors = {}
        for name, t in sorted(state.items()):
            prefix = f"model.exit_modules.{i}."
            if not name.startswith(prefix):
                continue
            rel = name[len(prefix):]
            flat = t.detach().reshape(-1)
            idx = [j for j in SAMPLE_INDICES if j < flat.numel()]
            entry = {
                "shape": list(t.shape),
                "sum": float(t.double().sum()),
                "values": [float(flat[j]) for j in idx],
                "bf16_values": [float(bf16[name].float().reshape(-1)[j]) for j in idx],
            }
            short = rel[2:] if rel.startswith("0.") else None
            if short in heads:
                inter = hf_to_interleaved(t.detach(), heads[short]).reshape(-1)
                entry["interleaved_values"] = [float(inter[j]) for j in idx]
            tensors[rel] = entry
        expected["balconies"].append({"exit": exit_depth, "tensors": tensors})
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
