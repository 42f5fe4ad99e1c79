"""`--device-map` / `--gpu-layers` on the CLI. On a machine with only the CPU
every entry names the CPU, so this checks parsing, validation and that a
mapped run writes the unmapped run's text; the real split across two device
objects is tests/unit/model/device_map_test.cc (bit-identical logits)."""

import subprocess

import pytest

PROMPT = "The capital of France is"


def run(suanli_bin, model, *extra):
    return subprocess.run([suanli_bin, "run", "-m", model, "-p", PROMPT, "-n", "16", "--temp", "0", *extra],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def plain(suanli_bin, default_model):
    r = run(suanli_bin, default_model)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("extra", [["--device-map", "cpu:0-14,cpu:15-29"], ["--device-map", "cpu:20-29,0:0-19"],
                                   ["--gpu-layers", "10"], ["--gpu-layers", "0"], ["--gpu-layers", "99"]])
def test_mapped_run_writes_the_same_text(suanli_bin, default_model, plain, extra):
    r = run(suanli_bin, default_model, *extra)
    assert r.returncode == 0, r.stderr
    assert r.stdout == plain


@pytest.mark.parametrize("spec,message", [
    ("cpu:0-14", "layer 15 without a device"),
    ("cpu:0-14,cpu:14-29", "layer 14 twice"),
    ("cpu:0-30", "bad layer range"),
    ("cpu:5-2", "bad layer range"),
    ("cpu:0-x", "bad layer range"),
    ("cpu", "want DEVICE:FIRST-LAST"),
    ("", None),
    ("nosuch:0-29", "no device"),
])
def test_bad_maps_are_clear_errors(suanli_bin, default_model, spec, message):
    r = run(suanli_bin, default_model, "--device-map", spec)
    if message is None:  # an empty map means no map
        assert r.returncode == 0, r.stderr
        return
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


def test_map_and_gpu_layers_together_is_an_error(suanli_bin, default_model):
    r = run(suanli_bin, default_model, "--device-map", "cpu:0-29", "--gpu-layers", "3")
    assert r.returncode != 0 and "not both" in r.stderr, r.stderr
