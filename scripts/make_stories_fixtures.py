#!/usr/bin/env python3
"""Expected outputs for stories260K from independent implementations.

Loads ../shared/models/stories260K/stories260K.bin (llama2.c v0 layout) into Hugging Face
transformers' LlamaForCausalLM -- permuting q/k rows from llama2.c's interleaved RoPE order into
HF's half-split order, as transformers' conversion scripts do -- and tokenizes with the
`sentencepiece` package (tok512.model). Writes Tests/BalconyCLITests/Fixtures/stories260K.json:
greedy continuations of a few prompts and per-token log-probabilities of a text.

Run: python3 scripts/make_stories_fixtures.py   (needs torch, transformers, sentencepiece, numpy)
"""
import json
import os
import struct

import numpy as np
import sentencepiece as spm
import torch
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "models", "stories260K")
OUT = os.path.join(ROOT, "Tests", "BalconyCLITests", "Fixtures", "stories260K.json")


def load_llama2c(path):
    data = open(path, "rb").read()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack("<7i", data[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    f = np.frombuffer(data[28:], dtype="<f4")
    head = dim // heads
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        t = f[off:off + n].reshape(shape)
        off += n
        return t.copy()

    w = {"emb": take(vocab, dim), "att_norm": take(layers, dim), "wq": take(layers, heads * head, dim),
         "wk": take(layers, kv_heads * head, dim), "wv": take(layers, kv_heads * head, dim),
         "wo": take(layers, dim, heads * head), "ffn_norm": take(layers, dim), "w1": take(layers, hidden, dim),
         "w2": take(layers, dim, hidden), "w3": take(layers, hidden, dim), "norm": take(dim)}
    take(seq_len, head // 2)
    take(seq_len, head // 2)
    w["out"] = w["emb"] if shared else take(vocab, dim)
    cfg = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, vocab=vocab, seq_len=seq_len)
    return cfg, w


def to_hf_rows(w, n_heads, head_dim):
    """Interleaved-pair rows -> HF half-split rows (transformers' `permute` in convert_llama_weights_to_hf)."""
    dim_in = w.shape[1]
    return w.reshape(n_heads, head_dim // 2, 2, dim_in).transpose(0, 2, 1, 3).reshape(n_heads * head_dim, dim_in)


def build_hf(cfg, w):
    c = LlamaConfig(vocab_size=cfg["vocab"], hidden_size=cfg["dim"], intermediate_size=cfg["hidden"],
                    num_hidden_layers=cfg["layers"], num_attention_heads=cfg["heads"],
                    num_key_value_heads=cfg["kv_heads"], max_position_embeddings=cfg["seq_len"],
                    rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
                    bos_token_id=1, eos_token_id=2)
    m = LlamaForCausalLM(c).eval()
    head = cfg["dim"] // cfg["heads"]
    sd = {"model.embed_tokens.weight": w["emb"], "model.norm.weight": w["norm"], "lm_head.weight": w["out"]}
    for i in range(cfg["layers"]):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = w["att_norm"][i]
        sd[p + "self_attn.q_proj.weight"] = to_hf_rows(w["wq"][i], cfg["heads"], head)
        sd[p + "self_attn.k_proj.weight"] = to_hf_rows(w["wk"][i], cfg["kv_heads"], head)
        sd[p + "self_attn.v_proj.weight"] = w["wv"][i]
        sd[p + "self_attn.o_proj.weight"] = w["wo"][i]
        sd[p + "post_attention_layernorm.weight"] = w["ffn_norm"][i]
        sd[p + "mlp.gate_proj.weight"] = w["w1"][i]
        sd[p + "mlp.down_proj.weight"] = w["w2"][i]
        sd[p + "mlp.up_proj.weight"] = w["w3"][i]
    m.load_state_dict({k: torch.tensor(v) for k, v in sd.items()}, strict=True)
    return m


def greedy(m, ids, n):
    ids = list(ids)
    out = []
    with torch.no_grad():
        for _ in range(n):
            logits = m(torch.tensor([ids])).logits[0, -1]
            nxt = int(torch.argmax(logits))
            if nxt == 2:
                break
            out.append(nxt)
            ids.append(nxt)
    return out


def main():
    cfg, w = load_llama2c(os.path.join(SHARED, "stories260K.bin"))
    m = build_hf(cfg, w)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(SHARED, "tok512.model"))
    # Sanity: reproduce llama2.c's own greedy output from BOS before trusting anything else.
    bos_ids = greedy(m, [1], 256)
    golden = open(os.path.join(SHARED, "greedy-bos-255.txt"), encoding="utf-8").read()
    assert sp.decode(bos_ids) + "\n" == golden, "HF port does not reproduce llama2.c's golden output"

    prompts = ["Once upon a time", "The little dog", "Tom and Lily went to the park. They", "One day, a big"]
    cases = []
    for p in prompts:
        ids = [1] + sp.encode(p)
        cont = greedy(m, ids, 48)
        # The continuation text is the pieces of the new tokens after the prompt: decode the whole
        # sequence and strip the decoded prompt (sentencepiece keeps the space of the first new piece).
        full = sp.decode(ids[1:] + cont)
        text = full[len(sp.decode(ids[1:])):]
        cases.append({"prompt": p, "prompt_ids": ids, "ids": cont, "text": text})

    score_text = "Lily saw a big red ball in the park. She wanted to play with it."
    ids = [1] + sp.encode(score_text)
    with torch.no_grad():
        logp = torch.log_softmax(m(torch.tensor([ids])).logits[0].double(), dim=-1)
    nll = [-float(logp[i - 1, ids[i]]) for i in range(1, len(ids))]
    out = {"source": "transformers LlamaForCausalLM on stories260K.bin (q/k rows permuted to HF order), sentencepiece tok512.model",
           "greedy_bos_ids": bos_ids, "prompts": cases,
           "score": {"text": score_text, "ids": ids, "nll": nll, "mean_nll": float(np.mean(nll)), "perplexity": float(np.exp(np.mean(nll)))}}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        json.dump(out, fh, indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
