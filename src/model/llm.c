/* llm.c - LLaMA decoder with mPLUG-Owl2's modality-adaptive module (MAM).
 *
 * Per layer, for the token at row t with modality m_t (0 text, 1 image)
 * (spec section 3.1; modeling_llama2.py):
 *   a_t = RMSNorm(x_t; g_in[m_t]);  q_t = Wq a_t;  k_t = Wk[m_t] a_t;  v_t = Wv[m_t] a_t
 *   RoPE(q_t, k_t) at position p_t;  attn_t = causal softmax(q_t k^T / sqrt(hd)) v
 *   x_t += Wo attn_t;  b_t = RMSNorm(x_t; g_post[m_t]);  x_t += Wdown(SiLU(Wgate b_t) * Wup b_t)
 * After the last layer: RMSNorm(x; g_final) -> output head (untied) -> logits.
 * Q and K rows arrive permuted per head (FORMAT.md), so the adjacent-pair RoPE
 * of ops.h equals the reference's rotate_half. Plain llama GGUFs have no _img
 * twins (multiway = 0; every row uses the text copy) and may use GQA. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "parts.h"

/* ---------------------------------------------------------------- loading */

/* Hyperparameters under "<a>." (a = mplug-owl2 or llama), checked. */
static owl_status load_hparams(owl_loader *ld, owl_llm *l, const char *a)
{
    owl_err *err = ld->err;
    const owl_gguf *g = ld->gguf;
    char key[128];
    uint32_t u;
    owl_status st;

    const char *req[] = {"embedding_length", "block_count", "attention.head_count",
                         "feed_forward_length"};
    int64_t *dst[] = {&l->d, &l->n_layers, &l->n_heads, &l->ffn};
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "%s.%s", a, req[i]);
        if ((st = owl_load_u32(ld, key, dst[i])) != OWL_OK)
            return st;
    }
    snprintf(key, sizeof key, "%s.attention.head_count_kv", a);
    st = owl_gguf_get_u32(g, key, &u, err);
    if (st == OWL_E_NOTFOUND)
        u = (uint32_t)l->n_heads;
    else if (st != OWL_OK)
        return st;
    if (u == 0 || l->n_heads % u != 0)
        return owl_err_set(err, OWL_E_FORMAT, "%s: %u does not divide head_count %lld", key,
                           (unsigned)u, (long long)l->n_heads);
    l->n_kv_heads = u;
    snprintf(key, sizeof key, "%s.context_length", a);
    st = owl_gguf_get_u32(g, key, &u, err);
    if (st != OWL_OK && st != OWL_E_NOTFOUND)
        return st;
    l->n_ctx_train = st == OWL_OK ? (int64_t)u : 2048;
    snprintf(key, sizeof key, "%s.rope.freq_base", a);
    l->rope_theta = 10000.0f;
    st = owl_gguf_get_f32(g, key, &l->rope_theta, err);
    if (st != OWL_OK && st != OWL_E_NOTFOUND)
        return st;
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", a);
    st = owl_gguf_get_f32(g, key, &l->rms_eps, err);
    if (st == OWL_E_NOTFOUND)
        return owl_err_set(err, st, "%s: missing", key);
    if (st != OWL_OK)
        return st;
    if (!(l->rms_eps > 0.0f && l->rms_eps < 1.0f) || !(l->rope_theta > 0.0f))
        return owl_err_set(err, OWL_E_FORMAT, "%s: eps %g / rope theta %g out of range", a,
                           (double)l->rms_eps, (double)l->rope_theta);
    if (l->d % l->n_heads != 0 || (l->d / l->n_heads) % 2 != 0)
        return owl_err_set(err, OWL_E_FORMAT, "%s: embedding_length %lld not a multiple of 2*head_count %lld",
                           a, (long long)l->d, (long long)l->n_heads);
    l->head_dim = l->d / l->n_heads;
    l->kv_dim = l->head_dim * l->n_kv_heads;
    return OWL_OK;
}

/* Tensors of decoder layer i (blk.i.*); the _img twins when multiway, else
 * the text copies stand in for them. */
static owl_status load_layer(owl_loader *ld, owl_llm *l, int i)
{
    owl_llm_layer *L = &l->layers[i];
    owl_status st;
    if ((st = owl_load_layer_norm(ld, &L->attn_norm[0], NULL, "blk", i, "attn_norm", l->d)) ||
        (st = owl_load_layer_norm(ld, &L->ffn_norm[0], NULL, "blk", i, "ffn_norm", l->d)) ||
        (st = owl_load_layer_mat(ld, &L->q, NULL, "blk", i, "attn_q", l->d, l->d)) ||
        (st = owl_load_layer_mat(ld, &L->k[0], NULL, "blk", i, "attn_k", l->d, l->kv_dim)) ||
        (st = owl_load_layer_mat(ld, &L->v[0], NULL, "blk", i, "attn_v", l->d, l->kv_dim)) ||
        (st = owl_load_layer_mat(ld, &L->o, NULL, "blk", i, "attn_output", l->d, l->d)) ||
        (st = owl_load_layer_mat(ld, &L->gate, NULL, "blk", i, "ffn_gate", l->d, l->ffn)) ||
        (st = owl_load_layer_mat(ld, &L->up, NULL, "blk", i, "ffn_up", l->d, l->ffn)) ||
        (st = owl_load_layer_mat(ld, &L->down, NULL, "blk", i, "ffn_down", l->ffn, l->d)))
        return st;
    if (l->multiway) {
        if ((st = owl_load_layer_norm(ld, &L->attn_norm[1], NULL, "blk", i, "attn_norm_img", l->d)) ||
            (st = owl_load_layer_norm(ld, &L->ffn_norm[1], NULL, "blk", i, "ffn_norm_img", l->d)) ||
            (st = owl_load_layer_mat(ld, &L->k[1], NULL, "blk", i, "attn_k_img", l->d, l->kv_dim)) ||
            (st = owl_load_layer_mat(ld, &L->v[1], NULL, "blk", i, "attn_v_img", l->d, l->kv_dim)))
            return st;
    } else {
        L->attn_norm[1] = L->attn_norm[0];
        L->ffn_norm[1] = L->ffn_norm[0];
        L->k[1] = L->k[0];
        L->v[1] = L->v[0];
    }
    return OWL_OK;
}

owl_status owl_llm_load(owl_loader *ld, owl_llm *l, int arch, int lb, int *layer_end,
                        int need_embed, int need_head)
{
    owl_err *err = ld->err;
    const owl_gguf *g = ld->gguf;
    owl_status st = load_hparams(ld, l, arch == OWL_ARCH_OWL2 ? "mplug-owl2" : "llama");
    if (st != OWL_OK)
        return st;
    int le = *layer_end ? *layer_end : (int)l->n_layers;
    if (lb < 0 || lb > le || le > l->n_layers)
        return owl_err_set(err, OWL_E_INVALID, "layer range [%d, %d) outside 0..%lld", lb, le,
                           (long long)l->n_layers);
    *layer_end = le;

    /* vocabulary size: rows of token_embd (or of output for a head-only stage) */
    const owl_gguf_tensor *te = owl_gguf_find_tensor(g, "token_embd.weight");
    if (!te)
        te = owl_gguf_find_tensor(g, "output.weight");
    if (!te)
        return owl_err_set(err, OWL_E_NOTFOUND, "token_embd.weight: missing");
    if (te->ne[1] <= 0 || te->ne[1] > (1 << 24))
        return owl_err_set(err, OWL_E_FORMAT, "%.*s: %lld rows out of range", (int)te->name.len,
                           te->name.data, (long long)te->ne[1]);
    l->n_vocab = te->ne[1];

    l->multiway = arch == OWL_ARCH_OWL2;
    if ((st = owl_load_check_layers(ld, "block_count", l->n_layers, 9)))
        return st;
    l->layers = owl_load_alloc(ld, sizeof(owl_llm_layer) * (size_t)l->n_layers);
    if (!l->layers)
        return OWL_E_NOMEM;

    if (need_embed && (st = owl_load_table(ld, &l->tok_embd, "token_embd.weight", l->d, l->n_vocab)))
        return st;
    for (int i = lb; i < le; i++)
        if ((st = load_layer(ld, l, i)) != OWL_OK)
            return st;
    if (need_head) {
        if ((st = owl_load_vec(ld, &l->out_norm, "output_norm.weight", l->d, 1)))
            return st;
        /* llama.cpp GGUFs of tied models have no output.weight: the head is token_embd */
        const char *head = "output.weight";
        if (arch == OWL_ARCH_LLAMA && !owl_load_has(ld, head))
            head = "token_embd.weight";
        /* the tied head shares the embedding rows: rearranged only when nothing embeds here */
        if ((st = (need_embed && strcmp(head, "token_embd.weight") == 0 ? owl_load_table : owl_load_mat)(
                 ld, &l->output, head, l->d, l->n_vocab)))
            return st;
    }
    return OWL_OK;
}

/* ---------------------------------------------------------------- forward */

void owl_llm_embed(owl_session *s, const int32_t *ids, int64_t n, float *x)
{
    const owl_llm *l = &s->m->llm;
    size_t row = owl_row_size(l->tok_embd.type, l->d);
    for (int64_t i = 0; i < n; i++)
        owl_dequantize_row_ref(l->tok_embd.type, (const char *)l->tok_embd.data + (size_t)ids[i] * row,
                               x + i * l->d, l->d);
}

/* Store rows of K/V (n, kv_dim) f32 at cache positions pos0.. of a plane. */
static void kv_store(const owl_session *s, void *plane, const float *src, int64_t n, int64_t pos0)
{
    int64_t w = s->m->llm.kv_dim;
    if (s->kv_type == OWL_TYPE_F32) {
        memcpy((float *)plane + pos0 * w, src, sizeof(float) * (size_t)(n * w));
    } else {
        owl_f16 *dst = (owl_f16 *)plane + pos0 * w;
        for (int64_t i = 0; i < n * w; i++)
            dst[i] = owl_f32_to_f16(src[i]);
    }
}

void *owl_llm_kv_plane(const owl_session *s, int layer, int which)
{
    size_t idx = (size_t)(layer - s->m->opts.layer_begin) * 2 + (size_t)which;
    return (char *)s->kv + idx * s->kv_layer_bytes;
}

/* y[t] = RMSNorm(x[t]; g[modality of row t]) for n rows of width d (NULL modality: text). */
static void rmsnorm_rows(float *y, const float *x, const float *const g[2], const uint8_t *modality,
                         int64_t n, int64_t d, float eps)
{
    for (int64_t t = 0; t < n; t++)
        owl_rmsnorm(y + t * d, x + t * d, g[modality ? modality[t] : 0], d, eps);
}

/* Row runs of equal modality: [a, b) with modality mod; returns b. */
static int64_t run_end(const uint8_t *modality, int64_t a, int64_t n)
{
    int64_t b = a + 1;
    if (modality)
        while (b < n && modality[b] == modality[a])
            b++;
    else
        b = n;
    return b;
}

void owl_llm_layers(owl_session *s, int l0, int l1, float *x, int64_t n, int64_t pos0,
                    const uint8_t *modality)
{
    const owl_llm *l = &s->m->llm;
    const int64_t d = l->d, kvd = l->kv_dim, ffn = l->ffn;
    const owl_llm_scratch *b = &s->ls;
    char name[32];
    for (int li = l0; li < l1; li++) {
        if (owl_session_stopped(s))
            return; /* the caller reports OWL_E_CANCELLED */
        const owl_llm_layer *L = &l->layers[li];
        /* attention block */
        rmsnorm_rows(b->xn, x, L->attn_norm, modality, n, d, l->rms_eps);
        owl_model_matmul(s, &L->q, NULL, b->xn, n, b->q);
        for (int64_t a = 0, e; a < n; a = e) {
            e = run_end(modality, a, n);
            int mw = modality ? modality[a] : 0;
            owl_model_matmul(s, &L->k[mw], NULL, b->xn + a * d, e - a, b->k + a * kvd);
            owl_model_matmul(s, &L->v[mw], NULL, b->xn + a * d, e - a, b->v + a * kvd);
        }
        for (int64_t t = 0; t < n; t++) {
            owl_rope(b->q + t * d, (int)l->n_heads, (int)l->head_dim, pos0 + t, l->rope_theta);
            owl_rope(b->k + t * kvd, (int)l->n_kv_heads, (int)l->head_dim, pos0 + t, l->rope_theta);
        }
        void *kc = owl_llm_kv_plane(s, li, 0), *vc = owl_llm_kv_plane(s, li, 1);
        kv_store(s, kc, b->k, n, pos0);
        kv_store(s, vc, b->v, n, pos0);
        owl_attn_args aa = {
            .q = b->q, .q_stride = d, .k = kc, .v = vc, .kv_type = s->kv_type, .kv_stride = kvd,
            .n_q = n, .n_kv = pos0 + n, .n_heads = (int)l->n_heads, .n_kv_heads = (int)l->n_kv_heads,
            .head_dim = (int)l->head_dim, .scale = 1.0f / sqrtf((float)l->head_dim), .causal = 1,
            .q_pos0 = pos0, .out = b->att, .out_stride = d};
        owl_attention(s->pool, &aa, s->att_scratch);
        owl_model_matmul(s, &L->o, NULL, b->att, n, b->tmp);
        owl_add(x, x, b->tmp, n * d);
        /* MLP block */
        rmsnorm_rows(b->xn, x, L->ffn_norm, modality, n, d, l->rms_eps);
        owl_model_matmul(s, &L->gate, NULL, b->xn, n, b->g);
        owl_model_matmul(s, &L->up, NULL, b->xn, n, b->u);
        owl_swiglu(b->g, b->g, b->u, n * ffn);
        owl_model_matmul(s, &L->down, NULL, b->g, n, b->tmp);
        owl_add(x, x, b->tmp, n * d);
        snprintf(name, sizeof name, "llm_layer%d", li);
        owl_model_tap(s, name, x, n, d);
    }
}

void owl_llm_head(owl_session *s, float *x, int64_t n, float *logits, int64_t ld)
{
    const owl_llm *l = &s->m->llm;
    for (int64_t t = 0; t < n; t++)
        owl_rmsnorm(x + t * l->d, x + t * l->d, l->out_norm, l->d, l->rms_eps);
    owl_model_tap(s, "llm_final_norm", x, n, l->d);
    owl_matmul_r4(s->pool, l->output.data, l->output.type, l->output.r4, l->output.rows, l->output.cols, x, l->d,
                  n, logits, ld, s->mm_scratch);
}
