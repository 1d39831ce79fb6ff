/* log.c: error, warning and notice reporting (log.h). */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>

static long g_warnings;
static int g_quiet;
static int g_live; /* a live line is showing on stdout (no newline yet) */

void mbpo_live_set(int showing) { __atomic_store_n(&g_live, showing, __ATOMIC_RELAXED); }

void mbpo_live_clear(void) {
  if (!__atomic_exchange_n(&g_live, 0, __ATOMIC_RELAXED)) return;
  fputs("\r\033[K", stdout);
  fflush(stdout);
}

void mbpo_fatal(const char* fmt, ...) {
  va_list ap;
  mbpo_live_clear();
  fflush(stdout);
  fputs("mbpo: error: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

void mbpo_warn(const char* fmt, ...) {
  va_list ap;
  __atomic_add_fetch(&g_warnings, 1, __ATOMIC_RELAXED);
  mbpo_live_clear();
  fputs("mbpo: warning: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

void mbpo_note(const char* fmt, ...) {
  va_list ap;
  if (g_quiet) return;
  mbpo_live_clear();
  fputs("mbpo: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

long mbpo_warning_count(void) { return __atomic_load_n(&g_warnings, __ATOMIC_RELAXED); }

void mbpo_set_quiet(int quiet) { g_quiet = quiet; }

char* mbpo_fmt(char* buf, int n, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, (size_t)n, fmt, ap);
  va_end(ap);
  return buf;
}
