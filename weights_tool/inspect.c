/* inspect.c - `owlet inspect M.gguf` (metadata, tensor table, bytes per part,
 * stage plan) and `owlet inspect --plan CONFIG.json [--type T] [--budget-mib N]`
 * (sizes and stage layout from a config alone, no weights needed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/gguf.h"
#include "convert.h"
#include "gguf_info.h"

static const char *part_name[3] = {"vision", "abstractor", "llm"};

static const char *vtype_name(owl_gguf_vtype t)
{
    static const char *n[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"};
    return (unsigned)t < 13 ? n[t] : "?";
}

static void print_scalar(FILE *o, owl_gguf_vtype t, const uint8_t *p)
{
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        uint64_t u64;
        int64_t i64;
        double f64;
    } v;
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if ((unsigned)t >= 13 || !sz[t])
        return;
    memcpy(&v, p, sz[t]);
    switch (t) {
    case OWL_GGUF_UINT8: fprintf(o, "%u", v.u8); break;
    case OWL_GGUF_INT8: fprintf(o, "%d", v.i8); break;
    case OWL_GGUF_UINT16: fprintf(o, "%u", v.u16); break;
    case OWL_GGUF_INT16: fprintf(o, "%d", v.i16); break;
    case OWL_GGUF_UINT32: fprintf(o, "%u", v.u32); break;
    case OWL_GGUF_INT32: fprintf(o, "%d", v.i32); break;
    case OWL_GGUF_FLOAT32: fprintf(o, "%.9g", (double)v.f32); break;
    case OWL_GGUF_BOOL: fprintf(o, "%s", v.u8 ? "true" : "false"); break;
    case OWL_GGUF_UINT64: fprintf(o, "%llu", (unsigned long long)v.u64); break;
    case OWL_GGUF_INT64: fprintf(o, "%lld", (long long)v.i64); break;
    case OWL_GGUF_FLOAT64: fprintf(o, "%.17g", v.f64); break;
    default: break;
    }
}

static void print_kv(FILE *o, const owl_gguf_kv *kv)
{
    fprintf(o, "  %-48.*s %-4s ", (int)kv->key.len, kv->key.data, vtype_name(kv->type));
    if (kv->type == OWL_GGUF_STRING) {
        fprintf(o, "\"%.*s\"%s\n", (int)(kv->str.len < 60 ? kv->str.len : 60), kv->str.data, kv->str.len > 60 ? "..." : "");
        return;
    }
    if (kv->type != OWL_GGUF_ARRAY) {
        print_scalar(o, kv->type, kv->data);
        fputc('\n', o);
        return;
    }
    fprintf(o, "[%llu x %s]", (unsigned long long)kv->arr_n, vtype_name(kv->arr_type));
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    for (uint64_t i = 0; i < kv->arr_n && i < 4; i++) {
        fputc(' ', o);
        if (kv->arr_type == OWL_GGUF_STRING) {
            owl_gguf_str s = owl_gguf_arr_str(kv, i);
            fprintf(o, "\"%.*s\"", (int)(s.len < 20 ? s.len : 20), s.data);
        } else if ((unsigned)kv->arr_type < 13 && sz[kv->arr_type]) {
            print_scalar(o, kv->arr_type, kv->data + i * sz[kv->arr_type]);
        }
    }
    fprintf(o, "%s\n", kv->arr_n > 4 ? " ..." : "");
}

int owl_inspect_file(FILE *o, const char *path)
{
    owl_gguf_info info;
    owl_err err = {0};
    owl_status st = owl_conv_gguf_load_header(path, &info, &err);
    if (st) {
        fprintf(stderr, "inspect: %s (%s)\n", err.msg, owl_status_name(st));
        return 1;
    }
    const owl_gguf *g = &info.g;
    fprintf(o, "%s: GGUF v%u, %llu bytes, %llu metadata keys, %llu tensors, data at %llu, alignment %u\n", path,
           g->version, (unsigned long long)info.file_size, (unsigned long long)g->n_kv,
           (unsigned long long)g->n_tensors, (unsigned long long)g->data_offset, g->alignment);
    fprintf(o, "\nmetadata:\n");
    for (uint64_t i = 0; i < g->n_kv; i++)
        print_kv(o, &g->kv[i]);
    fprintf(o, "\ntensors:\n  %4s %-32s %-5s %-16s %12s %12s %5s\n", "#", "name", "type", "ne", "offset", "bytes", "stage");
    uint64_t part_bytes[3] = {0}, part_params[3] = {0};
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const owl_gguf_tensor *t = &g->tensors[i];
        char ne[64] = "";
        uint64_t nel = 1;
        for (int d = 0; d < t->n_dims; d++) {
            snprintf(ne + strlen(ne), sizeof ne - strlen(ne), "%s%lld", d ? "x" : "", (long long)t->ne[d]);
            nel *= (uint64_t)t->ne[d];
        }
        const owl_type_traits *tr = owl_type_get((int)t->type);
        fprintf(o, "  %4llu %-32.*s %-5s %-16s %12llu %12llu %5u\n", (unsigned long long)i, (int)t->name.len,
               t->name.data, tr ? tr->name : "?", ne, (unsigned long long)(g->data_offset + t->offset),
               (unsigned long long)t->size, owl_conv_gguf_tensor_stage(&info, t));
        int p = owl_conv_gguf_part(t);
        part_bytes[p] += t->size;
        part_params[p] += nel;
    }
    fprintf(o, "\nparts:\n");
    for (int p = 0; p < 3; p++)
        fprintf(o, "  %-10s %14llu params %10.1f MiB\n", part_name[p], (unsigned long long)part_params[p],
               (double)part_bytes[p] / 1048576.0);
    fprintf(o, "\nstages (owlet.stages, %u):\n", info.n_stages);
    for (uint32_t s = 0; s < info.n_stages; s++) {
        uint64_t a, e;
        owl_conv_gguf_stage_range(&info, s, &a, &e);
        fprintf(o, "  stage %u: layers [%u, %u), bytes [%llu, %llu) = %.1f MiB\n", s, info.stage_layer[s],
               info.stage_layer[s + 1], (unsigned long long)a, (unsigned long long)e, (double)(e - a) / 1048576.0);
    }
    owl_conv_gguf_free(&info);
    return 0;
}

int owl_inspect_plan(FILE *o, const char *config, owl_conv_ftype ft, owl_conv_vision vision, uint32_t budget)
{
    owl_err err = {0};
    char *buf;
    size_t n;
    owl_json *j = NULL;
    owl_conv_cfg cfg;
    owl_conv_plan plan;
    owl_status st = owl_conv_read_file(config, &buf, &n, &err);
    if (!st) {
        st = owl_json_parse(buf, n, &j, &err);
        free(buf);
    }
    if (!st)
        st = owl_conv_cfg_from_json(j, &cfg, &err);
    owl_json_free(j);
    if (!st)
        st = owl_conv_plan_build_vision(&cfg, ft, vision, budget, &plan, &err);
    if (st) {
        fprintf(stderr, "inspect --plan: %s: %s (%s)\n", config, err.msg, owl_status_name(st));
        return 1;
    }
    uint64_t part_bytes[3] = {0}, part_params[3] = {0}, by_type[OWL_TYPE_COUNT] = {0}, total = 0;
    int fallbacks = 0;
    for (size_t i = 0; i < plan.n; i++) {
        const owl_conv_tensor *t = &plan.t[i];
        part_bytes[t->part] += t->bytes;
        part_params[t->part] += (uint64_t)(t->ne[0] * t->ne[1]);
        by_type[t->type] += t->bytes;
        total += t->bytes;
        fallbacks += t->fallback;
    }
    fprintf(o, "%s as %s%s%s: %zu tensors, %.1f MiB of weights (%.3f GB)\n", config, owl_conv_ftype_name(ft),
            vision ? ", vision " : "", vision ? owl_conv_vision_name(vision) : "", plan.n, (double)total / 1048576.0,
            (double)total / 1e9);
    for (int p = 0; p < 3; p++)
        fprintf(o, "  %-10s %14llu params %10.1f MiB\n", part_name[p], (unsigned long long)part_params[p],
               (double)part_bytes[p] / 1048576.0);
    for (int t = 0; t < OWL_TYPE_COUNT; t++)
        if (by_type[t])
            fprintf(o, "  type %-5s %10.1f MiB\n", owl_type_get(t)->name, (double)by_type[t] / 1048576.0);
    if (fallbacks)
        fprintf(o, "  %d tensors fall back to a wider type (row length not a multiple of the block)\n", fallbacks);
    fprintf(o, "stages at a %u MiB budget (weights + f16 KV cache at %lld tokens + scratch):\n", budget,
           (long long)cfg.ctx);
    for (uint32_t s = 0; s < plan.n_stages; s++) {
        size_t a, e;
        uint64_t w = 0;
        owl_conv_stage_range(&plan, s, &a, &e);
        for (size_t i = a; i < e; i++)
            w += plan.t[i].bytes;
        fprintf(o, "  stage %u: layers [%u, %u), %zu tensors, weights %.1f MiB, estimated memory %.1f MiB\n", s,
               plan.stage_layer[s], plan.stage_layer[s + 1], e - a, (double)w / 1048576.0,
               (double)plan.stage_bytes[s] / 1048576.0);
    }
    owl_conv_plan_free(&plan);
    return 0;
}

int owl_inspect_main(int argc, char **argv)
{
    const char *plan_cfg = NULL, *file = NULL;
    owl_conv_ftype ft = OWL_CONV_TYPE_Q4_K_M;
    owl_conv_vision vision = OWL_CONV_VISION_DEFAULT;
    uint32_t budget = OWL_CONV_DEFAULT_BUDGET_MIB;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--plan") && i + 1 < argc) {
            plan_cfg = argv[++i];
        } else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            int t = owl_conv_ftype_parse(argv[++i]);
            if (t < 0) {
                fprintf(stderr, "inspect: unknown --type %s\n", argv[i]);
                return 2;
            }
            ft = (owl_conv_ftype)t;
        } else if (!strcmp(argv[i], "--vision-type") && i + 1 < argc) {
            int v = owl_conv_vision_parse(argv[++i]);
            if (v < 0) {
                fprintf(stderr, "inspect: unknown --vision-type %s (q8_0 or q6_k)\n", argv[i]);
                return 2;
            }
            vision = (owl_conv_vision)v;
        } else if (!strcmp(argv[i], "--budget-mib") && i + 1 < argc) {
            long v = strtol(argv[++i], NULL, 10);
            if (v <= 0 || v > (1 << 24)) {
                fprintf(stderr, "inspect: bad --budget-mib %s\n", argv[i]);
                return 2;
            }
            budget = (uint32_t)v;
        } else if (argv[i][0] != '-' && !file) {
            file = argv[i];
        } else {
            file = NULL;
            plan_cfg = NULL;
            break;
        }
    }
    if (plan_cfg)
        return owl_inspect_plan(stdout, plan_cfg, ft, vision, budget);
    if (file)
        return owl_inspect_file(stdout, file);
    fprintf(stderr, "usage: %s MODEL.gguf\n       %s --plan CONFIG.json [--type T] [--vision-type q8_0|q6_k] [--budget-mib N]\n",
            argc ? argv[0] : "inspect", argc ? argv[0] : "inspect");
    return 2;
}
