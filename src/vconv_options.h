/*
 * vconv: output formats, presets, and the option parser that turns the
 * contract's key/value options into a validated conversion spec.
 */

#ifndef _VCONV_OPTIONS_H_INCLUDED_
#define _VCONV_OPTIONS_H_INCLUDED_


#include "vconv.h"


/* a list of formats: at most this many outputs, and its options' bytes */
#define VCONV_MAX_OUTPUTS  8
#define VCONV_SPEC_REC     1024

/* hls: at most this many rungs, a key frame (a segment) every this */
#define VCONV_HLS_RUNGS    4
#define VCONV_HLS_SEGMENT  4000000
/*
 * in vconv_spec_finish()'s allowed_formats: hls may be asked (the CLI's
 * until the server stores and serves its folder)
 */
#define VCONV_FMT_HLS_OK   0x80000000u


typedef enum {
    VCONV_FMT_MP4 = 0,
    VCONV_FMT_WEBM,
    VCONV_FMT_MKV,
    VCONV_FMT_MOV,
    VCONV_FMT_GIF,
    VCONV_FMT_WEBP,
    VCONV_FMT_MP3,
    VCONV_FMT_M4A,
    VCONV_FMT_OPUS,
    VCONV_FMT_OGG,
    VCONV_FMT_WAV,
    VCONV_FMT_FLAC,
    VCONV_FMT_JPG,
    VCONV_FMT_PNG,
    VCONV_FMT_INFO,
    VCONV_FMT_SPRITE,
    VCONV_FMT_COUNT
} vconv_format_e;

#define VCONV_FMT_ALL  ((1u << VCONV_FMT_COUNT) - 1)


typedef enum {
    VCONV_KIND_VIDEO = 0,     /* moving picture, audio optional */
    VCONV_KIND_ANIMATION,     /* gif, webp: moving picture, no audio */
    VCONV_KIND_AUDIO,
    VCONV_KIND_IMAGE,         /* one frame */
    VCONV_KIND_INFO,          /* the input's facts as JSON, no decoding */
    VCONV_KIND_SPRITE         /* a JPEG grid of thumbnails (+ its VTT) */
} vconv_kind_e;


typedef struct {
    const char     *name;        /* option value: "mp4" */
    const char     *ext;         /* file extension: "mp4" */
    const char     *mime;        /* Content-Type: "video/mp4" */
    const char     *muxer;       /* libavformat muxer name: "mp4" */
    vconv_kind_e    kind;
    const char     *vcodec;      /* default video encoder or NULL */
    const char     *acodec;      /* default audio encoder or NULL */
    const char     *vcodecs;     /* allowed user vcodec values, "h264,hevc" */
    const char     *acodecs;     /* allowed user acodec values */
} vconv_format_t;


/* an AVOption set on an encoder where it is opened, by name */
typedef struct {
    const char     *name;
    const char     *value;
} vconv_encoder_opt_t;


/*
 * A codec a user may name (vcodec, acodec), with what the option parser
 * needs to know of it and how vconv_encode.c tunes its encoder.
 */
typedef struct {
    const char                 *name;       /* option value: "h264" */
    const char                 *encoder;    /* libav encoder, NULL: copy */
    int                         video;

    /* the spec's defaults and checks (vconv_options.c) */
    int                         crf_max;    /* top of its CRF scale, 0: none */
    int                         crf;        /* default CRF */
    int                         crf_q1;     /* quality 1 maps to this CRF, */
    int                         crf_span;   /* quality 100 to crf_q1 - this */
    int                         quality;    /* takes quality, no CRF */
    int64_t                     abr;        /* default audio bitrate */
    int                         lossless;
    int                         rate;       /* its one rate for any input */

    /* the encoder's tuning (vconv_encode.c) */
    int                         qscale;     /* fixed quantizer, 0: none */
    int64_t                     cq_bitrate; /* CRF caps quality under it */
    const vconv_encoder_opt_t  *opts;       /* ends with a NULL name */
} vconv_codec_t;


/* The defaults when no option changes them; the presets per format. */
typedef struct {
    vconv_format_e  format;

    /* video; 0 or -1 mean "not set" as noted */
    int             width;          /* 0: from input (or preset max) */
    int             height;         /* 0: from input */
    int             upscale;        /* 1: may exceed input size */
    int             fps_num;        /* 0: keep input rate */
    int             fps_den;
    int             crf;            /* -1: encoder has no CRF */
    int64_t         video_bitrate;  /* bit/s, 0: CRF/quality mode */
    char            vencoder[32];   /* libav encoder name, "" for none */
    int             vcopy;          /* 1: remux video packets */
    int             gif_max_width;  /* gif/webp default bound, 0: none */

    /* audio */
    int             audio;          /* 0: drop audio */
    int64_t         audio_bitrate;  /* bit/s, 0: encoder default/lossless */
    char            aencoder[32];
    int             acopy;
    int             sample_rate;    /* 0: keep (if encoder takes it) */
    int             channels;       /* 0: keep, capped at 2 */

    /* time, in microseconds */
    int64_t         start;          /* 0: from the beginning */
    int64_t         duration;       /* 0: to the end */
    int             start_set;      /* image formats: 1 if start given */

    /* which options the user set, to tell preset values from asked ones */
    unsigned        set;

    /*
     * quality 1-100 as asked, 0: not set.  Encoders with a CRF get it
     * mapped into crf; mjpeg and libwebp_anim (no CRF) take it from here.
     */
    int             quality;

    /* hdr=keep: HDR stays HDR where the codec carries 10 bits */
    int             hdr_keep;
    /* metadata: VCONV_META_* */
    int             metadata;
    /* target_size: the output's bytes at most this, 0: no target */
    int64_t         target_size;
    /*
     * An HLS rung: a key frame at every multiple of this many us of
     * output time (the same frames in every rung), fragmented MP4
     * (a fragment per key frame), no faststart; 0: the encoder's GOP
     */
    int64_t         keyint;

    /*
     * A list of formats (format=mp4,webm,jpg, issue 13): the outputs in
     * order, 0 for the one output of before.  The fields above are then
     * the first output's; vconv_spec_output() makes each one's spec by
     * replaying the request's options, kept in rec as given (a byte of
     * key length, two of value length, key, value), with "NAME.key"
     * options for that output only.
     */
    int             nouts;
    unsigned char   outs[VCONV_MAX_OUTPUTS];     /* vconv_format_e */
    int             prefixed;                    /* rec has NAME.key */
    /*
     * hls in the list: its rungs are outputs (mp4 of their height,
     * rung[i] the height, 0 for other outputs), expanded from hls.heights
     * by vconv_spec_finish(); a rung above the input is dropped when the
     * job runs (at least one stays)
     */
    int             hls;
    int             nheights;
    unsigned short  heights[VCONV_HLS_RUNGS];
    unsigned short  rung[VCONV_MAX_OUTPUTS];
    unsigned        rec_len;
    char            rec[VCONV_SPEC_REC];

    /* sprite: us between thumbnails, tiles a row, tile width; 0: auto */
    int64_t         sprite_interval;
    int             sprite_columns;
    int             sprite_width;
} vconv_spec_t;


/*
 * The spec of output i (0 .. nouts - 1) of a finished list spec: the
 * plain options and those prefixed with its name, finished for its
 * format.  An option prefixed for an output wins over a plain one of
 * the same kind (webm.height over height).
 */
int vconv_spec_output(const vconv_spec_t *spec, int i, vconv_spec_t *out,
    unsigned allowed_formats, vconv_error_t *err);


/* what metadata=... keeps of the input's tags */
#define VCONV_META_DEFAULT   0     /* descriptive tags, no location */
#define VCONV_META_KEEP      1     /* every tag, location too */
#define VCONV_META_STRIP     2     /* nothing but technical fields */


/* bits of vconv_spec_t.set */
#define VCONV_SET_FORMAT     0x0001
#define VCONV_SET_WIDTH      0x0002
#define VCONV_SET_HEIGHT     0x0004
#define VCONV_SET_FPS        0x0008
#define VCONV_SET_START      0x0010
#define VCONV_SET_DURATION   0x0020
#define VCONV_SET_QUALITY    0x0040
#define VCONV_SET_CRF        0x0080
#define VCONV_SET_VBITRATE   0x0100
#define VCONV_SET_ABITRATE   0x0200
#define VCONV_SET_AUDIO      0x0400
#define VCONV_SET_VCODEC     0x0800
#define VCONV_SET_ACODEC     0x1000
#define VCONV_SET_UPSCALE    0x2000
#define VCONV_SET_TARGET     0x40000
#define VCONV_SET_HDR        0x100000
#define VCONV_SET_METADATA   0x200000
#define VCONV_SET_SPRITE_INTERVAL  0x400000
#define VCONV_SET_SPRITE_COLUMNS   0x800000
#define VCONV_SET_SPRITE_WIDTH     0x1000000
#define VCONV_SET_SPRITE     (VCONV_SET_SPRITE_INTERVAL                       \
                              | VCONV_SET_SPRITE_COLUMNS                     \
                              | VCONV_SET_SPRITE_WIDTH)


const vconv_format_t *vconv_format(vconv_format_e fmt);

/* the codec whose libav encoder this is; NULL for none of ours */
const vconv_codec_t *vconv_codec_by_encoder(const char *encoder);

/* -1 when the name is no format of ours */
int vconv_format_by_name(const char *name, size_t len);

/*
 * Parses a space- or comma-separated list of format names into a bit mask
 * (for vconv_formats); returns VCONV_ERROR with err set on a bad name.
 */
int vconv_formats_mask(const char *list, size_t len, unsigned *mask,
    vconv_error_t *err);

/* the VCONV_SET_* bit of an option name, 0 if none */
unsigned vconv_option_bit(const char *name, size_t len);

/*
 * 1 if a preset's option (its bit) gives way to what a request set: the
 * same option, another way to set the rate (quality, crf, video_bitrate,
 * target_size), the picture size as a whole (width, height), the codecs
 * of another format, the sound's options when audio is asked or dropped.
 */
int vconv_option_overridden(unsigned set, unsigned bit);

/* Starts a spec: format mp4 preset, nothing set. */
void vconv_spec_init(vconv_spec_t *spec);

/*
 * Sets one option from the request (query or form field).  Key and value
 * are raw bytes (already URL-decoded), not NUL-terminated.  Unknown keys,
 * non-numbers, out-of-range values, bad codec names and repeated keys
 * fail with a precise code and message.
 */
int vconv_spec_set(vconv_spec_t *spec, const char *key, size_t klen,
    const char *val, size_t vlen, vconv_error_t *err);

/*
 * Applies the format's preset to what the user did not set and checks the
 * options against each other and against the allowed formats mask.
 */
int vconv_spec_finish(vconv_spec_t *spec, unsigned allowed_formats,
    vconv_error_t *err);

/*
 * Writes the JSON body of GET /api/presets for the allowed formats:
 * {"formats":[{"name","ext","mime","kind","vcodecs":[..],"acodecs":[..],
 * "defaults":{..}}..],"options":{name:{"type","min","max"}..}}.
 * Returns the length it needs (like snprintf); writes at most len bytes.
 */
size_t vconv_presets_json(char *buf, size_t len, unsigned allowed_formats);


#endif /* _VCONV_OPTIONS_H_INCLUDED_ */
