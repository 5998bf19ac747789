/* convert_util.h - helpers shared by test_convert.c and test_convert_corrupt.c:
 * scratch directories under /tmp, file copies, one-call conversion, and
 * expect_fail (error code + message needles + no output file left). */
#ifndef OWL_TEST_CONVERT_UTIL_H
#define OWL_TEST_CONVERT_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/core/gguf.h"
#include "../../weights_tool/convert.h"
#include "test.h"

#define ORACLE "tests/fixtures/oracle_a"
#define CFG_7B "weights_tool/configs/mplug-owl2-llama2-7b.config.json"

static int exists(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0;
}

/* Remove a scratch directory made by scratch() (files and one level of subdirectories). */
static void cleanup(const char *dir)
{
    if (strncmp(dir, "/tmp/owlet-test-convert-", 24))
        return;
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (remove(p) != 0)
            cleanup(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* A fresh, empty scratch directory per call: /tmp/owlet-test-convert-<tag>-<pid>-<n>
 * (each test file defines OWL_CONV_TEST_TAG; leftovers of a failed run are removed). */
#define scratch(out, n) scratch_in(out, n, OWL_CONV_TEST_TAG)
static void scratch_in(char *out, size_t n, const char *tag)
{
    static int counter;
    snprintf(out, n, "/tmp/owlet-test-convert-%s-%d-%d", tag, (int)getpid(), counter++);
    mkdir("/tmp", 0755);
    cleanup(out);
    mkdir(out, 0755);
}

static int write_file(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(d, 1, n, f);
    return fclose(f) || w != n ? -1 : 0;
}

static int copy_file(const char *src, const char *dst, size_t max_len)
{
    size_t n;
    void *d = owl_test_read_file(src, &n);
    if (!d)
        return -1;
    int r = write_file(dst, d, n < max_len ? n : max_len);
    free(d);
    return r;
}

/* Copy the oracle's configs + tokenizer (not the weights) into dir. */
static void copy_configs(const char *dir)
{
    static const char *f[] = {"config.json", "preprocessor_config.json", "generation_config.json", "tokenizer.model"};
    char a[512], b[512];
    for (int i = 0; i < 4; i++) {
        snprintf(a, sizeof a, "%s/%s", ORACLE, f[i]);
        snprintf(b, sizeof b, "%s/%s", dir, f[i]);
        CHECK(copy_file(a, b, (size_t)-1) == 0);
    }
}

static owl_status convert(const char *dir, const char *out, owl_conv_ftype t, const char *prefer, uint32_t budget,
                          owl_err *err)
{
    owl_conv_opts o = {dir, out, prefer, NULL, t, budget, 0, 1, OWL_CONV_VISION_DEFAULT};
    return owl_convert(&o, err);
}

/* Convert, expect failure with code (0 = any) and msg containing both needles; no output left. */
static void expect_fail(const char *dir, owl_status code, const char *n1, const char *n2)
{
    char out[512], tmp[520];
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    owl_err e = {0};
    owl_status st = convert(dir, out, OWL_CONV_TYPE_F32, NULL, 3200, &e);
    CHECK_MSG(st != OWL_OK && (!code || st == code), "%s: got %s: %s", dir, owl_status_name(st), e.msg);
    CHECK_MSG(!n1 || strstr(e.msg, n1), "message \"%s\" lacks \"%s\"", e.msg, n1);
    CHECK_MSG(!n2 || strstr(e.msg, n2), "message \"%s\" lacks \"%s\"", e.msg, n2);
    CHECK(!exists(out));
    CHECK(!exists(tmp));
}

static uint8_t *load(const char *p, size_t *n)
{
    uint8_t *d = owl_test_read_file(p, n);
    CHECK_MSG(d != NULL, "cannot read %s", p);
    return d;
}

#endif
