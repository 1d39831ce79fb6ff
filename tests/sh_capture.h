/* sh_capture.h: run a shell command line from a test, capturing stdout and stderr together. */
#ifndef MBPO_SH_CAPTURE_H
#define MBPO_SH_CAPTURE_H

#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>

/* Run the shell command cmd as it stands (its own redirections) with its stdout in out (n bytes,
 * NUL-terminated; the rest is read and dropped). Returns the exit status (-1 on a signal, -2 when
 * it could not start). */
static int sh_read(const char* cmd, char* out, size_t n) {
  FILE* p = popen(cmd, "r");
  if (!p) return -2;
  size_t len = 0, got;
  while (len + 1 < n && (got = fread(out + len, 1, n - 1 - len, p)) > 0) len += got;
  out[len] = 0;
  char sink[4096];
  while (fread(sink, 1, sizeof sink, p) > 0) {
  }
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Run cmdline with its output (stdout and stderr) in out, as sh_read. */
static inline int run_sh(const char* cmdline, char* out, size_t n) {
  char cmd[8300];
  snprintf(cmd, sizeof cmd, "%s 2>&1", cmdline);
  return sh_read(cmd, out, n);
}

/* run_sh of a command line given as a printf format. */
static int run_shf(char* out, size_t n, const char* fmt, ...) __attribute__((format(printf, 3, 4), unused));
static int run_shf(char* out, size_t n, const char* fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  return run_sh(cmd, out, n);
}

#endif
