// Shared helpers of the op conformance suite: the devices under test, fresh
// random inputs (the seed is printed by SCOPED_TRACE so a failure can be
// replayed), weight matrices in any format.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/quant/quant.h"
#include "staged_device.h"
#include "suanli/device.h"

namespace suanli::conformance {

// Every device discover_devices finds (the CPU one first), with `threads`
// CPU threads. Devices whose memory the host cannot address (GPUs) are
// wrapped so that they take the tests' host arrays (staged_device.h).
inline std::vector<std::unique_ptr<Device>> devices_under_test(int threads = 2) {
  std::vector<std::string> messages;
  DeviceOptions opt;
  opt.cpu_threads = threads;
  std::vector<std::unique_ptr<Device>> devices = discover_devices(opt, &messages);
  for (std::unique_ptr<Device>& d : devices) {
    if (d->kind() != DeviceKind::kCpu) d = std::make_unique<StagedDevice>(std::move(d));
  }
  return devices;
}

// A fresh seed per test, printed on failure.
struct Seeded {
  uint32_t seed = std::random_device{}();
  std::mt19937 rng{seed};
  std::string trace() const { return "seed=" + std::to_string(seed); }

  std::vector<float> normal(size_t n, float sigma = 1.0f) {
    std::normal_distribution<float> dist(0.0f, sigma);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
  }
  std::vector<float> uniform(size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
  }
  int uniform_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
};

// A weight matrix in `type`: quantized from random floats where the format
// has a quantizer, else random blocks with sane fp16 scale fields.
struct Weights {
  std::vector<uint8_t> bytes;
  WeightView view;
};

inline void put_fp16(uint8_t* p, float f) {
  const uint16_t h = quant::fp32_to_fp16(f);
  std::memcpy(p, &h, 2);
}

inline Weights make_weights(Seeded& s, GgmlType type, int64_t n, int64_t k) {
  Weights w;
  const int64_t rb = row_bytes(type, k);
  w.bytes.resize(static_cast<size_t>(rb * n));
  if (quant::can_quantize(type)) {
    const std::vector<float> f = s.normal(static_cast<size_t>(n * k), 0.5f);
    for (int64_t r = 0; r < n; ++r) {
      EXPECT_TRUE(quant::quantize(type, f.data() + r * k, w.bytes.data() + r * rb, k).ok());
    }
  } else {
    for (uint8_t& b : w.bytes) b = static_cast<uint8_t>(s.uniform_int(0, 255));
    const int64_t tsize = traits(type).type_size;
    for (int64_t off = 0; off < static_cast<int64_t>(w.bytes.size()); off += tsize) {
      uint8_t* blk = w.bytes.data() + off;
      const float d = s.uniform(1, 0.001f, 0.02f)[0], dmin = s.uniform(1, 0.001f, 0.02f)[0];
      switch (type) {
        case GgmlType::kQ2_K: put_fp16(blk + 80, d); put_fp16(blk + 82, dmin); break;
        case GgmlType::kQ3_K: put_fp16(blk + 108, d); break;
        case GgmlType::kQ5_K: put_fp16(blk, d); put_fp16(blk + 2, dmin); break;
        default: ADD_FAILURE() << "no generator for " << ggml_type_name(type);
      }
    }
  }
  w.view = WeightView{w.bytes.data(), type, n, k, static_cast<size_t>(rb)};
  return w;
}

inline std::vector<float> dequantized(const Weights& w) {
  std::vector<float> f(static_cast<size_t>(w.view.n_rows * w.view.n_cols));
  for (int64_t r = 0; r < w.view.n_rows; ++r) {
    EXPECT_TRUE(quant::dequantize(w.view.type, w.bytes.data() + r * w.view.row_stride, f.data() + r * w.view.n_cols,
                                  w.view.n_cols)
                    .ok());
  }
  return f;
}

inline bool bit_equal(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

}  // namespace suanli::conformance
