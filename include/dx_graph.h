/* dx_graph.h: the dependency graph of a dx context's ops (dx.h's lanes), kept the same way on both
 * kinds of context.
 *
 * A context enqueues its ops on lanes (CUDA streams; on the host emulation a label of each op). An
 * op depends on the op before it on its lane and on everything a lane wait (dx_wait) brought in:
 * the model of CUDA's stream capture with events. This tracker follows that model with one vector
 * clock per lane (how many ops of each lane a lane's next op comes after), so that it can say, for
 * each op, the ops it directly depends on (at most one per lane) and its depth (the longest chain
 * of dependent ops ending at it), and for a capture its op count and critical path. It also checks
 * the rules CUDA enforces, on both kinds: every lane joined back into lane 0 at the end of a
 * capture, and no lane used inside a capture before it waits on a lane of the capture.
 *
 * Pure bookkeeping on the host (no device calls); host/dev/dx.c owns one per context. */
#ifndef MBPO_DX_GRAPH_H
#define MBPO_DX_GRAPH_H

#include "dx.h"

/** One op's direct dependencies: dep[k] is the index (in the capture) of the op of lane k it
 *  waits for, or -1. */
typedef struct dxg_deps {
  long dep[DX_LANES];
} dxg_deps;

/** The tracker of one context. Zero-initialised it is idle (lane 0, no ops). */
typedef struct dxg {
  int capturing;             /* ops are numbered and their depths kept (dxg_begin .. dxg_end) */
  long cnt[DX_LANES];        /* ops enqueued on each lane since the last reset */
  long vc[DX_LANES][DX_LANES]; /* vc[l][k]: ops of lane k that lane l's next op comes after */
  int live[DX_LANES];        /* capturing: the lane waits on the capture (lane 0 always) */
  long* idx[DX_LANES];       /* capturing: each lane's ops, their index in the capture */
  long* depth[DX_LANES];     /* ... and their depth */
  long cap[DX_LANES];
  long ops;                  /* capturing: ops recorded */
  long crit;                 /* capturing: the longest chain so far */
} dxg;

/** Start numbering a capture's ops (all lanes must be joined into lane 0: fatal otherwise, naming
 *  the phase). */
void dxg_begin(dxg* t, const char* phase);

/** End a capture: fatal (naming the phase) unless lane 0 comes after every op of every lane. */
void dxg_end(dxg* t, const char* phase);

/** An op on lane l: its direct dependencies (when deps is not NULL) and its depth (1 + the deepest
 *  op it waits for). Inside a capture, a lane that does not wait on the capture is fatal. */
long dxg_op(dxg* t, int l, dxg_deps* deps, const char* phase);

/** Lane dst waits for everything enqueued on lane src so far (an event recorded on src, waited
 *  for on dst). */
void dxg_wait(dxg* t, int dst, int src, const char* phase);

/** 1 when lane 0 comes after every op enqueued on every lane (nothing left to join). */
int dxg_joined(const dxg* t);

/** Fatal, naming the phase, what (the call that needs it) and the first lane left over, unless
 *  dxg_joined. */
void dxg_need_joined(const dxg* t, const char* what, const char* phase);

/** Forget the counts (all lanes joined; between captures or after a sync). */
void dxg_reset(dxg* t);

/** Another order of a captured list of n ops that their dependencies allow (dx_reorder): the
 *  ready op of the lowest (mode 1) or highest (mode 2) lane first; lanes[i] and deps[i] are op
 *  i's. Along a lane the ops are chained, so at most one op per lane is ready at a time. Returns a
 *  malloc'd permutation of 0..n-1; a cycle is fatal, naming the graph's label. */
int* dxg_order(int n, const int* lanes, const dxg_deps* deps, int mode, const char* label);

/** Free the tracker's arrays. */
void dxg_free(dxg* t);

#endif
