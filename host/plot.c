/* plot.c: `mbpo plot`: learning curves of run folders, grouped by setting (plot.h). */
#include "plot.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"

const char plot_help[] =
    "Plot the learning curves of runs: y (default eval_return_mean) against x (default env_steps)\n"
    "from each run folder's progress.csv. A RUN is a run folder (holding config.ini and\n"
    "progress.csv) or a folder of run folders (such as run_dir: each run folder in it counts).\n"
    "Runs form one group when their config.ini settings are equal except seed, tag, run_dir and\n"
    "where they ran (device, threads). Each group is drawn as the mean across its runs with a\n"
    "shaded mean ± std band (population std). The runs of a group are put on a common grid: the\n"
    "union of their x values within the range every run covers, a run's y interpolated linearly\n"
    "where it did not log that x (runs of one setting log the same x values, so usually nothing is\n"
    "interpolated; a shorter run cuts the group's curve at its last epoch). Empty values are\n"
    "skipped. The legend names a group by its task and the settings that differ between the\n"
    "groups of that task (or its tag).\n"
    "\n"
    "  -o, --output FILE   write an image: FILE.png (pngcairo, else png terminal) or FILE.svg;\n"
    "                      without -o and --text the image is curves.png\n"
    "  --x COLUMN          x column: env_steps (default; training steps after exploration),\n"
    "                      total_env_steps (with the exploration steps), epoch, ...\n"
    "  --y COLUMN          y column: eval_return_mean (default) or any other progress.csv column\n"
    "  --text              print a text plot on stdout (as well as the image when -o is given)\n"
    "\n"
    "Images need gnuplot on PATH (apt-get install gnuplot-nox). Without it, mbpo plot prints a\n"
    "text plot (a character grid, the legend and each group's last x with mean ± std) and a note;\n"
    "it exits 0, except that with -o (a file was asked for and could not be made) it exits 1.\n"
    "Exit status: 0 done; 1 a bad run folder or file, no data, gnuplot missing or failed for -o;\n"
    "2 bad arguments (no RUN, unknown option).\n"
    "Example: mbpo plot runs/hopper-mbpo-s0 runs/hopper-mbpo-s1 runs/hopper-lr-s0 -o hopper.svg\n\n";

/* ---- CSV ---------------------------------------------------------------------------------- */

/* Split line (modified in place) at commas into fields: surrounding blanks dropped, a double-quoted
 * field unquoted ("" inside is a quote). *fields grows as needed. Returns the field count. */
static int csv_split(char* line, char*** fields, int* cap) {
  int n = 0;
  char* p = line;
  for (;;) {
    while (*p == ' ' || *p == '\t') p++;
    char *start = p, *end;
    if (*p == '"') {
      char* w = p++;
      while (*p) {
        if (*p == '"') {
          if (p[1] == '"') {
            *w++ = '"';
            p += 2;
            continue;
          }
          p++;
          break;
        }
        *w++ = *p++;
      }
      end = w;
      while (*p && *p != ',') p++; /* anything after the closing quote is dropped */
    } else {
      while (*p && *p != ',') p++;
      end = p;
      while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
    }
    char sep = *p;
    *end = '\0';
    if (n == *cap) {
      int nc = *cap ? 2 * *cap : 64;
      char** nf = (char**)realloc(*fields, sizeof(char*) * (size_t)nc);
      if (!nf) mbpo_fatal("out of memory");
      *fields = nf;
      *cap = nc;
    }
    (*fields)[n++] = start;
    if (sep != ',') break;
    p++; /* past the comma (which *end = '\0' may have overwritten) */
  }
  return n;
}

/* A finite number filling the whole field, or NAN. */
static double csv_number(const char* s) {
  if (!s || !*s) return NAN;
  char* e;
  errno = 0;
  double v = strtod(s, &e);
  if (e == s || *e || !isfinite(v)) return NAN;
  return v;
}

/* Drop a line's end (\n, \r\n); returns 1 when the line had a \n. */
static int chomp(char* s, ssize_t* len) {
  int nl = 0;
  if (*len > 0 && s[*len - 1] == '\n') {
    s[--*len] = '\0';
    nl = 1;
  }
  if (*len > 0 && s[*len - 1] == '\r') s[--*len] = '\0';
  return nl;
}

typedef struct xy {
  double x, y;
  long row;
} xy;

static int cmp_xy(const void* a, const void* b) {
  const xy *p = (const xy*)a, *q = (const xy*)b;
  if (p->x != q->x) return p->x < q->x ? -1 : 1;
  return p->row < q->row ? -1 : p->row > q->row;
}

int plot_read_csv(const char* path, const char* xcol, const char* ycol, double** xo, double** yo,
                  int* no, char* err, int errlen) {
  *xo = *yo = NULL;
  *no = 0;
  FILE* f = fopen(path, "r");
  if (!f) {
    mbpo_fmt(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  char* line = NULL;
  size_t lcap = 0;
  char** fields = NULL;
  int fcap = 0, ncol = 0, xi = -1, yi = -1, rc = -1;
  xy* pts = NULL;
  long npts = 0, pcap = 0, row = 0;
  ssize_t len;
  /* the header: the first line that is not blank */
  while ((len = getline(&line, &lcap, f)) >= 0) {
    row++;
    chomp(line, &len);
    char* h = line;
    if (row == 1 && (unsigned char)h[0] == 0xEF && (unsigned char)h[1] == 0xBB &&
        (unsigned char)h[2] == 0xBF)
      h += 3;
    if (strspn(h, " \t") == strlen(h)) continue;
    ncol = csv_split(h, &fields, &fcap);
    for (int i = 0; i < ncol; i++) {
      if (xi < 0 && strcmp(fields[i], xcol) == 0) xi = i;
      if (yi < 0 && strcmp(fields[i], ycol) == 0) yi = i;
    }
    if (xi < 0 || yi < 0) {
      char have[1024] = "";
      size_t used = 0;
      for (int i = 0; i < ncol && used + 4 < sizeof have; i++) {
        int w = snprintf(have + used, sizeof have - used, "%s%s", i ? ", " : "", fields[i]);
        if (w < 0) break;
        used += (size_t)w < sizeof have - used ? (size_t)w : sizeof have - used - 1;
      }
      mbpo_fmt(err, errlen, "%s has no column '%s' (its columns: %s)", path, xi < 0 ? xcol : ycol,
               have);
      goto done;
    }
    break;
  }
  if (ferror(f)) {
    mbpo_fmt(err, errlen, "cannot read %s: %s", path, strerror(errno));
    goto done;
  }
  if (ncol == 0) {
    mbpo_fmt(err, errlen, "%s is empty (no header line)", path);
    goto done;
  }
  while ((len = getline(&line, &lcap, f)) >= 0) {
    row++;
    int nl = chomp(line, &len);
    int nf = csv_split(line, &fields, &fcap);
    if (!nl && nf < ncol) continue; /* a last line still being written */
    double x = csv_number(xi < nf ? fields[xi] : NULL), y = csv_number(yi < nf ? fields[yi] : NULL);
    if (isnan(x) || isnan(y)) continue; /* not available */
    if (npts == pcap) {
      pcap = pcap ? 2 * pcap : 256;
      xy* np = (xy*)realloc(pts, sizeof(xy) * (size_t)pcap);
      if (!np) mbpo_fatal("out of memory");
      pts = np;
    }
    pts[npts++] = (xy){x, y, row};
  }
  if (ferror(f)) {
    mbpo_fmt(err, errlen, "cannot read %s: %s", path, strerror(errno));
    goto done;
  }
  if (npts > INT_MAX / 2) {
    mbpo_fmt(err, errlen, "%s: too many rows", path);
    goto done;
  }
  if (npts > 1) qsort(pts, (size_t)npts, sizeof *pts, cmp_xy);
  int n = 0;
  for (long i = 0; i < npts; i++) { /* a repeated x: the last row wins (sorted by row within x) */
    if (n > 0 && pts[n - 1].x == pts[i].x) pts[n - 1] = pts[i];
    else pts[n++] = pts[i];
  }
  if (n > 0) {
    *xo = (double*)malloc(sizeof(double) * (size_t)n);
    *yo = (double*)malloc(sizeof(double) * (size_t)n);
    if (!*xo || !*yo) mbpo_fatal("out of memory");
    for (int i = 0; i < n; i++) {
      (*xo)[i] = pts[i].x;
      (*yo)[i] = pts[i].y;
    }
  }
  *no = n;
  rc = 0;
done:
  free(pts);
  free(fields);
  free(line);
  fclose(f);
  return rc;
}

/* ---- run folders -------------------------------------------------------------------------- */

static int is_file(const char* dir, const char* name) {
  char p[4200];
  struct stat sb;
  mbpo_fmt(p, sizeof p, "%s/%s", dir, name);
  return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

int plot_is_run_folder(const char* dir) {
  return is_file(dir, "config.ini") && is_file(dir, "progress.csv");
}

int plot_load_run(const char* dir, const char* xcol, const char* ycol, plot_run* r, char* err,
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
  if (plot_read_csv(p, xcol, ycol, &r->x, &r->y, &r->n, err, errlen) != 0) return -1;
  return 0;
}

int plot_same_setting(const mbpo_config* a, const mbpo_config* b) {
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
static double run_at(const plot_run* r, double x, int* j) {
  while (*j + 1 < r->n && r->x[*j + 1] <= x) (*j)++;
  if (r->x[*j] == x || *j + 1 >= r->n) return r->y[*j];
  double x0 = r->x[*j], x1 = r->x[*j + 1], t = (x - x0) / (x1 - x0);
  return r->y[*j] + t * (r->y[*j + 1] - r->y[*j]);
}

/* The common grid of g's runs and mean/std on it. */
static void group_stats(const plot_set* s, plot_group* g) {
  double lo = -INFINITY, hi = INFINITY;
  size_t total = 0;
  for (int k = 0; k < g->nruns; k++) {
    const plot_run* r = &s->runs[g->runs[k]];
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
    const plot_run* r = &s->runs[g->runs[k]];
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
 * of the setting (plot_same_setting). */
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
static void group_tags(const plot_set* s, const plot_group* g, char* out, size_t n) {
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

#define PLOT_LABEL_KEYS 3

static const mbpo_config* group_cfg(const plot_set* s, int g) {
  return &s->runs[s->groups[g].runs[0]].cfg;
}

/* Labels: the task, then the settings whose values differ between the groups of that task (up to
 * PLOT_LABEL_KEYS of them; when more differ and the tags tell the groups apart, the tag instead);
 * a task with one group gets its tag. Then the number of runs. */
static void group_labels(plot_set* s) {
  int nd = cfg_count();
  int* differ = (int*)calloc((size_t)nd, sizeof(int));
  if (!differ) mbpo_fatal("out of memory");
  char a[1024], b[1024], ta[CFG_STR_MAX * 4], tb[CFG_STR_MAX * 4];
  for (int g = 0; g < s->ngroups; g++) {
    plot_group* G = &s->groups[g];
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
    if (ndiffer == 0 || (ndiffer > PLOT_LABEL_KEYS && tags_name)) {
      cat(G->label, sizeof G->label, " ");
      cat(G->label, sizeof G->label, ta);
    } else {
      int shown = 0;
      for (int i = 0; i < nd && shown < PLOT_LABEL_KEYS; i++) {
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

static void free_groups(plot_set* s) {
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

int plot_group_runs(plot_set* s) {
  free_groups(s);
  s->groups = (plot_group*)calloc((size_t)(s->nruns ? s->nruns : 1), sizeof(plot_group));
  if (!s->groups) mbpo_fatal("out of memory");
  for (int i = 0; i < s->nruns; i++) {
    if (s->runs[i].n <= 0) continue;
    int g = 0;
    while (g < s->ngroups && !plot_same_setting(&s->runs[s->groups[g].runs[0]].cfg, &s->runs[i].cfg))
      g++;
    plot_group* G = &s->groups[g];
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

void plot_free(plot_set* s) {
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
    if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode) || !plot_is_run_folder(p)) continue;
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
static int add_run(plot_set* s, int* cap, char*** real, const char* dir, char* err, int errlen) {
  char rp[PATH_MAX];
  if (!realpath(dir, rp)) snprintf(rp, sizeof rp, "%s", dir);
  for (int i = 0; i < s->nruns; i++)
    if (strcmp((*real)[i], rp) == 0) {
      mbpo_warn("%s is named more than once; it counts once", dir);
      return 0;
    }
  if (s->nruns == *cap) {
    *cap = *cap ? 2 * *cap : 16;
    plot_run* nr = (plot_run*)realloc(s->runs, sizeof(plot_run) * (size_t)*cap);
    char** np = (char**)realloc(*real, sizeof(char*) * (size_t)*cap);
    if (!nr || !np) mbpo_fatal("out of memory");
    s->runs = nr;
    *real = np;
  }
  plot_run* r = &s->runs[s->nruns];
  if (plot_load_run(dir, s->xcol, s->ycol, r, err, errlen) != 0) {
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

int plot_load(plot_set* s, int npaths, char* const* paths, const char* xcol, const char* ycol,
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
    plot_group_runs(s);
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
  if (rc != 0) plot_free(s);
  return rc;
}

/* ---- text output -------------------------------------------------------------------------- */

static const char g_syms[] = "*+ox#@%&=$";
#define NSYMS ((int)(sizeof g_syms - 1))

/* A y value: one decimal from 1 on, else 3 significant digits. */
static void fmt_y(double v, char* buf, size_t n) {
  double a = fabs(v);
  if (a == 0 || (a >= 1 && a < 1e7)) snprintf(buf, n, "%.1f", v);
  else snprintf(buf, n, "%.3g", v);
}

/* An x value: an integer without a fraction, else 4 significant digits. */
static void fmt_x(double v, char* buf, size_t n) {
  if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, n, "%.0f", v);
  else snprintf(buf, n, "%.4g", v);
}

static const char* axis_name(const char* col) {
  if (strcmp(col, "env_steps") == 0) return "env steps";
  if (strcmp(col, "total_env_steps") == 0) return "total env steps";
  if (strcmp(col, "eval_return_mean") == 0) return "evaluation return";
  return col;
}

/* "hopper, walker2d": the tasks of the groups, in order, once each. */
static void tasks_title(const plot_set* s, char* out, size_t n) {
  out[0] = '\0';
  for (int g = 0; g < s->ngroups; g++) {
    const char* t = s->runs[s->groups[g].runs[0]].cfg.task;
    int seen = 0;
    for (int h = 0; h < g; h++) seen |= strcmp(s->runs[s->groups[h].runs[0]].cfg.task, t) == 0;
    if (seen) continue;
    if (out[0]) cat(out, n, ", ");
    cat(out, n, t);
  }
}

void plot_table(const plot_set* s, FILE* f) {
  int wl = 5;
  for (int g = 0; g < s->ngroups; g++) {
    int l = (int)strlen(s->groups[g].label);
    if (l > wl) wl = l;
  }
  char head[96];
  snprintf(head, sizeof head, "last %s", s->xcol);
  int wx = (int)strlen(head);
  fprintf(f, "    %-*s  %*s  %s (mean ± std across runs)\n", wl, "group", wx, head, s->ycol);
  for (int g = 0; g < s->ngroups; g++) {
    const plot_group* G = &s->groups[g];
    if (G->n == 0) {
      fprintf(f, "  %c %-*s  %*s  (no common %s range)\n", g_syms[g % NSYMS], wl, G->label, wx, "-",
              s->xcol);
      continue;
    }
    char xs[64], ms[64], ss[64];
    fmt_x(G->x[G->n - 1], xs, sizeof xs);
    fmt_y(G->mean[G->n - 1], ms, sizeof ms);
    fmt_y(G->std[G->n - 1], ss, sizeof ss);
    fprintf(f, "  %c %-*s  %*s  %s ± %s\n", g_syms[g % NSYMS], wl, G->label, wx, xs, ms, ss);
  }
}

/* Mean of g at x by linear interpolation (x within the group's range). */
static double group_at(const plot_group* g, double x) {
  int lo = 0, hi = g->n - 1;
  if (x <= g->x[0]) return g->mean[0];
  if (x >= g->x[hi]) return g->mean[hi];
  while (hi - lo > 1) {
    int mid = (lo + hi) / 2;
    if (g->x[mid] <= x) lo = mid;
    else hi = mid;
  }
  double t = (x - g->x[lo]) / (g->x[hi] - g->x[lo]);
  return g->mean[lo] + t * (g->mean[hi] - g->mean[lo]);
}

void plot_text(const plot_set* s, FILE* f, int W, int H) {
  if (W < 10) W = 10;
  if (H < 5) H = 5;
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (int g = 0; g < s->ngroups; g++) {
    const plot_group* G = &s->groups[g];
    for (int i = 0; i < G->n; i++) {
      if (G->x[i] < xmin) xmin = G->x[i];
      if (G->x[i] > xmax) xmax = G->x[i];
      if (G->mean[i] < ymin) ymin = G->mean[i];
      if (G->mean[i] > ymax) ymax = G->mean[i];
    }
  }
  char title[1024];
  tasks_title(s, title, sizeof title);
  fprintf(f, "%s: %s (mean across runs) vs %s\n\n", title, axis_name(s->ycol), axis_name(s->xcol));
  if (!(xmin <= xmax)) {
    fprintf(f, "(no data)\n");
    return;
  }
  double x0 = xmin, x1 = xmax, y0 = ymin, y1 = ymax;
  if (x1 == x0) x0 -= 1, x1 += 1;
  if (y1 == y0) {
    double d = fabs(y0) > 0 ? 0.05 * fabs(y0) : 1;
    y0 -= d, y1 += d;
  }
  char* grid = (char*)malloc((size_t)W * (size_t)H);
  if (!grid) mbpo_fatal("out of memory");
  memset(grid, ' ', (size_t)W * (size_t)H);
  for (int g = 0; g < s->ngroups; g++) {
    const plot_group* G = &s->groups[g];
    if (G->n == 0) continue;
    char sym = g_syms[g % NSYMS];
    for (int c = 0; c < W; c++) {
      double x = x0 + (x1 - x0) * c / (W - 1);
      double half = 0.5 * (x1 - x0) / (W - 1);
      if (x < G->x[0] - half || x > G->x[G->n - 1] + half) continue;
      double y = group_at(G, x);
      int r = (int)lround((y1 - y) / (y1 - y0) * (H - 1));
      if (r >= 0 && r < H) grid[r * W + c] = sym;
    }
  }
  char top[64], bot[64], left[64], right[64];
  fmt_y(ymax, top, sizeof top);
  fmt_y(ymin, bot, sizeof bot);
  fmt_x(xmin, left, sizeof left);
  fmt_x(xmax, right, sizeof right);
  int wl = (int)strlen(top) > (int)strlen(bot) ? (int)strlen(top) : (int)strlen(bot);
  if (wl < 6) wl = 6;
  fprintf(f, "%*s\n", wl + 2 + (int)strlen(axis_name(s->ycol)) / 2, axis_name(s->ycol));
  for (int r = 0; r < H; r++) {
    const char* lab = r == 0 ? top : r == H - 1 ? bot : "";
    fprintf(f, "%*s |%.*s\n", wl, lab, W, grid + (size_t)r * (size_t)W);
  }
  fprintf(f, "%*s +", wl, "");
  for (int c = 0; c < W; c++) fputc('-', f);
  fputc('\n', f);
  int gap = W + 1 - (int)strlen(left) - (int)strlen(right);
  if (gap < 1) gap = 1;
  fprintf(f, "%*s  %s%*s%s\n", wl, "", left, gap, "", right);
  const char* xn = axis_name(s->xcol);
  fprintf(f, "%*s  %*s\n\n", wl, "", (W + (int)strlen(xn)) / 2, xn);
  free(grid);
  plot_table(s, f);
}

/* ---- gnuplot ------------------------------------------------------------------------------ */

int plot_have_gnuplot(void) {
  const char* path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  const char* p = path;
  for (;;) {
    const char* e = strchr(p, ':');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    char f[4200];
    if (l == 0) snprintf(f, sizeof f, "./gnuplot");
    else snprintf(f, sizeof f, "%.*s/gnuplot", (int)l, p);
    struct stat sb;
    if (stat(f, &sb) == 0 && S_ISREG(sb.st_mode) && access(f, X_OK) == 0) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

/* s as a gnuplot single-quoted string ('' for a quote). */
static void gp_quote(const char* s, char* out, size_t n) {
  size_t j = 0;
  if (n < 3) {
    if (n) out[0] = '\0';
    return;
  }
  out[j++] = '\'';
  for (; *s && j + 3 < n; s++) {
    if (*s == '\'') out[j++] = '\'';
    if (*s == '\n' || *s == '\r') continue;
    out[j++] = *s;
  }
  out[j++] = '\'';
  out[j] = '\0';
}

/* s as a shell single-quoted word. */
static void sh_quote(const char* s, char* out, size_t n) {
  size_t j = 0;
  if (n < 3) {
    if (n) out[0] = '\0';
    return;
  }
  out[j++] = '\'';
  for (; *s && j + 6 < n; s++) {
    if (*s == '\'') {
      memcpy(out + j, "'\\''", 4);
      j += 4;
    } else out[j++] = *s;
  }
  out[j++] = '\'';
  out[j] = '\0';
}

static int ends_with(const char* s, const char* suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

static const char* const g_colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define NCOLORS ((int)(sizeof g_colors / sizeof g_colors[0]))

int plot_gnuplot(const plot_set* s, const char* out, char* err, int errlen) {
  int svg = ends_with(out, ".svg");
  if (!svg && !ends_with(out, ".png")) {
    mbpo_fmt(err, errlen, "%s: the image must be a .png or .svg file", out);
    return -1;
  }
  char tmpout[4200];
  snprintf(tmpout, sizeof tmpout, "%s.tmp", out);
  FILE* probe = fopen(tmpout, "wb"); /* a clear message for an unwritable place, before gnuplot */
  if (!probe) {
    mbpo_fmt(err, errlen, "cannot write %s: %s", out, strerror(errno));
    return -1;
  }
  fclose(probe);
  const char* tmpdir = getenv("TMPDIR");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/mbpo-plot-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
  if (!mkdtemp(dir)) {
    mbpo_fmt(err, errlen, "cannot make a temporary folder %s: %s", dir, strerror(errno));
    unlink(tmpout);
    return -1;
  }
  char data[4200], script[4200];
  snprintf(data, sizeof data, "%s/curves.dat", dir);
  snprintf(script, sizeof script, "%s/curves.gp", dir);
  int rc = -1;
  FILE* pf = NULL;
  FILE* df = fopen(data, "w");
  FILE* gf = df ? fopen(script, "w") : NULL;
  if (!df || !gf) {
    mbpo_fmt(err, errlen, "cannot write in %s: %s", dir, strerror(errno));
    goto done;
  }
  /* data: one block per group (index g): x mean mean-std mean+std */
  for (int g = 0; g < s->ngroups; g++) {
    const plot_group* G = &s->groups[g];
    fprintf(df, "# %s\n", G->label);
    for (int i = 0; i < G->n; i++)
      fprintf(df, "%.17g %.17g %.17g %.17g\n", G->x[i], G->mean[i], G->mean[i] - G->std[i],
              G->mean[i] + G->std[i]);
    if (G->n == 0) fprintf(df, "nan nan nan nan\n");
    fprintf(df, "\n\n");
  }
  char q[8800], t[2100];
  if (svg) {
    fprintf(gf, "set terminal svg size 960,600 dynamic noenhanced font 'sans,12'\n");
    fprintf(gf, "set object 1 rectangle from screen 0,0 to screen 1,1 behind "
                "fillcolor rgb 'white' fillstyle solid noborder\n");
  } else {
    fprintf(gf, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
                "  set terminal pngcairo size 960,600 noenhanced font 'sans,10'\n"
                "} else {\n"
                "  set terminal png truecolor size 960,600 noenhanced\n"
                "}\n");
  }
  gp_quote(tmpout, q, sizeof q);
  fprintf(gf, "set output %s\n", q);
  tasks_title(s, t, sizeof t);
  gp_quote(t, q, sizeof q);
  fprintf(gf, "set title %s\n", q);
  gp_quote(axis_name(s->xcol), q, sizeof q);
  fprintf(gf, "set xlabel %s\n", q);
  gp_quote(axis_name(s->ycol), q, sizeof q);
  fprintf(gf, "set ylabel %s\n", q);
  fprintf(gf, "set grid\nset key top left Left reverse box opaque\nset style fill transparent solid 0.2 noborder\n");
  gp_quote(data, q, sizeof q);
  fprintf(gf, "plot");
  int first = 1;
  for (int g = 0; g < s->ngroups; g++) {
    const plot_group* G = &s->groups[g];
    if (G->n == 0) continue;
    const char* col = g_colors[g % NCOLORS];
    char lab[1200];
    gp_quote(G->label, lab, sizeof lab);
    fprintf(gf, "%s \\\n  %s index %d using 1:3:4 with filledcurves lc rgb '%s' notitle", first ? "" : ",",
            q, g, col);
    fprintf(gf, ", \\\n  %s index %d using 1:2 with %s lw 2 lc rgb '%s' title %s", q, g,
            G->n > 1 ? "lines" : "points pt 7", col, lab);
    first = 0;
  }
  fprintf(gf, "\nunset output\n");
  int bad = ferror(df) || ferror(gf);
  bad |= fclose(df) != 0;
  bad |= fclose(gf) != 0;
  df = gf = NULL;
  if (bad) {
    mbpo_fmt(err, errlen, "cannot write in %s: %s", dir, strerror(errno));
    goto done;
  }
  char cmd[8900];
  sh_quote(script, q, sizeof q);
  snprintf(cmd, sizeof cmd, "gnuplot %s 2>&1", q);
  fflush(stdout);
  pf = popen(cmd, "r");
  if (!pf) {
    mbpo_fmt(err, errlen, "cannot run gnuplot: %s", strerror(errno));
    goto done;
  }
  char msg[2048];
  size_t len = 0, got;
  char sink[512];
  while ((got = fread(len + 1 < sizeof msg ? msg + len : sink, 1,
                      len + 1 < sizeof msg ? sizeof msg - 1 - len : sizeof sink, pf)) > 0)
    if (len + 1 < sizeof msg) len += got;
  msg[len] = '\0';
  while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' ')) msg[--len] = '\0';
  int st = pclose(pf);
  pf = NULL;
  if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 127)
      mbpo_fmt(err, errlen, "gnuplot could not be started%s%s", len ? ": " : "", msg);
    else
      mbpo_fmt(err, errlen, "gnuplot failed (%s %d)%s%s",
               st != -1 && WIFEXITED(st) ? "exit status" : "signal",
               st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), len ? ": " : "", msg);
    goto done;
  }
  if (len) mbpo_note("gnuplot: %s", msg);
  struct stat sb;
  if (stat(tmpout, &sb) != 0 || sb.st_size == 0) {
    mbpo_fmt(err, errlen, "gnuplot made no image %s", out);
    goto done;
  }
  if (rename(tmpout, out) != 0) {
    mbpo_fmt(err, errlen, "cannot write %s: %s", out, strerror(errno));
    goto done;
  }
  rc = 0;
done:
  if (df) fclose(df);
  if (gf) fclose(gf);
  if (pf) pclose(pf);
  if (rc != 0) unlink(tmpout);
  unlink(data);
  unlink(script);
  rmdir(dir);
  return rc;
}

/* ---- the command -------------------------------------------------------------------------- */

static void plot_usage_line(FILE* f) {
  fprintf(f, "usage: mbpo plot RUN... [-o FILE.png|FILE.svg] [--x COLUMN] [--y COLUMN] [--text]\n"
             "`mbpo plot --help` explains them.\n");
}

int cmd_plot(int argc, char** argv) {
  const char *out = NULL, *xcol = "env_steps", *ycol = "eval_return_mean";
  int text = 0, n;
  char** runs;
  const cli_opt opts[] = {{"--text", NULL, NULL, &text},
                          {"-o", "--output", &out, NULL},
                          {"--x", NULL, &xcol, NULL},
                          {"--y", NULL, &ycol, NULL}};
  const int nopts = (int)(sizeof opts / sizeof opts[0]);
  if (cli_parse_opts(argc, argv, opts, nopts, plot_usage_line, &runs, &n) != 0) return 2;
  const char* bad = NULL;
  if (n == 0) bad = "plot needs at least one run folder (or a folder of run folders)";
  else if (!xcol[0] || strlen(xcol) >= 64 || !ycol[0] || strlen(ycol) >= 64)
    bad = "--x and --y need a column name (1 to 63 characters)";
  else if (out && !ends_with(out, ".png") && !ends_with(out, ".svg"))
    bad = "-o needs a file name ending in .png or .svg";
  if (bad) {
    plot_usage_line(stderr);
    fprintf(stderr, "mbpo: error: %s\n", bad);
    free(runs);
    return 2;
  }
  plot_set s;
  char err[4096];
  if (plot_load(&s, n, runs, xcol, ycol, err, sizeof err) != 0) {
    free(runs);
    fprintf(stderr, "mbpo: error: %s\n", err);
    return 1;
  }
  free(runs);
  int have = plot_have_gnuplot(), rc = 0;
  int image = out != NULL || (!text && have);
  if (image && !out) out = "curves.png";
  if (text || !have) plot_text(&s, stdout, 70, 20);
  fflush(stdout);
  if (image && !have) {
    fprintf(stderr, "mbpo: error: cannot write %s: gnuplot is not on PATH; install it "
                    "(apt-get install gnuplot-nox) for PNG/SVG images\n", out);
    rc = 1;
  } else if (image) {
    if (plot_gnuplot(&s, out, err, sizeof err) != 0) {
      fprintf(stderr, "mbpo: error: %s\n", err);
      rc = 1;
    } else {
      if (!text) plot_table(&s, stdout);
      fflush(stdout);
      mbpo_note("wrote %s (%d group%s, %d run%s)", out, s.ngroups, s.ngroups == 1 ? "" : "s",
                s.nruns, s.nruns == 1 ? "" : "s");
    }
  } else if (!have) {
    mbpo_note("gnuplot is not installed: text plot only; install it (apt-get install gnuplot-nox) "
              "for PNG/SVG images");
  }
  plot_free(&s);
  return rc;
}
