// The hwy kernel set against the portable one, bit for bit, on every Highway
// target this CPU (or emulator) runs: the conformance suite's comparison
// without gtest or the rest of suanli, so that scripts/cross_check.sh can
// cross-compile it for aarch64 / riscv64 and run it under qemu-user.
// Exits 1 on any difference.
//   hwy_kernels_check [seed]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/quant/quant.h"
#include "cross/packed_kernels_compare.h"
#include "cross/row_kernels_compare.h"
#include "devices/cpu/matmul_kernels.h"

namespace {
void f32_to_f16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = suanli::quant::fp32_to_fp16(src[i]);
}
}  // namespace

int main(int argc, char** argv) {
  using namespace suanli::cpu::mm;
  const uint64_t seed = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1;
  const std::vector<std::string> targets = hwy_target_names();
  std::printf("Highway target chosen: %s; runnable here:", hwy_running_target());
  for (const std::string& t : targets) std::printf(" %s", t.c_str());
  std::printf("\n");
  int failed = 0;
  for (const std::string& t : targets) {
    if (!hwy_force_target(t) || t != hwy_running_target()) {
      std::printf("%-8s could not be selected (runs %s)\n", t.c_str(), hwy_running_target());
      ++failed;
      continue;
    }
    const PkComparison r = compare_packed_kernels(*portable_kernels(), *hwy_kernels(), seed);
    if (r.difference.empty()) {
      std::printf("%-8s %d cases (format x K x T), all bit-identical to portable\n", t.c_str(), r.cases);
    } else {
      std::printf("%-8s DIFFERS: %s\n", t.c_str(), r.difference.c_str());
      ++failed;
    }
    // The Highway row kernels (ops_hwy.cc) on the same target.
    const suanli::cpu::RowComparison rows = suanli::cpu::check_row_kernels(suanli::cpu::hwy_row_kernels(f32_to_f16), seed);
    if (rows.difference.empty()) {
      std::printf("%-8s row kernels: %d cases within tolerance, F16 variants bit-identical\n", t.c_str(), rows.cases);
    } else {
      std::printf("%-8s row kernels FAIL: %s\n", t.c_str(), rows.difference.c_str());
      ++failed;
    }
  }
  hwy_force_target("");
  std::printf("%zu passed, %d failed\n", targets.size() - failed, failed);
  return failed ? 1 : 0;
}
