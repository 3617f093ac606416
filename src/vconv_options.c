/*
 * vconv: output formats, per-format presets, and the option parser.
 *
 * Values from the request are checked here byte by byte: only numbers we
 * parsed ourselves and names from our own tables ever reach libav, never
 * the user's text, so no value can smuggle libav option syntax.
 */

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>

#include "vconv_options.h"


#define VCONV_ECHO_MAX      64          /* a user value in a message */
#define VCONV_HLS_PENDING   0xffff      /* hls's place, rungs to come */
#define VCONV_NUM_MAX       32          /* longest numeric value we parse */
#define VCONV_TIME_MAX      86400000000LL   /* 24 h in microseconds */

#define VCONV_WIDTH_MIN     16
#define VCONV_WIDTH_MAX     7680
#define VCONV_HEIGHT_MIN    16
#define VCONV_HEIGHT_MAX    4320
#define VCONV_VBR_MIN       8000
#define VCONV_VBR_MAX       100000000
#define VCONV_ABR_MIN       8000
#define VCONV_ABR_MAX       512000
#define VCONV_CRF_MAX       63
#define VCONV_ANIM_FPS      12
#define VCONV_ANIM_WIDTH    480
#define VCONV_VP8_CQ_BITRATE  4000000
#define VCONV_TARGET_MIN    10240
#define VCONV_TARGET_MAX    107374182400LL


/*
 * How each encoder is tuned where it is opened (vconv_encode.c), set on
 * its codec context or, failing that, on its private options.
 */

/* the slower presets cost far more time than they save bytes */
static const vconv_encoder_opt_t  vconv_x26x_opts[] = {
    { "preset", "veryfast" },
    { NULL, NULL }
};

/*
 * The "good" modes of libvpx and libaom are many times slower than x264
 * veryfast; realtime keeps VP9 within a few times its speed.
 */
static const vconv_encoder_opt_t  vconv_vpx_opts[] = {
    { "deadline", "realtime" },
    { "cpu-used", "8" },
    { "row-mt", "1" },
    { NULL, NULL }
};

/* VP8 has no row-mt */
static const vconv_encoder_opt_t  vconv_vp8_opts[] = {
    { "deadline", "realtime" },
    { "cpu-used", "8" },
    { NULL, NULL }
};

/* libaom takes the same speed options; its realtime switch is "usage" */
static const vconv_encoder_opt_t  vconv_aom_opts[] = {
    { "cpu-used", "8" },
    { "row-mt", "1" },
    { NULL, NULL }
};

/* full-range YUV is what JPEG means; libav calls that unofficial */
static const vconv_encoder_opt_t  vconv_mjpeg_opts[] = {
    { "color_range", "pc" },
    { "strict", "unofficial" },
    { NULL, NULL }
};


/*
 * The codecs a user may name.  crf, abr and rate are the defaults when
 * the codec is picked in a format whose preset uses another one.  The
 * quality scale maps 1-100 (100 best) linearly onto a CRF range that
 * stays useful for web delivery: x264 45..12 (q 67 is x264's own default
 * 23), x265 the same +5 (its CRF 28 looks like x264's 23), libvpx and
 * libaom 60..15 (q 64 is about VP9's usual 32).  The lossless ends (CRF
 * 0) make files far too big to be anyone's "best quality".
 */
static const vconv_codec_t  vconv_codecs[] = {
    { .name = "h264", .encoder = "libx264", .video = 1,
      .crf_max = 51, .crf = 23, .crf_q1 = 45, .crf_span = 33,
      .opts = vconv_x26x_opts },
    { .name = "hevc", .encoder = "libx265", .video = 1,
      .crf_max = 51, .crf = 28, .crf_q1 = 50, .crf_span = 33,
      .opts = vconv_x26x_opts },
    /*
     * VP8 has no pure CRF mode: its CRF is constrained quality under a
     * bitrate, which libvpx otherwise sets to a blurry 256k.
     */
    { .name = "vp8", .encoder = "libvpx", .video = 1,
      .crf_max = 63, .crf = 12, .crf_q1 = 60, .crf_span = 45,
      .cq_bitrate = VCONV_VP8_CQ_BITRATE, .opts = vconv_vp8_opts },
    { .name = "vp9", .encoder = "libvpx-vp9", .video = 1,
      .crf_max = 63, .crf = 32, .crf_q1 = 60, .crf_span = 45,
      .opts = vconv_vpx_opts },
    { .name = "av1", .encoder = "libaom-av1", .video = 1,
      .crf_max = 63, .crf = 34, .crf_q1 = 60, .crf_span = 45,
      .opts = vconv_aom_opts },
    { .name = "gif", .encoder = "gif", .video = 1 },
    { .name = "webp", .encoder = "libwebp_anim", .video = 1, .quality = 1 },
    /* q 3 of 2..31: what people expect of a "good" JPEG */
    { .name = "mjpeg", .encoder = "mjpeg", .video = 1, .quality = 1,
      .qscale = 3, .opts = vconv_mjpeg_opts },
    { .name = "png", .encoder = "png", .video = 1, .lossless = 1 },
    { .name = "copy", .encoder = NULL, .video = 1 },

    { .name = "aac", .encoder = "aac", .abr = 128000 },
    { .name = "mp3", .encoder = "libmp3lame", .abr = 192000 },
    /* 48 kHz: the only rate libopus takes for every input */
    { .name = "opus", .encoder = "libopus", .abr = 96000, .rate = 48000 },
    { .name = "vorbis", .encoder = "libvorbis", .abr = 160000 },
    { .name = "flac", .encoder = "flac", .lossless = 1 },
    { .name = "pcm_s16le", .encoder = "pcm_s16le", .lossless = 1 },
    { .name = "copy", .encoder = NULL }
};

#define VCONV_NCODECS  (sizeof(vconv_codecs) / sizeof(vconv_codecs[0]))


/*
 * jpg and png go through image2pipe: it writes the one packet as is and,
 * unlike image2, never reads the output name as a numbered pattern.
 * m4a uses the ipod muxer, as ffmpeg does for that extension.
 */
static const vconv_format_t  vconv_formats[VCONV_FMT_COUNT] = {
    { "mp4", "mp4", "video/mp4", "mp4", VCONV_KIND_VIDEO,
      "libx264", "aac", "h264,hevc,av1,copy", "aac,mp3,opus,copy" },
    { "webm", "webm", "video/webm", "webm", VCONV_KIND_VIDEO,
      "libvpx-vp9", "libopus", "vp8,vp9,av1,copy", "opus,vorbis,copy" },
    { "mkv", "mkv", "video/x-matroska", "matroska", VCONV_KIND_VIDEO,
      "libx264", "aac", "h264,hevc,vp8,vp9,av1,copy",
      "aac,opus,vorbis,flac,mp3,copy" },
    { "mov", "mov", "video/quicktime", "mov", VCONV_KIND_VIDEO,
      "libx264", "aac", "h264,hevc,copy", "aac,mp3,copy" },
    { "gif", "gif", "image/gif", "gif", VCONV_KIND_ANIMATION,
      "gif", NULL, "gif", "" },
    { "webp", "webp", "image/webp", "webp", VCONV_KIND_ANIMATION,
      "libwebp_anim", NULL, "webp", "" },
    { "mp3", "mp3", "audio/mpeg", "mp3", VCONV_KIND_AUDIO,
      NULL, "libmp3lame", "", "mp3" },
    { "m4a", "m4a", "audio/mp4", "ipod", VCONV_KIND_AUDIO,
      NULL, "aac", "", "aac,copy" },
    { "opus", "opus", "audio/ogg", "opus", VCONV_KIND_AUDIO,
      NULL, "libopus", "", "opus" },
    { "ogg", "ogg", "audio/ogg", "ogg", VCONV_KIND_AUDIO,
      NULL, "libvorbis", "", "vorbis,opus" },
    { "wav", "wav", "audio/wav", "wav", VCONV_KIND_AUDIO,
      NULL, "pcm_s16le", "", "pcm_s16le" },
    { "flac", "flac", "audio/flac", "flac", VCONV_KIND_AUDIO,
      NULL, "flac", "", "flac" },
    { "jpg", "jpg", "image/jpeg", "image2pipe", VCONV_KIND_IMAGE,
      "mjpeg", NULL, "mjpeg", "" },
    { "png", "png", "image/png", "image2pipe", VCONV_KIND_IMAGE,
      "png", NULL, "png", "" },
    { "info", "json", "application/json", "", VCONV_KIND_INFO,
      NULL, NULL, "", "" },
    { "sprite", "jpg", "image/jpeg", "image2pipe", VCONV_KIND_SPRITE,
      "mjpeg", NULL, "mjpeg", "" }
};


/* preset values that differ from the codec's own defaults */
typedef struct {
    int          crf;           /* 0: the codec's */
    int64_t      abr;           /* 0: the codec's */
} vconv_preset_t;


static const vconv_preset_t  vconv_presets[VCONV_FMT_COUNT] = {
    [VCONV_FMT_M4A]  = { 0, 192000 },
    [VCONV_FMT_OPUS] = { 0, 128000 },
};


typedef int (*vconv_opt_handler_pt)(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);


typedef struct {
    const char            *name;
    unsigned               bit;
    vconv_opt_handler_pt   handler;
    const char            *type;    /* for GET /api/presets */
    const char            *min;
    const char            *max;
} vconv_option_t;


static int vconv_opt_format(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_width(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_height(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_upscale(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_fps(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_start(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_duration(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_quality(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_crf(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_vbitrate(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_abitrate(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_audio(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_vcodec(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_acodec(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_hdr(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_metadata(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_target(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_opt_sprite(vconv_spec_t *spec, const char *name,
    const char *val, size_t vlen, vconv_error_t *err);
static int vconv_spec_check_target(const vconv_spec_t *spec,
    const vconv_format_t *f, const vconv_codec_t *ac, vconv_error_t *err);
static const char *vconv_first_option(unsigned bits);

static int vconv_spec_list(vconv_spec_t *spec, const char *val, size_t vlen,
    vconv_error_t *err);
static int vconv_spec_prefixed(vconv_spec_t *spec, const char *key,
    size_t klen, const char *val, size_t vlen, vconv_error_t *err);
static int vconv_spec_record(vconv_spec_t *spec, const char *key,
    size_t klen, const char *val, size_t vlen, vconv_error_t *err);
static int vconv_spec_finish_list(vconv_spec_t *spec,
    unsigned allowed_formats, vconv_error_t *err);
static unsigned vconv_list_skips(vconv_kind_e kind);
static int vconv_spec_names(const vconv_spec_t *spec, const char *name,
    size_t len);
static int vconv_spec_heights(vconv_spec_t *spec, const char *val,
    size_t vlen, vconv_error_t *err);
static int vconv_spec_hls(vconv_spec_t *spec, unsigned allowed_formats,
    vconv_error_t *err);
static int vconv_spec_output_error(vconv_error_t *err,
    const vconv_error_t *e, const char *name, const vconv_spec_t *spec);
static int vconv_spec_format(vconv_spec_t *spec, unsigned allowed_formats,
    vconv_error_t *err);
static int vconv_spec_check(const vconv_spec_t *spec,
    const vconv_format_t *f, vconv_error_t *err);
static int vconv_spec_check_codecs(const vconv_spec_t *spec,
    const vconv_format_t *f, const vconv_codec_t *vc,
    const vconv_codec_t *ac, vconv_error_t *err);
static void vconv_spec_video_defaults(vconv_spec_t *spec,
    const vconv_format_t *f, const vconv_codec_t *vc);
static void vconv_spec_audio_defaults(vconv_spec_t *spec,
    const vconv_format_t *f, const vconv_codec_t *ac);


static const vconv_option_t  vconv_options[] = {
    { "format", VCONV_SET_FORMAT, vconv_opt_format, "enum", NULL, NULL },
    { "width", VCONV_SET_WIDTH, vconv_opt_width, "integer", "16", "7680" },
    { "height", VCONV_SET_HEIGHT, vconv_opt_height, "integer", "16",
      "4320" },
    { "upscale", VCONV_SET_UPSCALE, vconv_opt_upscale, "boolean", "0",
      "1" },
    { "fps", VCONV_SET_FPS, vconv_opt_fps, "rate", "0.1", "120" },
    { "start", VCONV_SET_START, vconv_opt_start, "time", "0", "86400" },
    { "duration", VCONV_SET_DURATION, vconv_opt_duration, "time", "0.000001",
      "86400" },
    { "quality", VCONV_SET_QUALITY, vconv_opt_quality, "integer", "1",
      "100" },
    { "crf", VCONV_SET_CRF, vconv_opt_crf, "integer", "0", "63" },
    { "video_bitrate", VCONV_SET_VBITRATE, vconv_opt_vbitrate, "bitrate",
      "8000", "100000000" },
    { "audio_bitrate", VCONV_SET_ABITRATE, vconv_opt_abitrate, "bitrate",
      "8000", "512000" },
    { "audio", VCONV_SET_AUDIO, vconv_opt_audio, "boolean", "0", "1" },
    { "vcodec", VCONV_SET_VCODEC, vconv_opt_vcodec, "enum", NULL, NULL },
    { "acodec", VCONV_SET_ACODEC, vconv_opt_acodec, "enum", NULL, NULL },
    { "hdr", VCONV_SET_HDR, vconv_opt_hdr, "enum", NULL, NULL },
    { "metadata", VCONV_SET_METADATA, vconv_opt_metadata, "enum", NULL,
      NULL },
    { "target_size", VCONV_SET_TARGET, vconv_opt_target, "size",
      "10240", "107374182400" },
    { "sprite.interval", VCONV_SET_SPRITE_INTERVAL, vconv_opt_sprite, "time",
      "0.1", "3600" },
    { "sprite.columns", VCONV_SET_SPRITE_COLUMNS, vconv_opt_sprite,
      "integer", "1", "50" },
    { "sprite.width", VCONV_SET_SPRITE_WIDTH, vconv_opt_sprite, "integer",
      "16", "640" }
};

#define VCONV_NOPTIONS  (sizeof(vconv_options) / sizeof(vconv_options[0]))


const vconv_format_t *
vconv_format(vconv_format_e fmt)
{
    if ((unsigned) fmt >= VCONV_FMT_COUNT) {
        return NULL;
    }

    return &vconv_formats[fmt];
}


int
vconv_format_by_name(const char *name, size_t len)
{
    int  i;

    for (i = 0; i < VCONV_FMT_COUNT; i++) {
        if (strlen(vconv_formats[i].name) == len
            && memcmp(vconv_formats[i].name, name, len) == 0)
        {
            return i;
        }
    }

    return -1;
}


/* the value as shown in a message: at most VCONV_ECHO_MAX whole chars */
static int
vconv_echo_len(const char *val, size_t vlen)
{
    if (vlen <= VCONV_ECHO_MAX) {
        return (int) vlen;
    }

    return (int) vconv_utf8_trim(val, VCONV_ECHO_MAX);
}


static int
vconv_is_token(const char *s, size_t len, int upper)
{
    size_t  i;

    if (len == 0) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
            || s[i] == '_' || (upper && s[i] >= 'A' && s[i] <= 'Z'))
        {
            continue;
        }

        return 0;
    }

    return 1;
}


/* 1 if name is one of the comma-separated list's items */
static int
vconv_list_has(const char *list, const char *name, size_t len)
{
    const char  *p, *end;

    p = list;

    while (*p) {
        end = strchr(p, ',');
        if (end == NULL) {
            end = p + strlen(p);
        }

        if ((size_t) (end - p) == len && memcmp(p, name, len) == 0) {
            return 1;
        }

        p = *end ? end + 1 : end;
    }

    return 0;
}


static const vconv_codec_t *
vconv_codec_by_name(const char *name, size_t len, int video)
{
    size_t  i;

    for (i = 0; i < VCONV_NCODECS; i++) {
        if (vconv_codecs[i].video == video
            && strlen(vconv_codecs[i].name) == len
            && memcmp(vconv_codecs[i].name, name, len) == 0)
        {
            return &vconv_codecs[i];
        }
    }

    return NULL;
}


const vconv_codec_t *
vconv_codec_by_encoder(const char *encoder)
{
    size_t  i;

    for (i = 0; i < VCONV_NCODECS; i++) {
        if (vconv_codecs[i].encoder != NULL
            && strcmp(vconv_codecs[i].encoder, encoder) == 0)
        {
            return &vconv_codecs[i];
        }
    }

    return NULL;
}


/* a libav built without one of our encoders must not offer it */
static int
vconv_codec_available(const vconv_codec_t *c)
{
    if (c->encoder == NULL) {
        return 1;
    }

    return avcodec_find_encoder_by_name(c->encoder) != NULL;
}


int
vconv_formats_mask(const char *list, size_t len, unsigned *mask,
    vconv_error_t *err)
{
    int          fmt;
    size_t       i, start;
    unsigned     m;
    const char  *name;

    m = 0;
    i = 0;

    while (i < len) {
        if (list[i] == ' ' || list[i] == ',' || list[i] == '\t') {
            i++;
            continue;
        }

        start = i;

        while (i < len && list[i] != ' ' && list[i] != ',' && list[i] != '\t')
        {
            i++;
        }

        name = list + start;

        if (i - start == 3 && memcmp(name, "all", 3) == 0) {
            m |= VCONV_FMT_ALL;
            continue;
        }

        fmt = vconv_format_by_name(name, i - start);

        if (fmt < 0) {
            return vconv_error_set(err, VCONV_E_UNKNOWN_FORMAT,
                                   "unknown format '%.*s'",
                                   vconv_echo_len(name, i - start), name);
        }

        m |= 1u << fmt;
    }

    if (m == 0) {
        return vconv_error_set(err, VCONV_E_INVALID_VALUE,
                               "the list of formats is empty");
    }

    *mask = m;

    return VCONV_OK;
}


void
vconv_spec_init(vconv_spec_t *spec)
{
    vconv_error_t  err;

    memset(spec, 0, sizeof(vconv_spec_t));

    spec->format = VCONV_FMT_MP4;
    spec->crf = -1;
    spec->audio = 1;

    /* the mp4 preset, so that an unfinished spec is still a sane one */
    (void) vconv_spec_finish(spec, 1u << VCONV_FMT_MP4, &err);
    spec->set = 0;
}


int
vconv_spec_set(vconv_spec_t *spec, const char *key, size_t klen,
    const char *val, size_t vlen, vconv_error_t *err)
{
    size_t                 i;
    const vconv_option_t  *opt;

    if (klen == 6 && memcmp(key, "format", 6) == 0
        && (memchr(val, ',', vlen) != NULL
            || (vlen == 3 && memcmp(val, "hls", 3) == 0)))
    {
        return vconv_spec_list(spec, val, vlen, err);
    }

    for (i = 0; i < VCONV_NOPTIONS; i++) {
        opt = &vconv_options[i];

        if (strlen(opt->name) == klen && memcmp(opt->name, key, klen) == 0) {
            break;
        }
    }

    /* "sprite.interval" is an option's own name, "webm.height" a prefix */
    if (i == VCONV_NOPTIONS && memchr(key, '.', klen) != NULL) {
        return vconv_spec_prefixed(spec, key, klen, val, vlen, err);
    }

    for ( /* void */ ; i < VCONV_NOPTIONS; i++) {
        opt = &vconv_options[i];

        if (strlen(opt->name) != klen || memcmp(opt->name, key, klen) != 0) {
            continue;
        }

        if (spec->set & opt->bit) {
            return vconv_error_set(err, VCONV_E_DUPLICATE_OPTION,
                                   "option '%s' is given more than once",
                                   opt->name);
        }

        if (opt->handler(spec, opt->name, val, vlen, err) != VCONV_OK) {
            return VCONV_ERROR;
        }

        spec->set |= opt->bit;

        return vconv_spec_record(spec, key, klen, val, vlen, err);
    }

    return vconv_error_set(err, VCONV_E_UNKNOWN_OPTION,
                           "unknown option '%.*s'",
                           vconv_echo_len(key, klen), key);
}


unsigned
vconv_option_bit(const char *name, size_t len)
{
    size_t  i;

    for (i = 0; i < VCONV_NOPTIONS; i++) {
        if (strlen(vconv_options[i].name) == len
            && memcmp(vconv_options[i].name, name, len) == 0)
        {
            return vconv_options[i].bit;
        }
    }

    return 0;
}


#define VCONV_SET_RATE                                                       \
    (VCONV_SET_QUALITY | VCONV_SET_CRF | VCONV_SET_VBITRATE | VCONV_SET_TARGET)
#define VCONV_SET_SIZE       (VCONV_SET_WIDTH | VCONV_SET_HEIGHT)
#define VCONV_SET_SOUND      (VCONV_SET_AUDIO | VCONV_SET_ABITRATE            \
                              | VCONV_SET_ACODEC)


int
vconv_option_overridden(unsigned set, unsigned bit)
{
    if (set & bit) {
        return 1;
    }

    if ((bit & VCONV_SET_RATE) && (set & VCONV_SET_RATE)) {
        return 1;
    }

    if ((bit & VCONV_SET_SIZE) && (set & VCONV_SET_SIZE)) {
        return 1;
    }

    if ((bit & (VCONV_SET_VCODEC | VCONV_SET_ACODEC))
        && (set & VCONV_SET_FORMAT))
    {
        return 1;
    }

    return (bit & VCONV_SET_SOUND) && (set & VCONV_SET_SOUND);
}


static int
vconv_not_a_number(const char *name, const char *what, const char *val,
    size_t vlen, vconv_error_t *err)
{
    return vconv_error_set(err, VCONV_E_NOT_A_NUMBER,
                           "option '%s': '%.*s' is not %s", name,
                           vconv_echo_len(val, vlen), val, what);
}


static int
vconv_out_of_range(const char *name, const char *val, size_t vlen,
    const char *min, const char *max, vconv_error_t *err)
{
    return vconv_error_set(err, VCONV_E_OUT_OF_RANGE,
                           "option '%s': %.*s is out of range (%s-%s)", name,
                           vconv_echo_len(val, vlen), val, min, max);
}


static const vconv_option_t *
vconv_option(const char *name)
{
    size_t  i;

    for (i = 0; i < VCONV_NOPTIONS; i++) {
        if (strcmp(vconv_options[i].name, name) == 0) {
            return &vconv_options[i];
        }
    }

    return NULL;
}


static int
vconv_range_error(const char *name, const char *val, size_t vlen,
    vconv_error_t *err)
{
    const vconv_option_t  *opt;

    opt = vconv_option(name);

    return vconv_out_of_range(name, val, vlen, opt->min, opt->max, err);
}


/*
 * Digits only, an optional leading '-' (so that "-5" is reported as out
 * of range rather than as garbage), and with frac an optional ".digits".
 * This refuses what strtod() would take on its own: spaces, '+', hex,
 * exponents, "inf", "nan".
 */
static int
vconv_is_decimal(const char *s, size_t len, int frac)
{
    size_t  i, digits;

    if (len == 0 || len > VCONV_NUM_MAX) {
        return 0;
    }

    i = 0;

    if (s[0] == '-') {
        i++;
    }

    for (digits = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        digits++;
    }

    if (digits == 0) {
        return 0;
    }

    if (i < len && s[i] == '.' && frac) {
        i++;

        for (digits = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            digits++;
        }

        if (digits == 0) {
            return 0;
        }
    }

    return i == len;
}


static int
vconv_parse_int(const char *name, const char *val, size_t vlen, long min,
    long max, long *out, vconv_error_t *err)
{
    char   tmp[VCONV_NUM_MAX + 1];
    char  *end;
    long   n;

    if (!vconv_is_decimal(val, vlen, 0)) {
        return vconv_not_a_number(name, "an integer", val, vlen, err);
    }

    memcpy(tmp, val, vlen);
    tmp[vlen] = '\0';

    errno = 0;
    n = strtol(tmp, &end, 10);

    if (*end != '\0') {
        return vconv_not_a_number(name, "an integer", val, vlen, err);
    }

    if (errno == ERANGE || n < min || n > max) {
        return vconv_range_error(name, val, vlen, err);
    }

    *out = n;

    return VCONV_OK;
}


static int
vconv_parse_double(const char *name, const char *val, size_t vlen,
    double *out, vconv_error_t *err)
{
    char    tmp[VCONV_NUM_MAX + 1];
    char   *end;
    double  d;

    if (!vconv_is_decimal(val, vlen, 1)) {
        return vconv_not_a_number(name, "a number", val, vlen, err);
    }

    memcpy(tmp, val, vlen);
    tmp[vlen] = '\0';

    errno = 0;
    d = strtod(tmp, &end);

    if (*end != '\0' || !isfinite(d)) {
        return vconv_not_a_number(name, "a number", val, vlen, err);
    }

    *out = d;

    return VCONV_OK;
}


static int
vconv_opt_format(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    int  fmt;

    if (!vconv_is_token(val, vlen, 1)) {
        return vconv_error_set(err, VCONV_E_INVALID_VALUE,
                               "option 'format': '%.*s' is not a format name",
                               vconv_echo_len(val, vlen), val);
    }

    fmt = vconv_format_by_name(val, vlen);

    if (fmt < 0) {
        return vconv_error_set(err, VCONV_E_UNKNOWN_FORMAT,
                               "option 'format': unknown format '%.*s'",
                               vconv_echo_len(val, vlen), val);
    }

    spec->format = fmt;

    return VCONV_OK;
}


static int
vconv_opt_width(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    long  n;

    if (vconv_parse_int(name, val, vlen, VCONV_WIDTH_MIN, VCONV_WIDTH_MAX, &n,
                        err)
        != VCONV_OK)
    {
        return VCONV_ERROR;
    }

    spec->width = (int) n;

    return VCONV_OK;
}


static int
vconv_opt_height(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    long  n;

    if (vconv_parse_int(name, val, vlen, VCONV_HEIGHT_MIN, VCONV_HEIGHT_MAX,
                        &n, err)
        != VCONV_OK)
    {
        return VCONV_ERROR;
    }

    spec->height = (int) n;

    return VCONV_OK;
}


static int
vconv_parse_bool(const char *name, const char *val, size_t vlen, int *out,
    vconv_error_t *err)
{
    if (vlen == 1 && (val[0] == '0' || val[0] == '1')) {
        *out = val[0] - '0';
        return VCONV_OK;
    }

    if (vconv_is_decimal(val, vlen, 0)) {
        return vconv_range_error(name, val, vlen, err);
    }

    return vconv_error_set(err, VCONV_E_INVALID_VALUE,
                           "option '%s': '%.*s' must be 0 or 1", name,
                           vconv_echo_len(val, vlen), val);
}


static int
vconv_opt_upscale(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    return vconv_parse_bool(name, val, vlen, &spec->upscale, err);
}


static int
vconv_opt_audio(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    return vconv_parse_bool(name, val, vlen, &spec->audio, err);
}


/* hdr=keep|tonemap */
static int
vconv_opt_hdr(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    if (vlen == 4 && memcmp(val, "keep", 4) == 0) {
        spec->hdr_keep = 1;
        return VCONV_OK;
    }

    if (vlen == 7 && memcmp(val, "tonemap", 7) == 0) {
        spec->hdr_keep = 0;
        return VCONV_OK;
    }

    return vconv_error_set(err, VCONV_E_INVALID_VALUE,
                           "option '%s': '%.*s' must be keep or tonemap",
                           name, vconv_echo_len(val, vlen), val);
}


/* metadata=keep|strip; without it: descriptive tags, no location */
static int
vconv_opt_metadata(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    if (vlen == 4 && memcmp(val, "keep", 4) == 0) {
        spec->metadata = VCONV_META_KEEP;
        return VCONV_OK;
    }

    if (vlen == 5 && memcmp(val, "strip", 5) == 0) {
        spec->metadata = VCONV_META_STRIP;
        return VCONV_OK;
    }

    return vconv_error_set(err, VCONV_E_INVALID_VALUE,
                           "option '%s': '%.*s' must be keep or strip",
                           name, vconv_echo_len(val, vlen), val);
}


static long
vconv_gcd(long a, long b)
{
    long  t;

    while (b != 0) {
        t = a % b;
        a = b;
        b = t;
    }

    return a;
}


static int
vconv_opt_fps(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    char         tmp[VCONV_NUM_MAX + 1];
    long         num, den, g, m;
    double       d;
    size_t       i, k;
    const char  *slash, *dot;

    slash = memchr(val, '/', vlen);

    if (slash != NULL) {
        i = slash - val;

        if (vlen > VCONV_NUM_MAX
            || !vconv_is_decimal(val, i, 0) || val[0] == '-'
            || !vconv_is_decimal(slash + 1, vlen - i - 1, 0)
            || slash[1] == '-')
        {
            return vconv_not_a_number(name, "a rate (30 or 30000/1001)", val,
                                      vlen, err);
        }

        /* the value is not NUL-terminated: strtol() reads a copy */
        memcpy(tmp, val, vlen);
        tmp[vlen] = '\0';

        num = strtol(tmp, NULL, 10);
        den = strtol(tmp + i + 1, NULL, 10);

        if (den <= 0 || num <= 0 || num > 1000000 || den > 1000000) {
            return vconv_range_error(name, val, vlen, err);
        }

        d = (double) num / den;

    } else {
        if (vconv_parse_double(name, val, vlen, &d, err) != VCONV_OK) {
            return VCONV_ERROR;
        }

        if (!(d >= 0.1 && d <= 120)) {
            return vconv_range_error(name, val, vlen, err);
        }

        /* "29.97" and friends are the NTSC rates, meant exactly */
        m = lround(d * 1.001);

        if ((m == 24 || m == 30 || m == 48 || m == 60 || m == 120)
            && fabs(d - m / 1.001) < 0.0015 && fabs(d - m) > 0.0015)
        {
            num = m * 1000;
            den = 1001;

        } else {
            /* at most six decimals: 0.1 .. 120 keeps num in range */
            dot = memchr(val, '.', vlen);
            k = dot ? vlen - (dot - val) - 1 : 0;

            if (k > 6) {
                k = 6;
            }

            for (den = 1; k > 0; k--) {
                den *= 10;
            }

            num = lround(d * den);
        }
    }

    if (!(d >= 0.1 && d <= 120)) {
        return vconv_range_error(name, val, vlen, err);
    }

    g = vconv_gcd(num, den);

    spec->fps_num = (int) (num / g);
    spec->fps_den = (int) (den / g);

    return VCONV_OK;
}


/* seconds as "12.5" or "[[hh:]mm:]ss[.frac]", into microseconds */
static int
vconv_parse_time(const char *name, const char *val, size_t vlen,
    int64_t *out, vconv_error_t *err)
{
    size_t   i, digits, fields;
    int64_t  part[3], us, scale;

    if (vlen > 0 && val[0] == '-' && vlen <= VCONV_NUM_MAX) {
        for (i = 1; i < vlen; i++) {
            if (!((val[i] >= '0' && val[i] <= '9') || val[i] == '.'
                  || val[i] == ':'))
            {
                break;
            }
        }

        if (i == vlen && vlen > 1) {
            return vconv_range_error(name, val, vlen, err);
        }
    }

    if (vlen == 0 || vlen > VCONV_NUM_MAX) {
        goto invalid;
    }

    i = 0;
    fields = 0;

    for ( ;; ) {
        part[fields] = 0;

        for (digits = 0; i < vlen && val[i] >= '0' && val[i] <= '9'; i++) {
            if (++digits > 12) {
                goto invalid;
            }

            part[fields] = part[fields] * 10 + (val[i] - '0');
        }

        if (digits == 0) {
            goto invalid;
        }

        fields++;

        if (i < vlen && val[i] == ':' && fields < 3) {
            i++;
            continue;
        }

        break;
    }

    us = 0;

    if (i < vlen && val[i] == '.') {
        i++;

        for (digits = 0, scale = 100000;
             i < vlen && val[i] >= '0' && val[i] <= '9';
             i++, digits++)
        {
            /* below a microsecond is cut off */
            us += (val[i] - '0') * scale;
            scale /= 10;
        }

        if (digits == 0) {
            goto invalid;
        }
    }

    if (i != vlen) {
        goto invalid;
    }

    /* minutes and seconds after a colon are clock fields */
    for (i = 1; i < fields; i++) {
        if (part[i] > 59) {
            return vconv_error_set(err, VCONV_E_OUT_OF_RANGE,
                                   "option '%s': %.*s has a field above 59",
                                   name, vconv_echo_len(val, vlen), val);
        }
    }

    /* bounded first: hours or minutes of any size must not overflow */
    if (part[0] > VCONV_TIME_MAX / 1000000) {
        return vconv_range_error(name, val, vlen, err);
    }

    switch (fields) {
    case 3:
        us += (part[0] * 3600 + part[1] * 60 + part[2]) * 1000000;
        break;
    case 2:
        us += (part[0] * 60 + part[1]) * 1000000;
        break;
    default:
        us += part[0] * 1000000;
    }

    if (us > VCONV_TIME_MAX) {
        return vconv_range_error(name, val, vlen, err);
    }

    *out = us;

    return VCONV_OK;

invalid:

    return vconv_not_a_number(name, "a time (seconds or [[hh:]mm:]ss[.frac])",
                              val, vlen, err);
}


static int
vconv_opt_start(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    int64_t  us;

    if (vconv_parse_time(name, val, vlen, &us, err) != VCONV_OK) {
        return VCONV_ERROR;
    }

    spec->start = us;
    spec->start_set = 1;

    return VCONV_OK;
}


static int
vconv_opt_duration(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    int64_t  us;

    if (vconv_parse_time(name, val, vlen, &us, err) != VCONV_OK) {
        return VCONV_ERROR;
    }

    if (us == 0) {
        return vconv_error_set(err, VCONV_E_OUT_OF_RANGE,
                               "option 'duration': must be above 0");
    }

    spec->duration = us;

    return VCONV_OK;
}


/* the sprite's options; the bounds keep the grid under JPEG's 65535 */
static int
vconv_opt_sprite(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    long     n;
    int64_t  us;

    if (strcmp(name, "sprite.interval") == 0) {
        if (vconv_parse_time(name, val, vlen, &us, err) != VCONV_OK) {
            return VCONV_ERROR;
        }

        if (us < 100000 || us > 3600 * (int64_t) 1000000) {
            return vconv_error_set(err, VCONV_E_OUT_OF_RANGE,
                                   "option 'sprite.interval': must be "
                                   "0.1 to 3600 seconds");
        }

        spec->sprite_interval = us;

        return VCONV_OK;
    }

    if (strcmp(name, "sprite.columns") == 0) {
        if (vconv_parse_int(name, val, vlen, 1, 50, &n, err) != VCONV_OK) {
            return VCONV_ERROR;
        }

        spec->sprite_columns = (int) n;

        return VCONV_OK;
    }

    if (vconv_parse_int(name, val, vlen, 16, 640, &n, err) != VCONV_OK) {
        return VCONV_ERROR;
    }

    spec->sprite_width = (int) n & ~1;

    return VCONV_OK;
}


static int
vconv_opt_quality(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    long  n;

    if (vconv_parse_int(name, val, vlen, 1, 100, &n, err) != VCONV_OK) {
        return VCONV_ERROR;
    }

    spec->quality = (int) n;

    return VCONV_OK;
}


static int
vconv_opt_crf(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    long  n;

    /* the encoder's own bound is checked once the codec is known */
    if (vconv_parse_int(name, val, vlen, 0, VCONV_CRF_MAX, &n, err)
        != VCONV_OK)
    {
        return VCONV_ERROR;
    }

    spec->crf = (int) n;

    return VCONV_OK;
}


static int
vconv_parse_bitrate(const char *name, const char *val, size_t vlen,
    int64_t min, int64_t max, int64_t *out, vconv_error_t *err)
{
    double  d, mult;

    mult = 1;

    if (vlen > 1) {
        switch (val[vlen - 1]) {
        case 'k':
        case 'K':
            mult = 1000;
            vlen--;
            break;
        case 'M':
            mult = 1000000;
            vlen--;
            break;
        }
    }

    if (!vconv_is_decimal(val, vlen, 1)) {
        vlen += (mult != 1);
        return vconv_not_a_number(name, "a bitrate (like 128000, 128k, 2M)",
                                  val, vlen, err);
    }

    if (vconv_parse_double(name, val, vlen, &d, err) != VCONV_OK) {
        return VCONV_ERROR;
    }

    vlen += (mult != 1);
    d *= mult;

    if (!(d >= (double) min && d <= (double) max)) {
        return vconv_range_error(name, val, vlen, err);
    }

    *out = llround(d);

    return VCONV_OK;
}


static int
vconv_opt_vbitrate(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    return vconv_parse_bitrate(name, val, vlen, VCONV_VBR_MIN, VCONV_VBR_MAX,
                               &spec->video_bitrate, err);
}


static int
vconv_opt_abitrate(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    return vconv_parse_bitrate(name, val, vlen, VCONV_ABR_MIN, VCONV_ABR_MAX,
                               &spec->audio_bitrate, err);
}


/* the user's codec name waits in vencoder/aencoder until finish */
static int
vconv_parse_codec(const char *name, const char *val, size_t vlen,
    int video, char *dst, size_t dlen, vconv_error_t *err)
{
    if (!vconv_is_token(val, vlen, 0) || vlen >= dlen) {
        return vconv_error_set(err, VCONV_E_INVALID_VALUE,
                               "option '%s': '%.*s' is not a codec name",
                               name, vconv_echo_len(val, vlen), val);
    }

    if (vconv_codec_by_name(val, vlen, video) == NULL) {
        return vconv_error_set(err, VCONV_E_CODEC_NOT_ALLOWED,
                               "option '%s': unknown %s codec '%.*s'", name,
                               video ? "video" : "audio", (int) vlen, val);
    }

    memcpy(dst, val, vlen);
    dst[vlen] = '\0';

    return VCONV_OK;
}


static int
vconv_opt_vcodec(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    return vconv_parse_codec(name, val, vlen, 1, spec->vencoder,
                             sizeof(spec->vencoder), err);
}


static int
vconv_opt_acodec(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    return vconv_parse_codec(name, val, vlen, 0, spec->aencoder,
                             sizeof(spec->aencoder), err);
}


/* nginx's size syntax, as an operator writes it: 800k, 10m, 1g (x1024) */
static int
vconv_opt_target(vconv_spec_t *spec, const char *name, const char *val,
    size_t vlen, vconv_error_t *err)
{
    long     n;
    int64_t  mult;

    mult = 1;

    if (vlen > 1) {
        switch (val[vlen - 1]) {
        case 'k':
        case 'K':
            mult = 1024;
            break;
        case 'm':
        case 'M':
            mult = 1024 * 1024;
            break;
        case 'g':
        case 'G':
            mult = 1024 * 1024 * 1024;
            break;
        }
    }

    if (!vconv_is_decimal(val, vlen - (mult != 1), 0)) {
        return vconv_not_a_number(name, "a size (like 800k, 10m)", val,
                                  vlen, err);
    }

    if (vconv_parse_int(name, val, vlen - (mult != 1), 0, LONG_MAX, &n, err)
        != VCONV_OK)
    {
        return vconv_range_error(name, val, vlen, err);
    }

    if (n > VCONV_TARGET_MAX / mult || n * mult < VCONV_TARGET_MIN) {
        return vconv_range_error(name, val, vlen, err);
    }

    spec->target_size = n * mult;

    return VCONV_OK;
}


/*
 * target_size picks the bitrates itself: not with the options that set
 * them, nor where there is no bitrate to pick (copy, lossless, pictures).
 */
static int
vconv_spec_check_target(const vconv_spec_t *spec, const vconv_format_t *f,
    const vconv_codec_t *ac, vconv_error_t *err)
{
    unsigned  set, bad;

    set = spec->set;

    if (!(set & VCONV_SET_TARGET)) {
        return VCONV_OK;
    }

    if (f->kind != VCONV_KIND_VIDEO && f->kind != VCONV_KIND_AUDIO) {
        return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                               "option 'target_size' does not apply to "
                               "format %s", f->name);
    }

    bad = set & (VCONV_SET_QUALITY | VCONV_SET_CRF | VCONV_SET_VBITRATE);

    if (f->kind == VCONV_KIND_AUDIO) {
        bad |= set & VCONV_SET_ABITRATE;
    }

    if (bad) {
        return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                               "option '%s' cannot be used with "
                               "'target_size'", vconv_first_option(bad));
    }

    if (spec->vcopy || spec->acopy) {
        return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                               "option 'target_size' cannot be used with "
                               "%s=copy", spec->vcopy ? "vcodec" : "acodec");
    }

    if (ac != NULL && ac->lossless && spec->audio) {
        return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                               "option 'target_size' does not apply to "
                               "lossless %s", ac->name);
    }

    return VCONV_OK;
}


/* the names of the set bits, for "does not apply" messages */
static const char *
vconv_first_option(unsigned bits)
{
    size_t  i;

    for (i = 0; i < VCONV_NOPTIONS; i++) {
        if (bits & vconv_options[i].bit) {
            return vconv_options[i].name;
        }
    }

    return "?";
}


/*
 * Picks the encoder: the user's codec (checked against the format and
 * this libav build) or the format's default.
 */
static int
vconv_pick_codec(vconv_spec_t *spec, const vconv_format_t *f, int video,
    const vconv_codec_t **codec, vconv_error_t *err)
{
    char                *dst;
    size_t               len;
    const char          *list, *def, *opt;
    const vconv_codec_t *c;

    dst = video ? spec->vencoder : spec->aencoder;
    list = video ? f->vcodecs : f->acodecs;
    def = video ? f->vcodec : f->acodec;
    opt = video ? "vcodec" : "acodec";

    *codec = NULL;

    if (spec->set & (video ? VCONV_SET_VCODEC : VCONV_SET_ACODEC)) {
        len = strlen(dst);

        if (list[0] == '\0') {
            return vconv_error_set(err, VCONV_E_CODEC_NOT_ALLOWED,
                                   "option '%s': format %s has no %s",
                                   opt, f->name, video ? "video" : "audio");
        }

        c = vconv_codec_by_name(dst, len, video);

        if (c == NULL || !vconv_list_has(list, dst, len)) {
            return vconv_error_set(err, VCONV_E_CODEC_NOT_ALLOWED,
                                   "option '%s': %s is not allowed with "
                                   "format %s (allowed: %s)",
                                   opt, dst, f->name, list);
        }

        if (!vconv_codec_available(c)) {
            return vconv_error_set(err, VCONV_E_CODEC_NOT_ALLOWED,
                                   "option '%s': %s is not available on "
                                   "this server", opt, dst);
        }

        *codec = c;

        if (c->encoder == NULL) {
            dst[0] = '\0';

        } else {
            strcpy(dst, c->encoder);
        }

        return VCONV_OK;
    }

    if (def == NULL) {
        dst[0] = '\0';
        return VCONV_OK;
    }

    *codec = vconv_codec_by_encoder(def);
    strcpy(dst, def);

    return VCONV_OK;
}


/* quality 1-100 (100 best) onto the codec's CRF scale, see vconv_codecs */
static int
vconv_quality_crf(const vconv_codec_t *c, int q)
{
    int  crf;

    crf = c->crf_q1 - ((q - 1) * c->crf_span + 49) / 99;

    return crf > c->crf_max ? c->crf_max : crf;
}


/*
 * Turns the user's options into a spec: checks them against the format
 * and each other, picks the codecs, checks what depends on them, and
 * fills in the preset's defaults for what the user left out.  How each
 * encoder is tuned is in vconv_codecs[], applied by vconv_encode.c.
 */
int
vconv_spec_finish(vconv_spec_t *spec, unsigned allowed_formats,
    vconv_error_t *err)
{
    const vconv_codec_t   *vc, *ac;
    const vconv_format_t  *f;

    if (spec->nouts > 0 || spec->prefixed) {
        return vconv_spec_finish_list(spec, allowed_formats, err);
    }

    if (vconv_spec_format(spec, allowed_formats, err) != VCONV_OK) {
        return VCONV_ERROR;
    }

    f = &vconv_formats[spec->format];

    if (vconv_spec_check(spec, f, err) != VCONV_OK
        || vconv_pick_codec(spec, f, 1, &vc, err) != VCONV_OK
        || vconv_pick_codec(spec, f, 0, &ac, err) != VCONV_OK)
    {
        return VCONV_ERROR;
    }

    spec->vcopy = (vc != NULL && vc->encoder == NULL);
    spec->acopy = (ac != NULL && ac->encoder == NULL);

    if (vconv_spec_check_codecs(spec, f, vc, ac, err) != VCONV_OK) {
        return VCONV_ERROR;
    }

    if (vconv_spec_check_target(spec, f, ac, err) != VCONV_OK) {
        return VCONV_ERROR;
    }

    vconv_spec_video_defaults(spec, f, vc);
    vconv_spec_audio_defaults(spec, f, ac);

    if (!(spec->set & VCONV_SET_START)) {
        spec->start = 0;
        spec->start_set = 0;
    }

    if (!(spec->set & VCONV_SET_DURATION)) {
        spec->duration = 0;
    }

    return VCONV_OK;
}


/* the asked format, or the first one allowed; and that it is allowed */
static int
vconv_spec_format(vconv_spec_t *spec, unsigned allowed_formats,
    vconv_error_t *err)
{
    int  fmt;

    allowed_formats &= VCONV_FMT_ALL;

    if (!(spec->set & VCONV_SET_FORMAT)) {
        if (allowed_formats == 0) {
            return vconv_error_set(err, VCONV_E_FORMAT_NOT_ALLOWED,
                                   "no output format is enabled");
        }

        /* mp4 unless the operator turned it off */
        for (fmt = 0; !(allowed_formats & (1u << fmt)); fmt++) {
            /* void */
        }

        spec->format = fmt;
    }

    if ((unsigned) spec->format >= VCONV_FMT_COUNT) {
        return vconv_error_set(err, VCONV_E_INTERNAL, "bad format in spec");
    }

    if (!(allowed_formats & (1u << spec->format))) {
        return vconv_error_set(err, VCONV_E_FORMAT_NOT_ALLOWED,
                               "format %s is not enabled on this server",
                               vconv_formats[spec->format].name);
    }

    return VCONV_OK;
}


/* options that make no sense for the kind of format, or together */
static int
vconv_spec_check(const vconv_spec_t *spec, const vconv_format_t *f,
    vconv_error_t *err)
{
    unsigned  set, bad;

    set = spec->set;

    if ((set & VCONV_SET_SPRITE) && f->kind != VCONV_KIND_SPRITE) {
        return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                               "option '%s' applies to format sprite only",
                               vconv_first_option(set & VCONV_SET_SPRITE));
    }

    switch (f->kind) {

    case VCONV_KIND_INFO:
        bad = set & ~VCONV_SET_FORMAT;
        if (bad) {
            return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                                   "option '%s' does not apply to format "
                                   "info (a probe)", vconv_first_option(bad));
        }

        break;

    case VCONV_KIND_SPRITE:
        bad = set & ~(VCONV_SET_FORMAT | VCONV_SET_QUALITY
                      | VCONV_SET_VCODEC | VCONV_SET_SPRITE);
        if (bad) {
            return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                                   "option '%s' does not apply to format "
                                   "sprite (use sprite.interval, "
                                   "sprite.columns, sprite.width)",
                                   vconv_first_option(bad));
        }

        if ((set & VCONV_SET_AUDIO) && spec->audio == 1) {
            return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                                   "format sprite has no audio");
        }

        break;

    case VCONV_KIND_AUDIO:
        bad = set & (VCONV_SET_WIDTH | VCONV_SET_HEIGHT | VCONV_SET_UPSCALE
                     | VCONV_SET_FPS | VCONV_SET_QUALITY | VCONV_SET_CRF
                     | VCONV_SET_VBITRATE);
        if (bad) {
            return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                                   "option '%s' does not apply to audio "
                                   "format %s", vconv_first_option(bad),
                                   f->name);
        }

        if ((set & VCONV_SET_AUDIO) && spec->audio == 0) {
            return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                                   "audio=0 leaves nothing for audio "
                                   "format %s", f->name);
        }

        break;

    case VCONV_KIND_IMAGE:
        bad = set & (VCONV_SET_FPS | VCONV_SET_DURATION | VCONV_SET_VBITRATE);
        if (bad) {
            return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                                   "option '%s' does not apply to image "
                                   "format %s (one frame)",
                                   vconv_first_option(bad), f->name);
        }

        /* fall through */

    case VCONV_KIND_ANIMATION:
        if ((set & VCONV_SET_AUDIO) && spec->audio == 1) {
            return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                                   "format %s has no audio", f->name);
        }

        bad = set & (VCONV_SET_ABITRATE | VCONV_SET_VBITRATE);
        if (bad) {
            return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                                   "option '%s' does not apply to format %s",
                                   vconv_first_option(bad), f->name);
        }

        break;

    default:
        break;
    }

    if ((set & VCONV_SET_QUALITY) && (set & VCONV_SET_CRF)) {
        return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                               "options 'quality' and 'crf' are "
                               "alternatives: give one");
    }

    if ((set & VCONV_SET_VBITRATE) && (set & (VCONV_SET_QUALITY
                                              | VCONV_SET_CRF)))
    {
        return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                               "option 'video_bitrate' cannot be used with "
                               "'%s'", (set & VCONV_SET_CRF) ? "crf"
                                                            : "quality");
    }

    if ((set & VCONV_SET_AUDIO) && spec->audio == 0) {
        bad = set & (VCONV_SET_ACODEC | VCONV_SET_ABITRATE);
        if (bad) {
            return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                                   "option '%s' cannot be used with audio=0",
                                   vconv_first_option(bad));
        }
    }

    return VCONV_OK;
}


/* options that depend on the codecs picked: copy, lossless, CRF scale */
static int
vconv_spec_check_codecs(const vconv_spec_t *spec, const vconv_format_t *f,
    const vconv_codec_t *vc, const vconv_codec_t *ac, vconv_error_t *err)
{
    unsigned  set, bad;

    set = spec->set;

    if (spec->vcopy) {
        bad = set & (VCONV_SET_WIDTH | VCONV_SET_HEIGHT | VCONV_SET_UPSCALE
                     | VCONV_SET_FPS | VCONV_SET_QUALITY | VCONV_SET_CRF
                     | VCONV_SET_VBITRATE);
        if (bad) {
            return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                                   "option '%s' cannot be used with "
                                   "vcodec=copy", vconv_first_option(bad));
        }
    }

    if (spec->acopy && (set & VCONV_SET_ABITRATE)) {
        return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                               "option 'audio_bitrate' cannot be used with "
                               "acodec=copy");
    }

    if ((set & VCONV_SET_ABITRATE) && ac != NULL && ac->lossless) {
        return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                               "option 'audio_bitrate' does not apply to "
                               "lossless %s", ac->name);
    }

    if ((set & (VCONV_SET_QUALITY | VCONV_SET_CRF)) && !spec->vcopy
        && (vc == NULL || vc->crf_max == 0)
        && !((set & VCONV_SET_QUALITY) && vc != NULL && vc->quality))
    {
        return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                               "option '%s' does not apply to %s",
                               (set & VCONV_SET_CRF) ? "crf" : "quality",
                               vc ? vc->name : f->name);
    }

    /* only a 10-bit encoder carries HDR; the others get it tone mapped */
    if (spec->hdr_keep
        && (spec->vcopy || vc == NULL
            || (strcmp(vc->name, "hevc") != 0
                && strcmp(vc->name, "av1") != 0)))
    {
        return vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                               "option 'hdr=keep' needs vcodec hevc or "
                               "av1");
    }

    if ((set & VCONV_SET_CRF) && vc != NULL && vc->crf_max > 0
        && spec->crf > vc->crf_max)
    {
        return vconv_error_set(err, VCONV_E_OUT_OF_RANGE,
                               "option 'crf': %d is out of range (0-%d) "
                               "for %s", spec->crf, vc->crf_max, vc->name);
    }

    return VCONV_OK;
}


/* the format's preset for the picture options the user left out */
static void
vconv_spec_video_defaults(vconv_spec_t *spec, const vconv_format_t *f,
    const vconv_codec_t *vc)
{
    unsigned               set;
    const vconv_preset_t  *p;

    set = spec->set;
    p = &vconv_presets[spec->format];

    if (!(set & VCONV_SET_QUALITY)) {
        spec->quality = 0;
    }

    if (!(set & VCONV_SET_CRF)) {
        spec->crf = -1;

        if (vc != NULL && vc->crf_max > 0 && !spec->vcopy
            && !(set & VCONV_SET_VBITRATE))
        {
            if (set & VCONV_SET_QUALITY) {
                spec->crf = vconv_quality_crf(vc, spec->quality);

            } else if (p->crf && vconv_codec_by_encoder(f->vcodec) == vc) {
                spec->crf = p->crf;

            } else {
                spec->crf = vc->crf;
            }
        }
    }

    if (!(set & VCONV_SET_WIDTH)) {
        spec->width = 0;
    }

    if (!(set & VCONV_SET_HEIGHT)) {
        spec->height = 0;
    }

    if (!(set & VCONV_SET_UPSCALE)) {
        spec->upscale = 0;
    }

    if (!(set & VCONV_SET_VBITRATE)) {
        spec->video_bitrate = 0;
    }

    spec->gif_max_width = 0;

    if (f->kind == VCONV_KIND_ANIMATION
        && !(set & (VCONV_SET_WIDTH | VCONV_SET_HEIGHT)))
    {
        spec->gif_max_width = VCONV_ANIM_WIDTH;
    }

    if (!(set & VCONV_SET_FPS)) {
        spec->fps_num = 0;
        spec->fps_den = 0;

        if (f->kind == VCONV_KIND_ANIMATION) {
            spec->fps_num = VCONV_ANIM_FPS;
            spec->fps_den = 1;
        }
    }
}


/* the format's preset for the sound options the user left out */
static void
vconv_spec_audio_defaults(vconv_spec_t *spec, const vconv_format_t *f,
    const vconv_codec_t *ac)
{
    unsigned               set;
    const vconv_preset_t  *p;

    set = spec->set;
    p = &vconv_presets[spec->format];

    if (!(set & VCONV_SET_AUDIO)) {
        spec->audio = (f->kind == VCONV_KIND_VIDEO
                       || f->kind == VCONV_KIND_AUDIO);
    }

    if (!(set & VCONV_SET_ABITRATE)) {
        spec->audio_bitrate = 0;

        if (ac != NULL && !spec->acopy) {
            spec->audio_bitrate = (p->abr
                                   && vconv_codec_by_encoder(f->acodec) == ac)
                                  ? p->abr : ac->abr;
        }
    }

    spec->sample_rate = ac != NULL ? ac->rate : 0;
    spec->channels = 0;

    if (!spec->audio) {
        spec->aencoder[0] = '\0';
        spec->acopy = 0;
        spec->audio_bitrate = 0;
        spec->sample_rate = 0;
    }
}


static const char *
vconv_kind_name(vconv_kind_e kind)
{
    switch (kind) {
    case VCONV_KIND_VIDEO:
        return "video";
    case VCONV_KIND_ANIMATION:
        return "animation";
    case VCONV_KIND_AUDIO:
        return "audio";
    case VCONV_KIND_INFO:
        return "info";
    case VCONV_KIND_SPRITE:
        return "sprite";
    default:
        return "image";
    }
}


static void
vconv_out_codecs(vconv_out_t *o, const char *list, int video)
{
    int                   first;
    const char           *p, *end;
    const vconv_codec_t  *c;

    vconv_out(o, "[");
    first = 1;

    for (p = list; *p; p = *end ? end + 1 : end) {
        end = strchr(p, ',');
        if (end == NULL) {
            end = p + strlen(p);
        }

        c = vconv_codec_by_name(p, end - p, video);

        if (c == NULL || !vconv_codec_available(c)) {
            continue;
        }

        vconv_out(o, "%s\"%s\"", first ? "" : ",", c->name);
        first = 0;
    }

    vconv_out(o, "]");
}


/* the values of an enum option: allowed formats, available codecs */
static void
vconv_out_values(vconv_out_t *o, unsigned bit, unsigned allowed_formats)
{
    int          i;
    size_t       k;
    const char  *comma;

    vconv_out(o, ",\"values\":[");
    comma = "";

    if (bit == VCONV_SET_HDR || bit == VCONV_SET_METADATA) {
        vconv_out(o, bit == VCONV_SET_HDR ? "\"keep\",\"tonemap\"]"
                                          : "\"keep\",\"strip\"]");
        return;
    }

    if (bit == VCONV_SET_FORMAT) {
        for (i = 0; i < VCONV_FMT_COUNT; i++) {
            if (allowed_formats & (1u << i)) {
                vconv_out(o, "%s\"%s\"", comma, vconv_formats[i].name);
                comma = ",";
            }
        }

    } else {
        for (k = 0; k < VCONV_NCODECS; k++) {
            if (vconv_codecs[k].video == (bit == VCONV_SET_VCODEC)
                && vconv_codec_available(&vconv_codecs[k]))
            {
                vconv_out(o, "%s\"%s\"", comma, vconv_codecs[k].name);
                comma = ",";
            }
        }
    }

    vconv_out(o, "]");
}


static const char *
vconv_codec_user_name(const char *encoder)
{
    const vconv_codec_t  *c;

    if (encoder[0] == '\0') {
        return NULL;
    }

    c = vconv_codec_by_encoder(encoder);

    return c ? c->name : NULL;
}


/* the options a page should offer for a format, from its kind and preset */
static unsigned
vconv_format_options(const vconv_format_t *f, const vconv_spec_t *s)
{
    unsigned              m;
    const vconv_codec_t  *vc, *ac;

    if (f->kind == VCONV_KIND_INFO) {
        return VCONV_SET_FORMAT;
    }

    if (f->kind == VCONV_KIND_SPRITE) {
        return VCONV_SET_FORMAT | VCONV_SET_QUALITY | VCONV_SET_SPRITE;
    }

    m = VCONV_SET_FORMAT | VCONV_SET_START;

    vc = s->vencoder[0] ? vconv_codec_by_encoder(s->vencoder) : NULL;
    ac = f->acodec ? vconv_codec_by_encoder(f->acodec) : NULL;

    if (f->kind != VCONV_KIND_AUDIO) {
        m |= VCONV_SET_WIDTH | VCONV_SET_HEIGHT | VCONV_SET_UPSCALE
             | VCONV_SET_VCODEC;

        if (vc != NULL && vc->crf_max > 0) {
            m |= VCONV_SET_QUALITY | VCONV_SET_CRF;

        } else if (vc != NULL && vc->quality) {
            m |= VCONV_SET_QUALITY;
        }
    }

    if (f->kind != VCONV_KIND_IMAGE) {
        m |= VCONV_SET_DURATION;
    }

    if (f->kind == VCONV_KIND_VIDEO || f->kind == VCONV_KIND_ANIMATION) {
        m |= VCONV_SET_FPS;
    }

    if (f->kind == VCONV_KIND_VIDEO) {
        m |= VCONV_SET_VBITRATE | VCONV_SET_AUDIO | VCONV_SET_HDR;
    }

    if (f->kind == VCONV_KIND_VIDEO || f->kind == VCONV_KIND_AUDIO) {
        m |= VCONV_SET_METADATA;
    }

    if (f->kind == VCONV_KIND_VIDEO || f->kind == VCONV_KIND_AUDIO) {
        m |= VCONV_SET_ACODEC;

        if (ac != NULL && !ac->lossless) {
            m |= VCONV_SET_ABITRATE | VCONV_SET_TARGET;
        }
    }

    return m;
}


size_t
vconv_presets_json(char *buf, size_t len, unsigned allowed_formats)
{
    int                    i, first;
    size_t                 k;
    const char            *vname, *aname, *comma;
    vconv_out_t            o;
    vconv_spec_t           s;
    vconv_error_t          err;
    const vconv_format_t  *f;

    o.buf = buf;
    o.len = buf ? len : 0;
    o.pos = 0;

    if (o.len > 0) {
        buf[0] = '\0';
    }

    allowed_formats &= VCONV_FMT_ALL;

    vconv_out(&o, "{\"formats\":[");
    first = 1;

    for (i = 0; i < VCONV_FMT_COUNT; i++) {
        if (!(allowed_formats & (1u << i))) {
            continue;
        }

        f = &vconv_formats[i];

        /* the defaults are what finish makes of the format alone */
        vconv_spec_init(&s);
        s.format = i;
        s.set = VCONV_SET_FORMAT;

        if (vconv_spec_finish(&s, 1u << i, &err) != VCONV_OK) {
            continue;
        }

        vconv_out(&o, "%s{\"name\":\"%s\",\"ext\":\"%s\",\"mime\":\"%s\","
                  "\"kind\":\"%s\",\"group\":\"%s\",\"vcodecs\":",
                  first ? "" : ",", f->name, f->ext, f->mime,
                  vconv_kind_name(f->kind),
                  f->kind == VCONV_KIND_AUDIO ? "audio"
                  : f->kind == VCONV_KIND_VIDEO ? "video"
                  : f->kind == VCONV_KIND_INFO ? "data" : "image");
        first = 0;

        vconv_out_codecs(&o, f->vcodecs, 1);
        vconv_out(&o, ",\"acodecs\":");
        vconv_out_codecs(&o, f->acodecs, 0);

        vname = vconv_codec_user_name(s.vencoder);
        aname = vconv_codec_user_name(s.aencoder);

        vconv_out(&o, ",\"defaults\":{");

        if (vname) {
            vconv_out(&o, "\"vcodec\":\"%s\",", vname);
        } else {
            vconv_out(&o, "\"vcodec\":null,");
        }

        if (aname) {
            vconv_out(&o, "\"acodec\":\"%s\",", aname);
        } else {
            vconv_out(&o, "\"acodec\":null,");
        }

        if (s.crf >= 0) {
            vconv_out(&o, "\"crf\":%d,", s.crf);
        } else {
            vconv_out(&o, "\"crf\":null,");
        }

        if (s.fps_num > 0) {
            vconv_out(&o, "\"fps\":%g,", (double) s.fps_num / s.fps_den);
        } else {
            vconv_out(&o, "\"fps\":null,");
        }

        if (s.gif_max_width > 0) {
            vconv_out(&o, "\"max_width\":%d,", s.gif_max_width);
        } else {
            vconv_out(&o, "\"max_width\":null,");
        }

        if (s.audio_bitrate > 0) {
            vconv_out(&o, "\"audio_bitrate\":%lld,",
                      (long long) s.audio_bitrate);
        } else {
            vconv_out(&o, "\"audio_bitrate\":null,");
        }

        vconv_out(&o, "\"audio\":%s},\"options\":[",
                  s.audio ? "true" : "false");

        s.set = vconv_format_options(f, &s);
        comma = "";

        for (k = 0; k < VCONV_NOPTIONS; k++) {
            if (s.set & vconv_options[k].bit) {
                vconv_out(&o, "%s\"%s\"", comma, vconv_options[k].name);
                comma = ",";
            }
        }

        vconv_out(&o, "]}");
    }

    vconv_out(&o, "],\"options\":{");

    for (k = 0; k < VCONV_NOPTIONS; k++) {
        vconv_out(&o, "%s\"%s\":{\"type\":\"%s\"", k ? "," : "",
                  vconv_options[k].name, vconv_options[k].type);

        if (vconv_options[k].min) {
            vconv_out(&o, ",\"min\":%s,\"max\":%s", vconv_options[k].min,
                      vconv_options[k].max);

        } else {
            vconv_out_values(&o, vconv_options[k].bit, allowed_formats);
        }

        vconv_out(&o, "}");
    }

    vconv_out(&o, "}}");

    return o.pos;
}


/*
 * A list of formats (issue 13).  Each output's spec is made from the
 * options as given, replayed for its format (vconv_spec_output()), so
 * that every output has its own preset: the first output's fields are
 * this spec's own, the list and the options stay for the others.
 */
static int
vconv_spec_list(vconv_spec_t *spec, const char *val, size_t vlen,
    vconv_error_t *err)
{
    int          fmt, i;
    size_t       n;
    const char  *p, *end, *comma;

    if (spec->set & VCONV_SET_FORMAT) {
        return vconv_error_set(err, VCONV_E_DUPLICATE_OPTION,
                               "option 'format' is given more than once");
    }

    spec->nouts = 0;
    p = val;
    end = val + vlen;

    while (p <= end) {
        comma = memchr(p, ',', end - p);
        n = (comma ? comma : end) - p;

        if (n == 3 && memcmp(p, "hls", 3) == 0) {
            if (spec->hls) {
                return vconv_error_set(err, VCONV_E_DUPLICATE_OPTION,
                                       "option 'format': 'hls' is listed "
                                       "twice");
            }

            if (spec->nouts == VCONV_MAX_OUTPUTS) {
                return vconv_error_set(err, VCONV_E_OUT_OF_RANGE,
                                       "option 'format': at most %d "
                                       "formats", VCONV_MAX_OUTPUTS);
            }

            /* its rungs, once hls.heights is known: vconv_spec_hls() */
            spec->hls = 1;
            spec->rung[spec->nouts] = VCONV_HLS_PENDING;
            spec->outs[spec->nouts++] = VCONV_FMT_MP4;

            if (comma == NULL) {
                break;
            }

            p = comma + 1;
            continue;
        }

        if (!vconv_is_token(p, n, 1)) {
            return vconv_error_set(err, VCONV_E_INVALID_VALUE,
                                   "option 'format': '%.*s' is not a "
                                   "format name",
                                   vconv_echo_len(p, n), p);
        }

        fmt = vconv_format_by_name(p, n);
        if (fmt < 0) {
            return vconv_error_set(err, VCONV_E_UNKNOWN_FORMAT,
                                   "option 'format': unknown format "
                                   "'%.*s'", vconv_echo_len(p, n), p);
        }

        for (i = 0; i < spec->nouts; i++) {
            if (spec->outs[i] == fmt && spec->rung[i] == 0) {
                return vconv_error_set(err, VCONV_E_DUPLICATE_OPTION,
                                       "option 'format': '%.*s' is "
                                       "listed twice",
                                       vconv_echo_len(p, n), p);
            }
        }

        if (spec->nouts == VCONV_MAX_OUTPUTS) {
            return vconv_error_set(err, VCONV_E_OUT_OF_RANGE,
                                   "option 'format': at most %d formats",
                                   VCONV_MAX_OUTPUTS);
        }

        spec->outs[spec->nouts++] = (unsigned char) fmt;

        if (comma == NULL) {
            break;
        }

        p = comma + 1;
    }

    spec->format = spec->outs[0];
    spec->set |= VCONV_SET_FORMAT;

    return VCONV_OK;
}


/*
 * "webm.height=480": checked now as far as an option alone can be, on a
 * spec of its own; applied to its output by vconv_spec_output().
 */
static int
vconv_spec_prefixed(vconv_spec_t *spec, const char *key, size_t klen,
    const char *val, size_t vlen, vconv_error_t *err)
{
    size_t         n;
    const char    *dot;
    vconv_spec_t  *tmp;

    dot = memchr(key, '.', klen);
    n = dot - key;

    if (n == 3 && memcmp(key, "hls", 3) == 0 && klen == 11
        && memcmp(dot + 1, "heights", 7) == 0)
    {
        return vconv_spec_heights(spec, val, vlen, err);
    }

    if ((vconv_format_by_name(key, n) < 0
         && !(n == 3 && memcmp(key, "hls", 3) == 0))
        || (n + 7 == klen && memcmp(dot + 1, "format", 6) == 0))
    {
        return vconv_error_set(err, VCONV_E_UNKNOWN_OPTION,
                               "unknown option '%.*s'",
                               vconv_echo_len(key, klen), key);
    }

    tmp = malloc(sizeof(vconv_spec_t));
    if (tmp == NULL) {
        return vconv_error_set(err, VCONV_E_NOMEM, "out of memory");
    }

    vconv_spec_init(tmp);

    if (vconv_spec_set(tmp, dot + 1, klen - n - 1, val, vlen, err)
        != VCONV_OK)
    {
        free(tmp);
        return VCONV_ERROR;
    }

    free(tmp);

    spec->prefixed = 1;

    return vconv_spec_record(spec, key, klen, val, vlen, err);
}


static int
vconv_spec_record(vconv_spec_t *spec, const char *key, size_t klen,
    const char *val, size_t vlen, vconv_error_t *err)
{
    unsigned char  *p;

    if (klen > 255 || vlen > 65535
        || spec->rec_len + 3 + klen + vlen > VCONV_SPEC_REC)
    {
        return vconv_error_set(err, VCONV_E_OUT_OF_RANGE,
                               "the options are longer than %d bytes",
                               VCONV_SPEC_REC);
    }

    p = (unsigned char *) spec->rec + spec->rec_len;
    p[0] = (unsigned char) klen;
    p[1] = (unsigned char) (vlen >> 8);
    p[2] = (unsigned char) vlen;
    memcpy(p + 3, key, klen);
    memcpy(p + 3 + klen, val, vlen);
    spec->rec_len += 3 + klen + vlen;

    return VCONV_OK;
}


/*
 * Every output's spec is finished here, so that a bad option for any of
 * them is the request's 400, not the job's failure later.
 */
static int
vconv_spec_finish_list(vconv_spec_t *spec, unsigned allowed_formats,
    vconv_error_t *err)
{
    int            i, rc;
    vconv_spec_t  *tmp;

    tmp = malloc(sizeof(vconv_spec_t));
    if (tmp == NULL) {
        return vconv_error_set(err, VCONV_E_NOMEM, "out of memory");
    }

    if (vconv_spec_hls(spec, allowed_formats, err) != VCONV_OK) {
        free(tmp);
        return VCONV_ERROR;
    }

    if (spec->nouts == 0) {
        /* one format and "NAME.key" options: which format it is */
        memcpy(tmp, spec, sizeof(vconv_spec_t));
        tmp->prefixed = 0;

        if (vconv_spec_finish(tmp, allowed_formats, err) != VCONV_OK) {
            free(tmp);
            return VCONV_ERROR;
        }

        spec->outs[0] = (unsigned char) tmp->format;
        spec->nouts = 1;
    }

    rc = VCONV_OK;

    for (i = 0; i < spec->nouts; i++) {
        rc = vconv_spec_output(spec, i, tmp, allowed_formats, err);
        if (rc != VCONV_OK) {
            break;
        }

        /*
         * Two passes over the input and a copy of its packets have no
         * place among outputs that share one decode.
         */
        if (spec->nouts > 1 && tmp->target_size > 0) {
            rc = vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                                 "target_size cannot be used with a list "
                                 "of formats");
            break;
        }

        if (spec->nouts > 1 && (tmp->vcopy || tmp->acopy)) {
            rc = vconv_error_set(err, VCONV_E_CONFLICTING_OPTIONS,
                                 "vcodec=copy and acodec=copy cannot be "
                                 "used with a list of formats");
            break;
        }

        if (i == 0) {
            /* the first output's fields; the list and options stay */
            memcpy(spec, tmp, offsetof(vconv_spec_t, nouts));
        }
    }

    free(tmp);

    return rc;
}


int
vconv_spec_output(const vconv_spec_t *spec, int i, vconv_spec_t *out,
    unsigned allowed_formats, vconv_error_t *err)
{
    int                    pass, own;
    size_t                 klen, vlen, n, off;
    unsigned               bit;
    const char            *name, *key, *val, *dot;
    const unsigned char          *p;
    vconv_error_t          e;

    name = vconv_formats[spec->outs[i]].name;
    n = strlen(name);

    vconv_spec_init(out);

    if (vconv_spec_set(out, "format", 6, name, n, err) != VCONV_OK) {
        return VCONV_ERROR;
    }

    if (spec->rung[i] != 0) {
        /* an hls rung: its height first, "hls.key" options for it */
        char  h[16];

        if (spec->rung[i] == VCONV_HLS_PENDING) {
            return vconv_error_set(err, VCONV_E_INTERNAL,
                                   "hls rungs not expanded");
        }

        snprintf(h, sizeof(h), "%u", (unsigned) spec->rung[i]);

        if (vconv_spec_set(out, "height", 6, h, strlen(h), err)
            != VCONV_OK)
        {
            return VCONV_ERROR;
        }

        name = "hls";
        n = 3;
    }

    /* the output's own options first: they win over plain ones */
    for (pass = 0; pass < 2; pass++) {
        for (off = 0; off < spec->rec_len; off += 3 + klen + vlen) {
            p = (const unsigned char *) spec->rec + off;
            klen = p[0];
            vlen = (p[1] << 8) | p[2];
            key = (const char *) p + 3;
            val = key + klen;
            dot = memchr(key, '.', klen);
            own = 0;

            if (pass == 0) {
                if (dot == NULL) {
                    continue;
                }

                /* "sprite.columns" is its own name: sprite's, unstripped */
                own = vconv_option_bit(key, klen) != 0;

                if ((size_t) (dot - key) != n || memcmp(key, name, n) != 0)
                {
                    if (vconv_spec_names(spec, key, dot - key)) {
                        continue;
                    }

                    return vconv_error_set(err, VCONV_E_INVALID_VALUE,
                                           "option '%.*s': the formats "
                                           "asked have no '%.*s'",
                                           vconv_echo_len(key, klen), key,
                                           (int) (dot - key), key);
                }

                if (!own) {
                    klen -= n + 1;
                    key = dot + 1;
                }

                if (!own && spec->rung[i] != 0 && klen == 7
                    && memcmp(key, "heights", 7) == 0)
                {
                    klen += n + 1;
                    continue;
                }

            } else {
                if (dot != NULL
                    || (klen == 6 && memcmp(key, "format", 6) == 0))
                {
                    continue;
                }

                bit = vconv_option_bit(key, klen);

                if ((spec->nouts > 1
                     && (bit & vconv_list_skips(vconv_formats[spec->outs[i]]
                                                .kind)))
                    || (out->set & bit)
                    || ((bit & VCONV_SET_RATE) && (out->set & VCONV_SET_RATE))
                    || ((bit & VCONV_SET_SIZE) && (out->set & VCONV_SET_SIZE)))
                {
                    continue;
                }
            }

            if (vconv_spec_set(out, key, klen, val, vlen, &e) != VCONV_OK) {
                return vconv_spec_output_error(err, &e, name, spec);
            }

            if (pass == 0 && !own) {
                klen += n + 1;
            }
        }
    }

    if (vconv_spec_finish(out, allowed_formats, &e) != VCONV_OK) {
        return vconv_spec_output_error(err, &e, name, spec);
    }

    if (spec->rung[i] != 0) {
        out->keyint = VCONV_HLS_SEGMENT;
    }

    return VCONV_OK;
}


static int
vconv_spec_names(const vconv_spec_t *spec, const char *name, size_t len)
{
    int          i;
    const char  *s;

    if (spec->hls && len == 3 && memcmp(name, "hls", 3) == 0) {
        return 1;
    }

    for (i = 0; i < spec->nouts; i++) {
        s = vconv_formats[spec->outs[i]].name;

        if (strlen(s) == len && memcmp(s, name, len) == 0) {
            return 1;
        }
    }

    return 0;
}


/* which output an option failed for, when there are several */
static int
vconv_spec_output_error(vconv_error_t *err, const vconv_error_t *e,
    const char *name, const vconv_spec_t *spec)
{
    if (spec->nouts < 2) {
        *err = *e;
        return VCONV_ERROR;
    }

    return vconv_error_set(err, e->code, "%s: %s", name, e->message);
}


/*
 * In a list, a plain option goes to the outputs it means something for:
 * duration=3 trims the videos and leaves the still a still; height=480
 * leaves the mp3 alone.  A prefixed one is given as asked, and checked.
 */
static unsigned
vconv_list_skips(vconv_kind_e kind)
{
    switch (kind) {

    case VCONV_KIND_AUDIO:
        return VCONV_SET_WIDTH | VCONV_SET_HEIGHT | VCONV_SET_UPSCALE
               | VCONV_SET_FPS | VCONV_SET_QUALITY | VCONV_SET_CRF
               | VCONV_SET_VBITRATE | VCONV_SET_VCODEC | VCONV_SET_AUDIO;

    case VCONV_KIND_IMAGE:
        return VCONV_SET_FPS | VCONV_SET_DURATION | VCONV_SET_VBITRATE
               | VCONV_SET_ABITRATE | VCONV_SET_ACODEC | VCONV_SET_AUDIO;

    case VCONV_KIND_ANIMATION:
        return VCONV_SET_VBITRATE | VCONV_SET_ABITRATE | VCONV_SET_ACODEC
               | VCONV_SET_AUDIO;

    /* a grid of thumbnails takes only the JPEG's quality */
    case VCONV_KIND_SPRITE:
        return ~(unsigned) VCONV_SET_QUALITY;

    /* a probe takes no option at all */
    case VCONV_KIND_INFO:
        return ~0u;

    default:
        return 0;
    }
}


/* hls.heights=1080,720,360: the rungs, largest first as given */
static int
vconv_spec_heights(vconv_spec_t *spec, const char *val, size_t vlen,
    vconv_error_t *err)
{
    long         h;
    size_t       n, i;
    const char  *p, *end, *comma;

    if (spec->nheights > 0) {
        return vconv_error_set(err, VCONV_E_DUPLICATE_OPTION,
                               "option 'hls.heights' is given more than "
                               "once");
    }

    p = val;
    end = val + vlen;

    for ( ;; ) {
        comma = memchr(p, ',', end - p);
        n = (comma ? comma : end) - p;

        /* digits only (vconv_parse_int() knows only the table's names) */
        h = 0;

        for (i = 0; i < n; i++) {
            if (p[i] < '0' || p[i] > '9') {
                break;
            }

            h = h < 100000 ? h * 10 + (p[i] - '0') : h;
        }

        if (n == 0 || i < n) {
            return vconv_error_set(err, VCONV_E_NOT_A_NUMBER,
                                   "option 'hls.heights': '%.*s' is not a "
                                   "list of heights",
                                   vconv_echo_len(val, vlen), val);
        }

        if (h < VCONV_HEIGHT_MIN || h > VCONV_HEIGHT_MAX) {
            return vconv_error_set(err, VCONV_E_OUT_OF_RANGE,
                                   "option 'hls.heights': %ld is not in "
                                   "%d-%d", h, VCONV_HEIGHT_MIN,
                                   VCONV_HEIGHT_MAX);
        }

        if (spec->nheights == VCONV_HLS_RUNGS) {
            return vconv_error_set(err, VCONV_E_OUT_OF_RANGE,
                                   "option 'hls.heights': at most %d "
                                   "rungs", VCONV_HLS_RUNGS);
        }

        spec->heights[spec->nheights++] = (unsigned short) (h & ~1L);
        spec->prefixed = 1;

        if (comma == NULL) {
            break;
        }

        p = comma + 1;
    }

    return VCONV_OK;
}


/* hls's place in the list becomes its rungs */
static int
vconv_spec_hls(vconv_spec_t *spec, unsigned allowed_formats,
    vconv_error_t *err)
{
    int             i, j, k, n, at;
    unsigned char   outs[VCONV_MAX_OUTPUTS];
    unsigned short  rung[VCONV_MAX_OUTPUTS];

    static const unsigned short  ladder[] = { 1080, 720, 480, 360 };

    if (!spec->hls) {
        if (spec->nheights > 0) {
            return vconv_error_set(err, VCONV_E_INVALID_VALUE,
                                   "option 'hls.heights': the formats "
                                   "asked have no 'hls'");
        }

        return VCONV_OK;
    }

    if (!(allowed_formats & VCONV_FMT_HLS_OK)) {
        return vconv_error_set(err, VCONV_E_FORMAT_NOT_ALLOWED,
                               "format hls is not allowed here");
    }

    for (at = 0; at < spec->nouts; at++) {
        if (spec->rung[at] == VCONV_HLS_PENDING) {
            break;
        }
    }

    if (at == spec->nouts) {
        /* expanded by an earlier call */
        return VCONV_OK;
    }

    if (spec->nheights == 0) {
        for (i = 0; i < VCONV_HLS_RUNGS; i++) {
            spec->heights[i] = ladder[i];
        }

        spec->nheights = VCONV_HLS_RUNGS;
    }

    n = spec->nouts - 1 + spec->nheights;

    if (n > VCONV_MAX_OUTPUTS) {
        return vconv_error_set(err, VCONV_E_OUT_OF_RANGE,
                               "option 'format': hls's %d rungs and the "
                               "other formats are more than %d outputs",
                               spec->nheights, VCONV_MAX_OUTPUTS);
    }

    for (i = 0, k = 0; i < spec->nouts; i++) {
        if (i != at) {
            outs[k] = spec->outs[i];
            rung[k++] = 0;
            continue;
        }

        for (j = 0; j < spec->nheights; j++) {
            outs[k] = VCONV_FMT_MP4;
            rung[k++] = spec->heights[j];
        }
    }

    memcpy(spec->outs, outs, sizeof(outs));
    memcpy(spec->rung, rung, sizeof(rung));
    spec->nouts = n;

    return VCONV_OK;
}
