/* sampler.c - sampling pipeline and stop conditions (see sampler.h). */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float logit;
    int32_t id;
} cand;

struct owl_sampler {
    int32_t n_vocab;
    owl_sampler_params p;
    uint64_t rng[4];
    float *work;     /* penalised logits */
    cand *c;         /* candidates */
    cand *c2;        /* kept candidates, in draw order */
    double *prob;    /* probabilities of the candidates */
    uint32_t *stamp; /* repetition penalty: id seen in the current call */
    uint32_t epoch;
};

owl_sampler_params owl_sampler_params_default(void)
{
    owl_sampler_params p = {0.2f, 50, 0.6f, 0.0f, 1.0f, 0};
    return p;
}

owl_sampler_params owl_sampler_params_greedy(void)
{
    owl_sampler_params p = {0.0f, 0, 1.0f, 0.0f, 1.0f, 0};
    return p;
}

// ---------------------------------------------------------------- rng (xoshiro256**)

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(uint64_t *s)
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

void owl_sampler_seed(owl_sampler *s, uint64_t seed)
{
    if (!s)
        return;
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
}

double owl_sampler_uniform(owl_sampler *s) { return (double)(next_u64(s->rng) >> 11) * 0x1p-53; }

// ---------------------------------------------------------------- init

owl_status owl_sampler_init(owl_sampler **out, int32_t n_vocab, const owl_sampler_params *p,
                            owl_err *err)
{
    if (!out || !p)
        return owl_err_set(err, OWL_E_INVALID, "sampler: NULL argument");
    *out = NULL;
    if (n_vocab <= 0 || n_vocab > (1 << 28))
        return owl_err_set(err, OWL_E_INVALID, "sampler: n_vocab %d outside 1..2^28", (int)n_vocab);
    if (!(p->temperature == p->temperature) || !(p->top_p > 0) || !(p->min_p <= 1) ||
        p->min_p != p->min_p || !(p->repetition_penalty > 0) || isinf(p->repetition_penalty) ||
        isinf(p->temperature))
        return owl_err_set(err, OWL_E_INVALID,
                           "sampler: bad params temperature %g top_p %g min_p %g repetition_penalty %g",
                           (double)p->temperature, (double)p->top_p, (double)p->min_p,
                           (double)p->repetition_penalty);
    owl_sampler *s = calloc(1, sizeof *s);
    if (!s)
        return owl_err_set(err, OWL_E_NOMEM, "sampler: out of memory");
    size_t n = (size_t)n_vocab;
    s->n_vocab = n_vocab;
    s->p = *p;
    s->work = malloc(n * sizeof *s->work);
    s->c = malloc(n * sizeof *s->c);
    s->c2 = malloc(n * sizeof *s->c2);
    s->prob = malloc(n * sizeof *s->prob);
    s->stamp = calloc(n, sizeof *s->stamp);
    if (!s->work || !s->c || !s->c2 || !s->prob || !s->stamp) {
        owl_sampler_free(s);
        return owl_err_set(err, OWL_E_NOMEM, "sampler: out of memory for %d logits", (int)n_vocab);
    }
    owl_sampler_seed(s, p->seed);
    *out = s;
    return OWL_OK;
}

void owl_sampler_free(owl_sampler *s)
{
    if (!s)
        return;
    free(s->work);
    free(s->c);
    free(s->c2);
    free(s->prob);
    free(s->stamp);
    free(s);
}

// ---------------------------------------------------------------- sample

/* candidate order: logit descending, then id ascending (total: ids are unique) */
static int better(const cand *x, const cand *y)
{
    return x->logit > y->logit || (x->logit == y->logit && x->id < y->id);
}

static int worse(const cand *x, const cand *y) { return better(y, x); }

/* heap with the element that goes first under `first` at the root */
static void sift_down(cand *h, size_t n, size_t i, int (*first)(const cand *, const cand *))
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && first(&h[l], &h[m]))
            m = l;
        if (l + 1 < n && first(&h[l + 1], &h[m]))
            m = l + 1;
        if (m == i)
            return;
        cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Divides (positive) or multiplies (negative) each distinct history id's
 * logit by the penalty once. */
static void penalize_history(owl_sampler *s, float *w, const int32_t *history, size_t n_history)
{
    const int32_t n = s->n_vocab;
    const float rp = s->p.repetition_penalty;
    if (++s->epoch == 0) {
        memset(s->stamp, 0, (size_t)n * sizeof *s->stamp);
        s->epoch = 1;
    }
    for (size_t k = 0; k < n_history; k++) {
        int32_t t = history[k];
        if (t < 0 || t >= n || s->stamp[t] == s->epoch)
            continue;
        s->stamp[t] = s->epoch;
        w[t] = w[t] > 0 ? w[t] / rp : w[t] * rp;
    }
}

/* The first index of the largest value. */
static int32_t argmax(const float *w, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (w[i] > w[best])
            best = i;
    return best;
}

/* Candidates w[i] / temp in id order, dropping those at -inf; returns the count. */
static size_t scale_candidates(const float *w, int32_t n, float temp, cand *c)
{
    size_t nc = 0;
    for (int32_t i = 0; i < n; i++) {
        float v = w[i] / temp;
        if (v != -INFINITY) {
            c[nc].logit = v;
            c[nc].id = i;
            nc++;
        }
    }
    return nc;
}

/* Keeps the best k of c[0..nc) and every candidate tied with the k-th (as HF
 * does), via a min-heap of the best k; returns the new count (k < nc). */
static size_t keep_top_k(cand *c, size_t nc, size_t k)
{
    for (size_t i = k / 2; i-- > 0;)
        sift_down(c, k, i, worse);
    for (size_t i = k; i < nc; i++)
        if (worse(&c[0], &c[i])) {
            cand t = c[0];
            c[0] = c[i];
            c[i] = t;
            sift_down(c, k, 0, worse);
        }
    float kth = c[0].logit;
    size_t m = k;
    for (size_t i = k; i < nc; i++)
        if (c[i].logit >= kth)
            c[m++] = c[i];
    return m;
}

/* top-p: take candidates best first into s->c2 / s->prob (a max-heap, so
 * only the nucleus is ordered: O(V + m log V)); stop at the first whose mass
 * together with everything below it, (total - head) / total, is <= 1 - top_p.
 * This is HF's ascending cumulative-probability rule; the best token always
 * stays. Weights are relative to the best logit `top`. Returns the count. */
static size_t take_nucleus(owl_sampler *s, size_t nc, float top, double total, double *sum)
{
    cand *c = s->c, *o = s->c2;
    double *pr = s->prob;
    size_t m = 0;
    double limit = s->p.top_p < 1.0f ? 1.0 - (double)s->p.top_p : -1.0;
    *sum = 0;
    for (size_t i = nc / 2; i-- > 0;)
        sift_down(c, nc, i, better);
    for (size_t hn = nc; hn > 0;) {
        if (m > 0 && (total - *sum) / total <= limit)
            break;
        o[m] = c[0];
        pr[m] = (double)expf(c[0].logit - top);
        *sum += pr[m++];
        c[0] = c[--hn];
        sift_down(c, hn, 0, better);
    }
    return m;
}

/* min-p: weights are relative to the best (1), so the bar is min_p; returns
 * the count left (>= 1: the best has weight 1 >= min_p) and their sum. */
static size_t keep_min_p(owl_sampler *s, size_t m, double *sum)
{
    cand *o = s->c2;
    double *pr = s->prob;
    size_t j = 0;
    for (size_t i = 0; i < m; i++)
        if (pr[i] >= (double)s->p.min_p) {
            o[j] = o[i];
            pr[j++] = pr[i];
        }
    *sum = 0;
    for (size_t i = 0; i < j; i++)
        *sum += pr[i];
    return j;
}

/* Draws from s->c2[0..m) with weights s->prob summing to sum. */
static int32_t draw(owl_sampler *s, size_t m, double sum)
{
    double u = owl_sampler_uniform(s) * sum, acc = 0;
    for (size_t i = 0; i < m; i++) {
        acc += s->prob[i];
        if (u < acc)
            return s->c2[i].id;
    }
    return s->c2[m - 1].id; /* u rounded up to sum */
}

owl_status owl_sampler_sample(owl_sampler *s, const float *logits, const int32_t *history,
                              size_t n_history, int32_t *id, owl_err *err)
{
    if (!s || !logits || !id || (!history && n_history))
        return owl_err_set(err, OWL_E_INVALID, "sampler: NULL argument");
    const int32_t n = s->n_vocab;
    float *w = s->work;
    memcpy(w, logits, (size_t)n * sizeof *w);
    for (int32_t i = 0; i < n; i++)
        if (w[i] != w[i])
            return owl_err_set(err, OWL_E_INVALID, "sampler: logit %d is NaN: the model computed not-a-number "
                               "(corrupt weights, or weights that do not fit the model's metadata)", (int)i);

    /* 1. repetition penalty, once per distinct id */
    if (s->p.repetition_penalty != 1.0f && n_history)
        penalize_history(s, w, history, n_history);

    /* 2. greedy */
    int32_t best = argmax(w, n);
    if (w[best] == -INFINITY)
        return owl_err_set(err, OWL_E_INVALID, "sampler: every logit is -inf");
    if (!(s->p.temperature > 0)) {
        *id = best;
        return OWL_OK;
    }

    /* 3. temperature */
    const float temp = s->p.temperature;
    size_t nc = scale_candidates(w, n, temp, s->c);

    /* 4. top-k */
    int32_t k = s->p.top_k;
    int sorted = s->p.top_p < 1.0f;
    if (k > 0 && (size_t)k < nc) {
        sorted = 1;
        nc = keep_top_k(s->c, nc, (size_t)k);
    }

    /* softmax weights relative to the best logit (its weight is exactly 1) */
    const float top = w[best] / temp;
    double total = 0;
    for (size_t i = 0; i < nc; i++)
        total += (double)expf(s->c[i].logit - top);

    /* 5. top-p */
    double sum;
    size_t m;
    if (sorted) {
        m = take_nucleus(s, nc, top, total, &sum);
    } else { /* no ordering needed: id order */
        for (size_t i = 0; i < nc; i++) {
            s->c2[i] = s->c[i];
            s->prob[i] = (double)expf(s->c[i].logit - top);
        }
        m = nc;
        sum = total;
    }

    /* 6. min-p */
    if (s->p.min_p > 0)
        m = keep_min_p(s, m, &sum);

    /* 7. draw */
    *id = draw(s, m, sum);
    return OWL_OK;
}

// ---------------------------------------------------------------- stopper

owl_status owl_stopper_init(owl_stopper *s, int32_t eos_id, int max_tokens,
                            const char *const *stops, int n_stops, owl_err *err)
{
    if (!s || n_stops < 0 || (n_stops && !stops))
        return owl_err_set(err, OWL_E_INVALID, "stopper: NULL argument or n_stops %d", n_stops);
    memset(s, 0, sizeof *s);
    s->eos_id = eos_id;
    s->max_tokens = max_tokens;
    if (n_stops) {
        s->stops = calloc((size_t)n_stops, sizeof *s->stops);
        if (!s->stops)
            return owl_err_set(err, OWL_E_NOMEM, "stopper: out of memory");
    }
    for (int i = 0; i < n_stops; i++) {
        if (!stops[i] || !stops[i][0])
            continue;
        size_t l = strlen(stops[i]);
        char *d = malloc(l + 1);
        if (!d) {
            owl_stopper_free(s);
            return owl_err_set(err, OWL_E_NOMEM, "stopper: out of memory");
        }
        memcpy(d, stops[i], l + 1);
        s->stops[s->n_stops++] = d;
        if (l > s->max_stop)
            s->max_stop = l;
    }
    s->hold = malloc(s->max_stop + 1);
    if (!s->hold) {
        owl_stopper_free(s);
        return owl_err_set(err, OWL_E_NOMEM, "stopper: out of memory");
    }
    return OWL_OK;
}

void owl_stopper_free(owl_stopper *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_stops; i++)
        free(s->stops[i]);
    free(s->stops);
    free(s->hold);
    memset(s, 0, sizeof *s);
}

size_t owl_stopper_out_cap(const owl_stopper *s, size_t len) { return len + s->max_stop + 1; }

int owl_stopper_push(owl_stopper *s, int32_t id, const char *text, size_t len, char *out,
                     size_t cap, size_t *n_out)
{
    *n_out = 0;
    if (s->stopped)
        return s->stopped;
    if (cap < s->n_hold + len)
        len = cap > s->n_hold ? cap - s->n_hold : 0; /* caller error: never overflow */
    s->n_tokens++;
    /* work in out: held text, then the new text */
    memcpy(out, s->hold, s->n_hold);
    if (len)
        memcpy(out + s->n_hold, text, len);
    size_t n = s->n_hold + len;
    s->n_hold = 0;
    if (id == s->eos_id && s->eos_id >= 0) {
        *n_out = n;
        return s->stopped = OWL_STOP_EOS;
    }
    /* earliest stop string occurrence */
    size_t first = n;
    for (int k = 0; k < s->n_stops; k++) {
        size_t l = strlen(s->stops[k]);
        for (size_t i = 0; i + l <= n && i < first; i++)
            if (memcmp(out + i, s->stops[k], l) == 0) {
                first = i;
                break;
            }
    }
    if (first < n) {
        *n_out = first;
        return s->stopped = OWL_STOP_STRING;
    }
    if (s->max_tokens > 0 && s->n_tokens >= s->max_tokens) {
        *n_out = n;
        return s->stopped = OWL_STOP_MAX_TOKENS;
    }
    /* hold back the longest tail that is a proper prefix of a stop string */
    size_t tail = 0;
    for (int k = 0; k < s->n_stops; k++) {
        size_t l = strlen(s->stops[k]);
        for (size_t t = (l - 1 < n ? l - 1 : n); t > tail; t--)
            if (memcmp(out + n - t, s->stops[k], t) == 0) {
                tail = t;
                break;
            }
    }
    memcpy(s->hold, out + n - tail, tail);
    s->n_hold = tail;
    *n_out = n - tail;
    return OWL_STOP_NONE;
}

size_t owl_stopper_flush(owl_stopper *s, char *out, size_t cap)
{
    size_t n = s->n_hold < cap ? s->n_hold : cap;
    memcpy(out, s->hold, n);
    s->n_hold = 0;
    return n;
}
