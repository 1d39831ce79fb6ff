/* test_learn.c: MBPO learns, end to end on the CPU backend.
 *
 * InvertedPendulum with its preset (the official settings: G 10, F 250, E 250, 500 exploration
 * steps, 100,000-row rollouts of length 1, 7 members / 5 elites of 4 x 200), run through the real
 * binary for at most 5,000 env steps; it must reach a mean deterministic evaluation return of at
 * least 950 (over eval.episodes = 5 episodes). Nothing is shrunk; only stop_return=950 ends the
 * run as soon as an epoch's evaluation reaches the goal, so the test takes minutes, not the whole
 * budget: about 3 minutes on an idle 2-core VM. The time is printed, not checked (speed targets
 * belong to benchmarks, not tests). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Column index of name in a CSV header line, or -1. */
static int column(const char* header, const char* name) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", header);
  int i = 0;
  for (char* tok = strtok(buf, ",\n"); tok; tok = strtok(NULL, ",\n"), i++)
    if (strcmp(tok, name) == 0) return i;
  return -1;
}

/* The i-th field of a CSV line as a number (NAN when empty). */
static double field(const char* line, int i) {
  const char* p = line;
  for (int k = 0; k < i && p; k++) {
    p = strchr(p, ',');
    if (p) p++;
  }
  if (!p || *p == ',' || *p == '\n' || *p == '\0') return NAN;
  return atof(p);
}

/* Built with AddressSanitizer (make SAN=1): the run would take tens of minutes; the sanitizers have
 * the whole loop from test_loop, test_resume and test_faults. */
#if defined(__SANITIZE_ADDRESS__)
#define SAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SAN_BUILD 1
#endif
#endif

static void test_inverted_pendulum_learns(void) {
#ifdef SAN_BUILD
  SKIP("sanitizer build (make SAN=1): a learning run takes tens of minutes under ASan; the plain "
       "build's make test runs it");
#endif
  const char* bin = getenv("MBPO_BIN");
  if (!bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  char dir[] = "/tmp/mbpo-learn-XXXXXX";
  if (!mkdtemp(dir)) SKIP("cannot create a temporary folder");
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "%s train inverted_pendulum run_dir=%s steps=5000 stop_return=950 > %s/log.txt 2>&1", bin,
           dir, dir);
  double t0 = now_s();
  int rc = system(cmd);
  double secs = now_s() - t0;
  CHECK(rc == 0, "mbpo train exited with %d (log: %s/log.txt)", rc, dir);
  char path[512];
  snprintf(path, sizeof path, "%s/inverted_pendulum-mbpo-s0/progress.csv", dir);
  FILE* f = fopen(path, "r");
  CHECK(f != NULL, "no %s", path);
  if (!f) return;
  char line[8192];
  if (!fgets(line, sizeof line, f)) line[0] = '\0';
  int c_steps = column(line, "env_steps"), c_eval = column(line, "eval_return_mean");
  CHECK(c_steps >= 0 && c_eval >= 0, "progress.csv lacks env_steps / eval_return_mean");
  double best = -1e30, at = -1;
  int rows = 0;
  while (fgets(line, sizeof line, f)) {
    double st = field(line, c_steps), ev = field(line, c_eval);
    rows++;
    if (st <= 5000 && ev > best) best = ev, at = st;
  }
  fclose(f);
  fprintf(stderr, "  InvertedPendulum: best evaluation return %.1f at %.0f env steps, %d epochs, %.0f s\n",
          best, at, rows, secs);
  CHECK(best >= 950, "best evaluation return %.1f within 5000 env steps (log: %s/log.txt)", best, dir);
  if (!tst_case_failed) {
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", dir);
  }
}

int main(void) {
  RUN(test_inverted_pendulum_learns);
  return test_done();
}
