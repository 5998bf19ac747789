/* fuzz_safetensors.c - libFuzzer target for owl_ckpt_add_safetensors
 * (weights_tool/ckpt.c): the 8-byte header length, the JSON header, every
 * entry's dtype, shape and data_offsets against the file. The input is the
 * whole .safetensors file (in a memfd: the reader takes a path), then every
 * tensor is read back (fuzz_ckpt_util.h). */
#include <stdint.h>

#include "fuzz_ckpt_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = owl_fuzz_memfd(data, size, path, sizeof path);
    owl_ckpt ck = {0};
    owl_err err;
    owl_status st = owl_ckpt_add_safetensors(&ck, path, &err);
    owl_fuzz_verbose("open", st, &err, ck.n);
    if (st == OWL_OK)
        owl_fuzz_read_tensors(&ck);
    owl_ckpt_free(&ck);
    close(fd);
    return 0;
}
