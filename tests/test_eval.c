/* test_eval.c: `mbpo eval` through the real binary after a tiny training run.
 *
 * Exactness: training evaluates epoch e's actor snapshot at epoch e's end with reset noise
 * (seed, RNG_EVAL_RESET), env index e; the epoch-end checkpoint ckpt-e<e>.npz is written right after
 * that snapshot is taken, with no update in between, so its "sac/policy" is the snapshot. `mbpo eval`
 * on it (default epoch index e, the run's seed and eval.episodes) runs the same evaluator code, so
 * its mean, std, min, max, first return and mean length, printed with %.9g as progress.csv does,
 * equal that epoch's row character for character (checked for the final and an earlier epoch).
 * Bad input: not a run folder, a run folder without a checkpoint, truncated and garbage
 * checkpoints, a checkpoint of another task and of another actor shape, --video without ffmpeg:
 * non-zero exit with a message. episodes= and seed= change the episodes as they should
 * (test_eval_episodes_seed). With eval.model_return the model return is repeated too
 * (test_eval_model_return). --video with ffmpeg and EGL or OSMesa: test_eval_video.
 * The training run says device=cpu; `mbpo eval` has no device setting (it evaluates on the CPU). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "sh_capture.h"
#include "test.h"

#define ARGS                                                                                      \
  "inverted_pendulum steps=300 epoch_length=100 init_steps=100 min_pool=250 model.train_freq=50 " \
  "rollout.batch=500 model.hidden=32 sac.hidden=32 sac.updates=2 model.max_epochs=5 "             \
  "eval.episodes=2 max_path_length=100 checkpoint.every=1 rollout.min_epoch=0 "                   \
  "rollout.max_epoch=2 rollout.max_length=3 device=cpu"

static char g_dir[] = "/tmp/mbpo-eval-XXXXXX";
static char g_run[600];
static char g_out[65536];

/* Run a shell command line (printf format), its stdout and stderr into g_out; its exit status. */
#define run_cmd(...) run_shf(g_out, sizeof g_out, __VA_ARGS__)

/* Columns 3..8 (eval mean, std, min, max, first, length) of the progress.csv row of epoch e. */
static int progress_eval(int epoch, char* buf, size_t n) {
  char path[700], line[8192];
  snprintf(path, sizeof path, "%s/progress.csv", g_run);
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  int found = -1;
  while (fgets(line, sizeof line, f)) {
    if (atoi(line) != epoch || line[0] < '0' || line[0] > '9') continue;
    char* fld[40];
    int k = 0;
    for (char* s = strtok(line, ",\n"); s && k < 40; s = strtok(NULL, ",\n")) fld[k++] = s;
    if (k < 9) break;
    snprintf(buf, n, "%s,%s,%s,%s,%s,%s", fld[3], fld[4], fld[5], fld[6], fld[7], fld[8]);
    found = 0;
  }
  fclose(f);
  return found;
}

/* The same six numbers from `mbpo eval`'s key=value line, formatted as progress.csv does. */
static int eval_line(char* buf, size_t n) {
  const char* s = strstr(g_out, "eval_return_mean=");
  double v[6];
  if (!s || sscanf(s,
                   "eval_return_mean=%lf eval_return_std=%lf eval_return_min=%lf eval_return_max=%lf "
                   "eval_return_first=%lf eval_length_mean=%lf",
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
    return -1;
  buf[0] = '\0';
  for (int i = 0; i < 6; i++) {
    char t[64];
    if (v[i] == (double)(long long)v[i]) snprintf(t, sizeof t, "%s%.0f", i ? "," : "", v[i]);
    else snprintf(t, sizeof t, "%s%.9g", i ? "," : "", v[i]);
    strncat(buf, t, n - strlen(buf) - 1);
  }
  return 0;
}

static void test_eval_reproduces_progress(void) {
  const char* bin = getenv("MBPO_BIN");
  if (!bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!mkdtemp(g_dir)) SKIP("cannot create a temporary folder");
  snprintf(g_run, sizeof g_run, "%s/inverted_pendulum-e-s0", g_dir);
  int rc = run_cmd("%s train " ARGS " run_dir=%s tag=e", bin, g_dir);
  CHECK(rc == 0, "training failed (%d): %s", rc, g_out);
  if (rc) return;
  rc = run_cmd("%s eval %s", bin, g_run);
  CHECK(rc == 0, "mbpo eval exited %d: %s", rc, g_out);
  CHECK(strstr(g_out, "mean") != NULL, "no mean printed: %s", g_out);
  char want[512], got[512];
  CHECK(progress_eval(2, want, sizeof want) == 0, "no epoch-2 row in progress.csv");
  CHECK(eval_line(got, sizeof got) == 0, "no key=value line: %s", g_out);
  CHECK(strcmp(want, got) == 0, "final epoch: progress.csv %s, mbpo eval %s", want, got);
  /* an earlier epoch-end checkpoint, explicitly */
  rc = run_cmd("%s eval %s checkpoint=%s/ckpt-e000001.npz", bin, g_run, g_run);
  CHECK(rc == 0, "mbpo eval checkpoint= exited %d: %s", rc, g_out);
  CHECK(progress_eval(1, want, sizeof want) == 0, "no epoch-1 row in progress.csv");
  CHECK(eval_line(got, sizeof got) == 0, "no key=value line: %s", g_out);
  CHECK(strcmp(want, got) == 0, "epoch 1: progress.csv %s, mbpo eval %s", want, got);
}

/* eval.model_return: the epoch-end checkpoint also holds the model the evaluation ran in (the
 * model phase of the next epoch comes after the checkpoint), so `mbpo eval` repeats the row's
 * eval_model_return_mean and _std as well (%.9g, character for character); a run without the
 * setting prints no such line. */
static void test_eval_model_return(void) {
  const char* bin = getenv("MBPO_BIN");
  if (!bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!g_run[0]) SKIP("no run from the first case");
  int rc = run_cmd("%s eval %s", bin, g_run);
  CHECK(rc == 0 && strstr(g_out, "eval_model_return_mean=") == NULL, "a run without eval.model_return: %s", g_out);
  char run[700], path[800], line[8192], want[256] = "", got[256] = "";
  snprintf(run, sizeof run, "%s/inverted_pendulum-m-s0", g_dir);
  rc = run_cmd("%s train " ARGS " eval.model_return=1 eval.model_rollouts=3 run_dir=%s tag=m", bin, g_dir);
  CHECK(rc == 0, "training failed (%d): %s", rc, g_out);
  if (rc) return;
  snprintf(path, sizeof path, "%s/progress.csv", run);
  FILE* f = fopen(path, "r");
  int mcol = -1;
  while (f && fgets(line, sizeof line, f)) { /* the header's column, then the last row's two cells */
    char* fld[64];
    int k = 0;
    for (char *p = line, *q; p && k < 64; p = q ? q + 1 : NULL) {
      q = strpbrk(p, ",\n");
      if (q) *q = '\0';
      fld[k++] = p;
    }
    if (mcol < 0) {
      for (int i = 0; i < k; i++)
        if (strcmp(fld[i], "eval_model_return_mean") == 0) mcol = i;
    } else if (mcol + 1 < k) {
      snprintf(want, sizeof want, "%s,%s", fld[mcol], fld[mcol + 1]);
    }
  }
  if (f) fclose(f);
  rc = run_cmd("%s eval %s", bin, run);
  double m, sd;
  const char* s = strstr(g_out, "eval_model_return_mean=");
  if (rc == 0 && s && sscanf(s, "eval_model_return_mean=%lf eval_model_return_std=%lf", &m, &sd) == 2)
    snprintf(got, sizeof got, "%.9g,%.9g", m, sd);
  CHECK(want[0] && strcmp(want, got) == 0, "final epoch's model return: progress.csv '%s', mbpo eval '%s' (%s)",
        want, got, g_out);
}

/* `mbpo eval`'s six numbers (mean, std, min, max, first, mean length) for args; 0 or -1. */
static int eval_numbers(const char* bin, const char* args, double v[6]) {
  int rc = run_cmd("%s eval %s %s", bin, g_run, args);
  const char* s = strstr(g_out, "eval_return_mean=");
  if (rc != 0 || !s) return -1;
  return sscanf(s,
                "eval_return_mean=%lf eval_return_std=%lf eval_return_min=%lf eval_return_max=%lf "
                "eval_return_first=%lf eval_length_mean=%lf",
                &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6 ? 0 : -1;
}

/* episodes= and seed=: episode i's reset noise is a function of (seed, epoch index, i) only
 * (host/evaluate.c), so 3 episodes begin with the 2 episodes of episodes=2: the first return is the
 * same, and InvertedPendulum's returns (1 per step, the length) r0 = first, r1 = 2 m2 - r0,
 * r2 = 3 m3 - 2 m2 must give episodes=3's min, max, std and mean length. Another seed draws other
 * reset states: for seed 0 and 9 at the final epoch the three returns differ (measured: 11, 13, 12
 * and 12, 12, 11 with this run), which the printed settings alone would not show. */
static void test_eval_episodes_seed(void) {
  const char* bin = getenv("MBPO_BIN");
  if (!bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!g_run[0]) SKIP("no run from the previous case");
  double s2[6], s3[6], z3[6];
  int ok = eval_numbers(bin, "episodes=2 seed=9", s2) == 0 && eval_numbers(bin, "episodes=3 seed=9", s3) == 0 &&
           eval_numbers(bin, "episodes=3", z3) == 0;
  CHECK(ok, "mbpo eval episodes=2|3 seed=9: %s", g_out);
  if (!ok) return;
  CHECK(strstr(g_out, "seed 0") && strstr(g_out, "3 deterministic episodes"), "settings line: %s", g_out);
  double r[3] = {s2[4], 2 * s2[0] - s2[4], 3 * s3[0] - 2 * s2[0]};
  double lo = r[0], hi = r[0], m = (r[0] + r[1] + r[2]) / 3, var = 0;
  for (int i = 0; i < 3; i++) {
    lo = r[i] < lo ? r[i] : lo;
    hi = r[i] > hi ? r[i] : hi;
    var += (r[i] - m) * (r[i] - m) / 3;
  }
  CHECK(s3[4] == s2[4], "episodes=3 starts with another episode than episodes=2: first %g vs %g", s3[4], s2[4]);
  CHECK(s3[2] == lo && s3[3] == hi && fabs(s3[1] - sqrt(var)) < 1e-9 && s3[5] == s3[0],
        "episodes=3 seed=9: min %g max %g std %g length %g; from episodes=2: returns %g %g %g", s3[2], s3[3], s3[1],
        s3[5], r[0], r[1], r[2]);
  /* seed 0's three episodes, from its mean, first, min and max (three integers) */
  double z0 = z3[4], zsum = 3 * z3[0];
  int same = z0 == r[0] && z3[2] == lo && z3[3] == hi && fabs(zsum - (r[0] + r[1] + r[2])) < 1e-9;
  CHECK(!same, "seed 9 and seed 0 give the same episodes (first %g, min %g, max %g, mean %g)", z0, lo, hi, m);
}

static void test_eval_bad_input(void) {
  const char* bin = getenv("MBPO_BIN");
  if (!bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  struct stat st;
  char path[800];
  snprintf(path, sizeof path, "%s/config.ini", g_run);
  if (stat(path, &st) != 0) SKIP("no run from the previous case");
  /* not a run folder; a missing folder */
  int rc = run_cmd("%s eval %s", bin, g_dir);
  CHECK(rc != 0 && strstr(g_out, "not a run folder"), "not a run folder: exit %d: %s", rc, g_out);
  rc = run_cmd("%s eval %s/none", bin, g_dir);
  CHECK(rc != 0 && strstr(g_out, "error"), "missing folder: exit %d: %s", rc, g_out);
  /* a run folder without checkpoints */
  rc = run_cmd("mkdir -p %s/nock && cp %s/config.ini %s/nock/", g_dir, g_run, g_dir);
  rc = run_cmd("%s eval %s/nock", bin, g_dir);
  CHECK(rc != 0 && strstr(g_out, "no checkpoint"), "no checkpoint: exit %d: %s", rc, g_out);
  /* truncated and garbage checkpoints */
  run_cmd("head -c 3000 %s/ckpt-e000000.npz > %s/trunc.npz", g_run, g_dir);
  rc = run_cmd("%s eval %s checkpoint=%s/trunc.npz", bin, g_run, g_dir);
  CHECK(rc != 0 && strstr(g_out, "error"), "truncated checkpoint: exit %d: %s", rc, g_out);
  run_cmd("head -c 5000 /dev/urandom > %s/garbage.npz", g_dir);
  rc = run_cmd("%s eval %s checkpoint=%s/garbage.npz", bin, g_run, g_dir);
  CHECK(rc != 0 && strstr(g_out, "error"), "garbage checkpoint: exit %d: %s", rc, g_out);
  /* the newest checkpoint itself corrupt (a copy of the run) */
  run_cmd("cp -r %s %s/copy && truncate -s 2000 %s/copy/ckpt-e000002.npz", g_run, g_dir, g_dir);
  rc = run_cmd("%s eval %s/copy", bin, g_dir);
  CHECK(rc != 0 && strstr(g_out, "error"), "corrupt newest checkpoint: exit %d: %s", rc, g_out);
  /* a checkpoint of another task, of another actor shape */
  run_cmd("mkdir -p %s/hop && %s config %s task=hopper --ini > %s/hop/config.ini", g_dir, bin, g_run,
          g_dir);
  rc = run_cmd("%s eval %s/hop checkpoint=%s/ckpt-e000002.npz", bin, g_dir, g_run);
  CHECK(rc != 0 && strstr(g_out, "task"), "other task: exit %d: %s", rc, g_out);
  run_cmd("mkdir -p %s/wide && %s config %s sac.hidden=64 --ini > %s/wide/config.ini", g_dir, bin,
          g_run, g_dir);
  rc = run_cmd("%s eval %s/wide checkpoint=%s/ckpt-e000002.npz", bin, g_dir, g_run);
  CHECK(rc != 0 && strstr(g_out, "shape"), "other shape: exit %d: %s", rc, g_out);
  /* --video without ffmpeg (an empty PATH) or with an unknown GL choice: says what, exits 2 */
  rc = run_cmd("PATH=/nonexistent %s eval %s --video %s/out.mp4", bin, g_run, g_dir);
  CHECK(rc == 2 && strstr(g_out, "install") && strstr(g_out, "ffmpeg"), "--video without ffmpeg: exit %d: %s", rc,
        g_out);
  snprintf(path, sizeof path, "%s/out.mp4", g_dir);
  CHECK(stat(path, &st) != 0, "--video without ffmpeg wrote a file");
  if (run_cmd("command -v ffmpeg") == 0) {
    rc = run_cmd("MBPO_GL=vulkan %s eval %s --video %s/out.mp4", bin, g_run, g_dir);
    CHECK(rc == 2 && strstr(g_out, "MBPO_GL"), "MBPO_GL=vulkan: exit %d: %s", rc, g_out);
  }
  if (!tst_case_failed) run_cmd("rm -rf %s", g_dir);
}

/* --video: renders every evaluation state (one frame after each reset and each step) with each GL
 * backend found, the returns are those of the evaluation without video, ffprobe counts the frames;
 * an output ffmpeg cannot write is an error. Skipped where ffmpeg or a GL context is missing. */
static void test_eval_video(void) {
  const char* bin = getenv("MBPO_BIN");
  if (!bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!g_run[0]) SKIP("no run from the previous case");
  if (run_cmd("command -v ffmpeg") != 0) SKIP("ffmpeg is not installed (Debian: apt-get install ffmpeg)");
  char plain[1024] = "", *p;
  CHECK(run_cmd("%s eval %s episodes=2", bin, g_run) == 0, "eval: %s", g_out);
  if ((p = strstr(g_out, "eval_return_mean="))) snprintf(plain, sizeof plain, "%s", p);
  double len = 0;
  if ((p = strstr(g_out, "mean length "))) len = atof(p + 12);
  int rendered = 0;
  const char* gls[] = {"egl", "osmesa"};
  /* Under make SAN=1 leak checking is off for the GL runs: the Mesa drivers keep allocations past
   * exit (OSMesa) and LeakSanitizer's tracer can crash on their worker threads at exit ("Tracer
   * caught signal 11"); ASan and UBSan stay on. */
  const char* lsan = "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0";
  for (int i = 0; i < 2; i++) {
    int rc = run_cmd("%s MBPO_GL=%s %s eval %s episodes=2 --video %s/%s.mp4", lsan, gls[i], bin, g_run, g_dir,
                     gls[i]);
    if (rc == 2 && strstr(g_out, "offscreen OpenGL")) {
      fprintf(stderr, "  MBPO_GL=%s: no context here (%.200s)\n", gls[i], g_out);
      continue;
    }
    rendered++;
    CHECK(rc == 0, "MBPO_GL=%s --video: exit %d: %s", gls[i], rc, g_out);
    CHECK((p = strstr(g_out, "eval_return_mean=")) && strcmp(p, plain) == 0,
          "MBPO_GL=%s: the returns differ with --video:\n%s\nwithout:\n%s", gls[i], p ? p : g_out, plain);
    long frames = (p = strstr(g_out, "mp4, ")) ? atol(p + 5) : -1;
    CHECK(frames == (long)(2 * len + 2 + 0.5), "MBPO_GL=%s: %ld frames for 2 episodes of mean length %g", gls[i],
          frames, len);
    if (run_cmd("command -v ffprobe") == 0) {
      run_cmd("ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames,width,height "
              "-of csv=p=0 %s/%s.mp4", g_dir, gls[i]);
      char want[64];
      snprintf(want, sizeof want, "640,480,%ld", frames);
      CHECK(strstr(g_out, want) != NULL, "MBPO_GL=%s: ffprobe says %s, want %s", gls[i], g_out, want);
    }
  }
  if (!rendered) SKIP("no offscreen OpenGL context (EGL or OSMesa) on this machine");
  int rc = run_cmd("%s %s eval %s episodes=1 --video %s/no/such/dir/x.mp4", lsan, bin, g_run, g_dir);
  CHECK(rc == 1 && strstr(g_out, "ffmpeg"), "unwritable video path: exit %d: %s", rc, g_out);
}

int main(void) {
  RUN(test_eval_reproduces_progress);
  RUN(test_eval_episodes_seed);
  RUN(test_eval_model_return);
  RUN(test_eval_video);
  RUN(test_eval_bad_input);
  return test_done();
}
