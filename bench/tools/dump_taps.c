/* dump_taps.c - one image + prompt through a model, every tap and the prefill
 * logits written as raw float32 files, for comparing quantizations tensor by
 * tensor (tests/reference/vision_quant_report.py, docs/ACCURACY.md).
 *
 *   dump_taps MODEL.gguf PIXELS.f32 IDS.i32 OUTDIR [THREADS]
 *
 * PIXELS: (channels, image_size, image_size) CLIP-normalised floats; IDS: int32
 * prompt ids with one OWL_IMAGE_TOKEN (-200). Writes OUTDIR/<tap>.f32 for the
 * first call of each tap (vision_embeddings, vision_layerN, vision_out,
 * abstractor_layerN, abstractor_out, llm_input_embeds, llm_layerN,
 * llm_final_norm) and OUTDIR/prefill_logits.f32 (every position), f32 KV
 * cache, one prefill batch. Prints the image encode's wall time.
 * Not a product tool; built with
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -DOWL_USE_SIMDE -msse4.1 -o build/bench/dump_taps \
 *       bench/tools/dump_taps.c build/libowlet.a -lm -lpthread      (after make native) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../src/owlet.h"

static const char *g_dir;
static char g_seen[128][32];
static int g_n;

static void on_tap(void *user, const char *name, const float *x, int64_t rows, int64_t cols)
{
    (void)user;
    for (int i = 0; i < g_n; i++)
        if (!strcmp(g_seen[i], name))
            return;
    if (g_n == 128)
        return;
    snprintf(g_seen[g_n++], sizeof g_seen[0], "%s", name);
    char p[1024];
    snprintf(p, sizeof p, "%s/%s.f32", g_dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(x, sizeof *x, (size_t)(rows * cols), f) != (size_t)(rows * cols))
        fprintf(stderr, "dump_taps: cannot write %s\n", p);
    if (f)
        fclose(f);
}

static void *slurp(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    rewind(f);
    void *d = malloc(sz > 0 ? (size_t)sz : 1);
    if (d && sz > 0 && fread(d, 1, (size_t)sz, f) != (size_t)sz) {
        free(d);
        d = NULL;
    }
    fclose(f);
    *n = sz > 0 ? (size_t)sz : 0;
    return d;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: dump_taps MODEL.gguf PIXELS.f32 IDS.i32 OUTDIR [THREADS]\n");
        return 2;
    }
    g_dir = argv[4];
    size_t np = 0, ni = 0;
    float *px = slurp(argv[2], &np);
    int32_t *ids = slurp(argv[3], &ni);
    if (!px || !ids) {
        fprintf(stderr, "dump_taps: cannot read the inputs\n");
        return 1;
    }
    owl_model *m = NULL;
    owl_err err = {0};
    if (owl_model_load_file(argv[1], NULL, &m, &err)) {
        fprintf(stderr, "dump_taps: %s\n", err.msg);
        return 1;
    }
    owl_model_info info;
    owl_model_get_info(m, &info);
    int64_t n_ids = (int64_t)(ni / sizeof *ids), L = owl_model_expanded_len(m, ids, n_ids);
    owl_session_opts o = owl_session_opts_default();
    o.n_ctx = L + 8;
    o.n_batch = L;
    o.kv_type = OWL_TYPE_F32;
    o.n_threads = argc > 5 ? atoi(argv[5]) : 1;
    o.image_cache = 0;
    o.tap = on_tap;
    owl_session *s = NULL;
    if (owl_session_init(m, &o, &s, &err)) {
        fprintf(stderr, "dump_taps: %s\n", err.msg);
        return 1;
    }
    double t0 = now();
    if (owl_session_encode_image(s, px, np / sizeof *px, NULL)) {
        fprintf(stderr, "dump_taps: encode: %s\n", owl_session_error(s));
        return 1;
    }
    double t1 = now();
    float *logits = malloc(sizeof(float) * (size_t)(L * info.n_vocab));
    int64_t got = 0;
    if (!logits || owl_session_prefill(s, ids, n_ids, logits, &got) || got != L) {
        fprintf(stderr, "dump_taps: prefill: %s\n", owl_session_error(s));
        return 1;
    }
    on_tap(NULL, "prefill_logits", logits, L, info.n_vocab);
    printf("encode %.3f s, %lld positions, %d taps\n", t1 - t0, (long long)L, g_n);
    free(logits);
    owl_session_free(s);
    owl_model_free(m);
    free(px);
    free(ids);
    return 0;
}
