/* template.h - the mplug_owl2 chat template and prompt tokenisation.
 *
 * Rendering (reference conversation.py, style TWO_NO_SYS, sep " ", sep2 "</s>";
 * the system string is never emitted): message i with text M becomes
 *   ROLE ": " M (i even ? " " : "</s>")
 * with ROLE "USER" / "ASSISTANT"; a message with no text and no image becomes
 * just "ROLE:". The open assistant turn is "ASSISTANT:". Images attached to a
 * message put one "<|image|>" each at the very start of that message's text.
 *   USER: <|image|>{q} ASSISTANT:
 *   USER: <|image|>{q1} ASSISTANT: {a1}</s>USER: {q2} ASSISTANT:
 *
 * Tokenisation (reference mm_utils.tokenizer_image_token): split the rendered
 * text on "<|image|>"; encode every non-empty chunk on its own with BOS (HF
 * slow LlamaTokenizer: literal "</s>" etc. -> special ids); an empty chunk gives
 * no ids. If the first chunk's ids start with BOS, that BOS is kept once and
 * one leading id is dropped from every chunk; otherwise (prompt starting with
 * "<|image|>") nothing is dropped, so later chunks keep their BOS. Chunks are
 * joined by one OWL_IMAGE_TOKEN (-200) each. */
#ifndef OWL_TEMPLATE_H
#define OWL_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/status.h"
#include "tokenizer.h"

#define OWL_IMAGE_TOKEN (-200)
#define OWL_IMAGE_PLACEHOLDER "<|image|>"

/* The same template as a Jinja string for GGUF `tokenizer.chat_template`, in
 * the style of HF chat templates: messages[i].role "user" / "assistant"
 * ("system" ignored), content a string (placeholders included by the caller)
 * or a list of {"type": "image"} / {"type": "text", "text": ...} parts (images
 * go first); add_generation_prompt appends "ASSISTANT:". Renders the same text
 * as owl_chat_render for non-empty messages (tests/tokenizer/check_template.py). */
#define OWL_CHAT_TEMPLATE_MPLUG_OWL2                                                              \
    "{%- for message in messages -%}"                                                             \
    "{%- if message['role'] == 'user' or message['role'] == 'assistant' -%}"                      \
    "{%- if message['role'] == 'user' -%}{{- 'USER: ' -}}{%- else -%}{{- 'ASSISTANT: ' -}}{%- endif -%}" \
    "{%- if message['content'] is string -%}{{- message['content'] -}}"                           \
    "{%- else -%}"                                                                                \
    "{%- for part in message['content'] -%}{%- if part['type'] == 'image' -%}{{- '<|image|>' -}}{%- endif -%}{%- endfor -%}" \
    "{%- for part in message['content'] -%}{%- if part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}{%- endfor -%}" \
    "{%- endif -%}"                                                                               \
    "{%- if message['role'] == 'user' -%}{{- ' ' -}}{%- else -%}{{- '</s>' -}}{%- endif -%}"      \
    "{%- endif -%}"                                                                               \
    "{%- endfor -%}"                                                                              \
    "{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}"

#ifndef OWL_ROLES_DEFINED /* also in src/owlet.h */
#define OWL_ROLES_DEFINED
enum { OWL_ROLE_USER = 0, OWL_ROLE_ASSISTANT = 1 };
#endif

typedef struct {
    int role;         /* OWL_ROLE_USER for even i, OWL_ROLE_ASSISTANT for odd i */
    const char *text; /* UTF-8, NUL-terminated (NULL = "") */
    int n_images;     /* images carried by this message (>= 0) */
} owl_chat_msg;

/* Render msgs[0..n) and, if add_generation_prompt, the open "ASSISTANT:" turn.
 * Roles must alternate starting with USER (OWL_E_INVALID otherwise). *out is
 * malloc'd, NUL-terminated; *len excludes the NUL. */
owl_status owl_chat_render(const owl_chat_msg *msgs, int n, int add_generation_prompt, char **out,
                           size_t *len, owl_err *err);

/* Rendered prompt -> ids with OWL_IMAGE_TOKEN sentinels (see above). legacy
 * is the HF tokenizer's `legacy` flag (the oracle's tokenizer_config has
 * false; it only changes text right after a special token such as "</s>").
 * *ids is malloc'd; *n_images (may be NULL) counts the sentinels. */
owl_status owl_chat_tokenize(const owl_tokenizer *t, const char *prompt, size_t len, int legacy,
                             int32_t **ids, size_t *n_ids, int *n_images, owl_err *err);

/* Render msgs (as owl_chat_render) and tokenize the result (as
 * owl_chat_tokenize) with every message's text kept as text: "</s>", "<s>",
 * "<unk>" or "<|image|>" typed in a message are encoded as ordinary
 * characters; only the template's own separators are special and images come
 * from n_images alone. Text without those strings gives exactly
 * owl_chat_tokenize(owl_chat_render(...)). parse_text_special = 1 parses them
 * inside messages too (the reference's behaviour: a message can then end a
 * turn or place an image). */
owl_status owl_chat_tokenize_msgs(const owl_tokenizer *t, const owl_chat_msg *msgs, int n,
                                  int add_generation_prompt, int legacy, int parse_text_special, int32_t **ids,
                                  size_t *n_ids, int *n_images, owl_err *err);

#endif
