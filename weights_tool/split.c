/* split.c - GGUF -> fixed-size chunks + manifest.json (design §4; schema in
 * docs/FORMAT.md "Manifest"). Also the GGUF header loader shared with
 * inspect.c, and the stage layout of a written file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../src/core/gguf.h"
#include "../src/core/sha256.h"
#include "convert.h"
#include "gguf_info.h"
#include "outfile.h"

#define HEADER_MAX ((size_t)256 << 20)

owl_status owl_conv_gguf_load_header(const char *path, owl_gguf_info *info, owl_err *err)
{
    memset(info, 0, sizeof *info);
    FILE *f = fopen(path, "rb");
    if (!f)
        return owl_err_set(err, errno == ENOENT ? OWL_E_NOTFOUND : OWL_E_IO, "%s: cannot open: %s", path,
                           strerror(errno));
    if (fseeko(f, 0, SEEK_END)) {
        fclose(f);
        return owl_err_set(err, OWL_E_IO, "%s: cannot seek", path);
    }
    uint64_t fsize = (uint64_t)ftello(f);
    size_t want = 1 << 20;
    owl_status st = OWL_OK;
    for (;;) {
        if (want > fsize)
            want = (size_t)fsize;
        uint8_t *buf = realloc(info->buf, want ? want : 1);
        if (!buf) {
            st = owl_err_set(err, OWL_E_NOMEM, "%s: out of memory", path);
            break;
        }
        info->buf = buf;
        if (fseeko(f, 0, SEEK_SET) || fread(buf, 1, want, f) != want) {
            st = owl_err_set(err, OWL_E_IO, "%s: read error", path);
            break;
        }
        owl_err e2 = {0};
        st = owl_gguf_parse(buf, want, 1, fsize, &info->g, &e2);
        if (st == OWL_E_TRUNCATED && want < fsize && want < HEADER_MAX) {
            want *= 4;
            continue;
        }
        if (st)
            owl_err_set(err, st, "%s: %s", path, e2.msg);
        break;
    }
    fclose(f);
    if (st) {
        free(info->buf);
        info->buf = NULL;
        return st;
    }
    info->file_size = fsize;
    /* stage plan: owlet.stages (layer starts) and block_count */
    const void *arr;
    uint64_t n = 0;
    info->n_stages = 1;
    info->stage_layer[0] = 0;
    owl_gguf_str arch = {0};
    owl_gguf_get_str(&info->g, "general.architecture", &arch, NULL);
    char key[160];
    snprintf(key, sizeof key, "%.*s.block_count", (int)(arch.len < 100 ? arch.len : 100), arch.data ? arch.data : "");
    uint32_t blocks = 0;
    owl_gguf_get_u32(&info->g, key, &blocks, NULL);
    info->n_layers = blocks;
    if (!owl_gguf_get_arr(&info->g, "owlet.stages", OWL_GGUF_UINT32, &arr, &n, NULL) && n >= 1 &&
        n <= OWL_CONV_MAX_STAGES) {
        for (uint64_t i = 0; i < n; i++) {
            uint32_t v;
            memcpy(&v, (const uint8_t *)arr + 4 * i, 4);
            info->stage_layer[i] = v;
            if ((i == 0 && v != 0) || (i > 0 && v < info->stage_layer[i - 1]) || v > blocks) {
                owl_conv_gguf_free(info);
                return owl_err_set(err, OWL_E_FORMAT, "%s: owlet.stages[%llu] = %u is not an increasing layer "
                                   "start <= %u", path, (unsigned long long)i, v, blocks);
            }
        }
        info->n_stages = (uint32_t)n;
    }
    info->stage_layer[info->n_stages] = blocks;
    return OWL_OK;
}

void owl_conv_gguf_free(owl_gguf_info *info)
{
    if (!info)
        return;
    owl_gguf_free(&info->g);
    free(info->buf);
    memset(info, 0, sizeof *info);
}

uint32_t owl_conv_gguf_tensor_stage(const owl_gguf_info *info, const owl_gguf_tensor *t)
{
    char name[80];
    snprintf(name, sizeof name, "%.*s", (int)(t->name.len < 70 ? t->name.len : 70), t->name.data);
    int layer;
    if (sscanf(name, "blk.%d.", &layer) == 1 && layer >= 0) {
        uint32_t s = 0;
        while (s + 1 < info->n_stages && (uint32_t)layer >= info->stage_layer[s + 1])
            s++;
        return s;
    }
    if (!strcmp(name, "output_norm.weight") || !strcmp(name, "output.weight"))
        return info->n_stages - 1;
    return 0;
}

int owl_conv_gguf_part(const owl_gguf_tensor *t)
{
    if (t->name.len >= 2 && !memcmp(t->name.data, "v.", 2))
        return OWL_PART_VISION;
    if (t->name.len >= 2 && !memcmp(t->name.data, "a.", 2))
        return OWL_PART_ABSTRACTOR;
    return OWL_PART_LLM;
}

const char *owl_conv_quant_name(uint32_t file_type)
{
    switch (file_type) {
    case 0: return "f32";
    case 1: return "f16";
    case 2: return "q4_0";
    case 7: return "q8_0";
    case 14: return "q4_k";
    case 15: return "q4_k_m";
    case 18: return "q6_k";
    default: return "unknown";
    }
}

void owl_conv_gguf_stage_range(const owl_gguf_info *info, uint32_t s, uint64_t *off, uint64_t *end)
{
    uint64_t a = UINT64_MAX, e = 0;
    for (uint64_t i = 0; i < info->g.n_tensors; i++) {
        const owl_gguf_tensor *t = &info->g.tensors[i];
        if (owl_conv_gguf_tensor_stage(info, t) != s)
            continue;
        uint64_t o = info->g.data_offset + t->offset;
        if (o < a)
            a = o;
        if (o + t->size > e)
            e = o + t->size;
    }
    if (a == UINT64_MAX)
        a = e = info->g.data_offset;
    *off = a;
    *end = e;
}

uint64_t owl_conv_gguf_param_count(const owl_gguf_info *info)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < info->g.n_tensors; i++) {
        uint64_t e = 1;
        for (int d = 0; d < info->g.tensors[i].n_dims; d++)
            e *= (uint64_t)info->g.tensors[i].ne[d];
        n += e;
    }
    return n;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Write n bytes to a new temporary file for path (not renamed yet). */
static owl_status write_new(owl_outfile *o, const char *path, const char *input, const void *data, size_t n,
                            owl_err *err)
{
    owl_status st = owl_outfile_check(path, &input, 1, err);
    if (!st)
        st = owl_outfile_open(o, path, err);
    if (!st)
        st = owl_outfile_write(o, data, n, err);
    if (!st)
        st = owl_outfile_close(o, err);
    return st;
}

/* The manifest's text (malloc'd) for info and the chunk hashes. */
static char *manifest_text(const owl_gguf_info *info, const char *gguf_path, const char *stem, uint64_t chunk,
                           uint64_t n_chunks, char (*hex)[65], const char *whole_hex, size_t *len)
{
    char *text = NULL;
    FILE *m = open_memstream(&text, len);
    if (!m)
        return NULL;
    owl_gguf_str s = {0};
    char name[256] = "", arch[64] = "", path[600];
    if (!owl_gguf_get_str(&info->g, "general.name", &s, NULL))
        snprintf(name, sizeof name, "%.*s", (int)(s.len < 200 ? s.len : 200), s.data);
    if (!owl_gguf_get_str(&info->g, "general.architecture", &s, NULL))
        snprintf(arch, sizeof arch, "%.*s", (int)(s.len < 60 ? s.len : 60), s.data);
    uint32_t ft = 0;
    owl_gguf_get_u32(&info->g, "general.file_type", &ft, NULL);
    fprintf(m, "{\n  \"format\": \"owlet-manifest\",\n  \"version\": 1,\n  \"model\": {\n    \"name\": ");
    owl_json_write_str(m, name);
    fprintf(m, ",\n    \"architecture\": ");
    owl_json_write_str(m, arch);
    fprintf(m, ",\n    \"quant\": \"%s\",\n    \"file_type\": %u,\n    \"parameters\": %llu,\n"
               "    \"layers\": %u\n  },\n", owl_conv_quant_name(ft), ft,
            (unsigned long long)owl_conv_gguf_param_count(info), info->n_layers);
    fprintf(m, "  \"file\": {\n    \"name\": ");
    owl_json_write_str(m, base_name(gguf_path));
    fprintf(m, ",\n    \"size\": %llu,\n    \"sha256\": \"%s\",\n    \"header_size\": %llu\n  },\n",
            (unsigned long long)info->file_size, whole_hex, (unsigned long long)info->g.data_offset);
    fprintf(m, "  \"chunk_size\": %llu,\n  \"chunks\": [\n", (unsigned long long)chunk);
    uint64_t fsize = info->file_size;
    for (uint64_t c = 0; c < n_chunks; c++) {
        uint64_t n = fsize - c * chunk < chunk ? fsize - c * chunk : chunk;
        fprintf(m, "    {\"index\": %llu, \"offset\": %llu, \"size\": %llu, \"sha256\": \"%s\", \"url\": ",
                (unsigned long long)c, (unsigned long long)(c * chunk), (unsigned long long)n, hex[c]);
        snprintf(path, sizeof path, "%s.%04llu.bin", stem, (unsigned long long)c);
        owl_json_write_str(m, path);
        fprintf(m, "}%s\n", c + 1 < n_chunks ? "," : "");
    }
    fprintf(m, "  ],\n  \"stages\": [\n");
    for (uint32_t s2 = 0; s2 < info->n_stages; s2++) {
        uint64_t a, e;
        owl_conv_gguf_stage_range(info, s2, &a, &e);
        fprintf(m, "    {\"index\": %u, \"layer_start\": %u, \"layer_end\": %u, \"offset\": %llu, \"size\": %llu, "
                   "\"first_chunk\": %llu, \"last_chunk\": %llu}%s\n",
                s2, info->stage_layer[s2], info->stage_layer[s2 + 1], (unsigned long long)a,
                (unsigned long long)(e - a), (unsigned long long)(a / chunk),
                (unsigned long long)(e > a ? (e - 1) / chunk : a / chunk), s2 + 1 < info->n_stages ? "," : "");
    }
    fprintf(m, "  ]\n}\n");
    if (fclose(m) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

owl_status owl_split(const char *gguf_path, const char *dir, uint32_t chunk_mib, owl_err *err)
{
    if (chunk_mib == 0 || chunk_mib > OWL_CONV_MAX_CHUNK_MIB)
        return owl_err_set(err, OWL_E_INVALID, "--chunk-mib %u outside 1..%d (the loaders refuse chunks over "
                           "1 GiB)", chunk_mib, OWL_CONV_MAX_CHUNK_MIB);
    struct stat sd;
    if (stat(dir, &sd) == 0 && !S_ISDIR(sd.st_mode))
        return owl_err_set(err, OWL_E_INVALID, "%s: the output folder exists and is not a directory", dir);
    owl_gguf_info info;
    owl_status st = owl_conv_gguf_load_header(gguf_path, &info, err);
    if (st)
        return st;
    char stem[256];
    snprintf(stem, sizeof stem, "%s", base_name(gguf_path));
    size_t sl = strlen(stem);
    if (sl > 5 && !strcmp(stem + sl - 5, ".gguf"))
        stem[sl - 5] = 0;
    if (mkdir(dir, 0755) && errno != EEXIST) {
        owl_conv_gguf_free(&info);
        return owl_err_set(err, OWL_E_IO, "%s: cannot create: %s", dir, strerror(errno));
    }
    uint64_t chunk = (uint64_t)chunk_mib << 20, fsize = info.file_size;
    uint64_t n_chunks = fsize ? (fsize + chunk - 1) / chunk : 0;
    char (*hex)[65] = calloc(n_chunks ? n_chunks : 1, sizeof *hex);
    owl_outfile *outs = calloc(n_chunks + 1, sizeof *outs); /* chunks, then the manifest */
    uint8_t *buf = malloc((size_t)chunk);
    FILE *in = fopen(gguf_path, "rb");
    if (!hex || !outs || !buf || !in) {
        st = in ? owl_err_set(err, OWL_E_NOMEM, "out of memory for %u MiB chunks", chunk_mib)
                : owl_err_set(err, OWL_E_IO, "%s: cannot open: %s", gguf_path, strerror(errno));
    }
    for (uint64_t c = 0; outs && c <= n_chunks; c++)
        outs[c].fd = -1;
    owl_sha256 whole;
    owl_sha256_init(&whole);
    char path[4096];
    for (uint64_t c = 0; !st && c < n_chunks; c++) {
        size_t n = (size_t)(fsize - c * chunk < chunk ? fsize - c * chunk : chunk);
        if (fread(buf, 1, n, in) != n) {
            st = owl_err_set(err, OWL_E_IO, "%s: read error at chunk %llu", gguf_path, (unsigned long long)c);
            break;
        }
        owl_sha256_update(&whole, buf, n);
        uint8_t d[32];
        owl_sha256_digest(buf, n, d);
        owl_sha256_hex(d, hex[c]);
        snprintf(path, sizeof path, "%s/%s.%04llu.bin", dir, stem, (unsigned long long)c);
        st = write_new(&outs[c], path, gguf_path, buf, n, err);
    }
    if (in)
        fclose(in);
    free(buf);
    if (!st) {
        uint8_t d[32];
        char wh[65];
        owl_sha256_final(&whole, d);
        owl_sha256_hex(d, wh);
        size_t len = 0;
        char *text = manifest_text(&info, gguf_path, stem, chunk, n_chunks, hex, wh, &len);
        snprintf(path, sizeof path, "%s/manifest.json", dir);
        if (!text)
            st = owl_err_set(err, OWL_E_NOMEM, "%s: out of memory", path);
        else
            st = write_new(&outs[n_chunks], path, gguf_path, text, len, err);
        free(text);
    }
    /* all written: into place, the manifest last */
    for (uint64_t c = 0; !st && c <= n_chunks; c++)
        st = owl_outfile_rename(&outs[c], err);
    for (uint64_t c = 0; outs && c <= n_chunks; c++)
        owl_outfile_discard(&outs[c]); /* removes what was not renamed */
    free(outs);
    free(hex);
    owl_conv_gguf_free(&info);
    return st;
}
