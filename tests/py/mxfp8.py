"""An independent reference for suanli's MXFP8_E4M3 tensor type (docs/fp8.md).

Shares no code with suanli: element codes go through ml_dtypes.float8_e4m3fn
(the OCP E4M3FN type), the power-of-two scales through numpy.

  block: 1 byte e (scale 2^(e-127), 255 = NaN) + 32 E4M3 bytes; 33 bytes.

ggml has no such type, so gguf-py neither names nor sizes it; register()
teaches gguf-py's reader and writer its id and block size so that test code
can read and write such files with GGUFReader / GGUFWriter.
"""

from __future__ import annotations

import enum

import ml_dtypes
import numpy as np

TYPE_ID = 1024
NAME = "MXFP8_E4M3"
BLOCK = 32
BLOCK_BYTES = 33
E4M3_MAX = 448.0


def dequantize(raw: np.ndarray) -> np.ndarray:
    """Raw bytes (any shape whose last axis is a whole number of blocks) to
    float32 values, one row per leading index."""
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    lead = raw.shape[:-1]
    blocks = raw.reshape(-1, BLOCK_BYTES)
    e = blocks[:, :1].astype(np.int32)
    with np.errstate(over="ignore"):
        scale = np.ldexp(np.float32(1), e - 127).astype(np.float32)  # 2^-127 is a float32 subnormal: exact
        scale[e == 255] = np.nan
        values = blocks[:, 1:].copy().view(ml_dtypes.float8_e4m3fn).astype(np.float32)
        y = values * scale  # exact, or +-inf past FLT_MAX like suanli
    return y.reshape(*lead, -1)


def quantize(x: np.ndarray) -> np.ndarray:
    """float32 rows to raw MXFP8 bytes, by the rules in docs/fp8.md: scale
    2^k with k the smallest integer such that amax <= 448 * 2^k (amax over
    finite elements), clamped to [-127, 127]; elements RNE, saturating to
    +-448, NaN kept."""
    x = np.asarray(x, dtype=np.float32)
    lead = x.shape[:-1]
    blocks = x.reshape(-1, BLOCK).astype(np.float64)
    finite = np.where(np.isfinite(blocks), np.abs(blocks), 0.0)
    amax = finite.max(axis=1)
    with np.errstate(divide="ignore"):
        # log2 of (a float's value / 448) may sit just off an integer in
        # floating point, so take the estimate and correct it exactly.
        k = np.ceil(np.log2(amax / E4M3_MAX))
    k = np.where(amax > 0, k, -127.0)
    k = np.where((amax > 0) & (amax > E4M3_MAX * np.exp2(k)), k + 1, k)
    k = np.where((amax > 0) & (amax <= E4M3_MAX * np.exp2(k - 1)), k - 1, k)
    k = np.clip(k, -127, 127).astype(np.int32)
    scaled = blocks * np.exp2(-k.astype(np.float64))[:, None]  # exact in float64
    scaled = np.clip(scaled, -E4M3_MAX, E4M3_MAX)  # saturate; clip keeps NaN
    codes = scaled.astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
    out = np.concatenate([(k + 127).astype(np.uint8)[:, None], codes], axis=1)
    return out.reshape(*lead, -1)


_registered = False


def register() -> None:
    """Make gguf-py (0.19) read and write tensors of type 1024.

    GGUFReader converts each tensor's type id with GGMLQuantizationType(id)
    and sizes it with GGML_QUANT_SIZES; an unknown id raises. We give its
    module an IntEnum with every ggml member plus MXFP8_E4M3 (IntEnum members
    compare and hash as their ints, so every other lookup keeps working) and
    add the block size to the shared size table."""
    global _registered
    if _registered:
        return
    import gguf
    import gguf.gguf_reader

    original = gguf.GGMLQuantizationType
    members = {m.name: m.value for m in original}
    members[NAME] = TYPE_ID
    extended = enum.IntEnum("GGMLQuantizationType", members)
    gguf.gguf_reader.GGMLQuantizationType = extended
    gguf.constants.GGML_QUANT_SIZES[TYPE_ID] = (BLOCK, BLOCK_BYTES)
    _registered = True


def gguf_type():
    """The registered type, usable as GGUFWriter's raw_dtype."""
    register()
    import gguf.gguf_reader

    return gguf.gguf_reader.GGMLQuantizationType(TYPE_ID)
