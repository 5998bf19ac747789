/* abstractor.c - mPLUG-Owl2's visual abstractor (spec section 2; visual_encoder.py).
 *
 * X0 = learned queries (Q, D); V = ViT output (T, D), the same for every layer.
 * Layer l:  h = norm1(X)                      eps 1e-5; h (not X) is the residual base
 *           e = normk(V)                      eps 1e-5
 *           C = [h; e]  (Q+T, D);  P = [q_pos; k_pos]
 *           q = Wq (h + q_pos) + bq;  k = Wk (C + P) + bk;  v = Wv C + bv
 *           Y = h + Wo softmax(q k^T / sqrt(hd)) v + bo       (no mask)
 *           Z = norm2(Y)                      eps 1e-5
 *           X = Y + W2 ffn_ln(SiLU(W1 Z + b1) * (W3 Z + b3)) + b2   (ffn_ln eps from metadata)
 * out = [visual_fc(X) ; vit_eos]  (Q+1, llm d).
 * q_pos: 1-D sin-cos of 0..Q-1 over D (sines then cosines); k_pos: MAE 2-D
 * sin-cos over the G x G grid (first half the column index, second half the
 * row), an all-zero row first for the class token. Both computed here at load
 * in double and rounded to float, as the reference's numpy tables. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "parts.h"

#define AKEY "mplug-owl2.abstractor."
#define NORM_EPS 1e-5f

/* row[0..dim) = [sin(p w_i) | cos(p w_i)], w_i = 10000^(-i/(dim/2)), i < dim/2 */
static void sincos_1d(float *row, int64_t dim, double p)
{
    int64_t half = dim / 2;
    for (int64_t i = 0; i < half; i++) {
        double w = 1.0 / pow(10000.0, (double)i / (double)half);
        row[i] = (float)sin(p * w);
        row[half + i] = (float)cos(p * w);
    }
}

owl_status owl_abs_load(owl_loader *ld, owl_abs *a, const owl_vit *v, int64_t llm_d)
{
    owl_err *err = ld->err;
    owl_status st;
    if ((st = owl_load_u32(ld, AKEY "query_count", &a->n_queries)) ||
        (st = owl_load_u32(ld, AKEY "block_count", &a->n_layers)) ||
        (st = owl_load_u32(ld, AKEY "embedding_length", &a->hidden)) ||
        (st = owl_load_u32(ld, AKEY "encoder_embedding_length", &a->enc_hidden)) ||
        (st = owl_load_u32(ld, AKEY "attention.head_count", &a->n_heads)) ||
        (st = owl_load_u32(ld, AKEY "feed_forward_length", &a->ffn)) ||
        (st = owl_load_u32(ld, AKEY "grid_size", &a->grid)) ||
        (st = owl_load_f32(ld, AKEY "layer_norm_epsilon", &a->eps)))
        return st;
    const int64_t D = a->hidden, Q = a->n_queries;
    /* keys/values are [queries; image tokens]: one width throughout */
    if (a->enc_hidden != D || v->hidden != D)
        return owl_err_set(err, OWL_E_FORMAT,
                           AKEY "embedding_length %lld, encoder_embedding_length %lld and vision width %lld must be equal",
                           (long long)D, (long long)a->enc_hidden, (long long)v->hidden);
    if (a->grid != v->grid)
        return owl_err_set(err, OWL_E_FORMAT, AKEY "grid_size %lld != vision grid %lld",
                           (long long)a->grid, (long long)v->grid);
    if (D % a->n_heads != 0 || D % 4 != 0)
        return owl_err_set(err, OWL_E_FORMAT, AKEY "embedding_length %lld not a multiple of 4 and head_count %lld",
                           (long long)D, (long long)a->n_heads);
    if ((st = owl_load_vec(ld, &a->query, "a.query_embd", D, Q)) ||
        (st = owl_load_mat(ld, &a->visual_fc, "a.visual_fc.weight", D, llm_d)) ||
        (st = owl_load_vec(ld, &a->visual_fc_b, "a.visual_fc.bias", llm_d, 1)) ||
        (st = owl_load_vec(ld, &a->vit_eos, "a.vit_eos", llm_d, 1)))
        return st;
    if ((st = owl_load_check_layers(ld, AKEY "block_count", a->n_layers, 20)))
        return st;
    a->layers = owl_load_alloc(ld, sizeof(owl_abs_layer) * (size_t)a->n_layers);
    if (!a->layers)
        return OWL_E_NOMEM;
    for (int i = 0; i < a->n_layers; i++) {
        owl_abs_layer *L = &a->layers[i];
        if ((st = owl_load_layer_norm(ld, &L->norm1_w, &L->norm1_b, "a.blk", i, "norm1", D)) ||
            (st = owl_load_layer_norm(ld, &L->normk_w, &L->normk_b, "a.blk", i, "normk", D)) ||
            (st = owl_load_layer_mat(ld, &L->q, &L->q_b, "a.blk", i, "attn_q", D, D)) ||
            (st = owl_load_layer_mat(ld, &L->k, &L->k_b, "a.blk", i, "attn_k", D, D)) ||
            (st = owl_load_layer_mat(ld, &L->v, &L->v_b, "a.blk", i, "attn_v", D, D)) ||
            (st = owl_load_layer_mat(ld, &L->out, &L->out_b, "a.blk", i, "attn_out", D, D)) ||
            (st = owl_load_layer_norm(ld, &L->norm2_w, &L->norm2_b, "a.blk", i, "norm2", D)) ||
            (st = owl_load_layer_mat(ld, &L->gate, &L->gate_b, "a.blk", i, "ffn_gate", D, a->ffn)) ||
            (st = owl_load_layer_mat(ld, &L->up, &L->up_b, "a.blk", i, "ffn_up", D, a->ffn)) ||
            (st = owl_load_layer_norm(ld, &L->ffn_norm_w, &L->ffn_norm_b, "a.blk", i, "ffn_norm", a->ffn)) ||
            (st = owl_load_layer_mat(ld, &L->down, &L->down_b, "a.blk", i, "ffn_down", a->ffn, D)))
            return st;
    }
    /* fixed positional tables */
    float *qp = owl_load_alloc(ld, sizeof(float) * (size_t)(Q * D));
    float *kp = owl_load_alloc(ld, sizeof(float) * (size_t)(v->n_tok * D));
    if (!qp || !kp)
        return OWL_E_NOMEM;
    for (int64_t p = 0; p < Q; p++)
        sincos_1d(qp + p * D, D, (double)p);
    /* row 0 (class token) stays zero */
    for (int64_t i = 0; i < a->grid; i++)
        for (int64_t j = 0; j < a->grid; j++) {
            float *row = kp + (1 + i * a->grid + j) * D;
            sincos_1d(row, D / 2, (double)j);
            sincos_1d(row + D / 2, D / 2, (double)i);
        }
    a->q_pos = qp;
    a->k_pos = kp;
    return OWL_OK;
}

void owl_abs_forward(owl_session *s, float *out)
{
    const owl_abs *a = &s->m->abs;
    const owl_img_scratch *b = &s->is;
    const int64_t Q = a->n_queries, T = s->m->vit.n_tok, D = a->hidden, F = a->ffn;
    const int64_t H = a->n_heads, C = Q + T, dl = s->m->llm.d;
    const float *V = b->x; /* vision output */

    memcpy(b->ax, a->query, sizeof(float) * (size_t)(Q * D));
    char name[32];
    for (int li = 0; li < a->n_layers; li++) {
        const owl_abs_layer *L = &a->layers[li];
        owl_model_layernorm_rows(b->ah, b->ax, L->norm1_w, L->norm1_b, Q, D, NORM_EPS);
        memcpy(b->ac, b->ah, sizeof(float) * (size_t)(Q * D));
        owl_model_layernorm_rows(b->ac + Q * D, V, L->normk_w, L->normk_b, T, D, NORM_EPS);
        owl_add(b->acp, b->ac, a->q_pos, Q * D);
        owl_add(b->acp + Q * D, b->ac + Q * D, a->k_pos, T * D);
        /* rows 0..Q-1 of acp are h + q_pos: the query input */
        owl_model_matmul(s, &L->q, L->q_b, b->acp, Q, b->aq);
        owl_model_matmul(s, &L->k, L->k_b, b->acp, C, b->ak);
        owl_model_matmul(s, &L->v, L->v_b, b->ac, C, b->av);
        owl_model_attention_f32(s, b->aq, b->ak, b->av, Q, C, D, H, 0, b->aatt);
        owl_model_matmul(s, &L->out, L->out_b, b->aatt, Q, b->aq);
        owl_add(b->ah, b->ah, b->aq, Q * D); /* Y */
        owl_model_layernorm_rows(b->aq, b->ah, L->norm2_w, L->norm2_b, Q, D, NORM_EPS);
        owl_model_matmul(s, &L->gate, L->gate_b, b->aq, Q, b->af1);
        owl_model_matmul(s, &L->up, L->up_b, b->aq, Q, b->af2);
        owl_swiglu(b->af1, b->af1, b->af2, Q * F);
        owl_model_layernorm_rows(b->af1, b->af1, L->ffn_norm_w, L->ffn_norm_b, Q, F, a->eps);
        owl_model_matmul(s, &L->down, L->down_b, b->af1, Q, b->aq);
        owl_add(b->ax, b->ah, b->aq, Q * D);
        snprintf(name, sizeof name, "abstractor_layer%d", li);
        owl_model_tap(s, name, b->ax, Q, D);
    }
    owl_model_matmul(s, &a->visual_fc, a->visual_fc_b, b->ax, Q, out);
    memcpy(out + Q * dl, a->vit_eos, sizeof(float) * (size_t)dl);
    owl_model_tap(s, "abstractor_out", out, Q + 1, dl);
}
