"""Model files that load but are broken: contradictory metadata is refused at
load with a message, and weights that make the logits NaN or infinite end
generation with an error (CLI exit 1, HTTP error) instead of text drawn from
garbage. Each case was found by an audit of hostile GGUFs (2026-11-27); the
files are a 2-layer random-weight model rewritten with the gguf package.
"""

import json
import subprocess

import numpy as np
import pytest

from server_util import ServerProcess

gguf = pytest.importorskip("gguf")


@pytest.fixture(scope="module")
def base_model(suanli_bin, default_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("broken") / "base.gguf"
    r = subprocess.run([suanli_bin, "synth", "smollm2-135m", "--layers", "2", "--type", "q8_0", "--seed", "3",
                        "--tokenizer-from", default_model, "-o", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return out


def rewrite(src, dst, set_fields=None, drop=()):
    """Copies a GGUF with metadata changed: set_fields maps key -> (value, GGUFValueType)."""
    set_fields = dict(set_fields or {})
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(dst, arch)
    for field in reader.fields.values():
        if field.name == "general.architecture" or field.name.startswith("GGUF.") or field.name in drop:
            continue
        if field.name in set_fields:
            value, vtype = set_fields.pop(field.name)
            writer.add_key_value(field.name, value, vtype)
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    for key, (value, vtype) in set_fields.items():
        writer.add_key_value(key, value, vtype)
    for t in reader.tensors:
        writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in reader.tensors:
        writer.write_tensor_data(t.data)
    writer.close()
    return dst


def poke(src, dst, tensor, index, value):
    """Copies a GGUF and sets one element (or all, index None) of an F32 tensor."""
    dst.write_bytes(src.read_bytes())
    reader = gguf.GGUFReader(dst, "r+")
    t = next(t for t in reader.tensors if t.name == tensor)
    assert t.data.dtype == np.float32
    flat = t.data.reshape(-1)
    if index is None:
        flat[:] = value
    else:
        flat[index] = value
    del reader  # the memmap writes through
    return dst


def run(suanli_bin, model, *extra):
    return subprocess.run([suanli_bin, "run", "-m", str(model), "-p", "Hello there", "-n", "4", "-t", "2", *extra],
                          capture_output=True, text=True, timeout=300)


def test_the_base_model_runs(suanli_bin, base_model):
    r = run(suanli_bin, base_model, "--temp", "0")
    assert r.returncode == 0, r.stderr


F32 = gguf.GGUFValueType.FLOAT32
U32 = gguf.GGUFValueType.UINT32
STR = gguf.GGUFValueType.STRING

BAD_METADATA = [
    ("rope_scaling_factor_tiny", {"llama.rope.scaling.type": ("linear", STR), "llama.rope.scaling.factor": (1e-45, F32)},
     "rope.scaling.factor"),
    ("rope_scaling_factor_inf", {"llama.rope.scaling.type": ("linear", STR),
                                 "llama.rope.scaling.factor": (float("inf"), F32)}, "rope.scaling.factor"),
    ("rope_scaling_factor_nan", {"llama.rope.scaling.factor": (float("nan"), F32)}, "rope.scaling.factor"),
    ("rope_scaling_yarn", {"llama.rope.scaling.type": ("yarn", STR), "llama.rope.scaling.factor": (4.0, F32)},
     "rope scaling type 'yarn' is not supported"),
    ("freq_base_inf", {"llama.rope.freq_base": (float("inf"), F32)}, "rope.freq_base"),
    ("block_count_short", {"llama.block_count": (1, U32)}, "past block_count"),
    ("value_length_differs", {"llama.attention.value_length": (32, U32)}, "value_length"),
    ("vocab_size_differs", {"llama.vocab_size": (1000, U32)}, "vocab_size"),
]


@pytest.mark.parametrize("name,fields,message", BAD_METADATA, ids=[b[0] for b in BAD_METADATA])
def test_contradictory_metadata_is_refused_at_load(suanli_bin, base_model, tmp_path, name, fields, message):
    bad = rewrite(base_model, tmp_path / f"{name}.gguf", fields)
    r = run(suanli_bin, bad)
    assert r.returncode != 0, r.stdout
    assert message in r.stderr, r.stderr


NON_FINITE = "non-finite logits"


@pytest.mark.parametrize("tensor,index,value", [
    ("output_norm.weight", None, float("nan")),     # every logit NaN
    ("blk.0.attn_norm.weight", 0, float("inf")),   # one weight: reaches the logits through the int8 matmuls
    ("blk.1.ffn_norm.weight", 7, float("nan")),
], ids=["all_nan", "one_inf", "one_nan"])
def test_non_finite_logits_are_an_error_not_text(suanli_bin, base_model, tmp_path, tensor, index, value):
    bad = poke(base_model, tmp_path / "bad.gguf", tensor, index, value)
    for extra in ([], ["--temp", "0"], ["--temp", "0.8", "--seed", "1"]):
        r = run(suanli_bin, bad, *extra)
        assert r.returncode == 1, (extra, r.stdout, r.stderr)
        assert NON_FINITE in r.stderr, r.stderr
        assert r.stdout == ""
    r = subprocess.run([suanli_bin, "eval", "-m", str(bad), "--ids", "1 2 3", "--greedy", "2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and NON_FINITE in r.stderr, r.stderr


def test_server_answers_non_finite_logits_with_an_error_and_stays_up(suanli_bin, base_model, tmp_path):
    bad = poke(base_model, tmp_path / "bad.gguf", "output_norm.weight", None, float("nan"))
    s = ServerProcess(suanli_bin, str(bad))
    try:
        chat = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
        for body in (chat, {**chat, "response_format": {"type": "json_object"}}, {**chat, "n": 2, "temperature": 0.7}):
            status, _, data = s.request("POST", "/v1/chat/completions", body, timeout=120)
            assert status == 500, data
            assert NON_FINITE in json.loads(data)["error"]["message"]
        # Streaming: the error arrives as an event before [DONE].
        status, _, data = s.request("POST", "/v1/chat/completions", {**chat, "stream": True}, timeout=120)
        assert status == 200
        text = data.decode()
        assert NON_FINITE in text and "data: [DONE]" in text, text
        assert s.health() == 200
        running = [v for k, v in s.metrics().items() if k.startswith("suanli:requests_running{")]
        assert running and sum(running) == 0
    finally:
        assert s.stop() == 0
