/*
 * libFuzzer harness for the transcode core (vconv_transcode.c,
 * vconv_filter.c, vconv_encode.c, vconv_log.c) over an in-memory input.
 *
 * Input: byte 0 picks the conversion (low 3 bits: vconv_fuzz_targets[])
 * and how the input is read (bit 7 set: a pipe, no seek callback); the
 * rest is the media file, complete (a read at its end is the end).
 * Outputs are tiny and the limits tight, so one run costs milliseconds:
 * libav itself is not instrumented, the point is our code around it.
 *
 * Checks: the result is VCONV_OK or VCONV_ERROR with an error code in
 * range and a terminated, non-empty message; a success wrote a non-empty
 * file of the size it says, within max_output; the limits hold.
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


/* each a query string, as the API would hand it to the option parser */
static const char  *vconv_fuzz_targets[] = {
    "format=mp4&width=32&duration=1&fps=5",
    "format=mp3&duration=1&audio_bitrate=32k",
    "format=png&width=48",
    "format=gif&width=32&duration=1&fps=5",
    "format=mkv&vcodec=copy&acodec=copy&duration=1",
    "format=wav&start=0.2&duration=0.5",
    "format=jpg&height=32&start=0.1",
    "format=mp4&vcodec=copy&audio=0&start=0.3&duration=0.5"
};

#define VCONV_FUZZ_NTARGETS                                                  \
    (sizeof(vconv_fuzz_targets) / sizeof(vconv_fuzz_targets[0]))


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


static void
vconv_fuzz_spec(vconv_spec_t *spec, const char *q)
{
    const char     *p, *amp, *eq;
    vconv_error_t   err;

    vconv_spec_init(spec);

    for (p = q; *p; p = *amp ? amp + 1 : amp) {
        amp = strchr(p, '&');
        if (amp == NULL) {
            amp = p + strlen(p);
        }

        eq = memchr(p, '=', amp - p);

        if (eq == NULL
            || vconv_spec_set(spec, p, eq - p, eq + 1, amp - (eq + 1), &err)
               != VCONV_OK)
        {
            fprintf(stderr, "fuzz: bad target \"%s\"\n", q);
            abort();
        }
    }

    if (vconv_spec_finish(spec, VCONV_FMT_ALL, &err) != VCONV_OK) {
        fprintf(stderr, "fuzz: bad target \"%s\": %s\n", q, err.message);
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                 rc;
    struct stat         sb;
    const char         *target;
    vconv_spec_t        spec;
    vconv_limits_t      limits;
    vconv_fuzz_io_t     io;
    vconv_transcode_t   tc;

    if (size < 1) {
        return 0;
    }

    target = vconv_fuzz_targets[(data[0] & 0x7f) % VCONV_FUZZ_NTARGETS];
    vconv_fuzz_spec(&spec, target);

    memset(&limits, 0, sizeof(limits));
    limits.max_width = 256;
    limits.max_height = 256;
    limits.max_duration = 2000000;
    limits.max_output = VCONV_FUZZ_MAX_OUTPUT;
    limits.max_streams = 8;
    limits.probesize = 32768;
    limits.codec_threads = 1;

    io.data = data + 1;
    io.size = size - 1;
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
