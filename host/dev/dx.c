/* dx.c: device execution contexts (dx.h): the host emulation, and the dispatch to the CUDA
 * implementation in kernels/dx.cu (dx_cuda.h).
 *
 * Every op is a record {fn, argument blob, description}: fn runs it on the context's kind (the
 * host's plain loops and OpenBLAS, or the CUDA calls). The host emulation runs a record when it is
 * enqueued, or, while capturing, appends it to the graph with its arguments copied; a launch
 * replays the list in order. On the GPU a record runs at once (into the stream, or into a CUDA
 * graph by stream capture), except in the debug mode MBPO_DX_SYNC=1, where a capture records the
 * list exactly as the host does, and every op, replayed or not, is followed by a sync and a check
 * that names the op, its sizes and the context's phase (dx_phase).
 *
 * Errors of both kinds leave through dx_fail, so that a fault injected on the host emulation
 * (MBPO_DX_FAIL, for the tests) is reported by the same path and the same words as a CUDA one. */
#include "dx.h"

#include <cblas.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dx_cuda.h"
#include "dx_graph.h"
#include "log.h"

_Static_assert(DX_LANES == DXC_LANES, "dx.h and dx_cuda.h disagree on the lanes");

/* What an op is, for error messages: a kind of op, a name and up to four sizes. */
typedef struct dx_opdesc {
  const char* what; /* "op", "gemm", "gemm2", "copy", "zero", "sort", "select", "graph", "sync" */
  const char* name; /* element op name, copy direction; may be NULL */
  long n[4];
} dx_opdesc;

typedef void (*rec_fn)(dx_ctx* c, const void* blob);

/* One recorded op. */
typedef struct dx_rec {
  rec_fn fn;
  void* blob;
  dx_opdesc d;
  int phase;             /* a list graph's record: its phase at capture (index into phases) */
  int lane;              /* the lane it was enqueued on */
  dxg_deps deps;         /* a list graph's record: the records it depends on (dx_graph.h) */
} dx_rec;

struct dx_graph {
  int kind;
  int list;              /* replayed from recs (the host, or a CUDA context under MBPO_DX_SYNC=1) */
  void* cuda;            /* cudaGraphExec_t */
  long nodes;            /* CUDA: the graph's nodes (cudaGraphGetNodes); a list: its ops */
  long ops;              /* dx-level ops recorded */
  long crit;             /* its critical path (dx_graph.h), in dx-level ops */
  long ws_gen;           /* the context's ws_gen at capture when it sorts or selects, else -1 */
  dx_rec* recs;
  int n, cap;
  char label[DX_PHASE_MAX]; /* the phase at capture */
  char** phases;         /* the phases its records were captured in (a list graph) */
  int nphase;
};

struct dx_ctx {
  int kind;
  int capturing;
  int defer;             /* host: MBPO_DX_DEFER=1, ops wait in `pending` until a sync (see below) */
  int syncmode;          /* MBPO_DX_SYNC=1 */
  void* cuda;            /* dxc state (stream, cuBLAS, CUB workspaces) */
  dx_graph* rec;         /* list graph being recorded */
  long cap_ops;          /* ops issued into the current CUDA stream capture */
  dx_graph* pending;
  long sort_cap, select_cap;
  long ws_gen;           /* bumped when the sort or select workspace moves (dx_reserve_*) */
  int cap_ws;            /* the capture under way holds those workspaces */
  uint64_t* sort_tmp;    /* host sort workspace */
  char phase[DX_PHASE_MAX];
  dx_opdesc cur;         /* the op being issued or run */
  const dx_graph* in_graph; /* the graph being replayed op by op (list graphs), and where */
  int graph_i;
  char last_graph[DX_PHASE_MAX]; /* label of the last graph launched */
  char fault[256];       /* a pending fault (injected: MBPO_DX_FAIL), reported at the next check */
  int lane;              /* the current lane (dx_lane) */
  int reorder;           /* host: replay list graphs in another valid order (dx_reorder) */
  dxg dep;               /* the lanes' dependencies (dx_graph.h) */
};

/* Captures ended (and CUDA graphs instantiated) by the process, for dx_captures_total; ops
 * enqueued (run or recorded), for dx_ops_total. */
static long g_captures, g_ops;

/* CUDA contexts of a population are driven by several host threads. A capture (one thread, its
 * own stream, thread-local capture mode) and the allocations and frees of the other threads
 * (cudaFree synchronizes the device) are kept apart by this process-wide lock: a capture holds it
 * from begin to end. Recursive, so that the capturing thread's own calls reach the clear errors
 * below instead of a deadlock. The host emulation does not take it. */
static pthread_mutex_t g_cuda_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
#define CUDA_LOCK(c) do { if ((c)->kind == DX_CUDA) pthread_mutex_lock(&g_cuda_lock); } while (0)
#define CUDA_UNLOCK(c) do { if ((c)->kind == DX_CUDA) pthread_mutex_unlock(&g_cuda_lock); } while (0)

#define IS_CUDA(c) ((c)->kind == DX_CUDA)

#ifndef MBPO_CUDA
/* Without CUDA a context is always DX_HOST; these keep the dispatch below uniform. */
#define CUDA_ONLY(stmt) do { mbpo_fatal("dx: CUDA call in a build without CUDA"); } while (0)
#else
#define CUDA_ONLY(stmt) do { stmt; } while (0)
#endif

static void host_flush(dx_ctx* c);

static int env_on(const char* name) {
  const char* e = getenv(name);
  return e && *e && *e != '0';
}

/* ---- errors ---- */

/* "op nnk_adam (4096 indices)", "gemm 37x29x53, batch 3", ... */
static void desc_fmt(char* b, size_t n, const dx_opdesc* d) {
  const char* w = d->what ? d->what : "op";
  if (!strcmp(w, "op")) snprintf(b, n, "op %s (%ld indices)", d->name, d->n[0]);
  else if (!strcmp(w, "gemm")) snprintf(b, n, "gemm %ldx%ldx%ld, batch %ld", d->n[0], d->n[1], d->n[2], d->n[3]);
  else if (!strcmp(w, "gemm2")) snprintf(b, n, "gemm2 %ldx%ldx%ld, %ld x %ld matrices", d->n[0], d->n[1], d->n[2], d->n[3] >> 20, d->n[3] & 0xfffff);
  else if (!strcmp(w, "gemm_ep"))
    snprintf(b, n, "gemm_ep %ldx%ldx%ld, %ld x %ld matrices, then op %s", d->n[0], d->n[1], d->n[2], d->n[3] >> 20,
             d->n[3] & 0xfffff, d->name ? d->name : "?");
  else if (!strcmp(w, "copy") || !strcmp(w, "zero")) snprintf(b, n, "%s %s of %ld bytes", w, d->name ? d->name : "", d->n[0]);
  else if (!strcmp(w, "sync")) snprintf(b, n, "dx_sync");
  else snprintf(b, n, "%s of %ld items", w, d->n[0]);
}

/* The one report of a device fault: "<phase>: <op>: <error> (<call>; device <kind>...)". */
MBPO_NORETURN static void dx_fail(dx_ctx* c, const char* call, const char* err) {
  char what[200] = "", where[DX_PHASE_MAX + 64] = "";
  if (!c) mbpo_fatal("dx (cuda): %s failed: %s", call, err);
  desc_fmt(what, sizeof what, &c->cur);
  if (c->in_graph) {
    const dx_graph* g = c->in_graph;
    const int ph = g->recs[c->graph_i].phase;
    const char* at = ph >= 0 && g->phases[ph][0] ? g->phases[ph] : g->label[0] ? g->label : "no phase";
    snprintf(where, sizeof where, ", op %d of %d of the graph captured in \"%s\"", c->graph_i + 1, g->n, at);
  }
  else if (c->last_graph[0] && c->cur.what && !strcmp(c->cur.what, "sync"))
    snprintf(where, sizeof where, " after a launch of the graph captured in \"%s\"", c->last_graph);
  mbpo_fatal("%s: %s%s: %s (%s; device %s%s)", c->phase[0] ? c->phase : "no phase (dx_phase)", what, where, err,
             call, IS_CUDA(c) ? "cuda" : "host", c->syncmode ? ", MBPO_DX_SYNC=1" : "; MBPO_DX_SYNC=1 names the op");
}

void dx_cuda_fail(void* owner, const char* call, const char* err) { dx_fail(owner, call, err); }

/* Raise a fault found (injected, or from the GPU) since the last check. */
static void dx_check(dx_ctx* c, const char* call) {
  if (c->fault[0]) dx_fail(c, call, c->fault);
#ifdef MBPO_CUDA
  if (IS_CUDA(c)) {
    char err[400];
    if (dxc_sync_check(c->cuda, err, sizeof err)) dx_fail(c, call, err);
  }
#endif
}

/* MBPO_DX_FAIL=NAME[:K]: the K-th (default first) op of the process whose name is NAME (an element
 * op's name, or gemm, gemm2, copy, zero, sort, select) does not run and leaves a fault behind, as
 * a kernel that faults would: the tests show with it which op and phase a fault report names. */
static int inject_hit(const dx_opdesc* d) {
  static const char* spec;
  static int init;
  static long left = 1;
  static char name[64];
  if (!__atomic_load_n(&init, __ATOMIC_ACQUIRE)) {
    static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&m);
    if (!init) {
      spec = getenv("MBPO_DX_FAIL");
      if (spec && *spec) {
        snprintf(name, sizeof name, "%s", spec);
        char* colon = strchr(name, ':');
        if (colon) {
          *colon = 0;
          left = atol(colon + 1) > 0 ? atol(colon + 1) : 1;
        }
      } else {
        spec = NULL;
      }
      __atomic_store_n(&init, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&m);
  }
  if (!spec) return 0;
  const char* n = !strcmp(d->what, "op") ? d->name : d->what;
  /* a fused GEMM answers to gemm_ep and to its epilogue's op name */
  const int ep = !strcmp(d->what, "gemm_ep") && d->name && !strcmp(d->name, name);
  if (!ep && (!n || strcmp(n, name))) return 0;
  return __atomic_sub_fetch(&left, 1, __ATOMIC_RELAXED) == 0;
}

/* Run one record now, on its lane: the op, then under MBPO_DX_SYNC=1 a sync and a check (the
 * debug mode puts every op on lane 0, in program order). */
static void run_rec(dx_ctx* c, rec_fn fn, const void* blob, const dx_opdesc* d, int lane) {
  c->cur = *d;
#ifdef MBPO_CUDA
  if (IS_CUDA(c)) dxc_lane(c->cuda, c->syncmode ? 0 : lane);
#else
  (void)lane;
#endif
  if (inject_hit(d)) {
    if (!c->fault[0]) snprintf(c->fault, sizeof c->fault, "injected fault (MBPO_DX_FAIL=%s)", getenv("MBPO_DX_FAIL"));
  } else {
    fn(c, blob);
  }
  if (c->syncmode) dx_check(c, IS_CUDA(c) ? "cudaStreamSynchronize after the op" : "check after the op");
}

/* ---- contexts ---- */

dx_ctx* dx_create(int kind) {
  dx_ctx* c = calloc(1, sizeof *c);
  if (!c) mbpo_fatal("out of memory");
  c->kind = kind;
  c->syncmode = env_on("MBPO_DX_SYNC");
  if (kind == DX_CUDA) {
#ifdef MBPO_CUDA
    char err[512];
    CUDA_LOCK(c);
    c->cuda = dxc_create(c, err, sizeof err);
    CUDA_UNLOCK(c);
    if (!c->cuda) mbpo_fatal("CUDA backend: %s", err);
#else
    mbpo_fatal("CUDA backend: this binary was built without CUDA (nvcc was not found or CUDA=0)");
#endif
  } else if (kind != DX_HOST) {
    mbpo_fatal("dx_create: unknown kind %d", kind);
  } else {
    c->defer = env_on("MBPO_DX_DEFER");
    const char* r = getenv("MBPO_DX_REORDER");
    c->reorder = r ? atoi(r) : 0;
  }
  return c;
}

void dx_destroy(dx_ctx* c) {
  if (!c) return;
  if (c->capturing) mbpo_fatal("dx_destroy inside a capture");
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
  dxg_free(&c->dep);
  free(c);
}

int dx_kind(const dx_ctx* c) { return c->kind; }
int dx_capturing(const dx_ctx* c) { return c->capturing; }
int dx_sync_mode(const dx_ctx* c) { return c->syncmode; }

void dx_phase(dx_ctx* c, const char* fmt, ...) {
  if (!fmt) {
    c->phase[0] = 0;
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->phase, sizeof c->phase, fmt, ap);
  va_end(ap);
}

const char* dx_phase_get(const dx_ctx* c) { return c->phase; }

void dx_phase_sub(dx_ctx* c, const char* outer, const char* fmt, ...) {
  char sub[DX_PHASE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sub, sizeof sub, fmt, ap);
  va_end(ap);
  char all[2 * DX_PHASE_MAX + 2];
  if (outer && *outer) snprintf(all, sizeof all, "%s: %s", outer, sub);
  else snprintf(all, sizeof all, "%s", sub);
  size_t n = strlen(all); /* a label past DX_PHASE_MAX - 1 bytes is cut */
  if (n >= sizeof c->phase) n = sizeof c->phase - 1;
  memcpy(c->phase, all, n);
  c->phase[n] = 0;
}

/* ---- recording ---- */

/* Deferred host execution (MBPO_DX_DEFER=1): the host emulation runs an op when it is enqueued, so a
 * program that reads a pinned download before dx_sync, or changes a pinned upload's source before
 * the copy has run, works here and fails on a GPU. With MBPO_DX_DEFER=1 a host context behaves like
 * a stream instead: ops (graph launches too) wait in a queue that runs at dx_sync, at a download
 * into pageable memory (which waits, dx.h), and wherever CUDA synchronizes (allocation, free,
 * workspace reservation, destroy). A pinned download's destination is filled with NaN bytes when
 * it is enqueued, as its contents are undefined on a GPU until the sync; a pageable upload's source
 * is copied when it is enqueued, as cudaMemcpyAsync stages it. The device-path tests run under it
 * too (tests/run.sh). */

static void rec_append(dx_graph* g, rec_fn fn, const void* blob, size_t size, const dx_opdesc* d, int lane,
                       const dxg_deps* deps) {
  if (g->n == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 64;
    g->recs = realloc(g->recs, (size_t)g->cap * sizeof *g->recs);
    if (!g->recs) mbpo_fatal("out of memory");
  }
  void* b = malloc(size);
  if (!b) mbpo_fatal("out of memory");
  memcpy(b, blob, size);
  g->recs[g->n] = (dx_rec){fn, b, *d, -1, lane, {{-1, -1, -1, -1}}};
  if (deps) g->recs[g->n].deps = *deps;
  g->n++;
}

/* A captured record keeps the phase it was captured in (the program's step inside the graph). */
static void rec_phase(dx_graph* g, const char* phase) {
  if (!g->nphase || strcmp(g->phases[g->nphase - 1], phase)) {
    g->phases = realloc(g->phases, (size_t)(g->nphase + 1) * sizeof *g->phases);
    if (!g->phases || !(g->phases[g->nphase] = strdup(phase))) mbpo_fatal("out of memory");
    g->nphase++;
  }
  g->recs[g->n - 1].phase = g->nphase - 1;
}

/* MBPO_DX_TRACE=1: every op recorded into a graph is listed on stderr (lane, depth, name, size),
 * and each graph's op count and critical path at its end, on both kinds: what a captured phase
 * launches, what fusing would save and what runs side by side. */
static int trace_on(void) {
  static int on = -1;
  if (on < 0) on = env_on("MBPO_DX_TRACE");
  return on;
}

static void trace(const dx_ctx* c, const dx_opdesc* d, long depth) {
  if (trace_on() && c->capturing) {
    char b[200];
    desc_fmt(b, sizeof b, d);
    fprintf(stderr, "dx trace: [lane %d, depth %ld] %s\n", c->lane, depth, b);
  }
}

/* Enqueue one op: record it (capture on the host, or any capture under MBPO_DX_SYNC=1), queue it
 * (deferred host), or run it (into the CUDA stream or its capture, or on the host at once). */
static void submit(dx_ctx* c, rec_fn fn, const void* blob, size_t size, dx_opdesc d) {
  dxg_deps deps;
  const long depth = dxg_op(&c->dep, c->lane, &deps, c->phase);
  __atomic_add_fetch(&g_ops, 1, __ATOMIC_RELAXED);
  trace(c, &d, depth);
  if (c->capturing && (!IS_CUDA(c) || c->syncmode)) {
    rec_append(c->rec, fn, blob, size, &d, c->lane, &deps);
    rec_phase(c->rec, c->phase);
    c->rec->ops++;
  } else if (c->defer && !c->capturing) {
    if (!c->pending && !(c->pending = calloc(1, sizeof *c->pending))) mbpo_fatal("out of memory");
    rec_append(c->pending, fn, blob, size, &d, c->lane, NULL);
  } else {
    if (c->capturing) c->cap_ops++;
    run_rec(c, fn, blob, &d, c->lane);
  }
}

/* Run the deferred ops in order (nothing when not deferring). */
static void host_flush(dx_ctx* c) {
  dx_graph* q = c->pending;
  if (!q || c->kind != DX_HOST) return;
  /* an op may not enqueue more, but keep the loop safe if one did */
  for (int i = 0; i < q->n; i++) {
    run_rec(c, q->recs[i].fn, q->recs[i].blob, &q->recs[i].d, q->recs[i].lane);
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

/* ---- memory ---- */

/* Allocation and free are set-up work: inside a capture they would synchronize (CUDA) or outlive
 * the graph's assumptions, so they are refused on both kinds. */
static void no_capture(const dx_ctx* c, const char* what) {
  if (c->capturing) mbpo_fatal("%s: %s inside a capture (set-up work; do it before dx_capture_begin)",
                               c->phase[0] ? c->phase : "no phase (dx_phase)", what);
}

void* dx_alloc(dx_ctx* c, size_t bytes) {
  no_capture(c, "dx_alloc");
  if (IS_CUDA(c)) {
    void* p = NULL;
    CUDA_LOCK(c);
    c->cur = (dx_opdesc){"alloc", NULL, {(long)bytes}};
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
  no_capture(c, "dx_free");
  if (IS_CUDA(c)) {
    CUDA_LOCK(c);
    c->cur = (dx_opdesc){"free", NULL, {0}};
    CUDA_ONLY(dxc_free(c->cuda, p));
    CUDA_UNLOCK(c);
  } else {
    host_flush(c); /* cudaFree synchronizes */
    free(p);
  }
}

void* dx_alloc_pinned(dx_ctx* c, size_t bytes) {
  no_capture(c, "dx_alloc_pinned");
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
  no_capture(c, "dx_free_pinned");
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
  int dir;
} copy_blob;

static void copy_fn(dx_ctx* c, const void* b) {
  const copy_blob* x = b;
  if (IS_CUDA(c)) {
    CUDA_ONLY(dxc_copy(c->cuda, x->dst, x->src, x->bytes, x->dir));
    return;
  }
  if (x->bytes) memmove(x->dst, x->src, x->bytes);
}

/* A pageable upload under MBPO_DX_DEFER: the source as it was when enqueued. */
typedef struct owned_blob {
  void* dst;
  size_t bytes;
  _Alignas(16) unsigned char data[];
} owned_blob;

static void owned_fn(dx_ctx* c, const void* b) {
  (void)c;
  const owned_blob* x = b;
  memcpy(x->dst, x->data, x->bytes);
}

static void zero_fn(dx_ctx* c, const void* b) {
  const copy_blob* x = b;
  if (IS_CUDA(c)) {
    CUDA_ONLY(dxc_zero(c->cuda, x->dst, x->bytes));
    return;
  }
  memset(x->dst, 0, x->bytes);
}

static const char* dir_name(int dir) { return dir == DXC_H2D ? "h2d" : dir == DXC_D2H ? "d2h" : "d2d"; }

static int is_pinned(const dx_ctx* c, const void* p, size_t n) {
  if (!IS_CUDA(c)) return pin_has(p, n);
  int r = 0;
  CUDA_ONLY(r = dxc_is_pinned(p));
  return r;
}

/* A call that waits for the device needs every lane joined into lane 0 (dx.h): on a GPU it waits
 * for lane 0's stream only. */
static void need_joined(dx_ctx* c, const char* what) {
  if (c->lane != 0) mbpo_fatal("%s: %s on lane %d (lane 0 only)", c->phase[0] ? c->phase : "no phase (dx_phase)", what, c->lane);
  if (!c->capturing) dxg_need_joined(&c->dep, what, c->phase);
}

static void copy_any(dx_ctx* c, void* dst, const void* src, size_t bytes, int dir) {
  const dx_opdesc d = {"copy", dir_name(dir), {(long)bytes}};
  const void* host = dir == DXC_H2D ? src : dir == DXC_D2H ? (const void*)dst : NULL;
  copy_blob b = {dst, src, bytes, dir};
  if (dir == DXC_D2H && !c->capturing && host && !is_pinned(c, host, bytes)) need_joined(c, "a download into pageable memory");
  if (IS_CUDA(c) && !(c->syncmode && c->capturing)) { /* kernels/dx.cu checks the capture rules */
    submit(c, copy_fn, &b, sizeof b, d);
    return;
  }
  const int pinned = host && is_pinned(c, host, bytes);
  /* as on the GPU (kernels/dx.cu): a graph cannot copy from or to pageable memory */
  if (c->capturing && host && !pinned && bytes)
    mbpo_fatal("dx: a %s copy of %zu bytes inside a capture uses pageable host memory (use dx_alloc_pinned)",
               dir == DXC_H2D ? "host-to-device" : "device-to-host", bytes);
  if (c->defer && !c->capturing && host && bytes) {
    if (dir == DXC_D2H && !pinned) { /* waits: everything before it has run */
      need_joined(c, "a download into pageable memory");
      host_flush(c);
      dxg_op(&c->dep, c->lane, NULL, c->phase);
      run_rec(c, copy_fn, &b, &d, c->lane);
      return;
    }
    if (dir == DXC_D2H) memset(dst, 0xff, bytes); /* undefined until the sync: NaN, -1 */
    if (dir == DXC_H2D && !pinned) {
      owned_blob* o = malloc(sizeof *o + bytes);
      if (!o) mbpo_fatal("out of memory");
      o->dst = dst;
      o->bytes = bytes;
      memcpy(o->data, src, bytes);
      submit(c, owned_fn, o, sizeof *o + bytes, d);
      free(o);
      return;
    }
  }
  submit(c, copy_fn, &b, sizeof b, d);
}

void dx_upload(dx_ctx* c, void* dst, const void* src, size_t bytes) { copy_any(c, dst, src, bytes, DXC_H2D); }
void dx_download(dx_ctx* c, void* dst, const void* src, size_t bytes) { copy_any(c, dst, src, bytes, DXC_D2H); }
void dx_copy(dx_ctx* c, void* dst, const void* src, size_t bytes) { copy_any(c, dst, src, bytes, DXC_D2D); }

void dx_zero(dx_ctx* c, void* dst, size_t bytes) {
  copy_blob b = {dst, NULL, bytes, 0};
  submit(c, zero_fn, &b, sizeof b, (dx_opdesc){"zero", "", {(long)bytes}});
}

void dx_sync(dx_ctx* c) {
  if (c->capturing) mbpo_fatal("%s: dx_sync inside a capture", c->phase[0] ? c->phase : "no phase (dx_phase)");
  need_joined(c, "dx_sync");
  dxg_reset(&c->dep);
  if (!IS_CUDA(c)) host_flush(c);
  c->cur = (dx_opdesc){"sync", NULL, {0}};
  dx_check(c, IS_CUDA(c) ? "at dx_sync" : "host check at dx_sync");
}

/* ---- lanes ---- */

void dx_wait(dx_ctx* c, int dst, int src) {
  if (dst == src) return;
  dxg_wait(&c->dep, dst, src, c->phase);
  /* the host runs in program order; the debug mode runs every op on lane 0 */
  if (IS_CUDA(c) && !c->syncmode) {
    c->cur = (dx_opdesc){"wait", NULL, {dst, src}};
    CUDA_ONLY(dxc_wait(c->cuda, dst, src));
  }
}

void dx_lane(dx_ctx* c, int l) {
  if (l < 0 || l >= DX_LANES) mbpo_fatal("%s: dx_lane %d (lanes 0..%d)", c->phase[0] ? c->phase : "no phase (dx_phase)", l, DX_LANES - 1);
  c->lane = l;
}

int dx_lane_get(const dx_ctx* c) { return c->lane; }

void dx_reorder(dx_ctx* c, int mode) { c->reorder = mode; }

long dx_ops_total(void) { return __atomic_load_n(&g_ops, __ATOMIC_RELAXED); }

long dx_captures_total(void) { return __atomic_load_n(&g_captures, __ATOMIC_RELAXED); }

/* ---- capture ---- */

void dx_capture_begin(dx_ctx* c) {
  if (c->capturing) mbpo_fatal("dx_capture_begin: already capturing");
  if (c->lane != 0) mbpo_fatal("%s: dx_capture_begin on lane %d (lane 0 only)", c->phase[0] ? c->phase : "no phase (dx_phase)", c->lane);
  dxg_begin(&c->dep, c->phase);
  c->capturing = 1;
  c->cap_ops = 0;
  c->cap_ws = 0;
  if (IS_CUDA(c) && !c->syncmode) {
    CUDA_LOCK(c); /* released by dx_capture_end */
    c->cur = (dx_opdesc){"capture", NULL, {0}};
    CUDA_ONLY(dxc_capture_begin(c->cuda));
    return;
  }
  c->rec = calloc(1, sizeof *c->rec);
  if (!c->rec) mbpo_fatal("out of memory");
  c->rec->kind = c->kind;
  c->rec->list = 1;
  snprintf(c->rec->label, sizeof c->rec->label, "%s", c->phase);
}

/* MBPO_DX_TRACE=1: a graph's size and critical path. */
static dx_graph* captured(dx_graph* g) {
  __atomic_add_fetch(&g_captures, 1, __ATOMIC_RELAXED);
  if (trace_on())
    fprintf(stderr, "dx trace: graph \"%s\": %ld ops, critical path %ld\n", g->label[0] ? g->label : "no phase",
            g->ops, g->crit);
  return g;
}

dx_graph* dx_capture_end(dx_ctx* c) {
  if (!c->capturing) mbpo_fatal("dx_capture_end without dx_capture_begin");
  if (c->lane != 0) mbpo_fatal("%s: dx_capture_end on lane %d (lane 0 only)", c->phase[0] ? c->phase : "no phase (dx_phase)", c->lane);
  dxg_end(&c->dep, c->phase); /* fatal unless every lane is joined: CUDA's capture would fail */
  const long crit = c->dep.crit;
  dxg_reset(&c->dep);
  c->capturing = 0;
  if (IS_CUDA(c) && !c->syncmode) {
    dx_graph* g = calloc(1, sizeof *g);
    if (!g) mbpo_fatal("out of memory");
    g->kind = DX_CUDA;
    g->ops = c->cap_ops;
    g->crit = crit;
    g->ws_gen = c->cap_ws ? c->ws_gen : -1;
    snprintf(g->label, sizeof g->label, "%s", c->phase);
    CUDA_ONLY(g->cuda = dxc_capture_end(c->cuda, &g->nodes));
    CUDA_UNLOCK(c);
    return captured(g);
  }
  dx_graph* g = c->rec;
  c->rec = NULL;
  g->nodes = g->n;
  g->crit = crit;
  g->ws_gen = c->cap_ws ? c->ws_gen : -1;
  return captured(g);
}

/* The order a list graph replays in (dx_reorder, host): dxg_order over its records' lanes and
 * dependencies. */
static int* replay_order(const dx_graph* g, int mode) {
  int* lanes = malloc((size_t)(g->n ? g->n : 1) * sizeof *lanes);
  dxg_deps* deps = malloc((size_t)(g->n ? g->n : 1) * sizeof *deps);
  if (!lanes || !deps) mbpo_fatal("out of memory");
  for (int i = 0; i < g->n; i++) lanes[i] = g->recs[i].lane, deps[i] = g->recs[i].deps;
  int* order = dxg_order(g->n, lanes, deps, mode, g->label);
  free(lanes);
  free(deps);
  return order;
}

/* Replay a list graph op by op (each checked under MBPO_DX_SYNC=1, naming its place in the graph). */
static void launch_fn(dx_ctx* c, const void* b) {
  const dx_graph* g = *(dx_graph* const*)b;
  const dx_graph* outer = c->in_graph;
  const int outer_i = c->graph_i;
  c->in_graph = g;
  int* order = !IS_CUDA(c) && c->reorder ? replay_order(g, c->reorder) : NULL;
  for (int m = 0; m < g->n; m++) {
    const int i = order ? order[m] : m;
    c->graph_i = i;
    run_rec(c, g->recs[i].fn, g->recs[i].blob, &g->recs[i].d, g->recs[i].lane);
  }
  free(order);
  c->in_graph = outer;
  c->graph_i = outer_i;
}

void dx_graph_launch(dx_ctx* c, dx_graph* g) {
  if (c->capturing) mbpo_fatal("dx_graph_launch inside a capture");
  if (c->lane != 0) mbpo_fatal("%s: dx_graph_launch on lane %d (lane 0 only)", c->phase[0] ? c->phase : "no phase (dx_phase)", c->lane);
  if (g->ws_gen >= 0 && g->ws_gen != c->ws_gen)
    mbpo_fatal("%s: dx_graph_launch: the graph captured in \"%s\" sorts or selects in a workspace that a later "
               "dx_reserve_sort / dx_reserve_select has moved (reserve before capturing)",
               c->phase[0] ? c->phase : "no phase (dx_phase)", g->label[0] ? g->label : "no phase");
  dxg_op(&c->dep, 0, NULL, c->phase);
  snprintf(c->last_graph, sizeof c->last_graph, "%s", g->label[0] ? g->label : "no phase");
  if (!g->list) {
    c->cur = (dx_opdesc){"graph", NULL, {g->nodes}};
    CUDA_ONLY(dxc_graph_launch(c->cuda, g->cuda));
    return;
  }
  if (c->defer) { /* the launch waits in the queue like any op */
    if (!c->pending && !(c->pending = calloc(1, sizeof *c->pending))) mbpo_fatal("out of memory");
    rec_append(c->pending, launch_fn, &g, sizeof g, &(dx_opdesc){"graph", NULL, {g->n}}, 0, NULL);
    return;
  }
  launch_fn(c, &g);
}

long dx_graph_ops(const dx_graph* g) { return g->ops; }

long dx_graph_critical_path(const dx_graph* g) { return g->crit; }

long dx_graph_nodes(const dx_graph* g) { return g->nodes; }

void dx_graph_free(dx_ctx* c, dx_graph* g) {
  if (!g) return;
  if (c) no_capture(c, "dx_graph_free");
  if (c && !IS_CUDA(c)) host_flush(c); /* a queued launch may still name it */
  if (!g->list && g->cuda) {
    pthread_mutex_lock(&g_cuda_lock);
    CUDA_ONLY(dxc_graph_free(c ? c->cuda : NULL, g->cuda));
    pthread_mutex_unlock(&g_cuda_lock);
  }
  for (int i = 0; i < g->n; i++) free(g->recs[i].blob);
  for (int i = 0; i < g->nphase; i++) free(g->phases[i]);
  free(g->phases);
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

static void op_fn(dx_ctx* c, const void* b) {
  const op_blob* x = b;
  if (IS_CUDA(c)) {
    if (!x->op->cuda) mbpo_fatal("dx op %s has no CUDA kernel", x->op->name);
    CUDA_ONLY(dxc_run(c->cuda, x->op->cuda, x->args, x->n, x->op->name));
    return;
  }
  x->op->host(x->args, x->n);
}

void dx_run(dx_ctx* c, const dx_op* op, const void* args, size_t args_size, long n) {
  if (args_size > DX_MAX_ARGS) mbpo_fatal("dx op %s: %zu argument bytes (at most %d)", op->name, args_size, DX_MAX_ARGS);
  if (n <= 0) return;
  op_blob b;
  b.op = op;
  b.n = n;
  b.size = args_size;
  memcpy(b.args, args, args_size);
  submit(c, op_fn, &b, offsetof(op_blob, args) + args_size, (dx_opdesc){"op", op->name, {n}});
}

/* ---- GEMM ---- */

typedef struct gemm_blob {
  int ta, tb, M, N, K, lda, ldb, ldc, batch;
  float alpha, beta;
  const float *A, *B;
  float* C;
  long sA, sB, sC;
} gemm_blob;

static void gemm_host(const gemm_blob* g) {
  for (int b = 0; b < g->batch; b++)
    cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
                g->M, g->N, g->K, g->alpha, g->A + (size_t)b * g->sA, g->lda, g->B + (size_t)b * g->sB,
                g->ldb, g->beta, g->C + (size_t)b * g->sC, g->ldc);
}

static void gemm_fn(dx_ctx* c, const void* p) {
  const gemm_blob* g = p;
  if (IS_CUDA(c)) {
    CUDA_ONLY(dxc_gemm(c->cuda, g->ta, g->tb, g->M, g->N, g->K, g->alpha, g->A, g->lda, g->sA, g->B, g->ldb,
                       g->sB, g->beta, g->C, g->ldc, g->sC, g->batch));
    return;
  }
  gemm_host(g);
}

void dx_gemm(dx_ctx* c, int ta, int tb, int M, int N, int K, float alpha, const float* A, int lda,
             long strideA, const float* B, int ldb, long strideB, float beta, float* C, int ldc,
             long strideC, int batch) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  gemm_blob g = {ta, tb, M, N, K, lda, ldb, ldc, batch, alpha, beta, A, B, C, strideA, strideB, strideC};
  submit(c, gemm_fn, &g, sizeof g, (dx_opdesc){"gemm", NULL, {M, N, K, batch}});
}

typedef struct gemm2_blob {
  gemm_blob g;       /* strides: the outer ones */
  long siA, siB, siC;
  int outer, inner;
} gemm2_blob;

/* The non-collapsing two-level case: on the GPU one pointer-array call; on the host (or past the
 * GPU's pointer tables) one strided call per index of the smaller level. */
static void gemm2_fn(dx_ctx* c, const void* p) {
  const gemm2_blob* x = p;
  const gemm_blob* g = &x->g;
#ifdef MBPO_CUDA
  if (IS_CUDA(c) && dxc_gemm2(c->cuda, g->ta, g->tb, g->M, g->N, g->K, g->alpha, g->A, g->lda, g->sA, x->siA, g->B,
                              g->ldb, g->sB, x->siB, g->beta, g->C, g->ldc, g->sC, x->siC, x->outer, x->inner))
    return;
#endif
  const int by_inner = x->inner <= x->outer; /* one batched call per member, over the runs */
  const int n = by_inner ? x->inner : x->outer;
  for (int i = 0; i < n; i++) {
    gemm_blob s = *g;
    const long oa = by_inner ? x->siA : g->sA, ob = by_inner ? x->siB : g->sB, oc = by_inner ? x->siC : g->sC;
    s.A = g->A + (size_t)i * oa;
    s.B = g->B + (size_t)i * ob;
    s.C = g->C + (size_t)i * oc;
    if (!by_inner) s.sA = x->siA, s.sB = x->siB, s.sC = x->siC;
    s.batch = by_inner ? x->outer : x->inner;
    gemm_fn(c, &s);
  }
}

/* A two-level GEMM's blob, collapsed to one strided batch (outer = 0 in the result) where the
 * strides allow: one level, or outer strides inner times the inner ones. */
static gemm2_blob gemm2_plan(int ta, int tb, int M, int N, int K, float alpha, const float* A, int lda, long soA,
                             long siA, const float* B, int ldb, long soB, long siB, float beta, float* C, int ldc,
                             long soC, long siC, int outer, int inner) {
  gemm2_blob x = {{ta, tb, M, N, K, lda, ldb, ldc, 0, alpha, beta, A, B, C, soA, soB, soC}, siA, siB, siC, outer, inner};
  if (inner == 1 || outer == 1) { /* one level: one call */
    x.g.sA = inner == 1 ? soA : siA, x.g.sB = inner == 1 ? soB : siB, x.g.sC = inner == 1 ? soC : siC;
  } else if (soA == inner * siA && soB == inner * siB && soC == inner * siC) {
    x.g.sA = siA, x.g.sB = siB, x.g.sC = siC;
  } else {
    return x;
  }
  x.g.batch = outer * inner;
  x.outer = 0;
  return x;
}

void dx_gemm2(dx_ctx* c, int ta, int tb, int M, int N, int K, float alpha, const float* A, int lda,
              long soA, long siA, const float* B, int ldb, long soB, long siB, float beta, float* C,
              int ldc, long soC, long siC, int outer, int inner) {
  if (outer <= 0 || inner <= 0) return;
  gemm2_blob x = gemm2_plan(ta, tb, M, N, K, alpha, A, lda, soA, siA, B, ldb, soB, siB, beta, C, ldc, soC, siC,
                            outer, inner);
  if (!x.outer) {
    const gemm_blob* g = &x.g;
    dx_gemm(c, ta, tb, M, N, K, alpha, A, lda, g->sA, B, ldb, g->sB, beta, C, ldc, g->sC, g->batch);
    return;
  }
  if (M <= 0 || N <= 0) return;
  submit(c, gemm2_fn, &x, sizeof x, (dx_opdesc){"gemm2", NULL, {M, N, K, ((long)outer << 20) | inner}});
}

/* ---- a GEMM and the element op over its result, as one op ---- */

typedef struct gemm_ep_blob {
  gemm2_blob x;      /* x.outer == 0: one strided batch (x.g) */
  dx_gemm_ep ep;     /* what a fused kernel may do instead of the op (CUDA) */
  op_blob op;        /* the epilogue op, run after the GEMM; last, so that the blob's copy ends with its args */
} gemm_ep_blob;

/* The GEMM then the op, on the op's lane (so, in order on a stream), or on the GPU one cuBLASLt
 * call with the epilogue fused where dxc_gemm_ep finds a plan for it. The host always takes the
 * two steps: OpenBLAS, then the op's body, the bits of the two separate ops. */
static void gemm_ep_fn(dx_ctx* c, const void* p) {
  const gemm_ep_blob* e = p;
  const gemm2_blob* x = &e->x;
  const gemm_blob* g = &x->g;
#ifdef MBPO_CUDA
  if (IS_CUDA(c) && !x->outer && e->ep.kind != DX_EP_NONE &&
      dxc_gemm_ep(c->cuda, g->ta, g->tb, g->M, g->N, g->K, g->A, g->lda, g->sA, g->B, g->ldb, g->sB, g->C,
                  g->ldc, g->sC, g->batch, e->ep.kind, e->ep.bias, e->ep.bias_stride, e->ep.out, e->op.op->name))
    return;
#endif
  if (x->outer) gemm2_fn(c, x);
  else gemm_fn(c, g);
  op_fn(c, &e->op);
}

void dx_gemm2_ep(dx_ctx* c, int ta, int tb, int M, int N, int K, const float* A, int lda, long soA, long siA,
                 const float* B, int ldb, long soB, long siB, float* C, int ldc, long soC, long siC, int outer,
                 int inner, const dx_gemm_ep* ep, const dx_op* op, const void* args, size_t args_size, long n) {
  if (args_size > DX_MAX_ARGS) mbpo_fatal("dx op %s: %zu argument bytes (at most %d)", op->name, args_size, DX_MAX_ARGS);
  if (outer <= 0 || inner <= 0 || M <= 0 || N <= 0 || n <= 0) { /* what the two calls do with nothing to do */
    dx_gemm2(c, ta, tb, M, N, K, 1.0f, A, lda, soA, siA, B, ldb, soB, siB, 0.0f, C, ldc, soC, siC, outer, inner);
    dx_run(c, op, args, args_size, n);
    return;
  }
  gemm_ep_blob e;
  memset(&e, 0, offsetof(gemm_ep_blob, op));
  e.x = gemm2_plan(ta, tb, M, N, K, 1.0f, A, lda, soA, siA, B, ldb, soB, siB, 0.0f, C, ldc, soC, siC, outer, inner);
  if (ep) e.ep = *ep;
  e.op.op = op;
  e.op.n = n;
  e.op.size = args_size;
  memcpy(e.op.args, args, args_size);
  const long mats = e.x.outer ? ((long)outer << 20) | inner : ((long)1 << 20) | e.x.g.batch;
  submit(c, gemm_ep_fn, &e, offsetof(gemm_ep_blob, op) + offsetof(op_blob, args) + args_size,
         (dx_opdesc){"gemm_ep", op->name, {M, N, K, mats}});
}

/* ---- sort and select ---- */

/* CUB counts items in int (kernels/dx.cu); refused on both kinds so that the host tests see it. */
static void check_items(const char* what, long n) {
  if (n > INT_MAX) mbpo_fatal("%s: %ld items, more than the GPU sort/select limit of INT_MAX (%d)", what, n, INT_MAX);
}

void dx_reserve_sort(dx_ctx* c, long n) {
  if (c->capturing) mbpo_fatal("dx_reserve_sort inside a capture");
  check_items("dx_reserve_sort", n);
  if (n <= c->sort_cap) return;
  host_flush(c); /* queued sorts use the old workspace */
  c->sort_cap = n;
  c->ws_gen++;
  if (IS_CUDA(c)) {
    CUDA_LOCK(c);
    c->cur = (dx_opdesc){"sort", NULL, {n}};
    CUDA_ONLY(dxc_reserve_sort(c->cuda, n));
    CUDA_UNLOCK(c);
    return;
  }
  free(c->sort_tmp);
  c->sort_tmp = malloc(2 * (size_t)n * sizeof(uint64_t));
  if (!c->sort_tmp) mbpo_fatal("out of memory");
}

long dx_workspace_gen(const dx_ctx* c) { return c->ws_gen; }

void dx_reserve_select(dx_ctx* c, long n) {
  if (c->capturing) mbpo_fatal("dx_reserve_select inside a capture");
  check_items("dx_reserve_select", n);
  if (n <= c->select_cap) return;
  host_flush(c);
  c->select_cap = n;
  c->ws_gen++;
  if (IS_CUDA(c)) {
    CUDA_LOCK(c);
    c->cur = (dx_opdesc){"select", NULL, {n}};
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

/* Stable LSD radix sort of n (key, value) pairs by key, 8 bits per pass, what CUB does on the GPU;
 * tmp holds 2 n keys. */
static void radix_sort(const uint64_t* ki, uint64_t* ko, const int* vi, int* vo, long n, uint64_t* tmp) {
  uint64_t *k = tmp, *k2 = tmp + n;
  int* pos = malloc(2 * (size_t)n * sizeof(int));
  if (!pos) mbpo_fatal("out of memory");
  int* pos2 = pos + n;
  for (long i = 0; i < n; i++) {
    k[i] = ki[i];
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
  for (long i = 0; i < n; i++) vals[i] = vi[pos[i]];
  memcpy(ko, k, (size_t)n * sizeof(uint64_t));
  memcpy(vo, vals, (size_t)n * sizeof(int));
  free(vals);
  free(pos < pos2 ? pos : pos2);
}

static void sort_fn(dx_ctx* c, const void* p) {
  const sort_blob* s = p;
  if (IS_CUDA(c)) {
    CUDA_ONLY(dxc_sort_pairs(c->cuda, s->ki, s->ko, s->vi, s->vo, s->n));
    return;
  }
  radix_sort(s->ki, s->ko, s->vi, s->vo, s->n, s->tmp);
}

void dx_sort_pairs(dx_ctx* c, const uint64_t* keys_in, uint64_t* keys_out, const int* vals_in,
                   int* vals_out, long n) {
  if (n <= 0) return;
  check_items("dx_sort_pairs", n);
  if (n > c->sort_cap) mbpo_fatal("dx_sort_pairs: %ld items, %ld reserved", n, c->sort_cap);
  if (c->lane != 0) mbpo_fatal("%s: dx_sort_pairs on lane %d (one workspace: lane 0 only)", c->phase[0] ? c->phase : "no phase (dx_phase)", c->lane);
  c->cap_ws |= c->capturing;
  sort_blob b = {keys_in, keys_out, vals_in, vals_out, n, c->sort_tmp};
  submit(c, sort_fn, &b, sizeof b, (dx_opdesc){"sort", NULL, {n}});
}

typedef struct segsort_blob {
  sort_blob s;
  int nseg;
  const int* off;
} segsort_blob;

/* The offsets are read when the sort runs (a replayed graph sorts the segments of that moment). */
static void segsort_fn(dx_ctx* c, const void* p) {
  const segsort_blob* b = p;
  const sort_blob* s = &b->s;
  if (IS_CUDA(c)) {
    CUDA_ONLY(dxc_sort_segments(c->cuda, s->ki, s->ko, s->vi, s->vo, s->n, b->nseg, b->off));
    return;
  }
  for (int g = 0; g < b->nseg; g++) {
    const long a = b->off[g], e = b->off[g + 1];
    if (a < 0 || e > s->n || a > e)
      mbpo_fatal("%s: dx_sort_segments: segment %d is [%ld, %ld) of %ld items", c->phase[0] ? c->phase : "no phase",
                 g, a, e, s->n);
    if (e > a) radix_sort(s->ki + a, s->ko + a, s->vi + a, s->vo + a, e - a, s->tmp);
  }
}

void dx_sort_segments(dx_ctx* c, const uint64_t* keys_in, uint64_t* keys_out, const int* vals_in, int* vals_out,
                      long n, int nseg, const int* offsets) {
  if (n <= 0 || nseg <= 0) return;
  check_items("dx_sort_segments", n);
  if (n > c->sort_cap) mbpo_fatal("dx_sort_segments: %ld items, %ld reserved", n, c->sort_cap);
  if (c->lane != 0) mbpo_fatal("%s: dx_sort_segments on lane %d (one workspace: lane 0 only)", c->phase[0] ? c->phase : "no phase (dx_phase)", c->lane);
  c->cap_ws |= c->capturing;
  segsort_blob b = {{keys_in, keys_out, vals_in, vals_out, n, c->sort_tmp}, nseg, offsets};
  submit(c, segsort_fn, &b, sizeof b, (dx_opdesc){"sort", NULL, {n, nseg}});
}

typedef struct select_blob {
  const int* in;
  const uint8_t* flag;
  int* out;
  int* count;
  long n;
} select_blob;

static void select_fn(dx_ctx* c, const void* p) {
  const select_blob* s = p;
  if (IS_CUDA(c)) {
    CUDA_ONLY(dxc_select_flagged(c->cuda, s->in, s->flag, s->out, s->count, s->n));
    return;
  }
  int m = 0;
  for (long i = 0; i < s->n; i++)
    if (s->flag[i]) s->out[m++] = s->in[i];
  *s->count = m;
}

void dx_select_flagged(dx_ctx* c, const int* in, const uint8_t* flag, int* out, int* count, long n) {
  check_items("dx_select_flagged", n);
  if (n > c->select_cap) mbpo_fatal("dx_select_flagged: %ld items, %ld reserved", n, c->select_cap);
  if (c->lane != 0) mbpo_fatal("%s: dx_select_flagged on lane %d (one workspace: lane 0 only)", c->phase[0] ? c->phase : "no phase (dx_phase)", c->lane);
  c->cap_ws |= c->capturing;
  select_blob b = {in, flag, out, count, n};
  submit(c, select_fn, &b, sizeof b, (dx_opdesc){"select", NULL, {n}});
}
