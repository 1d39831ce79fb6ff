// dx_lt.cu: dx_gemm2_ep's fused GEMMs on the GPU (dx_cuda.h's dxc_gemm_ep): one cuBLASLt
// strided-batched matmul with the bias and ReLU in its epilogue (CUBLASLT_EPILOGUE_RELU_BIAS), in
// place of a GEMM and an element op.
//
// Row-major C [M][N] = op(A) op(B) is column-major C^T [N][M] = op(B)^T op(A)^T, as in dxc_gemm: the
// Lt call's A is our B, its B our A, m = N (so the bias, one per column of our C, is one per row of
// the Lt result, which is what the epilogue broadcasts), n = M.
//
// Defensive by design, as this code cannot be run where it is written: every cuBLASLt status is
// checked and reported with the op's name and shapes; the heuristic is asked once per shape,
// alignment and workspace (at the first call, which in a captured phase is the capture: a graph's
// replay calls nothing here), and when it offers no algorithm, or the shape is one the code does not
// hand to cuBLASLt (a zero batch stride, sizes past int), the caller takes the two-step path and
// one log line per shape says so. The workspace is the lane's cuBLAS workspace (the same stream
// orders them), its size explicit.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "dx_cuda.h"

extern "C" void mbpo_note(const char* fmt, ...); // include/log.h (C, without C++ guards)

// A shape's plan: the heuristic's algorithm (ok) or its absence (!ok), by everything it depends on.
struct lt_key {
  int ta, tb, M, N, K, lda, ldb, ldc, batch, kind;
  long sA, sB, sC, sbias;
  int alA, alB, alD, albias; // the operands' byte alignment (the heuristic assumes 256 otherwise)
  size_t ws;
};
struct lt_plan {
  lt_key key;
  int ok;
  cublasLtMatmulAlgo_t algo;
};

#define LT_PLANS 256
static lt_plan g_plans[LT_PLANS];
static int g_nplans;
static std::mutex g_plan_lock; // contexts of a population issue from several threads
static cublasLtHandle_t g_lt;  // one handle for the process: it holds no stream and no workspace

// The largest power of two (<= 256) dividing the address and every batch matrix's offset.
static int align_of(const void* p, long stride_floats) {
  uintptr_t a = (uintptr_t)p | 256u;
  if (stride_floats) a |= (uintptr_t)stride_floats * sizeof(float);
  return (int)(a & (~a + 1));
}

static void lt_fail(void* s, const char* call, cublasStatus_t st, const char* name, const lt_key* k) {
  char m[400];
  snprintf(m, sizeof m, "cuBLASLt status %d (%s) in gemm_ep %dx%dx%d, batch %d, ta %d tb %d, lda %d ldb %d ldc %d, then op %s",
           (int)st, cublasLtGetStatusString(st), k->M, k->N, k->K, k->batch, k->ta, k->tb, k->lda, k->ldb, k->ldc,
           name ? name : "?");
  dx_cuda_fail(dxc_owner(s), call, m);
}

#define CKL(call)                                                   \
  do {                                                              \
    cublasStatus_t st_ = (call);                                    \
    if (st_ != CUBLAS_STATUS_SUCCESS) lt_fail(s, #call, st_, name, &k); \
  } while (0)

// The descriptors of one call (made per call: cheap host objects; only the algorithm is cached).
struct lt_descs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
};

static void layout(void* s, const char* name, const lt_key& k, cublasLtMatrixLayout_t* l, int rows, int cols, int ld,
                   long stride) {
  CKL(cublasLtMatrixLayoutCreate(l, CUDA_R_32F, (uint64_t)rows, (uint64_t)cols, (int64_t)ld));
  const int32_t bc = k.batch;
  const int64_t so = stride;
  CKL(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc));
  CKL(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &so, sizeof so));
}

static void descs_make(void* s, const char* name, const lt_key& k, const float* bias, lt_descs* x) {
  CKL(cublasLtMatmulDescCreate(&x->op, CUBLAS_COMPUTE_32F, CUDA_R_32F)); // float32, no TF32
  const cublasOperation_t opa = k.tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = k.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  CKL(cublasLtMatmulDescSetAttribute(x->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
  CKL(cublasLtMatmulDescSetAttribute(x->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
  const cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_RELU_BIAS;
  CKL(cublasLtMatmulDescSetAttribute(x->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
  CKL(cublasLtMatmulDescSetAttribute(x->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
  const int64_t bs = k.sbias;
  CKL(cublasLtMatmulDescSetAttribute(x->op, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, &bs, sizeof bs));
  // Lt A = our B: stored N x K column-major (tb = 0) or K x N (tb = 1); Lt B = our A likewise
  layout(s, name, k, &x->a, k.tb ? k.K : k.N, k.tb ? k.N : k.K, k.ldb, k.sB);
  layout(s, name, k, &x->b, k.ta ? k.M : k.K, k.ta ? k.K : k.M, k.lda, k.sA);
  layout(s, name, k, &x->d, k.N, k.M, k.ldc, k.sC);
}

static void descs_free(void* s, const char* name, const lt_key& k, lt_descs* x) {
  if (x->a) CKL(cublasLtMatrixLayoutDestroy(x->a));
  if (x->b) CKL(cublasLtMatrixLayoutDestroy(x->b));
  if (x->d) CKL(cublasLtMatrixLayoutDestroy(x->d));
  if (x->op) CKL(cublasLtMatmulDescDestroy(x->op));
}

// The shape's plan, asking the heuristic on its first call (under the lock); NULL when the table
// is full (then every call asks, and says so once).
static const lt_plan* plan_for(void* s, const char* name, const lt_key& k, const lt_descs& x) {
  std::lock_guard<std::mutex> g(g_plan_lock);
  for (int i = 0; i < g_nplans; i++)
    if (!memcmp(&g_plans[i].key, &k, sizeof k)) return &g_plans[i];
  cublasLtMatmulPreference_t pref = nullptr;
  CKL(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = k.ws;
  CKL(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  const uint32_t al[4] = {(uint32_t)k.alB, (uint32_t)k.alA, (uint32_t)k.alD, (uint32_t)k.alD};
  CKL(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al[0], sizeof al[0]));
  CKL(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al[1], sizeof al[1]));
  CKL(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al[2], sizeof al[2]));
  CKL(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al[3], sizeof al[3]));
  cublasLtMatmulHeuristicResult_t res;
  memset(&res, 0, sizeof res);
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(g_lt, x.op, x.a, x.b, x.d, x.d, pref, 1, &res, &found);
  CKL(cublasLtMatmulPreferenceDestroy(pref));
  // NOT_SUPPORTED is an answer (no algorithm for this shape), not a fault
  if (st != CUBLAS_STATUS_SUCCESS && st != CUBLAS_STATUS_NOT_SUPPORTED)
    lt_fail(s, "cublasLtMatmulAlgoGetHeuristic", st, name, &k);
  const int ok = st == CUBLAS_STATUS_SUCCESS && found > 0 && res.state == CUBLAS_STATUS_SUCCESS;
  if (!ok)
    mbpo_note("dx: cuBLASLt has no RELU_BIAS algorithm for gemm_ep %dx%dx%d, batch %d (op %s; status %d, %d found): "
              "the GEMM and the op run as two steps", k.M, k.N, k.K, k.batch, name ? name : "?", (int)st, found);
  if (g_nplans == LT_PLANS) {
    static int said;
    if (!said++) mbpo_note("dx: cuBLASLt plan table full (%d shapes): later shapes ask the heuristic on every call", LT_PLANS);
    static thread_local lt_plan spare;
    spare = lt_plan{k, ok, res.algo};
    return &spare;
  }
  g_plans[g_nplans] = lt_plan{k, ok, res.algo};
  return &g_plans[g_nplans++];
}

extern "C" void dxc_lt_init(void* s) {
  std::lock_guard<std::mutex> g(g_plan_lock);
  if (g_lt) return;
  const char* name = "(set-up)";
  lt_key k;
  memset(&k, 0, sizeof k);
  CKL(cublasLtCreate(&g_lt));
}

extern "C" int dxc_gemm_ep(void* s, int ta, int tb, int M, int N, int K, const float* A, int lda, long sA,
                           const float* B, int ldb, long sB, float* C, int ldc, long sC, int batch, int ep_kind,
                           const float* bias, long bias_stride, float* out, const char* name) {
  (void)C; // beta = 0: the fused call writes out, and C is not read
  if (ep_kind != 1 /* DX_EP_RELU_BIAS */ || !bias || !out || !g_lt) return 0;
  // shapes handed to cuBLASLt: positive sizes, and with a batch, nonzero strides (a shared operand
  // at stride 0 is left to the two-step path rather than trusted to every algorithm)
  if (M <= 0 || N <= 0 || K <= 0 || batch <= 0) return 0;
  if (batch > 1 && (sA <= 0 || sB <= 0 || sC <= 0 || bias_stride <= 0)) return 0;
  void* ws = nullptr;
  size_t ws_bytes = 0;
  void* stream = dxc_lane_ws(s, &ws, &ws_bytes);
  lt_key k;
  memset(&k, 0, sizeof k); // the key is compared bytewise: padding too
  k.ta = ta, k.tb = tb, k.M = M, k.N = N, k.K = K, k.lda = lda, k.ldb = ldb, k.ldc = ldc, k.batch = batch;
  k.kind = ep_kind, k.sA = sA, k.sB = sB, k.sC = sC, k.sbias = bias_stride;
  k.alA = align_of(A, batch > 1 ? sA : 0), k.alB = align_of(B, batch > 1 ? sB : 0);
  k.alD = align_of(out, batch > 1 ? sC : 0), k.albias = align_of(bias, batch > 1 ? bias_stride : 0);
  k.ws = ws_bytes;
  lt_descs x;
  descs_make(s, name, k, bias, &x);
  const lt_plan* p = plan_for(s, name, k, x);
  if (p->ok) {
    const float one = 1.0f, zero = 0.0f;
    CKL(cublasLtMatmul(g_lt, x.op, &one, B, x.a, A, x.b, &zero, out, x.d, out, x.d, &p->algo, ws, ws_bytes,
                       (cudaStream_t)stream));
  }
  descs_free(s, name, k, &x);
  return p->ok;
}
