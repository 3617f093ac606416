/*
 * vconv: the Content-Disposition of a download: the original file name
 * with the output's extension, made safe for a header line and for the
 * file system it is saved on.
 */

#include <string.h>

#include "vconv.h"
#include "vconv_disposition.h"


#define VCONV_CD_NAME_MAX    200     /* bytes of the name's stem */
#define VCONV_CD_EXT_MAX     16


/* the stem twice: UTF-8 for filename*, ASCII for the quoted fallback */
typedef struct {
    char    utf8[VCONV_CD_NAME_MAX + 1];
    size_t  ulen;
    char    ascii[VCONV_CD_NAME_MAX + 1];
    size_t  alen;
} vconv_cd_stem_t;


/* code points that reorder text: they can disguise an extension */
static int
vconv_is_bidi(uint32_t cp)
{
    return cp == 0x200e || cp == 0x200f || cp == 0x061c
           || (cp >= 0x202a && cp <= 0x202e)
           || (cp >= 0x2066 && cp <= 0x2069);
}


/* bytes an RFC 5987 value may carry as they are (attr-char) */
static int
vconv_is_attr_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || strchr("!#$&+-.^_`|~", c) != NULL;
}


/* bytes the quoted fallback name may carry as they are */
static int
vconv_is_safe_ascii(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && strchr("\"\\;%/:*?<>|", c) == NULL;
}


static int
vconv_is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9');
}


/*
 * The part of the name after the last directory separator of either
 * system, less an extension that looks like one (1-8 letters or digits
 * after a dot that is not the first character).
 */
static void
vconv_cd_base(const char *name, size_t nlen, size_t *startp, size_t *endp)
{
    size_t       i, n, start, end;
    const char  *p;

    /* a name ends at a NUL whatever nlen says */
    p = memchr(name, '\0', nlen);
    end = p ? (size_t) (p - name) : nlen;

    for (start = 0, i = 0; i < end; i++) {
        if (name[i] == '/' || name[i] == '\\') {
            start = i + 1;
        }
    }

    for (i = end; i > start + 1 && name[i - 1] != '.'; i--) {
        /* void */
    }

    if (i > start + 1 && end - i >= 1 && end - i <= 8) {
        for (n = i; n < end && vconv_is_alnum(name[n]); n++) {
            /* void */
        }

        if (n == end) {
            end = i - 1;
        }
    }

    *startp = start;
    *endp = end;
}


/* no leading dots (hidden files) nor edge spaces; returns the length */
static size_t
vconv_cd_trim(char *s, size_t n)
{
    size_t  i;

    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '.')) {
        n--;
    }

    for (i = 0; i < n && (s[i] == ' ' || s[i] == '.'); i++) {
        /* void */
    }

    memmove(s, s + i, n - i);

    return n - i;
}


/* the stem: valid UTF-8 without controls or reordering marks */
static void
vconv_cd_clean(vconv_cd_stem_t *st, const char *name, size_t start,
    size_t end)
{
    size_t    i, cplen;
    uint32_t  cp;

    st->ulen = 0;
    st->alen = 0;

    for (i = start; i < end; i += cplen) {
        cplen = vconv_utf8_next((const unsigned char *) name + i, end - i,
                                &cp);

        if (cplen == 0) {
            /* filename* promises UTF-8: a stray byte cannot go there */
            if (st->ulen + 1 > VCONV_CD_NAME_MAX) {
                break;
            }

            st->utf8[st->ulen++] = '_';
            st->ascii[st->alen++] = '_';
            cplen = 1;
            continue;
        }

        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)
            || vconv_is_bidi(cp))
        {
            continue;
        }

        if (st->ulen + cplen > VCONV_CD_NAME_MAX) {
            break;
        }

        memcpy(st->utf8 + st->ulen, name + i, cplen);
        st->ulen += cplen;

        st->ascii[st->alen++] =
            (cp < 0x80 && vconv_is_safe_ascii((unsigned char) cp))
            ? (char) cp : '_';
    }

    st->ulen = vconv_cd_trim(st->utf8, st->ulen);
    st->alen = vconv_cd_trim(st->ascii, st->alen);

    if (st->ulen == 0 || st->alen == 0) {
        memcpy(st->utf8, "output", 6);
        memcpy(st->ascii, "output", 6);
        st->ulen = 6;
        st->alen = 6;
    }
}


/* our extension, but never trust a string to be one: 0 if it is none */
static size_t
vconv_cd_ext_len(const char *ext)
{
    size_t  n;

    if (ext == NULL) {
        return 0;
    }

    for (n = 0; n < VCONV_CD_EXT_MAX && ext[n] != '\0'; n++) {
        if (!vconv_is_alnum(ext[n])) {
            return 0;
        }
    }

    return n;
}


size_t
vconv_content_disposition(const char *name, size_t nlen, const char *ext,
    char *buf, size_t len)
{
    size_t           i, start, end, elen;
    const char      *dot;
    vconv_out_t      o;
    unsigned char    c;
    vconv_cd_stem_t  st;

    vconv_out_init(&o, buf, len);

    if (name == NULL) {
        name = "";
        nlen = 0;
    }

    vconv_cd_base(name, nlen, &start, &end);
    vconv_cd_clean(&st, name, start, end);

    elen = vconv_cd_ext_len(ext);
    dot = elen ? "." : "";

    vconv_out(&o, "attachment; filename=\"%.*s%s%.*s\"; filename*=UTF-8''",
              (int) st.alen, st.ascii, dot, (int) elen, ext ? ext : "");

    for (i = 0; i < st.ulen; i++) {
        c = st.utf8[i];

        if (vconv_is_attr_char(c)) {
            vconv_out(&o, "%c", c);

        } else {
            vconv_out(&o, "%%%02X", c);
        }
    }

    vconv_out(&o, "%s%.*s", dot, (int) elen, ext ? ext : "");

    return o.pos;
}
