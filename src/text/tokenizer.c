/* tokenizer.c - LLaMA SentencePiece BPE (see tokenizer.h for the contract).
 *
 * Encode = normalize (identity: bad UTF-8 -> U+FFFD per byte, ' ' -> ▁, dummy
 * prefix) -> one symbol per character (user-defined pieces frozen whole) ->
 * BPE: a max-heap of adjacent pairs whose concatenation is a NORMAL /
 * USER_DEFINED / UNUSED piece, keyed (score desc, left index asc) as in
 * sentencepiece's bpe_model.cc; stale heap entries are skipped when either
 * side is gone or the lengths no longer add up -> each final symbol's id, or
 * <0xNN> byte pieces (byte_fallback) / unk when it is not a piece. UNUSED
 * pieces formed by a merge are split back into their two halves
 * (sentencepiece's "resegment"). O(n log n) in the input length. */
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

#define MAX_TEXT ((size_t)1 << 28) /* 256 MiB of text per encode */

struct owl_tokenizer {
    int32_t n;
    char *blob;      /* all pieces, NUL-separated */
    size_t *off;     /* piece i at blob + off[i] */
    uint32_t *len;
    float *score;
    uint8_t *type;
    int16_t *byte_val; /* BYTE pieces: 0..255, else -1 */
    uint32_t *slots;   /* open addressing: id + 1, 0 = empty */
    uint32_t mask;
    int32_t byte_id[256]; /* <0xNN> piece (unk when missing) */
    int32_t *user_ids;    /* USER_DEFINED pieces, longest first */
    int32_t n_user;
    int32_t *special_ids; /* CONTROL and UNKNOWN pieces, longest first */
    int32_t n_special;
    int has_unused;
    uint32_t max_len;
    int32_t space_id; /* "▁" or -1 */
    owl_tokenizer_config cfg;
};

static const char SPACE_SYM[3] = {(char)0xE2, (char)0x96, (char)0x81}; /* U+2581 */
static const char REPL[3] = {(char)0xEF, (char)0xBF, (char)0xBD};     /* U+FFFD */
static const char UNK_SURFACE[] = " \xE2\x81\x87 ";                    /* " ⁇ " */

owl_tokenizer_config owl_tokenizer_config_llama(void)
{
    owl_tokenizer_config c = {1, 0, 1, 1, 2, 0};
    return c;
}

// ---------------------------------------------------------------- piece map

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

int32_t owl_tokenizer_find(const owl_tokenizer *t, const char *s, size_t n)
{
    if (!t || (!s && n))
        return -1;
    for (uint32_t i = hash_bytes(s, n) & t->mask;; i = (i + 1) & t->mask) {
        uint32_t v = t->slots[i];
        if (!v)
            return -1;
        int32_t id = (int32_t)(v - 1);
        if (t->len[id] == n && memcmp(t->blob + t->off[id], s, n) == 0)
            return id;
    }
}

/* longest first, then lower id (insertion sort: LLaMA has 3 specials, no user pieces) */
static void sort_ids(int32_t *ids, int32_t n, const owl_tokenizer *t)
{
    for (int32_t i = 1; i < n; i++)
        for (int32_t j = i; j > 0 && t->len[ids[j]] > t->len[ids[j - 1]]; j--) {
            int32_t tmp = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = tmp;
        }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

// ---------------------------------------------------------------- init / free

/* Checks every piece before anything is allocated; *total = blob bytes. */
static owl_status check_pieces(const char *const *pieces, const uint32_t *lens,
                               const int32_t *types, int32_t n, size_t *total, owl_err *err)
{
    *total = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!pieces[i] || lens[i] == 0)
            return owl_err_set(err, OWL_E_FORMAT, "tokenizer: piece %d is empty", (int)i);
        if (types[i] < OWL_SPM_NORMAL || types[i] > OWL_SPM_BYTE)
            return owl_err_set(err, OWL_E_FORMAT, "tokenizer: piece %d has unknown type %d", (int)i,
                               (int)types[i]);
        if (lens[i] > MAX_TEXT || *total > SIZE_MAX - lens[i] - 1)
            return owl_err_set(err, OWL_E_LIMIT, "tokenizer: piece %d: %u bytes too long", (int)i,
                               (unsigned)lens[i]);
        *total += (size_t)lens[i] + 1;
    }
    return OWL_OK;
}

static owl_status alloc_tables(owl_tokenizer *t, size_t total, owl_err *err)
{
    int32_t n = t->n;
    uint32_t cap = 1;
    while (cap < (uint32_t)n * 2u)
        cap <<= 1;
    t->mask = cap - 1;
    t->blob = malloc(total);
    t->off = malloc((size_t)n * sizeof *t->off);
    t->len = malloc((size_t)n * sizeof *t->len);
    t->score = malloc((size_t)n * sizeof *t->score);
    t->type = malloc((size_t)n);
    t->byte_val = malloc((size_t)n * sizeof *t->byte_val);
    t->slots = calloc(cap, sizeof *t->slots);
    t->user_ids = malloc((size_t)n * sizeof *t->user_ids);
    t->special_ids = malloc((size_t)n * sizeof *t->special_ids);
    if (!t->blob || !t->off || !t->len || !t->score || !t->type || !t->byte_val || !t->slots ||
        !t->user_ids || !t->special_ids)
        return owl_err_set(err, OWL_E_NOMEM, "tokenizer: out of memory for %d pieces", (int)n);
    return OWL_OK;
}

/* Files piece i (already copied to the blob at t->off[i]) by its type. */
static owl_status classify_piece(owl_tokenizer *t, int32_t i, owl_err *err)
{
    const char *p = t->blob + t->off[i];
    switch (t->type[i]) {
    case OWL_SPM_USER_DEFINED: t->user_ids[t->n_user++] = i; break;
    case OWL_SPM_CONTROL:
    case OWL_SPM_UNKNOWN: t->special_ids[t->n_special++] = i; break;
    case OWL_SPM_UNUSED: t->has_unused = 1; break;
    case OWL_SPM_BYTE:
        if (t->len[i] != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>' || hexval(p[3]) < 0 ||
            hexval(p[4]) < 0)
            return owl_err_set(err, OWL_E_FORMAT, "tokenizer: byte piece %d is '%.40s', want <0xNN>",
                               (int)i, p);
        t->byte_val[i] = (int16_t)(hexval(p[3]) * 16 + hexval(p[4]));
        break;
    }
    if (t->len[i] == 3 && memcmp(p, SPACE_SYM, 3) == 0)
        t->space_id = i;
    return OWL_OK;
}

/* Copies piece i into the tables at blob offset *o and hashes it. */
static owl_status add_piece(owl_tokenizer *t, int32_t i, const char *piece, uint32_t len,
                            float score, int32_t type, size_t *o, owl_err *err)
{
    memcpy(t->blob + *o, piece, len);
    t->blob[*o + len] = 0;
    t->off[i] = *o;
    t->len[i] = len;
    *o += (size_t)len + 1;
    t->score[i] = score;
    t->type[i] = (uint8_t)type;
    t->byte_val[i] = -1;
    if (len > t->max_len)
        t->max_len = len;
    const char *p = t->blob + t->off[i];
    if (owl_tokenizer_find(t, p, len) >= 0)
        return owl_err_set(err, OWL_E_FORMAT, "tokenizer: piece %d '%.40s' duplicates piece %d",
                           (int)i, p, (int)owl_tokenizer_find(t, p, len));
    uint32_t h = hash_bytes(p, len) & t->mask;
    while (t->slots[h])
        h = (h + 1) & t->mask;
    t->slots[h] = (uint32_t)i + 1;
    return classify_piece(t, i, err);
}

/* unk (first UNKNOWN piece when not configured), bos/eos in range, byte_id[]. */
static owl_status resolve_ids(owl_tokenizer *t, owl_err *err)
{
    int32_t n = t->n;
    if (t->cfg.unk_id < 0)
        for (int32_t i = 0; i < n && t->cfg.unk_id < 0; i++)
            if (t->type[i] == OWL_SPM_UNKNOWN)
                t->cfg.unk_id = i;
    if (t->cfg.unk_id < 0 || t->cfg.unk_id >= n || t->cfg.bos_id < -1 || t->cfg.bos_id >= n ||
        t->cfg.eos_id < -1 || t->cfg.eos_id >= n)
        return owl_err_set(err, OWL_E_INVALID, "tokenizer: ids unk %d bos %d eos %d outside vocab %d",
                           (int)t->cfg.unk_id, (int)t->cfg.bos_id, (int)t->cfg.eos_id, (int)n);
    for (int b = 0; b < 256; b++) {
        char name[7];
        static const char hx[] = "0123456789ABCDEF";
        memcpy(name, "<0x", 3);
        name[3] = hx[b >> 4];
        name[4] = hx[b & 15];
        name[5] = '>';
        int32_t id = owl_tokenizer_find(t, name, 6);
        t->byte_id[b] = id >= 0 ? id : t->cfg.unk_id;
    }
    return OWL_OK;
}

owl_status owl_tokenizer_init(owl_tokenizer **out, const char *const *pieces,
                              const uint32_t *lens, const float *scores, const int32_t *types,
                              int32_t n, const owl_tokenizer_config *cfg, owl_err *err)
{
    if (!out || !pieces || !lens || !scores || !types || !cfg || n <= 0)
        return owl_err_set(err, OWL_E_INVALID, "tokenizer: NULL argument or n_vocab %d <= 0", (int)n);
    *out = NULL;
    if (n > (1 << 28))
        return owl_err_set(err, OWL_E_LIMIT, "tokenizer: n_vocab %d over the limit %d", (int)n, 1 << 28);
    owl_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return owl_err_set(err, OWL_E_NOMEM, "tokenizer: out of memory");
    t->n = n;
    t->cfg = *cfg;
    size_t total, o = 0;
    owl_status st = check_pieces(pieces, lens, types, n, &total, err);
    if (!st)
        st = alloc_tables(t, total, err);
    t->space_id = -1;
    for (int32_t i = 0; i < n && !st; i++)
        st = add_piece(t, i, pieces[i], lens[i], scores[i], types[i], &o, err);
    if (st) {
        owl_tokenizer_free(t);
        return st;
    }
    sort_ids(t->user_ids, t->n_user, t);
    sort_ids(t->special_ids, t->n_special, t);
    st = resolve_ids(t, err);
    if (st) {
        owl_tokenizer_free(t);
        return st;
    }
    *out = t;
    return OWL_OK;
}

/* Temporary parallel arrays for owl_tokenizer_init. */
typedef struct {
    const char **p;
    uint32_t *l;
    float *s;
    int32_t *ty;
} arrays;

static int arrays_alloc(arrays *a, int32_t n)
{
    a->p = malloc((size_t)n * sizeof *a->p);
    a->l = malloc((size_t)n * sizeof *a->l);
    a->s = malloc((size_t)n * sizeof *a->s);
    a->ty = malloc((size_t)n * sizeof *a->ty);
    return a->p && a->l && a->s && a->ty;
}

static void arrays_free(arrays *a)
{
    free(a->p);
    free(a->l);
    free(a->s);
    free(a->ty);
}

owl_status owl_tokenizer_init_spm(owl_tokenizer **out, const owl_spm_model *m, owl_err *err)
{
    if (!out || !m || !m->pieces || m->n_pieces <= 0)
        return owl_err_set(err, OWL_E_INVALID, "tokenizer: empty spm model");
    *out = NULL;
    if (m->model_type != 2)
        return owl_err_set(err, OWL_E_UNSUPPORTED, "tokenizer: spm model_type %d, only BPE (2)",
                           m->model_type);
    if (m->has_charsmap || !m->escape_whitespaces || m->treat_whitespace_as_suffix)
        return owl_err_set(err, OWL_E_UNSUPPORTED,
                           "tokenizer: spm normalizer not supported (charsmap %d escape %d suffix %d)",
                           m->has_charsmap, m->escape_whitespaces, m->treat_whitespace_as_suffix);
    int32_t n = m->n_pieces;
    arrays a;
    owl_status st;
    if (!arrays_alloc(&a, n)) {
        st = owl_err_set(err, OWL_E_NOMEM, "tokenizer: out of memory");
    } else {
        for (int32_t i = 0; i < n; i++) {
            a.p[i] = m->pieces[i].piece;
            a.l[i] = m->pieces[i].len;
            a.s[i] = m->pieces[i].score;
            a.ty[i] = m->pieces[i].type;
        }
        owl_tokenizer_config c = {m->add_dummy_prefix, m->remove_extra_whitespaces,
                                  m->byte_fallback, m->bos_id >= 0 && m->bos_id < n ? m->bos_id : -1,
                                  m->eos_id >= 0 && m->eos_id < n ? m->eos_id : -1, m->unk_id};
        st = owl_tokenizer_init(out, a.p, a.l, a.s, a.ty, n, &c, err);
    }
    arrays_free(&a);
    return st;
}

static owl_status gguf_id(const owl_gguf *g, const char *key, int32_t dflt, int32_t *v, owl_err *err)
{
    uint32_t u;
    owl_status st = owl_gguf_get_u32(g, key, &u, err);
    if (st == OWL_E_NOTFOUND) {
        *v = dflt;
        return OWL_OK;
    }
    if (st)
        return st;
    if (u > INT32_MAX)
        return owl_err_set(err, OWL_E_FORMAT, "tokenizer: %s = %u", key, u);
    *v = (int32_t)u;
    return OWL_OK;
}

owl_status owl_tokenizer_init_gguf(owl_tokenizer **out, const owl_gguf *g, owl_err *err)
{
    if (!out || !g)
        return owl_err_set(err, OWL_E_INVALID, "tokenizer: NULL argument");
    *out = NULL;
    owl_gguf_str model;
    owl_status st = owl_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (st)
        return st;
    if (!owl_gguf_str_eq(model, "llama"))
        return owl_err_set(err, OWL_E_UNSUPPORTED, "tokenizer.ggml.model: '%.*s', want 'llama'",
                           (int)(model.len > 40 ? 40 : model.len), model.data);
    const void *tok_d, *score_d, *type_d;
    uint64_t n_tok, n_score, n_type;
    if ((st = owl_gguf_get_arr(g, "tokenizer.ggml.tokens", OWL_GGUF_STRING, &tok_d, &n_tok, err)) ||
        (st = owl_gguf_get_arr(g, "tokenizer.ggml.scores", OWL_GGUF_FLOAT32, &score_d, &n_score, err)) ||
        (st = owl_gguf_get_arr(g, "tokenizer.ggml.token_type", OWL_GGUF_INT32, &type_d, &n_type, err)))
        return st;
    if (n_tok == 0 || n_tok > (1 << 28) || n_score != n_tok || n_type != n_tok)
        return owl_err_set(err, OWL_E_FORMAT,
                           "tokenizer.ggml: %llu tokens, %llu scores, %llu types (want equal, 1..2^28)",
                           (unsigned long long)n_tok, (unsigned long long)n_score,
                           (unsigned long long)n_type);
    owl_tokenizer_config c = owl_tokenizer_config_llama();
    if ((st = gguf_id(g, "tokenizer.ggml.bos_token_id", 1, &c.bos_id, err)) ||
        (st = gguf_id(g, "tokenizer.ggml.eos_token_id", 2, &c.eos_id, err)) ||
        (st = gguf_id(g, "tokenizer.ggml.unknown_token_id", 0, &c.unk_id, err)))
        return st;
    int b;
    st = owl_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b, err);
    if (st == OWL_OK)
        c.add_dummy_prefix = b;
    else if (st != OWL_E_NOTFOUND)
        return st;
    const owl_gguf_kv *kv = owl_gguf_find_kv(g, "tokenizer.ggml.tokens");
    int32_t n = (int32_t)n_tok;
    arrays a;
    if (!arrays_alloc(&a, n)) {
        st = owl_err_set(err, OWL_E_NOMEM, "tokenizer: out of memory for %d tokens", (int)n);
        goto done;
    }
    c.byte_fallback = 0;
    for (int32_t i = 0; i < n; i++) {
        owl_gguf_str e = owl_gguf_arr_str(kv, (uint64_t)i);
        if (e.len > MAX_TEXT) {
            st = owl_err_set(err, OWL_E_FORMAT, "tokenizer.ggml.tokens[%d]: %llu bytes", (int)i,
                             (unsigned long long)e.len);
            goto done;
        }
        a.p[i] = e.data;
        a.l[i] = (uint32_t)e.len;
        memcpy(&a.s[i], (const char *)score_d + 4 * (size_t)i, 4);
        memcpy(&a.ty[i], (const char *)type_d + 4 * (size_t)i, 4);
        c.byte_fallback |= a.ty[i] == OWL_SPM_BYTE;
    }
    st = owl_tokenizer_init(out, a.p, a.l, a.s, a.ty, n, &c, err);
done:
    arrays_free(&a);
    return st;
}

void owl_tokenizer_free(owl_tokenizer *t)
{
    if (!t)
        return;
    free(t->blob);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->byte_val);
    free(t->slots);
    free(t->user_ids);
    free(t->special_ids);
    free(t);
}

int32_t owl_tokenizer_n_vocab(const owl_tokenizer *t) { return t ? t->n : 0; }
int32_t owl_tokenizer_bos(const owl_tokenizer *t) { return t ? t->cfg.bos_id : -1; }
int32_t owl_tokenizer_eos(const owl_tokenizer *t) { return t ? t->cfg.eos_id : -1; }
int32_t owl_tokenizer_unk(const owl_tokenizer *t) { return t ? t->cfg.unk_id : -1; }

const char *owl_tokenizer_piece(const owl_tokenizer *t, int32_t id, uint32_t *len)
{
    if (!t || id < 0 || id >= t->n)
        return NULL;
    if (len)
        *len = t->len[id];
    return t->blob + t->off[id];
}

int owl_tokenizer_type(const owl_tokenizer *t, int32_t id)
{
    return t && id >= 0 && id < t->n ? t->type[id] : 0;
}

// ---------------------------------------------------------------- encode

typedef struct {
    int32_t *v;
    size_t n, cap;
    int oom;
} ivec;

static void push(ivec *a, int32_t x)
{
    if (a->oom)
        return;
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        int32_t *nv = realloc(a->v, nc * sizeof *nv);
        if (!nv) {
            a->oom = 1;
            return;
        }
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = x;
}

/* sentencepiece's DecodeUTF8 validity rule on s[0..n): length of the valid
 * character at s, or 0 if s[0] starts no valid character. */
static size_t utf8_valid_len(const uint8_t *s, size_t n)
{
    uint8_t b = s[0];
    if (b < 0x80)
        return 1;
    if ((b & 0xE0) == 0xC0 && n >= 2 && (s[1] & 0xC0) == 0x80) {
        uint32_t cp = (uint32_t)(b & 0x1F) << 6 | (s[1] & 0x3F);
        return cp >= 0x80 ? 2 : 0;
    }
    if ((b & 0xF0) == 0xE0 && n >= 3 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
        uint32_t cp = (uint32_t)(b & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
        return cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF) ? 3 : 0;
    }
    if ((b & 0xF8) == 0xF0 && n >= 4 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 &&
        (s[3] & 0xC0) == 0x80) {
        uint32_t cp = (uint32_t)(b & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
                      (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
        return cp >= 0x10000 && cp <= 0x10FFFF ? 4 : 0;
    }
    return 0;
}

/* Length of one character by its lead byte (sentencepiece OneCharLen). */
static size_t one_char_len(uint8_t b)
{
    static const uint8_t tab[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return tab[b >> 4];
}

typedef struct {
    uint32_t start, len;
    int32_t prev, next;
    int freeze;
} sym;

typedef struct {
    float score;
    int32_t left, right;
    uint32_t len;
} pair;

/* heap order: higher score first, then smaller left index */
static int pair_before(const pair *a, const pair *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(pair *h, size_t *n, pair x)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!pair_before(&x, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static pair heap_pop(pair *h, size_t *n)
{
    pair top = h[0], x = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && pair_before(&h[c + 1], &h[c]))
            c++;
        if (!pair_before(&h[c], &x))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n)
        h[i] = x;
    return top;
}

typedef struct {
    const owl_tokenizer *t;
    const char *s;
    sym *sy;
    pair *heap;
    size_t n_heap;
    uint32_t *rev_left; /* UNUSED merges: length of the left half, by id (or NULL) */
} bpe;

static void try_pair(bpe *b, int32_t l, int32_t r)
{
    if (l < 0 || r < 0 || b->sy[l].freeze || b->sy[r].freeze)
        return;
    uint32_t len = b->sy[l].len + b->sy[r].len;
    int32_t id = owl_tokenizer_find(b->t, b->s + b->sy[l].start, len);
    if (id < 0)
        return;
    int ty = b->t->type[id];
    if (ty != OWL_SPM_NORMAL && ty != OWL_SPM_USER_DEFINED && ty != OWL_SPM_UNUSED)
        return;
    pair p = {b->t->score[id], l, r, len};
    heap_push(b->heap, &b->n_heap, p);
    if (ty == OWL_SPM_UNUSED && b->rev_left)
        b->rev_left[id] = b->sy[l].len;
}

static void emit_symbol(const bpe *b, uint32_t start, uint32_t len, ivec *out)
{
    const owl_tokenizer *t = b->t;
    int32_t id = owl_tokenizer_find(t, b->s + start, len);
    if (id >= 0 && t->type[id] == OWL_SPM_UNUSED && b->rev_left && b->rev_left[id] &&
        b->rev_left[id] < len) {
        uint32_t ll = b->rev_left[id];
        emit_symbol(b, start, ll, out);
        emit_symbol(b, start + ll, len - ll, out);
        return;
    }
    if (id >= 0 && t->type[id] != OWL_SPM_UNKNOWN) {
        push(out, id);
        return;
    }
    if (!t->cfg.byte_fallback) {
        push(out, t->cfg.unk_id);
        return;
    }
    for (uint32_t i = 0; i < len; i++)
        push(out, t->byte_id[(uint8_t)b->s[start + i]]);
}

/* sentencepiece's identity normalization of text[0..len) into s (room for
 * 3 * len + 3 bytes): ' ' -> ▁, a bad byte -> U+FFFD, the dummy prefix, and
 * extra whitespace removed when configured. Returns the bytes written. */
static size_t normalize(const owl_tokenizer *t, const char *text, size_t len, int dummy, char *s)
{
    size_t o = 0;
    int started = 0, pending_ws = 0;
    const uint8_t *in = (const uint8_t *)text;
    for (size_t i = 0; i < len;) {
        size_t cl = utf8_valid_len(in + i, len - i);
        int is_space = in[i] == ' ';
        if (t->cfg.remove_extra_whitespaces && is_space) {
            pending_ws = started;
            i++;
            continue;
        }
        if (!started) {
            started = 1;
            if (dummy)
                memcpy(s + o, SPACE_SYM, 3), o += 3;
        }
        if (pending_ws)
            memcpy(s + o, SPACE_SYM, 3), o += 3, pending_ws = 0;
        if (is_space || cl == 0) {
            memcpy(s + o, is_space ? SPACE_SYM : REPL, 3);
            o += 3;
            i++;
        } else {
            memcpy(s + o, text + i, cl);
            o += cl;
            i += cl;
        }
    }
    return o;
}

/* Splits b->s[0..o) into linked symbols, one per character; user-defined
 * pieces match whole (longest first) and are frozen. Returns the count. */
static int32_t split_symbols(bpe *b, size_t o)
{
    const owl_tokenizer *t = b->t;
    const char *s = b->s;
    int32_t ns = 0;
    for (size_t i = 0; i < o;) {
        size_t cl = 0;
        int freeze = 0;
        for (int32_t k = 0; k < t->n_user; k++) {
            int32_t id = t->user_ids[k];
            if (t->len[id] <= o - i && memcmp(s + i, t->blob + t->off[id], t->len[id]) == 0) {
                cl = t->len[id];
                freeze = 1;
                break;
            }
        }
        if (!cl) {
            cl = one_char_len((uint8_t)s[i]);
            if (cl > o - i)
                cl = o - i;
        }
        sym y = {(uint32_t)i, (uint32_t)cl, ns - 1, -1, freeze};
        if (ns > 0)
            b->sy[ns - 1].next = ns;
        b->sy[ns++] = y;
        i += cl;
    }
    return ns;
}

/* Merges the best adjacent pair until none is a piece. */
static void bpe_merge(bpe *b, int32_t ns)
{
    for (int32_t i = 0; i + 1 < ns; i++)
        try_pair(b, i, i + 1);
    while (b->n_heap) {
        pair p = heap_pop(b->heap, &b->n_heap);
        sym *l = &b->sy[p.left], *r = &b->sy[p.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != p.len)
            continue; /* stale */
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0)
            b->sy[r->next].prev = p.left;
        r->len = 0;
        try_pair(b, l->prev, p.left);
        try_pair(b, p.left, l->next);
    }
}

static void bpe_free(bpe *b)
{
    free(b->sy);
    free(b->heap);
    free(b->rev_left);
}

/* sentencepiece Encode of text[0..len) (no BOS), ids appended to out. */
static owl_status encode_sp(const owl_tokenizer *t, const char *text, size_t len, int dummy,
                            ivec *out, owl_err *err)
{
    if (len == 0)
        return OWL_OK;
    /* normalize: each input byte yields at most 3 bytes, plus the prefix */
    char *s = malloc(3 * len + 3);
    if (!s)
        return owl_err_set(err, OWL_E_NOMEM, "tokenizer: out of memory for %zu bytes of text", len);
    size_t o = normalize(t, text, len, dummy, s);
    if (o == 0) {
        free(s);
        return OWL_OK;
    }
    if (o > SIZE_MAX / (3 * sizeof(pair))) { /* 32-bit size_t (wasm) */
        free(s);
        return owl_err_set(err, OWL_E_LIMIT, "tokenizer: %zu bytes of text is too long", len);
    }
    bpe b = {t, s, NULL, NULL, 0, NULL};
    b.sy = malloc(o * sizeof *b.sy);
    b.heap = malloc(3 * o * sizeof *b.heap);
    if (t->has_unused)
        b.rev_left = calloc((size_t)t->n, sizeof *b.rev_left);
    if (!b.sy || !b.heap || (t->has_unused && !b.rev_left)) {
        free(s);
        bpe_free(&b);
        return owl_err_set(err, OWL_E_NOMEM, "tokenizer: out of memory for %zu symbols", o);
    }
    int32_t ns = split_symbols(&b, o);
    bpe_merge(&b, ns);
    for (int32_t i = 0; i >= 0 && i < ns; i = b.sy[i].next)
        emit_symbol(&b, b.sy[i].start, b.sy[i].len, out);
    free(s);
    bpe_free(&b);
    if (out->oom)
        return owl_err_set(err, OWL_E_NOMEM, "tokenizer: out of memory for ids");
    return OWL_OK;
}

typedef struct {
    const size_t *r; /* [r[2i], r[2i+1]) */
    size_t n;
} lit_ranges;

/* [a, b) overlaps one of the literal ranges */
static int in_literal(const lit_ranges *l, size_t a, size_t b)
{
    for (size_t i = 0; i < l->n; i++)
        if (a < l->r[2 * i + 1] && l->r[2 * i] < b)
            return 1;
    return 0;
}

/* Earliest special piece at or after text[from], longest at that position,
 * outside the literal ranges. */
static size_t find_special(const owl_tokenizer *t, const char *text, size_t len, size_t from,
                           const lit_ranges *lit, int32_t *id)
{
    for (size_t i = from; i < len; i++)
        for (int32_t k = 0; k < t->n_special; k++) {
            int32_t s = t->special_ids[k];
            if (t->len[s] <= len - i && memcmp(text + i, t->blob + t->off[s], t->len[s]) == 0 &&
                !in_literal(lit, i, i + t->len[s])) {
                *id = s;
                return i;
            }
        }
    return len;
}

owl_status owl_tokenizer_encode(const owl_tokenizer *t, const char *text, size_t len,
                                const owl_encode_opts *opts, int32_t **ids, size_t *n_ids,
                                owl_err *err)
{
    return owl_tokenizer_encode_literal(t, text, len, opts, NULL, 0, ids, n_ids, err);
}

owl_status owl_tokenizer_encode_literal(const owl_tokenizer *t, const char *text, size_t len,
                                        const owl_encode_opts *opts, const size_t *literal, size_t n_literal,
                                        int32_t **ids, size_t *n_ids, owl_err *err)
{
    if (!t || !ids || !n_ids || (!text && len))
        return owl_err_set(err, OWL_E_INVALID, "tokenizer_encode: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    if (len > MAX_TEXT)
        return owl_err_set(err, OWL_E_LIMIT, "tokenizer_encode: %zu bytes over the 256 MiB limit", len);
    owl_encode_opts o = {0, 0, 0};
    if (opts)
        o = *opts;
    if (n_literal && !literal)
        return owl_err_set(err, OWL_E_INVALID, "tokenizer_encode: %zu literal ranges, NULL array", n_literal);
    lit_ranges lit = {literal, n_literal};
    ivec out = {0};
    owl_status st = OWL_OK;
    if (o.add_bos && t->cfg.bos_id >= 0)
        push(&out, t->cfg.bos_id);
    size_t first = out.n;
    if (!o.parse_special) {
        st = encode_sp(t, text, len, t->cfg.add_dummy_prefix, &out, err);
    } else {
        /* HF legacy=False prepends ▁ to the whole text once and encodes every
         * segment without a dummy prefix; legacy=True gives every segment one. */
        int lead = !o.legacy && t->cfg.add_dummy_prefix && len > 0;
        int seg_dummy = o.legacy ? t->cfg.add_dummy_prefix : 0;
        int first_special = 0;
        size_t pos = 0;
        while (pos < len && !st) {
            int32_t sid = -1;
            size_t at = find_special(t, text, len, pos, &lit, &sid);
            if (lead) {
                /* "▁" + segment, encoded without dummy prefix */
                if (at == pos) {
                    st = encode_sp(t, SPACE_SYM, 3, 0, &out, err);
                } else {
                    char *tmp = malloc(at - pos + 3);
                    if (!tmp)
                        return owl_err_set(err, OWL_E_NOMEM, "tokenizer_encode: out of memory");
                    memcpy(tmp, SPACE_SYM, 3);
                    memcpy(tmp + 3, text + pos, at - pos);
                    st = encode_sp(t, tmp, at - pos + 3, 0, &out, err);
                    free(tmp);
                }
                lead = 0;
            } else if (at > pos) {
                st = encode_sp(t, text + pos, at - pos, seg_dummy, &out, err);
            }
            if (at < len) {
                if (out.n == first + 1 && pos == 0)
                    first_special = 1; /* the only token so far is the lead "▁" */
                push(&out, sid);
                pos = at + t->len[sid];
            } else {
                pos = len;
            }
        }
        if (!st && !o.legacy && first_special && out.n >= first + 2 && out.v[first] == t->space_id &&
            t->space_id >= 0) {
            memmove(out.v + first, out.v + first + 1, (out.n - first - 1) * sizeof *out.v);
            out.n--;
        }
    }
    if (!st && out.oom)
        st = owl_err_set(err, OWL_E_NOMEM, "tokenizer_encode: out of memory for ids");
    if (st) {
        free(out.v);
        return st;
    }
    if (!out.v) {
        out.v = malloc(sizeof *out.v);
        if (!out.v)
            return owl_err_set(err, OWL_E_NOMEM, "tokenizer_encode: out of memory");
    }
    *ids = out.v;
    *n_ids = out.n;
    return OWL_OK;
}

// ---------------------------------------------------------------- decode

void owl_tok_stream_init(owl_tok_stream *s, const owl_tokenizer *t)
{
    memset(s, 0, sizeof *s);
    s->tok = t;
    s->at_start = 1;
}

size_t owl_tok_stream_max_out(const owl_tokenizer *t)
{
    /* 4 pending bytes as U+FFFD each, then the longest piece or the unk surface */
    size_t m = t ? t->max_len : 0;
    return 12 + (m > sizeof UNK_SURFACE ? m : sizeof UNK_SURFACE);
}

/* Drain complete characters from the pending bytes; with `all`, the run has
 * ended and whatever remains is decoded (invalid bytes -> U+FFFD). */
static size_t drain(owl_tok_stream *s, char *out, int all)
{
    size_t o = 0;
    while (s->n_pend > 0) {
        uint8_t b = s->pend[0];
        size_t need = one_char_len(b);
        if (b >= 0x80 && b < 0xC0)
            need = 1;
        if (b >= 0xF8)
            need = 1;
        if (!all && (size_t)s->n_pend < need)
            break; /* may still complete */
        size_t cl = utf8_valid_len(s->pend, (size_t)s->n_pend);
        if (cl) {
            memcpy(out + o, s->pend, cl);
            o += cl;
        } else {
            cl = 1;
            memcpy(out + o, REPL, 3);
            o += 3;
        }
        memmove(s->pend, s->pend + cl, (size_t)s->n_pend - cl);
        s->n_pend -= (int)cl;
    }
    return o;
}

owl_status owl_tok_stream_push(owl_tok_stream *s, int32_t id, char *out, size_t cap,
                               size_t *n_out, owl_err *err)
{
    const owl_tokenizer *t = s->tok;
    *n_out = 0;
    if (!t || id < 0 || id >= t->n)
        return owl_err_set(err, OWL_E_INVALID, "tokenizer_decode: id %d outside vocab %d", (int)id,
                           t ? (int)t->n : 0);
    if (cap < owl_tok_stream_max_out(t))
        return owl_err_set(err, OWL_E_INVALID, "tokenizer_decode: buffer %zu < %zu bytes", cap,
                           owl_tok_stream_max_out(t));
    int ty = t->type[id];
    if (ty == OWL_SPM_BYTE) {
        s->pend[s->n_pend++] = (uint8_t)t->byte_val[id];
        s->at_start = 0;
        *n_out = drain(s, out, 0);
        return OWL_OK;
    }
    size_t o = drain(s, out, 1);
    if (ty == OWL_SPM_CONTROL) {
        /* invisible */
    } else if (ty == OWL_SPM_UNKNOWN) {
        memcpy(out + o, UNK_SURFACE, sizeof UNK_SURFACE - 1);
        o += sizeof UNK_SURFACE - 1;
        s->at_start = 0;
    } else {
        const char *p = t->blob + t->off[id];
        size_t n = t->len[id], i = 0;
        if (s->at_start && n >= 3 && memcmp(p, SPACE_SYM, 3) == 0)
            i = 3;
        s->at_start = 0;
        while (i < n) {
            if (n - i >= 3 && memcmp(p + i, SPACE_SYM, 3) == 0) {
                out[o++] = ' ';
                i += 3;
            } else {
                out[o++] = p[i++];
            }
        }
    }
    *n_out = o;
    return OWL_OK;
}

owl_status owl_tok_stream_finish(owl_tok_stream *s, char *out, size_t cap, size_t *n_out,
                                 owl_err *err)
{
    *n_out = 0;
    if (cap < 12)
        return owl_err_set(err, OWL_E_INVALID, "tokenizer_decode: buffer %zu < 12 bytes", cap);
    *n_out = drain(s, out, 1);
    return OWL_OK;
}

owl_status owl_tokenizer_decode(const owl_tokenizer *t, const int32_t *ids, size_t n, char **text,
                                size_t *len, owl_err *err)
{
    if (!t || !text || !len || (!ids && n))
        return owl_err_set(err, OWL_E_INVALID, "tokenizer_decode: NULL argument");
    *text = NULL;
    *len = 0;
    size_t step = owl_tok_stream_max_out(t), cap = step + 1, o = 0;
    char *buf = malloc(cap);
    if (!buf)
        return owl_err_set(err, OWL_E_NOMEM, "tokenizer_decode: out of memory");
    owl_tok_stream s;
    owl_tok_stream_init(&s, t);
    for (size_t i = 0; i <= n; i++) {
        if (cap - o < step + 1) {
            size_t nc = cap * 2 > o + step + 1 ? cap * 2 : o + step + 1;
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                return owl_err_set(err, OWL_E_NOMEM, "tokenizer_decode: out of memory (%zu bytes)", nc);
            }
            buf = nb;
            cap = nc;
        }
        size_t k;
        owl_status st = i < n ? owl_tok_stream_push(&s, ids[i], buf + o, cap - o, &k, err)
                              : owl_tok_stream_finish(&s, buf + o, cap - o, &k, err);
        if (st) {
            free(buf);
            return st;
        }
        o += k;
    }
    buf[o] = 0;
    *text = buf;
    *len = o;
    return OWL_OK;
}
