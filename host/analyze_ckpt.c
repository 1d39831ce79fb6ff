/* analyze_ckpt.c: a run's checkpoints for the analyses, and fresh real transitions of a
 * checkpoint's policy (analyze_ckpt.h). */
#include "analyze_ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "csv.h"
#include "log.h"
#include "schedule.h"

/* The epoch of an epoch-end checkpoint's file name "ckpt-e<digits>.npz" (a path's last part), or
 * -1 for any other name (ckpt-best.npz, ckpt-e<E>-t<T>.npz, ...). */
static long name_epoch(const char* path) {
  const char* b = strrchr(path, '/');
  b = b ? b + 1 : path;
  if (strncmp(b, "ckpt-e", 6) != 0) return -1;
  const char* d = b + 6;
  long e = 0;
  int nd = 0;
  for (; *d >= '0' && *d <= '9' && nd < 12; d++, nd++) e = e * 10 + (*d - '0');
  return nd > 0 && strcmp(d, ".npz") == 0 ? e : -1;
}

static int cmp_long(const void* a, const void* b) {
  long x = *(const long*)a, y = *(const long*)b;
  return (x > y) - (x < y);
}

/* The epochs of run's epoch-end checkpoints, sorted; their count. */
static int list_epochs(const char* run, long** out) {
  *out = NULL;
  DIR* d = opendir(run);
  if (!d) return 0;
  int n = 0, cap = 0;
  struct dirent* e;
  while ((e = readdir(d))) {
    long ep = name_epoch(e->d_name);
    if (ep < 0) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 16;
      *out = (long*)realloc(*out, (size_t)cap * sizeof **out);
      if (!*out) mbpo_fatal("out of memory");
    }
    (*out)[n++] = ep;
  }
  closedir(d);
  if (n) qsort(*out, (size_t)n, sizeof **out, cmp_long);
  return n;
}

/* "0, 2, 5" (cut to fit) */
static void epochs_text(const long* e, int n, char* out, int len) {
  int used = 0;
  out[0] = '\0';
  for (int i = 0; i < n && used < len; i++)
    used += snprintf(out + used, (size_t)(len - used), "%s%ld", i ? ", " : "", e[i]);
  if (!n) mbpo_fmt(out, len, "none");
}

static const char g_ckpt_hint[] =
    "training writes ckpt-e<epoch>.npz every `checkpoint.every` epochs and at the end, and keeps the last "
    "`checkpoint.keep` (e.g. mbpo train ... checkpoint.every=1 checkpoint.keep=1000)";

/* The rows of the last fit of c's model, from the run's model_train.csv (fit index = fits - 1). */
static void fit_rows(const char* run, analyze_ckpt* c) {
  char path[4400], err[4600];
  mbpo_fmt(path, sizeof path, "%s/model_train.csv", run);
  double *f1 = NULL, *tr = NULL, *f2 = NULL, *ho = NULL;
  int n1 = 0, n2 = 0;
  c->fit_rows = c->real_rows;
  c->train_rows = -1;
  if (csv_read_xy(path, "fit", "n_train", &f1, &tr, &n1, err, sizeof err) == 0 &&
      csv_read_xy(path, "fit", "n_holdout", &f2, &ho, &n2, err, sizeof err) == 0) {
    for (int i = 0; i < n1 && i < n2; i++)
      if (f1[i] == (double)(c->p.fits - 1) && f2[i] == f1[i]) {
        c->train_rows = (long)tr[i];
        c->fit_rows = (long)(tr[i] + ho[i]);
      }
  }
  free(f1), free(tr), free(f2), free(ho);
}

int analyze_load_ckpts(const char* cmd, const char* run, const char* list, int need_model, int min_count,
                       analyze_ckpt** out) {
  char err[9000];
  struct stat st;
  if (stat(run, &st) != 0 || !S_ISDIR(st.st_mode)) mbpo_fatal("%s: %s is not a run folder (no such folder)", cmd, run);
  long* have = NULL;
  int nhave = list_epochs(run, &have);
  char have_text[1024];
  epochs_text(have, nhave, have_text, sizeof have_text);
  /* the files to load */
  int n = 0, cap = nhave + 1;
  char** files = NULL;
  if (list) {
    cap = 1;
    for (const char* s = list; *s; s++) cap += *s == ',';
  }
  files = (char**)calloc((size_t)cap, sizeof *files);
  if (!files) mbpo_fatal("out of memory");
  if (!list) {
    if (nhave == 0)
      mbpo_fatal("%s: %s has no epoch-end checkpoint (ckpt-e<epoch>.npz): %s", cmd, run, g_ckpt_hint);
    for (int i = 0; i < nhave; i++) {
      files[n] = (char*)malloc(4400);
      if (!files[n]) mbpo_fatal("out of memory");
      mbpo_fmt(files[n++], 4400, "%s/ckpt-e%06ld.npz", run, have[i]);
    }
  } else {
    const char* s = list;
    while (*s) {
      size_t l = strcspn(s, ",");
      char item[4096];
      snprintf(item, sizeof item, "%.*s", (int)(l < sizeof item - 1 ? l : sizeof item - 1), s);
      s += l + (s[l] == ',');
      if (!item[0]) mbpo_fatal("%s: checkpoints=%s has an empty entry", cmd, list);
      files[n] = (char*)malloc(4400);
      if (!files[n]) mbpo_fatal("out of memory");
      char* end;
      long ep = strtol(item, &end, 10);
      if (*end == '\0' && ep >= 0) {
        mbpo_fmt(files[n], 4400, "%s/ckpt-e%06ld.npz", run, ep);
        if (stat(files[n], &st) != 0)
          mbpo_fatal("%s: %s has no checkpoint of epoch %ld (ckpt-e%06ld.npz); its epoch-end checkpoints: %s. %s", cmd,
                     run, ep, ep, have_text, g_ckpt_hint);
      } else {
        mbpo_fmt(files[n], 4400, "%s", item);
      }
      n++;
    }
  }
  analyze_ckpt* c = (analyze_ckpt*)calloc((size_t)(n > 0 ? n : 1), sizeof *c);
  if (!c) mbpo_fatal("out of memory");
  int k = 0, skipped = 0;
  for (int i = 0; i < n; i++) {
    analyze_ckpt* x = &c[k];
    if (run_policy_load(run, files[i], &x->p, err, sizeof err) != 0) mbpo_fatal("%s: %s", cmd, err);
    long ep = name_epoch(files[i]);
    x->epoch = ep >= 0 ? ep : x->p.epoch;
    x->real_rows = -1;
    if (need_model && !mbpo_fits_model(&x->p.cfg))
      mbpo_fatal("%s: %s trained with sac.real_ratio = 1 (SAC on real data only, the no-model ablation): it "
                 "fits no model, so there is no model to analyse", cmd, run);
    if (need_model && !list && x->p.fits <= 0) {
      /* the run's own list: one written before the first fit holds no model to analyse */
      mbpo_note("%s: leaving out %s (written before the first model fit)", cmd, files[i]);
      run_policy_free(&x->p);
      skipped++;
      free(files[i]);
      continue;
    }
    if (need_model) {
      x->model = run_policy_load_model(&x->p, &x->real_rows, err, sizeof err);
      if (!x->model) mbpo_fatal("%s: %s; analyse checkpoints written after the first model fit", cmd, err);
      fit_rows(run, x);
    }
    k++;
    free(files[i]);
  }
  free(files);
  if (k < min_count)
    mbpo_fatal("%s needs at least %d checkpoint%s%s; %s gives %d (its epoch-end checkpoints: %s%s). %s", cmd,
               min_count, min_count == 1 ? "" : "s", need_model ? " with a fitted model" : "",
               list ? "checkpoints=" : run, k, have_text, skipped ? ", those before the first model fit left out" : "",
               g_ckpt_hint);
  n = k;
  free(have);
  /* by epoch (a list may name them in any order) */
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && c[j - 1].p.env_steps > c[j].p.env_steps; j--) {
      analyze_ckpt t = c[j];
      c[j] = c[j - 1];
      c[j - 1] = t;
    }
  *out = c;
  return n;
}

void analyze_free_ckpts(analyze_ckpt* c, int n) {
  for (int i = 0; c && i < n; i++) {
    model_free(c[i].model);
    run_policy_free(&c[i].p);
  }
  free(c);
}

/* ---- fresh transitions -------------------------------------------------------------------- */

void analyze_rows_alloc(analyze_rows* r, int n, int obs_dim, int act_dim) {
  r->n = n;
  r->obs_dim = obs_dim;
  r->act_dim = act_dim;
  r->obs = (float*)malloc((size_t)n * obs_dim * sizeof(float));
  r->next_obs = (float*)malloc((size_t)n * obs_dim * sizeof(float));
  r->act = (float*)malloc((size_t)n * act_dim * sizeof(float));
  r->rew = (float*)malloc((size_t)n * sizeof(float));
  if (!r->obs || !r->next_obs || !r->act || !r->rew) mbpo_fatal("out of memory (%d transitions)", n);
}

void analyze_collect(const analyze_ckpt* c, const mjModel* m, uint32_t seed, analyze_rows* out) {
  const env_task* task = c->p.task;
  const int od = task->obs_dim, ad = task->act_dim, n = out->n;
  if (out->obs_dim != od || out->act_dim != ad) mbpo_fatal("analyze_collect: rows of other sizes");
  env* e = env_create(task, m, (rng_key){seed, RNG_ANALYZE}, analyze_c0(ANALYZE_C_GEN_RESET, c->epoch));
  const rng_key ak = {seed, RNG_ANALYZE};
  const uint32_t c0 = analyze_c0(ANALYZE_C_GEN_ACT, c->epoch);
  float obs[ENV_MAX_OBS];
  env_reset(e, obs);
  for (int i = 0; i < n; i++) {
    float* a = out->act + (size_t)i * ad;
    float* s2 = out->next_obs + (size_t)i * od;
    memcpy(out->obs + (size_t)i * od, obs, (size_t)od * sizeof(float));
    sac_act(c->p.agent, obs, 1, 0, ak, c0, (uint32_t)i, a);
    double r;
    int term, trunc;
    env_step(e, a, s2, &r, &term, &trunc);
    out->rew[i] = (float)r;
    memcpy(obs, s2, (size_t)od * sizeof(float));
    if (term || trunc || e->t >= c->p.cfg.max_path_length) env_reset(e, obs);
  }
  env_destroy(e);
}

void analyze_rows_free(analyze_rows* r) {
  free(r->obs);
  free(r->act);
  free(r->rew);
  free(r->next_obs);
  memset(r, 0, sizeof *r);
}

void analyze_out_dir(const char* run, const char* dir, char* out, int n) {
  if (dir) mbpo_fmt(out, n, "%s", dir);
  else mbpo_fmt(out, n, "%s/analysis", run);
  if (mkdir(out, 0777) != 0 && errno != EEXIST) mbpo_fatal("cannot make the folder %s: %s", out, strerror(errno));
}
