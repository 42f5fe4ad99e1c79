"""`suanli bench serve` in-process: the load generator runs, reports, and
sizes the KV cache from a byte size or a share of free memory."""
import json
import subprocess


def run(suanli_bin, default_model, *args):
    return subprocess.run([suanli_bin, "bench", "serve", "-m", default_model, *args],
                          capture_output=True, text=True, timeout=600)


def test_reports_json_per_concurrency_level(suanli_bin, default_model):
    r = run(suanli_bin, default_model, "--concurrency", "1,2", "--requests", "2",
            "--prompt-tokens", "16", "--output-tokens", "4", "--json")
    assert r.returncode == 0, r.stderr
    levels = json.loads(r.stdout)
    assert [l["concurrency"] for l in levels] == [1, 2]
    for l in levels:
        assert l["successful"] == 2
        assert l["output_tokens_per_s"] > 0
        assert l["ttft_ms"]["p99"] >= l["ttft_ms"]["median"] > 0


def test_kv_memory_as_a_share_of_free_memory(suanli_bin, default_model):
    r = run(suanli_bin, default_model, "--concurrency", "2", "--requests", "2",
            "--prompt-tokens", "16", "--output-tokens", "4", "--kv-memory", "5%", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["successful"] == 2


def test_rejects_bad_kv_memory_and_concurrency(suanli_bin, default_model):
    for args, msg in [(["--kv-memory", "200%"], "share must be"),
                      (["--kv-memory", "12Q"], "bad size unit"),
                      (["--concurrency", "0"], "concurrency must be"),
                      (["--url", "http://127.0.0.1:9", "--spec-ngram", "4"], "with --url, start the server")]:
        r = run(suanli_bin, default_model, "--requests", "1", *args)
        assert r.returncode == 1
        assert msg in r.stderr


def test_reports_speculative_drafts(suanli_bin, default_model):
    r = run(suanli_bin, default_model, "--concurrency", "1", "--requests", "2", "--prompt-tokens", "16",
            "--output-tokens", "24", "--spec-ngram", "4", "--json")
    assert r.returncode == 0, r.stderr
    level = json.loads(r.stdout)[0]
    assert level["successful"] == 2
    assert level["steps"] > 0
    assert 0 <= level["spec_accepted_tokens"] <= level["spec_draft_tokens"]
