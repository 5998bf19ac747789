/* convert.h - owlet-convert internals: model config, tensor plan (names,
 * shapes, types, RoPE permutation), pipeline stage plan, GGUF writing, chunk
 * splitting, inspection. The contract for what is written is docs/FORMAT.md. */
#ifndef OWL_CONVERT_H
#define OWL_CONVERT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../src/core/json.h"
#include "../src/core/status.h"
#include "../src/kernels/types.h"
#include "ckpt.h"

#define OWL_CONV_MAX_LAYERS 1024
#define OWL_CONV_MAX_STAGES 64
#define OWL_CONV_DEFAULT_BUDGET_MIB 3200
/* A stage's weights are one malloc in its wasm instance, and wasm32's sbrk
 * takes a signed increment: 2^31 bytes or more cannot be allocated at once.
 * The planner keeps each stage's tensor bytes under this (alignment padding
 * and the separate header buffer fit in the rest). */
#define OWL_CONV_MAX_STAGE_WEIGHT_MIB 2000
#define OWL_CONV_DEFAULT_CHUNK_MIB 32

/* Hyperparameters read from config.json (+ preprocessor/generation configs). */
typedef struct {
    char name[128];
    /* LLM */
    int64_t vocab, hidden, ffn, layers, heads, kv_heads, ctx;
    double rope_theta, rms_eps;
    int64_t bos, eos;
    /* vision */
    int64_t v_image, v_patch, v_channels, v_hidden, v_layers, v_heads, v_ffn;
    double v_eps;
    /* abstractor */
    int64_t a_queries, a_layers, a_hidden, a_enc_hidden, a_heads, a_ffn, a_grid;
    double a_eps;
    /* preprocessing / generation */
    char aspect[16]; /* "stretch" or "pad" */
    float mean[3], std[3];
    float temperature, top_p;
    uint32_t top_k, max_new_tokens;
} owl_conv_cfg;

/* Fill cfg from a parsed config.json (nested visual_config). Checks every size
 * is positive and within limits and that they are consistent (heads divide
 * widths, abstractor grid matches the ViT patch grid). */
owl_status owl_conv_cfg_from_json(const owl_json *config, owl_conv_cfg *cfg, owl_err *err);
/* config.json + optional preprocessor_config.json / generation_config.json in dir. */
owl_status owl_conv_cfg_load(const char *dir, owl_conv_cfg *cfg, owl_err *err);

typedef enum { OWL_PART_VISION = 0, OWL_PART_ABSTRACTOR = 1, OWL_PART_LLM = 2 } owl_conv_part;

typedef enum {
    OWL_CONV_TYPE_F32 = 0,
    OWL_CONV_TYPE_F16,
    OWL_CONV_TYPE_Q8_0,
    OWL_CONV_TYPE_Q4_0,
    OWL_CONV_TYPE_Q4_K,
    OWL_CONV_TYPE_Q6_K,
    OWL_CONV_TYPE_Q4_K_M
} owl_conv_ftype;

/* "f32" ... "q4_k_m" -> ftype; -1 if unknown. */
int owl_conv_ftype_parse(const char *s);
const char *owl_conv_ftype_name(owl_conv_ftype t);

/* The vision tower's matrices (v.*, not the abstractor): DEFAULT keeps what
 * the type asks for (q4_k_m: Q8_0), the others set it whatever --type is. A
 * row that is not a multiple of the block falls back as for any type. */
typedef enum { OWL_CONV_VISION_DEFAULT = 0, OWL_CONV_VISION_Q8_0, OWL_CONV_VISION_Q6_K } owl_conv_vision;

/* "q8_0" or "q6_k" (also "q6_K") -> OWL_CONV_VISION_*; -1 otherwise. */
int owl_conv_vision_parse(const char *s);
const char *owl_conv_vision_name(owl_conv_vision v); /* "default", "q8_0", "q6_k" */

typedef enum {
    OWL_KIND_VEC,    /* 1-D: norms, biases, class/eos embeddings: F32 */
    OWL_KIND_TABLE,  /* added tables (position, queries): F32 */
    OWL_KIND_MATMUL, /* weights multiplied by activations */
    OWL_KIND_EMBD,   /* token_embd: rows looked up and dequantized */
    OWL_KIND_OUTPUT  /* the LM head */
} owl_conv_kind;

typedef struct {
    char name[64];  /* GGUF name */
    char key[192];  /* checkpoint key */
    owl_conv_part part;
    int layer;      /* LLM layer, -1 otherwise */
    owl_conv_kind kind;
    int src_dims;
    int64_t src_shape[4]; /* expected PyTorch shape */
    int n_dims;
    int64_t ne[2];  /* GGUF dims: ne[0] row length, ne[1] rows */
    int rope_heads; /* >0: permute rows for RoPE with this many heads */
    owl_type type;
    owl_type want;  /* the type the mix asked for */
    int fallback;   /* type differs from want because of the row length */
    uint64_t bytes;
} owl_conv_tensor;

typedef struct {
    owl_conv_cfg cfg;
    owl_conv_ftype ftype;
    owl_conv_vision vision;
    owl_conv_tensor *t;
    size_t n;
    /* stage plan */
    uint32_t n_stages;
    uint32_t stage_layer[OWL_CONV_MAX_STAGES + 1]; /* first layer of each stage; [n_stages] = layers */
    uint64_t stage_bytes[OWL_CONV_MAX_STAGES];     /* estimated memory per stage */
    uint32_t budget_mib;
} owl_conv_plan;

/* Build the tensor list (execution order) for cfg and ftype, and the stage plan
 * for budget_mib. owl_conv_plan_build is owl_conv_plan_build_vision with
 * OWL_CONV_VISION_DEFAULT. */
owl_status owl_conv_plan_build(const owl_conv_cfg *cfg, owl_conv_ftype ftype, uint32_t budget_mib,
                               owl_conv_plan *plan, owl_err *err);
owl_status owl_conv_plan_build_vision(const owl_conv_cfg *cfg, owl_conv_ftype ftype, owl_conv_vision vision,
                                      uint32_t budget_mib, owl_conv_plan *plan, owl_err *err);
void owl_conv_plan_free(owl_conv_plan *plan); /* NULL-safe */
/* Tensor index range [*first, *end) of stage s in plan->t. */
void owl_conv_stage_range(const owl_conv_plan *plan, uint32_t s, size_t *first, size_t *end);
/* Estimated working memory (KV cache + scratch) of a stage; documented in FORMAT.md. */
uint64_t owl_conv_stage_extra_bytes(const owl_conv_cfg *cfg, uint32_t n_layers, int first_stage);

/* Abstractor sin-cos tables (spec §2): q [queries x hidden], k [(1+grid^2) x hidden]. */
void owl_conv_q_pos(int64_t queries, int64_t hidden, float *out);
void owl_conv_k_pos(int64_t grid, int64_t hidden, float *out);

typedef struct {
    const char *in_dir;
    const char *out_path;
    const char *prefer;   /* "safetensors", "pytorch" or NULL */
    const char *name;     /* general.name; NULL: "mplug-owl2" */
    owl_conv_ftype ftype;
    uint32_t budget_mib;
    int progress;         /* print progress on stderr */
    int quiet;            /* no report on stderr */
    owl_conv_vision vision; /* --vision-type; 0 = the type's default */
} owl_conv_opts;

/* HF_DIR -> GGUF. Writes a fresh temporary file next to out_path and renames
 * it (weights_tool/outfile.h): a planted symlink is never followed; an
 * out_path that is not a regular file or is one of the checkpoint's files is
 * refused (OWL_E_INVALID) before any work; on error nothing is left. */
owl_status owl_convert(const owl_conv_opts *o, owl_err *err);

/* GGUF -> dir/<base>.NNNN.bin chunks + dir/manifest.json (design §4).
 * chunk_mib 1..OWL_CONV_MAX_CHUNK_MIB. Every file is written to a temporary
 * file first; only when all are written are they renamed into place (chunks,
 * then the manifest), so a failure (a full disk) leaves the folder as it was. */
#define OWL_CONV_MAX_CHUNK_MIB 1024 /* the loaders refuse chunks over 1 GiB */
owl_status owl_split(const char *gguf_path, const char *dir, uint32_t chunk_mib, owl_err *err);

/* `owlet inspect`: owl_inspect_main(argc, argv) with argv[0] the command name;
 * returns the exit status (0 ok, 1 error, 2 usage). The two reports, to o. */
int owl_inspect_main(int argc, char **argv);
int owl_inspect_file(FILE *o, const char *gguf_path);
int owl_inspect_plan(FILE *o, const char *config_json, owl_conv_ftype ft, owl_conv_vision vision,
                     uint32_t budget_mib);

#endif
