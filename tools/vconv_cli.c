/*
 * vconv-cli: the core without nginx, for tests, benchmarks and debugging.
 *
 *   vconv-cli [-v] [--max-size WxH] [--max-duration S] [--max-output BYTES]
 *             [--threads N] [--input-formats LIST] [--demux-opt K=V:K=V]
 *             INPUT OUTPUT [key=value...]
 *
 * With a list of formats (format=mp4,webm,jpg), OUTPUT is a folder
 * (made if missing) and each output is OUTPUT/out.EXT (a sprite
 * OUTPUT/out.sprite.jpg and its VTT OUTPUT/out.sprite.vtt); the JSON line
 * gains "outputs":[{"name","path","bytes","duration"}].  format=hls (alone
 * or in a list; hls.heights=...) writes OUTPUT/hls/: master.m3u8, and
 * per rung NNNp.mp4 (fragmented) and NNNp.m3u8.
 *
 * Prints one line of JSON with the result.  Exit 0: done, 1: the
 * transcode failed (the output is removed), 2: bad usage or options.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/error.h>
#include <libavutil/log.h>

#include "vconv.h"
#include "vconv_hls.h"
#include "vconv_options.h"
#include "vconv_reader.h"
#include "vconv_transcode.h"


static void vconv_cli_usage(void);
static void vconv_cli_log(int level, const char *job, const char *msg);
static void vconv_cli_progress(void *data, double fraction);
static int vconv_cli_fail(const vconv_error_t *err, int status);
static int vconv_cli_pipe_read(void *opaque, uint8_t *buf, int size);
static int vconv_cli_vtt(const char *out, const vconv_sprite_t *sp);
static int vconv_cli_vtt_write(const char *path, const char *url,
    const vconv_sprite_t *sp);
static void vconv_cli_str(const char *name, const char *s, int comma);


static int  vconv_cli_verbose;


int
main(int argc, char **argv)
{
    int                 i, fd, rc;
    char               *eq, *end;
    double              secs;
    struct stat         sb;
    vconv_spec_t        spec;
    vconv_error_t       err;
    vconv_limits_t      limits;
    vconv_reader_t      rd;
    vconv_transcode_t   tc;
    vconv_output_t      outs[VCONV_MAX_OUTPUTS];
    char                paths[VCONV_MAX_OUTPUTS][4096];
    char                names[VCONV_MAX_OUTPUTS][2][32];
    char                hls[2048];
    char                vtt[4096];
    int                 nrungs;
    vconv_hls_rung_t    rungs[VCONV_MAX_OUTPUTS];
    const char         *in, *out;

    memset(&limits, 0, sizeof(limits));
    memset(&err, 0, sizeof(err));

    for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            vconv_cli_verbose = 1;

        } else if (i + 1 >= argc) {
            vconv_cli_usage();
            return 2;

        } else if (strcmp(argv[i], "--max-size") == 0) {
            if (sscanf(argv[++i], "%dx%d", &limits.max_width,
                       &limits.max_height) != 2)
            {
                vconv_cli_usage();
                return 2;
            }

        } else if (strcmp(argv[i], "--max-duration") == 0) {
            secs = strtod(argv[++i], &end);
            if (*end || secs <= 0) {
                vconv_cli_usage();
                return 2;
            }

            limits.max_duration = (int64_t) (secs * 1e6);

        } else if (strcmp(argv[i], "--max-output") == 0) {
            limits.max_output = strtoll(argv[++i], &end, 10);
            if (*end || limits.max_output <= 0) {
                vconv_cli_usage();
                return 2;
            }

        } else if (strcmp(argv[i], "--threads") == 0) {
            limits.codec_threads = atoi(argv[++i]);

        } else if (strcmp(argv[i], "--max-frames") == 0) {
            limits.max_frames = atoll(argv[++i]);

        } else if (strcmp(argv[i], "--max-streams") == 0) {
            limits.max_streams = atoi(argv[++i]);

        } else if (strcmp(argv[i], "--input-formats") == 0) {
            limits.input_formats = argv[++i];

        } else if (strcmp(argv[i], "--demux-opt") == 0) {
            limits.demuxer_options = argv[++i];

        } else {
            vconv_cli_usage();
            return 2;
        }
    }

    if (argc - i < 2) {
        vconv_cli_usage();
        return 2;
    }

    in = argv[i++];
    out = argv[i++];

    vconv_log_init(vconv_cli_log,
                   vconv_cli_verbose ? AV_LOG_INFO : AV_LOG_ERROR);
    vconv_log_job("cli");

    vconv_spec_init(&spec);

    for ( /* void */ ; i < argc; i++) {
        eq = strchr(argv[i], '=');
        if (eq == NULL) {
            vconv_error_set(&err, VCONV_E_INVALID_VALUE,
                            "\"%s\" is not key=value", argv[i]);
            return vconv_cli_fail(&err, 2);
        }

        if (vconv_spec_set(&spec, argv[i], eq - argv[i], eq + 1,
                           strlen(eq + 1), &err)
            != VCONV_OK)
        {
            return vconv_cli_fail(&err, 2);
        }
    }

    if (vconv_spec_finish(&spec, VCONV_FMT_ALL | VCONV_FMT_HLS_OK, &err)
        != VCONV_OK)
    {
        return vconv_cli_fail(&err, 2);
    }

    fd = open(in, O_RDONLY | O_CLOEXEC);
    if (fd == -1 || fstat(fd, &sb) == -1) {
        vconv_error_set(&err, VCONV_E_IO, "%s: %s", in, strerror(errno));
        return vconv_cli_fail(&err, 1);
    }

    if (vconv_reader_init(&rd, fd, sb.st_size, 1, 0) != VCONV_OK) {
        close(fd);
        vconv_error_set(&err, VCONV_E_INTERNAL, "reader");
        return vconv_cli_fail(&err, 1);
    }

    memset(&tc, 0, sizeof(tc));
    tc.spec = &spec;
    tc.limits = &limits;
    tc.read = vconv_reader_read;
    tc.seek = vconv_reader_seek;
    tc.io_opaque = &rd;

    if (!S_ISREG(sb.st_mode)) {
        /* a pipe: no size to wait for, no seeking (streamable inputs) */
        tc.read = vconv_cli_pipe_read;
        tc.seek = NULL;
        tc.io_opaque = &fd;
    }
    tc.output_path = out;

    if (spec.nouts > 1 || spec.hls) {
        if (mkdir(out, 0755) == -1 && errno != EEXIST) {
            vconv_error_set(&err, VCONV_E_IO, "%s: %s", out,
                            strerror(errno));
            return vconv_cli_fail(&err, 1);
        }

        memset(outs, 0, sizeof(outs));

        snprintf(hls, sizeof(hls), "%s/hls", out);

        if (spec.hls && mkdir(hls, 0755) == -1 && errno != EEXIST) {
            vconv_error_set(&err, VCONV_E_IO, "%s: %s", hls,
                            strerror(errno));
            return vconv_cli_fail(&err, 1);
        }

        for (i = 0; i < spec.nouts; i++) {
            if (spec.rung[i]) {
                snprintf(names[i][0], sizeof(names[i][0]), "%up.mp4",
                         (unsigned) spec.rung[i]);
                snprintf(names[i][1], sizeof(names[i][1]), "%up.m3u8",
                         (unsigned) spec.rung[i]);
                snprintf(paths[i], sizeof(paths[i]), "%s/%s", hls,
                         names[i][0]);

            } else if (spec.outs[i] == VCONV_FMT_SPRITE) {
                /* beside a jpg of the same list; its VTT names it */
                snprintf(paths[i], sizeof(paths[i]), "%s/out.sprite.jpg",
                         out);

            } else {
                snprintf(paths[i], sizeof(paths[i]), "%s/out.%s", out,
                         vconv_format(spec.outs[i])->ext);
            }

            outs[i].path = paths[i];
            outs[i].fd = -1;
        }

        tc.output_path = NULL;
        tc.outputs = outs;
    }

    vtt[0] = '\0';
    tc.progress = vconv_cli_verbose ? vconv_cli_progress : NULL;

    rc = vconv_transcode(&tc);

    vconv_reader_destroy(&rd);
    close(fd);

    nrungs = 0;

    for (i = 0; rc == VCONV_OK && spec.hls && i < spec.nouts; i++) {
        if (spec.rung[i] && !outs[i].skipped) {
            rungs[nrungs].media = names[i][0];
            rungs[nrungs].playlist = names[i][1];
            rungs[nrungs].width = outs[i].width;
            rungs[nrungs].height = outs[i].height;
            rungs[nrungs++].duration = outs[i].duration;
        }
    }

    if (rc == VCONV_OK && spec.hls) {
        rc = vconv_hls_write(hls, rungs, nrungs, &tc.err);
    }

    if (rc == VCONV_OK && spec.nouts > 1 && tc.sprite.tiles > 0) {
        snprintf(vtt, sizeof(vtt), "%s/out.sprite.vtt", out);

        if (vconv_cli_vtt_write(vtt, "out.sprite.jpg", &tc.sprite) != 0) {
            rc = vconv_error_set(&tc.err, VCONV_E_IO, "%s: %s", vtt,
                                 strerror(errno));
        }
    }

    if (rc != VCONV_OK) {
        if (spec.nouts > 1 || spec.hls) {
            /* one output failed: none is left */
            snprintf(vtt, sizeof(vtt), "%s/out.sprite.vtt", out);
            unlink(vtt);

            for (i = 0; i < spec.nouts; i++) {
                unlink(paths[i]);

                if (spec.rung[i]) {
                    snprintf(paths[i], sizeof(paths[i]), "%s/%s", hls,
                             names[i][1]);
                    unlink(paths[i]);
                }
            }

            snprintf(paths[0], sizeof(paths[0]), "%s/master.m3u8", hls);
            unlink(paths[0]);
            (void) rmdir(hls);

            /* the folder too, when it held nothing else */
            (void) rmdir(out);

        } else {
            unlink(out);
        }

        return vconv_cli_fail(&tc.err, 1);
    }

    printf("{\"ok\":true,\"output_bytes\":%lld,\"duration\":%.3f,"
           "\"warnings\":{\"damaged_packets\":%lld},"
           "\"passes\":%d,\"format\":\"%s\",\"input\":{",
           (long long) tc.output_bytes, tc.output_duration,
           (long long) tc.damaged_packets, tc.passes,
           vconv_format(spec.format)->name);
    vconv_cli_str("format", tc.input.format, 0);
    printf(",\"duration\":%.3f,\"streams\":%d,\"width\":%d,\"height\":%d,",
           tc.input.duration, tc.input.streams, tc.input.width,
           tc.input.height);
    vconv_cli_str("vcodec", tc.input.vcodec, 0);
    vconv_cli_str("acodec", tc.input.acodec, 1);
    printf("}");

    if (spec.nouts > 1 || spec.hls) {
        printf(",\"outputs\":[");

        for (i = 0; i < spec.nouts; i++) {
            printf("%s{", i ? "," : "");
            vconv_cli_str("name", spec.rung[i] ? "hls"
                                  : vconv_format(spec.outs[i])->name, 0);
            vconv_cli_str("path", paths[i], 1);
            printf(",\"bytes\":%lld,\"duration\":%.3f}",
                   (long long) outs[i].bytes, outs[i].duration);

            if (spec.outs[i] == VCONV_FMT_SPRITE && spec.rung[i] == 0
                && stat(vtt, &sb) == 0)
            {
                printf(",{");
                vconv_cli_str("name", "sprite.vtt", 0);
                vconv_cli_str("path", vtt, 1);
                printf(",\"bytes\":%lld,\"duration\":%.3f}",
                       (long long) sb.st_size, outs[i].duration);
            }
        }

        printf("]");
    }

    if (tc.sprite.tiles > 0) {
        printf(",\"sprite\":{\"tiles\":%d,\"columns\":%d,\"tile_width\":%d,"
               "\"tile_height\":%d,\"interval\":%.3f}", tc.sprite.tiles,
               tc.sprite.columns, tc.sprite.tile_w, tc.sprite.tile_h,
               tc.sprite.interval);

        if (spec.nouts < 2 && vconv_cli_vtt(out, &tc.sprite) != 0) {
            unlink(out);
            printf("}\n");
            return 1;
        }
    }

    printf("}\n");

    return 0;
}


/* OUTPUT.vtt beside the sprite, its cues naming the sprite's base name */
static int
vconv_cli_vtt(const char *out, const vconv_sprite_t *sp)
{
    int          rc;
    char        *text, *path;
    FILE        *f;
    size_t       len;
    const char  *base;

    base = strrchr(out, '/');
    base = base ? base + 1 : out;

    len = vconv_sprite_vtt(sp, base, NULL, 0) + 1;
    text = malloc(len);
    path = malloc(strlen(out) + 5);

    if (text == NULL || path == NULL) {
        free(text);
        free(path);
        return -1;
    }

    (void) vconv_sprite_vtt(sp, base, text, len);
    sprintf(path, "%s.vtt", out);

    rc = -1;
    f = fopen(path, "w");

    if (f != NULL) {
        rc = fputs(text, f) < 0 ? -1 : 0;
        if (fclose(f) != 0) {
            rc = -1;
        }
    }

    if (rc != 0) {
        fprintf(stderr, "vconv-cli: %s: %s\n", path, strerror(errno));
    }

    free(text);
    free(path);

    return rc;
}


/* a list's VTT: path, its cues naming url (the sprite beside it) */
static int
vconv_cli_vtt_write(const char *path, const char *url,
    const vconv_sprite_t *sp)
{
    int      rc;
    char    *text;
    FILE    *f;
    size_t   len;

    len = vconv_sprite_vtt(sp, url, NULL, 0) + 1;

    text = malloc(len);
    if (text == NULL) {
        return -1;
    }

    len = vconv_sprite_vtt(sp, url, text, len);

    rc = -1;
    f = fopen(path, "w");

    if (f != NULL) {
        rc = fwrite(text, 1, len, f) == len ? 0 : -1;
        if (fclose(f) != 0) {
            rc = -1;
        }
    }

    free(text);

    return rc;
}


static int
vconv_cli_pipe_read(void *opaque, uint8_t *buf, int size)
{
    ssize_t  n;

    do {
        n = read(*(int *) opaque, buf, size);
    } while (n == -1 && errno == EINTR);

    if (n == -1) {
        return AVERROR(errno);
    }

    return n == 0 ? AVERROR_EOF : (int) n;
}


static void
vconv_cli_usage(void)
{
    fprintf(stderr,
            "usage: vconv-cli [-v] [--max-size WxH] [--max-duration S]\n"
            "                 [--max-output BYTES] [--threads N]\n"
            "                 [--max-streams N] [--max-frames N]\n"
            "                 [--input-formats LIST]\n"
            "                 [--demux-opt KEY=VALUE:KEY=VALUE]\n"
            "                 INPUT OUTPUT [key=value ...]\n");
}


static void
vconv_cli_log(int level, const char *job, const char *msg)
{
    fprintf(stderr, "[%s] %s\n", job, msg);
}


static void
vconv_cli_progress(void *data, double fraction)
{
    fprintf(stderr, "progress %.3f\n", fraction);
}


static int
vconv_cli_fail(const vconv_error_t *err, int status)
{
    printf("{\"ok\":false,\"error\":{");
    vconv_cli_str("code", vconv_error_name(err->code), 0);
    vconv_cli_str("message", err->message, 1);
    printf("}}\n");

    return status;
}


static void
vconv_cli_str(const char *name, const char *s, int comma)
{
    char    buf[1024];
    size_t  pos;

    pos = 0;
    buf[0] = '\0';
    vconv_json_escape(buf, sizeof(buf), &pos, s, strlen(s));

    printf("%s\"%s\":\"%s\"", comma ? "," : "", name, buf);
}
