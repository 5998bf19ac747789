/* debug.h - OWL_ASSERT, the check of our own invariants (never of input).
 *
 * On in test and debug builds (-DOWL_DEBUG): prints file:line and the
 * expression, then aborts. Off otherwise. It lives in kernels, the lowest
 * layer, so every layer can use it; core/status.h re-exports it. Bad input is
 * an owl_status error (core/status.h), never an assertion. */
#ifndef OWL_DEBUG_H
#define OWL_DEBUG_H

#ifdef OWL_DEBUG
#include <stdio.h>
#include <stdlib.h>
#define OWL_ASSERT(x)                                                              \
    do {                                                                           \
        if (!(x)) {                                                                \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #x); \
            abort();                                                               \
        }                                                                          \
    } while (0)
#else
#define OWL_ASSERT(x) ((void)0)
#endif

#endif
