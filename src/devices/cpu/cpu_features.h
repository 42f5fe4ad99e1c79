// Run-time x86 feature checks for the CPU kernels' dispatch. F16C is read
// from CPUID directly: clang's __builtin_cpu_supports does not know it.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace suanli::cpu {

inline bool cpu_has_f16c() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & bit_F16C) != 0;
#else
  return false;
#endif
}

}  // namespace suanli::cpu
