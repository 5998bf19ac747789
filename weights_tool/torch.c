/* torch.c - reader of torch.save zip archives (pytorch_model*.bin): the zip
 * central directory (stored entries, zip64), then data.pkl, a pickle
 * (protocol 2) of an OrderedDict of tensors rebuilt by
 * torch._utils._rebuild_tensor_v2 from persistent-id storages
 * ("storage", torch.XStorage, key, location, numel) whose bytes are the
 * archive entry <top>/data/<key>. Only the opcodes torch.save emits are
 * accepted; anything else is an error naming the opcode and its offset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"

/* ---------------------------------------------------------------- zip */

typedef struct {
    char *name;
    uint64_t data; /* file offset of the entry's bytes (after the local header) */
    uint64_t size;
    uint64_t lho;
    unsigned method;
} zentry;

typedef struct {
    zentry *e;
    size_t n;
} zdir;

static void zdir_free(zdir *z)
{
    for (size_t i = 0; i < z->n; i++)
        free(z->e[i].name);
    free(z->e);
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* Where the central directory is: its entry count, size and offset. */
typedef struct {
    uint64_t n_ent, size, off;
} zcd;

/* The zip64 end record, through its locator just before the EOCD at eocd_pos. */
static owl_status zip_read_zip64_end(owl_ckpt *ck, int fi, uint64_t fsize, uint64_t eocd_pos, zcd *cd,
                                     owl_err *err)
{
    const char *path = ck->paths[fi];
    uint8_t loc[20], z64[56];
    owl_status st = OWL_OK;
    if (eocd_pos < 20 || (st = owl_ck_pread(ck, fi, eocd_pos - 20, loc, 20, err)) || rd32(loc) != 0x07064b50)
        return st ? st : owl_err_set(err, OWL_E_FORMAT, "%s: zip64 locator missing", path);
    uint64_t z64off = rd64(loc + 8);
    if (z64off > fsize - 56 || (st = owl_ck_pread(ck, fi, z64off, z64, 56, err)) || rd32(z64) != 0x06064b50)
        return st ? st : owl_err_set(err, OWL_E_FORMAT, "%s: bad zip64 end record", path);
    cd->n_ent = rd64(z64 + 32);
    cd->size = rd64(z64 + 40);
    cd->off = rd64(z64 + 48);
    return OWL_OK;
}

/* The end-of-central-directory record in the last 64 KiB (zip64 when it overflows). */
static owl_status zip_find_cd(owl_ckpt *ck, int fi, uint64_t fsize, zcd *cd, owl_err *err)
{
    const char *path = ck->paths[fi];
    size_t tail = fsize < 65557 ? (size_t)fsize : 65557;
    uint8_t *buf = malloc(tail);
    if (!buf)
        return owl_err_set(err, OWL_E_NOMEM, "%s: out of memory", path);
    owl_status st = owl_ck_pread(ck, fi, fsize - tail, buf, tail, err);
    if (st) {
        free(buf);
        return st;
    }
    long eo = -1;
    for (long i = (long)tail - 22; i >= 0; i--)
        if (rd32(buf + i) == 0x06054b50 && (size_t)i + 22 + rd16(buf + i + 20) == tail) {
            eo = i;
            break;
        }
    if (eo < 0) {
        free(buf);
        return owl_err_set(err, OWL_E_FORMAT, "%s: no zip end-of-central-directory record (truncated or not a "
                           "torch.save archive)", path);
    }
    cd->n_ent = rd16(buf + eo + 10);
    cd->size = rd32(buf + eo + 12);
    cd->off = rd32(buf + eo + 16);
    free(buf);
    if (cd->n_ent == 0xFFFF || cd->size == 0xFFFFFFFF || cd->off == 0xFFFFFFFF)
        return zip_read_zip64_end(ck, fi, fsize, fsize - tail + (uint64_t)eo, cd, err);
    return OWL_OK;
}

/* Central directory entry i at cd[*p] (n bytes) into z->e[z->n]; advances *p. */
static owl_status zip_read_entry(const char *path, const uint8_t *cd, uint64_t n, size_t *p, uint64_t i,
                                 zdir *z, owl_err *err)
{
    if (n - *p < 46 || rd32(cd + *p) != 0x02014b50)
        return owl_err_set(err, OWL_E_FORMAT, "%s: central directory entry %llu is bad", path,
                           (unsigned long long)i);
    const uint8_t *h = cd + *p;
    unsigned nl = rd16(h + 28), xl = rd16(h + 30), cl = rd16(h + 32);
    if (n - *p - 46 < (uint64_t)nl + xl + cl)
        return owl_err_set(err, OWL_E_FORMAT, "%s: central directory entry %llu overruns", path,
                           (unsigned long long)i);
    zentry *e = &z->e[z->n];
    e->method = rd16(h + 10);
    uint64_t csize = rd32(h + 20), usize = rd32(h + 24), lho = rd32(h + 42);
    const uint8_t *x = h + 46 + nl, *xe = x + xl;
    while (xe - x >= 4) { /* zip64 extra: only the fields that overflowed, in order */
        unsigned id = rd16(x), sz = rd16(x + 2);
        if ((size_t)(xe - x - 4) < sz)
            break;
        if (id == 1) {
            const uint8_t *f = x + 4, *fe = x + 4 + sz;
            if (usize == 0xFFFFFFFF && fe - f >= 8) { usize = rd64(f); f += 8; }
            if (csize == 0xFFFFFFFF && fe - f >= 8) { csize = rd64(f); f += 8; }
            if (lho == 0xFFFFFFFF && fe - f >= 8) { lho = rd64(f); f += 8; }
        }
        x += 4 + sz;
    }
    e->name = malloc(nl + 1);
    if (!e->name)
        return owl_err_set(err, OWL_E_NOMEM, "%s: out of memory", path);
    memcpy(e->name, h + 46, nl);
    e->name[nl] = 0;
    z->n++;
    e->size = csize;
    e->lho = lho;
    if (e->method == 0 && csize != usize)
        return owl_err_set(err, OWL_E_FORMAT, "%s: entry %s: stored but sizes differ", path, e->name);
    *p += 46 + (size_t)nl + xl + cl;
    return OWL_OK;
}

static owl_status zip_read_dir(owl_ckpt *ck, int fi, uint64_t fsize, zdir *z, owl_err *err)
{
    const char *path = ck->paths[fi];
    memset(z, 0, sizeof *z);
    if (fsize < 22)
        return owl_err_set(err, OWL_E_TRUNCATED, "%s: %llu bytes, not a zip archive", path,
                           (unsigned long long)fsize);
    zcd c = {0, 0, 0};
    owl_status st = zip_find_cd(ck, fi, fsize, &c, err);
    if (st)
        return st;
    if (c.off > fsize || c.size > fsize - c.off || c.n_ent > OWL_CK_MAX_TENSORS * 2ull || c.size > OWL_CK_MAX_HEADER ||
        c.n_ent > c.size / 46)
        return owl_err_set(err, OWL_E_FORMAT, "%s: central directory (%llu entries, %llu bytes at %llu) outside "
                           "the %llu byte file", path, (unsigned long long)c.n_ent, (unsigned long long)c.size,
                           (unsigned long long)c.off, (unsigned long long)fsize);
    uint8_t *cd = malloc((size_t)c.size + 1);
    z->e = calloc((size_t)c.n_ent + 1, sizeof *z->e);
    if (!cd || !z->e) {
        free(cd);
        return owl_err_set(err, OWL_E_NOMEM, "%s: out of memory", path);
    }
    if ((st = owl_ck_pread(ck, fi, c.off, cd, (size_t)c.size, err))) {
        free(cd);
        return st;
    }
    size_t p = 0;
    for (uint64_t i = 0; i < c.n_ent && !st; i++)
        st = zip_read_entry(path, cd, c.size, &p, i, z, err);
    free(cd);
    return st;
}

/* Resolve the local header of entry e: data offset, bounds. */
static owl_status zip_locate(owl_ckpt *ck, int fi, uint64_t fsize, zentry *e, owl_err *err)
{
    const char *path = ck->paths[fi];
    if (e->method != 0)
        return owl_err_set(err, OWL_E_UNSUPPORTED, "%s: entry %s is compressed (method %u); torch.save writes "
                           "stored entries - re-save the checkpoint uncompressed", path, e->name, e->method);
    uint8_t lh[30];
    owl_status st;
    if (e->lho > fsize - 30 || (st = owl_ck_pread(ck, fi, e->lho, lh, 30, err)) || rd32(lh) != 0x04034b50)
        return owl_err_set(err, OWL_E_FORMAT, "%s: entry %s: bad local header at %llu", path, e->name,
                           (unsigned long long)e->lho);
    e->data = e->lho + 30 + rd16(lh + 26) + rd16(lh + 28);
    if (e->data > fsize || e->size > fsize - e->data)
        return owl_err_set(err, OWL_E_TRUNCATED, "%s: entry %s: %llu bytes at %llu past the end of the file (%llu)",
                           path, e->name, (unsigned long long)e->size, (unsigned long long)e->data,
                           (unsigned long long)fsize);
    return OWL_OK;
}

/* ---------------------------------------------------------------- pickle */

enum { PV_NONE, PV_BOOL, PV_INT, PV_FLOAT, PV_STR, PV_TUPLE, PV_LIST, PV_DICT, PV_GLOBAL, PV_STORAGE, PV_TENSOR };

typedef struct pv pv;
struct pv {
    int kind;
    int64_t i;
    char *s;      /* STR; GLOBAL "module.name" */
    pv **items;   /* TUPLE/LIST; DICT as k0, v0, k1, v1 ... */
    size_t n, cap;
    /* STORAGE */
    owl_type dtype;
    int64_t numel;
    pv *key;
    /* TENSOR */
    pv *storage;
    int64_t offset;
    int nd;
    int64_t shape[OWL_CK_MAX_DIMS], stride[OWL_CK_MAX_DIMS];
};

#define PK_MAX_NODES (1u << 21) /* ~200 bytes each; a 7B shard needs ~7000 */
#define PK_MAX_MEMO (1u << 22)

typedef struct {
    const uint8_t *p;
    size_t n, i;
    pv **nodes;
    size_t n_nodes, cap_nodes;
    pv **stack;
    size_t sp, cap_stack;
    size_t *marks;
    size_t n_marks, cap_marks;
    pv **memo;
    size_t n_memo;
    const char *path;
    owl_err *err;
} pk;

static pv *pk_new(pk *k, int kind)
{
    if (k->n_nodes >= PK_MAX_NODES)
        return NULL;
    if (k->n_nodes == k->cap_nodes) {
        size_t nc = k->cap_nodes ? k->cap_nodes * 2 : 256;
        pv **nn = realloc(k->nodes, nc * sizeof *nn);
        if (!nn)
            return NULL;
        k->nodes = nn;
        k->cap_nodes = nc;
    }
    pv *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->kind = kind;
    k->nodes[k->n_nodes++] = v;
    return v;
}

static void pk_free(pk *k)
{
    for (size_t i = 0; i < k->n_nodes; i++) {
        free(k->nodes[i]->s);
        free(k->nodes[i]->items);
        free(k->nodes[i]);
    }
    free(k->nodes);
    free(k->stack);
    free(k->marks);
    free(k->memo);
}

static int pk_push(pk *k, pv *v)
{
    if (!v)
        return -1;
    if (k->sp == k->cap_stack) {
        size_t nc = k->cap_stack ? k->cap_stack * 2 : 64;
        pv **ns = realloc(k->stack, nc * sizeof *ns);
        if (!ns)
            return -1;
        k->stack = ns;
        k->cap_stack = nc;
    }
    k->stack[k->sp++] = v;
    return 0;
}

static int pv_append(pv *c, pv *x)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 8;
        pv **ni = realloc(c->items, nc * sizeof *ni);
        if (!ni)
            return -1;
        c->items = ni;
        c->cap = nc;
    }
    c->items[c->n++] = x;
    return 0;
}

static owl_status pk_bad(pk *k, const char *what, size_t at)
{
    return owl_err_set(k->err, OWL_E_FORMAT, "%s: data.pkl: %s at byte %zu", k->path, what, at);
}

static owl_type storage_dtype(const char *g)
{
    if (!strcmp(g, "torch.FloatStorage"))
        return OWL_TYPE_F32;
    if (!strcmp(g, "torch.HalfStorage"))
        return OWL_TYPE_F16;
    if (!strcmp(g, "torch.BFloat16Storage"))
        return OWL_TYPE_BF16;
    return OWL_TYPE_COUNT;
}

static int allowed_global(const char *g)
{
    static const char *ok[] = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                               "torch._utils._rebuild_parameter", "torch.FloatStorage", "torch.HalfStorage",
                               "torch.BFloat16Storage", "torch.DoubleStorage", "torch.LongStorage",
                               "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage", "torch.ByteStorage",
                               "torch.BoolStorage"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(g, ok[i]))
            return 1;
    return 0;
}

static int int_tuple(const pv *t, int64_t *out, int *nd)
{
    if (t->kind != PV_TUPLE || t->n > OWL_CK_MAX_DIMS)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        if (t->items[i]->kind != PV_INT)
            return -1;
        out[i] = t->items[i]->i;
    }
    *nd = (int)t->n;
    return 0;
}

/* REDUCE: callable(args) for the callables torch.save uses. */
static owl_status pk_reduce(pk *k, pv *fn, pv *args, size_t at)
{
    if (fn->kind != PV_GLOBAL || args->kind != PV_TUPLE)
        return pk_bad(k, "REDUCE on a non-global", at);
    if (!strcmp(fn->s, "collections.OrderedDict")) {
        if (args->n != 0)
            return pk_bad(k, "OrderedDict with arguments", at);
        return pk_push(k, pk_new(k, PV_DICT)) ? pk_bad(k, "out of nodes", at) : OWL_OK;
    }
    if (!strcmp(fn->s, "torch._utils._rebuild_parameter")) {
        if (args->n < 1 || args->items[0]->kind != PV_TENSOR)
            return pk_bad(k, "_rebuild_parameter without a tensor", at);
        return pk_push(k, args->items[0]) ? pk_bad(k, "out of nodes", at) : OWL_OK;
    }
    if (!strcmp(fn->s, "torch._utils._rebuild_tensor_v2")) {
        pv *t = pk_new(k, PV_TENSOR);
        int nd2 = 0;
        if (!t)
            return pk_bad(k, "out of nodes", at);
        if (args->n < 4 || args->items[0]->kind != PV_STORAGE || args->items[1]->kind != PV_INT ||
            int_tuple(args->items[2], t->shape, &t->nd) || int_tuple(args->items[3], t->stride, &nd2) ||
            nd2 != t->nd)
            return pk_bad(k, "_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, ...)", at);
        t->storage = args->items[0];
        t->offset = args->items[1]->i;
        return pk_push(k, t) ? pk_bad(k, "out of nodes", at) : OWL_OK;
    }
    return owl_err_set(k->err, OWL_E_UNSUPPORTED, "%s: data.pkl: REDUCE of %s is not supported", k->path, fn->s);
}

static owl_status pk_run(pk *k, pv **result)
{
#define NEED(m)                                                                  \
    do {                                                                         \
        if (k->n - k->i < (size_t)(m))                                           \
            return owl_err_set(k->err, OWL_E_TRUNCATED, "%s: data.pkl truncated at byte %zu", k->path, at); \
    } while (0)
#define POP(v)                                                                   \
    do {                                                                         \
        if (k->sp == 0 || (k->n_marks && k->marks[k->n_marks - 1] == k->sp))     \
            return pk_bad(k, "stack underflow", at);                             \
        (v) = k->stack[--k->sp];                                                 \
    } while (0)
#define PUSH(v)                                                                  \
    do {                                                                         \
        if (pk_push(k, (v)))                                                     \
            return owl_err_set(k->err, OWL_E_NOMEM, "%s: data.pkl: out of memory / over %u objects", k->path, PK_MAX_NODES); \
    } while (0)
    for (;;) {
        size_t at = k->i;
        NEED(1);
        uint8_t op = k->p[k->i++];
        pv *v, *a, *b;
        switch (op) {
        case 0x80: /* PROTO */
            NEED(1);
            if (k->p[k->i] > 2 && k->p[k->i] != 3 && k->p[k->i] != 4)
                return pk_bad(k, "unsupported pickle protocol", at);
            k->i++;
            break;
        case 'c': { /* GLOBAL module\nname\n */
            const uint8_t *s = k->p + k->i, *e1 = memchr(s, '\n', k->n - k->i);
            if (!e1)
                return pk_bad(k, "GLOBAL without newline", at);
            const uint8_t *e2 = memchr(e1 + 1, '\n', (size_t)(k->p + k->n - e1 - 1));
            if (!e2 || e2 - s > 200)
                return pk_bad(k, "bad GLOBAL", at);
            char g[204];
            size_t l1 = (size_t)(e1 - s), l2 = (size_t)(e2 - e1 - 1);
            memcpy(g, s, l1);
            g[l1] = '.';
            memcpy(g + l1 + 1, e1 + 1, l2);
            g[l1 + 1 + l2] = 0;
            if (!allowed_global(g))
                return owl_err_set(k->err, OWL_E_UNSUPPORTED, "%s: data.pkl: global %s is not allowed", k->path, g);
            v = pk_new(k, PV_GLOBAL);
            if (!v || !(v->s = strdup(g)))
                return owl_err_set(k->err, OWL_E_NOMEM, "%s: out of memory", k->path);
            PUSH(v);
            k->i = (size_t)(e2 + 1 - k->p);
            break;
        }
        case 'q': case 'r': { /* BINPUT / LONG_BINPUT */
            size_t w = op == 'q' ? 1 : 4;
            NEED(w);
            uint32_t idx = w == 1 ? k->p[k->i] : rd32(k->p + k->i);
            k->i += w;
            if (k->sp == 0)
                return pk_bad(k, "BINPUT on empty stack", at);
            if (idx >= PK_MAX_MEMO)
                return pk_bad(k, "memo index too large", at);
            if (idx >= k->n_memo) {
                size_t nm = idx + 64;
                pv **mm = realloc(k->memo, nm * sizeof *mm);
                if (!mm)
                    return owl_err_set(k->err, OWL_E_NOMEM, "%s: out of memory", k->path);
                memset(mm + k->n_memo, 0, (nm - k->n_memo) * sizeof *mm);
                k->memo = mm;
                k->n_memo = nm;
            }
            k->memo[idx] = k->stack[k->sp - 1];
            break;
        }
        case 'h': case 'j': { /* BINGET / LONG_BINGET */
            size_t w = op == 'h' ? 1 : 4;
            NEED(w);
            uint32_t idx = w == 1 ? k->p[k->i] : rd32(k->p + k->i);
            k->i += w;
            if (idx >= k->n_memo || !k->memo[idx])
                return pk_bad(k, "BINGET of an unset memo slot", at);
            PUSH(k->memo[idx]);
            break;
        }
        case '(': /* MARK */
            if (k->n_marks == k->cap_marks) {
                size_t nc = k->cap_marks ? k->cap_marks * 2 : 16;
                if (nc > PK_MAX_NODES)
                    return pk_bad(k, "too many marks", at);
                size_t *nm = realloc(k->marks, nc * sizeof *nm);
                if (!nm)
                    return owl_err_set(k->err, OWL_E_NOMEM, "%s: out of memory", k->path);
                k->marks = nm;
                k->cap_marks = nc;
            }
            k->marks[k->n_marks++] = k->sp;
            break;
        case 't': case 'u': case 'e': { /* TUPLE / SETITEMS / APPENDS: items since MARK */
            if (!k->n_marks)
                return pk_bad(k, "no MARK", at);
            size_t m = k->marks[--k->n_marks], cnt = k->sp - m;
            if (op == 't') {
                v = pk_new(k, PV_TUPLE);
                for (size_t j = 0; v && j < cnt; j++)
                    if (pv_append(v, k->stack[m + j]))
                        v = NULL;
                k->sp = m;
                PUSH(v);
                break;
            }
            if (m == 0 || (k->n_marks && k->marks[k->n_marks - 1] == m))
                return pk_bad(k, "SETITEMS/APPENDS without a container", at);
            pv *c = k->stack[m - 1];
            if ((op == 'u' && (c->kind != PV_DICT || cnt % 2)) || (op == 'e' && c->kind != PV_LIST))
                return pk_bad(k, op == 'u' ? "SETITEMS on a non-dict" : "APPENDS on a non-list", at);
            for (size_t j = 0; j < cnt; j++)
                if (pv_append(c, k->stack[m + j]))
                    return owl_err_set(k->err, OWL_E_NOMEM, "%s: out of memory", k->path);
            k->sp = m;
            break;
        }
        case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
            size_t cnt = (size_t)(op - 0x84);
            if (k->sp < cnt || (k->n_marks && k->marks[k->n_marks - 1] > k->sp - cnt))
                return pk_bad(k, "stack underflow", at);
            v = pk_new(k, PV_TUPLE);
            for (size_t j = 0; v && j < cnt; j++)
                if (pv_append(v, k->stack[k->sp - cnt + j]))
                    v = NULL;
            k->sp -= cnt;
            PUSH(v);
            break;
        }
        case ')': PUSH(pk_new(k, PV_TUPLE)); break;
        case '}': PUSH(pk_new(k, PV_DICT)); break;
        case ']': PUSH(pk_new(k, PV_LIST)); break;
        case 'N': PUSH(pk_new(k, PV_NONE)); break;
        case 0x88: case 0x89:
            v = pk_new(k, PV_BOOL);
            if (v)
                v->i = op == 0x88;
            PUSH(v);
            break;
        case 's': /* SETITEM */
            POP(b);
            POP(a);
            if (!k->sp || k->stack[k->sp - 1]->kind != PV_DICT)
                return pk_bad(k, "SETITEM on a non-dict", at);
            if (pv_append(k->stack[k->sp - 1], a) || pv_append(k->stack[k->sp - 1], b))
                return owl_err_set(k->err, OWL_E_NOMEM, "%s: out of memory", k->path);
            break;
        case 'a': /* APPEND */
            POP(a);
            if (!k->sp || k->stack[k->sp - 1]->kind != PV_LIST)
                return pk_bad(k, "APPEND on a non-list", at);
            if (pv_append(k->stack[k->sp - 1], a))
                return owl_err_set(k->err, OWL_E_NOMEM, "%s: out of memory", k->path);
            break;
        case 'J': case 'K': case 'M': case 0x8a: { /* BININT, BININT1, BININT2, LONG1 */
            int64_t x;
            if (op == 'J') {
                NEED(4);
                x = (int32_t)rd32(k->p + k->i);
                k->i += 4;
            } else if (op == 'K') {
                NEED(1);
                x = k->p[k->i++];
            } else if (op == 'M') {
                NEED(2);
                x = rd16(k->p + k->i);
                k->i += 2;
            } else {
                NEED(1);
                size_t nb = k->p[k->i++];
                NEED(nb);
                if (nb > 8)
                    return pk_bad(k, "LONG1 wider than 64 bits", at);
                uint64_t u = 0;
                for (size_t j = 0; j < nb; j++)
                    u |= (uint64_t)k->p[k->i + j] << (8 * j);
                if (nb && nb < 8 && (k->p[k->i + nb - 1] & 0x80))
                    u |= ~(uint64_t)0 << (8 * nb);
                x = (int64_t)u;
                k->i += nb;
            }
            v = pk_new(k, PV_INT);
            if (v)
                v->i = x;
            PUSH(v);
            break;
        }
        case 'G': /* BINFLOAT: value unused, keep as a float node */
            NEED(8);
            k->i += 8;
            PUSH(pk_new(k, PV_FLOAT));
            break;
        case 'X': case 0x8c: { /* BINUNICODE / SHORT_BINUNICODE */
            size_t w = op == 'X' ? 4 : 1;
            NEED(w);
            size_t len = w == 4 ? rd32(k->p + k->i) : k->p[k->i];
            k->i += w;
            NEED(len);
            v = pk_new(k, PV_STR);
            if (!v || !(v->s = malloc(len + 1)))
                return owl_err_set(k->err, OWL_E_NOMEM, "%s: out of memory", k->path);
            memcpy(v->s, k->p + k->i, len);
            v->s[len] = 0;
            v->n = 0;
            if (strlen(v->s) != len)
                return pk_bad(k, "NUL in string", at);
            k->i += len;
            PUSH(v);
            break;
        }
        case 'Q': { /* BINPERSID: ('storage', cls, key, location, numel) */
            POP(a);
            if (a->kind != PV_TUPLE || a->n < 5 || a->items[0]->kind != PV_STR || strcmp(a->items[0]->s, "storage") ||
                a->items[1]->kind != PV_GLOBAL || a->items[2]->kind != PV_STR || a->items[4]->kind != PV_INT)
                return pk_bad(k, "persistent id is not a storage record", at);
            v = pk_new(k, PV_STORAGE);
            if (v) {
                v->dtype = storage_dtype(a->items[1]->s);
                v->key = a->items[2];
                v->numel = a->items[4]->i;
            }
            PUSH(v);
            break;
        }
        case 'R': { /* REDUCE */
            POP(a);
            POP(b);
            owl_status st = pk_reduce(k, b, a, at);
            if (st)
                return st;
            break;
        }
        case 'b': /* BUILD: state of an OrderedDict (the _metadata attribute) is ignored */
            POP(a);
            if (!k->sp)
                return pk_bad(k, "BUILD on empty stack", at);
            (void)a;
            break;
        case '.': /* STOP */
            if (k->sp != 1)
                return pk_bad(k, "STOP with a stack not holding one value", at);
            *result = k->stack[0];
            if (k->i != k->n)
                return pk_bad(k, "bytes after STOP", k->i);
            return OWL_OK;
        default: {
            char w[48];
            snprintf(w, sizeof w, "unsupported opcode 0x%02x", op);
            return owl_err_set(k->err, OWL_E_FORMAT, "%s: data.pkl: %s at byte %zu", k->path, w, at);
        }
        }
    }
#undef NEED
#undef POP
#undef PUSH
}

/* ---------------------------------------------------------------- archive */

/* One torch.save archive being indexed. */
typedef struct {
    owl_ckpt *ck;
    int fi;
    uint64_t fsize;
    const char *path;
    zdir z;
    zentry *pkl;    /* <top>/data.pkl */
    size_t top_len; /* length of <top> */
} tarchive;

/* The top folder name varies (archive, pytorch_model, ...): find <top>/data.pkl. */
static owl_status find_data_pkl(tarchive *a, owl_err *err)
{
    for (size_t i = 0; i < a->z.n; i++) {
        const char *sl = strchr(a->z.e[i].name, '/');
        if (sl && !strcmp(sl + 1, "data.pkl")) {
            a->pkl = &a->z.e[i];
            a->top_len = (size_t)(sl - a->z.e[i].name);
            return OWL_OK;
        }
    }
    return owl_err_set(err, OWL_E_FORMAT, "%s: no <dir>/data.pkl in the zip archive", a->path);
}

/* <top>/byteorder (newer torch versions) must say little. */
static owl_status check_byteorder(tarchive *a, owl_err *err)
{
    owl_status st;
    for (size_t i = 0; i < a->z.n; i++) {
        zentry *e = &a->z.e[i];
        if (strlen(e->name) == a->top_len + 10 && !strncmp(e->name, a->pkl->name, a->top_len) &&
            !strcmp(e->name + a->top_len, "/byteorder")) {
            char bo[8] = {0};
            if ((st = zip_locate(a->ck, a->fi, a->fsize, e, err)) ||
                (e->size < sizeof bo && (st = owl_ck_pread(a->ck, a->fi, e->data, bo, (size_t)e->size, err))))
                return st;
            if (strncmp(bo, "little", 6))
                return owl_err_set(err, OWL_E_UNSUPPORTED, "%s: byteorder is not little", a->path);
        }
    }
    return OWL_OK;
}

/* data.pkl's bytes into *buf (malloc'd). */
static owl_status read_data_pkl(tarchive *a, uint8_t **buf, owl_err *err)
{
    owl_status st = zip_locate(a->ck, a->fi, a->fsize, a->pkl, err);
    if (st)
        return st;
    if (a->pkl->size > OWL_CK_MAX_HEADER)
        return owl_err_set(err, OWL_E_LIMIT, "%s: data.pkl of %llu bytes", a->path, (unsigned long long)a->pkl->size);
    *buf = malloc((size_t)a->pkl->size + 1);
    if (!*buf)
        return owl_err_set(err, OWL_E_NOMEM, "%s: out of memory", a->path);
    return owl_ck_pread(a->ck, a->fi, a->pkl->data, *buf, (size_t)a->pkl->size, err);
}

/* The archive entry <top>/data/<key> holding a storage's bytes, located. */
static owl_status find_storage(tarchive *a, const char *name, const char *skey, char *want, size_t cap,
                               zentry **se, owl_err *err)
{
    if ((size_t)snprintf(want, cap, "%.*s/data/%s", (int)a->top_len, a->pkl->name, skey) >= cap)
        return owl_err_set(err, OWL_E_FORMAT, "%s: %s: storage key too long", a->path, name);
    *se = NULL;
    for (size_t j = 0; j < a->z.n && !*se; j++)
        if (!strcmp(a->z.e[j].name, want))
            *se = &a->z.e[j];
    if (!*se)
        return owl_err_set(err, OWL_E_FORMAT, "%s: %s: storage %s missing from the archive", a->path, name, want);
    if (!(*se)->data)
        return zip_locate(a->ck, a->fi, a->fsize, *se, err);
    return OWL_OK;
}

/* State-dict entry i (key, tensor) checked against its storage and added to ck. */
static owl_status add_state_entry(tarchive *a, const pv *key, const pv *t, size_t i, owl_err *err)
{
    if (key->kind != PV_STR)
        return owl_err_set(err, OWL_E_FORMAT, "%s: state-dict key %zu is not a string", a->path, i);
    if (t->kind != PV_TENSOR)
        return owl_err_set(err, OWL_E_FORMAT, "%s: %s is not a tensor", a->path, key->s);
    const char *path = a->path;
    const pv *sto = t->storage;
    owl_ck_tensor ct = {0};
    ct.dtype = sto->dtype;
    ct.n_dims = t->nd;
    memcpy(ct.shape, t->shape, sizeof ct.shape);
    memcpy(ct.stride, t->stride, sizeof ct.stride);
    ct.file = a->fi;
    char want[512];
    zentry *se = NULL;
    owl_status st = find_storage(a, key->s, sto->key->s, want, sizeof want, &se, err);
    if (st)
        return st;
    size_t es = owl_ckpt_elem_size(ct.dtype);
    if (es) {
        if (sto->numel < 0 || (uint64_t)sto->numel > se->size / es)
            return owl_err_set(err, OWL_E_FORMAT, "%s: %s: storage of %lld elements needs more than the %llu bytes of %s",
                               path, key->s, (long long)sto->numel, (unsigned long long)se->size, want);
        if (t->offset < 0 || t->offset > sto->numel)
            return owl_err_set(err, OWL_E_FORMAT, "%s: %s: storage offset %lld outside %lld elements", path,
                               key->s, (long long)t->offset, (long long)sto->numel);
        ct.base = se->data + (uint64_t)t->offset * es;
        owl_ck_tensor chk = ct;
        chk.name = key->s;
        if ((st = owl_ck_check_view(a->ck, &chk, se->data + (uint64_t)sto->numel * es, err)))
            return st;
    }
    ct.name = strdup(key->s);
    if (!ct.name)
        return owl_err_set(err, OWL_E_NOMEM, "out of memory");
    return owl_ck_push(a->ck, &ct, err);
}

owl_status owl_ckpt_add_torch(owl_ckpt *ck, const char *path, owl_err *err)
{
    tarchive a = {.ck = ck, .path = path};
    owl_status st = owl_ck_add_file(ck, path, &a.fi, &a.fsize, err);
    if (st)
        return st;
    uint8_t *buf = NULL;
    if ((st = zip_read_dir(ck, a.fi, a.fsize, &a.z, err)) || (st = find_data_pkl(&a, err)) ||
        (st = check_byteorder(&a, err)) || (st = read_data_pkl(&a, &buf, err))) {
        free(buf);
        zdir_free(&a.z);
        return st;
    }
    pk k = {.p = buf, .n = (size_t)a.pkl->size, .path = path, .err = err};
    pv *root = NULL;
    st = pk_run(&k, &root);
    if (!st && root->kind != PV_DICT)
        st = owl_err_set(err, OWL_E_FORMAT, "%s: data.pkl does not hold a dict of tensors", path);
    for (size_t i = 0; !st && i + 1 < root->n; i += 2)
        st = add_state_entry(&a, root->items[i], root->items[i + 1], i / 2, err);
    pk_free(&k);
    free(buf);
    zdir_free(&a.z);
    return st;
}

owl_status owl_ck_pickle_check(const void *data, size_t size, size_t *n_items, owl_err *err)
{
    pk k = {.p = data, .n = size, .path = "data.pkl", .err = err};
    pv *root = NULL;
    owl_status st = pk_run(&k, &root);
    if (!st && root->kind != PV_DICT)
        st = owl_err_set(err, OWL_E_FORMAT, "data.pkl does not hold a dict");
    if (!st)
        *n_items = root->n / 2;
    pk_free(&k);
    return st;
}
