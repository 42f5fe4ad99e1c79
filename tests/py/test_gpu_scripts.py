"""The GPU check scripts' plumbing, run without a GPU.

tests/gpu/greedy_matches_cpu.sh compares greedy tokens of two devices and
accepts a difference only at a near-tie (both devices' logits for the two
tokens within GREEDY_TIE). GPU_DEVICE=cpu points its "GPU" at the CPU, so
the loop, the SKIP path and the near-tie check run here; on a GPU machine
the same script compares cuda with cpu (bench/gpu/device_check.sh).
"""

import os
import sys
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "gpu" / "greedy_matches_cpu.sh"


def env_with(suanli_bin, **extra):
    env = dict(os.environ)
    env["SUANLI_BIN"] = suanli_bin
    # near_tie's python3 needs numpy: the test venv's interpreter first.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def test_same_device_gives_identical_tokens(suanli_bin, default_model):
    r = subprocess.run([str(SCRIPT), default_model], capture_output=True, text=True, timeout=600,
                       env=env_with(suanli_bin, GPU_DEVICE="cpu", GREEDY_STEPS="4"))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    assert len(lines) == 16 and all(l.startswith("ok ") for l in lines), r.stdout


def test_without_the_device_it_skips(suanli_bin, default_model):
    r = subprocess.run([str(SCRIPT), default_model], capture_output=True, text=True, timeout=300,
                       env=env_with(suanli_bin, GPU_DEVICE="cuda:7"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("SKIP: no CUDA device"), r.stdout


def near_tie(suanli_bin, model, prompt_ids, cpu_ids, gpu_ids, tie):
    """Runs the script's near_tie function alone (both sides on the CPU)."""
    code = (f"source <(sed -n '/^near_tie()/,/^}}/p' {SCRIPT})\n"
            f"bin={suanli_bin}; model={model}; dev=cpu\n"
            f"near_tie '{prompt_ids}' '{cpu_ids}' '{gpu_ids}' f32")
    return subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=300,
                          env=env_with(suanli_bin, GREEDY_TIE=str(tie)))


def test_near_tie_reports_the_step_and_margins(suanli_bin, default_model):
    ids = subprocess.run([suanli_bin, "tokenize", "-m", default_model, "The capital of France is"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    greedy = subprocess.run([suanli_bin, "eval", "-m", default_model, "--ids", ids, "--greedy", "3", "--kv-type",
                             "f32"], capture_output=True, text=True, timeout=300, check=True).stdout.split()
    other = greedy[:2] + [str((int(greedy[2]) + 1) % 1000 + 1)]
    # The same device on both sides: the "GPU" token is not the top one, so
    # its margin is negative and this is no tie, however loose GREEDY_TIE is.
    r = near_tie(suanli_bin, default_model, ids, " ".join(greedy), " ".join(other), 1e9)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.startswith("step 2: cpu picks %s by " % greedy[2]), r.stdout
    assert "gpu picks %s by -" % other[2] in r.stdout, r.stdout


def test_a_failing_probe_is_a_failure_not_a_skip(suanli_bin, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 60)
    r = subprocess.run([str(SCRIPT), str(bad)], capture_output=True, text=True, timeout=300,
                       env=env_with(suanli_bin, GPU_DEVICE="cpu"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.startswith("FAIL: the probe run on cpu failed"), r.stdout
