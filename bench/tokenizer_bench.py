#!/usr/bin/env python3
"""Tokenizer throughput: `suanli tokenize --file` on ~10 MB of English prose
and ~5 MB of Chinese, one thread, process startup and vocabulary loading
subtracted (a tiny input is timed the same way).

The texts are generated deterministically (fixed seed) from the words and
characters of tests/py/tokenizer_corpus.py plus synthetic words drawn with a
Zipf-like distribution, so the per-call word cache sees a realistic mix of
repeated and rare words.

    bench/tokenizer_bench.py [--bin build/release/suanli] [--model PATH] [--vocab PATH ...]

Prints MB/s per (vocabulary, text). Never asserts a speed.
"""

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "py"))
from tokenizer_corpus import CORPUS  # noqa: E402

SEED = 20240229


def english_text(n_bytes: int) -> str:
    rng = random.Random(SEED)
    words = sorted({w for t in CORPUS for w in re.findall(r"[A-Za-z']+", t)})
    syllables = ["ka", "lo", "mi", "ter", "san", "dre", "ous", "ing", "tion", "ble", "pre", "con", "al", "er", "ly"]
    words += ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(20000)]
    weights = [1.0 / (i + 1) for i in range(len(words))]
    rng.shuffle(words)
    out, size = [], 0
    while size < n_bytes:
        n = rng.randint(5, 25)
        sentence = " ".join(rng.choices(words, weights, k=n))
        sentence = sentence[0].upper() + sentence[1:]
        if rng.random() < 0.2:
            sentence += f", {rng.randint(0, 100000)}"
        sentence += rng.choice([".", ".", ".", "?", "!", ";"])
        sentence += "\n\n" if rng.random() < 0.1 else " "
        out.append(sentence)
        size += len(sentence)
    return "".join(out)


def chinese_text(n_bytes: int) -> str:
    rng = random.Random(SEED + 1)
    chars = sorted({c for t in CORPUS for c in t if "\u4e00" <= c <= "\u9fa5"})
    chars += [chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(3000)]
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(chars))]
    out, size = [], 0
    while size < n_bytes:
        sentence = "".join(rng.choices(chars, weights, k=rng.randint(8, 40)))
        sentence += rng.choice(["。", "，", "！", "？", "；"])
        if rng.random() < 0.1:
            sentence += "\n"
        out.append(sentence)
        size += len(sentence.encode("utf-8"))
    return "".join(out)


def time_tokenize(binary: str, model: str, path: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([binary, "tokenize", "-m", model, "--no-special", "--file", path], check=True,
                       stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("SUANLI_BIN", str(REPO / "build" / "release" / "suanli")))
    ap.add_argument("--model", action="append", help="GGUF with a tokenizer (repeatable); default: the default model")
    ap.add_argument("--english-mb", type=float, default=10)
    ap.add_argument("--chinese-mb", type=float, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    models = args.model or [subprocess.run([args.bin, "pull", "default", "--print-path"], check=True,
                                           capture_output=True, text=True).stdout.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        texts = {
            "english": english_text(int(args.english_mb * 1e6)),
            "chinese": chinese_text(int(args.chinese_mb * 1e6)),
        }
        paths = {}
        for name, text in texts.items():
            paths[name] = os.path.join(tmp, f"{name}.txt")
            Path(paths[name]).write_text(text, encoding="utf-8")
        tiny = os.path.join(tmp, "tiny.txt")
        Path(tiny).write_text("Hello world.", encoding="utf-8")
        print(f"{'vocabulary':<36} {'text':<8} {'MB':>6} {'seconds':>8} {'startup':>8} {'MB/s':>7}")
        for model in models:
            startup = time_tokenize(args.bin, model, tiny, args.repeats)
            for name, path in paths.items():
                mb = os.path.getsize(path) / 1e6
                total = time_tokenize(args.bin, model, path, args.repeats)
                work = max(total - startup, 1e-9)
                print(f"{Path(model).name:<36} {name:<8} {mb:6.2f} {total:8.3f} {startup:8.3f} {mb / work:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
