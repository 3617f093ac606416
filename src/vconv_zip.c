/*
 * vconv: the STORED zip of a job's outputs: zip.idx (each output's path,
 * size, CRC-32 and name in the zip) and the headers built from it.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/crc.h>

#include "vconv_options.h"
#include "vconv_zip.h"


static int vconv_zip_crc(const char *path, int64_t *size, uint32_t *crc);
static void vconv_zip_base(const char *in, size_t len, char *base,
    size_t blen);
static void vconv_zip_name(const char *base, const char *out, int first,
    char *name, size_t len);
static void vconv_zip_walk(const char *dir, const char *sub,
    const char *base, vconv_zip_entry_t *e, int *n, int depth);
static int vconv_zip_cmp(const void *a, const void *b);
static void vconv_zip_put16(unsigned char *p, unsigned v);
static void vconv_zip_put32(unsigned char *p, uint32_t v);


int
vconv_zip_index(const char *dir, const char *in_name, size_t in_len,
    int first_format, vconv_error_t *err)
{
    int                 n, i, fd;
    DIR                *d;
    FILE               *f;
    char                base[VCONV_ZIP_NAME_MAX - 32], path[1024];
    char                tmp[1024];
    size_t              len;
    struct stat         st;
    struct dirent      *de;
    vconv_zip_entry_t  *e;

    e = calloc(VCONV_ZIP_MAX_ENTRIES, sizeof(vconv_zip_entry_t));
    if (e == NULL) {
        return vconv_error_set(err, VCONV_E_NOMEM, "zip index");
    }

    vconv_zip_base(in_name, in_len, base, sizeof(base));

    n = 0;

    d = opendir(dir);
    if (d == NULL) {
        free(e);
        return vconv_error_set(err, VCONV_E_IO, "zip index: %s",
                               strerror(errno));
    }

    while ((de = readdir(d)) != NULL && n < VCONV_ZIP_MAX_ENTRIES) {
        len = strlen(de->d_name);

        if (strncmp(de->d_name, "output", 6) != 0
            || (len > 6 && de->d_name[6] != '.')
            || (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0)
            || len >= 64)
        {
            continue;
        }

        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);

        if (lstat(path, &st) == -1 || !S_ISREG(st.st_mode)) {
            continue;
        }

        memcpy(e[n].path, de->d_name, len + 1);
        vconv_zip_name(base, de->d_name, first_format, e[n].name,
                       sizeof(e[n].name));
        n++;
    }

    closedir(d);

    /* hls/: a folder of playlists and segments, maybe one a rendition */
    vconv_zip_walk(dir, "hls", base, e, &n, 2);

    qsort(e, n, sizeof(vconv_zip_entry_t), vconv_zip_cmp);

    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, e[i].path);

        if (vconv_zip_crc(path, &e[i].size, &e[i].crc) != 0) {
            free(e);
            return vconv_error_set(err, VCONV_E_IO, "zip index: %s: %s",
                                   e[i].path, strerror(errno));
        }
    }

    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, VCONV_ZIP_INDEX);
    snprintf(path, sizeof(path), "%s/%s", dir, VCONV_ZIP_INDEX);

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    f = fd == -1 ? NULL : fdopen(fd, "w");

    if (f == NULL) {
        if (fd != -1) {
            (void) close(fd);
        }

        free(e);
        return vconv_error_set(err, VCONV_E_IO, "zip index: %s",
                               strerror(errno));
    }

    for (i = 0; i < n; i++) {
        fprintf(f, "%08x %lld %s\t%s\n", (unsigned) e[i].crc,
                (long long) e[i].size, e[i].path, e[i].name);
    }

    free(e);

    if (fclose(f) != 0 || rename(tmp, path) == -1) {
        (void) unlink(tmp);
        return vconv_error_set(err, VCONV_E_IO, "zip index: %s",
                               strerror(errno));
    }

    return VCONV_OK;
}


/* the files under dir/sub, as "sub/..." in the zip's "base-sub/..." */
static void
vconv_zip_walk(const char *dir, const char *sub, const char *base,
    vconv_zip_entry_t *e, int *n, int depth)
{
    DIR            *d;
    char            path[1024], rel[VCONV_ZIP_PATH_MAX];
    size_t          len;
    struct stat     st;
    struct dirent  *de;

    if (snprintf(path, sizeof(path), "%s/%s", dir, sub) >= (int) sizeof(path))
    {
        return;
    }

    d = opendir(path);
    if (d == NULL) {
        return;
    }

    while ((de = readdir(d)) != NULL && *n < VCONV_ZIP_MAX_ENTRIES) {
        len = strlen(de->d_name);

        if (de->d_name[0] == '.' || len >= 64
            || (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0)
            || snprintf(rel, sizeof(rel), "%s/%s", sub, de->d_name)
               >= (int) sizeof(rel)
            || snprintf(path, sizeof(path), "%s/%s", dir, rel)
               >= (int) sizeof(path)
            || lstat(path, &st) == -1)
        {
            continue;
        }

        if (S_ISDIR(st.st_mode)) {
            if (depth > 1) {
                vconv_zip_walk(dir, rel, base, e, n, depth - 1);
            }

            continue;
        }

        if (!S_ISREG(st.st_mode)
            || snprintf(e[*n].name, sizeof(e[*n].name), "%s-%s", base, rel)
               >= (int) sizeof(e[*n].name))
        {
            continue;
        }

        memcpy(e[*n].path, rel, strlen(rel) + 1);
        (*n)++;
    }

    closedir(d);
}


int
vconv_zip_load(const char *dir, vconv_zip_entry_t *e, int max, int *n,
    vconv_error_t *err)
{
    int                 k;
    FILE               *f;
    char                path[1024], line[512], *sp, *tab, *nl, *end;
    unsigned long       crc;
    long long           size;

    snprintf(path, sizeof(path), "%s/%s", dir, VCONV_ZIP_INDEX);

    f = fopen(path, "re");
    if (f == NULL) {
        return vconv_error_set(err, VCONV_E_IO, "zip index: %s",
                               strerror(errno));
    }

    k = 0;

    while (k < max && fgets(line, sizeof(line), f) != NULL) {
        nl = strchr(line, '\n');
        tab = strchr(line, '\t');

        errno = 0;
        crc = strtoul(line, &end, 16);
        sp = end;

        if (nl == NULL || tab == NULL || *sp != ' ' || errno != 0) {
            break;
        }

        size = strtoll(sp + 1, &end, 10);

        if (*end != ' ' || size < 0 || end + 1 >= tab
            || (size_t) (tab - end - 1) >= sizeof(e[k].path)
            || (size_t) (nl - tab - 1) >= sizeof(e[k].name))
        {
            break;
        }

        e[k].crc = (uint32_t) crc;
        e[k].size = size;
        memcpy(e[k].path, end + 1, tab - end - 1);
        e[k].path[tab - end - 1] = '\0';
        memcpy(e[k].name, tab + 1, nl - tab - 1);
        e[k].name[nl - tab - 1] = '\0';

        /* only names the index itself could have written */
        if (strstr(e[k].path, "..") != NULL || e[k].path[0] == '/') {
            break;
        }

        k++;
    }

    if (!feof(f) && k < max) {
        fclose(f);
        return vconv_error_set(err, VCONV_E_INTERNAL, "zip index damaged");
    }

    fclose(f);

    *n = k;

    return VCONV_OK;
}


int64_t
vconv_zip_size(const vconv_zip_entry_t *e, int n)
{
    int      i;
    int64_t  total;

    total = VCONV_ZIP_END;

    for (i = 0; i < n; i++) {
        total += VCONV_ZIP_LOCAL + VCONV_ZIP_CENTRAL
                 + 2 * (int64_t) strlen(e[i].name) + e[i].size;
    }

    return total > VCONV_ZIP_MAX_BYTES ? -1 : total;
}


size_t
vconv_zip_local(const vconv_zip_entry_t *e, uint32_t dos, unsigned char *buf)
{
    size_t  len;

    len = strlen(e->name);

    vconv_zip_put32(buf, 0x04034b50);
    vconv_zip_put16(buf + 4, 10);               /* version needed: 1.0 */
    vconv_zip_put16(buf + 6, 0x0800);           /* names in UTF-8 */
    vconv_zip_put16(buf + 8, 0);                /* stored */
    vconv_zip_put32(buf + 10, dos);
    vconv_zip_put32(buf + 14, e->crc);
    vconv_zip_put32(buf + 18, (uint32_t) e->size);
    vconv_zip_put32(buf + 22, (uint32_t) e->size);
    vconv_zip_put16(buf + 26, (unsigned) len);
    vconv_zip_put16(buf + 28, 0);
    memcpy(buf + VCONV_ZIP_LOCAL, e->name, len);

    return VCONV_ZIP_LOCAL + len;
}


size_t
vconv_zip_central(const vconv_zip_entry_t *e, uint32_t dos, uint32_t offset,
    unsigned char *buf)
{
    size_t  len;

    len = strlen(e->name);

    vconv_zip_put32(buf, 0x02014b50);
    vconv_zip_put16(buf + 4, 0x031e);           /* made by: unix, 3.0 */
    vconv_zip_put16(buf + 6, 10);
    vconv_zip_put16(buf + 8, 0x0800);
    vconv_zip_put16(buf + 10, 0);
    vconv_zip_put32(buf + 12, dos);
    vconv_zip_put32(buf + 16, e->crc);
    vconv_zip_put32(buf + 20, (uint32_t) e->size);
    vconv_zip_put32(buf + 24, (uint32_t) e->size);
    vconv_zip_put16(buf + 28, (unsigned) len);
    vconv_zip_put16(buf + 30, 0);               /* extra */
    vconv_zip_put16(buf + 32, 0);               /* comment */
    vconv_zip_put16(buf + 34, 0);               /* disk */
    vconv_zip_put16(buf + 36, 0);               /* internal attributes */
    vconv_zip_put32(buf + 38, (uint32_t) 0100644 << 16);
    vconv_zip_put32(buf + 42, offset);
    memcpy(buf + VCONV_ZIP_CENTRAL, e->name, len);

    return VCONV_ZIP_CENTRAL + len;
}


size_t
vconv_zip_end(int n, uint32_t cd_size, uint32_t cd_offset, unsigned char *buf)
{
    vconv_zip_put32(buf, 0x06054b50);
    vconv_zip_put16(buf + 4, 0);
    vconv_zip_put16(buf + 6, 0);
    vconv_zip_put16(buf + 8, (unsigned) n);
    vconv_zip_put16(buf + 10, (unsigned) n);
    vconv_zip_put32(buf + 12, cd_size);
    vconv_zip_put32(buf + 16, cd_offset);
    vconv_zip_put16(buf + 20, 0);

    return VCONV_ZIP_END;
}


uint32_t
vconv_zip_dos_time(int64_t t)
{
    time_t     tt;
    struct tm  tm;

    tt = (time_t) t;

    if (gmtime_r(&tt, &tm) == NULL || tm.tm_year < 80) {
        return (1 << 21) | (1 << 16);           /* 1980-01-01 */
    }

    return (uint32_t) (tm.tm_year - 80) << 25 | (uint32_t) (tm.tm_mon + 1)
           << 21 | (uint32_t) tm.tm_mday << 16 | (uint32_t) tm.tm_hour << 11
           | (uint32_t) tm.tm_min << 5 | (uint32_t) tm.tm_sec / 2;
}


static int
vconv_zip_crc(const char *path, int64_t *size, uint32_t *crc)
{
    int             fd;
    ssize_t         n;
    uint32_t        c;
    int64_t         total;
    unsigned char   buf[65536];
    const AVCRC    *table;

    table = av_crc_get_table(AV_CRC_32_IEEE_LE);

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return -1;
    }

    c = 0xffffffff;
    total = 0;

    for ( ;; ) {
        n = read(fd, buf, sizeof(buf));

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            break;
        }

        c = av_crc(table, c, buf, n);
        total += n;
    }

    (void) close(fd);

    if (n < 0) {
        return -1;
    }

    *crc = c ^ 0xffffffff;
    *size = total;

    return 0;
}


/*
 * The upload's name without folders and its extension; bytes that are
 * not valid UTF-8, controls, slashes and backslashes become '_'.
 */
static void
vconv_zip_base(const char *in, size_t len, char *base, size_t blen)
{
    size_t       i, k, n, dot, start;
    uint32_t     cp;

    start = 0;

    for (i = 0; i < len; i++) {
        if (in[i] == '/' || in[i] == '\\') {
            start = i + 1;
        }
    }

    dot = len;

    for (i = len; i > start + 1; i--) {
        if (in[i - 1] == '.') {
            dot = i - 1;
            break;
        }
    }

    k = 0;
    i = start;

    while (i < dot && k + 5 < blen) {
        n = vconv_utf8_next((const unsigned char *) in + i, dot - i, &cp);

        if (n == 0 || cp < 0x20 || cp == 0x7f || in[i] == '"') {
            base[k++] = '_';
            i++;
            continue;
        }

        memcpy(base + k, in + i, n);
        k += n;
        i += n;
    }

    base[k] = '\0';

    if (k == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        snprintf(base, blen, "output");
    }
}


/*
 * "output" is the first output (its format given), "output.NAME" the
 * output NAME: a format's name takes its extension ("webm": base.webm,
 * "sprite": base.sprite.jpg, "info": base.info.json), any other name
 * stays as it is ("sprite.vtt": base.sprite.vtt).
 */
static void
vconv_zip_name(const char *base, const char *out, int first, char *name,
    size_t len)
{
    int                    fmt, n;
    const char            *oname;
    const vconv_format_t  *f;

    if (strcmp(out, "output") == 0) {
        f = vconv_format(first);
        oname = f != NULL ? f->name : "bin";

    } else {
        oname = out + 7;
    }

    fmt = vconv_format_by_name(oname, strlen(oname));
    f = fmt >= 0 ? vconv_format(fmt) : NULL;

    if (f == NULL || strcmp(f->ext, f->name) == 0) {
        n = snprintf(name, len, "%s.%s", base, oname);

    } else {
        n = snprintf(name, len, "%s.%s.%s", base, oname, f->ext);
    }

    if (n < 0 || (size_t) n >= len) {
        /* the base is bounded: only an absurd output name gets here */
        snprintf(name, len, "output");
    }
}


/* "output" first, then by name */
static int
vconv_zip_cmp(const void *a, const void *b)
{
    const vconv_zip_entry_t  *x = a, *y = b;

    if (strcmp(x->path, "output") == 0) {
        return -1;
    }

    if (strcmp(y->path, "output") == 0) {
        return 1;
    }

    return strcmp(x->path, y->path);
}


static void
vconv_zip_put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char) (v & 0xff);
    p[1] = (unsigned char) (v >> 8 & 0xff);
}


static void
vconv_zip_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) (v & 0xff);
    p[1] = (unsigned char) (v >> 8 & 0xff);
    p[2] = (unsigned char) (v >> 16 & 0xff);
    p[3] = (unsigned char) (v >> 24 & 0xff);
}
