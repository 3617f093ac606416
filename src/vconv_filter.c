/*
 * vconv: the libavfilter graphs between decoders and encoders.
 *
 * The picture size, pixel format and audio parameters are decided here in
 * C from the input and the spec; graph descriptions carry only numbers we
 * computed, never text from the request.
 */

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/display.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "vconv_pipeline.h"


#define VCONV_GRAPH_LEN  1024


/* the audio any real file has: a graph refusing it is our fault */
#define VCONV_RATE_MIN   1000
#define VCONV_RATE_MAX   384000
/* swscale's own bounds on a picture's side */
#define VCONV_SIDE_MAX   16384


static int vconv_filter_graph(vconv_job_t *job, vconv_stream_t *st,
    const char *src_name, const char *src_args, const char *sink_name,
    const char *chain);
static int vconv_filter_has_fmt(const enum AVPixelFormat *list,
    enum AVPixelFormat fmt);
static int vconv_filter_even(int v);
static int vconv_filter_is_hdr(int trc);
static int vconv_filter_pan(char *buf, size_t len, int in,
    const AVChannelLayout *out, const char *olayout);


/*
 * The display matrix says how to turn the stored picture to show it
 * upright; we apply it to the pixels so players that ignore it (most
 * GIF and image viewers, many web players) see the same picture.  A
 * mirrored matrix (front cameras, some editors) also needs its flip: the
 * sign of the matrix's entries tells which, as the ffmpeg CLI reads them.
 * Returns the clockwise quarter turn; *turn gets the filters that make
 * the picture upright ("" for none).
 */
int
vconv_filter_rotation(AVStream *st, const char **turn)
{
    int       deg;
    double    theta;
    int32_t  *m;

    *turn = "";

    m = (int32_t *) av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX,
                                            NULL);
    if (m == NULL) {
        return 0;
    }

    /* av_display_rotation_get() is counterclockwise; we want clockwise */
    theta = -av_display_rotation_get(m);
    if (isnan(theta)) {
        return 0;
    }

    theta = fmod(theta, 360.0);
    if (theta < 0) {
        theta += 360.0;
    }

    /* only quarter turns: a phone never records anything else */
    deg = ((int) lrint(theta / 90.0) % 4) * 90;

    switch (deg) {
    case 90:
        *turn = m[3] > 0 ? ",transpose=cclock_flip" : ",transpose=clock";
        break;
    case 180:
        *turn = m[0] < 0 ? (m[4] < 0 ? ",hflip,vflip" : ",hflip")
                         : (m[4] < 0 ? ",vflip" : "");
        break;
    case 270:
        *turn = m[3] < 0 ? ",transpose=clock_flip" : ",transpose=cclock";
        break;
    default:
        *turn = m[4] < 0 ? ",vflip" : "";
    }

    return deg;
}


void
vconv_filter_video_plan(vconv_job_t *job, vconv_stream_t *st,
    const AVCodec *codec, int in_w, int in_h, int in_fmt)
{
    int                        rw, rh, tw, th, w, h, alpha;
    double                     s;
    AVRational                 sar;
    enum AVPixelFormat         fmt;
    const vconv_spec_t        *spec;
    const AVPixFmtDescriptor  *desc, *odesc;

    spec = job->spec;

    desc = av_pix_fmt_desc_get(in_fmt);
    alpha = desc != NULL && (desc->flags & AV_PIX_FMT_FLAG_ALPHA);

    /*
     * Web players and most decoders take only 8-bit 4:2:0, so 10-bit and
     * 4:4:4 inputs are brought down to it whatever the encoder could do.
     */
    switch (codec->id) {
    case AV_CODEC_ID_MJPEG:
        fmt = AV_PIX_FMT_YUVJ420P;
        break;
    case AV_CODEC_ID_GIF:
        fmt = AV_PIX_FMT_PAL8;
        break;
    case AV_CODEC_ID_PNG:
        fmt = alpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24;
        break;
    case AV_CODEC_ID_WEBP:
        fmt = alpha ? AV_PIX_FMT_YUVA420P : AV_PIX_FMT_YUV420P;
        break;
    default:
        if (vconv_filter_has_fmt(codec->pix_fmts, AV_PIX_FMT_YUV420P)) {
            fmt = AV_PIX_FMT_YUV420P;

        } else if (codec->pix_fmts) {
            fmt = avcodec_find_best_pix_fmt_of_list(codec->pix_fmts,
                                                    in_fmt, alpha, NULL);
        } else {
            fmt = AV_PIX_FMT_YUV420P;
        }
    }

    /*
     * Non-square pixels (DV, anamorphic DVDs and camera modes) are shown
     * wider or narrower than stored: the output gets square pixels at
     * the shown shape, so players that ignore the aspect see it right.
     */
    rw = in_w;
    rh = in_h;
    sar = st->ist != NULL ? st->ist->sample_aspect_ratio
                          : (AVRational) { 0, 1 };
    if ((sar.num <= 0 || sar.den <= 0) && st->dec != NULL) {
        sar = st->dec->sample_aspect_ratio;
    }

    /* the stored side that is too long is shortened: no pixel is made up */
    if (sar.num > 0 && sar.den > 0 && sar.num != sar.den
        && av_q2d(sar) > 0.1 && av_q2d(sar) < 10)
    {
        if (sar.num > sar.den) {
            rh = (int) lrint(in_h / av_q2d(sar));

        } else {
            rw = (int) lrint(in_w * av_q2d(sar));
        }
    }

    if (st->rotation == 90 || st->rotation == 270) {
        rw = in_h;
        rh = in_w;
    }

    tw = spec->width;
    th = spec->height;

    if (tw == 0 && th == 0 && spec->gif_max_width > 0) {
        tw = spec->gif_max_width;
    }

    if (tw && th) {
        s = fmin((double) tw / rw, (double) th / rh);

    } else if (tw) {
        s = (double) tw / rw;

    } else if (th) {
        s = (double) th / rh;

    } else {
        s = 1.0;
    }

    if (s > 1.0 && !spec->upscale) {
        s = 1.0;
    }

    w = (int) lrint(rw * s);
    h = (int) lrint(rh * s);

    /* an exact asked size stays exact, the other side follows the aspect */
    if (tw && !th && s == (double) tw / rw) {
        w = tw;
    }

    if (th && !tw && s == (double) th / rh) {
        h = th;
    }

    /*
     * HDR (PQ, HLG; Dolby Vision 8.1/8.4 base layers say the same) shown
     * as is on an SDR screen looks washed out: it is tone mapped to
     * BT.709, unless hdr=keep asked a 10-bit encoder to carry it.
     */
    st->tonemap = 0;
    st->hdr = 0;

    if (st->dec != NULL && vconv_filter_is_hdr(st->dec->color_trc)) {
        if (spec->hdr_keep
            && vconv_filter_has_fmt(codec->pix_fmts, AV_PIX_FMT_YUV420P10))
        {
            fmt = AV_PIX_FMT_YUV420P10;
            st->hdr = 1;

        } else {
            st->tonemap = 1;
        }
    }

    odesc = av_pix_fmt_desc_get(fmt);
    if (odesc == NULL || odesc->log2_chroma_w || odesc->log2_chroma_h
        || (codec->id != AV_CODEC_ID_PNG && codec->id != AV_CODEC_ID_GIF))
    {
        w = vconv_filter_even(w);
        h = vconv_filter_even(h);
    }

    if (w < 1) {
        w = 1;
    }

    if (h < 1) {
        h = 1;
    }

    st->out_w = w;
    st->out_h = h;
    st->out_fmt = fmt;
}


int
vconv_filter_video_init(vconv_job_t *job, vconv_stream_t *st,
    const AVFrame *frame)
{
    int                 n, sw, sh, rc;
    char                args[256], chain[VCONV_GRAPH_LEN];
    AVRational          tb, sar, fr;
    const vconv_spec_t *spec;

    spec = job->spec;
    tb = st->ist->time_base;
    sar = frame->sample_aspect_ratio;
    if (sar.num <= 0 || sar.den <= 0) {
        sar = (AVRational) { 1, 1 };
    }

    n = snprintf(args, sizeof(args),
                 "video_size=%dx%d:pix_fmt=%d:time_base=%d/%d"
                 ":pixel_aspect=%d/%d",
                 frame->width, frame->height, frame->format,
                 tb.num, tb.den, sar.num, sar.den);

    fr = av_guess_frame_rate(job->ifmt, st->ist, NULL);
    if (fr.num > 0 && fr.den > 0) {
        snprintf(args + n, sizeof(args) - n, ":frame_rate=%d/%d",
                 fr.num, fr.den);
    }

    n = 0;
    chain[0] = '\0';

    if (job->start > 0 || job->length > 0) {
        n += snprintf(chain + n, sizeof(chain) - n, "trim=start=0");
        if (job->length > 0) {
            n += snprintf(chain + n, sizeof(chain) - n, ":end=%.6f",
                          job->length / 1e6);
        }
        n += snprintf(chain + n, sizeof(chain) - n, ",");
    }

    if (spec->fps_num > 0 && spec->fps_den > 0) {
        /*
         * The output starts at 0 even when the first frame after the
         * start comes later (a sparse VFR clip; not again in a graph
         * rebuilt mid-stream), and its last frame is
         * kept up to the input's end even when that is less than one
         * output frame away (a one-frame clip); the trim after it keeps
         * the asked duration exact.
         */
        n += snprintf(chain + n, sizeof(chain) - n,
                      "fps=%d/%d%s:eof_action=pass,", spec->fps_num,
                      spec->fps_den, st->graphs ? "" : ":start_time=0");

        if (job->length > 0) {
            n += snprintf(chain + n, sizeof(chain) - n, "trim=end=%.6f,",
                          job->length / 1e6);
        }
    }

    /* scale before turning: fewer pixels to move */
    sw = st->out_w;
    sh = st->out_h;
    if (st->rotation == 90 || st->rotation == 270) {
        sw = st->out_h;
        sh = st->out_w;
    }

    n += snprintf(chain + n, sizeof(chain) - n, "scale=%d:%d,setsar=1",
                  sw, sh);

    /*
     * Tone mapping works on the scaled picture (fewer pixels in float),
     * before the format step brings it to the encoder's.  A frame may
     * say HDR where the stream's header did not: the frame's word wins.
     */
    if (st->tonemap || (!st->hdr && vconv_filter_is_hdr(frame->color_trc)))
    {
        st->tonemap = 1;
        rc = vconv_filter_tonemap(chain + n, sizeof(chain) - n, frame,
                                  st->dec);
        if (rc < 0) {
            return vconv_job_fail(job, VCONV_E_INTERNAL, 0,
                                  "filter too long");
        }

        n += rc;
    }

    /* one swscale pass does size and pixel format together */
    if (st->out_fmt != AV_PIX_FMT_PAL8) {
        n += snprintf(chain + n, sizeof(chain) - n, ",format=%s",
                      av_get_pix_fmt_name(st->out_fmt));
    }

    n += snprintf(chain + n, sizeof(chain) - n, "%s",
                  st->turn ? st->turn : "");

    if (st->out_fmt == AV_PIX_FMT_PAL8) {
        /*
         * One palette for the whole clip, from what changes between
         * frames; paletteuse then only redraws the changed rectangle.
         */
        n += snprintf(chain + n, sizeof(chain) - n,
                      ",split[a][b];[a]palettegen=stats_mode=diff[p];"
                      "[b][p]paletteuse=dither=bayer:bayer_scale=3"
                      ":diff_mode=rectangle");
    }

    if (n >= (int) sizeof(chain)) {
        return vconv_job_fail(job, VCONV_E_INTERNAL, 0, "filter too long");
    }

    st->in_w = frame->width;
    st->in_h = frame->height;
    st->in_fmt = frame->format;

    st->graphs++;

    return vconv_filter_graph(job, st, "buffer", args, "buffersink", chain);
}


int
vconv_filter_audio_init(vconv_job_t *job, vconv_stream_t *st,
    const AVFrame *frame)
{
    int              n, rc, known;
    char             args[256], chain[VCONV_GRAPH_LEN], layout[64],
                     olayout[64];
    AVRational       tb;
    AVChannelLayout  in;
    AVCodecContext  *enc;

    enc = st->enc;
    tb = st->ist->time_base;
    memset(&in, 0, sizeof(in));

    /* decoders may leave the order unknown; abuffer wants a real layout */
    if (frame->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
        av_channel_layout_default(&in, frame->ch_layout.nb_channels);
        known = in.order == AV_CHANNEL_ORDER_NATIVE;
        rc = av_channel_layout_describe(&in, layout, sizeof(layout));
        av_channel_layout_uninit(&in);

    } else {
        known = frame->ch_layout.order == AV_CHANNEL_ORDER_NATIVE;
        rc = av_channel_layout_describe(&frame->ch_layout, layout,
                                        sizeof(layout));
    }

    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_DECODE, rc, "channel layout");
    }

    rc = av_channel_layout_describe(&enc->ch_layout, olayout,
                                    sizeof(olayout));
    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_INTERNAL, rc, "channel layout");
    }

    snprintf(args, sizeof(args),
             "time_base=%d/%d:sample_rate=%d:sample_fmt=%s"
             ":channel_layout=%s",
             tb.num, tb.den, frame->sample_rate,
             av_get_sample_fmt_name(frame->format), layout);

    n = 0;
    chain[0] = '\0';

    if (job->start > 0 || job->length > 0) {
        n += snprintf(chain + n, sizeof(chain) - n, "atrim=start=0");
        if (job->length > 0) {
            n += snprintf(chain + n, sizeof(chain) - n, ":end=%.6f",
                          job->length / 1e6);
        }
        n += snprintf(chain + n, sizeof(chain) - n, ",");
    }

    /*
     * swresample downmixes only channels it knows the place of: for
     * counts with no standard layout (9, 10, 25 ... 64 channels) we mix
     * ourselves, evenly, so that nothing is lost and nothing clips.
     */
    if (!known
        && frame->ch_layout.nb_channels != enc->ch_layout.nb_channels)
    {
        rc = vconv_filter_pan(chain + n, sizeof(chain) - n,
                              frame->ch_layout.nb_channels, &enc->ch_layout,
                              olayout);
        if (rc < 0) {
            return vconv_job_fail(job, VCONV_E_INTERNAL, 0,
                                  "filter too long");
        }

        n += rc;
    }

    n += snprintf(chain + n, sizeof(chain) - n,
                  "aresample=%d,aformat=sample_fmts=%s:sample_rates=%d"
                  ":channel_layouts=%s",
                  enc->sample_rate, av_get_sample_fmt_name(enc->sample_fmt),
                  enc->sample_rate, olayout);

    if (n >= (int) sizeof(chain)) {
        return vconv_job_fail(job, VCONV_E_INTERNAL, 0, "filter too long");
    }

    st->in_w = frame->sample_rate;
    st->in_h = frame->ch_layout.nb_channels;
    st->in_fmt = frame->format;

    av_channel_layout_uninit(&st->in_layout);

    rc = av_channel_layout_copy(&st->in_layout, &frame->ch_layout);
    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_NOMEM, rc, "channel layout");
    }

    rc = vconv_filter_graph(job, st, "abuffer", args, "abuffersink", chain);
    if (rc != VCONV_OK) {
        return rc;
    }

    /* encoders with a fixed frame size reject any other */
    if (enc->frame_size > 0
        && !(enc->codec->capabilities & AV_CODEC_CAP_VARIABLE_FRAME_SIZE))
    {
        av_buffersink_set_frame_size(st->sink, enc->frame_size);
    }

    return VCONV_OK;
}


void
vconv_filter_free(vconv_stream_t *st)
{
    avfilter_graph_free(&st->graph);
    st->src = NULL;
    st->sink = NULL;
}


static int
vconv_filter_graph(vconv_job_t *job, vconv_stream_t *st,
    const char *src_name, const char *src_args, const char *sink_name,
    const char *chain)
{
    int              rc;
    const char      *call;
    AVFilterInOut   *outputs, *inputs;
    AVFilterGraph   *graph;

    vconv_filter_free(st);
    call = "avfilter_graph_alloc";

    graph = avfilter_graph_alloc();
    outputs = avfilter_inout_alloc();
    inputs = avfilter_inout_alloc();

    if (graph == NULL || outputs == NULL || inputs == NULL) {
        rc = AVERROR(ENOMEM);
        goto failed;
    }

    st->graph = graph;

    /* the same scaler the ffmpeg program uses by default */
    av_opt_set(graph, "scale_sws_opts", "flags=bicubic", 0);

    if (job->limits->codec_threads > 0) {
        graph->nb_threads = job->limits->codec_threads;
    }

    call = src_name;
    rc = avfilter_graph_create_filter(&st->src,
                                      avfilter_get_by_name(src_name),
                                      "in", src_args, NULL, graph);
    if (rc < 0) {
        goto failed;
    }

    call = sink_name;
    rc = avfilter_graph_create_filter(&st->sink,
                                      avfilter_get_by_name(sink_name),
                                      "out", NULL, NULL, graph);
    if (rc < 0) {
        goto failed;
    }

    outputs->name = av_strdup("in");
    outputs->filter_ctx = st->src;
    outputs->pad_idx = 0;
    outputs->next = NULL;

    inputs->name = av_strdup("out");
    inputs->filter_ctx = st->sink;
    inputs->pad_idx = 0;
    inputs->next = NULL;

    if (outputs->name == NULL || inputs->name == NULL) {
        rc = AVERROR(ENOMEM);
        goto failed;
    }

    call = "avfilter_graph_parse_ptr";
    rc = avfilter_graph_parse_ptr(graph, chain, &inputs, &outputs, NULL);
    if (rc < 0) {
        goto failed;
    }

    call = "avfilter_graph_config";
    rc = avfilter_graph_config(graph, NULL);
    if (rc < 0) {
        goto failed;
    }

    avfilter_inout_free(&inputs);
    avfilter_inout_free(&outputs);

    return VCONV_OK;

failed:

    avfilter_inout_free(&inputs);
    avfilter_inout_free(&outputs);

    if (st->graph == NULL) {
        avfilter_graph_free(&graph);
    }

    vconv_filter_free(st);

    return vconv_filter_error(job, st, rc, call);
}


/*
 * A graph refuses a frame or its configuration either for what the input
 * is (a channel count or layout no mix takes, a rate, a sample or pixel
 * format, a size) or for our own mistake.  Parameters outside what every
 * ordinary file has are the input's: a 422 naming the property and its
 * value.  Anything else is ours: a 500, logged with the failed call.
 */
int
vconv_filter_error(vconv_job_t *job, vconv_stream_t *st, int averr,
    const char *call)
{
    int                        fmt;
    char                       layout[64];
    const AVPixFmtDescriptor  *desc;

    if (averr == AVERROR(ENOMEM)) {
        return vconv_job_fail(job, VCONV_E_NOMEM, averr, call);
    }

    if (job->stop != VCONV_E_NONE) {
        return vconv_job_fail(job, VCONV_E_INTERNAL, averr, call);
    }

    if (st == &job->a) {
        if (st->in_h > 2 || st->in_layout.order != AV_CHANNEL_ORDER_NATIVE) {
            if (av_channel_layout_describe(&st->in_layout, layout,
                                           sizeof(layout))
                < 0)
            {
                snprintf(layout, sizeof(layout), "unknown");
            }

            return vconv_error_set(&job->tc->err, VCONV_E_BAD_AUDIO_LAYOUT,
                                   "the input has %d audio channels "
                                   "(layout %s); they cannot be mixed to "
                                   "%d", st->in_h, layout,
                                   st->enc ? st->enc->ch_layout.nb_channels
                                           : 2);
        }

        if (st->in_w < VCONV_RATE_MIN || st->in_w > VCONV_RATE_MAX) {
            return vconv_error_set(&job->tc->err, VCONV_E_BAD_SAMPLE_RATE,
                                   "the audio's sample rate is %d Hz; "
                                   "%d to %d Hz can be converted",
                                   st->in_w, VCONV_RATE_MIN,
                                   VCONV_RATE_MAX);
        }

        fmt = av_get_packed_sample_fmt(st->in_fmt);
        if (fmt != AV_SAMPLE_FMT_U8 && fmt != AV_SAMPLE_FMT_S16
            && fmt != AV_SAMPLE_FMT_S32 && fmt != AV_SAMPLE_FMT_FLT
            && fmt != AV_SAMPLE_FMT_DBL && fmt != AV_SAMPLE_FMT_S64)
        {
            return vconv_error_set(&job->tc->err, VCONV_E_BAD_AUDIO_FORMAT,
                                   "the audio's sample format is %s; it "
                                   "cannot be converted",
                                   av_get_sample_fmt_name(st->in_fmt)
                                   ? av_get_sample_fmt_name(st->in_fmt)
                                   : "unknown");
        }

    } else {
        desc = av_pix_fmt_desc_get(st->in_fmt);

        if (desc == NULL
            || (desc->flags & (AV_PIX_FMT_FLAG_HWACCEL
                               | AV_PIX_FMT_FLAG_BITSTREAM))
            || !sws_isSupportedInput(st->in_fmt))
        {
            return vconv_error_set(&job->tc->err, VCONV_E_BAD_PIXEL_FORMAT,
                                   "the picture's pixel format is %s; it "
                                   "cannot be converted",
                                   desc ? desc->name : "unknown");
        }

        if (st->in_w < 1 || st->in_h < 1 || st->in_w > VCONV_SIDE_MAX
            || st->in_h > VCONV_SIDE_MAX)
        {
            return vconv_error_set(&job->tc->err, VCONV_E_BAD_PICTURE_SIZE,
                                   "the picture is %dx%d; sides of 1 to %d "
                                   "can be converted", st->in_w, st->in_h,
                                   VCONV_SIDE_MAX);
        }
    }

    return vconv_job_fail(job, VCONV_E_INTERNAL, averr, call);
}


static int
vconv_filter_has_fmt(const enum AVPixelFormat *list, enum AVPixelFormat fmt)
{
    if (list == NULL) {
        return 0;
    }

    for ( /* void */ ; *list != AV_PIX_FMT_NONE; list++) {
        if (*list == fmt) {
            return 1;
        }
    }

    return 0;
}


/*
 * "pan=stereo|c0<c0+c2+...|c1<c1+c3+...,": input channel i goes to
 * output channel i mod the output's count; "<" has pan scale each sum
 * so that it stays within full scale.  Returns the length, or -1 when
 * it does not fit.
 */
static int
vconv_filter_pan(char *buf, size_t len, int in, const AVChannelLayout *out,
    const char *olayout)
{
    int     o, i, nout;
    size_t  n;

    nout = out->nb_channels;
    n = snprintf(buf, len, "pan=%s", olayout);

    for (o = 0; o < nout && n < len; o++) {
        n += snprintf(buf + n, len - n, "|c%d<", o);

        for (i = o; i < in && n < len; i += nout) {
            n += snprintf(buf + n, len - n, "%sc%d", i == o ? "" : "+", i);
        }
    }

    if (n < len) {
        n += snprintf(buf + n, len - n, ",");
    }

    return n < len ? (int) n : -1;
}


/* even, rounding down (never upscale), at least 2: 4:2:0 chroma is 2x2 */
static int
vconv_filter_even(int v)
{
    v &= ~1;

    return v < 2 ? 2 : v;
}


static int
vconv_filter_is_hdr(int trc)
{
    return trc == AVCOL_TRC_SMPTE2084 || trc == AVCOL_TRC_ARIB_STD_B67;
}


/*
 * ",zscale=...,tonemap=...,zscale=...": HDR to BT.709 SDR the way
 * libavfilter's documentation does it: to linear light (100 cd/m2 is
 * 1.0), BT.709 primaries in float, hable's curve (the signal's peak from
 * the mastering side data when the frames carry it), then BT.709's
 * transfer and matrix, limited range.  zimg numbers transfers,
 * primaries and matrices as H.273 does, as libav does: the input's are
 * given by number, so a frame that lacks one still converts.  Returns
 * the length, or -1 when it does not fit.  The sprite's graph uses it too.
 */
int
vconv_filter_tonemap(char *buf, size_t len, const AVFrame *frame,
    const AVCodecContext *dec)
{
    int  trc, pri, spc, n;

    trc = vconv_filter_is_hdr(frame->color_trc) ? frame->color_trc
                                                 : dec->color_trc;

    pri = frame->color_primaries != AVCOL_PRI_UNSPECIFIED
          ? (int) frame->color_primaries : (int) dec->color_primaries;
    if (pri == AVCOL_PRI_UNSPECIFIED || pri == AVCOL_PRI_RESERVED
        || pri == AVCOL_PRI_RESERVED0)
    {
        pri = AVCOL_PRI_BT2020;
    }

    spc = frame->colorspace != AVCOL_SPC_UNSPECIFIED
          ? (int) frame->colorspace : (int) dec->colorspace;
    if (spc != AVCOL_SPC_BT709 && spc != AVCOL_SPC_BT2020_CL) {
        spc = AVCOL_SPC_BT2020_NCL;
    }

    n = snprintf(buf, len,
                 ",zscale=tin=%d:pin=%d:min=%d:t=linear:npl=100"
                 ",format=gbrpf32le,zscale=p=bt709"
                 ",tonemap=tonemap=hable:desat=0"
                 ",zscale=t=bt709:m=bt709:r=tv,format=yuv420p",
                 trc, pri, spc);

    return n < (int) len ? n : -1;
}
