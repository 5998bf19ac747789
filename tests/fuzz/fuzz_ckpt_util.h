/* fuzz_ckpt_util.h - the checkpoint readers (weights_tool/ckpt.h) take a path,
 * not (data, size): the targets put the input in a memfd and pass
 * "/proc/self/fd/N". After a successful open every tensor is read (its first
 * and last up-to-1024 elements) with owl_ckpt_read, which must succeed for
 * F32/F16/BF16 tensors since the reader checked their views at open. */
#ifndef OWL_FUZZ_CKPT_UTIL_H
#define OWL_FUZZ_CKPT_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../weights_tool/ckpt.h"
#include "fuzz_util.h"

/* A memfd holding data[0..size); path receives its /proc/self/fd name. */
static int owl_fuzz_memfd(const uint8_t *data, size_t size, char *path, size_t path_cap)
{
    int fd = memfd_create("owl_fuzz", 0);
    OWL_FUZZ_CHECK(fd >= 0);
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        OWL_FUZZ_CHECK(w > 0);
        done += (size_t)w;
    }
    snprintf(path, path_cap, "/proc/self/fd/%d", fd);
    return fd;
}

static void owl_fuzz_read_tensors(const owl_ckpt *ck)
{
    static float buf[1024];
    for (size_t i = 0; i < ck->n; i++) {
        const owl_ck_tensor *t = &ck->t[i];
        OWL_FUZZ_CHECK(t->name != NULL);
        OWL_FUZZ_CHECK(t->n_dims >= 0 && t->n_dims <= OWL_CK_MAX_DIMS);
        OWL_FUZZ_CHECK(t->file >= 0 && t->file < ck->n_files);
        int64_t numel = owl_ck_numel(t);
        OWL_FUZZ_CHECK(numel >= 0);
        int64_t n = numel < 1024 ? numel : 1024;
        owl_err err;
        owl_status a = owl_ckpt_read(ck, t, 0, n, buf, &err);
        owl_status b = owl_ckpt_read(ck, t, numel - n, n, buf, &err);
        if (owl_ckpt_elem_size(t->dtype)) {
            if (a || b)
                fprintf(stderr, "read of %s failed: %s\n", t->name, err.msg);
            OWL_FUZZ_CHECK(a == OWL_OK && b == OWL_OK);
        }
        (void)owl_ckpt_find((owl_ckpt *)ck, t->name);
    }
}

#endif
