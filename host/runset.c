/* runset.c: run folders loaded, grouped by setting, with mean ± std curves (runset.h). */
#include "runset.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "csv.h"
#include "log.h"

/* ---- run folders -------------------------------------------------------------------------- */

static int is_file(const char* dir, const char* name) {
  char p[4200];
  struct stat sb;
  mbpo_fmt(p, sizeof p, "%s/%s", dir, name);
  return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

int runset_is_run_folder(const char* dir) {
  return is_file(dir, "config.ini") && is_file(dir, "progress.csv");
}

int runset_load_run(const char* dir, const char* xcol, const char* ycol, runset_run* r, char* err,
                    int errlen) {
  memset(r, 0, sizeof *r);
  struct stat sb;
  if (stat(dir, &sb) != 0) {
    mbpo_fmt(err, errlen, "%s: %s", dir, strerror(errno));
    return -1;
  }
  if (!S_ISDIR(sb.st_mode)) {
    mbpo_fmt(err, errlen, "%s is not a run folder (not a folder)", dir);
    return -1;
  }
  int has_ini = is_file(dir, "config.ini"), has_csv = is_file(dir, "progress.csv");
  if (!has_ini || !has_csv) {
    mbpo_fmt(err, errlen, "%s is not a run folder (it has no %s)", dir,
             !has_ini && !has_csv ? "config.ini and no progress.csv"
             : !has_ini           ? "config.ini"
                                  : "progress.csv");
    return -1;
  }
  snprintf(r->path, sizeof r->path, "%s", dir);
  size_t l = strlen(r->path);
  while (l > 1 && r->path[l - 1] == '/') r->path[--l] = '\0';
  char p[4200], msg[1024];
  snprintf(p, sizeof p, "%s/config.ini", r->path);
  cfg_defaults(&r->cfg);
  if (cfg_load_ini(&r->cfg, p, msg, sizeof msg) != 0) {
    mbpo_fmt(err, errlen, "run %s: %s", r->path, msg);
    return -1;
  }
  snprintf(p, sizeof p, "%s/progress.csv", r->path);
  if (csv_read_xy(p, xcol, ycol, &r->x, &r->y, &r->n, err, errlen) != 0) return -1;
  return 0;
}

int runset_same_setting(const mbpo_config* a, const mbpo_config* b) {
  mbpo_config p = *a, q = *b;
  p.seed = q.seed = 0;
  p.tag[0] = q.tag[0] = '\0';
  p.run_dir[0] = q.run_dir[0] = '\0';
  p.device = q.device = 0; /* where it ran, not what ran */
  p.threads = q.threads = 0;
  return cfg_equal(&p, &q);
}

/* ---- groups ------------------------------------------------------------------------------- */

static int cmp_double(const void* a, const void* b) {
  double p = *(const double*)a, q = *(const double*)b;
  return p < q ? -1 : p > q;
}

/* y of run r at x (x within the run's range), walking forward from *j (grid x ascending). */
static double run_at(const runset_run* r, double x, int* j) {
  while (*j + 1 < r->n && r->x[*j + 1] <= x) (*j)++;
  if (r->x[*j] == x || *j + 1 >= r->n) return r->y[*j];
  double x0 = r->x[*j], x1 = r->x[*j + 1], t = (x - x0) / (x1 - x0);
  return r->y[*j] + t * (r->y[*j + 1] - r->y[*j]);
}

/* The common grid of g's runs and mean/std on it. */
static void group_stats(const runset* s, runset_group* g) {
  double lo = -INFINITY, hi = INFINITY;
  size_t total = 0;
  for (int k = 0; k < g->nruns; k++) {
    const runset_run* r = &s->runs[g->runs[k]];
    if (r->x[0] > lo) lo = r->x[0];
    if (r->x[r->n - 1] < hi) hi = r->x[r->n - 1];
    total += (size_t)r->n;
  }
  g->n = 0;
  if (lo > hi) return;
  double* xs = (double*)malloc(sizeof(double) * total);
  if (!xs) mbpo_fatal("out of memory");
  size_t m = 0;
  for (int k = 0; k < g->nruns; k++) {
    const runset_run* r = &s->runs[g->runs[k]];
    for (int i = 0; i < r->n; i++)
      if (r->x[i] >= lo && r->x[i] <= hi) xs[m++] = r->x[i];
  }
  qsort(xs, m, sizeof *xs, cmp_double);
  size_t u = 0;
  for (size_t i = 0; i < m; i++)
    if (u == 0 || xs[i] != xs[u - 1]) xs[u++] = xs[i];
  g->x = xs;
  g->n = (int)u;
  g->mean = (double*)malloc(sizeof(double) * (u ? u : 1));
  g->std = (double*)malloc(sizeof(double) * (u ? u : 1));
  int* at = (int*)calloc((size_t)g->nruns, sizeof(int));
  double* v = (double*)malloc(sizeof(double) * (size_t)g->nruns);
  if (!g->mean || !g->std || !at || !v) mbpo_fatal("out of memory");
  for (size_t i = 0; i < u; i++) {
    double sum = 0;
    for (int k = 0; k < g->nruns; k++) {
      v[k] = run_at(&s->runs[g->runs[k]], xs[i], &at[k]);
      sum += v[k];
    }
    double mean = sum / g->nruns, ss = 0;
    for (int k = 0; k < g->nruns; k++) ss += (v[k] - mean) * (v[k] - mean);
    g->mean[i] = mean;
    g->std[i] = sqrt(ss / g->nruns);
  }
  free(at);
  free(v);
}

/* Keys that never name a group in a label: the task leads the label anyway; the rest are not part
 * of the setting (runset_same_setting). */
static int skip_key(const char* key) {
  return strcmp(key, "task") == 0 || strcmp(key, "seed") == 0 || strcmp(key, "tag") == 0 ||
         strcmp(key, "run_dir") == 0 || strcmp(key, "device") == 0 || strcmp(key, "threads") == 0;
}

/* Append text to buf (size n), keeping it terminated. */
static void cat(char* buf, size_t n, const char* text) {
  size_t l = strlen(buf), t = strlen(text);
  if (l + 1 >= n) return;
  if (t > n - 1 - l) t = n - 1 - l;
  memcpy(buf + l, text, t);
  buf[l + t] = '\0';
}

/* The tags of g's runs: "mbpo", or "a/b" when they differ. */
static void group_tags(const runset* s, const runset_group* g, char* out, size_t n) {
  out[0] = '\0';
  for (int k = 0; k < g->nruns; k++) {
    const char* t = s->runs[g->runs[k]].cfg.tag;
    int seen = 0;
    for (int j = 0; j < k; j++) seen |= strcmp(s->runs[g->runs[j]].cfg.tag, t) == 0;
    if (seen) continue;
    if (out[0]) cat(out, n, "/");
    cat(out, n, t);
  }
}

#define RUNSET_LABEL_KEYS 3

static const mbpo_config* group_cfg(const runset* s, int g) {
  return &s->runs[s->groups[g].runs[0]].cfg;
}

/* Labels: the task, then the settings whose values differ between the groups of that task (up to
 * RUNSET_LABEL_KEYS of them; when more differ and the tags tell the groups apart, the tag instead);
 * a task with one group gets its tag. Then the number of runs. */
static void group_labels(runset* s) {
  int nd = cfg_count();
  int* differ = (int*)calloc((size_t)nd, sizeof(int));
  if (!differ) mbpo_fatal("out of memory");
  char a[1024], b[1024], ta[CFG_STR_MAX * 4], tb[CFG_STR_MAX * 4];
  for (int g = 0; g < s->ngroups; g++) {
    runset_group* G = &s->groups[g];
    const mbpo_config* c = group_cfg(s, g);
    int ndiffer = 0, tags_name = 1;
    group_tags(s, G, ta, sizeof ta);
    if (strchr(ta, '/')) tags_name = 0;
    for (int h = 0; h < s->ngroups; h++) {
      if (h == g || strcmp(group_cfg(s, h)->task, c->task) != 0) continue;
      group_tags(s, &s->groups[h], tb, sizeof tb);
      if (strcmp(ta, tb) == 0) tags_name = 0;
    }
    for (int i = 0; i < nd; i++) {
      const cfg_desc* d = cfg_at(i);
      differ[i] = 0;
      if (skip_key(d->key)) continue;
      int first = -1;
      for (int h = 0; h < s->ngroups && !differ[i]; h++) {
        if (strcmp(group_cfg(s, h)->task, c->task) != 0) continue;
        if (first < 0) {
          first = h;
          cfg_format_value(group_cfg(s, h), d, a, sizeof a);
          continue;
        }
        cfg_format_value(group_cfg(s, h), d, b, sizeof b);
        if (strcmp(a, b) != 0) differ[i] = 1;
      }
      ndiffer += differ[i];
    }
    snprintf(G->label, sizeof G->label, "%s", c->task);
    if (ndiffer == 0 || (ndiffer > RUNSET_LABEL_KEYS && tags_name)) {
      cat(G->label, sizeof G->label, " ");
      cat(G->label, sizeof G->label, ta);
    } else {
      int shown = 0;
      for (int i = 0; i < nd && shown < RUNSET_LABEL_KEYS; i++) {
        if (!differ[i]) continue;
        const cfg_desc* d = cfg_at(i);
        cfg_format_value(c, d, a, sizeof a);
        cat(G->label, sizeof G->label, " ");
        cat(G->label, sizeof G->label, d->key);
        cat(G->label, sizeof G->label, "=");
        cat(G->label, sizeof G->label, a[0] ? a : "\"\"");
        shown++;
      }
      if (ndiffer > shown) {
        char more[64];
        snprintf(more, sizeof more, " (+%d more)", ndiffer - shown);
        cat(G->label, sizeof G->label, more);
      }
    }
    char nr[64];
    snprintf(nr, sizeof nr, " (%d run%s)", G->nruns, G->nruns == 1 ? "" : "s");
    cat(G->label, sizeof G->label, nr);
  }
  free(differ);
}

static void free_groups(runset* s) {
  for (int g = 0; g < s->ngroups; g++) {
    free(s->groups[g].runs);
    free(s->groups[g].x);
    free(s->groups[g].mean);
    free(s->groups[g].std);
  }
  free(s->groups);
  s->groups = NULL;
  s->ngroups = 0;
}

int runset_group_runs(runset* s) {
  free_groups(s);
  s->groups = (runset_group*)calloc((size_t)(s->nruns ? s->nruns : 1), sizeof(runset_group));
  if (!s->groups) mbpo_fatal("out of memory");
  for (int i = 0; i < s->nruns; i++) {
    if (s->runs[i].n <= 0) continue;
    int g = 0;
    while (g < s->ngroups &&
           !runset_same_setting(&s->runs[s->groups[g].runs[0]].cfg, &s->runs[i].cfg))
      g++;
    runset_group* G = &s->groups[g];
    if (g == s->ngroups) {
      s->ngroups++;
      G->runs = (int*)malloc(sizeof(int) * (size_t)s->nruns);
      if (!G->runs) mbpo_fatal("out of memory");
    }
    G->runs[G->nruns++] = i;
  }
  for (int g = 0; g < s->ngroups; g++) group_stats(s, &s->groups[g]);
  if (s->ngroups > 0) group_labels(s);
  return s->ngroups;
}

void runset_free(runset* s) {
  free_groups(s);
  for (int i = 0; i < s->nruns; i++) {
    free(s->runs[i].x);
    free(s->runs[i].y);
  }
  free(s->runs);
  memset(s, 0, sizeof *s);
}

static int cmp_str(const void* a, const void* b) {
  return strcmp(*(char* const*)a, *(char* const*)b);
}

/* The run folders in dir (its immediate subfolders that are run folders), sorted by name. */
static int list_runs(const char* dir, char*** out) {
  *out = NULL;
  DIR* d = opendir(dir);
  if (!d) return 0;
  int n = 0, cap = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat sb;
    if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode) || !runset_is_run_folder(p)) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 16;
      char** nl = (char**)realloc(*out, sizeof(char*) * (size_t)cap);
      if (!nl) mbpo_fatal("out of memory");
      *out = nl;
    }
    (*out)[n] = strdup(p);
    if (!(*out)[n]) mbpo_fatal("out of memory");
    n++;
  }
  closedir(d);
  if (n > 1) qsort(*out, (size_t)n, sizeof(char*), cmp_str);
  return n;
}

/* Load one run folder into s (unless already there). 0 or -1 with err. */
static int add_run(runset* s, int* cap, char*** real, const char* dir, char* err, int errlen) {
  char rp[PATH_MAX];
  if (!realpath(dir, rp)) snprintf(rp, sizeof rp, "%s", dir);
  for (int i = 0; i < s->nruns; i++)
    if (strcmp((*real)[i], rp) == 0) {
      mbpo_warn("%s is named more than once; it counts once", dir);
      return 0;
    }
  if (s->nruns == *cap) {
    *cap = *cap ? 2 * *cap : 16;
    runset_run* nr = (runset_run*)realloc(s->runs, sizeof(runset_run) * (size_t)*cap);
    char** np = (char**)realloc(*real, sizeof(char*) * (size_t)*cap);
    if (!nr || !np) mbpo_fatal("out of memory");
    s->runs = nr;
    *real = np;
  }
  runset_run* r = &s->runs[s->nruns];
  if (runset_load_run(dir, s->xcol, s->ycol, r, err, errlen) != 0) {
    free(r->x);
    free(r->y);
    return -1;
  }
  if (r->n == 0) {
    mbpo_warn("run %s has no %s values yet; left out", r->path, s->ycol);
    return 0;
  }
  (*real)[s->nruns] = strdup(rp);
  if (!(*real)[s->nruns]) mbpo_fatal("out of memory");
  s->nruns++;
  return 0;
}

int runset_load(runset* s, int npaths, char* const* paths, const char* xcol, const char* ycol,
                char* err, int errlen) {
  memset(s, 0, sizeof *s);
  snprintf(s->xcol, sizeof s->xcol, "%s", xcol ? xcol : "env_steps");
  snprintf(s->ycol, sizeof s->ycol, "%s", ycol ? ycol : "eval_return_mean");
  if (npaths <= 0) {
    mbpo_fmt(err, errlen, "no runs given: name run folders or a folder of run folders");
    return -1;
  }
  int cap = 0, rc = 0, seen = 0;
  char** real = NULL;
  for (int i = 0; i < npaths && rc == 0; i++) {
    const char* p = paths[i];
    struct stat sb;
    if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode) && !is_file(p, "config.ini") &&
        !is_file(p, "progress.csv")) {
      char** list;
      int n = list_runs(p, &list);
      if (n == 0) {
        mbpo_fmt(err, errlen,
                 "%s is not a run folder (no config.ini and progress.csv) and holds no run folders",
                 p);
        rc = -1;
      }
      for (int k = 0; k < n; k++) {
        if (rc == 0) rc = add_run(s, &cap, &real, list[k], err, errlen);
        free(list[k]);
      }
      free(list);
      seen += n;
    } else {
      rc = add_run(s, &cap, &real, p, err, errlen);
      seen++;
    }
  }
  for (int i = 0; i < s->nruns; i++) free(real[i]);
  free(real);
  if (rc == 0 && s->nruns == 0) {
    mbpo_fmt(err, errlen, "no data: none of the %d run%s has %s values", seen, seen == 1 ? "" : "s",
             s->ycol);
    rc = -1;
  }
  if (rc == 0) {
    runset_group_runs(s);
    int with_data = 0;
    for (int g = 0; g < s->ngroups; g++) {
      if (s->groups[g].n > 0) with_data++;
      else
        mbpo_warn("group %s: its runs share no %s range; left out", s->groups[g].label, s->xcol);
    }
    if (with_data == 0) {
      mbpo_fmt(err, errlen, "no data: no group's runs share a %s range", s->xcol);
      rc = -1;
    }
  }
  if (rc != 0) runset_free(s);
  return rc;
}
