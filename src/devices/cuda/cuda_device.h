// The CUDA device (also built as HIP): device memory, one stream, the op set
// on the GPU. The class lives in cuda_device.cu; the rest of suanli sees it
// only through the Device interface, found by discover_gpu_devices.
//
// Thread safety: as every Device, driven by one thread at a time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "suanli/device.h"

namespace suanli {

// Appends a device for every GPU that initializes. With no GPU, no driver,
// or a device that fails to start, appends the reason to *messages instead
// ("CUDA: no device: ..."); never fatal.
void discover_gpu_devices(std::vector<std::unique_ptr<Device>>* devices, std::vector<std::string>* messages);

}  // namespace suanli
