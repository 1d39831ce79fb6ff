/* dx_graph.c: the dependency graph of a context's ops (dx_graph.h).
 *
 * Ops along one lane depend on each other in order, and a wait merges the source lane's vector
 * clock into the destination's; so the ops an op depends on are, per lane k, the vc[l][k]-th op of
 * lane k and everything before it. Depths grow along a lane, hence an op's depth is one more than
 * the deepest of those (at most DX_LANES) latest ancestors: no search over the graph. */
#include "dx_graph.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char* ph(const char* phase) { return phase && *phase ? phase : "no phase (dx_phase)"; }

static void check_lane(int l, const char* what, const char* phase) {
  if (l < 0 || l >= DX_LANES) mbpo_fatal("%s: %s of lane %d (lanes 0..%d)", ph(phase), what, l, DX_LANES - 1);
}

int dxg_joined(const dxg* t) {
  for (int k = 0; k < DX_LANES; k++)
    if (t->vc[0][k] != t->cnt[k]) return 0;
  return 1;
}

void dxg_reset(dxg* t) {
  memset(t->cnt, 0, sizeof t->cnt);
  memset(t->vc, 0, sizeof t->vc);
  memset(t->live, 0, sizeof t->live);
  t->ops = 0;
  t->crit = 0;
}

void dxg_need_joined(const dxg* t, const char* what, const char* phase) {
  for (int k = 1; k < DX_LANES; k++)
    if (t->vc[0][k] != t->cnt[k])
      mbpo_fatal("%s: %s with %ld op(s) of lane %d not joined into lane 0 (dx_wait(c, 0, %d) first)", ph(phase),
                 what, t->cnt[k] - t->vc[0][k], k, k);
}

void dxg_begin(dxg* t, const char* phase) {
  dxg_need_joined(t, "a capture begins", phase);
  dxg_reset(t);
  t->capturing = 1;
  t->live[0] = 1;
}

void dxg_end(dxg* t, const char* phase) {
  dxg_need_joined(t, "a capture ends", phase);
  t->capturing = 0;
}

long dxg_op(dxg* t, int l, dxg_deps* deps, const char* phase) {
  check_lane(l, "op", phase);
  long depth = 1;
  if (t->capturing) {
    if (!t->live[l])
      mbpo_fatal("%s: an op on lane %d inside a capture before the lane waits on the capture (dx_wait(c, %d, 0))",
                 ph(phase), l, l);
    for (int k = 0; k < DX_LANES; k++) {
      const long n = t->vc[l][k];
      if (deps) deps->dep[k] = n > 0 ? t->idx[k][n - 1] : -1;
      if (n > 0 && t->depth[k][n - 1] + 1 > depth) depth = t->depth[k][n - 1] + 1;
    }
    if (t->cnt[l] == t->cap[l]) {
      t->cap[l] = t->cap[l] ? 2 * t->cap[l] : 256;
      t->idx[l] = realloc(t->idx[l], (size_t)t->cap[l] * sizeof(long));
      t->depth[l] = realloc(t->depth[l], (size_t)t->cap[l] * sizeof(long));
      if (!t->idx[l] || !t->depth[l]) mbpo_fatal("out of memory");
    }
    t->idx[l][t->cnt[l]] = t->ops++;
    t->depth[l][t->cnt[l]] = depth;
    if (depth > t->crit) t->crit = depth;
  } else if (deps) {
    for (int k = 0; k < DX_LANES; k++) deps->dep[k] = -1;
  }
  t->cnt[l]++;
  t->vc[l][l] = t->cnt[l];
  return depth;
}

void dxg_wait(dxg* t, int dst, int src, const char* phase) {
  check_lane(dst, "wait", phase);
  check_lane(src, "wait", phase);
  if (t->capturing && !t->live[src])
    mbpo_fatal("%s: lane %d waits on lane %d, which does not wait on the capture", ph(phase), dst, src);
  for (int k = 0; k < DX_LANES; k++)
    if (t->vc[src][k] > t->vc[dst][k]) t->vc[dst][k] = t->vc[src][k];
  if (t->capturing) t->live[dst] = 1;
}

int* dxg_order(int n, const int* lanes, const dxg_deps* deps, int mode, const char* label) {
  int* order = malloc((size_t)(n ? n : 1) * sizeof *order);
  int* by_lane = malloc((size_t)(n ? n : 1) * sizeof *by_lane);
  char* done = calloc((size_t)(n ? n : 1), 1);
  if (!order || !by_lane || !done) mbpo_fatal("out of memory");
  int start[DX_LANES + 1] = {0}, pos[DX_LANES];
  for (int i = 0; i < n; i++) start[lanes[i] + 1]++;
  for (int k = 0; k < DX_LANES; k++) start[k + 1] += start[k];
  for (int k = 0; k < DX_LANES; k++) pos[k] = start[k];
  for (int i = 0; i < n; i++) by_lane[pos[lanes[i]]++] = i;
  for (int k = 0; k < DX_LANES; k++) pos[k] = start[k];
  for (int m = 0; m < n; m++) {
    int pick = -1;
    for (int j = 0; j < DX_LANES && pick < 0; j++) {
      const int k = mode == 2 ? DX_LANES - 1 - j : j;
      if (pos[k] == start[k + 1]) continue;
      const int i = by_lane[pos[k]];
      int ready = 1;
      for (int d = 0; d < DX_LANES; d++)
        if (deps[i].dep[d] >= 0 && !done[deps[i].dep[d]]) ready = 0;
      if (ready) pick = k;
    }
    if (pick < 0) mbpo_fatal("dx: graph \"%s\" has a dependency cycle", label && *label ? label : "no phase");
    const int i = by_lane[pos[pick]++];
    done[i] = 1;
    order[m] = i;
  }
  free(by_lane);
  free(done);
  return order;
}

void dxg_free(dxg* t) {
  for (int k = 0; k < DX_LANES; k++) {
    free(t->idx[k]);
    free(t->depth[k]);
    t->idx[k] = t->depth[k] = NULL;
    t->cap[k] = 0;
  }
}
