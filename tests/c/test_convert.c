/* test_convert.c - owlet-convert: oracle A from .safetensors and .bin (identical
 * bytes), metadata and tensors against FORMAT.md, the RoPE permutation, the
 * quant mix and stage plan, quantized values, chunks + manifest, inspect.
 * Corrupt inputs are in test_convert_corrupt.c. Scratch files go to
 * /tmp/owlet-test-convert-* and are removed. */
#include <math.h>

#include "../../src/core/json.h"
#include "../../src/core/sha256.h"
#include "../../src/text/template.h"
#define OWL_CONV_TEST_TAG "main"
#include "convert_util.h"

TEST(convert_oracle_bin_and_safetensors_give_identical_bytes)
{
    char d[256], a[300], b[300];
    scratch(d, sizeof d);
    owl_conv_ftype types[] = {OWL_CONV_TYPE_F32, OWL_CONV_TYPE_Q4_K_M};
    for (int i = 0; i < 2; i++) {
        owl_err e = {0};
        snprintf(a, sizeof a, "%s/st%d.gguf", d, i);
        snprintf(b, sizeof b, "%s/pt%d.gguf", d, i);
        CHECK_MSG(convert(ORACLE, a, types[i], "safetensors", 3200, &e) == OWL_OK, "%s", e.msg);
        CHECK_MSG(convert(ORACLE, b, types[i], "pytorch", 3200, &e) == OWL_OK, "%s", e.msg);
        size_t na = 0, nb = 0;
        uint8_t *x = load(a, &na), *y = load(b, &nb);
        CHECK(x && y && na == nb && na > 1000000 / (i ? 4 : 1) && !memcmp(x, y, na));
        free(x);
        free(y);
        CHECK(!exists(strcat(a, ".tmp")));
    }
    cleanup(d);
}

static owl_gguf *parse_out(const char *path, uint8_t **buf)
{
    size_t n;
    *buf = load(path, &n);
    static owl_gguf g;
    owl_err e = {0};
    if (!*buf || owl_gguf_parse(*buf, n, 0, 0, &g, &e)) {
        CHECK_MSG(0, "parse %s: %s", path, e.msg);
        return NULL;
    }
    return &g;
}

static uint32_t u32_of(const owl_gguf *g, const char *k)
{
    uint32_t v = 0xFFFFFFFF;
    CHECK_MSG(owl_gguf_get_u32(g, k, &v, NULL) == OWL_OK, "key %s", k);
    return v;
}

TEST(convert_oracle_metadata_and_tensor_order)
{
    char d[256], p[300];
    scratch(d, sizeof d);
    snprintf(p, sizeof p, "%s/a.gguf", d);
    owl_err e = {0};
    CHECK_MSG(convert(ORACLE, p, OWL_CONV_TYPE_F32, NULL, 3200, &e) == OWL_OK, "%s", e.msg);
    uint8_t *buf;
    owl_gguf *g = parse_out(p, &buf);
    if (!g) {
        free(buf);
        return;
    }
    owl_gguf_str s;
    CHECK(owl_gguf_get_str(g, "general.architecture", &s, NULL) == OWL_OK && owl_gguf_str_eq(s, "mplug-owl2"));
    CHECK(owl_gguf_get_str(g, "tokenizer.chat_template", &s, NULL) == OWL_OK &&
          owl_gguf_str_eq(s, OWL_CHAT_TEMPLATE_MPLUG_OWL2));
    CHECK_EQ_INT(u32_of(g, "mplug-owl2.block_count"), 2);
    CHECK_EQ_INT(u32_of(g, "mplug-owl2.embedding_length"), 128);
    CHECK_EQ_INT(u32_of(g, "mplug-owl2.feed_forward_length"), 256);
    CHECK_EQ_INT(u32_of(g, "mplug-owl2.attention.head_count_kv"), 4);
    CHECK_EQ_INT(u32_of(g, "mplug-owl2.vision.image_size"), 56);
    CHECK_EQ_INT(u32_of(g, "mplug-owl2.vision.feed_forward_length"), 192);
    CHECK_EQ_INT(u32_of(g, "mplug-owl2.abstractor.grid_size"), 4);
    CHECK_EQ_INT(u32_of(g, "mplug-owl2.abstractor.query_count"), 8);
    CHECK_EQ_INT(u32_of(g, "mplug-owl2.image_token_count"), 9);
    CHECK_EQ_INT(u32_of(g, "tokenizer.ggml.bos_token_id"), 1);
    CHECK_EQ_INT(u32_of(g, "tokenizer.ggml.eos_token_id"), 2);
    float eps = 0;
    CHECK(owl_gguf_get_f32(g, "mplug-owl2.abstractor.layer_norm_epsilon", &eps, NULL) == OWL_OK);
    CHECK_NEAR(eps, 1e-6, 1e-12);
    const void *arr;
    uint64_t n = 0;
    CHECK(owl_gguf_get_arr(g, "mplug-owl2.image.pad_color", OWL_GGUF_UINT8, &arr, &n, NULL) == OWL_OK && n == 3 &&
          !memcmp(arr, "\x7a\x74\x68", 3)); /* 122, 116, 104 */
    CHECK(owl_gguf_get_arr(g, "owlet.stages", OWL_GGUF_UINT32, &arr, &n, NULL) == OWL_OK && n == 1);
    const owl_gguf_kv *tk = owl_gguf_find_kv(g, "tokenizer.ggml.tokens");
    CHECK(tk && tk->arr_n == 1000);
    if (tk && tk->arr_n == 1000)
        CHECK(owl_gguf_str_eq(owl_gguf_arr_str(tk, 1), "<s>") && owl_gguf_str_eq(owl_gguf_arr_str(tk, 13), "<0x0A>"));
    CHECK_EQ_INT(g->n_tensors, 108);
    CHECK(owl_gguf_str_eq(g->tensors[0].name, "v.patch_embd.weight"));
    CHECK_EQ_INT(g->tensors[0].ne[0], 588);
    CHECK(owl_gguf_str_eq(g->tensors[g->n_tensors - 1].name, "output.weight"));
    CHECK(owl_gguf_find_tensor(g, "a.blk.0.attn_q.weight") != NULL);
    CHECK(owl_gguf_find_tensor(g, "a.blk.1.ffn_norm.bias") != NULL);
    CHECK(owl_gguf_find_tensor(g, "blk.1.attn_norm_img.weight") != NULL);
    /* execution order: every vision tensor, then abstractor, then token_embd, blk.0, blk.1, output */
    int rank_prev = 0, ordered = 1;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        owl_gguf_str nm = g->tensors[i].name;
        int r = nm.data[0] == 'v' && nm.data[1] == '.' ? 0 : nm.data[0] == 'a' && nm.data[1] == '.' ? 1
              : !memcmp(nm.data, "token_embd", 10) ? 2 : !memcmp(nm.data, "blk.0.", 6) ? 3
              : !memcmp(nm.data, "blk.1.", 6) ? 4 : 5;
        ordered &= r >= rank_prev;
        rank_prev = r;
        CHECK(g->tensors[i].type == OWL_TYPE_F32);
    }
    CHECK(ordered);
    const owl_gguf_tensor *pos = owl_gguf_find_tensor(g, "v.position_embd.weight");
    CHECK(pos && pos->n_dims == 2 && pos->ne[0] == 64 && pos->ne[1] == 17);
    const owl_gguf_tensor *eos = owl_gguf_find_tensor(g, "a.vit_eos");
    CHECK(eos && eos->n_dims == 1 && eos->ne[0] == 128);
    CHECK(owl_gguf_find_tensor(g, "a.blk.0.q_pos_embed") == NULL);
    owl_gguf_free(g);
    free(buf);
    cleanup(d);
}

/* GGUF row h*D + 2i + s must be checkpoint row h*D + s*D/2 + i for attn_q and both
 * attn_k copies; attn_v and abstractor tensors are copied unchanged. */
TEST(convert_oracle_rope_permutation_and_values)
{
    char d[256], p[300];
    scratch(d, sizeof d);
    snprintf(p, sizeof p, "%s/a.gguf", d);
    owl_err e = {0};
    CHECK_MSG(convert(ORACLE, p, OWL_CONV_TYPE_F32, NULL, 3200, &e) == OWL_OK, "%s", e.msg);
    uint8_t *buf;
    owl_gguf *g = parse_out(p, &buf);
    owl_ckpt ck;
    CHECK(owl_ckpt_open(&ck, ORACLE, "safetensors", &e) == OWL_OK);
    static const struct {
        const char *gg, *key;
        int perm;
    } cases[] = {{"blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight", 1},
                 {"blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.multiway.0.weight", 1},
                 {"blk.1.attn_k_img.weight", "model.layers.1.self_attn.k_proj.multiway.1.weight", 1},
                 {"blk.1.attn_v_img.weight", "model.layers.1.self_attn.v_proj.multiway.1.weight", 0},
                 {"a.blk.1.attn_q.weight", "model.visual_abstractor.encoder.layers.1.crossattention.attention.query.weight", 0},
                 {"v.patch_embd.weight", "model.vision_model.embeddings.patch_embed.weight", 0},
                 {"token_embd.weight", "model.embed_tokens.weight", 0}};
    for (size_t c = 0; g && c < sizeof cases / sizeof cases[0]; c++) {
        const owl_gguf_tensor *t = owl_gguf_find_tensor(g, cases[c].gg);
        owl_ck_tensor *ct = owl_ckpt_find(&ck, cases[c].key);
        if (!t || !ct) {
            CHECK_MSG(0, "missing %s", cases[c].gg);
            continue;
        }
        int64_t row = t->ne[0], rows = t->ne[1], D = rows / 4; /* oracle: 4 heads, 4 kv heads */
        float *ref = malloc((size_t)(row * rows) * sizeof *ref);
        CHECK(owl_ckpt_read(&ck, ct, 0, row * rows, ref, &e) == OWL_OK);
        int bad = 0;
        for (int64_t r = 0; r < rows; r++) {
            int64_t h = r / D, j = r % D, src = cases[c].perm ? h * D + (j % 2) * (D / 2) + j / 2 : r;
            bad += memcmp((const float *)t->data + r * row, ref + src * row, (size_t)row * sizeof(float)) != 0;
        }
        CHECK_MSG(bad == 0, "%s: %d rows differ", cases[c].gg, bad);
        free(ref);
    }
    owl_ckpt_free(&ck);
    if (g)
        owl_gguf_free(g);
    free(buf);
    cleanup(d);
}

static const owl_conv_tensor *find_planned(const owl_conv_plan *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->t[i].name, name))
            return &p->t[i];
    return NULL;
}

static int load_cfg_7b(owl_conv_cfg *cfg)
{
    size_t n;
    char *s = owl_test_read_file(CFG_7B, &n);
    owl_json *j = NULL;
    owl_err e = {0};
    int ok = s && !owl_json_parse(s, n, &j, &e) && !owl_conv_cfg_from_json(j, cfg, &e);
    CHECK_MSG(ok, "%s: %s", CFG_7B, e.msg);
    owl_json_free(j);
    free(s);
    return ok;
}

TEST(plan_7b_parameter_counts_match_the_spec)
{
    owl_conv_cfg cfg;
    owl_conv_plan p;
    if (!load_cfg_7b(&cfg) || owl_conv_plan_build(&cfg, OWL_CONV_TYPE_F16, 3200, &p, NULL))
        return;
    uint64_t part[3] = {0};
    for (size_t i = 0; i < p.n; i++)
        part[p.t[i].part] += (uint64_t)(p.t[i].ne[0] * p.t[i].ne[1]);
    CHECK_EQ_INT(part[OWL_PART_VISION], 303966208);      /* spec §8 */
    CHECK_EQ_INT(part[OWL_PART_ABSTRACTOR], 81473536);
    CHECK_EQ_INT(part[OWL_PART_LLM], 7812419584LL);
    CHECK_EQ_INT(p.n, 7 + 24 * 12 + 1 + 6 * 22 + 3 + 1 + 32 * 13 + 2);
    owl_conv_plan_free(&p);
}

TEST(plan_q4_k_m_type_mix)
{
    owl_conv_cfg cfg;
    owl_conv_plan p;
    if (!load_cfg_7b(&cfg) || owl_conv_plan_build(&cfg, OWL_CONV_TYPE_Q4_K_M, 3200, &p, NULL))
        return;
    static const struct {
        const char *name;
        owl_type t;
        int fallback;
    } want[] = {{"output.weight", OWL_TYPE_Q6_K, 0}, {"token_embd.weight", OWL_TYPE_Q4_K, 0},
                {"blk.0.attn_v.weight", OWL_TYPE_Q6_K, 0}, {"blk.0.attn_v_img.weight", OWL_TYPE_Q6_K, 0},
                {"blk.4.attn_v.weight", OWL_TYPE_Q4_K, 0}, {"blk.4.attn_v_img.weight", OWL_TYPE_Q4_K, 0},
                {"blk.6.ffn_down.weight", OWL_TYPE_Q6_K, 0}, {"blk.7.ffn_down.weight", OWL_TYPE_Q4_K, 0},
                {"blk.31.ffn_down.weight", OWL_TYPE_Q6_K, 0}, {"blk.5.attn_q.weight", OWL_TYPE_Q4_K, 0},
                {"blk.5.attn_norm_img.weight", OWL_TYPE_F32, 0}, {"v.patch_embd.weight", OWL_TYPE_F16, 1},
                {"v.blk.3.attn_qkv.weight", OWL_TYPE_Q8_0, 0}, {"a.blk.2.ffn_down.weight", OWL_TYPE_Q8_0, 0},
                {"v.position_embd.weight", OWL_TYPE_F32, 0}, {"a.query_embd", OWL_TYPE_F32, 0},
                {"a.blk.0.ffn_norm.bias", OWL_TYPE_F32, 0}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const owl_conv_tensor *t = find_planned(&p, want[i].name);
        CHECK_MSG(t && t->type == want[i].t && t->fallback == want[i].fallback, "%s: type %d fallback %d",
                  want[i].name, t ? (int)t->type : -1, t ? t->fallback : -1);
    }
    owl_conv_plan_free(&p);
    /* q4_k: oracle-size rows (128) are not a multiple of 256 -> q8_0 fallback, reported */
    owl_conv_cfg small = cfg;
    small.hidden = 128;
    small.ffn = 256;
    small.heads = small.kv_heads = 4;
    CHECK(owl_conv_plan_build(&small, OWL_CONV_TYPE_Q4_K, 3200, &p, NULL) == OWL_OK);
    const owl_conv_tensor *t = find_planned(&p, "blk.0.attn_q.weight");
    CHECK(t && t->type == OWL_TYPE_Q8_0 && t->fallback);
    t = find_planned(&p, "blk.0.ffn_down.weight");
    CHECK(t && t->type == OWL_TYPE_Q4_K && !t->fallback);
    owl_conv_plan_free(&p);
}

TEST(plan_vision_type_q6_k_sets_the_vision_tower_only)
{
    owl_conv_cfg cfg;
    owl_conv_plan d, q8, q6;
    if (!load_cfg_7b(&cfg))
        return;
    CHECK(owl_conv_vision_parse("q8_0") == OWL_CONV_VISION_Q8_0 && owl_conv_vision_parse("q6_k") == OWL_CONV_VISION_Q6_K &&
          owl_conv_vision_parse("q6_K") == OWL_CONV_VISION_Q6_K && owl_conv_vision_parse("q4_k") == -1 &&
          owl_conv_vision_parse("") == -1 && owl_conv_vision_parse("default") == -1);
    if (owl_conv_plan_build(&cfg, OWL_CONV_TYPE_Q4_K_M, 3200, &d, NULL))
        return;
    CHECK(owl_conv_plan_build_vision(&cfg, OWL_CONV_TYPE_Q4_K_M, OWL_CONV_VISION_Q8_0, 3200, &q8, NULL) == OWL_OK);
    CHECK(owl_conv_plan_build_vision(&cfg, OWL_CONV_TYPE_Q4_K_M, OWL_CONV_VISION_Q6_K, 3200, &q6, NULL) == OWL_OK);
    CHECK_EQ_INT(q8.n, d.n);
    CHECK_EQ_INT(q6.n, d.n);
    int n_q6 = 0;
    uint64_t vb8 = 0, vb6 = 0;
    for (size_t i = 0; i < d.n && i < q8.n && i < q6.n; i++) {
        const owl_conv_tensor *a = &d.t[i], *b = &q8.t[i], *c = &q6.t[i];
        /* q8_0 is the q4_k_m default: the same plan */
        CHECK_MSG(a->type == b->type && a->fallback == b->fallback && a->bytes == b->bytes, "%s", a->name);
        if (a->part == OWL_PART_VISION && a->kind == OWL_KIND_MATMUL) {
            if (!strcmp(a->name, "v.patch_embd.weight")) /* rows of 3*14*14 = 588: neither block fits */
                CHECK(c->type == OWL_TYPE_F16 && c->want == OWL_TYPE_Q6_K && c->fallback);
            else {
                CHECK_MSG(c->type == OWL_TYPE_Q6_K && !c->fallback && a->type == OWL_TYPE_Q8_0, "%s", a->name);
                n_q6 += c->type == OWL_TYPE_Q6_K;
                vb8 += a->bytes;
                vb6 += c->bytes;
            }
        } else {
            CHECK_MSG(a->type == c->type && a->fallback == c->fallback, "%s: %d vs %d", a->name, (int)a->type,
                      (int)c->type);
        }
    }
    CHECK_EQ_INT(n_q6, 24 * 4); /* qkv, out, up, down in each of the 24 blocks */
    /* 6.5625 against 8.5 bits per weight: 210/256 vs 34/32 bytes */
    CHECK(vb6 * 8704 == vb8 * 6720 && vb6 > 0);
    CHECK(q6.stage_bytes[0] < d.stage_bytes[0]);
    owl_conv_plan_free(&d);
    owl_conv_plan_free(&q8);
    owl_conv_plan_free(&q6);
    /* other types: the vision tower follows --vision-type, the rest --type */
    CHECK(owl_conv_plan_build_vision(&cfg, OWL_CONV_TYPE_F16, OWL_CONV_VISION_Q6_K, 3200, &q6, NULL) == OWL_OK);
    const owl_conv_tensor *t = find_planned(&q6, "v.blk.0.ffn_up.weight");
    CHECK(t && t->type == OWL_TYPE_Q6_K);
    t = find_planned(&q6, "a.blk.0.ffn_up.weight");
    CHECK(t && t->type == OWL_TYPE_F16);
    t = find_planned(&q6, "v.blk.0.ln1.weight");
    CHECK(t && t->type == OWL_TYPE_F32);
    owl_conv_plan_free(&q6);
    /* oracle-size vision rows (64, 192) are not multiples of 256: Q8_0, reported as a fallback */
    owl_conv_cfg small = cfg;
    small.v_hidden = 64;
    small.v_ffn = 192;
    small.v_heads = 4;
    small.a_enc_hidden = 64;
    CHECK(owl_conv_plan_build_vision(&small, OWL_CONV_TYPE_Q4_K_M, OWL_CONV_VISION_Q6_K, 3200, &q6, NULL) == OWL_OK);
    t = find_planned(&q6, "v.blk.1.attn_qkv.weight");
    CHECK(t && t->type == OWL_TYPE_Q8_0 && t->want == OWL_TYPE_Q6_K && t->fallback);
    t = find_planned(&q6, "v.blk.1.ffn_down.weight");
    CHECK(t && t->type == OWL_TYPE_Q8_0 && t->fallback);
    owl_conv_plan_free(&q6);
}

TEST(plan_stages_fit_the_budget_and_are_contiguous)
{
    owl_conv_cfg cfg;
    if (!load_cfg_7b(&cfg))
        return;
    uint32_t budgets[] = {3200, 2000, 8000, 40000};
    for (size_t b = 0; b < 4; b++) {
        owl_conv_plan p;
        owl_err e = {0};
        CHECK_MSG(owl_conv_plan_build(&cfg, OWL_CONV_TYPE_Q4_K_M, budgets[b], &p, &e) == OWL_OK, "%s", e.msg);
        CHECK(p.n_stages >= 1 && p.stage_layer[0] == 0 && p.stage_layer[p.n_stages] == 32);
        if (budgets[b] <= 3200)
            CHECK(p.n_stages >= 2);
        if (budgets[b] == 40000) /* the budget allows one stage; the 2000 MiB weight cap does not */
            CHECK_EQ_INT(p.n_stages, 3);
        size_t prev_end = 0;
        for (uint32_t s = 0; s < p.n_stages; s++) {
            CHECK_MSG(p.stage_bytes[s] <= (uint64_t)budgets[b] << 20, "budget %u stage %u: %llu", budgets[b], s,
                      (unsigned long long)p.stage_bytes[s]);
            CHECK(s == 0 || p.stage_layer[s] > p.stage_layer[s - 1]);
            size_t a, en;
            owl_conv_stage_range(&p, s, &a, &en);
            CHECK(a == prev_end && en > a);
            prev_end = en;
        }
        CHECK_EQ_INT(prev_end, p.n);
        size_t a, en;
        owl_conv_stage_range(&p, 0, &a, &en);
        CHECK(find_planned(&p, "token_embd.weight") < p.t + en && find_planned(&p, "a.vit_eos") < p.t + en);
        owl_conv_stage_range(&p, p.n_stages - 1, &a, &en);
        CHECK(find_planned(&p, "output.weight") >= p.t + a);
        owl_conv_plan_free(&p);
    }
    owl_conv_plan p;
    owl_err e = {0};
    CHECK_EQ_INT(owl_conv_plan_build(&cfg, OWL_CONV_TYPE_F16, 300, &p, &e), OWL_E_LIMIT);
    CHECK(strstr(e.msg, "budget") != NULL);
}

/* One stage's weights are one wasm32 malloc, which fails at 2 GiB: every type
 * of the 7B (q4_0's 2 x 2.2 GiB and f16's 6 x 2.6 GiB plans once did) must be
 * planned into stages of at most OWL_CONV_MAX_STAGE_WEIGHT_MIB of tensor bytes. */
TEST(plan_every_stage_is_one_allocation_under_2_gib)
{
    owl_conv_cfg cfg;
    if (!load_cfg_7b(&cfg))
        return;
    owl_conv_ftype types[] = {OWL_CONV_TYPE_F16, OWL_CONV_TYPE_Q8_0, OWL_CONV_TYPE_Q4_0, OWL_CONV_TYPE_Q4_K,
                              OWL_CONV_TYPE_Q4_K_M};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        owl_conv_plan p;
        owl_err e = {0};
        CHECK_MSG(owl_conv_plan_build(&cfg, types[k], OWL_CONV_DEFAULT_BUDGET_MIB, &p, &e) == OWL_OK, "%s", e.msg);
        uint64_t total = 0;
        for (uint32_t s = 0; s < p.n_stages; s++) {
            size_t a, en;
            owl_conv_stage_range(&p, s, &a, &en);
            uint64_t w = 0;
            for (size_t i = a; i < en; i++)
                w += p.t[i].bytes;
            total += w;
            CHECK_MSG(w <= (uint64_t)OWL_CONV_MAX_STAGE_WEIGHT_MIB << 20, "type %d stage %u: %llu MiB", (int)types[k], s,
                      (unsigned long long)(w >> 20));
        }
        CHECK(p.n_stages >= (uint32_t)(total / ((uint64_t)OWL_CONV_MAX_STAGE_WEIGHT_MIB << 20)) + 1);
        owl_conv_plan_free(&p);
    }
}

TEST(convert_oracle_two_stages_written_in_stage_order)
{
    owl_conv_cfg cfg;
    owl_err e = {0};
    CHECK(owl_conv_cfg_load(ORACLE, &cfg, &e) == OWL_OK);
    uint32_t budget = 0;
    for (uint32_t b = 8; b < 200 && !budget; b++) {
        owl_conv_plan p;
        if (!owl_conv_plan_build(&cfg, OWL_CONV_TYPE_F32, b, &p, NULL)) {
            if (p.n_stages == 2)
                budget = b;
            owl_conv_plan_free(&p);
        }
    }
    CHECK(budget > 0);
    char d[256], path[300];
    scratch(d, sizeof d);
    snprintf(path, sizeof path, "%s/s.gguf", d);
    CHECK_MSG(convert(ORACLE, path, OWL_CONV_TYPE_F32, NULL, budget, &e) == OWL_OK, "%s", e.msg);
    uint8_t *buf;
    owl_gguf *g = parse_out(path, &buf);
    const void *arr;
    uint64_t n = 0;
    if (g) {
        CHECK(owl_gguf_get_arr(g, "owlet.stages", OWL_GGUF_UINT32, &arr, &n, NULL) == OWL_OK && n == 2);
        uint32_t st[2] = {9, 9};
        if (n == 2)
            memcpy(st, arr, 8);
        CHECK(st[0] == 0 && st[1] == 1);
        for (uint64_t i = 1; i < g->n_tensors; i++)
            CHECK(g->tensors[i].offset > g->tensors[i - 1].offset);
        owl_gguf_free(g);
    }
    free(buf);
    cleanup(d);
}

/* ---------------------------------------------------------------- chunks */

TEST(split_oracle_chunks_and_manifest)
{
    char d[256], g[300], cd[300], p[400];
    scratch(d, sizeof d);
    snprintf(g, sizeof g, "%s/oracle-a.gguf", d);
    snprintf(cd, sizeof cd, "%s/chunks", d);
    owl_err e = {0};
    CHECK_MSG(convert(ORACLE, g, OWL_CONV_TYPE_F32, NULL, 3200, &e) == OWL_OK, "%s", e.msg);
    CHECK_MSG(owl_split(g, cd, 1, &e) == OWL_OK, "%s", e.msg);
    size_t n, mn;
    uint8_t *file = load(g, &n);
    snprintf(p, sizeof p, "%s/manifest.json", cd);
    char *m = (char *)load(p, &mn);
    owl_json *j = NULL;
    CHECK(m && owl_json_parse(m, mn, &j, &e) == OWL_OK);
    const owl_json *chunks = owl_json_get(j, "chunks"), *fj = owl_json_get(j, "file"), *stages = owl_json_get(j, "stages");
    int64_t v = 0;
    const char *s = NULL;
    CHECK(owl_json_get_i64(j, "version", &v, NULL) == OWL_OK && v == 1);
    CHECK(owl_json_get_i64(j, "chunk_size", &v, NULL) == OWL_OK && v == 1 << 20);
    CHECK(owl_json_get_i64(fj, "size", &v, NULL) == OWL_OK && (size_t)v == n);
    CHECK(owl_json_get_str(owl_json_get(j, "model"), "quant", &s, NULL) == OWL_OK && !strcmp(s, "f32"));
    CHECK(owl_json_get_i64(owl_json_get(j, "model"), "parameters", &v, NULL) == OWL_OK && v == 878720);
    uint8_t dg[32];
    char hex[65];
    if (file) {
        owl_sha256_digest(file, n, dg);
        owl_sha256_hex(dg, hex);
        CHECK(owl_json_get_str(fj, "sha256", &s, NULL) == OWL_OK && !strcmp(s, hex));
    }
    CHECK(chunks && chunks->type == OWL_JSON_ARRAY && chunks->len == (n + (1 << 20) - 1) >> 20);
    size_t off = 0;
    for (size_t i = 0; file && chunks && i < chunks->len; i++) {
        const owl_json *c = &chunks->items[i];
        int64_t co = -1, cs = -1;
        const char *url = NULL, *sh = NULL;
        owl_json_get_i64(c, "offset", &co, NULL);
        owl_json_get_i64(c, "size", &cs, NULL);
        owl_json_get_str(c, "url", &url, NULL);
        owl_json_get_str(c, "sha256", &sh, NULL);
        CHECK((size_t)co == off && url && sh);
        if (!url || !sh || (size_t)co != off)
            break;
        snprintf(p, sizeof p, "%s/%s", cd, url);
        size_t cn;
        uint8_t *chunk = load(p, &cn);
        CHECK(chunk && cn == (size_t)cs && off + cn <= n && !memcmp(chunk, file + off, cn));
        owl_sha256_digest(chunk, cn, dg);
        owl_sha256_hex(dg, hex);
        CHECK(!strcmp(hex, sh));
        free(chunk);
        off += (size_t)cs;
    }
    CHECK_EQ_INT(off, n);
    CHECK(stages && stages->type == OWL_JSON_ARRAY && stages->len == 1);
    if (stages && stages->len == 1) {
        CHECK(owl_json_get_i64(&stages->items[0], "layer_end", &v, NULL) == OWL_OK && v == 2);
        CHECK(owl_json_get_i64(&stages->items[0], "offset", &v, NULL) == OWL_OK && v > 0 && (size_t)v < n);
    }
    owl_json_free(j);
    free(m);
    free(file);
    CHECK(owl_split(ORACLE "/config.json", cd, 1, &e) != OWL_OK); /* not a GGUF */
    cleanup(d);
}

/* Needs `/usr/bin/python3 tests/convert/make_bf16_checkpoint.py build/convert-fixtures/bf16` first
 * (make test runs it); bf16 torch shards with views vs contiguous safetensors shards. */
TEST(convert_bf16_sharded_torch_equals_safetensors)
{
    const char *base = "build/convert-fixtures/bf16";
    if (!exists(base)) {
        CHECK_MSG(0, "%s missing: run tests/convert/make_bf16_checkpoint.py (make test does)", base);
        return;
    }
    char d[256], a[300], b[300], o[300];
    scratch(d, sizeof d);
    snprintf(a, sizeof a, "%s/pt.gguf", d);
    snprintf(b, sizeof b, "%s/st.gguf", d);
    snprintf(o, sizeof o, "%s/oracle.gguf", d);
    owl_err e = {0};
    CHECK_MSG(convert("build/convert-fixtures/bf16/pt", a, OWL_CONV_TYPE_F32, NULL, 3200, &e) == OWL_OK, "%s", e.msg);
    CHECK_MSG(convert("build/convert-fixtures/bf16/st", b, OWL_CONV_TYPE_F32, NULL, 3200, &e) == OWL_OK, "%s", e.msg);
    CHECK(convert(ORACLE, o, OWL_CONV_TYPE_F32, NULL, 3200, &e) == OWL_OK);
    size_t na, nb, no;
    uint8_t *x = load(a, &na), *y = load(b, &nb), *z = load(o, &no);
    CHECK(x && y && na == nb && !memcmp(x, y, na));
    CHECK(z && no == na);
    if (x && z && no == na) { /* values: the f32 oracle rounded to bf16 (rel. error <= 2^-8) */
        owl_gguf gx, gz;
        CHECK(owl_gguf_parse(x, na, 0, 0, &gx, &e) == OWL_OK && owl_gguf_parse(z, no, 0, 0, &gz, &e) == OWL_OK);
        double worst = 0;
        for (uint64_t t = 0; t < gx.n_tensors; t++) {
            const float *p = gx.tensors[t].data, *q = gz.tensors[t].data;
            for (size_t i = 0; i < gx.tensors[t].size / 4; i++) {
                double r = fabs((double)p[i] - q[i]) / (fabs(q[i]) + 1e-30);
                if (q[i] != 0 && r > worst)
                    worst = r;
            }
        }
        CHECK_MSG(worst <= 1.0 / 256, "worst relative error %g", worst);
        owl_gguf_free(&gx);
        owl_gguf_free(&gz);
    }
    free(x);
    free(y);
    free(z);
    cleanup(d);
}

/* Quantized files hold the same tensors as the f32 file: dequantized rows match within
 * each type's error (relative RMS over the tensor). */
TEST(convert_quantized_types_dequantize_close_to_f32)
{
    char d[256], a[300], b[300];
    scratch(d, sizeof d);
    snprintf(a, sizeof a, "%s/f32.gguf", d);
    owl_err e = {0};
    CHECK(convert(ORACLE, a, OWL_CONV_TYPE_F32, NULL, 3200, &e) == OWL_OK);
    uint8_t *fa;
    owl_gguf *g = parse_out(a, &fa);
    if (!g) {
        free(fa);
        return;
    }
    owl_gguf ref = *g;
    owl_conv_ftype types[] = {OWL_CONV_TYPE_F16, OWL_CONV_TYPE_Q8_0, OWL_CONV_TYPE_Q4_0, OWL_CONV_TYPE_Q4_K,
                              OWL_CONV_TYPE_Q6_K};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        snprintf(b, sizeof b, "%s/q%zu.gguf", d, k);
        CHECK_MSG(convert(ORACLE, b, types[k], NULL, 3200, &e) == OWL_OK, "%s", e.msg);
        uint8_t *fb;
        owl_gguf *q = parse_out(b, &fb);
        int seen[OWL_TYPE_COUNT] = {0};
        for (uint64_t t = 0; q && t < q->n_tensors; t++) {
            const owl_gguf_tensor *x = &q->tensors[t], *r = &ref.tensors[t];
            CHECK(x->name.len == r->name.len && !memcmp(x->name.data, r->name.data, r->name.len));
            int64_t row = x->ne[0], rows = x->size / owl_row_size(x->type, row);
            float *y = malloc((size_t)row * sizeof *y);
            double err2 = 0, ref2 = 0;
            for (int64_t i = 0; i < rows; i++) {
                owl_dequantize_row_ref(x->type, (const uint8_t *)x->data + (size_t)i * owl_row_size(x->type, row), y, row);
                const float *rr = (const float *)r->data + i * row;
                for (int64_t j = 0; j < row; j++) {
                    err2 += (double)(y[j] - rr[j]) * (y[j] - rr[j]);
                    ref2 += (double)rr[j] * rr[j];
                }
            }
            free(y);
            double rel = sqrt(err2 / (ref2 + 1e-30)), tol = x->type == OWL_TYPE_F32 ? 0 : x->type == OWL_TYPE_F16 ? 1e-3
                         : x->type == OWL_TYPE_Q8_0 ? 0.01 : x->type == OWL_TYPE_Q6_K ? 0.03 : 0.12;
            CHECK_MSG(rel <= tol, "%.*s as %s: relative RMS error %g > %g", (int)x->name.len, x->name.data,
                      owl_type_get((int)x->type)->name, rel, tol);
            seen[x->type] = 1;
        }
        if (types[k] == OWL_CONV_TYPE_Q4_K)
            CHECK(seen[OWL_TYPE_Q4_K] && seen[OWL_TYPE_Q8_0]); /* ffn_down rows of 256, the rest fall back */
        if (types[k] == OWL_CONV_TYPE_Q6_K)
            CHECK(seen[OWL_TYPE_Q6_K]);
        if (types[k] == OWL_CONV_TYPE_Q4_0)
            CHECK(seen[OWL_TYPE_Q4_0] && seen[OWL_TYPE_F16]); /* patch_embd rows of 588 */
        if (q)
            owl_gguf_free(q);
        free(fb);
    }
    owl_gguf_free(&ref);
    free(fa);
    cleanup(d);
}

/* Oracle A's vision rows (64, 192, 588) fit no q6_K block: --vision-type q6_k
 * falls back to exactly the default file. */
TEST(convert_oracle_vision_type_q6_k_falls_back_to_the_default_bytes)
{
    char d[256], a[300], b[300];
    scratch(d, sizeof d);
    snprintf(a, sizeof a, "%s/default.gguf", d);
    snprintf(b, sizeof b, "%s/q6.gguf", d);
    owl_err e = {0};
    owl_conv_opts o = {ORACLE, a, NULL, NULL, OWL_CONV_TYPE_Q4_K_M, 3200, 0, 1, OWL_CONV_VISION_DEFAULT};
    CHECK_MSG(owl_convert(&o, &e) == OWL_OK, "%s", e.msg);
    o.out_path = b;
    o.vision = OWL_CONV_VISION_Q6_K;
    CHECK_MSG(owl_convert(&o, &e) == OWL_OK, "%s", e.msg);
    size_t na = 0, nb = 0;
    uint8_t *fa = load(a, &na), *fb = load(b, &nb);
    CHECK(fa && fb && na == nb && na > 0 && !memcmp(fa, fb, na));
    free(fa);
    free(fb);
    cleanup(d);
}

static char *slurp(FILE *f)
{
    long n = ftell(f);
    char *s = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    rewind(f);
    if (n > 0 && fread(s, 1, (size_t)n, f) != (size_t)n)
        s[0] = 0;
    return s;
}

TEST(inspect_reports_file_and_plan)
{
    char d[256], g[300];
    scratch(d, sizeof d);
    snprintf(g, sizeof g, "%s/a.gguf", d);
    owl_err e = {0};
    CHECK(convert(ORACLE, g, OWL_CONV_TYPE_Q8_0, NULL, 3200, &e) == OWL_OK);
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK_EQ_INT(owl_inspect_file(f, g), 0);
    char *s = slurp(f);
    CHECK(strstr(s, "108 tensors") && strstr(s, "blk.1.attn_k_img.weight") && strstr(s, "q8_0") &&
          strstr(s, "\"mplug-owl2\"") && strstr(s, "stage 0: layers [0, 2)") && strstr(s, "[1000 x str]"));
    free(s);
    fclose(f);
    f = tmpfile();
    CHECK_EQ_INT(owl_inspect_plan(f, CFG_7B, OWL_CONV_TYPE_Q4_K_M, OWL_CONV_VISION_DEFAULT, 3200), 0);
    s = slurp(f);
    CHECK(strstr(s, "303966208 params") && strstr(s, "7812419584 params") && strstr(s, "stage 2: layers"));
    free(s);
    fclose(f);
    f = tmpfile();
    CHECK_EQ_INT(owl_inspect_plan(f, CFG_7B, OWL_CONV_TYPE_Q4_K_M, OWL_CONV_VISION_Q6_K, 3200), 0);
    s = slurp(f);
    CHECK(strstr(s, "as q4_k_m, vision q6_k:") && strstr(s, "type q6_K"));
    free(s);
    fclose(f);
    f = tmpfile();
    CHECK_EQ_INT(owl_inspect_file(f, ORACLE "/config.json"), 1); /* not a GGUF: error on stderr */
    fclose(f);
    char *argv[] = {"inspect", NULL};
    CHECK_EQ_INT(owl_inspect_main(1, argv), 2);
    cleanup(d);
}
