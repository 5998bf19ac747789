/* make_gguf.c - random-weight GGUFs for the end-to-end benchmarks
 * (bench/run.sh, docs/BENCHMARKS.md) and the llama.cpp parity test
 * (tests/browser/wllama_parity.test.mjs).
 *
 *   make_gguf llama OUT.gguf TYPE DIM LAYERS HEADS KV_HEADS FFN TOKENIZER.model [SEED]
 *       a plain LLaMA file that llama.cpp loads: general.architecture "llama",
 *       llama.* keys, tokenizer.ggml.* from the SentencePiece model (vocab =
 *       its pieces), every matrix (token_embd and output too) in TYPE
 *       (q4_0, q8_0, q4_k, q6_k, f16, f32), norms f32 = 1.
 *   make_gguf owl2 OUT.gguf TOKENIZER.model [SEED]
 *       mPLUG-Owl2 with the FULL vision tower (ViT-L/14 at 448, 24 layers) and
 *       abstractor (6 layers, 64 queries) and a one-layer 4096-wide LLM, in the
 *       shipped q4_k_m mix (vision + abstractor Q8_0, v.patch_embd F16, LLM
 *       Q4_K, output Q6_K; docs/CONVERTING.md).
 *
 * Weights: N(0, 0.02) from a fixed-seed generator (xorshift64*, Box-Muller),
 * quantized with owl_quantize_row_ref; biases N(0, 0.02); norm weights 1, norm
 * biases 0. Not a product tool: built by bench/run.sh with
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -DOWL_USE_SIMDE -msse4.1 -o build/bench/make_gguf \
 *       bench/tools/make_gguf.c src/core/gguf.c src/core/gguf_write.c src/core/status.c src/text/spm_model.c \
 *       src/kernels/quant.c src/kernels/quant_simd128.c -lm
 * (it lives in bench/tools/, not bench/, because the .c files directly in bench/ are linked into the
 * kernel benchmark). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/core/gguf.h"
#include "../../src/kernels/types.h"
#include "../../src/text/spm_model.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static double rng_u01(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return ((rng_state * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

static float rng_normal(void)
{
    double u = rng_u01(), v = rng_u01();
    if (u < 1e-300)
        u = 1e-300;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* How a tensor's values are made. */
enum { FILL_RANDOM, FILL_ONES, FILL_ZEROS };

typedef struct {
    char name[96];
    owl_type type;
    int64_t ne0, ne1; /* ne1 = 0: 1-D */
    int fill;
    float sigma;
} tdesc;

static tdesc *tl;
static int n_t, cap_t;

static void add(const char *name, owl_type type, int64_t ne0, int64_t ne1, int fill, float sigma)
{
    if (n_t == cap_t) {
        cap_t = cap_t ? 2 * cap_t : 256;
        tl = realloc(tl, (size_t)cap_t * sizeof *tl);
        if (!tl) {
            fprintf(stderr, "make_gguf: out of memory\n");
            exit(1);
        }
    }
    tdesc *t = &tl[n_t++];
    snprintf(t->name, sizeof t->name, "%s", name);
    /* a type whose block does not divide the row falls back to F16 (as the converter does) */
    const owl_type_traits *tr = owl_type_get(type);
    t->type = (ne0 % tr->blck_size) ? OWL_TYPE_F16 : type;
    t->ne0 = ne0;
    t->ne1 = ne1;
    t->fill = fill;
    t->sigma = sigma;
}

static int file_write(void *user, const void *data, size_t n)
{
    return fwrite(data, 1, n, (FILE *)user) == n ? 0 : -1;
}

static int die_w(const owl_gguf_writer *w, const char *what)
{
    fprintf(stderr, "make_gguf: %s: %s\n", what, owl_gguf_writer_last_error(w)->msg);
    return 1;
}

static owl_type parse_type(const char *s)
{
    static const struct { const char *n; owl_type t; } tab[] = {
        {"f32", OWL_TYPE_F32}, {"f16", OWL_TYPE_F16}, {"q4_0", OWL_TYPE_Q4_0},
        {"q8_0", OWL_TYPE_Q8_0}, {"q4_k", OWL_TYPE_Q4_K}, {"q6_k", OWL_TYPE_Q6_K}};
    for (size_t i = 0; i < sizeof tab / sizeof *tab; i++)
        if (!strcmp(s, tab[i].n))
            return tab[i].t;
    return OWL_TYPE_COUNT;
}

static int add_tokenizer(owl_gguf_writer *w, const char *path, int64_t *n_vocab)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "make_gguf: %s: cannot open\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "make_gguf: %s: read failed\n", path);
        fclose(f);
        return 1;
    }
    fclose(f);
    owl_spm_model spm;
    owl_err err;
    if (owl_spm_parse(buf, (size_t)n, &spm, &err)) {
        fprintf(stderr, "make_gguf: %s: %s\n", path, err.msg);
        return 1;
    }
    free(buf);
    size_t np = (size_t)spm.n_pieces;
    const char **toks = malloc(np * sizeof *toks);
    float *scores = malloc(np * sizeof *scores);
    int32_t *types = malloc(np * sizeof *types);
    if (!toks || !scores || !types)
        return 1;
    for (size_t i = 0; i < np; i++) {
        toks[i] = spm.pieces[i].piece;
        scores[i] = spm.pieces[i].score;
        types[i] = spm.pieces[i].type;
    }
    owl_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    owl_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, np);
    owl_gguf_writer_set_arr(w, "tokenizer.ggml.scores", OWL_GGUF_FLOAT32, scores, np);
    owl_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", OWL_GGUF_INT32, types, np);
    owl_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)(spm.bos_id >= 0 ? spm.bos_id : 1));
    owl_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)(spm.eos_id >= 0 ? spm.eos_id : 2));
    owl_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)(spm.unk_id >= 0 ? spm.unk_id : 0));
    owl_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0);
    owl_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1);
    owl_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", 0);
    owl_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", spm.add_dummy_prefix != 0);
    *n_vocab = spm.n_pieces;
    free(toks);
    free(scores);
    free(types);
    owl_spm_free(&spm);
    return 0;
}

/* Declare the tensors in tl, write the file, filling each tensor row by row. */
static int write_all(owl_gguf_writer *w, const char *out)
{
    for (int i = 0; i < n_t; i++) {
        const int64_t ne[2] = {tl[i].ne0, tl[i].ne1};
        if (owl_gguf_writer_add_tensor(w, tl[i].name, tl[i].type, tl[i].ne1 ? 2 : 1, ne))
            return die_w(w, tl[i].name);
    }
    FILE *f = fopen(out, "wb");
    if (!f) {
        fprintf(stderr, "make_gguf: %s: cannot create\n", out);
        return 1;
    }
    owl_err err;
    if (owl_gguf_writer_write_header(w, file_write, f, &err)) {
        fprintf(stderr, "make_gguf: %s: %s\n", out, err.msg);
        return 1;
    }
    for (int i = 0; i < n_t; i++) {
        const tdesc *t = &tl[i];
        int64_t rows = t->ne1 ? t->ne1 : 1;
        size_t rs = owl_row_size(t->type, t->ne0);
        size_t total = rs * (size_t)rows;
        uint8_t *data = malloc(total);
        float *row = malloc((size_t)t->ne0 * sizeof *row);
        if (!data || !row) {
            fprintf(stderr, "make_gguf: %s: out of memory (%zu bytes)\n", t->name, total);
            return 1;
        }
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t j = 0; j < t->ne0; j++)
                row[j] = t->fill == FILL_ONES ? 1.0f : t->fill == FILL_ZEROS ? 0.0f : t->sigma * rng_normal();
            if (t->type == OWL_TYPE_F32)
                memcpy(data + (size_t)r * rs, row, rs);
            else
                owl_quantize_row_ref(t->type, row, data + (size_t)r * rs, t->ne0);
        }
        if (owl_gguf_writer_write_tensor_data(w, data, total, file_write, f, &err)) {
            fprintf(stderr, "make_gguf: %s: %s\n", t->name, err.msg);
            return 1;
        }
        free(data);
        free(row);
    }
    if (fclose(f)) {
        fprintf(stderr, "make_gguf: %s: write failed\n", out);
        return 1;
    }
    owl_gguf_writer_free(w);
    return 0;
}

/* The LLaMA decoder tensors (multiway = mplug-owl2's extra _img copies). */
static void add_llm(int64_t d, int64_t layers, int64_t heads, int64_t kv_heads, int64_t ffn,
                    int64_t vocab, owl_type wt, owl_type embt, owl_type outt, int multiway)
{
    const float s = 0.02f;
    char n[96];
    int64_t dkv = d / heads * kv_heads;
    add("token_embd.weight", embt, d, vocab, FILL_RANDOM, s);
    for (int64_t l = 0; l < layers; l++) {
#define T(suffix, type, a, b, fill)                               \
    do {                                                          \
        snprintf(n, sizeof n, "blk.%lld." suffix, (long long)l); \
        add(n, type, a, b, fill, s);                              \
    } while (0)
        T("attn_norm.weight", OWL_TYPE_F32, d, 0, FILL_ONES);
        if (multiway)
            T("attn_norm_img.weight", OWL_TYPE_F32, d, 0, FILL_ONES);
        T("attn_q.weight", wt, d, d, FILL_RANDOM);
        T("attn_k.weight", wt, d, dkv, FILL_RANDOM);
        T("attn_v.weight", wt, d, dkv, FILL_RANDOM);
        if (multiway) {
            T("attn_k_img.weight", wt, d, dkv, FILL_RANDOM);
            T("attn_v_img.weight", wt, d, dkv, FILL_RANDOM);
        }
        T("attn_output.weight", wt, d, d, FILL_RANDOM);
        T("ffn_norm.weight", OWL_TYPE_F32, d, 0, FILL_ONES);
        if (multiway)
            T("ffn_norm_img.weight", OWL_TYPE_F32, d, 0, FILL_ONES);
        T("ffn_gate.weight", wt, d, ffn, FILL_RANDOM);
        T("ffn_up.weight", wt, d, ffn, FILL_RANDOM);
        T("ffn_down.weight", wt, ffn, d, FILL_RANDOM);
#undef T
    }
    add("output_norm.weight", OWL_TYPE_F32, d, 0, FILL_ONES, 0);
    add("output.weight", outt, d, vocab, FILL_RANDOM, s);
}

static int make_llama(int argc, char **argv)
{
    if (argc < 10) {
        fprintf(stderr, "usage: make_gguf llama OUT TYPE DIM LAYERS HEADS KV_HEADS FFN TOKENIZER.model [SEED]\n");
        return 2;
    }
    owl_type wt = parse_type(argv[3]);
    int64_t d = atoll(argv[4]), layers = atoll(argv[5]), heads = atoll(argv[6]), kvh = atoll(argv[7]),
            ffn = atoll(argv[8]);
    if (wt == OWL_TYPE_COUNT || d <= 0 || layers <= 0 || heads <= 0 || kvh <= 0 || ffn <= 0 ||
        d % heads || heads % kvh) {
        fprintf(stderr, "make_gguf: bad type or shape\n");
        return 2;
    }
    if (argc > 10)
        rng_state ^= (uint64_t)atoll(argv[10]) * 0x9E3779B97F4A7C15ull + 1;
    owl_gguf_writer *w = owl_gguf_writer_init();
    owl_gguf_writer_set_str(w, "general.architecture", "llama");
    owl_gguf_writer_set_str(w, "general.name", "owlet-bench-random");
    /* llama_ftype: ALL_F32 0, MOSTLY_F16 1, Q4_0 2, Q8_0 7, Q4_K_S 14, Q6_K 18 */
    owl_gguf_writer_set_u32(w, "general.file_type", wt == OWL_TYPE_F16 ? 1 : wt == OWL_TYPE_Q4_0 ? 2 : wt == OWL_TYPE_Q8_0 ? 7
                                                  : wt == OWL_TYPE_Q4_K ? 14 : wt == OWL_TYPE_Q6_K ? 18 : 0);
    owl_gguf_writer_set_u32(w, "llama.context_length", 2048);
    owl_gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)d);
    owl_gguf_writer_set_u32(w, "llama.block_count", (uint32_t)layers);
    owl_gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)ffn);
    owl_gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)heads);
    owl_gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)kvh);
    owl_gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)(d / heads));
    owl_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    owl_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    int64_t vocab = 0;
    if (add_tokenizer(w, argv[9], &vocab))
        return 1;
    owl_gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)vocab);
    if (owl_gguf_writer_last_error(w)->code)
        return die_w(w, "metadata");
    add_llm(d, layers, heads, kvh, ffn, vocab, wt, wt, wt, 0);
    return write_all(w, argv[2]);
}

/* mPLUG-Owl2 shape: LLM, vision tower (ViT-L/14 at 448), abstractor */
enum { OWL2_D = 4096, OWL2_FFN = 11008, OWL2_HEADS = 32, VIS_D = 1024, VIS_FFN = 4096, VIS_LAYERS = 24,
       VIS_IMG = 448, VIS_PATCH = 14, VIS_GRID = VIS_IMG / VIS_PATCH, ABS_Q = 64, ABS_D = 1024, ABS_FFN = 2816,
       ABS_LAYERS = 6 };
#define OWL2_VQ OWL_TYPE_Q8_0 /* vision and abstractor matrices */
#define OWL2_SIGMA 0.02f

static void owl2_metadata(owl_gguf_writer *w)
{
#define U(k, v) owl_gguf_writer_set_u32(w, "mplug-owl2." k, (uint32_t)(v))
#define F(k, v) owl_gguf_writer_set_f32(w, "mplug-owl2." k, (v))
    owl_gguf_writer_set_str(w, "general.architecture", "mplug-owl2");
    owl_gguf_writer_set_str(w, "general.name", "owlet-bench-random-vision");
    U("context_length", 2048);
    U("embedding_length", OWL2_D);
    U("block_count", 1);
    U("feed_forward_length", OWL2_FFN);
    U("attention.head_count", OWL2_HEADS);
    U("attention.head_count_kv", OWL2_HEADS);
    U("rope.dimension_count", OWL2_D / OWL2_HEADS);
    F("attention.layer_norm_rms_epsilon", 1e-6f);
    F("rope.freq_base", 10000.0f);
    U("image_token_count", ABS_Q + 1);
    U("vision.image_size", VIS_IMG);
    U("vision.patch_size", VIS_PATCH);
    U("vision.num_channels", 3);
    U("vision.embedding_length", VIS_D);
    U("vision.block_count", VIS_LAYERS);
    U("vision.attention.head_count", 16);
    U("vision.feed_forward_length", VIS_FFN);
    F("vision.attention.layer_norm_epsilon", 1e-6f);
    U("abstractor.query_count", ABS_Q);
    U("abstractor.block_count", ABS_LAYERS);
    U("abstractor.embedding_length", ABS_D);
    U("abstractor.encoder_embedding_length", VIS_D);
    U("abstractor.attention.head_count", 16);
    U("abstractor.feed_forward_length", ABS_FFN);
    U("abstractor.grid_size", VIS_GRID);
    F("abstractor.layer_norm_epsilon", 1e-6f);
#undef U
#undef F
    const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, stdv[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    const uint8_t pad[3] = {122, 116, 104};
    owl_gguf_writer_set_arr(w, "mplug-owl2.image.mean", OWL_GGUF_FLOAT32, mean, 3);
    owl_gguf_writer_set_arr(w, "mplug-owl2.image.std", OWL_GGUF_FLOAT32, stdv, 3);
    owl_gguf_writer_set_arr(w, "mplug-owl2.image.pad_color", OWL_GGUF_UINT8, pad, 3);
    owl_gguf_writer_set_str(w, "mplug-owl2.image.aspect", "pad");
}

/* A tensor of block l: PREFIX.blk.L.SUFFIX. */
typedef struct {
    const char *suffix;
    owl_type type;
    int64_t ne0, ne1;
    int fill;
} blk_tensor;

static void add_blocks(const char *prefix, int64_t layers, const blk_tensor *t, int nt)
{
    char n[96];
    for (int64_t l = 0; l < layers; l++)
        for (int i = 0; i < nt; i++) {
            snprintf(n, sizeof n, "%s.blk.%lld.%s", prefix, (long long)l, t[i].suffix);
            add(n, t[i].type, t[i].ne0, t[i].ne1, t[i].fill, OWL2_SIGMA);
        }
}

static void owl2_vision(void)
{
    const float s = OWL2_SIGMA;
    add("v.patch_embd.weight", OWL_TYPE_F16, 3 * VIS_PATCH * VIS_PATCH, VIS_D, FILL_RANDOM, s);
    add("v.class_embd", OWL_TYPE_F32, VIS_D, 0, FILL_RANDOM, s);
    add("v.position_embd.weight", OWL_TYPE_F32, VIS_D, 1 + VIS_GRID * VIS_GRID, FILL_RANDOM, s);
    add("v.pre_ln.weight", OWL_TYPE_F32, VIS_D, 0, FILL_ONES, 0);
    add("v.pre_ln.bias", OWL_TYPE_F32, VIS_D, 0, FILL_ZEROS, 0);
    const blk_tensor blk[] = {
        {"ln1.weight", OWL_TYPE_F32, VIS_D, 0, FILL_ONES}, {"ln1.bias", OWL_TYPE_F32, VIS_D, 0, FILL_ZEROS},
        {"attn_qkv.weight", OWL2_VQ, VIS_D, 3 * VIS_D, FILL_RANDOM},
        {"attn_qkv.bias", OWL_TYPE_F32, 3 * VIS_D, 0, FILL_RANDOM},
        {"attn_out.weight", OWL2_VQ, VIS_D, VIS_D, FILL_RANDOM}, {"attn_out.bias", OWL_TYPE_F32, VIS_D, 0, FILL_RANDOM},
        {"ln2.weight", OWL_TYPE_F32, VIS_D, 0, FILL_ONES}, {"ln2.bias", OWL_TYPE_F32, VIS_D, 0, FILL_ZEROS},
        {"ffn_up.weight", OWL2_VQ, VIS_D, VIS_FFN, FILL_RANDOM}, {"ffn_up.bias", OWL_TYPE_F32, VIS_FFN, 0, FILL_RANDOM},
        {"ffn_down.weight", OWL2_VQ, VIS_FFN, VIS_D, FILL_RANDOM}, {"ffn_down.bias", OWL_TYPE_F32, VIS_D, 0, FILL_RANDOM}};
    add_blocks("v", VIS_LAYERS, blk, (int)(sizeof blk / sizeof blk[0]));
    add("v.post_ln.weight", OWL_TYPE_F32, VIS_D, 0, FILL_ONES, 0);
    add("v.post_ln.bias", OWL_TYPE_F32, VIS_D, 0, FILL_ZEROS, 0);
}

static void owl2_abstractor(void)
{
    const float s = OWL2_SIGMA;
    add("a.query_embd", OWL_TYPE_F32, ABS_D, ABS_Q, FILL_RANDOM, s);
    const blk_tensor blk[] = {
        {"norm1.weight", OWL_TYPE_F32, ABS_D, 0, FILL_ONES}, {"norm1.bias", OWL_TYPE_F32, ABS_D, 0, FILL_ZEROS},
        {"normk.weight", OWL_TYPE_F32, VIS_D, 0, FILL_ONES}, {"normk.bias", OWL_TYPE_F32, VIS_D, 0, FILL_ZEROS},
        {"attn_q.weight", OWL2_VQ, ABS_D, ABS_D, FILL_RANDOM}, {"attn_q.bias", OWL_TYPE_F32, ABS_D, 0, FILL_RANDOM},
        {"attn_k.weight", OWL2_VQ, VIS_D, ABS_D, FILL_RANDOM}, {"attn_k.bias", OWL_TYPE_F32, ABS_D, 0, FILL_RANDOM},
        {"attn_v.weight", OWL2_VQ, VIS_D, ABS_D, FILL_RANDOM}, {"attn_v.bias", OWL_TYPE_F32, ABS_D, 0, FILL_RANDOM},
        {"attn_out.weight", OWL2_VQ, ABS_D, ABS_D, FILL_RANDOM}, {"attn_out.bias", OWL_TYPE_F32, ABS_D, 0, FILL_RANDOM},
        {"norm2.weight", OWL_TYPE_F32, ABS_D, 0, FILL_ONES}, {"norm2.bias", OWL_TYPE_F32, ABS_D, 0, FILL_ZEROS},
        {"ffn_gate.weight", OWL2_VQ, ABS_D, ABS_FFN, FILL_RANDOM},
        {"ffn_gate.bias", OWL_TYPE_F32, ABS_FFN, 0, FILL_RANDOM},
        {"ffn_up.weight", OWL2_VQ, ABS_D, ABS_FFN, FILL_RANDOM}, {"ffn_up.bias", OWL_TYPE_F32, ABS_FFN, 0, FILL_RANDOM},
        {"ffn_norm.weight", OWL_TYPE_F32, ABS_FFN, 0, FILL_ONES},
        {"ffn_norm.bias", OWL_TYPE_F32, ABS_FFN, 0, FILL_ZEROS},
        {"ffn_down.weight", OWL2_VQ, ABS_FFN, ABS_D, FILL_RANDOM},
        {"ffn_down.bias", OWL_TYPE_F32, ABS_D, 0, FILL_RANDOM}};
    add_blocks("a", ABS_LAYERS, blk, (int)(sizeof blk / sizeof blk[0]));
    add("a.visual_fc.weight", OWL2_VQ, ABS_D, OWL2_D, FILL_RANDOM, s);
    add("a.visual_fc.bias", OWL_TYPE_F32, OWL2_D, 0, FILL_RANDOM, s);
    add("a.vit_eos", OWL_TYPE_F32, OWL2_D, 0, FILL_RANDOM, s);
}

static int make_owl2(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: make_gguf owl2 OUT TOKENIZER.model [SEED]\n");
        return 2;
    }
    if (argc > 4)
        rng_state ^= (uint64_t)atoll(argv[4]) * 0x9E3779B97F4A7C15ull + 1;
    owl_gguf_writer *w = owl_gguf_writer_init();
    owl2_metadata(w);
    int64_t vocab = 0;
    if (add_tokenizer(w, argv[3], &vocab))
        return 1;
    owl_gguf_writer_set_u32(w, "mplug-owl2.vocab_size", (uint32_t)vocab);
    if (owl_gguf_writer_last_error(w)->code)
        return die_w(w, "metadata");
    owl2_vision();
    owl2_abstractor();
    add_llm(OWL2_D, 1, OWL2_HEADS, OWL2_HEADS, OWL2_FFN, vocab, OWL_TYPE_Q4_K, OWL_TYPE_Q4_K, OWL_TYPE_Q6_K, 1);
    return write_all(w, argv[2]);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "llama"))
        return make_llama(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "owl2"))
        return make_owl2(argc, argv);
    fprintf(stderr, "usage: make_gguf llama|owl2 ... (see bench/tools/make_gguf.c)\n");
    return 2;
}
