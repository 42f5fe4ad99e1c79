// matmul kernels for x86-64 with AVX2 + FMA + F16C (Haswell / Zen 1 and
// later), for CPUs without AVX-512 VNNI. Not written yet: such CPUs run the
// portable kernels.
#include "devices/cpu/matmul_kernels.h"

namespace suanli::cpu::mm {
const KernelTable* avx2_kernels() { return nullptr; }
}  // namespace suanli::cpu::mm
