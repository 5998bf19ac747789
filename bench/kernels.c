/* kernels.c - matrix kernel benchmark (wasm relaxed SIMD vs SIMD128 vs the
 * scalar reference).
 *
 * Built three times by the Makefile: build/wasm/owlet-bench.js (-msimd128
 * -pthread), build/wasm/owlet-bench-scalar.js (same code without -msimd128,
 * so owl_matmul runs owl_vec_dot_ref) and build/wasm/owlet-bench-relaxed.js
 * (the relaxed-SIMD build: owl_matmul runs the relaxed tiles for q4_0, q4_K,
 * q6_K). Each runs in node and in a browser page. bench/run_kernels.sh runs
 * the first two in node; bench/kernels_browser.mjs all three in Chromium.
 * Both print the markdown tables of docs/BENCHMARKS.md.
 *
 * Measures owl_matmul on W (4096 x 4096) in q4_0, q8_0, q4_K, q6_K (and f16,
 * f32 for reference):
 *   gemv: ntok = 1 (decode), gemm: ntok = 64 (prefill / vision)
 * at 1 and 2 threads, as GMAC/s (multiply-adds per second) and GB/s of weight
 * bytes streamed (weight bytes / time, once per call). Plus two ceilings from
 * the same harness: a memory-read loop over 64 MB and an i32x4.dot_i16x8
 * loop with one operand from L1 (scalar build: the same as plain int16 MACs);
 * the relaxed build adds the same loop with the relaxed dot (16 int8 MACs).
 *
 * Output: one line per measurement,
 *   RESULT <name> <threads> <gmac_per_s> <gb_per_s> <gmac_per_cpu_s>
 * (wall-clock rates; the last is per process CPU-second, all threads summed,
 * which shows the kernel's own speed when other processes share the cores).
 * Usage: owlet-bench [min_seconds_per_measurement (default 0.25)] [kernels]
 * kernels: a comma-separated list of type names (q4_0,q8_0,q4_K,q6_K,f16,f32),
 * "roof" (the ceilings: memory read of 64 MB and of 1 GB, the dot loops) and, in the relaxed build, "ab" (SIMD128 vs relaxed
 * tiles alternately in one process; RESULT ab_<type>_<shape> 1 <SIMD128
 * GMAC/s> <relaxed GMAC/s> 0); default all of these. "decode" (only when
 * listed) adds the decode profile of bench/profile.c (PROFILE lines; q4_K,
 * matrices in the 4-row interleaved layout the engine loads them in;
 * "decode_rows" the same row-major, "decode_q6_K" in q6_K, "decode_q8_0" /
 * "decode_q4_0" in those types (row-major), "decode_ab" rows and r4
 * alternately, 3 rounds, 1 thread; PROFILE_OF lines say which), "vision"
 * the vision layer profile (VPROFILE lines), "vattn" owl_attention alone at
 * the vision shape, 1 thread, "prefill" one 7B layer of the full-size prompt
 * (PPROFILE lines; attn_v / ffn_down in q4_K, then in q6_K), "gemm" owl_matmul at the prefill (64 tokens,
 * 4096 x 4096, q8_0 q4_K q6_K) and vision (1025 tokens, q8_0, then q6_K as
 * `--vision-type q6_k` stores them) shapes, 1 thread ("gemm<i>": shape i alone). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/kernels/ops.h"
#include "../src/kernels/simd.h"
#include "bench.h"

#ifdef __EMSCRIPTEN__
#include <emscripten.h>
/* Process CPU seconds (node): unlike wall time, not inflated when other
 * processes share the cores. A page has no such clock: bench/kernels_browser.mjs
 * sets owlBenchCpuUrl, where its server answers the CPU seconds of Chromium's
 * renderer processes read from /proc (a synchronous request, outside the timed
 * calls); without it, wall time (the GMAC/CPU-s column repeats GMAC/s). */
EM_JS(double, cpu_now, (void), {
    if (typeof process !== 'undefined' && process.cpuUsage) {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1e6;
    }
    if (globalThis.owlBenchCpuUrl) { /* kernels_browser.mjs: the renderer's CPU seconds, read from /proc by the server */
        const x = new XMLHttpRequest();
        x.open('GET', globalThis.owlBenchCpuUrl, false);
        x.send();
        return Number(x.responseText);
    }
    return performance.now() / 1e3;
});
#else
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
uint32_t bench_rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 2685821657736338717ull) >> 32);
}

/* Random weight bytes with sane scale fields (speed does not depend on the
 * values; quantizing 16M floats with the K-quant search would take longer
 * than the benchmark). */
void *bench_weights(owl_type t, int64_t rows, int64_t cols)
{
    size_t rs = owl_row_size(t, cols), total = rs * (size_t)rows;
    uint8_t *w = malloc(total);
    if (!w)
        return NULL;
    if (t == OWL_TYPE_F32 || t == OWL_TYPE_F16) { /* real numbers: no denormal slow paths */
        for (size_t i = 0; i < total / owl_type_get(t)->type_size; i++) {
            float v = (float)((int)(bench_rnd() % 2001) - 1000) / 1000.0f;
            if (t == OWL_TYPE_F32)
                memcpy(w + 4 * i, &v, 4);
            else
                ((owl_f16 *)w)[i] = owl_f32_to_f16(v);
        }
        return w;
    }
    for (size_t i = 0; i < total; i++)
        w[i] = (uint8_t)bench_rnd();
    const size_t bs = owl_type_get(t)->type_size, nb = total / bs;
    const owl_f16 d = owl_f32_to_f16(0.01f);
    for (size_t b = 0; b < nb; b++) {
        uint8_t *blk = w + b * bs;
        switch (t) {
        case OWL_TYPE_Q4_0:
        case OWL_TYPE_Q8_0: memcpy(blk, &d, 2); break;
        case OWL_TYPE_Q4_K: memcpy(blk, &d, 2); memcpy(blk + 2, &d, 2); break;
        case OWL_TYPE_Q6_K: memcpy(blk + 208, &d, 2); break;
        default: break;
        }
    }
    return w;
}

typedef void (*bench_fn)(void *ctx);

/* Seconds per call: the best of up to 20 trials of about min_s/20 each (at
 * least one call, at least 2 trials, at most ~4*min_s in all plus a warm-up
 * call). Best-of filters out time stolen by other processes on a shared
 * machine; the slow scalar GEMMs get the minimum of 2 trials. *cpu gets the
 * process CPU seconds per call over all trials (all threads together; a mean,
 * not a best: in a page the CPU clock is read from /proc and lags a few ms). */
static double time_it(bench_fn fn, void *ctx, double min_s, double *cpu)
{
    double start = bench_now(), best = 1e30, cpu_sum = 0;
    int reps_sum = 0;
    fn(ctx); /* warm-up */
    for (int trial = 0; trial < 20; trial++) {
        int reps = 0;
        double c0 = cpu_now(), t0 = bench_now(), t; /* cpu_now first: in a page it is a request */
        do {
            fn(ctx);
            reps++;
            t = bench_now() - t0;
        } while (t < min_s / 20);
        cpu_sum += cpu_now() - c0;
        reps_sum += reps;
        if (t / reps < best)
            best = t / reps;
        if (trial >= 1 && bench_now() - start > 4 * min_s)
            break;
    }
    *cpu = cpu_sum > 0 ? cpu_sum / reps_sum : 1e30;
    return best;
}

typedef struct {
    owl_pool *pool;
    const void *W;
    owl_type t;
    int64_t rows, cols, ntok;
    const float *X;
    float *Y;
    void *scratch;
} mm_args;

static void run_mm(void *p)
{
    mm_args *a = p;
    owl_matmul(a->pool, a->W, a->t, a->rows, a->cols, a->X, a->cols, a->ntok, a->Y, a->rows,
               a->scratch);
}

/* ---- memory-read ceiling: sum 64 MB (may sit in a large L3) and 1 GB (from
 * DRAM: the 7B slice's decode token streams 0.3-0.6 GB of weights) ---- */
#define MEM_BYTES (64u << 20)
#define MEM_BYTES_DRAM (1024u << 20)
typedef struct {
    const uint8_t *buf;
    uint64_t sink;
    owl_pool *pool;
    size_t bytes;
} mem_args;

static void mem_part(void *p, int ith, int nth)
{
    mem_args *a = p;
    int64_t s, e;
    owl_pool_range((int64_t)(a->bytes / 64), ith, nth, &s, &e);
#ifdef OWL_SIMD128
    v128_t acc0 = wasm_i32x4_splat(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int64_t i = s; i < e; i++) {
        const uint8_t *q = a->buf + 64 * i;
        acc0 = wasm_i32x4_add(acc0, wasm_v128_load(q));
        acc1 = wasm_i32x4_add(acc1, wasm_v128_load(q + 16));
        acc2 = wasm_i32x4_add(acc2, wasm_v128_load(q + 32));
        acc3 = wasm_i32x4_add(acc3, wasm_v128_load(q + 48));
    }
    v128_t acc = wasm_i32x4_add(wasm_i32x4_add(acc0, acc1), wasm_i32x4_add(acc2, acc3));
    uint64_t sum = (uint32_t)wasm_i32x4_extract_lane(acc, 0) + (uint32_t)wasm_i32x4_extract_lane(acc, 3);
#else
    uint64_t sum = 0;
    for (int64_t i = s; i < e; i++) {
        const uint64_t *q = (const uint64_t *)(a->buf + 64 * i);
        sum += q[0] + q[1] + q[2] + q[3] + q[4] + q[5] + q[6] + q[7];
    }
#endif
    __atomic_fetch_add(&a->sink, sum, __ATOMIC_RELAXED);
}

static void run_mem(void *p)
{
    mem_args *a = p;
    owl_pool_run(a->pool, mem_part, a);
}

/* ---- dot_i16x8 ceiling: 8 accumulators, one operand from a 1 KB buffer (L1),
 * so the dots are independent (throughput, not latency) ---- */
#define ROOF_ITERS 2000000
static volatile int32_t roof_sink;
static int16_t roof_buf[512];
static void run_roof(void *p)
{
    (void)p;
#ifdef OWL_SIMD128
    v128_t w = wasm_i16x8_splat((int16_t)((bench_rnd() & 0x3fff) | 1));
    v128_t a[8];
    for (int k = 0; k < 8; k++)
        a[k] = wasm_i32x4_splat(k + 1);
    for (int i = 0; i < ROOF_ITERS; i++) {
        const int16_t *x = roof_buf + 64 * (i & 7);
        for (int k = 0; k < 8; k++)
            a[k] = wasm_i32x4_add(a[k], wasm_i32x4_dot_i16x8(wasm_v128_load(x + 8 * k), w));
    }
    v128_t s = a[0];
    for (int k = 1; k < 8; k++)
        s = wasm_i32x4_add(s, a[k]);
    roof_sink = wasm_i32x4_extract_lane(s, 0);
#else
    int32_t w = (int16_t)((bench_rnd() & 0x3fff) | 1);
    uint32_t a[8];
    for (int k = 0; k < 8; k++)
        a[k] = (uint32_t)k + 1;
    for (int i = 0; i < ROOF_ITERS; i++) {
        const int16_t *x = roof_buf + 64 * (i & 7);
        for (int k = 0; k < 8; k++) /* 8 int16 MACs, like one dot */
            for (int l = 0; l < 8; l++)
                a[k] += (uint32_t)(x[8 * k + l] * w);
    }
    roof_sink = (int32_t)(a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7]);
#endif
}

/* name is an item of the comma-separated list */
int bench_listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0))
            return 1;
    return 0;
}

#if defined(OWL_RELAXED_BUILD) && defined(__wasm_relaxed_simd__)
/* ---- relaxed-dot ceiling (relaxed build): the same loop shape, int8 operands,
 * 16 multiply-adds per instruction ---- */
static int8_t roof_buf8[1024];
static void run_roof_relaxed(void *p)
{
    (void)p;
    v128_t w = wasm_i8x16_splat((int8_t)((bench_rnd() & 0x3f) | 1));
    v128_t a[8];
    for (int k = 0; k < 8; k++)
        a[k] = wasm_i32x4_splat(k + 1);
    for (int i = 0; i < ROOF_ITERS; i++) {
        const int8_t *x = roof_buf8 + 128 * (i & 7);
        for (int k = 0; k < 8; k++)
            a[k] = owl_relaxed_dot(wasm_v128_load(x + 16 * k), w, a[k]);
    }
    v128_t s = a[0];
    for (int k = 1; k < 8; k++)
        s = wasm_i32x4_add(s, a[k]);
    roof_sink = wasm_i32x4_extract_lane(s, 0);
}
#endif

#ifdef OWL_RELAXED_BUILD
/* ---- A/B (relaxed build): owl_dot_tile_simd128 and owl_dot_tile_relaxed on
 * the same weights and activations, one thread, timed trial by trial
 * alternately in one process, so load from other processes hits both alike
 * (wall-clock runs of separate builds on a busy machine are too noisy to
 * compare). Activations are quantized and expanded once, outside the timing. */
typedef struct {
    owl_type t;
    int64_t n, ntok;
    const uint8_t *W, *Xq, *Xx;
    size_t ws, qs, xs;
    float *Y;
    int relaxed;
} ab_args;

static void run_ab(void *p)
{
    const ab_args *a = p;
    for (int64_t r0 = 0; r0 < a->n; r0 += OWL_TILE_ROWS) {
        if (a->relaxed)
            owl_dot_tile_relaxed(a->t, a->n, a->W + (size_t)r0 * a->ws, a->ws, 0, OWL_TILE_ROWS, a->Xq, a->qs, a->Xx,
                                 a->xs, a->ntok, a->Y + r0, a->n);
        else
            owl_dot_tile_simd128(a->t, a->n, a->W + (size_t)r0 * a->ws, a->ws, 0, OWL_TILE_ROWS, a->Xx, a->xs,
                                 a->ntok, a->Y + r0, a->n, 0);
    }
}

static void bench_ab(owl_type t, int64_t n, int64_t ntok, const float *X, float *Y, double min_s)
{
    const owl_type at = owl_type_get(t)->vec_dot_type;
    ab_args a = {t, n, ntok, bench_weights(t, n, n), NULL, NULL, owl_row_size(t, n), owl_row_size(at, n),
                 owl_xrow_size(at, n), Y, 0};
    uint8_t *Xq = malloc(a.qs * (size_t)ntok), *Xx = malloc(a.xs * (size_t)ntok);
    if (!a.W || !Xq || !Xx) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    for (int64_t k = 0; k < ntok; k++) {
        owl_quantize_row(at, X + k * n, Xq + (size_t)k * a.qs, n);
        owl_expand_row(at, Xq + (size_t)k * a.qs, Xx + (size_t)k * a.xs, n);
    }
    a.Xq = Xq;
    a.Xx = Xx;
    double best[2] = {1e30, 1e30}, cpu;
    for (int round = 0; round < 10; round++)
        for (int v = 0; v < 2; v++) {
            a.relaxed = v;
            double s = time_it(run_ab, &a, min_s / 5, &cpu);
            if (s < best[v])
                best[v] = s;
        }
    const double macs = (double)n * (double)n * (double)ntok;
    printf("RESULT ab_%s_%s 1 %.3f %.3f 0\n", owl_type_get(t)->name, ntok > 1 ? "gemm64" : "gemv",
           macs / best[0] * 1e-9, macs / best[1] * 1e-9);
    fflush(stdout);
    free((void *)a.W);
    free(Xq);
    free(Xx);
}
#endif

/* ---- "gemm": owl_matmul at the prefill and vision shapes, 1 thread,
 * activation quantizing included (and timed alone as well: QX lines):
 * RESULT gemm_<type>_<rows>x<cols>x<ntok> 1 <GMAC/s> 0 <GMAC/CPU-s>.
 * "gemm<i>" runs shape i alone. ---- */
typedef struct {
    owl_type t;
    int64_t cols, ntok;
    const float *X;
    uint8_t *scratch;
} qx_args;

/* what owl_matmul does before the tiles: quantize and expand every token */
static void run_qx(void *p)
{
    const qx_args *a = p;
    const owl_type at = owl_type_get(a->t)->vec_dot_type;
    const size_t qs = owl_row_size(at, a->cols), xs = owl_xrow_size(at, a->cols);
    uint8_t *Xx = a->scratch + ((qs * (size_t)a->ntok + 15) & ~(size_t)15);
    for (int64_t k = 0; k < a->ntok; k++) {
        owl_quantize_row(at, a->X + k * a->cols, a->scratch + (size_t)k * qs, a->cols);
        owl_expand_row(at, a->scratch + (size_t)k * qs, Xx + (size_t)k * xs, a->cols);
    }
}

static int bench_gemm(owl_pool *pool, double min_s, unsigned mask)
{
    static const struct { owl_type t; int64_t rows, cols, ntok; } sh[] = {
        {OWL_TYPE_Q8_0, 4096, 4096, 64}, {OWL_TYPE_Q4_K, 4096, 4096, 64}, {OWL_TYPE_Q6_K, 4096, 4096, 64},
        {OWL_TYPE_Q8_0, 1024, 1024, 1025}, {OWL_TYPE_Q8_0, 4096, 1024, 1025}, {OWL_TYPE_Q8_0, 1024, 4096, 1025},
        {OWL_TYPE_Q6_K, 1024, 1024, 1025}, {OWL_TYPE_Q6_K, 4096, 1024, 1025}, {OWL_TYPE_Q6_K, 1024, 4096, 1025},
        /* the 7B prompt of the full-size bench (87 positions) and its parts */
        {OWL_TYPE_Q4_K, 4096, 4096, 87}, {OWL_TYPE_Q4_K, 4096, 4096, 23}, {OWL_TYPE_Q4_K, 11008, 4096, 87},
        {OWL_TYPE_Q6_K, 4096, 11008, 87},
    };
    for (size_t k = 0; k < sizeof sh / sizeof sh[0]; k++) {
        if (!(mask >> k & 1))
            continue;
        const int64_t rows = sh[k].rows, cols = sh[k].cols, ntok = sh[k].ntok;
        void *W = bench_weights(sh[k].t, rows, cols);
        float *X = malloc((size_t)(ntok * cols) * sizeof(float)), *Y = malloc((size_t)(ntok * rows) * sizeof(float));
        void *scratch = malloc(owl_matmul_scratch_size(sh[k].t, cols, ntok));
        if (!W || !X || !Y || !scratch)
            return 1;
        for (int64_t i = 0; i < ntok * cols; i++)
            X[i] = (float)((int)(bench_rnd() % 2001) - 1000) / 1000.0f;
        mm_args a = {pool, W, sh[k].t, rows, cols, ntok, X, Y, scratch};
        qx_args q = {sh[k].t, cols, ntok, X, scratch};
        double cpu, qcpu, s = time_it(run_mm, &a, min_s, &cpu), qs = time_it(run_qx, &q, min_s / 4, &qcpu);
        const double macs = (double)rows * (double)cols * (double)ntok;
        printf("QX gemm_%s_%lldx%lldx%lld: quantize+expand %.3f ms (CPU %.3f), whole call %.3f ms (CPU %.3f)\n",
               owl_type_get(sh[k].t)->name, (long long)rows, (long long)cols, (long long)ntok, qs * 1e3, qcpu * 1e3,
               s * 1e3, cpu * 1e3);
        printf("RESULT gemm_%s_%lldx%lldx%lld 1 %.3f 0 %.3f\n", owl_type_get(sh[k].t)->name, (long long)rows,
               (long long)cols, (long long)ntok, macs / s * 1e-9, macs / cpu * 1e-9);
        fflush(stdout);
        free(W);
        free(X);
        free(Y);
        free(scratch);
    }
    return 0;
}

/* owl_matmul on N x N weights of each listed type: GEMV and 64-token GEMM at 1
 * and 2 threads. */
static int bench_types(owl_pool *const pools[3], const char *only, const float *X, float *Y, void *scratch,
                       double min_s)
{
    const int64_t N = 4096, NTOK = 64;
    static const owl_type types[6] = {OWL_TYPE_Q4_0, OWL_TYPE_Q8_0, OWL_TYPE_Q4_K,
                                      OWL_TYPE_Q6_K, OWL_TYPE_F16, OWL_TYPE_F32};
    for (int k = 0; k < 6; k++) {
        if (only && !bench_listed(only, owl_type_get(types[k])->name))
            continue;
        void *W = bench_weights(types[k], N, N);
        if (!W)
            return 1;
        const double wbytes = (double)owl_row_size(types[k], N) * (double)N;
        for (int shape = 0; shape < 2; shape++)
            for (int nth = 1; nth <= 2; nth++) {
                mm_args a = {pools[nth], W, types[k], N, N, shape ? NTOK : 1, X, Y, scratch};
                double cpu, s = time_it(run_mm, &a, min_s, &cpu);
                double macs = (double)N * (double)N * (double)a.ntok;
                printf("RESULT %s_%s %d %.3f %.3f %.3f\n", owl_type_get(types[k])->name,
                       shape ? "gemm64" : "gemv", nth, macs / s * 1e-9, wbytes / s * 1e-9,
                       macs / cpu * 1e-9);
                fflush(stdout);
            }
        free(W);
    }
    return 0;
}

/* The ceilings: memory read at 1 and 2 threads, the dot loops at 1 thread. */
static int bench_roofs(owl_pool *const pools[3], double min_s)
{
    for (int big = 0; big < 2; big++) {
        const size_t bytes = big ? MEM_BYTES_DRAM : MEM_BYTES;
        uint8_t *buf = malloc(bytes);
        if (!buf)
            return 1;
        for (size_t i = 0; i < bytes; i++)
            buf[i] = (uint8_t)i;
        for (int nth = 1; nth <= 2; nth++) {
            mem_args m = {buf, 0, pools[nth], bytes};
            double cpu, s = time_it(run_mem, &m, min_s, &cpu);
            printf("RESULT %s %d 0 %.3f 0\n", big ? "memread_1g" : "memread", nth, bytes / s * 1e-9);
        }
        free(buf);
    }
    for (int i = 0; i < 512; i++)
        roof_buf[i] = (int16_t)(bench_rnd() & 0x7fff);
    double cpu, s = time_it(run_roof, NULL, min_s, &cpu);
    printf("RESULT dot_i16x8 1 %.3f 0 %.3f\n", (double)ROOF_ITERS * 8 * 8 / s * 1e-9,
           (double)ROOF_ITERS * 8 * 8 / cpu * 1e-9);
#if defined(OWL_RELAXED_BUILD) && defined(__wasm_relaxed_simd__)
    for (int i = 0; i < 1024; i++)
        roof_buf8[i] = (int8_t)bench_rnd();
    s = time_it(run_roof_relaxed, NULL, min_s, &cpu);
    printf("RESULT relaxed_dot 1 %.3f 0 %.3f\n", (double)ROOF_ITERS * 8 * 16 / s * 1e-9,
           (double)ROOF_ITERS * 8 * 16 / cpu * 1e-9);
#endif
    return 0;
}

int main(int argc, char **argv)
{
    double min_s = argc > 1 ? atof(argv[1]) : 0.25;
    if (!(min_s > 0))
        min_s = 0.25;
    const int64_t N = 4096, NTOK = 64;
#if defined(OWL_RELAXED_BUILD)
    printf("# owlet kernel bench: relaxed-SIMD build\n");
#elif defined(OWL_SIMD128)
    printf("# owlet kernel bench: SIMD128 build\n");
#else
    printf("# owlet kernel bench: scalar reference build\n");
#endif
    owl_pool *pools[3] = {NULL, owl_pool_init(1), owl_pool_init(2)};
    float *X = malloc((size_t)(NTOK * N) * sizeof(float));
    float *Y = malloc((size_t)(NTOK * N) * sizeof(float));
    void *scratch = malloc(owl_matmul_scratch_size(OWL_TYPE_Q4_K, N, NTOK) +
                           owl_matmul_scratch_size(OWL_TYPE_Q4_0, N, NTOK));
    if (!pools[1] || !pools[2] || !X || !Y || !scratch) {
        fprintf(stderr, "bench: out of memory or no thread pool\n");
        return 1;
    }
    for (int64_t i = 0; i < NTOK * N; i++)
        X[i] = (float)((int)(bench_rnd() % 2001) - 1000) / 1000.0f;
    const char *only = argc > 2 ? argv[2] : NULL;
    int err = bench_types(pools, only, X, Y, scratch, min_s);
#ifdef OWL_RELAXED_BUILD
    static const owl_type ab_types[4] = {OWL_TYPE_Q4_0, OWL_TYPE_Q8_0, OWL_TYPE_Q4_K, OWL_TYPE_Q6_K};
    for (int k = 0; !err && (!only || bench_listed(only, "ab")) && k < 4; k++)
        for (int shape = 0; shape < 2; shape++)
            bench_ab(ab_types[k], N, shape ? NTOK : 1, X, Y, min_s);
#endif
    unsigned gmask = 0; /* "gemm": all shapes; "gemm<i>": shape i (0-12) */
    for (int i = 0; i < 13; i++) {
        char name[8];
        snprintf(name, sizeof name, "gemm%d", i);
        if (bench_listed(only ? only : "", name))
            gmask |= 1u << i;
    }
    if (!err && only && bench_listed(only, "gemm"))
        gmask = (1u << 13) - 1;
    if (!err && gmask)
        err = bench_gemm(pools[1], min_s, gmask);
    if (!err && (!only || bench_listed(only, "roof")))
        err = bench_roofs(pools, min_s);
    static const struct { const char *mode; owl_type type; int r4; } dec[5] = {
        {"decode", OWL_TYPE_Q4_K, 1}, {"decode_rows", OWL_TYPE_Q4_K, 0}, {"decode_q6_K", OWL_TYPE_Q6_K, 1},
        {"decode_q8_0", OWL_TYPE_Q8_0, 0}, {"decode_q4_0", OWL_TYPE_Q4_0, 0}};
    for (int k = 0; k < 5; k++)
        for (int nth = 1; !err && only && bench_listed(only, dec[k].mode) && nth <= 2; nth++) {
            printf("PROFILE_OF %s %s\n", owl_type_get(dec[k].type)->name, dec[k].r4 ? "r4" : "rows");
            err = bench_decode_profile(pools[nth], nth, dec[k].type, dec[k].r4, 16);
        }
    /* "decode_ab": the q4_K token with the matrices row-major and in the r4
     * layout (as the engine loads them), alternately, 3 rounds, 1 thread */
    for (int round = 0; !err && only && bench_listed(only, "decode_ab") && round < 6; round++) {
        printf("PROFILE_OF q4_K %s\n", round % 2 ? "r4" : "rows");
        err = bench_decode_profile(pools[1], 1, OWL_TYPE_Q4_K, round % 2, 16);
    }
    for (int nth = 1; !err && only && bench_listed(only, "vision") && nth <= 2; nth++)
        err = bench_vision_profile(pools[nth], nth, 3);
    if (!err && only && bench_listed(only, "vattn"))
        err = bench_vision_attention(pools[1], 1, 5);
    for (int nth = 1; !err && only && bench_listed(only, "prefill") && nth <= 2; nth++)
        for (int vd = 0; !err && vd < 2; vd++)
            err = bench_prefill_profile(pools[nth], nth, vd ? OWL_TYPE_Q6_K : OWL_TYPE_Q4_K, 3);
    if (err)
        fprintf(stderr, "bench: out of memory\n");
    owl_pool_free(pools[1]);
    owl_pool_free(pools[2]);
    free(X);
    free(Y);
    free(scratch);
    return err;
}
