// Defaults of the Device interface's optional members.
#include "suanli/device.h"

namespace suanli {

Expected<PreparedWeight> Device::prepare_weights(const std::vector<WeightView>& parts) {
  if (parts.size() == 1) return PreparedWeight{parts[0], nullptr};
  return Unsupported(name() + " does not stack weight matrices");
}

void Device::host_parallel_for(int64_t n, const std::function<void(int64_t)>& fn) {
  for (int64_t i = 0; i < n; ++i) fn(i);
}

}  // namespace suanli
