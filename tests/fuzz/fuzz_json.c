/* fuzz_json.c - libFuzzer target for owl_json_parse (src/core/json.c).
 *
 * On success the whole tree is walked: every string and key is read to its
 * terminating NUL (str[len] must be 0), every object member is looked up again
 * by key (owl_json_get must find a member; a key holding a NUL is looked up as
 * the C string before it, which still matches itself), the typed getters run on each
 * member, and strings go through owl_json_write_str. Depth is bounded by the
 * parser (OWL_JSON_MAX_DEPTH), which the walk checks. */
#include <stdint.h>
#include <string.h>

#include "../../src/core/json.h"
#include "fuzz_util.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    devnull = fopen("/dev/null", "w");
    return 0;
}

static void walk(const owl_json *v, int depth)
{
    OWL_FUZZ_CHECK(depth <= OWL_JSON_MAX_DEPTH + 1);
    switch (v->type) {
    case OWL_JSON_NULL:
    case OWL_JSON_BOOL:
        break;
    case OWL_JSON_NUMBER:
        if (v->is_int)
            OWL_FUZZ_CHECK((double)v->integer == v->number || v->integer > (1LL << 53) ||
                           v->integer < -(1LL << 53));
        break;
    case OWL_JSON_STRING:
        OWL_FUZZ_CHECK(v->str != NULL && v->str[v->len] == 0);
        owl_fuzz_touch(v->str, v->len + 1);
        if (devnull)
            owl_json_write_str(devnull, v->str);
        break;
    case OWL_JSON_ARRAY:
        for (size_t i = 0; i < v->len; i++)
            walk(&v->items[i], depth + 1);
        break;
    case OWL_JSON_OBJECT:
        for (size_t i = 0; i < v->len; i++) {
            const char *k = v->keys[i];
            size_t kl = strlen(k);
            owl_fuzz_touch(k, kl + 1);
            const owl_json *m = owl_json_get(v, k);
            OWL_FUZZ_CHECK(m != NULL);
            owl_err err;
            int64_t i64;
            double f64;
            const char *s;
            (void)owl_json_get_i64(v, k, &i64, &err);
            (void)owl_json_get_f64(v, k, &f64, &err);
            if (owl_json_get_str(v, k, &s, &err) == OWL_OK)
                owl_fuzz_touch(s, strlen(s) + 1);
            if (devnull)
                owl_json_write_str(devnull, k);
            walk(&v->items[i], depth + 1);
        }
        break;
    default:
        OWL_FUZZ_CHECK(!"unknown json type");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    owl_json *v = NULL;
    owl_err err;
    owl_status st = owl_json_parse((const char *)data, size, &v, &err);
    if (st == OWL_OK) {
        OWL_FUZZ_CHECK(v != NULL);
        walk(v, 0);
    } else {
        OWL_FUZZ_CHECK(v == NULL);
        OWL_FUZZ_CHECK(err.code == st && memchr(err.msg, 0, sizeof err.msg));
    }
    owl_json_free(v);
    return 0;
}
