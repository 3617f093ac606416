/*
 * libFuzzer harness for the transcode core (vconv_transcode.c,
 * vconv_filter.c, vconv_encode.c, vconv_log.c) over an in-memory input.
 *
 * Input: the first VCONV_FUZZ_HDR bytes say the conversion (format and
 * option values, see vconv_fuzz_query()) and how the input is read (a
 * pipe, or with seeks); the rest is the media file, complete (a read at
 * its end is the end).  Outputs are small and the limits tight, so one
 * run costs milliseconds: libav itself is not instrumented, the point is
 * our code around it.
 *
 * Checks: the result is VCONV_OK or VCONV_ERROR with an error code in
 * range, not a 500 (internal_error, io_error), and a terminated,
 * non-empty message; a success wrote a non-empty file of the size it
 * says, within max_output; the limits hold.
 *
 * VCONV_FUZZ_VERBOSE=1 in the environment prints libav's messages and
 * each result.
 */

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavformat/avformat.h>
#include <libavformat/avio.h>
#include <libavutil/error.h>
#include <libavutil/log.h>

#include "vconv_options.h"
#include "vconv_transcode.h"


#define VCONV_FUZZ_MAX_OUTPUT  (1024 * 1024)


typedef struct {
    const uint8_t  *data;
    size_t          size;
    size_t          pos;
} vconv_fuzz_io_t;


/*
 * libav is not instrumented: a bad pointer-to-pointer handed from our
 * code to a libav free (past an array, freed memory) goes unseen.  run.sh
 * links with -Wl,--wrap for these, so that our calls read the pointer
 * here first, where AddressSanitizer checks it.
 */
#define VCONV_FUZZ_WRAP(name, type)                                          \
    void __real_##name(type **p);                                            \
    void __wrap_##name(type **p);                                            \
    void                                                                     \
    __wrap_##name(type **p)                                                  \
    {                                                                        \
        if (p != NULL) {                                                     \
            (void) *(type * volatile *) p;                                   \
        }                                                                    \
                                                                             \
        __real_##name(p);                                                    \
    }

VCONV_FUZZ_WRAP(av_dict_free, AVDictionary)
VCONV_FUZZ_WRAP(av_frame_free, AVFrame)
VCONV_FUZZ_WRAP(av_packet_free, AVPacket)
VCONV_FUZZ_WRAP(avcodec_free_context, AVCodecContext)
VCONV_FUZZ_WRAP(avformat_close_input, AVFormatContext)
VCONV_FUZZ_WRAP(avfilter_graph_free, AVFilterGraph)
VCONV_FUZZ_WRAP(avfilter_inout_free, AVFilterInOut)
VCONV_FUZZ_WRAP(avio_context_free, AVIOContext)


static char  vconv_fuzz_out[64];
static int   vconv_fuzz_verbose;


static void
vconv_fuzz_log(int level, const char *job, const char *msg)
{
    if (vconv_fuzz_verbose) {
        fprintf(stderr, "[%s] %s\n", job, msg);
    }
}


static void
vconv_fuzz_exit(void)
{
    unlink(vconv_fuzz_out);
}


/*
 * A crash ends the process without atexit(): the next run removes what
 * a dead harness left in /tmp.
 */
static void
vconv_fuzz_sweep(void)
{
    long            pid;
    char            path[300];
    DIR            *dir;
    struct dirent  *de;

    dir = opendir("/tmp");
    if (dir == NULL) {
        return;
    }

    while ((de = readdir(dir)) != NULL) {
        if (sscanf(de->d_name, "vconv-fuzz-%ld.out", &pid) == 1
            && pid > 0 && kill((pid_t) pid, 0) == -1 && errno == ESRCH)
        {
            snprintf(path, sizeof(path), "/tmp/%s", de->d_name);
            unlink(path);
        }
    }

    closedir(dir);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char  *v;

    v = getenv("VCONV_FUZZ_VERBOSE");
    vconv_fuzz_verbose = v != NULL && v[0] != '\0' && v[0] != '0';

    /* the callback runs for every message: part of what is fuzzed */
    vconv_log_init(vconv_fuzz_log,
                   vconv_fuzz_verbose ? AV_LOG_INFO : AV_LOG_ERROR);
    vconv_log_job("fuzz");

    vconv_fuzz_sweep();

    snprintf(vconv_fuzz_out, sizeof(vconv_fuzz_out),
             "/tmp/vconv-fuzz-%ld.out", (long) getpid());
    atexit(vconv_fuzz_exit);

    return 0;
}


static int
vconv_fuzz_read(void *opaque, uint8_t *buf, int size)
{
    size_t            n;
    vconv_fuzz_io_t  *io = opaque;

    if (size < 0) {
        abort();
    }

    n = io->size - io->pos;
    if (n == 0) {
        return AVERROR_EOF;
    }

    if (n > (size_t) size) {
        n = size;
    }

    memcpy(buf, io->data + io->pos, n);
    io->pos += n;

    return (int) n;
}


static int64_t
vconv_fuzz_seek(void *opaque, int64_t offset, int whence)
{
    int64_t           pos;
    vconv_fuzz_io_t  *io = opaque;

    whence &= ~AVSEEK_FORCE;

    switch (whence) {
    case AVSEEK_SIZE:
        return (int64_t) io->size;
    case SEEK_SET:
        pos = offset;
        break;
    case SEEK_CUR:
        pos = (int64_t) io->pos + offset;
        break;
    case SEEK_END:
        pos = (int64_t) io->size + offset;
        break;
    default:
        return AVERROR(EINVAL);
    }

    if (pos < 0 || pos > (int64_t) io->size) {
        return AVERROR(EINVAL);
    }

    io->pos = (size_t) pos;

    return pos;
}


/*
 * The conversion comes from the input's first VCONV_FUZZ_HDR bytes, as a
 * query string the API would hand to the option parser:
 *
 *   0  format (low 4 bits, modulo the formats), bit 6: limits of
 *      720x576 instead of 256x256, bit 7: read as a pipe
 *   1  which options are set: 0x01 width, 0x02 height, 0x04 fps,
 *      0x08 start, 0x10 duration, 0x20 vcodec, 0x40 acodec, 0x80 audio
 *   2  more: 0x01 quality, 0x02 crf, 0x04 video_bitrate,
 *      0x08 audio_bitrate, 0x10 upscale, 0x20 sample rate, 0x40 channels,
 *      0x80 target_size (not read as a pipe)
 *   3  width     16 + 2n, up to 270
 *   4  height    16 + 2n
 *   5  fps       n / 4 + 0.25, or (odd n) an NTSC-style fraction
 *   6  start     n / 100 s
 *   7  duration  n / 100 s + 0.01
 *   8  vcodec and acodec: the n-th of the format's allowed ones (nibbles)
 *   9  quality 1-100, crf 0-63 (modulo), audio=0 or 1 (bit 0)
 *  10  video_bitrate 8k + 4k n, audio_bitrate 8k + 2k n, target_size
 *      10k + 1k n
 *  11  sample rate (low nibble, from a table, 0: keep) and channels
 *      (high nibble, 0: keep)
 *
 * The parser refuses some mixes (crf with video_bitrate, width for
 * audio): those inputs end there, as such requests would.  Sample rate
 * and channels are not request options; they are set in the finished
 * spec, where the core reads them.
 */

#define VCONV_FUZZ_HDR  12

static const int  vconv_fuzz_rates[16] = {
    0, 8000, 11025, 16000, 22050, 32000, 44100, 48000,
    96000, 192000, 768000, 7350, 4000, 1, 12345, 88200
};


/* the n-th (modulo) name of a comma list into buf; 0 if the list is "" */
static int
vconv_fuzz_pick(const char *list, unsigned n, char *buf, size_t len)
{
    unsigned     count, i;
    size_t       l;
    const char  *p, *end;

    if (list == NULL || list[0] == '\0') {
        return 0;
    }

    count = 1;
    for (p = list; *p; p++) {
        count += (*p == ',');
    }

    p = list;
    for (i = 0; i < n % count; i++) {
        p = strchr(p, ',') + 1;
    }

    end = strchr(p, ',');
    l = end ? (size_t) (end - p) : strlen(p);
    if (l >= len) {
        return 0;
    }

    memcpy(buf, p, l);
    buf[l] = '\0';

    return 1;
}


static int
vconv_fuzz_query(const uint8_t *h, char *q, size_t len)
{
    int                    n;
    char                   codec[32];
    unsigned               a, b;
    const vconv_format_t  *f;

    f = vconv_format((h[0] & 0x0f) % VCONV_FMT_COUNT);
    a = h[1];
    b = h[2];

    n = snprintf(q, len, "format=%s", f->name);

#define VCONV_FUZZ_ADD(...)                                                  \
    n += snprintf(q + n, n < (int) len ? len - n : 0, __VA_ARGS__)

    if (a & 0x01) {
        VCONV_FUZZ_ADD("&width=%d", 16 + 2 * h[3]);
    }

    if (a & 0x02) {
        VCONV_FUZZ_ADD("&height=%d", 16 + 2 * h[4]);
    }

    if (a & 0x04) {
        if (h[5] & 1) {
            VCONV_FUZZ_ADD("&fps=%d/1001", (h[5] / 2 + 1) * 1000);

        } else {
            VCONV_FUZZ_ADD("&fps=%.2f", h[5] / 4.0 + 0.25);
        }
    }

    if (a & 0x08) {
        VCONV_FUZZ_ADD("&start=%.2f", h[6] / 100.0);
    }

    if (a & 0x10) {
        VCONV_FUZZ_ADD("&duration=%.2f", h[7] / 100.0 + 0.01);
    }

    if ((a & 0x20) && vconv_fuzz_pick(f->vcodecs, h[8] & 0x0f, codec,
                                      sizeof(codec)))
    {
        VCONV_FUZZ_ADD("&vcodec=%s", codec);
    }

    if ((a & 0x40) && vconv_fuzz_pick(f->acodecs, h[8] >> 4, codec,
                                      sizeof(codec)))
    {
        VCONV_FUZZ_ADD("&acodec=%s", codec);
    }

    if (a & 0x80) {
        VCONV_FUZZ_ADD("&audio=%d", h[9] & 1);
    }

    if (b & 0x01) {
        VCONV_FUZZ_ADD("&quality=%d", 1 + h[9] % 100);
    }

    if (b & 0x02) {
        VCONV_FUZZ_ADD("&crf=%d", h[9] % 64);
    }

    if (b & 0x04) {
        VCONV_FUZZ_ADD("&video_bitrate=%dk", 8 + 4 * h[10]);
    }

    if (b & 0x08) {
        VCONV_FUZZ_ADD("&audio_bitrate=%dk", 8 + 2 * h[10]);
    }

    if (b & 0x10) {
        VCONV_FUZZ_ADD("&upscale=1");
    }

    /*
     * Its passes read the input again: the server keeps every upload, so
     * it never comes as a pipe
     */
    if ((b & 0x80) && !(h[0] & 0x80)) {
        VCONV_FUZZ_ADD("&target_size=%d", 10240 + 1024 * h[10]);
    }

#undef VCONV_FUZZ_ADD

    return n < (int) len ? VCONV_OK : VCONV_ERROR;
}


/* VCONV_ERROR: the parser refused the request, as it would the API's */
static int
vconv_fuzz_spec(vconv_spec_t *spec, const uint8_t *h, char *q, size_t len)
{
    const char     *p, *amp, *eq;
    vconv_error_t   err;

    vconv_spec_init(spec);

    if (vconv_fuzz_query(h, q, len) != VCONV_OK) {
        abort();
    }

    for (p = q; *p; p = *amp ? amp + 1 : amp) {
        amp = strchr(p, '&');
        if (amp == NULL) {
            amp = p + strlen(p);
        }

        eq = memchr(p, '=', amp - p);
        if (eq == NULL) {
            abort();
        }

        if (vconv_spec_set(spec, p, eq - p, eq + 1, amp - (eq + 1), &err)
            != VCONV_OK)
        {
            return VCONV_ERROR;
        }
    }

    if (vconv_spec_finish(spec, VCONV_FMT_ALL, &err) != VCONV_OK) {
        return VCONV_ERROR;
    }

    if ((h[2] & 0x20) && spec->aencoder[0]) {
        spec->sample_rate = vconv_fuzz_rates[h[11] & 0x0f];
    }

    if ((h[2] & 0x40) && spec->aencoder[0]) {
        spec->channels = h[11] >> 4;
    }

    return VCONV_OK;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                 rc;
    char                target[512];
    struct stat         sb;
    vconv_spec_t        spec;
    vconv_limits_t      limits;
    vconv_fuzz_io_t     io;
    vconv_transcode_t   tc;

    if (size < VCONV_FUZZ_HDR) {
        return 0;
    }

    if (vconv_fuzz_spec(&spec, data, target, sizeof(target)) != VCONV_OK) {
        return 0;
    }

    memset(&limits, 0, sizeof(limits));
    /* bit 6: room for a camera's picture (DV is 720x576 or 720x480) */
    limits.max_width = (data[0] & 0x40) ? 720 : 256;
    limits.max_height = (data[0] & 0x40) ? 576 : 256;
    limits.max_duration = 2000000;
    limits.max_output = VCONV_FUZZ_MAX_OUTPUT;
    limits.max_streams = 8;
    limits.probesize = 32768;
    limits.codec_threads = 1;
    limits.input_formats = VCONV_DEFAULT_INPUT_FORMATS;

    io.data = data + VCONV_FUZZ_HDR;
    io.size = size - VCONV_FUZZ_HDR;
    io.pos = 0;

    memset(&tc, 0, sizeof(tc));
    tc.spec = &spec;
    tc.limits = &limits;
    tc.read = vconv_fuzz_read;
    tc.seek = (data[0] & 0x80) ? NULL : vconv_fuzz_seek;
    tc.io_opaque = &io;
    tc.output_path = vconv_fuzz_out;

    rc = vconv_transcode(&tc);

    if (vconv_fuzz_verbose) {
        fprintf(stderr, "fuzz: %s%s: %s %s (%s) %lld bytes\n", target,
                tc.seek ? "" : " (pipe)", rc == VCONV_OK ? "ok" : "failed",
                vconv_error_name(tc.err.code), tc.err.message,
                (long long) tc.output_bytes);
    }

    if (rc == VCONV_OK) {
        if (tc.err.code != VCONV_E_NONE || tc.output_bytes <= 0
            || tc.output_bytes > VCONV_FUZZ_MAX_OUTPUT
            || (vconv_format(spec.format)->kind != VCONV_KIND_AUDIO
                && (tc.input.width > limits.max_width
                    || tc.input.height > limits.max_height))
            || stat(vconv_fuzz_out, &sb) == -1
            || sb.st_size != tc.output_bytes)
        {
            fprintf(stderr, "fuzz: %s: a success that is not one\n",
                    target);
            abort();
        }

    } else if (rc != VCONV_ERROR || tc.err.code <= VCONV_E_NONE
               || tc.err.code >= VCONV_E_COUNT
               || memchr(tc.err.message, '\0', sizeof(tc.err.message))
                  == NULL
               || tc.err.message[0] == '\0')
    {
        fprintf(stderr, "fuzz: %s: bad error: rc %d code %d\n", target, rc,
                (int) tc.err.code);
        abort();

    } else if (tc.err.code == VCONV_E_INTERNAL || tc.err.code == VCONV_E_IO) {
        /*
         * A 500 says the server is broken; here the input is all that
         * varies (reads never fail, the output is a small local file),
         * so whatever it is, it is the input's fault and a 4xx.
         */
        fprintf(stderr, "fuzz: %s: a 500 for the input: %s (%s)\n", target,
                vconv_error_name(tc.err.code), tc.err.message);
        abort();
    }

    if (memchr(tc.input.format, '\0', sizeof(tc.input.format)) == NULL
        || memchr(tc.input.vcodec, '\0', sizeof(tc.input.vcodec)) == NULL
        || memchr(tc.input.acodec, '\0', sizeof(tc.input.acodec)) == NULL)
    {
        abort();
    }

    unlink(vconv_fuzz_out);

    return 0;
}
