/* vision.c - mPLUG-Owl2's ViT (spec section 1; visual_encoder.py).
 *
 * pixels (C, S, S) -> patches: token 1 + G*py + px is W_patch . p, p the patch
 * flattened in (c, ky, kx) order (Conv2d C->D, kernel = stride = P, no bias);
 * token 0 is the class embedding; + position table (1+G^2, D); pre-LN.
 * Per block (pre-LN, x the residual stream):
 *   a = LN1(x); (q,k,v) = split(Wqkv a + bqkv)   fused, per-head interleaved:
 *                                                 feature h*3*hd + t*hd + d (t = q,k,v)
 *   x += Wout softmax(q k^T / sqrt(hd)) v + bout  (no mask, heads concatenated h*hd + d)
 *   x += W2 QuickGELU(W1 LN2(x) + b1) + b2
 * out = post-LN(x) over all 1+G^2 tokens. All LNs use the metadata eps. */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "parts.h"

#define VKEY "mplug-owl2.vision."

owl_status owl_vit_load(owl_loader *ld, owl_vit *v)
{
    owl_err *err = ld->err;
    owl_status st;
    if ((st = owl_load_u32(ld, VKEY "image_size", &v->image_size)) ||
        (st = owl_load_u32(ld, VKEY "patch_size", &v->patch)) ||
        (st = owl_load_u32(ld, VKEY "num_channels", &v->channels)) ||
        (st = owl_load_u32(ld, VKEY "embedding_length", &v->hidden)) ||
        (st = owl_load_u32(ld, VKEY "block_count", &v->n_layers)) ||
        (st = owl_load_u32(ld, VKEY "attention.head_count", &v->n_heads)) ||
        (st = owl_load_u32(ld, VKEY "feed_forward_length", &v->ffn)) ||
        (st = owl_load_f32(ld, VKEY "attention.layer_norm_epsilon", &v->eps)))
        return st;
    if (v->image_size % v->patch != 0)
        return owl_err_set(err, OWL_E_FORMAT, VKEY "image_size %lld not a multiple of patch_size %lld",
                           (long long)v->image_size, (long long)v->patch);
    if (v->hidden % v->n_heads != 0)
        return owl_err_set(err, OWL_E_FORMAT, VKEY "embedding_length %lld not a multiple of head_count %lld",
                           (long long)v->hidden, (long long)v->n_heads);
    if (v->image_size > 8192 || v->channels > 16)
        return owl_err_set(err, OWL_E_FORMAT, VKEY "image_size %lld / num_channels %lld too large",
                           (long long)v->image_size, (long long)v->channels);
    v->grid = v->image_size / v->patch;
    v->n_tok = 1 + v->grid * v->grid;
    const int64_t D = v->hidden, K = v->channels * v->patch * v->patch;
    if ((st = owl_load_mat(ld, &v->patch_embd, "v.patch_embd.weight", K, D)) ||
        (st = owl_load_vec(ld, &v->cls, "v.class_embd", D, 1)) ||
        (st = owl_load_vec(ld, &v->pos, "v.position_embd.weight", D, v->n_tok)) ||
        (st = owl_load_vec(ld, &v->pre_w, "v.pre_ln.weight", D, 1)) ||
        (st = owl_load_vec(ld, &v->pre_b, "v.pre_ln.bias", D, 1)) ||
        (st = owl_load_vec(ld, &v->post_w, "v.post_ln.weight", D, 1)) ||
        (st = owl_load_vec(ld, &v->post_b, "v.post_ln.bias", D, 1)))
        return st;
    if ((st = owl_load_check_layers(ld, VKEY "block_count", v->n_layers, 12)))
        return st;
    v->layers = owl_load_alloc(ld, sizeof(owl_vit_layer) * (size_t)v->n_layers);
    if (!v->layers)
        return OWL_E_NOMEM;
    for (int i = 0; i < v->n_layers; i++) {
        owl_vit_layer *L = &v->layers[i];
        if ((st = owl_load_layer_norm(ld, &L->ln1_w, &L->ln1_b, "v.blk", i, "ln1", D)) ||
            (st = owl_load_layer_mat(ld, &L->qkv, &L->qkv_b, "v.blk", i, "attn_qkv", D, 3 * D)) ||
            (st = owl_load_layer_mat(ld, &L->out, &L->out_b, "v.blk", i, "attn_out", D, D)) ||
            (st = owl_load_layer_norm(ld, &L->ln2_w, &L->ln2_b, "v.blk", i, "ln2", D)) ||
            (st = owl_load_layer_mat(ld, &L->up, &L->up_b, "v.blk", i, "ffn_up", D, v->ffn)) ||
            (st = owl_load_layer_mat(ld, &L->down, &L->down_b, "v.blk", i, "ffn_down", v->ffn, D)))
            return st;
    }
    return OWL_OK;
}

/* ---------------------------------------------------------------- forward */

void owl_vit_forward(owl_session *s, const float *pixels)
{
    const owl_vit *v = &s->m->vit;
    const owl_img_scratch *b = &s->is;
    const int64_t T = v->n_tok, D = v->hidden, P = v->patch, S = v->image_size, G = v->grid;
    const int64_t K = v->channels * P * P, H = v->n_heads, hd = D / H;

    /* patch embedding: im2col in (c, ky, kx) order, then one matmul */
    for (int64_t py = 0; py < G; py++)
        for (int64_t px = 0; px < G; px++) {
            float *row = b->patches + (py * G + px) * K;
            for (int64_t c = 0; c < v->channels; c++)
                for (int64_t ky = 0; ky < P; ky++)
                    memcpy(row + c * P * P + ky * P, pixels + c * S * S + (py * P + ky) * S + px * P,
                           sizeof(float) * (size_t)P);
        }
    owl_model_matmul(s, &v->patch_embd, NULL, b->patches, T - 1, b->x + D);
    memcpy(b->x, v->cls, sizeof(float) * (size_t)D);
    owl_add(b->x, b->x, v->pos, T * D);
    owl_model_layernorm_rows(b->x, b->x, v->pre_w, v->pre_b, T, D, v->eps);
    owl_model_tap(s, "vision_embeddings", b->x, T, D);

    char name[32];
    for (int li = 0; li < v->n_layers; li++) {
        if (owl_session_stopped(s))
            return; /* the caller reports OWL_E_CANCELLED */
        const owl_vit_layer *L = &v->layers[li];
        owl_model_layernorm_rows(b->xn, b->x, L->ln1_w, L->ln1_b, T, D, v->eps);
        owl_model_matmul(s, &L->qkv, L->qkv_b, b->xn, T, b->qkv);
        for (int64_t t = 0; t < T; t++) /* q token-major; k, v head-major (contiguous per head) */
            for (int64_t h = 0; h < H; h++) {
                const float *src = b->qkv + t * 3 * D + h * 3 * hd;
                memcpy(b->q + t * D + h * hd, src, sizeof(float) * (size_t)hd);
                memcpy(b->k + (h * T + t) * hd, src + hd, sizeof(float) * (size_t)hd);
                memcpy(b->v + (h * T + t) * hd, src + 2 * hd, sizeof(float) * (size_t)hd);
            }
        owl_model_attention_f32(s, b->q, b->k, b->v, T, T, D, H, 1, b->att);
        owl_model_matmul(s, &L->out, L->out_b, b->att, T, b->xn);
        owl_add(b->x, b->x, b->xn, T * D);
        owl_model_layernorm_rows(b->xn, b->x, L->ln2_w, L->ln2_b, T, D, v->eps);
        owl_model_matmul(s, &L->up, L->up_b, b->xn, T, b->ffn);
        owl_quick_gelu(b->ffn, b->ffn, T * v->ffn);
        owl_model_matmul(s, &L->down, L->down_b, b->ffn, T, b->xn);
        owl_add(b->x, b->x, b->xn, T * D);
        snprintf(name, sizeof name, "vision_layer%d", li);
        owl_model_tap(s, name, b->x, T, D);
    }
    owl_model_layernorm_rows(b->x, b->x, v->post_w, v->post_b, T, D, v->eps);
    owl_model_tap(s, "vision_out", b->x, T, D);
}
