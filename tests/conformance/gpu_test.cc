// The GPU device (SUANLI_CUDA / SUANLI_HIP builds): found when a GPU is
// there, skipped with the registry's reason when not. Its ops are checked by
// the op tests like every device's (they run on every device found); this
// file checks what those do not: memory, copies, errors.
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "suanli/device.h"

namespace suanli {
namespace {

#if defined(SUANLI_WITH_GPU)
// The GPU devices found, or the reason there are none.
std::vector<std::unique_ptr<Device>> gpus(std::string* why_none) {
  std::vector<std::string> messages;
  std::vector<std::unique_ptr<Device>> all = discover_devices(DeviceOptions{}, &messages), out;
  for (auto& d : all) {
    if (d->kind() == DeviceKind::kCuda) out.push_back(std::move(d));
  }
  for (const std::string& m : messages) *why_none += (why_none->empty() ? "" : "; ") + m;
  return out;
}
#endif

TEST(Gpu, device_round_trips_memory_and_reports_itself) {
#if !defined(SUANLI_WITH_GPU)
  GTEST_SKIP() << "no CUDA device: built without SUANLI_CUDA / SUANLI_HIP";
#else
  std::string why;
  auto devices = gpus(&why);
  if (devices.empty()) GTEST_SKIP() << "no CUDA device: " << why;
  for (auto& dev : devices) {
    SCOPED_TRACE(dev->name());
    EXPECT_GT(dev->memory().total_bytes, 0u);
    EXPECT_TRUE(dev->caps().supports(GgmlType::kQ4_K));
    EXPECT_TRUE(dev->caps().supports(GgmlType::kMXFP8_E4M3));
    EXPECT_TRUE(dev->caps().supports_kv(GgmlType::kF16));
    // Upload, a device-side copy, download: the same bytes, including a copy
    // larger than the staging arena (chunked) and map_host.
    for (size_t n : {size_t{1}, size_t{4096}, size_t{40} << 20}) {
      std::vector<uint8_t> host(n), back(n);
      std::iota(host.begin(), host.end(), uint8_t{7});
      auto a = dev->alloc(n), b = dev->map_host(host.data(), n);
      ASSERT_TRUE(a.has_value() && b.has_value());
      ASSERT_TRUE(dev->upload((*a)->data(), host.data(), n).ok());
      host.assign(n, 0);  // the upload must not read host memory after it returns
      ASSERT_TRUE(dev->synchronize().ok());
      ASSERT_TRUE(dev->download(back.data(), (*a)->data(), n).ok());
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(back[i], static_cast<uint8_t>(7 + i)) << i;
      back.assign(n, 0);
      ASSERT_TRUE(dev->download(back.data(), (*b)->data(), n).ok());
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(back[i], static_cast<uint8_t>(7 + i)) << i;
    }
    // An impossible allocation is a Status, not a crash or a sticky error.
    EXPECT_FALSE(dev->alloc(size_t{1} << 50).has_value());
    EXPECT_TRUE(dev->synchronize().ok());
  }
#endif
}

TEST(Gpu, roofline_is_measured) {
#if !defined(SUANLI_WITH_GPU)
  GTEST_SKIP() << "no CUDA device: built without SUANLI_CUDA / SUANLI_HIP";
#else
  std::string why;
  auto devices = gpus(&why);
  if (devices.empty()) GTEST_SKIP() << "no CUDA device: " << why;
  for (auto& dev : devices) {
    const Roofline r = dev->measure_roofline();
    EXPECT_GT(r.memory_gbs, 50.0) << dev->name();
    EXPECT_GT(r.int8_gops, 1000.0) << dev->name();
    EXPECT_GT(r.fp32_gflops, 1000.0) << dev->name();
  }
#endif
}

}  // namespace
}  // namespace suanli
