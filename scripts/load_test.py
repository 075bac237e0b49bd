#!/usr/bin/env python3
"""Load tests against a running `balcony serve` (pip install openai).

Batching: N clients one at a time, then N at once, same requests; total tokens/s of each.

    python3 scripts/load_test.py batching --base-url http://127.0.0.1:8080/v1 --clients 8 --max-tokens 64

SLO adaptation: concurrency raised step by step and lowered again; per step the exits the server chose
(from the streamed chunks' `balcony.exit`), p50/p95 time between tokens seen by the clients, and total
tokens/s. Start the server with `--policy slo --target-token-ms X`.

    python3 scripts/load_test.py slo --base-url http://127.0.0.1:8080/v1 --levels 1,2,4,8,16,8,2,1 --seconds 20

Prints markdown tables (and --json FILE writes the raw figures).
"""
import argparse
import asyncio
import collections
import json
import statistics
import time

import openai

PROMPTS = ["Once upon a time", "The little dog", "Tom and Lily", "One day, a big", "She was sad because",
           "The sun was", "Max liked to", "In the park,", "A bird sang", "Mom said,", "They went to the",
           "The cat and the mouse", "It was a rainy day.", "Ben had a red", "Sue found a", "The old man"]


async def one_request(client, i, max_tokens, extra=None):
    """Streams one greedy completion; returns (tokens, per-token gaps in s, exits per chunk)."""
    t0 = time.perf_counter()
    stream = await client.completions.create(model="any", prompt=PROMPTS[i % len(PROMPTS)], max_tokens=max_tokens,
                                             temperature=0, stream=True, stream_options={"include_usage": True},
                                             extra_body=extra or {})
    last, gaps, exits, tokens = None, [], [], 0
    async for ch in stream:
        now = time.perf_counter()
        if ch.choices and ch.choices[0].text:
            if last is not None:
                gaps.append(now - last)
            last = now
            exits.append(((ch.model_extra or {}).get("balcony") or {}).get("exit", "?"))
        if ch.usage:
            tokens = ch.usage.completion_tokens
    return tokens, gaps, exits, time.perf_counter() - t0


def percentile(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def batching(args):
    client = openai.AsyncOpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=600)
    await one_request(client, 0, 4)  # warm up
    t = time.perf_counter()
    seq = [await one_request(client, i, args.max_tokens) for i in range(args.clients)]
    t_seq = time.perf_counter() - t
    t = time.perf_counter()
    par = await asyncio.gather(*(one_request(client, i, args.max_tokens) for i in range(args.clients)))
    t_par = time.perf_counter() - t
    await client.close()
    n_seq, n_par = sum(r[0] for r in seq), sum(r[0] for r in par)
    rows = {"clients": args.clients, "max_tokens": args.max_tokens,
            "sequential_tokens_per_s": n_seq / t_seq, "concurrent_tokens_per_s": n_par / t_par,
            "speedup": (n_par / t_par) / (n_seq / t_seq),
            "sequential_p50_token_ms": 1000 * percentile([g for r in seq for g in r[1]], 0.5),
            "concurrent_p50_token_ms": 1000 * percentile([g for r in par for g in r[1]], 0.5)}
    print(f"| clients | one at a time, tokens/s | all at once, tokens/s | speedup | p50 token ms alone | p50 token ms together |")
    print(f"|---|---|---|---|---|---|")
    print(f"| {args.clients} | {rows['sequential_tokens_per_s']:.1f} | {rows['concurrent_tokens_per_s']:.1f} | "
          f"{rows['speedup']:.2f}x | {rows['sequential_p50_token_ms']:.1f} | {rows['concurrent_p50_token_ms']:.1f} |")
    return rows


async def slo(args):
    client = openai.AsyncOpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=600)
    await one_request(client, 0, 4)
    results = []
    print("| step | clients | exits chosen (share of tokens) | p50 token ms | p95 token ms | tokens/s |")
    print("|---|---|---|---|---|---|")
    for step, level in enumerate(int(x) for x in args.levels.split(",")):
        stop_at = time.perf_counter() + args.seconds
        gaps, exits, tokens = [], collections.Counter(), 0

        async def client_loop(c):
            nonlocal tokens
            i = c
            while time.perf_counter() < stop_at:
                n, g, e, _ = await one_request(client, i, args.max_tokens)
                tokens += n
                gaps.extend(g)
                exits.update(e)
                i += level

        t = time.perf_counter()
        await asyncio.gather(*(client_loop(c) for c in range(level)))
        wall = time.perf_counter() - t
        total = sum(exits.values()) or 1
        share = ", ".join(f"{k}: {100 * v / total:.0f}%" for k, v in sorted(exits.items(), key=lambda kv: -kv[1]))
        row = {"step": step + 1, "clients": level, "exits": dict(exits), "p50_ms": 1000 * percentile(gaps, 0.5),
               "p95_ms": 1000 * percentile(gaps, 0.95), "tokens_per_s": tokens / wall}
        results.append(row)
        print(f"| {row['step']} | {level} | {share} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['tokens_per_s']:.1f} |", flush=True)
    await client.close()
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["batching", "slo"])
    p.add_argument("--base-url", default="http://127.0.0.1:8080/v1")
    p.add_argument("--api-key", default="none")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--levels", default="1,2,4,8,16,8,4,2,1")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--json")
    args = p.parse_args()
    result = asyncio.run(batching(args) if args.mode == "batching" else slo(args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
