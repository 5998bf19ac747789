/* spm_model.h - reader of SentencePiece `tokenizer.model` files (protobuf
 * ModelProto), enough for LLaMA's BPE models: pieces with scores and types, and
 * the trainer/normalizer options that change tokenisation. Untrusted input:
 * every varint, length and field is checked; errors name the field.
 * Implemented in src/text/spm_model.c. Used by the tokenizer tests and by the
 * converter (which stores the pieces in GGUF metadata). */
#ifndef OWL_SPM_MODEL_H
#define OWL_SPM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "../core/status.h"

/* SentencePiece piece types (ModelProto.SentencePiece.Type); GGUF's
 * tokenizer.ggml.token_type uses the same numbers. */
enum {
    OWL_SPM_NORMAL = 1,
    OWL_SPM_UNKNOWN = 2,
    OWL_SPM_CONTROL = 3,
    OWL_SPM_USER_DEFINED = 4,
    OWL_SPM_UNUSED = 5,
    OWL_SPM_BYTE = 6
};

typedef struct {
    char *piece;   /* NUL-terminated UTF-8 (owned) */
    uint32_t len;  /* bytes, without the NUL */
    float score;
    int type;
} owl_spm_piece;

typedef struct {
    owl_spm_piece *pieces; /* owned */
    int32_t n_pieces;
    int model_type;        /* TrainerSpec.model_type: 1 unigram, 2 bpe */
    int byte_fallback;     /* TrainerSpec.byte_fallback */
    int add_dummy_prefix;  /* NormalizerSpec.add_dummy_prefix (default 1) */
    int remove_extra_whitespaces; /* NormalizerSpec (default 1) */
    int32_t unk_id, bos_id, eos_id, pad_id; /* TrainerSpec ids (defaults 0, 1, 2, -1) */
    /* Options our tokenizer does not implement; recorded so that it can refuse
     * such models (owl_tokenizer_init_spm returns OWL_E_UNSUPPORTED). */
    int has_charsmap;      /* NormalizerSpec.precompiled_charsmap non-empty (NFKC etc.) */
    int escape_whitespaces; /* NormalizerSpec (default 1) */
    int treat_whitespace_as_suffix; /* TrainerSpec (default 0) */
} owl_spm_model;

/* Parse a whole tokenizer.model held in data[0..size). Unknown fields are
 * skipped; wrong wire types, varints over 10 bytes, lengths past the end,
 * empty pieces, pieces with NUL bytes and unknown piece types are rejected
 * (OWL_E_FORMAT / OWL_E_TRUNCATED). On error *out is left empty. */
owl_status owl_spm_parse(const void *data, size_t size, owl_spm_model *out, owl_err *err);
void owl_spm_free(owl_spm_model *m); /* NULL-safe */

#endif
