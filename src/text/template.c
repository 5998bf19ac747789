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

owl_status owl_chat_render(const owl_chat_msg *msgs, int n, int add_generation_prompt, char **out,
                           size_t *len, owl_err *err)
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
            continue;
        }
        puts_(&b, ": ");
        for (int k = 0; k < msgs[i].n_images; k++)
            puts_(&b, OWL_IMAGE_PLACEHOLDER);
        puts_(&b, text);
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

owl_status owl_chat_tokenize(const owl_tokenizer *t, const char *prompt, size_t len, int legacy,
                             int32_t **ids, size_t *n_ids, int *n_images, owl_err *err)
{
    if (!t || !ids || !n_ids || (!prompt && len))
        return owl_err_set(err, OWL_E_INVALID, "chat_tokenize: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    if (n_images)
        *n_images = 0;
    const char *ph = OWL_IMAGE_PLACEHOLDER;
    const size_t phn = strlen(ph);
    owl_encode_opts o = {1, 1, legacy != 0};
    int32_t bos = owl_tokenizer_bos(t);
    size_t cap = 64, n = 0;
    int32_t *out = malloc(cap * sizeof *out);
    if (!out)
        return owl_err_set(err, OWL_E_NOMEM, "chat_tokenize: out of memory");
    size_t offset = 0; /* ids dropped from the front of every chunk */
    int images = 0;
    owl_status st = OWL_OK;
    for (size_t pos = 0, chunk = 0;; chunk++) {
        /* next chunk: [pos, end) */
        size_t end = pos;
        while (end < len && !(len - end >= phn && memcmp(prompt + end, ph, phn) == 0))
            end++;
        int32_t *c = NULL;
        size_t nc = 0;
        if (end > pos) {
            st = owl_tokenizer_encode(t, prompt + pos, end - pos, &o, &c, &nc, err);
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
