"""Drives `balcony serve` with the official `openai` Python client, for ServeCLITests.

    python3 openai_clients.py BASE_URL API_KEY basic
    python3 openai_clients.py BASE_URL API_KEY concurrent N MAX_TOKENS

Prints one JSON object with what the client received; the Swift test checks it.
"""
import asyncio
import json
import sys

import openai

PROMPTS = ["Once upon a time", "The little dog", "Tom and Lily", "One day, a big", "She was sad because",
           "The sun was", "Max liked to", "In the park,", "A bird sang", "Mom said,", "They went to the",
           "The cat and the mouse", "It was a rainy day.", "Ben had a red", "Sue found a", "The old man"]
EXITS = [None, {"exit": 1}, {"exit": 3}, {"exit": "full"}]


def basic(client):
    out = {}
    models = client.models.list()
    out["models"] = [m.id for m in models.data]
    c = client.completions.create(model=out["models"][0], prompt="Once upon a time", max_tokens=12, temperature=0)
    out["completion"] = {"text": c.choices[0].text, "finish_reason": c.choices[0].finish_reason,
                         "usage": c.usage.model_dump(), "balcony": (c.model_extra or {}).get("balcony"), "object": c.object}
    chunks = list(client.completions.create(model="any", prompt="Once upon a time", max_tokens=12, temperature=0, stream=True))
    out["completion_stream"] = {"text": "".join(ch.choices[0].text for ch in chunks if ch.choices),
                                "finish_reason": [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1],
                                "chunks": len(chunks)}
    chat = client.chat.completions.create(model="any", messages=[{"role": "system", "content": "Tell a story."},
                                                                   {"role": "user", "content": "A cat"}],
                                          max_tokens=10, temperature=0, extra_body={"balcony": {"exit": 3}})
    out["chat"] = {"content": chat.choices[0].message.content, "role": chat.choices[0].message.role,
                   "finish_reason": chat.choices[0].finish_reason, "usage": chat.usage.model_dump(),
                   "balcony": (chat.model_extra or {}).get("balcony"), "object": chat.object}
    stream = client.chat.completions.create(model="any", messages=[{"role": "system", "content": "Tell a story."},
                                                                     {"role": "user", "content": "A cat"}],
                                            max_tokens=10, temperature=0, stream=True, stream_options={"include_usage": True},
                                            extra_body={"balcony": {"exit": 3}})
    pieces, usage, balcony, roles = [], None, None, []
    for ch in stream:
        if ch.choices:
            if ch.choices[0].delta.role:
                roles.append(ch.choices[0].delta.role)
            pieces.append(ch.choices[0].delta.content or "")
        if ch.usage:
            usage = ch.usage.model_dump()
            balcony = (ch.model_extra or {}).get("balcony")
    out["chat_stream"] = {"content": "".join(pieces), "usage": usage, "balcony": balcony, "roles": roles}
    try:
        client.completions.create(model="any", prompt="x", max_tokens=4, temperature=7)
        out["bad_request"] = None
    except openai.BadRequestError as e:
        out["bad_request"] = {"status": e.status_code, "param": e.body.get("param") if isinstance(e.body, dict) else None}
    return out


async def concurrent(base_url, key, n, max_tokens):
    client = openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)

    async def one(i):
        extra = {"balcony": EXITS[i % len(EXITS)]} if EXITS[i % len(EXITS)] else {}
        stream = await client.completions.create(model="any", prompt=PROMPTS[i % len(PROMPTS)], max_tokens=max_tokens,
                                                 temperature=0, stream=True, extra_body=extra)
        text, reason, ids = "", None, set()
        async for ch in stream:
            ids.add(ch.id)
            if ch.choices:
                text += ch.choices[0].text
                reason = ch.choices[0].finish_reason or reason
        return {"i": i, "text": text, "finish_reason": reason, "ids": sorted(ids)}

    # Each request alone first, then all at once.
    alone = [await one(i) for i in range(n)]
    together = await asyncio.gather(*(one(i) for i in range(n)))
    await client.close()
    return {"alone": alone, "together": list(together)}


def main():
    base, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "basic":
        result = basic(openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=60))
    else:
        result = asyncio.run(concurrent(base, key, int(sys.argv[4]), int(sys.argv[5])))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
