/* ckpt.c - checkpoint index: files, safetensors, sharding index, strided reads
 * (see ckpt.h). The torch.save zip/pickle reader is in torch.c. */
#include "ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/core/json.h"

size_t owl_ckpt_elem_size(owl_type t)
{
    switch (t) {
    case OWL_TYPE_F32: return 4;
    case OWL_TYPE_F16: return 2;
    case OWL_TYPE_BF16: return 2;
    default: return 0;
    }
}

int64_t owl_ck_numel(const owl_ck_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++)
        n *= t->shape[d];
    return n;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

owl_status owl_ck_add_file(owl_ckpt *ck, const char *path, int *idx, uint64_t *fsize, owl_err *err)
{
    if (ck->n_files >= OWL_CK_MAX_FILES)
        return owl_err_set(err, OWL_E_LIMIT, "%s: more than %d checkpoint files", path, OWL_CK_MAX_FILES);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return owl_err_set(err, errno == ENOENT ? OWL_E_NOTFOUND : OWL_E_IO, "%s: cannot open: %s", path,
                           strerror(errno));
    struct stat stt;
    if (fstat(fd, &stt) || !S_ISREG(stt.st_mode)) {
        close(fd);
        return owl_err_set(err, OWL_E_IO, "%s: not a regular file", path);
    }
    char **np = realloc(ck->paths, (size_t)(ck->n_files + 1) * sizeof *np);
    if (np)
        ck->paths = np;
    int *nf = np ? realloc(ck->fds, (size_t)(ck->n_files + 1) * sizeof *nf) : NULL;
    if (nf)
        ck->fds = nf;
    char *dup = nf ? strdup(path) : NULL;
    if (!dup) {
        close(fd);
        return owl_err_set(err, OWL_E_NOMEM, "%s: out of memory", path);
    }
    ck->paths[ck->n_files] = dup;
    ck->fds[ck->n_files] = fd;
    *idx = ck->n_files++;
    *fsize = (uint64_t)stt.st_size;
    return OWL_OK;
}

owl_status owl_ck_push(owl_ckpt *ck, const owl_ck_tensor *t, owl_err *err)
{
    if (owl_ckpt_find(ck, t->name)) {
        owl_status st = owl_err_set(err, OWL_E_FORMAT, "%s: tensor %s appears twice", ck->paths[t->file], t->name);
        free(t->name);
        return st;
    }
    if (ck->n >= OWL_CK_MAX_TENSORS) {
        free(t->name);
        return owl_err_set(err, OWL_E_LIMIT, "%s: more than %d tensors", ck->paths[t->file], OWL_CK_MAX_TENSORS);
    }
    if (ck->n == ck->cap) {
        size_t nc = ck->cap ? ck->cap * 2 : 256;
        owl_ck_tensor *nt = realloc(ck->t, nc * sizeof *nt);
        if (!nt) {
            free(t->name);
            return owl_err_set(err, OWL_E_NOMEM, "checkpoint index: out of memory");
        }
        ck->t = nt;
        ck->cap = nc;
    }
    ck->t[ck->n++] = *t;
    return OWL_OK;
}

owl_ck_tensor *owl_ckpt_find(owl_ckpt *ck, const char *name)
{
    /* linear: ~900 names, looked up ~900 times */
    for (size_t i = 0; i < ck->n; i++)
        if (!strcmp(ck->t[i].name, name))
            return &ck->t[i];
    return NULL;
}

void owl_ckpt_free(owl_ckpt *ck)
{
    if (!ck)
        return;
    for (int i = 0; i < ck->n_files; i++) {
        close(ck->fds[i]);
        free(ck->paths[i]);
    }
    for (size_t i = 0; i < ck->n; i++)
        free(ck->t[i].name);
    free(ck->paths);
    free(ck->fds);
    free(ck->cache);
    free(ck->t);
    memset(ck, 0, sizeof *ck);
}

owl_status owl_ck_pread(const owl_ckpt *ck, int file, uint64_t off, void *buf, size_t n, owl_err *err)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = pread(ck->fds[file], p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return owl_err_set(err, OWL_E_IO, "%s: read at %llu: %s", ck->paths[file], (unsigned long long)off,
                               strerror(errno));
        if (r == 0)
            return owl_err_set(err, OWL_E_TRUNCATED, "%s: file ends at %llu", ck->paths[file],
                               (unsigned long long)off);
        p += r;
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    return OWL_OK;
}

owl_status owl_ck_check_view(const owl_ckpt *ck, const owl_ck_tensor *t, uint64_t storage_end, owl_err *err)
{
    size_t es = owl_ckpt_elem_size(t->dtype);
    if (!es)
        return OWL_OK; /* unreadable dtype: rejected if the tensor is ever used */
    uint64_t span = 0, numel = 1; /* span: highest element index touched */
    for (int d = 0; d < t->n_dims; d++) {
        if (t->shape[d] < 0 || t->stride[d] < 0 || t->shape[d] > ((int64_t)1 << 40) ||
            t->stride[d] > ((int64_t)1 << 40))
            return owl_err_set(err, OWL_E_FORMAT, "%s: %s: bad size %lld / stride %lld in dim %d",
                               ck->paths[t->file], t->name, (long long)t->shape[d], (long long)t->stride[d], d);
        if (t->shape[d] == 0)
            return OWL_OK; /* empty */
        if (t->stride[d] && (uint64_t)(t->shape[d] - 1) > ((uint64_t)1 << 50) / (uint64_t)t->stride[d])
            return owl_err_set(err, OWL_E_FORMAT, "%s: %s: view too large", ck->paths[t->file], t->name);
        span += (uint64_t)(t->shape[d] - 1) * (uint64_t)t->stride[d]; /* <= 8 * 2^50 */
        if (numel > ((uint64_t)1 << 40) / (uint64_t)t->shape[d])
            return owl_err_set(err, OWL_E_FORMAT, "%s: %s: more than 2^40 elements", ck->paths[t->file], t->name);
        numel *= (uint64_t)t->shape[d];
    }
    uint64_t end = t->base + (span + 1) * es;
    if (end < t->base || end > storage_end)
        return owl_err_set(err, OWL_E_FORMAT,
                           "%s: %s: data [%llu, %llu) runs past its storage/file end %llu", ck->paths[t->file],
                           t->name, (unsigned long long)t->base, (unsigned long long)end,
                           (unsigned long long)storage_end);
    return OWL_OK;
}

static int is_contiguous(const owl_ck_tensor *t)
{
    int64_t want = 1;
    for (int d = t->n_dims - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != want)
            return 0;
        want *= t->shape[d];
    }
    return 1;
}

static void to_f32(owl_type dt, const uint8_t *src, float *dst, int64_t n)
{
    if (dt == OWL_TYPE_F32) {
        memcpy(dst, src, (size_t)n * 4);
    } else if (dt == OWL_TYPE_F16) {
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = owl_f16_to_f32(h);
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = owl_bf16_to_f32(h);
        }
    }
}

owl_status owl_ckpt_read(const owl_ckpt *cck, const owl_ck_tensor *t, int64_t e0, int64_t n, float *out,
                         owl_err *err)
{
    owl_ckpt *ck = (owl_ckpt *)cck; /* only the view cache changes: logically const */
    size_t es = owl_ckpt_elem_size(t->dtype);
    if (!es)
        return owl_err_set(err, OWL_E_UNSUPPORTED, "%s: %s: unsupported dtype (want F32, F16 or BF16)",
                           ck->paths[t->file], t->name);
    int64_t numel = owl_ck_numel(t);
    if (e0 < 0 || n < 0 || e0 > numel || n > numel - e0)
        return owl_err_set(err, OWL_E_INVALID, "%s: read [%lld, +%lld) outside %lld elements", t->name,
                           (long long)e0, (long long)n, (long long)numel);
    if (n == 0)
        return OWL_OK;
    if (is_contiguous(t)) {
        /* convert in place: the 2-byte source sits in the upper half of out */
        uint8_t *tmp = (uint8_t *)out + (es == 2 ? (size_t)n * 2 : 0);
        owl_status st = owl_ck_pread(ck, t->file, t->base + (uint64_t)e0 * es, tmp, (size_t)n * es, err);
        if (st)
            return st;
        if (es == 2)
            to_f32(t->dtype, tmp, out, n); /* forward walk: dst[i] ends before src[i] starts */
        return OWL_OK;
    }
    /* Strided (transposed or sliced views): walk innermost runs of L elements with
     * stride s. A view spanning <= OWL_CK_VIEW_CACHE bytes is read once and kept while
     * its rows are asked for (a transposed matrix touches its whole storage for every
     * row); a larger one is read run by run. */
    int nd = t->n_dims;
    int64_t L = nd ? t->shape[nd - 1] : 1, s = nd ? t->stride[nd - 1] : 1;
    uint64_t span = 1;
    for (int d = 0; d < nd; d++)
        span += (uint64_t)(t->shape[d] - 1) * (uint64_t)t->stride[d]; /* bounded at open */
    int cached = span * es <= (ck->view_cache_max ? ck->view_cache_max : OWL_CK_VIEW_CACHE);
    if (cached && ck->cache_t != t) {
        free(ck->cache);
        ck->cache_t = NULL;
        if (!(ck->cache = malloc((size_t)(span * es))))
            return owl_err_set(err, OWL_E_NOMEM, "%s: out of memory for a %llu byte view", t->name,
                               (unsigned long long)(span * es));
        owl_status st = owl_ck_pread(ck, t->file, t->base, ck->cache, (size_t)(span * es), err);
        if (st)
            return st;
        ck->cache_t = t;
    }
    size_t runb = (size_t)((L - 1) * s + 1) * es;
    uint8_t *run = cached ? NULL : malloc(runb);
    if (!cached && !run)
        return owl_err_set(err, OWL_E_NOMEM, "%s: out of memory for a %zu byte row", t->name, runb);
    owl_status st = OWL_OK;
    int64_t e = e0, end = e0 + n;
    while (e < end && !st) {
        int64_t q = e / L, j = e % L, rem = q;
        uint64_t off = 0;
        for (int d = nd - 2; d >= 0; d--) {
            off += (uint64_t)(rem % t->shape[d]) * (uint64_t)t->stride[d];
            rem /= t->shape[d];
        }
        const uint8_t *src = cached ? ck->cache + off * es : run;
        if (!cached && (st = owl_ck_pread(ck, t->file, t->base + off * es, run, runb, err)))
            break;
        int64_t take = L - j < end - e ? L - j : end - e;
        for (int64_t k = j; k < j + take; k++) {
            uint8_t tmp[4];
            memcpy(tmp, src + (size_t)(k * s) * es, es);
            to_f32(t->dtype, tmp, out + (e - e0) + (k - j), 1);
        }
        e += take;
    }
    free(run);
    return st;
}

/* ---------------------------------------------------------------- small files */

owl_status owl_conv_read_file(const char *path, char **out, size_t *size, owl_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return owl_err_set(err, errno == ENOENT ? OWL_E_NOTFOUND : OWL_E_IO, "%s: cannot open: %s", path,
                           strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= OWL_CK_MAX_HEADER) {
                fclose(f);
                free(buf);
                return owl_err_set(err, OWL_E_LIMIT, "%s: larger than %llu bytes", path,
                                   (unsigned long long)OWL_CK_MAX_HEADER);
            }
            cap = cap ? cap * 2 : 4096;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                fclose(f);
                free(buf);
                return owl_err_set(err, OWL_E_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return owl_err_set(err, OWL_E_IO, "%s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    *size = n;
    return OWL_OK;
}

/* ---------------------------------------------------------------- safetensors */

static owl_status st_entry(owl_ckpt *ck, int fi, const char *key, const owl_json *e, uint64_t data0,
                           uint64_t fsize, uint64_t range[2], owl_err *err)
{
    const char *path = ck->paths[fi];
    const owl_json *dt = owl_json_get(e, "dtype"), *sh = owl_json_get(e, "shape"),
                   *of = owl_json_get(e, "data_offsets");
    if (!dt || dt->type != OWL_JSON_STRING || !sh || sh->type != OWL_JSON_ARRAY || !of ||
        of->type != OWL_JSON_ARRAY || of->len != 2)
        return owl_err_set(err, OWL_E_FORMAT, "%s: %s: header entry needs dtype, shape, data_offsets", path, key);
    owl_ck_tensor t = {0};
    if (!strcmp(dt->str, "F32"))
        t.dtype = OWL_TYPE_F32;
    else if (!strcmp(dt->str, "F16"))
        t.dtype = OWL_TYPE_F16;
    else if (!strcmp(dt->str, "BF16"))
        t.dtype = OWL_TYPE_BF16;
    else
        t.dtype = OWL_TYPE_COUNT; /* e.g. I64 buffers: an error only if the tensor is used */
    if (sh->len > OWL_CK_MAX_DIMS)
        return owl_err_set(err, OWL_E_LIMIT, "%s: %s: %zu dims", path, key, sh->len);
    t.n_dims = (int)sh->len;
    uint64_t numel = 1;
    for (size_t d = 0; d < sh->len; d++) {
        const owl_json *x = &sh->items[d];
        if (x->type != OWL_JSON_NUMBER || !x->is_int || x->integer < 0 || x->integer > ((int64_t)1 << 40))
            return owl_err_set(err, OWL_E_FORMAT, "%s: %s: bad shape[%zu]", path, key, d);
        t.shape[d] = x->integer;
        if (x->integer && numel > ((uint64_t)1 << 40) / (uint64_t)x->integer)
            return owl_err_set(err, OWL_E_FORMAT, "%s: %s: more than 2^40 elements", path, key);
        numel *= (uint64_t)x->integer;
    }
    int64_t stride = 1;
    for (int d = t.n_dims - 1; d >= 0; d--) {
        t.stride[d] = stride;
        stride *= t.shape[d];
    }
    const owl_json *b = &of->items[0], *en = &of->items[1];
    if (b->type != OWL_JSON_NUMBER || !b->is_int || en->type != OWL_JSON_NUMBER || !en->is_int || b->integer < 0 ||
        en->integer < b->integer)
        return owl_err_set(err, OWL_E_FORMAT, "%s: %s: bad data_offsets", path, key);
    uint64_t begin = (uint64_t)b->integer, end = (uint64_t)en->integer;
    size_t es = owl_ckpt_elem_size(t.dtype);
    if (es && end - begin != numel * es)
        return owl_err_set(err, OWL_E_FORMAT, "%s: %s: %llu bytes for %llu elements of %s", path, key,
                           (unsigned long long)(end - begin), (unsigned long long)numel, dt->str);
    if (end > fsize - data0)
        return owl_err_set(err, OWL_E_TRUNCATED, "%s: %s: data ends at %llu, file has %llu", path, key,
                           (unsigned long long)(data0 + end), (unsigned long long)fsize);
    t.file = fi;
    t.base = data0 + begin;
    range[0] = begin;
    range[1] = end;
    t.name = strdup(key);
    if (!t.name)
        return owl_err_set(err, OWL_E_NOMEM, "out of memory");
    return owl_ck_push(ck, &t, err);
}

typedef struct {
    uint64_t begin, end;
    size_t key; /* index in the header object */
} st_range;

static int range_cmp(const void *x, const void *y)
{
    const st_range *a = x, *b = y;
    return a->begin < b->begin ? -1 : a->begin > b->begin;
}

/* Entries' byte ranges must be disjoint: aliased tensors (one byte range for
 * two weights) are refused, as the safetensors library does. */
static owl_status check_overlap(const char *path, const owl_json *j, st_range *r, size_t n, owl_err *err)
{
    qsort(r, n, sizeof *r, range_cmp);
    for (size_t i = 1; i < n; i++)
        if (r[i].begin < r[i - 1].end)
            return owl_err_set(err, OWL_E_FORMAT, "%s: tensors %s [%llu, %llu) and %s [%llu, %llu) overlap in "
                               "data_offsets (aliased weights)", path, j->keys[r[i - 1].key],
                               (unsigned long long)r[i - 1].begin, (unsigned long long)r[i - 1].end,
                               j->keys[r[i].key], (unsigned long long)r[i].begin, (unsigned long long)r[i].end);
    return OWL_OK;
}

owl_status owl_ckpt_add_safetensors(owl_ckpt *ck, const char *path, owl_err *err)
{
    int fi;
    uint64_t fsize;
    owl_status st = owl_ck_add_file(ck, path, &fi, &fsize, err);
    if (st)
        return st;
    uint8_t h8[8];
    if (fsize < 8)
        return owl_err_set(err, OWL_E_TRUNCATED, "%s: %llu bytes, too short for safetensors", path,
                           (unsigned long long)fsize);
    if ((st = owl_ck_pread(ck, fi, 0, h8, 8, err)))
        return st;
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--)
        hn = hn << 8 | h8[i];
    if (hn > OWL_CK_MAX_HEADER || hn > fsize - 8)
        return owl_err_set(err, hn > OWL_CK_MAX_HEADER ? OWL_E_LIMIT : OWL_E_TRUNCATED,
                           "%s: header of %llu bytes (file %llu)", path, (unsigned long long)hn,
                           (unsigned long long)fsize);
    char *hdr = malloc((size_t)hn + 1);
    if (!hdr)
        return owl_err_set(err, OWL_E_NOMEM, "%s: out of memory", path);
    if ((st = owl_ck_pread(ck, fi, 8, hdr, (size_t)hn, err))) {
        free(hdr);
        return st;
    }
    owl_json *j = NULL;
    st = owl_json_parse(hdr, (size_t)hn, &j, err);
    free(hdr);
    if (st) {
        char m[OWL_ERR_MSG_MAX];
        snprintf(m, sizeof m, "%s", err ? err->msg : "");
        return owl_err_set(err, st, "%s: header: %s", path, m);
    }
    if (j->type != OWL_JSON_OBJECT) {
        owl_json_free(j);
        return owl_err_set(err, OWL_E_FORMAT, "%s: header is not an object", path);
    }
    /* [begin, end) of each entry, to refuse two tensors sharing bytes */
    st_range *rg = malloc((j->len ? j->len : 1) * sizeof *rg);
    size_t nr = 0;
    if (!rg)
        st = owl_err_set(err, OWL_E_NOMEM, "%s: out of memory", path);
    for (size_t k = 0; k < j->len && !st; k++) {
        if (!strcmp(j->keys[k], "__metadata__"))
            continue;
        uint64_t r[2] = {0, 0};
        st = st_entry(ck, fi, j->keys[k], &j->items[k], 8 + hn, fsize, r, err);
        if (!st && r[1] > r[0])
            rg[nr++] = (st_range){r[0], r[1], k};
    }
    st = st ? st : check_overlap(path, j, rg, nr, err);
    free(rg);
    owl_json_free(j);
    return st;
}

/* ---------------------------------------------------------------- directory */

static int file_exists(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0;
}

/* Sharded: read index.json, open each distinct shard once, check that every
 * key of weight_map is in the shard it names. */
static owl_status add_sharded(owl_ckpt *ck, const char *dir, const char *index, int safet, owl_err *err)
{
    char *buf = NULL;
    size_t n = 0;
    owl_status st = owl_conv_read_file(index, &buf, &n, err);
    if (st)
        return st;
    owl_json *j = NULL;
    st = owl_json_parse(buf, n, &j, err);
    free(buf);
    if (st) {
        char m[OWL_ERR_MSG_MAX];
        snprintf(m, sizeof m, "%s", err ? err->msg : "");
        return owl_err_set(err, st, "%s: %s", index, m);
    }
    const owl_json *wm = owl_json_get(j, "weight_map");
    if (!wm || wm->type != OWL_JSON_OBJECT) {
        owl_json_free(j);
        return owl_err_set(err, OWL_E_FORMAT, "%s: no weight_map object", index);
    }
    for (size_t k = 0; k < wm->len && !st; k++) {
        const owl_json *v = &wm->items[k];
        if (v->type != OWL_JSON_STRING || !v->len || strchr(v->str, '/') || strchr(v->str, '\\') ||
            !strcmp(v->str, "..") || !strcmp(v->str, ".") || strlen(v->str) != v->len) {
            st = owl_err_set(err, OWL_E_FORMAT, "%s: %s: bad shard file name", index, wm->keys[k]);
            break;
        }
        int seen = 0;
        for (size_t p = 0; p < k && !seen; p++)
            seen = !strcmp(wm->items[p].str, v->str);
        if (seen)
            continue;
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, v->str) >= sizeof path) {
            st = owl_err_set(err, OWL_E_LIMIT, "%s: path too long", v->str);
            break;
        }
        if (!file_exists(path)) {
            st = owl_err_set(err, OWL_E_NOTFOUND, "%s: shard %s (for %s) is missing", index, path, wm->keys[k]);
            break;
        }
        st = safet ? owl_ckpt_add_safetensors(ck, path, err) : owl_ckpt_add_torch(ck, path, err);
    }
    for (size_t k = 0; k < wm->len && !st; k++) {
        owl_ck_tensor *t = owl_ckpt_find(ck, wm->keys[k]);
        if (!t || strcmp(base_name(ck->paths[t->file]), wm->items[k].str))
            st = owl_err_set(err, OWL_E_NOTFOUND, "%s: %s: not found in shard %s", index, wm->keys[k],
                             wm->items[k].str);
    }
    owl_json_free(j);
    return st;
}

owl_status owl_ckpt_open(owl_ckpt *ck, const char *dir, const char *prefer, owl_err *err)
{
    memset(ck, 0, sizeof *ck);
    static const struct {
        const char *file, *format;
        int sharded, safet;
    } cand[] = {{"model.safetensors.index.json", "safetensors", 1, 1},
                {"model.safetensors", "safetensors", 0, 1},
                {"pytorch_model.bin.index.json", "pytorch", 1, 0},
                {"pytorch_model.bin", "pytorch", 0, 0}};
    for (size_t c = 0; c < sizeof cand / sizeof cand[0]; c++) {
        if (prefer && strcmp(prefer, cand[c].format))
            continue;
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, cand[c].file) >= sizeof path)
            return owl_err_set(err, OWL_E_LIMIT, "%s: path too long", dir);
        if (!file_exists(path))
            continue;
        ck->format = cand[c].format;
        owl_status st = cand[c].sharded ? add_sharded(ck, dir, path, cand[c].safet, err)
                                        : (cand[c].safet ? owl_ckpt_add_safetensors(ck, path, err)
                                                         : owl_ckpt_add_torch(ck, path, err));
        if (st)
            owl_ckpt_free(ck);
        return st;
    }
    return owl_err_set(err, OWL_E_NOTFOUND, "%s: no %s checkpoint (model.safetensors[.index.json] or "
                       "pytorch_model.bin[.index.json])", dir, prefer ? prefer : "");
}
