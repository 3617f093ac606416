/*
 * vconv: a reader over the upload spool file while it grows.
 *
 * The writer (the event loop) only ever moves "written" forward and sets
 * "ended"; the reader (one transcode thread) owns "pos".  Both sides meet
 * under the mutex; the file bytes themselves are read with pread() outside
 * it, since bytes below "written" never change.
 *
 * Seeks only record the new position: a seek past the written end returns
 * at once and the wait happens in the next read, which blocks exactly like
 * a read at the end of the written data.  SEEK_END and AVSEEK_SIZE answer
 * from the final size, or from the size the upload announced; without
 * either they fail with AVERROR(ENOSYS) at once.  They must not wait:
 * avformat_find_stream_info() asks for the size, and a wait there would
 * hold every streamable input until its upload ends.
 */

#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/error.h>

#include "vconv_frame.h"
#include "vconv_reader.h"
#include "vconv_transcode.h"


/* the longest single wait, so interrupt() is polled often enough */
#define VCONV_READER_SLICE_MS  200

/* copied here to avoid including avio.h for two constants */
#ifndef AVSEEK_SIZE
#define AVSEEK_SIZE   0x10000
#endif
#ifndef AVSEEK_FORCE
#define AVSEEK_FORCE  0x20000
#endif


static int64_t
vconv_reader_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* with the mutex held */
static void
vconv_reader_wake(vconv_reader_t *rd)
{
    ssize_t  n;

    if (rd->wake_fd >= 0) {
        /* a full pipe is as good as a new byte */
        n = write(rd->wake_fd, "", 1);
        (void) n;
    }
}


static int
vconv_reader_stop_error(vconv_err_e why)
{
    return why == VCONV_E_STALLED ? AVERROR(ETIMEDOUT) : AVERROR_EXIT;
}


int
vconv_reader_init(vconv_reader_t *rd, int fd, int64_t written, int ended,
    int64_t stall_ms)
{
    pthread_condattr_t  attr;

    rd->fd = fd;
    rd->written = written;
    rd->pos = 0;
    rd->ended = ended ? 1 : 0;
    rd->size = -1;
    rd->stop = VCONV_E_NONE;
    rd->stall_ms = stall_ms;
    rd->last_growth = vconv_reader_now();
    rd->interrupt = NULL;
    rd->data = NULL;
    rd->wake_fd = -1;

    if (pthread_mutex_init(&rd->mutex, NULL) != 0) {
        return VCONV_ERROR;
    }

    /* a monotonic clock: a wall clock step must not fake or hide a stall */

    if (pthread_condattr_init(&attr) != 0) {
        goto failed;
    }

    if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0
        || pthread_cond_init(&rd->cond, &attr) != 0)
    {
        pthread_condattr_destroy(&attr);
        goto failed;
    }

    pthread_condattr_destroy(&attr);

    return VCONV_OK;

failed:

    pthread_mutex_destroy(&rd->mutex);

    return VCONV_ERROR;
}


void
vconv_reader_destroy(vconv_reader_t *rd)
{
    pthread_cond_destroy(&rd->cond);
    pthread_mutex_destroy(&rd->mutex);
}


void
vconv_reader_grow(vconv_reader_t *rd, int64_t written)
{
    pthread_mutex_lock(&rd->mutex);

    if (written > rd->written) {
        rd->written = written;
        rd->last_growth = vconv_reader_now();
        pthread_cond_broadcast(&rd->cond);
        vconv_reader_wake(rd);
    }

    pthread_mutex_unlock(&rd->mutex);
}


void
vconv_reader_end(vconv_reader_t *rd)
{
    pthread_mutex_lock(&rd->mutex);

    rd->ended = 1;
    pthread_cond_broadcast(&rd->cond);
    vconv_reader_wake(rd);

    pthread_mutex_unlock(&rd->mutex);
}


void
vconv_reader_stop(vconv_reader_t *rd, vconv_err_e why)
{
    pthread_mutex_lock(&rd->mutex);

    /* the first reason wins: a cancel after a stall is still a stall */
    if (rd->stop == VCONV_E_NONE) {
        rd->stop = why != VCONV_E_NONE ? why : VCONV_E_CANCELED;
    }

    pthread_cond_broadcast(&rd->cond);
    vconv_reader_wake(rd);

    pthread_mutex_unlock(&rd->mutex);
}


/* 1: the wait is over, 0: keep waiting, < 0: an AVERROR, rd->stop set */
static int
vconv_reader_check(vconv_reader_t *rd, int64_t at)
{
    if (rd->stop != VCONV_E_NONE) {
        return vconv_reader_stop_error(rd->stop);
    }

    return rd->ended || (at >= 0 && at < rd->written);
}


/*
 * Waits, with the mutex held, until the byte at "at" is written (at >= 0)
 * or the upload has ended (at < 0: SEEK_END wants the final size).
 * Returns 0 when the caller may go on, or an AVERROR with rd->stop set.
 *
 * The stall clock starts at the later of the last growth and the start
 * of this wait: a reader that was busy decoding while the upload went
 * quiet must not fail on its first wait without having waited at all.
 */
static int
vconv_reader_wait(vconv_reader_t *rd, int64_t at)
{
    int              rc;
    int64_t          since, left, slice;
    struct timespec  ts;
    int            (*interrupt)(void *data);
    void            *data;

    since = vconv_reader_now();

    for ( ;; ) {

        rc = vconv_reader_check(rd, at);
        if (rc != 0) {
            return rc < 0 ? rc : 0;
        }

        interrupt = rd->interrupt;
        data = rd->data;

        if (interrupt != NULL) {

            /* unlocked: the callback may well call vconv_reader_stop() */

            pthread_mutex_unlock(&rd->mutex);
            rc = interrupt(data);
            pthread_mutex_lock(&rd->mutex);

            /*
             * A vconv error code is kept as the reason; any other nonzero
             * value (AVIOInterruptCB style "1") counts as a cancel.
             */
            if (rc != 0 && rd->stop == VCONV_E_NONE) {
                rd->stop = (rc > 0 && rc < VCONV_E_COUNT)
                           ? (vconv_err_e) rc : VCONV_E_CANCELED;
            }

            rc = vconv_reader_check(rd, at);
            if (rc != 0) {
                return rc < 0 ? rc : 0;
            }
        }

        slice = VCONV_READER_SLICE_MS;

        if (rd->stall_ms > 0) {
            left = (rd->last_growth > since ? rd->last_growth : since)
                   + rd->stall_ms - vconv_reader_now();

            if (left <= 0) {
                rd->stop = VCONV_E_STALLED;
                return AVERROR(ETIMEDOUT);
            }

            if (left < slice) {
                slice = left;
            }
        }

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += slice / 1000;
        ts.tv_nsec += (slice % 1000) * 1000000;

        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }

        (void) pthread_cond_timedwait(&rd->cond, &rd->mutex, &ts);
    }
}


int
vconv_reader_read(void *opaque, uint8_t *buf, int size)
{
    int              rc;
    int64_t          pos, avail;
    size_t           want, got;
    ssize_t          n;
    vconv_reader_t  *rd = opaque;

    if (size <= 0) {
        return 0;
    }

    pthread_mutex_lock(&rd->mutex);

    rc = vconv_reader_wait(rd, rd->pos);

    if (rc != 0) {
        pthread_mutex_unlock(&rd->mutex);
        return rc;
    }

    pos = rd->pos;
    avail = rd->written - pos;

    pthread_mutex_unlock(&rd->mutex);

    if (avail <= 0) {
        return AVERROR_EOF;
    }

    want = avail < size ? (size_t) avail : (size_t) size;
    got = 0;

    while (got < want) {
        n = pread(rd->fd, buf + got, want - got, pos + got);

        if (n > 0) {
            got += n;
            continue;
        }

        if (n < 0 && errno == EINTR) {
            continue;
        }

        if (got > 0) {
            break;
        }

        /* the file is shorter than what the writer said it wrote */
        return n == 0 ? AVERROR(EIO) : AVERROR(errno);
    }

    pthread_mutex_lock(&rd->mutex);
    rd->pos = pos + got;
    pthread_mutex_unlock(&rd->mutex);

    return (int) got;
}


void
vconv_reader_expect(vconv_reader_t *rd, int64_t size)
{
    pthread_mutex_lock(&rd->mutex);
    rd->size = size;
    vconv_reader_wake(rd);
    pthread_mutex_unlock(&rd->mutex);
}


int64_t
vconv_reader_seek(void *opaque, int64_t offset, int whence)
{
    int              rc;
    int64_t          target;
    vconv_reader_t  *rd = opaque;

    whence &= ~AVSEEK_FORCE;

    pthread_mutex_lock(&rd->mutex);

    if (rd->stop != VCONV_E_NONE) {
        rc = vconv_reader_stop_error(rd->stop);
        pthread_mutex_unlock(&rd->mutex);
        return rc;
    }

    switch (whence) {

    case AVSEEK_SIZE:
        target = rd->ended ? rd->written
                           : (rd->size >= 0 ? rd->size : AVERROR(ENOSYS));
        pthread_mutex_unlock(&rd->mutex);
        return target;

    case SEEK_SET:
        target = offset;
        break;

    case SEEK_CUR:
        target = rd->pos + offset;
        break;

    case SEEK_END:
        if (!rd->ended && rd->size < 0) {
            pthread_mutex_unlock(&rd->mutex);
            return AVERROR(ENOSYS);
        }

        target = (rd->ended ? rd->written : rd->size) + offset;
        break;

    default:
        pthread_mutex_unlock(&rd->mutex);
        return AVERROR(EINVAL);
    }

    if (target < 0) {
        pthread_mutex_unlock(&rd->mutex);
        return AVERROR(EINVAL);
    }

    rd->pos = target;

    pthread_mutex_unlock(&rd->mutex);

    return target;
}



/* for another thread than the writer's: the fields under the lock */
void
vconv_reader_state(vconv_reader_t *rd, int *ended, int64_t *last_growth,
    vconv_err_e *stop)
{
    pthread_mutex_lock(&rd->mutex);

    if (ended != NULL) {
        *ended = rd->ended;
    }

    if (last_growth != NULL) {
        *last_growth = rd->last_growth;
    }

    if (stop != NULL) {
        *stop = rd->stop;
    }

    pthread_mutex_unlock(&rd->mutex);
}


static uint32_t
vconv_sniff_le(const uint8_t *p, int n)
{
    uint32_t  v;

    for (v = 0; n > 0; n--) {
        v = (v << 8) | p[n - 1];
    }

    return v;
}


static uint32_t
vconv_sniff_be(const uint8_t *p, int n)
{
    int       i;
    uint32_t  v;

    for (v = 0, i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }

    return v;
}


/* 1 if name is an item of the comma list */
static int
vconv_sniff_allowed(const char *allow, const char *name)
{
    size_t       n;
    const char  *p, *e;

    n = strlen(name);

    for (p = allow; *p; p = *e ? e + 1 : e) {
        e = strchr(p, ',');
        if (e == NULL) {
            e = p + strlen(p);
        }

        if ((size_t) (e - p) == n && strncmp(p, name, n) == 0) {
            return 1;
        }
    }

    return 0;
}


static int
vconv_sniff_bounds(double rate, uint32_t channels, vconv_error_t *err)
{
    if (channels > VCONV_AUDIO_MAX_CHANNELS) {
        return vconv_error_set(err, VCONV_E_BAD_AUDIO_LAYOUT,
                               "the input has %u audio channels; at most "
                               "%d can be converted", (unsigned) channels,
                               VCONV_AUDIO_MAX_CHANNELS);
    }

    if (rate > VCONV_AUDIO_MAX_RATE) {
        return vconv_error_set(err, VCONV_E_BAD_SAMPLE_RATE,
                               "the audio's sample rate is %.0f Hz; at "
                               "most %d Hz can be converted", rate,
                               VCONV_AUDIO_MAX_RATE);
    }

    return VCONV_OK;
}


int
vconv_reader_sniff(const uint8_t *p, size_t len, const char *allow,
    vconv_error_t *err)
{
    int       exp;
    size_t    pos, size;
    uint64_t  mant;

    if (allow == NULL) {
        allow = VCONV_DEFAULT_INPUT_FORMATS;
    }

    if (len < 12) {
        return VCONV_OK;
    }

    /* WAV: chunks after "RIFF" size "WAVE", "fmt " among the first */
    if ((memcmp(p, "RIFF", 4) == 0 || memcmp(p, "RF64", 4) == 0)
        && memcmp(p + 8, "WAVE", 4) == 0 && vconv_sniff_allowed(allow, "wav"))
    {
        for (pos = 12; pos + 8 <= len; pos += 8 + size + (size & 1)) {
            size = vconv_sniff_le(p + pos + 4, 4);

            if (memcmp(p + pos, "fmt ", 4) == 0) {
                if (pos + 16 > len || size < 8) {
                    return VCONV_OK;
                }

                return vconv_sniff_bounds(vconv_sniff_le(p + pos + 12, 4),
                                          vconv_sniff_le(p + pos + 10, 2),
                                          err);
            }

            if (size > len) {
                break;
            }
        }

        return VCONV_OK;
    }

    /* AIFF: "COMM": channels (16 bits), frames, bits, 80-bit float rate */
    if (memcmp(p, "FORM", 4) == 0
        && (memcmp(p + 8, "AIFF", 4) == 0 || memcmp(p + 8, "AIFC", 4) == 0)
        && vconv_sniff_allowed(allow, "aiff"))
    {
        for (pos = 12; pos + 8 <= len; pos += 8 + size + (size & 1)) {
            size = vconv_sniff_be(p + pos + 4, 4);

            if (memcmp(p + pos, "COMM", 4) == 0) {
                if (pos + 26 > len) {
                    return VCONV_OK;
                }

                exp = (int) (vconv_sniff_be(p + pos + 16, 2) & 0x7fff)
                      - 16383 - 63;
                mant = ((uint64_t) vconv_sniff_be(p + pos + 18, 4) << 32)
                       | vconv_sniff_be(p + pos + 22, 4);

                return vconv_sniff_bounds(exp > 64 ? INFINITY
                                          : ldexp((double) mant, exp),
                                          vconv_sniff_be(p + pos + 8, 2),
                                          err);
            }

            if (size > len) {
                break;
            }
        }

        return VCONV_OK;
    }

    /* Sun AU: ".snd" offset size encoding rate channels, big-endian */
    if (len >= 24 && memcmp(p, ".snd", 4) == 0
        && vconv_sniff_allowed(allow, "au"))
    {
        return vconv_sniff_bounds(vconv_sniff_be(p + 16, 4),
                                  vconv_sniff_be(p + 20, 4), err);
    }

    return VCONV_OK;
}
