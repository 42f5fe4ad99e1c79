// Compares two CPU kernel sets' packed rows16 kernels (pk_quantize_act and
// pk_tile, devices/cpu/matmul_packed.h) bit for bit, on random GGUF rows of
// every packed format (random codes, finite fp16 scales including
// subnormals) and random activations (with an all-zero block, exact
// rounding ties and a NaN), for several K and T = 1..9 tokens, with and
// without bias. Used by the conformance suite on the build machine and by
// tests/cross/hwy_kernels_check.cc under qemu: needs only matmul_portable.cc,
// matmul_packed.cc, matmul_hwy.cc and the quant helpers, no gtest.
#pragma once

#include <cstdint>
#include <string>

#include "devices/cpu/matmul_kernels.h"

namespace suanli::cpu::mm {

struct PkComparison {
  int cases = 0;           // (format, K, T) combinations run
  std::string difference;  // the first one found; empty when all agree
};

// with_nan puts a NaN among the activations: every set must code it alike
// and give NaN outputs for its token (matmul_packed.h).
PkComparison compare_packed_kernels(const KernelTable& want, const KernelTable& got, uint64_t seed,
                                    bool with_nan = true);

}  // namespace suanli::cpu::mm
