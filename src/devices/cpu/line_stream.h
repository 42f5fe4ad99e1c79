// LineStream: the cache lines of a CPU attention work unit's K / V rows,
// which a thread asks for one at a time while its kernels compute (ops.cc):
// attention queues the K / V rows of the work unit the thread will most
// likely take next (the next unit of its claimed range, else the next
// piece of its own run: ThreadPool::parallel_for hands a thread its run in
// order), and the AVX2 decode value kernel
// (accumulate_f16_group_x86) issues one of them per key and 16 elements
// (pump). Before, each unit asked for its own rows (~64-200 KiB) in one
// burst at its start; the burst stalls the thread once the core's miss
// queue is full, so every unit waited for its rows and then computed, and
// a long context's decode read its cache at ~9 GB/s of ~27 (2 threads).
// Pumped, the rows stream in while the previous unit computes. Pumping in
// the key transposition as well measured slower (its loads compete).
// A hint only: which lines are in cache never changes a result. Kernels
// that do not pump (other sets, prefill-sized groups) leave the lines to
// the next unit's start, which asks for what is left in one burst (drain),
// as every unit did before (models with several kv heads; with one, a
// unit's rows are whole slots in address order, which the hardware
// prefetchers follow). A wrong guess (another thread took the unit) costs
// the bandwidth of the lines asked for; the thread only guesses a piece it
// has not claimed yet from its own run (ThreadPool::next_own_begin).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace suanli::cpu {

struct LineStream {
  // The unit's rows: for each of the K and V pools (bases), part_bytes at
  // part_off of each slot in `slots`; runs of consecutive slots are one
  // range when a unit takes whole slots.
  const char* bases[2] = {nullptr, nullptr};
  size_t slot_bytes = 0, part_off = 0, part_bytes = 0;
  std::vector<int64_t> slots;
  int pool = 2;   // the pool being walked; 2: done
  size_t r = 0;   // next slot of that pool
  uintptr_t cur = 0;  // next line of the current range (an address)
  uintptr_t end = 0;
  uint64_t call = 0;  // which attention call and work unit the lines belong to
  int64_t unit = -1;
  void clear() {
    pool = 2;
    cur = end = 0;
    unit = -1;
  }
  bool holds(uint64_t c, int64_t u) const { return call == c && unit == u; }
  // Starts the lines of `slots` (already filled) for unit u of call c:
  // heads [h_begin, h_begin + n_heads) of slots of n_kv_heads heads of
  // head_bytes each, in the K pool k, then in the V pool v.
  void start_heads(uint64_t c, int64_t u, const void* k, const void* v, int64_t n_kv_heads, size_t head_bytes,
                   int64_t h_begin, int64_t n_heads) {
    start(c, u, k, v, static_cast<size_t>(n_kv_heads) * head_bytes, static_cast<size_t>(h_begin) * head_bytes,
          static_cast<size_t>(n_heads) * head_bytes);
  }
  // The same with the geometry in bytes: part_bytes at part_off of each
  // slot_bytes-byte slot.
  void start(uint64_t c, int64_t u, const void* k, const void* v, size_t sb, size_t off, size_t bytes) {
    bases[0] = static_cast<const char*>(k);
    bases[1] = static_cast<const char*>(v);
    slot_bytes = sb;
    part_off = off;
    part_bytes = bytes;
    pool = slots.empty() ? 2 : 0;
    r = 0;
    cur = end = 0;
    call = c;
    unit = u;
  }
  bool empty() const { return cur >= end && pool == 2; }
  // The next line's address (64-aligned), 0 when none is left.
  uintptr_t next_line() {
    if (cur >= end && !next_range()) return 0;
    const uintptr_t line = cur;
    cur += 64;
    return line;
  }
  // Asks for one line, into L2 (the unit computes from L2; L1 is the
  // kernels' own).
  void pump() {
    if (const uintptr_t line = next_line()) __builtin_prefetch(reinterpret_cast<const void*>(line), 0, 2);
  }
  void drain() {
    while (!empty()) pump();
  }

 private:
  bool next_range() {
    if (pool == 2) return false;
    const int64_t s0 = slots[r];
    size_t n = 1;
    if (part_bytes == slot_bytes) {
      while (r + n < slots.size() && slots[r + n] == s0 + static_cast<int64_t>(n)) ++n;
    }
    const uintptr_t first = reinterpret_cast<uintptr_t>(bases[pool]) + static_cast<size_t>(s0) * slot_bytes + part_off;
    end = first + (n - 1) * slot_bytes + part_bytes;
    cur = first - first % 64;  // from the start of its first line
    r += n;
    if (r == slots.size()) {
      r = 0;
      ++pool;
    }
    return true;
  }
};

}  // namespace suanli::cpu
