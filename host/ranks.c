/* ranks.c: MPI ranks (ranks.h). Only MPI_Init, the rank queries, one MPI_Allreduce and
 * MPI_Finalize are used: the ranks share nothing but their exit statuses, each writing its own run
 * folders. */
#include "ranks.h"

#include <stdlib.h>

#include "log.h"

#ifdef MBPO_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_local = 0, g_mpi = 0;

/* The launcher's view of this process (Open MPI, or any PMIx launcher): size, rank, local rank. */
static int env_int(const char* a, const char* b, int dflt) {
  const char* v = getenv(a);
  if (!v) v = getenv(b);
  return v ? atoi(v) : dflt;
}

int ranks_built(void) {
#ifdef MBPO_MPI
  return 1;
#else
  return 0;
#endif
}

void ranks_init(void) {
  int size = env_int("OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", 1);
  int launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK");
  if (!launched) return;
#ifdef MBPO_MPI
  int provided = 0;
  if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    mbpo_fatal("MPI_Init failed");
  g_mpi = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  g_local = env_int("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", g_rank);
  (void)size;
#else
  if (size > 1)
    mbpo_fatal("started as one of %d MPI ranks, but this mbpo was built without MPI: install "
               "libopenmpi-dev and openmpi-bin (make deps MPI=1) and rebuild", size);
#endif
}

int ranks_rank(void) { return g_rank; }

int ranks_size(void) { return g_size; }

int ranks_local(void) { return g_local; }

int ranks_max(int v) {
#ifdef MBPO_MPI
  if (g_mpi) {
    int out = v;
    if (MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
      mbpo_fatal("MPI_Allreduce failed");
    return out;
  }
#endif
  return v;
}

void ranks_finalize(void) {
#ifdef MBPO_MPI
  if (g_mpi) MPI_Finalize();
  g_mpi = 0;
#endif
}
