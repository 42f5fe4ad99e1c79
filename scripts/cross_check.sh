#!/usr/bin/env bash
# The hwy kernel set (src/devices/cpu/matmul_hwy.cc, ops_hwy.cc) on other CPU
# architectures: cross-compiles tests/cross/hwy_kernels_check.cc (the hwy
# set against the portable one, bit for bit, on every Highway target the CPU
# runs) with the few sources it needs, and runs it under qemu-user:
#   aarch64, dynamic dispatch with Debian's libhwy for arm64:
#     -cpu cortex-a72   NEON only
#     -cpu max          SVE2 / SVE / NEON, at 128-, 256-, 512- and 2048-bit
#                       vectors (the 128/256 ones add SVE2_128 / SVE_256)
#   riscv64, static dispatch (Debian 12 has no riscv64 libhwy; one target):
#     clang-16 -march=rv64gc   Highway's EMU128 target, the same kernel code
#                              on emulated 128-bit vectors
#     g++-12                   SCALAR (GCC < 12.3 has EMU128 marked broken):
#                              forwards to the portable kernels; a build check
#   RVV itself is not built: Highway 1.0.3's rvv-inl.h wants the unprefixed
#   v0.11 RVV intrinsics, which neither Debian 12 compiler has (clang-15:
#   v0.10 signatures; clang-16: only __riscv_-prefixed names; GCC 12: none).
# Installs what it needs (Debian 12, as root or with sudo): the cross
# compilers, qemu-user, clang-16 and libhwy-dev:arm64 (adds the arm64
# architecture to dpkg). Not part of `make test`; `make cross-check` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
packages=(g++-aarch64-linux-gnu g++-riscv64-linux-gnu qemu-user clang-16 libhwy-dev:arm64)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
if ((${#missing[@]})); then
  echo "cross-check: installing ${missing[*]}" >&2
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then "${sudo_cmd[@]}" dpkg --add-architecture arm64; fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

out=build/cross
mkdir -p "$out"
# matmul_hwy.cc's kernels, the portable reference and what they call; no
# contraction into FMA anywhere (the kernels' float order is the contract).
# ops_hwy.cc's row kernels are checked on each target too (against float64
# within tolerance, their F16 variants bit for bit).
sources=(src/devices/cpu/matmul_hwy.cc src/devices/cpu/matmul_portable.cc src/devices/cpu/matmul_packed.cc
  src/devices/cpu/ops_hwy.cc src/core/quant/*.cc src/core/status.cc src/core/dtype.cc
  tests/cross/packed_kernels_compare.cc tests/cross/row_kernels_compare.cc tests/cross/hwy_kernels_check.cc)
flags=(-std=c++20 -O2 -ffp-contract=off -Wall -Wextra -Isrc -Iinclude -Itests)

build() {  # name, libraries, compiler and its flags...
  local name=$1 libs=$2
  shift 2
  echo "cross-check: building $name"
  "$@" "${flags[@]}" "${sources[@]}" $libs -o "$out/$name"
}
build hwy_check_aarch64 -lhwy aarch64-linux-gnu-g++
build hwy_check_riscv64_emu128 "" clang++-16 --target=riscv64-linux-gnu -march=rv64gc -DHWY_COMPILE_ONLY_STATIC
build hwy_check_riscv64_gcc "" riscv64-linux-gnu-g++ -DHWY_COMPILE_ONLY_STATIC

status=0
ran=0
# name, the Highway target that must be among those checked, command...
check() {
  local name=$1 want=$2
  shift 2
  echo
  echo "== $name: $*"
  local log
  if log=$("$@" 2>&1); then
    echo "$log"
    if ! grep -qE "^$want +[0-9]+ cases" <<<"$log"; then
      echo "cross-check: $name did not check the $want target"
      status=1
    fi
  else
    echo "$log"
    echo "cross-check: $name FAILED"
    status=1
  fi
  ran=$((ran + 1))
}
arm=(qemu-aarch64 -L /usr/aarch64-linux-gnu)
check "aarch64 NEON" NEON "${arm[@]}" -cpu cortex-a72 "$out/hwy_check_aarch64"
check "aarch64 SVE 512-bit" SVE "${arm[@]}" -cpu max "$out/hwy_check_aarch64"
check "aarch64 SVE 128-bit" SVE2_128 "${arm[@]}" -cpu max,sve-default-vector-length=16 "$out/hwy_check_aarch64"
check "aarch64 SVE 256-bit" SVE_256 "${arm[@]}" -cpu max,sve-default-vector-length=32 "$out/hwy_check_aarch64"
check "aarch64 SVE 2048-bit" SVE2 "${arm[@]}" -cpu max,sve-default-vector-length=256 "$out/hwy_check_aarch64"
rv=(qemu-riscv64 -L /usr/riscv64-linux-gnu)
check "riscv64 EMU128 (clang-16)" EMU128 "${rv[@]}" "$out/hwy_check_riscv64_emu128"
check "riscv64 SCALAR (gcc-12)" SCALAR "${rv[@]}" "$out/hwy_check_riscv64_gcc"
echo
echo "cross-check: $ran runs, $([[ $status == 0 ]] && echo "all bit-identical" || echo "FAILURES above")"
exit $status
