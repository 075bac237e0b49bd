#!/usr/bin/env python3
"""Expected values for `balcony eval`, from implementations independent of Balcony's code.

Model: ../shared/models/stories260K/stories260K.bin loaded into Hugging Face transformers'
LlamaForCausalLM (q/k rows permuted to HF order, as scripts/make_stories_fixtures.py does, which
checks the port against llama2.c's golden output); tokenizer: the `sentencepiece` package on
tok512.model with its normalizer's `remove_extra_whitespaces` turned off, as llama.cpp and Hugging
Face's LLaMA tokenizers do (sentencepiece's default would fold the double spaces that the
harness's context/continuation split and HellaSwag's preprocessing produce). Writes, under Tests/BalconyCoreTests/Fixtures/eval/:

  generic.jsonl                 {"context", "choices", "label"} items (Balcony's own layout)
  hellaswag.jsonl               Rowan Zellers' hellaswag_val.jsonl layout
  arc.jsonl, arc-hf.jsonl       AI2's ARC-*-Dev.jsonl layout, and the Hugging Face rows layout
  piqa.jsonl + piqa-labels.lst  PIQA's valid.jsonl + valid-labels.lst layout (labels apart)
  winogrande.jsonl              WinoGrande's dev.jsonl layout
  expected.json                 per file and item: the (context, continuation) pairs, their token
                                ids, the log-likelihood and is_greedy of every choice, and the
                                lm-evaluation-harness choice for acc / acc_norm; plus the Block
                                Influence of every layer over a calibration text.

Scoring follows EleutherAI's lm-evaluation-harness (v0.4.x): prompt formats from its task YAMLs
and utils (hellaswag `preprocess`, winogrande partial scoring, ARC/PIQA "Question: ...\\nAnswer:"),
`HFLM._encode_pair` for the token split, `_loglikelihood_tokens` for the sum of log-probabilities
and is_greedy, and `ConfigurableTask.process_results` for acc (argmax) and acc_norm (argmax of
log-likelihood / len(choice)); with a BOS token in front (the harness's add_bos_token=True).

Block Influence (ShortGPT, Men et al. 2024): BI_i = 1 - mean over positions of
cos(input of layer i, output of layer i), taken with forward hooks on the HF decoder layers, over
the first CAL_TOKENS tokens of ../shared/data/tinystories/heldout.txt (BOS + sentencepiece ids) in
non-overlapping windows of 512, in float64.

Run: python3 scripts/make_eval_fixtures.py   (torch, transformers, sentencepiece, numpy; imports the
     helpers of make_stories_fixtures.py and make_tokenizer_fixtures.py, so also `tokenizers`, `gguf`)
"""
import json
import os
import re
import sys

import numpy as np
import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_stories_fixtures import SHARED, build_hf, load_llama2c  # noqa: E402
from make_tokenizer_fixtures import without_extra_whitespace_removal  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "BalconyCoreTests", "Fixtures", "eval")
HELDOUT = os.path.join(ROOT, "..", "shared", "data", "tinystories", "heldout.txt")
CAL_TOKENS = 1200
WINDOW = 512
FEWSHOT = 2
SEED = 1234

# ---------------------------------------------------------------------------------------------
# Task items, in the published layouts (written out as they are, read back by Balcony's adapters).

GENERIC = [
    {"context": "Lily went to the park with her mom. She saw a big red", "choices": ["ball", "car", "sky", "cat"], "label": 0},
    {"context": "Tom was very sad because he lost his toy. He cried and", "choices": ["cried", "laughed loudly at the moon", "ate a rock"], "label": 0},
    {"context": "Once upon a time, there was a little", "choices": ["girl", "table", "sun went"], "label": 0},
    {"context": "The dog was hungry. It wanted to eat some", "choices": ["food", "shoes", "music"], "label": 0},
    {"context": "Sam and Sue played in the snow. It was very ", "choices": ["cold", "hot", "loud"], "label": 0},
    {"context": "Mom said, \"Time for bed!\" Lily put on her", "choices": ["pajamas", "boots", "car"], "label": 0},
    {"context": "The bird flew up into the", "choices": ["sky", "floor", "box"], "label": 2},
    {"context": "Ben found a shiny coin on the ground.\nHe", "choices": ["picked it up", "flew away", "was a tree"], "label": 0},
]

HELLASWAG = [
    {"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he",
     "ctx": "A man is sitting on a roof. he", "split": "val", "split_type": "indomain", "label": 3,
     "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                 "is holding a rubik's cube.", "starts pulling up roofing on a roof."], "source_id": "activitynet~v_-JhWjGDPHMY"},
    {"ind": 92, "activity_label": "Clean and jerk", "ctx_a": "A lady walks to a barbell. She bends down and grabs the pole.",
     "ctx_b": "the lady", "ctx": "A lady walks to a barbell. She bends down and grabs the pole. the lady", "split": "val",
     "split_type": "indomain", "label": 3,
     "endings": ["swings and lands in her arms.", "pulls the barbell forward.", "pulls a rope attached to the barbell.",
                 "stands and lifts the weight over her head."], "source_id": "activitynet~v_-lJS58hyo1c"},
    {"ind": 4004, "activity_label": "Home and Garden", "ctx_a": "[header] How to plant a tree [title] Dig a hole.",
     "ctx_b": "[step] Make It wide [title] Water the roots.", "ctx": "", "split": "val", "split_type": "zeroshot", "label": 1,
     "endings": ["[substeps] The dog ran.", "Put the tree in the hole [title] Fill it with soil.", "The sun sings.", "A car."],
     "source_id": "wikihow~1"},
]

ARC = [
    {"id": "Mercury_7175875", "question": {"stem": "An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely effect of this increase in rotation?",
     "choices": [{"text": "Planetary density will decrease.", "label": "A"}, {"text": "Planetary years will become longer.", "label": "B"},
                 {"text": "Planetary days will become shorter.", "label": "C"}, {"text": "Planetary gravity will become stronger.", "label": "D"}]},
     "answerKey": "C"},
    {"id": "Mercury_SC_409171", "question": {"stem": "Which of these do plants need to make food?",
     "choices": [{"text": "sunlight", "label": "1"}, {"text": "sand", "label": "2"}, {"text": "music", "label": "3"}]},
     "answerKey": "1"},
]

ARC_HF = [
    {"id": "Mercury_SC_400001", "question": "What does a dog like to eat?",
     "choices": {"text": ["a bone", "a rock", "the sky"], "label": ["A", "B", "C"]}, "answerKey": "A"},
    {"id": "Mercury_SC_400002", "question": "Where do fish live?",
     "choices": {"text": ["in trees", "in water", "in a car", "on the moon"], "label": ["A", "B", "C", "D"]}, "answerKey": "B"},
]

PIQA = [
    {"goal": "How do I ready a guinea pig cage for it's new occupants?",
     "sol1": "Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper strips, you will also need to supply it with a water bottle and a food dish.",
     "sol2": "Provide the guinea pig with a cage full of a few inches of bedding made of ripped jeans material, you will also need to supply it with a water bottle and a food dish."},
    {"goal": "To make a cake,", "sol1": "mix flour, eggs and sugar, then bake it.", "sol2": "mix flour, eggs and sugar, then freeze the oven."},
]
PIQA_LABELS = [0, 0]

WINOGRANDE = [
    {"qID": "1", "sentence": "Lily gave the ball to Tom because _ wanted to play with it.", "option1": "Lily", "option2": "Tom", "answer": "2"},
    {"qID": "2", "sentence": "The cat could not fit in the box because the _ was too small.", "option1": "cat", "option2": "box", "answer": "2"},
    {"qID": "3", "sentence": "Sue was happy and Ben was sad, so _ smiled all day.", "option1": "Sue", "option2": "Ben", "answer": "1"},
]


# ---------------------------------------------------------------------------------------------
# lm-evaluation-harness's prompt formats (tasks/*/*.yaml and utils), as (context, continuation,
# normalizer) per choice plus the gold index.

def hellaswag_preprocess(text):
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    text = text.replace("  ", " ")
    return text


def default_mc(context, choices, gold):
    # target_delimiter " " between the context and every choice
    return [(context, " " + c, c) for c in choices], gold


def doc(fmt, d, label=None):
    if fmt == "generic":
        return default_mc(d["context"], d["choices"], d["label"])
    if fmt == "hellaswag":
        ctx = d["ctx_a"] + " " + d["ctx_b"].capitalize()
        return default_mc(hellaswag_preprocess(d["activity_label"] + ": " + ctx), [hellaswag_preprocess(e) for e in d["endings"]], int(d["label"]))
    if fmt == "arc":
        q = d["question"]
        if isinstance(q, dict):
            stem, texts, labels = q["stem"], [c["text"] for c in q["choices"]], [c["label"] for c in q["choices"]]
        else:
            stem, texts, labels = q, d["choices"]["text"], d["choices"]["label"]
        return default_mc(f"Question: {stem}\nAnswer:", texts, labels.index(d["answerKey"]))
    if fmt == "piqa":
        return default_mc(f"Question: {d['goal']}\nAnswer:", [d["sol1"], d["sol2"]], label)
    if fmt == "winogrande":
        idx = d["sentence"].index("_")
        target = d["sentence"][idx + 1:].strip()
        contexts = [d["sentence"][:idx] + o for o in (d["option1"], d["option2"])]
        return [(c, " " + target, " " + target) for c in contexts], {"1": 0, "2": 1}[d["answer"]]
    raise ValueError(fmt)


# ---------------------------------------------------------------------------------------------
# Few-shot draws: SplitMix64 (Steele et al.), one generator per task advanced item by item; shot
# i is drawn uniformly (next() % len(pool)) from the items not yet drawn, the item itself excluded.

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


def fewshot_prefixes(solved, shots, seed):
    if shots == 0 or len(solved) < 2:
        return [""] * len(solved)
    rng = SplitMix64(seed)
    out = []
    for i in range(len(solved)):
        pool = [j for j in range(len(solved)) if j != i]
        picked = []
        while len(picked) < min(shots, len(pool)):
            picked.append(pool.pop(rng.next() % len(pool)))
        out.append("".join(solved[j] + "\n\n" for j in picked))
    return out


# ---------------------------------------------------------------------------------------------
# Scoring (HFLM._encode_pair, _loglikelihood_tokens, ConfigurableTask.process_results)

def encode_pair(sp, context, continuation):
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    if context == "":
        return [1], sp.encode(continuation)
    whole = sp.encode(context + continuation)
    ctx = sp.encode(context)
    return [1] + ctx, whole[len(ctx):]


def loglikelihood(model, ctx, cont, max_length):
    inp = (ctx + cont)[-(max_length + 1):][:-1]
    with torch.no_grad():
        logits = model(torch.tensor([inp])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)[len(inp) - len(cont):]
    target = torch.tensor(cont)
    greedy = bool((logp.argmax(dim=-1) == target).all())
    return float(logp[torch.arange(len(cont)), target].sum()), greedy


def score_file(model, sp, fmt, docs, labels=None, shots=0):
    items = [doc(fmt, d, labels[i] if labels else None) for i, d in enumerate(docs)]
    solved = [ch[g][0] + ch[g][1] for ch, g in items]
    prefixes = fewshot_prefixes(solved, shots, SEED)
    out = []
    for (choices, gold), prefix in zip(items, prefixes):
        rows = []
        for ctx_text, cont_text, _ in choices:
            ctx, cont = encode_pair(sp, prefix + ctx_text, cont_text)
            ll, greedy = loglikelihood(model, ctx, cont, 512)
            rows.append({"context": prefix + ctx_text, "continuation": cont_text, "context_ids": ctx, "continuation_ids": cont,
                         "loglikelihood": ll, "is_greedy": greedy})
        lls = np.array([r["loglikelihood"] for r in rows])
        lens = np.array([float(len(n.encode("utf-8"))) for _, _, n in choices])
        out.append({"label": gold, "choices": rows, "acc_choice": int(np.argmax(lls)), "acc_norm_choice": int(np.argmax(lls / lens)),
                    "margin": float(np.sort(lls)[-1] - np.sort(lls)[-2])})
    acc = float(np.mean([o["acc_choice"] == o["label"] for o in out]))
    acc_norm = float(np.mean([o["acc_norm_choice"] == o["label"] for o in out]))
    return {"format": fmt, "num_fewshot": shots, "seed": SEED, "items": out, "acc": acc, "acc_norm": acc_norm}


def block_influence(model, ids):
    layers = model.model.layers
    sums = np.zeros(len(layers))
    count = 0
    captured = {}

    def hook(i):
        def f(module, args, kwargs, output):
            x = args[0] if args else kwargs["hidden_states"]
            y = output[0] if isinstance(output, tuple) else output
            captured[i] = (x[0].double(), y[0].double())
        return f

    handles = [layer.register_forward_hook(hook(i), with_kwargs=True) for i, layer in enumerate(layers)]
    with torch.no_grad():
        for start in range(0, len(ids), WINDOW):
            win = ids[start:start + WINDOW]
            model(torch.tensor([win]))
            for i in range(len(layers)):
                x, y = captured[i]
                sums[i] += float((1 - torch.nn.functional.cosine_similarity(x, y, dim=-1)).sum())
            count += len(win)
    for h in handles:
        h.remove()
    bi = sums / count
    order = sorted(range(len(bi)), key=lambda i: (bi[i], -i))  # least influential first; ties: later layer first
    kept = {str(k): sorted(set(range(len(bi))) - set(order[:len(bi) - k])) for k in range(1, len(bi))}
    return {"file": "data/tinystories/heldout.txt", "tokens": len(ids), "window": WINDOW, "scores": bi.tolist(),
            "removal_order": order, "kept": kept}


def write_jsonl(name, rows):
    with open(os.path.join(OUT, name), "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")


def main():
    cfg, w = load_llama2c(os.path.join(SHARED, "stories260K.bin"))
    model = build_hf(cfg, w)
    model.config._attn_implementation = "eager"
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(without_extra_whitespace_removal(open(os.path.join(SHARED, "tok512.model"), "rb").read()))
    assert sp.encode("very  cold") == [399, 410, 280, 414, 341], "double spaces are kept"
    os.makedirs(OUT, exist_ok=True)
    write_jsonl("generic.jsonl", GENERIC)
    write_jsonl("hellaswag.jsonl", HELLASWAG)
    write_jsonl("arc.jsonl", ARC)
    write_jsonl("arc-hf.jsonl", ARC_HF)
    write_jsonl("piqa.jsonl", PIQA)
    with open(os.path.join(OUT, "piqa-labels.lst"), "w") as fh:
        fh.write("".join(f"{l}\n" for l in PIQA_LABELS))
    write_jsonl("winogrande.jsonl", WINOGRANDE)

    tasks = {
        "generic.jsonl": score_file(model, sp, "generic", GENERIC),
        "generic.jsonl@2-shot": score_file(model, sp, "generic", GENERIC, shots=FEWSHOT),
        "hellaswag.jsonl": score_file(model, sp, "hellaswag", HELLASWAG),
        "arc.jsonl": score_file(model, sp, "arc", ARC),
        "arc-hf.jsonl": score_file(model, sp, "arc", ARC_HF),
        "piqa.jsonl": score_file(model, sp, "piqa", PIQA, labels=PIQA_LABELS),
        "winogrande.jsonl": score_file(model, sp, "winogrande", WINOGRANDE),
    }
    text = open(HELDOUT, encoding="utf-8").read()
    ids = ([1] + sp.encode(text))[:CAL_TOKENS]
    out = {"source": "transformers LlamaForCausalLM on stories260K.bin (q/k rows permuted to HF order), sentencepiece tok512.model; "
                     "lm-evaluation-harness v0.4 scoring rules; see scripts/make_eval_fixtures.py",
           "tasks": tasks, "block_influence": block_influence(model, ids)}
    with open(os.path.join(OUT, "expected.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    for name, t in tasks.items():
        print(f"{name}: acc {t['acc']:.3f} acc_norm {t['acc_norm']:.3f}, smallest margin {min(i['margin'] for i in t['items']):.4f}")
    print("block influence", out["block_influence"]["scores"], "removal order", out["block_influence"]["removal_order"])


if __name__ == "__main__":
    main()
