/*
 * vconv: the spare child's warm-up of the libraries (see
 * tools/vconv_sandbox_main.c).  A child forked from the helper starts
 * with none of libav's one-time setup done (the codecs' static tables,
 * built on their first open) and with none of the libraries' code in its
 * page tables: a small job pays for both, where a pool thread of a
 * long-lived worker does not.  So the spare, while it waits, opens the
 * codecs and filters common jobs use and sends one tiny frame through
 * them: libx264 -> h264 decoder -> scale -> mjpeg, and a frame of
 * silence through the aac and mp3 encoders and decoders.  Nothing here
 * reads the job's bytes, and it runs before the seccomp filter.
 */

#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>

#include "vconv_sandbox_warm.h"


#define VCONV_WARM_SIZE  64


static AVPacket *vconv_warm_encode(const char *name, AVFrame *f,
    int pix_fmt);
static AVFrame *vconv_warm_decode(const char *name, AVPacket *pkt);
static AVFrame *vconv_warm_filter(AVFrame *in);
static void vconv_warm_audio(const char *enc, const char *dec);
static void vconv_warm_probe(void);


void
vconv_sandbox_warm(void)
{
    int        level;
    AVFrame   *f, *d, *s;
    AVPacket  *pkt, *jpg;

    /* its lines (x264's banner) would go to the helper's stderr */
    level = av_log_get_level();
    av_log_set_level(AV_LOG_QUIET);

    vconv_warm_probe();

    f = av_frame_alloc();

    if (f != NULL) {
        f->format = AV_PIX_FMT_YUV420P;
        f->width = VCONV_WARM_SIZE;
        f->height = VCONV_WARM_SIZE;

        if (av_frame_get_buffer(f, 0) == 0) {
            memset(f->data[0], 0x80, f->linesize[0] * f->height);
            memset(f->data[1], 0x80, f->linesize[1] * f->height / 2);
            memset(f->data[2], 0x80, f->linesize[2] * f->height / 2);

            pkt = vconv_warm_encode("libx264", f, AV_PIX_FMT_YUV420P);
            d = vconv_warm_decode("h264", pkt);
            s = vconv_warm_filter(d != NULL ? d : f);
            jpg = vconv_warm_encode("mjpeg", s, AV_PIX_FMT_YUVJ420P);

            av_frame_free(&d);
            av_frame_free(&s);
            av_packet_free(&pkt);
            av_packet_free(&jpg);
        }

        av_frame_free(&f);
    }

    /* one-time tables on open; the hevc decoder has no encoder here */
    d = vconv_warm_decode("hevc", NULL);
    av_frame_free(&d);

    vconv_warm_audio("aac", "aac");
    vconv_warm_audio("libmp3lame", "mp3float");

    av_log_set_level(level);
}


/* the first packet of one frame (NULL: the encoder was only opened) */
static AVPacket *
vconv_warm_encode(const char *name, AVFrame *f, int pix_fmt)
{
    AVPacket        *pkt;
    const AVCodec   *c;
    AVCodecContext  *ctx;

    c = avcodec_find_encoder_by_name(name);
    if (c == NULL || f == NULL) {
        return NULL;
    }

    ctx = avcodec_alloc_context3(c);
    pkt = av_packet_alloc();

    if (ctx == NULL || pkt == NULL) {
        goto failed;
    }

    ctx->width = f->width;
    ctx->height = f->height;
    ctx->pix_fmt = pix_fmt;
    ctx->time_base = (AVRational) { 1, 25 };
    ctx->thread_count = 1;

    if (strcmp(name, "libx264") == 0) {
        (void) av_opt_set(ctx->priv_data, "preset", "veryfast", 0);
    }

    if (avcodec_open2(ctx, c, NULL) != 0) {
        goto failed;
    }

    f->pts = 0;

    if (avcodec_send_frame(ctx, f) != 0
        || avcodec_send_frame(ctx, NULL) != 0
        || avcodec_receive_packet(ctx, pkt) != 0)
    {
        goto failed;
    }

    avcodec_free_context(&ctx);

    return pkt;

failed:

    av_packet_free(&pkt);
    avcodec_free_context(&ctx);

    return NULL;
}


/* the frame of one packet (pkt NULL: the decoder is only opened) */
static AVFrame *
vconv_warm_decode(const char *name, AVPacket *pkt)
{
    AVFrame         *f;
    const AVCodec   *c;
    AVCodecContext  *ctx;

    c = avcodec_find_decoder_by_name(name);
    if (c == NULL) {
        return NULL;
    }

    ctx = avcodec_alloc_context3(c);
    f = av_frame_alloc();

    if (ctx == NULL || f == NULL) {
        goto failed;
    }

    /*
     * libav's own count: its frame threads come and go, and glibc keeps
     * their stacks, faulted in, for the job's codec threads
     */
    ctx->thread_count = 0;

    if (avcodec_open2(ctx, c, NULL) != 0 || pkt == NULL) {
        goto failed;
    }

    if (avcodec_send_packet(ctx, pkt) != 0
        || avcodec_send_packet(ctx, NULL) != 0
        || avcodec_receive_frame(ctx, f) != 0)
    {
        goto failed;
    }

    avcodec_free_context(&ctx);

    return f;

failed:

    av_frame_free(&f);
    avcodec_free_context(&ctx);

    return NULL;
}


/* scale and format, as a picture job's graph has them */
static AVFrame *
vconv_warm_filter(AVFrame *in)
{
    int               rc;
    char              args[128];
    AVFrame          *out;
    AVFilterGraph    *g;
    AVFilterInOut    *inputs, *outputs;
    AVFilterContext  *src, *sink;

    if (in == NULL) {
        return NULL;
    }

    g = avfilter_graph_alloc();
    out = av_frame_alloc();
    inputs = avfilter_inout_alloc();
    outputs = avfilter_inout_alloc();

    if (g == NULL || out == NULL || inputs == NULL || outputs == NULL) {
        goto failed;
    }

    g->nb_threads = 1;

    (void) snprintf(args, sizeof(args),
                    "video_size=%dx%d:pix_fmt=%d:time_base=1/25:"
                    "pixel_aspect=1/1", in->width, in->height, in->format);

    if (avfilter_graph_create_filter(&src, avfilter_get_by_name("buffer"),
                                     "in", args, NULL, g) < 0
        || avfilter_graph_create_filter(&sink,
                                        avfilter_get_by_name("buffersink"),
                                        "out", NULL, NULL, g) < 0)
    {
        goto failed;
    }

    outputs->name = av_strdup("in");
    outputs->filter_ctx = src;
    inputs->name = av_strdup("out");
    inputs->filter_ctx = sink;

    rc = avfilter_graph_parse_ptr(g, "scale=32:32:flags=bicubic,"
                                  "format=yuvj420p", &inputs, &outputs,
                                  NULL);

    if (rc < 0 || avfilter_graph_config(g, NULL) < 0
        || av_buffersrc_add_frame_flags(src, in, AV_BUFFERSRC_FLAG_KEEP_REF)
           < 0
        || av_buffersink_get_frame(sink, out) < 0)
    {
        goto failed;
    }

    avfilter_inout_free(&inputs);
    avfilter_inout_free(&outputs);
    avfilter_graph_free(&g);

    return out;

failed:

    av_frame_free(&out);
    avfilter_inout_free(&inputs);
    avfilter_inout_free(&outputs);
    avfilter_graph_free(&g);

    return NULL;
}


/* a frame of stereo silence encoded, and that packet decoded */
static void
vconv_warm_audio(const char *enc, const char *dec)
{
    AVFrame         *f;
    AVPacket        *pkt;
    const AVCodec   *c;
    AVCodecContext  *ctx;
    AVChannelLayout  stereo = AV_CHANNEL_LAYOUT_STEREO;

    c = avcodec_find_encoder_by_name(enc);
    if (c == NULL || c->sample_fmts == NULL) {
        return;
    }

    ctx = avcodec_alloc_context3(c);
    f = av_frame_alloc();
    pkt = av_packet_alloc();

    if (ctx == NULL || f == NULL || pkt == NULL) {
        goto done;
    }

    ctx->sample_rate = 44100;
    ctx->sample_fmt = c->sample_fmts[0];
    ctx->bit_rate = 128000;
    ctx->time_base = (AVRational) { 1, 44100 };
    (void) av_channel_layout_copy(&ctx->ch_layout, &stereo);

    if (avcodec_open2(ctx, c, NULL) != 0) {
        goto done;
    }

    f->format = ctx->sample_fmt;
    f->nb_samples = ctx->frame_size > 0 ? ctx->frame_size : 1024;
    f->sample_rate = ctx->sample_rate;
    f->pts = 0;
    (void) av_channel_layout_copy(&f->ch_layout, &stereo);

    if (av_frame_get_buffer(f, 0) != 0
        || av_samples_set_silence(f->extended_data, 0, f->nb_samples,
                                  stereo.nb_channels, f->format) < 0
        || avcodec_send_frame(ctx, f) != 0
        || avcodec_send_frame(ctx, NULL) != 0)
    {
        goto done;
    }

    while (avcodec_receive_packet(ctx, pkt) == 0) {
        if (pkt->size > 0) {
            break;
        }
    }

    avcodec_free_context(&ctx);
    av_frame_unref(f);

    c = avcodec_find_decoder_by_name(dec);
    if (c == NULL || pkt->size == 0) {
        goto done;
    }

    ctx = avcodec_alloc_context3(c);
    if (ctx == NULL) {
        goto done;
    }

    ctx->sample_rate = 44100;
    (void) av_channel_layout_copy(&ctx->ch_layout, &stereo);

    if (avcodec_open2(ctx, c, NULL) == 0
        && avcodec_send_packet(ctx, pkt) == 0
        && avcodec_send_packet(ctx, NULL) == 0)
    {
        (void) avcodec_receive_frame(ctx, f);
    }

done:

    av_packet_free(&pkt);
    av_frame_free(&f);
    avcodec_free_context(&ctx);
}


/*
 * A probe runs every demuxer's test over the upload's first bytes: their
 * code, in every job.  An ISO BMFF header, and the muxers' lookup.
 */
static void
vconv_warm_probe(void)
{
    int              score;
    AVProbeData      pd;
    AVFormatContext *o;
    static uint8_t   buf[2048 + AVPROBE_PADDING_SIZE] = {
        0, 0, 0, 0x20, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm',
        0, 0, 2, 0, 'i', 's', 'o', 'm', 'i', 's', 'o', '2',
        'a', 'v', 'c', '1', 'm', 'p', '4', '1'
    };

    memset(&pd, 0, sizeof(pd));
    pd.filename = "";
    pd.buf = buf;
    pd.buf_size = 2048;

    score = 0;
    (void) av_probe_input_format2(&pd, 1, &score);

    o = NULL;

    if (avformat_alloc_output_context2(&o, NULL, "mp4", NULL) >= 0) {
        avformat_free_context(o);
    }
}
