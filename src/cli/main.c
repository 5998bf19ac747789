/* main.c - the native `owlet` command.
 *
 *   owlet --model M.gguf [--image F] --prompt "question" [--n-predict N] [--temp T]
 *         [--top-k K] [--top-p P] [--seed S] [--threads N] [--ctx N] [--kv f16|f32]
 *         [--image-aspect stretch|pad|crop] [--dump-logits FILE]
 *   owlet tokenize --model M.gguf [--chat] [--image] [--parse-special] [--] TEXT
 *   owlet inspect ...            (weights_tool/inspect.c)
 *
 * --prompt is the user's question: the chat template is rendered here
 * (src/text/template.h), with the image placeholder in front when --image is
 * given. Text streams to stdout as generated, timings go to stderr.
 * --dump-logits writes float32 little-endian rows of n_vocab: one per prompt
 * position after image expansion (like the oracle's prefill_logits.f32), then
 * one per generated token fed back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../image/image.h"
#include "../owlet.h"
#include "../text/template.h"
#include "../text/tokenizer.h"

/* Provided by weights_tool/inspect.c when linked in (weak: the CLI still links
 * without it and says so). */
int owl_inspect_main(int argc, char **argv) __attribute__((weak));

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: owlet --model M.gguf [--image F] --prompt TEXT [--n-predict N] [--temp T]\n"
            "             [--top-k K] [--top-p P] [--seed S] [--threads N] [--ctx N] [--kv f16|f32]\n"
            "             [--image-aspect stretch|pad|crop] [--dump-logits FILE] [--print-ids]\n"
            "       owlet tokenize --model M.gguf [--chat] [--image] [--parse-special] [--] TEXT\n"
            "       owlet inspect M.gguf\n");
}

static int fail(const char *what, const char *msg)
{
    size_t n = strlen(what); /* "tokenizer: tokenizer: ..." once is enough */
    if (!strncmp(msg, what, n) && msg[n] == ':')
        fprintf(stderr, "owlet: %s\n", msg);
    else
        fprintf(stderr, "owlet: %s: %s\n", what, msg);
    return 1;
}

static const char *read_error = "cannot read"; /* why read_file returned NULL */

static void *read_file(const char *path, size_t *size)
{
    struct stat sb;
    read_error = "cannot read";
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) { /* a directory's size is LONG_MAX, a device's 0 */
        read_error = S_ISDIR(sb.st_mode) ? "is a directory, not a file" : "is not a regular file (a device?)";
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    char *buf = n >= 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        *size = (size_t)n;
    return buf;
}

/* ---------------------------------------------------------------- image */

static void get_f32x3(const owl_gguf *g, const char *key, float out[3], const float dflt[3])
{
    const void *d;
    uint64_t n;
    memcpy(out, dflt, 3 * sizeof(float));
    if (owl_gguf_get_arr(g, key, OWL_GGUF_FLOAT32, &d, &n, NULL) == OWL_OK && n == 3)
        memcpy(out, d, 3 * sizeof(float));
}

/* Decode, square, resize and normalise path into pixels (3*size*size). */
static owl_status load_image(const owl_model *m, const char *path, const char *aspect_name,
                             float **pixels, size_t *n, owl_err *err)
{
    const owl_gguf *g = owl_model_gguf(m);
    owl_model_info info;
    owl_model_get_info(m, &info);
    static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    float mean[3], std[3];
    get_f32x3(g, "mplug-owl2.image.mean", mean, clip_mean);
    get_f32x3(g, "mplug-owl2.image.std", std, clip_std);
    uint8_t pad[3];
    owl_image_pad_color_from_mean(mean, pad);
    const void *pd;
    uint64_t pn;
    if (owl_gguf_get_arr(g, "mplug-owl2.image.pad_color", OWL_GGUF_UINT8, &pd, &pn, NULL) == OWL_OK && pn == 3)
        memcpy(pad, pd, 3);
    char dflt[16] = "pad";
    owl_gguf_str s;
    if (!aspect_name && owl_gguf_get_str(g, "mplug-owl2.image.aspect", &s, NULL) == OWL_OK && s.len < sizeof dflt) {
        memcpy(dflt, s.data, s.len);
        dflt[s.len] = 0;
    }
    owl_image_aspect aspect;
    owl_status st = owl_image_aspect_from_name(aspect_name ? aspect_name : dflt, &aspect, err);
    if (st != OWL_OK)
        return st;
    size_t fsz = 0;
    void *bytes = read_file(path, &fsz);
    if (!bytes)
        return owl_err_set(err, OWL_E_IO, "%s", read_error);
    owl_image img = {0};
    st = owl_image_decode(bytes, fsz, &img, NULL, err);
    free(bytes);
    if (st != OWL_OK)
        return st;
    *n = (size_t)(3 * info.image_size * info.image_size);
    *pixels = malloc(sizeof(float) * *n);
    if (!*pixels) {
        owl_image_free(&img);
        return owl_err_set(err, OWL_E_NOMEM, "image: out of memory");
    }
    st = owl_image_preprocess(&img, (int)info.image_size, aspect, mean, std, pad, *pixels, NULL, err);
    owl_image_free(&img);
    return st;
}

/* ---------------------------------------------------------------- generate */

typedef struct {
    owl_session *s;
    const owl_tokenizer *tok;
    owl_tok_stream stream;
    char *piece;
    size_t cap;
    FILE *dump;
    int64_t n_vocab;
    int n;
    int print_ids; /* --print-ids: each generated id to stderr ("ids: 5 9 2") */
} gen_ctx;

static int dump_row(gen_ctx *c, const float *row)
{
    return c->dump && fwrite(row, sizeof(float), (size_t)c->n_vocab, c->dump) != (size_t)c->n_vocab;
}

static int on_token(void *user, int32_t tok)
{
    gen_ctx *c = user;
    /* the session's logits are those after the previous token was fed back */
    if (c->n++ > 0 && dump_row(c, owl_session_logits(c->s)))
        return 1;
    if (c->print_ids)
        fprintf(stderr, c->n == 1 ? "ids: %d" : " %d", (int)tok);
    size_t k = 0;
    if (owl_tok_stream_push(&c->stream, tok, c->piece, c->cap, &k, NULL) == OWL_OK && k) {
        fwrite(c->piece, 1, k, stdout);
        fflush(stdout);
    }
    return 0;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_float(const char *s, float *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || v != v)
        return -1;
    *out = (float)v;
    return 0;
}

/* ---------------------------------------------------------------- tokenize */

static int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *text = NULL;
    int chat = 0, image = 0, special = 0, opts_end = 0;
    for (int i = 1; i < argc; i++) {
        if (!opts_end && !strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!opts_end && !strcmp(argv[i], "--chat"))
            chat = 1;
        else if (!opts_end && !strcmp(argv[i], "--image"))
            image = 1;
        else if (!opts_end && !strcmp(argv[i], "--parse-special"))
            special = 1;
        else if (!opts_end && !strcmp(argv[i], "--"))
            opts_end = 1; /* TEXT may begin with '-' */
        else if (!text && (opts_end || argv[i][0] != '-'))
            text = argv[i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!model || !text) {
        usage(stderr);
        return 2;
    }
    size_t fsz = 0;
    void *file = read_file(model, &fsz);
    if (!file)
        return fail(model, read_error);
    owl_gguf g;
    owl_err err = {0};
    owl_tokenizer *tok = NULL;
    int rc = 0;
    if (owl_gguf_parse(file, fsz, 0, 0, &g, &err) != OWL_OK) {
        free(file);
        return fail(model, err.msg);
    }
    owl_status st = owl_tokenizer_init_gguf(&tok, &g, &err);
    int32_t *ids = NULL;
    size_t n = 0;
    if (st == OWL_OK) {
        if (chat || image) {
            owl_chat_msg msg = {OWL_ROLE_USER, text, image};
            st = owl_chat_tokenize_msgs(tok, &msg, 1, chat, 0, special, &ids, &n, NULL, &err);
        } else {
            owl_encode_opts eo = {.add_bos = 1, .parse_special = special};
            st = owl_tokenizer_encode(tok, text, strlen(text), &eo, &ids, &n, &err);
        }
    }
    if (st != OWL_OK) {
        rc = fail("tokenize", err.msg);
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%s%d", i ? " " : "", (int)ids[i]);
        printf("\n");
    }
    free(ids);
    owl_tokenizer_free(tok);
    owl_gguf_free(&g);
    free(file);
    return rc;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "tokenize"))
        return cmd_tokenize(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "inspect")) {
        if (!owl_inspect_main)
            return fail("inspect", "not linked into this build (use owlet-convert inspect)");
        return owl_inspect_main(argc - 1, argv + 1);
    }
    const char *model_path = NULL, *image_path = NULL, *prompt = NULL, *dump_path = NULL;
    const char *aspect = NULL;
    long n_predict = -1, top_k = -1, threads = 1, seed = 0, n_ctx = 0;
    float temp = -1, top_p = -1;
    owl_type kv = OWL_TYPE_F16;
    int print_ids = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--print-ids")) {
            print_ids = 1;
            continue;
        }
        if (!v) {
            bad = 1;
        } else if (!strcmp(a, "--model")) {
            model_path = v;
        } else if (!strcmp(a, "--image")) {
            image_path = v;
        } else if (!strcmp(a, "--prompt")) {
            prompt = v;
        } else if (!strcmp(a, "--dump-logits")) {
            dump_path = v;
        } else if (!strcmp(a, "--image-aspect")) {
            aspect = v;
        } else if (!strcmp(a, "--n-predict")) {
            bad = parse_int(v, 1, 1 << 20, &n_predict);
        } else if (!strcmp(a, "--top-k")) {
            bad = parse_int(v, 0, 1 << 24, &top_k);
        } else if (!strcmp(a, "--threads")) {
            bad = parse_int(v, 1, 256, &threads);
        } else if (!strcmp(a, "--seed")) {
            bad = parse_int(v, 0, 0x7fffffffL, &seed);
        } else if (!strcmp(a, "--ctx")) {
            bad = parse_int(v, 1, 1 << 20, &n_ctx);
        } else if (!strcmp(a, "--temp")) {
            bad = parse_float(v, &temp);
        } else if (!strcmp(a, "--top-p")) {
            bad = parse_float(v, &top_p);
        } else if (!strcmp(a, "--kv")) {
            bad = strcmp(v, "f16") && strcmp(v, "f32");
            kv = !strcmp(v, "f32") ? OWL_TYPE_F32 : OWL_TYPE_F16;
        } else {
            bad = 1;
        }
        if (bad) {
            fprintf(stderr, "owlet: bad argument %s %s\n", a, v ? v : "");
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (!model_path || !prompt) {
        usage(stderr);
        return 2;
    }

    owl_err err = {0};
    owl_model *m = NULL;
    owl_session *s = NULL;
    owl_tokenizer *tok = NULL;
    float *pixels = NULL, *logits = NULL;
    int32_t *ids = NULL;
    char *text = NULL;
    FILE *dump = NULL;
    int rc = 1;
    owl_status st;
    double t0 = now_ms();
    if ((st = owl_model_load_file(model_path, NULL, &m, &err)) != OWL_OK) {
        fail("model", err.msg);
        goto done;
    }
    owl_model_info info;
    owl_model_get_info(m, &info);
    const owl_gguf *g = owl_model_gguf(m);
    double t_load = now_ms() - t0;
    if ((st = owl_tokenizer_init_gguf(&tok, g, &err)) != OWL_OK) {
        fail("tokenizer", err.msg);
        goto done;
    }
    /* generation defaults: flags, else the model's reference defaults, else greedy */
    owl_gen_opts gen = owl_gen_opts_default();
    uint32_t u;
    float f;
    if (owl_gguf_get_f32(g, "mplug-owl2.generation.temperature", &f, NULL) == OWL_OK)
        gen.temperature = f;
    if (owl_gguf_get_f32(g, "mplug-owl2.generation.top_p", &f, NULL) == OWL_OK)
        gen.top_p = f;
    if (owl_gguf_get_u32(g, "mplug-owl2.generation.top_k", &u, NULL) == OWL_OK)
        gen.top_k = (int)u;
    if (owl_gguf_get_u32(g, "mplug-owl2.generation.max_new_tokens", &u, NULL) == OWL_OK && u > 0)
        gen.n_predict = (int)u;
    if (n_predict > 0)
        gen.n_predict = (int)n_predict;
    if (temp >= 0)
        gen.temperature = temp;
    if (top_k >= 0)
        gen.top_k = (int)top_k;
    if (top_p >= 0)
        gen.top_p = top_p;
    gen.seed = (uint64_t)seed;

    owl_session_opts so = owl_session_opts_default();
    so.n_ctx = n_ctx;
    so.kv_type = kv;
    so.n_threads = (int)threads;
    if ((st = owl_session_init(m, &so, &s, &err)) != OWL_OK) {
        fail("session", err.msg);
        goto done;
    }
    double t_img = 0;
    if (image_path) {
        if (!info.has_vision) {
            fail(image_path, "this model has no vision tower");
            goto done;
        }
        size_t n = 0;
        if ((st = load_image(m, image_path, aspect, &pixels, &n, &err)) != OWL_OK) {
            fail(image_path, err.msg);
            goto done;
        }
        double t1 = now_ms();
        if ((st = owl_session_encode_image(s, pixels, n, NULL)) != OWL_OK) {
            fail("image", owl_session_error(s));
            goto done;
        }
        t_img = now_ms() - t1;
    }
    owl_chat_msg msg = {OWL_ROLE_USER, prompt, image_path ? 1 : 0};
    size_t n_ids = 0;
    if ((st = owl_chat_tokenize_msgs(tok, &msg, 1, 1, 0, 0, &ids, &n_ids, NULL, &err)) != OWL_OK) {
        fail("prompt", err.msg);
        goto done;
    }
    int64_t L = owl_model_expanded_len(m, ids, (int64_t)n_ids);
    if (dump_path) {
        if (!(dump = fopen(dump_path, "wb"))) {
            fail(dump_path, "cannot open for writing");
            goto done;
        }
        logits = malloc(sizeof(float) * (size_t)L * (size_t)info.n_vocab);
        if (!logits) {
            fail("dump-logits", "out of memory");
            goto done;
        }
    }
    double t2 = now_ms();
    if ((st = owl_session_prefill(s, ids, (int64_t)n_ids, logits, NULL)) != OWL_OK) {
        fail("prefill", owl_session_error(s));
        goto done;
    }
    double t_prefill = now_ms() - t2;
    if (dump && fwrite(logits, sizeof(float), (size_t)(L * info.n_vocab), dump) != (size_t)(L * info.n_vocab)) {
        fail(dump_path, "write failed");
        goto done;
    }
    gen_ctx gc = {.s = s, .tok = tok, .dump = dump, .n_vocab = info.n_vocab, .print_ids = print_ids};
    owl_tok_stream_init(&gc.stream, tok);
    gc.cap = owl_tok_stream_max_out(tok);
    gc.piece = malloc(gc.cap);
    int64_t n_gen = 0;
    double t3 = now_ms();
    st = gc.piece ? owl_session_generate(s, &gen, on_token, &gc, NULL, &n_gen) : OWL_E_NOMEM;
    double t_gen = now_ms() - t3;
    if (st == OWL_OK || st == OWL_E_LIMIT) {
        size_t k = 0;
        if (owl_tok_stream_finish(&gc.stream, gc.piece, gc.cap, &k, NULL) == OWL_OK && k)
            fwrite(gc.piece, 1, k, stdout);
        printf("\n");
        fflush(stdout);
        /* the last token was fed back (not eos): its logits row too */
        if (owl_session_n_past(s) == L + n_gen && n_gen > 0 && dump_row(&gc, owl_session_logits(s)))
            st = OWL_E_IO;
    }
    free(gc.piece);
    if (print_ids)
        fputc('\n', stderr);
    if (st == OWL_E_LIMIT)
        fprintf(stderr, "owlet: stopped: %s\n", owl_session_error(s));
    else if (st != OWL_OK) {
        fail("generate", st == OWL_E_IO ? "dump write failed" : owl_session_error(s));
        goto done;
    }
    fprintf(stderr, "owlet: load %.0f ms, image encode %.1f ms, prefill %lld tok in %.1f ms (%.1f tok/s), "
                    "decode %lld tok in %.1f ms (%.2f tok/s), %d thread(s)\n",
            t_load, t_img, (long long)L, t_prefill, L / (t_prefill / 1e3 + 1e-9), (long long)n_gen, t_gen,
            n_gen / (t_gen / 1e3 + 1e-9), (int)threads);
    rc = 0;
done:
    if (dump && fclose(dump) != 0 && rc == 0)
        rc = fail(dump_path, "close failed");
    free(logits);
    free(text);
    free(ids);
    free(pixels);
    owl_tokenizer_free(tok);
    owl_session_free(s);
    owl_model_free(m);
    return rc;
}
