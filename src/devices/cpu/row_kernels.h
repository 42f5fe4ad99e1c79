// Internal to the CPU device: the row kernels of attention, kv_write and
// swiglu (ops.cc), one table per kernel set. ops.cc holds the portable,
// AVX2 and AVX-512 sets; ops_hwy.cc the Highway one. The set follows the
// matmul kernel set (mm::selected_isa(), SUANLI_CPU_ISA), so one switch
// moves every hot loop of the device.
#pragma once

#include <cstdint>

namespace suanli::cpu {

struct RowKernels {
  void (*f16_to_f32)(const uint16_t* src, float* dst, int64_t n);
  void (*f32_to_f16)(const float* src, uint16_t* dst, int64_t n);
  // out[r] = dot(q, k[r]) * scale for r < nk (k rows of d floats). The
  // order of the dot product's additions is the set's own: 16 lane sums and
  // a tree (portable, Highway, AVX-512), or one fma chain in element order
  // (AVX2 without AVX-512: keys in lanes).
  void (*dots)(const float* q, const float* k, int64_t nk, int64_t d, float scale, float* out);
  // acc[:] += p[r] * v[r][:] for r < nk, in order.
  void (*accumulate)(const float* p, const float* v, int64_t nk, int64_t d, float* acc);
  // Optional (null when absent), straight from F16 rows given by pointers,
  // bit-identical to converting them and calling dots / accumulate: for
  // query i < nq, keys r < lim[i]. d % 16 == 0, d <= 128.
  //   out[i * ldo + r] = dot(q[i], k[r]) * scale
  // (it may also write the scores of rows up to the largest lim[], which
  // exist, into any query's row of out: ldo >= max lim)
  void (*dots_f16)(const float* const* q, int nq, const uint16_t* const* k, const int64_t* lim, int64_t d,
                   float scale, float* out, int64_t ldo);
  //   acc[i][:] += p[i * ldp + r] * v[r][:], r in order
  void (*accumulate_f16)(const float* p, int64_t ldp, int nq, const uint16_t* const* v, const int64_t* lim,
                         int64_t d, float* acc);
  // sc[i] = exp(sc[i] - m) for i < n; returns their sum (a fixed order per
  // kernel set).
  float (*softmax_exp)(float* sc, int64_t n, float m);
  // out[i] = silu(gate[i]) * up[i]
  void (*swiglu)(const float* gate, const float* up, int64_t n, float* out);
  // Optional (null when absent): dots_f16's scores over float rows given by
  // pointers (an F32 cache), bit-identical to dots; any d.
  void (*dots_f32_rows)(const float* const* q, int nq, const float* const* k, const int64_t* lim, int64_t d,
                        float scale, float* out, int64_t ldo) = nullptr;
};

// The set that goes with the selected matmul kernel set: "portable" and
// "hwy" name theirs; the x86 sets get the best x86 row kernels this CPU runs.
const RowKernels& row_kernels();

// The AVX2 set alone (F16C + FMA; null on CPUs without them or off x86):
// where the CPU has AVX-512, row_kernels() replaces some of its members with
// AVX-512 ones, takes the tree-ordered dots_x86 for dots (which the AVX-512
// F16 kernels match) and drops dots_f32_rows, so tests check this one
// directly.
const RowKernels* avx2_row_kernels();

// The Highway set (ops_hwy.cc), dispatched to the best target at run time.
// Its f32_to_f16 is the given portable one (Highway 1.0.3's emulated
// demotion does not round as IEEE does on every target).
RowKernels hwy_row_kernels(void (*f32_to_f16)(const float*, uint16_t*, int64_t));

}  // namespace suanli::cpu
