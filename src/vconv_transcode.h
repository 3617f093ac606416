/*
 * vconv: the transcode pipeline.  Input comes only through the caller's
 * read/seek callbacks (wrapped in an AVIOContext the core makes); the core
 * never opens an input path or URL, and every nested open is refused.
 */

#ifndef _VCONV_TRANSCODE_H_INCLUDED_
#define _VCONV_TRANSCODE_H_INCLUDED_


#include "vconv.h"
#include "vconv_options.h"
#include "vconv_sprite.h"


/*
 * The default bound on video frames, decoded or encoded: 18.5 hours at
 * 30 fps.  A tiny picture at thousands of frames a second, or a last
 * frame held for hours and repeated at the asked fps, would otherwise
 * run within the duration and size limits.
 */
#define VCONV_MAX_FRAMES  2000000

/* the largest single libav allocation a job may make (av_max_alloc) */
#define VCONV_MAX_ALLOC   ((size_t) 384 * 1024 * 1024)


/*
 * The default demuxer allow-list (libavformat short names): the formats
 * people have (issue 23: cameras, film audio, Mac and phone audio, VFX
 * stills).  None opens another file; RealMedia, game and console formats
 * stay out unless the operator adds them.
 */
#define VCONV_DEFAULT_INPUT_FORMATS                                          \
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts,mpeg,asf,ogg,"      \
    "wav,mp3,flac,aac,gif,png_pipe,jpeg_pipe,webp_pipe,bmp_pipe,"             \
    "ivf,mxf,dv,aiff,caf,w64,au,wv,tta,ape,tak,ac3,eac3,dts,dtshd,truehd,"    \
    "amr,amrnb,amrwb,mpc,mpc8,apng,tiff_pipe,j2k_pipe,psd_pipe,dpx_pipe,"     \
    "exr_pipe,ppm_pipe,pgm_pipe,pbm_pipe"


typedef struct {
    int             max_width;       /* 0: no bound */
    int             max_height;
    int64_t         max_duration;    /* us of input media, 0: none */
    int64_t         max_output;      /* bytes, 0: none */
    int64_t         max_frames;      /* video frames decoded or encoded,
                                        0: VCONV_MAX_FRAMES */
    int             max_streams;     /* 0: 32 */
    int64_t         probesize;       /* bytes, 0: 5 MB */
    int             codec_threads;   /* 0: libav's auto */
    const char     *input_formats;   /* comma list, NULL: the default */
    /*
     * "key=value:key=value" for the demuxer, given before the core's own
     * options so that none of those can be undone.  vconv-cli's
     * --demux-opt only: the tests switch libav's own defences off with it
     * (mov's enable_drefs, concat's safe) to show that the core's alone
     * still hold.
     */
    const char     *demuxer_options;
} vconv_limits_t;


typedef struct {
    char            format[32];      /* demuxer short name */
    double          duration;        /* seconds, -1 if unknown */
    int             streams;
    int             width;           /* of the chosen video, 0 if none */
    int             height;
    char            vcodec[32];      /* "" if none */
    char            acodec[32];
} vconv_input_info_t;


/*
 * One output of a list of formats (spec->nouts > 1): where it goes, set
 * by the caller as output_path and output_fd are for one output; and
 * what was written.
 */
typedef struct {
    const char            *path;         /* the CLI's; NULL: fd */
    int                    fd;
    int64_t                bytes;
    double                 duration;     /* seconds */
    int                    width;        /* of its video, 0: none */
    int                    height;
    int                    skipped;      /* an hls rung above the input */
} vconv_output_t;


typedef struct vconv_transcode_s  vconv_transcode_t;

struct vconv_transcode_s {
    /* set by the caller */
    const vconv_spec_t    *spec;     /* finished by vconv_spec_finish() */
    const vconv_limits_t  *limits;

    int                  (*read)(void *opaque, uint8_t *buf, int size);
    int64_t              (*seek)(void *opaque, int64_t offset, int whence);
    void                  *io_opaque;

    /*
     * The output: written through output_fd (the caller's, kept open;
     * the core writes through dups of it), or, when output_path is set,
     * through a file the core opens at that path (the CLI).
     */
    const char            *output_path;
    int                    output_fd;

    /*
     * Where the output starts in that file; the bytes before it stay
     * (vconv_target.c keeps an earlier pass's output there).  0 else.
     */
    int64_t                output_base;

    /*
     * A list of formats: spec->nouts outputs, in the spec's order, each
     * its own file (output_path and output_fd are then unused).  The
     * results above (output_bytes, output_duration) are the first one's.
     */
    vconv_output_t        *outputs;
    int                    growing;      /* the input is still arriving */

    /*
     * Callbacks, all optional, all called on the transcoding thread.
     * interrupt() is polled between packets and inside blocking I/O; a
     * nonzero vconv_err_e return (VCONV_E_CANCELED, VCONV_E_STALLED) ends
     * the job with that code.
     */
    void                 (*probed)(void *data, const vconv_input_info_t *in);
    void                 (*progress)(void *data, double fraction);
    int                  (*interrupt)(void *data);
    void                  *data;

    /* vconv_target.c's, while it runs the passes of a target_size job */
    void                  *target;

    /* results */
    vconv_input_info_t     input;
    int64_t                output_bytes;
    double                 output_duration;  /* seconds */
    int64_t                damaged_packets;  /* skipped, the job went on */
    int                    passes;           /* target_size: 1 to 3 */
    vconv_sprite_t         sprite;           /* format sprite's grid */
    vconv_error_t          err;
};


/*
 * Runs the whole conversion; VCONV_OK or VCONV_ERROR with tc->err set.
 * On error the output path may hold a partial file: the caller removes it.
 * Thread-safe: every context is the job's own.
 */
int vconv_transcode(vconv_transcode_t *tc);


/*
 * libav logging: installs one process-wide av_log callback that hands
 * each line to handler with the job id of the calling thread (set by
 * vconv_log_job() on that thread, "" if none).  handler must be
 * thread-safe.  level is an AV_LOG_* value.
 */
typedef void (*vconv_log_handler_pt)(int level, const char *job,
    const char *msg);

void vconv_log_init(vconv_log_handler_pt handler, int max_level);
void vconv_log_job(const char *job);


#endif /* _VCONV_TRANSCODE_H_INCLUDED_ */
