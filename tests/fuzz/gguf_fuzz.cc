// libFuzzer target: arbitrary bytes through the GGUF reader and the model
// summary. The reader must return a Status for anything; ASan/UBSan catch
// any out-of-bounds read, overflow or leak on the way.
#include <cstddef>
#include <cstdint>

#include "suanli/gguf.h"
#include "suanli/model_info.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  suanli::Expected<suanli::GgufFile> f = suanli::GgufFile::parse({data, size});
  if (!f) return 0;
  // Exercise what consumers do with a file that parsed.
  for (const auto& [key, value] : f->metadata()) (void)value.to_display_string();
  for (const suanli::GgufTensorInfo& t : f->tensors()) {
    volatile uint8_t sink = t.n_bytes ? t.data[t.n_bytes - 1] : 0;
    (void)sink;
  }
  (void)suanli::ModelInfo::from_gguf(*f);
  return 0;
}
