/*
 * libFuzzer harness for the streaming multipart/form-data parser.
 *
 * Input: byte 0 chooses how the body is cut into feed() calls, byte 1
 * whether the Content-Type comes from the input (up to the first LF) or
 * is the fixed one below; the rest is the body.  The body is parsed twice,
 * whole and cut, and both parses must agree exactly: same result, same
 * error, same fields, same file bytes.  Along the way the callbacks check
 * the parser's promises (bounds, order, no empty chunks).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vconv_multipart.h"


#define FUZZ_CT  "multipart/form-data; boundary=XyZ"


typedef struct {
    uint64_t             hash;       /* FNV-1a over every event */
    size_t               file_bytes;
    int                  begun;
    int                  ended;
    int                  fields;
    vconv_multipart_t   *mp;
} fuzz_state_t;


static void
fuzz_hash(fuzz_state_t *st, const void *p, size_t len)
{
    size_t          i;
    const uint8_t  *b = p;

    for (i = 0; i < len; i++) {
        st->hash = (st->hash ^ b[i]) * 0x100000001b3ULL;
    }
}


static int
fuzz_on_field(void *data, const char *name, size_t nlen, const char *value,
    size_t vlen, vconv_error_t *err)
{
    fuzz_state_t  *st = data;

    if (nlen == 0 || nlen >= VCONV_MP_NAME_MAX || name[nlen] != '\0'
        || vlen > VCONV_MP_FIELD_MAX || vconv_multipart_in_file(st->mp))
    {
        abort();
    }

    /* the file field never comes here */
    if (nlen == 4 && memcmp(name, "file", 4) == 0) {
        abort();
    }

    st->fields++;
    fuzz_hash(st, "F", 1);
    fuzz_hash(st, name, nlen);
    fuzz_hash(st, "=", 1);
    fuzz_hash(st, value, vlen);

    return 0;
}


static int
fuzz_on_file_begin(void *data, const char *filename, size_t len,
    vconv_error_t *err)
{
    fuzz_state_t  *st = data;

    if (st->begun || len >= VCONV_MP_FILENAME_MAX || filename[len] != '\0'
        || !vconv_multipart_in_file(st->mp))
    {
        abort();
    }

    st->begun = 1;
    fuzz_hash(st, "B", 1);
    fuzz_hash(st, filename, len);

    return 0;
}


static int
fuzz_on_file_data(void *data, const uint8_t *p, size_t len,
    vconv_error_t *err)
{
    fuzz_state_t  *st = data;

    if (!st->begun || st->ended || len == 0
        || !vconv_multipart_in_file(st->mp))
    {
        abort();
    }

    st->file_bytes += len;

    /* data, not chunking, goes into the hash: cuts must not matter */
    fuzz_hash(st, p, len);

    return 0;
}


static int
fuzz_on_file_end(void *data, vconv_error_t *err)
{
    fuzz_state_t  *st = data;

    if (!st->begun || st->ended) {
        abort();
    }

    st->ended = 1;
    fuzz_hash(st, "E", 1);

    return 0;
}


/* the size of the next piece; mode 0 is "all at once" */
static size_t
fuzz_piece(unsigned mode, uint32_t *seed, size_t left)
{
    size_t  n;

    switch (mode & 3) {

    case 0:
        n = left;
        break;

    case 1:
        n = 1;
        break;

    case 2:
        n = (mode >> 2) + 1;
        break;

    default:
        *seed = *seed * 1103515245 + 12345;
        n = (*seed >> 16) % ((mode >> 2) * 4 + 2) + 1;
        break;
    }

    return n < left ? n : left;
}


static int
fuzz_parse(const char *ct, size_t ctlen, const uint8_t *body, size_t len,
    unsigned mode, fuzz_state_t *st, vconv_error_t *err)
{
    int                rc;
    size_t             at, n;
    uint32_t           seed;
    vconv_multipart_t  mp;

    memset(st, 0, sizeof(*st));
    memset(err, 0, sizeof(*err));
    st->hash = 0xcbf29ce484222325ULL;
    st->mp = &mp;

    mp.on_field = fuzz_on_field;
    mp.on_file_begin = fuzz_on_file_begin;
    mp.on_file_data = fuzz_on_file_data;
    mp.on_file_end = fuzz_on_file_end;
    mp.data = st;

    rc = vconv_multipart_init(&mp, ct, ctlen, err);

    if (rc != VCONV_OK) {
        return rc;
    }

    seed = mode;
    at = 0;

    while (at < len) {
        n = fuzz_piece(mode, &seed, len - at);
        rc = vconv_multipart_feed(&mp, body + at, n, err);

        if (rc != VCONV_OK) {
            return rc;
        }

        at += n;
    }

    rc = vconv_multipart_finish(&mp, err);

    /* a clean end means every begun file part also ended */
    if (rc == VCONV_OK && st->begun != st->ended) {
        abort();
    }

    return rc;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int             rc1, rc2;
    unsigned        mode;
    size_t          ctlen;
    const char     *ct;
    const uint8_t  *body, *lf;
    fuzz_state_t    st1, st2;
    vconv_error_t   err1, err2;

    if (size < 2) {
        return 0;
    }

    mode = data[0];
    body = data + 2;
    size -= 2;

    ct = FUZZ_CT;
    ctlen = sizeof(FUZZ_CT) - 1;

    if (data[1] & 1) {
        lf = memchr(body, '\n', size);

        if (lf == NULL) {
            return 0;
        }

        ct = (const char *) body;
        ctlen = lf - body;
        size -= ctlen + 1;
        body = lf + 1;
    }

    rc1 = fuzz_parse(ct, ctlen, body, size, 0, &st1, &err1);
    rc2 = fuzz_parse(ct, ctlen, body, size, mode, &st2, &err2);

    if (st1.file_bytes > size || st2.file_bytes > size) {
        abort();
    }

    if (rc1 != rc2 || st1.hash != st2.hash
        || st1.file_bytes != st2.file_bytes || st1.fields != st2.fields
        || err1.code != err2.code
        || strcmp(err1.message, err2.message) != 0)
    {
        fprintf(stderr, "whole and cut (mode %u) parses differ: %d/%d "
                "\"%s\" / \"%s\"\n", mode, rc1, rc2, err1.message,
                err2.message);
        abort();
    }

    if (rc1 != VCONV_OK
        && (err1.code != VCONV_E_INVALID_VALUE
            || memchr(err1.message, '\0', sizeof(err1.message)) == NULL
            || err1.message[0] == '\0'))
    {
        abort();
    }

    return 0;
}
