/* mbpo_backend.c: which implementation of the loop's backend a run gets (mbpo_backend.h). */
#include "mbpo_backend.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "backend_cpu.h"
#include "backend_dev.h"
#include "dx.h"
#include "env.h"
#include "log.h"
#include "mbpo_run.h"
#include "schedule.h"
#include "workers.h"

/* The device programs on the host emulation instead of the CPU reference (tests compare the two
 * on machines without a GPU). */
static int emulated(void) {
  const char* e = getenv("MBPO_DEVICE_EMULATE");
  return e && strcmp(e, "1") == 0;
}

const char* mbpo_backend_label(int kind) {
  if (emulated()) return backendd_label(DX_HOST);
  return kind == BACKEND_CUDA ? backendd_label(DX_CUDA) : "cpu";
}

/* Long rollouts (the §6.2 ablation's k = 200 or 500) make model pools of k × rollout.batch ×
 * epoch_length / model.train_freq rows: refuse a population whose pools cannot fit in capacity
 * bytes (where: "this machine's" memory or "the GPU's") before it trains, rather than failing
 * hours in; warn above half of it. */
static void check_pools(const mbpo_config* cfgs, int P, double capacity, const char* where) {
  double total = 0.0, worst = 0.0;
  long worst_rows = 0;
  int worst_k = 0, worst_q = 0, row_bytes = 0;
  for (int q = 0; q < P; q++) {
    long rows;
    int k;
    const env_task* t = env_find(cfgs[q].task);
    if (!t) continue; /* the run's own set-up names an unknown task */
    double b = mbpo_model_pool_peak_bytes(&cfgs[q], t->obs_dim, t->act_dim, &rows, &k);
    total += b;
    if (b > worst)
      worst = b, worst_rows = rows, worst_k = k, worst_q = q,
      row_bytes = (int)((2 * t->obs_dim + t->act_dim + 2) * sizeof(float));
  }
  const double gb = 1e9;
  if (capacity <= 0 || total <= 0) return;
  if (total <= 0.8 * capacity) {
    if (total > 0.5 * capacity)
      mbpo_warn("the model pools will need up to %.1f GB of %s %.1f GB", total / gb, where, capacity / gb);
    return;
  }
  const mbpo_config* c = &cfgs[worst_q];
  long fit = (long)((double)c->rollout_batch * 0.5 * capacity / total);
  mbpo_fatal("the model pool%s would need up to %.1f GB, more than 80%% of %s %.1f GB: with rollout length "
             "k = %d, rollout.batch = %ld, epoch_length = %ld, model.train_freq = %ld and model.retain_epochs = %ld a "
             "run's pool holds %ld rows of %d bytes. Lower rollout.batch (rollout.batch=%ld would take about half "
             "of the memory) or the rollout length",
             P > 1 ? "s of the population" : "", total / gb, where, capacity / gb, worst_k, c->rollout_batch,
             c->epoch_length, c->model_train_freq, c->model_retain_epochs, worst_rows, row_bytes, fit > 0 ? fit : 1);
}

void mbpo_backend_check(int kind, const mbpo_config* cfgs, int n) {
  if (!emulated() && kind != BACKEND_CUDA) {
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psize > 0) check_pools(cfgs, n, (double)pages * (double)psize, "this machine's");
    return;
  }
  /* the device programs keep the model pools in the GPU's memory (the host emulation too, when the
   * test hook MBPO_TEST_GPU_MEMORY gives the GPU a size) */
  double free_b = 0, total_b = 0;
  if (backend_gpu_memory(&free_b, &total_b)) check_pools(cfgs, n, free_b, "the GPU's free");
  for (int q = 0; q < n; q++)
    if (cfgs[q].sac_value_expansion > 0)
      mbpo_fatal("sac.value_expansion = %ld is built on the CPU backend only: the device backend does not "
                 "compute the expanded target yet (use device=cpu)",
                 cfgs[q].sac_value_expansion);
}

mbpo_backend* mbpo_backend_open(int kind, mbpo_state* const* runs, int P, workers* w) {
  mbpo_backend* be;
  if (emulated()) be = backendd_open(runs, P, DX_HOST);
  else if (kind == BACKEND_CUDA) be = backendd_open(runs, P, DX_CUDA);
  else be = backend_cpu_open(runs, P, w);
  for (int q = 0; q < P; q++) {
    runs[q]->be = be;
    runs[q]->q = q;
  }
  return be;
}
