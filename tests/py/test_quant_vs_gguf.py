"""suanli's scalar quant reference code against gguf-py (which mirrors ggml).

Dequantization must match gguf.quants.dequantize bit for bit, on every tensor
of the default model and on random blocks of every format suanli reads. The
legacy quantizers (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) must produce gguf.quants.quantize's
bytes exactly; the k-quant quantizers (Q2_K .. Q6_K), which gguf-py lacks, are
checked by gguf-py dequantizing our bytes to what we dequantize, within an
error bound of the input.
"""

import json
import subprocess
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as T

# Same per-format bounds as tests/unit/core/quant_test.cc: |x - y| as a
# fraction of the largest |x| of x's block (32 or 256 elements).
ROUND_TRIP_TOLERANCE = {T.Q2_K: 0.37, T.Q3_K: 0.27, T.Q4_K: 0.07, T.Q5_K: 0.035, T.Q6_K: 0.036}

# Byte offsets of the fp16 scale fields in one block of each format.
FP16_FIELDS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],
    T.Q3_K: [108],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
}


def fresh_rng(what: str) -> np.random.Generator:
    seed = np.random.SeedSequence().entropy
    print(f"{what}: seed {seed}")
    return np.random.default_rng(seed)


def run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}"


def suanli_dequant(suanli_bin: str, path: Path | str, out_dir: Path) -> dict[str, dict]:
    run([suanli_bin, "dequant", str(path), "--out-dir", str(out_dir)])
    index = json.loads((out_dir / "index.json").read_text())
    for entry in index:
        entry["values"] = np.fromfile(out_dir / entry["file"], dtype=np.float32)
    return {entry["name"]: entry for entry in index}


def suanli_quantize(suanli_bin: str, qtype: T, x: np.ndarray, tmp_path: Path) -> np.ndarray:
    src, dst = tmp_path / f"{qtype.name}.f32", tmp_path / f"{qtype.name}.bin"
    x.astype("<f4").tofile(src)
    run([suanli_bin, "dequant", "--quantize", qtype.name, "--in", str(src), "--out", str(dst)])
    return np.fromfile(dst, dtype=np.uint8)


def mismatch_report(name: str, ours: np.ndarray, theirs: np.ndarray) -> str | None:
    ours = np.ascontiguousarray(ours, dtype=np.float32).ravel()
    theirs = np.ascontiguousarray(theirs, dtype=np.float32).ravel()
    if ours.shape != theirs.shape:
        return f"{name}: {ours.size} values, gguf-py gives {theirs.size}"
    if np.array_equal(ours.view(np.uint32), theirs.view(np.uint32)):
        return None
    bad = np.flatnonzero(ours.view(np.uint32) != theirs.view(np.uint32))
    diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    i = bad[0]
    return (f"{name}: {bad.size} of {ours.size} values differ, max |diff| {np.nanmax(diff[bad]):g}; "
            f"first at {i}: ours {ours[i]!r}, gguf-py {theirs[i]!r}")


def assert_same_as_gguf(gguf_path: Path | str, ours: dict[str, dict]) -> int:
    reader = gguf.GGUFReader(gguf_path)
    failures = []
    for t in reader.tensors:
        entry = ours.get(t.name)
        if entry is None:
            failures.append(f"{t.name}: missing from suanli's output")
            continue
        if entry["type"] != t.tensor_type.name or entry["shape"] != [int(d) for d in t.shape]:
            failures.append(f"{t.name}: suanli says {entry['type']} {entry['shape']}, "
                            f"gguf-py {t.tensor_type.name} {list(t.shape)}")
        report = mismatch_report(t.name, entry["values"], gguf.quants.dequantize(t.data, t.tensor_type))
        if report:
            failures.append(report)
    assert not failures, "\n".join(failures)
    assert len(ours) == len(reader.tensors)
    return len(reader.tensors)


def test_dequantizes_every_default_model_tensor_like_gguf(suanli_bin, default_model, tmp_path):
    ours = suanli_dequant(suanli_bin, default_model, tmp_path / "out")
    assert assert_same_as_gguf(default_model, ours) > 0


def random_fp16_bits(rng: np.random.Generator, n: int) -> np.ndarray:
    """Finite fp16 bit patterns of every kind: zero, subnormal, normal, both signs."""
    bits = rng.integers(0, 1 << 16, size=n, dtype=np.uint16)
    exponent_all_ones = (bits & 0x7C00) == 0x7C00
    bits[exponent_all_ones] &= np.uint16(0xBFFF)  # clear the exponent's top bit
    return bits


def random_blocks(rng: np.random.Generator, qtype: T, n_blocks: int) -> np.ndarray:
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for at in FP16_FIELDS[qtype]:
        blocks[:, at:at + 2] = random_fp16_bits(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return blocks


def test_dequantizes_random_blocks_of_every_format_like_gguf(suanli_bin, tmp_path):
    rng = fresh_rng("random blocks")
    path = tmp_path / "blocks.gguf"
    writer = gguf.GGUFWriter(str(path), "test")
    rows = 3
    for qtype in FP16_FIELDS:
        blocks = random_blocks(rng, qtype, rows * 4).reshape(rows, -1)
        writer.add_tensor(f"blocks.{qtype.name}", blocks, raw_dtype=qtype)
    f16 = random_fp16_bits(rng, rows * 64).view(np.float16).reshape(rows, 64)
    writer.add_tensor("plain.F16", f16)
    bf16 = rng.integers(0, 1 << 16, size=rows * 64, dtype=np.uint16)
    bf16[(bf16 & 0x7F80) == 0x7F80] &= np.uint16(0xBFFF)  # finite
    writer.add_tensor("plain.BF16", bf16.view(np.uint8).reshape(rows, 128), raw_dtype=T.BF16)
    writer.add_tensor("plain.F32", rng.standard_normal((rows, 64), dtype=np.float32) * np.float32(1e3))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    ours = suanli_dequant(suanli_bin, path, tmp_path / "out")
    assert assert_same_as_gguf(path, ours) == len(FP16_FIELDS) + 3


def random_rows(rng: np.random.Generator, n_rows: int, n_cols: int) -> np.ndarray:
    """Rows of varied magnitude, plus blocks that pin tie-breaking details:
    all zeros, an extreme value present with both signs, all equal, all positive."""
    scale = np.exp2(rng.uniform(-2, 10, size=(n_rows, 1))).astype(np.float32)
    x = rng.standard_normal((n_rows, n_cols), dtype=np.float32) * scale
    x[0, :32] = 0
    x[0, 32:64] = rng.standard_normal(32, dtype=np.float32)
    x[0, 40], x[0, 50] = -3.0, 3.0
    x[0, 64:96] = 1.5
    x[0, 96:128] = np.abs(x[0, 96:128]) + 1
    x[1, :256] = 0  # a whole zero k-quant super-block
    return x


@pytest.mark.parametrize("qtype", [T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1], ids=lambda t: t.name)
def test_legacy_quantizers_match_gguf_bytes(suanli_bin, tmp_path, qtype):
    x = random_rows(fresh_rng(qtype.name), 8, 1024)
    ours = suanli_quantize(suanli_bin, qtype, x, tmp_path)
    theirs = gguf.quants.quantize(x, qtype).reshape(-1)
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    assert ours.size == theirs.size
    bad = np.flatnonzero(ours != theirs)
    assert bad.size == 0, (f"{qtype.name}: {bad.size} bytes differ, first in block {bad[0] // type_size} "
                           f"(byte {bad[0] % type_size}): ours {ours[bad[0]]:#04x}, gguf-py {theirs[bad[0]]:#04x}")


@pytest.mark.parametrize("qtype", [T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K], ids=lambda t: t.name)
def test_k_quantizers_round_trip_and_gguf_reads_them(suanli_bin, tmp_path, qtype):
    x = random_rows(fresh_rng(qtype.name), 8, 1024)
    ours = suanli_quantize(suanli_bin, qtype, x, tmp_path)
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = ours.reshape(x.shape[0], -1)
    path = tmp_path / "k.gguf"
    writer = gguf.GGUFWriter(str(path), "test")
    writer.add_tensor("w", blocks, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    y = suanli_dequant(suanli_bin, path, tmp_path / "out")["w"]["values"]
    report = mismatch_report(qtype.name, y, gguf.quants.dequantize(blocks, qtype))
    assert report is None, report

    err = np.abs(x.reshape(-1, 256) - y.reshape(-1, 256)).max(axis=1)
    bound = ROUND_TRIP_TOLERANCE[qtype] * np.abs(x.reshape(-1, 256)).max(axis=1)
    worst = int(np.argmax(err - bound))
    assert (err <= bound).all(), f"{qtype.name} block {worst}: error {err[worst]:g} > bound {bound[worst]:g}"
