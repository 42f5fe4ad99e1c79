"""suanli's MXFP8_E4M3 reference code against an independent one (mxfp8.py:
ml_dtypes.float8_e4m3fn for elements, numpy for the power-of-two scales).

The quantizer must produce the reference's bytes exactly, and dequantization
the reference's floats bit for bit, on random and hand-picked edge blocks.
"""

import subprocess
from pathlib import Path

import gguf
import ml_dtypes
import numpy as np
import pytest

import mxfp8


def fresh_rng(what: str) -> np.random.Generator:
    seed = np.random.SeedSequence().entropy
    print(f"{what}: seed {seed}")
    return np.random.default_rng(seed)


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}"
    return proc


def suanli_quantize(suanli_bin: str, type_name: str, x: np.ndarray, tmp_path: Path) -> np.ndarray:
    src, dst = tmp_path / "x.f32", tmp_path / "x.bin"
    x.astype("<f4").tofile(src)
    run([suanli_bin, "dequant", "--quantize", type_name, "--in", str(src), "--out", str(dst)])
    return np.fromfile(dst, dtype=np.uint8)


def suanli_dequantize(suanli_bin: str, path: Path, out_dir: Path, tensor: str) -> np.ndarray:
    run([suanli_bin, "dequant", str(path), "--out-dir", str(out_dir), "--tensor", tensor])
    return np.fromfile(out_dir / f"{tensor}.f32", dtype="<f4")


def all_e4m3_values() -> np.ndarray:
    codes = np.arange(256, dtype=np.uint8)
    v = codes.view(ml_dtypes.float8_e4m3fn).astype(np.float64)
    return np.sort(np.unique(v[np.isfinite(v) & (v >= 0)]))


def edge_rows() -> np.ndarray:
    """Blocks that pin the rules: every E4M3 midpoint (and its neighbours)
    under a block maximum of exactly 448 * 2^k, amax just above 448 * 2^k,
    zero and -0 blocks, tiny blocks whose scale clamps at 2^-127, NaN and
    infinite elements."""
    v = all_e4m3_values()
    mids = (v[:-1] + v[1:]) / 2  # exact in float32 (at most 5 significant bits)
    blocks = []
    for k in (-30, 0, 11):
        for vals in (mids, np.nextafter(mids.astype(np.float32), np.float32(0)),
                     np.nextafter(mids.astype(np.float32), np.float32(np.inf)), v):
            vals = np.asarray(vals, dtype=np.float64)
            for i in range(0, vals.size, 31):
                b = np.zeros(32)
                chunk = vals[i:i + 31]
                b[:chunk.size] = chunk * np.where(np.arange(chunk.size) % 2, -1, 1)
                b[31] = 448.0
                blocks.append(b * 2.0 ** k)
    b = np.zeros(32)
    b[5] = np.nextafter(np.float32(448 * 2.0 ** 3), np.float32(np.inf))
    b[6] = 3.0
    blocks.append(b)
    blocks.append(np.zeros(32))
    blocks.append(-np.zeros(32))
    tiny = np.zeros(32)
    tiny[:8] = [3 * 2.0 ** -135, -2.0 ** -136, 2.0 ** -137, 1.5 * 2.0 ** -136, 2.0 ** -149, 2.0 ** -140,
                -(2.0 ** -127), 447 * 2.0 ** -127]
    blocks.append(tiny)
    special = np.linspace(-5, 5, 32)
    special[[1, 9]] = np.nan
    special[3], special[4] = np.inf, -np.inf
    blocks.append(special)
    nan_only = np.full(32, np.nan)
    blocks.append(nan_only)
    x = np.concatenate(blocks).astype(np.float32)
    pad = (-x.size) % 256
    return np.concatenate([x, np.zeros(pad, dtype=np.float32)]).reshape(-1, 256)


def random_rows(rng: np.random.Generator, n_rows: int, n_cols: int) -> np.ndarray:
    """Blocks of magnitudes from 2^-140 to 2^120, some elements far below
    their block's largest (into E4M3's subnormals)."""
    scale = np.exp2(rng.uniform(-140, 120, size=(n_rows * n_cols // 32, 1)))
    spread = np.where(rng.random((n_rows * n_cols // 32, 32)) < 0.25,
                      np.exp2(rng.uniform(-20, 0, size=(n_rows * n_cols // 32, 32))), 1.0)
    x = rng.standard_normal((n_rows * n_cols // 32, 32)) * scale * spread
    return x.astype(np.float32).reshape(n_rows, n_cols)


def byte_mismatch(ours: np.ndarray, theirs: np.ndarray, x: np.ndarray) -> str | None:
    assert ours.size == theirs.size, f"{ours.size} bytes, reference {theirs.size}"
    bad = np.flatnonzero(ours != theirs)
    if bad.size == 0:
        return None
    i = bad[0]
    block, at = divmod(int(i), mxfp8.BLOCK_BYTES)
    what = "scale" if at == 0 else f"element {at - 1} = {x.reshape(-1, 32)[block, at - 1]!r}"
    return (f"{bad.size} bytes differ; first in block {block}, {what}: "
            f"ours {ours[i]:#04x}, reference {theirs[i]:#04x}")


@pytest.mark.parametrize("type_name", ["MXFP8_E4M3", "fp8"])
def test_quantizer_matches_reference_bytes(suanli_bin, tmp_path, type_name):
    x = np.concatenate([edge_rows(), random_rows(fresh_rng("mxfp8 quantize"), 16, 256)])
    ours = suanli_quantize(suanli_bin, type_name, x, tmp_path)
    theirs = mxfp8.quantize(x).reshape(-1)
    report = byte_mismatch(ours, theirs, x)
    assert report is None, report


def same_floats(ours: np.ndarray, theirs: np.ndarray) -> str | None:
    ours, theirs = ours.ravel(), np.asarray(theirs, dtype=np.float32).ravel()
    assert ours.size == theirs.size
    nan_o, nan_t = np.isnan(ours), np.isnan(theirs)
    bad = np.flatnonzero((nan_o != nan_t) | (~nan_o & (ours.view(np.uint32) != theirs.view(np.uint32))))
    if bad.size == 0:
        return None
    i = bad[0]
    return f"{bad.size} of {ours.size} values differ; first at {i}: ours {ours[i]!r}, reference {theirs[i]!r}"


def test_dequantizes_every_code_and_scale_like_the_reference(suanli_bin, tmp_path):
    """Random bytes cover every element code; the scale bytes run through all
    256 values (255: NaN block; 247 and up: large codes overflow to inf)."""
    rng = fresh_rng("mxfp8 dequantize")
    n_blocks = 256 * 8
    blocks = rng.integers(0, 256, size=(n_blocks, mxfp8.BLOCK_BYTES), dtype=np.uint8)
    blocks[:, 0] = np.arange(n_blocks) % 256
    blocks[:256, 1:] = np.arange(256, dtype=np.uint8).reshape(8, 32).repeat(32, axis=0)
    rows = blocks.reshape(32, -1)  # 32 rows of 64 blocks (2,048 elements)

    path = tmp_path / "fp8.gguf"
    writer = gguf.GGUFWriter(str(path), "test")
    writer.add_tensor("w", rows, raw_dtype=mxfp8.gguf_type())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    reader = gguf.GGUFReader(path)  # gguf-py reads back the type it was taught (mxfp8.register)
    (t,) = reader.tensors
    assert int(t.tensor_type) == mxfp8.TYPE_ID and t.tensor_type.name == mxfp8.NAME
    assert [int(d) for d in t.shape] == [64 * 32, 32]
    assert np.array_equal(np.asarray(t.data), rows)

    ours = suanli_dequantize(suanli_bin, path, tmp_path / "out", "w")
    report = same_floats(ours, mxfp8.dequantize(rows))
    assert report is None, report
    assert np.isinf(ours).any() and np.isnan(ours).any()


def test_round_trip_and_inspect(suanli_bin, tmp_path):
    """A tensor quantized by suanli and written by gguf-py dequantizes (in
    suanli) to the reference's values; `suanli inspect` names the type."""
    x = random_rows(fresh_rng("mxfp8 round trip"), 4, 512)
    q = suanli_quantize(suanli_bin, "mxfp8_e4m3", x, tmp_path).reshape(4, -1)
    path = tmp_path / "rt.gguf"
    writer = gguf.GGUFWriter(str(path), "test")
    writer.add_tensor("w", q, raw_dtype=mxfp8.gguf_type())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    y = suanli_dequantize(suanli_bin, path, tmp_path / "out", "w").reshape(x.shape)
    report = same_floats(y, mxfp8.dequantize(q))
    assert report is None, report
    # The bound from docs/fp8.md: half an E4M3 step, relative, plus half a
    # subnormal step at the block's scale.
    scale = np.exp2(q.reshape(-1, 33)[:, 0].astype(np.float64) - 127)[:, None]
    err = np.abs(x.reshape(-1, 32).astype(np.float64) - y.reshape(-1, 32))
    bound = 2.0 ** -4 * np.abs(x.reshape(-1, 32)) + 2.0 ** -10 * scale
    assert (err <= bound).all()
    proc = subprocess.run([suanli_bin, "inspect", str(path)], capture_output=True, text=True, timeout=60)
    assert "MXFP8_E4M3" in proc.stdout + proc.stderr
