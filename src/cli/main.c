/* main.c - the native `owlet` command.
 *
 *   owlet --model M.gguf [--image F] --prompt "question" [--n-predict N] [--temp T]
 *         [--top-k K] [--top-p P] [--seed S] [--threads N] [--ctx N] [--kv f16|f32]
 *         [--image-aspect stretch|pad|crop] [--dump-logits FILE]
 *   owlet tokenize --model M.gguf [--chat] [--image] [--parse-special] [--] TEXT
 *   owlet inspect ...            (weights_tool/inspect.c)
 *
 * --prompt is the user's question; the conversation (template, image
 * preprocessing with the model's settings, sampling, UTF-8 streaming) is the
 * library's owl_chat (src/owlet.h), as in the browser. Text streams to stdout
 * as generated, timings go to stderr.
 * --dump-logits writes float32 little-endian rows of n_vocab: one per prompt
 * position after image expansion (like the oracle's prefill_logits.f32), then
 * one per generated token fed back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../owlet.h"

/* Provided by weights_tool/inspect.c when linked in (weak: the CLI still links
 * without it and says so). */
int owl_inspect_main(int argc, char **argv) __attribute__((weak));

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

/* ---------------------------------------------------------------- options */

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
    int rc = 0;
    if (owl_gguf_parse(file, fsz, 0, 0, &g, &err) != OWL_OK) {
        free(file);
        return fail(model, err.msg);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    if (owl_prompt_tokenize(&g, text, chat, image, special, &ids, &n, &err) != OWL_OK) {
        rc = fail("tokenize", err.msg);
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%s%d", i ? " " : "", (int)ids[i]);
        printf("\n");
    }
    free(ids);
    owl_gguf_free(&g);
    free(file);
    return rc;
}

/* ---------------------------------------------------------------- main */

typedef struct {
    const char *model, *image, *prompt, *dump, *aspect;
    long n_predict, top_k, threads, seed, n_ctx;
    float temp, top_p;
    owl_type kv;
    int print_ids;
} args;

/* 0 ok, 1 help shown, 2 bad arguments (usage shown). */
static int parse_args(int argc, char **argv, args *o)
{
    *o = (args){.n_predict = -1, .top_k = -1, .threads = 1, .temp = -1, .top_p = -1, .kv = OWL_TYPE_F16};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--print-ids")) {
            o->print_ids = 1;
            continue;
        }
        if (!v)
            bad = 1;
        else if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--image"))
            o->image = v;
        else if (!strcmp(a, "--prompt"))
            o->prompt = v;
        else if (!strcmp(a, "--dump-logits"))
            o->dump = v;
        else if (!strcmp(a, "--image-aspect"))
            o->aspect = v;
        else if (!strcmp(a, "--n-predict"))
            bad = parse_int(v, 1, 1 << 20, &o->n_predict);
        else if (!strcmp(a, "--top-k"))
            bad = parse_int(v, 0, 1 << 24, &o->top_k);
        else if (!strcmp(a, "--threads"))
            bad = parse_int(v, 1, 256, &o->threads);
        else if (!strcmp(a, "--seed"))
            bad = parse_int(v, 0, 0x7fffffffL, &o->seed);
        else if (!strcmp(a, "--ctx"))
            bad = parse_int(v, 1, 1 << 20, &o->n_ctx);
        else if (!strcmp(a, "--temp"))
            bad = parse_float(v, &o->temp);
        else if (!strcmp(a, "--top-p"))
            bad = parse_float(v, &o->top_p);
        else if (!strcmp(a, "--kv")) {
            bad = strcmp(v, "f16") && strcmp(v, "f32");
            o->kv = !strcmp(v, "f32") ? OWL_TYPE_F32 : OWL_TYPE_F16;
        } else
            bad = 1;
        if (bad) {
            fprintf(stderr, "owlet: bad argument %s %s\n", a, v ? v : "");
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (!o->model || !o->prompt) {
        usage(stderr);
        return 2;
    }
    return 0;
}

/* Generation settings: the flags, else the model's reference defaults, else greedy. */
static owl_chat_gen gen_settings(const owl_model *m, const args *o)
{
    const owl_gguf *g = owl_model_gguf(m);
    owl_chat_gen gen = owl_chat_gen_default();
    gen.max_tokens = 128;
    uint32_t u;
    float f;
    if (owl_gguf_get_f32(g, "mplug-owl2.generation.temperature", &f, NULL) == OWL_OK)
        gen.temperature = f;
    if (owl_gguf_get_f32(g, "mplug-owl2.generation.top_p", &f, NULL) == OWL_OK)
        gen.top_p = f;
    if (owl_gguf_get_u32(g, "mplug-owl2.generation.top_k", &u, NULL) == OWL_OK)
        gen.top_k = (int)u;
    if (owl_gguf_get_u32(g, "mplug-owl2.generation.max_new_tokens", &u, NULL) == OWL_OK && u > 0)
        gen.max_tokens = (int)u;
    if (o->n_predict > 0)
        gen.max_tokens = (int)o->n_predict;
    if (o->temp >= 0)
        gen.temperature = o->temp;
    if (o->top_k >= 0)
        gen.top_k = (int)o->top_k;
    if (o->top_p >= 0)
        gen.top_p = o->top_p;
    gen.seed = (uint64_t)o->seed;
    return gen;
}

typedef struct {
    FILE *dump;
    int64_t n_vocab;
    double t_img, t_prefill, t_gen;
    int64_t n_prompt, n_gen;
} run_info;

static int dump_rows(run_info *r, const float *rows, int64_t n)
{
    size_t k = (size_t)(n * r->n_vocab);
    return r->dump && fwrite(rows, sizeof(float), k, r->dump) != k;
}

/* The image (if any) and the question: encode, prefill (dumping every
 * prompt position's logits when asked). Returns 0 or prints the error. */
static int run_prompt(owl_chat *c, const args *o, run_info *r)
{
    if (o->image) {
        size_t n = 0;
        void *bytes = read_file(o->image, &n);
        if (!bytes)
            return fail(o->image, read_error);
        double t0 = owl_now_ms();
        owl_status st = owl_chat_add_image_encoded(c, bytes, n);
        r->t_img = owl_now_ms() - t0;
        free(bytes);
        if (st != OWL_OK)
            return fail(o->image, owl_chat_error(c));
    }
    int64_t pos0 = 0;
    if (owl_chat_prepare(c, o->prompt, &r->n_prompt, &pos0) != OWL_OK)
        return fail("prompt", owl_chat_error(c));
    float *logits = NULL;
    if (r->dump && !(logits = malloc(sizeof(float) * (size_t)(r->n_prompt * r->n_vocab))))
        return fail("dump-logits", "out of memory");
    double t0 = owl_now_ms();
    owl_status st = owl_chat_run(c, logits);
    r->t_prefill = owl_now_ms() - t0;
    int rc = st != OWL_OK ? fail("prefill", owl_chat_error(c)) : 0;
    if (rc == 0 && dump_rows(r, logits, r->n_prompt))
        rc = fail(o->dump, "write failed");
    free(logits);
    return rc;
}

/* Generate, streaming pieces to stdout; each sampled-from logits row after the
 * first (the prompt's last) goes to the dump, and at a max-tokens end the
 * last token is fed back for its row too. */
static int run_answer(owl_session *s, owl_chat *c, const owl_chat_gen *gen, const args *o, run_info *r)
{
    if (owl_chat_gen_begin(c, gen) != OWL_OK)
        return fail("generate", owl_chat_error(c));
    double t0 = owl_now_ms();
    int st;
    do {
        st = owl_chat_step(c);
        if (st < 0)
            break;
        if (r->n_gen++ > 0 && dump_rows(r, owl_chat_logits(c), 1))
            return fail(o->dump, "write failed");
        if (o->print_ids)
            fprintf(stderr, r->n_gen == 1 ? "ids: %d" : " %d", (int)owl_chat_last_token(c));
        size_t n = 0;
        const char *p = owl_chat_piece(c, &n);
        fwrite(p, 1, n, stdout);
        fflush(stdout);
    } while (st > 0);
    r->t_gen = owl_now_ms() - t0;
    printf("\n");
    if (o->print_ids)
        fputc('\n', stderr);
    if (st < 0)
        return fail("generate", owl_chat_error(c));
    if (owl_chat_reason(c) == OWL_CHAT_CONTEXT)
        fprintf(stderr, "owlet: stopped: the context (%lld positions) is full\n", (long long)owl_session_n_ctx(s));
    const float *last = NULL;
    if (r->dump && owl_chat_reason(c) == OWL_CHAT_LENGTH &&
        (owl_session_decode(s, owl_chat_last_token(c), &last) != OWL_OK || dump_rows(r, last, 1)))
        return fail(o->dump, "feeding the last token back failed");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "tokenize"))
        return cmd_tokenize(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "inspect")) {
        if (!owl_inspect_main)
            return fail("inspect", "not linked into this build (use owlet-convert inspect)");
        return owl_inspect_main(argc - 1, argv + 1);
    }
    args o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : 2;
    owl_err err = {0};
    owl_model *m = NULL;
    owl_session *s = NULL;
    owl_chat *c = NULL;
    run_info r = {0};
    rc = 1;
    double t0 = owl_now_ms();
    if (owl_model_load_file(o.model, NULL, &m, &err) != OWL_OK) {
        fail("model", err.msg);
        goto done;
    }
    double t_load = owl_now_ms() - t0;
    owl_session_opts so = owl_session_opts_default();
    so.n_ctx = o.n_ctx;
    so.kv_type = o.kv;
    so.n_threads = (int)o.threads;
    owl_chat_opts co = {o.aspect};
    if (owl_session_init(m, &so, &s, &err) != OWL_OK || owl_chat_init(m, s, &co, &c, &err) != OWL_OK) {
        fail("session", err.msg);
        goto done;
    }
    owl_model_info info;
    owl_model_get_info(m, &info);
    r.n_vocab = info.n_vocab;
    if (o.dump && !(r.dump = fopen(o.dump, "wb"))) {
        fail(o.dump, "cannot open for writing");
        goto done;
    }
    owl_chat_gen gen = gen_settings(m, &o);
    if (run_prompt(c, &o, &r) || run_answer(s, c, &gen, &o, &r))
        goto done;
    fprintf(stderr, "owlet: load %.0f ms, image encode %.1f ms, prefill %lld tok in %.1f ms (%.1f tok/s), "
                    "decode %lld tok in %.1f ms (%.2f tok/s), %d thread(s)\n",
            t_load, r.t_img, (long long)r.n_prompt, r.t_prefill, r.n_prompt / (r.t_prefill / 1e3 + 1e-9),
            (long long)r.n_gen, r.t_gen, r.n_gen / (r.t_gen / 1e3 + 1e-9), (int)o.threads);
    rc = 0;
done:
    if (r.dump && fclose(r.dump) != 0 && rc == 0)
        rc = fail(o.dump, "close failed");
    owl_chat_free(c);
    owl_session_free(s);
    owl_model_free(m);
    return rc;
}
