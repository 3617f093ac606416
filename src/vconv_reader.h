/*
 * vconv: a reader over the upload spool file while it grows.  The event
 * loop appends to the file and calls vconv_reader_grow(); the transcode
 * thread reads through vconv_reader_read()/vconv_reader_seek(), which
 * block until the bytes are on disk, the upload ends, or the reader is
 * stopped (cancel, stall).
 */

#ifndef _VCONV_READER_H_INCLUDED_
#define _VCONV_READER_H_INCLUDED_


#include <pthread.h>

#include "vconv.h"


typedef struct {
    int              fd;            /* the spool file, opened read-only */
    pthread_mutex_t  mutex;
    pthread_cond_t   cond;
    int64_t          written;       /* bytes known to be on disk */
    int64_t          pos;           /* read position */
    int              ended;         /* 1: written is the final size */
    int64_t          size;          /* announced final size, -1: unknown */
    vconv_err_e      stop;          /* nonzero: fail every read with it */
    int64_t          stall_ms;      /* no growth for this long: stall */
    int64_t          last_growth;   /* monotonic ms */

    /*
     * -1, or a non-blocking pipe that gets a byte on every grow, end,
     * expect and stop: a sandboxed transcode relays them at once.
     */
    int              wake_fd;

    /* optional poll, called at least every 200 ms while a read waits */
    int            (*interrupt)(void *data);
    void            *data;
} vconv_reader_t;


/* fd stays the caller's; ended=1 for a file that is already complete */
int vconv_reader_init(vconv_reader_t *rd, int fd, int64_t written,
    int ended, int64_t stall_ms);
void vconv_reader_destroy(vconv_reader_t *rd);

/* the final size, when the upload announced it (Content-Length) */
void vconv_reader_expect(vconv_reader_t *rd, int64_t size);

/* called by the writer side; any thread */
void vconv_reader_grow(vconv_reader_t *rd, int64_t written);
void vconv_reader_end(vconv_reader_t *rd);
void vconv_reader_stop(vconv_reader_t *rd, vconv_err_e why);

/* AVIOContext callbacks, opaque is the vconv_reader_t */
int vconv_reader_read(void *opaque, uint8_t *buf, int size);
int64_t vconv_reader_seek(void *opaque, int64_t offset, int whence);

/* ended, last_growth and stop (each may be NULL), from any thread */
void vconv_reader_state(vconv_reader_t *rd, int *ended,
    int64_t *last_growth, vconv_err_e *stop);

/*
 * The upload's first bytes (p, len), read by our own few lines and no
 * libav, so that the event loop may call it: a WAV, AIFF or AU header
 * whose channel count or sample rate no conversion can take is refused
 * before the job is accepted (VCONV_ERROR, err set as the transcode's
 * probe would).  allow is the input allow-list (NULL: the default); a
 * format outside it is left to the probe's 415.  Anything else, or too
 * few bytes to tell, is VCONV_OK.
 */
int vconv_reader_sniff(const uint8_t *p, size_t len, const char *allow,
    vconv_error_t *err);


#endif /* _VCONV_READER_H_INCLUDED_ */
