/* clock.h: wall-clock timing for logs and benchmarks. */
#ifndef MBPO_CLOCK_H
#define MBPO_CLOCK_H

/** Seconds on the monotonic clock (CLOCK_MONOTONIC) from an arbitrary origin: for differences
 *  only, unaffected by changes of the system time. */
double now_s(void);

#endif
