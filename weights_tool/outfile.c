/* outfile.c - see outfile.h. */
#include "outfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUF_SIZE ((size_t)1 << 20)

int64_t owl_outfile_test_space = -1;

static const char *kind(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device"
           : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

owl_status owl_outfile_check(const char *path, const char *const *inputs, int n_inputs, owl_err *err)
{
    struct stat so, si;
    if (!path || !path[0])
        return owl_err_set(err, OWL_E_INVALID, "output path is empty");
    if (stat(path, &so) != 0) {
        if (errno == ENOENT) {
            struct stat sl;
            if (lstat(path, &sl) == 0) /* a dangling symlink: rename would replace it, but say so */
                return owl_err_set(err, OWL_E_INVALID, "%s: is a symlink to a missing file; remove it or "
                                   "give another output path", path);
            return OWL_OK;
        }
        return owl_err_set(err, OWL_E_IO, "%s: cannot check the output: %s", path, strerror(errno));
    }
    if (!S_ISREG(so.st_mode))
        return owl_err_set(err, OWL_E_INVALID, "%s: the output is %s, not a regular file; give a file path",
                           path, kind(so.st_mode));
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i] && stat(inputs[i], &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
            return owl_err_set(err, OWL_E_INVALID, "%s: the output is the input %s; write it elsewhere", path,
                               inputs[i]);
    return OWL_OK;
}

owl_status owl_outfile_open(owl_outfile *o, const char *path, owl_err *err)
{
    memset(o, 0, sizeof *o);
    o->fd = -1;
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) + 1 : 0, n = strlen(path);
    o->path = malloc(n + 1);
    o->tmp = malloc(n + 16);
    o->buf = malloc(BUF_SIZE);
    if (!o->path || !o->tmp || !o->buf) {
        owl_outfile_discard(o);
        return owl_err_set(err, OWL_E_NOMEM, "%s: out of memory", path);
    }
    memcpy(o->path, path, n + 1);
    /* DIR/.BASE.XXXXXX: same folder (rename stays on one file system), hidden */
    snprintf(o->tmp, n + 16, "%.*s.%s.XXXXXX", (int)dl, path, path + dl);
    o->fd = mkstemp(o->tmp);
    if (o->fd < 0) {
        int e = errno;
        free(o->tmp);
        o->tmp = NULL;
        owl_outfile_discard(o);
        return owl_err_set(err, OWL_E_IO, "%s: cannot create a temporary file next to it: %s", path,
                           strerror(e));
    }
    mode_t um = umask(0);
    umask(um);
    fchmod(o->fd, 0666 & ~um); /* mkstemp makes 0600 */
    return OWL_OK;
}

static owl_status flush(owl_outfile *o, owl_err *err)
{
    size_t off = 0;
    while (off < o->n_buf) {
        size_t n = o->n_buf - off;
        ssize_t w;
        if (owl_outfile_test_space >= 0 && (uint64_t)owl_outfile_test_space < n) {
            errno = ENOSPC;
            w = -1;
        } else {
            w = write(o->fd, o->buf + off, n);
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return owl_err_set(err, OWL_E_IO, "%s: write failed after %llu bytes: %s", o->path,
                               (unsigned long long)(o->written + off), w < 0 ? strerror(errno) : "no progress");
        off += (size_t)w;
        if (owl_outfile_test_space >= 0)
            owl_outfile_test_space -= w;
    }
    o->written += o->n_buf;
    o->n_buf = 0;
    return OWL_OK;
}

owl_status owl_outfile_write(owl_outfile *o, const void *data, size_t n, owl_err *err)
{
    const uint8_t *p = data;
    while (n) {
        size_t k = BUF_SIZE - o->n_buf < n ? BUF_SIZE - o->n_buf : n;
        memcpy(o->buf + o->n_buf, p, k);
        o->n_buf += k;
        p += k;
        n -= k;
        if (o->n_buf == BUF_SIZE) {
            owl_status st = flush(o, err);
            if (st)
                return st;
        }
    }
    return OWL_OK;
}

owl_status owl_outfile_close(owl_outfile *o, owl_err *err)
{
    owl_status st = flush(o, err);
    if (!st && fsync(o->fd) != 0 && errno != EINVAL) /* EINVAL: a file system without fsync */
        st = owl_err_set(err, OWL_E_IO, "%s: fsync failed: %s", o->path, strerror(errno));
    if (close(o->fd) != 0 && !st)
        st = owl_err_set(err, OWL_E_IO, "%s: close failed: %s", o->path, strerror(errno));
    o->fd = -1;
    return st;
}

owl_status owl_outfile_rename(owl_outfile *o, owl_err *err)
{
    if (rename(o->tmp, o->path) != 0)
        return owl_err_set(err, OWL_E_IO, "rename %s -> %s failed: %s", o->tmp, o->path, strerror(errno));
    free(o->tmp);
    o->tmp = NULL;
    return OWL_OK;
}

void owl_outfile_discard(owl_outfile *o)
{
    if (!o)
        return;
    if (o->fd >= 0 && o->path)
        close(o->fd);
    if (o->tmp)
        unlink(o->tmp);
    free(o->tmp);
    free(o->path);
    free(o->buf);
    memset(o, 0, sizeof *o);
    o->fd = -1;
}
