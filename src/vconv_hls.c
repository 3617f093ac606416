/*
 * vconv: HLS playlists over fragmented MP4 rungs, from the boxes of the
 * files the engine wrote (see vconv_hls.h).  Every read is bounded by
 * the file's size and each box's; anything unexpected fails the job.
 */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vconv_hls.h"


#define VCONV_HLS_MAX_SEGMENTS  100000
#define VCONV_HLS_PATH          4096


typedef struct {
    int64_t     off;          /* of the moof */
    int64_t     len;          /* moof + mdat */
    int64_t     tfdt;         /* the video track's decode time */
} vconv_hls_seg_t;


typedef struct {
    int                 fd;
    int64_t             size;
    int64_t             init;         /* bytes of ftyp + moov */
    uint32_t            track;        /* the video track's id */
    uint32_t            timescale;
    vconv_hls_seg_t    *segs;
    int                 nsegs;
    int64_t             bytes;        /* all segments */
} vconv_hls_file_t;


static int vconv_hls_scan(vconv_hls_file_t *f);
static int vconv_hls_moov(vconv_hls_file_t *f, int64_t off, int64_t end);
static int vconv_hls_trak(vconv_hls_file_t *f, int64_t off, int64_t end);
static int vconv_hls_moof(vconv_hls_file_t *f, int64_t off, int64_t end,
    int64_t *tfdt);
static int vconv_hls_box(vconv_hls_file_t *f, int64_t off, int64_t end,
    int64_t *size, char *type, int64_t *body);
static int vconv_hls_read(vconv_hls_file_t *f, int64_t off, void *buf,
    size_t n);
static uint32_t vconv_hls_u32(const unsigned char *p);
static int vconv_hls_media(const char *dir, const vconv_hls_rung_t *r,
    vconv_hls_file_t *f, double *target, vconv_error_t *err);


int
vconv_hls_write(const char *dir, const vconv_hls_rung_t *rungs, int n,
    vconv_error_t *err)
{
    int                i, rc;
    char               path[VCONV_HLS_PATH];
    FILE              *fp;
    double             target, rate;
    vconv_hls_file_t   f;

    snprintf(path, sizeof(path), "%s/master.m3u8", dir);

    fp = fopen(path, "we");
    if (fp == NULL) {
        return vconv_error_set(err, VCONV_E_IO, "%s: %s", path,
                               strerror(errno));
    }

    fprintf(fp, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");

    rc = VCONV_OK;

    for (i = 0; i < n; i++) {
        memset(&f, 0, sizeof(f));

        rc = vconv_hls_media(dir, &rungs[i], &f, &target, err);
        free(f.segs);

        if (rc != VCONV_OK) {
            break;
        }

        /* the peak a segment asks for, a little over the mean */
        rate = rungs[i].duration > 0
               ? f.bytes * 8.0 / rungs[i].duration : 0;

        fprintf(fp, "#EXT-X-STREAM-INF:BANDWIDTH=%lld,"
                "AVERAGE-BANDWIDTH=%lld,RESOLUTION=%dx%d\n%s\n",
                (long long) (rate * 1.2 + 1), (long long) (rate + 1),
                rungs[i].width, rungs[i].height, rungs[i].playlist);
    }

    if (fclose(fp) != 0 && rc == VCONV_OK) {
        rc = vconv_error_set(err, VCONV_E_IO, "%s: %s", path,
                             strerror(errno));
    }

    return rc;
}


/* one rung's playlist */
static int
vconv_hls_media(const char *dir, const vconv_hls_rung_t *r,
    vconv_hls_file_t *f, double *target, vconv_error_t *err)
{
    int          i, rc;
    char         path[VCONV_HLS_PATH];
    FILE        *fp;
    double      *dur, max;
    struct stat  sb;

    snprintf(path, sizeof(path), "%s/%s", dir, r->media);

    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd == -1 || fstat(f->fd, &sb) == -1) {
        rc = vconv_error_set(err, VCONV_E_IO, "%s: %s", path,
                             strerror(errno));
        if (f->fd != -1) {
            (void) close(f->fd);
        }

        return rc;
    }

    f->size = sb.st_size;
    rc = vconv_hls_scan(f);
    (void) close(f->fd);

    if (rc != VCONV_OK || f->nsegs == 0 || f->timescale == 0) {
        return vconv_error_set(err, VCONV_E_INTERNAL,
                               "%s: not the fragmented MP4 expected",
                               r->media);
    }

    dur = malloc(f->nsegs * sizeof(double));
    if (dur == NULL) {
        return vconv_error_set(err, VCONV_E_NOMEM, "hls");
    }

    max = 0;

    for (i = 0; i < f->nsegs; i++) {
        if (i + 1 < f->nsegs) {
            dur[i] = (double) (f->segs[i + 1].tfdt - f->segs[i].tfdt)
                     / f->timescale;

        } else {
            dur[i] = r->duration
                     - (double) (f->segs[i].tfdt - f->segs[0].tfdt)
                       / f->timescale;
        }

        if (dur[i] < 0.001) {
            dur[i] = 0.001;
        }

        if (dur[i] > max) {
            max = dur[i];
        }
    }

    *target = max;

    snprintf(path, sizeof(path), "%s/%s", dir, r->playlist);

    fp = fopen(path, "we");
    if (fp == NULL) {
        free(dur);
        return vconv_error_set(err, VCONV_E_IO, "%s: %s", path,
                               strerror(errno));
    }

    fprintf(fp, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n"
            "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
            "#EXT-X-INDEPENDENT-SEGMENTS\n"
            "#EXT-X-MAP:URI=\"%s\",BYTERANGE=\"%lld@0\"\n",
            (int) ceil(max), r->media, (long long) f->init);

    for (i = 0; i < f->nsegs; i++) {
        fprintf(fp, "#EXTINF:%.6f,\n#EXT-X-BYTERANGE:%lld@%lld\n%s\n",
                dur[i], (long long) f->segs[i].len,
                (long long) f->segs[i].off, r->media);
    }

    fprintf(fp, "#EXT-X-ENDLIST\n");
    free(dur);

    if (fclose(fp) != 0) {
        return vconv_error_set(err, VCONV_E_IO, "%s: %s", path,
                               strerror(errno));
    }

    return VCONV_OK;
}


/* the top level: ftyp, moov, then moof + mdat pairs (an mfra at the end) */
static int
vconv_hls_scan(vconv_hls_file_t *f)
{
    int64_t           off, size, body, tfdt;
    char              type[5];
    vconv_hls_seg_t  *s;

    off = 0;

    while (off < f->size) {
        if (vconv_hls_box(f, off, f->size, &size, type, &body) != VCONV_OK)
        {
            return VCONV_ERROR;
        }

        if (strcmp(type, "moov") == 0) {
            if (vconv_hls_moov(f, body, off + size) != VCONV_OK) {
                return VCONV_ERROR;
            }

            f->init = off + size;

        } else if (strcmp(type, "moof") == 0) {
            if (f->init == 0 || f->nsegs == VCONV_HLS_MAX_SEGMENTS) {
                return VCONV_ERROR;
            }

            if (vconv_hls_moof(f, body, off + size, &tfdt) != VCONV_OK) {
                return VCONV_ERROR;
            }

            s = realloc(f->segs, (f->nsegs + 1) * sizeof(vconv_hls_seg_t));
            if (s == NULL) {
                return VCONV_ERROR;
            }

            f->segs = s;
            s = &f->segs[f->nsegs++];
            s->off = off;
            s->len = size;
            s->tfdt = tfdt;

        } else if (strcmp(type, "mdat") == 0 && f->nsegs > 0) {
            /* a segment is its moof and the mdat after it */
            s = &f->segs[f->nsegs - 1];

            if (s->off + s->len != off) {
                return VCONV_ERROR;
            }

            s->len += size;
            f->bytes += s->len;
        }

        off += size;
    }

    return VCONV_OK;
}


/* the video track: its id (tkhd) and timescale (mdhd) */
static int
vconv_hls_moov(vconv_hls_file_t *f, int64_t off, int64_t end)
{
    int64_t  size, body;
    char     type[5];

    while (off < end) {
        if (vconv_hls_box(f, off, end, &size, type, &body) != VCONV_OK) {
            return VCONV_ERROR;
        }

        if (strcmp(type, "trak") == 0
            && vconv_hls_trak(f, body, off + size) != VCONV_OK)
        {
            return VCONV_ERROR;
        }

        off += size;
    }

    return VCONV_OK;
}


static int
vconv_hls_trak(vconv_hls_file_t *f, int64_t off, int64_t end)
{
    int            video;
    int64_t        size, body, o, e;
    uint32_t       id, scale;
    char           type[5];
    unsigned char  b[32];

    id = 0;
    scale = 0;
    video = 0;

    while (off < end) {
        if (vconv_hls_box(f, off, end, &size, type, &body) != VCONV_OK) {
            return VCONV_ERROR;
        }

        if (strcmp(type, "tkhd") == 0) {
            if (vconv_hls_read(f, body, b, 24) != VCONV_OK) {
                return VCONV_ERROR;
            }

            /* version 1: 64-bit times before the id */
            id = vconv_hls_u32(b + (b[0] == 1 ? 20 : 12));

        } else if (strcmp(type, "mdia") == 0) {
            o = body;
            e = off + size;

            while (o < e) {
                if (vconv_hls_box(f, o, e, &size, type, &body) != VCONV_OK
                    || vconv_hls_read(f, body, b, 24) != VCONV_OK)
                {
                    return VCONV_ERROR;
                }

                if (strcmp(type, "mdhd") == 0) {
                    scale = vconv_hls_u32(b + (b[0] == 1 ? 20 : 12));

                } else if (strcmp(type, "hdlr") == 0) {
                    video = memcmp(b + 8, "vide", 4) == 0;
                }

                o += size;
            }

            size = e - off;
        }

        off += size;
    }

    if (video && f->track == 0) {
        f->track = id;
        f->timescale = scale;
    }

    return VCONV_OK;
}


/* the video track's baseMediaDecodeTime in this fragment */
static int
vconv_hls_moof(vconv_hls_file_t *f, int64_t off, int64_t end, int64_t *tfdt)
{
    int64_t        size, body, o, e;
    uint32_t       id;
    char           type[5];
    unsigned char  b[16];

    *tfdt = -1;

    while (off < end) {
        if (vconv_hls_box(f, off, end, &size, type, &body) != VCONV_OK) {
            return VCONV_ERROR;
        }

        if (strcmp(type, "traf") == 0) {
            id = 0;
            o = body;
            e = off + size;

            while (o < e) {
                if (vconv_hls_box(f, o, e, &size, type, &body) != VCONV_OK
                    || vconv_hls_read(f, body, b, 12) != VCONV_OK)
                {
                    return VCONV_ERROR;
                }

                if (strcmp(type, "tfhd") == 0) {
                    id = vconv_hls_u32(b + 4);

                } else if (strcmp(type, "tfdt") == 0 && id == f->track) {
                    *tfdt = b[0] == 1
                            ? (int64_t) ((uint64_t) vconv_hls_u32(b + 4)
                                         << 32 | vconv_hls_u32(b + 8))
                            : (int64_t) vconv_hls_u32(b + 4);
                }

                o += size;
            }

            size = e - off;
        }

        off += size;
    }

    return *tfdt >= 0 ? VCONV_OK : VCONV_ERROR;
}


/* the box at off, within end: its size, type and where its body starts */
static int
vconv_hls_box(vconv_hls_file_t *f, int64_t off, int64_t end, int64_t *size,
    char *type, int64_t *body)
{
    unsigned char  b[16];

    if (end - off < 8 || vconv_hls_read(f, off, b, 8) != VCONV_OK) {
        return VCONV_ERROR;
    }

    *size = vconv_hls_u32(b);
    memcpy(type, b + 4, 4);
    type[4] = '\0';
    *body = off + 8;

    if (*size == 1) {
        if (end - off < 16 || vconv_hls_read(f, off + 8, b, 8) != VCONV_OK)
        {
            return VCONV_ERROR;
        }

        *size = (int64_t) ((uint64_t) vconv_hls_u32(b) << 32
                           | vconv_hls_u32(b + 4));
        *body = off + 16;

    } else if (*size == 0) {
        *size = end - off;
    }

    if (*size < *body - off || *size > end - off) {
        return VCONV_ERROR;
    }

    return VCONV_OK;
}


static int
vconv_hls_read(vconv_hls_file_t *f, int64_t off, void *buf, size_t n)
{
    ssize_t  r;

    if (off < 0 || off + (int64_t) n > f->size) {
        return VCONV_ERROR;
    }

    r = pread(f->fd, buf, n, off);

    return r == (ssize_t) n ? VCONV_OK : VCONV_ERROR;
}


static uint32_t
vconv_hls_u32(const unsigned char *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
           | (uint32_t) p[2] << 8 | p[3];
}
