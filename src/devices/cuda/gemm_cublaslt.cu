// The tensor-core matmul: bf16 operands, fp32 accumulation, via cuBLASLt.
//
// out[T][N] is row-major, i.e. column-major [N][T] with leading dimension N,
// so cuBLASLt computes D[Nt][T] = op(A)·B per tile of Nt weight rows:
// A = the tile dequantized to bf16, stored [Nt][K] (column-major [K][Nt],
// transposed), B = x rounded to bf16, [T][K] (column-major [K][T]), and D
// written straight into out at column offset n0 (leading dimension N).
// Tiles hold at most kTileBytes of bf16 weights, so a 128k-row vocabulary
// matrix needs no 1 GiB scratch.
//
// FP8: MXFP8_E4M3 weights take the same bf16 path (their values are exact
// in bf16). Hopper's FP8 cuBLASLt kernels scale whole tensors (or rows),
// not 32-element blocks, so feeding them MX blocks would need a lossy
// requantization; Blackwell's block-scaled FP8 (VEC32_UE8M0 scales) would
// take MXFP8 as it is and is the natural next step (docs/cuda.md).
#include "devices/cuda/kernels.h"

#if !defined(SUANLI_GPU_HIP)
#include <cublasLt.h>
#endif

namespace suanli::gpu {

#if defined(SUANLI_GPU_HIP)

struct TensorCoreGemm::Impl {};
TensorCoreGemm::TensorCoreGemm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TensorCoreGemm::~TensorCoreGemm() = default;

std::unique_ptr<TensorCoreGemm> TensorCoreGemm::create(std::string* why_not) {
  *why_not = "the tensor-core path needs cuBLASLt (Debian's ROCm 5.2 has no hipBLASLt)";
  return nullptr;
}

bool TensorCoreGemm::run(const float*, int64_t, const WeightView&, const float*, float*, Stream, std::string* error) {
  *error = "not built";
  return false;
}

#else

namespace {
constexpr size_t kWorkspaceBytes = size_t{32} << 20;
constexpr size_t kTileBytes = size_t{128} << 20;

std::string lt_error(const char* what, cublasStatus_t st) {
  return std::string(what) + " failed: cuBLASLt status " + std::to_string(static_cast<int>(st));
}
}  // namespace

struct TensorCoreGemm::Impl {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  uint16_t* xb = nullptr;  // x in bf16
  size_t xb_elems = 0;
  uint16_t* wb = nullptr;  // one weight tile in bf16
  size_t wb_elems = 0;

  ~Impl() {
    if (workspace) device_free(workspace);
    if (xb) device_free(xb);
    if (wb) device_free(wb);
    if (handle) cublasLtDestroy(handle);
  }

  bool grow(uint16_t** p, size_t* have, size_t need) {
    if (*have >= need) return true;
    if (*p) device_free(*p);
    *p = nullptr;
    *have = 0;
    if (device_malloc(reinterpret_cast<void**>(p), need * sizeof(uint16_t)) != kSuccess) {
      (void)get_last_error();  // the caller falls back; no launch check may see this
      *p = nullptr;
      return false;
    }
    *have = need;
    return true;
  }
};

TensorCoreGemm::TensorCoreGemm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TensorCoreGemm::~TensorCoreGemm() = default;

std::unique_ptr<TensorCoreGemm> TensorCoreGemm::create(std::string* why_not) {
  auto impl = std::make_unique<Impl>();
  const cublasStatus_t st = cublasLtCreate(&impl->handle);
  if (st != CUBLAS_STATUS_SUCCESS) {
    *why_not = lt_error("cublasLtCreate", st);
    return nullptr;
  }
  if (device_malloc(&impl->workspace, kWorkspaceBytes) != kSuccess) {
    *why_not = "cannot allocate the cuBLASLt workspace";
    return nullptr;
  }
  return std::unique_ptr<TensorCoreGemm>(new TensorCoreGemm(std::move(impl)));
}

bool TensorCoreGemm::run(const float* x, int64_t n_tokens, const WeightView& w, const float* bias, float* out,
                         Stream s, std::string* error) {
  Impl& m = *impl_;
  const int64_t K = w.n_cols, N = w.n_rows;
  int64_t tile = static_cast<int64_t>(kTileBytes / (sizeof(uint16_t) * static_cast<size_t>(K)));
  tile = tile < 16 ? 16 : tile / 16 * 16;
  if (tile > 65520) tile = 65520;  // launch_dequant_bf16's grid.y limit
  if (tile > N) tile = N;
  // BF16 rows stored densely are the operand as they are: no copy.
  const bool direct = w.type == GgmlType::kBF16 && w.row_stride == static_cast<size_t>(2 * K) &&
                      reinterpret_cast<uintptr_t>(w.data) % 16 == 0;
  if (direct) tile = N;
  if (!m.grow(&m.xb, &m.xb_elems, static_cast<size_t>(n_tokens * K)) ||
      (!direct && !m.grow(&m.wb, &m.wb_elems, static_cast<size_t>(tile * K)))) {
    *error = "cannot allocate bf16 scratch for the tensor-core matmul";
    return false;
  }
  launch_f32_to_bf16(x, n_tokens * K, m.xb, s);

  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a_desc = nullptr, b_desc = nullptr, d_desc = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  bool ok = false;
  auto fail = [&](const char* what, cublasStatus_t st) {
    *error = lt_error(what, st);
    return false;
  };
  [&] {
    cublasStatus_t st = cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (st != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatmulDescCreate", st);
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    st = cublasLtMatrixLayoutCreate(&b_desc, CUDA_R_16BF, static_cast<uint64_t>(K), static_cast<uint64_t>(n_tokens),
                                    K);
    if (st != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatrixLayoutCreate", st);
    st = cublasLtMatmulPreferenceCreate(&pref);
    if (st != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatmulPreferenceCreate", st);
    const uint64_t ws = kWorkspaceBytes;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    for (int64_t n0 = 0; n0 < N; n0 += tile) {
      const int64_t nt = N - n0 < tile ? N - n0 : tile;
      const uint16_t* wtile = m.wb;
      if (direct) {
        wtile = static_cast<const uint16_t*>(w.data) + n0 * K;
      } else {
        launch_dequant_bf16(w, n0, nt, m.wb, s);
      }
      if (a_desc) cublasLtMatrixLayoutDestroy(a_desc);
      if (d_desc) cublasLtMatrixLayoutDestroy(d_desc);
      a_desc = d_desc = nullptr;
      st = cublasLtMatrixLayoutCreate(&a_desc, CUDA_R_16BF, static_cast<uint64_t>(K), static_cast<uint64_t>(nt), K);
      if (st != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatrixLayoutCreate", st);
      st = cublasLtMatrixLayoutCreate(&d_desc, CUDA_R_32F, static_cast<uint64_t>(nt),
                                      static_cast<uint64_t>(n_tokens), N);
      if (st != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatrixLayoutCreate", st);
      cublasLtMatmulHeuristicResult_t result{};
      int found = 0;
      st = cublasLtMatmulAlgoGetHeuristic(m.handle, op, a_desc, b_desc, d_desc, d_desc, pref, 1, &result, &found);
      if (st != CUBLAS_STATUS_SUCCESS || found == 0) return fail("cublasLtMatmulAlgoGetHeuristic", st);
      const float alpha = 1.0f, beta = 0.0f;
      st = cublasLtMatmul(m.handle, op, &alpha, wtile, a_desc, m.xb, b_desc, &beta, out + n0, d_desc, out + n0,
                          d_desc, &result.algo, m.workspace, kWorkspaceBytes, s);
      if (st != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatmul", st);
    }
    if (bias) launch_add_bias(out, bias, n_tokens, N, s);
    ok = true;
    return true;
  }();
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  if (a_desc) cublasLtMatrixLayoutDestroy(a_desc);
  if (b_desc) cublasLtMatrixLayoutDestroy(b_desc);
  if (d_desc) cublasLtMatrixLayoutDestroy(d_desc);
  if (op) cublasLtMatmulDescDestroy(op);
  return ok;
}

#endif

}  // namespace suanli::gpu
