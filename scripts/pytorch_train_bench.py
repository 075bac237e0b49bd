#!/usr/bin/env python3
"""PyTorch reference for `balcony bench --train`: the same balcony training step in eager float32.

Frozen LLaMA-shaped base (random weights: speed depends on shapes only), one balcony (a decoder
layer copied from the last base layer plus an RMSNorm) per exit, loss = mean over exits of the
per-token KL(full || exit), AdamW, gradient clipping at 1.0. Prints tokens/s (median of the measured
steps) with the time in the frozen forward, the balconies and the head/KL, and an SGEMM
(1024^3) measured in the same run, so that both implementations can be compared under the same
machine load.

    python3 scripts/pytorch_train_bench.py --preset stories260k --threads 2
    python3 scripts/pytorch_train_bench.py --preset llama110m --threads 2 --steps 2
"""
import argparse
import copy
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    # dim, layers, heads, kv heads, hidden, vocab, exits, batch, seq
    "stories260k": dict(dim=64, layers=5, heads=8, kv_heads=4, hidden=172, vocab=512, exits=[1, 2, 3, 4], batch=16, seq=256),
    "llama110m": dict(dim=768, layers=12, heads=12, kv_heads=12, hidden=2048, vocab=32000, exits=[3, 6, 9], batch=4, seq=512),
}


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin):
    # x: [B, H, T, hd], half-split pairing (Hugging Face).
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hd = c["dim"], c["dim"] // c["heads"]
        self.heads, self.kv_heads, self.hd = c["heads"], c["kv_heads"], hd
        self.attention_norm = RMSNorm(d)
        self.wq = nn.Linear(d, c["heads"] * hd, bias=False)
        self.wk = nn.Linear(d, c["kv_heads"] * hd, bias=False)
        self.wv = nn.Linear(d, c["kv_heads"] * hd, bias=False)
        self.wo = nn.Linear(c["heads"] * hd, d, bias=False)
        self.ffn_norm = RMSNorm(d)
        self.gate = nn.Linear(d, c["hidden"], bias=False)
        self.up = nn.Linear(d, c["hidden"], bias=False)
        self.down = nn.Linear(c["hidden"], d, bias=False)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        h = self.attention_norm(x)
        q = self.wq(h).view(b, t, self.heads, self.hd).transpose(1, 2)
        k = self.wk(h).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        v = self.wv(h).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.wo(a.transpose(1, 2).reshape(b, t, -1))
        h = self.ffn_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=sorted(PRESETS), default="stories260k")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c = PRESETS[a.preset]
    d, hd = c["dim"], c["dim"] // c["heads"]
    emb = nn.Embedding(c["vocab"], d)
    layers = nn.ModuleList([Layer(c) for _ in range(c["layers"])])
    final_norm = RMSNorm(d)
    head = nn.Linear(d, c["vocab"], bias=False)
    for p in list(emb.parameters()) + list(layers.parameters()) + list(final_norm.parameters()) + list(head.parameters()):
        p.requires_grad_(False)
    balconies = nn.ModuleList([nn.ModuleDict({"layer": copy.deepcopy(layers[-1]), "norm": RMSNorm(d)}) for _ in c["exits"]])
    for p in balconies.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(balconies.parameters(), lr=1e-3, weight_decay=0)
    t = c["seq"]
    inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
    ang = torch.outer(torch.arange(t).float(), inv)
    cos, sin = ang.cos(), ang.sin()

    def step():
        tokens = torch.randint(0, c["vocab"], (c["batch"], t))
        t0 = time.perf_counter()
        with torch.no_grad():
            x = emb(tokens)
            hidden = {}
            for i, layer in enumerate(layers):
                if i in c["exits"]:
                    hidden[i] = x
                x = layer(x, cos, sin)
            teacher = final_norm(x)
        t1 = time.perf_counter()
        outs = [b["norm"](b["layer"](hidden[k], cos, sin)) for b, k in zip(balconies, c["exits"])]
        t2 = time.perf_counter()
        with torch.no_grad():
            log_p = F.log_softmax(head(teacher), dim=-1)
        loss = sum(F.kl_div(F.log_softmax(head(o), dim=-1), log_p, log_target=True, reduction="none").sum(-1).mean()
                   for o in outs) / len(outs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(balconies.parameters(), 1.0)
        opt.step()
        t3 = time.perf_counter()
        return t3 - t0, t1 - t0, t2 - t1, t3 - t2

    def gemm():
        m = torch.randn(1024, 1024)
        n = torch.randn(1024, 1024)
        m @ n
        ts = []
        for _ in range(3):
            s = time.perf_counter()
            m @ n
            ts.append(time.perf_counter() - s)
        return 2 * 1024 ** 3 / statistics.median(ts) / 1e9

    rates = [gemm()]
    step()
    times = [step() for _ in range(a.steps)]
    rates.append(gemm())
    med = [statistics.median(x[i] for x in times) for i in range(4)]
    n = c["batch"] * t
    r = dict(preset=a.preset, threads=a.threads, tokens_per_s=n / med[0], step_s=med[0], teacher_s=med[1],
             balcony_forward_s=med[2], loss_backward_optimizer_s=med[3], gemm_gflops=statistics.median(rates))
    if a.json:
        print(json.dumps(r))
    else:
        print(f"pytorch {torch.__version__} {a.preset}: {r['tokens_per_s']:.0f} tokens/s, step {med[0]:.3f} s "
              f"(teacher {med[1]:.3f}, balcony forward {med[2]:.3f}, loss+backward+AdamW {med[3]:.3f}); "
              f"SGEMM {r['gemm_gflops']:.1f} GFLOP/s, {a.threads} threads")


if __name__ == "__main__":
    main()
