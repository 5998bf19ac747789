/* fuzz_util.h - helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * A target checks two things beyond "no sanitizer report": every byte a parser
 * hands back is readable (owl_fuzz_touch reads it, so ASan flags a range that
 * runs past its buffer) and the invariants the headers promise hold
 * (OWL_FUZZ_CHECK traps with a message, which libFuzzer reports as a crash). */
#ifndef OWL_FUZZ_UTIL_H
#define OWL_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../src/core/status.h"

#define OWL_FUZZ_CHECK(cond)                                                         \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

static volatile uint8_t owl_fuzz_sink;

/* Read every byte of p[0..n) (a checksum the optimiser cannot drop). */
static inline void owl_fuzz_touch(const void *p, size_t n)
{
    const uint8_t *b = (const uint8_t *)p;
    uint8_t x = 0;
    for (size_t i = 0; i < n; i++)
        x ^= b[i];
    owl_fuzz_sink ^= x;
}

/* With OWL_FUZZ_VERBOSE set in the environment, say what the code under test
 * made of the input (to check that seeds are accepted: run the target on the
 * seed files). n is what it found (tensors, ...). */
static inline void owl_fuzz_verbose(const char *what, owl_status st, const owl_err *err, size_t n)
{
    if (getenv("OWL_FUZZ_VERBOSE"))
        fprintf(stderr, "%s: status %d (%s) n %zu\n", what, (int)st, st ? err->msg : "ok", n);
}

#endif
