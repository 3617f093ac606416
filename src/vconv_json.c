/*
 * vconv: the JSON string escaper and the bounded, counting output buffer
 * the API's JSON answers are written with.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vconv.h"


/*
 * Appends one escape sequence (or byte run) of n bytes if it fits with the
 * terminating NUL; *pos always advances so callers learn the size needed.
 * Once a piece does not fit, nothing after it does either, because *pos
 * only grows: the output is always a clean prefix, never a cut escape.
 */
static void
vconv_json_put(char *buf, size_t len, size_t *pos, const char *p, size_t n)
{
    if (*pos + n < len) {
        memcpy(buf + *pos, p, n);
        buf[*pos + n] = '\0';

    } else if (*pos < len) {
        buf[*pos] = '\0';
    }

    *pos += n;
}


void
vconv_json_escape_count(char *buf, size_t len, size_t *pos, const char *s,
    size_t slen)
{
    char                  esc[8];
    size_t                i, n;
    uint32_t              cp;
    const unsigned char  *p;

    static const char  hex[] = "0123456789abcdef";

    p = (const unsigned char *) s;

    if (buf != NULL && len > 0 && *pos < len) {
        buf[*pos] = '\0';
    }

    if (buf == NULL) {
        len = 0;
    }

    i = 0;

    while (i < slen) {

        if (p[i] == '"' || p[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char) p[i];
            vconv_json_put(buf, len, pos, esc, 2);
            i++;
            continue;
        }

        if (p[i] < 0x20 || p[i] == 0x7f) {
            esc[0] = '\\';
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[p[i] >> 4];
            esc[5] = hex[p[i] & 0xf];
            vconv_json_put(buf, len, pos, esc, 6);
            i++;
            continue;
        }

        if (p[i] < 0x80) {
            vconv_json_put(buf, len, pos, (const char *) p + i, 1);
            i++;
            continue;
        }

        n = vconv_utf8_next(p + i, slen - i, &cp);

        if (n == 0) {
            vconv_json_put(buf, len, pos, "\xef\xbf\xbd", 3);
            i++;
            continue;
        }

        /* JavaScript string literals end lines at these two */
        if (cp == 0x2028 || cp == 0x2029) {
            vconv_json_put(buf, len, pos, cp == 0x2028 ? "\\u2028" : "\\u2029",
                           6);

        } else {
            vconv_json_put(buf, len, pos, (const char *) p + i, n);
        }

        i += n;
    }
}


void
vconv_json_escape(char *buf, size_t len, size_t *pos, const char *s,
    size_t slen)
{
    size_t  p;

    if (buf == NULL || len == 0 || *pos >= len) {
        return;
    }

    p = *pos;

    vconv_json_escape_count(buf, len, &p, s, slen);

    if (p >= len) {
        /* stopped at the first piece that did not fit: find where */
        p = *pos + strlen(buf + *pos);
    }

    *pos = p;
}


void
vconv_out(vconv_out_t *o, const char *fmt, ...)
{
    int      n;
    char     tmp[512];
    va_list  args;

    va_start(args, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, args);
    va_end(args);

    if (n < 0) {
        return;
    }

    if ((size_t) n >= sizeof(tmp)) {
        n = sizeof(tmp) - 1;
    }

    if (o->pos + n < o->len) {
        memcpy(o->buf + o->pos, tmp, n);
        o->buf[o->pos + n] = '\0';

    } else if (o->pos < o->len) {
        o->buf[o->pos] = '\0';
    }

    o->pos += n;
}


void
vconv_out_init(vconv_out_t *o, char *buf, size_t len)
{
    o->buf = buf;
    o->len = buf ? len : 0;
    o->pos = 0;

    if (o->len > 0) {
        buf[0] = '\0';
    }
}
