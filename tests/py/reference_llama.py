"""An independent float64 reference forward pass for the Llama family in GGUF.

This is what the C++ engine is held to. It shares no code with suanli: weights
are read with gguf-py's GGUFReader and dequantized with gguf.quants.dequantize
(MXFP8_E4M3, which ggml lacks, with mxfp8.py: ml_dtypes and numpy),
and every operation below is plain float64 numpy, written the way llama.cpp
defines the architectures for GGUF files:

  llama  rope NORMAL pairing: dims (2i, 2i+1). llama.cpp's converter permutes
         the HF q/k weights so that this pairing is right for GGUF files.
         Optional rope_freqs.weight (llama3 scaling) divides theta per pair.
  qwen2  rope NEOX pairing: dims (i, i + n_rot/2); q/k/v projections carry
         biases (attn_q.bias, attn_k.bias, attn_v.bias).
  qwen3  rope NEOX; per-head RMS norm of q and k (attn_q_norm.weight,
         attn_k_norm.weight) applied BEFORE rope; head_dim from
         {arch}.attention.key_length.

Shapes: GGUF lists a tensor's dims innermost first (ne0 = columns), so a
matrix with ne = [n_in, n_out] comes out of the reader as a numpy array
W[n_out][n_in], and y = x @ W.T.

Usage:
    ref = ReferenceModel.load(path)          # cached per path
    logits = ref.logits([1, 2, 3])           # [T][n_vocab], float64
    ids = ref.greedy([1, 2, 3], 32)          # greedy continuation (with margins)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType
from gguf.quants import dequantize

import mxfp8

SUPPORTED_ARCHS = ("llama", "qwen2", "qwen3")
# Weight types engines multiply with float activations. MXFP8 is one: its
# values are exact in float32 (see docs/fp8.md).
FLOAT_TYPES = (GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16, mxfp8.TYPE_ID)


# --------------------------------------------------------------------------
# Ops
# --------------------------------------------------------------------------


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    """y = x / sqrt(mean(x^2) + eps) * w over the last axis."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def quantize_act_q8(x: np.ndarray) -> np.ndarray:
    """x with each 32-block of its last axis rounded to int8 codes and back:
    d = max|x| / 127, x' = d * round(x / d) (round half to even). This is how
    integer-weight kernels (llama.cpp's Q8_0 activations, suanli's CPU
    kernels) see their input; used only to estimate that rounding's effect."""
    shape = x.shape
    assert shape[-1] % 32 == 0
    b = x.reshape(-1, 32)
    amax = np.abs(b).max(axis=1, keepdims=True)
    d = amax / 127.0
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(amax > 0, np.round(b / d), 0.0)
    return (q * d).reshape(shape)


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def rope(x: np.ndarray, positions: np.ndarray, n_rot: int, base: float, neox: bool,
         freq_factors: np.ndarray | None, freq_scale: float) -> np.ndarray:
    """Rotary embedding of x [T][n_heads][head_dim] at the given positions [T].

    Pair i (0 <= i < n_rot/2) is rotated by angle
        theta = freq_scale * pos * base^(-2i/n_rot) / freq_factors[i];
    NORMAL pairs dims (2i, 2i+1), NEOX pairs dims (i, i + n_rot/2). Dims from
    n_rot on pass through unchanged.
    """
    half = n_rot // 2
    inv_freq = base ** (-2.0 * np.arange(half, dtype=np.float64) / n_rot)  # [half]
    if freq_factors is not None:
        inv_freq = inv_freq / freq_factors
    theta = freq_scale * positions.astype(np.float64)[:, None] * inv_freq[None, :]  # [T][half]
    cos = np.cos(theta)[:, None, :]  # [T][1][half]
    sin = np.sin(theta)[:, None, :]
    out = x.copy()
    if neox:
        a, b = x[..., :half], x[..., half:n_rot]
        out[..., :half] = a * cos - b * sin
        out[..., half:n_rot] = a * sin + b * cos
    else:
        a, b = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
        out[..., 0:n_rot:2] = a * cos - b * sin
        out[..., 1:n_rot:2] = a * sin + b * cos
    return out


def causal_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, n_past: int) -> np.ndarray:
    """softmax(q k^T / sqrt(head_dim)) v, causal, grouped-query.

    q: [T][n_head][D] for positions n_past .. n_past+T-1;
    k, v: [n_past+T][n_head_kv][D] (all keys so far). Query head h reads kv
    head h // (n_head / n_head_kv). Returns [T][n_head][D].
    """
    T, n_head, D = q.shape
    S, n_head_kv, _ = k.shape
    group = n_head // n_head_kv
    kk = np.repeat(k, group, axis=1)  # [S][n_head][D]
    vv = np.repeat(v, group, axis=1)
    scores = np.einsum("thd,shd->hts", q, kk) / np.sqrt(D)  # [n_head][T][S]
    qpos = n_past + np.arange(T)[:, None]  # [T][1]
    kpos = np.arange(S)[None, :]  # [1][S]
    scores = np.where(kpos <= qpos, scores, -np.inf)
    scores -= scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    return np.einsum("hts,shd->thd", p, vv)  # [T][n_head][D]


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------


@dataclass
class Layer:
    attn_norm: np.ndarray  # [E]
    wq: np.ndarray  # [n_head*D][E]
    wk: np.ndarray  # [n_head_kv*D][E]
    wv: np.ndarray  # [n_head_kv*D][E]
    wo: np.ndarray  # [E][n_head*D]
    ffn_norm: np.ndarray  # [E]
    gate: np.ndarray  # [F][E]
    up: np.ndarray  # [F][E]
    down: np.ndarray  # [E][F]
    bq: np.ndarray | None = None  # [n_head*D]      (qwen2)
    bk: np.ndarray | None = None  # [n_head_kv*D]   (qwen2)
    bv: np.ndarray | None = None  # [n_head_kv*D]   (qwen2)
    q_norm: np.ndarray | None = None  # [D]   (qwen3)
    k_norm: np.ndarray | None = None  # [D]   (qwen3)


@dataclass
class KvCache:
    """Keys and values of every position so far, per layer: [S][n_head_kv][D]."""
    k: list = field(default_factory=list)
    v: list = field(default_factory=list)
    n_past: int = 0


_MODELS: dict[str, "ReferenceModel"] = {}


class ReferenceModel:
    def __init__(self, path: str):
        mxfp8.register()
        reader = GGUFReader(path)
        meta = {name: f.contents() for name, f in reader.fields.items()
                if not name.startswith("tokenizer.ggml.")}
        arch = meta["general.architecture"]
        if arch not in SUPPORTED_ARCHS:
            raise ValueError(f"{path}: architecture {arch!r} is not supported")
        self.arch = arch
        self.n_layer = int(meta[f"{arch}.block_count"])
        self.n_embd = int(meta[f"{arch}.embedding_length"])
        self.n_ff = int(meta[f"{arch}.feed_forward_length"])
        self.n_head = int(meta[f"{arch}.attention.head_count"])
        self.n_head_kv = int(meta.get(f"{arch}.attention.head_count_kv", self.n_head))
        self.head_dim = int(meta.get(f"{arch}.attention.key_length", self.n_embd // self.n_head))
        self.eps = float(meta[f"{arch}.attention.layer_norm_rms_epsilon"])
        self.rope_base = float(meta.get(f"{arch}.rope.freq_base", 10000.0))
        self.n_rot = int(meta.get(f"{arch}.rope.dimension_count", self.head_dim))
        self.neox = arch in ("qwen2", "qwen3")
        self.freq_scale = 1.0
        if meta.get(f"{arch}.rope.scaling.type") == "linear":
            factor = float(meta.get(f"{arch}.rope.scaling.factor", 0.0))
            if factor > 0:
                self.freq_scale = 1.0 / factor

        self._tokens_field = reader.fields.get("tokenizer.ggml.tokens")
        tensors = {t.name: t for t in reader.tensors}
        self._integer_weights: set[int] = set()  # id() of matrices in integer formats
        self.act_quant = False  # see matmul()

        def get(name: str) -> np.ndarray:
            t = tensors[name]
            if t.tensor_type in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
                a = np.asarray(t.data)
            elif t.tensor_type == mxfp8.TYPE_ID:
                a = mxfp8.dequantize(t.data)
            else:
                a = dequantize(t.data, t.tensor_type)
            # numpy shape is the reverse of GGUF's ne: [rows][cols].
            want = tuple(int(d) for d in reversed(t.shape))
            w = np.ascontiguousarray(a.reshape(want), dtype=np.float64)
            if t.tensor_type not in FLOAT_TYPES:
                self._integer_weights.add(id(w))
            return w


        self.token_embd = get("token_embd.weight")  # [n_vocab][E]
        self.output = get("output.weight") if "output.weight" in tensors else self.token_embd  # [n_vocab][E]
        self.output_norm = get("output_norm.weight")  # [E]
        self.rope_freqs = get("rope_freqs.weight") if "rope_freqs.weight" in tensors else None  # [n_rot/2]
        self.n_vocab = self.token_embd.shape[0]
        self.layers = []
        for l in range(self.n_layer):
            p = f"blk.{l}."
            opt = lambda n: get(p + n) if p + n in tensors else None  # noqa: E731
            self.layers.append(Layer(
                attn_norm=get(p + "attn_norm.weight"),
                wq=get(p + "attn_q.weight"), wk=get(p + "attn_k.weight"),
                wv=get(p + "attn_v.weight"), wo=get(p + "attn_output.weight"),
                ffn_norm=get(p + "ffn_norm.weight"),
                gate=get(p + "ffn_gate.weight"), up=get(p + "ffn_up.weight"),
                down=get(p + "ffn_down.weight"),
                bq=opt("attn_q.bias"), bk=opt("attn_k.bias"), bv=opt("attn_v.bias"),
                q_norm=opt("attn_q_norm.weight"), k_norm=opt("attn_k_norm.weight"),
            ))
        E, D = self.n_embd, self.head_dim
        assert self.token_embd.shape == (self.n_vocab, E)
        assert self.layers[0].wq.shape == (self.n_head * D, E)
        assert self.layers[0].wk.shape == (self.n_head_kv * D, E)
        if arch == "qwen2":
            assert self.layers[0].bq is not None, "qwen2 needs q/k/v biases"
        if arch == "qwen3":
            assert self.layers[0].q_norm is not None, "qwen3 needs q/k norms"

    @classmethod
    def load(cls, path: str) -> "ReferenceModel":
        """The model at path, dequantized once and cached for the process."""
        if path not in _MODELS:
            _MODELS[path] = cls(path)
        return _MODELS[path]

    def vocab(self) -> list[str]:
        """tokenizer.ggml.tokens (for building test prompts)."""
        return self._tokens_field.contents() if self._tokens_field is not None else []

    # ----------------------------------------------------------------------

    def matmul(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """y[T][N] = x[T][K] @ w[N][K]^T. With act_quant set, x is first
        rounded per 32-block to int8 (quantize_act_q8) when w is in an integer
        format: the reference then shows what activation rounding alone does,
        which sets the tolerance for engines that quantize activations."""
        if self.act_quant and id(w) in self._integer_weights:
            x = quantize_act_q8(x)
        return x @ w.T

    def forward(self, ids, cache: KvCache | None = None, all_logits: bool = True) -> np.ndarray:
        """Run tokens `ids` after the cache's n_past tokens (empty cache if None).

        Returns logits [T][n_vocab] (or [1][n_vocab] for the last token if
        all_logits is False). The cache, if given, is extended in place.
        """
        if cache is None:
            cache = KvCache()
        ids = np.asarray(ids, dtype=np.int64)
        T, E, D = len(ids), self.n_embd, self.head_dim
        H, HKV = self.n_head, self.n_head_kv
        n_past = cache.n_past
        positions = n_past + np.arange(T)  # [T]

        x = self.token_embd[ids]  # [T][E]
        for l, L in enumerate(self.layers):
            # Attention block.
            h = rms_norm(x, L.attn_norm, self.eps)  # [T][E]
            q = self.matmul(h, L.wq)  # [T][H*D]
            k = self.matmul(h, L.wk)  # [T][HKV*D]
            v = self.matmul(h, L.wv)  # [T][HKV*D]
            if L.bq is not None:
                q, k, v = q + L.bq, k + L.bk, v + L.bv
            q = q.reshape(T, H, D)
            k = k.reshape(T, HKV, D)
            v = v.reshape(T, HKV, D)
            if L.q_norm is not None:  # qwen3: per-head norm before rope
                q = rms_norm(q, L.q_norm, self.eps)
                k = rms_norm(k, L.k_norm, self.eps)
            q = rope(q, positions, self.n_rot, self.rope_base, self.neox, self.rope_freqs, self.freq_scale)
            k = rope(k, positions, self.n_rot, self.rope_base, self.neox, self.rope_freqs, self.freq_scale)
            if len(cache.k) <= l:
                cache.k.append(k)
                cache.v.append(v)
            else:
                cache.k[l] = np.concatenate([cache.k[l], k])  # [S][HKV][D]
                cache.v[l] = np.concatenate([cache.v[l], v])
            a = causal_attention(q, cache.k[l], cache.v[l], n_past)  # [T][H][D]
            x = x + self.matmul(a.reshape(T, H * D), L.wo)  # [T][E]
            # Feed-forward block (SwiGLU).
            h = rms_norm(x, L.ffn_norm, self.eps)  # [T][E]
            g = silu(self.matmul(h, L.gate)) * self.matmul(h, L.up)  # [T][F]
            x = x + self.matmul(g, L.down)  # [T][E]
        cache.n_past = n_past + T

        if not all_logits:
            x = x[-1:]
        x = rms_norm(x, self.output_norm, self.eps)  # [T][E]
        return self.matmul(x, self.output)  # [T][n_vocab]

    def logits(self, ids) -> np.ndarray:
        """Logits [T][n_vocab] at every position of ids."""
        return self.forward(ids)

    def greedy(self, ids, n: int):
        """Greedy continuation of ids by n tokens with an incremental KV cache.

        Returns (tokens, margins): margins[i] is the top-1 minus top-2 logit
        at the step that chose tokens[i].
        """
        cache = KvCache()
        row = self.forward(ids, cache, all_logits=False)[0]
        tokens, margins = [], []
        for step in range(n):
            top2 = np.argpartition(row, -2)[-2:]
            best = int(np.argmax(row))
            second = int(top2[0] if top2[1] == best else top2[1])
            tokens.append(best)
            margins.append(float(row[best] - row[second]))
            if step + 1 < n:
                row = self.forward([best], cache, all_logits=False)[0]
        return tokens, margins
