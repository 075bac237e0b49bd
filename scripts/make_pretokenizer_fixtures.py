#!/usr/bin/env python3
"""Expected pre-tokenizer splits for every GGUF `tokenizer.ggml.pre` value Balcony implements.

Writes Tests/BalconyCoreTests/Fixtures/tokenizers/gguf_pretokenizer_splits.json: for each name, the
words that Hugging Face `tokenizers` makes of a set of tricky strings with the pre-tokenizer
equivalent to llama.cpp's rules for that name (src/llama-vocab.cpp, `llm_tokenizer_bpe`): a
`Sequence` of `Split(Regex, "isolated")`, one per llama.cpp regex, in llama.cpp's order. SmolLM's
is its own tokenizer.json pre-tokenizer, `Sequence[Digits(individual_digits), ByteLevel]`.

Where llama.cpp rewrites a regex for C++'s std::regex (LLaMA 3's `(?i:...)`, tekken's letter
classes) the original regex from the model's tokenizer.json is used: it is what the model was
trained with. The splits come from `tokenizers` (Oniguruma), never from Balcony.

It also trains a small byte-level BPE with SmolLM's pre-tokenizer on TinyStories (plus numbers, so
that digit merges exist to be wrongly applied) and writes it twice, as `bytelevel-smollm/tokenizer.json`
and as a vocabulary-only `bytelevel-smollm.gguf` with `tokenizer.ggml.pre = smollm` (the way llama.cpp's
converter writes SmolLM2), with the ids `tokenizers` gives for the strings: `smollm_cases.json`.

Usage: pip install tokenizers gguf && python3 scripts/make_pretokenizer_fixtures.py
"""

import json
import os
import random

import gguf
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "BalconyCoreTests", "Fixtures", "tokenizers")
OUT = os.path.join(FIXTURES, "gguf_pretokenizer_splits.json")
TRAIN = os.path.join(os.path.dirname(ROOT), "shared", "data", "tinystories", "train.txt")

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
# DeepSeek LLM's letter class as llama.cpp writes it (`[A-Za-zµÀ-Ö...]`), as code point ranges so that
# no editor's Unicode normalization can change it (it holds U+212A KELVIN SIGN, U+1FBE and the like).
DEEPSEEK_LETTER_RANGES = [
    (0x41, 0x5A), (0x61, 0x7A), (0xB5, 0xB5), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x1BA), (0x1BC, 0x1BF),
    (0x1C4, 0x293), (0x295, 0x2AF), (0x370, 0x373), (0x376, 0x377), (0x37B, 0x37D), (0x37F, 0x37F),
    (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x3F5), (0x3F7, 0x481),
    (0x48A, 0x52F), (0x531, 0x556), (0x10A0, 0x10C5), (0x13A0, 0x13F5), (0x13F8, 0x13FD), (0x1C90, 0x1CBA),
    (0x1CBD, 0x1CBF), (0x1D00, 0x1D2B), (0x1D6B, 0x1D77), (0x1D79, 0x1D9A), (0x1E00, 0x1F15), (0x1F18, 0x1F1D),
    (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D),
    (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC),
    (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x2102, 0x2102),
    (0x2107, 0x2107), (0x210A, 0x2113), (0x2115, 0x2115), (0x2119, 0x211D), (0x2124, 0x2124), (0x2126, 0x2126),
    (0x2128, 0x2128), (0x212A, 0x212D), (0x212F, 0x2134), (0x2139, 0x2139), (0x213C, 0x213F), (0x2145, 0x2149),
    (0x214E, 0x214E), (0x2183, 0x2184), (0x2C00, 0x2C7B), (0x2C7E, 0x2CE4), (0x2CEB, 0x2CEE), (0x2CF2, 0x2CF3),
    (0xA640, 0xA66D), (0xA680, 0xA69B), (0xA722, 0xA76F), (0xA771, 0xA787), (0xA78B, 0xA78E), (0xAB70, 0xABBF),
    (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A), (0x10400, 0x1044F),
    (0x104B0, 0x104D3), (0x104D8, 0x104FB), (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2), (0x118A0, 0x118DF),
    (0x1E900, 0x1E943),
]
DEEPSEEK_LLM = [
    "[\r\n]",
    r"\s?[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in DEEPSEEK_LETTER_RANGES) + "]+",
    "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
    r"\s+$",
    "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
    r"\p{N}+",
]
DEEPSEEK_CODER = ["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+", r"\p{N}"]
DEEPSEEK_V3 = [
    r"\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
]
FALCON = [r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"]
TEKKEN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
          r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|"
          r"\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def splits(*regexes: str):
    return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r), behavior="isolated") for r in regexes])


DIGITS_THEN_BYTELEVEL = pre_tokenizers.Sequence([
    pre_tokenizers.Digits(individual_digits=True),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
])

# name -> (pre-tokenizer, whether its words are spelled with GPT-2's byte-to-unicode table)
PRE = {
    "gpt-2": (splits(GPT2), False),
    "mpt": (splits(GPT2), False),
    "olmo": (splits(GPT2), False),
    "smollm": (DIGITS_THEN_BYTELEVEL, True),
    "starcoder": (splits(r"\p{N}", GPT2), False),
    "refact": (splits(r"\p{N}", GPT2), False),
    "command-r": (splits(r"\p{N}", GPT2), False),
    "llama-bpe": (splits(LLAMA3), False),
    "dbrx": (splits(LLAMA3), False),
    "smaug-bpe": (splits(LLAMA3), False),
    "qwen2": (splits(QWEN2), False),
    "deepseek-llm": (splits(*DEEPSEEK_LLM), False),
    "deepseek-coder": (splits(*DEEPSEEK_CODER), False),
    "deepseek-v3": (splits(*DEEPSEEK_V3), False),
    "falcon": (splits(*FALCON), False),
    "tekken": (splits(TEKKEN), False),
}

STRINGS = [
    "", "Hello world", "  Hello\n\n  world  ", " \r\n\t x !!\n\n?\r", "I'M he'S x'\u017f y'K 'LL they're",
    "1234567 ab12cd 3.14159 + 42 = x", "a\u00b2b 12345 \u00bd \u2167x \u0661\u0662\u0663",
    "HelloWorld \u00c9cole\u00c0b a\u00c9 ABCdef abcDEF iPhone McDonald's",
    "\u4f60\u597d\u4e16\u754c \u3053\u3093\u306b\u3061\u306f \u30ab\u30bf\u30ab\u30ca \ud55c\uad6d\uc5b4 \u0928\u092e\u0938\u094d\u0924\u0947",
    "foo.bar(baz) // comment\n\tif x: return 'y'\n    pass",
    "\u2018quoted\u2019 \u201ctext\u201d \uff01\uff1f \u3002\u3001 \uff21\uff42\uff43",
    "na\u00efve caf\u00e9 x\u0301y e\u0301\u0301 \u0915\u093f",
    "path/to/file\n/next //\n\n", "$100 ^ ~ | ` <=> \u00a7 \u20ac5 \u00a9", "a\u3000\u3000b \u3000\u3002 trailing  ",
    "\U0001F600\U0001F600 a \U0001F44D\U0001F3FD!", "a\u00a0\u00a0b a\u0085b a\u2028b", "\u00b5 \u03a9mega \u0416\u0443\u043a \u1f00\u1f01",
    "'s's 'S ''' \"quotes\" -- --> <!-- x -->",
]


def byte_decoder() -> dict[str, int]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def train_smollm_like() -> Tokenizer:
    """A SmolLM-style tokenizer: Digits(individual_digits) + ByteLevel, trained on TinyStories and numbers."""
    rng = random.Random(15)
    with open(TRAIN, encoding="utf-8") as f:
        text = f.read(400_000)
    numbers = " ".join(str(rng.randrange(10 ** rng.randrange(1, 8))) for _ in range(20_000))
    tok = Tokenizer(models.BPE())
    # Trained with GPT-2's splitting alone, so the vocabulary holds merges of digits (" 12", "345")
    # that only a pre-tokenizer isolating digits keeps from applying; then given SmolLM's.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.train_from_iterator([text, numbers, "12 345 6789 2024"], trainer)
    tok.pre_tokenizer = DIGITS_THEN_BYTELEVEL
    return tok


def write_smollm_gguf(tok: Tokenizer, path: str) -> None:
    """A vocabulary-only GGUF as llama.cpp's converter writes SmolLM2's tokenizer."""
    j = json.loads(tok.to_str())
    added = {t["id"]: t for t in j["added_tokens"]}
    by_id = {i: t for t, i in j["model"]["vocab"].items()} | {i: t["content"] for i, t in added.items()}
    tokens = [by_id[i] for i in range(len(by_id))]
    types = [gguf.TokenType.CONTROL if i in added else gguf.TokenType.NORMAL for i in range(len(tokens))]
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([f"{a} {b}" if isinstance(a, str) else a for a, b in
                        ((m if isinstance(m, list) else m.split(" ", 1)) for m in j["model"]["merges"])])
    w.add_bos_token_id(tok.token_to_id("<|im_start|>"))
    w.add_eos_token_id(tok.token_to_id("<|im_end|>"))
    w.add_add_bos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def smollm_vocabulary() -> None:
    tok = train_smollm_like()
    folder = os.path.join(FIXTURES, "bytelevel-smollm")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(json.loads(tok.to_str()), f, ensure_ascii=False, indent=1)
        f.write("\n")
    write_smollm_gguf(tok, os.path.join(FIXTURES, "bytelevel-smollm.gguf"))
    strings = STRINGS + ["Lily had 3 apples and 12 pears in 2024.", "x 123 4567 89", "Tim ran 100 meters, then 42."]
    cases = [{"text": s, "ids": tok.encode(s, add_special_tokens=False).ids} for s in strings]
    with open(os.path.join(FIXTURES, "smollm_cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=True, indent=0)
        f.write("\n")
    print(f"{len(cases)} SmolLM-style encodings -> smollm_cases.json")


def main() -> None:
    smollm_vocabulary()
    dec = byte_decoder()
    out = []
    for name, (pre, byte_level) in PRE.items():
        for s in STRINGS:
            words = [w for w, _ in pre.pre_tokenize_str(s)]
            if byte_level:
                words = [bytes(dec[ch] for ch in w).decode("utf-8") for w in words]
            assert "".join(words) == s, (name, s, words)
            out.append({"pre": name, "text": s, "words": words})
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=True, indent=0)
        f.write("\n")
    print(f"{len(out)} cases -> {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
