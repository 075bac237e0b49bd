#!/usr/bin/env python3
"""Builds the tokenizer fixtures under Tests/BalconyCoreTests/Fixtures/tokenizers/.

Expected token ids come only from independent implementations: the `sentencepiece` package for
SentencePiece models and Hugging Face `tokenizers` for tokenizer.json files. Nothing here imports
or runs Balcony.

Outputs (all small, committed):
  spm-legacy/        tokenizer.json converted from tok512.model in LLaMA-2's Hugging Face layout
                     (Prepend + Replace normalizer, BPE with byte_fallback) + tokenizer_config.json
  spm-metaspace/     the same vocabulary with the newer Metaspace pre-tokenizer (prepend_scheme "first")
  bytelevel-gpt2/    byte-level BPE trained on TinyStories with the GPT-2 regex ("a b" merge strings)
  bytelevel-llama3/  byte-level BPE trained with LLaMA-3's Split regex, ignore_merges, BOS template,
                     a non-special added token ([merges as [a, b] pairs]) + tokenizer_config.json and
                     generation_config.json
  bytelevel-qwen2/   the LLaMA-3 vocabulary re-wired with Qwen2's regex and an NFC normalizer
  tok512-variant.model  tok512.model with a few pieces re-typed UNUSED or USER_DEFINED
  bytelevel-llama3.gguf  the bytelevel-llama3 vocabulary as GGUF metadata (tokenizer.ggml.model "gpt2",
                     pre "llama-bpe"), written with the `gguf` package; same expected ids
  pretokenizer_splits.json  words that `tokenizers`' Split (Isolated) makes of tricky strings with
                     the GPT-2, LLaMA-3 and Qwen2 patterns (Unicode whitespace, case-folded contractions)
  cases.json         the test strings and, per tokenizer, the expected ids (null where a string
                     holds special-token text that Hugging Face would parse), the reference
                     library's decoding of those ids, and Hugging Face's ids with special-token
                     text parsed (its default) where they differ from the plain ones

Requires Python 3.11 with sentencepiece, tokenizers, gguf (and the shared assets in ../shared).
Run from anywhere: python3 scripts/make_tokenizer_fixtures.py
"""

import json
import os
import random
import struct

import gguf
import sentencepiece as spm
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
OUT = os.path.join(ROOT, "Tests", "BalconyCoreTests", "Fixtures", "tokenizers")
TOK512 = os.path.join(SHARED, "models", "stories260K", "tok512.model")
LLAMA2 = os.path.join(SHARED, "tokenizers", "llama2", "tokenizer.model")
TRAIN = os.path.join(SHARED, "data", "tinystories", "train.txt")
HELDOUT = os.path.join(SHARED, "data", "tinystories", "heldout.txt")

GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}")
ADDED_WORD = "[[sep]]"  # a non-special added token of the llama3 fixture


# ---------------------------------------------------------------- test strings

SCRIPTS = {
    "latin": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "accented": "àáâãäåçèéêëìíîïñòóôõöùúûüýÿßÀÉÎÕÜŒœŁłŠšŽžđĐ",
    "cyrillic": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЭЮЯ",
    "greek": "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩάέήίόύώ",
    "cjk": "我想在工作天的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生",
    "kana": "あいうえおかきくけこさしすせそたちつてとなにぬねのアイウエオカキクケコサシスセソー",
    "hangul": "가나다라마바사아자차카타파하한국어안녕하세요",
    "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    "hebrew": "אבגדהוזחטיכלמנסעפצקרשת",
    "devanagari": "अआइईउऊएऐओऔकखगघचछजझटठडढणतथदधनपफबभमयरलवशषसहािीुूेैोौं्",
    "thai": "กขคงจฉชซญดตถทธนบปผพฟภมยรลวศษสหอฮะาำิีึืุู่้๊๋",
    "khmer": "កខគឃងចឆជឈញដឋឌឍណតថទធនបផពភមយរលវសហឡអាិីឹឺុូួើឿៀេែៃោៅំះ់",
}
DIGITS = "0123456789٠١٢٣٤٥٦٧٨٩০১২৩²³½¼Ⅷ"
PUNCT = "!\"#$%&'()*+,-./:;=?@[\\]^_`{|}~¡¿«»—–…“”‘’•·€£¥©®°±§¶"
EMOJI = ["😀", "😁", "🦙", "🚀", "✅", "❤️", "👍🏽", "👨‍👩‍👧", "😶‍🌫️", "🇫🇷", "🌍", "🤖", "✨", "🎉"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\t\t", " \t ", "\u00a0", "\u3000", "\u2009"]
WORDS = ["the", "The", "Once", "upon", "a", "time", "Lily", "ball", "park", "happy", "didn't", "I'm", "we'll",
         "you're", "they've", "she'd", "it's", "HELLO", "World", "über", "naïve", "café", "Führer", "cpp",
         "x86_64", "e-mail", "http://example.com/a?b=c", "C++", "foo_bar", "camelCase", "3.14159", "1,000,000"]

# Fixed edge cases first: the dummy-prefix and whitespace rules, contractions in every case, digits.
EDGE = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n\n", "\r\n", " \n", "a", " a", "a ", "  a  b  ", "a\u2581b", "\u2581",
    "\u2581a", "Hello world", " Hello world", "Hello  world", "Hello world ", "I'm", "I'M", "'s 'S 'll 'LL 're 'RE 've 'VE",
    "x'ſ y'K", "don't", "DON'T", "'", "''", "' era", "1", "12", "123", "1234", "12345678901", "½²³ Ⅷ",
    "e\u0301", "cafe\u0301", "\u00e9", "a\u00a0b", "\u3000x", "a\u2028b", "\t\tx", "x\t", "\r\n\r\n", "  \n  \n",
    "!!!!!!", "...", " (", "\n =", "🦙", "👨‍👩‍👧", "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
    "<s>", "</s>", "<unk>", "a<s>b", "<s> b", " <s>b", "a <s> b</s>", "<unk>x", "<|begin_of_text|>", "<|endoftext|>",
    "Hi<|eot_id|>\n<|begin_of_text|>user", "<|begin_of_text|><|end_of_text|>", " <|eot_id|> x<|endoftext|>",
    f"one{ADDED_WORD}two", f"{ADDED_WORD}", f" {ADDED_WORD} x {ADDED_WORD}{ADDED_WORD}",
]


def random_string(rng: random.Random, stories: list[str]) -> str:
    kind = rng.choice(["words", "words", "script", "mixed", "digits", "punct", "emoji", "spaces", "story", "story"])
    if kind == "story":
        line = rng.choice(stories)
        start = rng.randrange(max(1, len(line) - 20))
        return line[start:start + rng.randrange(1, 160)]
    parts = []
    for _ in range(rng.randrange(1, 9)):
        if kind == "words" or (kind == "mixed" and rng.random() < 0.4):
            parts.append(rng.choice(WORDS))
        elif kind == "script" or kind == "mixed":
            alphabet = SCRIPTS[rng.choice(sorted(SCRIPTS))]
            parts.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 8))))
        elif kind == "digits":
            parts.append("".join(rng.choice(DIGITS[:10] if rng.random() < 0.7 else DIGITS) for _ in range(rng.randrange(1, 12))))
        elif kind == "punct":
            parts.append("".join(rng.choice(PUNCT) for _ in range(rng.randrange(1, 5))))
        elif kind == "emoji":
            parts.append("".join(rng.choice(EMOJI) for _ in range(rng.randrange(1, 4))))
        elif kind == "spaces":
            parts.append(rng.choice(WORDS + list(PUNCT)))
        if kind == "mixed" and rng.random() < 0.3:
            parts.append(rng.choice(EMOJI + list(PUNCT) + list(DIGITS)))
        sep = rng.choice(SPACES) if (kind == "spaces" or rng.random() < 0.3) else rng.choice([" ", "", " ", ", ", ". "])
        parts.append(sep)
    text = "".join(parts)
    if rng.random() < 0.15:
        text = rng.choice(SPACES) + text
    if rng.random() < 0.15:
        text = text.rstrip() if rng.random() < 0.5 else text + rng.choice(SPACES)
    return text


def make_strings() -> list[str]:
    rng = random.Random(20241129)
    with open(TRAIN, encoding="utf-8") as f:
        stories = [l for l in f.read().split("\n") if l.strip()]
    strings = list(EDGE)
    seen = set(strings)
    while len(strings) < 320:
        s = random_string(rng, stories)
        if s not in seen:
            seen.add(s)
            strings.append(s)
    # A few long multi-line passages (held-out TinyStories) exercise long merge chains.
    with open(HELDOUT, encoding="utf-8") as f:
        held = f.read()
    for start in (0, 5000, 20000):
        strings.append(held[start:start + 1500])
    return strings


# ---------------------------------------------------------------- SentencePiece


def read_varint(b: bytes, i: int) -> tuple[int, int]:
    r, shift = 0, 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return r, i


def write_varint(v: int) -> bytes:
    out = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        out.append(c | (0x80 if v else 0))
        if not v:
            return bytes(out)


def proto_fields(b: bytes):
    """Yields (field, wire type, raw bytes of the whole field, payload) of a protobuf message."""
    i = 0
    while i < len(b):
        start = i
        key, i = read_varint(b, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = read_varint(b, i)
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        elif wire == 2:
            n, i = read_varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError(f"wire type {wire}")
        yield field, wire, b[start:i], v


def without_extra_whitespace_removal(model: bytes) -> bytes:
    """tok512.model with NormalizerSpec.remove_extra_whitespaces = false: the llama2.c tokenizer.bin
    exported from it encodes without collapsing spaces, so its expectations come from this variant."""
    out = bytearray()
    for field, wire, raw, payload in proto_fields(model):
        if field == 3 and wire == 2:
            spec = bytearray()
            for f, w, r, _ in proto_fields(payload):
                if f != 4:
                    spec += r
            spec += write_varint(4 << 3 | 0) + write_varint(0)
            out += write_varint(3 << 3 | 2) + write_varint(len(spec)) + spec
        else:
            out += raw
    return bytes(out)


def with_piece_types(model: bytes, types: dict[str, int]) -> bytes:
    """The model with some pieces' SentencePiece.type changed (4 = USER_DEFINED, 5 = UNUSED)."""
    out = bytearray()
    for field, wire, raw, payload in proto_fields(model):
        if field == 1 and wire == 2:
            fields = list(proto_fields(payload))
            piece = next(v for f, _, _, v in fields if f == 1).decode("utf-8")
            if piece in types:
                body = b"".join(r for f, _, r, _ in fields if f != 3) + write_varint(3 << 3) + write_varint(types[piece])
                out += write_varint(1 << 3 | 2) + write_varint(len(body)) + body
                continue
        out += raw
    return bytes(out)


# Pieces of tok512 re-typed in tok512-variant.model: merges may still form UNUSED pieces, which
# SentencePiece then splits back; USER_DEFINED pieces are matched whole and never merged.
VARIANT_TYPES = {"\u2581the": 5, "\u2581and": 5, "in": 5, "\u2581was": 5, "\u2581Lily": 4, "ed": 4}


def spm_vocab_and_merges(sp: spm.SentencePieceProcessor):
    """Vocabulary and merges as Hugging Face's converter makes them: every split of a normal piece
    into two normal pieces, ranked by the merged piece's score (higher first)."""
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    normal = {sp.id_to_piece(i): (sp.get_score(i), i) for i in range(n)
              if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i) or sp.is_unused(i))}
    ranked = []
    for piece, (score, pid) in normal.items():
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in normal and right in normal:
                ranked.append((-score, pid, normal[left][1], left, right))
    return vocab, [(l, r) for *_, l, r in sorted(ranked)]


def spm_tokenizer_json(sp: spm.SentencePieceProcessor, metaspace: bool) -> Tokenizer:
    vocab, merges = spm_vocab_and_merges(sp)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    if metaspace:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    else:
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in ("<unk>", "<s>", "</s>")])
    if not metaspace:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                           special_tokens=[("<s>", 1)])
    return tok


# ---------------------------------------------------------------- byte-level BPE


def train_byte_level(split_regex: str | None, specials: list[str], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    if split_regex is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(split_regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=specials)
    tok.train([TRAIN], trainer)
    return tok


def with_string_merges(tok: Tokenizer) -> Tokenizer:
    """Rewrites merges in the older "a b" string form (byte-level tokens never contain spaces)."""
    j = json.loads(tok.to_str())
    j["model"]["merges"] = [f"{a} {b}" for a, b in j["model"]["merges"]]
    return Tokenizer.from_str(json.dumps(j))


def save(tok: Tokenizer, folder: str, extra: dict[str, dict] | None = None) -> None:
    path = os.path.join(OUT, folder)
    os.makedirs(path, exist_ok=True)
    j = json.loads(tok.to_str())
    with open(os.path.join(path, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False, indent=1)
        f.write("\n")
    for name, content in (extra or {}).items():
        with open(os.path.join(path, name), "w", encoding="utf-8") as f:
            json.dump(content, f, ensure_ascii=False, indent=1)
            f.write("\n")


def write_gguf(tok: Tokenizer, path: str) -> None:
    """A vocabulary-only GGUF the way llama.cpp's converter writes a LLaMA-3 tokenizer."""
    j = json.loads(tok.to_str())
    added = {t["id"]: t for t in j["added_tokens"]}
    by_id = {i: t for t, i in j["model"]["vocab"].items()} | {i: t["content"] for i, t in added.items()}
    tokens = [by_id[i] for i in range(len(by_id))]
    types = [(gguf.TokenType.CONTROL if added[i]["special"] else gguf.TokenType.USER_DEFINED) if i in added
             else gguf.TokenType.NORMAL for i in range(len(tokens))]
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([f"{a} {b}" for a, b in j["model"]["merges"]])
    w.add_bos_token_id(tok.token_to_id("<|begin_of_text|>"))
    w.add_eos_token_id(tok.token_to_id("<|end_of_text|>"))
    w.add_add_bos_token(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


SPLIT_STRINGS = [
    "a\t\tb", "a\n\nb", "a\x1c\x1cb", "a\x85\x85b", "a\xa0\xa0b", "a\u180e\u180eb", "a\u200b\u200bb",
    "a\u2028\u2028b", "a\u3000\u3000b", "a\ufeff\ufeffb", "I'M he'S x'\u017f y'K 'LL they're",
    "a\u00b2b 12345 \u00bd \u2167x", "x\u0301y", "\U0001F600\U0001F600 a", "  Hello\n\n  world  ",
    " \r\n\t x !!\n\n?\r", "1234567 ab12cd", "",
]


def pretokenizer_splits() -> list[dict]:
    out = []
    for name, regex in (("gpt2", GPT2_REGEX), ("llama3", LLAMA3_REGEX), ("qwen2", QWEN2_REGEX)):
        split = pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False)
        for s in SPLIT_STRINGS:
            out.append({"pattern": name, "text": s, "words": [w for w, _ in split.pre_tokenize_str(s)]})
    return out


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    strings = make_strings()

    tok512 = spm.SentencePieceProcessor(model_file=TOK512)
    with open(TOK512, "rb") as f:
        tok512_bin = spm.SentencePieceProcessor(model_proto=without_extra_whitespace_removal(f.read()))
    llama2 = spm.SentencePieceProcessor(model_file=LLAMA2)
    with open(TOK512, "rb") as f:
        variant_bytes = with_piece_types(f.read(), VARIANT_TYPES)
    with open(os.path.join(OUT, "tok512-variant.model"), "wb") as f:
        f.write(variant_bytes)
    variant = spm.SentencePieceProcessor(model_proto=variant_bytes)
    assert sum(variant.is_unused(i) for i in range(variant.get_piece_size())) == 4

    hf = {}
    hf["spm-legacy"] = spm_tokenizer_json(tok512, metaspace=False)
    save(hf["spm-legacy"], "spm-legacy", {"tokenizer_config.json": {"add_bos_token": True, "add_eos_token": False,
                                                                    "bos_token": "<s>", "eos_token": "</s>"}})
    hf["spm-metaspace"] = spm_tokenizer_json(tok512, metaspace=True)
    save(hf["spm-metaspace"], "spm-metaspace")

    gpt2 = with_string_merges(train_byte_level(None, ["<|endoftext|>"], 1000))
    hf["bytelevel-gpt2"] = gpt2
    save(gpt2, "bytelevel-gpt2", {"tokenizer_config.json": {"add_bos_token": False, "bos_token": "<|endoftext|>",
                                                            "eos_token": "<|endoftext|>"}})

    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    llama3 = train_byte_level(LLAMA3_REGEX, specials, 1200)
    llama3.add_tokens([AddedToken(ADDED_WORD, normalized=False, special=False)])
    bos = llama3.token_to_id("<|begin_of_text|>")
    llama3.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                          pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                                          special_tokens=[("<|begin_of_text|>", bos)])
    j = json.loads(llama3.to_str())
    j["model"]["ignore_merges"] = True
    llama3 = Tokenizer.from_str(json.dumps(j))
    hf["bytelevel-llama3"] = llama3
    save(llama3, "bytelevel-llama3", {
        "tokenizer_config.json": {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"},
        "generation_config.json": {"bos_token_id": bos, "eos_token_id": [llama3.token_to_id("<|end_of_text|>"),
                                                                         llama3.token_to_id("<|eot_id|>")]},
    })

    write_gguf(llama3, os.path.join(OUT, "bytelevel-llama3.gguf"))

    j = json.loads(llama3.to_str())
    j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = QWEN2_REGEX
    j["normalizer"] = {"type": "NFC"}
    j["model"]["ignore_merges"] = False
    j["post_processor"] = None
    qwen2 = Tokenizer.from_str(json.dumps(j))
    hf["bytelevel-qwen2"] = qwen2
    save(qwen2, "bytelevel-qwen2")

    def hf_ids(tok: Tokenizer, s: str):
        # Hugging Face always parses added-token text; Balcony's encode never parses special tokens.
        specials = [t.content for t in tok.get_added_tokens_decoder().values() if t.special]
        if any(sp in s for sp in specials):
            return None
        return tok.encode(s, add_special_tokens=False).ids

    expected = {
        "tok512.model": [tok512.encode(s) for s in strings],
        "tok512.bin": [tok512_bin.encode(s) for s in strings],
        "llama2": [llama2.encode(s) for s in strings],
        "tok512-variant.model": [variant.encode(s) for s in strings],
    }
    decoded = {
        "tok512.model": [tok512.decode(ids) for ids in expected["tok512.model"]],
        "tok512.bin": [tok512_bin.decode(ids) for ids in expected["tok512.bin"]],
        "llama2": [llama2.decode(ids) for ids in expected["llama2"]],
        "tok512-variant.model": [variant.decode(ids) for ids in expected["tok512-variant.model"]],
    }
    for name, tok in hf.items():
        expected[name] = [hf_ids(tok, s) for s in strings]
        decoded[name] = [None if ids is None else tok.decode(ids, skip_special_tokens=False) for ids in expected[name]]
    # Stored only where parsing special tokens changes the ids (null elsewhere) to keep the file small.
    parse_special = {name: [None if (ids := tok.encode(s, add_special_tokens=False).ids) == expected[name][i] else ids
                            for i, s in enumerate(strings)] for name, tok in hf.items()}
    with_special = {name: {"text": "Hello world", "ids": tok.encode("Hello world", add_special_tokens=True).ids}
                    for name, tok in hf.items()}

    with open(os.path.join(OUT, "pretokenizer_splits.json"), "w", encoding="utf-8") as f:
        json.dump(pretokenizer_splits(), f, ensure_ascii=True, indent=0)
        f.write("\n")
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"strings": strings, "expected": expected, "decoded": decoded, "parse_special": parse_special,
                   "with_special_tokens": with_special},
                  f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, fn)) for d, _, fns in os.walk(OUT) for fn in fns)
    print(f"{len(strings)} strings, {len(expected)} tokenizers, {total / 1024:.0f} KiB in {OUT}")


if __name__ == "__main__":
    main()
