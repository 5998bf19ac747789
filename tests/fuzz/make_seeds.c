/* make_seeds.c - writes the GGUF seeds of tests/fuzz/corpus/gguf/ with our own
 * GGUF writer (src/core/gguf_write.c), so the seeds are valid files of the format
 * the reader is meant to accept. Built and run by hand:
 *   gcc -std=c11 -D_GNU_SOURCE -DOWL_USE_SIMDE -msse4.1 -o build/fuzz/make_seeds \
 *       tests/fuzz/make_seeds.c src/core/gguf.c src/core/gguf_write.c src/core/status.c \
 *       src/kernels/quant.c src/kernels/quant_simd128.c -lm
 *   build/fuzz/make_seeds tests/fuzz/corpus/gguf tests/fuzz/corpus/model
 * (tests/fuzz/make_seeds.py writes the safetensors / torch seeds.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/core/gguf.h"

static int file_write(void *user, const void *data, size_t n)
{
    return fwrite(data, 1, n, (FILE *)user) == n ? 0 : -1;
}

static int fail(const char *what, const owl_gguf_writer *w)
{
    fprintf(stderr, "make_seeds: %s: %s\n", what, w ? owl_gguf_writer_last_error(w)->msg : "");
    return 1;
}

/* Write w (tensors filled with a byte pattern) to dir/name. */
static int finish(owl_gguf_writer *w, const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return fail(path, NULL);
    owl_err err;
    int rc = 0;
    if (owl_gguf_writer_write_header(w, file_write, f, &err))
        rc = fail(err.msg, NULL);
    for (uint64_t i = 0; !rc; i++) {
        uint64_t n = owl_gguf_writer_tensor_size(w, i);
        if (!n)
            break;
        uint8_t *buf = malloc(n);
        for (uint64_t j = 0; j < n; j++)
            buf[j] = (uint8_t)(j * 7 + i);
        if (owl_gguf_writer_write_tensor_data(w, buf, n, file_write, f, &err))
            rc = fail(err.msg, NULL);
        free(buf);
    }
    if (fclose(f))
        rc = 1;
    owl_gguf_writer_free(w);
    return rc;
}

static int seed_all_types(const char *dir)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    uint8_t u8 = 200; int8_t i8 = -5; uint16_t u16 = 60000; int16_t i16 = -300;
    int32_t i32 = -70000; uint8_t b = 1; int64_t i64 = -5000000000LL; double f64 = 0.1;
    owl_gguf_writer_set_val(w, "t.u8", OWL_GGUF_UINT8, &u8);
    owl_gguf_writer_set_val(w, "t.i8", OWL_GGUF_INT8, &i8);
    owl_gguf_writer_set_val(w, "t.u16", OWL_GGUF_UINT16, &u16);
    owl_gguf_writer_set_val(w, "t.i16", OWL_GGUF_INT16, &i16);
    owl_gguf_writer_set_u32(w, "t.u32", 4000000000u);
    owl_gguf_writer_set_val(w, "t.i32", OWL_GGUF_INT32, &i32);
    owl_gguf_writer_set_f32(w, "t.f32", 1.5f);
    owl_gguf_writer_set_val(w, "t.bool", OWL_GGUF_BOOL, &b);
    owl_gguf_writer_set_str(w, "general.architecture", "owl2");
    owl_gguf_writer_set_u64(w, "t.u64", 1ull << 40);
    owl_gguf_writer_set_val(w, "t.i64", OWL_GGUF_INT64, &i64);
    owl_gguf_writer_set_val(w, "t.f64", OWL_GGUF_FLOAT64, &f64);
    const int32_t arr[5] = {1, -2, 3, -4, 5};
    owl_gguf_writer_set_arr(w, "t.arr_i32", OWL_GGUF_INT32, arr, 5);
    const float farr[3] = {0.5f, -1.0f, 2.0f};
    owl_gguf_writer_set_arr(w, "t.arr_f32", OWL_GGUF_FLOAT32, farr, 3);
    const char *strs[3] = {"a", "", "\xe2\x96\x81x"};
    owl_gguf_writer_set_arr_str(w, "t.arr_str", strs, 3);
    owl_gguf_writer_add_tensor(w, "f32", OWL_TYPE_F32, 1, (const int64_t[]){3});
    owl_gguf_writer_add_tensor(w, "f16", OWL_TYPE_F16, 2, (const int64_t[]){5, 2});
    owl_gguf_writer_add_tensor(w, "q8_0", OWL_TYPE_Q8_0, 2, (const int64_t[]){32, 2});
    owl_gguf_writer_add_tensor(w, "q4_k", OWL_TYPE_Q4_K, 3, (const int64_t[]){256, 1, 1});
    if (owl_gguf_writer_last_error(w)->code)
        return fail("all_types", w);
    return finish(w, dir, "all_types.gguf");
}

static int seed_tokenizer(const char *dir)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    enum { N = 3 + 256 + 6 };
    static char bytes[256][8];
    const char *tok[N];
    float scores[N];
    int32_t types[N];
    tok[0] = "<unk>"; tok[1] = "<s>"; tok[2] = "</s>";
    types[0] = 2; types[1] = 3; types[2] = 3;
    for (int i = 0; i < 256; i++) {
        snprintf(bytes[i], sizeof bytes[i], "<0x%02X>", i);
        tok[3 + i] = bytes[i];
        types[3 + i] = 6;
    }
    const char *words[6] = {"\xe2\x96\x81", "a", "b", "ab", "\xe2\x96\x81" "a", "\xe2\x96\x81" "ab"};
    for (int i = 0; i < 6; i++) {
        tok[259 + i] = words[i];
        types[259 + i] = 1;
    }
    for (int i = 0; i < N; i++)
        scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
    owl_gguf_writer_set_str(w, "general.architecture", "llama");
    owl_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    owl_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tok, N);
    owl_gguf_writer_set_arr(w, "tokenizer.ggml.scores", OWL_GGUF_FLOAT32, scores, N);
    owl_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", OWL_GGUF_INT32, types, N);
    owl_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    owl_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    owl_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    owl_gguf_writer_add_tensor(w, "token_embd.weight", OWL_TYPE_F32, 2, (const int64_t[]){2, 1});
    if (owl_gguf_writer_last_error(w)->code)
        return fail("tokenizer", w);
    return finish(w, dir, "tokenizer.gguf");
}

static int seed_align(const char *dir)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    owl_gguf_writer_set_u32(w, "general.alignment", 64);
    owl_gguf_writer_add_tensor(w, "a", OWL_TYPE_Q4_0, 1, (const int64_t[]){32});
    owl_gguf_writer_add_tensor(w, "b", OWL_TYPE_Q6_K, 2, (const int64_t[]){256, 1});
    owl_gguf_writer_add_tensor(w, "c", OWL_TYPE_BF16, 4, (const int64_t[]){1, 1, 1, 3});
    if (owl_gguf_writer_last_error(w)->code)
        return fail("align", w);
    return finish(w, dir, "align64.gguf");
}

/* The smallest llama-architecture model owl_model_load_buffer accepts: d 4,
 * one head, one layer, ffn 8, vocabulary 8 (fuzz_model's seed). */
static int seed_tiny_llama(const char *dir)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    owl_gguf_writer_set_str(w, "general.architecture", "llama");
    owl_gguf_writer_set_u32(w, "llama.embedding_length", 4);
    owl_gguf_writer_set_u32(w, "llama.block_count", 1);
    owl_gguf_writer_set_u32(w, "llama.attention.head_count", 1);
    owl_gguf_writer_set_u32(w, "llama.attention.head_count_kv", 1);
    owl_gguf_writer_set_u32(w, "llama.feed_forward_length", 8);
    owl_gguf_writer_set_u32(w, "llama.context_length", 64);
    owl_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    owl_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    const int64_t d = 4, ffn = 8, vocab = 8;
    owl_gguf_writer_add_tensor(w, "token_embd.weight", OWL_TYPE_F32, 2, (const int64_t[]){d, vocab});
    owl_gguf_writer_add_tensor(w, "blk.0.attn_norm.weight", OWL_TYPE_F32, 1, (const int64_t[]){d});
    owl_gguf_writer_add_tensor(w, "blk.0.ffn_norm.weight", OWL_TYPE_F32, 1, (const int64_t[]){d});
    owl_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", OWL_TYPE_F16, 2, (const int64_t[]){d, d});
    owl_gguf_writer_add_tensor(w, "blk.0.attn_k.weight", OWL_TYPE_F16, 2, (const int64_t[]){d, d});
    owl_gguf_writer_add_tensor(w, "blk.0.attn_v.weight", OWL_TYPE_F32, 2, (const int64_t[]){d, d});
    owl_gguf_writer_add_tensor(w, "blk.0.attn_output.weight", OWL_TYPE_F32, 2, (const int64_t[]){d, d});
    owl_gguf_writer_add_tensor(w, "blk.0.ffn_gate.weight", OWL_TYPE_F32, 2, (const int64_t[]){d, ffn});
    owl_gguf_writer_add_tensor(w, "blk.0.ffn_up.weight", OWL_TYPE_F32, 2, (const int64_t[]){d, ffn});
    owl_gguf_writer_add_tensor(w, "blk.0.ffn_down.weight", OWL_TYPE_F32, 2, (const int64_t[]){ffn, d});
    owl_gguf_writer_add_tensor(w, "output_norm.weight", OWL_TYPE_F32, 1, (const int64_t[]){d});
    owl_gguf_writer_add_tensor(w, "output.weight", OWL_TYPE_F32, 2, (const int64_t[]){d, vocab});
    if (owl_gguf_writer_last_error(w)->code)
        return fail("tiny_llama", w);
    return finish(w, dir, "tiny_llama.gguf");
}

/* F32 tensor of n0 (n1 == 0) or n0 x n1. */
static void add(owl_gguf_writer *w, const char *name, int64_t n0, int64_t n1)
{
    const int64_t ne[2] = {n0, n1};
    owl_gguf_writer_add_tensor(w, name, OWL_TYPE_F32, n1 ? 2 : 1, ne);
}

/* The smallest mplug-owl2 model (vision + abstractor + multiway LLM): image 4,
 * patch 2 (grid 2, 5 vision tokens), all widths 4, ffn 8, 2 queries, one
 * layer each, vocabulary 8. */
static int seed_tiny_owl2(const char *dir)
{
    owl_gguf_writer *w = owl_gguf_writer_init();
    const int64_t d = 4, ffn = 8, vocab = 8, k = 3 * 2 * 2, q = 2, n_tok = 5;
    owl_gguf_writer_set_str(w, "general.architecture", "mplug-owl2");
    owl_gguf_writer_set_u32(w, "mplug-owl2.embedding_length", (uint32_t)d);
    owl_gguf_writer_set_u32(w, "mplug-owl2.block_count", 1);
    owl_gguf_writer_set_u32(w, "mplug-owl2.attention.head_count", 1);
    owl_gguf_writer_set_u32(w, "mplug-owl2.feed_forward_length", (uint32_t)ffn);
    owl_gguf_writer_set_f32(w, "mplug-owl2.attention.layer_norm_rms_epsilon", 1e-6f);
    owl_gguf_writer_set_u32(w, "mplug-owl2.image_token_count", (uint32_t)q + 1);
    owl_gguf_writer_set_u32(w, "mplug-owl2.vision.image_size", 4);
    owl_gguf_writer_set_u32(w, "mplug-owl2.vision.patch_size", 2);
    owl_gguf_writer_set_u32(w, "mplug-owl2.vision.num_channels", 3);
    owl_gguf_writer_set_u32(w, "mplug-owl2.vision.embedding_length", (uint32_t)d);
    owl_gguf_writer_set_u32(w, "mplug-owl2.vision.block_count", 1);
    owl_gguf_writer_set_u32(w, "mplug-owl2.vision.attention.head_count", 1);
    owl_gguf_writer_set_u32(w, "mplug-owl2.vision.feed_forward_length", (uint32_t)ffn);
    owl_gguf_writer_set_f32(w, "mplug-owl2.vision.attention.layer_norm_epsilon", 1e-6f);
    owl_gguf_writer_set_u32(w, "mplug-owl2.abstractor.query_count", (uint32_t)q);
    owl_gguf_writer_set_u32(w, "mplug-owl2.abstractor.block_count", 1);
    owl_gguf_writer_set_u32(w, "mplug-owl2.abstractor.embedding_length", (uint32_t)d);
    owl_gguf_writer_set_u32(w, "mplug-owl2.abstractor.encoder_embedding_length", (uint32_t)d);
    owl_gguf_writer_set_u32(w, "mplug-owl2.abstractor.attention.head_count", 1);
    owl_gguf_writer_set_u32(w, "mplug-owl2.abstractor.feed_forward_length", (uint32_t)ffn);
    owl_gguf_writer_set_u32(w, "mplug-owl2.abstractor.grid_size", 2);
    owl_gguf_writer_set_f32(w, "mplug-owl2.abstractor.layer_norm_epsilon", 1e-6f);
    /* vision */
    add(w, "v.patch_embd.weight", k, d);
    add(w, "v.class_embd", d, 0);
    add(w, "v.position_embd.weight", d, n_tok);
    static const char *const v_vec[] = {"v.pre_ln.weight", "v.pre_ln.bias", "v.post_ln.weight", "v.post_ln.bias",
                                        "v.blk.0.ln1.weight", "v.blk.0.ln1.bias", "v.blk.0.ln2.weight",
                                        "v.blk.0.ln2.bias", "v.blk.0.attn_out.bias", "v.blk.0.ffn_down.bias"};
    for (size_t i = 0; i < sizeof v_vec / sizeof *v_vec; i++)
        add(w, v_vec[i], d, 0);
    add(w, "v.blk.0.attn_qkv.weight", d, 3 * d);
    add(w, "v.blk.0.attn_qkv.bias", 3 * d, 0);
    add(w, "v.blk.0.attn_out.weight", d, d);
    add(w, "v.blk.0.ffn_up.weight", d, ffn);
    add(w, "v.blk.0.ffn_up.bias", ffn, 0);
    add(w, "v.blk.0.ffn_down.weight", ffn, d);
    /* abstractor */
    add(w, "a.query_embd", d, q);
    add(w, "a.visual_fc.weight", d, d);
    add(w, "a.visual_fc.bias", d, 0);
    add(w, "a.vit_eos", d, 0);
    static const char *const a_ln[] = {"norm1", "normk", "norm2"};
    char name[64];
    for (size_t i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "a.blk.0.%s.weight", a_ln[i]);
        add(w, name, d, 0);
        snprintf(name, sizeof name, "a.blk.0.%s.bias", a_ln[i]);
        add(w, name, d, 0);
    }
    static const char *const a_sq[] = {"attn_q", "attn_k", "attn_v", "attn_out"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "a.blk.0.%s.weight", a_sq[i]);
        add(w, name, d, d);
        snprintf(name, sizeof name, "a.blk.0.%s.bias", a_sq[i]);
        add(w, name, d, 0);
    }
    add(w, "a.blk.0.ffn_gate.weight", d, ffn);
    add(w, "a.blk.0.ffn_gate.bias", ffn, 0);
    add(w, "a.blk.0.ffn_up.weight", d, ffn);
    add(w, "a.blk.0.ffn_up.bias", ffn, 0);
    add(w, "a.blk.0.ffn_norm.weight", ffn, 0);
    add(w, "a.blk.0.ffn_norm.bias", ffn, 0);
    add(w, "a.blk.0.ffn_down.weight", ffn, d);
    add(w, "a.blk.0.ffn_down.bias", d, 0);
    /* multiway LLM */
    add(w, "token_embd.weight", d, vocab);
    static const char *const l_vec[] = {"attn_norm", "ffn_norm", "attn_norm_img", "ffn_norm_img"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "blk.0.%s.weight", l_vec[i]);
        add(w, name, d, 0);
    }
    static const char *const l_sq[] = {"attn_q", "attn_k", "attn_v", "attn_output", "attn_k_img", "attn_v_img"};
    for (size_t i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "blk.0.%s.weight", l_sq[i]);
        add(w, name, d, d);
    }
    add(w, "blk.0.ffn_gate.weight", d, ffn);
    add(w, "blk.0.ffn_up.weight", d, ffn);
    add(w, "blk.0.ffn_down.weight", ffn, d);
    add(w, "output_norm.weight", d, 0);
    add(w, "output.weight", d, vocab);
    if (owl_gguf_writer_last_error(w)->code)
        return fail("tiny_owl2", w);
    return finish(w, dir, "tiny_owl2.gguf");
}

static int seed_empty(const char *dir)
{
    return finish(owl_gguf_writer_init(), dir, "empty.gguf");
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_seeds GGUF_DIR MODEL_DIR\n");
        return 2;
    }
    return seed_all_types(argv[1]) | seed_tokenizer(argv[1]) | seed_align(argv[1]) | seed_empty(argv[1]) |
           seed_tiny_llama(argv[2]) | seed_tiny_owl2(argv[2]);
}
