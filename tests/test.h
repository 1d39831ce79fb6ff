/* test.h: a minimal test harness. Each tests/test_*.c is one program:
 *
 *   static void test_something(void) { CHECK(x == 1, "x is %d", x); }
 *   int main(void) { RUN(test_something); return test_done(); }
 *
 * A test case passes when none of its CHECKs fail; SKIP("reason") ends it as skipped. One case is
 * one behaviour: it counts once, however many CHECKs it makes.
 * test_done() prints "N passed, N failed, N skipped" (tests/run.sh adds these up).
 *
 * TEST_ONLY=name[,name...] runs only the cases of those names (the others are not run and not
 * counted): tests/run.sh reruns, under a device mode, only the cases that the mode changes. */
#ifndef MBPO_TEST_H
#define MBPO_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tst_pass, tst_fail, tst_skip;
static int tst_case_failed, tst_case_skipped;
static const char* tst_case_name = "";

/** Record a failure (with a printf-style message) when cond is false; the case goes on. */
#define CHECK(cond, ...)                                                          \
  do {                                                                            \
    if (!(cond)) {                                                                \
      if (!tst_case_failed)                                                       \
        fprintf(stderr, "FAIL %s\n", tst_case_name);                              \
      tst_case_failed = 1;                                                        \
      fprintf(stderr, "  %s:%d: %s: ", __FILE__, __LINE__, #cond);                \
      fprintf(stderr, __VA_ARGS__);                                               \
      fputc('\n', stderr);                                                        \
    }                                                                             \
  } while (0)

/** CHECK that |a - b| <= tol * max(1, |b|) (a relative bound that is absolute near zero). */
#define CHECK_CLOSE(a, b, tol)                                                                  \
  do {                                                                                          \
    double tst_a_ = (double)(a), tst_b_ = (double)(b);                                          \
    double tst_s_ = fabs(tst_b_) > 1.0 ? fabs(tst_b_) : 1.0;                                    \
    CHECK(fabs(tst_a_ - tst_b_) <= (tol) * tst_s_, "%s = %.10g, %s = %.10g, tol %.3g", #a, tst_a_, \
          #b, tst_b_, (double)(tol));                                                           \
  } while (0)

/** End the current case as skipped, with the reason shown. */
#define SKIP(...)                                           \
  do {                                                      \
    tst_case_skipped = 1;                                   \
    fprintf(stderr, "SKIP %s: ", tst_case_name);           \
    fprintf(stderr, __VA_ARGS__);                           \
    fputc('\n', stderr);                                    \
    return;                                                 \
  } while (0)

/* 1 when the case name is selected by TEST_ONLY (unset or empty: every case). */
static inline int tst_selected(const char* name) {
  const char* p = getenv("TEST_ONLY");
  if (!p || !*p) return 1;
  size_t n = strlen(name);
  for (;;) {
    size_t l = strcspn(p, ",");
    if (l == n && strncmp(p, name, n) == 0) return 1;
    if (!p[l]) return 0;
    p += l + 1;
  }
}

/** Run one test case (unless TEST_ONLY leaves it out). */
#define RUN(fn)                                                  \
  do {                                                           \
    if (!tst_selected(#fn)) break;                               \
    tst_case_name = #fn;                                         \
    tst_case_failed = tst_case_skipped = 0;                      \
    fn();                                                        \
    if (tst_case_skipped) tst_skip++;                            \
    else if (tst_case_failed) tst_fail++;                        \
    else {                                                       \
      tst_pass++;                                                \
      if (getenv("TEST_VERBOSE")) fprintf(stderr, "ok   %s\n", #fn); \
    }                                                            \
  } while (0)

/** Print the closing line and return the exit status. */
static inline int test_done(void) {
  printf("%d passed, %d failed, %d skipped\n", tst_pass, tst_fail, tst_skip);
  return tst_fail ? 1 : 0;
}

#endif
