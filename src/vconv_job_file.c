/*
 * vconv: job.json, the job record on disk: written atomically, read and
 * written with jansson.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "vconv_job.h"
#include "vconv_options.h"


#define VCONV_JOB_FILE       "job.json"
#define VCONV_JOB_FILE_MAX   65536
#define VCONV_JOB_VERSION    1
#define VCONV_NSTATUS        (VCONV_JOB_CANCELED + 1)


/*
 * job.json: one flat object, read and written with jansson.  Each field
 * of the record is a row of vconv_job_fields[], in the order of the file;
 * the same row writes the field and reads it back.
 */

typedef enum {
    VCONV_JF_INT64,          /* int64_t */
    VCONV_JF_INT,            /* int (and pid_t) */
    VCONV_JF_DOUBLE,         /* double, finite */
    VCONV_JF_TEXT,           /* char[size]; longer text is refused */
    VCONV_JF_TEXT_CUT,       /* char[size]; longer text is cut */
    VCONV_JF_STATUS,         /* vconv_status_e, by name */
    VCONV_JF_FORMAT,         /* int vconv_format_e by name, -1 null */
    VCONV_JF_ERROR           /* vconv_err_e, by name */
} vconv_job_field_e;


typedef struct {
    const char         *key;
    vconv_job_field_e   type;
    size_t              offset;
    size_t              size;          /* of a text field */
    double              dflt;          /* a missing or non-finite double */
    unsigned            required:1;
    unsigned            hex:1;         /* text not in UTF-8: also key_hex */
} vconv_job_field_t;


#define VCONV_JF(key, type, field, dflt, required, hex)                      \
    { key, type, offsetof(vconv_job_info_t, field),                          \
      sizeof(((vconv_job_info_t *) 0)->field), dflt, required, hex }

static const vconv_job_field_t  vconv_job_fields[] = {
    VCONV_JF("id", VCONV_JF_TEXT, id, 0, 1, 0),
    VCONV_JF("status", VCONV_JF_STATUS, status, 0, 1, 0),
    VCONV_JF("progress", VCONV_JF_DOUBLE, progress, 0, 0, 0),
    VCONV_JF("created", VCONV_JF_INT64, created, 0, 0, 0),
    VCONV_JF("expires", VCONV_JF_INT64, expires, 0, 0, 0),
    VCONV_JF("finished", VCONV_JF_INT64, finished, 0, 0, 0),
    VCONV_JF("in_name", VCONV_JF_TEXT_CUT, in_name, 0, 0, 1),
    VCONV_JF("in_bytes", VCONV_JF_INT64, in_bytes, 0, 0, 0),
    VCONV_JF("in_format", VCONV_JF_TEXT, in_format, 0, 0, 1),
    VCONV_JF("in_duration", VCONV_JF_DOUBLE, in_duration, -1, 0, 0),
    VCONV_JF("in_streams", VCONV_JF_INT, in_streams, 0, 0, 0),
    VCONV_JF("out_format", VCONV_JF_FORMAT, out_format, -1, 0, 0),
    VCONV_JF("out_bytes", VCONV_JF_INT64, out_bytes, 0, 0, 0),
    VCONV_JF("transcode_seconds", VCONV_JF_DOUBLE, transcode_seconds, 0, 0,
             0),
    VCONV_JF("damaged_packets", VCONV_JF_INT64, damaged_packets, 0, 0, 0),
    VCONV_JF("err_code", VCONV_JF_ERROR, err_code, 0, 0, 0),
    VCONV_JF("err_message", VCONV_JF_TEXT_CUT, err_message, 0, 0, 1),
    VCONV_JF("pid", VCONV_JF_INT, pid, 0, 0, 0),
    VCONV_JF("started_ms", VCONV_JF_INT64, started_ms, 0, 0, 0),
    VCONV_JF("finished_ms", VCONV_JF_INT64, finished_ms, 0, 0, 0),
    /* a list of formats: the outputs after the first, flat */
    VCONV_JF("nouts", VCONV_JF_INT, nouts, 0, 0, 0),
    VCONV_JF("out1_format", VCONV_JF_FORMAT, outs[1], -1, 0, 0),
    VCONV_JF("out1_bytes", VCONV_JF_INT64, outs_bytes[1], 0, 0, 0),
    VCONV_JF("out2_format", VCONV_JF_FORMAT, outs[2], -1, 0, 0),
    VCONV_JF("out2_bytes", VCONV_JF_INT64, outs_bytes[2], 0, 0, 0),
    VCONV_JF("out3_format", VCONV_JF_FORMAT, outs[3], -1, 0, 0),
    VCONV_JF("out3_bytes", VCONV_JF_INT64, outs_bytes[3], 0, 0, 0),
    VCONV_JF("out4_format", VCONV_JF_FORMAT, outs[4], -1, 0, 0),
    VCONV_JF("out4_bytes", VCONV_JF_INT64, outs_bytes[4], 0, 0, 0),
    VCONV_JF("out5_format", VCONV_JF_FORMAT, outs[5], -1, 0, 0),
    VCONV_JF("out5_bytes", VCONV_JF_INT64, outs_bytes[5], 0, 0, 0),
    VCONV_JF("out6_format", VCONV_JF_FORMAT, outs[6], -1, 0, 0),
    VCONV_JF("out6_bytes", VCONV_JF_INT64, outs_bytes[6], 0, 0, 0),
    VCONV_JF("out7_format", VCONV_JF_FORMAT, outs[7], -1, 0, 0),
    VCONV_JF("out7_bytes", VCONV_JF_INT64, outs_bytes[7], 0, 0, 0),
    VCONV_JF("out0_rung", VCONV_JF_INT, outs_rung[0], 0, 0, 0),
    VCONV_JF("out1_rung", VCONV_JF_INT, outs_rung[1], 0, 0, 0),
    VCONV_JF("out2_rung", VCONV_JF_INT, outs_rung[2], 0, 0, 0),
    VCONV_JF("out3_rung", VCONV_JF_INT, outs_rung[3], 0, 0, 0),
    VCONV_JF("out4_rung", VCONV_JF_INT, outs_rung[4], 0, 0, 0),
    VCONV_JF("out5_rung", VCONV_JF_INT, outs_rung[5], 0, 0, 0),
    VCONV_JF("out6_rung", VCONV_JF_INT, outs_rung[6], 0, 0, 0),
    VCONV_JF("out7_rung", VCONV_JF_INT, outs_rung[7], 0, 0, 0)
};

typedef char vconv_job_outs_check_t[VCONV_MAX_OUTPUTS == 8 ? 1 : -1];

#define VCONV_NFIELDS                                                         \
    (sizeof(vconv_job_fields) / sizeof(vconv_job_fields[0]))


/* the rows store enums and pid_t as int */
typedef char vconv_job_int_check_t[
    (sizeof(pid_t) == sizeof(int) && sizeof(vconv_status_e) == sizeof(int)
     && sizeof(vconv_err_e) == sizeof(int)) ? 1 : -1];


/* a name's index in a table of n names, or -1 */
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
    return vconv_status_name((vconv_status_e) i);
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


/*
 * A text field as "key":"text".  Text that is not UTF-8 (a file name can
 * be any bytes) has U+FFFD for each bad byte there, and is also written
 * as "key_hex" so that it comes back exactly while job.json stays
 * readable.
 */
static int
vconv_jf_set_text(json_t *root, const vconv_job_field_t *jf, const char *s)
{
    char                  hkey[32], hex[2 * VCONV_NAME_MAX];
    char                  utf8[3 * VCONV_NAME_MAX];
    size_t                i, n, len, ulen;
    uint32_t              cp;
    unsigned              bad;
    const unsigned char  *p;

    static const char  digits[] = "0123456789abcdef";

    p = (const unsigned char *) s;
    len = strnlen(s, jf->size);
    ulen = 0;
    bad = 0;
    utf8[0] = '\0';    /* gcc cannot tell that an empty text reads none */

    if (len > VCONV_NAME_MAX) {
        return -1;
    }

    for (i = 0; i < len; i += n) {
        n = vconv_utf8_next(p + i, len - i, &cp);

        if (n == 0) {
            memcpy(utf8 + ulen, "\xef\xbf\xbd", 3);
            ulen += 3;
            n = 1;
            bad = 1;
            continue;
        }

        memcpy(utf8 + ulen, p + i, n);
        ulen += n;
    }

    if (json_object_set_new(root, jf->key, json_stringn(utf8, ulen)) != 0) {
        return -1;
    }

    if (!bad || !jf->hex) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        hex[2 * i] = digits[p[i] >> 4];
        hex[2 * i + 1] = digits[p[i] & 0xf];
    }

    (void) snprintf(hkey, sizeof(hkey), "%s_hex", jf->key);

    return json_object_set_new(root, hkey, json_stringn(hex, 2 * len));
}


/* a field other than text */
static json_t *
vconv_jf_value(const vconv_job_field_t *jf, const vconv_job_info_t *job)
{
    int                    i;
    double                 d;
    const char            *p;
    const vconv_format_t  *f;

    p = (const char *) job + jf->offset;

    switch (jf->type) {

    case VCONV_JF_INT64:
        return json_integer(*(const int64_t *) p);

    case VCONV_JF_INT:
        return json_integer(*(const int *) p);

    case VCONV_JF_DOUBLE:
        d = *(const double *) p;
        return json_real(isfinite(d) ? d : jf->dflt);

    case VCONV_JF_STATUS:
        return json_string(vconv_status_name(*(const vconv_status_e *) p));

    case VCONV_JF_FORMAT:
        i = *(const int *) p;
        f = vconv_format((vconv_format_e) i);
        return f ? json_string(f->name) : json_null();

    default: /* VCONV_JF_ERROR */
        return json_string(vconv_error_name(*(const vconv_err_e *) p));
    }
}


char *
vconv_job_text(const vconv_job_info_t *job, size_t *len)
{
    int                       rc;
    char                     *text, *p;
    size_t                    n, i;
    json_t                   *root;
    const vconv_job_field_t  *jf;

    root = json_object();
    if (root == NULL) {
        return NULL;
    }

    text = NULL;

    if (json_object_set_new(root, "version", json_integer(VCONV_JOB_VERSION))
        != 0)
    {
        goto done;
    }

    for (i = 0; i < VCONV_NFIELDS; i++) {
        jf = &vconv_job_fields[i];

        if (jf->type == VCONV_JF_TEXT || jf->type == VCONV_JF_TEXT_CUT) {
            rc = vconv_jf_set_text(root, jf, (const char *) job + jf->offset);

        } else {
            rc = json_object_set_new(root, jf->key, vconv_jf_value(jf, job));
        }

        if (rc != 0) {
            goto done;
        }
    }

    text = json_dumps(root, JSON_COMPACT);
    if (text == NULL) {
        goto done;
    }

    /* a line of text */
    n = strlen(text);
    p = realloc(text, n + 2);

    if (p == NULL) {
        free(text);
        text = NULL;
        goto done;
    }

    text = p;
    text[n++] = '\n';
    text[n] = '\0';
    *len = n;

done:

    json_decref(root);

    return text;
}


static int
vconv_hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


/* the bytes of a key_hex: a whole number of them, none of them NUL */
static int
vconv_unhex(const char *hex, size_t hlen, char *dst, size_t dlen)
{
    int     hi, lo;
    size_t  i;

    if (hlen % 2 || hlen / 2 >= dlen) {
        return -1;
    }

    for (i = 0; i < hlen; i += 2) {
        hi = vconv_hex_digit(hex[i]);
        lo = vconv_hex_digit(hex[i + 1]);

        if (hi < 0 || lo < 0 || (hi | lo) == 0) {
            return -1;
        }

        dst[i / 2] = (char) (hi << 4 | lo);
    }

    dst[hlen / 2] = '\0';

    return 0;
}


/* a text field; its key_hex, when there, has the exact bytes */
static int
vconv_jf_get_text(const vconv_job_field_t *jf, json_t *v, json_t *root,
    char *dst)
{
    char     hkey[32];
    size_t   len;
    json_t  *h;

    if (v != NULL && !json_is_string(v)) {
        return -1;
    }

    if (jf->hex) {
        (void) snprintf(hkey, sizeof(hkey), "%s_hex", jf->key);
        h = json_object_get(root, hkey);

        if (h != NULL) {
            if (!json_is_string(h)) {
                return -1;
            }

            return vconv_unhex(json_string_value(h), json_string_length(h),
                               dst, jf->size);
        }
    }

    if (v == NULL) {
        return 0;
    }

    len = json_string_length(v);

    if (len >= jf->size) {
        if (jf->type != VCONV_JF_TEXT_CUT) {
            return -1;
        }

        /* a longer name or message is ours cut, never a broken character */
        len = vconv_utf8_trim(json_string_value(v), jf->size - 1);
    }

    memcpy(dst, json_string_value(v), len);
    dst[len] = '\0';

    return 0;
}


/* a field other than text: the type we write, a name we know */
static int
vconv_jf_get(const vconv_job_field_t *jf, json_t *v, char *dst)
{
    int          i;
    json_int_t   n;

    switch (jf->type) {

    case VCONV_JF_INT64:
        if (!json_is_integer(v)) {
            return -1;
        }

        *(int64_t *) dst = json_integer_value(v);
        return 0;

    case VCONV_JF_INT:
        if (!json_is_integer(v)) {
            return -1;
        }

        n = json_integer_value(v);

        if (n < INT_MIN || n > INT_MAX) {
            return -1;
        }

        *(int *) dst = (int) n;
        return 0;

    case VCONV_JF_DOUBLE:
        /* jansson refuses what would not be finite */
        if (!json_is_number(v)) {
            return -1;
        }

        *(double *) dst = json_number_value(v);
        return 0;

    case VCONV_JF_STATUS:
        i = !json_is_string(v) ? -1
            : vconv_lookup(json_string_value(v), vconv_status_namer,
                           VCONV_NSTATUS);
        break;

    case VCONV_JF_FORMAT:
        if (json_is_null(v)) {
            *(int *) dst = -1;
            return 0;
        }

        i = !json_is_string(v) ? -1
            : vconv_lookup(json_string_value(v), vconv_format_namer,
                           VCONV_FMT_COUNT);
        break;

    default: /* VCONV_JF_ERROR */
        i = !json_is_string(v) ? -1
            : vconv_lookup(json_string_value(v), vconv_error_namer,
                           VCONV_E_COUNT);
        break;
    }

    if (i < 0) {
        return -1;
    }

    *(int *) dst = i;

    return 0;
}


/* the values of a record that job.json does not mention */
static void
vconv_job_defaults(vconv_job_info_t *job)
{
    char                     *p;
    size_t                    i;
    const vconv_job_field_t  *jf;

    memset(job, 0, sizeof(vconv_job_info_t));

    for (i = 0; i < VCONV_NFIELDS; i++) {
        jf = &vconv_job_fields[i];
        p = (char *) job + jf->offset;

        if (jf->type == VCONV_JF_DOUBLE) {
            *(double *) p = jf->dflt;

        } else if (jf->type == VCONV_JF_FORMAT) {
            *(int *) p = (int) jf->dflt;
        }
    }
}


int
vconv_job_parse(vconv_job_info_t *job, const char *text, size_t len)
{
    int                       rc;
    char                     *p;
    void                     *it;
    size_t                    i;
    json_t                   *root, *v;
    const vconv_job_field_t  *jf;

    vconv_job_defaults(job);

    /*
     * One object and nothing after it; no duplicate keys, no NUL in a
     * string (both by jansson's defaults and this flag).
     */
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL) {
        return -1;
    }

    rc = -1;

    if (!json_is_object(root)) {
        goto done;
    }

    /* a newer version may add keys, but only of the kinds we write */
    for (it = json_object_iter(root); it; it = json_object_iter_next(root, it))
    {
        v = json_object_iter_value(it);

        if (json_is_object(v) || json_is_array(v) || json_is_boolean(v)) {
            goto done;
        }
    }

    v = json_object_get(root, "version");

    if (!json_is_integer(v) || json_integer_value(v) != VCONV_JOB_VERSION) {
        goto done;
    }

    for (i = 0; i < VCONV_NFIELDS; i++) {
        jf = &vconv_job_fields[i];
        p = (char *) job + jf->offset;
        v = json_object_get(root, jf->key);

        if (v == NULL && jf->required) {
            goto done;
        }

        if (jf->type == VCONV_JF_TEXT || jf->type == VCONV_JF_TEXT_CUT) {
            if (vconv_jf_get_text(jf, v, root, p) != 0) {
                goto done;
            }

        } else if (v != NULL && vconv_jf_get(jf, v, p) != 0) {
            goto done;
        }
    }

    if (!(job->progress >= 0)) {
        job->progress = 0;

    } else if (job->progress > 1) {
        job->progress = 1;
    }

    if (job->nouts < 0 || job->nouts > VCONV_MAX_OUTPUTS
        || (job->nouts == 1 && job->outs_rung[0] == 0))
    {
        goto done;
    }

    job->outs[0] = job->out_format;
    job->outs_bytes[0] = job->out_bytes;

    for (i = 1; i < (size_t) job->nouts; i++) {
        if (job->outs[i] < 0 || job->outs_bytes[i] < 0) {
            goto done;
        }
    }

    rc = 0;

done:

    json_decref(root);

    return rc;
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
    int              fd, e;
    char             tmp[PATH_MAX], path[PATH_MAX];
    char            *buf;
    size_t           need;
    unsigned         seq;

    static unsigned  vconv_save_seq;

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

    buf = vconv_job_text(job, &need);
    if (buf == NULL) {
        return vconv_error_set(err, VCONV_E_NOMEM, "out of memory");
    }

    if (need >= VCONV_JOB_FILE_MAX) {
        free(buf);
        return vconv_error_set(err, VCONV_E_INTERNAL, "job.json too big");
    }

    /* the original file name is the uploader's business only */
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
              0600);
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


/* the text of a job.json, at most VCONV_JOB_FILE_MAX - 1 bytes; free() it */
static char *
vconv_job_read(const char *path, size_t *len, vconv_error_t *err)
{
    int          fd, e;
    char        *text;
    ssize_t      n;
    struct stat  st;

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1) {
        e = errno;
        (void) vconv_error_set(err, VCONV_E_IO, "open(\"%s\"): %s", path,
                               strerror(e));
        return NULL;
    }

    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)
        || st.st_size <= 0 || st.st_size >= VCONV_JOB_FILE_MAX)
    {
        (void) close(fd);
        (void) vconv_error_set(err, VCONV_E_IO, "\"%s\" is not a job file",
                               path);
        return NULL;
    }

    text = malloc(VCONV_JOB_FILE_MAX);
    if (text == NULL) {
        (void) close(fd);
        (void) vconv_error_set(err, VCONV_E_NOMEM, "out of memory");
        return NULL;
    }

    *len = 0;

    do {
        n = read(fd, text + *len, VCONV_JOB_FILE_MAX - *len);

        if (n < 0 && errno == EINTR) {
            continue;
        }

        if (n < 0) {
            e = errno;
            (void) vconv_error_set(err, VCONV_E_IO, "read(\"%s\"): %s", path,
                                   strerror(e));
            break;
        }

        *len += n;

        if (*len >= VCONV_JOB_FILE_MAX) {
            (void) vconv_error_set(err, VCONV_E_IO, "\"%s\" is too big",
                                   path);
            n = -1;
            break;
        }

    } while (n != 0);

    (void) close(fd);

    if (n != 0) {
        free(text);
        return NULL;
    }

    return text;
}


/* the folder's name is the id: a copied or renamed folder is refused */
static int
vconv_job_in_folder(const char *dir, const char *id)
{
    size_t       dlen, blen;
    const char  *base;

    dlen = strlen(dir);

    while (dlen > 1 && dir[dlen - 1] == '/') {
        dlen--;
    }

    base = dir + dlen;

    while (base > dir && base[-1] != '/') {
        base--;
    }

    blen = dir + dlen - base;

    return blen == strlen(id) && memcmp(base, id, blen) == 0;
}


int
vconv_job_load(vconv_job_info_t *job, const char *dir, vconv_error_t *err)
{
    int      rc;
    char     path[PATH_MAX], *text;
    size_t   len;

    if ((size_t) snprintf(path, sizeof(path), "%s/" VCONV_JOB_FILE, dir)
        >= sizeof(path))
    {
        return vconv_error_set(err, VCONV_E_IO, "job folder path too long");
    }

    text = vconv_job_read(path, &len, err);
    if (text == NULL) {
        return VCONV_ERROR;
    }

    rc = vconv_job_parse(job, text, len);

    free(text);

    if (rc != 0) {
        return vconv_error_set(err, VCONV_E_IO, "\"%s\" is damaged", path);
    }

    if (!vconv_id_valid(job->id, strlen(job->id))
        || !vconv_job_in_folder(dir, job->id))
    {
        return vconv_error_set(err, VCONV_E_IO,
                               "\"%s\" does not belong to its folder", path);
    }

    return VCONV_OK;
}
