/* fuzz_spm.c - libFuzzer target for owl_spm_parse (src/text/spm_model.c), the
 * reader of SentencePiece tokenizer.model protobufs.
 *
 * On success the pieces are checked against the header's promises (non-empty,
 * NUL-terminated at len with no NUL inside, known type) and the model is handed
 * to owl_tokenizer_init_spm; a tokenizer built from hostile pieces then
 * encodes and decodes a fixed text, since vocabularies come from files too. */
#include <stdint.h>
#include <string.h>

#include "../../src/text/spm_model.h"
#include "../../src/text/tokenizer.h"
#include "fuzz_util.h"

static const char k_text[] = "Hello  world! <s>caf\xc3\xa9 \xe2\x96\x81 \xff\xfe </s><unk> 12345\n\t";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    owl_spm_model m;
    owl_err err;
    if (owl_spm_parse(data, size, &m, &err) != OWL_OK)
        return 0;
    OWL_FUZZ_CHECK(m.n_pieces >= 0);
    OWL_FUZZ_CHECK(m.n_pieces == 0 || m.pieces != NULL);
    for (int32_t i = 0; i < m.n_pieces; i++) {
        const owl_spm_piece *p = &m.pieces[i];
        OWL_FUZZ_CHECK(p->piece != NULL && p->len > 0);
        OWL_FUZZ_CHECK(strlen(p->piece) == p->len);
        OWL_FUZZ_CHECK(p->type >= OWL_SPM_NORMAL && p->type <= OWL_SPM_BYTE);
    }
    owl_tokenizer *t = NULL;
    if (owl_tokenizer_init_spm(&t, &m, &err) == OWL_OK) {
        int32_t n_vocab = owl_tokenizer_n_vocab(t);
        OWL_FUZZ_CHECK(n_vocab == m.n_pieces);
        for (int pass = 0; pass < 2; pass++) {
            owl_encode_opts eo = {pass, pass, pass};
            int32_t *ids = NULL;
            size_t n_ids = 0;
            if (owl_tokenizer_encode(t, k_text, sizeof k_text - 1, &eo, &ids, &n_ids, &err) == OWL_OK) {
                for (size_t i = 0; i < n_ids; i++)
                    OWL_FUZZ_CHECK(ids[i] >= 0 && ids[i] < n_vocab);
                char *text = NULL;
                size_t len = 0;
                if (owl_tokenizer_decode(t, ids, n_ids, &text, &len, &err) == OWL_OK) {
                    OWL_FUZZ_CHECK(text[len] == 0);
                    owl_fuzz_touch(text, len);
                }
                free(text);
            }
            free(ids);
        }
        owl_tokenizer_free(t);
    }
    owl_spm_free(&m);
    return 0;
}
