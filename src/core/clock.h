/* clock.h - a monotonic clock for timing (stats, benchmarks); never used in
 * any computation, so results do not depend on it. */
#ifndef OWL_CORE_CLOCK_H
#define OWL_CORE_CLOCK_H

/* Milliseconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
double owl_now_ms(void);

#endif
