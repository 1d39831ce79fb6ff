/* dx.c: device execution contexts (dx.h): the host emulation, and the dispatch to the CUDA
 * implementation in kernels/dx.cu (dx_cuda.h).
 *
 * The host emulation runs each op when it is enqueued, or, while capturing, appends it to the
 * graph with its arguments copied; a launch replays the list in order. */
#include "dx.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dx_cuda.h"
#include "log.h"

/* One recorded host op: fn(blob). */
typedef struct host_rec {
  void (*fn)(const void* blob);
  void* blob;
} host_rec;

struct dx_graph {
  int kind;
  void* cuda;            /* cudaGraphExec_t */
  long nodes;            /* CUDA: the graph's nodes */
  host_rec* recs;
  int n, cap;
};

struct dx_ctx {
  int kind;
  int capturing;
  void* cuda;            /* dxc state (stream, cuBLAS, CUB workspaces) */
  dx_graph* rec;         /* host graph being recorded */
  int defer;             /* host: MBPO_DX_DEFER=1, ops wait in `pending` until a sync (see below) */
  dx_graph* pending;
  long sort_cap, select_cap;
  uint64_t* sort_tmp;    /* host sort workspace */
};

/* CUDA contexts of a population are driven by several host threads. A capture (one thread, its
 * own stream, thread-local capture mode) and the allocations and frees of the other threads
 * (cudaFree synchronizes the device) are kept apart by this process-wide lock: a capture holds it
 * from begin to end. Recursive, so that the capturing thread's own calls reach the clear errors
 * below instead of a deadlock. The host emulation does not take it. */
static pthread_mutex_t g_cuda_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
#define CUDA_LOCK(c) do { if ((c)->kind == DX_CUDA) pthread_mutex_lock(&g_cuda_lock); } while (0)
#define CUDA_UNLOCK(c) do { if ((c)->kind == DX_CUDA) pthread_mutex_unlock(&g_cuda_lock); } while (0)

static void host_flush(dx_ctx* c);

dx_ctx* dx_create(int kind) {
  dx_ctx* c = calloc(1, sizeof *c);
  if (!c) mbpo_fatal("out of memory");
  c->kind = kind;
  if (kind == DX_CUDA) {
#ifdef MBPO_CUDA
    char err[512];
    CUDA_LOCK(c);
    c->cuda = dxc_create(err, sizeof err);
    CUDA_UNLOCK(c);
    if (!c->cuda) mbpo_fatal("CUDA backend: %s", err);
#else
    mbpo_fatal("CUDA backend: this binary was built without CUDA (nvcc was not found or CUDA=0)");
#endif
  } else if (kind != DX_HOST) {
    mbpo_fatal("dx_create: unknown kind %d", kind);
  } else {
    const char* e = getenv("MBPO_DX_DEFER");
    c->defer = e && *e && *e != '0';
  }
  return c;
}

void dx_destroy(dx_ctx* c) {
  if (!c) return;
  host_flush(c);
  if (c->pending) {
    free(c->pending->recs);
    free(c->pending);
  }
#ifdef MBPO_CUDA
  CUDA_LOCK(c);
  if (c->cuda) dxc_destroy(c->cuda);
  CUDA_UNLOCK(c);
#endif
  free(c->sort_tmp);
  free(c);
}

int dx_kind(const dx_ctx* c) { return c->kind; }
int dx_capturing(const dx_ctx* c) { return c->capturing; }

/* ---- host recording ---- */

/* Deferred host execution (MBPO_DX_DEFER=1): the host emulation runs an op when it is enqueued, so a
 * program that reads a pinned download before dx_sync, or changes a pinned upload's source before
 * the copy has run, works here and fails on a GPU. With MBPO_DX_DEFER=1 a host context behaves like
 * a stream instead: ops (graph launches too) wait in a queue that runs at dx_sync, at a download
 * into pageable memory (which waits, dx.h), and wherever CUDA synchronizes (allocation, free,
 * workspace reservation, destroy). A pinned download's destination is filled with NaN bytes when
 * it is enqueued, as its contents are undefined on a GPU until the sync; a pageable upload's source
 * is copied when it is enqueued, as cudaMemcpyAsync stages it. The device-path tests run under it
 * too (tests/run.sh). */

static void rec_append(dx_graph* g, void (*fn)(const void*), const void* blob, size_t size) {
  if (g->n == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 64;
    g->recs = realloc(g->recs, (size_t)g->cap * sizeof *g->recs);
    if (!g->recs) mbpo_fatal("out of memory");
  }
  void* b = malloc(size);
  if (!b) mbpo_fatal("out of memory");
  memcpy(b, blob, size);
  g->recs[g->n++] = (host_rec){fn, b};
}

static void host_submit(dx_ctx* c, void (*fn)(const void*), const void* blob, size_t size) {
  if (c->capturing) {
    rec_append(c->rec, fn, blob, size);
  } else if (c->defer) {
    if (!c->pending && !(c->pending = calloc(1, sizeof *c->pending))) mbpo_fatal("out of memory");
    rec_append(c->pending, fn, blob, size);
  } else {
    fn(blob);
  }
}

/* Run the deferred ops in order (nothing when not deferring). */
static void host_flush(dx_ctx* c) {
  dx_graph* q = c->pending;
  if (!q || c->kind != DX_HOST) return;
  /* an op may not enqueue more, but keep the loop safe if one did */
  for (int i = 0; i < q->n; i++) {
    q->recs[i].fn(q->recs[i].blob);
    free(q->recs[i].blob);
  }
  q->n = 0;
}

/* Pinned host allocations (dx_alloc_pinned) of every host context, for the deferred mode's copy
 * rules: one process-wide list, as page-locked memory is not tied to a stream. */
typedef struct pin_range {
  const char* p;
  size_t n;
} pin_range;
static pin_range* g_pins;
static int g_npins, g_cappins;
static pthread_mutex_t g_pin_lock = PTHREAD_MUTEX_INITIALIZER;

static void pin_add(const void* p, size_t n) {
  pthread_mutex_lock(&g_pin_lock);
  if (g_npins == g_cappins) {
    g_cappins = g_cappins ? 2 * g_cappins : 64;
    g_pins = realloc(g_pins, (size_t)g_cappins * sizeof *g_pins);
    if (!g_pins) mbpo_fatal("out of memory");
  }
  g_pins[g_npins++] = (pin_range){p, n};
  pthread_mutex_unlock(&g_pin_lock);
}

static void pin_remove(const void* p) {
  pthread_mutex_lock(&g_pin_lock);
  for (int i = 0; i < g_npins; i++)
    if (g_pins[i].p == p) {
      g_pins[i] = g_pins[--g_npins];
      break;
    }
  pthread_mutex_unlock(&g_pin_lock);
}

/* Is [p, p + n) inside one pinned allocation? */
static int pin_has(const void* p, size_t n) {
  const char* q = p;
  int found = 0;
  pthread_mutex_lock(&g_pin_lock);
  for (int i = 0; i < g_npins && !found; i++)
    found = q >= g_pins[i].p && q + n <= g_pins[i].p + g_pins[i].n;
  pthread_mutex_unlock(&g_pin_lock);
  return found;
}

#define IS_CUDA(c) ((c)->kind == DX_CUDA)

/* MBPO_DX_TRACE=1: every op recorded into a graph is listed on stderr (name, size), on both kinds,
 * to see what a captured phase launches and what fusing would save. */
static void trace(const dx_ctx* c, const char* what, const char* name, long n) {
  static int on = -1;
  if (on < 0) {
    const char* e = getenv("MBPO_DX_TRACE");
    on = e && *e && *e != '0';
  }
  if (on && c->capturing) fprintf(stderr, "dx trace: %-6s %-28s %ld\n", what, name ? name : "", n);
}
#ifndef MBPO_CUDA
/* Without CUDA a context is always DX_HOST; these keep the dispatch below uniform. */
#define CUDA_ONLY(stmt) do { mbpo_fatal("dx: CUDA call in a build without CUDA"); } while (0)
#else
#define CUDA_ONLY(stmt) do { stmt; } while (0)
#endif

/* ---- memory ---- */

void* dx_alloc(dx_ctx* c, size_t bytes) {
  if (c->capturing) mbpo_fatal("dx_alloc inside a capture");
  if (IS_CUDA(c)) {
    void* p = NULL;
    CUDA_LOCK(c);
    CUDA_ONLY(p = dxc_alloc(c->cuda, bytes));
    CUDA_UNLOCK(c);
    return p;
  }
  host_flush(c); /* cudaMalloc and its zeroing synchronize */
  size_t b = (bytes + 63) & ~(size_t)63;
  if (b == 0) b = 64;
  void* p = aligned_alloc(64, b);
  if (!p) mbpo_fatal("out of memory (%zu bytes)", bytes);
  memset(p, 0, b);
  return p;
}

float* dx_allocf(dx_ctx* c, size_t n) { return (float*)dx_alloc(c, n * sizeof(float)); }

void dx_free(dx_ctx* c, void* p) {
  if (!p) return;
  if (IS_CUDA(c)) {
    CUDA_LOCK(c);
    CUDA_ONLY(dxc_free(c->cuda, p));
    CUDA_UNLOCK(c);
  } else {
    host_flush(c); /* cudaFree synchronizes */
    free(p);
  }
}

void* dx_alloc_pinned(dx_ctx* c, size_t bytes) {
  if (IS_CUDA(c)) {
    void* p = NULL;
    CUDA_LOCK(c);
    CUDA_ONLY(p = dxc_alloc_pinned(c->cuda, bytes));
    CUDA_UNLOCK(c);
    return p;
  }
  void* p = calloc(1, bytes ? bytes : 1);
  if (!p) mbpo_fatal("out of memory (%zu bytes)", bytes);
  pin_add(p, bytes);
  return p;
}

void dx_free_pinned(dx_ctx* c, void* p) {
  if (!p) return;
  if (IS_CUDA(c)) {
    CUDA_LOCK(c);
    CUDA_ONLY(dxc_free_pinned(c->cuda, p));
    CUDA_UNLOCK(c);
  } else {
    host_flush(c);
    pin_remove(p);
    free(p);
  }
}

typedef struct copy_blob {
  void* dst;
  const void* src;
  size_t bytes;
} copy_blob;

static void copy_fn(const void* b) {
  const copy_blob* x = b;
  if (x->bytes) memmove(x->dst, x->src, x->bytes);
}

/* A pageable upload under MBPO_DX_DEFER: the source as it was when enqueued. */
typedef struct owned_blob {
  void* dst;
  size_t bytes;
  _Alignas(16) unsigned char data[];
} owned_blob;

static void owned_fn(const void* b) {
  const owned_blob* x = b;
  memcpy(x->dst, x->data, x->bytes);
}

static void zero_fn(const void* b) {
  const copy_blob* x = b;
  memset(x->dst, 0, x->bytes);
}

static void copy_any(dx_ctx* c, void* dst, const void* src, size_t bytes, int dir) {
  (void)dir; /* the host copies are direction-blind (unused in a build without CUDA) */
  trace(c, "copy", dir == DXC_H2D ? "h2d" : dir == DXC_D2H ? "d2h" : "d2d", (long)bytes);
  if (IS_CUDA(c)) {
    CUDA_ONLY(dxc_copy(c->cuda, dst, src, bytes, dir));
    return;
  }
  const void* host = dir == DXC_H2D ? src : dir == DXC_D2H ? (const void*)dst : NULL;
  const int pinned = host && pin_has(host, bytes);
  /* as on the GPU (kernels/dx.cu): a graph cannot copy from or to pageable memory */
  if (c->capturing && host && !pinned && bytes)
    mbpo_fatal("dx: a %s copy of %zu bytes inside a capture uses pageable host memory (use dx_alloc_pinned)",
               dir == DXC_H2D ? "host-to-device" : "device-to-host", bytes);
  copy_blob b = {dst, src, bytes};
  if (c->defer && !c->capturing && host && bytes) {
    if (dir == DXC_D2H && !pinned) { /* waits: everything before it has run */
      host_flush(c);
      copy_fn(&b);
      return;
    }
    if (dir == DXC_D2H) memset(dst, 0xff, bytes); /* undefined until the sync: NaN, -1 */
    if (dir == DXC_H2D && !pinned) {
      owned_blob* o = malloc(sizeof *o + bytes);
      if (!o) mbpo_fatal("out of memory");
      o->dst = dst;
      o->bytes = bytes;
      memcpy(o->data, src, bytes);
      host_submit(c, owned_fn, o, sizeof *o + bytes);
      free(o);
      return;
    }
  }
  host_submit(c, copy_fn, &b, sizeof b);
}

void dx_upload(dx_ctx* c, void* dst, const void* src, size_t bytes) { copy_any(c, dst, src, bytes, DXC_H2D); }
void dx_download(dx_ctx* c, void* dst, const void* src, size_t bytes) { copy_any(c, dst, src, bytes, DXC_D2H); }
void dx_copy(dx_ctx* c, void* dst, const void* src, size_t bytes) { copy_any(c, dst, src, bytes, DXC_D2D); }

void dx_zero(dx_ctx* c, void* dst, size_t bytes) {
  trace(c, "zero", "", (long)bytes);
  if (IS_CUDA(c)) {
    CUDA_ONLY(dxc_zero(c->cuda, dst, bytes));
    return;
  }
  copy_blob b = {dst, NULL, bytes};
  host_submit(c, zero_fn, &b, sizeof b);
}

void dx_sync(dx_ctx* c) {
  if (c->capturing) mbpo_fatal("dx_sync inside a capture");
  if (IS_CUDA(c)) CUDA_ONLY(dxc_sync(c->cuda));
  else host_flush(c);
}

/* ---- capture ---- */

void dx_capture_begin(dx_ctx* c) {
  if (c->capturing) mbpo_fatal("dx_capture_begin: already capturing");
  c->capturing = 1;
  if (IS_CUDA(c)) {
    CUDA_LOCK(c); /* released by dx_capture_end */
    CUDA_ONLY(dxc_capture_begin(c->cuda));
    return;
  }
  c->rec = calloc(1, sizeof *c->rec);
  if (!c->rec) mbpo_fatal("out of memory");
  c->rec->kind = DX_HOST;
}

dx_graph* dx_capture_end(dx_ctx* c) {
  if (!c->capturing) mbpo_fatal("dx_capture_end without dx_capture_begin");
  c->capturing = 0;
  if (IS_CUDA(c)) {
    dx_graph* g = calloc(1, sizeof *g);
    if (!g) mbpo_fatal("out of memory");
    g->kind = DX_CUDA;
    CUDA_ONLY(g->cuda = dxc_capture_end(c->cuda, &g->nodes));
    CUDA_UNLOCK(c);
    return g;
  }
  dx_graph* g = c->rec;
  c->rec = NULL;
  return g;
}

static void launch_fn(const void* b) {
  const dx_graph* g = *(dx_graph* const*)b;
  for (int i = 0; i < g->n; i++) g->recs[i].fn(g->recs[i].blob);
}

void dx_graph_launch(dx_ctx* c, dx_graph* g) {
  if (c->capturing) mbpo_fatal("dx_graph_launch inside a capture");
  if (g->kind == DX_CUDA) {
    CUDA_ONLY(dxc_graph_launch(c->cuda, g->cuda));
    return;
  }
  if (c->defer) { /* the launch waits in the queue like any op */
    host_submit(c, launch_fn, &g, sizeof g);
    return;
  }
  launch_fn(&g);
}

long dx_graph_ops(const dx_graph* g) { return g->kind == DX_CUDA ? g->nodes : g->n; }

void dx_graph_free(dx_ctx* c, dx_graph* g) {
  if (!g) return;
  if (c && !IS_CUDA(c)) host_flush(c); /* a queued launch may still name it */
  if (g->kind == DX_CUDA) {
    pthread_mutex_lock(&g_cuda_lock);
    CUDA_ONLY(dxc_graph_free(g->cuda));
    pthread_mutex_unlock(&g_cuda_lock);
  }
  for (int i = 0; i < g->n; i++) free(g->recs[i].blob);
  free(g->recs);
  free(g);
}

/* ---- element ops ---- */

typedef struct op_blob {
  const dx_op* op;
  long n;
  size_t size;
  _Alignas(16) unsigned char args[DX_MAX_ARGS];
} op_blob;

static void op_fn(const void* b) {
  const op_blob* x = b;
  x->op->host(x->args, x->n);
}

void dx_run(dx_ctx* c, const dx_op* op, const void* args, size_t args_size, long n) {
  if (args_size > DX_MAX_ARGS) mbpo_fatal("dx op %s: %zu argument bytes (at most %d)", op->name, args_size, DX_MAX_ARGS);
  if (n <= 0) return;
  trace(c, "op", op->name, n);
  if (IS_CUDA(c)) {
    if (!op->cuda) mbpo_fatal("dx op %s has no CUDA kernel", op->name);
    CUDA_ONLY(dxc_run(c->cuda, op->cuda, args, n, op->name));
    return;
  }
  op_blob b;
  b.op = op;
  b.n = n;
  b.size = args_size;
  memcpy(b.args, args, args_size);
  host_submit(c, op_fn, &b, offsetof(op_blob, args) + args_size);
}

/* ---- GEMM ---- */

typedef struct gemm_blob {
  int ta, tb, M, N, K, lda, ldb, ldc, batch;
  float alpha, beta;
  const float *A, *B;
  float* C;
  long sA, sB, sC;
} gemm_blob;

static void gemm_fn(const void* p) {
  const gemm_blob* g = p;
  for (int b = 0; b < g->batch; b++)
    cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
                g->M, g->N, g->K, g->alpha, g->A + (size_t)b * g->sA, g->lda, g->B + (size_t)b * g->sB,
                g->ldb, g->beta, g->C + (size_t)b * g->sC, g->ldc);
}

void dx_gemm(dx_ctx* c, int ta, int tb, int M, int N, int K, float alpha, const float* A, int lda,
             long strideA, const float* B, int ldb, long strideB, float beta, float* C, int ldc,
             long strideC, int batch) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  trace(c, "gemm", "", (long)M * N * batch);
  if (IS_CUDA(c)) {
    CUDA_ONLY(dxc_gemm(c->cuda, ta, tb, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc,
                       strideC, batch));
    return;
  }
  gemm_blob g = {ta, tb, M, N, K, lda, ldb, ldc, batch, alpha, beta, A, B, C, strideA, strideB, strideC};
  host_submit(c, gemm_fn, &g, sizeof g);
}

void dx_gemm2(dx_ctx* c, int ta, int tb, int M, int N, int K, float alpha, const float* A, int lda,
              long soA, long siA, const float* B, int ldb, long soB, long siB, float beta, float* C,
              int ldc, long soC, long siC, int outer, int inner) {
  if (outer <= 0 || inner <= 0) return;
  if (inner == 1 || outer == 1) { /* one level: one call */
    long sa = inner == 1 ? soA : siA, sb = inner == 1 ? soB : siB, sc = inner == 1 ? soC : siC;
    dx_gemm(c, ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, outer * inner);
    return;
  }
  if (soA == inner * siA && soB == inner * siB && soC == inner * siC) {
    dx_gemm(c, ta, tb, M, N, K, alpha, A, lda, siA, B, ldb, siB, beta, C, ldc, siC, outer * inner);
    return;
  }
#ifdef MBPO_CUDA
  /* the GPU: one pointer-array call (its tables written by one small kernel) instead of several */
  if (IS_CUDA(c) && dxc_gemm2(c->cuda, ta, tb, M, N, K, alpha, A, lda, soA, siA, B, ldb, soB, siB, beta, C, ldc,
                              soC, siC, outer, inner))
    return;
#endif
  if (inner <= outer) /* one batched call per member, over the runs */
    for (int i = 0; i < inner; i++)
      dx_gemm(c, ta, tb, M, N, K, alpha, A + (size_t)i * siA, lda, soA, B + (size_t)i * siB, ldb, soB, beta,
              C + (size_t)i * siC, ldc, soC, outer);
  else
    for (int o = 0; o < outer; o++)
      dx_gemm(c, ta, tb, M, N, K, alpha, A + (size_t)o * soA, lda, siA, B + (size_t)o * soB, ldb, siB, beta,
              C + (size_t)o * soC, ldc, siC, inner);
}

/* ---- sort and select ---- */

void dx_reserve_sort(dx_ctx* c, long n) {
  if (c->capturing) mbpo_fatal("dx_reserve_sort inside a capture");
  if (n <= c->sort_cap) return;
  host_flush(c); /* queued sorts use the old workspace */
  c->sort_cap = n;
  if (IS_CUDA(c)) {
    CUDA_LOCK(c);
    CUDA_ONLY(dxc_reserve_sort(c->cuda, n));
    CUDA_UNLOCK(c);
    return;
  }
  free(c->sort_tmp);
  c->sort_tmp = malloc(2 * (size_t)n * sizeof(uint64_t));
  if (!c->sort_tmp) mbpo_fatal("out of memory");
}

void dx_reserve_select(dx_ctx* c, long n) {
  if (c->capturing) mbpo_fatal("dx_reserve_select inside a capture");
  if (n <= c->select_cap) return;
  host_flush(c);
  c->select_cap = n;
  if (IS_CUDA(c)) {
    CUDA_LOCK(c);
    CUDA_ONLY(dxc_reserve_select(c->cuda, n));
    CUDA_UNLOCK(c);
  }
}

typedef struct sort_blob {
  const uint64_t* ki;
  uint64_t* ko;
  const int* vi;
  int* vo;
  long n;
  uint64_t* tmp;
} sort_blob;

/* Stable LSD radix sort of (key, position) by key, 8 bits per pass: what CUB does on the GPU. */
static void sort_fn(const void* p) {
  const sort_blob* s = p;
  long n = s->n;
  uint64_t *k = s->tmp, *k2 = s->tmp + n;
  int* pos = malloc(2 * (size_t)n * sizeof(int));
  if (!pos) mbpo_fatal("out of memory");
  int* pos2 = pos + n;
  for (long i = 0; i < n; i++) {
    k[i] = s->ki[i];
    pos[i] = (int)i;
  }
  for (int shift = 0; shift < 64; shift += 8) {
    long cnt[257] = {0};
    for (long i = 0; i < n; i++) cnt[((k[i] >> shift) & 255) + 1]++;
    for (int d = 0; d < 256; d++) cnt[d + 1] += cnt[d];
    for (long i = 0; i < n; i++) {
      long j = cnt[(k[i] >> shift) & 255]++;
      k2[j] = k[i];
      pos2[j] = pos[i];
    }
    uint64_t* tk = k; k = k2; k2 = tk;
    int* tp = pos; pos = pos2; pos2 = tp;
  }
  /* 8 passes: k and pos are back in their first buffers */
  int* vals = malloc((size_t)n * sizeof(int));
  if (!vals) mbpo_fatal("out of memory");
  for (long i = 0; i < n; i++) vals[i] = s->vi[pos[i]];
  memcpy(s->ko, k, (size_t)n * sizeof(uint64_t));
  memcpy(s->vo, vals, (size_t)n * sizeof(int));
  free(vals);
  free(pos < pos2 ? pos : pos2);
}

void dx_sort_pairs(dx_ctx* c, const uint64_t* keys_in, uint64_t* keys_out, const int* vals_in,
                   int* vals_out, long n) {
  if (n <= 0) return;
  if (n > c->sort_cap) mbpo_fatal("dx_sort_pairs: %ld items, %ld reserved", n, c->sort_cap);
  trace(c, "sort", "", n);
  if (IS_CUDA(c)) {
    CUDA_ONLY(dxc_sort_pairs(c->cuda, keys_in, keys_out, vals_in, vals_out, n));
    return;
  }
  sort_blob b = {keys_in, keys_out, vals_in, vals_out, n, c->sort_tmp};
  host_submit(c, sort_fn, &b, sizeof b);
}

typedef struct select_blob {
  const int* in;
  const uint8_t* flag;
  int* out;
  int* count;
  long n;
} select_blob;

static void select_fn(const void* p) {
  const select_blob* s = p;
  int m = 0;
  for (long i = 0; i < s->n; i++)
    if (s->flag[i]) s->out[m++] = s->in[i];
  *s->count = m;
}

void dx_select_flagged(dx_ctx* c, const int* in, const uint8_t* flag, int* out, int* count, long n) {
  if (n > c->select_cap) mbpo_fatal("dx_select_flagged: %ld items, %ld reserved", n, c->select_cap);
  trace(c, "select", "", n);
  if (IS_CUDA(c)) {
    CUDA_ONLY(dxc_select_flagged(c->cuda, in, flag, out, count, n));
    return;
  }
  select_blob b = {in, flag, out, count, n};
  host_submit(c, select_fn, &b, sizeof b);
}
