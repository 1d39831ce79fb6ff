/* dx.h: device execution, the substrate of the CUDA backend, with a host emulation.
 *
 * The CUDA backend's phases (SAC updates, model fitting, rollouts) are written once, as host C code
 * that enqueues operations on a dx context: memory copies, strided-batched GEMMs, sorts, stream
 * compaction, and "element ops" (a kernel body written once as an inline MBPO_HD function of an
 * index, kernels/dx_op.h). A context runs them either
 *   DX_CUDA: on the GPU, in order on each of a few streams (lanes, below) (cuBLAS, CUB, one
 *            __global__ per element op), or
 *   DX_HOST: on the CPU, one op after another (OpenBLAS, plain loops over the same element bodies).
 * The host emulation is how the device programs are tested on a machine without a GPU: the same
 * orchestration code runs on both, and the tests hold both against the CPU reference (host/cpu/).
 *
 * Capture. Between dx_capture_begin and dx_capture_end every op is recorded, not run, into a graph
 * (a CUDA graph; on the host a list of the ops with their arguments copied) that dx_graph_launch
 * replays. Arguments are fixed at capture, exactly as in a CUDA graph: anything that changes from
 * one replay to the next (counters, pool sizes) must be read by the kernels from device memory.
 * The host emulation has the same semantics, so a program that is wrong under replay is wrong in
 * the host tests too.
 *
 * Memory. dx_alloc returns device memory (DX_HOST: ordinary aligned memory); the host never
 * dereferences device pointers except through dx_download. dx_alloc_pinned returns host memory
 * usable by asynchronous copies. Nothing here allocates after set-up except where stated; an
 * allocation or free (pinned too) inside a capture is fatal on both kinds.
 *
 * Faults. A context carries a phase label (dx_phase: "model fit, epoch 12"); every error names it,
 * and the op being issued or run, so that a fault reads "model fit, epoch 12: op nnk_adam (4096
 * indices): an illegal memory access was encountered (...)". On the GPU a kernel's fault shows at
 * the next dx_sync; the debug mode MBPO_DX_SYNC=1 (both kinds) captures nothing into CUDA graphs
 * (a capture records the ops as the host emulation does, and a launch replays them one by one) and
 * follows every op with a sync and a check, so that the report names the op, its sizes and its place
 * in the graph (usable under compute-sanitizer). MBPO_DX_FAIL=NAME[:K] makes the K-th op named NAME
 * (an element op, or gemm, gemm2, gemm_ep, copy, zero, sort, select) leave a fault instead of running, on
 * either kind, to test these reports (docs/cuda.md). */
#ifndef MBPO_DX_H
#define MBPO_DX_H

#include <stddef.h>
#include <stdint.h>

/** Longest phase label (bytes, with the terminating NUL). */
#define DX_PHASE_MAX 160

/** Context kinds. */
enum dx_kind { DX_HOST = 0, DX_CUDA = 1 };

/** A device execution context: its lanes' streams and cuBLAS handles, workspaces. */
typedef struct dx_ctx dx_ctx;

/** A captured sequence of ops (a CUDA graph, or the host's op list). */
typedef struct dx_graph dx_graph;

/** Create a context of kind DX_HOST or DX_CUDA (device 0). DX_CUDA in a build without CUDA, or
 *  without a usable GPU, is fatal with the reason. */
dx_ctx* dx_create(int kind);

/** Destroy a context (waits for its work; NULL is allowed). */
void dx_destroy(dx_ctx* c);

/** The context's kind. */
int dx_kind(const dx_ctx* c);

/** Device memory of n bytes, zeroed (fatal when short). */
void* dx_alloc(dx_ctx* c, size_t bytes);

/** n floats of device memory, zeroed. */
float* dx_allocf(dx_ctx* c, size_t n);

/** Free device memory from dx_alloc (NULL is allowed). */
void dx_free(dx_ctx* c, void* p);

/** Page-locked host memory of n bytes, zeroed, for asynchronous copies (DX_HOST: plain memory). */
void* dx_alloc_pinned(dx_ctx* c, size_t bytes);

/** Free memory from dx_alloc_pinned. */
void dx_free_pinned(dx_ctx* c, void* p);

/** Copy host -> device, in stream order (asynchronous for pinned src; src must stay unchanged until
 *  the copy has run: dx_sync, or stream order for pinned buffers reused only after a sync). */
void dx_upload(dx_ctx* c, void* dst, const void* src, size_t bytes);

/** Copy device -> host, in stream order; the data is there after dx_sync (dst pinned) or at once
 *  (dst pageable: the call waits). */
void dx_download(dx_ctx* c, void* dst, const void* src, size_t bytes);

/** Copy device -> device, in stream order. */
void dx_copy(dx_ctx* c, void* dst, const void* src, size_t bytes);

/** Set bytes of device memory to 0, in stream order. */
void dx_zero(dx_ctx* c, void* dst, size_t bytes);

/** Wait until everything enqueued has run; fatal with the CUDA error if a kernel failed, naming the
 *  phase and the last graph launched. */
void dx_sync(dx_ctx* c);

/** Set the context's phase label, printf-style ("model fit, epoch %d"; NULL clears it): the error
 *  reports of this context name it, and a graph keeps the label it was captured under. Cheap (a
 *  formatted copy); call it at each phase and epoch of a device program. */
void dx_phase(dx_ctx* c, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/** The context's current phase label ("" when none). */
const char* dx_phase_get(const dx_ctx* c);

/** Set the label to "<outer>: <fmt...>" (just fmt when outer is empty): how a device program
 *  names its own steps inside its caller's phase. It saves nothing: a program copies
 *  dx_phase_get into a DX_PHASE_MAX buffer on entry, passes it as outer, and restores it with
 *  dx_phase(c, "%s", outer) on return. */
void dx_phase_sub(dx_ctx* c, const char* outer, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/** 1 when the context runs in the debug mode MBPO_DX_SYNC=1 (read at dx_create). */
int dx_sync_mode(const dx_ctx* c);

/** Start recording ops into a graph (not nested; on lane 0 with every lane joined). */
void dx_capture_begin(dx_ctx* c);

/** Stop recording; returns the graph, ready to launch. */
dx_graph* dx_capture_end(dx_ctx* c);

/** Replay a graph in stream order. */
void dx_graph_launch(dx_ctx* c, dx_graph* g);

/** The number of dx-level ops recorded in a graph: one per dx_run, dx_gemm, dx_gemm2, copy, zero,
 *  sort and select, the same on both kinds and for any batch size (a library call that CUDA records
 *  as several nodes, or the host runs as several calls, is one op). For tests and benchmarks. */
long dx_graph_ops(const dx_graph* g);

/** The longest chain of dependent ops in a graph (its critical path, in dx-level ops): the op
 *  count when everything runs on one lane; less where lanes (dx_wait, dx_lane) let ops run side by
 *  side. The same on both kinds (dx_graph.h keeps it). */
long dx_graph_critical_path(const dx_graph* g);

/** Captures ended and CUDA graphs instantiated by this process so far (a host capture counts as
 *  one instantiation too, so that the host tests and benchmarks count what a GPU would do). */
long dx_captures_total(void);

/** Ops enqueued by this process so far, run at once or recorded into a graph (a graph launch is
 *  not counted, its ops were at capture): what an uncaptured phase (a rollout) launches. */
long dx_ops_total(void);

/** The number of nodes of a CUDA graph as cudaGraphGetNodes counts them (cuBLAS adds nodes of its
 *  own that change with the batch count); for a host graph, or under MBPO_DX_SYNC=1, its records.
 *  For reports, not for assertions. */
long dx_graph_nodes(const dx_graph* g);

/** Free a graph (NULL is allowed). */
void dx_graph_free(dx_ctx* c, dx_graph* g);

/** 1 while capturing. */
int dx_capturing(const dx_ctx* c);

/* ---- lanes: independent chains of ops ---- */

/** Lanes of a context. A context's ops go onto its current lane (0 unless dx_lane moved it): on
 *  the GPU each lane is a stream with its own cuBLAS handle and workspace, and ops on different
 *  lanes run side by side unless a wait orders them; a capture turns the waits into a graph's
 *  edges. The host emulation runs every op in program order whatever its lane (so the bits do not
 *  depend on lanes) and records the same dependencies (dx_graph_critical_path). Rules, checked on
 *  both kinds: a capture begins and ends on lane 0 with every lane joined into lane 0 (lane 0 waits
 *  for every op of every lane: dx_wait(c, 0, l)); inside a capture a lane is used only after it
 *  waited on lane 0 (or a lane that did); sorts, selections and graph launches run on lane 0; a
 *  download into pageable memory and dx_sync need every lane joined. A program that uses lanes
 *  enters on lane 0 and returns on lane 0 with all joined. */
#define DX_LANES 4

/** Make lane dst wait for everything enqueued on lane src so far (CUDA: an event recorded on src,
 *  waited for on dst). dst == src does nothing. */
void dx_wait(dx_ctx* c, int dst, int src);

/** Make lane l the current lane: the following ops go onto it (no dependency added). */
void dx_lane(dx_ctx* c, int l);

/** The current lane. */
int dx_lane_get(const dx_ctx* c);

/** Host emulation, a test aid: replay list graphs in another order their dependencies allow
 *  (1: lower lanes first, 2: higher lanes first, 0: program order; MBPO_DX_REORDER sets it at
 *  dx_create). A missing dx_wait between ops that touch the same memory then changes the results,
 *  where program order would hide it. No effect on a CUDA context. */
void dx_reorder(dx_ctx* c, int mode);

/* ---- element ops (kernels/dx_op.h defines them) ---- */

/** Host runner of an element op: calls the body for i = 0..n-1 with the argument block. */
typedef void (*dx_host_fn)(const void* args, long n);
/** CUDA launcher of an element op: launches the kernel on stream for n indices. */
typedef void (*dx_cuda_fn)(void* stream, const void* args, long n);

/** An element op: its name (for errors), the host runner and the CUDA launcher (NULL in a build
 *  without CUDA). */
typedef struct dx_op {
  const char* name;
  dx_host_fn host;
  dx_cuda_fn cuda;
} dx_op;

/** Largest argument block of an element op (bytes). */
#define DX_MAX_ARGS 1024

/** Run (or record) op for indices 0..n-1 with the argument block args (copied; args_size <=
 *  DX_MAX_ARGS). n = 0 does nothing. */
void dx_run(dx_ctx* c, const dx_op* op, const void* args, size_t args_size, long n);

/* ---- library ops ---- */

/** Row-major strided-batched GEMM: for b in [0, batch): C_b = alpha op(A_b) op(B_b) + beta C_b with
 *  op(A_b) M x K, op(B_b) K x N, X_b = X + b * strideX (a stride of 0 shares one matrix), lda etc.
 *  the row strides of the stored matrices. ta / tb: 1 = transposed. float32 (TF32 off). */
void dx_gemm(dx_ctx* c, int ta, int tb, int M, int N, int K, float alpha, const float* A, int lda,
             long strideA, const float* B, int ldb, long strideB, float beta, float* C, int ldc,
             long strideC, int batch);

/** dx_gemm over a two-level batch (outer runs x inner members): for o < outer, i < inner,
 *  X_(o,i) = X + o * soX + i * siX. The population's tensors are [P][E][...] with a member's
 *  weights at run stride nparams and a shared input at member stride 0, which one stride cannot
 *  express; where the strides do collapse (inner == 1, outer == 1, or so == inner * si for all
 *  three) this is one dx_gemm; else, on the GPU, one pointer-array batched GEMM (cublasSgemmBatched,
 *  its pointer tables written by one small kernel: two graph nodes), and on the host (or past 4096
 *  matrices) one dx_gemm per index of the smaller level. */
void dx_gemm2(dx_ctx* c, int ta, int tb, int M, int N, int K, float alpha, const float* A, int lda,
              long soA, long siA, const float* B, int ldb, long soB, long siB, float beta, float* C,
              int ldc, long soC, long siC, int outer, int inner);

/** What a GPU may fuse into a dx_gemm2_ep's GEMM instead of running its element op (cuBLASLt
 *  epilogues, kernels/dx_lt.cu). DX_EP_NONE: the GEMM, then the op. DX_EP_RELU_BIAS: the op is
 *  out = relu(C + bias) per output column (row-major C [M][N], bias[b * bias_stride + j] for
 *  matrix b of the batch); the fused call writes out only (C is left undefined when out != C), so
 *  that a reader of the pre-activation must use out (ReLU's mask is the same: out > 0 iff C > 0).
 *  Other shapes (two-level strides, no algorithm from the heuristic) take the two steps. */
enum dx_ep_kind { DX_EP_NONE = 0, DX_EP_RELU_BIAS = 1 };

/** The fusable description of a dx_gemm2_ep's op (see dx_ep_kind). */
typedef struct dx_gemm_ep {
  int kind;
  const float* bias;  /* DX_EP_RELU_BIAS: N biases per matrix */
  long bias_stride;   /* floats between the batch's bias vectors */
  float* out;         /* where relu(C + bias) goes (may be C) */
} dx_gemm_ep;

/** C = op(A) op(B) (alpha 1, beta 0; dx_gemm2's strides and batch) followed by the element op
 *  (op, args, n) over its result, as ONE op of the graph (one dependency, one count in
 *  dx_graph_ops and the critical path): on the host OpenBLAS then the op's body, the bits of the
 *  two separate calls; on the GPU one cuBLASLt call with the epilogue fused where ep allows, else
 *  the GEMM and the op's kernel on the same stream. Errors name it "gemm_ep ..., then op NAME";
 *  MBPO_DX_FAIL matches gemm_ep or the op's name. With an empty GEMM or no
 *  indices it is the two calls (dx_gemm2 then dx_run), each doing what it does with nothing. */
void dx_gemm2_ep(dx_ctx* c, int ta, int tb, int M, int N, int K, const float* A, int lda, long soA, long siA,
                 const float* B, int ldb, long soB, long siB, float* C, int ldc, long soC, long siC, int outer,
                 int inner, const dx_gemm_ep* ep, const dx_op* op, const void* args, size_t args_size, long n);

/** Sort n (key, value) pairs by key, stable (equal keys keep their order): keys_in/vals_in ->
 *  keys_out/vals_out (device arrays of n). Keys are 64-bit. n <= the size given to dx_reserve_sort. */
void dx_sort_pairs(dx_ctx* c, const uint64_t* keys_in, uint64_t* keys_out, const int* vals_in,
                   int* vals_out, long n);

/** Sort each of nseg segments of n (key, value) pairs by key: segment g is the items
 *  [offsets[g], offsets[g + 1]) (offsets: device ints, nseg + 1, read when the sort runs, so a
 *  replayed graph sorts the segments of that moment); items outside the segments are left as they
 *  are. For keys distinct within a segment (the GPU's order of equal keys is not promised). n <= the
 *  size given to dx_reserve_sort; its cost follows the segments, not n. */
void dx_sort_segments(dx_ctx* c, const uint64_t* keys_in, uint64_t* keys_out, const int* vals_in, int* vals_out,
                      long n, int nseg, const int* offsets);

/** Stable compaction: out[j] = in[i] for the rows i with flag[i] != 0, in order; *count (device)
 *  gets their number. n <= the size given to dx_reserve_select. */
void dx_select_flagged(dx_ctx* c, const int* in, const uint8_t* flag, int* out, int* count, long n);

/** Reserve the workspaces of dx_sort_pairs, dx_sort_segments / dx_select_flagged for up to n <= INT_MAX items (CUB
 *  counts in int; more is fatal on both kinds) (at set-up; may
 *  allocate, never inside a capture). */
void dx_reserve_sort(dx_ctx* c, long n);
/** A number that changes whenever dx_reserve_sort or dx_reserve_select moves its workspace: a graph
 *  that sorts or selects must be captured again after it changes (dx_graph_launch refuses it). */
long dx_workspace_gen(const dx_ctx* c);
void dx_reserve_select(dx_ctx* c, long n);

#endif
