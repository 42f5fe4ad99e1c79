// Checks a set of CPU row kernels (devices/cpu/row_kernels.h: attention's
// dot products and weighted sums, softmax's exp, SwiGLU, F16 conversion)
// against float64 on random inputs, and the F16 variants against converting
// first, bit for bit (attention relies on that). Used by the conformance
// suite on every Highway target the build machine runs and by
// tests/cross/hwy_kernels_check.cc under qemu: needs only ops_hwy.cc and the
// quant helpers, no gtest.
//
// Tolerances: dots |err| <= 1e-5 * sum |q_e k_e| (float32 FMA chains of up to
// 128 terms); accumulate 1e-5 * sum |p_r v_r|; exp 4e-7 relative (the
// polynomial's ~2e-7 plus float rounding of x - m), 0 below -87.3; the
// softmax sum 1e-6 relative; swiglu 1e-6 relative + 1e-7; F16 conversion
// exact.
#pragma once

#include <cstdint>
#include <string>

#include "devices/cpu/row_kernels.h"

namespace suanli::cpu {

struct RowComparison {
  int cases = 0;
  std::string difference;  // the first failure; empty when all pass
};

RowComparison check_row_kernels(const RowKernels& k, uint64_t seed);

}  // namespace suanli::cpu
