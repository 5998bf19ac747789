/* outfile.h - output files of owlet-convert that never clobber anything else.
 *
 * An owl_outfile writes to a fresh temporary file in the destination's own
 * folder (mkstemp: O_CREAT|O_EXCL, so a planted file or symlink is never
 * opened or followed), checks every write, fsync and close, and only a
 * successful owl_outfile_rename puts it at the destination. A destination
 * that exists must be a regular file (not /dev/full, a directory, a FIFO) and
 * must not be one of the inputs (same st_dev/st_ino, symlinks followed). */
#ifndef OWL_OUTFILE_H
#define OWL_OUTFILE_H

#include <stddef.h>
#include <stdint.h>

#include "../src/core/status.h"

typedef struct {
    char *path; /* destination */
    char *tmp;  /* the temporary file, NULL once renamed or removed */
    int fd;     /* -1 when closed */
    uint8_t *buf;
    size_t n_buf;
    uint64_t written;
} owl_outfile;

/* OWL_OK if path may be written: it does not exist, or is a regular file (a
 * symlink to one) that is none of inputs[0..n_inputs) (NULL entries skipped).
 * OWL_E_INVALID naming the path and what it is otherwise. */
owl_status owl_outfile_check(const char *path, const char *const *inputs, int n_inputs, owl_err *err);

/* Create the temporary file next to path (after owl_outfile_check). */
owl_status owl_outfile_open(owl_outfile *o, const char *path, owl_err *err);
/* Buffered write; OWL_E_IO with the reason (e.g. "No space left on device"). */
owl_status owl_outfile_write(owl_outfile *o, const void *data, size_t n, owl_err *err);
/* Flush, fsync and close the temporary file. */
owl_status owl_outfile_close(owl_outfile *o, owl_err *err);
/* Rename the closed temporary file over the destination. */
owl_status owl_outfile_rename(owl_outfile *o, owl_err *err);
/* Close and remove the temporary file if any, release o. Always safe after
 * owl_outfile_open (also after a failure or a rename); a zeroed o is a no-op. */
void owl_outfile_discard(owl_outfile *o);

/* Test hook, a disk with this many free bytes: when >= 0, a write past it
 * fails with ENOSPC and writes use it up. -1 (default): off. */
extern int64_t owl_outfile_test_space;

#endif
