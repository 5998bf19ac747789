/* spm_model.c - SentencePiece ModelProto reader (see spm_model.h).
 *
 * Protobuf wire format: each field is a varint key (field << 3 | wire type)
 * followed by a varint (type 0), 8 bytes (1), a varint length and that many
 * bytes (2) or 4 bytes (5). Groups (3, 4) are not used by sentencepiece and are
 * rejected. Field numbers read here (sentencepiece_model.proto):
 *   ModelProto      1 pieces (repeated msg), 2 trainer_spec, 3 normalizer_spec
 *   SentencePiece   1 piece (string), 2 score (float), 3 type (enum)
 *   TrainerSpec     3 model_type, 24 treat_whitespace_as_suffix,
 *                   35 byte_fallback, 40 unk_id, 41 bos_id, 42 eos_id, 43 pad_id
 *   NormalizerSpec  2 precompiled_charsmap, 3 add_dummy_prefix,
 *                   4 remove_extra_whitespaces, 5 escape_whitespaces
 * Two passes over the pieces: count, then allocate and fill. */
#include "spm_model.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *p, *end;
} rd;

typedef struct {
    uint32_t field;
    int wire;
    uint64_t v;          /* varint value / fixed bits */
    const uint8_t *data; /* type 2 payload */
    size_t len;
} pb_field;

static owl_status read_varint(rd *r, uint64_t *v, const char *what, owl_err *err)
{
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end)
            return owl_err_set(err, OWL_E_TRUNCATED, "spm: %s: varint runs past the end", what);
        uint8_t b = *r->p++;
        if (i == 9 && b > 1)
            return owl_err_set(err, OWL_E_FORMAT, "spm: %s: varint overflows 64 bits", what);
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return OWL_OK;
        }
    }
    return owl_err_set(err, OWL_E_FORMAT, "spm: %s: varint longer than 10 bytes", what);
}

/* Read the next field of message `what`; returns OWL_OK with f filled. */
static owl_status next_field(rd *r, pb_field *f, const char *what, owl_err *err)
{
    uint64_t key;
    owl_status st = read_varint(r, &key, what, err);
    if (st)
        return st;
    if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return owl_err_set(err, OWL_E_FORMAT, "spm: %s: bad field number %llu", what,
                           (unsigned long long)(key >> 3));
    f->field = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    f->data = NULL;
    f->len = 0;
    f->v = 0;
    size_t left;
    switch (f->wire) {
    case 0:
        return read_varint(r, &f->v, what, err);
    case 1:
    case 5: {
        size_t n = f->wire == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            return owl_err_set(err, OWL_E_TRUNCATED, "spm: %s field %u: %zu-byte value past the end",
                               what, f->field, n);
        for (size_t i = 0; i < n; i++)
            f->v |= (uint64_t)r->p[i] << (8 * i);
        r->p += n;
        return OWL_OK;
    }
    case 2: {
        uint64_t n;
        st = read_varint(r, &n, what, err);
        if (st)
            return st;
        left = (size_t)(r->end - r->p);
        if (n > left)
            return owl_err_set(err, OWL_E_TRUNCATED,
                               "spm: %s field %u: length %llu but %zu bytes left", what, f->field,
                               (unsigned long long)n, left);
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return OWL_OK;
    }
    default:
        return owl_err_set(err, OWL_E_FORMAT, "spm: %s field %u: unsupported wire type %d", what,
                           f->field, f->wire);
    }
}

static owl_status want_wire(const pb_field *f, int wire, const char *what, owl_err *err)
{
    if (f->wire != wire)
        return owl_err_set(err, OWL_E_FORMAT, "spm: %s field %u: wire type %d, want %d", what,
                           f->field, f->wire, wire);
    return OWL_OK;
}

/* int32 fields are sign-extended to 64 bits on the wire. */
static owl_status as_i32(const pb_field *f, int32_t *out, const char *what, owl_err *err)
{
    int64_t v = (int64_t)f->v;
    if (v < INT32_MIN || v > INT32_MAX)
        return owl_err_set(err, OWL_E_FORMAT, "spm: %s field %u: value %lld is not an int32", what,
                           f->field, (long long)v);
    *out = (int32_t)v;
    return OWL_OK;
}

static owl_status parse_piece(const uint8_t *data, size_t len, int32_t index, owl_spm_piece *out,
                              owl_err *err)
{
    rd r = {data, data + len};
    const uint8_t *s = NULL;
    size_t slen = 0;
    int have_piece = 0;
    out->score = 0;
    out->type = OWL_SPM_NORMAL;
    while (r.p < r.end) {
        pb_field f;
        owl_status st = next_field(&r, &f, "piece", err);
        if (st)
            return st;
        if (f.field == 1) {
            if ((st = want_wire(&f, 2, "piece", err)))
                return st;
            s = f.data;
            slen = f.len;
            have_piece = 1;
        } else if (f.field == 2) {
            if ((st = want_wire(&f, 5, "piece", err)))
                return st;
            uint32_t bits = (uint32_t)f.v;
            memcpy(&out->score, &bits, 4);
        } else if (f.field == 3) {
            int32_t t = 0;
            if ((st = want_wire(&f, 0, "piece", err)) || (st = as_i32(&f, &t, "piece", err)))
                return st;
            if (t < OWL_SPM_NORMAL || t > OWL_SPM_BYTE)
                return owl_err_set(err, OWL_E_FORMAT, "spm: piece %d: unknown type %d", index, t);
            out->type = t;
        }
    }
    if (!have_piece || slen == 0)
        return owl_err_set(err, OWL_E_FORMAT, "spm: piece %d: empty or missing piece string", index);
    if (memchr(s, 0, slen))
        return owl_err_set(err, OWL_E_FORMAT, "spm: piece %d: NUL byte inside the piece", index);
    if (slen > UINT32_MAX - 1)
        return owl_err_set(err, OWL_E_FORMAT, "spm: piece %d: %zu bytes is too long", index, slen);
    out->piece = malloc(slen + 1);
    if (!out->piece)
        return owl_err_set(err, OWL_E_NOMEM, "spm: piece %d: out of memory (%zu bytes)", index, slen);
    memcpy(out->piece, s, slen);
    out->piece[slen] = 0;
    out->len = (uint32_t)slen;
    return OWL_OK;
}

static owl_status parse_trainer(const uint8_t *data, size_t len, owl_spm_model *m, owl_err *err)
{
    rd r = {data, data + len};
    while (r.p < r.end) {
        pb_field f;
        owl_status st = next_field(&r, &f, "trainer_spec", err);
        if (st)
            return st;
        int32_t v = 0;
        switch (f.field) {
        case 3: case 24: case 35: case 40: case 41: case 42: case 43:
            if ((st = want_wire(&f, 0, "trainer_spec", err)) ||
                (st = as_i32(&f, &v, "trainer_spec", err)))
                return st;
            break;
        default:
            continue;
        }
        switch (f.field) {
        case 3: m->model_type = v; break;
        case 24: m->treat_whitespace_as_suffix = v != 0; break;
        case 35: m->byte_fallback = v != 0; break;
        case 40: m->unk_id = v; break;
        case 41: m->bos_id = v; break;
        case 42: m->eos_id = v; break;
        case 43: m->pad_id = v; break;
        }
    }
    return OWL_OK;
}

static owl_status parse_normalizer(const uint8_t *data, size_t len, owl_spm_model *m, owl_err *err)
{
    rd r = {data, data + len};
    while (r.p < r.end) {
        pb_field f;
        owl_status st = next_field(&r, &f, "normalizer_spec", err);
        if (st)
            return st;
        if (f.field == 2) {
            if ((st = want_wire(&f, 2, "normalizer_spec", err)))
                return st;
            m->has_charsmap = f.len > 0;
        } else if (f.field >= 3 && f.field <= 5) {
            if ((st = want_wire(&f, 0, "normalizer_spec", err)))
                return st;
            int v = f.v != 0;
            if (f.field == 3)
                m->add_dummy_prefix = v;
            else if (f.field == 4)
                m->remove_extra_whitespaces = v;
            else
                m->escape_whitespaces = v;
        }
    }
    return OWL_OK;
}

owl_status owl_spm_parse(const void *data, size_t size, owl_spm_model *out, owl_err *err)
{
    if (!out || (!data && size))
        return owl_err_set(err, OWL_E_INVALID, "spm: NULL argument");
    memset(out, 0, sizeof *out);
    owl_spm_model m = {0};
    m.model_type = 1; /* proto default: UNIGRAM */
    m.add_dummy_prefix = 1;
    m.remove_extra_whitespaces = 1;
    m.escape_whitespaces = 1;
    m.unk_id = 0;
    m.bos_id = 1;
    m.eos_id = 2;
    m.pad_id = -1;

    /* Pass 1: validate the top level and count the pieces. */
    rd r = {data, (const uint8_t *)data + size};
    size_t n = 0;
    int have_trainer = 0, have_norm = 0;
    owl_status st;
    while (r.p < r.end) {
        pb_field f;
        if ((st = next_field(&r, &f, "model", err)))
            return st;
        if (f.field >= 1 && f.field <= 3 && (st = want_wire(&f, 2, "model", err)))
            return st;
        if (f.field == 1)
            n++;
        else if (f.field == 2)
            have_trainer = 1;
        else if (f.field == 3)
            have_norm = 1;
    }
    if (n == 0)
        return owl_err_set(err, OWL_E_FORMAT, "spm: no pieces (%zu bytes)", size);
    if (n > INT32_MAX)
        return owl_err_set(err, OWL_E_FORMAT, "spm: %zu pieces is too many", n);
    (void)have_trainer;
    (void)have_norm;
    m.pieces = calloc(n, sizeof *m.pieces);
    if (!m.pieces)
        return owl_err_set(err, OWL_E_NOMEM, "spm: out of memory for %zu pieces", n);

    /* Pass 2: fill. */
    r.p = data;
    while (r.p < r.end) {
        pb_field f;
        if ((st = next_field(&r, &f, "model", err)))
            goto fail;
        if (f.field == 1) {
            st = parse_piece(f.data, f.len, m.n_pieces, &m.pieces[m.n_pieces], err);
            if (st)
                goto fail;
            m.n_pieces++;
        } else if (f.field == 2) {
            if ((st = parse_trainer(f.data, f.len, &m, err)))
                goto fail;
        } else if (f.field == 3) {
            if ((st = parse_normalizer(f.data, f.len, &m, err)))
                goto fail;
        }
    }
    *out = m;
    return OWL_OK;
fail:
    owl_spm_free(&m);
    return st;
}

void owl_spm_free(owl_spm_model *m)
{
    if (!m)
        return;
    if (m->pieces)
        for (int32_t i = 0; i < m->n_pieces; i++)
            free(m->pieces[i].piece);
    free(m->pieces);
    memset(m, 0, sizeof *m);
}
