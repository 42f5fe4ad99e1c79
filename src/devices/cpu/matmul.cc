// matmul on the CPU: the driver. Picks the kernel set for this machine,
// quantizes the activations once per call (in parallel), and splits the
// output rows over the threads. Each thread walks its rows in tiles: it
// unpacks a tile of weight rows into its L1/L2-sized buffer (see
// matmul_kernels.h for the common unpacked form), then passes every token of
// the batch over that tile, 4 rows x 4 tokens per kernel call. Every weight
// byte is read from memory once per call whatever the batch size.
//
// Run-time dispatch: one translation unit per instruction set
// (matmul_avx512.cc, matmul_avx2.cc) compiled with its own -m flags, chosen
// here with __builtin_cpu_supports. We chose this over Highway's
// foreach_target: the hot loops are int8 dot products (vpdpbusd, maddubs),
// which Highway 1.0.3 does not expose, so every kernel would have been raw
// intrinsics behind HWY_TARGET guards anyway; separate TUs keep each ISA's
// code readable and the build flags explicit. The rest of the project is
// built for baseline x86-64, so the binary runs on any x86-64.
#include <algorithm>
#include <cstring>
#include <string_view>

#include "core/quant/quant.h"
#include "devices/cpu/cpu_features.h"
#include "devices/cpu/kernels.h"
#include "devices/cpu/matmul_kernels.h"

namespace suanli::cpu {

const std::vector<GgmlType>& supported_weight_formats() {
  static const std::vector<GgmlType> kFormats = {
      GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1,
      GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K,
      GgmlType::kQ6_K, GgmlType::kMXFP8_E4M3};
  return kFormats;
}

namespace mm {

Geometry make_geometry(int64_t k) {
  Geometry g;
  g.k = k;
  g.n_pairs = (k + kPairElems - 1) / kPairElems;
  g.kp = g.n_pairs * kPairElems;
  g.n_half_pad = (g.kp / 16 + 15) / 16 * 16;
  g.row_bytes = static_cast<size_t>(g.kp + g.kp + 4 * g.n_half_pad);
  g.kf = (k + 15) / 16 * 16;
  return g;
}

namespace {

bool cpu_has_avx512vnni() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma") && cpu_has_f16c();
#else
  return false;
#endif
}

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
#else
  return false;
#endif
}

// The tables this machine can run, best first.
std::vector<const KernelTable*> runnable_tables() {
  std::vector<const KernelTable*> tables;
  if (const KernelTable* t = avx512_kernels(); t && cpu_has_avx512vnni()) tables.push_back(t);
  if (const KernelTable* t = avx2_kernels(); t && cpu_has_avx2()) tables.push_back(t);
  tables.push_back(portable_kernels());
  return tables;
}

// A table with every null member filled from the portable one.
KernelTable complete(const KernelTable& t) {
  const KernelTable& p = *portable_kernels();
  KernelTable r = t;
  if (!r.quantize_act) r.quantize_act = p.quantize_act;
  if (!r.unpack_row) r.unpack_row = p.unpack_row;
  if (!r.int_tile) r.int_tile = p.int_tile;
  if (!r.float_row) r.float_row = p.float_row;
  if (!r.float_tile) r.float_tile = p.float_tile;
  return r;
}

KernelTable& active() {
  static KernelTable table = complete(*runnable_tables().front());
  return table;
}

// A 64-byte aligned view of at least `bytes` bytes of v (grows v once).
uint8_t* aligned_bytes(std::vector<uint8_t>& v, size_t bytes) {
  if (v.size() < bytes + 64) v.resize(bytes + 64);
  const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
  return v.data() + ((64 - p % 64) % 64);
}

// MXFP8 takes the float path too: its 4 significant bits per element and
// per-32 power-of-two scale are exact in float, and int8 activations would
// add rounding the format does not otherwise have.
bool is_float_format(GgmlType t) {
  return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16 || t == GgmlType::kMXFP8_E4M3;
}

// Rows per tile: about 48 KiB of unpacked weights, a multiple of the kernel's
// 4 rows. Small enough to stay in L1/L2 while all tokens pass over it, large
// enough that a 4-token activation slice is reused across many rows.
int64_t tile_rows(size_t row_bytes) {
  int64_t rows = static_cast<int64_t>((48 * 1024) / row_bytes);
  rows = std::clamp<int64_t>(rows, kMaxTileRows, 64);
  return rows / kMaxTileRows * kMaxTileRows;
}

}  // namespace

std::vector<std::string_view> available_isas() {
  std::vector<std::string_view> names;
  for (const KernelTable* t : runnable_tables()) names.push_back(t->name);
  return names;
}

bool select_isa(std::string_view name) {
  for (const KernelTable* t : runnable_tables()) {
    if (name == t->name) {
      active() = complete(*t);
      return true;
    }
  }
  return false;
}

std::string_view selected_isa() { return active().name; }

}  // namespace mm

void matmul(ThreadPool& pool, Workspace& ws, const float* x, int64_t n_tokens, const WeightView& w, const float* bias,
            float* out) {
  using namespace mm;
  const int64_t K = w.n_cols, N = w.n_rows, T = n_tokens;
  SUANLI_CHECK(K > 0 && N >= 0 && T >= 0);
  SUANLI_CHECK(K % traits(w.type).block_size == 0);
  if (T == 0 || N == 0) return;
  const KernelTable& kt = active();
  const Geometry g = make_geometry(K);
  const bool is_float = is_float_format(w.type);
  const uint8_t* wbase = static_cast<const uint8_t*>(w.data);

  // Activations, converted once per call: packed int8 rows, or float rows.
  const size_t act_row = is_float ? static_cast<size_t>(g.kf) * sizeof(float) : g.row_bytes;
  uint8_t* act = aligned_bytes(ws.act, act_row * static_cast<size_t>(T));
  auto convert_tokens = [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      if (is_float) {
        float* dst = reinterpret_cast<float*>(act + t * act_row);
        std::memcpy(dst, x + t * K, K * sizeof(float));
        std::fill(dst + K, dst + g.kf, 0.0f);
      } else {
        kt.quantize_act(x + t * K, g, act + t * act_row);
      }
    }
  };
  // Decode-sized batches take microseconds to convert: do it here rather
  // than pay a second thread-pool dispatch per matmul.
  if (T * K <= (int64_t{1} << 16)) {
    convert_tokens(0, T);
  } else {
    pool.parallel_for(T, 1, convert_tokens);
  }

  const size_t wrow = act_row;  // an unpacked weight row has the activation row's layout
  // With one token chunk nothing reuses a tile: 4 rows keep the unpacked
  // tile in L1 while the weight stream comes in.
  const int64_t rows_per_tile = T <= kMaxTileTokens ? kMaxTileRows : tile_rows(wrow);
  pool.parallel_for(N, kMaxTileRows, [&](int64_t n_begin, int64_t n_end) {
    thread_local std::vector<uint8_t> tile_buf;
    uint8_t* tile = aligned_bytes(tile_buf, wrow * rows_per_tile);
    for (int64_t n0 = n_begin; n0 < n_end; n0 += rows_per_tile) {
      const int64_t nr = std::min(rows_per_tile, n_end - n0);
      if (!is_float && T <= kMaxTileTokens && kt.fused_tile &&
          kt.fused_tile(w.type, wbase + n0 * w.row_stride, w.row_stride, static_cast<int>(nr), act,
                        static_cast<int>(T), g, bias ? bias + n0 : nullptr, out + n0, N)) {
        continue;
      }
      for (int64_t r = 0; r < nr; ++r) {
        const uint8_t* src = wbase + (n0 + r) * w.row_stride;
        uint8_t* dst = tile + r * wrow;
        if (is_float) {
          float* f = reinterpret_cast<float*>(dst);
          if (!kt.float_row(w.type, src, g, f)) SUANLI_CHECK(float_row_portable(w.type, src, g, f));
        } else if (!kt.unpack_row(w.type, src, g, dst)) {
          unpack_row_portable(w.type, src, g, dst);
        }
      }
      for (int64_t t0 = 0; t0 < T; t0 += kMaxTileTokens) {
        const int nt = static_cast<int>(std::min<int64_t>(kMaxTileTokens, T - t0));
        for (int64_t r0 = 0; r0 < nr; r0 += kMaxTileRows) {
          const int rows = static_cast<int>(std::min<int64_t>(kMaxTileRows, nr - r0));
          float* o = out + t0 * N + n0 + r0;
          const float* b = bias ? bias + n0 + r0 : nullptr;
          if (is_float) {
            kt.float_tile(reinterpret_cast<const float*>(tile + r0 * wrow), rows,
                          reinterpret_cast<const float*>(act + t0 * act_row), nt, g, b, o, N);
          } else {
            kt.int_tile(tile + r0 * wrow, rows, act + t0 * act_row, nt, g, b, o, N);
          }
        }
      }
    }
  });
}

}  // namespace suanli::cpu
