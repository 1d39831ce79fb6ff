/* plot.c: `mbpo plot`: the text plot and the gnuplot image of a runset's curves, and the command
 * (plot.h). */
#include "plot.h"

#include <errno.h>
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

/* "hopper, walker2d": the tasks of the groups, in order, once each (cut to fit n). */
static void tasks_title(const runset* s, char* out, size_t n) {
  size_t used = 0;
  out[0] = '\0';
  for (int g = 0; g < s->ngroups && used + 1 < n; g++) {
    const char* t = s->runs[s->groups[g].runs[0]].cfg.task;
    int seen = 0;
    for (int h = 0; h < g; h++) seen |= strcmp(s->runs[s->groups[h].runs[0]].cfg.task, t) == 0;
    if (seen) continue;
    int w = snprintf(out + used, n - used, "%s%s", used ? ", " : "", t);
    if (w < 0) break;
    used += (size_t)w < n - used ? (size_t)w : n - 1 - used;
  }
}

void plot_table(const runset* s, FILE* f) {
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
    const runset_group* G = &s->groups[g];
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
static double group_at(const runset_group* g, double x) {
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

void plot_text(const runset* s, FILE* f, int W, int H) {
  if (W < 10) W = 10;
  if (H < 5) H = 5;
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (int g = 0; g < s->ngroups; g++) {
    const runset_group* G = &s->groups[g];
    for (int i = 0; i < G->n; i++) {
      if (G->x[i] < xmin) xmin = G->x[i];
      if (G->x[i] > xmax) xmax = G->x[i];
      if (G->mean[i] < ymin) ymin = G->mean[i];
      if (G->mean[i] > ymax) ymax = G->mean[i];
    }
  }
  char title[1024];
  tasks_title(s, title, sizeof title);
  int several = 0; /* the analyses draw one curve per group of one "run" each */
  for (int g = 0; g < s->ngroups; g++) several |= s->groups[g].nruns > 1;
  fprintf(f, "%s: %s%s vs %s\n\n", title, axis_name(s->ycol), several ? " (mean across runs)" : "",
          axis_name(s->xcol));
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
    const runset_group* G = &s->groups[g];
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

int plot_gnuplot(const runset* s, const char* out, char* err, int errlen) {
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
    const runset_group* G = &s->groups[g];
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
    const runset_group* G = &s->groups[g];
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
  runset s;
  char err[4096];
  if (runset_load(&s, n, runs, xcol, ycol, err, sizeof err) != 0) {
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
  runset_free(&s);
  return rc;
}
