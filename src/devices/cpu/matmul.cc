// matmul on the CPU: threads split output rows; each weight row is
// dequantized once and dotted with all T tokens (one pass over the weights
// per batch). This is the portable baseline; faster per-format kernels
// replace it format by format.
#include <algorithm>
#include <cstring>

#include "core/quant/quant.h"
#include "devices/cpu/kernels.h"

namespace suanli::cpu {

const std::vector<GgmlType>& supported_weight_formats() {
  static const std::vector<GgmlType> kFormats = {
      GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1,
      GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K,
      GgmlType::kQ6_K};
  return kFormats;
}

void matmul(ThreadPool& pool, Workspace& ws, const float* x, int64_t n_tokens, const WeightView& w, const float* bias,
            float* out) {
  const int64_t K = w.n_cols, N = w.n_rows;
  (void)ws;
  pool.parallel_for(N, 16, [&](int64_t b, int64_t e) {
    thread_local std::vector<float> row_buf;
    if (row_buf.size() < static_cast<size_t>(K)) row_buf.resize(K);
    float* row = row_buf.data();
    for (int64_t n = b; n < e; ++n) {
      const uint8_t* wr = static_cast<const uint8_t*>(w.data) + n * w.row_stride;
      SUANLI_CHECK(quant::dequantize(w.type, wr, row, K).ok());
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * K;
        float part[8] = {};
        int64_t k = 0;
        for (; k + 8 <= K; k += 8) {
          for (int l = 0; l < 8; ++l) part[l] += xt[k + l] * row[k + l];
        }
        float acc = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
        for (; k < K; ++k) acc += xt[k] * row[k];
        if (bias) acc += bias[n];
        out[t * N + n] = acc;
      }
    }
  });
}

}  // namespace suanli::cpu
