"""`suanli run --spec-ngram K` and `suanli chat --spec-ngram K`: speculative
decoding by prompt lookup in the CLIs writes exactly the text of a plain
run (greedy, and seeded sampling with penalties), while keeping drafts on
text that repeats (docs/engine.md, "Speculative decoding")."""
import re
import subprocess

import pytest

LIST = ("Copy the list exactly.\napple, banana, cherry, grape, lemon, mango, orange, peach\n"
        "apple, banana, cherry, grape, lemon, mango, orange, peach\napple, banana,")
CODE = "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n\ndef mul(a, b):\n"


def run(suanli_bin, model, prompt, *extra):
    r = subprocess.run([suanli_bin, "run", "-m", model, "-p", prompt, "-n", "64", *extra],
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout, r.stderr.decode(errors="replace")


@pytest.mark.parametrize("prompt", [LIST, CODE, "Once upon a time"])
@pytest.mark.parametrize("sampling", [["--temp", "0"],
                                      ["--temp", "0.8", "--seed", "5", "--repeat-penalty", "1.1"],
                                      ["--temp", "1", "--top-k", "0", "--top-p", "1", "--min-p", "0",
                                       "--seed", "9", "--ignore-eos"]])
def test_speculative_run_writes_the_plain_text(suanli_bin, default_model, prompt, sampling):
    plain, _ = run(suanli_bin, default_model, prompt, *sampling)
    fast, log = run(suanli_bin, default_model, prompt, *sampling, "--spec-ngram", "4")
    assert fast == plain
    m = re.search(r"speculative: (\d+) of (\d+) drafted tokens kept", log)
    assert m and int(m.group(1)) <= int(m.group(2))
    if prompt == LIST and sampling[1] == "0":
        assert int(m.group(1)) > 20, log  # the list repeats: most drafts are kept


@pytest.mark.parametrize("n", ["1", "2", "3", "5"])
def test_speculative_run_stops_at_n_exactly(suanli_bin, default_model, n):
    def text(*extra):
        r = subprocess.run([suanli_bin, "run", "-m", default_model, "-p", LIST, "-n", n, "--temp", "0", *extra],
                           capture_output=True, timeout=120)
        assert r.returncode == 0
        return r.stdout
    assert text("--spec-ngram", "16") == text()


def test_spec_ngram_out_of_range_is_an_error(suanli_bin, default_model):
    r = subprocess.run([suanli_bin, "run", "-m", default_model, "-p", "Hi", "--spec-ngram", "17"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "--spec-ngram must be 0 to 16" in r.stderr


def test_speculative_chat_gives_the_same_replies(suanli_bin, default_model):
    turns = "Repeat exactly: red, green, blue, red, green, blue, red, green, blue\nNow write it twice more.\n"

    def chat(*extra):
        r = subprocess.run([suanli_bin, "chat", "-m", default_model, "-n", "48", "--temp", "0.7", "--seed", "3",
                            *extra], input=turns.encode(), capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        return r.stdout

    plain = chat()
    assert plain.count(b"\n") >= 2  # two replies
    assert chat("--spec-ngram", "4") == plain
