/*
 * vconv: WAV outputs that say their channel layout.
 *
 * libavformat writes mono and stereo 16-bit PCM as a plain WAVEFORMAT,
 * which has no channel mask, so readers (ffprobe among them) call the
 * layout "unknown" although the input's was known.  Its wav muxer has no
 * option for the extensible form, which it writes only for other
 * layouts, rates past 48 kHz or deeper samples.  So the finished file's
 * fmt chunk is rewritten here as WAVE_FORMAT_EXTENSIBLE with the mask,
 * and what follows it moves 24 bytes on.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/error.h>

#include "vconv_wav.h"


#define VCONV_WAV_FMT_END   36            /* RIFF, WAVE, 16-byte fmt */
#define VCONV_WAV_GROW      24            /* 40-byte fmt instead of 16 */
#define VCONV_WAV_BLOCK     65536


static int vconv_wav_io(int fd, unsigned char *buf, size_t len, off_t off,
    int write);


/* KSDATAFORMAT_SUBTYPE_PCM */
static const unsigned char  vconv_wav_pcm_guid[16] = {
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
    0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71
};


static uint32_t
vconv_wav_le32(const unsigned char *p)
{
    return p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t) p[3] << 24);
}


static void
vconv_wav_put32(unsigned char *p, uint32_t v)
{
    p[0] = v & 0xff;
    p[1] = (v >> 8) & 0xff;
    p[2] = (v >> 16) & 0xff;
    p[3] = (v >> 24) & 0xff;
}


int
vconv_wav_extensible(int fd, uint64_t mask, int64_t *size)
{
    int             rc, channels;
    off_t           pos;
    size_t          n;
    unsigned char   h[VCONV_WAV_FMT_END], ext[8 + 40], *buf;

    if (*size < VCONV_WAV_FMT_END
        || *size + VCONV_WAV_GROW > (int64_t) UINT32_MAX)
    {
        return 0;
    }

    rc = vconv_wav_io(fd, h, sizeof(h), 0, 0);
    if (rc < 0) {
        return rc;
    }

    channels = h[22] | (h[23] << 8);

    /* only what the muxer writes plain: PCM, one or two channels */
    if (memcmp(h, "RIFF", 4) != 0 || memcmp(h + 8, "WAVEfmt ", 8) != 0
        || vconv_wav_le32(h + 16) != 16 || h[20] != 1 || h[21] != 0
        || channels < 1 || channels > 2
        || (unsigned) __builtin_popcountll(mask) != (unsigned) channels
        || mask > UINT32_MAX)
    {
        return 0;
    }

    buf = malloc(VCONV_WAV_BLOCK);
    if (buf == NULL) {
        return AVERROR(ENOMEM);
    }

    /* from the end back, so that no byte is overwritten before it moved */
    pos = *size;

    while (pos > VCONV_WAV_FMT_END) {
        n = pos - VCONV_WAV_FMT_END;
        if (n > VCONV_WAV_BLOCK) {
            n = VCONV_WAV_BLOCK;
        }

        pos -= n;

        rc = vconv_wav_io(fd, buf, n, pos, 0);
        if (rc == 0) {
            rc = vconv_wav_io(fd, buf, n, pos + VCONV_WAV_GROW, 1);
        }

        if (rc < 0) {
            free(buf);
            return rc;
        }
    }

    free(buf);

    memcpy(ext, "fmt ", 4);
    vconv_wav_put32(ext + 4, 40);
    ext[8] = 0xfe;                           /* WAVE_FORMAT_EXTENSIBLE */
    ext[9] = 0xff;
    memcpy(ext + 10, h + 22, 14);            /* channels .. bits */
    ext[24] = 22;                            /* cbSize */
    ext[25] = 0;
    memcpy(ext + 26, h + 34, 2);             /* valid bits per sample */
    vconv_wav_put32(ext + 28, (uint32_t) mask);
    memcpy(ext + 32, vconv_wav_pcm_guid, 16);

    rc = vconv_wav_io(fd, ext, sizeof(ext), 12, 1);
    if (rc < 0) {
        return rc;
    }

    vconv_wav_put32(h + 4, vconv_wav_le32(h + 4) + VCONV_WAV_GROW);

    rc = vconv_wav_io(fd, h + 4, 4, 4, 1);
    if (rc < 0) {
        return rc;
    }

    *size += VCONV_WAV_GROW;

    return 0;
}


static int
vconv_wav_io(int fd, unsigned char *buf, size_t len, off_t off, int write)
{
    ssize_t  n;
    size_t   done;

    for (done = 0; done < len; done += n) {
        n = write ? pwrite(fd, buf + done, len - done, off + done)
                  : pread(fd, buf + done, len - done, off + done);

        if (n < 0 && errno == EINTR) {
            n = 0;
            continue;
        }

        if (n <= 0) {
            return n < 0 ? AVERROR(errno) : AVERROR(EIO);
        }
    }

    return 0;
}
