"""`suanli synth`: random-weight models of named shapes, and its argument checks."""
import json
import subprocess

import gguf


def synth(suanli_bin, *args):
    return subprocess.run([suanli_bin, "synth", *args], capture_output=True, text=True, timeout=600)


def test_lists_the_known_shapes(suanli_bin):
    r = synth(suanli_bin, "--list")
    assert r.returncode == 0
    for shape in ["smollm2-135m", "qwen2.5-0.5b", "qwen3-0.6b", "llama3.2-1b", "llama3-8b"]:
        assert shape in r.stdout


def test_writes_a_model_gguf_py_reads_with_the_shape_and_padded_vocabulary(suanli_bin, default_model, tmp_path):
    out = tmp_path / "q.gguf"
    r = synth(suanli_bin, "qwen2.5-0.5b", "--layers", "2", "--type", "q8_0", "-o", str(out),
              "--tokenizer-from", default_model)
    assert r.returncode == 0, r.stderr
    rd = gguf.GGUFReader(str(out))
    tensors = {t.name: t for t in rd.tensors}
    assert rd.fields["general.architecture"].contents() == "qwen2"
    assert rd.fields["qwen2.block_count"].contents() == 2
    assert rd.fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_Q8_0
    assert "blk.1.attn_q.bias" in tensors and "blk.2.attn_q.weight" not in tensors
    tokens = rd.fields["tokenizer.ggml.tokens"].contents()
    assert len(tokens) == 151936  # SmolLM2's 49,152 padded to the shape's vocabulary
    assert tokens[-1].startswith("<|synth_pad_")
    assert list(tensors["token_embd.weight"].shape) == [896, 151936]
    info = json.loads(subprocess.run([suanli_bin, "inspect", "--json", str(out)], capture_output=True,
                                     text=True, check=True).stdout)
    assert info["architecture"]["layers"] == 2


def test_quantize_rewrites_the_matrices_and_the_file_type(suanli_bin, default_model, tmp_path):
    src, out = tmp_path / "s.gguf", tmp_path / "q.gguf"
    r = synth(suanli_bin, "llama3.2-1b", "--layers", "1", "--type", "f16", "-o", str(src),
              "--tokenizer-from", default_model)
    assert r.returncode == 0, r.stderr
    assert gguf.GGUFReader(str(src)).fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_F16
    for name, ftype, qtype in [("q4_0", gguf.LlamaFileType.MOSTLY_Q4_0, gguf.GGMLQuantizationType.Q4_0),
                               ("q6_k", gguf.LlamaFileType.MOSTLY_Q6_K, gguf.GGMLQuantizationType.Q6_K)]:
        q = subprocess.run([suanli_bin, "quantize", str(src), str(out), "--type", name], capture_output=True, text=True)
        assert q.returncode == 0, q.stderr
        rd = gguf.GGUFReader(str(out))
        assert rd.fields["general.file_type"].contents() == ftype
        assert {t.tensor_type for t in rd.tensors if len(t.shape) == 2} == {qtype}


def test_rejects_bad_arguments(suanli_bin, default_model, tmp_path):
    out = str(tmp_path / "x.gguf")
    for args, msg in [(["llama3-8b", "--layers", "0"], "--layers must be 1 to 1024"),
                      (["no-such-shape"], "unknown shape"),
                      (["smollm2-135m", "--type", "q9_9"], "unknown weight type"),
                      (["smollm2-135m", "--type", "iq2_xxs"], "cannot write weights")]:
        r = synth(suanli_bin, *args, "-o", out, "--tokenizer-from", default_model)
        assert r.returncode == 1, args
        assert msg in r.stderr, (args, r.stderr)
