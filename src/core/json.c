/* json.c - validating recursive-descent JSON parser (see json.h). */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p;
    size_t n, i;
    owl_err *err;
} parser;

static owl_status fail(parser *ps, const char *what)
{
    return owl_err_set(ps->err, OWL_E_FORMAT, "json: %s at byte %zu", what, ps->i);
}

static void skip_ws(parser *ps)
{
    while (ps->i < ps->n) {
        char c = ps->p[ps->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        ps->i++;
    }
}

static void value_free(owl_json *v)
{
    if (v->type == OWL_JSON_STRING) {
        free(v->str);
    } else if (v->type == OWL_JSON_ARRAY || v->type == OWL_JSON_OBJECT) {
        for (size_t k = 0; k < v->len; k++) {
            value_free(&v->items[k]);
            if (v->keys)
                free(v->keys[k]);
        }
        free(v->items);
        free(v->keys);
    }
    memset(v, 0, sizeof *v);
}

void owl_json_free(owl_json *v)
{
    if (!v)
        return;
    value_free(v);
    free(v);
}

/* Growable byte buffer for decoded strings. */
typedef struct {
    char *b;
    size_t n, cap;
} sbuf;

static int sbuf_put(sbuf *s, const char *src, size_t n)
{
    if (s->n + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 32;
        while (cap < s->n + n + 1)
            cap *= 2;
        char *b = realloc(s->b, cap);
        if (!b)
            return -1;
        s->b = b;
        s->cap = cap;
    }
    memcpy(s->b + s->n, src, n);
    s->n += n;
    s->b[s->n] = 0;
    return 0;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t utf8_encode(unsigned cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_valid(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        min = 0x80;
        c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        min = 0x800;
        c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        min = 0x10000;
        c &= 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[k] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return len;
}

static owl_status nomem(parser *ps)
{
    return owl_err_set(ps->err, OWL_E_NOMEM, "json: out of memory");
}

/* The \u escape at ps->i: one code point, or a high+low surrogate pair. */
static owl_status parse_u_escape(parser *ps, sbuf *s)
{
    unsigned cp, lo;
    if (ps->i + 6 > ps->n || hex4(ps->p + ps->i + 2, &cp))
        return fail(ps, "bad \\u escape");
    size_t adv = 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(ps, "lone low surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (ps->i + 12 > ps->n || ps->p[ps->i + 6] != '\\' || ps->p[ps->i + 7] != 'u' ||
            hex4(ps->p + ps->i + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF)
            return fail(ps, "unpaired surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        adv = 12;
    }
    char u8[4];
    if (sbuf_put(s, u8, utf8_encode(cp, u8)))
        return nomem(ps);
    ps->i += adv;
    return OWL_OK;
}

/* The escape sequence starting with the backslash at ps->i. */
static owl_status parse_escape(parser *ps, sbuf *s)
{
    if (ps->i + 1 >= ps->n)
        return fail(ps, "unterminated escape");
    char ch;
    switch (ps->p[ps->i + 1]) {
    case '"': ch = '"'; break;
    case '\\': ch = '\\'; break;
    case '/': ch = '/'; break;
    case 'b': ch = '\b'; break;
    case 'f': ch = '\f'; break;
    case 'n': ch = '\n'; break;
    case 'r': ch = '\r'; break;
    case 't': ch = '\t'; break;
    case 'u': return parse_u_escape(ps, s);
    default: return fail(ps, "bad escape");
    }
    if (sbuf_put(s, &ch, 1))
        return nomem(ps);
    ps->i += 2;
    return OWL_OK;
}

/* One character of a string body at ps->i (not the closing quote). */
static owl_status parse_string_char(parser *ps, sbuf *s)
{
    unsigned char c = (unsigned char)ps->p[ps->i];
    if (c < 0x20)
        return fail(ps, "control character in string");
    if (c == '\\')
        return parse_escape(ps, s);
    size_t ul = utf8_valid((const unsigned char *)ps->p + ps->i, ps->n - ps->i);
    if (!ul)
        return fail(ps, "invalid UTF-8 in string");
    if (sbuf_put(s, ps->p + ps->i, ul))
        return nomem(ps);
    ps->i += ul;
    return OWL_OK;
}

static owl_status parse_string(parser *ps, char **out, size_t *out_len)
{
    sbuf s = {0};
    ps->i++; /* opening quote */
    while (ps->i < ps->n && ps->p[ps->i] != '"') {
        owl_status st = parse_string_char(ps, &s);
        if (st) {
            free(s.b);
            return st;
        }
    }
    if (ps->i >= ps->n) {
        free(s.b);
        return fail(ps, "unterminated string");
    }
    ps->i++; /* closing quote */
    if (!s.b && sbuf_put(&s, "", 0)) /* empty string still gets a buffer */
        return nomem(ps);
    *out = s.b;
    *out_len = s.n;
    return OWL_OK;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static owl_status parse_number(parser *ps, owl_json *v)
{
    size_t st = ps->i, i = ps->i;
    int is_int = 1;
    if (i < ps->n && ps->p[i] == '-')
        i++;
    if (i >= ps->n || !is_digit(ps->p[i]))
        return fail(ps, "bad number");
    if (ps->p[i] == '0') {
        i++;
    } else {
        while (i < ps->n && is_digit(ps->p[i]))
            i++;
    }
    if (i < ps->n && ps->p[i] == '.') {
        is_int = 0;
        i++;
        if (i >= ps->n || !is_digit(ps->p[i])) {
            ps->i = i;
            return fail(ps, "bad number fraction");
        }
        while (i < ps->n && is_digit(ps->p[i]))
            i++;
    }
    if (i < ps->n && (ps->p[i] == 'e' || ps->p[i] == 'E')) {
        is_int = 0;
        i++;
        if (i < ps->n && (ps->p[i] == '+' || ps->p[i] == '-'))
            i++;
        if (i >= ps->n || !is_digit(ps->p[i])) {
            ps->i = i;
            return fail(ps, "bad number exponent");
        }
        while (i < ps->n && is_digit(ps->p[i]))
            i++;
    }
    size_t len = i - st;
    if (len > 400) {
        ps->i = st;
        return owl_err_set(ps->err, OWL_E_LIMIT, "json: number longer than 400 chars at byte %zu", st);
    }
    char tmp[408];
    memcpy(tmp, ps->p + st, len);
    tmp[len] = 0;
    v->type = OWL_JSON_NUMBER;
    v->number = strtod(tmp, NULL);
    if (is_int) {
        errno = 0;
        long long x = strtoll(tmp, NULL, 10);
        if (errno == 0) {
            v->is_int = 1;
            v->integer = (int64_t)x;
        }
    }
    ps->i = i;
    return OWL_OK;
}

static owl_status parse_value(parser *ps, owl_json *v, int depth);

static int push_item(owl_json **items, char ***keys, size_t *n, size_t *cap, int with_keys)
{
    if (*n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 4;
    owl_json *ni = realloc(*items, nc * sizeof **items);
    if (!ni)
        return -1;
    *items = ni;
    if (with_keys) {
        char **nk = realloc(*keys, nc * sizeof **keys);
        if (!nk)
            return -1;
        *keys = nk;
    }
    *cap = nc;
    return 0;
}

static owl_status parse_container(parser *ps, owl_json *v, int depth, int is_obj)
{
    char close = is_obj ? '}' : ']';
    owl_json *items = NULL;
    char **keys = NULL;
    size_t n = 0, cap = 0;
    owl_status st = OWL_OK;
    v->type = is_obj ? OWL_JSON_OBJECT : OWL_JSON_ARRAY;
    ps->i++;
    skip_ws(ps);
    if (ps->i < ps->n && ps->p[ps->i] == close) {
        ps->i++;
        return OWL_OK;
    }
    for (;;) {
        if (push_item(&items, &keys, &n, &cap, is_obj)) {
            st = owl_err_set(ps->err, OWL_E_NOMEM, "json: out of memory");
            break;
        }
        memset(&items[n], 0, sizeof items[n]);
        if (is_obj) {
            skip_ws(ps);
            if (ps->i >= ps->n || ps->p[ps->i] != '"') {
                st = fail(ps, "expected object key");
                break;
            }
            size_t kl;
            st = parse_string(ps, &keys[n], &kl);
            if (st)
                break;
            if (strlen(keys[n]) != kl) {
                free(keys[n]);
                st = fail(ps, "NUL in object key");
                break;
            }
            for (size_t k = 0; k < n; k++)
                if (!strcmp(keys[k], keys[n])) {
                    st = owl_err_set(ps->err, OWL_E_FORMAT, "json: duplicate key \"%.64s\" at byte %zu",
                                     keys[n], ps->i);
                    break;
                }
            if (st) {
                free(keys[n]);
                break;
            }
            skip_ws(ps);
            if (ps->i >= ps->n || ps->p[ps->i] != ':') {
                free(keys[n]);
                st = fail(ps, "expected ':'");
                break;
            }
            ps->i++;
        }
        st = parse_value(ps, &items[n], depth + 1);
        if (st) {
            value_free(&items[n]);
            if (is_obj)
                free(keys[n]);
            break;
        }
        n++;
        skip_ws(ps);
        if (ps->i < ps->n && ps->p[ps->i] == ',') {
            ps->i++;
            continue;
        }
        if (ps->i < ps->n && ps->p[ps->i] == close) {
            ps->i++;
            break;
        }
        st = fail(ps, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
        break;
    }
    v->items = items;
    v->keys = keys;
    v->len = n;
    return st;
}

static owl_status parse_value(parser *ps, owl_json *v, int depth)
{
    if (depth > OWL_JSON_MAX_DEPTH)
        return owl_err_set(ps->err, OWL_E_LIMIT, "json: nesting deeper than %d at byte %zu",
                           OWL_JSON_MAX_DEPTH, ps->i);
    skip_ws(ps);
    if (ps->i >= ps->n)
        return fail(ps, "unexpected end");
    char c = ps->p[ps->i];
    if (c == '{' || c == '[')
        return parse_container(ps, v, depth, c == '{');
    if (c == '"') {
        v->type = OWL_JSON_STRING;
        return parse_string(ps, &v->str, &v->len);
    }
    if (c == '-' || is_digit(c))
        return parse_number(ps, v);
    static const struct {
        const char *w;
        owl_json_type t;
        int b;
    } lits[] = {{"true", OWL_JSON_BOOL, 1}, {"false", OWL_JSON_BOOL, 0}, {"null", OWL_JSON_NULL, 0}};
    for (size_t k = 0; k < 3; k++) {
        size_t l = strlen(lits[k].w);
        if (ps->n - ps->i >= l && !memcmp(ps->p + ps->i, lits[k].w, l)) {
            v->type = lits[k].t;
            v->boolean = lits[k].b;
            ps->i += l;
            return OWL_OK;
        }
    }
    return fail(ps, "unexpected character");
}

owl_status owl_json_parse(const char *data, size_t size, owl_json **out, owl_err *err)
{
    *out = NULL;
    if (!data && size)
        return owl_err_set(err, OWL_E_INVALID, "json: NULL data");
    if (size > OWL_JSON_MAX_SIZE)
        return owl_err_set(err, OWL_E_LIMIT, "json: %zu bytes exceeds the %zu byte limit", size,
                           OWL_JSON_MAX_SIZE);
    owl_json *root = calloc(1, sizeof *root);
    if (!root)
        return owl_err_set(err, OWL_E_NOMEM, "json: out of memory");
    parser ps = {data, size, 0, err};
    /* a UTF-8 BOM is not JSON; reject it like any other stray byte */
    owl_status st = parse_value(&ps, root, 1);
    if (!st) {
        skip_ws(&ps);
        if (ps.i != ps.n)
            st = fail(&ps, "trailing characters after the value");
    }
    if (st) {
        owl_json_free(root);
        return st;
    }
    *out = root;
    return OWL_OK;
}

const owl_json *owl_json_get(const owl_json *v, const char *key)
{
    if (!v || v->type != OWL_JSON_OBJECT)
        return NULL;
    for (size_t k = 0; k < v->len; k++)
        if (!strcmp(v->keys[k], key))
            return &v->items[k];
    return NULL;
}

static const owl_json *member(const owl_json *obj, const char *key, owl_json_type t, owl_err *err,
                              owl_status *st)
{
    const owl_json *m = owl_json_get(obj, key);
    if (!m || m->type == OWL_JSON_NULL) {
        *st = owl_err_set(err, OWL_E_NOTFOUND, "json: key \"%s\" missing", key);
        return NULL;
    }
    if (m->type != t) {
        *st = owl_err_set(err, OWL_E_FORMAT, "json: key \"%s\" has the wrong type", key);
        return NULL;
    }
    *st = OWL_OK;
    return m;
}

owl_status owl_json_get_i64(const owl_json *obj, const char *key, int64_t *v, owl_err *err)
{
    owl_status st;
    const owl_json *m = member(obj, key, OWL_JSON_NUMBER, err, &st);
    if (!m)
        return st;
    if (m->is_int) {
        *v = m->integer;
        return OWL_OK;
    }
    /* 1.0e3 style integers are accepted when exact and in range */
    if (m->number == floor(m->number) && fabs(m->number) < 9.0e15) {
        *v = (int64_t)m->number;
        return OWL_OK;
    }
    return owl_err_set(err, OWL_E_FORMAT, "json: key \"%s\" = %g is not an integer", key, m->number);
}

owl_status owl_json_get_f64(const owl_json *obj, const char *key, double *v, owl_err *err)
{
    owl_status st;
    const owl_json *m = member(obj, key, OWL_JSON_NUMBER, err, &st);
    if (!m)
        return st;
    *v = m->number;
    return OWL_OK;
}

owl_status owl_json_get_str(const owl_json *obj, const char *key, const char **v, owl_err *err)
{
    owl_status st;
    const owl_json *m = member(obj, key, OWL_JSON_STRING, err, &st);
    if (!m)
        return st;
    *v = m->str;
    return OWL_OK;
}

void owl_json_write_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}
