/* template.c - mplug_owl2 chat rendering and tokenizer_image_token (see template.h). */
#include "template.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n + 1 > b->cap - b->n) {
        size_t nc = b->cap ? b->cap : 128;
        while (nc - b->n < n + 1) {
            if (nc > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            nc *= 2;
        }
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static int overlaps(const size_t *r, size_t n, size_t a, size_t b)
{
    for (size_t i = 0; i < n; i++)
        if (a < r[2 * i + 1] && r[2 * i] < b)
            return 1;
    return 0;
}

/* owl_chat_render; ranges (2 per message, or NULL) get each message text's bytes */
static owl_status render(const owl_chat_msg *msgs, int n, int add_generation_prompt, char **out, size_t *len,
                         size_t *ranges, owl_err *err)
{
    if (!out || !len || n < 0 || (!msgs && n))
        return owl_err_set(err, OWL_E_INVALID, "chat_render: NULL argument or n %d", n);
    *out = NULL;
    *len = 0;
    for (int i = 0; i < n; i++) {
        int want = i % 2 ? OWL_ROLE_ASSISTANT : OWL_ROLE_USER;
        if (msgs[i].role != want)
            return owl_err_set(err, OWL_E_INVALID,
                               "chat_render: message %d has role %d, want %s (roles alternate from USER)",
                               i, msgs[i].role, want ? "ASSISTANT" : "USER");
        if (msgs[i].n_images < 0 || msgs[i].n_images > 1024)
            return owl_err_set(err, OWL_E_INVALID, "chat_render: message %d: n_images %d", i,
                               msgs[i].n_images);
    }
    sbuf b = {0};
    puts_(&b, ""); /* an allocation even for empty output */
    for (int i = 0; i < n; i++) {
        const char *role = i % 2 ? "ASSISTANT" : "USER";
        const char *text = msgs[i].text ? msgs[i].text : "";
        puts_(&b, role);
        if (!text[0] && !msgs[i].n_images) {
            puts_(&b, ":"); /* reference: a message without content renders as "ROLE:" */
            if (ranges)
                ranges[2 * i] = ranges[2 * i + 1] = b.n;
            continue;
        }
        puts_(&b, ": ");
        for (int k = 0; k < msgs[i].n_images; k++)
            puts_(&b, OWL_IMAGE_PLACEHOLDER);
        if (ranges)
            ranges[2 * i] = b.n;
        puts_(&b, text);
        if (ranges)
            ranges[2 * i + 1] = b.n;
        puts_(&b, i % 2 ? "</s>" : " ");
    }
    if (add_generation_prompt)
        puts_(&b, "ASSISTANT:");
    if (b.oom) {
        free(b.p);
        return owl_err_set(err, OWL_E_NOMEM, "chat_render: out of memory");
    }
    *out = b.p;
    *len = b.n;
    return OWL_OK;
}

owl_status owl_chat_render(const owl_chat_msg *msgs, int n, int add_generation_prompt, char **out,
                           size_t *len, owl_err *err)
{
    return render(msgs, n, add_generation_prompt, out, len, NULL, err);
}

/* The end of the prompt chunk starting at pos: the next "<|image|>" outside
 * the literal ranges, or len. */
static size_t chunk_end(const char *prompt, size_t len, size_t pos, const size_t *lit, size_t n_lit)
{
    const char *ph = OWL_IMAGE_PLACEHOLDER;
    const size_t phn = strlen(ph);
    size_t end = pos;
    while (end < len && !(len - end >= phn && memcmp(prompt + end, ph, phn) == 0 &&
                          !overlaps(lit, n_lit, end, end + phn)))
        end++;
    return end;
}

/* The literal ranges lit[2i..2i+1) that meet [pos, end), clipped to it and
 * made relative to pos, into out; returns their count. */
static size_t clip_ranges(const size_t *lit, size_t n_lit, size_t pos, size_t end, size_t *out)
{
    size_t n = 0;
    for (size_t r = 0; r < n_lit; r++)
        if (lit[2 * r] < end && pos < lit[2 * r + 1]) {
            out[2 * n] = (lit[2 * r] > pos ? lit[2 * r] : pos) - pos;
            out[2 * n + 1] = (lit[2 * r + 1] < end ? lit[2 * r + 1] : end) - pos;
            n++;
        }
    return n;
}

/* owl_chat_tokenize, with n_lit byte ranges lit[2i..2i+1) of the prompt kept
 * as text: no "<|image|>" split and no special piece matched inside them. */
static owl_status tokenize(const owl_tokenizer *t, const char *prompt, size_t len, int legacy, const size_t *lit,
                           size_t n_lit, int32_t **ids, size_t *n_ids, int *n_images, owl_err *err)
{
    if (!t || !ids || !n_ids || (!prompt && len))
        return owl_err_set(err, OWL_E_INVALID, "chat_tokenize: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    if (n_images)
        *n_images = 0;
    const size_t phn = strlen(OWL_IMAGE_PLACEHOLDER);
    size_t *clit = malloc(2 * (n_lit ? n_lit : 1) * sizeof *clit); /* ranges of one chunk */
    owl_encode_opts o = {1, 1, legacy != 0};
    size_t n_clit = 0;
    int32_t bos = owl_tokenizer_bos(t);
    size_t cap = 64, n = 0;
    int32_t *out = malloc(cap * sizeof *out);
    if (!out || !clit) {
        free(out);
        free(clit);
        return owl_err_set(err, OWL_E_NOMEM, "chat_tokenize: out of memory");
    }
    size_t offset = 0; /* ids dropped from the front of every chunk */
    int images = 0;
    owl_status st = OWL_OK;
    for (size_t pos = 0, chunk = 0;; chunk++) {
        size_t end = chunk_end(prompt, len, pos, lit, n_lit); /* this chunk: [pos, end) */
        int32_t *c = NULL;
        size_t nc = 0;
        n_clit = clip_ranges(lit, n_lit, pos, end, clit);
        if (end > pos) {
            st = owl_tokenizer_encode_literal(t, prompt + pos, end - pos, &o, clit, n_clit, &c, &nc, err);
            if (st)
                break;
        }
        if (chunk == 0 && nc > 0 && c[0] == bos && bos >= 0) {
            offset = 1;
            out[n++] = bos;
        }
        size_t need = n + 1 + (nc > offset ? nc - offset : 0);
        if (need > cap) {
            size_t ncap = need * 2;
            int32_t *np = realloc(out, ncap * sizeof *np);
            if (!np) {
                free(c);
                st = owl_err_set(err, OWL_E_NOMEM, "chat_tokenize: out of memory for %zu ids", need);
                break;
            }
            out = np;
            cap = ncap;
        }
        if (chunk > 0) {
            out[n++] = OWL_IMAGE_TOKEN;
            images++;
        }
        for (size_t i = offset; i < nc; i++)
            out[n++] = c[i];
        free(c);
        if (end >= len)
            break;
        pos = end + phn;
    }
    free(clit);
    if (st) {
        free(out);
        return st;
    }
    *ids = out;
    *n_ids = n;
    if (n_images)
        *n_images = images;
    return OWL_OK;
}

owl_status owl_chat_tokenize(const owl_tokenizer *t, const char *prompt, size_t len, int legacy,
                             int32_t **ids, size_t *n_ids, int *n_images, owl_err *err)
{
    return tokenize(t, prompt, len, legacy, NULL, 0, ids, n_ids, n_images, err);
}

owl_status owl_chat_tokenize_msgs(const owl_tokenizer *t, const owl_chat_msg *msgs, int n,
                                  int add_generation_prompt, int legacy, int parse_text_special, int32_t **ids,
                                  size_t *n_ids, int *n_images, owl_err *err)
{
    if (!ids || !n_ids || n < 0)
        return owl_err_set(err, OWL_E_INVALID, "chat_tokenize: NULL argument or n %d", n);
    *ids = NULL;
    *n_ids = 0;
    size_t *ranges = malloc(2 * (size_t)(n ? n : 1) * sizeof *ranges);
    char *prompt = NULL;
    size_t len = 0;
    if (!ranges)
        return owl_err_set(err, OWL_E_NOMEM, "chat_tokenize: out of memory");
    owl_status st = render(msgs, n, add_generation_prompt, &prompt, &len, ranges, err);
    if (!st)
        st = tokenize(t, prompt, len, legacy, ranges, parse_text_special ? 0 : (size_t)n, ids, n_ids, n_images,
                      err);
    free(prompt);
    free(ranges);
    return st;
}
