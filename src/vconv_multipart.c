/*
 * vconv: a streaming multipart/form-data parser (RFC 7578, RFC 2046).
 *
 * The delimiter is "\r\n--" boundary.  Boundary characters never include
 * CR or LF, so a CR occurs in the delimiter only at its first byte: when a
 * partial match fails, no shorter suffix of what was matched can start
 * another match, except the failing byte itself if it is a CR.  That makes
 * the scan a single pass with a counter, and the bytes held back across
 * feed() calls are always a prefix of the delimiter: they need no buffer
 * of their own, mp->boundary holds them.
 *
 * The body starts as if "\r\n" had been seen, so that a first delimiter at
 * the very start of the body (no preamble) is found like any other.
 *
 * Line endings are CRLF only, in part headers too: a bare LF could never
 * end a part's content anyway, so accepting it in headers would only hide
 * a broken client until its first part ends.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "vconv_multipart.h"


enum {
    VCONV_MP_PREAMBLE = 0,
    VCONV_MP_DELIM,              /* right after "--boundary" */
    VCONV_MP_DELIM_DASH,         /* "--boundary-" */
    VCONV_MP_DELIM_PAD,          /* transport padding before CRLF */
    VCONV_MP_DELIM_LF,           /* CR after a delimiter */
    VCONV_MP_HEADER,
    VCONV_MP_HEADER_LF,          /* CR in a header line */
    VCONV_MP_FILE,
    VCONV_MP_FIELD,
    VCONV_MP_EPILOGUE,
    VCONV_MP_ERROR
};


#define VCONV_MP_FILE_FIELD  "file"


static int vconv_mp_fail(vconv_multipart_t *mp, vconv_error_t *err,
    const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;


static int
vconv_mp_fail(vconv_multipart_t *mp, vconv_error_t *err, const char *fmt,
    ...)
{
    va_list  args;

    mp->state = VCONV_MP_ERROR;

    err->code = VCONV_E_INVALID_VALUE;

    va_start(args, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, args);
    va_end(args);

    return VCONV_ERROR;
}


/* RFC 2046 bcharsnospace */
static int
vconv_mp_bchar(int c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
        || (c >= 'A' && c <= 'Z'))
    {
        return 1;
    }

    return c != '\0' && strchr("'()+_,-./:=?", c) != NULL;
}


/* RFC 9110 tchar */
static int
vconv_mp_tchar(int c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
        || (c >= 'A' && c <= 'Z'))
    {
        return 1;
    }

    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}


static const char *
vconv_mp_skip_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    return p;
}


static const char *
vconv_mp_token(const char *p, const char *end)
{
    while (p < end && vconv_mp_tchar((unsigned char) *p)) {
        p++;
    }

    return p;
}


/*
 * Reads a parameter value, a token or a quoted-string, into out (at most
 * size bytes).  Returns the position after it, or NULL if it is malformed
 * or too long.  Inside quotes only \" and \\ are escapes: old browsers
 * sent Windows paths with bare backslashes, and those stay as they are.
 */
static const char *
vconv_mp_value(const char *p, const char *end, char *out, size_t size,
    size_t *len)
{
    size_t       n;
    const char  *q;

    n = 0;

    if (p < end && *p != '"') {
        q = vconv_mp_token(p, end);

        if (q == p || (size_t) (q - p) > size) {
            return NULL;
        }

        memcpy(out, p, q - p);
        *len = q - p;

        return q;
    }

    for (p++; p < end; p++) {

        if (*p == '"') {
            *len = n;
            return p + 1;
        }

        if (*p == '\\' && p + 1 < end && (p[1] == '"' || p[1] == '\\')) {
            p++;
        }

        if (n == size) {
            return NULL;
        }

        out[n++] = *p;
    }

    /* no closing quote */

    return NULL;
}


static int
vconv_mp_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/*
 * RFC 8187 (was 5987) ext-value: charset'language'pct-encoded.  UTF-8 is
 * kept as is, ISO-8859-1 becomes UTF-8.  Returns 0 when it does not decode
 * (unknown charset, bad escape, a NUL, too long): the caller then keeps
 * the plain filename parameter.
 */
static int
vconv_mp_ext_value(const char *p, size_t len, char *out, size_t size,
    size_t *olen)
{
    int          c, hi, lo, latin1;
    size_t       n;
    const char  *end, *q;

    end = p + len;

    q = memchr(p, '\'', len);
    if (q == NULL) {
        return 0;
    }

    if (q - p == 5 && strncasecmp(p, "utf-8", 5) == 0) {
        latin1 = 0;

    } else if (q - p == 10 && strncasecmp(p, "iso-8859-1", 10) == 0) {
        latin1 = 1;

    } else {
        return 0;
    }

    q = memchr(q + 1, '\'', end - (q + 1));
    if (q == NULL) {
        return 0;
    }

    n = 0;

    for (p = q + 1; p < end; p++) {
        c = (unsigned char) *p;

        if (c == '%') {
            if (end - p < 3) {
                return 0;
            }

            hi = vconv_mp_hex((unsigned char) p[1]);
            lo = vconv_mp_hex((unsigned char) p[2]);

            if (hi < 0 || lo < 0) {
                return 0;
            }

            c = hi * 16 + lo;
            p += 2;
        }

        if (c == 0) {
            return 0;
        }

        if (latin1 && c >= 0x80) {
            if (size - n < 2) {
                return 0;
            }

            out[n++] = (char) (0xc0 | (c >> 6));
            out[n++] = (char) (0x80 | (c & 0x3f));
            continue;
        }

        if (n == size) {
            return 0;
        }

        out[n++] = (char) c;
    }

    *olen = n;

    return 1;
}


/* Content-Disposition: form-data; name="..."; filename="..." */
static int
vconv_mp_disposition(vconv_multipart_t *mp, const char *p, const char *end,
    vconv_error_t *err)
{
    int          star;
    size_t       vlen;
    const char  *q, *pname;
    size_t       plen;
    char         value[VCONV_MP_HEADER_MAX];
    char         ext[VCONV_MP_FILENAME_MAX - 1];

    if (mp->name_len != 0) {
        return vconv_mp_fail(mp, err,
                             "a multipart part has two Content-Disposition "
                             "headers");
    }

    star = 0;

    p = vconv_mp_skip_ows(p, end);
    q = vconv_mp_token(p, end);

    if (q - p != 9 || strncasecmp(p, "form-data", 9) != 0) {
        return vconv_mp_fail(mp, err,
                             "a multipart part's Content-Disposition is not "
                             "\"form-data\"");
    }

    p = q;

    for ( ;; ) {
        p = vconv_mp_skip_ows(p, end);

        if (p == end) {
            break;
        }

        if (*p != ';') {
            goto malformed;
        }

        p = vconv_mp_skip_ows(p + 1, end);

        if (p == end) {
            break;
        }

        pname = p;
        p = vconv_mp_token(p, end);
        plen = p - pname;

        if (plen == 0) {
            goto malformed;
        }

        p = vconv_mp_skip_ows(p, end);

        if (p == end || *p != '=') {
            goto malformed;
        }

        p = vconv_mp_skip_ows(p + 1, end);
        p = vconv_mp_value(p, end, value, sizeof(value), &vlen);

        if (p == NULL) {
            goto malformed;
        }

        if (plen == 4 && strncasecmp(pname, "name", 4) == 0) {

            if (mp->name_len != 0) {
                return vconv_mp_fail(mp, err,
                                     "a multipart part has two names");
            }

            if (vlen == 0) {
                return vconv_mp_fail(mp, err,
                                     "a multipart part has an empty name");
            }

            if (vlen >= sizeof(mp->name)) {
                return vconv_mp_fail(mp, err,
                                     "a multipart part's name is longer "
                                     "than %d bytes", VCONV_MP_NAME_MAX - 1);
            }

            memcpy(mp->name, value, vlen);
            mp->name[vlen] = '\0';
            mp->name_len = vlen;

        } else if (plen == 8 && strncasecmp(pname, "filename", 8) == 0) {

            /* filename* wins over filename whatever their order */
            if (star) {
                continue;
            }

            if (vlen >= sizeof(mp->filename)) {
                return vconv_mp_fail(mp, err,
                                     "a multipart filename is longer "
                                     "than %d bytes",
                                     VCONV_MP_FILENAME_MAX - 1);
            }

            memcpy(mp->filename, value, vlen);
            mp->filename[vlen] = '\0';
            mp->filename_len = vlen;
            mp->has_filename = 1;

        } else if (plen == 9 && strncasecmp(pname, "filename*", 9) == 0) {

            /* decoded aside: a failed decode must leave filename as is */

            if (vconv_mp_ext_value(value, vlen, ext, sizeof(ext), &vlen)) {
                memcpy(mp->filename, ext, vlen);
                mp->filename[vlen] = '\0';
                mp->filename_len = vlen;
                mp->has_filename = 1;
                star = 1;
            }
        }

        /* other parameters are ignored */
    }

    if (mp->name_len == 0) {
        return vconv_mp_fail(mp, err,
                             "a multipart part's Content-Disposition has no "
                             "name");
    }

    return VCONV_OK;

malformed:

    return vconv_mp_fail(mp, err,
                         "a multipart part has a malformed "
                         "Content-Disposition header");
}


static int
vconv_mp_header_line(vconv_multipart_t *mp, vconv_error_t *err)
{
    const char  *p, *end, *colon;

    p = mp->line;
    end = p + mp->line_len;

    if (*p == ' ' || *p == '\t') {
        return vconv_mp_fail(mp, err,
                             "folded multipart part header lines are not "
                             "supported");
    }

    colon = memchr(p, ':', mp->line_len);

    if (colon == NULL || colon == p || vconv_mp_token(p, colon) != colon) {
        return vconv_mp_fail(mp, err, "a multipart part header is malformed");
    }

    if (colon - p == 19 && strncasecmp(p, "content-disposition", 19) == 0) {
        return vconv_mp_disposition(mp, colon + 1, end, err);
    }

    /* Content-Type and the rest tell us nothing we need */

    return VCONV_OK;
}


static int
vconv_mp_part_begin(vconv_multipart_t *mp, vconv_error_t *err)
{
    if (mp->name_len == 0) {
        return vconv_mp_fail(mp, err,
                             "a multipart part has no Content-Disposition "
                             "header");
    }

    mp->value_len = 0;

    if (mp->name_len != sizeof(VCONV_MP_FILE_FIELD) - 1
        || memcmp(mp->name, VCONV_MP_FILE_FIELD, mp->name_len) != 0)
    {
        mp->is_file = 0;
        mp->state = VCONV_MP_FIELD;
        return VCONV_OK;
    }

    if (++mp->files > 1) {
        return vconv_mp_fail(mp, err,
                             "the multipart body has more than one \"file\" "
                             "part");
    }

    mp->is_file = 1;
    mp->state = VCONV_MP_FILE;

    if (mp->on_file_begin != NULL
        && mp->on_file_begin(mp->data, mp->filename, mp->filename_len, err))
    {
        mp->state = VCONV_MP_ERROR;
        return VCONV_ERROR;
    }

    return VCONV_OK;
}


static int
vconv_mp_part_end(vconv_multipart_t *mp, vconv_error_t *err)
{
    int  rc;

    rc = 0;

    if (mp->state == VCONV_MP_FILE) {
        if (mp->on_file_end != NULL) {
            rc = mp->on_file_end(mp->data, err);
        }

    } else if (mp->state == VCONV_MP_FIELD) {
        if (mp->on_field != NULL) {
            rc = mp->on_field(mp->data, mp->name, mp->name_len, mp->value,
                              mp->value_len, err);
        }
    }

    if (rc != 0) {
        mp->state = VCONV_MP_ERROR;
        return VCONV_ERROR;
    }

    mp->state = VCONV_MP_DELIM;

    return VCONV_OK;
}


/* hands content bytes to where the current state wants them */
static int
vconv_mp_emit(vconv_multipart_t *mp, const uint8_t *p, size_t len,
    vconv_error_t *err)
{
    if (len == 0) {
        return VCONV_OK;
    }

    switch (mp->state) {

    case VCONV_MP_FILE:
        if (mp->on_file_data != NULL
            && mp->on_file_data(mp->data, p, len, err))
        {
            mp->state = VCONV_MP_ERROR;
            return VCONV_ERROR;
        }

        return VCONV_OK;

    case VCONV_MP_FIELD:
        if (len > sizeof(mp->value) - mp->value_len) {
            return vconv_mp_fail(mp, err,
                                 "the form field \"%s\" is longer than %d "
                                 "bytes", mp->name, VCONV_MP_FIELD_MAX);
        }

        memcpy(mp->value + mp->value_len, p, len);
        mp->value_len += len;

        return VCONV_OK;

    default:
        /* the preamble */
        return VCONV_OK;
    }
}


/*
 * Scans content for the delimiter.  Returns the bytes consumed (all of
 * them, or up to the end of a delimiter, with *found set), or -1.
 * "held" is how much of the current partial match came from earlier
 * calls: those bytes are in mp->boundary, the rest are in p.
 */
static ssize_t
vconv_mp_scan(vconv_multipart_t *mp, const uint8_t *p, size_t len,
    int *found, vconv_error_t *err)
{
    size_t          i, m, held, start;
    const uint8_t  *b, *cr;

    b = (const uint8_t *) mp->boundary;
    m = mp->match;
    held = m;
    *found = 0;

    for (i = 0; i < len; i++) {

        if (m == 0) {
            cr = memchr(p + i, '\r', len - i);

            if (cr == NULL) {
                i = len;
                break;
            }

            i = cr - p;
            m = 1;
            continue;
        }

        if (p[i] == b[m]) {

            if (++m < mp->blen) {
                continue;
            }

            /* the delimiter is complete: what precedes it is content */

            start = i + 1 - (mp->blen - held);

            if (vconv_mp_emit(mp, p, start, err) != VCONV_OK) {
                return -1;
            }

            mp->match = 0;
            *found = 1;

            return i + 1;
        }

        /* no delimiter after all: the held back bytes were content */

        if (held != 0) {
            if (vconv_mp_emit(mp, b, held, err) != VCONV_OK) {
                return -1;
            }

            held = 0;
        }

        m = (p[i] == '\r');
    }

    /* keep back the tail that may begin a delimiter */

    if (vconv_mp_emit(mp, p, len - (m - held), err) != VCONV_OK) {
        return -1;
    }

    mp->match = m;

    return len;
}


int
vconv_multipart_init(vconv_multipart_t *mp, const char *content_type,
    size_t len, vconv_error_t *err)
{
    size_t       blen, plen;
    const char  *p, *end, *q, *pname;
    char         value[VCONV_MP_BOUNDARY_MAX + 1];

    mp->state = VCONV_MP_ERROR;
    mp->blen = 0;
    mp->match = 0;
    mp->line_len = 0;
    mp->name_len = 0;
    mp->filename_len = 0;
    mp->is_file = 0;
    mp->has_filename = 0;
    mp->value_len = 0;
    mp->parts = 0;
    mp->files = 0;
    mp->done = 0;
    mp->name[0] = '\0';
    mp->filename[0] = '\0';

    p = content_type;
    end = p + len;

    p = vconv_mp_skip_ows(p, end);

    if (end - p < 19 || strncasecmp(p, "multipart/form-data", 19) != 0) {
        goto not_form_data;
    }

    p += 19;

    if (p < end && *p != ';' && *p != ' ' && *p != '\t') {
        goto not_form_data;
    }

    blen = 0;

    for ( ;; ) {
        p = vconv_mp_skip_ows(p, end);

        if (p == end) {
            break;
        }

        if (*p != ';') {
            goto malformed;
        }

        p = vconv_mp_skip_ows(p + 1, end);

        if (p == end) {
            break;
        }

        pname = p;
        p = vconv_mp_token(p, end);
        plen = p - pname;

        if (plen == 0 || p == end || *p != '=') {
            goto malformed;
        }

        p++;

        if (plen != 8 || strncasecmp(pname, "boundary", 8) != 0) {

            /* charset and the like: skip the value */

            p = vconv_mp_value(p, end, mp->line, sizeof(mp->line), &plen);

            if (p == NULL) {
                goto malformed;
            }

            continue;
        }

        if (blen != 0) {
            return vconv_mp_fail(mp, err,
                                 "Content-Type has two boundary parameters");
        }

        if (p < end && *p == '"') {
            p = vconv_mp_value(p, end, value, VCONV_MP_BOUNDARY_MAX, &blen);

            if (p == NULL) {
                return vconv_mp_fail(mp, err,
                                     "the multipart boundary is malformed "
                                     "or longer than %d characters",
                                     VCONV_MP_BOUNDARY_MAX);
            }

        } else {
            for (q = p; q < end && vconv_mp_bchar((unsigned char) *q); q++) {
                /* void */
            }

            blen = q - p;

            if (blen > VCONV_MP_BOUNDARY_MAX) {
                return vconv_mp_fail(mp, err,
                                     "the multipart boundary is longer than "
                                     "%d characters", VCONV_MP_BOUNDARY_MAX);
            }

            memcpy(value, p, blen);
            p = q;
        }

        if (blen == 0) {
            return vconv_mp_fail(mp, err, "the multipart boundary is empty");
        }

        /* space is a bchar, but not as the last one */

        for (q = value; q < value + blen; q++) {
            if (!vconv_mp_bchar((unsigned char) *q)
                && !(*q == ' ' && q != value + blen - 1))
            {
                return vconv_mp_fail(mp, err,
                                     "the multipart boundary has invalid "
                                     "characters");
            }
        }
    }

    if (blen == 0) {
        return vconv_mp_fail(mp, err,
                             "Content-Type multipart/form-data has no "
                             "boundary");
    }

    memcpy(mp->boundary, "\r\n--", 4);
    memcpy(mp->boundary + 4, value, blen);
    mp->blen = blen + 4;
    mp->boundary[mp->blen] = '\0';

    /* as if the body began after a CRLF: see the top of the file */

    mp->match = 2;
    mp->state = VCONV_MP_PREAMBLE;

    return VCONV_OK;

not_form_data:

    return vconv_mp_fail(mp, err, "Content-Type is not multipart/form-data");

malformed:

    return vconv_mp_fail(mp, err, "Content-Type has malformed parameters");
}


int
vconv_multipart_feed(vconv_multipart_t *mp, const uint8_t *p, size_t len,
    vconv_error_t *err)
{
    int      c, found;
    size_t   i;
    ssize_t  n;

    if (mp->state == VCONV_MP_ERROR) {
        return vconv_mp_fail(mp, err,
                             "the multipart body is already malformed");
    }

    i = 0;

    while (i < len) {

        switch (mp->state) {

        case VCONV_MP_PREAMBLE:
        case VCONV_MP_FILE:
        case VCONV_MP_FIELD:
            n = vconv_mp_scan(mp, p + i, len - i, &found, err);

            if (n < 0) {
                return VCONV_ERROR;
            }

            i += n;

            if (found && vconv_mp_part_end(mp, err) != VCONV_OK) {
                return VCONV_ERROR;
            }

            continue;

        case VCONV_MP_EPILOGUE:
            return VCONV_OK;

        default:
            break;
        }

        c = p[i++];

        switch (mp->state) {

        case VCONV_MP_DELIM:
            if (c == '-') {
                mp->state = VCONV_MP_DELIM_DASH;

            } else if (c == '\r') {
                mp->state = VCONV_MP_DELIM_LF;

            } else if (c == ' ' || c == '\t') {
                mp->state = VCONV_MP_DELIM_PAD;

            } else {
                goto bad_delimiter;
            }

            break;

        case VCONV_MP_DELIM_DASH:
            if (c != '-') {
                goto bad_delimiter;
            }

            mp->state = VCONV_MP_EPILOGUE;
            mp->done = 1;
            break;

        case VCONV_MP_DELIM_PAD:
            if (c == '\r') {
                mp->state = VCONV_MP_DELIM_LF;

            } else if (c != ' ' && c != '\t') {
                goto bad_delimiter;
            }

            break;

        case VCONV_MP_DELIM_LF:
            if (c != '\n') {
                goto bad_delimiter;
            }

            if (++mp->parts > VCONV_MP_PARTS_MAX) {
                return vconv_mp_fail(mp, err,
                                     "the multipart body has more than %d "
                                     "parts", VCONV_MP_PARTS_MAX);
            }

            mp->line_len = 0;
            mp->name_len = 0;
            mp->name[0] = '\0';
            mp->filename_len = 0;
            mp->filename[0] = '\0';
            mp->has_filename = 0;
            mp->is_file = 0;
            mp->state = VCONV_MP_HEADER;
            break;

        case VCONV_MP_HEADER:
            if (c == '\r') {
                mp->state = VCONV_MP_HEADER_LF;
                break;
            }

            if (c == '\n' || c == '\0') {
                return vconv_mp_fail(mp, err,
                                     "a multipart part header has a bare LF "
                                     "or a NUL byte");
            }

            if (mp->line_len == sizeof(mp->line)) {
                return vconv_mp_fail(mp, err,
                                     "a multipart part header line is "
                                     "longer than %d bytes",
                                     VCONV_MP_HEADER_MAX);
            }

            mp->line[mp->line_len++] = (char) c;
            break;

        case VCONV_MP_HEADER_LF:
            if (c != '\n') {
                return vconv_mp_fail(mp, err,
                                     "a multipart part header has a bare CR");
            }

            if (mp->line_len == 0) {
                if (vconv_mp_part_begin(mp, err) != VCONV_OK) {
                    return VCONV_ERROR;
                }

                break;
            }

            if (vconv_mp_header_line(mp, err) != VCONV_OK) {
                return VCONV_ERROR;
            }

            mp->line_len = 0;
            mp->state = VCONV_MP_HEADER;
            break;

        default:
            return vconv_mp_fail(mp, err, "multipart parser: bad state");
        }
    }

    return VCONV_OK;

bad_delimiter:

    return vconv_mp_fail(mp, err,
                         "a multipart boundary is followed by unexpected "
                         "bytes (is the boundary inside the content?)");
}


int
vconv_multipart_finish(vconv_multipart_t *mp, vconv_error_t *err)
{
    if (mp->state == VCONV_MP_EPILOGUE) {
        return VCONV_OK;
    }

    if (mp->state == VCONV_MP_ERROR) {
        return vconv_mp_fail(mp, err,
                             "the multipart body is already malformed");
    }

    if (mp->state == VCONV_MP_PREAMBLE && mp->parts == 0) {
        return vconv_mp_fail(mp, err,
                             "the multipart body has no boundary line");
    }

    return vconv_mp_fail(mp, err,
                         "the multipart body ended before its closing "
                         "boundary");
}


int
vconv_multipart_in_file(const vconv_multipart_t *mp)
{
    return mp->state == VCONV_MP_FILE;
}
