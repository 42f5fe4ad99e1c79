#!/usr/bin/env python3
"""Same inputs, same outputs? suanli serve against llama.cpp's llama-server.

Both servers must be running on the same GGUF file:
    suanli serve -m MODEL -t 2 --port 8092
    llama-server -m MODEL -t 2 -np 1 --port 8091
    .cache/venv/bin/python bench/peer_greedy.py MODEL [--suanli 8092] [--llama 8091]

For each prompt: are the token ids the same (each server's /tokenize), and
for how many of 64 greedy tokens do the continuations agree? Where they part,
the float64 reference (tests/py/reference_llama.py) gives the exact top
three there, beside each engine's logprobs (bench/results/peer-*.md).
"""
import argparse
import json
import sys
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "py"))
from reference_llama import ReferenceModel  # noqa: E402

PROMPTS = ["The capital of France is", "Once upon a time, in a small village,", "def fibonacci(n):",
           "The three laws of thermodynamics are", "In 1969, the first", "Water boils at",
           "My favourite recipe for bread:", "Translate to French: 'Good morning, how are you?'",
           "1, 1, 2, 3, 5, 8,", "The quick brown fox"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--suanli", type=int, default=8092)
    ap.add_argument("--llama", type=int, default=8091)
    ap.add_argument("-n", type=int, default=64)
    a = ap.parse_args()

    def post(port, path, body):
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(req, timeout=600).read())

    def piece(t):
        return post(a.llama, "/detokenize", {"tokens": [int(t)]})["content"]

    ref = ReferenceModel.load(a.model)
    for p in PROMPTS:
        ids = post(a.suanli, "/tokenize", {"prompt": p})["tokens"]
        same_ids = ids == post(a.llama, "/tokenize", {"content": p, "add_special": True})["tokens"]
        su = post(a.suanli, "/v1/completions", {"prompt": ids, "max_tokens": a.n, "temperature": 0,
                                                 "ignore_eos": True, "logprobs": 3})["choices"][0]["logprobs"]
        ll = post(a.llama, "/completion", {"prompt": ids, "n_predict": a.n, "temperature": 0, "top_k": 1,
                                           "ignore_eos": True, "return_tokens": True, "cache_prompt": False,
                                           "n_probs": 3})
        ltext = [piece(t) for t in ll["tokens"]]
        n = 0
        while n < min(len(ltext), len(su["tokens"])) and ltext[n] == su["tokens"][n]:
            n += 1
        print(f"{p!r}: ids same: {same_ids}; greedy agree for {n} of {a.n} tokens")
        if n == a.n:
            continue
        lg = ref.logits(ids + ll["tokens"][:n])[-1]
        lp = lg - lg.max()
        lp -= np.log(np.exp(lp).sum())
        print("  reference:", [(piece(t), round(float(lp[t]), 4)) for t in np.argsort(-lp)[:3]])
        print("  suanli:   ", [(k, round(v, 4)) for k, v in su["top_logprobs"][n].items()])
        print("  llama.cpp:", [(x["token"], round(x["logprob"], 4))
                               for x in ll["completion_probabilities"][n]["top_logprobs"]])


if __name__ == "__main__":
    main()
