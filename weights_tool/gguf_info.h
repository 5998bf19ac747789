/* gguf_info.h - a GGUF file's header (read without its tensor data) plus its
 * owlet stage plan; shared by split.c and inspect.c. */
#ifndef OWL_GGUF_INFO_H
#define OWL_GGUF_INFO_H

#include "../src/core/gguf.h"
#include "convert.h"

typedef struct {
    owl_gguf g;        /* header_only parse: tensor data pointers are NULL */
    uint8_t *buf;      /* header bytes (owned; g points into it) */
    uint64_t file_size;
    uint32_t n_layers;
    uint32_t n_stages; /* 1 when the file has no owlet.stages */
    uint32_t stage_layer[OWL_CONV_MAX_STAGES + 1];
} owl_gguf_info;

owl_status owl_conv_gguf_load_header(const char *path, owl_gguf_info *info, owl_err *err);
void owl_conv_gguf_free(owl_gguf_info *info); /* NULL-safe */
/* Stage of a tensor: blk.N by layer; output_norm/output last; the rest 0. */
uint32_t owl_conv_gguf_tensor_stage(const owl_gguf_info *info, const owl_gguf_tensor *t);
int owl_conv_gguf_part(const owl_gguf_tensor *t); /* owl_conv_part */
/* File byte range [*off, *end) of stage s's tensors. */
void owl_conv_gguf_stage_range(const owl_gguf_info *info, uint32_t s, uint64_t *off, uint64_t *end);
uint64_t owl_conv_gguf_param_count(const owl_gguf_info *info);
const char *owl_conv_quant_name(uint32_t file_type);

#endif
