/*
 * vconv: the job record's JSON for the API, job.json on disk (written
 * atomically, read back by a small strict parser of our own format) and
 * job ids.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vconv_job.h"
#include "vconv_options.h"


#define VCONV_JOB_FILE       "job.json"
#define VCONV_JOB_FILE_MAX   65536
#define VCONV_JOB_VERSION    1


/* a JSON string with its quotes */
static void
vconv_out_str(vconv_out_t *o, const char *s, size_t len)
{
    vconv_out(o, "\"");
    vconv_json_escape_count(o->buf, o->len, &o->pos, s, len);
    vconv_out(o, "\"");
}


static void
vconv_out_cstr(vconv_out_t *o, const char *s, size_t max)
{
    vconv_out_str(o, s, strnlen(s, max));
}


static const char  *vconv_status_names[] = {
    "uploading", "queued", "running", "done", "failed", "canceled"
};

#define VCONV_NSTATUS \
    (int) (sizeof(vconv_status_names) / sizeof(vconv_status_names[0]))


const char *
vconv_status_name(vconv_status_e status)
{
    if ((unsigned) status >= (unsigned) VCONV_NSTATUS) {
        return "failed";
    }

    return vconv_status_names[status];
}


int
vconv_status_final(vconv_status_e status)
{
    return status == VCONV_JOB_DONE || status == VCONV_JOB_FAILED
           || status == VCONV_JOB_CANCELED;
}


static void
vconv_out_time(vconv_out_t *o, int64_t t)
{
    char       tmp[32];
    time_t     tt;
    struct tm  tm;

    tt = (time_t) t;

    if (t <= 0 || gmtime_r(&tt, &tm) == NULL
        || strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        vconv_out(o, "null");
        return;
    }

    vconv_out(o, "\"%s\"", tmp);
}


static void
vconv_out_error(vconv_out_t *o, vconv_err_e code, const char *msg,
    size_t max)
{
    vconv_out(o, "{\"code\":\"%s\",\"message\":", vconv_error_name(code));
    vconv_out_cstr(o, msg, max);
    vconv_out(o, "}");
}


size_t
vconv_job_json(const vconv_job_info_t *job, const char *jobs_uri,
    int queue_position, char *buf, size_t len)
{
    double                 progress;
    size_t                 ulen;
    vconv_out_t            o;
    vconv_err_e            code;
    const char            *msg;
    const vconv_format_t  *f;

    vconv_out_init(&o, buf, len);

    progress = job->progress;

    if (!(progress >= 0)) {
        progress = 0;

    } else if (progress > 1) {
        progress = 1;
    }

    if (job->status == VCONV_JOB_DONE) {
        progress = 1;
    }

    vconv_out(&o, "{\"id\":");
    vconv_out_cstr(&o, job->id, sizeof(job->id));
    vconv_out(&o, ",\"status\":\"%s\",\"progress\":%.3f,"
              "\"queue_position\":%d,\"created\":",
              vconv_status_name(job->status), progress,
              job->status == VCONV_JOB_QUEUED ? queue_position : 0);
    vconv_out_time(&o, job->created);
    vconv_out(&o, ",\"expires\":");
    vconv_out_time(&o, job->expires);
    vconv_out(&o, ",\"finished\":");
    vconv_out_time(&o, job->finished);

    vconv_out(&o, ",\"input\":{\"name\":");
    vconv_out_cstr(&o, job->in_name, sizeof(job->in_name));
    vconv_out(&o, ",\"bytes\":%lld,\"format\":", (long long) job->in_bytes);

    if (job->in_format[0]) {
        vconv_out_cstr(&o, job->in_format, sizeof(job->in_format));
    } else {
        vconv_out(&o, "null");
    }

    if (job->in_duration >= 0 && isfinite(job->in_duration)) {
        vconv_out(&o, ",\"duration\":%.3f", job->in_duration);
    } else {
        vconv_out(&o, ",\"duration\":null");
    }

    vconv_out(&o, ",\"streams\":%d}", job->in_streams);

    f = vconv_format((vconv_format_e) job->out_format);

    vconv_out(&o, ",\"output\":{\"format\":");

    if (f != NULL) {
        vconv_out(&o, "\"%s\"", f->name);
    } else {
        vconv_out(&o, "null");
    }

    if (job->status == VCONV_JOB_DONE) {
        vconv_out(&o, ",\"bytes\":%lld,\"url\":", (long long) job->out_bytes);

        ulen = jobs_uri ? strlen(jobs_uri) : 0;

        vconv_out(&o, "\"");
        vconv_json_escape_count(o.buf, o.len, &o.pos, jobs_uri, ulen);

        if (ulen == 0 || jobs_uri[ulen - 1] != '/') {
            vconv_out(&o, "/");
        }

        vconv_json_escape_count(o.buf, o.len, &o.pos, job->id,
                                strnlen(job->id, sizeof(job->id)));
        vconv_out(&o, "/output\"}");

    } else {
        vconv_out(&o, ",\"bytes\":null,\"url\":null}");
    }

    vconv_out(&o, ",\"error\":");

    code = job->err_code;
    msg = job->err_message;

    if (job->status == VCONV_JOB_FAILED) {
        if (code == VCONV_E_NONE) {
            code = VCONV_E_INTERNAL;
        }

        if (msg[0] == '\0') {
            msg = "the conversion failed";
        }

        vconv_out_error(&o, code, msg, sizeof(job->err_message));

    } else if (job->status == VCONV_JOB_CANCELED) {
        if (code == VCONV_E_NONE) {
            code = VCONV_E_CANCELED;
        }

        if (msg[0] == '\0') {
            msg = "the job was canceled";
        }

        vconv_out_error(&o, code, msg, sizeof(job->err_message));

    } else {
        vconv_out(&o, "null");
    }

    vconv_out(&o, "}");

    return o.pos;
}


size_t
vconv_error_json(const vconv_error_t *err, char *buf, size_t len)
{
    vconv_out_t  o;

    vconv_out_init(&o, buf, len);

    vconv_out(&o, "{\"error\":");
    vconv_out_error(&o, err->code, err->message, sizeof(err->message));
    vconv_out(&o, "}");

    return o.pos;
}


/* job.json */


static int
vconv_utf8_valid(const char *s, size_t len)
{
    size_t    i, n;
    uint32_t  cp;

    for (i = 0; i < len; i += n) {
        n = vconv_utf8_next((const unsigned char *) s + i, len - i, &cp);
        if (n == 0) {
            return 0;
        }
    }

    return 1;
}


/*
 * A text field as "key":"escaped"; text that is not UTF-8 (a file name
 * can be any bytes) is also written as "key_hex" so that it comes back
 * exactly, while the JSON string keeps job.json readable.
 */
static void
vconv_save_text(vconv_out_t *o, const char *key, const char *s, size_t max)
{
    size_t  i, len;

    len = strnlen(s, max);

    vconv_out(o, ",\"%s\":", key);
    vconv_out_str(o, s, len);

    if (vconv_utf8_valid(s, len)) {
        return;
    }

    vconv_out(o, ",\"%s_hex\":\"", key);

    for (i = 0; i < len; i++) {
        vconv_out(o, "%02x", (unsigned char) s[i]);
    }

    vconv_out(o, "\"");
}


static double
vconv_finite(double d, double dflt)
{
    return isfinite(d) ? d : dflt;
}


static int
vconv_write_all(int fd, const char *p, size_t n)
{
    ssize_t  w;

    while (n > 0) {
        w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }

            return -1;
        }

        p += w;
        n -= w;
    }

    return 0;
}


int
vconv_job_save(const vconv_job_info_t *job, const char *dir,
    vconv_error_t *err)
{
    int                    fd, e;
    char                   tmp[PATH_MAX], path[PATH_MAX];
    char                  *buf;
    size_t                 need;
    unsigned               seq;
    vconv_out_t            o;
    const vconv_format_t  *f;

    static unsigned        vconv_save_seq;

    /* unique per writer: two threads may save the same job at once */
    seq = __atomic_fetch_add(&vconv_save_seq, 1, __ATOMIC_RELAXED);

    if ((size_t) snprintf(path, sizeof(path), "%s/" VCONV_JOB_FILE, dir)
        >= sizeof(path)
        || (size_t) snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.%u.tmp", dir,
                             VCONV_JOB_FILE, (long) getpid(), seq)
           >= sizeof(tmp))
    {
        return vconv_error_set(err, VCONV_E_IO, "job folder path too long");
    }

    buf = malloc(VCONV_JOB_FILE_MAX);
    if (buf == NULL) {
        return vconv_error_set(err, VCONV_E_NOMEM, "out of memory");
    }

    vconv_out_init(&o, buf, VCONV_JOB_FILE_MAX);

    f = vconv_format((vconv_format_e) job->out_format);

    vconv_out(&o, "{\"version\":%d,\"id\":", VCONV_JOB_VERSION);
    vconv_out_cstr(&o, job->id, sizeof(job->id));
    vconv_out(&o, ",\"status\":\"%s\",\"progress\":%.17g,"
              "\"created\":%lld,\"expires\":%lld,\"finished\":%lld",
              vconv_status_name(job->status),
              vconv_finite(job->progress, 0),
              (long long) job->created, (long long) job->expires,
              (long long) job->finished);
    vconv_save_text(&o, "in_name", job->in_name, sizeof(job->in_name));
    vconv_out(&o, ",\"in_bytes\":%lld", (long long) job->in_bytes);
    vconv_save_text(&o, "in_format", job->in_format, sizeof(job->in_format));
    vconv_out(&o, ",\"in_duration\":%.17g,\"in_streams\":%d,"
              "\"out_format\":",
              vconv_finite(job->in_duration, -1), job->in_streams);

    if (f != NULL) {
        vconv_out(&o, "\"%s\"", f->name);
    } else {
        vconv_out(&o, "null");
    }

    vconv_out(&o, ",\"out_bytes\":%lld,\"transcode_seconds\":%.17g,"
              "\"err_code\":\"%s\"",
              (long long) job->out_bytes,
              vconv_finite(job->transcode_seconds, 0),
              vconv_error_name(job->err_code));
    vconv_save_text(&o, "err_message", job->err_message,
                    sizeof(job->err_message));
    vconv_out(&o, ",\"pid\":%ld}\n", (long) job->pid);

    need = o.pos;

    if (need >= VCONV_JOB_FILE_MAX) {
        free(buf);
        return vconv_error_set(err, VCONV_E_INTERNAL, "job.json too big");
    }

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
              0644);
    if (fd == -1) {
        e = errno;
        free(buf);
        return vconv_error_set(err, VCONV_E_IO, "open(\"%s\"): %s", tmp,
                               strerror(e));
    }

    if (vconv_write_all(fd, buf, need) != 0 || fsync(fd) != 0) {
        e = errno;
        (void) close(fd);
        (void) unlink(tmp);
        free(buf);
        return vconv_error_set(err, VCONV_E_IO, "write(\"%s\"): %s", tmp,
                               strerror(e));
    }

    free(buf);

    if (close(fd) != 0) {
        e = errno;
        (void) unlink(tmp);
        return vconv_error_set(err, VCONV_E_IO, "close(\"%s\"): %s", tmp,
                               strerror(e));
    }

    /*
     * The folder is not fsync()ed: losing the rename in a power cut leaves
     * the previous job.json, which is a consistent, older state.
     */
    if (rename(tmp, path) != 0) {
        e = errno;
        (void) unlink(tmp);
        return vconv_error_set(err, VCONV_E_IO, "rename(\"%s\"): %s", tmp,
                               strerror(e));
    }

    return VCONV_OK;
}


/*
 * The parser reads only what vconv_job_save() writes: one flat object of
 * strings, numbers and null.  Strings are unescaped into a bounded
 * buffer; anything else (nesting, a cut file, a NUL) is an error.
 */

typedef struct {
    const char  *p;
    const char  *end;
} vconv_parser_t;


static void
vconv_skip_ws(vconv_parser_t *ps)
{
    while (ps->p < ps->end
           && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r'
               || *ps->p == '\t'))
    {
        ps->p++;
    }
}


static int
vconv_hex4(const char *p, uint32_t *v)
{
    int       i;
    uint32_t  c;

    *v = 0;

    for (i = 0; i < 4; i++) {
        c = (unsigned char) p[i];

        if (c >= '0' && c <= '9') {
            c -= '0';
        } else if (c >= 'a' && c <= 'f') {
            c -= 'a' - 10;
        } else if (c >= 'A' && c <= 'F') {
            c -= 'A' - 10;
        } else {
            return -1;
        }

        *v = (*v << 4) | c;
    }

    return 0;
}


/* a string into dst (NUL-terminated, at most dlen - 1 bytes) */
static int
vconv_parse_string(vconv_parser_t *ps, char *dst, size_t dlen, size_t *olen)
{
    size_t    n;
    uint32_t  cp;

    if (ps->p >= ps->end || *ps->p != '"') {
        return -1;
    }

    ps->p++;
    n = 0;

    for ( ;; ) {
        if (ps->p >= ps->end) {
            return -1;
        }

        cp = (unsigned char) *ps->p++;

        if (cp == '"') {
            break;
        }

        if (cp < 0x20) {
            return -1;
        }

        if (cp == '\\') {
            if (ps->p >= ps->end) {
                return -1;
            }

            switch (*ps->p++) {
            case '"':
                cp = '"';
                break;
            case '\\':
                cp = '\\';
                break;
            case '/':
                cp = '/';
                break;
            case 'n':
                cp = '\n';
                break;
            case 't':
                cp = '\t';
                break;
            case 'r':
                cp = '\r';
                break;
            case 'u':
                if (ps->end - ps->p < 4 || vconv_hex4(ps->p, &cp) != 0) {
                    return -1;
                }

                ps->p += 4;

                /* we never write surrogates nor NUL: not our file */
                if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
                    return -1;
                }

                break;
            default:
                return -1;
            }

            /* encode the code point as UTF-8 */
            if (cp < 0x80) {
                if (n + 1 >= dlen) {
                    return -1;
                }

                dst[n++] = (char) cp;

            } else if (cp < 0x800) {
                if (n + 2 >= dlen) {
                    return -1;
                }

                dst[n++] = (char) (0xc0 | (cp >> 6));
                dst[n++] = (char) (0x80 | (cp & 0x3f));

            } else {
                if (n + 3 >= dlen) {
                    return -1;
                }

                dst[n++] = (char) (0xe0 | (cp >> 12));
                dst[n++] = (char) (0x80 | ((cp >> 6) & 0x3f));
                dst[n++] = (char) (0x80 | (cp & 0x3f));
            }

            continue;
        }

        if (n + 1 >= dlen) {
            return -1;
        }

        dst[n++] = (char) cp;
    }

    dst[n] = '\0';

    if (olen) {
        *olen = n;
    }

    return 0;
}


/* a number as the text strtod() and strtoll() will see */
static int
vconv_parse_number(vconv_parser_t *ps, char *dst, size_t dlen)
{
    size_t  n;

    n = 0;

    while (ps->p < ps->end
           && ((*ps->p >= '0' && *ps->p <= '9') || *ps->p == '-'
               || *ps->p == '+' || *ps->p == '.' || *ps->p == 'e'
               || *ps->p == 'E'))
    {
        if (n + 1 >= dlen) {
            return -1;
        }

        dst[n++] = *ps->p++;
    }

    if (n == 0) {
        return -1;
    }

    dst[n] = '\0';

    return 0;
}


static int
vconv_num_ll(const char *s, long long *v)
{
    char  *end;

    errno = 0;
    *v = strtoll(s, &end, 10);

    return (*end != '\0' || errno != 0) ? -1 : 0;
}


static int
vconv_num_d(const char *s, double *v)
{
    char  *end;

    errno = 0;
    *v = strtod(s, &end);

    return (*end != '\0' || errno == ERANGE || !isfinite(*v)) ? -1 : 0;
}


static int
vconv_unhex(const char *hex, size_t hlen, char *dst, size_t dlen)
{
    size_t    i;
    uint32_t  v;
    char      q[4];

    if (hlen % 2 || hlen / 2 >= dlen) {
        return -1;
    }

    for (i = 0; i < hlen; i += 2) {
        q[0] = '0';
        q[1] = '0';
        q[2] = hex[i];
        q[3] = hex[i + 1];

        if (vconv_hex4(q, &v) != 0 || v == 0) {
            return -1;
        }

        dst[i / 2] = (char) v;
    }

    dst[hlen / 2] = '\0';

    return 0;
}


static int
vconv_lookup(const char *name, const char *(*namer)(int), int n)
{
    int  i;

    for (i = 0; i < n; i++) {
        if (strcmp(namer(i), name) == 0) {
            return i;
        }
    }

    return -1;
}


static const char *
vconv_status_namer(int i)
{
    return vconv_status_names[i];
}


static const char *
vconv_error_namer(int i)
{
    return vconv_error_name((vconv_err_e) i);
}


static const char *
vconv_format_namer(int i)
{
    return vconv_format((vconv_format_e) i)->name;
}


#define VCONV_HAVE_ID      0x01
#define VCONV_HAVE_STATUS  0x02
#define VCONV_HAVE_VER     0x04


static int
vconv_job_parse(vconv_job_info_t *job, const char *text, size_t len)
{
    int              v;
    char             key[32], num[64], *str;
    size_t           slen;
    double           d;
    unsigned         have;
    long long        ll;
    vconv_parser_t   ps;

    enum { T_NULL, T_STR, T_NUM } type;

    /* a string value may be as long as the file: name_hex is 2x */
    str = malloc(len + 1);
    if (str == NULL) {
        return -1;
    }

    memset(job, 0, sizeof(vconv_job_info_t));
    job->in_duration = -1;
    job->out_format = -1;

    ps.p = text;
    ps.end = text + len;
    have = 0;
    slen = 0;

    vconv_skip_ws(&ps);

    if (ps.p >= ps.end || *ps.p++ != '{') {
        goto fail;
    }

    for ( ;; ) {
        vconv_skip_ws(&ps);

        if (vconv_parse_string(&ps, key, sizeof(key), NULL) != 0) {
            goto fail;
        }

        vconv_skip_ws(&ps);

        if (ps.p >= ps.end || *ps.p++ != ':') {
            goto fail;
        }

        vconv_skip_ws(&ps);

        if (ps.p >= ps.end) {
            goto fail;
        }

        if (*ps.p == '"') {
            if (vconv_parse_string(&ps, str, len + 1, &slen) != 0) {
                goto fail;
            }

            type = T_STR;

        } else if (ps.end - ps.p >= 4 && memcmp(ps.p, "null", 4) == 0) {
            ps.p += 4;
            type = T_NULL;

        } else {
            if (vconv_parse_number(&ps, num, sizeof(num)) != 0) {
                goto fail;
            }

            type = T_NUM;
        }

#define VCONV_KEY(k)  (strcmp(key, k) == 0)
#define VCONV_LL(dst)                                                        \
        if (type != T_NUM || vconv_num_ll(num, &ll) != 0) goto fail;          \
        dst = ll
#define VCONV_D(dst)                                                         \
        if (type != T_NUM || vconv_num_d(num, &d) != 0) goto fail;            \
        dst = d
#define VCONV_TEXT(dst)                                                      \
        if (type != T_STR || slen >= sizeof(dst)) goto fail;                  \
        memcpy(dst, str, slen + 1)
#define VCONV_HEX(dst)                                                       \
        if (type != T_STR || vconv_unhex(str, slen, dst, sizeof(dst)) != 0)   \
            goto fail

        if (VCONV_KEY("version")) {
            VCONV_LL(v);
            if (v != VCONV_JOB_VERSION) {
                goto fail;
            }
            have |= VCONV_HAVE_VER;

        } else if (VCONV_KEY("id")) {
            VCONV_TEXT(job->id);
            have |= VCONV_HAVE_ID;

        } else if (VCONV_KEY("status")) {
            if (type != T_STR) {
                goto fail;
            }

            v = vconv_lookup(str, vconv_status_namer, VCONV_NSTATUS);
            if (v < 0) {
                goto fail;
            }

            job->status = (vconv_status_e) v;
            have |= VCONV_HAVE_STATUS;

        } else if (VCONV_KEY("progress")) {
            VCONV_D(job->progress);

        } else if (VCONV_KEY("created")) {
            VCONV_LL(job->created);

        } else if (VCONV_KEY("expires")) {
            VCONV_LL(job->expires);

        } else if (VCONV_KEY("finished")) {
            VCONV_LL(job->finished);

        } else if (VCONV_KEY("in_name")) {
            /* a name not in UTF-8 comes exactly from in_name_hex */
            if (type != T_STR) {
                goto fail;
            }

            if (slen >= sizeof(job->in_name)) {
                slen = vconv_utf8_trim(str, sizeof(job->in_name) - 1);
            }

            if (!(have & 0x100)) {
                memcpy(job->in_name, str, slen);
                job->in_name[slen] = '\0';
            }

        } else if (VCONV_KEY("in_name_hex")) {
            VCONV_HEX(job->in_name);
            have |= 0x100;

        } else if (VCONV_KEY("in_bytes")) {
            VCONV_LL(job->in_bytes);

        } else if (VCONV_KEY("in_format")) {
            if (!(have & 0x200)) {
                VCONV_TEXT(job->in_format);
            }

        } else if (VCONV_KEY("in_format_hex")) {
            VCONV_HEX(job->in_format);
            have |= 0x200;

        } else if (VCONV_KEY("in_duration")) {
            VCONV_D(job->in_duration);

        } else if (VCONV_KEY("in_streams")) {
            VCONV_LL(v);
            job->in_streams = v;

        } else if (VCONV_KEY("out_format")) {
            if (type == T_NULL) {
                job->out_format = -1;

            } else {
                if (type != T_STR) {
                    goto fail;
                }

                v = vconv_lookup(str, vconv_format_namer, VCONV_FMT_COUNT);
                if (v < 0) {
                    goto fail;
                }

                job->out_format = v;
            }

        } else if (VCONV_KEY("out_bytes")) {
            VCONV_LL(job->out_bytes);

        } else if (VCONV_KEY("transcode_seconds")) {
            VCONV_D(job->transcode_seconds);

        } else if (VCONV_KEY("err_code")) {
            if (type != T_STR) {
                goto fail;
            }

            v = vconv_lookup(str, vconv_error_namer, VCONV_E_COUNT);
            if (v < 0) {
                goto fail;
            }

            job->err_code = (vconv_err_e) v;

        } else if (VCONV_KEY("err_message")) {
            if (type != T_STR) {
                goto fail;
            }

            if (slen >= sizeof(job->err_message)) {
                slen = vconv_utf8_trim(str, sizeof(job->err_message) - 1);
            }

            if (!(have & 0x400)) {
                memcpy(job->err_message, str, slen);
                job->err_message[slen] = '\0';
            }

        } else if (VCONV_KEY("err_message_hex")) {
            VCONV_HEX(job->err_message);
            have |= 0x400;

        } else if (VCONV_KEY("pid")) {
            VCONV_LL(ll);
            job->pid = (pid_t) ll;
        }

        /* unknown keys with scalar values: from a newer version, ignored */

#undef VCONV_KEY
#undef VCONV_LL
#undef VCONV_D
#undef VCONV_TEXT
#undef VCONV_HEX

        vconv_skip_ws(&ps);

        if (ps.p >= ps.end) {
            goto fail;
        }

        if (*ps.p == ',') {
            ps.p++;
            continue;
        }

        if (*ps.p++ == '}') {
            break;
        }

        goto fail;
    }

    vconv_skip_ws(&ps);

    if (ps.p != ps.end
        || (have & (VCONV_HAVE_ID | VCONV_HAVE_STATUS | VCONV_HAVE_VER))
           != (VCONV_HAVE_ID | VCONV_HAVE_STATUS | VCONV_HAVE_VER))
    {
        goto fail;
    }

    if (!(job->progress >= 0)) {
        job->progress = 0;

    } else if (job->progress > 1) {
        job->progress = 1;
    }

    free(str);

    return 0;

fail:

    free(str);

    return -1;
}


int
vconv_job_load(vconv_job_info_t *job, const char *dir, vconv_error_t *err)
{
    int          fd, e;
    char         path[PATH_MAX], *text;
    size_t       len, dlen, blen;
    ssize_t      n;
    struct stat  st;
    const char  *base;

    if ((size_t) snprintf(path, sizeof(path), "%s/" VCONV_JOB_FILE, dir)
        >= sizeof(path))
    {
        return vconv_error_set(err, VCONV_E_IO, "job folder path too long");
    }

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1) {
        e = errno;
        return vconv_error_set(err, VCONV_E_IO, "open(\"%s\"): %s", path,
                               strerror(e));
    }

    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)
        || st.st_size <= 0 || st.st_size >= VCONV_JOB_FILE_MAX)
    {
        (void) close(fd);
        return vconv_error_set(err, VCONV_E_IO, "\"%s\" is not a job file",
                               path);
    }

    text = malloc(VCONV_JOB_FILE_MAX);
    if (text == NULL) {
        (void) close(fd);
        return vconv_error_set(err, VCONV_E_NOMEM, "out of memory");
    }

    len = 0;

    for ( ;; ) {
        n = read(fd, text + len, VCONV_JOB_FILE_MAX - len);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }

            e = errno;
            (void) close(fd);
            free(text);
            return vconv_error_set(err, VCONV_E_IO, "read(\"%s\"): %s", path,
                                   strerror(e));
        }

        if (n == 0) {
            break;
        }

        len += n;

        if (len >= VCONV_JOB_FILE_MAX) {
            (void) close(fd);
            free(text);
            return vconv_error_set(err, VCONV_E_IO, "\"%s\" is too big",
                                   path);
        }
    }

    (void) close(fd);

    if (vconv_job_parse(job, text, len) != 0) {
        free(text);
        return vconv_error_set(err, VCONV_E_IO, "\"%s\" is damaged", path);
    }

    free(text);

    /* the folder's name is the id: a copied or renamed folder is refused */
    dlen = strlen(dir);

    while (dlen > 1 && dir[dlen - 1] == '/') {
        dlen--;
    }

    base = dir + dlen;

    while (base > dir && base[-1] != '/') {
        base--;
    }

    blen = dir + dlen - base;

    if (!vconv_id_valid(job->id, strlen(job->id))
        || blen != strlen(job->id) || memcmp(base, job->id, blen) != 0)
    {
        return vconv_error_set(err, VCONV_E_IO,
                               "\"%s\" does not belong to its folder", path);
    }

    return VCONV_OK;
}


static int
vconv_is_lower_hex(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


int
vconv_id_valid(const char *s, size_t len)
{
    size_t  i, nlen;

    if (s == NULL) {
        return 0;
    }

    if (len == 32) {
        return vconv_is_lower_hex(s, 32);
    }

    /* "node-" + 32 hex, node [A-Za-z0-9_]{1,48} */
    if (len < 34 || len > 48 + 1 + 32) {
        return 0;
    }

    nlen = len - 33;

    if (s[nlen] != '-' || !vconv_is_lower_hex(s + nlen + 1, 32)) {
        return 0;
    }

    for (i = 0; i < nlen; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
        {
            return 0;
        }
    }

    return 1;
}
