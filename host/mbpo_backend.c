/* mbpo_backend.c: which implementation of the loop's backend a run gets (mbpo_backend.h). */
#include "mbpo_backend.h"

#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "backend_cpu.h"
#include "backend_dev.h"
#include "dx.h"
#include "log.h"
#include "mbpo_run.h"
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

void mbpo_backend_check(int kind, const mbpo_config* cfgs, int n) {
  if (!emulated() && kind != BACKEND_CUDA) {
    backend_cpu_check(cfgs, n);
    return;
  }
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
