/* owlet.h - the public C API of owlet: mPLUG-Owl2 (ViT-L/14 + visual abstractor +
 * LLaMA-2 with the modality-adaptive module) and plain LLaMA GGUF models on the CPU.
 *
 * Objects
 *   owl_model    read-only weights + hyperparameters from a GGUF file held in
 *                memory. Immutable after load: any number of sessions, in any
 *                threads, may share one model.
 *   owl_session  one conversation: KV cache (f16 or f32, sized by n_ctx), the
 *                encoded images, a cache of recently encoded pictures, a thread
 *                pool, all scratch. Sized at init; no allocation per token
 *                (owl_session_encode_image allocates the image's feature rows
 *                once per image, and the cache a copy once per new picture). A
 *                session is used by one thread at a time (owl_session_cancel
 *                excepted).
 *
 * Errors: every fallible call returns owl_status (OWL_OK = 0, negative codes in
 * core/status.h). Loads report through the caller's owl_err; sessions keep the
 * message of their last error (owl_session_error). Bad files, ids, images or
 * sizes return errors; nothing aborts, and the object stays usable.
 *
 * Typical use (see src/cli/main.c):
 *   owl_model_load_file("m.gguf", NULL, &m, &err);
 *   owl_session_init(m, NULL, &s, &err);
 *   owl_chat_init(m, s, NULL, &c, &err);                // the conversation
 *   owl_chat_add_image_encoded(c, png, png_size);        // preprocessed as the model says
 *   owl_chat_ask(c, "What is in the picture?");
 *   owl_chat_gen_begin(c, &g); while (owl_chat_step(c) > 0) ...; owl_chat_gen_end(c);
 * Lower level: owl_session_encode_image (CHW floats), owl_session_prefill (ids
 * with -200 placeholders), owl_session_generate.
 *
 * Pipeline stages (design.md section 6): a model may be loaded with only a
 * range of decoder layers (owl_model_opts); owl_session_embed,
 * owl_session_run_layers and owl_session_head then move hidden states
 * (n_tokens x d_model f32, positions, modality indicators) between stages. The
 * result is bit-identical to running the whole model in one session (with the
 * same n_batch: rows are processed in batches of n_batch from pos0). */
#ifndef OWLET_H
#define OWLET_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/gguf.h"
#include "core/status.h"
#include "kernels/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Token id that stands for one image in a prompt (mPLUG-Owl2's IMAGE_TOKEN_INDEX). */
#define OWL_IMAGE_TOKEN (-200)
/* Images one session can hold at a time. */
#define OWL_MAX_IMAGES 16
/* Most encoded images a session's image cache may keep (owl_session_opts.image_cache). */
#define OWL_MAX_IMAGE_CACHE 64

typedef struct owl_model owl_model;
typedef struct owl_session owl_session;

/* ------------------------------------------------------------------ model */

/* Which parts of the file a model holds. All zero (or a NULL pointer) = the
 * whole model. A pipeline stage holds decoder layers [layer_begin, layer_end)
 * and, optionally, the image encoder + token embeddings (first stage) and the
 * final norm + output head (last stage). Only the tensors held are looked up
 * and validated. */
typedef struct {
    int layer_begin; /* first decoder layer held (default 0) */
    int layer_end;   /* one past the last; 0 = block_count */
    int no_vision;   /* 1: skip vision tower + abstractor */
    int no_embed;    /* 1: skip token_embd (no owl_session_embed / prefill) */
    int no_head;     /* 1: skip output_norm + output (no logits) */
    /* Partial load (a stage with only its own bytes in memory): when header is
     * not NULL, the data/size given to owl_model_load_buffer hold the file
     * bytes [range_offset, range_offset + size), header/header_size the file's
     * first bytes (at least the whole GGUF header) and file_size the whole
     * file's size. Every tensor the model holds must lie inside the range
     * (docs/FORMAT.md: tensors are in execution order, so a stage's are one
     * contiguous range). header is BORROWED like data (metadata strings point
     * into it). Ignored by owl_model_load_file. */
    const void *header;
    size_t header_size;
    uint64_t range_offset;
    uint64_t file_size;
    /* 1: data is writable and read by this model alone, so the loader may
     * rearrange its quantized matrices in place into the 4-row interleaved
     * layout the SIMD kernels stream fastest (docs/BENCHMARKS.md); the bytes
     * are then no longer the file's. owl_model_load_file and the wasm engine
     * set it (their buffers are their own). 0: data is only read. */
    int rearrange;
} owl_model_opts;

/* Load a model from a GGUF image in memory. The buffer is BORROWED: weights are
 * used in place (no copy), so data must stay valid and unchanged until
 * owl_model_free; it must be 4-byte aligned. opts may be NULL.
 * Errors (err names the tensor/key and the values):
 *   OWL_E_FORMAT / OWL_E_TRUNCATED  malformed GGUF, mis-shaped tensor
 *                                   ("blk.3.attn_k.weight: want 128x128, got 64x128"),
 *                                   tensor outside a partial load's byte range
 *   OWL_E_NOTFOUND                  missing tensor or metadata key
 *   OWL_E_UNSUPPORTED               architecture other than mplug-owl2 / llama, tensor type
 *   OWL_E_INVALID                   bad arguments or layer range
 *   OWL_E_NOMEM
 * On error *out is NULL. Thread-safe (no shared state). */
owl_status owl_model_load_buffer(const void *data, size_t size, const owl_model_opts *opts,
                                 owl_model **out, owl_err *err);
/* Same, reading the file at path into memory owned by the model. Adds OWL_E_IO. */
owl_status owl_model_load_file(const char *path, const owl_model_opts *opts, owl_model **out,
                               owl_err *err);
/* Free the model (NULL is a no-op). All its sessions must be freed first. */
void owl_model_free(owl_model *m);

typedef struct {
    const char *arch;      /* "mplug-owl2" or "llama" (static string) */
    int64_t n_vocab, d_model, n_layers, n_heads, n_kv_heads, head_dim, ffn;
    int64_t n_ctx_train;   /* ARCH.context_length */
    int layer_begin, layer_end; /* layers held */
    int has_vision, has_embed, has_head;
    /* Image input (0 when no vision): pixels are (channels, image_size, image_size). */
    int64_t image_size, channels;
    int64_t image_tokens;  /* rows one image becomes in the LLM (queries + 1) */
    int32_t bos_id, eos_id; /* tokenizer.ggml.* (1 / 2 when absent) */
} owl_model_info;

/* Fill *info (never fails for a loaded model). */
void owl_model_get_info(const owl_model *m, owl_model_info *info);
/* The parsed GGUF (metadata for the tokenizer, template and image
 * preprocessing). Borrowed: valid until owl_model_free. After a partial load
 * its tensors' data pointers are NULL. */
const owl_gguf *owl_model_gguf(const owl_model *m);
/* Length of the prompt after each OWL_IMAGE_TOKEN is replaced by image_tokens
 * rows; -1 if n < 0 or ids is NULL with n > 0. */
int64_t owl_model_expanded_len(const owl_model *m, const int32_t *ids, int64_t n);

/* ---------------------------------------------------------------- session */

/* Called by the forward pass with intermediate activations (for tests and
 * debugging): names are "vision_embeddings", "vision_layerN", "vision_out",
 * "abstractor_layerN", "abstractor_out", "llm_input_embeds", "llm_layerN",
 * "llm_final_norm"; data is (rows, cols) f32, valid during the call only. LLM
 * taps are called once per batch of at most n_batch rows ("llm_final_norm"
 * only for the rows whose logits are computed). Called on the session's thread. */
typedef void (*owl_tap_fn)(void *user, const char *name, const float *data, int64_t rows,
                           int64_t cols);

typedef struct {
    int64_t n_ctx;     /* KV cache positions; 0 = min(context_length, 2048) */
    int64_t n_batch;   /* rows per forward batch; 0 = min(n_ctx, 256) */
    owl_type kv_type;  /* OWL_TYPE_F16 or OWL_TYPE_F32 (a zeroed struct means F32) */
    int n_threads;     /* worker threads incl. the caller; <= 0 means 1 */
    owl_tap_fn tap;    /* optional */
    void *tap_user;
    int image_cache;   /* pictures whose visual rows the session keeps for reuse
                          (least recently used out first), 0..OWL_MAX_IMAGE_CACHE;
                          0 = off (a zeroed struct means off). Each holds
                          image_tokens x d_model x 4 bytes (65 x 4096 x 4 = 1.06 MB
                          for the 7B). See owl_session_encode_image. */
} owl_session_opts;

/* Defaults: n_ctx 0 (auto), n_batch 0 (auto), kv_type F16, 1 thread, no tap,
 * image_cache 4. */
owl_session_opts owl_session_opts_default(void);

/* Create a session on m (borrowed: must outlive the session). opts NULL =
 * defaults. Allocates the KV cache (layers held x 2 x n_ctx x kv_dim x
 * sizeof kv_type), scratch for n_batch rows and the image encoder, and a pool
 * of n_threads. Errors: OWL_E_INVALID (bad opts: n_ctx above context_length,
 * n_batch < 0, kv_type not F16/F32, n_threads > 256), OWL_E_NOMEM (sizes
 * overflow, allocation or thread start failed). */
owl_status owl_session_init(const owl_model *m, const owl_session_opts *opts, owl_session **out,
                            owl_err *err);
void owl_session_free(owl_session *s); /* NULL is a no-op */
/* Message of the session's last error ("" if none); valid until the next call. */
const char *owl_session_error(const owl_session *s);
/* Forget the KV cache (n_past = 0) and the encoded images (the image cache
 * keeps its pictures). */
void owl_session_reset(owl_session *s);
/* Positions currently in the KV cache. */
int64_t owl_session_n_past(const owl_session *s);
/* Positions the KV cache holds at most (the session's n_ctx). */
int64_t owl_session_n_ctx(const owl_session *s);
/* Drop positions >= n_past from the cache (n_past <= current): rewinds a
 * conversation. OWL_E_INVALID if n_past is out of range. */
owl_status owl_session_truncate(owl_session *s, int64_t n_past);

/* Encode one image: pixels are (channels, image_size, image_size) float32,
 * CLIP-normalised, channel-first RGB (src/image/ makes them). n_floats must
 * equal channels*image_size^2. The image_tokens x d_model visual rows are kept
 * in the session as the next image (consumed by the next OWL_IMAGE_TOKEN of
 * prefill/embed, in order) and, if out != NULL, copied to out
 * (image_tokens x d_model floats). Allocates the rows (once per image).
 * Image cache (owl_session_opts.image_cache > 0): the pixels and their shape
 * are hashed (SHA-256); a picture encoded before on this session and still
 * cached gets a copy of its stored rows, bit for bit what the vision tower and
 * abstractor compute (and no vision/abstractor taps are called); else they run
 * and a copy of the rows is stored, evicting the least recently used picture
 * when the cache is full. The cache survives owl_session_reset.
 * Errors: OWL_E_STATE (model without vision), OWL_E_INVALID (size),
 * OWL_E_LIMIT (OWL_MAX_IMAGES held), OWL_E_NOMEM. Uses the session's threads. */
owl_status owl_session_encode_image(owl_session *s, const float *pixels, size_t n_floats,
                                    float *out);
/* Encode the picture ahead of time into the image cache only (nothing is
 * added to the session's images): a later owl_session_encode_image of the same
 * pixels is a hit. *encoded (if not NULL) = 1 if the vision tower ran now, 0 if
 * the picture was cached already (it becomes the most recently used; the
 * hit/miss counters count only encodes: a warm that runs counts as a miss) or
 * the cache is off (then nothing runs at all). Errors as encode_image, except
 * the OWL_MAX_IMAGES limit, which does not apply. */
owl_status owl_session_warm_image(owl_session *s, const float *pixels, size_t n_floats, int *encoded);

typedef struct {
    int capacity;   /* pictures it may hold (owl_session_opts.image_cache) */
    int entries;    /* pictures it holds */
    size_t bytes;   /* bytes their rows take: entries x image_tokens x d_model x 4 */
    int64_t hits;   /* encodes answered from the cache since owl_session_init */
    int64_t misses; /* encodes computed (and stored) with the cache on */
    double saved_ms; /* encode time the hits spared: each hit adds the wall-clock ms its
                        entry's own encode took (vision tower + abstractor) */
} owl_image_cache_stats;
/* The image cache's state and counters (all zero with the cache off). */
void owl_session_image_cache_stats(const owl_session *s, owl_image_cache_stats *out);
/* Drop the encoded images (the KV cache is kept). */
void owl_session_clear_images(owl_session *s);

/* Run the prompt ids (OWL_IMAGE_TOKEN = the next encoded image, spliced as
 * image_tokens rows with modality 1; other ids modality 0) at positions
 * n_past .. n_past+L-1, L = owl_model_expanded_len(ids). Afterwards n_past += L
 * and owl_session_logits() holds the last position's logits. If all_logits is
 * not NULL it receives (L, n_vocab) logits of every position. *n_pos_out (may
 * be NULL) = L. Images are consumed from the first encoded one, one per
 * placeholder, on every call; extra images are ignored (as the reference
 * does). For a later turn with a new image, owl_session_clear_images first.
 * Errors: OWL_E_INVALID (id out of range, more placeholders than images),
 * OWL_E_LIMIT (n_past + L > n_ctx), OWL_E_STATE (model without embed/head or
 * not all layers). On error the cache is left at the old n_past. */
owl_status owl_session_prefill(owl_session *s, const int32_t *ids, int64_t n_ids,
                               float *all_logits, int64_t *n_pos_out);
/* Feed one text token at position n_past (modality 0, as the reference's
 * decode step); n_past += 1; *logits (may be NULL) = the session's logits
 * buffer (n_vocab floats, valid until the next call). Errors as prefill. */
owl_status owl_session_decode(owl_session *s, int32_t token, const float **logits);
/* Logits of the last position run (n_vocab floats; zeros before any run). */
const float *owl_session_logits(const owl_session *s);

/* ---- generation ---- */
/* Sampling is src/text/sampler.h's (HF 4.31 order: repetition penalty,
 * temperature, top-k, top-p, min-p; seeded xoshiro256**). */
typedef struct {
    int n_predict;      /* max new tokens (> 0) */
    float temperature;  /* <= 0: greedy (argmax, lowest id on ties) */
    int top_k;          /* <= 0: off */
    float top_p;        /* >= 1: off */
    float min_p;        /* <= 0: off */
    float repetition_penalty; /* 1 (or <= 0): off; over the cached positions' ids */
    uint64_t seed;
    int ignore_eos;     /* 1: do not stop at eos_id */
} owl_gen_opts;
/* 128 tokens, greedy, top_k 0, top_p 1, min_p 0, repetition penalty 1, seed 0. */
owl_gen_opts owl_gen_opts_default(void);

/* Called once per generated token (before it is fed back); return 0 to go on,
 * non-zero to stop (owl_session_generate then returns OWL_E_CANCELLED). */
typedef int (*owl_token_fn)(void *user, int32_t token);

/* Sample from the current logits (after prefill), call on_token, feed the
 * token back (owl_session_decode), repeat until n_predict tokens, eos or a
 * cancel. The eos token is passed to on_token and stored, but not fed back.
 * tokens (may be NULL) receives up to n_predict ids, *n_tokens (may be NULL)
 * their count (also on error: the tokens produced so far). Needs a whole model.
 * Allocates the sampler's scratch once per call (n_vocab), nothing per token.
 * Errors: OWL_E_CANCELLED (on_token non-zero or owl_session_cancel),
 * OWL_E_STATE (no logits yet), OWL_E_LIMIT (context full), OWL_E_INVALID
 * (sampling parameters out of range), as decode. */
owl_status owl_session_generate(owl_session *s, const owl_gen_opts *opts, owl_token_fn on_token,
                                void *user, int32_t *tokens, int64_t *n_tokens);
/* Ask a running owl_session_generate to stop before its next token. The only
 * call that may come from another thread while the session works. */
void owl_session_cancel(owl_session *s);
/* Stop long work from outside: the calls that follow this one stop at the next
 * layer once *word != epoch (word is read atomically, so another thread or a
 * page writing shared wasm memory with Atomics can change it mid-call) and
 * return OWL_E_CANCELLED: owl_session_encode_image and owl_session_warm_image
 * (no image added or cached), owl_session_prefill, owl_session_decode and
 * owl_session_run_layers (n_past unchanged; KV rows past it may be
 * overwritten, as by any later call). word NULL turns it off. */
void owl_session_cancel_when(owl_session *s, const int32_t *word, int32_t epoch);
/* The same with the counter read through read(user) at each check, on the
 * calling thread (the wasm engine reads a small SharedArrayBuffer of its own
 * there, so the page never needs a view of the engine's whole memory). read
 * NULL turns it off. */
void owl_session_cancel_read(owl_session *s, int32_t (*read)(void *user), void *user, int32_t epoch);

/* ------------------------------------------------------------ conversation
 * An owl_chat is one conversation on a session: the turns and images that
 * become the model's chat prompt (template and tokenizer from the GGUF; user
 * text is rendered literally), prefix reuse (a new question runs only the ids
 * past the common prefix with what the KV cache holds), images given as RGBA
 * pixels or encoded bytes and preprocessed with the model's own settings
 * (mean/std, pad colour, aspect), and step-wise generation: sampling, stop
 * strings, a token budget, and text streamed in whole UTF-8 characters with
 * anything that may be the start of a stop string held back. The CLI and the
 * wasm ABI both use it (src/chat/chat.c).
 *
 * Whole model:  owl_chat_ask(c, "What is it?"); owl_chat_gen_begin(c, &g);
 *               while ((r = owl_chat_step(c)) > 0) show(owl_chat_piece(c, &n));
 *               (r == 0: the last piece is shown too; r < 0: error)
 *               owl_chat_gen_end(c);  -- the answer becomes the assistant turn
 * Pipeline (design.md section 6), the same steps split by stage: the first
 * stage owl_chat_prepare + owl_chat_embed (the prompt part, then each token
 * to feed back) and owl_chat_push_token (the id the last stage sampled); every
 * stage owl_session_run_layers; the last stage owl_chat_sample.
 *
 * Context policy: a question whose whole conversation does not fit n_ctx is
 * refused with OWL_E_LIMIT before anything runs (chat and cache unchanged);
 * generation that fills the context ends normally (OWL_CHAT_CONTEXT).
 * A chat borrows its model and session; one thread at a time. Errors return
 * owl_status with the message in owl_chat_error; the chat stays usable. */

typedef struct owl_chat owl_chat;

#ifndef OWL_ROLES_DEFINED
#define OWL_ROLES_DEFINED
enum { OWL_ROLE_USER = 0, OWL_ROLE_ASSISTANT = 1 };
#endif

/* Why generation ended (owl_chat_reason); 0 while running. */
enum { OWL_CHAT_EOS = 1, OWL_CHAT_STOP = 2, OWL_CHAT_LENGTH = 3, OWL_CHAT_CONTEXT = 4, OWL_CHAT_ERROR = 5 };

typedef struct {
    const char *aspect; /* NULL or "": the model's (mplug-owl2.image.aspect, else pad);
                           else "stretch", "pad" or "crop" */
} owl_chat_opts;

typedef struct {
    int max_tokens;           /* <= 0: until eos, a stop string or a full context */
    float temperature;        /* <= 0: greedy */
    int top_k;                /* <= 0: off */
    float top_p;              /* >= 1: off; > 0 */
    float min_p;              /* <= 0: off; <= 1 */
    float repetition_penalty; /* 1: off; > 0 */
    uint64_t seed;
    const char *const *stops; /* n_stops (<= 64) strings of <= 16384 bytes, copied */
    int n_stops;
} owl_chat_gen;

typedef struct {
    int64_t prompt_rows; /* prompt positions run (images expanded) */
    int64_t decoded;     /* generated tokens fed back */
    int64_t images;      /* images encoded */
    int last_tokens;     /* tokens sampled by the last generation */
} owl_chat_stats;

/* Errors: OWL_E_INVALID (NULL), a tokenizer error (OWL_E_FORMAT/NOTFOUND:
 * tokenizer metadata), OWL_E_INVALID (unknown aspect name), OWL_E_NOMEM. */
owl_status owl_chat_init(const owl_model *m, owl_session *s, const owl_chat_opts *opts, owl_chat **out,
                         owl_err *err);
void owl_chat_free(owl_chat *c); /* NULL is a no-op; the session is not freed */
const char *owl_chat_error(const owl_chat *c);
/* Forget the turns, the images and the KV cache. */
void owl_chat_reset(owl_chat *c);
void owl_chat_get_stats(const owl_chat *c, owl_chat_stats *out);
/* The aspect mode in use ("stretch", "pad", "crop"; "" without vision). */
const char *owl_chat_aspect(const owl_chat *c);

/* An image for the next question: RGBA rows stride bytes apart, or encoded
 * PNG/JPEG/BMP/GIF bytes (decoded as PIL does); preprocessed with the model's
 * settings and encoded now. Errors: OWL_E_STATE (no vision), OWL_E_INVALID,
 * OWL_E_LIMIT (OWL_MAX_IMAGES for one question, image size), image decode
 * errors, OWL_E_NOMEM. */
owl_status owl_chat_add_image_rgba(owl_chat *c, const uint8_t *rgba, int w, int h, size_t stride);
owl_status owl_chat_add_image_encoded(owl_chat *c, const void *data, size_t size);
/* The same preprocessing, then owl_session_warm_image: the picture goes into
 * the session's image cache and is not attached to anything, so adding it to
 * a question later skips the vision tower (a page encodes the picture while
 * the user types). *encoded as owl_session_warm_image. Errors as add_image,
 * without its per-turn image limit. */
owl_status owl_chat_warm_image_rgba(owl_chat *c, const uint8_t *rgba, int w, int h, size_t stride, int *encoded);
owl_status owl_chat_warm_image_encoded(owl_chat *c, const void *data, size_t size, int *encoded);
/* A finished turn, run later with the next question (a replayed
 * conversation): role OWL_ROLE_USER (takes the images added since) or
 * OWL_ROLE_ASSISTANT, alternating from user. */
owl_status owl_chat_push_turn(owl_chat *c, int role, const char *text);

/* Whole model: add the user turn (and the images added since) and run the new
 * part of the prompt. Errors: OWL_E_LIMIT (context), OWL_E_STATE (an answer
 * not ended, a stage without embeddings), as prefill. */
owl_status owl_chat_ask(owl_chat *c, const char *text);
/* The same in two steps: prepare adds the turn and works out the rows to run
 * (*rows, at positions *pos0..); owl_chat_run runs them (all_logits, may be
 * NULL: (rows, n_vocab) logits). */
owl_status owl_chat_prepare(owl_chat *c, const char *text, int64_t *rows, int64_t *pos0);
owl_status owl_chat_run(owl_chat *c, float *all_logits);
/* Prime: run the part of the next question's prompt that is known before its
 * text is — the conversation so far and the images added for it, which come
 * before the question's text — so that the question later runs only its own
 * tokens (a page primes while the user types). Works out the rows like
 * prepare (*rows = 0: nothing to run, no images were added since the last
 * run); then owl_chat_run (whole model) or owl_chat_embed (pipeline) runs them.
 * The images stay pending: the next ask renders its turn with them. Errors:
 * OWL_E_STATE (an answer not ended, a part prepared and not run, a stage
 * without embeddings), OWL_E_LIMIT (context). */
owl_status owl_chat_prime(owl_chat *c, int64_t *rows, int64_t *pos0);
/* Drop the images added for the next question, and the rows a prime ran for
 * them (the KV cache goes back to the conversation so far): a page whose
 * picture changed after it was added. OWL_E_STATE if a part is prepared. */
owl_status owl_chat_clear_images(owl_chat *c);

/* greedy, max_tokens 256, no stops. */
owl_chat_gen owl_chat_gen_default(void);
/* Start generating the answer to the last question (sampler over the ids in
 * the cache, stop rules, stream). OWL_E_INVALID (parameters), OWL_E_STATE. */
owl_status owl_chat_gen_begin(owl_chat *c, const owl_chat_gen *g);
/* Whole model: feed the previous token, sample the next. Returns 1 (a piece
 * is ready, go on), 0 (finished: the piece holds the last text,
 * owl_chat_reason says why) or a negative owl_status. */
int owl_chat_step(owl_chat *c);
/* The text of the last step or push (whole UTF-8 characters; may be empty),
 * valid until the next call; *len (may be NULL) its bytes. */
const char *owl_chat_piece(const owl_chat *c, size_t *len);
int owl_chat_reason(const owl_chat *c);
int32_t owl_chat_last_token(const owl_chat *c);
/* End generation (finished or cancelled): the answer so far becomes the
 * assistant turn; the chat stays usable. */
owl_status owl_chat_gen_end(owl_chat *c);
/* The unexpanded ids the KV cache holds (OWL_IMAGE_TOKEN for images),
 * borrowed until the next call; returns their count. */
int64_t owl_chat_history(const owl_chat *c, const int32_t **ids);

/* Pipeline, first stage: embed the rows to run next — the prepared prompt
 * part, else the sampled token to feed back — into x (cap_rows x d_model) and
 * modality (cap_rows; may be NULL); *rows and *pos0 say which. OWL_E_STATE
 * if there is nothing to run. */
owl_status owl_chat_embed(owl_chat *c, float *x, uint8_t *modality, int64_t cap_rows, int64_t *rows,
                          int64_t *pos0);
/* Pipeline, first stage: a token the last stage sampled; returns as
 * owl_chat_step. */
int owl_chat_push_token(owl_chat *c, int32_t id);
/* Pipeline, last stage: set the sampler (history: the ids the repetition
 * penalty covers, the first stage's owl_chat_history; each sampled id is
 * added), then for each token owl_chat_sample: final norm + head on the last
 * of the n rows of x (overwritten), then sample: *id. On a whole model
 * owl_chat_gen_begin sets the sampler itself. */
owl_status owl_chat_sampler_begin(owl_chat *c, const owl_chat_gen *g, const int32_t *history, int64_t n);
owl_status owl_chat_sample(owl_chat *c, float *x, int64_t n, int32_t *id);
/* The logits the last sample drew from (n_vocab floats; tests/debugging). */
const float *owl_chat_logits(const owl_chat *c);

/* Tokenise text with the GGUF's tokenizer: chat = 1 renders it as a user
 * question first (with n_images image placeholders); the text is literal
 * ("</s>", "<|image|>" typed in it are characters) unless parse_special = 1
 * (the reference tokenizer's behaviour); *ids malloc'd. */
owl_status owl_prompt_tokenize(const owl_gguf *g, const char *text, int chat, int n_images, int parse_special,
                               int32_t **ids, size_t *n, owl_err *err);

/* ---- stage API (pipeline of layer ranges; design.md section 6) ----
 * Hidden states are x (n, d_model) f32, rows at positions pos0 .. pos0+n-1,
 * modality (n) per row: 0 text, 1 image (NULL = all text). prefill, decode
 * and generate need a model holding everything; these work on any stage.
 * A pipeline: stage 0 encode_image + embed + run_layers, stage k run_layers,
 * the last stage run_layers + head; each stage's session keeps its layers'
 * KV cache, and the same x is passed along. */

/* Embed ids into x, splicing encoded images at OWL_IMAGE_TOKEN as prefill does.
 * x must hold owl_model_expanded_len(ids) rows; modality (may be NULL) gets one
 * indicator per row. Errors: OWL_E_STATE (no token_embd held), OWL_E_INVALID. */
owl_status owl_session_embed(owl_session *s, const int32_t *ids, int64_t n_ids, float *x,
                             uint8_t *modality);
/* Run decoder layers [layer_begin, layer_end) (inside the model's held range)
 * on x in place. pos0 must be <= n_past (positions >= pos0 are overwritten)
 * and pos0 + n <= n_ctx; afterwards n_past = pos0 + n. Run every held layer
 * for every position, in position order. Errors: OWL_E_INVALID (range, pos0,
 * modality > 1, or 1 on a llama model), OWL_E_LIMIT. */
owl_status owl_session_run_layers(owl_session *s, int layer_begin, int layer_end, float *x,
                                  int64_t n, int64_t pos0, const uint8_t *modality);
/* Final RMSNorm (x is overwritten with it) and output head: logits
 * (n, n_vocab); owl_session_logits() then holds the last row. Errors:
 * OWL_E_STATE (no head held), OWL_E_INVALID. */
owl_status owl_session_head(owl_session *s, float *x, int64_t n, float *logits);

/* Read the cached keys (which = 0, after RoPE, in the GGUF's permuted head
 * layout) or values (which = 1) of decoder layer `layer` at positions
 * pos0..pos0+n-1 as f32: out (n, n_kv_heads*head_dim). For tests/inspection. */
owl_status owl_session_kv_read(const owl_session *s, int layer, int which, int64_t pos0,
                               int64_t n, float *out);

#ifdef __cplusplus
}
#endif

#endif
