/*
 * Unit tests for the streaming multipart/form-data parser.  Every body is
 * parsed whole, split in two at every position, in three at many, and
 * byte by byte; all of them must give the same events and bytes.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vconv_multipart.h"
#include "tap.h"


#define CT  "multipart/form-data; boundary=----vconvB0undary"
#define B   "----vconvB0undary"


typedef struct {
    char    log[16384];         /* fields and file begin/end, as text */
    size_t  log_len;
    char   *file;               /* the file part's bytes */
    size_t  file_len;
    size_t  file_cap;
    size_t  chunks;
    int     feed_rc;
    int     finish_rc;
    int     fail_on;            /* 1: fail on_field, 2: fail on_file_data */
    int     in_file_seen;
    vconv_multipart_t  *mp;
    vconv_error_t  err;
} result_t;


static void
logf_(result_t *r, const char *fmt, ...)
{
    va_list  args;
    int      n;

    va_start(args, fmt);
    n = vsnprintf(r->log + r->log_len, sizeof(r->log) - r->log_len, fmt,
                  args);
    va_end(args);

    if (n > 0) {
        r->log_len += n;
        if (r->log_len >= sizeof(r->log)) {
            r->log_len = sizeof(r->log) - 1;
        }
    }
}


static int
on_field(void *data, const char *name, size_t nlen, const char *value,
    size_t vlen, vconv_error_t *err)
{
    result_t  *r = data;

    logf_(r, "F[%.*s]=[%.*s]\n", (int) nlen, name, (int) vlen, value);

    if (r->fail_on == 1) {
        err->code = VCONV_E_UNKNOWN_OPTION;
        snprintf(err->message, sizeof(err->message), "no such option");
        return 1;
    }

    return 0;
}


static int
on_file_begin(void *data, const char *filename, size_t len,
    vconv_error_t *err)
{
    result_t  *r = data;

    logf_(r, "B[%.*s]\n", (int) len, filename);

    return 0;
}


static int
on_file_data(void *data, const uint8_t *p, size_t len, vconv_error_t *err)
{
    result_t  *r = data;

    if (len == 0) {
        logf_(r, "zero-length chunk\n");
    }

    if (vconv_multipart_in_file(r->mp)) {
        r->in_file_seen = 1;
    }

    if (r->fail_on == 2 && r->file_len + len > 10) {
        err->code = VCONV_E_IO;
        snprintf(err->message, sizeof(err->message), "disk full");
        return 1;
    }

    if (r->file_len + len > r->file_cap) {
        r->file_cap = (r->file_len + len) * 2;
        r->file = realloc(r->file, r->file_cap);
        if (r->file == NULL) {
            abort();
        }
    }

    memcpy(r->file + r->file_len, p, len);
    r->file_len += len;
    r->chunks++;

    return 0;
}


static int
on_file_end(void *data, vconv_error_t *err)
{
    result_t  *r = data;

    logf_(r, "E[%zu]\n", r->file_len);

    return 0;
}


static void
result_free(result_t *r)
{
    free(r->file);
    r->file = NULL;
}


/*
 * Parses body fed in pieces ending at cuts[0..ncuts) (increasing); with
 * ncuts < 0, byte by byte.
 */
static void
parse(result_t *r, int fail_on, const char *ct, const char *body,
    size_t len, const size_t *cuts, int ncuts)
{
    int                rc;
    size_t             from, to;
    int                k;
    vconv_multipart_t  mp;

    memset(r, 0, sizeof(*r));
    r->fail_on = fail_on;

    mp.on_field = on_field;
    mp.on_file_begin = on_file_begin;
    mp.on_file_data = on_file_data;
    mp.on_file_end = on_file_end;
    mp.data = r;
    r->mp = &mp;

    rc = vconv_multipart_init(&mp, ct, strlen(ct), &r->err);
    if (rc != VCONV_OK) {
        r->feed_rc = rc;
        r->finish_rc = rc;
        return;
    }

    from = 0;
    k = 0;
    rc = VCONV_OK;

    while (from < len && rc == VCONV_OK) {
        if (ncuts < 0) {
            to = from + 1;

        } else if (k < ncuts) {
            to = cuts[k++];

        } else {
            to = len;
        }

        rc = vconv_multipart_feed(&mp, (const uint8_t *) body + from,
                                  to - from, &r->err);
        from = to;
    }

    r->feed_rc = rc;
    r->finish_rc = rc == VCONV_OK ? vconv_multipart_finish(&mp, &r->err)
                                  : rc;
}


static int
same(const result_t *a, const result_t *b)
{
    return a->feed_rc == b->feed_rc
           && a->finish_rc == b->finish_rc
           && a->log_len == b->log_len
           && memcmp(a->log, b->log, a->log_len) == 0
           /* a failing on_file_data fails wherever the chunks end */
           && (a->fail_on == 2
               || (a->file_len == b->file_len
                   && (a->file_len == 0
                       || memcmp(a->file, b->file, a->file_len) == 0)))
           && a->err.code == b->err.code
           && (a->feed_rc == VCONV_OK && a->finish_rc == VCONV_OK
               ? 1 : strcmp(a->err.message, b->err.message) == 0);
}


/* parses whole into ref, then checks every split against it */
static void
check_splits(const char *what, result_t *ref, int fail_on, const char *ct,
    const char *body, size_t len)
{
    int       bad, tried;
    size_t    i, j, cuts[2], step;
    result_t  r;

    parse(ref, fail_on, ct, body, len, NULL, 0);

    bad = 0;
    tried = 0;

    for (i = 0; i <= len; i++) {
        cuts[0] = i;
        parse(&r, fail_on, ct, body, len, cuts, 1);
        bad += !same(ref, &r);
        tried++;
        result_free(&r);
    }

    /*
     * Three pieces: all pairs for small bodies, else a sample with a
     * stride that is no multiple of the boundary-related lengths.
     */

    step = len <= 200 ? 1 : len / 37 + 1;

    for (i = 1; i < len; i += step) {
        for (j = i + 1; j < len; j += step + (j % 3)) {
            cuts[0] = i;
            cuts[1] = j;
            parse(&r, fail_on, ct, body, len, cuts, 2);
            bad += !same(ref, &r);
            tried++;
            result_free(&r);
        }
    }

    parse(&r, fail_on, ct, body, len, NULL, -1);
    bad += !same(ref, &r);
    tried++;
    result_free(&r);

    ok(bad == 0, "%s: %d splits give the same result (%d differ)", what,
       tried, bad);
}


static void
test_basic(void)
{
    size_t       len, hlen;
    char         body[4096], log[256];
    result_t     r;

    /* content with NULs, CR/LF runs and boundary prefixes that fail late */
    static const char  data[] =
        "\x00\x01\r\n\r\r\n-\n--\r\n--" "----vconvB0undar"
        "\r\n--" "----vconvB0undarY_not\x00\xff\r";
    static const char  head[] =
        "This is the preamble; ignore it.\r\n"
        "--" B "\r\n"
        "Content-Disposition: form-data; name=\"format\"\r\n"
        "\r\n"
        "webm"
        "\r\n--" B "\r\n"
        "content-disposition: form-data; name=\"file\"; "
            "filename=\"clip.mov\"\r\n"
        "Content-Type: video/quicktime\r\n"
        "\r\n";
    static const char  tail[] =
        "\r\n--" B "\r\n"
        "Content-Disposition: form-data; name=width\r\n"
        "\r\n"
        "640"
        "\r\n--" B "--\r\n"
        "epilogue \r\n--" B "\r\n ignored too";

    hlen = sizeof(head) - 1;
    memcpy(body, head, hlen);
    memcpy(body + hlen, data, sizeof(data) - 1);
    len = hlen + sizeof(data) - 1;
    memcpy(body + len, tail, sizeof(tail) - 1);
    len += sizeof(tail) - 1;

    check_splits("basic", &r, 0, CT, body, len);

    is_int(r.feed_rc, VCONV_OK, "basic: feed ok");
    is_int(r.finish_rc, VCONV_OK, "basic: finish ok");
    snprintf(log, sizeof(log), "F[format]=[webm]\nB[clip.mov]\nE[%zu]\n"
             "F[width]=[640]\n", sizeof(data) - 1);
    is_str(r.log, log, "basic: fields before and after the file, in order");
    ok(r.file_len == sizeof(data) - 1
       && memcmp(r.file, data, r.file_len) == 0,
       "basic: file bytes exact, boundary look-alikes kept");
    ok(r.in_file_seen, "basic: in_file() was true inside the file");
    result_free(&r);
}


static void
test_binary(void)
{
    int       i;
    size_t    len, dlen;
    char     *body, log[64];
    result_t  r;
    const char  *head =
        "--" B "\r\n"
        "Content-Disposition: form-data; name=\"file\"\r\n\r\n";
    const char  *tail = "\r\n--" B "--";

    body = malloc(8192);
    if (body == NULL) {
        abort();
    }

    len = strlen(head);
    memcpy(body, head, len);

    /* every byte value, runs of CR LF, boundary prefixes of all lengths */

    for (i = 0; i < 256; i++) {
        body[len++] = (char) i;
    }

    for (i = 1; i < (int) sizeof(B "\r\n--") - 1; i++) {
        memcpy(body + len, "\r\n--" B, i);
        len += i;
        body[len++] = '\r';
    }

    memcpy(body + len, "\r\n\r\n\0\0\r", 7);
    len += 7;

    dlen = len - strlen(head);

    memcpy(body + len, tail, strlen(tail));
    len += strlen(tail);

    check_splits("binary", &r, 0, CT, body, len);
    is_int(r.finish_rc, VCONV_OK, "binary: parsed");
    snprintf(log, sizeof(log), "B[]\nE[%zu]\n", dlen);
    is_str(r.log, log, "binary: a file part without filename");
    ok(r.file_len == dlen
       && memcmp(r.file, body + strlen(head), dlen) == 0,
       "binary: all %zu bytes intact", dlen);
    result_free(&r);

    /* a big file, fed at once: few callbacks (no per-byte delivery) */

    parse(&r, 0, CT, body, len, NULL, 0);
    ok(r.chunks <= 4, "binary: whole body gives %zu data chunks", r.chunks);
    result_free(&r);

    free(body);
}


static void
expect_error(const char *what, const char *ct, const char *body,
    const char *msg_part)
{
    result_t  r;
    char      name[256];

    snprintf(name, sizeof(name), "%s (splits)", what);
    check_splits(name, &r, 0, ct, body, strlen(body));

    ok(r.finish_rc == VCONV_ERROR && r.err.code == VCONV_E_INVALID_VALUE
       && strstr(r.err.message, msg_part) != NULL,
       "%s: fails with \"%s\"", what, r.err.message);

    result_free(&r);
}


static void
expect_log(const char *what, const char *ct, const char *body,
    const char *log)
{
    result_t  r;
    char      name[256];

    snprintf(name, sizeof(name), "%s (splits)", what);
    check_splits(name, &r, 0, ct, body, strlen(body));

    ok(r.finish_rc == VCONV_OK, "%s: parsed (%s)", what,
       r.finish_rc == VCONV_OK ? "" : r.err.message);
    if (log != NULL) {
        is_str(r.log, log, what);
    }

    result_free(&r);
}


static void
test_content_type(void)
{
    int                i;
    char               ct[256];
    vconv_error_t      err;
    vconv_multipart_t  mp;

    static const struct {
        const char  *ct;
        int          ok;
        const char  *msg;
    } cases[] = {
        { "multipart/form-data; boundary=abc", 1, NULL },
        { "Multipart/Form-Data;BOUNDARY=abc", 1, NULL },
        { "multipart/form-data; charset=utf-8; boundary=\"a b:c\"", 1, NULL },
        { "multipart/form-data; boundary=\"a\\\"b\"", 0, "invalid char" },
        { "multipart/form-data; boundary=\"abc \"", 0, "invalid char" },
        { "multipart/form-data", 0, "no boundary" },
        { "multipart/form-data;", 0, "no boundary" },
        { "multipart/form-data; charset=utf-8", 0, "no boundary" },
        { "multipart/form-data; boundary=", 0, "empty" },
        { "multipart/form-data; boundary=\"\"", 0, "empty" },
        { "multipart/form-data; boundary=a{b", 0, "malformed" },
        { "multipart/form-data; boundary=a; boundary=b", 0, "two boundary" },
        { "multipart/form-data; boundary=\"abc", 0, "malformed" },
        { "multipart/mixed; boundary=abc", 0, "not multipart/form-data" },
        { "multipart/form-datax; boundary=abc", 0,
          "not multipart/form-data" },
        { "text/plain", 0, "not multipart/form-data" },
        { "", 0, "not multipart/form-data" },
        { "multipart/form-data; =abc", 0, "malformed" },
    };

    for (i = 0; i < (int) (sizeof(cases) / sizeof(cases[0])); i++) {
        memset(&err, 0, sizeof(err));
        memset(&mp, 0, sizeof(mp));

        if (cases[i].ok) {
            ok(vconv_multipart_init(&mp, cases[i].ct, strlen(cases[i].ct),
                                    &err) == VCONV_OK,
               "content type accepted: %s", cases[i].ct);
            continue;
        }

        ok(vconv_multipart_init(&mp, cases[i].ct, strlen(cases[i].ct),
                                &err) == VCONV_ERROR
           && err.code == VCONV_E_INVALID_VALUE
           && strstr(err.message, cases[i].msg) != NULL,
           "content type refused: %s (%s)", cases[i].ct, err.message);

        /* a parser whose init failed refuses to feed */
        ok(vconv_multipart_feed(&mp, (const uint8_t *) "x", 1, &err)
           == VCONV_ERROR, "feed after failed init fails");
    }

    /* 70 characters is the limit; 71 is one too many */

    snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%.70s",
             "0123456789012345678901234567890123456789"
             "0123456789012345678901234567890123456789");
    ok(vconv_multipart_init(&mp, ct, strlen(ct), &err) == VCONV_OK,
       "a 70 character boundary is fine");
    ok(mp.blen == 74, "delimiter is CRLF-- plus 70");

    snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%.71s",
             "0123456789012345678901234567890123456789"
             "0123456789012345678901234567890123456789");
    ok(vconv_multipart_init(&mp, ct, strlen(ct), &err) == VCONV_ERROR
       && strstr(err.message, "longer than 70"),
       "a 71 character boundary is refused (%s)", err.message);

    snprintf(ct, sizeof(ct), "multipart/form-data; boundary=\"%.71s\"",
             "0123456789012345678901234567890123456789"
             "0123456789012345678901234567890123456789");
    ok(vconv_multipart_init(&mp, ct, strlen(ct), &err) == VCONV_ERROR
       && strstr(err.message, "longer than 70"),
       "a quoted 71 character boundary is refused (%s)", err.message);

    /* the Content-Type is not assumed NUL-terminated */

    ok(vconv_multipart_init(&mp, "multipart/form-data; boundary=abcXYZ",
                            33, &err) == VCONV_OK
       && mp.blen == 7 && memcmp(mp.boundary, "\r\n--abc", 7) == 0,
       "the length is honoured, not a NUL");
}


static void
test_structure(void)
{
    int     i;
    char    body[16384];
    size_t  n;

    expect_log("no preamble, closing without CRLF",
               CT, "--" B "\r\nContent-Disposition: form-data; name=a\r\n"
               "\r\n1\r\n--" B "--", "F[a]=[1]\n");

    expect_log("leading CRLF, padding after boundaries",
               CT, "\r\n--" B " \t\r\nContent-Disposition: form-data; "
               "name=a\r\n\r\n1\r\n--" B "\t\r\nContent-Disposition: "
               "form-data; name=b\r\n\r\n\r\n--" B "--  junk",
               "F[a]=[1]\nF[b]=[]\n");

    expect_log("empty file, then a field",
               CT, "--" B "\r\nContent-Disposition: form-data; name=file; "
               "filename=\"e.mp4\"\r\n\r\n\r\n--" B "\r\n"
               "Content-Disposition: form-data; name=z\r\n\r\nv\r\n--"
               B "--\r\n", "B[e.mp4]\nE[0]\nF[z]=[v]\n");

    expect_log("no parts at all", CT, "--" B "--\r\n", "");

    expect_log("a filename on another field keeps it a field",
               CT, "--" B "\r\nContent-Disposition: form-data; name=notes; "
               "filename=\"n.txt\"\r\n\r\nhello\r\n--" B "--",
               "F[notes]=[hello]\n");

    expect_log("quoted names with escapes",
               CT, "--" B "\r\nContent-Disposition: form-data; "
               "name=\"a\\\"b\\\\c\\d;e=f\"\r\n\r\nv\r\n--" B "--",
               "F[a\"b\\c\\d;e=f]=[v]\n");

    expect_log("UTF-8 and ../ in a filename are passed as they are",
               CT, "--" B "\r\nContent-Disposition: form-data; name=file; "
               "filename=\"../../\xc3\xa9t\xc3\xa9 \\\"x\\\".mp4\"\r\n\r\n"
               "d\r\n--" B "--", "B[../../\xc3\xa9t\xc3\xa9 \"x\".mp4]\n"
               "E[1]\n");

    expect_log("filename* wins (after filename)",
               CT, "--" B "\r\nContent-Disposition: form-data; name=file; "
               "filename=\"fallback.mp4\"; "
               "filename*=UTF-8''%C3%A9t%C3%A9%20x.mp4\r\n\r\n"
               "d\r\n--" B "--", "B[\xc3\xa9t\xc3\xa9 x.mp4]\nE[1]\n");

    expect_log("filename* wins (before filename)",
               CT, "--" B "\r\nContent-Disposition: form-data; name=file; "
               "filename*=utf-8'en'a%2fb.mp4; filename=\"fallback.mp4\""
               "\r\n\r\nd\r\n--" B "--", "B[a/b.mp4]\nE[1]\n");

    expect_log("filename* in ISO-8859-1",
               CT, "--" B "\r\nContent-Disposition: form-data; name=file; "
               "filename*=iso-8859-1''%E9.mp4\r\n\r\nd\r\n--" B "--",
               "B[\xc3\xa9.mp4]\nE[1]\n");

    expect_log("a bad filename* falls back to filename",
               CT, "--" B "\r\nContent-Disposition: form-data; name=file; "
               "filename*=UTF-8''%zz; filename=ok.mp4\r\n\r\nd\r\n--"
               B "--", "B[ok.mp4]\nE[1]\n");

    expect_log("a bad filename* after filename leaves it intact",
               CT, "--" B "\r\nContent-Disposition: form-data; name=file; "
               "filename=ok.mp4; filename*=UTF-8''abcdefgh%9%\r\n\r\n"
               "d\r\n--" B "--", "B[ok.mp4]\nE[1]\n");

    expect_log("a bad filename* alone gives no filename",
               CT, "--" B "\r\nContent-Disposition: form-data; name=file; "
               "filename*=UTF-8''abc%6\r\n\r\nd\r\n--" B "--",
               "B[]\nE[1]\n");

    expect_log("filename* with %00 is ignored",
               CT, "--" B "\r\nContent-Disposition: form-data; name=file; "
               "filename*=UTF-8''a%00b\r\n\r\nd\r\n--" B "--",
               "B[]\nE[1]\n");

    expect_log("header names are case-insensitive, others ignored",
               CT, "--" B "\r\nX-Other: whatever; name=\"no\"\r\n"
               "CONTENT-DISPOSITION:form-data;NAME=\"k\"\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n\r\nv\r\n--"
               B "--", "F[k]=[v]\n");

    expect_error("missing closing boundary",
                 CT, "--" B "\r\nContent-Disposition: form-data; "
                 "name=file\r\n\r\ndata\r\n", "before its closing");

    expect_error("body cut inside the headers",
                 CT, "--" B "\r\nContent-Disposition: form-data; "
                 "name=file\r\n", "before its closing");

    expect_error("no boundary in the body", CT, "just some bytes\r\n",
                 "no boundary line");

    expect_error("empty body", CT, "", "no boundary line");

    expect_error("two file parts",
                 CT, "--" B "\r\nContent-Disposition: form-data; name=file"
                 "\r\n\r\na\r\n--" B "\r\nContent-Disposition: form-data; "
                 "name=\"file\"; filename=\"b\"\r\n\r\nb\r\n--" B "--",
                 "more than one \"file\"");

    expect_error("no Content-Disposition",
                 CT, "--" B "\r\nContent-Type: text/plain\r\n\r\nv\r\n--"
                 B "--", "no Content-Disposition");

    expect_error("Content-Disposition without name",
                 CT, "--" B "\r\nContent-Disposition: form-data; "
                 "filename=x\r\n\r\nv\r\n--" B "--", "has no name");

    expect_error("Content-Disposition not form-data",
                 CT, "--" B "\r\nContent-Disposition: attachment; name=a"
                 "\r\n\r\nv\r\n--" B "--", "not \"form-data\"");

    expect_error("empty name",
                 CT, "--" B "\r\nContent-Disposition: form-data; name=\"\""
                 "\r\n\r\nv\r\n--" B "--", "empty name");

    expect_error("unterminated quoted name",
                 CT, "--" B "\r\nContent-Disposition: form-data; name=\"a"
                 "\r\n\r\nv\r\n--" B "--", "malformed Content-Disposition");

    expect_error("two Content-Disposition headers",
                 CT, "--" B "\r\nContent-Disposition: form-data; name=a\r\n"
                 "Content-Disposition: form-data; name=b\r\n\r\nv\r\n--"
                 B "--", "two Content-Disposition");

    expect_error("bare LF in part headers",
                 CT, "--" B "\r\nContent-Disposition: form-data; name=a\n"
                 "\r\nv\r\n--" B "--", "bare LF");

    expect_error("bare CR in part headers",
                 CT, "--" B "\r\nContent-Disposition: form-data; name=a\rx"
                 "\r\n\r\nv\r\n--" B "--", "bare CR");

    expect_error("header without colon",
                 CT, "--" B "\r\nContent-Disposition form-data\r\n\r\nv\r\n--"
                 B "--", "header is malformed");

    expect_error("folded header",
                 CT, "--" B "\r\nX-A: b\r\n c\r\nContent-Disposition: "
                 "form-data; name=a\r\n\r\nv\r\n--" B "--", "folded");

    expect_error("garbage after a boundary",
                 CT, "--" B "\r\nContent-Disposition: form-data; name=a"
                 "\r\n\r\nv\r\n--" B "xyz\r\n", "unexpected bytes");

    expect_error("single dash after a boundary",
                 CT, "--" B "-\r\n", "unexpected bytes");

    /* field size: 4096 is fine, 4097 is not */

    n = snprintf(body, sizeof(body), "--" B "\r\nContent-Disposition: "
                 "form-data; name=big\r\n\r\n");
    memset(body + n, 'v', VCONV_MP_FIELD_MAX);
    n += VCONV_MP_FIELD_MAX;
    n += snprintf(body + n, sizeof(body) - n, "\r\n--" B "--");

    {
        result_t  r;

        parse(&r, 0, CT, body, n, NULL, -1);
        ok(r.finish_rc == VCONV_OK
           && r.log_len == strlen("F[big]=[]\n") + VCONV_MP_FIELD_MAX,
           "a %d byte field is accepted", VCONV_MP_FIELD_MAX);
        result_free(&r);
    }

    n = snprintf(body, sizeof(body), "--" B "\r\nContent-Disposition: "
                 "form-data; name=big\r\n\r\n");
    memset(body + n, 'v', VCONV_MP_FIELD_MAX + 1);
    n += VCONV_MP_FIELD_MAX + 1;
    n += snprintf(body + n, sizeof(body) - n, "\r\n--" B "--");
    expect_error("oversize field", CT, body, "\"big\" is longer than 4096");

    /*
     * An oversize field whose tail looks like a delimiter start: the held
     * back bytes count only once they turn out to be content.
     */
    n = snprintf(body, sizeof(body), "--" B "\r\nContent-Disposition: "
                 "form-data; name=big\r\n\r\n");
    memset(body + n, 'v', VCONV_MP_FIELD_MAX - 4);
    n += VCONV_MP_FIELD_MAX - 4;
    n += snprintf(body + n, sizeof(body) - n, "\r\n--\r\n--" B "--");
    expect_log("a field ending in CRLF-- is exactly at the limit", CT, body,
               NULL);

    /* header line: 1024 bytes is fine, 1025 is not */

    n = snprintf(body, sizeof(body), "--" B "\r\nX-Pad: ");
    memset(body + n, 'p', VCONV_MP_HEADER_MAX - 7);
    n += VCONV_MP_HEADER_MAX - 7;
    snprintf(body + n, sizeof(body) - n, "\r\nContent-Disposition: "
             "form-data; name=a\r\n\r\nv\r\n--" B "--");
    expect_log("a 1024 byte header line", CT, body, "F[a]=[v]\n");

    n = snprintf(body, sizeof(body), "--" B "\r\nX-Pad: ");
    memset(body + n, 'p', VCONV_MP_HEADER_MAX - 6);
    n += VCONV_MP_HEADER_MAX - 6;
    snprintf(body + n, sizeof(body) - n, "\r\nContent-Disposition: "
             "form-data; name=a\r\n\r\nv\r\n--" B "--");
    expect_error("oversize header line", CT, body, "longer than 1024");

    /* parts: 64 are fine, 65 are not */

    for (i = 64; i <= 65; i++) {
        int  k;

        n = 0;
        for (k = 0; k < i; k++) {
            n += snprintf(body + n, sizeof(body) - n, "--" B "\r\n"
                          "Content-Disposition: form-data; name=f%d\r\n"
                          "\r\n%d\r\n", k, k);
        }
        snprintf(body + n, sizeof(body) - n, "--" B "--");

        if (i == 64) {
            result_t  r;

            parse(&r, 0, CT, body, strlen(body), NULL, 0);
            ok(r.finish_rc == VCONV_OK && strstr(r.log, "F[f63]=[63]\n"),
               "64 parts are fine");
            result_free(&r);

        } else {
            expect_error("65 parts", CT, body, "more than 64 parts");
        }
    }
}


static void
test_callbacks(void)
{
    result_t     r;
    const char  *body =
        "--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n"
        "--" B "\r\nContent-Disposition: form-data; name=file\r\n\r\n"
        "0123456789abcdef\r\n--" B "--";

    check_splits("on_field failure", &r, 1, CT, body, strlen(body));
    ok(r.finish_rc == VCONV_ERROR && r.err.code == VCONV_E_UNKNOWN_OPTION
       && strcmp(r.err.message, "no such option") == 0,
       "a failing on_field stops the parse with its error");
    is_str(r.log, "F[a]=[v]\n", "nothing after the failing callback");
    result_free(&r);

    check_splits("on_file_data failure", &r, 2, CT, body, strlen(body));
    ok(r.finish_rc == VCONV_ERROR && r.err.code == VCONV_E_IO,
       "a failing on_file_data stops the parse with its error");
    result_free(&r);

    /* NULL callbacks are allowed */
    {
        vconv_error_t      err;
        vconv_multipart_t  mp;

        memset(&mp, 0, sizeof(mp));
        ok(vconv_multipart_init(&mp, CT, strlen(CT), &err) == VCONV_OK
           && vconv_multipart_feed(&mp, (const uint8_t *) body,
                                   strlen(body), &err) == VCONV_OK
           && vconv_multipart_finish(&mp, &err) == VCONV_OK,
           "no callbacks set: parses and drops everything");
    }
}


int
main(void)
{
    test_basic();
    test_binary();
    test_content_type();
    test_structure();
    test_callbacks();

    return done_testing();
}
