#!/usr/bin/env python3
"""Speculative decoding (prompt lookup) on chat tasks: speed and sameness.

Starts two `suanli serve` on the same model, without and with
--spec-ngram K, side by side; sends the same chat requests one at a time,
alternating between them (temperature 0, then a seeded temperature 0.7;
the fastest of --reps runs counts), and prints per task: completion tokens,
tokens/s without and with drafts, the speed-up, the share of drafts kept
(from /metrics) and whether the two outputs are identical (they must be:
docs/engine.md, "Speculative decoding").

    python3 bench/spec.py [--suanli build/release/suanli] [-m MODEL] [-k 4] [-t 2]

Random-token prompts (`suanli bench serve --spec-ngram`) overstate the gain:
a small model's greedy continuation of noise soon repeats itself, and nearly
every draft is kept. These tasks are what prompt lookup is for (editing,
extraction, code) beside free writing, where it finds little.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

PARAGRAPH = ("The Great Barrier Reef is the worlds largest coral reef system, composed of over 2,900 individual "
             "reefs and 900 islands streching for over 2,300 kilometres over an area of aproximately 344,400 "
             "square kilometres. The reef is located in the Coral Sea, off the coast of Queensland, Australia.")
CODE = '''def mean(values):
    total = 0
    for v in values:
        total = total + v
    return total / len(values)


def variance(values):
    m = mean(values)
    total = 0
    for v in values:
        total = total + (v - m) * (v - m)
    return total / len(values)
'''
TASKS = [
    ("fix spelling", f"Correct the spelling mistakes in this paragraph and write it out in full:\n\n{PARAGRAPH}"),
    ("code edit", f"Rename the variable `total` to `acc` in this Python code and write out the whole code:\n\n{CODE}"),
    ("json extract", "Turn this into a JSON list of objects with keys name, age and city:\n"
                     "Alice, 31, Paris; Bob, 45, Berlin; Carol, 27, Madrid; Dave, 52, Rome; Eve, 38, Lisbon"),
    ("summarize", f"Summarize in two sentences:\n\n{PARAGRAPH}"),
    ("free writing", "Write a short story about a lighthouse keeper who finds a message in a bottle."),
]


def post(port, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=600).read())


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60).read().decode()
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def start(binary, model, threads, port, extra):
    cmd = [binary, "serve", "-t", str(threads), "--port", str(port)] + (["-m", model] if model else []) + extra
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200:
                return proc
        except Exception:
            time.sleep(0.2)
    proc.kill()
    sys.exit(f"suanli serve did not become ready: {' '.join(cmd)}")


def run(port, prompt, max_tokens, temperature, seed):
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": temperature, "seed": seed}
    t0 = time.perf_counter()
    r = post(port, "/v1/chat/completions", body)
    return time.perf_counter() - t0, r["choices"][0]["message"]["content"], r["usage"]["completion_tokens"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--suanli", default=os.path.join(os.path.dirname(__file__), "..", "build", "release", "suanli"))
    ap.add_argument("-m", "--model", default="")
    ap.add_argument("-k", type=int, default=4, help="--spec-ngram for the second server")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-n", "--max-tokens", type=int, default=192)
    ap.add_argument("-r", "--reps", type=int, default=3, help="runs per request (the fastest counts)")
    ap.add_argument("--port", type=int, default=8097)
    a = ap.parse_args()

    # Both servers run side by side and each request alternates between
    # them, so a change in this machine's memory speed hits both alike.
    servers = {"plain": (a.port, []), "spec": (a.port + 1, ["--spec-ngram", str(a.k)])}
    procs = [start(a.suanli, a.model, a.threads, port, extra) for port, extra in servers.values()]
    rows = {}
    try:
        for temp in (0.0, 0.7):
            for name, prompt in TASKS:
                row = {label: [None, None, 0, 0.0, 0.0] for label in servers}
                for _ in range(a.reps):
                    for label, (port, _) in servers.items():
                        d0 = metric(port, "suanli:spec_decode_draft_tokens_total")
                        k0 = metric(port, "suanli:spec_decode_accepted_tokens_total")
                        dt, text, n = run(port, prompt, a.max_tokens, temp, 7)
                        r = row[label]
                        r[0] = dt if r[0] is None else min(r[0], dt)
                        r[1], r[2] = text, n
                        r[3] = metric(port, "suanli:spec_decode_draft_tokens_total") - d0
                        r[4] = metric(port, "suanli:spec_decode_accepted_tokens_total") - k0
                rows[(name, temp)] = {label: tuple(r) for label, r in row.items()}
    finally:
        for p in procs:
            p.terminate()
            p.wait()

    print(f"| task | temperature | tokens | plain tok/s | --spec-ngram {a.k} tok/s | speed-up | drafts kept | "
          f"same output |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    all_same = True
    for (name, temp), r in rows.items():
        (dp, tp, n, _, _), (ds, ts, _, drafted, kept) = r["plain"], r["spec"]
        same = tp == ts
        all_same &= same
        share = f"{kept:.0f} / {drafted:.0f}" if drafted else "none drafted"  # per run
        print(f"| {name} | {temp} | {n} | {n / dp:.0f} | {n / ds:.0f} | {dp / ds:.2f}x | {share} | "
              f"{'yes' if same else 'NO'} |")
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
