// matmul on the CPU: the driver. Picks the kernel set for this machine,
// quantizes the activations once per call (in parallel), and splits the
// output rows over the threads. Each thread walks its rows in tiles: it
// unpacks a tile of weight rows into its L1/L2-sized buffer (see
// matmul_kernels.h for the common unpacked form), then passes every token of
// the batch over that tile, 4 rows x 4 tokens per kernel call. Every weight
// byte is read from memory once per call whatever the batch size.
//
// Run-time dispatch, two levels. Kernel sets, best first: on x86 the
// hand-written avx512vnni and avx2 sets (one translation unit each, built
// with its own -m flags, chosen here with __builtin_cpu_supports; their hot
// loops are vpdpbusd / vpmaddubsw, which Highway 1.0.3 does not expose, so
// they need fewer instructions than the Highway set; not timed), then "hwy"
// (matmul_hwy.cc: the packed kernels written once with Highway, which picks
// its own target at run time: SSSE3 to AVX-512 on x86, NEON / SVE /
// SVE2 on Arm, RVV on RISC-V where the compiler has it), then the portable
// set. Off x86 "hwy" is first. Sets without a kernel for a layout fall back
// to the portable one. The rest of the project is built for the baseline
// ISA, so one binary runs on any CPU of its architecture.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "core/quant/quant.h"
#include "devices/cpu/cpu_features.h"
#include "devices/cpu/kernels.h"
#include "devices/cpu/matmul_kernels.h"
#include "devices/cpu/matmul_packed.h"

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
  // Any CPU (Highway picks a target, the portable code at worst): after the
  // hand-written x86 sets (fewer instructions), first everywhere else.
  tables.push_back(hwy_kernels());
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

// The best set, or the one SUANLI_CPU_ISA names (avx512vnni, avx2, hwy,
// portable) when this machine can run it: for benchmarks of each set.
KernelTable& active() {
  static KernelTable table = [] {
    const std::vector<const KernelTable*> tables = runnable_tables();
    if (const char* want = std::getenv("SUANLI_CPU_ISA")) {
      for (const KernelTable* t : tables) {
        if (std::string_view(want) == t->name) return complete(*t);
      }
    }
    return complete(*tables.front());
  }();
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

namespace {

// The kernels for packed weights: the selected set's, or when it has none
// (tests switch sets after a model packed its weights) the best that has.
const KernelTable* pk_table() {
  if (active().pk_tile) return &active();
  for (const KernelTable* t : runnable_tables()) {
    if (t->pk_tile && t->pk_quantize_act) return t;
  }
  return nullptr;
}

}  // namespace
}  // namespace mm

size_t packed_bytes(const std::vector<WeightView>& parts) {
  using namespace mm;
  if (parts.empty() || parts.size() > static_cast<size_t>(kMaxWeightParts) || !pk_table()) return 0;
  const WeightView& w0 = parts[0];
  const size_t group = w0.n_cols > 0 ? pk_group_bytes(w0.type, w0.n_cols) : 0;
  if (group == 0) return 0;
  int64_t rows = 0;
  for (const WeightView& w : parts) {
    if (w.layout != 0 || w.type != w0.type || w.n_cols != w0.n_cols || w.n_rows <= 0 || w.n_rows % kPkRows != 0) {
      return 0;
    }
    rows += w.n_rows;
  }
  return static_cast<size_t>(rows / kPkRows) * group;
}

WeightView pack_weights(ThreadPool& pool, const std::vector<WeightView>& parts, void* dst) {
  using namespace mm;
  const WeightView& w0 = parts[0];
  const int64_t K = w0.n_cols;
  const size_t group_bytes = pk_group_bytes(w0.type, K);
  WeightView v;
  v.data = dst;
  v.type = w0.type;
  v.n_cols = K;
  v.row_stride = group_bytes / kPkRows;
  v.layout = kLayoutRows16;
  v.n_parts = static_cast<int32_t>(parts.size());
  // (part, first group) of every group, in order.
  std::vector<std::pair<size_t, int64_t>> groups;
  for (size_t p = 0; p < parts.size(); ++p) {
    v.part_rows[p] = parts[p].n_rows;
    for (int64_t g = 0; g < parts[p].n_rows / kPkRows; ++g) groups.emplace_back(p, g);
  }
  v.n_rows = static_cast<int64_t>(groups.size()) * kPkRows;
  uint8_t* out = static_cast<uint8_t*>(dst);
  pool.parallel_for(static_cast<int64_t>(groups.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const WeightView& w = parts[groups[i].first];
      const uint8_t* src = static_cast<const uint8_t*>(w.data) + groups[i].second * kPkRows * w.row_stride;
      pk_pack_group(w.type, src, w.row_stride, K, out + i * group_bytes);
    }
  });
  return v;
}

namespace {

// Batches up to this many tokens quantize their activations per thread
// (matmul_packed).
constexpr int64_t kPrivateActMaxTokens = 32;
// Batches up to this many tokens pass the next group to pk_tile as a
// prefetch hint: their matmuls wait on memory as much as on arithmetic.
// Longer ones (prefill) make ~64 kernel calls per group, so the weights'
// memory time is a small part of theirs and the hint would only cost.
constexpr int64_t kPrefetchMaxTokens = 64;

// matmul over a rows16-packed view: threads split the 16-row groups; each
// walks its groups and, per group, the tokens 8 at a time, so a group's
// records (a few KiB) stay in L1 while every token passes over them.
void matmul_packed(ThreadPool& pool, Workspace& ws, const float* x, int64_t T, const WeightView& w, const float* bias,
                   float* out) {
  using namespace mm;
  const KernelTable* kt = pk_table();
  SUANLI_CHECK(kt != nullptr);
  const int64_t K = w.n_cols, nb = K / 32;
  const size_t as = pk_act_stride(K);
  const size_t group_bytes = w.row_stride * kPkRows;
  // Small batches (decode): every thread quantizes all T tokens into its own
  // buffer, at its first chunk of this call. The work is repeated per thread
  // (a few microseconds), but the op needs no quantize-then-barrier step, and
  // no thread writes cache lines another core has just read: with one
  // shared buffer, written by one thread and read by all, each call's stores
  // waited on cross-core invalidations (~8% of a 16-stream serve run).
  // Large batches (prefill) quantize once, split over the threads.
  const bool private_act = T <= kPrivateActMaxTokens;
  uint8_t* act = nullptr;
  // Numbers every call of every device (a per-device count could repeat
  // after a device is destroyed and another takes its place).
  static std::atomic<uint64_t> calls{0};
  const uint64_t call = calls.fetch_add(1, std::memory_order_relaxed) + 1;
  if (!private_act) {
    act = aligned_bytes(ws.act, as * static_cast<size_t>(T));
    pool.parallel_for(T, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) kt->pk_quantize_act(x + t * K, K, act + t * as);
    });
  }
  auto act_for_this_thread = [&]() -> const uint8_t* {
    if (!private_act) return act;
    thread_local std::vector<uint8_t> mine;
    thread_local uint64_t mine_call = 0;
    uint8_t* a = aligned_bytes(mine, as * static_cast<size_t>(T));
    if (mine_call != call) {
      for (int64_t t = 0; t < T; ++t) kt->pk_quantize_act(x + t * K, K, a + t * as);
      mine_call = call;
    }
    return a;
  };
  // Part boundaries in rows (a view from prepare_weights has n_parts >= 1).
  const int n_parts = std::max(1, static_cast<int>(w.n_parts));
  int64_t part_end[kMaxWeightParts + 1] = {};
  for (int p = 0; p < n_parts; ++p) {
    part_end[p] = (p ? part_end[p - 1] : 0) + (n_parts > 1 ? w.part_rows[p] : w.n_rows);
  }
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  pool.parallel_for(w.n_rows / kPkRows, 1, [&](int64_t g_begin, int64_t g_end) {
    const uint8_t* act = act_for_this_thread();
    int p = 0;
    for (int64_t g = g_begin; g < g_end; ++g) {
      const int64_t row = g * kPkRows;
      while (row >= part_end[p]) ++p;
      const int64_t part_start = p ? part_end[p - 1] : 0;
      const int64_t ldo = part_end[p] - part_start;
      float* o = out + T * part_start + (row - part_start);
      const float* bb = bias ? bias + row : nullptr;
      const uint8_t* grp = base + g * group_bytes;
      // The first token chunk takes the group from memory and may ask for
      // the next one meanwhile; later chunks find it in cache.
      const uint8_t* next = g + 1 < g_end && T <= kPrefetchMaxTokens ? grp + group_bytes : nullptr;
      for (int64_t t0 = 0; t0 < T; t0 += kPkTokens) {
        const int nt = static_cast<int>(std::min<int64_t>(kPkTokens, T - t0));
        kt->pk_tile(w.type, grp, nb, act + t0 * as, as, nt, bb, o + t0 * ldo, ldo, t0 == 0 ? next : nullptr);
      }
    }
  });
}

}  // namespace

void matmul(ThreadPool& pool, Workspace& ws, const float* x, int64_t n_tokens, const WeightView& w, const float* bias,
            float* out) {
  using namespace mm;
  const int64_t K = w.n_cols, N = w.n_rows, T = n_tokens;
  SUANLI_CHECK(K > 0 && N >= 0 && T >= 0);
  SUANLI_CHECK(K % traits(w.type).block_size == 0);
  if (T == 0 || N == 0) return;
  if (w.layout == kLayoutRows16) {
    matmul_packed(pool, ws, x, T, w, bias, out);
    return;
  }
  SUANLI_CHECK(w.layout == 0);
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
  if (T < 4) {
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
      if (is_float && T <= kMaxTileTokens && kt.fused_float_tile &&
          kt.fused_float_tile(w.type, wbase + n0 * w.row_stride, w.row_stride, static_cast<int>(nr),
                              reinterpret_cast<const float*>(act), static_cast<int>(T), g,
                              bias ? bias + n0 : nullptr, out + n0, N)) {
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
