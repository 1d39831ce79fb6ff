/* test_ops.c: the op table, in the manner of ggml's test-backend-ops. Every dx op (each DX_OP
 * element op of kernels/ *_k.h, each GEMM form including the pointer-array one and the GEMMs
 * fused with an element op (dx_gemm2_ep), sort, select,
 * copy, zero, the gathers and Philox) runs on random shapes and arguments on every context there
 * is: the host emulation, the deferred host emulation (MBPO_DX_DEFER), and the GPU when one is
 * usable (else a visible skip), eagerly and from a captured graph, and is held against a plain
 * host reference:
 *   element ops: the op's body called in a serial loop on host copies of its buffers (the body
 *     itself is held against the CPU implementation by the family tests, test_sac_dev and the
 *     others; here the table checks that every runner, the OpenMP loop, the recording, the
 *     deferred queue and the CUDA kernel, runs it the same): bit for bit on the host kinds, within
 *     the op's bound on the GPU (expf, tanhf and contracted multiply-adds differ there by ulps);
 *   GEMMs: a naive double-precision loop, normalized error max |C - ref| / max |ref|;
 *   sort (stable, with duplicate keys), select, copy, zero, Philox: exact.
 * Every output buffer is compared (integers and records exactly). A failure names the op, its
 * shape, the context and the buffer. One pass per op (all its shapes and contexts); without a GPU
 * one skip says why. The measured error of each op on each context is printed, so that one GPU
 * run sets the bounds from data.
 *
 *   build/tests/test_ops            the table
 *   build/tests/test_ops --perf     also microseconds per op (largest shape, eager, per context)
 *   build/tests/test_ops NAME...    only the ops whose name contains one of NAME */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "dx.h"
#include "model_k.h"
#include "nn_k.h"
#include "pool_k.h"
#include "rollout_k.h"
#include "sac_dev.h"
#include "sac_k.h"
#include "test.h"

/* ---- buffers and cases ------------------------------------------------------------------- */

enum { T_F32, T_F64, T_I32, T_I64, T_U8, T_U64, T_REC, T_TAB };
static const char* const type_name[] = {"float", "double", "int", "int64", "uint8", "uint64", "record", "table"};

/* A buffer of a case: h the initial host contents, r the reference's copy, d the context's. A
 * T_TAB holds pointers to other buffers (patched for the reference and the device); it is input
 * only and not compared. A T_REC is compared byte for byte. */
typedef struct tbuf {
  int type;
  size_t bytes;
  unsigned char *h, *r;
  void* d;
} tbuf;

#define MAXB 96
typedef struct tcase {
  tbuf b[MAXB];
  int nb;
  _Alignas(16) unsigned char args[DX_MAX_ARGS];
  size_t args_size;
  long n;             /* indices of an element op */
  char shape[200];
  uint64_t rs;        /* xorshift state */
} tcase;

static uint64_t rnd(tcase* t) {
  uint64_t x = t->rs;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return t->rs = x;
}
/* uniform integer in [lo, hi] */
static long R(tcase* t, long lo, long hi) { return lo + (long)(rnd(t) % (uint64_t)(hi - lo + 1)); }
static float U(tcase* t, float lo, float hi) { return lo + (hi - lo) * (float)((rnd(t) >> 40) * (1.0 / 16777216.0)); }

static void* add(tcase* t, int type, size_t bytes) {
  if (t->nb == MAXB) {
    fprintf(stderr, "test_ops: too many buffers\n");
    exit(2);
  }
  tbuf* b = &t->b[t->nb++];
  b->type = type;
  b->bytes = bytes ? bytes : 8;
  b->h = calloc(1, b->bytes);
  if (!b->h) exit(2);
  return b->h;
}
static float* F(tcase* t, size_t n, float lo, float hi) {
  float* p = add(t, T_F32, n * sizeof(float));
  for (size_t i = 0; i < n; i++) p[i] = U(t, lo, hi);
  return p;
}
static double* D64(tcase* t, size_t n, double lo, double hi) {
  double* p = add(t, T_F64, n * sizeof(double));
  for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * (double)(rnd(t) >> 11) * (1.0 / 9007199254740992.0);
  return p;
}
static int* I(tcase* t, size_t n, long lo, long hi) {
  int* p = add(t, T_I32, n * sizeof(int));
  for (size_t i = 0; i < n; i++) p[i] = (int)R(t, lo, hi);
  return p;
}
static int64_t* L64(tcase* t, size_t n, long lo, long hi) {
  int64_t* p = add(t, T_I64, n * sizeof(int64_t));
  for (size_t i = 0; i < n; i++) p[i] = R(t, lo, hi);
  return p;
}
static uint8_t* U8(tcase* t, size_t n, long lo, long hi) {
  uint8_t* p = add(t, T_U8, n);
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)R(t, lo, hi);
  return p;
}
static uint64_t* U64(tcase* t, size_t n, uint64_t mask) {
  uint64_t* p = add(t, T_U64, n * sizeof(uint64_t));
  for (size_t i = 0; i < n; i++) p[i] = rnd(t) & mask;
  return p;
}
static void* REC(tcase* t, size_t bytes) { /* random bytes: what an op leaves alone stays */
  unsigned char* p = add(t, T_REC, bytes);
  for (size_t i = 0; i < bytes; i++) p[i] = (unsigned char)(rnd(t) & 0x3f);
  return p;
}
static void* TAB(tcase* t, size_t bytes) { return add(t, T_TAB, bytes); }
/* a key whose words cannot be mistaken for a pointer (see patch) */
static rng_key KEY(tcase* t) { return (rng_key){(uint32_t)rnd(t), (uint32_t)R(t, 0, 200)}; }

#define ARGS(t, a, nidx)                      \
  do {                                        \
    memcpy((t)->args, &(a), sizeof(a));       \
    (t)->args_size = sizeof(a);               \
    (t)->n = (long)(nidx);                    \
  } while (0)
#define SHAPE(t, ...) snprintf((t)->shape, sizeof (t)->shape, __VA_ARGS__)

/* Rewrite the pointers into the case's buffers held in mem (an argument block or a table) from the
 * initial copies (h) to the reference's (to = 0) or the device's (to = 1): every aligned 8-byte word
 * that points into a buffer. Scalars never do: sizes are small and keys' high words are < 256. */
static void patch(const tcase* t, void* mem, size_t bytes, int to) {
  for (size_t o = 0; o + 8 <= bytes; o += 8) {
    uintptr_t w;
    memcpy(&w, (char*)mem + o, 8);
    for (int k = 0; k < t->nb; k++) {
      const tbuf* b = &t->b[k];
      if (w >= (uintptr_t)b->h && w < (uintptr_t)b->h + b->bytes) {
        uintptr_t nw = (uintptr_t)(to ? (unsigned char*)b->d : b->r) + (w - (uintptr_t)b->h);
        memcpy((char*)mem + o, &nw, 8);
        break;
      }
    }
  }
}

static void free_case(tcase* t) {
  for (int k = 0; k < t->nb; k++) {
    free(t->b[k].h);
    free(t->b[k].r);
  }
}

/* ---- the table ------------------------------------------------------------------------------ */

typedef struct opdef {
  const char* name;
  void (*setup)(tcase* t, int s);             /* shape s = 0 (small), 1 (odd), 2 (large) */
  const dx_op* op;                            /* an element op, or NULL: */
  void (*serial)(const void* args, long n);   /*   its body in a serial loop */
  void (*lib)(dx_ctx* c, const void* args);   /* a library op: issue it */
  void (*libref)(const void* args);           /*   its reference */
  void (*prep)(dx_ctx* c, const void* args);  /* set-up outside a capture (workspaces), or NULL */
  double tol_gpu;                             /* normalized error bound on the GPU */
  double tol_host;                            /* on the host kinds (0: bit for bit) */
} opdef;

#define SERIAL(name, T)                                                  \
  static void name##_ser(const void* a, long n) {                        \
    for (long i = 0; i < n; i++) name##_body(i, (const T*)a);            \
  }
#define ELEM(name, tol) {#name, setup_##name, &dxop_##name, name##_ser, NULL, NULL, NULL, tol, 0}

/* ---- nn ---- */

SERIAL(nnk_bias_act, nnk_bias_act_args)
static void setup_nnk_bias_act(tcase* t, int s) {
  int P = (int)R(t, 1, 3), E = (int)R(t, 1, 3), D = (int)R(t, 1, 40), B = s == 2 ? 700 : (int)R(t, 1, 30);
  long pstride = (long)E * D + R(t, 0, 9), M = (long)P * E;
  int act = (int)R(t, 0, 2);
  nnk_bias_act_args a = {F(t, M * B * D, -2, 2), act == 2 ? NULL : F(t, M * B * D, -2, 2), F(t, P * pstride, -1, 1), B, D,
                         act, E, pstride};
  ARGS(t, a, M * B * D);
  SHAPE(t, "P %d E %d B %d D %d act %d", P, E, B, D, act);
}
SERIAL(nnk_act_back, nnk_act_back_args)
static void setup_nnk_act_back(tcase* t, int s) {
  long n = s == 2 ? 50000 : R(t, 1, 3000);
  int act = (int)R(t, 0, 1);
  nnk_act_back_args a = {F(t, n, -2, 2), F(t, n, -3, 3), act};
  ARGS(t, a, n);
  SHAPE(t, "n %ld act %d", n, act);
}
SERIAL(nnk_colsum, nnk_colsum_args)
static void setup_nnk_colsum(tcase* t, int s) {
  int P = (int)R(t, 1, 3), E = (int)R(t, 1, 3), D = (int)R(t, 1, 50), Rr = s == 2 ? 400 : (int)R(t, 1, 40);
  long pstride = (long)E * D + R(t, 0, 5), M = (long)P * E;
  nnk_colsum_args a = {F(t, M * Rr * D, -1, 1), F(t, P * pstride, -1, 1), Rr, D, (int)R(t, 0, 1), U(t, 0.1f, 2), E, pstride};
  ARGS(t, a, M * D);
  SHAPE(t, "P %d E %d R %d D %d acc %d", P, E, Rr, D, a.accumulate);
}
SERIAL(nnk_act_back_colsum, nnk_act_back_colsum_args)
static void setup_nnk_act_back_colsum(tcase* t, int s) {
  int P = (int)R(t, 1, 3), E = (int)R(t, 1, 3), D = (int)R(t, 1, 50), Rr = s == 2 ? 400 : (int)R(t, 1, 40);
  long pstride = (long)E * D + R(t, 0, 5), M = (long)P * E;
  nnk_act_back_colsum_args a = {F(t, M * Rr * D, -1, 1), F(t, M * Rr * D, -2, 2), F(t, P * pstride, -1, 1), (int)R(t, 0, 1), Rr,
                                D, (int)R(t, 0, 1), E, pstride};
  ARGS(t, a, M * D);
  SHAPE(t, "P %d E %d R %d D %d act %d acc %d", P, E, Rr, D, a.act, a.accumulate);
}
SERIAL(nnk_sum_members, nnk_sum_members_args)
static void setup_nnk_sum_members(tcase* t, int s) {
  int P = (int)R(t, 1, 4), E = (int)R(t, 1, 7);
  long n = s == 2 ? 20000 : R(t, 1, 500);
  nnk_sum_members_args a = {F(t, (size_t)P * E * n, -1, 1), F(t, (size_t)P * n, -1, 1), E, n};
  ARGS(t, a, P * n);
  SHAPE(t, "P %d E %d n %ld", P, E, n);
}
SERIAL(nnk_adam_tick, nnk_adam_tick_args)
static void setup_nnk_adam_tick(tcase* t, int s) {
  (void)s;
  int P = (int)R(t, 1, 9);
  nnk_adam_tick_args a = {L64(t, P, 0, 5000), F(t, P, 0, 1), F(t, P, 1e-4f, 1e-2f), R(t, 0, 1) ? I(t, P, 0, 1) : NULL, 0.9f, 0.999f};
  ARGS(t, a, P);
  SHAPE(t, "P %d active %s", P, a.active ? "some" : "all");
}
SERIAL(nnk_adam, nnk_adam_args)
static void setup_nnk_adam(tcase* t, int s) {
  int P = (int)R(t, 1, 4);
  long n = s == 2 ? 20000 : R(t, 1, 2000);
  size_t N = (size_t)P * n;
  nnk_adam_args a = {F(t, N, -1, 1), F(t, N, -1, 1), F(t, N, -0.1f, 0.1f), F(t, N, 0, 0.01f), F(t, P, 1e-4f, 1e-2f),
                     R(t, 0, 1) ? I(t, P, 0, 1) : NULL, n, 0.9f, 0.999f, 1e-8f};
  ARGS(t, a, N);
  SHAPE(t, "P %d n %ld", P, n);
}
SERIAL(nnk_polyak, nnk_polyak_args)
static void setup_nnk_polyak(tcase* t, int s) {
  int P = (int)R(t, 1, 4);
  long n = s == 2 ? 20000 : R(t, 1, 2000);
  size_t N = (size_t)P * n;
  nnk_polyak_args a = {F(t, N, -1, 1), F(t, N, -1, 1), R(t, 0, 1) ? F(t, P, 0, 0.1f) : NULL, R(t, 0, 1) ? I(t, P, 0, 1) : NULL,
                       n, 0.005f};
  ARGS(t, a, N);
  SHAPE(t, "P %d n %ld", P, n);
}
SERIAL(nnk_concat, nnk_concat_args)
static void setup_nnk_concat(tcase* t, int s) {
  long Rr = s == 2 ? 3000 : R(t, 1, 300);
  int da = (int)R(t, 1, 20), db = (int)R(t, 1, 10);
  nnk_concat_args a = {F(t, Rr * da, -1, 1), F(t, Rr * db, -1, 1), F(t, Rr * (da + db), -1, 1), da, db};
  ARGS(t, a, Rr * (da + db));
  SHAPE(t, "R %ld da %d db %d", Rr, da, db);
}
SERIAL(nnk_fill, nnk_fill_args)
static void setup_nnk_fill(tcase* t, int s) {
  long n = s == 2 ? 50000 : R(t, 1, 999);
  nnk_fill_args a = {F(t, n, -1, 1), U(t, -3, 3)};
  ARGS(t, a, n);
  SHAPE(t, "n %ld", n);
}
SERIAL(nnk_ctr_add, nnk_ctr_add_args)
static void setup_nnk_ctr_add(tcase* t, int s) {
  (void)s;
  int P = (int)R(t, 1, 9);
  nnk_ctr_add_args a = {U64(t, P, ~0ull), R(t, 0, 1) ? I(t, P, 0, 1) : NULL, (uint64_t)R(t, 1, 1000)};
  ARGS(t, a, P);
  SHAPE(t, "P %d", P);
}
SERIAL(nnk_rng, nnk_rng_args)
static void setup_nnk_rng(tcase* t, int s) {
  long n = s == 2 ? 50000 : R(t, 1, 5000);
  int which = (int)R(t, 0, 2);
  nnk_rng_args a = {KEY(t), (uint32_t)rnd(t), (uint32_t)rnd(t), rnd(t) & 0xffffffffffull,
                    which != 1 ? (uint32_t*)I(t, n, 0, 0) : NULL, which != 0 ? F(t, n, 0, 0) : NULL};
  ARGS(t, a, n);
  SHAPE(t, "n %ld first %llu u32 %d normal %d", n, (unsigned long long)a.first, a.u != NULL, a.z != NULL);
}

/* ---- pool ---- */

/* A pool or batch of `rows` rows: obs, act, rew, next_obs, done. */
static poolk_rows rows_of(tcase* t, long rows, int od, int ad, int some_null) {
  poolk_rows r;
  const int w[5] = {od, ad, 1, od, 1};
  for (int k = 0; k < 5; k++) r.a[k] = some_null && R(t, 0, 3) == 0 ? NULL : F(t, (size_t)rows * w[k], -5, 5);
  return r;
}

SERIAL(poolk_gather, poolk_gather_args)
static void setup_poolk_gather(tcase* t, int s) {
  int od = (int)R(t, 1, 17), ad = (int)R(t, 1, 6), W = 2 * od + ad + 2;
  long cap = R(t, 1, 3000), nrow = s == 2 ? 2000 : R(t, 1, 300);
  int64_t* st = L64(t, 2, 1, cap);
  st[1] = R(t, 0, cap - 1);
  poolk_gather_args a = {rows_of(t, cap, od, ad, 0), rows_of(t, nrow, od, ad, 1), (const long*)st,
                         R(t, 0, 1) ? U64(t, 1, ~0ull) : NULL, KEY(t), (uint32_t)rnd(t), (uint32_t)rnd(t),
                         (uint64_t)R(t, 0, 100000), od, ad, W};
  ARGS(t, a, nrow * W);
  SHAPE(t, "cap %ld size %ld rows %ld od %d ad %d ctr %d", cap, (long)st[0], nrow, od, ad, a.ctr != NULL);
}
SERIAL(poolk_gather_runs, poolk_gather_runs_args)
static void setup_poolk_gather_runs(tcase* t, int s) {
  int P = (int)R(t, 1, 4), od = (int)R(t, 1, 12), ad = (int)R(t, 1, 5), W = 2 * od + ad + 2;
  int B = s == 2 ? 512 : (int)R(t, 1, 100);
  long stride = R(t, 1, 3);
  poolk_batch_src* src = TAB(t, P * sizeof *src);
  for (int q = 0; q < P; q++) {
    long cr = R(t, 1, 500), cm = R(t, 1, 500);
    int64_t* rs = L64(t, 2, 1, cr);
    int64_t* ms = L64(t, 2, 1, cm);
    src[q] = (poolk_batch_src){rows_of(t, cr, od, ad, 0), rows_of(t, cm, od, ad, 0), (const long*)rs, (const long*)ms, KEY(t),
                               (int)R(t, 0, B), 0};
  }
  poolk_gather_runs_args a = {src, rows_of(t, (long)P * B, od, ad, 1), U64(t, P * stride, ~0ull), stride, B, od, ad, W};
  ARGS(t, a, (long)P * B * W);
  SHAPE(t, "P %d B %d od %d ad %d ctr stride %ld", P, B, od, ad, stride);
}
SERIAL(poolk_set_state, poolk_set_state_args)
static void setup_poolk_set_state(tcase* t, int s) {
  (void)s;
  poolk_set_state_args a = {(long*)L64(t, 2, 0, 100), R(t, 0, 1000000), R(t, 0, 1000000)};
  ARGS(t, a, 1);
  SHAPE(t, "size %ld next %ld", a.size, a.next);
}
SERIAL(poolk_append, poolk_append_args)
static void setup_poolk_append(tcase* t, int s) {
  int od = (int)R(t, 1, 12), ad = (int)R(t, 1, 5), W = 2 * od + ad + 2;
  long cap = R(t, 1, 800), nmax = s == 2 ? 2000 : R(t, 1, 900);
  int64_t* st = L64(t, 2, 0, cap);
  st[1] = R(t, 0, cap - 1);
  int* cnt = I(t, 1, 0, nmax);
  poolk_append_args a = {rows_of(t, cap, od, ad, 0), rows_of(t, nmax, od, ad, 0), (const long*)st, cnt, cap, od, ad, W};
  ARGS(t, a, nmax * W);
  SHAPE(t, "cap %ld next %ld count %d of %ld od %d ad %d", cap, (long)st[1], *cnt, nmax, od, ad);
}
SERIAL(poolk_advance, poolk_advance_args)
static void setup_poolk_advance(tcase* t, int s) {
  (void)s;
  long cap = R(t, 1, 1000);
  int64_t* st = L64(t, 2, 0, cap);
  st[1] = R(t, 0, cap - 1);
  poolk_advance_args a = {(long*)st, I(t, 1, 0, 3 * cap), cap};
  ARGS(t, a, 1);
  SHAPE(t, "cap %ld", cap);
}

/* ---- rollout ---- */

static rolloutk_run* runs_tab(tcase* t, int n, int E) {
  rolloutk_run* tab = TAB(t, n * sizeof *tab);
  for (int q = 0; q < n; q++) {
    tab[q].key = KEY(t);
    tab[q].c0 = (uint32_t)rnd(t);
    tab[q].k = (int)R(t, 0, 4);
    tab[q].n_elites = (int)R(t, 1, E);
    for (int e = 0; e < MODEL_MAX_ENSEMBLE; e++) tab[q].elites[e] = (int)R(t, 0, E - 1);
    int64_t* ps = L64(t, 2, 0, 100000);
    tab[q].pool_state = (const long*)ps;
  }
  return tab;
}
static int* counts(tcase* t, int n, int B) {
  int* c = I(t, n, 0, B);
  if (n > 1) c[R(t, 0, n - 1)] = B;
  return c;
}

SERIAL(rolloutk_init, rolloutk_init_args)
static void setup_rolloutk_init(tcase* t, int s) {
  (void)s;
  int n = (int)R(t, 1, 8);
  rolloutk_init_args a = {REC(t, n * sizeof(rolloutk_stats)), I(t, n, 0, 0), runs_tab(t, n, 7), (int)R(t, 1, 5000)};
  ARGS(t, a, n);
  SHAPE(t, "n %d B %d", n, a.B);
}
SERIAL(rolloutk_iota, rolloutk_iota_args)
static void setup_rolloutk_iota(tcase* t, int s) {
  long n = s == 2 ? 50000 : R(t, 1, 3000);
  rolloutk_iota_args a = {I(t, n, -5, 5)};
  ARGS(t, a, n);
  SHAPE(t, "n %ld", n);
}
SERIAL(rolloutk_act, rolloutk_act_args)
static void setup_rolloutk_act(tcase* t, int s) {
  int n = (int)R(t, 1, 3), od = (int)R(t, 2, 17), ad = (int)R(t, 1, 6), in = od + ad, E = (int)R(t, 1, 7);
  int B = s == 2 ? 1500 : (int)R(t, 1, 200), chunk = (int)R(t, 1, B);
  float* norm = F(t, (size_t)n * 2 * in, -1, 1);
  for (int q = 0; q < n; q++)
    for (int k = 0; k < in; k++) norm[(q * 2 + 1) * in + k] = U(t, 0.3f, 3);
  rolloutk_act_args a = {F(t, (size_t)n * B * 2 * ad, -4, 4), F(t, (size_t)n * B * od, -2, 2), F(t, (size_t)n * B * ad, 0, 0),
                         F(t, (size_t)n * B * in, 0, 0), I(t, (size_t)n * B, -1, -1), norm, counts(t, n, B),
                         runs_tab(t, n, E), (uint32_t)R(t, 0, 99), (uint32_t)R(t, 100, 199), od, ad, n, B, chunk};
  ARGS(t, a, (long)n * B * ad);
  SHAPE(t, "n %d B %d chunk %d od %d ad %d E %d", n, B, chunk, od, ad, E);
}
SERIAL(rolloutk_step, rolloutk_step_args)
static void setup_rolloutk_step(tcase* t, int s) {
  int n = (int)R(t, 1, 3), od = (int)R(t, 2, 17), D = od + 1, E = (int)R(t, 1, 7);
  int B = s == 2 ? 1500 : (int)R(t, 1, 200);
  long r0 = R(t, 0, B - 1), nc = R(t, 1, B - r0);
  float* bounds = F(t, (size_t)n * 2 * D, 0.2f, 1);
  for (int q = 0; q < n; q++)
    for (int d = 0; d < D; d++) bounds[(q * 2 + 1) * D + d] = U(t, -10, -5);
  float* S = F(t, (size_t)n * B * od, -0.3f, 0.3f);
  for (long r = 0; r < (long)n * B; r++) S[r * od] = U(t, 0.5f, 1.5f); /* heights near the done rules */
  rolloutk_step_args a = {F(t, (size_t)n * E * nc * 2 * D, -0.2f, 0.2f), I(t, (size_t)n * B, 0, E - 1), S,
                          F(t, (size_t)n * B * od, 0, 0), F(t, (size_t)n * B, 0, 0), F(t, (size_t)n * B, 0, 0),
                          U8(t, (size_t)n * B, 0, 1), I(t, (size_t)n * B, 0, 0), bounds, counts(t, n, B), runs_tab(t, n, E),
                          (uint32_t)R(t, 0, 999), r0, nc, (int)R(t, 0, 3), od, D, E, B, (int)R(t, 0, TERM_NKINDS - 1)};
  ARGS(t, a, (long)n * nc);
  SHAPE(t, "n %d B %d rows %ld..%ld od %d E %d term %d", n, B, r0, r0 + nc, od, E, a.term_kind);
}
SERIAL(rolloutk_partial, rolloutk_partial_args)
static void setup_rolloutk_partial(tcase* t, int s) {
  int n = (int)R(t, 1, 3), B = s == 2 ? 5000 : (int)R(t, 1, 600), nch = (int)R(t, 1, 64);
  long chunk = (B + nch - 1) / nch;
  size_t nb = (size_t)n * B;
  rolloutk_partial_args a = {F(t, nb, -1, 1), F(t, nb, 0, 1), I(t, nb, 0, 3), U8(t, nb, 0, 1), counts(t, n, B),
                             D64(t, (size_t)n * ROLLOUTK_NSUM * nch, 0, 0), chunk, nch, B};
  ARGS(t, a, (long)n * nch);
  SHAPE(t, "n %d B %d nch %d", n, B, nch);
}
SERIAL(rolloutk_total, rolloutk_total_args)
static void setup_rolloutk_total(tcase* t, int s) {
  (void)s;
  int n = (int)R(t, 1, 5), nch = (int)R(t, 1, 64);
  rolloutk_stats* st = REC(t, n * sizeof *st);
  for (int q = 0; q < n; q++) st[q] = (rolloutk_stats){U(t, -5, 5), U(t, 0, 5), R(t, 0, 99), R(t, 0, 9), R(t, 0, 3), 0, 0};
  rolloutk_total_args a = {st, D64(t, (size_t)n * ROLLOUTK_NSUM * nch, 0, 10), counts(t, n, 300), I(t, n, 0, 0), nch,
                           (int)R(t, 0, 5)};
  ARGS(t, a, n);
  SHAPE(t, "n %d nch %d", n, nch);
}
SERIAL(rolloutk_counts, rolloutk_counts_args)
static void setup_rolloutk_counts(tcase* t, int s) {
  (void)s;
  int n = (int)R(t, 1, 9);
  rolloutk_counts_args a = {I(t, n, 0, 0), I(t, n, 0, 0), I(t, n, 0, 500), n};
  ARGS(t, a, 1);
  SHAPE(t, "n %d", n);
}
SERIAL(rolloutk_compact, rolloutk_compact_args)
static void setup_rolloutk_compact(tcase* t, int s) {
  int n = (int)R(t, 1, 3), od = (int)R(t, 1, 17), B = s == 2 ? 3000 : (int)R(t, 1, 300);
  int* cnt = counts(t, n, B);
  int* off = I(t, n, 0, 0);
  for (int q = 0, o = 0; q < n; q++) off[q] = o, o += cnt[q];
  rolloutk_compact_args a = {F(t, (size_t)n * B * od, 0, 0), F(t, (size_t)n * B * od, -3, 3), I(t, (size_t)n * B, 0, n * B - 1),
                             cnt, off, od, B};
  ARGS(t, a, (long)n * B * od);
  SHAPE(t, "n %d B %d od %d", n, B, od);
}
SERIAL(rolloutk_finish, rolloutk_finish_args)
static void setup_rolloutk_finish(tcase* t, int s) {
  (void)s;
  int n = (int)R(t, 1, 8);
  rolloutk_finish_args a = {REC(t, n * sizeof(rolloutk_stats)), runs_tab(t, n, 3)};
  ARGS(t, a, n);
  SHAPE(t, "n %d", n);
}

/* ---- model ---- */

static modelk_frun* fruns(tcase* t, int P, long Rr) {
  modelk_frun* f = TAB(t, P * sizeof *f);
  for (int q = 0; q < P; q++) {
    f[q].n_ho = (int)R(t, 0, Rr / 3);
    f[q].n_tr = (int)R(t, 1, Rr - f[q].n_ho);
    f[q].n_score = (int)R(t, 0, Rr);
    f[q].nsteps = (int)R(t, 1, 6);
    f[q].coef = U(t, 0, 0.02f);
    f[q].seed = (uint32_t)rnd(t);
    f[q].fit = (uint32_t)R(t, 0, 300);
  }
  return f;
}
/* layer offsets of an E-member net in a parameter vector: weights then biases per layer */
static long layers(tcase* t, int L, int E, long* w_off, long* w_len, long* b_off, long* b_len) {
  long at = 0;
  for (int l = 0; l < L; l++) {
    long din = R(t, 1, 12), dout = R(t, 1, 12);
    w_off[l] = at, w_len[l] = din * dout, at += E * w_len[l];
    if (b_off) b_off[l] = at, b_len[l] = dout;
    at += E * dout;
  }
  return at;
}

SERIAL(modelk_keys, modelk_keys_args)
static void setup_modelk_keys(tcase* t, int s) {
  int members = R(t, 0, 1) ? 1 : (int)R(t, 2, 7);
  long n = s == 2 ? 8000 : R(t, 1, 2000);
  const int run = (int)R(t, 0, 1); /* a run's n_tr, seed and fit, the launch sized for n */
  modelk_keys_args a = {U64(t, members * n, 0), R(t, 0, 1) ? I(t, members * n, 0, 0) : NULL, KEY(t), (uint32_t)rnd(t),
                        R(t, 0, 1) ? U64(t, 1, 0xffff) : NULL, members, n, run ? fruns(t, 1, n) : NULL};
  ARGS(t, a, members * n);
  SHAPE(t, "members %d n %ld run %d", members, n, run);
}
SERIAL(modelk_split_rows, modelk_split_rows_args)
static void setup_modelk_split_rows(tcase* t, int s) {
  int O = (int)R(t, 1, 17), A = (int)R(t, 1, 6);
  long Ng = R(t, 1, 3000), N = s == 2 ? 3000 : R(t, 1, 400);
  modelk_split_rows_args a = {F(t, Ng * O, -3, 3), F(t, Ng * A, -1, 1), F(t, Ng, -2, 2), F(t, Ng * O, -3, 3),
                              I(t, N, 0, Ng - 1), F(t, N * (O + A), 0, 0), F(t, N * (O + 1), 0, 0), O, A};
  ARGS(t, a, N);
  SHAPE(t, "rows %ld of %ld O %d A %d", N, Ng, O, A);
}
SERIAL(modelk_norm_part, modelk_norm_part_args)
static void setup_modelk_norm_part(tcase* t, int s) {
  int I_ = (int)R(t, 1, 23), n = s == 2 ? 20000 : (int)R(t, 0, 900), pass = (int)R(t, 0, 1);
  modelk_norm_part_args a = {F(t, (size_t)(n ? n : 1) * I_, -4, 6), D64(t, I_, -1, 1), D64(t, (size_t)I_ * MODELK_NB, 0, 0), n, I_,
                             pass};
  ARGS(t, a, (long)I_ * MODELK_NB);
  SHAPE(t, "n %d I %d pass %d", n, I_, pass);
}
SERIAL(modelk_norm_fin, modelk_norm_fin_args)
static void setup_modelk_norm_fin(tcase* t, int s) {
  (void)s;
  int I_ = (int)R(t, 1, 23);
  modelk_norm_fin_args a = {D64(t, (size_t)I_ * MODELK_NB, 0, 50), D64(t, I_, -1, 1), F(t, I_, 0, 0), F(t, I_, 0, 0), (int)R(t, 0, 5000),
                            (int)R(t, 0, 1)};
  ARGS(t, a, I_);
  SHAPE(t, "I %d n %d pass %d", I_, a.n, a.pass);
}
SERIAL(modelk_boot, modelk_boot_args)
static void setup_modelk_boot(tcase* t, int s) {
  int E = (int)R(t, 1, 7);
  long n = s == 2 ? 8000 : R(t, 1, 2000);
  modelk_boot_args a = {I(t, E * n, 0, 0), KEY(t), (uint32_t)rnd(t), n};
  ARGS(t, a, E * n);
  SHAPE(t, "E %d n %ld", E, n);
}
SERIAL(modelk_normalize, modelk_normalize_args)
static void setup_modelk_normalize(tcase* t, int s) {
  int O = (int)R(t, 1, 17), A = (int)R(t, 1, 6), B = s == 2 ? 3000 : (int)R(t, 1, 300);
  modelk_normalize_args a = {F(t, (size_t)B * O, -3, 3), F(t, (size_t)B * A, -1, 1), F(t, O + A, -1, 1), F(t, O + A, 0.3f, 3),
                             F(t, (size_t)B * (O + A), 0, 0), O, A};
  ARGS(t, a, (long)B * (O + A));
  SHAPE(t, "B %d O %d A %d", B, O, A);
}
SERIAL(modelk_norm_rows, modelk_norm_rows_args)
static void setup_modelk_norm_rows(tcase* t, int s) {
  int P = (int)R(t, 1, 3), I_ = (int)R(t, 1, 23);
  long Rr = s == 2 ? 2000 : R(t, 1, 300);
  int nr = (int)R(t, 1, Rr);
  uint64_t* chunk = U64(t, 1, 0);
  chunk[0] = (uint64_t)R(t, 0, (Rr - 1) / nr);
  modelk_norm_rows_args a = {F(t, (size_t)P * Rr * I_, -3, 3), F(t, (size_t)P * I_, -1, 1), F(t, (size_t)P * I_, 0.3f, 3),
                             fruns(t, P, Rr), F(t, (size_t)P * nr * I_, 1, 1), Rr, chunk, nr, I_};
  ARGS(t, a, (long)P * nr * I_);
  SHAPE(t, "P %d R %ld chunk %lu of %d rows I %d", P, Rr, (unsigned long)chunk[0], nr, I_);
}
SERIAL(modelk_gather, modelk_gather_args)
static void setup_modelk_gather(tcase* t, int s) {
  int P = (int)R(t, 1, 3), E = (int)R(t, 1, 7), I_ = (int)R(t, 1, 23), D = (int)R(t, 1, 18);
  long Rr = s == 2 ? 2000 : R(t, 2, 300);
  modelk_frun* f = fruns(t, P, Rr);
  long min_tr = Rr;
  for (int q = 0; q < P; q++) min_tr = f[q].n_tr < min_tr ? f[q].n_tr : min_tr;
  int Bt = (int)R(t, 1, 256), k = (int)R(t, 0, 3);
  uint64_t* step = U64(t, 1, 0); /* a step of the shortest run, or past it, or past all */
  step[0] = (uint64_t)R(t, 0, (min_tr + Bt - 1) / Bt + 1);
  int* idx = I(t, (size_t)P * E * Rr, 0, 0);
  for (int q = 0; q < P; q++)
    for (long j = 0; j < (long)E * Rr; j++) idx[(long)q * E * Rr + j] = (int)R(t, 0, f[q].n_tr - 1);
  modelk_gather_args a = {F(t, (size_t)P * Rr * I_, -3, 3), F(t, (size_t)P * Rr * D, -3, 3), F(t, (size_t)P * I_, -1, 1),
                          F(t, (size_t)P * I_, 0.3f, 3), idx, f, I(t, P, 0, 1), step, I(t, P, 7, 7), I(t, P, 7, 7),
                          F(t, (size_t)P * E * Bt * I_, 1, 1), F(t, (size_t)P * E * Bt * D, 1, 1), Rr, k, Bt, E, I_, D};
  ARGS(t, a, (long)P * E * Bt);
  SHAPE(t, "P %d E %d R %ld step %lu + %d Bt %d I %d D %d", P, E, Rr, (unsigned long)step[0], k, Bt, I_, D);
}
SERIAL(modelk_nll, modelk_nll_args)
static void setup_modelk_nll(tcase* t, int s) {
  int P = (int)R(t, 1, 3), E = (int)R(t, 1, 7), D = (int)R(t, 1, 18), Bt = s == 2 ? 1024 : (int)R(t, 1, 256);
  long netn = R(t, 1, 500), ps = netn + 2 * D + R(t, 0, 5);
  float* params = F(t, (size_t)P * ps, -1, 1);
  for (int q = 0; q < P; q++)
    for (int d = 0; d < D; d++) params[q * ps + netn + d] = U(t, 0.2f, 1), params[q * ps + netn + D + d] = U(t, -10, -5);
  size_t rows = (size_t)P * E * Bt;
  modelk_nll_args a = {F(t, rows * 2 * D, -3, 3), F(t, rows * D, -3, 3), params, F(t, rows * 2 * D, 0, 0), F(t, rows * 2 * D, 0, 0),
                       D64(t, rows, 0, 0), counts(t, P, Bt), ps, netn, Bt, E, D};
  ARGS(t, a, (long)rows);
  SHAPE(t, "P %d E %d Bt %d D %d", P, E, Bt, D);
}
SERIAL(modelk_partials, modelk_partials_args)
static void setup_modelk_partials(tcase* t, int s) {
  int P = (int)R(t, 1, 3), E = (int)R(t, 1, 7), D = (int)R(t, 1, 18), Bt = s == 2 ? 1024 : (int)R(t, 1, 256);
  int L = (int)R(t, 1, NN_MAX_LAYERS), nbw = (int)R(t, 1, 64);
  modelk_partials_args a;
  memset(&a, 0, sizeof a);
  long netn = layers(t, L, E, a.w_off, a.w_len, NULL, NULL), ps = netn + 2 * D;
  size_t rows = (size_t)P * E * Bt;
  int* nb = I(t, P, 1, Bt);
  a.rowsum = D64(t, rows, -5, 5), a.gbnd = F(t, rows * 2 * D, -1, 1), a.params = F(t, (size_t)P * ps, -1, 1);
  a.part = D64(t, (size_t)P * modelk_npart(D, L, nbw), 0, 0), a.nb = nb, a.ps = ps, a.Bt = Bt, a.E = E, a.D = D, a.L = L,
  a.nbw = nbw;
  ARGS(t, a, (long)P * modelk_npart(D, L, nbw));
  SHAPE(t, "P %d E %d Bt %d D %d L %d nbw %d", P, E, Bt, D, L, nbw);
}
SERIAL(modelk_finish, modelk_finish_args)
static void setup_modelk_finish(tcase* t, int s) {
  (void)s;
  int P = (int)R(t, 1, 3), D = (int)R(t, 1, 18), L = (int)R(t, 1, NN_MAX_LAYERS), nbw = (int)R(t, 1, 64);
  long netn = R(t, 1, 500), ps = netn + 2 * D + R(t, 0, 3);
  modelk_finish_args a;
  memset(&a, 0, sizeof a);
  a.part = D64(t, (size_t)P * modelk_npart(D, L, nbw), -3, 3), a.params = F(t, (size_t)P * ps, -1, 1);
  a.grads = F(t, (size_t)P * ps, -1, 1), a.terms = D64(t, (size_t)P * (L + 2), 0, 0), a.nb = I(t, P, 0, 300);
  a.runs = R(t, 0, 1) ? fruns(t, P, 100) : NULL, a.ps = ps, a.netn = netn, a.coef = 0.01f, a.D = D, a.L = L, a.nbw = nbw;
  for (int l = 0; l < L; l++) a.wd[l] = U(t, 0, 1e-3f);
  ARGS(t, a, (long)P * (1 + 2 * D + L));
  SHAPE(t, "P %d D %d L %d nbw %d runs %d", P, D, L, nbw, a.runs != NULL);
}
SERIAL(modelk_wd, modelk_wd_args)
static void setup_modelk_wd(tcase* t, int s) {
  int P = (int)R(t, 1, 3), E = s == 2 ? 7 : (int)R(t, 1, 7), L = (int)R(t, 1, NN_MAX_LAYERS);
  modelk_wd_args a;
  memset(&a, 0, sizeof a);
  long netn = layers(t, L, E, a.w_off, a.w_len, NULL, NULL), ps = netn + R(t, 0, 40);
  a.params = F(t, (size_t)P * ps, -1, 1), a.grads = F(t, (size_t)P * ps, -1, 1), a.ps = ps, a.netn = netn, a.L = L;
  for (int l = 0; l < L; l++) a.wd[l] = U(t, 0, 1e-3f);
  ARGS(t, a, (long)P * netn);
  SHAPE(t, "P %d netn %ld L %d", P, netn, L);
}
SERIAL(modelk_mean, modelk_mean_args)
static void setup_modelk_mean(tcase* t, int s) {
  (void)s;
  int P = (int)R(t, 1, 4), L = (int)R(t, 1, NN_MAX_LAYERS), steps = 6, ost = (int)R(t, 1, 3);
  modelk_mean_args a = {D64(t, (size_t)steps * P * (L + 2), -2, 2), D64(t, (size_t)P * ost, 0, 0), R(t, 0, 1) ? fruns(t, P, 50) : NULL,
                        (int)R(t, 1, steps), P, L, ost};
  ARGS(t, a, P);
  SHAPE(t, "P %d L %d steps %d runs %d", P, L, a.n, a.runs != NULL);
}
SERIAL(modelk_loss_acc, modelk_loss_acc_args)
static void setup_modelk_loss_acc(tcase* t, int s) {
  (void)s;
  int P = (int)R(t, 1, 6), L = (int)R(t, 1, NN_MAX_LAYERS), k = (int)R(t, 0, 3);
  uint64_t* step = U64(t, 1, 0);
  step[0] = (uint64_t)R(t, 0, 7); /* fruns: 1 to 6 steps, so some runs are past their last */
  modelk_loss_acc_args a = {D64(t, (size_t)P * (L + 2), -2, 2), D64(t, P, -9, 9), fruns(t, P, 50), step, k, L};
  ARGS(t, a, P);
  SHAPE(t, "P %d L %d step %lu + %d", P, L, (unsigned long)step[0], k);
}
SERIAL(modelk_epoch_loss, modelk_epoch_loss_args)
static void setup_modelk_epoch_loss(tcase* t, int s) {
  (void)s;
  int P = (int)R(t, 1, 6), ost = (int)R(t, 1, 3);
  modelk_epoch_loss_args a = {D64(t, P, -9, 9), D64(t, (size_t)P * ost, 0, 0), fruns(t, P, 50), ost};
  ARGS(t, a, P);
  SHAPE(t, "P %d ostride %d", P, ost);
}
SERIAL(modelk_copy_lists, modelk_copy_lists_args)
static void setup_modelk_copy_lists(tcase* t, int s) {
  int E = (int)R(t, 1, 7);
  long Rr = s == 2 ? 20000 : R(t, 1, 900);
  modelk_copy_lists_args a = {I(t, (size_t)E * Rr, -5, -1), I(t, (size_t)E * Rr, 0, 1000), fruns(t, 1, Rr), E};
  ARGS(t, a, (long)E * Rr);
  SHAPE(t, "E %d R %ld", E, Rr);
}
SERIAL(modelk_snap, modelk_snap_args)
static void setup_modelk_snap(tcase* t, int s) {
  int P = (int)R(t, 1, 3), E = s == 2 ? 7 : (int)R(t, 1, 7), L = (int)R(t, 1, NN_MAX_LAYERS);
  modelk_snap_args a;
  memset(&a, 0, sizeof a);
  long netn = layers(t, L, E, a.w_off, a.w_len, a.b_off, a.b_len);
  long ds = netn + R(t, 0, 9), ss = netn + R(t, 0, 9);
  a.dst = F(t, (size_t)P * ds, -1, 1), a.src = F(t, (size_t)P * ss, -1, 1), a.flags = I(t, (size_t)P * E, 0, 1);
  a.dstride = ds, a.sstride = ss, a.netn = netn, a.E = E, a.L = L;
  ARGS(t, a, (long)P * netn);
  SHAPE(t, "P %d E %d L %d netn %ld", P, E, L, netn);
}
SERIAL(modelk_mse_rows, modelk_mse_rows_args)
static void setup_modelk_mse_rows(tcase* t, int s) {
  int P = (int)R(t, 1, 3), E = (int)R(t, 1, 7), D = (int)R(t, 1, 18);
  long Rr = s == 2 ? 2000 : R(t, 1, 300);
  int nr = (int)R(t, 1, Rr);
  uint64_t* chunk = U64(t, 1, 0);
  chunk[0] = (uint64_t)R(t, 0, (Rr - 1) / nr);
  modelk_mse_rows_args a = {F(t, (size_t)P * E * nr * 2 * D, -3, 3), F(t, (size_t)P * Rr * D, -3, 3), fruns(t, P, Rr),
                            D64(t, (size_t)P * E * nr, 0, 0), Rr, chunk, nr, E, D};
  ARGS(t, a, (long)P * E * nr);
  SHAPE(t, "P %d E %d R %ld chunk %lu of %d rows D %d", P, E, Rr, (unsigned long)chunk[0], nr, D);
}
SERIAL(modelk_mse_acc, modelk_mse_acc_args)
static void setup_modelk_mse_acc(tcase* t, int s) {
  (void)s;
  int P = (int)R(t, 1, 3), E = (int)R(t, 1, 7), D = (int)R(t, 1, 18), nr = (int)R(t, 1, 300), ost = E + (int)R(t, 0, 2);
  uint64_t* chunk = U64(t, 1, 0);
  chunk[0] = R(t, 0, 1) ? 0 : (uint64_t)R(t, 1, 600 / nr + 1);
  modelk_mse_acc_args a = {D64(t, (size_t)P * E * nr, 0, 5), D64(t, (size_t)P * E, 0, 9), D64(t, (size_t)P * ost, 0, 0),
                           fruns(t, P, 600), chunk, nr, E, D, ost};
  ARGS(t, a, (long)P * E);
  SHAPE(t, "P %d E %d chunk %lu nr %d D %d", P, E, (unsigned long)chunk[0], nr, D);
}
SERIAL(modelk_split_out, modelk_split_out_args)
static void setup_modelk_split_out(tcase* t, int s) {
  int E = (int)R(t, 1, 7), D = (int)R(t, 1, 18);
  long B = s == 2 ? 2000 : R(t, 1, 300), r0 = R(t, 0, B - 1), n = R(t, 1, B - r0);
  int which = (int)R(t, 0, 2);
  modelk_split_out_args a = {F(t, (size_t)E * n * 2 * D, -12, 3), F(t, D, 0.2f, 1), F(t, D, -10, -5),
                             which != 1 ? F(t, (size_t)E * B * D, 0, 0) : NULL, which != 0 ? F(t, (size_t)E * B * D, 0, 0) : NULL,
                             n, B, r0, D};
  ARGS(t, a, (long)E * n * D);
  SHAPE(t, "E %d B %ld rows %ld+%ld D %d", E, B, r0, n, D);
}

/* ---- sac ---- */

static sack_run* sac_runs(tcase* t, int P) {
  sack_run* r = TAB(t, P * sizeof *r);
  for (int q = 0; q < P; q++) r[q] = (sack_run){KEY(t), U(t, 0.5f, 5), U(t, 0.9f, 0.999f), U(t, -6, -1), 0};
  return r;
}

SERIAL(sack_sample, sack_sample_args)
static void setup_sack_sample(tcase* t, int s) {
  int P = (int)R(t, 1, 3), B = s == 2 ? 2000 : (int)R(t, 1, 300), O = (int)R(t, 1, 17), A = (int)R(t, 1, 6);
  long st = R(t, 1, 3);
  size_t rows = (size_t)P * B;
  sack_sample_args a = {F(t, rows * 2 * A, -25, 4), F(t, rows * O, -3, 3), F(t, rows * (O + A), 0, 0), F(t, rows, 0, 0),
                        R(t, 0, 1) ? F(t, rows * A, 0, 0) : NULL, U64(t, P * st, ~0ull), sac_runs(t, P), (uint64_t)R(t, 0, 1) * B * A,
                        st, B, O, A, NULL, 0};
  if (R(t, 0, 1)) { /* a head: the policy's output bias added first */
    a.hps = 2 * A + R(t, 0, 5);
    a.hb = F(t, (size_t)P * a.hps, -1, 1);
  }
  ARGS(t, a, (long)rows);
  SHAPE(t, "P %d B %d O %d A %d head %d", P, B, O, A, a.hb != NULL);
}
SERIAL(sack_target, sack_target_args)
static void setup_sack_target(tcase* t, int s) {
  int P = (int)R(t, 1, 3), B = s == 2 ? 5000 : (int)R(t, 1, 300);
  size_t rows = (size_t)P * B;
  sack_target_args a = {F(t, rows * 2, -10, 10), F(t, rows, -5, 5), F(t, rows, -1, 3), F(t, rows, 0, 1),
                        F(t, P, -3, 1), sac_runs(t, P), F(t, rows, 0, 0), B, NULL, 0};
  if (R(t, 0, 1)) { /* a head: the twins' output biases added first */
    a.hps = 2 + R(t, 0, 5);
    a.hb = F(t, (size_t)P * a.hps, -1, 1);
  }
  ARGS(t, a, (long)rows);
  SHAPE(t, "P %d B %d head %d", P, B, a.hb != NULL);
}
SERIAL(sack_critic_grad, sack_critic_grad_args)
static void setup_sack_critic_grad(tcase* t, int s) {
  int P = (int)R(t, 1, 3), B = s == 2 ? 5000 : (int)R(t, 1, 300);
  sack_critic_grad_args a = {F(t, (size_t)P * 2 * B, -10, 10), F(t, (size_t)P * B, -10, 10), F(t, (size_t)P * 2 * B, 0, 0), B,
                             1.0f / B, NULL, 0};
  if (R(t, 0, 1)) {
    a.hps = 2 + R(t, 0, 5);
    a.hb = F(t, (size_t)P * a.hps, -1, 1);
  }
  ARGS(t, a, (long)P * 2 * B);
  SHAPE(t, "P %d B %d head %d", P, B, a.hb != NULL);
}
SERIAL(sack_pi_q_grad, sack_pi_q_grad_args)
static void setup_sack_pi_q_grad(tcase* t, int s) {
  int P = (int)R(t, 1, 3), B = s == 2 ? 5000 : (int)R(t, 1, 300);
  float* qp = F(t, (size_t)P * 2 * B, -3, 3);
  for (int q = 0; q < P; q++)
    for (int b = 0; b < B; b += 3) qp[(size_t)q * 2 * B + B + b] = qp[(size_t)q * 2 * B + b]; /* exact ties */
  sack_pi_q_grad_args a = {qp, F(t, (size_t)P * 2 * B, 0, 0), B, 1.0f / B, NULL, 0};
  if (R(t, 0, 1)) { /* equal biases keep the ties exact */
    a.hps = 2 + R(t, 0, 5);
    float* hb = F(t, (size_t)P * a.hps, -1, 1);
    for (int q = 0; q < P; q++) hb[(size_t)q * a.hps + 1] = hb[(size_t)q * a.hps];
    a.hb = hb;
  }
  ARGS(t, a, (long)P * B);
  SHAPE(t, "P %d B %d head %d", P, B, a.hb != NULL);
}
SERIAL(sack_pi_back, sack_pi_back_args)
static void setup_sack_pi_back(tcase* t, int s) {
  int P = (int)R(t, 1, 3), B = s == 2 ? 2000 : (int)R(t, 1, 300), O = (int)R(t, 1, 17), A = (int)R(t, 1, 6), D = O + A;
  size_t rows = (size_t)P * B;
  sack_pi_back_args a = {F(t, rows * D, -1, 1), F(t, rows * D, -1, 1), F(t, rows * 2 * A, -25, 4), F(t, rows * A, -3, 3),
                         F(t, P, -3, 1), F(t, rows * 2 * A, 0, 0), B, O, A, 1.0f / B, NULL, 0};
  if (R(t, 0, 1)) { /* the twins' input gradients summed here */
    a.E = (int)R(t, 2, 3);
    a.dxe = F(t, rows * a.E * D, -1, 1);
    a.dxp = NULL;
  }
  ARGS(t, a, (long)rows * A);
  SHAPE(t, "P %d B %d O %d A %d E %d", P, B, O, A, a.dxe ? a.E : 0);
}
SERIAL(sack_alpha_stats, sack_alpha_stats_args)
static void setup_sack_alpha_stats(tcase* t, int s) {
  int P = (int)R(t, 1, 3), B = s == 2 ? 4000 : (int)R(t, 1, 300);
  size_t rows = (size_t)P * B;
  int stats = (int)R(t, 0, 1);
  sack_alpha_stats_args a = {F(t, rows * 2, -10, 10), F(t, rows, -10, 10), F(t, rows * 2, -10, 10), F(t, rows, -5, 5),
                             F(t, P, -3, 1), sac_runs(t, P), F(t, P, 0, 0), stats ? F(t, (size_t)P * SACD_NSTATS, 0, 0) : NULL, B,
                             SACD_NSTATS};
  ARGS(t, a, (long)P * (stats ? 1 + SACD_NSTATS : 1));
  SHAPE(t, "P %d B %d stats %d", P, B, stats);
}
static sack_adam_set adam_set(tcase* t, int P, long n) {
  size_t N = (size_t)P * n;
  return (sack_adam_set){F(t, N, -1, 1), F(t, N, -1, 1), F(t, N, -0.1f, 0.1f), F(t, N, 0, 0.01f), L64(t, P, 0, 3000),
                         F(t, P, 1e-4f, 1e-2f), F(t, P, 1e-4f, 1e-2f), n, 0.9f, 0.999f, 1e-8f};
}
SERIAL(sack_apply_tick, sack_apply_tick_args)
static void setup_sack_apply_tick(tcase* t, int s) {
  (void)s;
  int P = (int)R(t, 1, 6);
  const long st = R(t, 1, 3);
  const int adv = (int)R(t, 0, 1); /* with the update counters (sacd_update_runs_advance) */
  sack_apply_tick_args a = {{adam_set(t, P, 1), adam_set(t, P, 1), adam_set(t, P, 1)}, R(t, 0, 1) ? I(t, P, 0, 1) : NULL, P,
                            adv ? U64(t, (size_t)P * st, ~0ull) : NULL, st};
  ARGS(t, a, (adv ? 4L : 3L) * P);
  SHAPE(t, "P %d counters %d", P, adv);
}
SERIAL(sack_apply, sack_apply_args)
static void setup_sack_apply(tcase* t, int s) {
  int P = (int)R(t, 1, 3);
  long n0 = s == 2 ? 20000 : R(t, 1, 2000), n1 = R(t, 1, 2000);
  sack_apply_args a = {{adam_set(t, P, n0), adam_set(t, P, n1), adam_set(t, P, 1)}, F(t, (size_t)P * n0, -1, 1), F(t, P, 0, 0.1f),
                       R(t, 0, 1) ? I(t, P, 0, 1) : NULL, P};
  ARGS(t, a, (long)P * (n0 + n1 + 1));
  SHAPE(t, "P %d n %ld %ld 1", P, n0, n1);
}
SERIAL(sack_act, sack_act_args)
static void setup_sack_act(tcase* t, int s) {
  int P = (int)R(t, 1, 3), B = s == 2 ? 3000 : (int)R(t, 1, 300), A = (int)R(t, 1, 6);
  long st = R(t, 1, 3);
  rng_key* keys = NULL;
  if (R(t, 0, 1)) {
    keys = TAB(t, P * sizeof *keys);
    for (int q = 0; q < P; q++) keys[q] = KEY(t);
  }
  sack_act_args a = {F(t, (size_t)P * B * 2 * A, -25, 4), F(t, (size_t)P * B * A, 0, 0), U64(t, P * st, ~0ull), keys, KEY(t),
                     (uint32_t)rnd(t), st, B, A, (int)(R(t, 0, 3) == 0)};
  ARGS(t, a, (long)P * B * A);
  SHAPE(t, "P %d B %d A %d keys %d det %d", P, B, A, keys != NULL, a.deterministic);
}

/* ---- library ops ---- */

typedef struct gemm_args {
  int ta, tb, M, N, K, lda, ldb, ldc, outer, inner, two;
  float alpha, beta;
  const float* A;
  const float* B;
  float* C;
  long soA, siA, soB, siB, soC, siC;
} gemm_args;

static void gemm_lib(dx_ctx* c, const void* p) {
  const gemm_args* g = p;
  if (!g->two)
    dx_gemm(c, g->ta, g->tb, g->M, g->N, g->K, g->alpha, g->A, g->lda, g->soA, g->B, g->ldb, g->soB, g->beta, g->C, g->ldc,
            g->soC, g->outer);
  else
    dx_gemm2(c, g->ta, g->tb, g->M, g->N, g->K, g->alpha, g->A, g->lda, g->soA, g->siA, g->B, g->ldb, g->soB, g->siB, g->beta,
             g->C, g->ldc, g->soC, g->siC, g->outer, g->inner);
}
static void gemm_ref(const void* p) {
  const gemm_args* g = p;
  const int inner = g->two ? g->inner : 1;
  for (int o = 0; o < g->outer; o++)
    for (int e = 0; e < inner; e++) {
      const float* A = g->A + o * g->soA + e * g->siA;
      const float* B = g->B + o * g->soB + e * g->siB;
      float* C = g->C + o * g->soC + e * g->siC;
      for (int i = 0; i < g->M; i++)
        for (int j = 0; j < g->N; j++) {
          double s = 0;
          for (int k = 0; k < g->K; k++)
            s += (double)(g->ta ? A[(long)k * g->lda + i] : A[(long)i * g->lda + k]) *
                 (g->tb ? B[(long)j * g->ldb + k] : B[(long)k * g->ldb + j]);
          C[(long)i * g->ldc + j] = (float)(g->alpha * s + g->beta * C[(long)i * g->ldc + j]);
        }
    }
}
/* form: 0-3 strided batched with ta = form >> 1, tb = form & 1 (a shared A at stride 0 sometimes);
 * 4 gemm2 with inner 1; 5 outer 1; 6 collapsing strides; 7 non-collapsing (a shared input at
 * member stride 0: the pointer-array batched GEMM on the GPU) */
static void setup_gemm_form(tcase* t, int s, int form) {
  gemm_args g;
  memset(&g, 0, sizeof g);
  g.two = form >= 4;
  g.ta = form < 4 ? form >> 1 : (int)R(t, 0, 1);
  g.tb = form < 4 ? form & 1 : (int)R(t, 0, 1);
  g.M = s == 2 ? 256 : (int)R(t, 1, 70), g.N = s == 2 ? 200 : (int)R(t, 1, 70), g.K = s == 2 ? 300 : (int)R(t, 1, 90);
  g.outer = form == 5 ? 1 : (int)R(t, 1, 4), g.inner = form < 4 || form == 4 ? 1 : (int)R(t, 2, 5);
  if (form == 7 && g.outer == 1) g.outer = 2;
  const int rA = g.ta ? g.K : g.M, cA = g.ta ? g.M : g.K, rB = g.tb ? g.N : g.K, cB = g.tb ? g.K : g.N;
  g.lda = cA + (int)R(t, 0, 3), g.ldb = cB + (int)R(t, 0, 3), g.ldc = g.N + (int)R(t, 0, 3);
  const long nA = (long)rA * g.lda, nB = (long)rB * g.ldb, nC = (long)g.M * g.ldc;
  const int shareA = form == 7 ? 1 : (form < 4 ? (int)R(t, 0, 1) : 0);
  /* member strides si, run strides so = inner si (collapsing) or padded (not) */
  g.siA = shareA ? 0 : nA, g.siB = nB, g.siC = nC;
  const int pad = form == 7 ? (int)R(t, 1, 9) : 0;
  g.soA = form == 7 ? nA + pad : (long)g.inner * g.siA, g.soB = (long)g.inner * nB + pad, g.soC = (long)g.inner * nC + pad;
  if (form < 4) g.soA = shareA ? 0 : nA, g.soB = nB, g.soC = nC;
  const long tot = (long)g.outer * g.inner;
  g.alpha = U(t, 0.5f, 1.5f), g.beta = R(t, 0, 1) ? 0.0f : U(t, -1, 1);
  g.A = F(t, (size_t)(g.outer * (g.soA ? g.soA : nA) + nA), -1, 1);
  g.B = F(t, (size_t)(g.outer * g.soB + tot * nB), -1, 1);
  g.C = F(t, (size_t)(g.outer * g.soC + tot * nC), -1, 1);
  ARGS(t, g, 0);
  SHAPE(t, "%dx%dx%d ta %d tb %d outer %d inner %d lda %d ldb %d ldc %d shareA %d beta %g", g.M, g.N, g.K, g.ta, g.tb, g.outer,
        g.inner, g.lda, g.ldb, g.ldc, shareA, g.beta);
}
#define GEMM_FORM(name, f) \
  static void setup_##name(tcase* t, int s) { setup_gemm_form(t, s, f); }
GEMM_FORM(gemm_nn, 0)
GEMM_FORM(gemm_nt, 1)
GEMM_FORM(gemm_tn, 2)
GEMM_FORM(gemm_tt, 3)
GEMM_FORM(gemm2_inner1, 4)
GEMM_FORM(gemm2_outer1, 5)
GEMM_FORM(gemm2_collapse, 6)
GEMM_FORM(gemm2_ptrarray, 7)
#define GEMM(name) {#name, setup_##name, NULL, NULL, gemm_lib, gemm_ref, NULL, 1e-5, 1e-5}

/* dx_gemm2_ep: the GEMM of a network's layer and the op over its result as one op, in the three
 * forms nn_dev.c issues: forward with ReLU + bias fusable on the GPU (in place, so that every
 * output is defined on every kind; one level of batch), forward with nnk_bias_act on any strides
 * (swish, linear, ReLU into a separate a; not fusable), and the backward's input gradient with
 * nnk_act_back_colsum. Reference: the double-precision GEMM rounded to float, then the op's body. */
typedef struct gemm_ep_args {
  gemm_args g;
  int form;
  nnk_bias_act_args ba;
  nnk_act_back_colsum_args ab;
  dx_gemm_ep ep;
} gemm_ep_args;
static void gemm_ep_lib(dx_ctx* c, const void* p) {
  const gemm_ep_args* e = p;
  const gemm_args* g = &e->g;
  if (e->form < 2)
    dx_gemm2_ep(c, g->ta, g->tb, g->M, g->N, g->K, g->A, g->lda, g->soA, g->siA, g->B, g->ldb, g->soB, g->siB, g->C, g->ldc,
                g->soC, g->siC, g->outer, g->inner, &e->ep, &dxop_nnk_bias_act, &e->ba, sizeof e->ba,
                (long)g->outer * g->inner * g->M * g->N);
  else
    dx_gemm2_ep(c, g->ta, g->tb, g->M, g->N, g->K, g->A, g->lda, g->soA, g->siA, g->B, g->ldb, g->soB, g->siB, g->C, g->ldc,
                g->soC, g->siC, g->outer, g->inner, NULL, &dxop_nnk_act_back_colsum, &e->ab, sizeof e->ab,
                (long)g->outer * g->inner * g->N);
}
static void gemm_ep_ref(const void* p) {
  const gemm_ep_args* e = p;
  gemm_ref(&e->g);
  const long n = (long)e->g.outer * e->g.inner * (e->form < 2 ? (long)e->g.M * e->g.N : e->g.N);
  for (long i = 0; i < n; i++) {
    if (e->form < 2) nnk_bias_act_body(i, &e->ba);
    else nnk_act_back_colsum_body(i, &e->ab);
  }
}
/* A layer of P runs x E members, parameters [P][ps] (weights, then biases, then padding), rows B:
 * forward X [P][E][B][din] (or shared [P][B][din]) x W [din][dout] -> [P][E][B][dout]; backward
 * dZ [P][E][B][dout] x W^T -> [P][E][B][din]. */
static void setup_gemm_ep_form(tcase* t, int s, int form) {
  gemm_ep_args e;
  memset(&e, 0, sizeof e);
  e.form = form;
  gemm_args* g = &e.g;
  g->two = 1;
  const int P = (int)R(t, 1, 3), E = (int)R(t, 1, 3);
  if (form == 0 && P > 1 && E > 1) { /* the fusable case: one level of batch */
    if (R(t, 0, 1)) g->outer = 1, g->inner = E;
    else g->outer = P, g->inner = 1;
  } else {
    g->outer = P, g->inner = E;
  }
  const int Pp = g->outer, Ee = g->inner;
  const int B = s == 2 ? 256 : (int)R(t, 1, 40), din = s == 2 ? 200 : (int)R(t, 1, 50), dout = s == 2 ? 256 : (int)R(t, 1, 50);
  const long wsz = (long)din * dout, ps = (long)Ee * (wsz + dout) + R(t, 0, 9), boff = (long)Ee * wsz;
  float* W = F(t, (size_t)Pp * ps, -0.5f, 0.5f);
  const int shared = form < 2 && Ee > 1 && R(t, 0, 1);
  const int fin = form < 2 ? din : dout, fout = form < 2 ? dout : din;
  g->ta = 0, g->tb = form < 2 ? 0 : 1;
  g->M = B, g->N = fout, g->K = fin;
  g->lda = fin, g->ldb = dout, g->ldc = fout;
  g->siA = shared ? 0 : (long)B * fin, g->soA = shared ? (long)B * fin : (long)Ee * B * fin;
  g->B = W, g->siB = wsz, g->soB = ps;
  g->siC = (long)B * fout, g->soC = (long)Ee * B * fout;
  g->alpha = 1.0f, g->beta = 0.0f;
  g->A = F(t, (size_t)Pp * (shared ? 1 : Ee) * B * fin, -1, 1);
  const size_t nC = (size_t)Pp * Ee * B * fout;
  g->C = F(t, nC, -1, 1);
  int act = 0;
  if (form == 0) {
    e.ba = (nnk_bias_act_args){g->C, g->C, W + boff, B, dout, 0, Ee, ps};
    e.ep = (dx_gemm_ep){DX_EP_RELU_BIAS, W + boff, Pp == 1 ? dout : ps, g->C};
  } else if (form == 1) {
    act = (int)R(t, 0, 2);
    e.ba = (nnk_bias_act_args){g->C, act == 2 ? NULL : F(t, nC, -1, 1), W + boff, B, dout, act, Ee, ps};
  } else {
    act = (int)R(t, 0, 1);
    /* the layer below's biases: din of them per member */
    float* Wb = F(t, (size_t)Pp * ((long)Ee * din + 3), -1, 1);
    e.ab = (nnk_act_back_colsum_args){g->C, F(t, nC, -2, 2), Wb, act, B, din, (int)R(t, 0, 1), Ee, (long)Ee * din + 3};
  }
  ARGS(t, e, 0);
  SHAPE(t, "P %d E %d B %d din %d dout %d shared %d act %d", Pp, Ee, B, din, dout, shared, act);
}
static void setup_gemm_ep_relu_bias(tcase* t, int s) { setup_gemm_ep_form(t, s, 0); }
static void setup_gemm_ep_bias_act(tcase* t, int s) { setup_gemm_ep_form(t, s, 1); }
static void setup_gemm_ep_act_back_colsum(tcase* t, int s) { setup_gemm_ep_form(t, s, 2); }
#define GEMM_EP(name) {#name, setup_##name, NULL, NULL, gemm_ep_lib, gemm_ep_ref, NULL, 1e-5, 1e-5}

typedef struct sort_args {
  const uint64_t* ki;
  uint64_t* ko;
  const int* vi;
  int* vo;
  long n;
} sort_args;
static void sort_prep(dx_ctx* c, const void* p) { dx_reserve_sort(c, ((const sort_args*)p)->n); }
static void sort_lib(dx_ctx* c, const void* p) {
  const sort_args* a = p;
  dx_sort_pairs(c, a->ki, a->ko, a->vi, a->vo, a->n);
}
static const uint64_t* g_sort_keys;
static int cmp_pos(const void* x, const void* y) { /* by key, then by position: a stable order */
  const int i = *(const int*)x, j = *(const int*)y;
  return g_sort_keys[i] < g_sort_keys[j] ? -1 : g_sort_keys[i] > g_sort_keys[j] ? 1 : (i > j) - (i < j);
}
static void sort_ref(const void* p) {
  const sort_args* a = p;
  int* pos = malloc(a->n * sizeof(int));
  for (long i = 0; i < a->n; i++) pos[i] = (int)i;
  g_sort_keys = a->ki;
  qsort(pos, a->n, sizeof(int), cmp_pos);
  for (long i = 0; i < a->n; i++) a->ko[i] = a->ki[pos[i]], a->vo[i] = a->vi[pos[i]];
  free(pos);
}
static void setup_sort(tcase* t, int s) {
  long n = s == 2 ? 100000 : R(t, 1, 5000);
  const int dup = (int)R(t, 0, 1);
  uint64_t* k = U64(t, n, ~0ull);
  if (dup) /* few distinct keys, spread over the high bytes too: stability shows */
    for (long i = 0; i < n; i++) k[i] = (k[i] % 7) << (8 * (i % 8));
  sort_args a = {k, U64(t, n, 0), I(t, n, -1000000, 1000000), I(t, n, 0, 0), n};
  ARGS(t, a, 0);
  SHAPE(t, "n %ld duplicates %d", n, dup);
}

typedef struct segsort_args {
  sort_args s;
  int nseg;
  const int* off;
} segsort_args;
static void segsort_prep(dx_ctx* c, const void* p) { dx_reserve_sort(c, ((const segsort_args*)p)->s.n); }
static void segsort_lib(dx_ctx* c, const void* p) {
  const segsort_args* a = p;
  dx_sort_segments(c, a->s.ki, a->s.ko, a->s.vi, a->s.vo, a->s.n, a->nseg, a->off);
}
static void segsort_ref(const void* p) { /* each segment by itself; the rest untouched */
  const segsort_args* a = p;
  for (int g = 0; g < a->nseg; g++) {
    const long b = a->off[g], n = a->off[g + 1] - b;
    sort_args one = {a->s.ki + b, a->s.ko + b, a->s.vi + b, a->s.vo + b, n};
    if (n > 0) sort_ref(&one);
  }
}
static void setup_sort_segments(tcase* t, int s) {
  long n = s == 2 ? 100000 : R(t, 1, 5000);
  int nseg = (int)R(t, 1, 9);
  int* off = I(t, (size_t)nseg + 1, 0, 0); /* ascending; empty segments and a tail outside them */
  for (int g = 1; g <= nseg; g++) off[g] = (int)R(t, off[g - 1], off[g - 1] + 2 * n / nseg < n ? off[g - 1] + 2 * n / nseg : n);
  uint64_t* k = U64(t, n, ~0ull << 20);
  for (long i = 0; i < n; i++) k[i] |= (uint64_t)i; /* distinct keys, as the callers give */
  segsort_args a = {{k, U64(t, n, ~0ull), I(t, n, -1000000, 1000000), I(t, n, 0, 99), n}, nseg, off};
  ARGS(t, a, 0);
  SHAPE(t, "n %ld segments %d (to %d)", n, nseg, off[nseg]);
}

typedef struct select_args {
  const int* in;
  const uint8_t* flag;
  int* out;
  int* count;
  long n;
} select_args;
static void select_prep(dx_ctx* c, const void* p) { dx_reserve_select(c, ((const select_args*)p)->n); }
static void select_lib(dx_ctx* c, const void* p) {
  const select_args* a = p;
  dx_select_flagged(c, a->in, a->flag, a->out, a->count, a->n);
}
static void select_ref(const void* p) {
  const select_args* a = p;
  int m = 0;
  for (long i = 0; i < a->n; i++)
    if (a->flag[i]) a->out[m++] = a->in[i];
  *a->count = m;
}
static void setup_select(tcase* t, int s) {
  long n = s == 2 ? 100000 : R(t, 1, 5000);
  select_args a = {I(t, n, -1000, 1000), U8(t, n, 0, R(t, 1, 3)), I(t, n, 0, 0), I(t, 1, -1, -1), n};
  ARGS(t, a, 0);
  SHAPE(t, "n %ld", n);
}

typedef struct copy_args {
  void* dst;
  const void* src;
  size_t bytes;
  int zero;
} copy_args;
static void copy_lib(dx_ctx* c, const void* p) {
  const copy_args* a = p;
  if (a->zero) dx_zero(c, a->dst, a->bytes);
  else dx_copy(c, a->dst, a->src, a->bytes);
}
static void copy_ref(const void* p) {
  const copy_args* a = p;
  if (a->zero) memset(a->dst, 0, a->bytes);
  else memmove(a->dst, a->src, a->bytes);
}
static void setup_copy_form(tcase* t, int s, int zero) {
  long n = s == 2 ? 200000 : R(t, 1, 5000), off = R(t, 0, 7);
  int* dst = I(t, n + 8, -9, 9);
  copy_args a = {dst + off, zero ? NULL : I(t, n, -100, 100), (size_t)R(t, 1, n) * sizeof(int), zero};
  ARGS(t, a, 0);
  SHAPE(t, "%zu bytes at +%ld", a.bytes, off * 4);
}
static void setup_copy(tcase* t, int s) { setup_copy_form(t, s, 0); }
static void setup_zero(tcase* t, int s) { setup_copy_form(t, s, 1); }

/* GPU bounds: 0 where the op only moves, counts or draws integers; 1e-5 where it does float
 * arithmetic (ulps of expf, tanhf, log1pf and contracted multiply-adds, normalized by the
 * buffer's largest value). A first GPU run prints the measured errors (docs/cuda.md). */
static const opdef g_ops[] = {
    ELEM(nnk_bias_act, 1e-5), ELEM(nnk_act_back, 1e-5), ELEM(nnk_colsum, 1e-5), ELEM(nnk_act_back_colsum, 1e-5),
    ELEM(nnk_sum_members, 1e-5), ELEM(nnk_adam_tick, 1e-6), ELEM(nnk_adam, 1e-5), ELEM(nnk_polyak, 1e-6),
    ELEM(nnk_concat, 0), ELEM(nnk_fill, 0), ELEM(nnk_ctr_add, 0), ELEM(nnk_rng, 1e-5),
    ELEM(poolk_gather, 0), ELEM(poolk_gather_runs, 0), ELEM(poolk_set_state, 0), ELEM(poolk_append, 0),
    ELEM(poolk_advance, 0),
    ELEM(rolloutk_init, 0), ELEM(rolloutk_iota, 0), ELEM(rolloutk_act, 1e-5), ELEM(rolloutk_step, 1e-5),
    ELEM(rolloutk_partial, 1e-12), ELEM(rolloutk_total, 0), ELEM(rolloutk_counts, 0), ELEM(rolloutk_compact, 0),
    ELEM(rolloutk_finish, 0),
    ELEM(modelk_keys, 0), ELEM(modelk_split_rows, 1e-6), ELEM(modelk_norm_part, 1e-12), ELEM(modelk_norm_fin, 1e-6),
    ELEM(modelk_boot, 0), ELEM(modelk_normalize, 1e-6), ELEM(modelk_norm_rows, 1e-6), ELEM(modelk_gather, 1e-6),
    ELEM(modelk_nll, 1e-5), ELEM(modelk_partials, 1e-12), ELEM(modelk_finish, 1e-6), ELEM(modelk_wd, 1e-6),
    ELEM(modelk_mean, 1e-12), ELEM(modelk_loss_acc, 1e-12), ELEM(modelk_epoch_loss, 1e-12), ELEM(modelk_copy_lists, 0), ELEM(modelk_snap, 0), ELEM(modelk_mse_rows, 1e-12),
    ELEM(modelk_mse_acc, 1e-12), ELEM(modelk_split_out, 1e-5),
    ELEM(sack_sample, 1e-5), ELEM(sack_target, 1e-5), ELEM(sack_critic_grad, 1e-6), ELEM(sack_pi_q_grad, 0),
    ELEM(sack_pi_back, 1e-5), ELEM(sack_alpha_stats, 1e-5), ELEM(sack_apply_tick, 1e-6), ELEM(sack_apply, 1e-5),
    ELEM(sack_act, 1e-5),
    GEMM(gemm_nn), GEMM(gemm_nt), GEMM(gemm_tn), GEMM(gemm_tt), GEMM(gemm2_inner1), GEMM(gemm2_outer1),
    GEMM(gemm2_collapse), GEMM(gemm2_ptrarray),
    GEMM_EP(gemm_ep_relu_bias), GEMM_EP(gemm_ep_bias_act), GEMM_EP(gemm_ep_act_back_colsum),
    {"sort", setup_sort, NULL, NULL, sort_lib, sort_ref, sort_prep, 0, 0},
    {"sort_segments", setup_sort_segments, NULL, NULL, segsort_lib, segsort_ref, segsort_prep, 0, 0},
    {"select", setup_select, NULL, NULL, select_lib, select_ref, select_prep, 0, 0},
    {"copy", setup_copy, NULL, NULL, copy_lib, copy_ref, NULL, 0, 0},
    {"zero", setup_zero, NULL, NULL, copy_lib, copy_ref, NULL, 0, 0},
};
#define NOPS ((int)(sizeof g_ops / sizeof g_ops[0]))
#define NSHAPES 3

/* ---- running --------------------------------------------------------------------------------- */

enum { CX_HOST, CX_DEFER, CX_CUDA, NCX };
static const char* const cx_name[NCX] = {"host", "deferred", "cuda"};
static dx_ctx* g_cx[NCX];
static char g_gpu_why[256];

/* The reference: the serial body or the library reference on copies (r) of the buffers. */
static void run_ref(const opdef* o, tcase* t) {
  for (int k = 0; k < t->nb; k++) {
    t->b[k].r = malloc(t->b[k].bytes);
    memcpy(t->b[k].r, t->b[k].h, t->b[k].bytes);
  }
  for (int k = 0; k < t->nb; k++)
    if (t->b[k].type == T_TAB) patch(t, t->b[k].r, t->b[k].bytes, 0);
  _Alignas(16) unsigned char a[DX_MAX_ARGS];
  memcpy(a, t->args, t->args_size);
  patch(t, a, t->args_size, 0);
  if (o->op) o->serial(a, t->n);
  else o->libref(a);
}

/* The op on context c, from buffers uploaded afresh; the args patched to them. */
static void upload_case(dx_ctx* c, tcase* t, unsigned char* a) {
  for (int k = 0; k < t->nb; k++) t->b[k].d = dx_alloc(c, t->b[k].bytes);
  for (int k = 0; k < t->nb; k++) {
    unsigned char* src = t->b[k].h;
    unsigned char* tmp = NULL;
    if (t->b[k].type == T_TAB) {
      tmp = malloc(t->b[k].bytes);
      memcpy(tmp, src, t->b[k].bytes);
      patch(t, tmp, t->b[k].bytes, 1);
      src = tmp;
    }
    dx_upload(c, t->b[k].d, src, t->b[k].bytes);
    dx_sync(c); /* the source is pageable and tmp is freed next */
    free(tmp);
  }
  memcpy(a, t->args, t->args_size);
  patch(t, a, t->args_size, 1);
}

static void issue(const opdef* o, dx_ctx* c, const tcase* t, const unsigned char* a) {
  if (o->op) dx_run(c, o->op, a, t->args_size, t->n);
  else o->lib(c, a);
}

/* Normalized error of buffer k: floats max |x - ref| / max |ref| (NaN matching NaN is 0);
 * integers and records: 0 or infinity, with the first differing element in *at. */
static double buf_err(const tbuf* b, const void* got, long* at) {
  *at = -1;
  if (b->type == T_F32 || b->type == T_F64) {
    const int f = b->type == T_F32;
    const size_t n = b->bytes / (f ? 4 : 8);
    double m = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
      double x = f ? ((const float*)got)[i] : ((const double*)got)[i];
      double r = f ? ((const float*)b->r)[i] : ((const double*)b->r)[i];
      if (fabs(r) > m && isfinite(r)) m = fabs(r);
      double e = (isnan(x) && isnan(r)) || x == r ? 0 : (isfinite(x) && isfinite(r) ? fabs(x - r) : INFINITY);
      if (e > d) d = e, *at = (long)i;
    }
    return d == 0 ? 0 : d / (m > 1e-30 ? m : 1e-30);
  }
  if (memcmp(got, b->r, b->bytes) == 0) return 0;
  const size_t w = b->type == T_I32 ? 4 : b->type == T_U8 || b->type == T_REC ? 1 : 8;
  for (size_t i = 0; i < b->bytes; i++)
    if (((const unsigned char*)got)[i] != b->r[i]) {
      *at = (long)(i / w);
      break;
    }
  return INFINITY;
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static int g_perf;
static double g_perf_us[NCX];

/* One op on every context and shape; returns the worst error per context (-1: not run). */
static void check_op(const opdef* o, double worst[NCX]) {
  for (int x = 0; x < NCX; x++) worst[x] = g_cx[x] ? 0 : -1;
  for (int s = 0; s < NSHAPES; s++) {
    tcase* t = calloc(1, sizeof *t);
    t->rs = 0x9E3779B97F4A7C15ull ^ ((uint64_t)(o - g_ops) << 32) ^ (uint64_t)(s + 1) * 0x2545F4914F6CDD1Dull;
    o->setup(t, s);
    run_ref(o, t);
    for (int x = 0; x < NCX; x++) {
      dx_ctx* c = g_cx[x];
      if (!c) continue;
      _Alignas(16) unsigned char a[DX_MAX_ARGS];
      dx_phase(c, "test_ops %s [%s]", o->name, t->shape);
      upload_case(c, t, a);
      if (o->prep) o->prep(c, a);
      const int captured = s == 1; /* the odd shape from a captured graph, the others eagerly */
      if (captured) {
        dx_capture_begin(c);
        issue(o, c, t, a);
        dx_graph* g = dx_capture_end(c);
        CHECK(dx_graph_ops(g) == 1, "%s [%s] on %s: a captured op records %ld dx ops", o->name, t->shape, cx_name[x],
              dx_graph_ops(g));
        dx_graph_launch(c, g);
        dx_sync(c);
        dx_graph_free(c, g);
      } else {
        issue(o, c, t, a);
        dx_sync(c);
      }
      const double bound = x == CX_CUDA ? o->tol_gpu : o->tol_host;
      for (int k = 0; k < t->nb; k++) {
        const tbuf* b = &t->b[k];
        if (b->type == T_TAB) continue;
        void* got = malloc(b->bytes);
        dx_download(c, got, b->d, b->bytes);
        dx_sync(c);
        long at;
        const double e = buf_err(b, got, &at);
        const int exact = b->type != T_F32 && b->type != T_F64;
        if (e > worst[x]) worst[x] = e;
        CHECK(e <= (exact ? 0 : bound), "op %s, shape [%s], %s%s: buffer %d (%s, %zu bytes) error %.3g > bound %.3g (first at %ld)",
              o->name, t->shape, cx_name[x], captured ? " (captured graph)" : "", k, type_name[b->type], b->bytes, e,
              exact ? 0.0 : bound, at);
        free(got);
      }
      if (g_perf && s == NSHAPES - 1) {
        /* microseconds per op: eager issues of the largest shape, then one sync */
        issue(o, c, t, a);
        dx_sync(c);
        double t0 = now_us();
        issue(o, c, t, a);
        dx_sync(c);
        double one = now_us() - t0;
        int reps = one > 0 ? (int)(2e5 / one) : 100;
        reps = reps < 3 ? 3 : reps > 200 ? 200 : reps;
        t0 = now_us();
        for (int r = 0; r < reps; r++) issue(o, c, t, a);
        dx_sync(c);
        g_perf_us[x] = (now_us() - t0) / reps;
      }
      for (int k = 0; k < t->nb; k++) dx_free(c, t->b[k].d);
      dx_phase(c, NULL);
    }
    if (g_perf && s == NSHAPES - 1) {
      printf("perf %-22s", o->name);
      for (int x = 0; x < NCX; x++)
        if (g_cx[x]) printf("  %s %10.1f us", cx_name[x], g_perf_us[x]);
      printf("   [%s]\n", t->shape);
    }
    free_case(t);
    free(t);
  }
}

static int selected(const char* name, int argc, char** argv) {
  int any = 0;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-') continue;
    any = 1;
    if (strstr(name, argv[i])) return 1;
  }
  return !any;
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--perf")) g_perf = 1;
  g_cx[CX_HOST] = dx_create(DX_HOST);
  setenv("MBPO_DX_DEFER", "1", 1); /* read at dx_create */
  g_cx[CX_DEFER] = dx_create(DX_HOST);
  unsetenv("MBPO_DX_DEFER");
  if (backend_cuda_probe(g_gpu_why, sizeof g_gpu_why)) {
    printf("GPU: %s\n", g_gpu_why);
    g_cx[CX_CUDA] = dx_create(DX_CUDA);
  }
  printf("%-22s %-10s %-10s %-10s %s\n", "op (max error)", "host", "deferred", "cuda", "cuda bound");
  for (int i = 0; i < NOPS; i++) {
    const opdef* o = &g_ops[i];
    if (!selected(o->name, argc, argv)) continue;
    tst_case_name = o->name;
    tst_case_failed = tst_case_skipped = 0;
    double worst[NCX];
    check_op(o, worst);
    printf("%-22s", o->name);
    for (int x = 0; x < NCX; x++)
      if (worst[x] < 0) printf(" %-10s", "-");
      else printf(" %-10.3g", worst[x]);
    printf(" %.0e\n", o->tol_gpu);
    if (tst_case_failed) tst_fail++;
    else tst_pass++;
  }
  /* one visible skip for the whole GPU column */
  tst_case_name = "cuda context";
  tst_case_failed = tst_case_skipped = 0;
  if (!g_cx[CX_CUDA]) {
    fprintf(stderr, "SKIP every op on the GPU: no usable GPU: %s\n", g_gpu_why);
    tst_skip++;
  }
  for (int x = 0; x < NCX; x++) dx_destroy(g_cx[x]);
  return test_done();
}
