/* tokenizer.h - LLaMA SentencePiece BPE tokenizer (encode, decode, streaming decode).
 *
 * Reproduces sentencepiece 0.1.99 for BPE models with the identity normalizer
 * (LLaMA/LLaMA-2): invalid UTF-8 bytes become U+FFFD, ' ' becomes U+2581 (▁),
 * a dummy ▁ is prepended (add_dummy_prefix), pieces are merged highest score
 * first (ties: leftmost), symbols not in the vocabulary fall back to <0xNN>
 * byte pieces (or unk). On top, the HF slow LlamaTokenizer behaviour used by
 * the reference: literal "<s>", "</s>", "<unk>" (the CONTROL/UNKNOWN pieces) in
 * text become their ids when parse_special is set, with HF's legacy=True/False
 * dummy-prefix rules.
 *
 * A tokenizer is immutable after init and may be shared by threads; encode and
 * decode allocate only their outputs and per-call scratch. The streaming
 * decoder never allocates. */
#ifndef OWL_TOKENIZER_H
#define OWL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/gguf.h"
#include "../core/status.h"
#include "spm_model.h"

typedef struct owl_tokenizer owl_tokenizer;

/* Model-level options (sentencepiece TrainerSpec / NormalizerSpec). */
typedef struct {
    int add_dummy_prefix;         /* prepend ▁ to non-empty input (LLaMA: 1) */
    int remove_extra_whitespaces; /* strip/collapse ' ' runs first (LLaMA: 0) */
    int byte_fallback;            /* unknown chars -> <0xNN> pieces (LLaMA: 1) */
    int32_t bos_id, eos_id, unk_id; /* -1 = none; unk_id -1 = first UNKNOWN piece */
} owl_tokenizer_config;

/* LLaMA defaults: dummy prefix 1, extra whitespace 0, byte fallback 1, ids 1/2/0. */
owl_tokenizer_config owl_tokenizer_config_llama(void);

/* Build from plain arrays (both other constructors call this). pieces[i] is
 * lens[i] bytes of UTF-8 (no NUL needed), types[i] an OWL_SPM_* type. Copies
 * everything. Errors: OWL_E_INVALID (n <= 0, NULL arrays, ids out of range),
 * OWL_E_FORMAT (empty or duplicate piece, bad type), OWL_E_NOMEM. */
owl_status owl_tokenizer_init(owl_tokenizer **out, const char *const *pieces,
                              const uint32_t *lens, const float *scores, const int32_t *types,
                              int32_t n, const owl_tokenizer_config *cfg, owl_err *err);
/* From a parsed tokenizer.model. OWL_E_UNSUPPORTED for non-BPE models and
 * normalizers we do not implement (precompiled charsmap, whitespace suffix). */
owl_status owl_tokenizer_init_spm(owl_tokenizer **out, const owl_spm_model *m, owl_err *err);
/* From GGUF metadata: tokenizer.ggml.model ("llama"), tokens, scores,
 * token_type, bos/eos/unknown_token_id (defaults 1/2/0 when absent). */
owl_status owl_tokenizer_init_gguf(owl_tokenizer **out, const owl_gguf *g, owl_err *err);
void owl_tokenizer_free(owl_tokenizer *t); /* NULL-safe */

int32_t owl_tokenizer_n_vocab(const owl_tokenizer *t);
int32_t owl_tokenizer_bos(const owl_tokenizer *t);
int32_t owl_tokenizer_eos(const owl_tokenizer *t);
int32_t owl_tokenizer_unk(const owl_tokenizer *t);
/* Piece text of id (not NUL-terminated if len is used; it is NUL-terminated),
 * NULL if id is out of range. */
const char *owl_tokenizer_piece(const owl_tokenizer *t, int32_t id, uint32_t *len);
int owl_tokenizer_type(const owl_tokenizer *t, int32_t id); /* OWL_SPM_*, 0 if out of range */
/* Id of the piece with exactly these bytes, -1 if none. */
int32_t owl_tokenizer_find(const owl_tokenizer *t, const char *piece, size_t len);

typedef struct {
    int add_bos;       /* prepend bos_id */
    int parse_special; /* literal CONTROL/UNKNOWN piece text ("<s>", "</s>", "<unk>") -> its id */
    int legacy;        /* with parse_special: 1 = HF legacy=True (every text segment
                          gets the dummy prefix); 0 = legacy=False (only the start of
                          the text; "▁" before a leading special token is dropped) */
} owl_encode_opts;

/* Encode text[0..len) (any bytes). *ids is malloc'd (free()), *n_ids its
 * length (may be 0; *ids is then still a valid allocation). opts NULL = all 0
 * (plain sentencepiece encode, no BOS). Errors: OWL_E_INVALID, OWL_E_NOMEM,
 * OWL_E_LIMIT (text over 256 MiB). */
owl_status owl_tokenizer_encode(const owl_tokenizer *t, const char *text, size_t len,
                                const owl_encode_opts *opts, int32_t **ids, size_t *n_ids,
                                owl_err *err);

/* owl_tokenizer_encode with, under parse_special, n_literal byte ranges
 * [literal[2i], literal[2i+1]) of text where no special piece is matched (one
 * overlapping a range is text): a user's "</s>" stays text while the
 * template's "</s>" around it is parsed. Ranges need not be sorted; with none
 * this is owl_tokenizer_encode. OWL_E_INVALID for n_literal > 0 and NULL. */
owl_status owl_tokenizer_encode_literal(const owl_tokenizer *t, const char *text, size_t len,
                                        const owl_encode_opts *opts, const size_t *literal, size_t n_literal,
                                        int32_t **ids, size_t *n_ids, owl_err *err);

/* Decode ids like sentencepiece DecodeIds: control pieces vanish, unk becomes
 * " ⁇ ", ▁ becomes ' ', the leading ▁ of the first normal piece is dropped,
 * runs of byte pieces are decoded as UTF-8 with each invalid byte -> U+FFFD.
 * *text is malloc'd and NUL-terminated, *len excludes the NUL. Ids out of
 * range are OWL_E_INVALID. */
owl_status owl_tokenizer_decode(const owl_tokenizer *t, const int32_t *ids, size_t n, char **text,
                                size_t *len, owl_err *err);

/* Streaming decoder: push ids one at a time, get the text that became final.
 * The concatenation of all outputs plus the finish output equals
 * owl_tokenizer_decode() of the whole sequence; an output never ends inside a
 * UTF-8 character. No allocation. */
typedef struct {
    const owl_tokenizer *tok;
    int at_start;     /* the next normal piece loses its leading ▁ */
    int n_pend;       /* bytes from byte pieces not yet forming a whole character */
    uint8_t pend[4];
} owl_tok_stream;

void owl_tok_stream_init(owl_tok_stream *s, const owl_tokenizer *t);
/* Bytes an output buffer needs for any single push or finish. */
size_t owl_tok_stream_max_out(const owl_tokenizer *t);
/* Feed id; writes *n_out bytes into out (cap >= owl_tok_stream_max_out, no
 * NUL added). OWL_E_INVALID for a bad id or small cap (state unchanged). */
owl_status owl_tok_stream_push(owl_tok_stream *s, int32_t id, char *out, size_t cap,
                               size_t *n_out, owl_err *err);
/* End of sequence: pending bytes become U+FFFD each. */
owl_status owl_tok_stream_finish(owl_tok_stream *s, char *out, size_t cap, size_t *n_out,
                                 owl_err *err);

#endif
