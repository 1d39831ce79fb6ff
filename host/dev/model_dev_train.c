/* model_dev_train.c: model_train's procedure (host/cpu/model_train.c) on a dx context, for the
 * models of n runs at once (modeld_fit_runs; modeld_train is one run): per run the holdout split,
 * normaliser and bootstrap, then epochs, and one host decision per epoch and run, from P (E + 1)
 * doubles downloaded, for the early stopping. The random draws are model.h's, each run with its
 * own key and fit index.
 *
 * An epoch is three graphs, each captured once for the fitter's life (not once per fit): a block
 * of K minibatch steps, launched ceil(steps / K) times; the tail (the mean losses, the per-member
 * shuffles, the epoch counter); one chunk of the holdout scoring, launched once per chunk. What
 * changes between launches and fits is read by the ops from device memory: the step and chunk
 * numbers (counters the graphs advance and the tail resets), the epoch, each run slot's sizes,
 * seed and fit index (modelk_frun), the shuffle sort's segments. The graphs cover all P slots
 * (a slot without a run has no rows and no steps), and the sorts and key draws are sized for the
 * fitter's row capacity, their work bounded by the rows of the moment. Steps past a run's last
 * one in a block are no-ops for it (no rows, no Adam step), so K changes no bit.
 *
 * The runs' models are copied into the fitter's [P] arrays at the start (parameters, Adam state)
 * and back at the end (with the normaliser and elites), so that a run's model_dev stays the one
 * place its state lives (checkpoints, rollouts) and a population needs one fitter, not P. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "model_dev.h"
#include "model_k.h"

/* Rows per forward of the holdout scoring (the default max_holdout, 5000, fits one chunk). Every
 * chunk is run at this size (or max_rows when smaller), the rows past a run's end being padding:
 * the GEMMs' shapes then never depend on the other runs of a fit, and a run's scores are the same
 * bits in any population (a BLAS may sum a row differently for another row count). */
#define MODELD_SCORE_CHUNK 5120

/* Minibatch steps per launch of the block graph (at most the steps of the fitter's capacity): on
 * a GPU it amortises a launch over K steps' kernels; a block's padding steps run full-sized GEMMs,
 * so K stays small (at most K - 1 wasted steps per epoch). */
#define MODELD_BLOCK 4

struct modeld_fitter {
  dx_ctx* c;
  model_dev shape;          /* the runs' shape and batch settings (no device arrays) */
  int P;                    /* runs at most */
  long R;                   /* rows per run at most */
  int K;                    /* minibatch steps per block graph */
  float *params, *grads;    /* [P][nparams] */
  nnd_adam* adam;           /* P runs */
  float *norm_mean, *norm_std; /* [P][I] */
  float* snap;              /* [P][net.nparams] per-member snapshots */
  modeld_ws ws;             /* P runs x batch rows */
  float *xb, *yb;           /* [P][E][batch][I], [P][E][batch][D] */
  double* terms;            /* [K][P][L + 2] the loss terms of a block's steps */
  int *nbk, *actk;          /* device [K][P]: valid rows of run q in a block's step k, its Adam flag */
  double* lsum;             /* [P] the epoch's loss sums */
  modelk_frun* runs;        /* device [P] */
  int *alive, *flags;       /* device [P], [P][E] */
  float *X, *Y;             /* [P][R][I], [P][R][D]: each run's rows in permuted order */
  int* boot;                /* [P][E][R]: run q's member lists, n_tr each */
  int *perm, *boot2;        /* [R], [E R] scratch (one run at a time) */
  uint64_t *keys, *keys2;   /* [E R] scratch */
  int* off;                 /* [P][E + 1] the shuffle sort's segments of each run */
  uint64_t *epoch, *step, *chunk; /* [1] each: the fit's epoch, a block's first step, a scoring chunk */
  double* stat;             /* [P][1 + E]: epoch loss, holdout MSEs */
  double *npart, *nmu;      /* normaliser sums of one run: [I][MODELK_NB], [I] */
  int schunk;               /* scoring chunk rows */
  nnd_cache* scache;        /* P runs x schunk rows, shared input */
  float *sx, *sy;           /* [P][schunk][I], [P][E][schunk][2 D] */
  double *srs, *sacc;       /* [P][E][schunk], [P][E] */
  dx_graph *g_block, *g_tail, *g_score; /* captured at the first fit (again if the sort workspace moved) */
  long ws_gen;              /* dx_workspace_gen at their capture */
  void* pin;                /* pinned: the host side of the tables below */
  int *alive_h, *flags_h, *off_h;
  modelk_frun* runs_h;
  double* stat_h;
};

/* ---- a model with a fitter of its own ---- */

/* A model is made here, beside its fitter, so that model_dev.c (the model's buffers, steps and
 * predictions) does not depend on the fitter. */
model_dev* modeld_create(dx_ctx* c, const dyn_model* h, long max_rows) {
  if (max_rows < 0 || max_rows >= (1L << 26))
    mbpo_fatal("modeld_create: max_rows %ld (0 to 2^26 - 1 allowed)", max_rows);
  model_dev* d = calloc(1, sizeof *d);
  if (!d) mbpo_fatal("out of memory");
  modeld_init(d, c, h);
  if (max_rows > 0) d->fit = modeld_fitter_create(c, h, 1, max_rows);
  modeld_upload(d, h);
  return d;
}

void modeld_free(model_dev* d) {
  if (!d) return;
  modeld_release(d);
  modeld_fitter_free(d->fit);
  free(d);
}

modeld_fitter* modeld_fitter_create(dx_ctx* c, const dyn_model* h, int P, long max_rows) {
  if (P < 1 || max_rows < 1 || max_rows >= (1L << 26))
    mbpo_fatal("modeld_fitter_create: %d runs of %ld rows (1 to 2^26 - 1 rows allowed)", P, max_rows);
  if (dx_capturing(c)) mbpo_fatal("modeld_fitter_create inside a capture");
  modeld_fitter* f = calloc(1, sizeof *f);
  if (!f) mbpo_fatal("out of memory");
  f->c = c;
  model_dev* m = &f->shape;
  modeld_set_shape(m, h);
  f->P = P;
  f->R = max_rows;
  const int E = m->p.ensemble, I = m->in_dim, D = m->D, L = m->net.nlayers, Bt = m->p.batch;
  const size_t Pz = (size_t)P, R = (size_t)max_rows, np = m->nparams;
  const long S = (max_rows + Bt - 1) / Bt; /* the most steps per epoch */
  f->K = S < MODELD_BLOCK ? (int)S : MODELD_BLOCK;
  f->params = dx_allocf(c, Pz * np);
  f->grads = dx_allocf(c, Pz * np);
  float* lrs = malloc(Pz * sizeof(float));
  if (!lrs) mbpo_fatal("out of memory");
  for (int q = 0; q < P; q++) lrs[q] = m->p.lr;
  f->adam = nnd_adam_alloc_runs(c, np, P, lrs);
  free(lrs);
  f->norm_mean = dx_allocf(c, Pz * I);
  f->norm_std = dx_allocf(c, Pz * I);
  f->snap = dx_allocf(c, Pz * m->net.nparams);
  modeld_ws_alloc(c, m, P, Bt, &f->ws);
  const size_t EB = Pz * E * Bt, KP = (size_t)MODELD_BLOCK * Pz;
  f->xb = dx_allocf(c, EB * I);
  f->yb = dx_allocf(c, EB * D);
  f->terms = dx_alloc(c, KP * (L + 2) * sizeof(double));
  f->nbk = dx_alloc(c, KP * sizeof(int));
  f->actk = dx_alloc(c, KP * sizeof(int));
  f->lsum = dx_alloc(c, Pz * sizeof(double));
  f->runs = dx_alloc(c, Pz * sizeof(modelk_frun));
  f->alive = dx_alloc(c, Pz * sizeof(int));
  f->flags = dx_alloc(c, Pz * E * sizeof(int));
  f->X = dx_allocf(c, Pz * R * I);
  f->Y = dx_allocf(c, Pz * R * D);
  f->boot = dx_alloc(c, Pz * E * R * sizeof(int));
  f->perm = dx_alloc(c, R * sizeof(int));
  f->boot2 = dx_alloc(c, (size_t)E * R * sizeof(int));
  f->keys = dx_alloc(c, (size_t)E * R * sizeof(uint64_t));
  f->keys2 = dx_alloc(c, (size_t)E * R * sizeof(uint64_t));
  f->off = dx_alloc(c, Pz * (E + 1) * sizeof(int));
  f->epoch = dx_alloc(c, sizeof(uint64_t));
  f->step = dx_alloc(c, sizeof(uint64_t));
  f->chunk = dx_alloc(c, sizeof(uint64_t));
  f->stat = dx_alloc(c, Pz * (1 + E) * sizeof(double));
  f->npart = dx_alloc(c, (size_t)I * MODELK_NB * sizeof(double));
  f->nmu = dx_alloc(c, (size_t)I * sizeof(double));
  dx_reserve_sort(c, (long)R * E);
  f->schunk = (int)(max_rows < MODELD_SCORE_CHUNK ? max_rows : MODELD_SCORE_CHUNK);
  f->scache = nnd_cache_alloc_fwd(c, &m->net, P, f->schunk);
  f->scache->ps = (long)np;
  f->sx = dx_allocf(c, Pz * f->schunk * I);
  f->sy = dx_allocf(c, Pz * E * f->schunk * 2 * D);
  f->srs = dx_alloc(c, Pz * E * f->schunk * sizeof(double));
  f->sacc = dx_alloc(c, Pz * E * sizeof(double));
  /* pinned: stat [P][1 + E] (doubles first), runs [P], alive [P], flags [P][E], off [P][E + 1] */
  const size_t o_stat = 0, o_runs = o_stat + Pz * (1 + E) * sizeof(double);
  const size_t o_alive = o_runs + Pz * sizeof(modelk_frun), o_flags = o_alive + Pz * sizeof(int);
  const size_t o_off = o_flags + Pz * E * sizeof(int), o_end = o_off + Pz * (E + 1) * sizeof(int);
  f->pin = dx_alloc_pinned(c, o_end);
  char* pm = f->pin;
  f->stat_h = (double*)(pm + o_stat);
  f->runs_h = (modelk_frun*)(pm + o_runs);
  f->alive_h = (int*)(pm + o_alive);
  f->flags_h = (int*)(pm + o_flags);
  f->off_h = (int*)(pm + o_off);
  return f;
}

void modeld_fitter_free(modeld_fitter* f) {
  if (!f) return;
  dx_ctx* c = f->c;
  dx_sync(c);
  nnd_adam_free(c, f->adam);
  modeld_ws_free(c, &f->ws);
  nnd_cache_free(c, f->scache);
  dx_graph_free(c, f->g_block);
  dx_graph_free(c, f->g_tail);
  dx_graph_free(c, f->g_score);
  void* bufs[] = {f->params, f->grads, f->norm_mean, f->norm_std, f->snap, f->xb, f->yb, f->terms,
                  f->nbk, f->actk, f->lsum, f->runs, f->alive, f->flags, f->X, f->Y, f->boot, f->perm,
                  f->boot2, f->keys, f->keys2, f->off, f->epoch, f->step, f->chunk, f->stat, f->npart,
                  f->nmu, f->sx, f->sy, f->srs, f->sacc};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dx_free(c, bufs[i]);
  dx_free_pinned(c, f->pin);
  free(f);
}

const int* modeld_fit_boot(const modeld_fitter* f, int q) { return f->boot + (size_t)q * f->shape.p.ensemble * f->R; }

const int* modeld_fit_perm(const modeld_fitter* f) { return f->perm; }

long modeld_fitter_rows(const modeld_fitter* f) { return f->R; }

void modeld_fitter_set_block(modeld_fitter* f, int K) {
  const long S = (f->R + f->shape.p.batch - 1) / f->shape.p.batch;
  if (K < 1 || K > MODELD_BLOCK || K > S)
    mbpo_fatal("modeld_fitter_set_block: %d steps per block (1 to %ld allowed)", K, S < MODELD_BLOCK ? S : MODELD_BLOCK);
  if (K == f->K) return;
  dx_sync(f->c);
  dx_graph_free(f->c, f->g_block);
  f->g_block = NULL;
  f->K = K;
}

/* ---- pieces of a fit ---- */

/* The permutation of model_permutation(key, c0, 0, n) into perm (one sort; scratch keys, boot2). */
static void permutation(modeld_fitter* f, rng_key key, uint32_t c0, int n, int* perm) {
  modelk_keys_args ka = {f->keys, f->boot2, key, c0, NULL, 1, n, NULL};
  DX_RUN(f->c, modelk_keys, ka, n);
  dx_sort_pairs(f->c, f->keys, f->keys2, f->boot2, perm, n);
}

void modeld_permutation(model_dev* d, rng_key key, uint32_t c0, int n, int* perm) {
  if (!d->fit) mbpo_fatal("modeld_permutation: the model has no fitter of its own (max_rows 0)");
  if (n < 0 || n > d->fit->R) mbpo_fatal("modeld_permutation: %d rows (at most %ld)", n, d->fit->R);
  permutation(d->fit, key, c0, n, perm);
}

/* Enqueue the snapshot op over the n runs' flagged members: to_snap 1 copies params -> snap, 0 the
 * restore snap -> params. */
static void snap_members(modeld_fitter* f, int n, int to_snap) {
  const nn_mlp* net = &f->shape.net;
  const long np = (long)f->shape.nparams, netn = (long)net->nparams;
  modelk_snap_args a;
  memset(&a, 0, sizeof a);
  a.dst = to_snap ? f->snap : f->params;
  a.src = to_snap ? f->params : f->snap;
  a.dstride = to_snap ? netn : np;
  a.sstride = to_snap ? np : netn;
  a.flags = f->flags;
  a.netn = netn;
  a.E = net->E;
  a.L = net->nlayers;
  for (int l = 0; l < net->nlayers; l++) {
    a.w_off[l] = (long)net->w_off[l];
    a.w_len[l] = (long)net->dims[l] * net->dims[l + 1];
    a.b_off[l] = (long)net->b_off[l];
    a.b_len[l] = net->dims[l + 1];
  }
  DX_RUN(f->c, modelk_snap, a, (long)n * netn);
}

/* The graphs. Each covers all P slots and reads what changes from device memory (the file's
 * head comment). */

/* One chunk of the holdout scoring: the per-member plain MSE of each run's scored rows
 * (X[q][0..n_score)), chunk number *chunk of schunk rows, normalised and run through every member,
 * per-row sums in double added in row order into stat[q][1..E] on the run's last chunk
 * (model_mse_rows); then the chunk number advances. */
static void score_program(modeld_fitter* f) {
  dx_ctx* c = f->c;
  const model_dev* m = &f->shape;
  const int E = m->p.ensemble, I = m->in_dim, D = m->D, P = f->P, nr = f->schunk;
  nnd_cache_use_runs(f->scache, P);
  modelk_norm_rows_args na = {f->X, f->norm_mean, f->norm_std, f->runs, f->sx, f->R, f->chunk, nr, I};
  DX_RUN(c, modelk_norm_rows, na, (long)P * nr * I);
  nnd_forward(c, &m->net, f->params, nr, f->sx, 1, f->scache, f->sy);
  modelk_mse_rows_args ra = {f->sy, f->Y, f->runs, f->srs, f->R, f->chunk, nr, E, D};
  DX_RUN(c, modelk_mse_rows, ra, (long)P * E * nr);
  modelk_mse_acc_args aa = {f->srs, f->sacc, f->stat + 1, f->runs, f->chunk, nr, E, D, 1 + E};
  DX_RUN(c, modelk_mse_acc, aa, (long)P * E);
  nnd_ctr_add(c, f->chunk, 1);
}

/* K minibatch steps j = *step + k of every run: the gather (which also sets the step's row counts
 * and Adam flags), the step, and on lane 3, beside the next step, the loss into the epoch's sum;
 * then the step number advances by K. */
static void block_program(modeld_fitter* f) {
  dx_ctx* c = f->c;
  const model_dev* m = &f->shape;
  const int E = m->p.ensemble, Bt = m->p.batch, L = m->net.nlayers, I = m->in_dim, D = m->D, P = f->P;
  for (int k = 0; k < f->K; k++) {
    int *nb = f->nbk + k * P, *act = f->actk + k * P;
    double* terms = f->terms + (size_t)k * P * (L + 2);
    modelk_gather_args ga = {f->X, f->Y, f->norm_mean, f->norm_std, f->boot, f->runs, f->alive, f->step, nb, act,
                             f->xb, f->yb, f->R, k, Bt, E, I, D};
    DX_RUN(c, modelk_gather, ga, (long)P * E * Bt);
    modeld_step_runs(c, m, &f->ws, P, Bt, nb, f->runs, f->params, f->grads, f->adam, act, f->xb, f->yb, terms);
    dx_wait(c, 3, 0);
    dx_lane(c, 3);
    modelk_loss_acc_args la = {terms, f->lsum, f->runs, f->step, k, L};
    DX_RUN(c, modelk_loss_acc, la, P);
    dx_lane(c, 0);
  }
  dx_wait(c, 0, 3); /* the sums read step and terms, which the next block rewrites */
  nnd_ctr_add(c, f->step, (uint64_t)f->K);
}

/* The epoch's end: each run's mean loss into stat[q][0], the per-member shuffles of each run (its
 * E lists [E][n_tr] by one segmented sort of keys of the epoch number), the epoch number advanced,
 * the step and chunk numbers back to 0. */
static void tail_program(modeld_fitter* f) {
  dx_ctx* c = f->c;
  const model_dev* m = &f->shape;
  const int E = m->p.ensemble, P = f->P;
  const long nk = (long)E * f->R;
  modelk_epoch_loss_args ea = {f->lsum, f->stat, f->runs, 1 + E};
  DX_RUN(c, modelk_epoch_loss, ea, P);
  for (int q = 0; q < P; q++) {
    int* boot = f->boot + (size_t)q * nk;
    modelk_keys_args ka = {f->keys, NULL, {0, RNG_MODEL_SHUFFLE}, 0, f->epoch, E, 1, f->runs + q};
    DX_RUN(c, modelk_keys, ka, nk);
    dx_sort_segments(c, f->keys, f->keys2, boot, f->boot2, nk, E, f->off + q * (E + 1));
    modelk_copy_lists_args ca = {boot, f->boot2, f->runs + q, E};
    DX_RUN(c, modelk_copy_lists, ca, nk);
  }
  nnd_ctr_add(c, f->epoch, 1);
  dx_zero(c, f->step, sizeof(uint64_t));
  dx_zero(c, f->chunk, sizeof(uint64_t));
}

/* Capture the graphs that are missing: all three at the first fit (again after the sort workspace
 * moved), the block graph after its size changed. */
static void capture_graphs(modeld_fitter* f) {
  dx_ctx* c = f->c;
  if (f->ws_gen != dx_workspace_gen(c)) {
    dx_graph_free(c, f->g_block);
    dx_graph_free(c, f->g_tail);
    dx_graph_free(c, f->g_score);
    f->g_block = f->g_tail = f->g_score = NULL;
    f->ws_gen = dx_workspace_gen(c);
  }
  char outer[DX_PHASE_MAX];
  snprintf(outer, sizeof outer, "%s", dx_phase_get(c));
  if (!f->g_block) {
    dx_phase(c, "model fit graph (%d run slot%s): %d minibatch step%s", f->P, f->P == 1 ? "" : "s", f->K,
             f->K == 1 ? "" : "s");
    dx_capture_begin(c);
    block_program(f);
    f->g_block = dx_capture_end(c);
  }
  if (!f->g_tail) {
    dx_phase(c, "model fit graph (%d run slot%s): mean losses, shuffles", f->P, f->P == 1 ? "" : "s");
    dx_capture_begin(c);
    tail_program(f);
    f->g_tail = dx_capture_end(c);
  }
  if (!f->g_score) {
    dx_phase(c, "model fit graph (%d run slot%s): a holdout scoring chunk", f->P, f->P == 1 ? "" : "s");
    dx_capture_begin(c);
    score_program(f);
    f->g_score = dx_capture_end(c);
  }
  dx_phase(c, "%s", outer);
}

/* Launch the scoring of the first nmax rows of every run, from chunk 0. */
static void score(modeld_fitter* f, int nmax) {
  for (int r0 = 0; r0 < nmax; r0 += f->schunk) dx_graph_launch(f->c, f->g_score);
}

/* Copy a run's model state into slot q (to 1) or back (to 0): parameters and Adam state, and on the
 * way back the normaliser. */
static void copy_state(modeld_fitter* f, int q, model_dev* m, int to) {
  dx_ctx* c = f->c;
  const size_t np = f->shape.nparams, I = (size_t)f->shape.in_dim, fz = sizeof(float);
  nnd_adam *a = f->adam, *b = m->adam;
#define CP_(fit, mine, bytes) (to ? dx_copy(c, fit, mine, bytes) : dx_copy(c, mine, fit, bytes))
  CP_(f->params + q * np, m->params, np * fz);
  CP_(a->m + q * np, b->m, np * fz);
  CP_(a->v + q * np, b->v, np * fz);
  CP_(a->t + q, b->t, sizeof(int64_t));
  CP_(a->lr_t + q, b->lr_t, fz);
  CP_(a->lrs + q, b->lrs, fz);
#undef CP_
  if (!to) {
    dx_copy(c, m->norm_mean, f->norm_mean + q * I, I * fz);
    dx_copy(c, m->norm_std, f->norm_std + q * I, I * fz);
  }
}

static void check_job(const modeld_fitter* f, const modeld_fit_job* j) {
  const model_dev *s = &f->shape, *m = j->m;
  int same = m->nparams == s->nparams && m->in_dim == s->in_dim && m->D == s->D &&
             m->p.ensemble == s->p.ensemble && m->p.batch == s->p.batch && m->net.nlayers == s->net.nlayers;
  for (int l = 0; same && l < s->net.nlayers; l++) same = m->p.weight_decay[l] == s->p.weight_decay[l];
  if (!same)
    mbpo_fatal("modeld_fit_runs: a model differs from the fitter's in its shape, batch or weight decays");
  if (j->N > f->R) mbpo_fatal("modeld_fit_runs: %d rows, the fitter was made for %ld", j->N, f->R);
}

/* The fit of the jobs that have data (n of them, slots 0..n-1). */
static void fit_slots(modeld_fitter* f, modeld_fit_job** jobs, int n, double t0) {
  dx_ctx* c = f->c;
  const model_dev* m = &f->shape;
  const int E = m->p.ensemble, I = m->in_dim, D = m->D, Bt = m->p.batch;
  const size_t P = (size_t)f->P, R = (size_t)f->R;
  int steps = 0, nmax = 0; /* the most steps per epoch, the most scored rows */
  model_fit_stats* S = malloc((size_t)n * sizeof *S);
  model_stopper* stop = malloc((size_t)n * sizeof *stop);
  if (!S || !stop) mbpo_fatal("out of memory");
  /* phase labels: a fault report names the fit's step and epoch (dx.h) */
  char outer[DX_PHASE_MAX];
  snprintf(outer, sizeof outer, "%s", dx_phase_get(c));
  dx_phase_sub(c, outer, "model fit (%d run%s, fit index %u): split, normaliser, bootstrap", n, n == 1 ? "" : "s",
               jobs[0]->fit_index);

  /* 1. per run: its state in, the split (permutation by one sort; the first n_ho rows are held
   * out), the normaliser from the training split, the bootstrap */
  for (int q = 0; q < n; q++) {
    modeld_fit_job* jb = jobs[q];
    model_dev* md = jb->m;
    model_fit_begin(&md->p, jb->N, &S[q]);
    const int n_ho = S[q].n_holdout, n_tr = S[q].n_train;
    modelk_frun* fr = &f->runs_h[q];
    fr->n_ho = n_ho;
    fr->n_tr = n_tr;
    fr->n_score = n_ho > 0 ? n_ho : n_tr;
    fr->nsteps = (n_tr + Bt - 1) / Bt;
    fr->coef = md->p.logvar_coef;
    fr->seed = md->key.seed;
    fr->fit = jb->fit_index;
    if (fr->nsteps > steps) steps = fr->nsteps;
    if (fr->n_score > nmax) nmax = fr->n_score;
    for (int e = 0; e <= E; e++) f->off_h[q * (E + 1) + e] = e * n_tr;
    copy_state(f, q, md, 1);
    float *X = f->X + q * R * I, *Y = f->Y + q * R * D;
    permutation(f, (rng_key){md->key.seed, RNG_MODEL_SPLIT}, jb->fit_index, jb->N, f->perm);
    modelk_split_rows_args sa = {jb->obs, jb->act, jb->rew, jb->next_obs, f->perm, X, Y, m->obs_dim, m->act_dim};
    DX_RUN(c, modelk_split_rows, sa, jb->N);
    for (int pass = 0; pass < 2; pass++) {
      modelk_norm_part_args np = {X + (size_t)n_ho * I, f->nmu, f->npart, n_tr, I, pass};
      DX_RUN(c, modelk_norm_part, np, (long)I * MODELK_NB);
      modelk_norm_fin_args nf = {f->npart, f->nmu, f->norm_mean + q * I, f->norm_std + q * I, n_tr, pass};
      DX_RUN(c, modelk_norm_fin, nf, I);
    }
    modelk_boot_args ba = {f->boot + q * E * R, {md->key.seed, RNG_MODEL_BOOT}, jb->fit_index, n_tr};
    DX_RUN(c, modelk_boot, ba, (long)E * n_tr);
    f->alive_h[q] = 1;
  }
  for (int q = n; q < f->P; q++) { /* an empty slot: no rows, no steps, empty segments */
    f->alive_h[q] = 0;
    memset(&f->runs_h[q], 0, sizeof f->runs_h[q]);
    memset(f->off_h + q * (E + 1), 0, (size_t)(E + 1) * sizeof(int));
  }
  dx_upload(c, f->runs, f->runs_h, P * sizeof(modelk_frun));
  dx_upload(c, f->off, f->off_h, P * (E + 1) * sizeof(int));
  dx_upload(c, f->alive, f->alive_h, P * sizeof(int));
  dx_zero(c, f->epoch, sizeof(uint64_t));
  dx_zero(c, f->step, sizeof(uint64_t));
  dx_zero(c, f->chunk, sizeof(uint64_t));
  dx_zero(c, f->lsum, P * sizeof(double));

  /* 2. epochs: the graphs' launches, one download and one decision per run each */
  capture_graphs(f);
  const int blocks = (steps + f->K - 1) / f->K;
  for (int q = 0; q < n; q++) model_stopper_begin(&stop[q], E, &S[q]);
  int alive = n;
  for (int epoch = 0; alive > 0; epoch++) {
    dx_phase_sub(c, outer, "model fit (%d run%s, fit index %u), epoch %d", n, n == 1 ? "" : "s", jobs[0]->fit_index,
                 epoch);
    for (int b = 0; b < blocks; b++) dx_graph_launch(c, f->g_block);
    dx_graph_launch(c, f->g_tail);
    score(f, nmax);
    dx_download(c, f->stat_h, f->stat, (size_t)n * (1 + E) * sizeof(double));
    dx_sync(c);
    int snaps = 0, died = 0;
    for (int q = 0; q < n; q++) {
      int* snap = f->flags_h + q * E;
      memset(snap, 0, (size_t)E * sizeof(int));
      if (!f->alive_h[q]) continue;
      const double* st = f->stat_h + q * (1 + E);
      S[q].steps += f->runs_h[q].nsteps;
      S[q].epochs = epoch + 1;
      S[q].train_loss = st[0];
      int done;
      if (!isfinite(S[q].train_loss)) {
        S[q].status = MODEL_NONFINITE;
        done = 1;
      } else {
        done = model_stopper_epoch(&stop[q], &jobs[q]->m->p, epoch, st + 1, &S[q], snap);
        for (int e = 0; e < E; e++) snaps |= snap[e];
      }
      if (done) f->alive_h[q] = 0, alive--, died = 1;
    }
    if (snaps) {
      dx_upload(c, f->flags, f->flags_h, (size_t)n * E * sizeof(int));
      snap_members(f, n, 1);
    }
    if (died && alive > 0) dx_upload(c, f->alive, f->alive_h, P * sizeof(int));
  }
  dx_sync(c); /* the last epoch's flag upload has read its pinned source */

  /* 3. each member back to its snapshot; 4. holdout MSE and elites; 5. the state back */
  dx_phase_sub(c, outer, "model fit (%d run%s, fit index %u): snapshots, holdout scores", n, n == 1 ? "" : "s",
               jobs[0]->fit_index);
  for (int q = 0; q < n; q++)
    for (int e = 0; e < E; e++) f->flags_h[q * E + e] = S[q].best_epoch[e] >= 0;
  dx_upload(c, f->flags, f->flags_h, (size_t)n * E * sizeof(int));
  snap_members(f, n, 0);
  dx_zero(c, f->chunk, sizeof(uint64_t));
  score(f, nmax);
  dx_download(c, f->stat_h, f->stat, (size_t)n * (1 + E) * sizeof(double));
  for (int q = 0; q < n; q++) copy_state(f, q, jobs[q]->m, 0);
  dx_sync(c);
  dx_phase(c, "%s", outer);
  const double secs = now_s() - t0;
  for (int q = 0; q < n; q++) {
    modeld_fit_job* jb = jobs[q];
    for (int e = 0; e < E; e++) S[q].holdout_mse[e] = f->stat_h[q * (1 + E) + 1 + e];
    model_choose_elites(&jb->m->p, &S[q], jb->m->elites);
    S[q].seconds = secs;
    jb->st = S[q];
    jb->rc = S[q].status;
  }
  free(S);
  free(stop);
}

void modeld_fit_runs(modeld_fitter* f, modeld_fit_job* jobs, int n) {
  const double t0 = now_s();
  if (n < 0 || n > f->P) mbpo_fatal("modeld_fit_runs: %d runs (the fitter holds %d)", n, f->P);
  if (dx_capturing(f->c)) mbpo_fatal("modeld_fit_runs inside a capture");
  modeld_fit_job** slots = malloc((size_t)(n > 0 ? n : 1) * sizeof *slots);
  if (!slots) mbpo_fatal("out of memory");
  int m = 0;
  for (int i = 0; i < n; i++) {
    modeld_fit_job* j = &jobs[i];
    check_job(f, j);
    if (model_fit_begin(&j->m->p, j->N, &j->st) != MODEL_OK) { /* nothing to fit */
      j->rc = j->st.status;
      continue;
    }
    slots[m++] = j;
  }
  if (m > 0) fit_slots(f, slots, m, t0);
  free(slots);
}

int modeld_train(model_dev* d, int N, const float* obs, const float* act, const float* rew,
                 const float* next_obs, uint32_t fit, model_fit_stats* st) {
  if (!d->fit) mbpo_fatal("modeld_train: the model has no fitter of its own (made with max_rows 0)");
  dx_sync(d->c);
  modeld_fit_job j = {.m = d, .N = N, .obs = obs, .act = act, .rew = rew, .next_obs = next_obs, .fit_index = fit};
  modeld_fit_runs(d->fit, &j, 1);
  if (st) *st = j.st;
  return j.rc;
}
