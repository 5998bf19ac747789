/* fuzz_pickle.c - libFuzzer target for owl_ckpt_add_torch (weights_tool/torch.c):
 * torch.save zip archives and the pickle VM that reads their data.pkl.
 *
 * Input: byte 0 picks the mode.
 *   even: the rest is data.pkl; the target wraps it in a stored zip as
 *         "archive/data.pkl" next to storages "archive/data/0" .. "/3" of
 *         256 bytes each, so the fuzzer works on the pickle, not the zip.
 *   odd:  the rest is the whole archive (zip directory, zip64, local headers).
 * The archive goes to a memfd (the reader takes a path); after a successful
 * open every tensor is read back (fuzz_ckpt_util.h). */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_ckpt_util.h"

#define N_STORAGES 4
#define STORAGE_BYTES 256

typedef struct {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        OWL_FUZZ_CHECK(b->p != NULL);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put16(bytes *b, uint32_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}

static void put32(bytes *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}

/* A stored (method 0) zip of the given entries; CRCs are left 0 (not checked). */
static bytes make_zip(const char *const *names, const uint8_t *const *datas, const size_t *sizes, int n)
{
    bytes z = {0}, cd = {0};
    for (int i = 0; i < n; i++) {
        uint32_t off = (uint32_t)z.n, nl = (uint32_t)strlen(names[i]);
        put32(&z, 0x04034b50);
        put16(&z, 20); put16(&z, 0); put16(&z, 0); put16(&z, 0); put16(&z, 0);
        put32(&z, 0); put32(&z, (uint32_t)sizes[i]); put32(&z, (uint32_t)sizes[i]);
        put16(&z, nl); put16(&z, 0);
        put(&z, names[i], nl);
        put(&z, datas[i], sizes[i]);
        put32(&cd, 0x02014b50);
        put16(&cd, 20); put16(&cd, 20); put16(&cd, 0); put16(&cd, 0); put16(&cd, 0); put16(&cd, 0);
        put32(&cd, 0); put32(&cd, (uint32_t)sizes[i]); put32(&cd, (uint32_t)sizes[i]);
        put16(&cd, nl); put16(&cd, 0); put16(&cd, 0); put16(&cd, 0); put16(&cd, 0);
        put32(&cd, 0); put32(&cd, off);
        put(&cd, names[i], nl);
    }
    uint32_t cd_off = (uint32_t)z.n;
    put(&z, cd.p, cd.n);
    put32(&z, 0x06054b50);
    put16(&z, 0); put16(&z, 0); put16(&z, (uint32_t)n); put16(&z, (uint32_t)n);
    put32(&z, (uint32_t)cd.n); put32(&z, cd_off); put16(&z, 0);
    free(cd.p);
    return z;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bytes file = {0};
    const uint8_t *bytes_in = data + 1;
    size_t n_in = size - 1;
    if (!(data[0] & 1)) {
        static uint8_t storage[STORAGE_BYTES];
        for (int i = 0; i < STORAGE_BYTES; i++)
            storage[i] = (uint8_t)(i * 37 + 11);
        const char *names[1 + N_STORAGES] = {"archive/data.pkl", "archive/data/0", "archive/data/1",
                                             "archive/data/2", "archive/data/3"};
        const uint8_t *datas[1 + N_STORAGES] = {bytes_in, storage, storage, storage, storage};
        size_t sizes[1 + N_STORAGES] = {n_in, STORAGE_BYTES, STORAGE_BYTES, STORAGE_BYTES, STORAGE_BYTES};
        file = make_zip(names, datas, sizes, 1 + N_STORAGES);
        bytes_in = file.p;
        n_in = file.n;
    }
    char path[64];
    int fd = owl_fuzz_memfd(bytes_in, n_in, path, sizeof path);
    owl_ckpt ck = {0};
    owl_err err;
    owl_status st = owl_ckpt_add_torch(&ck, path, &err);
    owl_fuzz_verbose("open", st, &err, ck.n);
    if (st == OWL_OK)
        owl_fuzz_read_tensors(&ck);
    owl_ckpt_free(&ck);
    close(fd);
    free(file.p);
    return 0;
}
