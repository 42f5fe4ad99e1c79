"""`suanli bench`: the llama-bench-style table / JSON, with and without a
context depth (-d), and clear errors for bad arguments. Speeds are not
checked here (benchmarks are recorded under bench/results)."""
import json
import os
import subprocess
from pathlib import Path


def run(suanli_bin, default_model, *args):
    return subprocess.run([suanli_bin, "bench", "-m", default_model, *args],
                          capture_output=True, text=True, timeout=600)


def test_json_has_pp_and_tg_with_roofline_fractions(suanli_bin, default_model):
    r = run(suanli_bin, default_model, "-p", "16", "-n", "4", "-r", "1", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["test"] for x in rows] == ["pp16", "tg4"]
    for x in rows:
        assert x["tokens_per_s"] > 0 and x["stddev"] >= 0 and 0 < x["roofline_fraction"] < 5
        assert x["depth"] == 0
    # On the CPU, tg also reports a pure read of the same weights in decode's
    # order (pp does not).
    pp, tg = rows
    assert pp["weights_read_gbs"] is None
    assert 0.1 < tg["weights_read_gbs"] < 10000


def test_table_compares_tg_with_a_pure_read_of_the_weights(suanli_bin, default_model):
    r = run(suanli_bin, default_model, "-p", "0", "-n", "4", "-r", "1")
    assert r.returncode == 0, r.stderr
    line = next(l for l in r.stdout.splitlines() if l.startswith("tg4: weights read at"))
    assert "a pure read of the same weights in decode's order" in line and line.endswith("of it")


def test_depth_fills_the_context_first(suanli_bin, default_model):
    # 300 tokens of context: the timed tokens see keys of two attention
    # segments (256 keys each), the long-context path.
    r = run(suanli_bin, default_model, "-p", "8", "-n", "4", "-d", "300", "-r", "1", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["test"] for x in rows] == ["pp8 @ d300", "tg4 @ d300"]
    assert all(x["depth"] == 300 and x["tokens_per_s"] > 0 for x in rows)
    # The pure read of the weights leaves out the KV cache: not reported.
    assert all(x["weights_read_gbs"] is None for x in rows)
    r = run(suanli_bin, default_model, "-p", "0", "-n", "2", "-d", "20", "-r", "1")
    assert r.returncode == 0, r.stderr
    assert "tg2 @ d20" in r.stdout


def test_rejects_bad_arguments(suanli_bin, default_model):
    for args, msg in [(["-p", "0", "-n", "0"], "nothing to run"),
                      (["-r", "0"], "-r must be"),
                      (["-d", "-5"], "-d must be"),
                      (["-d", "9000", "-p", "1", "-n", "1"], "exceeds the model's context length (8192)")]:
        r = run(suanli_bin, default_model, *args)
        assert r.returncode == 1, r.stdout
        assert msg in r.stderr


def test_ab_script_needs_both_builds():
    """bench/ab.sh alternates two builds; without them it stops at once."""
    script = Path(__file__).resolve().parents[2] / "bench" / "ab.sh"
    env = {k: v for k, v in os.environ.items() if k not in ("OLD", "NEW")}
    r = subprocess.run([str(script)], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode != 0 and "set OLD" in r.stderr, r.stderr
    env["OLD"] = "/bin/true"
    r = subprocess.run([str(script)], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode != 0 and "set NEW" in r.stderr, r.stderr
