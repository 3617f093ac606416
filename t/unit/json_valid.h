/*
 * A strict JSON syntax check for the unit tests (RFC 8259 grammar, UTF-8
 * text), so that tests can assert that what we send is valid JSON.
 */

#ifndef _JSON_VALID_H_INCLUDED_
#define _JSON_VALID_H_INCLUDED_


#include <string.h>


typedef struct {
    const char  *p;
    const char  *end;
    int          depth;
} json_valid_t;


static int json_valid_value(json_valid_t *j);


static void
json_valid_ws(json_valid_t *j)
{
    while (j->p < j->end && strchr(" \t\r\n", *j->p) != NULL && *j->p) {
        j->p++;
    }
}


static int
json_valid_lit(json_valid_t *j, const char *lit)
{
    size_t  n;

    n = strlen(lit);

    if ((size_t) (j->end - j->p) < n || memcmp(j->p, lit, n) != 0) {
        return 0;
    }

    j->p += n;

    return 1;
}


static int
json_valid_string(json_valid_t *j)
{
    int            i, n;
    unsigned char  c;

    if (j->p >= j->end || *j->p != '"') {
        return 0;
    }

    j->p++;

    while (j->p < j->end) {
        c = (unsigned char) *j->p++;

        if (c == '"') {
            return 1;
        }

        if (c < 0x20) {
            return 0;
        }

        if (c == '\\') {
            if (j->p >= j->end) {
                return 0;
            }

            c = (unsigned char) *j->p++;

            if (c == 'u') {
                for (i = 0; i < 4; i++) {
                    if (j->p >= j->end || strchr("0123456789abcdefABCDEF",
                                                 *j->p) == NULL
                        || *j->p == '\0')
                    {
                        return 0;
                    }

                    j->p++;
                }

            } else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
                return 0;
            }

            continue;
        }

        if (c < 0x80) {
            continue;
        }

        /* UTF-8: a lead byte and its continuation bytes (no overlongs) */
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
        } else {
            return 0;
        }

        for (i = 0; i < n; i++) {
            if (j->p >= j->end || ((unsigned char) *j->p & 0xc0) != 0x80) {
                return 0;
            }

            j->p++;
        }
    }

    return 0;
}


static int
json_valid_number(json_valid_t *j)
{
    const char  *start;

    if (j->p < j->end && *j->p == '-') {
        j->p++;
    }

    start = j->p;

    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        j->p++;
    }

    if (j->p == start || (*start == '0' && j->p - start > 1)) {
        return 0;
    }

    if (j->p < j->end && *j->p == '.') {
        j->p++;
        start = j->p;

        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            j->p++;
        }

        if (j->p == start) {
            return 0;
        }
    }

    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;

        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) {
            j->p++;
        }

        start = j->p;

        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            j->p++;
        }

        if (j->p == start) {
            return 0;
        }
    }

    return 1;
}


static int
json_valid_container(json_valid_t *j, char open, char close)
{
    j->p++;

    if (++j->depth > 64) {
        return 0;
    }

    json_valid_ws(j);

    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 1;
    }

    for ( ;; ) {
        json_valid_ws(j);

        if (open == '{') {
            if (!json_valid_string(j)) {
                return 0;
            }

            json_valid_ws(j);

            if (j->p >= j->end || *j->p++ != ':') {
                return 0;
            }
        }

        if (!json_valid_value(j)) {
            return 0;
        }

        json_valid_ws(j);

        if (j->p >= j->end) {
            return 0;
        }

        if (*j->p == ',') {
            j->p++;
            continue;
        }

        if (*j->p++ == close) {
            j->depth--;
            return 1;
        }

        return 0;
    }
}


static int
json_valid_value(json_valid_t *j)
{
    json_valid_ws(j);

    if (j->p >= j->end) {
        return 0;
    }

    switch (*j->p) {
    case '{':
        return json_valid_container(j, '{', '}');
    case '[':
        return json_valid_container(j, '[', ']');
    case '"':
        return json_valid_string(j);
    case 't':
        return json_valid_lit(j, "true");
    case 'f':
        return json_valid_lit(j, "false");
    case 'n':
        return json_valid_lit(j, "null");
    default:
        return json_valid_number(j);
    }
}


/* 1 if s[0..len) is exactly one JSON value */
static int
json_valid(const char *s, size_t len)
{
    json_valid_t  j;

    j.p = s;
    j.end = s + len;
    j.depth = 0;

    if (!json_valid_value(&j)) {
        return 0;
    }

    json_valid_ws(&j);

    return j.p == j.end;
}


#endif /* _JSON_VALID_H_INCLUDED_ */
