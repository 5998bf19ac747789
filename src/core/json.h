/* json.h - small validating JSON parser (RFC 8259) for config.json,
 * tokenizer/preprocessor configs, safetensors headers and manifest.json.
 *
 * Untrusted input: owl_json_parse() checks the whole grammar (strict numbers,
 * escapes incl. surrogate pairs, UTF-8 validity, no control characters in
 * strings, no duplicate object keys, nothing but whitespace after the value),
 * limits nesting to OWL_JSON_MAX_DEPTH and input to OWL_JSON_MAX_SIZE bytes,
 * and returns OWL_E_FORMAT / OWL_E_LIMIT with a message giving the byte offset.
 * It never aborts. The tree is one allocation per container; free the root
 * with owl_json_free(). Nothing points into the caller's buffer. */
#ifndef OWL_JSON_H
#define OWL_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"

#define OWL_JSON_MAX_DEPTH 64
#define OWL_JSON_MAX_SIZE ((size_t)256 << 20)

typedef enum {
    OWL_JSON_NULL = 0,
    OWL_JSON_BOOL,
    OWL_JSON_NUMBER,
    OWL_JSON_STRING,
    OWL_JSON_ARRAY,
    OWL_JSON_OBJECT
} owl_json_type;

typedef struct owl_json owl_json;
struct owl_json {
    owl_json_type type;
    int boolean;      /* BOOL */
    double number;    /* NUMBER (as strtod reads it) */
    int is_int;       /* NUMBER written without fraction/exponent and fits int64 */
    int64_t integer;  /* NUMBER when is_int */
    char *str;        /* STRING: decoded UTF-8, NUL-terminated (may hold NULs) */
    size_t len;       /* STRING bytes; ARRAY/OBJECT element count */
    owl_json *items;  /* ARRAY elements / OBJECT values (owned) */
    char **keys;      /* OBJECT keys, parallel to items (owned, NUL-terminated) */
};

/* Parse data[0..size). On success *out is a new tree; on error *out is NULL. */
owl_status owl_json_parse(const char *data, size_t size, owl_json **out, owl_err *err);
void owl_json_free(owl_json *v); /* NULL-safe */

/* Member of an object (NULL if v is not an object or the key is absent). */
const owl_json *owl_json_get(const owl_json *v, const char *key);
/* Typed member lookups: OWL_E_NOTFOUND if absent (or JSON null), OWL_E_FORMAT if
 * the type differs or an integer is not integral / out of range. The message
 * names the key. */
owl_status owl_json_get_i64(const owl_json *obj, const char *key, int64_t *v, owl_err *err);
owl_status owl_json_get_f64(const owl_json *obj, const char *key, double *v, owl_err *err);
owl_status owl_json_get_str(const owl_json *obj, const char *key, const char **v, owl_err *err);

/* Write s as a JSON string literal (quotes and escapes) to f. */
void owl_json_write_str(FILE *f, const char *s);

#endif
