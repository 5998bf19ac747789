/* main.c - build/owlet-convert command line.
 *
 *   owlet-convert HF_DIR OUT.gguf [--type T] [--vision-type q8_0|q6_k] [--budget-mib N]
 *                 [--format safetensors|pytorch] [--name NAME] [-q]
 *   owlet-convert --split OUT.gguf DIR [--chunk-mib N]
 *   owlet-convert --inspect M.gguf            (same as `owlet inspect`; also `inspect M.gguf`)
 *   owlet-convert --plan CONFIG.json [--type T] [--budget-mib N]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: owlet-convert HF_DIR OUT.gguf [--type f32|f16|q8_0|q4_0|q4_k|q6_k|q4_k_m]\n"
            "                     [--vision-type q8_0|q6_k (vision tower matrices; default: as --type)]\n"
            "                     [--budget-mib N (default %d)] [--format safetensors|pytorch] [--name NAME] [-q]\n"
            "       owlet-convert --split MODEL.gguf DIR [--chunk-mib 1..1024 (default %d)]\n"
            "       owlet-convert --inspect MODEL.gguf\n"
            "       owlet-convert --plan CONFIG.json [--type T] [--budget-mib N]\n",
            OWL_CONV_DEFAULT_BUDGET_MIB, OWL_CONV_DEFAULT_CHUNK_MIB);
    return 2;
}

static int parse_u32(const char *s, uint32_t *v)
{
    char *e;
    unsigned long x = strtoul(s, &e, 10);
    if (!*s || *e || x == 0 || x > 1u << 24)
        return -1;
    *v = (uint32_t)x;
    return 0;
}

int main(int argc, char **argv)
{
    /* a file size limit then fails the write (EFBIG) and the temporary file is
     * removed, instead of the process dying mid-file */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2)
        return usage();
    if (!strcmp(argv[1], "inspect"))
        return owl_inspect_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "--inspect") || !strcmp(argv[1], "--plan")) {
        /* owl_inspect_main takes "inspect M.gguf" or "inspect --plan CONFIG ..." */
        if (!strcmp(argv[1], "--inspect")) {
            argv[1] = "inspect";
            return owl_inspect_main(argc - 1, argv + 1);
        }
        argv[0] = "inspect";
        return owl_inspect_main(argc, argv);
    }
    owl_err err = {0};
    if (!strcmp(argv[1], "--split")) {
        if (argc < 4)
            return usage();
        uint32_t chunk = OWL_CONV_DEFAULT_CHUNK_MIB;
        for (int i = 4; i < argc; i++) {
            if (!strcmp(argv[i], "--chunk-mib") && i + 1 < argc && !parse_u32(argv[i + 1], &chunk))
                i++;
            else
                return usage();
        }
        owl_status st = owl_split(argv[2], argv[3], chunk, &err);
        if (st) {
            fprintf(stderr, "owlet-convert: %s (%s)\n", err.msg, owl_status_name(st));
            return 1;
        }
        return 0;
    }
    if (argc < 3)
        return usage();
    owl_conv_opts o = {0};
    o.in_dir = argv[1];
    o.out_path = argv[2];
    o.ftype = OWL_CONV_TYPE_F16;
    o.budget_mib = OWL_CONV_DEFAULT_BUDGET_MIB;
    o.progress = isatty(2);
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            int t = owl_conv_ftype_parse(argv[++i]);
            if (t < 0) {
                fprintf(stderr, "owlet-convert: unknown --type %s\n", argv[i]);
                return 2;
            }
            o.ftype = (owl_conv_ftype)t;
        } else if (!strcmp(argv[i], "--vision-type") && i + 1 < argc) {
            int v = owl_conv_vision_parse(argv[++i]);
            if (v < 0) {
                fprintf(stderr, "owlet-convert: unknown --vision-type %s (q8_0 or q6_k)\n", argv[i]);
                return 2;
            }
            o.vision = (owl_conv_vision)v;
        } else if (!strcmp(argv[i], "--budget-mib") && i + 1 < argc) {
            if (parse_u32(argv[++i], &o.budget_mib))
                return usage();
        } else if (!strcmp(argv[i], "--format") && i + 1 < argc) {
            o.prefer = argv[++i];
            if (strcmp(o.prefer, "safetensors") && strcmp(o.prefer, "pytorch"))
                return usage();
        } else if (!strcmp(argv[i], "--name") && i + 1 < argc) {
            o.name = argv[++i];
        } else if (!strcmp(argv[i], "-q")) {
            o.quiet = 1;
            o.progress = 0;
        } else {
            return usage();
        }
    }
    owl_status st = owl_convert(&o, &err);
    if (st) {
        fprintf(stderr, "owlet-convert: %s (%s)\n", err.msg, owl_status_name(st));
        return 1;
    }
    return 0;
}
