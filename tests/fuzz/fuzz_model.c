/* fuzz_model.c - libFuzzer target for owl_model_load_buffer (src/model/load.c, weights.c,
 * llm.c, vision.c, abstractor.c): GGUF metadata and tensor shapes -> a model.
 *
 * Each input (a GGUF file) is loaded three ways: whole; with no_vision,
 * no_embed and no_head; and as a partial load (header = the whole input,
 * range = the data section, offset rounded up to 4) the way a pipeline stage
 * loads. On success the info getters and owl_model_expanded_len run. The
 * loader must not allocate far beyond the input (run.sh's -malloc_limit_mb
 * catches that). Seeds: the smallest llama and mplug-owl2 models, from
 * make_seeds.c. */
#include <stdint.h>
#include <string.h>

#include "../../src/core/gguf.h"
#include "../../src/owlet.h"
#include "fuzz_util.h"

static void exercise(const owl_model *m)
{
    owl_model_info info;
    owl_model_get_info(m, &info);
    owl_fuzz_touch(&info, sizeof info);
    const owl_gguf *g = owl_model_gguf(m);
    OWL_FUZZ_CHECK(g != NULL);
    const int32_t ids[5] = {1, -200, 3, -200, 2};
    int64_t n = owl_model_expanded_len(m, ids, 5);
    OWL_FUZZ_CHECK(n >= 3);
    OWL_FUZZ_CHECK(owl_model_expanded_len(m, ids, -1) == -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    owl_model *m = NULL;
    owl_err err;
    owl_status st = owl_model_load_buffer(data, size, NULL, &m, &err);
    owl_fuzz_verbose("load", st, &err, size);
    if (st == OWL_OK) {
        exercise(m);
        owl_model_free(m);
    } else {
        OWL_FUZZ_CHECK(m == NULL);
    }
    owl_model_opts o;
    memset(&o, 0, sizeof o);
    o.no_vision = o.no_embed = o.no_head = 1;
    if (owl_model_load_buffer(data, size, &o, &m, &err) == OWL_OK) {
        exercise(m);
        owl_model_free(m);
    }
    /* partial load of the data section */
    owl_gguf g;
    if (owl_gguf_parse(data, size, 1, size, &g, &err) == OWL_OK) {
        size_t off = (g.data_offset + 3) & ~(size_t)3;
        owl_gguf_free(&g);
        if (off <= size) {
            memset(&o, 0, sizeof o);
            o.header = data;
            o.header_size = size;
            o.range_offset = off;
            o.file_size = size;
            if (owl_model_load_buffer(data + off, size - off, &o, &m, &err) == OWL_OK) {
                exercise(m);
                owl_model_free(m);
            }
        }
    }
    return 0;
}
