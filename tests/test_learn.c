/* test_learn.c: MBPO learns, end to end on the CPU backend.
 *
 * InvertedPendulum with its preset (the official settings: G 10, F 250, E 250, 500 exploration
 * steps, 100,000-row rollouts of length 1, 7 members / 5 elites of 4 x 200), run through the real
 * binary for at most 5,000 env steps; it must reach a mean deterministic evaluation return of at
 * least 950 (over eval.episodes = 5 episodes). Nothing is shrunk; only stop_return=950 ends the
 * run as soon as an epoch's evaluation reaches the goal, so the test takes minutes, not the whole
 * budget: about 3 minutes on an idle 2-core VM. The time is printed, not checked (speed targets
 * belong to benchmarks, not tests), but a run is stopped after a time limit (MBPO_TEST_LEARN_LIMIT
 * seconds, default 1200, several times the expected time on a busy machine) and the case fails
 * saying so: a hang does not block `make test`.
 *
 * Rollouts longer than 1 (test_long_rollouts_learn): the preset learns with k = 1 (the official
 * setting); the same task with rollouts of k = 5 model steps (rollout.min_length =
 * rollout.max_length = 5, 20,000 start states so that the model pool stays the preset's 100,000 rows)
 * must improve on its start: its best evaluation within 2,000 env steps at least 100 and at least
 * 3 times epoch 0's (an untrained policy keeps the pole up for about 5-30 steps; measured on the
 * 2-core VM: 18 after epoch 0, 127 after epoch 1, where stop_return=100 ends the run).
 * Every run says device=cpu: these are the CPU backend's learning tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "clock.h"
#include "test.h"

/* The k = 5 run's settings (see the top). */
#define LONG_ROLLOUTS "rollout.min_length=5 rollout.max_length=5 rollout.batch=20000 stop_return=100"

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

/* The time limit of one learning run, in seconds. */
static int limit_s(void) {
  const char* v = getenv("MBPO_TEST_LEARN_LIMIT");
  int n = v ? atoi(v) : 0;
  return n > 0 ? n : 1200;
}

/* Train InvertedPendulum with the preset and extra settings for at most `steps` env steps under the
 * time limit; the best and the first evaluation return in progress.csv. 0, or -1 after a failed
 * CHECK (the folder is kept for a look). */
static int learn(const char* extra, long steps, double* best, double* first, double* at) {
  const char* bin = getenv("MBPO_BIN");
  char dir[] = "/tmp/mbpo-learn-XXXXXX";
  if (!mkdtemp(dir)) {
    CHECK(0, "cannot create a temporary folder");
    return -1;
  }
  char cmd[2048];
  int lim = limit_s();
  /* timeout: SIGTERM at the limit (mbpo checkpoints and exits), SIGKILL 30 s later; exit 124 */
  snprintf(cmd, sizeof cmd,
           "timeout -k 30 %d %s train inverted_pendulum device=cpu run_dir=%s steps=%ld %s > %s/log.txt 2>&1", lim,
           bin, dir, steps, extra, dir);
  double t0 = now_s();
  int st = system(cmd);
  int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  double secs = now_s() - t0;
  CHECK(rc != 124 && rc != 137, "mbpo train did not finish within the time limit of %d s (MBPO_TEST_LEARN_LIMIT): "
        "stopped after %.0f s, a hang or a far slower machine (log: %s/log.txt)", lim, secs, dir);
  CHECK(rc == 0 || rc == 124 || rc == 137, "mbpo train exited with %d (log: %s/log.txt)", rc, dir);
  if (rc != 0) return -1;
  char path[512];
  snprintf(path, sizeof path, "%s/inverted_pendulum-mbpo-s0/progress.csv", dir);
  FILE* f = fopen(path, "r");
  CHECK(f != NULL, "no %s", path);
  if (!f) return -1;
  char line[8192];
  if (!fgets(line, sizeof line, f)) line[0] = '\0';
  int c_steps = column(line, "env_steps"), c_eval = column(line, "eval_return_mean");
  CHECK(c_steps >= 0 && c_eval >= 0, "progress.csv lacks env_steps / eval_return_mean");
  *best = -1e30, *at = -1, *first = NAN;
  int rows = 0;
  while (fgets(line, sizeof line, f)) {
    double stp = field(line, c_steps), ev = field(line, c_eval);
    if (rows++ == 0) *first = ev;
    if (stp <= steps && ev > *best) *best = ev, *at = stp;
  }
  fclose(f);
  fprintf(stderr, "  InvertedPendulum %s: best evaluation return %.1f at %.0f env steps (epoch 0: %.1f), %d epochs, %.0f s\n",
          extra, *best, *at, *first, rows, secs);
  if (tst_case_failed) return -1;
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", dir);
  return 0;
}

/* Skip a learning case where it cannot run: under the sanitizers (tens of minutes under ASan; the
 * plain build's make test runs it) or without the binary. */
#ifdef SAN_BUILD
#define NEED_LEARNING_RUN() SKIP("sanitizer build (make SAN=1): a learning run takes tens of minutes under ASan")
#else
#define NEED_LEARNING_RUN() \
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)")
#endif

static void test_inverted_pendulum_learns(void) {
  NEED_LEARNING_RUN();
  double best, first, at;
  if (learn("stop_return=950", 5000, &best, &first, &at) != 0) return;
  CHECK(best >= 950, "best evaluation return %.1f within 5000 env steps", best);
}

static void test_long_rollouts_learn(void) {
  NEED_LEARNING_RUN();
  double best, first, at;
  if (learn(LONG_ROLLOUTS, 2000, &best, &first, &at) != 0) return;
  CHECK(best >= 100 && best >= 3 * first, "k = 5: best evaluation return %.1f within 2000 env steps, epoch 0 %.1f",
        best, first);
}

int main(void) {
  RUN(test_inverted_pendulum_learns);
  RUN(test_long_rollouts_learn);
  return test_done();
}
