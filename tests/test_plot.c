/* test_plot.c: `mbpo plot`: reading progress.csv, grouping runs by setting, mean/std across runs on
 * the common grid, the text plot, the gnuplot images (skipped without gnuplot) and the errors, through
 * the C API and the real binary (MBPO_BIN). */
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "plot.h"
#include "test.h"
#include "run_fixture.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static const char* const HEAD =
    "epoch,env_steps,total_env_steps,eval_return_mean,eval_return_std,train_return\n";

/* The fixture: <g_tmp>/runs with hopper-base-s0, hopper-base-s1 (same setting) and hopper-lr-s0
 * (sac.lr=1e-4). Group 1 at x = 1000, 2000, 3000: mean 105, 210, 315, std 5, 10, 15. */
static char g_runs[512], g_a[1024], g_b[1024], g_c[1024];

static void make_fixture(void) {
  snprintf(g_runs, sizeof g_runs, "%s/runs", g_tmp);
  mbpo_config a = base_cfg("hopper", "base", 0), b = base_cfg("hopper", "base", 1),
              c = base_cfg("hopper", "lr", 0);
  c.sac_lr = 1e-4;
  char text[2048];
  snprintf(text, sizeof text,
           "%s0,1000,6000,100,1,\n1,2000,7000,200,2,5\n2,3000,8000,300,3,7\n", HEAD);
  make_run(g_runs, &a, text, g_a, sizeof g_a);
  /* seed 1: threads/device differ (where it ran), an epoch without an evaluation (empty y) */
  b.threads = 3;
  b.device = CFG_DEVICE_CUDA; /* base_cfg says cpu */
  snprintf(text, sizeof text,
           "%s0,1000,6000,110,1,\n1,1500,6500,,,\n1,2000,7000,220,2,\n2,3000,8000,330,3,\n", HEAD);
  make_run(g_runs, &b, text, g_b, sizeof g_b);
  snprintf(text, sizeof text, "%s0,1000,6000,50,1,\n1,2000,7000,60,2,\n", HEAD);
  make_run(g_runs, &c, text, g_c, sizeof g_c);
}

/* `[env] $MBPO_BIN plot ARGS`, output in out. */
static int run_plot(const char* env, const char* args, char* out, size_t n) {
  return run_mbpo(env, "plot", args, out, n);
}

/* ---- the C API ---------------------------------------------------------------------------- */

static void test_read_csv(void) {
  char p[512];
  snprintf(p, sizeof p, "%s/odd.csv", g_tmp);
  /* BOM, CRLF, quoted and padded names, empty/"nan"/text values, a short row, unsorted x, a repeated
   * x (the later row wins), a last line without its newline that is cut short (left out) */
  write_text(p,
             "\xEF\xBB\xBF\"epoch\", env_steps ,\"eval_return_mean\",other\r\n"
             "\r\n"
             "0,300,30,a\r\n"
             "1,100,10,b\r\n"
             "2,200,,c\r\n"
             "3,250,nan,d\r\n"
             "4,260,abc,e\r\n"
             "5,100,11,f\r\n"
             "6,400\r\n"
             "7, 500 , \"50\" ,g\n"
             "8,600,6");
  double *x, *y;
  int n;
  char err[1024] = "";
  int r = plot_read_csv(p, "env_steps", "eval_return_mean", &x, &y, &n, err, sizeof err);
  CHECK(r == 0, "plot_read_csv: %s", err);
  if (r != 0) return;
  CHECK(n == 3, "n = %d (want 100, 300, 500)", n);
  if (n == 3) {
    CHECK(x[0] == 100 && y[0] == 11, "first point %g %g (the later row of x = 100 wins)", x[0], y[0]);
    CHECK(x[1] == 300 && y[1] == 30, "second point %g %g", x[1], y[1]);
    CHECK(x[2] == 500 && y[2] == 50, "third point %g %g", x[2], y[2]);
  }
  free(x);
  free(y);
  /* a missing column: the message names it and the columns there are */
  r = plot_read_csv(p, "env_steps", "nope", &x, &y, &n, err, sizeof err);
  CHECK(r != 0 && strstr(err, "nope") && strstr(err, "eval_return_mean"), "missing column: %s", err);
  /* an empty file, a missing file */
  snprintf(p, sizeof p, "%s/empty.csv", g_tmp);
  write_text(p, "");
  r = plot_read_csv(p, "env_steps", "eval_return_mean", &x, &y, &n, err, sizeof err);
  CHECK(r != 0 && strstr(err, "empty"), "empty file: %s", err);
  snprintf(p, sizeof p, "%s/none.csv", g_tmp);
  r = plot_read_csv(p, "env_steps", "eval_return_mean", &x, &y, &n, err, sizeof err);
  CHECK(r != 0 && strstr(err, "cannot open"), "missing file: %s", err);
  /* a header only: no points, no error */
  snprintf(p, sizeof p, "%s/head.csv", g_tmp);
  write_text(p, HEAD);
  r = plot_read_csv(p, "env_steps", "eval_return_mean", &x, &y, &n, err, sizeof err);
  CHECK(r == 0 && n == 0 && !x && !y, "header only: r %d n %d", r, n);
}

static void test_same_setting(void) {
  mbpo_config a = base_cfg("hopper", "x", 0), b = base_cfg("hopper", "y", 7);
  snprintf(b.run_dir, sizeof b.run_dir, "elsewhere");
  b.threads = 5;
  b.device = CFG_DEVICE_CUDA; /* base_cfg says cpu */
  CHECK(plot_same_setting(&a, &b), "seed, tag, run_dir, device, threads must not split a group");
  b.sac_lr = 1e-4;
  CHECK(!plot_same_setting(&a, &b), "sac.lr differs: another setting");
  mbpo_config w = base_cfg("walker2d", "x", 0);
  CHECK(!plot_same_setting(&a, &w), "another task: another group");
}

static void test_groups(void) {
  plot_set s;
  char err[1024] = "";
  char* paths[3] = {g_a, g_b, g_c};
  int r = plot_load(&s, 3, paths, "env_steps", "eval_return_mean", err, sizeof err);
  CHECK(r == 0, "plot_load: %s", err);
  if (r != 0) return;
  CHECK(s.nruns == 3, "nruns %d", s.nruns);
  CHECK(s.ngroups == 2, "ngroups %d", s.ngroups);
  if (s.ngroups == 2) {
    const plot_group* g = &s.groups[0];
    CHECK(g->nruns == 2, "group 0 has %d runs", g->nruns);
    CHECK(g->n == 3, "group 0 has %d points", g->n);
    const double mx[3] = {1000, 2000, 3000}, mm[3] = {105, 210, 315}, ms[3] = {5, 10, 15};
    for (int i = 0; i < 3 && i < g->n; i++) {
      CHECK(g->x[i] == mx[i], "x[%d] %g", i, g->x[i]);
      CHECK_CLOSE(g->mean[i], mm[i], 1e-12);
      CHECK_CLOSE(g->std[i], ms[i], 1e-12);
    }
    CHECK(strstr(g->label, "hopper") && strstr(g->label, "sac.lr=0.0003") && strstr(g->label, "2 runs"),
          "label '%s'", g->label);
    CHECK(!strstr(g->label, "threads") && !strstr(g->label, "device"), "label '%s'", g->label);
    g = &s.groups[1];
    CHECK(g->nruns == 1 && g->n == 2, "group 1: %d runs, %d points", g->nruns, g->n);
    if (g->n == 2) {
      CHECK_CLOSE(g->mean[1], 60, 1e-12);
      CHECK(g->std[1] == 0, "one run: std %g", g->std[1]);
    }
    CHECK(strstr(g->label, "hopper sac.lr=0.0001 (1 run)"), "label '%s'", g->label);
  }
  plot_free(&s);
  /* the folder of run folders gives the same runs (in name order); a run named again counts once */
  char* both[2] = {g_runs, g_a};
  r = plot_load(&s, 2, both, NULL, NULL, err, sizeof err);
  CHECK(r == 0 && s.nruns == 3 && s.ngroups == 2, "folder of runs: r %d (%s) nruns %d ngroups %d", r,
        err, s.nruns, s.ngroups);
  if (r == 0) plot_free(&s);
  /* another y column */
  r = plot_load(&s, 2, paths, "total_env_steps", "eval_return_std", err, sizeof err);
  CHECK(r == 0 && s.ngroups == 1 && s.groups[0].n == 3 && s.groups[0].x[0] == 6000 &&
            s.groups[0].mean[2] == 3,
        "--x total_env_steps --y eval_return_std: r %d (%s)", r, err);
  if (r == 0) plot_free(&s);
}

/* Runs of one setting that logged different x values: the grid is the union within the common
 * range, each run interpolated linearly. */
static void test_interpolation(void) {
  char root[512], d[3][1024];
  snprintf(root, sizeof root, "%s/interp", g_tmp);
  mbpo_config c0 = base_cfg("walker2d", "i", 0), c1 = base_cfg("walker2d", "i", 1),
              c2 = base_cfg("walker2d", "i", 2);
  char t[1024];
  snprintf(t, sizeof t, "%s0,1000,0,0,,\n1,2000,0,100,,\n2,3000,0,200,,\n3,4000,0,300,,\n", HEAD);
  make_run(root, &c0, t, d[0], sizeof d[0]);
  snprintf(t, sizeof t, "%s0,1500,0,10,,\n1,2500,0,30,,\n2,3500,0,50,,\n", HEAD);
  make_run(root, &c1, t, d[1], sizeof d[1]);
  snprintf(t, sizeof t, "%s0,500,0,0,,\n1,3000,0,250,,\n", HEAD); /* shortest: ends at 3000 */
  make_run(root, &c2, t, d[2], sizeof d[2]);
  plot_set s;
  char err[1024] = "";
  char* paths[1] = {root};
  int r = plot_load(&s, 1, paths, NULL, NULL, err, sizeof err);
  CHECK(r == 0, "plot_load: %s", err);
  if (r != 0) return;
  CHECK(s.ngroups == 1 && s.groups[0].nruns == 3, "ngroups %d", s.ngroups);
  const plot_group* g = &s.groups[0];
  /* common range [1500, 3000]; grid {1500, 2000, 2500, 3000} */
  const double gx[4] = {1500, 2000, 2500, 3000};
  const double y0[4] = {50, 100, 150, 200}, y1[4] = {10, 20, 30, 40}, y2[4] = {100, 150, 200, 250};
  CHECK(g->n == 4, "grid points %d", g->n);
  for (int i = 0; i < 4 && i < g->n; i++) {
    double m = (y0[i] + y1[i] + y2[i]) / 3;
    double v = ((y0[i] - m) * (y0[i] - m) + (y1[i] - m) * (y1[i] - m) + (y2[i] - m) * (y2[i] - m)) / 3;
    CHECK(g->x[i] == gx[i], "x[%d] = %g", i, g->x[i]);
    CHECK_CLOSE(g->mean[i], m, 1e-12);
    CHECK_CLOSE(g->std[i], sqrt(v), 1e-12);
  }
  CHECK(strstr(g->label, "walker2d i (3 runs)"), "one group of one tag: label '%s'", g->label);
  plot_free(&s);
}

static void test_load_errors(void) {
  plot_set s;
  char err[1024] = "";
  char p[512], q[600];
  int r = plot_load(&s, 0, NULL, NULL, NULL, err, sizeof err);
  CHECK(r != 0 && strstr(err, "no runs"), "no paths: %s", err);
  snprintf(p, sizeof p, "%s/empty_dir", g_tmp);
  mkdir(p, 0777);
  char* one[1] = {p};
  r = plot_load(&s, 1, one, NULL, NULL, err, sizeof err);
  CHECK(r != 0 && strstr(err, "not a run folder"), "empty folder: %s", err);
  snprintf(p, sizeof p, "%s/half_run", g_tmp);
  mkdir(p, 0777);
  snprintf(q, sizeof q, "%s/progress.csv", p);
  write_text(q, HEAD);
  r = plot_load(&s, 1, one, NULL, NULL, err, sizeof err);
  CHECK(r != 0 && strstr(err, "not a run folder") && strstr(err, "config.ini"), "no config.ini: %s",
        err);
  snprintf(p, sizeof p, "%s/no_such_run", g_tmp);
  r = plot_load(&s, 1, one, NULL, NULL, err, sizeof err);
  CHECK(r != 0 && strstr(err, "no_such_run"), "missing folder: %s", err);
  /* a config.ini that does not load */
  snprintf(p, sizeof p, "%s/bad_ini", g_tmp);
  mkdir(p, 0777);
  snprintf(q, sizeof q, "%s/progress.csv", p);
  write_text(q, HEAD);
  snprintf(q, sizeof q, "%s/config.ini", p);
  write_text(q, "no_such_setting = 1\n");
  r = plot_load(&s, 1, one, NULL, NULL, err, sizeof err);
  CHECK(r != 0 && strstr(err, "config.ini"), "bad config.ini: %s", err);
  /* a run without any evaluation yet: left out; alone, no data */
  snprintf(p, sizeof p, "%s/fresh", g_tmp);
  mbpo_config c = base_cfg("hopper", "fresh", 0);
  char dir[1024];
  make_run(p, &c, HEAD, dir, sizeof dir);
  one[0] = dir;
  r = plot_load(&s, 1, one, NULL, NULL, err, sizeof err);
  CHECK(r != 0 && strstr(err, "no data"), "run without data: %s", err);
  /* a missing column */
  one[0] = g_a;
  r = plot_load(&s, 1, one, NULL, "no_col", err, sizeof err);
  CHECK(r != 0 && strstr(err, "no_col"), "missing column: %s", err);
}

static void test_text_api(void) {
  plot_set s;
  char err[1024] = "";
  char* paths[1] = {g_runs};
  if (plot_load(&s, 1, paths, NULL, NULL, err, sizeof err) != 0) {
    CHECK(0, "plot_load: %s", err);
    return;
  }
  char* buf = NULL;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  plot_text(&s, f, 70, 20);
  fclose(f);
  CHECK(strstr(buf, "315.0 ± 15.0") && strstr(buf, "60.0 ± 0.0"), "table:\n%s", buf);
  CHECK(strstr(buf, "1000") && strstr(buf, "3000"), "x min/max labels:\n%s", buf);
  /* 20 grid rows between the title and the x axis, each starting with a '|' after the labels */
  int rows = 0;
  for (char* l = buf; (l = strstr(l, " |")) != NULL; l += 2) rows++;
  CHECK(rows == 20, "%d grid rows", rows);
  CHECK(strchr(buf, '*') && strchr(buf, '+'), "one symbol per group:\n%s", buf);
  free(buf);
  plot_free(&s);
}

/* ---- the command -------------------------------------------------------------------------- */

static void test_cli_text(void) {
  NEED_BIN();
  char out[16384], args[4096];
  snprintf(args, sizeof args, "'%s' '%s' '%s' --text", g_a, g_b, g_c);
  int rc = run_plot(NULL, args, out, sizeof out);
  CHECK(rc == 0, "exit %d:\n%s", rc, out);
  CHECK(strstr(out, "hopper sac.lr=0.0003 (2 runs)") && strstr(out, "hopper sac.lr=0.0001 (1 run)"),
        "groups:\n%s", out);
  CHECK(strstr(out, "315.0 ± 15.0") && strstr(out, "60.0 ± 0.0"), "final mean ± std:\n%s", out);
  CHECK(strstr(out, "evaluation return") && strstr(out, "env steps"), "axis names:\n%s", out);
  /* the folder of runs and --x */
  snprintf(args, sizeof args, "'%s' --text --x total_env_steps", g_runs);
  rc = run_plot(NULL, args, out, sizeof out);
  CHECK(rc == 0 && strstr(out, "8000") && strstr(out, "315.0 ± 15.0"), "exit %d:\n%s", rc, out);
  CHECK(!strstr(out, "curves.png"), "--text alone makes no image:\n%s", out);
}

static void test_cli_no_gnuplot(void) {
  NEED_BIN();
  char out[16384], args[4096], png[600];
  /* PATH without gnuplot: a text plot and the note; exit 0 without -o, 1 with -o (no file) */
  snprintf(args, sizeof args, "'%s'", g_runs);
  int rc = run_plot("PATH=/nonexistent", args, out, sizeof out);
  CHECK(rc == 0, "no gnuplot, no -o: exit %d:\n%s", rc, out);
  CHECK(strstr(out, "315.0 ± 15.0") && strstr(out, "apt-get install gnuplot-nox"), "text + note:\n%s",
        out);
  snprintf(png, sizeof png, "%s/nognuplot.png", g_tmp);
  snprintf(args, sizeof args, "'%s' -o '%s'", g_runs, png);
  rc = run_plot("PATH=/nonexistent", args, out, sizeof out);
  CHECK(rc == 1, "no gnuplot, -o: exit %d:\n%s", rc, out);
  CHECK(strstr(out, "315.0 ± 15.0") && strstr(out, "gnuplot-nox"), "text + note:\n%s", out);
  CHECK(file_size(png) < 0, "%s was made", png);
}

static void test_cli_images(void) {
  NEED_BIN();
  if (!plot_have_gnuplot()) SKIP("gnuplot is not on PATH (apt-get install gnuplot-nox to test images)");
  char out[16384], args[4096], png[600], svg[600];
  snprintf(png, sizeof png, "%s/x.png", g_tmp);
  snprintf(svg, sizeof svg, "%s/x.svg", g_tmp);
  snprintf(args, sizeof args, "'%s' -o '%s'", g_runs, png);
  int rc = run_plot(NULL, args, out, sizeof out);
  CHECK(rc == 0, "png: exit %d:\n%s", rc, out);
  CHECK(strstr(out, "315.0 ± 15.0"), "the table comes with the image:\n%s", out);
  FILE* f = fopen(png, "rb");
  unsigned char sig[8] = {0};
  if (f) {
    CHECK(fread(sig, 1, 8, f) == 8, "short PNG");
    fclose(f);
  }
  CHECK(f && memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0, "%s is not a PNG", png);
  CHECK(file_size(png) > 1000, "PNG size %ld", file_size(png));
  snprintf(args, sizeof args, "'%s' -o '%s'", g_runs, svg);
  rc = run_plot(NULL, args, out, sizeof out);
  CHECK(rc == 0, "svg: exit %d:\n%s", rc, out);
  char* text = read_text(svg);
  if (text) CHECK(text[0], "empty SVG");
  CHECK(text && strstr(text, "<svg") && strstr(text, "</svg>"), "%s is not an SVG", svg);
  CHECK(text && strstr(text, "sac.lr=0.0001"), "the legend is in the SVG");
  free(text);
  /* no temporary leftovers beside the image */
  char tmp[700];
  snprintf(tmp, sizeof tmp, "%s.tmp", svg);
  CHECK(file_size(tmp) < 0, "%s left behind", tmp);
  /* an unwritable place: a clear message, exit 1 */
  snprintf(args, sizeof args, "'%s' -o '%s/no/such/dir/x.png'", g_runs, g_tmp);
  rc = run_plot(NULL, args, out, sizeof out);
  CHECK(rc == 1 && strstr(out, "cannot write"), "unwritable -o: exit %d:\n%s", rc, out);
  /* default name: curves.png in the current folder */
  snprintf(args, sizeof args, "cd '%s' && '%s' plot '%s'", g_tmp, getenv("MBPO_BIN"), g_a);
  rc = run_sh(args, out, sizeof out);
  snprintf(tmp, sizeof tmp, "%s/curves.png", g_tmp);
  CHECK(rc == 0 && file_size(tmp) > 0, "default curves.png: exit %d:\n%s", rc, out);
}

static void test_cli_errors(void) {
  NEED_BIN();
  char out[16384], args[4096];
  int rc = run_plot(NULL, "", out, sizeof out);
  CHECK(rc == 2 && strstr(out, "at least one run"), "no runs: exit %d:\n%s", rc, out);
  snprintf(args, sizeof args, "'%s/empty_dir' --text", g_tmp);
  rc = run_plot(NULL, args, out, sizeof out);
  CHECK(rc == 1 && strstr(out, "not a run folder"), "not a run: exit %d:\n%s", rc, out);
  snprintf(args, sizeof args, "'%s' '%s/nope' --text", g_a, g_tmp);
  rc = run_plot(NULL, args, out, sizeof out);
  CHECK(rc == 1 && strstr(out, "nope"), "missing folder: exit %d:\n%s", rc, out);
  snprintf(args, sizeof args, "'%s' --bogus", g_a);
  rc = run_plot(NULL, args, out, sizeof out);
  CHECK(rc == 2 && strstr(out, "--bogus"), "unknown option: exit %d:\n%s", rc, out);
  snprintf(args, sizeof args, "'%s' -o x.pdf", g_a);
  rc = run_plot(NULL, args, out, sizeof out);
  CHECK(rc == 2 && strstr(out, ".png or .svg"), "bad -o: exit %d:\n%s", rc, out);
  snprintf(args, sizeof args, "'%s' --text --y", g_a);
  rc = run_plot(NULL, args, out, sizeof out);
  CHECK(rc == 2 && strstr(out, "needs a value"), "--y without a value: exit %d:\n%s", rc, out);
  snprintf(args, sizeof args, "'%s' --text --y no_col", g_a);
  rc = run_plot(NULL, args, out, sizeof out);
  CHECK(rc == 1 && strstr(out, "no_col"), "missing column: exit %d:\n%s", rc, out);
  rc = run_plot(NULL, "--help", out, sizeof out);
  CHECK(rc == 0 && strstr(out, "usage: mbpo plot") && strstr(out, "gnuplot-nox"), "--help: exit %d", rc);
}

int main(void) {
  if (fixture_tmp_make("plot") != 0) return 2;
  make_fixture();
  RUN(test_read_csv);
  RUN(test_same_setting);
  RUN(test_groups);
  RUN(test_interpolation);
  RUN(test_load_errors);
  RUN(test_text_api);
  RUN(test_cli_text);
  RUN(test_cli_no_gnuplot);
  RUN(test_cli_images);
  RUN(test_cli_errors);
  fixture_tmp_remove();
  return test_done();
}
