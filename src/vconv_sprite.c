/*
 * vconv: format=sprite.  The decoded pictures are sampled every interval
 * here, not by an fps filter: the count of tiles is then exact (the VTT
 * needs it) and only the sampled pictures are scaled.  libavfilter turns
 * each sample upright, scales it to the tile and lays the grid out with
 * its tile filter; one mjpeg packet is the output.
 */

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/opt.h>

#include "vconv_frame.h"
#include "vconv_info.h"
#include "vconv_json.h"
#include "vconv_sprite.h"


struct vconv_sprite_ctx_s {
    vconv_job_t         *job;
    const vconv_spec_t  *spec;
    vconv_stream_t      *st;        /* the input video, its decoder open */
    vconv_sprite_t      *sp;
    AVFilterGraph       *graph;
    AVFilterContext     *src;
    AVFilterContext     *sink;
    AVFrame             *held;      /* the last picture, not yet placed */
    double               held_t;
    double               held_end;  /* where the held picture stops */
    double               start;     /* s of the input's first timestamp */
    double               total;     /* s of input, 0: unknown */
    int                  capacity;  /* tiles the grid holds */
    int                  rows;
};


static int vconv_sprite_decoder(vconv_job_t *job);
static int vconv_sprite_plan(vconv_sprite_ctx_t *c);
static int vconv_sprite_graph(vconv_sprite_ctx_t *c, const AVFrame *frame);
static int vconv_sprite_place(vconv_sprite_ctx_t *c, double until);
static int vconv_sprite_decode(vconv_sprite_ctx_t *c, AVPacket *pkt);


long long
vconv_sprite_interval(long long duration)
{
    long long  s;

    if (duration <= 0) {
        return 10 * 1000000LL;
    }

    /* rounded up without the sum, which a hostile header can overflow */
    s = duration / (VCONV_SPRITE_TILES * 1000000LL)
        + (duration % (VCONV_SPRITE_TILES * 1000000LL) != 0);

    return (s < 1 ? 1 : s) * 1000000LL;
}


static void
vconv_sprite_time(vconv_out_t *o, double t)
{
    long long  ms;

    ms = llround(t * 1000);

    vconv_out(o, "%02lld:%02lld:%02lld.%03lld", ms / 3600000,
              ms / 60000 % 60, ms / 1000 % 60, ms % 1000);
}


size_t
vconv_sprite_vtt(const vconv_sprite_t *sp, const char *url, char *buf,
    size_t len)
{
    int          i;
    double       from, to;
    vconv_out_t  o;

    vconv_out_init(&o, buf, len);
    vconv_out(&o, "WEBVTT\n");

    for (i = 0; i < sp->tiles; i++) {
        from = i * sp->interval;
        to = (i + 1) * sp->interval;

        if (sp->duration > from && sp->duration < to) {
            to = sp->duration;
        }

        vconv_out(&o, "\n");
        vconv_sprite_time(&o, from);
        vconv_out(&o, " --> ");
        vconv_sprite_time(&o, to);
        vconv_out(&o, "\n%s#xywh=%d,%d,%d,%d\n", url,
                  i % sp->columns * sp->tile_w, i / sp->columns * sp->tile_h,
                  sp->tile_w, sp->tile_h);
    }

    return o.pos;
}


/*
 * format=sprite alone: its own decode of the input's video.  The engine
 * of several outputs feeds vconv_sprite_frame() from its one decoder.
 */
int
vconv_sprite_run(vconv_job_t *job)
{
    int                  rc;
    AVPacket            *pkt;
    vconv_sprite_ctx_t  *c;

    c = NULL;

    rc = vconv_sprite_decoder(job);
    if (rc == VCONV_OK) {
        rc = vconv_sprite_create(job, job->spec, &job->v, &job->tc->sprite,
                                 &c);
    }

    if (rc != VCONV_OK) {
        goto done;
    }

    pkt = job->pkt;

    for ( ;; ) {
        if (vconv_job_interrupt(job)) {
            rc = vconv_job_fail(job, job->stop, 0, NULL);
            goto done;
        }

        rc = av_read_frame(job->ifmt, pkt);

        if (rc < 0) {
            if (job->stop) {
                rc = vconv_job_fail(job, job->stop, 0, NULL);
                goto done;
            }

            if (job->read_err && job->read_err != AVERROR_EOF) {
                rc = vconv_job_fail(job, VCONV_E_IO, job->read_err,
                                    "input read");
                goto done;
            }

            break;
        }

        if (pkt->stream_index != job->v.index) {
            av_packet_unref(pkt);
            continue;
        }

        rc = vconv_sprite_decode(c, pkt);
        av_packet_unref(pkt);

        if (rc != VCONV_OK) {
            goto done;
        }
    }

    rc = vconv_sprite_decode(c, NULL);
    if (rc != VCONV_OK) {
        goto done;
    }

    pkt = job->opkt;

    rc = vconv_sprite_end(c, pkt);
    if (rc != VCONV_OK) {
        goto done;
    }

    if (job->limits->max_output > 0 && pkt->size > job->limits->max_output)
    {
        av_packet_unref(pkt);
        rc = vconv_error_set(&job->tc->err, VCONV_E_OUTPUT_SIZE_LIMIT,
                             "output exceeds %lld bytes",
                             (long long) job->limits->max_output);
        goto done;
    }

    rc = vconv_info_write(job, (const char *) pkt->data, pkt->size);

    if (rc == VCONV_OK) {
        job->tc->output_bytes = pkt->size;
        job->tc->output_duration = job->tc->sprite.duration;
    }

    av_packet_unref(pkt);

done:

    vconv_sprite_free(&c);

    return rc;
}


int
vconv_sprite_create(vconv_job_t *job, const vconv_spec_t *spec,
    vconv_stream_t *st, vconv_sprite_t *sp, vconv_sprite_ctx_t **out)
{
    int                  rc;
    vconv_sprite_ctx_t  *c;

    c = av_mallocz(sizeof(vconv_sprite_ctx_t));
    if (c == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "sprite");
    }

    c->job = job;
    c->spec = spec;
    c->st = st;
    c->sp = sp;
    memset(sp, 0, sizeof(vconv_sprite_t));

    rc = vconv_sprite_plan(c);
    if (rc != VCONV_OK) {
        av_free(c);
        return rc;
    }

    *out = c;

    return VCONV_OK;
}


void
vconv_sprite_free(vconv_sprite_ctx_t **c)
{
    if (*c == NULL) {
        return;
    }

    av_frame_free(&(*c)->held);
    avfilter_graph_free(&(*c)->graph);
    av_freep(c);
}


static int
vconv_sprite_decoder(vconv_job_t *job)
{
    int                  rc;
    const AVCodec       *codec;
    AVCodecContext      *dec;

    codec = avcodec_find_decoder(job->v.ist->codecpar->codec_id);
    if (codec == NULL) {
        return vconv_error_set(&job->tc->err, VCONV_E_UNSUPPORTED_INPUT,
                               "no decoder for %s",
                               avcodec_get_name(
                                   job->v.ist->codecpar->codec_id));
    }

    dec = avcodec_alloc_context3(codec);
    if (dec == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "decoder");
    }

    job->v.dec = dec;

    rc = avcodec_parameters_to_context(dec, job->v.ist->codecpar);
    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_NOMEM, rc, "decoder");
    }

    dec->pkt_timebase = job->v.ist->time_base;
    dec->thread_count = job->limits->codec_threads;

    if (job->limits->max_width > 0 && job->limits->max_height > 0) {
        dec->max_pixels = (int64_t) job->limits->max_width
                          * job->limits->max_height;
    }

    rc = avcodec_open2(dec, codec, NULL);
    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_DECODE, rc, "decoder");
    }

    return VCONV_OK;
}


/* the grid: tile size, interval, how many tiles, rows and columns */
static int
vconv_sprite_plan(vconv_sprite_ctx_t *c)
{
    int                  w, h, cols;
    double               dw, dh;
    int64_t              dur, iv;
    AVRational           sar;
    vconv_job_t         *job;
    const vconv_spec_t  *spec;

    job = c->job;
    spec = c->spec;

    w = c->st->dec->width;
    h = c->st->dec->height;

    if (w <= 0 || h <= 0) {
        return vconv_error_set(&job->tc->err, VCONV_E_DECODE,
                               "the video has no picture size");
    }

    /* the tile keeps the picture's shape as shown: aspect, rotation */
    sar = av_guess_sample_aspect_ratio(job->ifmt, c->st->ist, NULL);
    dw = sar.num > 0 && sar.den > 0 ? w * av_q2d(sar) : w;
    dh = h;

    if (c->st->rotation == 90 || c->st->rotation == 270) {
        dh = dw;
        dw = h;
    }

    c->sp->tile_w = spec->sprite_width > 0 ? spec->sprite_width
                                           : VCONV_SPRITE_WIDTH;
    c->sp->tile_h = (int) lrint(c->sp->tile_w * dh / dw / 2) * 2;
    if (c->sp->tile_h < 2) {
        c->sp->tile_h = 2;
    }

    if (c->sp->tile_h > 2 * c->sp->tile_w) {
        /* a sliver of a picture must not make a grid taller than JPEG's */
        c->sp->tile_h = 2 * c->sp->tile_w;
    }

    dur = job->ifmt->duration != AV_NOPTS_VALUE && job->ifmt->duration > 0
          ? job->ifmt->duration : 0;

    iv = spec->sprite_interval > 0 ? spec->sprite_interval
                                   : vconv_sprite_interval(dur);
    c->sp->interval = iv / 1e6;
    c->total = dur / 1e6;

    c->capacity = VCONV_SPRITE_MAX_TILES;

    if (dur > 0 && dur / iv < VCONV_SPRITE_MAX_TILES) {
        c->capacity = (int) (dur / iv + (dur % iv != 0));
    }

    if (c->capacity < 1) {
        c->capacity = 1;
    }

    cols = spec->sprite_columns > 0 ? spec->sprite_columns
                                    : VCONV_SPRITE_COLUMNS;
    if (cols > c->capacity) {
        cols = c->capacity;
    }

    c->sp->columns = cols;
    c->rows = (c->capacity + cols - 1) / cols;

    /* JPEG's bound on a side: fewer rows, the last tiles are dropped */
    if (c->rows * c->sp->tile_h > 65500) {
        c->rows = 65500 / c->sp->tile_h;
        c->capacity = c->rows * cols;
    }

    c->start = job->ifmt->start_time != AV_NOPTS_VALUE
               ? job->ifmt->start_time / 1e6 : 0;

    return VCONV_OK;
}


static int
vconv_sprite_graph(vconv_sprite_ctx_t *c, const AVFrame *frame)
{
    int               rc, trc;
    char              args[256], chain[1024], tonemap[512];
    AVRational        sar;
    AVFilterInOut    *in, *out;
    vconv_job_t      *job;

    job = c->job;

    c->graph = avfilter_graph_alloc();
    if (c->graph == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "filter graph");
    }

    c->graph->nb_threads = 1;

    sar = frame->sample_aspect_ratio;
    if (sar.num <= 0 || sar.den <= 0) {
        sar = (AVRational) { 1, 1 };
    }

    snprintf(args, sizeof(args),
             "video_size=%dx%d:pix_fmt=%d:time_base=1/1:pixel_aspect=%d/%d",
             frame->width, frame->height, frame->format, sar.num, sar.den);

    rc = avfilter_graph_create_filter(&c->src,
                                      avfilter_get_by_name("buffer"), "in",
                                      args, NULL, c->graph);
    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_INTERNAL, rc, "buffer");
    }

    rc = avfilter_graph_create_filter(&c->sink,
                                      avfilter_get_by_name("buffersink"),
                                      "out", NULL, NULL, c->graph);
    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_INTERNAL, rc, "buffersink");
    }

    /* HDR tiles in SDR as every 8-bit output: tone mapped, tile-sized */
    tonemap[0] = '\0';
    trc = frame->color_trc != AVCOL_TRC_UNSPECIFIED ? frame->color_trc
                                                    : c->st->dec->color_trc;

    if ((trc == AVCOL_TRC_SMPTE2084 || trc == AVCOL_TRC_ARIB_STD_B67)
        && vconv_filter_tonemap(tonemap, sizeof(tonemap), frame,
                                c->st->dec)
           < 0)
    {
        return vconv_error_set(&job->tc->err, VCONV_E_INTERNAL,
                               "sprite: tone mapping chain too long");
    }

    snprintf(chain, sizeof(chain),
             "null%s,scale=%d:%d,setsar=1%s,format=yuvj420p,tile=%dx%d",
             c->st->turn ? c->st->turn : "",
             c->sp->tile_w, c->sp->tile_h, tonemap, c->sp->columns, c->rows);

    out = avfilter_inout_alloc();
    in = avfilter_inout_alloc();

    if (out == NULL || in == NULL) {
        avfilter_inout_free(&out);
        avfilter_inout_free(&in);
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "filter graph");
    }

    out->name = av_strdup("in");
    out->filter_ctx = c->src;
    in->name = av_strdup("out");
    in->filter_ctx = c->sink;

    rc = avfilter_graph_parse_ptr(c->graph, chain, &in, &out, NULL);
    avfilter_inout_free(&out);
    avfilter_inout_free(&in);

    if (rc >= 0) {
        rc = avfilter_graph_config(c->graph, NULL);
    }

    if (rc < 0) {
        return vconv_job_fail(job, rc == AVERROR(ENOMEM) ? VCONV_E_NOMEM
                                                         : VCONV_E_INTERNAL,
                              rc, "sprite filter graph");
    }

    return VCONV_OK;
}


static int
vconv_sprite_decode(vconv_sprite_ctx_t *c, AVPacket *pkt)
{
    int              rc;
    vconv_job_t     *job;
    AVCodecContext  *dec;

    job = c->job;
    dec = job->v.dec;

    rc = avcodec_send_packet(dec, pkt);

    if (rc < 0 && rc != AVERROR(EAGAIN) && rc != AVERROR_EOF) {
        if (rc == AVERROR(ENOMEM)) {
            return vconv_job_fail(job, VCONV_E_NOMEM, rc, "decode");
        }

        av_log(dec, AV_LOG_WARNING, "packet skipped: %s\n", av_err2str(rc));
        job->tc->damaged_packets++;
        return VCONV_OK;
    }

    for ( ;; ) {
        rc = avcodec_receive_frame(dec, job->frame);

        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) {
            return VCONV_OK;
        }

        if (rc < 0) {
            if (rc == AVERROR(ENOMEM)) {
                return vconv_job_fail(job, VCONV_E_NOMEM, rc, "decode");
            }

            av_log(dec, AV_LOG_WARNING, "frame skipped: %s\n",
                   av_err2str(rc));
            job->tc->damaged_packets++;
            continue;
        }

        job->v.decoded++;

        if (job->v.decoded > (job->limits->max_frames > 0
                              ? job->limits->max_frames : VCONV_MAX_FRAMES))
        {
            av_frame_unref(job->frame);
            return vconv_error_set(&job->tc->err, VCONV_E_FRAME_LIMIT,
                                   "the input has more than %lld video "
                                   "frames", (long long)
                                   (job->limits->max_frames > 0
                                    ? job->limits->max_frames
                                    : VCONV_MAX_FRAMES));
        }

        if (vconv_frame_check_video(job->frame) < 0) {
            av_log(dec, AV_LOG_WARNING, "damaged picture skipped\n");
            job->tc->damaged_packets++;
            av_frame_unref(job->frame);
            continue;
        }

        rc = vconv_sprite_frame(c, job->frame);
        av_frame_unref(job->frame);

        if (rc != VCONV_OK) {
            return rc;
        }
    }
}


/*
 * Each tile shows the picture on screen at its time: a picture is placed
 * once the next one says where it ends.
 */
int
vconv_sprite_frame(vconv_sprite_ctx_t *c, AVFrame *frame)
{
    int          rc;
    double       t, d;
    int64_t      ts;
    AVRational   tb, fr;
    vconv_job_t *job;

    job = c->job;
    tb = c->st->ist->time_base;
    ts = frame->best_effort_timestamp;

    if (ts == AV_NOPTS_VALUE) {
        t = c->held != NULL ? c->held_end : 0;

    } else {
        t = ts * av_q2d(tb) - c->start;
    }

    if (c->held != NULL && t < c->held_t) {
        /* out of order or repeated: the clock stays where it was */
        t = c->held_t;
    }

    if (c->graph == NULL) {
        rc = vconv_sprite_graph(c, frame);
        if (rc != VCONV_OK) {
            return rc;
        }

        /* slot 0 shows the first picture even if it starts late */
        if (t > 0) {
            c->held = av_frame_clone(frame);
            if (c->held == NULL) {
                return vconv_job_fail(job, VCONV_E_NOMEM, 0, "frame");
            }

            c->held_t = 0;
        }
    }

    if (c->held != NULL) {
        rc = vconv_sprite_place(c, t);
        if (rc != VCONV_OK) {
            return rc;
        }

        av_frame_free(&c->held);
    }

    c->held = av_frame_clone(frame);
    if (c->held == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "frame");
    }

    c->held_t = t;

    d = frame->pkt_duration > 0 ? frame->pkt_duration * av_q2d(tb) : 0;
    if (d <= 0) {
        fr = av_guess_frame_rate(job->ifmt, c->st->ist, NULL);
        d = fr.num > 0 && fr.den > 0 ? av_q2d(av_inv_q(fr)) : 0;
    }

    c->held_end = t + d;

    if (c->total > 0 && job->tc->progress) {
        job->tc->progress(job->tc->data, t < c->total ? t / c->total : 1);
    }

    return VCONV_OK;
}


/* the held picture goes into every slot whose time is before until */
static int
vconv_sprite_place(vconv_sprite_ctx_t *c, double until)
{
    int           rc;
    vconv_job_t  *job;

    job = c->job;

    while (c->sp->tiles < c->capacity
           && c->sp->tiles * c->sp->interval < until - 1e-6)
    {
        c->held->pts = c->sp->tiles;

        rc = av_buffersrc_add_frame_flags(c->src, c->held,
                                          AV_BUFFERSRC_FLAG_KEEP_REF);
        if (rc < 0) {
            return vconv_job_fail(job, rc == AVERROR(ENOMEM)
                                       ? VCONV_E_NOMEM : VCONV_E_INTERNAL,
                                  rc, "sprite filter");
        }

        c->sp->tiles++;
    }

    return VCONV_OK;
}


/*
 * The input's end: the last picture stands until it ends, the grid is
 * cut to the tiles made and encoded; the JPEG is pkt.
 */
int
vconv_sprite_end(vconv_sprite_ctx_t *c, AVPacket *pkt)
{
    int              rc, q, used;
    AVFrame         *grid;
    vconv_job_t     *job;
    const AVCodec   *codec;
    AVCodecContext  *enc;

    job = c->job;

    if (c->held != NULL) {
        rc = vconv_sprite_place(c, c->held_end);
        if (rc != VCONV_OK) {
            return rc;
        }

        c->sp->duration = c->held_end;
    }

    if (c->sp->tiles == 0) {
        return vconv_error_set(&job->tc->err, job->tc->damaged_packets
                               ? VCONV_E_DECODE : VCONV_E_EMPTY_OUTPUT,
                               "no frame could be decoded");
    }

    grid = av_frame_alloc();
    if (grid == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "sprite grid");
    }

    rc = av_buffersrc_add_frame_flags(c->src, NULL, 0);
    if (rc >= 0) {
        rc = av_buffersink_get_frame(c->sink, grid);
    }

    if (rc < 0) {
        av_frame_free(&grid);
        return vconv_job_fail(job, VCONV_E_INTERNAL, rc, "sprite grid");
    }

    /*
     * The grid was made for the duration the input said, or for the most
     * tiles when it said none: the picture keeps the rows it used.
     */
    used = (c->sp->tiles + c->sp->columns - 1) / c->sp->columns;

    if (used < c->rows) {
        grid->crop_bottom = (size_t) (c->rows - used) * c->sp->tile_h;
    }

    if (c->sp->tiles < c->sp->columns) {
        grid->crop_right = (size_t) (c->sp->columns - c->sp->tiles)
                           * c->sp->tile_w;
    }

    rc = av_frame_apply_cropping(grid, AV_FRAME_CROP_UNALIGNED);
    if (rc < 0) {
        av_frame_free(&grid);
        return vconv_job_fail(job, VCONV_E_INTERNAL, rc, "sprite grid");
    }

    codec = avcodec_find_encoder_by_name("mjpeg");
    enc = codec ? avcodec_alloc_context3(codec) : NULL;

    if (enc == NULL) {
        av_frame_free(&grid);
        return vconv_job_fail(job, codec ? VCONV_E_NOMEM : VCONV_E_INTERNAL,
                              0, "mjpeg encoder");
    }

    /* quality 1-100 onto mjpeg's 31-2; the default is a clear 5 */
    q = c->spec->quality > 0 ? 31 - (c->spec->quality - 1) * 29 / 99 : 5;

    enc->width = grid->width;
    enc->height = grid->height;
    enc->pix_fmt = grid->format;
    enc->color_range = AVCOL_RANGE_JPEG;
    enc->time_base = (AVRational) { 1, 1 };
    enc->flags |= AV_CODEC_FLAG_QSCALE;
    enc->global_quality = FF_QP2LAMBDA * q;
    enc->thread_count = 1;

    rc = avcodec_open2(enc, codec, NULL);

    if (rc >= 0) {
        grid->pts = 0;
        grid->quality = enc->global_quality;
        rc = avcodec_send_frame(enc, grid);
    }

    if (rc >= 0) {
        rc = avcodec_send_frame(enc, NULL);
    }

    if (rc >= 0) {
        rc = avcodec_receive_packet(enc, pkt);
    }

    av_frame_free(&grid);
    avcodec_free_context(&enc);

    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_ENCODE, rc, "sprite encode");
    }

    return VCONV_OK;
}
