/* plan.c - the tensor plan (checkpoint key -> GGUF name, shapes, per-tensor
 * quant type) and the pipeline stage plan. Names and order: docs/FORMAT.md;
 * the type mix: docs/CONVERTING.md. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"

typedef struct {
    owl_conv_plan *p;
    owl_err *err;
    size_t cap;
    owl_status st;
} builder;

/* Add one tensor. src dims are given as a -1 terminated list; ne is derived:
 * 1-D -> [n]; k-D -> [last dims product as row, rows]. row_dims says how many
 * trailing source dims form a row (1 normally, 3 for the patch embedding). */
static void add(builder *b, owl_conv_part part, int layer, owl_conv_kind kind, int rope_heads, int row_dims,
                const char *name, const char *key, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    if (b->st)
        return;
    owl_conv_plan *p = b->p;
    if (p->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        owl_conv_tensor *nt = realloc(p->t, nc * sizeof *nt);
        if (!nt) {
            b->st = owl_err_set(b->err, OWL_E_NOMEM, "tensor plan: out of memory");
            return;
        }
        p->t = nt;
        b->cap = nc;
    }
    owl_conv_tensor *t = &p->t[p->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->key, sizeof t->key, "%s", key);
    t->part = part;
    t->layer = layer;
    t->kind = kind;
    t->rope_heads = rope_heads;
    int64_t d[4] = {d0, d1, d2, d3};
    int nd = 0;
    while (nd < 4 && d[nd] >= 0)
        nd++;
    t->src_dims = nd;
    memcpy(t->src_shape, d, sizeof d);
    int64_t row = 1, rows = 1;
    for (int i = 0; i < nd; i++) {
        if (i >= nd - row_dims)
            row *= d[i];
        else
            rows *= d[i];
    }
    t->ne[0] = row;
    t->ne[1] = rows;
    t->n_dims = rows == 1 && nd >= 1 && (kind == OWL_KIND_VEC) ? 1 : 2;
}

static int use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static owl_type base_type(owl_conv_ftype f)
{
    switch (f) {
    case OWL_CONV_TYPE_F32: return OWL_TYPE_F32;
    case OWL_CONV_TYPE_F16: return OWL_TYPE_F16;
    case OWL_CONV_TYPE_Q8_0: return OWL_TYPE_Q8_0;
    case OWL_CONV_TYPE_Q4_0: return OWL_TYPE_Q4_0;
    case OWL_CONV_TYPE_Q4_K: return OWL_TYPE_Q4_K;
    case OWL_CONV_TYPE_Q6_K: return OWL_TYPE_Q6_K;
    case OWL_CONV_TYPE_Q4_K_M: return OWL_TYPE_Q4_K;
    }
    return OWL_TYPE_F32;
}

static int is_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Per-tensor type (see docs/CONVERTING.md). */
static void choose_type(owl_conv_tensor *t, owl_conv_ftype f, owl_conv_vision v, int n_layers)
{
    if (t->kind == OWL_KIND_VEC || t->kind == OWL_KIND_TABLE) {
        t->type = t->want = OWL_TYPE_F32;
        return;
    }
    owl_type want = base_type(f);
    if (f == OWL_CONV_TYPE_Q4_K_M) {
        if (t->part != OWL_PART_LLM)
            want = OWL_TYPE_Q8_0; /* vision tower + abstractor: 8-bit (small, quality-sensitive) */
        else if (t->kind == OWL_KIND_OUTPUT)
            want = OWL_TYPE_Q6_K;
        else if ((is_suffix(t->name, ".attn_v.weight") || is_suffix(t->name, ".attn_v_img.weight") ||
                  is_suffix(t->name, ".ffn_down.weight")) &&
                 use_more_bits(t->layer, n_layers))
            want = OWL_TYPE_Q6_K;
    }
    if (t->part == OWL_PART_VISION && v != OWL_CONV_VISION_DEFAULT)
        want = v == OWL_CONV_VISION_Q6_K ? OWL_TYPE_Q6_K : OWL_TYPE_Q8_0;
    t->want = want;
    if (want == OWL_TYPE_F32) {
        t->type = OWL_TYPE_F32;
        return;
    }
    /* row length must be a multiple of the block size: fall back to Q8_0, then F16 */
    owl_type chain[3] = {want, OWL_TYPE_Q8_0, OWL_TYPE_F16};
    for (int i = 0; i < 3; i++) {
        if (owl_row_size(chain[i], t->ne[0])) {
            t->type = chain[i];
            t->fallback = i > 0;
            if (i == 1 && want == OWL_TYPE_Q8_0)
                t->fallback = 0;
            return;
        }
    }
    t->type = OWL_TYPE_F32;
    t->fallback = 1;
}

#define K(...) snprintf(k, sizeof k, __VA_ARGS__)
#define N(...) snprintf(n, sizeof n, __VA_ARGS__)

/* The vision tower (CLIP ViT): patch and position embeddings, blocks, norms. */
static void add_vision(builder *b, const owl_conv_cfg *c)
{
    char n[64], k[192];
    const int64_t X = -1;
    const char *vp = "model.vision_model.";
    int64_t vh = c->v_hidden, np = (c->v_image / c->v_patch) * (c->v_image / c->v_patch);
    K("%sembeddings.patch_embed.weight", vp);
    add(b, OWL_PART_VISION, -1, OWL_KIND_MATMUL, 0, 3, "v.patch_embd.weight", k, vh, c->v_channels, c->v_patch,
        c->v_patch);
    K("%sembeddings.cls_token", vp);
    add(b, OWL_PART_VISION, -1, OWL_KIND_VEC, 0, 1, "v.class_embd", k, 1, 1, vh, X);
    K("%sembeddings.position_embedding", vp);
    add(b, OWL_PART_VISION, -1, OWL_KIND_TABLE, 0, 1, "v.position_embd.weight", k, 1, 1 + np, vh, X);
    const char *wb[2] = {"weight", "bias"};
    for (int i = 0; i < 2; i++) {
        K("%sembeddings.pre_layernorm.%s", vp, wb[i]);
        N("v.pre_ln.%s", wb[i]);
        add(b, OWL_PART_VISION, -1, OWL_KIND_VEC, 0, 1, n, k, vh, X, X, X);
    }
    for (int l = 0; l < c->v_layers; l++) {
        static const struct {
            const char *g, *src;
            int mm; /* 0 norm, 1..4 matmul shapes */
        } vt[] = {{"ln1", "input_layernorm", 0}, {"attn_qkv", "self_attn.query_key_value", 1},
                  {"attn_out", "self_attn.dense", 2}, {"ln2", "post_attention_layernorm", 0},
                  {"ffn_up", "mlp.fc1", 3}, {"ffn_down", "mlp.fc2", 4}};
        for (size_t j = 0; j < sizeof vt / sizeof vt[0]; j++)
            for (int i = 0; i < 2; i++) {
                K("%sencoder.layers.%d.%s.%s", vp, l, vt[j].src, wb[i]);
                N("v.blk.%d.%s.%s", l, vt[j].g, wb[i]);
                int64_t out = vh, in = vh;
                if (vt[j].mm == 1)
                    out = 3 * vh;
                else if (vt[j].mm == 3)
                    out = c->v_ffn;
                else if (vt[j].mm == 4)
                    in = c->v_ffn;
                if (vt[j].mm && i == 0)
                    add(b, OWL_PART_VISION, -1, OWL_KIND_MATMUL, 0, 1, n, k, out, in, X, X);
                else
                    add(b, OWL_PART_VISION, -1, OWL_KIND_VEC, 0, 1, n, k, out, X, X, X);
            }
    }
    for (int i = 0; i < 2; i++) {
        K("%spost_layernorm.%s", vp, wb[i]);
        N("v.post_ln.%s", wb[i]);
        add(b, OWL_PART_VISION, -1, OWL_KIND_VEC, 0, 1, n, k, vh, X, X, X);
    }
}

/* The visual abstractor: queries, cross-attention blocks, projection to the LLM. */
static void add_abstractor(builder *b, const owl_conv_cfg *c)
{
    char n[64], k[192];
    const int64_t X = -1;
    const char *wb[2] = {"weight", "bias"};
    const char *ap = "model.visual_abstractor.";
    int64_t ah = c->a_hidden;
    K("%squery_embeds", ap);
    add(b, OWL_PART_ABSTRACTOR, -1, OWL_KIND_TABLE, 0, 1, "a.query_embd", k, 1, c->a_queries, ah, X);
    for (int l = 0; l < c->a_layers; l++) {
        static const struct {
            const char *g, *src;
            int mm; /* 0 norm(ah), 5 norm(ffn), 1 ah->ah (k/v read encoder width), 3 ah->ffn, 4 ffn->ah */
        } at[] = {{"norm1", "norm1", 0}, {"normk", "normk", 6}, {"attn_q", "attention.query", 1},
                  {"attn_k", "attention.key", 2}, {"attn_v", "attention.value", 2},
                  {"attn_out", "output.out_proj", 1}, {"norm2", "output.norm2", 0},
                  {"ffn_gate", "output.mlp.w1", 3}, {"ffn_up", "output.mlp.w3", 3},
                  {"ffn_norm", "output.mlp.ffn_ln", 5}, {"ffn_down", "output.mlp.w2", 4}};
        for (size_t j = 0; j < sizeof at / sizeof at[0]; j++)
            for (int i = 0; i < 2; i++) {
                K("%sencoder.layers.%d.crossattention.%s.%s", ap, l, at[j].src, wb[i]);
                N("a.blk.%d.%s.%s", l, at[j].g, wb[i]);
                int m = at[j].mm;
                int64_t out = m == 3 ? c->a_ffn : ah, in = m == 4 ? c->a_ffn : (m == 2 ? c->a_enc_hidden : ah);
                if (m == 5)
                    out = c->a_ffn;
                if (m == 6)
                    out = c->a_enc_hidden;
                if (m >= 1 && m <= 4 && i == 0)
                    add(b, OWL_PART_ABSTRACTOR, -1, OWL_KIND_MATMUL, 0, 1, n, k, out, in, X, X);
                else
                    add(b, OWL_PART_ABSTRACTOR, -1, OWL_KIND_VEC, 0, 1, n, k, out, X, X, X);
            }
    }
    K("%svisual_fc.weight", ap);
    add(b, OWL_PART_ABSTRACTOR, -1, OWL_KIND_MATMUL, 0, 1, "a.visual_fc.weight", k, c->hidden, ah, X, X);
    K("%svisual_fc.bias", ap);
    add(b, OWL_PART_ABSTRACTOR, -1, OWL_KIND_VEC, 0, 1, "a.visual_fc.bias", k, c->hidden, X, X, X);
    K("%svit_eos", ap);
    add(b, OWL_PART_ABSTRACTOR, -1, OWL_KIND_VEC, 0, 1, "a.vit_eos", k, 1, 1, c->hidden, X);
}

/* The LLaMA-2 decoder with its multiway (text / image) norms and k/v. */
static void add_llm(builder *b, const owl_conv_cfg *c)
{
    char n[64], k[192];
    const int64_t X = -1;
    int64_t h = c->hidden, hd = c->hidden / c->heads, kvd = hd * c->kv_heads;
    add(b, OWL_PART_LLM, -1, OWL_KIND_EMBD, 0, 1, "token_embd.weight", "model.embed_tokens.weight", c->vocab, h,
        X, X);
    for (int l = 0; l < c->layers; l++) {
        const char *mw[2] = {"", "_img"};
        for (int m = 0; m < 2; m++) {
            K("model.layers.%d.input_layernorm.multiway.%d.weight", l, m);
            N("blk.%d.attn_norm%s.weight", l, mw[m]);
            add(b, OWL_PART_LLM, l, OWL_KIND_VEC, 0, 1, n, k, h, X, X, X);
        }
        K("model.layers.%d.self_attn.q_proj.weight", l);
        N("blk.%d.attn_q.weight", l);
        add(b, OWL_PART_LLM, l, OWL_KIND_MATMUL, (int)c->heads, 1, n, k, h, h, X, X);
        for (int m = 0; m < 2; m++) {
            K("model.layers.%d.self_attn.k_proj.multiway.%d.weight", l, m);
            N("blk.%d.attn_k%s.weight", l, mw[m]);
            add(b, OWL_PART_LLM, l, OWL_KIND_MATMUL, (int)c->kv_heads, 1, n, k, kvd, h, X, X);
        }
        for (int m = 0; m < 2; m++) {
            K("model.layers.%d.self_attn.v_proj.multiway.%d.weight", l, m);
            N("blk.%d.attn_v%s.weight", l, mw[m]);
            add(b, OWL_PART_LLM, l, OWL_KIND_MATMUL, 0, 1, n, k, kvd, h, X, X);
        }
        K("model.layers.%d.self_attn.o_proj.weight", l);
        N("blk.%d.attn_output.weight", l);
        add(b, OWL_PART_LLM, l, OWL_KIND_MATMUL, 0, 1, n, k, h, h, X, X);
        for (int m = 0; m < 2; m++) {
            K("model.layers.%d.post_attention_layernorm.multiway.%d.weight", l, m);
            N("blk.%d.ffn_norm%s.weight", l, mw[m]);
            add(b, OWL_PART_LLM, l, OWL_KIND_VEC, 0, 1, n, k, h, X, X, X);
        }
        K("model.layers.%d.mlp.gate_proj.weight", l);
        N("blk.%d.ffn_gate.weight", l);
        add(b, OWL_PART_LLM, l, OWL_KIND_MATMUL, 0, 1, n, k, c->ffn, h, X, X);
        K("model.layers.%d.mlp.up_proj.weight", l);
        N("blk.%d.ffn_up.weight", l);
        add(b, OWL_PART_LLM, l, OWL_KIND_MATMUL, 0, 1, n, k, c->ffn, h, X, X);
        K("model.layers.%d.mlp.down_proj.weight", l);
        N("blk.%d.ffn_down.weight", l);
        add(b, OWL_PART_LLM, l, OWL_KIND_MATMUL, 0, 1, n, k, h, c->ffn, X, X);
    }
    add(b, OWL_PART_LLM, -1, OWL_KIND_VEC, 0, 1, "output_norm.weight", "model.norm.weight", h, X, X, X);
    add(b, OWL_PART_LLM, -1, OWL_KIND_OUTPUT, 0, 1, "output.weight", "lm_head.weight", c->vocab, h, X, X);
}
#undef K
#undef N

static owl_status build_tensors(builder *b, const owl_conv_cfg *c)
{
    add_vision(b, c);
    add_abstractor(b, c);
    add_llm(b, c);
    return b->st;
}

/* Working memory of a stage besides its weights (an estimate, FORMAT.md):
 * KV cache f16 for its layers at full context, plus LLM scratch for a 512-token
 * prefill batch, plus (first stage) ViT scratch for one image. */
uint64_t owl_conv_stage_extra_bytes(const owl_conv_cfg *c, uint32_t n_layers, int first_stage)
{
    uint64_t kvd = (uint64_t)(c->hidden / c->heads * c->kv_heads);
    uint64_t kv = (uint64_t)n_layers * 2 * (uint64_t)c->ctx * kvd * 2;
    uint64_t nb = (uint64_t)(c->ctx < 512 ? c->ctx : 512);
    uint64_t llm = nb * (4 * (uint64_t)c->hidden + 2 * (uint64_t)c->ffn) * 4 +
                   (uint64_t)c->heads * nb * (uint64_t)c->ctx * 4 + (uint64_t)c->vocab * 4;
    uint64_t extra = kv + llm;
    if (first_stage) {
        uint64_t vt = 1 + (uint64_t)(c->a_grid * c->a_grid);
        extra += vt * (4 * (uint64_t)c->v_hidden + (uint64_t)c->v_ffn) * 4 + (uint64_t)c->v_heads * vt * vt * 4;
    }
    return extra;
}

static uint32_t stage_of(const owl_conv_plan *p, const owl_conv_tensor *t)
{
    if (t->layer < 0)
        return t->part == OWL_PART_LLM && strcmp(t->name, "token_embd.weight") ? p->n_stages - 1 : 0;
    uint32_t s = 0;
    while (s + 1 < p->n_stages && (uint32_t)t->layer >= p->stage_layer[s + 1])
        s++;
    return s;
}

void owl_conv_stage_range(const owl_conv_plan *p, uint32_t s, size_t *first, size_t *end)
{
    size_t a = 0;
    while (a < p->n && stage_of(p, &p->t[a]) < s)
        a++;
    size_t e = a;
    while (e < p->n && stage_of(p, &p->t[e]) == s)
        e++;
    *first = a;
    *end = e;
}

/* Greedy: fill each stage with layers while weights + extra fit in budget;
 * the head goes with the last layers. Returns the stage count, 0 if some
 * stage cannot fit even alone (err says which), -1 if too many stages. */
static int greedy(owl_conv_plan *p, uint64_t budget, const uint64_t *layer, uint64_t pre, uint64_t post,
                  owl_err *err)
{
    const owl_conv_cfg *c = &p->cfg;
    uint32_t s = 0, first = 0;
    uint64_t cur = pre;
    p->stage_layer[0] = 0;
    for (uint32_t l = 0; l <= (uint32_t)c->layers; l++) {
        int last = l == (uint32_t)c->layers;
        uint64_t add = last ? post : layer[l];
        uint64_t need = cur + add + owl_conv_stage_extra_bytes(c, l - first + (last ? 0 : 1), s == 0);
        const uint64_t max_weights = (uint64_t)OWL_CONV_MAX_STAGE_WEIGHT_MIB << 20;
        if (need <= budget && cur + add <= max_weights) {
            cur += add;
            continue;
        }
        if (l == first) { /* nothing else in this stage and still too big */
            uint64_t alone = cur + add + owl_conv_stage_extra_bytes(c, last ? 0 : 1, s == 0);
            if (cur + add > max_weights)
                owl_err_set(err, OWL_E_LIMIT, "stage plan: stage %u holds %llu MiB of weights with %s, over the %d MiB "
                            "a wasm32 instance can allocate at once", s, (unsigned long long)((cur + add) >> 20),
                            last ? "the output head" : "one layer", OWL_CONV_MAX_STAGE_WEIGHT_MIB);
            else
                owl_err_set(err, OWL_E_LIMIT, "stage plan: stage %u needs %llu MiB with %s, over the %llu MiB budget", s,
                            (unsigned long long)(alone >> 20), last ? "the output head" : "one layer",
                            (unsigned long long)(budget >> 20));
            return 0;
        }
        p->stage_bytes[s] = cur + owl_conv_stage_extra_bytes(c, l - first, s == 0);
        if (++s >= OWL_CONV_MAX_STAGES) {
            owl_err_set(err, OWL_E_LIMIT, "stage plan: more than %d stages at %llu MiB", OWL_CONV_MAX_STAGES,
                        (unsigned long long)(budget >> 20));
            return -1;
        }
        p->stage_layer[s] = l;
        first = l;
        cur = 0;
        l--; /* retry this layer (or the head) in the new stage */
    }
    p->stage_bytes[s] = cur + owl_conv_stage_extra_bytes(c, (uint32_t)c->layers - first, s == 0);
    p->n_stages = s + 1;
    p->stage_layer[p->n_stages] = (uint32_t)c->layers;
    return (int)p->n_stages;
}

/* Fewest stages that fit the budget, then balanced: the smallest budget (1 MiB
 * steps, binary search) that still needs no more stages. */
static owl_status plan_stages(owl_conv_plan *p, owl_err *err)
{
    const owl_conv_cfg *c = &p->cfg;
    uint64_t pre = 0, post = 0, *layer = calloc((size_t)c->layers, sizeof *layer);
    if (!layer)
        return owl_err_set(err, OWL_E_NOMEM, "stage plan: out of memory");
    for (size_t i = 0; i < p->n; i++) {
        const owl_conv_tensor *t = &p->t[i];
        if (t->layer >= 0)
            layer[t->layer] += t->bytes;
        else if (t->part == OWL_PART_LLM && (!strcmp(t->name, "output_norm.weight") || !strcmp(t->name, "output.weight")))
            post += t->bytes;
        else
            pre += t->bytes;
    }
    int n = greedy(p, (uint64_t)p->budget_mib << 20, layer, pre, post, err);
    if (n <= 0) {
        free(layer);
        return err ? err->code : OWL_E_LIMIT;
    }
    uint64_t lo = 1, hi = p->budget_mib; /* hi always works */
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        int m = greedy(p, mid << 20, layer, pre, post, NULL);
        if (m > 0 && m <= n)
            hi = mid;
        else
            lo = mid + 1;
    }
    greedy(p, hi << 20, layer, pre, post, NULL);
    free(layer);
    return OWL_OK;
}

owl_status owl_conv_plan_build(const owl_conv_cfg *cfg, owl_conv_ftype ftype, uint32_t budget_mib,
                               owl_conv_plan *p, owl_err *err)
{
    return owl_conv_plan_build_vision(cfg, ftype, OWL_CONV_VISION_DEFAULT, budget_mib, p, err);
}

owl_status owl_conv_plan_build_vision(const owl_conv_cfg *cfg, owl_conv_ftype ftype, owl_conv_vision vision,
                                      uint32_t budget_mib, owl_conv_plan *p, owl_err *err)
{
    memset(p, 0, sizeof *p);
    p->cfg = *cfg;
    p->ftype = ftype;
    p->vision = vision;
    p->budget_mib = budget_mib;
    builder b = {p, err, 0, OWL_OK};
    owl_status st = build_tensors(&b, cfg);
    for (size_t i = 0; !st && i < p->n; i++) {
        owl_conv_tensor *t = &p->t[i];
        choose_type(t, ftype, vision, (int)cfg->layers);
        t->bytes = (uint64_t)owl_row_size(t->type, t->ne[0]) * (uint64_t)t->ne[1];
    }
    if (!st)
        st = plan_stages(p, err);
    if (st)
        owl_conv_plan_free(p);
    return st;
}

void owl_conv_plan_free(owl_conv_plan *p)
{
    if (!p)
        return;
    free(p->t);
    memset(p, 0, sizeof *p);
}
