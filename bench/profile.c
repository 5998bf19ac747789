/* profile.c - where the time of one decode token goes (docs/BENCHMARKS.md,
 * "Decode profile"): the ops of owl_llm_layers + owl_llm_head for one token
 * of the LLaMA-7B slice the end-to-end bench runs (dim 4096, 2 layers, 32
 * heads, ffn 11008, vocab 32000, every matrix in one type, f16 KV cache at
 * positions 64..95), in the engine's order on distinct random weights, each
 * op timed by wall clock. Printed per token (mean over ntok tokens):
 *   PROFILE <part> <threads> <ms per token>
 * parts: gemv_qkvo, gemv_gate_up, gemv_down, head (the output matrix), each
 * including the quantizing of its input; norms; rope_kv (RoPE + the f16 KV
 * store); attention; elementwise (SwiGLU + residual adds); token (all of it,
 * timed in one piece in separate tokens without the inner timers); and, timed
 * alone: quantize (the 15 inputs a token quantizes, to q8_K for the K-quants),
 * expand (their int16 expansion for the SIMD128 tiles) and dispatch (17 empty
 * owl_pool_run calls: one per matmul and attention). With r4 the matrices are
 * in the 4-row interleaved layout (owl_repack_r4; q4_K / q6_K). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum { D = 4096, FFN = 11008, VOCAB = 32000, LAYERS = 2, HEADS = 32, HD = 128, CTX = 128, POS0 = 64 };
enum { P_QKVO, P_GATEUP, P_DOWN, P_HEAD, P_NORM, P_ROPE, P_ATTN, P_ELEM, P_N };
static const char *const part_names[P_N] = {"gemv_qkvo", "gemv_gate_up", "gemv_down", "head",
                                            "norms", "rope_kv", "attention", "elementwise"};

typedef struct {
    owl_pool *pool;
    owl_type wt;
    int r4; /* the matrices in the 4-row interleaved layout (owl_repack_r4) */
    double repack_s, repack_bytes; /* time owl_repack_r4 took over how many bytes */
    void *w[LAYERS][7]; /* q k v o gate up down */
    void *head;
    owl_f16 *kv[LAYERS][2];
    float *x, *xn, *q, *k, *v, *att, *tmp, *g, *u, *logits, *norm_w, *att_scratch;
    void *mm_scratch;
    double t[P_N];
    int timed; /* 0: lap() does nothing (the whole-token timing) */
} prof;

static void mm(prof *p, const void *W, int64_t rows, int64_t cols, const float *X, float *Y)
{
    owl_matmul_r4(p->pool, W, p->wt, p->r4, rows, cols, X, cols, 1, Y, rows, p->mm_scratch);
}

/* One timed step: part += time since *t0; *t0 = now. */
static void lap(prof *p, int part, double *t0)
{
    if (!p->timed)
        return;
    double t = bench_now();
    p->t[part] += t - *t0;
    *t0 = t;
}

static void layer(prof *p, int li, int64_t pos)
{
    double t0 = bench_now();
    void *const *w = p->w[li];
    owl_rmsnorm(p->xn, p->x, p->norm_w, D, 1e-5f);
    lap(p, P_NORM, &t0);
    mm(p, w[0], D, D, p->xn, p->q);
    mm(p, w[1], D, D, p->xn, p->k);
    mm(p, w[2], D, D, p->xn, p->v);
    lap(p, P_QKVO, &t0);
    owl_rope(p->q, HEADS, HD, pos, 10000.0f);
    owl_rope(p->k, HEADS, HD, pos, 10000.0f);
    for (int i = 0; i < D; i++) {
        p->kv[li][0][pos * D + i] = owl_f32_to_f16(p->k[i]);
        p->kv[li][1][pos * D + i] = owl_f32_to_f16(p->v[i]);
    }
    lap(p, P_ROPE, &t0);
    owl_attn_args aa = {.q = p->q, .q_stride = D, .k = p->kv[li][0], .v = p->kv[li][1],
                        .kv_type = OWL_TYPE_F16, .kv_stride = D, .n_q = 1, .n_kv = pos + 1,
                        .n_heads = HEADS, .n_kv_heads = HEADS, .head_dim = HD, .scale = 0.08838835f,
                        .causal = 1, .q_pos0 = pos, .out = p->att, .out_stride = D};
    owl_attention(p->pool, &aa, p->att_scratch);
    lap(p, P_ATTN, &t0);
    mm(p, w[3], D, D, p->att, p->tmp);
    lap(p, P_QKVO, &t0);
    owl_add(p->x, p->x, p->tmp, D);
    lap(p, P_ELEM, &t0);
    owl_rmsnorm(p->xn, p->x, p->norm_w, D, 1e-5f);
    lap(p, P_NORM, &t0);
    mm(p, w[4], FFN, D, p->xn, p->g);
    mm(p, w[5], FFN, D, p->xn, p->u);
    lap(p, P_GATEUP, &t0);
    owl_swiglu(p->g, p->g, p->u, FFN);
    lap(p, P_ELEM, &t0);
    mm(p, w[6], D, FFN, p->g, p->tmp);
    lap(p, P_DOWN, &t0);
    owl_add(p->x, p->x, p->tmp, D);
    lap(p, P_ELEM, &t0);
}

static void token(prof *p, int64_t pos, const float *x0)
{
    memcpy(p->x, x0, sizeof(float) * D); /* random weights would grow the state token by token */
    for (int li = 0; li < LAYERS; li++)
        layer(p, li, pos);
    double t0 = bench_now();
    owl_rmsnorm(p->x, p->x, p->norm_w, D, 1e-5f);
    lap(p, P_NORM, &t0);
    mm(p, p->head, VOCAB, D, p->x, p->logits);
    lap(p, P_HEAD, &t0);
}

static float *floats(int64_t n, float scale)
{
    float *f = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; f && i < n; i++)
        f[i] = scale * (float)((int)(bench_rnd() % 2001) - 1000) / 1000.0f;
    return f;
}

static int repack(prof *p, void *W, int64_t rows, int64_t cols)
{
    double t0 = bench_now();
    int ok = owl_repack_r4(p->wt, W, rows, cols);
    p->repack_s += bench_now() - t0;
    p->repack_bytes += (double)owl_row_size(p->wt, cols) * (double)rows;
    return ok;
}

static int alloc_all(prof *p, int nth)
{
    static const int64_t shape[7][2] = {{D, D}, {D, D}, {D, D}, {D, D}, {FFN, D}, {FFN, D}, {D, FFN}};
    int ok = 1;
    for (int li = 0; li < LAYERS; li++) {
        for (int m = 0; m < 7; m++) {
            ok &= (p->w[li][m] = bench_weights(p->wt, shape[m][0], shape[m][1])) != NULL;
            if (ok && p->r4)
                ok &= repack(p, p->w[li][m], shape[m][0], shape[m][1]);
        }
        for (int k = 0; k < 2; k++) {
            p->kv[li][k] = malloc(sizeof(owl_f16) * CTX * D);
            ok &= p->kv[li][k] != NULL;
            for (int64_t i = 0; ok && i < (int64_t)CTX * D; i++)
                p->kv[li][k][i] = owl_f32_to_f16((float)((int)(bench_rnd() % 2001) - 1000) / 1000.0f);
        }
    }
    ok &= (p->head = bench_weights(p->wt, VOCAB, D)) != NULL;
    if (ok && p->r4)
        ok &= repack(p, p->head, VOCAB, D);
    float **bufs[] = {&p->x, &p->xn, &p->q, &p->k, &p->v, &p->att, &p->tmp, &p->g, &p->u, &p->logits};
    const int64_t lens[] = {D, D, D, D, D, D, D, FFN, FFN, VOCAB};
    for (int i = 0; i < 10; i++)
        ok &= (*bufs[i] = floats(lens[i], 1.0f)) != NULL;
    ok &= (p->norm_w = floats(D, 1.0f)) != NULL;
    ok &= (p->att_scratch = malloc(owl_attention_scratch_size(CTX, nth))) != NULL;
    ok &= (p->mm_scratch = malloc(owl_matmul_scratch_size(p->wt, FFN, 1))) != NULL;
    return ok;
}

static void free_all(prof *p)
{
    for (int li = 0; li < LAYERS; li++) {
        for (int m = 0; m < 7; m++)
            free(p->w[li][m]);
        free(p->kv[li][0]);
        free(p->kv[li][1]);
    }
    float *bufs[] = {p->x, p->xn, p->q, p->k, p->v, p->att, p->tmp, p->g, p->u, p->logits, p->norm_w,
                     p->att_scratch};
    for (int i = 0; i < 12; i++)
        free(bufs[i]);
    free(p->head);
    free(p->mm_scratch);
}

static void noop(void *ctx, int ith, int nth) { (void)ctx, (void)ith, (void)nth; }

/* ms per token of the parts timed alone: activation quantizing (q8 rows, then
 * their int16 expansion), pool dispatch */
static void alone(prof *p, int ntok, double ms[3])
{
    const owl_type at = owl_type_get(p->wt)->vec_dot_type;
    uint8_t *q = p->mm_scratch, *xx = q + ((owl_row_size(at, FFN) + 15) & ~(size_t)15);
    for (int part = 0; part < 3; part++) {
        double t0 = bench_now();
        for (int t = 0; t < ntok; t++) /* per token: 13 inputs of 4096 (6 per layer + head), 2 of 11008 */
            for (int i = 0; i < (part < 2 ? 15 : 17); i++) {
                const int64_t n = i < 13 ? D : FFN;
                if (part == 0)
                    owl_quantize_row(at, i < 13 ? p->x : p->g, q, n);
                else if (part == 1)
                    owl_expand_row(at, q, xx, n);
                else
                    owl_pool_run(p->pool, noop, NULL);
            }
        ms[part] = (bench_now() - t0) * 1e3 / ntok;
    }
}

int bench_decode_profile(owl_pool *pool, int nth, owl_type wt, int r4, int ntok)
{
    prof p = {.pool = pool, .wt = wt, .r4 = r4};
    if (!alloc_all(&p, nth)) {
        fprintf(stderr, "bench: out of memory (decode profile)\n");
        free_all(&p);
        return 1;
    }
    float *x0 = floats(D, 1.0f);
    for (int t = 0; t < 2; t++) /* warm-up */
        token(&p, POS0 + t, x0);
    memset(p.t, 0, sizeof p.t);
    double whole = 0;
    for (int t = 0; t < ntok; t++) { /* alternately: op by op, then in one piece */
        p.timed = 1;
        token(&p, POS0 + t % 32, x0);
        p.timed = 0;
        double t0 = bench_now();
        token(&p, POS0 + t % 32, x0);
        whole += bench_now() - t0;
    }
    double sum = 0;
    for (int i = 0; i < P_N; i++) {
        printf("PROFILE %s %d %.3f\n", part_names[i], nth, p.t[i] * 1e3 / ntok);
        sum += p.t[i];
    }
    printf("PROFILE sum %d %.3f\nPROFILE token %d %.3f\n", nth, sum * 1e3 / ntok, nth, whole * 1e3 / ntok);
    double ms[3];
    alone(&p, ntok, ms);
    printf("PROFILE quantize %d %.3f\nPROFILE expand %d %.3f\nPROFILE dispatch %d %.3f\n", nth, ms[0], nth, ms[1],
           nth, ms[2]);
    if (p.r4) /* not per token: once at load, GB/s */
        printf("REPACK %d %.1f ms %.3f GB %.2f GB/s\n", nth, p.repack_s * 1e3, p.repack_bytes * 1e-9,
               p.repack_bytes * 1e-9 / p.repack_s);
    fflush(stdout);
    free(x0);
    free_all(&p);
    return 0;
}

/* ------------------------------------------------------------------ vision */

/* One CLIP ViT-L/14 layer at 448 px (the vision tower of mPLUG-Owl2: 1025
 * tokens, dim 1024, 16 heads of 64, ffn 4096, q8_0 matrices, f32 K/V), the
 * ops of owl_vit_forward (src/model/vision.c) in its order, each timed by wall
 * clock, best of nrep layers per part:
 *   VPROFILE <part> <threads> <ms per layer>
 * parts: layernorm (both), gemm_qkv, split (q/k/v copies), attention (all of
 * owl_attention), gemm_out, gemm_up, quick_gelu, gemm_down, add (residuals +
 * biases), layer (the sum of the parts of the best whole layer); and, alone:
 * softmax (owl_softmax over the 16 x 1025 rows of 1025 scores one layer
 * computes, a part of attention). */
enum { VT = 1025, VD = 1024, VH = 16, VHD = 64, VFF = 4096 };
enum { V_LN, V_QKV, V_SPLIT, V_ATTN, V_OUT, V_UP, V_GELU, V_DOWN, V_ADD, V_LAYER, V_SOFTMAX, V_N };
static const char *const vpart_names[V_N] = {"layernorm", "gemm_qkv", "split", "attention", "gemm_out",
                                             "gemm_up",   "quick_gelu", "gemm_down", "add", "layer",
                                             "softmax"};

static float *vbuf(int64_t n)
{
    float *p = malloc((size_t)n * sizeof(float));
    if (p)
        for (int64_t i = 0; i < n; i++)
            p[i] = (float)((int)(bench_rnd() % 2001) - 1000) / 1000.0f;
    return p;
}

/* y[r] += bias for each of rows rows of width floats (the linear layers' biases) */
static void add_bias(float *y, const float *bias, int64_t rows, int64_t width)
{
    for (int64_t r = 0; r < rows; r++)
        owl_add(y + r * width, y + r * width, bias, width);
}

static void vlap(double *acc, double *t0)
{
    double t = bench_now();
    *acc += t - *t0;
    *t0 = t;
}

int bench_vision_profile(owl_pool *pool, int nth, int nrep)
{
    const owl_type wt = OWL_TYPE_Q8_0;
    void *wqkv = bench_weights(wt, 3 * VD, VD), *wout = bench_weights(wt, VD, VD);
    void *wup = bench_weights(wt, VFF, VD), *wdown = bench_weights(wt, VD, VFF);
    float *x = vbuf(VT * VD), *xn = vbuf(VT * VD), *qkv = vbuf(VT * 3 * VD), *q = vbuf(VT * VD);
    float *k = vbuf(VT * VD), *v = vbuf(VT * VD), *att = vbuf(VT * VD), *ffn = vbuf(VT * VFF);
    float *lw = vbuf(VD), *lb = vbuf(VD), *bias = vbuf(VFF), *sm = vbuf((int64_t)VH * VT * VT);
    float *asc = malloc(owl_attention_scratch_size(VT, nth));
    void *mms = malloc(owl_matmul_scratch_size(wt, VFF, VT));
    if (!wqkv || !wout || !wup || !wdown || !x || !xn || !qkv || !q || !k || !v || !att || !ffn ||
        !lw || !lb || !bias || !sm || !asc || !mms)
        return 1;
    for (int64_t i = 0; i < VT * VD; i++) /* q . k of O(1): scores like a real layer's */
        q[i] *= 0.25f, k[i] *= 0.25f;
    double best[V_N];
    for (int p = 0; p < V_N; p++)
        best[p] = 1e30;
    for (int rep = 0; rep < nrep; rep++) {
        double t[V_N] = {0}, t0 = bench_now();
        for (int64_t r = 0; r < VT; r++)
            owl_layernorm(xn + r * VD, x + r * VD, lw, lb, VD, 1e-5f);
        vlap(&t[V_LN], &t0);
        owl_matmul(pool, wqkv, wt, 3 * VD, VD, xn, VD, VT, qkv, 3 * VD, mms);
        vlap(&t[V_QKV], &t0);
        for (int64_t r = 0; r < VT; r++)
            owl_add(qkv + r * 3 * VD, qkv + r * 3 * VD, bias, 3 * VD);
        vlap(&t[V_ADD], &t0);
        for (int64_t r = 0; r < VT; r++)
            for (int h = 0; h < VH; h++) {
                const float *src = qkv + r * 3 * VD + h * 3 * VHD;
                memcpy(att + r * VD + h * VHD, src, sizeof(float) * VHD); /* q's copy, not q: keep the scores O(1) */
                memcpy(xn + (h * VT + r) * VHD, src + VHD, sizeof(float) * VHD); /* head-major, as vision.c */
                memcpy(ffn + (h * VT + r) * VHD, src + 2 * VHD, sizeof(float) * VHD);
            }
        vlap(&t[V_SPLIT], &t0);
        owl_attn_args aa = {.q = q, .q_stride = VD, .k = k, .v = v, .kv_type = OWL_TYPE_F32,
                            .kv_stride = VHD, .kv_head_stride = VT * VHD, .n_q = VT, .n_kv = VT, .n_heads = VH, .n_kv_heads = VH,
                            .head_dim = VHD, .scale = 0.125f, .causal = 0, .q_pos0 = 0, .out = att,
                            .out_stride = VD};
        owl_attention(pool, &aa, asc);
        vlap(&t[V_ATTN], &t0);
        owl_matmul(pool, wout, wt, VD, VD, att, VD, VT, xn, VD, mms);
        vlap(&t[V_OUT], &t0);
        add_bias(xn, bias, VT, VD);
        owl_add(x, x, xn, VT * VD);
        vlap(&t[V_ADD], &t0);
        for (int64_t r = 0; r < VT; r++)
            owl_layernorm(xn + r * VD, x + r * VD, lw, lb, VD, 1e-5f);
        vlap(&t[V_LN], &t0);
        owl_matmul(pool, wup, wt, VFF, VD, xn, VD, VT, ffn, VFF, mms);
        vlap(&t[V_UP], &t0);
        add_bias(ffn, bias, VT, VFF);
        vlap(&t[V_ADD], &t0);
        owl_quick_gelu(ffn, ffn, (int64_t)VT * VFF);
        vlap(&t[V_GELU], &t0);
        owl_matmul(pool, wdown, wt, VD, VFF, ffn, VFF, VT, xn, VD, mms);
        vlap(&t[V_DOWN], &t0);
        add_bias(xn, bias, VT, VD);
        owl_add(x, x, xn, VT * VD);
        vlap(&t[V_ADD], &t0);
        for (int64_t r = 0; r < VT; r++) /* keep x O(1) for the next layer */
            owl_layernorm(x + r * VD, x + r * VD, lw, lb, VD, 1e-5f);
        for (int p = 0; p < V_LAYER; p++)
            t[V_LAYER] += t[p];
        /* softmax alone, on scores of a real layer's spread */
        for (int64_t i = 0; i < (int64_t)VH * VT * VT; i += 997)
            sm[i] = 4.0f;
        t0 = bench_now();
        for (int64_t r = 0; r < (int64_t)VH * VT; r++)
            owl_softmax(sm + r * VT, VT);
        vlap(&t[V_SOFTMAX], &t0);
        for (int64_t i = 0; i < (int64_t)VH * VT * VT; i++) /* refill: softmax shrank the values */
            sm[i] = (float)(i % 2003) * 0.002f - 2.0f;
        for (int p = 0; p < V_N; p++)
            best[p] = t[p] < best[p] ? t[p] : best[p];
    }
    for (int p = 0; p < V_N; p++)
        printf("VPROFILE %s %d %.1f\n", vpart_names[p], nth, best[p] * 1e3);
    fflush(stdout);
    free(wqkv), free(wout), free(wup), free(wdown);
    free(x), free(xn), free(qkv), free(q), free(k), free(v), free(att), free(ffn);
    free(lw), free(lb), free(bias), free(sm), free(asc), free(mms);
    return 0;
}

/* owl_attention alone at the vision shape (16 heads, 1025 x 1025, hd 64, f32
 * K/V head-major as src/model/vision.c stores them), best of nrep calls: VPROFILE attention_alone <threads> <ms> */
int bench_vision_attention(owl_pool *pool, int nth, int nrep)
{
    float *q = vbuf(VT * VD), *k = vbuf(VT * VD), *v = vbuf(VT * VD), *att = vbuf(VT * VD);
    float *asc = malloc(owl_attention_scratch_size(VT, nth));
    if (!q || !k || !v || !att || !asc)
        return 1;
    for (int64_t i = 0; i < VT * VD; i++)
        q[i] *= 0.25f, k[i] *= 0.25f;
    owl_attn_args aa = {.q = q, .q_stride = VD, .k = k, .v = v, .kv_type = OWL_TYPE_F32, .kv_stride = VHD,
                        .kv_head_stride = VT * VHD, .n_q = VT, .n_kv = VT, .n_heads = VH, .n_kv_heads = VH, .head_dim = VHD,
                        .scale = 0.125f, .causal = 0, .q_pos0 = 0, .out = att, .out_stride = VD};
    double best = 1e30;
    for (int rep = 0; rep < nrep; rep++) {
        double t0 = bench_now();
        owl_attention(pool, &aa, asc);
        t0 = bench_now() - t0;
        best = t0 < best ? t0 : best;
    }
    printf("VPROFILE attention_alone %d %.1f\n", nth, best * 1e3);
    fflush(stdout);
    free(q), free(k), free(v), free(att), free(asc);
    return 0;
}

/* ----------------------------------------------------------------- prefill */

/* One LLaMA-7B decoder layer of the full-size prompt (87 positions: 3 text,
 * 65 image, 19 text, as USER: <|image|>question ASSISTANT: tokenizes), the
 * ops of owl_llm_layers (src/model/llm.c) in its order with the
 * modality-adaptive K/V (one GEMM per run of equal modality, text and image
 * weights), matrices in the 4-row interleaved layout, f16 KV cache; best of
 * nrep layers per part:
 *   PPROFILE <part> <threads> <ms per layer>
 * parts: norms, gemm_q, gemm_kv (all six runs), rope, kv_store, attention,
 * gemm_o, gemm_gate_up, swiglu, gemm_down, add, layer (the sum of the parts of
 * the best whole layer), and gemm_steady: the same matrices in one GEMM each
 * of all 87 tokens (what the layer's GEMMs would cost without the modality
 * split). wt_vd: the type of attn_v and ffn_down (q4_k_m: q6_K in about half
 * the layers, q4_K in the others); the other matrices q4_K. */
enum { PT = 87, PRUNS = 3 };
static const int prun[PRUNS][2] = {{0, 3}, {3, 68}, {68, 87}}; /* [begin, end): text, image, text */
enum { Q_NORM, Q_Q, Q_KV, Q_ROPE, Q_KVST, Q_ATTN, Q_O, Q_GU, Q_SWIGLU, Q_DOWN, Q_ADD, Q_LAYER, Q_STEADY, Q_N };
static const char *const qpart_names[Q_N] = {"norms", "gemm_q", "gemm_kv", "rope", "kv_store", "attention",
                                             "gemm_o", "gemm_gate_up", "swiglu", "gemm_down", "add", "layer",
                                             "gemm_steady"};

int bench_prefill_profile(owl_pool *pool, int nth, owl_type wt_vd, int nrep)
{
    const owl_type q4 = OWL_TYPE_Q4_K;
    /* q, k text, k image, v text, v image, o, gate, up, down */
    const owl_type ty[9] = {q4, q4, q4, wt_vd, wt_vd, q4, q4, q4, wt_vd};
    const int64_t sh[9][2] = {{D, D}, {D, D}, {D, D}, {D, D}, {D, D}, {D, D}, {FFN, D}, {FFN, D}, {D, FFN}};
    void *w[9];
    int ok = 1;
    for (int m = 0; m < 9; m++) {
        w[m] = bench_weights(ty[m], sh[m][0], sh[m][1]);
        ok &= w[m] && owl_repack_r4(ty[m], w[m], sh[m][0], sh[m][1]);
    }
    float *x = vbuf(PT * D), *xn = vbuf(PT * D), *q = vbuf(PT * D), *k = vbuf(PT * D), *v = vbuf(PT * D);
    float *att = vbuf(PT * D), *tmp = vbuf(PT * D), *g = vbuf(PT * FFN), *u = vbuf(PT * FFN), *nw = vbuf(D);
    owl_f16 *kc = malloc(sizeof(owl_f16) * PT * D), *vc = malloc(sizeof(owl_f16) * PT * D);
    float *asc = malloc(owl_attention_scratch_size(PT, nth));
    size_t mss = owl_matmul_scratch_size(OWL_TYPE_Q6_K, FFN, PT), ms4 = owl_matmul_scratch_size(q4, FFN, PT);
    void *mms = malloc(mss > ms4 ? mss : ms4);
    ok &= x && xn && q && k && v && att && tmp && g && u && nw && kc && vc && asc && mms;
    if (!ok) {
        fprintf(stderr, "bench: out of memory (prefill profile)\n");
        return 1;
    }
#define PMM(m, X, n, Y) owl_matmul_r4(pool, w[m], ty[m], 1, sh[m][0], sh[m][1], X, sh[m][1], n, Y, sh[m][0], mms)
    double best[Q_N];
    for (int p = 0; p < Q_N; p++)
        best[p] = 1e30;
    float *x0 = vbuf(PT * D);
    for (int rep = 0; rep < nrep + 1; rep++) { /* rep 0: warm-up */
        double t[Q_N] = {0}, t0;
        memcpy(x, x0, sizeof(float) * PT * D);
        t0 = bench_now();
        for (int64_t r = 0; r < PT; r++)
            owl_rmsnorm(xn + r * D, x + r * D, nw, D, 1e-5f);
        vlap(&t[Q_NORM], &t0);
        PMM(0, xn, PT, q);
        vlap(&t[Q_Q], &t0);
        for (int r = 0; r < PRUNS; r++) {
            const int a = prun[r][0], n = prun[r][1] - a, img = r == 1;
            PMM(1 + img, xn + a * D, n, k + a * D);
            PMM(3 + img, xn + a * D, n, v + a * D);
        }
        vlap(&t[Q_KV], &t0);
        for (int64_t r = 0; r < PT; r++) {
            owl_rope(q + r * D, HEADS, HD, r, 10000.0f);
            owl_rope(k + r * D, HEADS, HD, r, 10000.0f);
        }
        vlap(&t[Q_ROPE], &t0);
        for (int64_t i = 0; i < (int64_t)PT * D; i++) {
            kc[i] = owl_f32_to_f16(k[i] * 0.25f); /* q . k of O(1) */
            vc[i] = owl_f32_to_f16(v[i]);
        }
        vlap(&t[Q_KVST], &t0);
        owl_attn_args aa = {.q = q, .q_stride = D, .k = kc, .v = vc, .kv_type = OWL_TYPE_F16, .kv_stride = D,
                            .n_q = PT, .n_kv = PT, .n_heads = HEADS, .n_kv_heads = HEADS, .head_dim = HD,
                            .scale = 0.08838835f, .causal = 1, .q_pos0 = 0, .out = att, .out_stride = D};
        owl_attention(pool, &aa, asc);
        vlap(&t[Q_ATTN], &t0);
        PMM(5, att, PT, tmp);
        vlap(&t[Q_O], &t0);
        owl_add(x, x, tmp, PT * D);
        vlap(&t[Q_ADD], &t0);
        for (int64_t r = 0; r < PT; r++)
            owl_rmsnorm(xn + r * D, x + r * D, nw, D, 1e-5f);
        vlap(&t[Q_NORM], &t0);
        PMM(6, xn, PT, g);
        PMM(7, xn, PT, u);
        vlap(&t[Q_GU], &t0);
        owl_swiglu(g, g, u, PT * FFN);
        vlap(&t[Q_SWIGLU], &t0);
        PMM(8, g, PT, tmp);
        vlap(&t[Q_DOWN], &t0);
        owl_add(x, x, tmp, PT * D);
        vlap(&t[Q_ADD], &t0);
        for (int p = 0; p < Q_LAYER; p++)
            t[Q_LAYER] += t[p];
        /* the layer's nine matrices without the split: q, k, v, o, gate, up, down of 87 tokens each */
        static const int steady[7] = {0, 1, 3, 5, 6, 7, 8};
        for (int i = 0; i < 7; i++)
            if (steady[i] == 8)
                PMM(8, g, PT, tmp);
            else
                PMM(steady[i], xn, PT, steady[i] >= 6 ? u : tmp);
        vlap(&t[Q_STEADY], &t0);
        for (int p = 0; rep > 0 && p < Q_N; p++)
            best[p] = t[p] < best[p] ? t[p] : best[p];
    }
#undef PMM
    printf("PPROFILE_OF v_down %s\n", owl_type_get(wt_vd)->name);
    for (int p = 0; p < Q_N; p++)
        printf("PPROFILE %s %d %.2f\n", qpart_names[p], nth, best[p] * 1e3);
    fflush(stdout);
    for (int m = 0; m < 9; m++)
        free(w[m]);
    free(x), free(x0), free(xn), free(q), free(k), free(v), free(att), free(tmp), free(g), free(u), free(nw);
    free(kc), free(vc), free(asc), free(mms);
    return 0;
}
