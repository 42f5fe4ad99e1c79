// suanli devices [--json]: every device that initializes, with its measured
// roofline (memory bandwidth, peak int8 and fp32 arithmetic).
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "commands.h"
#include "suanli/device.h"

namespace suanli::cli {
namespace {

struct DevicesArgs {
  int threads = 0;
  bool json = false;
};

std::string kind_name(DeviceKind k) {
  switch (k) {
    case DeviceKind::kCpu: return "cpu";
    case DeviceKind::kCuda: return "cuda";
    case DeviceKind::kVulkan: return "vulkan";
  }
  return "unknown";
}

}  // namespace

Runner add_devices(CLI::App& app) {
  auto a = std::make_shared<DevicesArgs>();
  CLI::App* sub = app.add_subcommand("devices", "List devices with their measured bandwidth and peak arithmetic");
  sub->add_option("-t,--threads", a->threads, "CPU threads (default: all cores)");
  sub->add_flag("--json", a->json, "Print a JSON list");
  return [a] {
    std::vector<std::string> messages;
    DeviceOptions opt;
    opt.cpu_threads = a->threads;
    auto devices = discover_devices(opt, &messages);
    for (const std::string& m : messages) std::fprintf(stderr, "suanli devices: %s\n", m.c_str());
    nlohmann::json out = nlohmann::json::array();
    for (auto& d : devices) {
      const Roofline r = d->measure_roofline();
      const MemoryInfo mem = d->memory();
      std::vector<std::string> formats;
      for (GgmlType t : d->caps().weight_formats) formats.emplace_back(ggml_type_name(t));
      nlohmann::json j = {{"name", d->name()},
                          {"kind", kind_name(d->kind())},
                          {"memory_total_bytes", mem.total_bytes},
                          {"memory_free_bytes", mem.free_bytes},
                          {"memory_bandwidth_gbs", r.memory_gbs},
                          {"peak_int8_gops", r.int8_gops},
                          {"peak_fp32_gflops", r.fp32_gflops},
                          {"weight_formats", formats}};
      if (d->kind() == DeviceKind::kCpu) j["threads"] = a->threads > 0 ? a->threads : std::thread::hardware_concurrency();
      out.push_back(j);
      if (!a->json) {
        std::printf("%s\n", d->name().c_str());
        std::printf("  kind             %s\n", kind_name(d->kind()).c_str());
        if (j.contains("threads")) std::printf("  threads          %d\n", j["threads"].get<int>());
        std::printf("  memory           %.1f GiB total, %.1f GiB free\n", mem.total_bytes / double(1ull << 30),
                    mem.free_bytes / double(1ull << 30));
        std::printf("  bandwidth        %.1f GB/s (measured, read)\n", r.memory_gbs);
        std::printf("  peak int8        %.0f GOPS (measured)\n", r.int8_gops);
        std::printf("  peak fp32        %.0f GFLOPS (measured)\n", r.fp32_gflops);
        std::string f;
        for (const std::string& s : formats) f += (f.empty() ? "" : " ") + s;
        std::printf("  weight formats   %s\n", f.c_str());
      }
    }
    if (a->json) std::printf("%s\n", out.dump(2).c_str());
    return 0;
  };
}

}  // namespace suanli::cli
