// Device discovery and the capability helpers shared by every device.
#include <thread>

#include "devices/cpu/cpu_device.h"
#include "suanli/device.h"
#if defined(SUANLI_WITH_GPU)
#include "devices/cuda/cuda_device.h"
#endif

namespace suanli {

std::string_view op_name(Op op) {
  switch (op) {
    case Op::kEmbed: return "embed";
    case Op::kRmsNorm: return "rms_norm";
    case Op::kMatmul: return "matmul";
    case Op::kRope: return "rope";
    case Op::kKvWrite: return "kv_write";
    case Op::kAttention: return "attention";
    case Op::kSwiglu: return "swiglu";
    case Op::kAdd: return "add";
    case Op::kConvert: return "convert";
  }
  return "unknown";
}

bool DeviceCaps::supports(GgmlType t) const {
  for (GgmlType x : weight_formats) {
    if (x == t) return true;
  }
  return false;
}
bool DeviceCaps::supports_kv(GgmlType t) const {
  for (GgmlType x : kv_formats) {
    if (x == t) return true;
  }
  return false;
}
bool DeviceCaps::supports(Op op) const {
  for (Op x : ops) {
    if (x == op) return true;
  }
  return false;
}

std::vector<std::unique_ptr<Device>> discover_devices(const DeviceOptions& options,
                                                      std::vector<std::string>* messages) {
  std::vector<std::unique_ptr<Device>> devices;
  int threads = options.cpu_threads;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  devices.push_back(std::make_unique<CpuDevice>(threads));
#if defined(SUANLI_WITH_GPU)
  // Built with SUANLI_CUDA or SUANLI_HIP: every GPU that starts, after the CPU.
  std::vector<std::string> ignored;
  discover_gpu_devices(&devices, messages ? messages : &ignored);
#else
  (void)messages;
#endif
  return devices;
}

}  // namespace suanli
