/* generate.c - owl_session_generate: sample from the session's logits
 * (src/text/sampler.h, the one use of text from model: the last stage samples,
 * design.md section 6), feed the token back with owl_session_decode, stream it
 * to the callback; stops at eos, n_predict, the callback or a cancel. */
#include <stdatomic.h>
#include <string.h>

#include "../text/sampler.h"
#include "model.h"

owl_gen_opts owl_gen_opts_default(void)
{
    owl_gen_opts g;
    memset(&g, 0, sizeof g);
    g.n_predict = 128;
    g.top_p = 1.0f;
    g.repetition_penalty = 1.0f;
    return g;
}

owl_status owl_session_generate(owl_session *s, const owl_gen_opts *opts, owl_token_fn on_token,
                                void *user, int32_t *tokens, int64_t *n_tokens)
{
    owl_gen_opts g = opts ? *opts : owl_gen_opts_default();
    if (n_tokens)
        *n_tokens = 0;
    if (!owl_model_is_whole(s->m))
        return owl_err_set(&s->err, OWL_E_STATE, "generate: model holds only a stage");
    if (s->n_past == 0)
        return owl_err_set(&s->err, OWL_E_STATE, "generate: no logits yet (prefill first)");
    if (g.n_predict < 1)
        return owl_err_set(&s->err, OWL_E_INVALID, "generate: n_predict %d < 1", g.n_predict);
    owl_sampler_params sp = {
        .temperature = g.temperature, .top_k = g.top_k, .top_p = g.top_p, .min_p = g.min_p,
        .repetition_penalty = g.repetition_penalty > 0.0f ? g.repetition_penalty : 1.0f, .seed = g.seed};
    owl_sampler *smp = NULL;
    owl_status st = owl_sampler_init(&smp, (int32_t)s->m->llm.n_vocab, &sp, &s->err);
    if (st != OWL_OK)
        return st;
    owl_model_info info;
    owl_model_get_info(s->m, &info);
    atomic_store(&s->cancel, 0);
    for (int i = 0; i < g.n_predict; i++) {
        if (atomic_load(&s->cancel)) {
            st = owl_err_set(&s->err, OWL_E_CANCELLED, "generate: cancelled after %d tokens", i);
            break;
        }
        int32_t tok;
        if ((st = owl_sampler_sample(smp, s->logits, s->history, (size_t)s->n_past, &tok, &s->err)))
            break;
        if (tokens)
            tokens[i] = tok;
        if (n_tokens)
            *n_tokens = i + 1;
        if (on_token && on_token(user, tok)) {
            st = owl_err_set(&s->err, OWL_E_CANCELLED, "generate: stopped by the callback after %d tokens",
                             i + 1);
            break;
        }
        if (tok == info.eos_id && !g.ignore_eos)
            break;
        if ((st = owl_session_decode(s, tok, NULL)) != OWL_OK)
            break;
    }
    owl_sampler_free(smp);
    return st;
}
