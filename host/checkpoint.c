/* checkpoint.c: saving and restoring a run's whole state (checkpoint.h; internal API in
 * mbpo_run.h). */
#include "checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mbpo_run.h"
#include "npy.h"
#include "npz.h"

/* ---- saving ---- */

static void add_pool(npz_writer* w, const char* p, const pool* q) {
  char n[64];
  long rows = q ? q->size : 0;
  long s2[2], s1[1] = {rows};
  s2[0] = rows;
  snprintf(n, sizeof n, "%s/cap", p);
  npz_add_scalar(w, n, q ? (double)q->cap : 0);
  snprintf(n, sizeof n, "%s/next", p);
  npz_add_scalar(w, n, q ? (double)q->next : 0);
  if (!q) return;
  s2[1] = q->obs_dim;
  snprintf(n, sizeof n, "%s/obs", p);
  npz_add_ref(w, n, q->obs, NPY_F32, 2, s2);
  snprintf(n, sizeof n, "%s/next_obs", p);
  npz_add_ref(w, n, q->next_obs, NPY_F32, 2, s2);
  s2[1] = q->act_dim;
  snprintf(n, sizeof n, "%s/act", p);
  npz_add_ref(w, n, q->act, NPY_F32, 2, s2);
  snprintf(n, sizeof n, "%s/rew", p);
  npz_add_ref(w, n, q->rew, NPY_F32, 1, s1);
  snprintf(n, sizeof n, "%s/done", p);
  npz_add_ref(w, n, q->done, NPY_F32, 1, s1);
}

int ckpt_save(mbpo_state* s, const char* path, double elapsed, char* err, int errlen) {
  npz_writer* w = npz_begin();
  if (!w) {
    mbpo_fmt(err, errlen, "out of memory");
    return -1;
  }
  char* ini = NULL;
  size_t ini_len = 0;
  FILE* mem = open_memstream(&ini, &ini_len);
  if (!mem) mbpo_fatal("out of memory");
  cfg_write_ini(s->c, mem);
  fclose(mem);
  long sh[2];
  npz_add_scalar(w, "format_version", CKPT_VERSION);
  sh[0] = (long)ini_len;
  npz_add_u8(w, "config_ini", (const unsigned char*)ini, 1, sh);
  free(ini);
  sh[0] = (long)strlen(s->c->task);
  npz_add_u8(w, "task", (const unsigned char*)s->c->task, 1, sh);
  npz_add_scalar(w, "obs_dim", s->od);
  npz_add_scalar(w, "act_dim", s->ad);
  /* loop counters (every random stream continues from these) */
  long long ctr[] = {(long long)s->env_steps, (long long)s->train_steps, (long long)s->updates,
                     (long long)s->fits, s->k, s->epoch, s->t, s->unstable, s->have_pending,
                     s->ep_count, (long long)s->agent->pi_adam->t, (long long)s->agent->q_adam->t,
                     (long long)s->agent->alpha_adam->t, (long long)s->model->adam->t};
  sh[0] = (long)(sizeof ctr / sizeof ctr[0]);
  npz_add_i64(w, "loop/counters", ctr, 1, sh);
  sh[0] = P_NCOL;
  npz_add_f64(w, "loop/row", s->row, 1, sh);
  npz_add_f64(w, "loop/pending", s->pending, 1, sh);
  double sst[] = {s->last.q1_loss, s->last.q2_loss, s->last.pi_loss, s->last.alpha,
                  s->last.alpha_loss, s->last.entropy, s->last.q_mean};
  sh[0] = 7;
  npz_add_f64(w, "loop/last_sac_stats", sst, 1, sh);
  double misc[] = {s->ep_ret_sum, s->sac_time, s->last_eval, elapsed, s->path.ret, s->best_eval};
  sh[0] = 6;
  npz_add_f64(w, "loop/misc", misc, 1, sh);
  sh[0] = s->od;
  npz_add_f32(w, "loop/obs", s->obs, 1, sh);
  /* the live environment */
  env* e = s->envs->envs[0];
  const mjModel* m = e->m;
  long long ectr[] = {e->episode, e->t, e->unstable};
  sh[0] = 3;
  npz_add_i64(w, "env/counters", ectr, 1, sh);
  sh[0] = m->nq;
  npz_add_f64(w, "env/qpos", e->d->qpos, 1, sh);
  sh[0] = m->nv;
  npz_add_f64(w, "env/qvel", e->d->qvel, 1, sh);
  npz_add_f64(w, "env/qacc_warmstart", e->d->qacc_warmstart, 1, sh);
  sh[0] = m->nbody;
  sh[1] = 3;
  npz_add_f64(w, "env/xpos", e->d->xpos, 2, sh);
  npz_add_f64(w, "env/xipos", e->d->xipos, 2, sh);
  npz_add_scalar(w, "env/time", e->d->time);
  /* the running episode */
  path_buf* p = &s->path;
  sh[0] = p->n;
  sh[1] = s->od;
  npz_add_f32(w, "path/obs", p->obs, 2, sh);
  npz_add_f32(w, "path/next_obs", p->next_obs, 2, sh);
  sh[1] = s->ad;
  npz_add_f32(w, "path/act", p->act, 2, sh);
  npz_add_f32(w, "path/rew", p->rew, 1, sh);
  npz_add_f32(w, "path/done", p->done, 1, sh);
  /* SAC, the model, the evaluation snapshot */
  sac_tensor st[SAC_NTENSORS];
  int ns = sac_tensors(s->agent, st);
  for (int i = 0; i < ns; i++) {
    char n[160];
    snprintf(n, sizeof n, "sac/%.100s", st[i].name);
    sh[0] = (long)st[i].n;
    npz_add_ref(w, n, st[i].data, NPY_F32, 1, sh);
  }
  model_tensor mt[MODEL_MAX_TENSORS];
  int nm = model_tensors(s->model, mt);
  for (int i = 0; i < nm; i++) {
    char n[160];
    snprintf(n, sizeof n, "model/%.100s", mt[i].name);
    npz_add_ref(w, n, mt[i].data, NPY_F32, mt[i].ndim, mt[i].shape);
  }
  sh[0] = s->model->p.elites;
  npz_add_i32(w, "model/elites", s->model->elites, 1, sh);
  sh[0] = (long)s->agent->pi.nparams;
  npz_add_ref(w, "eval/policy_snapshot", eval_snapshot(s->ev), NPY_F32, 1, sh);
  int* em_ok;
  dyn_model* em = eval_model_snapshot(s->ev, &em_ok);
  if (em) { /* eval.model_return: the model the pending evaluation runs in */
    nm = model_tensors(em, mt);
    for (int i = 0; i < nm; i++) {
      char n[160];
      if (strncmp(mt[i].name, "adam_", 5) == 0) continue;
      snprintf(n, sizeof n, "eval/model/%.100s", mt[i].name);
      npz_add_ref(w, n, mt[i].data, NPY_F32, mt[i].ndim, mt[i].shape);
    }
    sh[0] = em->p.elites;
    npz_add_i32(w, "eval/model/elites", em->elites, 1, sh);
    sh[0] = 1;
    npz_add_i32(w, "eval/model_ok", em_ok, 1, sh);
  }
  add_pool(w, "real", s->real);
  add_pool(w, "model_pool", s->mpool);
  /* the TensorBoard event file (name in the run folder) and its length with every event logged so
   * far: a resumed run cuts it back to that and appends, as progress.csv (optional on reading) */
  const char* tbp = s->tb ? tboard_path(s->tb) : "";
  const char* base = strrchr(tbp, '/');
  base = base ? base + 1 : tbp;
  sh[0] = (long)strlen(base);
  npz_add_u8(w, "tboard/file", (const unsigned char*)base, 1, sh);
  npz_add_scalar(w, "tboard/bytes", s->tb ? (double)(tboard_bytes_written(s->tb) + tboard_bytes_pending(s->tb)) : 0);
  return npz_finish(w, path, err, errlen);
}

/* ---- restoring ---- */

typedef struct reader {
  npz_archive* a;
  const char* path;
  char* err;
  int errlen;
  int failed;
} reader;

/* Read entry name into dst, which must hold exactly count elements of type. */
static void get(reader* r, const char* name, int type, void* dst, size_t count) {
  if (r->failed) return;
  npy_array arr;
  char e[512];
  if (npz_get(r->a, name, &arr, e, sizeof e) != 0) {
    mbpo_fmt(r->err, r->errlen, "%s: %s", r->path, e);
    r->failed = 1;
    return;
  }
  if (arr.type != type || arr.count != count) {
    mbpo_fmt(r->err, r->errlen, "%s: '%s' has %zu elements of type %d, this run needs %zu of type %d",
             r->path, name, arr.count, arr.type, count, type);
    r->failed = 1;
  } else if (count) {
    memcpy(dst, arr.data, count * (size_t)npy_type_size(type));
  }
  npy_free(&arr);
}

static double get_scalar(reader* r, const char* name) {
  double v = 0;
  get(r, name, NPY_F64, &v, 1);
  return v;
}

static void get_pool(reader* r, const char* p, pool** qp, int od, int ad) {
  char n[64];
  snprintf(n, sizeof n, "%s/cap", p);
  long cap = (long)get_scalar(r, n);
  snprintf(n, sizeof n, "%s/next", p);
  long next = (long)get_scalar(r, n);
  if (r->failed || cap <= 0) return;
  snprintf(n, sizeof n, "%s/rew", p);
  int i = npz_find(r->a, n);
  if (i < 0) {
    mbpo_fmt(r->err, r->errlen, "%s: no '%s'", r->path, n);
    r->failed = 1;
    return;
  }
  npy_array rew;
  char e[512];
  if (npz_get(r->a, n, &rew, e, sizeof e) != 0) {
    mbpo_fmt(r->err, r->errlen, "%s: %s", r->path, e);
    r->failed = 1;
    return;
  }
  long size = (long)rew.count;
  npy_free(&rew);
  if (size > cap || next < 0 || next >= cap) {
    mbpo_fmt(r->err, r->errlen, "%s: pool '%s' has size %ld, next %ld for capacity %ld", r->path, p,
             size, next, cap);
    r->failed = 1;
    return;
  }
  if (!*qp) *qp = pool_create(od, ad, cap);
  else if ((*qp)->cap != cap) {
    pool_free(*qp);
    *qp = pool_create(od, ad, cap);
  }
  pool* q = *qp;
  q->size = size;
  q->next = next;
  snprintf(n, sizeof n, "%s/obs", p);
  get(r, n, NPY_F32, q->obs, (size_t)size * (size_t)od);
  snprintf(n, sizeof n, "%s/next_obs", p);
  get(r, n, NPY_F32, q->next_obs, (size_t)size * (size_t)od);
  snprintf(n, sizeof n, "%s/act", p);
  get(r, n, NPY_F32, q->act, (size_t)size * (size_t)ad);
  snprintf(n, sizeof n, "%s/rew", p);
  get(r, n, NPY_F32, q->rew, (size_t)size);
  snprintf(n, sizeof n, "%s/done", p);
  get(r, n, NPY_F32, q->done, (size_t)size);
}

int ckpt_load(mbpo_state* s, const char* path, double* elapsed, char* err, int errlen) {
  reader r = {NULL, path, err, errlen, 0};
  r.a = npz_open(path, err, errlen);
  if (!r.a) return -1;
  double ver = get_scalar(&r, "format_version");
  if (!r.failed && ver != CKPT_VERSION) {
    mbpo_fmt(err, errlen, "%s: checkpoint format version %g, this binary reads version %d", path, ver,
             CKPT_VERSION);
    r.failed = 1;
  }
  char task[CFG_STR_MAX] = "";
  if (!r.failed) {
    int i = npz_find(r.a, "task");
    npy_array t;
    char e[512];
    if (i < 0 || npz_get(r.a, "task", &t, e, sizeof e) != 0 || t.type != NPY_U8 || t.count >= sizeof task) {
      mbpo_fmt(err, errlen, "%s: no readable 'task' entry", path);
      r.failed = 1;
    } else {
      memcpy(task, t.data, t.count);
      task[t.count] = '\0';
      npy_free(&t);
    }
  }
  if (!r.failed && strcmp(task, s->c->task) != 0) {
    mbpo_fmt(err, errlen, "%s is a checkpoint of task %s, this run is %s", path, task, s->c->task);
    r.failed = 1;
  }
  if (!r.failed && ((int)get_scalar(&r, "obs_dim") != s->od || (int)get_scalar(&r, "act_dim") != s->ad)) {
    mbpo_fmt(err, errlen, "%s: dimensions differ from this run's task", path);
    r.failed = 1;
  }
  long long ctr[14];
  get(&r, "loop/counters", NPY_I64, ctr, 14);
  get(&r, "loop/row", NPY_F64, s->row, P_NCOL);
  get(&r, "loop/pending", NPY_F64, s->pending, P_NCOL);
  double sst[7], misc[6];
  get(&r, "loop/last_sac_stats", NPY_F64, sst, 7);
  get(&r, "loop/misc", NPY_F64, misc, 6);
  get(&r, "loop/obs", NPY_F32, s->obs, (size_t)s->od);
  env* e = s->envs->envs[0];
  const mjModel* m = e->m;
  long long ectr[3];
  get(&r, "env/counters", NPY_I64, ectr, 3);
  double* qpos = (double*)calloc((size_t)m->nq + 2 * (size_t)m->nv + 6 * (size_t)m->nbody, sizeof(double));
  if (!qpos) mbpo_fatal("out of memory");
  double *qvel = qpos + m->nq, *warm = qvel + m->nv, *xpos = warm + m->nv, *xipos = xpos + 3 * m->nbody;
  get(&r, "env/qpos", NPY_F64, qpos, (size_t)m->nq);
  get(&r, "env/qvel", NPY_F64, qvel, (size_t)m->nv);
  get(&r, "env/qacc_warmstart", NPY_F64, warm, (size_t)m->nv);
  get(&r, "env/xpos", NPY_F64, xpos, 3 * (size_t)m->nbody);
  get(&r, "env/xipos", NPY_F64, xipos, 3 * (size_t)m->nbody);
  double etime = get_scalar(&r, "env/time");
  /* the running episode */
  int pn = -1;
  if (!r.failed) {
    npy_array pr;
    char em[512];
    if (npz_get(r.a, "path/rew", &pr, em, sizeof em) != 0) {
      mbpo_fmt(err, errlen, "%s: %s", path, em);
      r.failed = 1;
    } else {
      pn = (int)pr.count;
      npy_free(&pr);
      if (pn > s->path.cap) {
        mbpo_fmt(err, errlen, "%s: running episode of %d steps exceeds max_path_length", path, pn);
        r.failed = 1;
      }
    }
  }
  if (!r.failed) {
    s->path.n = pn;
    get(&r, "path/obs", NPY_F32, s->path.obs, (size_t)pn * (size_t)s->od);
    get(&r, "path/next_obs", NPY_F32, s->path.next_obs, (size_t)pn * (size_t)s->od);
    get(&r, "path/act", NPY_F32, s->path.act, (size_t)pn * (size_t)s->ad);
    get(&r, "path/rew", NPY_F32, s->path.rew, (size_t)pn);
    get(&r, "path/done", NPY_F32, s->path.done, (size_t)pn);
  }
  sac_tensor st[SAC_NTENSORS];
  int ns = sac_tensors(s->agent, st);
  for (int i = 0; i < ns; i++) {
    char n[160];
    snprintf(n, sizeof n, "sac/%.100s", st[i].name);
    get(&r, n, NPY_F32, st[i].data, st[i].n);
  }
  model_tensor mt[MODEL_MAX_TENSORS];
  int nm = model_tensors(s->model, mt);
  for (int i = 0; i < nm; i++) {
    char n[160];
    size_t cnt = 1;
    for (int d = 0; d < mt[i].ndim; d++) cnt *= (size_t)mt[i].shape[d];
    snprintf(n, sizeof n, "model/%.100s", mt[i].name);
    get(&r, n, NPY_F32, mt[i].data, cnt);
  }
  get(&r, "model/elites", NPY_I32, s->model->elites, (size_t)s->model->p.elites);
  get(&r, "eval/policy_snapshot", NPY_F32, eval_snapshot(s->ev), s->agent->pi.nparams);
  int* em_ok;
  dyn_model* em = eval_model_snapshot(s->ev, &em_ok);
  if (em) {
    nm = model_tensors(em, mt);
    for (int i = 0; i < nm; i++) {
      char n[160];
      size_t cnt = 1;
      if (strncmp(mt[i].name, "adam_", 5) == 0) continue;
      for (int d = 0; d < mt[i].ndim; d++) cnt *= (size_t)mt[i].shape[d];
      snprintf(n, sizeof n, "eval/model/%.100s", mt[i].name);
      get(&r, n, NPY_F32, mt[i].data, cnt);
    }
    get(&r, "eval/model/elites", NPY_I32, em->elites, (size_t)em->p.elites);
    get(&r, "eval/model_ok", NPY_I32, em_ok, 1);
  }
  get_pool(&r, "real", &s->real, s->od, s->ad);
  get_pool(&r, "model_pool", &s->mpool, s->od, s->ad);
  s->tb_file[0] = '\0';
  s->tb_bytes = 0;
  if (!r.failed && npz_find(r.a, "tboard/file") >= 0) { /* absent in early checkpoints */
    npy_array t = {0};
    char e[512];
    if (npz_get(r.a, "tboard/file", &t, e, sizeof e) != 0 || t.type != NPY_U8 || t.count >= sizeof s->tb_file ||
        memchr(t.data, '/', t.count) || memchr(t.data, '\0', t.count)) {
      npy_free(&t);
      mbpo_fmt(err, errlen, "%s: unreadable 'tboard/file' entry", path);
      r.failed = 1;
    } else {
      memcpy(s->tb_file, t.data, t.count);
      s->tb_file[t.count] = '\0';
      npy_free(&t);
      double b = get_scalar(&r, "tboard/bytes");
      if (!r.failed && !(b >= 0 && b < 9e15)) {
        mbpo_fmt(err, errlen, "%s: bad 'tboard/bytes' %g", path, b);
        r.failed = 1;
      }
      s->tb_bytes = r.failed ? 0 : (uint64_t)b;
    }
  }
  npz_close(r.a);
  if (r.failed) {
    free(qpos);
    return -1;
  }
  s->env_steps = (uint64_t)ctr[0];
  s->train_steps = (uint64_t)ctr[1];
  s->updates = (uint64_t)ctr[2];
  s->fits = (uint32_t)ctr[3];
  s->k = (int)ctr[4];
  s->epoch = (long)ctr[5];
  s->t = (long)ctr[6];
  s->unstable = (long)ctr[7];
  s->have_pending = (int)ctr[8];
  s->ep_count = (int)ctr[9];
  s->agent->pi_adam->t = (long)ctr[10];
  s->agent->q_adam->t = (long)ctr[11];
  s->agent->alpha_adam->t = (long)ctr[12];
  s->model->adam->t = (long)ctr[13];
  s->last.q1_loss = sst[0];
  s->last.q2_loss = sst[1];
  s->last.pi_loss = sst[2];
  s->last.alpha = sst[3];
  s->last.alpha_loss = sst[4];
  s->last.entropy = sst[5];
  s->last.q_mean = sst[6];
  s->ep_ret_sum = misc[0];
  s->sac_time = misc[1];
  s->last_eval = misc[2];
  *elapsed = misc[3];
  s->path.ret = misc[4];
  s->best_eval = misc[5];
  e->episode = (uint32_t)ectr[0];
  e->t = (int)ectr[1];
  e->unstable = (long)ectr[2];
  env_set_state(e, qpos, qvel);
  /* what mj_forward recomputed is put back as the interrupted run had it: the solver's warm start
   * and the lagged positions that the next step's reward reads before stepping */
  memcpy(e->d->qacc_warmstart, warm, sizeof(double) * (size_t)m->nv);
  memcpy(e->d->xpos, xpos, sizeof(double) * 3 * (size_t)m->nbody);
  memcpy(e->d->xipos, xipos, sizeof(double) * 3 * (size_t)m->nbody);
  e->d->time = etime;
  free(qpos);
  return 0;
}
