/* status.h - error codes and the per-object error record.
 *
 * Every fallible call returns owl_status (0 = OWL_OK, negative = error) and, when
 * given an owl_err, leaves a one-line message there naming the thing and the
 * values ("blk.3.attn_k: want q4_K 4096x4096, got f16"). No call aborts on bad
 * input; OWL_ASSERT is only for our own broken invariants. */
#ifndef OWL_STATUS_H
#define OWL_STATUS_H

#include <stddef.h>

typedef enum {
    OWL_OK = 0,
    OWL_E_INVALID = -1,   /* bad argument from the caller */
    OWL_E_FORMAT = -2,    /* malformed file / data (GGUF, manifest, image, pickle) */
    OWL_E_TRUNCATED = -3, /* data ends early */
    OWL_E_UNSUPPORTED = -4, /* valid but not supported (type, version, arch) */
    OWL_E_NOMEM = -5,     /* allocation failed or over a stated limit */
    OWL_E_IO = -6,        /* file system error */
    OWL_E_LIMIT = -7,     /* input exceeds a documented limit (context, pixels, images) */
    OWL_E_NOTFOUND = -8,  /* missing tensor / key / file */
    OWL_E_CANCELLED = -9, /* stopped by the caller */
    OWL_E_STATE = -10     /* call not valid in the object's current state */
} owl_status;

#define OWL_ERR_MSG_MAX 256

/* An error record owned by whatever object reports through it. */
typedef struct {
    owl_status code;
    char msg[OWL_ERR_MSG_MAX];
} owl_err;

/* Set err (may be NULL) to code with a printf-style message; returns code. */
owl_status owl_err_set(owl_err *err, owl_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void owl_err_clear(owl_err *err);
/* Short constant name of a status ("OWL_E_FORMAT"). */
const char *owl_status_name(owl_status s);

/* OWL_ASSERT (our own invariants only) */
#include "../kernels/debug.h"

#endif
