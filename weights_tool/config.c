/* config.c - model hyperparameters from the Hugging Face JSON configs, quant
 * type names, and the abstractor's fixed sin-cos tables (spec §2). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"

static owl_status load_json(const char *dir, const char *file, owl_json **j, owl_err *err)
{
    char path[4096];
    *j = NULL;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return owl_err_set(err, OWL_E_LIMIT, "%s: path too long", dir);
    char *buf;
    size_t n;
    owl_status st = owl_conv_read_file(path, &buf, &n, err);
    if (st)
        return st;
    st = owl_json_parse(buf, n, j, err);
    free(buf);
    if (st) {
        char m[OWL_ERR_MSG_MAX];
        snprintf(m, sizeof m, "%s", err ? err->msg : "");
        return owl_err_set(err, st, "%s: %s", path, m);
    }
    return OWL_OK;
}

/* Required positive integer <= max. */
static owl_status get_dim(const owl_json *o, const char *where, const char *key, int64_t max, int64_t *v,
                          owl_err *err)
{
    owl_err e2;
    owl_status st = owl_json_get_i64(o, key, v, &e2);
    if (st)
        return owl_err_set(err, st, "config.json: %s%s: %s", where, key, e2.msg);
    if (*v <= 0 || *v > max)
        return owl_err_set(err, OWL_E_FORMAT, "config.json: %s%s = %lld outside 1..%lld", where, key,
                           (long long)*v, (long long)max);
    return OWL_OK;
}

static owl_status get_eps(const owl_json *o, const char *where, const char *key, double def, double *v,
                          owl_err *err)
{
    owl_err e2;
    owl_status st = owl_json_get_f64(o, key, v, &e2);
    if (st == OWL_E_NOTFOUND) {
        *v = def;
        return OWL_OK;
    }
    if (st)
        return owl_err_set(err, st, "config.json: %s%s: %s", where, key, e2.msg);
    if (!(*v > 0 && *v < 1e6))
        return owl_err_set(err, OWL_E_FORMAT, "config.json: %s%s = %g out of range", where, key, *v);
    return OWL_OK;
}

#define DIM(obj, where, key, max, field)                                 \
    do {                                                                 \
        if ((st = get_dim(obj, where, key, max, &cfg->field, err)))      \
            return st;                                                   \
    } while (0)

#define BIG ((int64_t)1 << 20)

/* The language model's fields (top level of config.json). */
static owl_status read_llm(const owl_json *c, owl_conv_cfg *cfg, owl_err *err)
{
    owl_status st;
    DIM(c, "", "vocab_size", BIG, vocab);
    DIM(c, "", "hidden_size", BIG, hidden);
    DIM(c, "", "intermediate_size", BIG, ffn);
    DIM(c, "", "num_hidden_layers", OWL_CONV_MAX_LAYERS, layers);
    DIM(c, "", "num_attention_heads", 4096, heads);
    DIM(c, "", "max_position_embeddings", BIG, ctx);
    if (owl_json_get(c, "num_key_value_heads") && owl_json_get(c, "num_key_value_heads")->type != OWL_JSON_NULL)
        DIM(c, "", "num_key_value_heads", 4096, kv_heads);
    else
        cfg->kv_heads = cfg->heads;
    if ((st = get_eps(c, "", "rope_theta", 10000.0, &cfg->rope_theta, err)) ||
        (st = get_eps(c, "", "rms_norm_eps", 1e-6, &cfg->rms_eps, err)))
        return st;
    const owl_json *rs = owl_json_get(c, "rope_scaling");
    if (rs && rs->type != OWL_JSON_NULL)
        return owl_err_set(err, OWL_E_UNSUPPORTED, "config.json: rope_scaling is set; not supported");
    int64_t v;
    cfg->bos = owl_json_get_i64(c, "bos_token_id", &v, NULL) ? 1 : v;
    cfg->eos = owl_json_get_i64(c, "eos_token_id", &v, NULL) ? 2 : v;
    if (cfg->bos < 0 || cfg->bos >= cfg->vocab || cfg->eos < 0 || cfg->eos >= cfg->vocab)
        return owl_err_set(err, OWL_E_FORMAT, "config.json: bos_token_id %lld / eos_token_id %lld outside the "
                           "vocabulary of %lld", (long long)cfg->bos, (long long)cfg->eos, (long long)cfg->vocab);
    const char *asp = NULL;
    snprintf(cfg->aspect, sizeof cfg->aspect, "stretch");
    if (!owl_json_get_str(c, "image_aspect_ratio", &asp, NULL) && !strcmp(asp, "pad"))
        snprintf(cfg->aspect, sizeof cfg->aspect, "pad");
    return OWL_OK;
}

/* visual_config.visual_model and visual_config.visual_abstractor. */
static owl_status read_visual(const owl_json *c, owl_conv_cfg *cfg, owl_err *err)
{
    owl_status st;
    const owl_json *vc = owl_json_get(c, "visual_config");
    const owl_json *vm = owl_json_get(vc, "visual_model"), *va = owl_json_get(vc, "visual_abstractor");
    if (!vm || vm->type != OWL_JSON_OBJECT || !va || va->type != OWL_JSON_OBJECT)
        return owl_err_set(err, OWL_E_FORMAT,
                           "config.json: visual_config.visual_model / visual_abstractor objects missing");
    DIM(vm, "visual_model.", "image_size", 1 << 14, v_image);
    DIM(vm, "visual_model.", "patch_size", 1 << 10, v_patch);
    DIM(vm, "visual_model.", "num_channels", 16, v_channels);
    DIM(vm, "visual_model.", "hidden_size", BIG, v_hidden);
    DIM(vm, "visual_model.", "num_hidden_layers", OWL_CONV_MAX_LAYERS, v_layers);
    DIM(vm, "visual_model.", "num_attention_heads", 4096, v_heads);
    DIM(vm, "visual_model.", "intermediate_size", BIG, v_ffn);
    if ((st = get_eps(vm, "visual_model.", "layer_norm_eps", 1e-6, &cfg->v_eps, err)))
        return st;
    DIM(va, "visual_abstractor.", "num_learnable_queries", 1 << 16, a_queries);
    DIM(va, "visual_abstractor.", "num_hidden_layers", OWL_CONV_MAX_LAYERS, a_layers);
    DIM(va, "visual_abstractor.", "hidden_size", BIG, a_hidden);
    DIM(va, "visual_abstractor.", "encoder_hidden_size", BIG, a_enc_hidden);
    DIM(va, "visual_abstractor.", "num_attention_heads", 4096, a_heads);
    DIM(va, "visual_abstractor.", "intermediate_size", BIG, a_ffn);
    DIM(va, "visual_abstractor.", "grid_size", 1 << 10, a_grid);
    return get_eps(va, "visual_abstractor.", "layer_norm_eps", 1e-6, &cfg->a_eps, err);
}

#undef BIG

/* Shapes the model code relies on: heads divide widths, the grid matches. */
static owl_status check_consistency(const owl_conv_cfg *cfg, owl_err *err)
{
    if (cfg->hidden % cfg->heads || (cfg->hidden / cfg->heads) % 2 || cfg->heads % cfg->kv_heads)
        return owl_err_set(err, OWL_E_FORMAT, "config.json: hidden_size %lld, heads %lld, kv heads %lld: head "
                           "size must be even and kv heads divide heads", (long long)cfg->hidden,
                           (long long)cfg->heads, (long long)cfg->kv_heads);
    if (cfg->v_hidden % cfg->v_heads || cfg->a_hidden % cfg->a_heads)
        return owl_err_set(err, OWL_E_FORMAT, "config.json: vision %lld / %lld heads or abstractor %lld / %lld "
                           "heads do not divide", (long long)cfg->v_hidden, (long long)cfg->v_heads,
                           (long long)cfg->a_hidden, (long long)cfg->a_heads);
    if (cfg->v_image % cfg->v_patch || cfg->v_image / cfg->v_patch != cfg->a_grid)
        return owl_err_set(err, OWL_E_FORMAT, "config.json: image_size %lld / patch_size %lld must equal the "
                           "abstractor grid_size %lld", (long long)cfg->v_image, (long long)cfg->v_patch,
                           (long long)cfg->a_grid);
    if (cfg->a_enc_hidden != cfg->v_hidden || cfg->a_hidden != cfg->v_hidden)
        return owl_err_set(err, OWL_E_FORMAT, "config.json: abstractor encoder_hidden_size %lld and hidden_size "
                           "%lld must equal the vision hidden_size %lld (keys cover queries and image tokens)",
                           (long long)cfg->a_enc_hidden, (long long)cfg->a_hidden, (long long)cfg->v_hidden);
    if (cfg->a_hidden % 4)
        return owl_err_set(err, OWL_E_FORMAT, "config.json: abstractor hidden_size %lld must be a multiple of 4 "
                           "(2-D sin-cos table)", (long long)cfg->a_hidden);
    return OWL_OK;
}

owl_status owl_conv_cfg_from_json(const owl_json *c, owl_conv_cfg *cfg, owl_err *err)
{
    owl_status st;
    memset(cfg, 0, sizeof *cfg);
    if (!c || c->type != OWL_JSON_OBJECT)
        return owl_err_set(err, OWL_E_FORMAT, "config.json: not an object");
    snprintf(cfg->name, sizeof cfg->name, "mplug-owl2");
    if ((st = read_llm(c, cfg, err)) || (st = read_visual(c, cfg, err)) ||
        (st = check_consistency(cfg, err)))
        return st;

    /* CLIP defaults; overridden by preprocessor_config.json */
    const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memcpy(cfg->mean, mean, sizeof mean);
    memcpy(cfg->std, std, sizeof std);
    cfg->temperature = 0.2f; /* the reference CLI's defaults (spec §5) */
    cfg->top_p = 0.6f;
    cfg->top_k = 50;
    cfg->max_new_tokens = 512;
    return OWL_OK;
}

static owl_status get_triple(const owl_json *o, const char *key, float out[3], owl_err *err)
{
    const owl_json *a = owl_json_get(o, key);
    if (!a)
        return OWL_OK;
    if (a->type != OWL_JSON_ARRAY || a->len != 3)
        return owl_err_set(err, OWL_E_FORMAT, "preprocessor_config.json: %s is not an array of 3 numbers", key);
    for (int i = 0; i < 3; i++) {
        if (a->items[i].type != OWL_JSON_NUMBER || !(fabs(a->items[i].number) < 1e3))
            return owl_err_set(err, OWL_E_FORMAT, "preprocessor_config.json: %s[%d] is not a number", key, i);
        out[i] = (float)a->items[i].number;
    }
    return OWL_OK;
}

owl_status owl_conv_cfg_load(const char *dir, owl_conv_cfg *cfg, owl_err *err)
{
    owl_json *j;
    owl_status st = load_json(dir, "config.json", &j, err);
    if (st)
        return st;
    st = owl_conv_cfg_from_json(j, cfg, err);
    owl_json_free(j);
    if (st)
        return st;
    st = load_json(dir, "preprocessor_config.json", &j, err);
    if (st && st != OWL_E_NOTFOUND)
        return st;
    if (!st) {
        st = get_triple(j, "image_mean", cfg->mean, err);
        if (!st)
            st = get_triple(j, "image_std", cfg->std, err);
        for (int i = 0; i < 3 && !st; i++)
            if (!(cfg->std[i] > 0))
                st = owl_err_set(err, OWL_E_FORMAT, "preprocessor_config.json: image_std[%d] = %g", i,
                                 (double)cfg->std[i]);
        owl_json_free(j);
        if (st)
            return st;
    }
    st = load_json(dir, "generation_config.json", &j, err);
    if (st && st != OWL_E_NOTFOUND)
        return st;
    if (!st) {
        double d;
        if (!owl_json_get_f64(j, "top_p", &d, NULL) && d > 0 && d <= 1)
            cfg->top_p = (float)d;
        owl_json_free(j);
    }
    owl_err_clear(err);
    return OWL_OK;
}

int owl_conv_ftype_parse(const char *s)
{
    static const char *names[] = {"f32", "f16", "q8_0", "q4_0", "q4_k", "q6_k", "q4_k_m"};
    for (int i = 0; i < 7; i++)
        if (!strcmp(s, names[i]))
            return i;
    if (!strcmp(s, "q4_K") )
        return OWL_CONV_TYPE_Q4_K;
    if (!strcmp(s, "q6_K"))
        return OWL_CONV_TYPE_Q6_K;
    if (!strcmp(s, "q4_K_M"))
        return OWL_CONV_TYPE_Q4_K_M;
    return -1;
}

const char *owl_conv_ftype_name(owl_conv_ftype t)
{
    static const char *names[] = {"f32", "f16", "q8_0", "q4_0", "q4_k", "q6_k", "q4_k_m"};
    return (unsigned)t < 7 ? names[t] : "?";
}

int owl_conv_vision_parse(const char *s)
{
    if (!strcmp(s, "q8_0"))
        return OWL_CONV_VISION_Q8_0;
    if (!strcmp(s, "q6_k") || !strcmp(s, "q6_K"))
        return OWL_CONV_VISION_Q6_K;
    return -1;
}

const char *owl_conv_vision_name(owl_conv_vision v)
{
    static const char *names[] = {"default", "q8_0", "q6_k"};
    return (unsigned)v < 3 ? names[v] : "?";
}

/* q_pos_embed row p = [sin(p*w_0..D/2-1), cos(p*w_0..D/2-1)], w_i = 10000^(-i/(D/2)).
 * Computed in double and rounded once (the reference computes in float64 numpy
 * then casts to float32). */
void owl_conv_q_pos(int64_t queries, int64_t hidden, float *out)
{
    int64_t half = hidden / 2;
    for (int64_t p = 0; p < queries; p++)
        for (int64_t i = 0; i < half; i++) {
            double w = 1.0 / pow(10000.0, (double)i / (double)half), a = (double)p * w;
            out[p * hidden + i] = (float)sin(a);
            out[p * hidden + half + i] = (float)cos(a);
        }
}

/* k_pos_embed: row 0 zeros (CLS); row 1 + g*i + j: [sin(j w), cos(j w), sin(i w), cos(i w)],
 * w_k = 10000^(-k/(D/4)), k < D/4 (MAE: the first half encodes the column). */
void owl_conv_k_pos(int64_t grid, int64_t hidden, float *out)
{
    int64_t q = hidden / 4;
    memset(out, 0, (size_t)hidden * sizeof *out);
    for (int64_t i = 0; i < grid; i++)
        for (int64_t j = 0; j < grid; j++) {
            float *r = out + (1 + grid * i + j) * hidden;
            for (int64_t k = 0; k < q; k++) {
                double w = 1.0 / pow(10000.0, (double)k / (double)q);
                r[k] = (float)sin((double)j * w);
                r[q + k] = (float)cos((double)j * w);
                r[2 * q + k] = (float)sin((double)i * w);
                r[3 * q + k] = (float)cos((double)i * w);
            }
        }
}
