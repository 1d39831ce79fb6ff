/* log.h: the one place errors, warnings and notices are reported. */
#ifndef MBPO_LOG_H
#define MBPO_LOG_H

#include <stdarg.h>

#if defined(__GNUC__)
#define MBPO_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define MBPO_NORETURN __attribute__((noreturn))
#else
#define MBPO_PRINTF(a, b)
#define MBPO_NORETURN
#endif

/** Print "mbpo: error: <message>" on stderr and exit with status 1. */
MBPO_NORETURN void mbpo_fatal(const char* fmt, ...) MBPO_PRINTF(1, 2);

/** Print "mbpo: warning: <message>" on stderr and count it (see mbpo_warning_count). */
void mbpo_warn(const char* fmt, ...) MBPO_PRINTF(1, 2);

/** Print "mbpo: <message>" on stderr unless quiet mode is on. */
void mbpo_note(const char* fmt, ...) MBPO_PRINTF(1, 2);

/** Number of warnings reported so far in this process. */
long mbpo_warning_count(void);

/** Quiet mode: suppress notices (warnings and errors still print). */
void mbpo_set_quiet(int quiet);

/** Say whether a live line (run.h's terminal status lines) is showing on stdout without its
 *  newline: errors, warnings and notices clear it first (mbpo_live_clear). */
void mbpo_live_set(int showing);

/** Clear the live line from the terminal, if one is showing. */
void mbpo_live_clear(void);

/** Format into buf (size n) like snprintf, always terminated; returns buf. */
char* mbpo_fmt(char* buf, int n, const char* fmt, ...) MBPO_PRINTF(3, 4);

#endif
