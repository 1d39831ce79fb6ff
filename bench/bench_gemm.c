/* bench_gemm.c: the GEMM libraries on the dynamics model's per-member products, to pick the one
 * gemm.h wraps (OpenBLAS; include/gemm.h says why).
 *
 *   bench_gemm [out.json]     (default: bench/results/gemm.json)
 *
 * Shapes: one model minibatch step per member (batch 256, 14 -> 4 x 200 -> 24): the forward
 * C = A W, the weight gradient C = A^T dZ and the input gradient C = dZ W^T of each layer, each
 * shape counted as often as a step runs it. Libraries: OpenBLAS (cblas_sgemm), BLIS (bli_sgemm),
 * libxsmm (JIT kernels from libxsmm_smmdispatch; "fallback" where it gives none and
 * libxsmm_sgemm hands the call to BLAS) and oneDNN (one batched 3-D matmul over the 7 members,
 * plus the forward with bias + swish post-ops), each where the Makefile found it (Debian:
 * libblis-dev, libxsmm-dev, libdnnl-dev). The 7 members run as OpenMP tasks, one single-threaded
 * call each, as host/cpu/nn_fused.c runs them; oneDNN threads its own batched call. Each figure is
 * the best of 5 rounds of 20 calls, at 1 thread and at all cores, beside the sgemm roof of the
 * same run; at 1 thread calls and roof are timed in process CPU seconds, which a shared machine's
 * load distorts far less than wall time. "bits" says whether a library's result equals OpenBLAS's
 * bit for bit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#ifdef HAVE_BLIS
#include <blis.h>
#endif
#ifdef HAVE_XSMM
#include <libxsmm.h>
#endif
#ifdef HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

enum { E = 7, NLIB = 4, NSHAPE = 8, BIG = 256 * 200 };
static const char* const LIB[NLIB] = {"openblas", "blis", "libxsmm", "onednn"};
/* kind 0: C = A B (A [M][K], B [K][N]); 1: C = A^T B (A [K][M]); 2: C = A B^T (B [N][K]) */
typedef struct shape {
  const char* name;
  int kind, M, N, K, count;
} shape;
static const shape S[NSHAPE] = {
    {"fwd 256x200x14", 0, 256, 200, 14, 1},  {"fwd 256x200x200", 0, 256, 200, 200, 3},
    {"fwd 256x24x200", 0, 256, 24, 200, 1},  {"dW 14x200x256", 1, 14, 200, 256, 1},
    {"dW 200x200x256", 1, 200, 200, 256, 3}, {"dW 200x24x256", 1, 200, 24, 256, 1},
    {"dx 256x200x200", 2, 256, 200, 200, 3}, {"dx 256x200x24", 2, 256, 200, 24, 1},
};
static int have[NLIB] = {1, 0, 0, 0};
static float *A, *Bm, *C, *bias;

static void openblas(const shape* s, const float* a, const float* b, float* c) {
  if (s->kind == 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->M, s->N, s->K, 1, a, s->K, b, s->N, 0, c, s->N);
  else if (s->kind == 1) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s->M, s->N, s->K, 1, a, s->M, b, s->N, 0, c, s->N);
  else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->M, s->N, s->K, 1, a, s->K, b, s->K, 0, c, s->N);
}

#ifdef HAVE_BLIS
static void blis(const shape* s, const float* a, const float* b, float* c) {
  float one = 1, zero = 0;
  const trans_t ta = s->kind == 1 ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb = s->kind == 2 ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;
  const inc_t rsa = s->kind == 1 ? s->M : s->K, rsb = s->kind == 2 ? s->K : s->N;
  bli_sgemm(ta, tb, s->M, s->N, s->K, &one, (float*)a, rsa, 1, (float*)b, rsb, 1, &zero, c, s->N, 1);
}
#endif

#ifdef HAVE_XSMM
/* column-major: row-major C = op(A) op(B) is C^T = op(B)^T op(A)^T */
static libxsmm_smmfunction xk[NSHAPE];
static void xsmm_prepare(void) {
  for (int i = 0; i < NSHAPE; i++) {
    const shape* s = &S[i];
    int flags = LIBXSMM_GEMM_FLAG_BETA_0, pf = LIBXSMM_PREFETCH_NONE;
    float alpha = 1, beta = 0;
    libxsmm_blasint lda = s->kind == 2 ? s->K : s->N, ldb = s->kind == 1 ? s->M : s->K, ldc = s->N;
    if (s->kind == 1) flags |= LIBXSMM_GEMM_FLAG_TRANS_B;
    if (s->kind == 2) flags |= LIBXSMM_GEMM_FLAG_TRANS_A;
    xk[i] = libxsmm_smmdispatch(s->N, s->M, s->K, &lda, &ldb, &ldc, &alpha, &beta, &flags, &pf);
  }
}
static void xsmm(int i, const float* a, const float* b, float* c) {
  const shape* s = &S[i];
  if (xk[i]) {
    xk[i](b, a, c);
    return;
  }
  float one = 1, zero = 0;
  libxsmm_blasint m = s->N, n = s->M, k = s->K, ldc = s->N, lda = s->kind == 2 ? s->K : s->N, ldb = s->kind == 1 ? s->M : s->K;
  libxsmm_sgemm(s->kind == 2 ? "T" : "N", s->kind == 1 ? "T" : "N", &m, &n, &k, &one, b, &lda, a, &ldb, &zero, c, &ldc);
}
#endif

#ifdef HAVE_DNNL
static dnnl_engine_t eng;
static dnnl_stream_t strm;
typedef struct dprim {
  dnnl_primitive_t p;
  dnnl_memory_t src, wei, dst, bias;
  char impl[64];
} dprim;
static dprim dp[NSHAPE], dpost;
/* one matmul over the 7 members: src [E][M][K], weights [E][K][N], dst [E][M][N]; a transposed
 * operand is the permuted tag acb; post: bias [E][1][N] and swish */
static int dnnl_make(dprim* d, const shape* s, int post) {
  dnnl_memory_desc_t src, wei, dst, bmd;
  dnnl_dims_t ds = {E, s->M, s->K}, dw = {E, s->K, s->N}, dd = {E, s->M, s->N}, db = {E, 1, s->N};
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t pd;
  dnnl_matmul_desc_t md;
  if (dnnl_memory_desc_init_by_tag(&src, 3, ds, dnnl_f32, s->kind == 1 ? dnnl_acb : dnnl_abc) ||
      dnnl_memory_desc_init_by_tag(&wei, 3, dw, dnnl_f32, s->kind == 2 ? dnnl_acb : dnnl_abc) ||
      dnnl_memory_desc_init_by_tag(&dst, 3, dd, dnnl_f32, dnnl_abc) ||
      dnnl_memory_desc_init_by_tag(&bmd, 3, db, dnnl_f32, dnnl_abc) ||
      dnnl_matmul_desc_init(&md, &src, &wei, post ? &bmd : NULL, &dst) || dnnl_primitive_attr_create(&attr))
    return -1;
  if (post) {
    dnnl_post_ops_t po;
    if (dnnl_post_ops_create(&po) || dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1.0f, 0.0f) ||
        dnnl_primitive_attr_set_post_ops(attr, po))
      return -1;
  }
  if (dnnl_primitive_desc_create(&pd, &md, attr, eng, NULL) || dnnl_primitive_create(&d->p, pd)) return -1;
  const char* impl = "?";
  dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
  snprintf(d->impl, sizeof d->impl, "%s", impl);
  if (dnnl_memory_create(&d->src, &src, eng, A) || dnnl_memory_create(&d->wei, &wei, eng, Bm) ||
      dnnl_memory_create(&d->dst, &dst, eng, C) || (post && dnnl_memory_create(&d->bias, &bmd, eng, bias)))
    return -1;
  return 0;
}
static void dnnl_run(dprim* d) {
  dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, d->src}, {DNNL_ARG_WEIGHTS, d->wei}, {DNNL_ARG_DST, d->dst}, {DNNL_ARG_BIAS, d->bias}};
  dnnl_primitive_execute(d->p, strm, d->bias ? 4 : 3, a);
  dnnl_stream_wait(strm);
}
#endif

/* one ensemble call: 7 members of shape i with library l (members at BIG-float strides) */
static void ensemble(int l, int i, int threads) {
#ifdef HAVE_DNNL
  if (l == 3) {
    dnnl_run(&dp[i]);
    return;
  }
#endif
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int e = 0; e < E; e++) {
    const float *a = A + (size_t)e * BIG, *b = Bm + (size_t)e * BIG;
    float* c = C + (size_t)e * BIG;
    if (l == 0) openblas(&S[i], a, b, c);
#ifdef HAVE_BLIS
    if (l == 1) blis(&S[i], a, b, c);
#endif
#ifdef HAVE_XSMM
    if (l == 2) xsmm(i, a, b, c);
#endif
  }
}

/* seconds per ensemble call, best of 5 rounds of 20; at 1 thread in CPU seconds (bench_cpu_s) */
static double time_call(int l, int i, int threads) {
  double best = 1e30;
  ensemble(l, i, threads);
  for (int r = 0; r < 5; r++) {
    double t0 = threads == 1 ? bench_cpu_s() : now_s();
    for (int k = 0; k < 20; k++) ensemble(l, i, threads);
    double t = ((threads == 1 ? bench_cpu_s() : now_s()) - t0) / 20;
    if (t < best) best = t;
  }
  return best;
}

int main(int argc, char** argv) {
  threads_init(argc, argv);
  const char* out = argc > 1 ? argv[1] : "bench/results/gemm.json";
  const bench_machine mach = bench_machine_read();
  const int tmax = mach.threads;
  A = xmalloc(sizeof(float) * E * BIG), Bm = xmalloc(sizeof(float) * E * BIG), C = xmalloc(sizeof(float) * E * BIG);
  bias = xmalloc(sizeof(float) * E * 200);
  float* ref = xmalloc(sizeof(float) * E * BIG);
  for (long i = 0; i < (long)E * BIG; i++) {
    A[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    Bm[i] = (float)((i * 104729) % 997) / 997.0f - 0.5f;
  }
  for (int i = 0; i < E * 200; i++) bias[i] = 0.01f * (float)i;
  char note[NLIB][160] = {"", "not built: libblis-dev not found", "not built: libxsmm-dev not found",
                          "not built: libdnnl-dev not found"};
#ifdef HAVE_BLIS
  bli_thread_set_num_threads(1);
  have[1] = 1, note[1][0] = 0;
#endif
#ifdef HAVE_XSMM
  libxsmm_init();
  xsmm_prepare();
  have[2] = 1;
  snprintf(note[2], sizeof note[2], "JIT kernels; libxsmm_sgemm (falls back to BLAS) for");
  for (int i = 0; i < NSHAPE; i++)
    if (!xk[i]) snprintf(note[2] + strlen(note[2]), sizeof note[2] - strlen(note[2]), " %s,", S[i].name);
#endif
  int post_ok = 0;
  char post_impl[64] = "";
  (void)post_ok; /* set only with oneDNN */
#ifdef HAVE_DNNL
  if (dnnl_engine_create(&eng, dnnl_cpu, 0) == dnnl_success && dnnl_stream_create(&strm, eng, dnnl_stream_default_flags) == dnnl_success) {
    have[3] = 1;
    for (int i = 0; i < NSHAPE; i++)
      if (dnnl_make(&dp[i], &S[i], 0)) have[3] = 0;
    snprintf(note[3], sizeof note[3], "one batched matmul (7 members), %s", have[3] ? dp[1].impl : "primitive creation failed");
    post_ok = dnnl_make(&dpost, &S[1], 1) == 0;
    if (post_ok) snprintf(post_impl, sizeof post_impl, "%s", dpost.impl);
  }
#endif
  const int tcount = tmax > 1 ? 2 : 1, tlist[2] = {1, tmax};
  double gfl[2][NLIB][NSHAPE], ms[2][NLIB];
  int same[NLIB][NSHAPE];
  double flop_step = 0;
  for (int i = 0; i < NSHAPE; i++) flop_step += 2.0 * E * S[i].M * S[i].N * S[i].K * S[i].count;
  for (int l = 0; l < NLIB; l++) {
    if (!have[l]) continue;
    for (int i = 0; i < NSHAPE; i++) {
      ensemble(0, i, tmax);
      memcpy(ref, C, sizeof(float) * E * BIG);
      memset(C, 0, sizeof(float) * E * BIG);
      ensemble(l, i, tmax);
      int eq = 1;
      for (int e = 0; e < E; e++) eq &= !memcmp(ref + (size_t)e * BIG, C + (size_t)e * BIG, sizeof(float) * S[i].M * S[i].N);
      same[l][i] = eq;
    }
    for (int t = 0; t < tcount; t++) {
      /* OpenBLAS, oneDNN: inside a 1-thread team OpenMP reports no parallel region, so OpenBLAS would
       * thread its calls at its own count */
      threads_set(tlist[t]);
      ms[t][l] = 0;
      for (int i = 0; i < NSHAPE; i++) {
        const double s = time_call(l, i, tlist[t]);
        gfl[t][l][i] = 2.0 * E * S[i].M * S[i].N * S[i].K / s / 1e9;
        ms[t][l] += 1e3 * s * S[i].count;
      }
      threads_set(tmax);
    }
  }
  double post_gflops = 0;
#ifdef HAVE_DNNL
  if (post_ok) {
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
      double t0 = now_s();
      dnnl_run(&dpost);
      double t = now_s() - t0;
      if (t < best) best = t;
    }
    post_gflops = 2.0 * E * 256 * 200 * 200 / best / 1e9;
  }
#endif
  double roof[2];
  for (int t = 0; t < tcount; t++) roof[t] = tlist[t] == 1 ? bench_sgemm_roof_cpu(5, tmax) : bench_sgemm_roof(tlist[t], 5, tmax);

  for (int t = 0; t < tcount; t++) {
    printf("%d thread%s (sgemm roof %.1f GFLOP/s); GFLOP/s per shape, * = OpenBLAS's bits\n%-18s", tlist[t],
           tlist[t] > 1 ? "s" : "", roof[t], "shape");
    for (int l = 0; l < NLIB; l++) printf(" %10s", have[l] ? LIB[l] : "-");
    printf("\n");
    for (int i = 0; i < NSHAPE; i++) {
      printf("%-15s x%d", S[i].name, S[i].count);
      for (int l = 0; l < NLIB; l++)
        if (have[l]) printf(" %9.1f%c", gfl[t][l][i], same[l][i] ? '*' : ' ');
        else printf(" %10s", "-");
      printf("\n");
    }
    printf("%-18s", "step's GEMMs, ms");
    for (int l = 0; l < NLIB; l++)
      if (have[l]) printf(" %10.2f", ms[t][l]);
      else printf(" %10s", "-");
    printf("\n%-18s", "  % of roof");
    for (int l = 0; l < NLIB; l++)
      if (have[l]) printf(" %9.0f%%", 100 * flop_step / (ms[t][l] * 1e-3) / 1e9 / roof[t]);
      else printf(" %10s", "-");
    printf("\n");
  }
  for (int l = 1; l < NLIB; l++)
    if (note[l][0]) printf("%s: %s\n", LIB[l], note[l]);
  if (have[3]) printf("onednn forward 256x200x200 with bias + swish post-ops: %.1f GFLOP/s (%s)\n", post_gflops, post_impl);

  FILE* f = bench_json_open_cpu(out, "gemm", &mach, loadavg1());
  if (!f) return 1;
  fprintf(f, "},\n  \"method\": \"7 members per call (OpenMP tasks, one single-threaded call each; oneDNN: one "
             "batched matmul), best of 5 rounds of 20 calls, at 1 thread in process CPU seconds; step = each shape "
             "times its count\",\n");
  fprintf(f, "  \"step_gemm_gflop\": %.4f,\n  \"runs\": [\n", flop_step / 1e9);
  for (int t = 0; t < tcount; t++) {
    fprintf(f, "    {\"threads\": %d, \"roof_gflops\": %.2f, \"libraries\": {", tlist[t], roof[t]);
    int first = 1;
    for (int l = 0; l < NLIB; l++) {
      if (!have[l]) continue;
      fprintf(f, "%s\n      \"%s\": {\"step_ms\": %.3f, \"fraction\": %.3f, \"shapes\": {", first ? "" : ",", LIB[l],
              ms[t][l], flop_step / (ms[t][l] * 1e-3) / 1e9 / roof[t]);
      for (int i = 0; i < NSHAPE; i++)
        fprintf(f, "%s\"%s\": {\"gflops\": %.2f, \"same_bits\": %s}", i ? ", " : "", S[i].name, gfl[t][l][i],
                same[l][i] ? "true" : "false");
      fprintf(f, "}}");
      first = 0;
    }
    fprintf(f, "}}%s\n", t + 1 < tcount ? "," : "");
  }
  fprintf(f, "  ],\n  \"notes\": {");
  for (int l = 1; l < NLIB; l++) {
    fprintf(f, "%s\"%s\": ", l > 1 ? ", " : "", LIB[l]);
    json_str(f, note[l]);
  }
  fprintf(f, "},\n  \"onednn_bias_swish_post_ops\": {\"gflops\": %.3f, \"impl\": ", post_gflops);
  json_str(f, post_impl);
  fprintf(f, "}\n}\n");
  fclose(f);
  printf("wrote %s\n", out);
  return 0;
}
