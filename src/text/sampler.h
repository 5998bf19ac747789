/* sampler.h - next-token sampling and stop conditions.
 *
 * Order of operations (HF transformers 4.31 logits processors, then warpers;
 * min-p, which 4.31 lacks, last):
 *   1. repetition penalty over the ids seen so far (each distinct id once):
 *      logit > 0 -> logit / penalty, else logit * penalty
 *   2. temperature <= 0 -> greedy: argmax, lowest id wins ties; stop here
 *   3. logit / temperature
 *   4. top-k: keep logits >= the k-th largest (ties at the edge kept, as HF)
 *   5. top-p: taking tokens best first (logit desc, id asc), stop at the
 *      first whose probability plus everything below it is <= 1 - top_p
 *      (HF's ascending-cumsum rule); the best token always stays
 *   6. min-p: drop tokens with probability < min_p * max probability
 *   7. draw u in [0,1) from xoshiro256** and walk the survivors (best first
 *      when top-k or top-p is on, else in id order).
 * Same seed and same logits give the same ids on every build and thread count
 * (sums in double in a fixed order; the only libm call is expf). No
 * allocation after init: scratch is sized for n_vocab. Not thread-safe per
 * object; use one sampler per session. See docs/SAMPLING.md. */
#ifndef OWL_SAMPLER_H
#define OWL_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/status.h"

typedef struct {
    float temperature;        /* <= 0: greedy */
    int32_t top_k;            /* <= 0 or >= n_vocab: off */
    float top_p;              /* >= 1: off; must be > 0 */
    float min_p;              /* <= 0: off; must be <= 1 */
    float repetition_penalty; /* 1: off; must be > 0 */
    uint64_t seed;
} owl_sampler_params;

/* The reference CLI's settings: temperature 0.2, top_p 0.6, top_k 50,
 * min_p 0, repetition penalty 1, seed 0. */
owl_sampler_params owl_sampler_params_default(void);
/* Greedy (the reference benchmarks): temperature 0. */
owl_sampler_params owl_sampler_params_greedy(void);

typedef struct owl_sampler owl_sampler;

/* Errors: OWL_E_INVALID for n_vocab <= 0 or out-of-range params (message names
 * the parameter), OWL_E_NOMEM. */
owl_status owl_sampler_init(owl_sampler **out, int32_t n_vocab, const owl_sampler_params *p,
                            owl_err *err);
void owl_sampler_free(owl_sampler *s); /* NULL-safe */
/* Restart the random stream from seed. */
void owl_sampler_seed(owl_sampler *s, uint64_t seed);

/* Next id from logits[n_vocab] (not modified). history[0..n_history) are the
 * ids the repetition penalty applies to (ids outside the vocab, e.g. the image
 * sentinel -200, are ignored). OWL_E_INVALID if logits hold a NaN or every
 * logit is -inf. */
owl_status owl_sampler_sample(owl_sampler *s, const float *logits, const int32_t *history,
                              size_t n_history, int32_t *id, owl_err *err);

/* Exposed for tests: a uniform double in [0, 1) from the sampler's stream. */
double owl_sampler_uniform(owl_sampler *s);

// ---------------------------------------------------------------- stopping

enum { OWL_STOP_NONE = 0, OWL_STOP_EOS = 1, OWL_STOP_STRING = 2, OWL_STOP_MAX_TOKENS = 3 };

/* Stop conditions over a stream of (id, decoded text) pairs: the EOS id, stop
 * strings matched on the decoded text across token boundaries, and a token
 * budget. Text that may be the start of a stop string is held back until it
 * is known not to be; the stop string itself and anything after it are never
 * emitted. */
typedef struct {
    int32_t eos_id;   /* -1: none */
    int max_tokens;   /* <= 0: no limit */
    int n_tokens;
    int stopped;      /* OWL_STOP_* once stopped */
    char **stops;     /* owned copies */
    int n_stops;
    size_t max_stop;  /* longest stop string */
    char *hold;       /* held-back text (capacity max_stop) */
    size_t n_hold;
} owl_stopper;

/* Copies the stop strings (empty ones are ignored). OWL_E_INVALID / OWL_E_NOMEM. */
owl_status owl_stopper_init(owl_stopper *s, int32_t eos_id, int max_tokens,
                            const char *const *stops, int n_stops, owl_err *err);
void owl_stopper_free(owl_stopper *s); /* NULL-safe */
/* Bytes `out` needs for a push of `len` bytes of text. */
size_t owl_stopper_out_cap(const owl_stopper *s, size_t len);
/* Feed the generated id and its decoded text (from owl_tok_stream_push).
 * Writes the text now safe to show to out (*n_out bytes; cap >=
 * owl_stopper_out_cap) and returns OWL_STOP_* (0 = go on). Once stopped,
 * further pushes return the same reason and emit nothing. */
int owl_stopper_push(owl_stopper *s, int32_t id, const char *text, size_t len, char *out,
                     size_t cap, size_t *n_out);
/* Generation ended for another reason (cancel, context full): release the
 * held-back text into out (cap >= max_stop bytes); returns its length. */
size_t owl_stopper_flush(owl_stopper *s, char *out, size_t cap);

#endif
