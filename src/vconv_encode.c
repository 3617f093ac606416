/*
 * vconv: encoders and the muxer.  The output is written through a file
 * descriptor the caller gives (or, for the CLI, the one path it names):
 * the muxer never opens anything by name, so the same code runs in a
 * sandboxed child that may not open files at all.
 */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <libavfilter/buffersink.h>
#include <libavutil/avstring.h>
#include <libavutil/opt.h>
#include <libavutil/mastering_display_metadata.h>
#include <libavutil/pixdesc.h>

#include "vconv_frame.h"
#include "vconv_pipeline.h"
#include "vconv_wav.h"
#include "vconv_target.h"


static AVCodecContext *vconv_output_encoder(vconv_job_t *job,
    const char *name, const AVCodec **codec);
static int vconv_output_open_encoder(vconv_job_t *job, vconv_stream_t *st,
    const AVCodec *codec);
static int vconv_output_rate(const AVCodec *codec, int want);
static enum AVSampleFormat vconv_output_sample_fmt(const AVCodec *codec,
    enum AVSampleFormat want);
static int vconv_output_is_mov(const AVOutputFormat *of);
static void vconv_output_quality(AVCodecContext *enc, int quality);
static void vconv_output_tag(vconv_job_t *job, AVStream *ost);
static int64_t vconv_output_last_duration(vconv_job_t *job,
    vconv_stream_t *st);
static int vconv_output_send(vconv_job_t *job, vconv_stream_t *st,
    AVFrame *frame);
static int vconv_output_held(vconv_job_t *job, vconv_stream_t *st);
static int vconv_output_frame_limit(vconv_job_t *job, int64_t n);
static int vconv_output_check(vconv_job_t *job, vconv_stream_t *st,
    AVFrame *frame);
static vconv_err_e vconv_output_mux_error(int rc);
static const vconv_codec_t *vconv_output_tune(AVCodecContext *enc,
    const char *encoder);
static int vconv_output_hdr(vconv_job_t *job, vconv_stream_t *st);
static int vconv_output_hdr_side(vconv_job_t *job, vconv_stream_t *st);
static int vconv_output_fd(const vconv_transcode_t *tc);
static AVIOContext *vconv_output_io(int fd, int64_t base, int write);
static int vconv_output_key(vconv_job_t *job, vconv_stream_t *st,
    const AVFrame *frame);
static int vconv_output_io_write(void *opaque, uint8_t *buf, int size);
static int vconv_output_io_read(void *opaque, uint8_t *buf, int size);
static int64_t vconv_output_io_seek(void *opaque, int64_t offset,
    int whence);
static void vconv_output_io_free(AVIOContext **pb);
static int vconv_output_io_open(struct AVFormatContext *s, AVIOContext **pb,
    const char *url, int flags, AVDictionary **options);
static int vconv_output_io_close(struct AVFormatContext *s, AVIOContext *pb);


#define VCONV_OUTPUT_BUFFER  65536

/* the muxer's name for the output; any other name is refused */
#define VCONV_OUTPUT_URL     "vconv-output"


typedef struct {
    int       fd;      /* our own dup, closed with the context */
    int64_t   pos;     /* pread/pwrite: dups share the file offset */
    int64_t   base;    /* where the output starts in the file */
} vconv_output_file_t;


int
vconv_output_open(vconv_job_t *job)
{
    int          rc;
    const char  *muxer;

    /*
     * image2 would read the name as a pattern and open files itself;
     * image2pipe writes the one picture into our file as is.
     */
    muxer = job->fmt->kind == VCONV_KIND_IMAGE ? "image2pipe"
                                                : job->fmt->muxer;

    rc = avformat_alloc_output_context2(&job->ofmt, NULL, muxer,
                                        VCONV_OUTPUT_URL);

    if (rc < 0 || job->ofmt == NULL) {
        return vconv_job_fail(job, VCONV_E_INTERNAL, rc, "muxer");
    }

    /* no libav protocol is reachable: every open goes to io_open */
    job->ofmt->protocol_whitelist = av_strdup("");
    if (job->ofmt->protocol_whitelist == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "output");
    }

    job->ofmt->io_open = vconv_output_io_open;
    job->ofmt->io_close2 = vconv_output_io_close;
    job->ofmt->opaque = job;
    job->ofmt->flags |= AVFMT_FLAG_CUSTOM_IO;

    job->ofmt->interrupt_callback.callback = vconv_job_interrupt;
    job->ofmt->interrupt_callback.opaque = job;

    return VCONV_OK;
}


int
vconv_output_video(vconv_job_t *job, vconv_stream_t *st)
{
    AVRational           fr;
    AVCodecContext      *enc, *dec;
    const AVCodec       *codec;
    const vconv_spec_t  *spec;
    const vconv_codec_t *c;

    spec = job->spec;
    dec = st->dec;

    enc = vconv_output_encoder(job, spec->vencoder, &codec);
    if (enc == NULL) {
        return VCONV_ERROR;
    }

    st->enc = enc;

    vconv_filter_video_plan(job, st, codec, dec->width, dec->height,
                            dec->pix_fmt);

    enc->width = st->out_w;
    enc->height = st->out_h;
    enc->pix_fmt = st->out_fmt;
    enc->sample_aspect_ratio = (AVRational) { 1, 1 };

    if (spec->fps_num > 0 && spec->fps_den > 0) {
        enc->framerate = (AVRational) { spec->fps_num, spec->fps_den };
        enc->time_base = av_inv_q(enc->framerate);

    } else {
        /* keep the input's clock: variable frame rates stay exact */
        enc->time_base = st->ist->time_base;
        fr = av_guess_frame_rate(job->ifmt, st->ist, NULL);
        if (fr.num > 0 && fr.den > 0) {
            enc->framerate = fr;
        }
    }

    if (st->tonemap) {
        /* what the graph's tone mapping makes of it */
        enc->color_primaries = AVCOL_PRI_BT709;
        enc->color_trc = AVCOL_TRC_BT709;
        enc->colorspace = AVCOL_SPC_BT709;
        enc->color_range = AVCOL_RANGE_MPEG;

    } else {
        /* tags only: the pixels keep the input's matrix through swscale */
        enc->color_primaries = dec->color_primaries;
        enc->color_trc = dec->color_trc;
        enc->colorspace = dec->colorspace;
    }

    c = vconv_output_tune(enc, spec->vencoder);

    if (st->hdr && vconv_output_hdr(job, st) != VCONV_OK) {
        return VCONV_ERROR;
    }

    if (spec->video_bitrate > 0) {
        enc->bit_rate = spec->video_bitrate;

    } else if (c != NULL && c->cq_bitrate > 0 && spec->crf >= 0) {
        enc->bit_rate = c->cq_bitrate;

    } else {
        enc->bit_rate = 0;
    }

    if (spec->crf >= 0
        && av_opt_find(enc->priv_data, "crf", NULL, 0, 0) != NULL)
    {
        av_opt_set_int(enc->priv_data, "crf", spec->crf, 0);
    }

    if (spec->quality > 0) {
        vconv_output_quality(enc, spec->quality);
    }

    vconv_target_tune(job, enc, 1);

    if (spec->keyint > 0) {
        /* key frames only where vconv_output_key() puts them */
        enc->gop_size = 600;
        (void) av_opt_set_int(enc->priv_data, "sc_threshold", 0, 0);
        (void) av_opt_set_int(enc->priv_data, "forced-idr", 1, 0);
    }

    return vconv_output_open_encoder(job, st, codec);
}


int
vconv_output_audio(vconv_job_t *job, vconv_stream_t *st)
{
    int                     rc, channels;
    AVCodecContext         *enc, *dec;
    const AVCodec          *codec;
    const vconv_spec_t     *spec;
    const AVChannelLayout  *l;

    spec = job->spec;
    dec = st->dec;

    enc = vconv_output_encoder(job, spec->aencoder, &codec);
    if (enc == NULL) {
        return VCONV_ERROR;
    }

    st->enc = enc;

    channels = spec->channels > 0 ? spec->channels
                                  : dec->ch_layout.nb_channels;
    if (channels > 2) {
        channels = 2;
    }

    if (channels < 1) {
        channels = 2;
    }

    av_channel_layout_default(&enc->ch_layout, channels);

    if (codec->ch_layouts) {
        for (l = codec->ch_layouts; l->nb_channels; l++) {
            if (av_channel_layout_compare(l, &enc->ch_layout) == 0) {
                break;
            }
        }

        if (l->nb_channels == 0) {
            rc = av_channel_layout_copy(&enc->ch_layout, codec->ch_layouts);
            if (rc < 0) {
                return vconv_job_fail(job, VCONV_E_NOMEM, rc, "layout");
            }
        }
    }

    enc->sample_rate = vconv_output_rate(codec, spec->sample_rate > 0
                                                ? spec->sample_rate
                                                : dec->sample_rate);
    enc->sample_fmt = vconv_output_sample_fmt(codec, dec->sample_fmt);
    enc->time_base = (AVRational) { 1, enc->sample_rate };

    if (spec->audio_bitrate > 0) {
        enc->bit_rate = spec->audio_bitrate;
    }

    /*
     * libvorbis has no mean-rate table for every sample rate (160k at
     * 8 kHz is refused): unless a rate or a size is asked, it encodes by
     * quality, as the ffmpeg CLI does (q 5: about 160k at 44.1 kHz stereo)
     */
    if (strcmp(spec->aencoder, "libvorbis") == 0
        && !(spec->set & VCONV_SET_ABITRATE) && spec->target_size == 0)
    {
        enc->bit_rate = 0;
        enc->flags |= AV_CODEC_FLAG_QSCALE;
        enc->global_quality = FF_QP2LAMBDA * 5;
    }

    (void) vconv_output_tune(enc, spec->aencoder);

    vconv_target_tune(job, enc, 0);

    return vconv_output_open_encoder(job, st, codec);
}


int
vconv_output_copy(vconv_job_t *job, vconv_stream_t *st)
{
    int                    rc, i;
    uint8_t               *sd;
    AVStream              *ost;
    enum AVCodecID         id;
    const AVPacketSideData *psd;

    id = st->ist->codecpar->codec_id;

    rc = avformat_query_codec(job->ofmt->oformat, id, FF_COMPLIANCE_NORMAL);
    if (rc == 0) {
        return vconv_error_set(&job->tc->err, VCONV_E_CANNOT_COPY,
                               "%s cannot be copied into %s",
                               avcodec_get_name(id), job->fmt->name);
    }

    ost = avformat_new_stream(job->ofmt, NULL);
    if (ost == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "stream");
    }

    st->ost = ost;

    rc = avcodec_parameters_copy(ost->codecpar, st->ist->codecpar);
    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_NOMEM, rc, "stream");
    }

    /* the input container's tag may mean nothing in the output one */
    ost->codecpar->codec_tag = 0;
    vconv_output_tag(job, ost);
    ost->time_base = st->ist->time_base;
    ost->avg_frame_rate = st->ist->avg_frame_rate;

    /*
     * Copied pixels are still stored turned, still HDR, still Dolby
     * Vision: keep telling players so.
     */
    for (i = 0; i < st->ist->nb_side_data; i++) {
        psd = &st->ist->side_data[i];
        if (psd->type != AV_PKT_DATA_DISPLAYMATRIX
            && psd->type != AV_PKT_DATA_MASTERING_DISPLAY_METADATA
            && psd->type != AV_PKT_DATA_CONTENT_LIGHT_LEVEL
            && psd->type != AV_PKT_DATA_DOVI_CONF)
        {
            continue;
        }

        sd = av_stream_new_side_data(ost, psd->type, psd->size);
        if (sd == NULL) {
            return vconv_job_fail(job, VCONV_E_NOMEM, 0, "side data");
        }

        memcpy(sd, psd->data, psd->size);
    }

    return VCONV_OK;
}


int
vconv_output_header(vconv_job_t *job)
{
    int              rc;
    AVDictionary    *opts;
    AVFormatContext *ofmt;

    ofmt = job->ofmt;
    opts = NULL;

    if (!(ofmt->oformat->flags & AVFMT_NOFILE)) {
        rc = vconv_output_io_open(ofmt, &ofmt->pb, ofmt->url,
                                  AVIO_FLAG_WRITE, NULL);
        if (rc < 0) {
            return vconv_job_fail(job, VCONV_E_IO, rc, "output");
        }
    }

    if (vconv_output_is_mov(ofmt->oformat) && job->spec->keyint > 0) {
        /*
         * an hls rung: one fragment per key frame, which the playlists
         * address by byte range (vconv_hls.c)
         */
        av_dict_set(&opts, "movflags",
                    "+frag_keyframe+empty_moov+default_base_moof", 0);

    } else if (vconv_output_is_mov(ofmt->oformat)) {
        /* players can start before the whole file arrives */
        av_dict_set(&opts, "movflags", "+faststart", 0);
    }

    if (strcmp(ofmt->oformat->name, "webp") == 0) {
        av_dict_set(&opts, "loop", "0", 0);
    }

    rc = avformat_write_header(ofmt, &opts);
    av_dict_free(&opts);

    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_ENCODE, rc, "output header");
    }

    job->header = 1;

    return vconv_metadata_cover(job);
}


int
vconv_output_frame(vconv_job_t *job, vconv_stream_t *st, AVFrame *frame)
{
    int              rc;
    AVRational       tb;
    AVCodecContext  *enc;

    enc = st->enc;

    if (frame == NULL) {
        if (st->pend != NULL && st->pend->buf[0] != NULL) {
            st->pend->pkt_duration = vconv_output_last_duration(job, st);

            rc = vconv_output_send(job, st, st->pend);
            av_frame_unref(st->pend);

            if (rc != VCONV_OK) {
                return rc;
            }
        }

        return vconv_output_send(job, st, NULL);
    }

    rc = vconv_output_check(job, st, frame);
    if (rc != VCONV_OK) {
        return rc;
    }

    tb = av_buffersink_get_time_base(st->sink);

    if (frame->pts != AV_NOPTS_VALUE) {
        frame->pts = av_rescale_q(frame->pts, tb, enc->time_base);
    }

    if (enc->codec_type != AVMEDIA_TYPE_VIDEO) {
        return vconv_output_send(job, st, frame);
    }

    /* encoders refuse a timestamp that does not move forward */
    if (frame->pts == AV_NOPTS_VALUE || frame->pts <= st->last_pts) {
        frame->pts = av_sat_add64(st->last_pts, 1);
    }

    st->last_pts = frame->pts;
    frame->pict_type = vconv_output_key(job, st, frame)
                       ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;

    /*
     * Unused by us; libx265's wrapper allocates a copy of it per picture
     * when it is not 0 and leaks those still queued when a job ends
     * early.
     */
    frame->reordered_opaque = 0;

    if (job->fmt->kind == VCONV_KIND_IMAGE) {
        return vconv_output_send(job, st, frame);
    }

    /*
     * A frame lasts until the next one starts (variable rates keep their
     * timing), so each is held back until that is known; the last one
     * lasts to the input's end.
     */
    if (st->pend == NULL) {
        st->pend = av_frame_alloc();
        if (st->pend == NULL) {
            return vconv_job_fail(job, VCONV_E_NOMEM, 0, "frame");
        }
    }

    rc = VCONV_OK;

    if (st->pend->buf[0] != NULL) {
        st->pend->pkt_duration = av_sat_sub64(frame->pts,
                                              st->pend->pts);

        rc = vconv_output_send(job, st, st->pend);
        av_frame_unref(st->pend);
    }

    av_frame_move_ref(st->pend, frame);

    return rc;
}


/*
 * The last video frame's duration in the encoder's time base: to where
 * the input's last frame ends (a GIF's final delay, a clip's last
 * sample), within the asked duration; else one frame at the rate.
 */
static int64_t
vconv_output_last_duration(vconv_job_t *job, vconv_stream_t *st)
{
    int64_t          end, len, dur;
    AVCodecContext  *enc;

    enc = st->enc;
    dur = 0;

    if (st->end_ts != AV_NOPTS_VALUE) {
        end = st->end_ts;

        if (job->length > 0) {
            len = av_rescale_q(job->length, AV_TIME_BASE_Q,
                               st->ist->time_base);
            if (end > len) {
                end = len;
            }
        }

        dur = av_sat_sub64(av_rescale_q(end, st->ist->time_base,
                                        enc->time_base),
                           st->pend->pts);
    }

    if (dur <= 0 && enc->framerate.num > 0 && enc->framerate.den > 0) {
        dur = av_rescale_q(1, av_inv_q(enc->framerate), enc->time_base);
    }

    return dur > 0 ? dur : 1;
}


/* one frame (or the flush) into the encoder, its packets to the muxer */
static int
vconv_output_send(vconv_job_t *job, vconv_stream_t *st, AVFrame *frame)
{
    int              rc;
    unsigned         i;
    double           t;
    int64_t          end;
    AVCodecContext  *enc;

    enc = st->enc;

    if (frame != NULL) {
        if (enc->codec_type == AVMEDIA_TYPE_VIDEO) {
            if (frame->pkt_duration <= 0 && enc->framerate.num > 0
                && enc->framerate.den > 0)
            {
                frame->pkt_duration = av_rescale_q(1,
                                                   av_inv_q(enc->framerate),
                                                   enc->time_base);
            }

            /* some encoders (libwebp_anim) hold every packet to the end */
            t = av_sat_add64(frame->pts, frame->pkt_duration > 0
                                         ? frame->pkt_duration : 0)
                * av_q2d(enc->time_base);

            if (t > job->out_time) {
                job->out_time = t;
            }

            /*
             * A fixed quantizer (JPEG) is read from each frame, not from
             * the context: the ffmpeg program sets it on every frame.
             */
            if (enc->flags & AV_CODEC_FLAG_QSCALE) {
                frame->quality = enc->global_quality;
            }

            if (vconv_output_frame_limit(job, st->frames + 1) != VCONV_OK) {
                return VCONV_ERROR;
            }

            /* most encoders drop the frame's duration: kept for its packet */
            i = st->ring_pos++ % VCONV_DUR_RING;
            st->ring_pts[i] = frame->pts;
            st->ring_dur[i] = frame->pkt_duration;
        }

        st->frames++;
    }

    rc = avcodec_send_frame(enc, frame);
    if (rc < 0 && rc != AVERROR_EOF) {
        return vconv_job_fail(job, VCONV_E_ENCODE, rc, "encode");
    }

    for ( ;; ) {
        rc = avcodec_receive_packet(enc, job->opkt);

        if (rc == AVERROR(EAGAIN)) {
            return VCONV_OK;
        }

        if (rc == AVERROR_EOF) {
            return vconv_output_held(job, st);
        }

        if (rc < 0) {
            return vconv_job_fail(job, VCONV_E_ENCODE, rc, "encode");
        }

        if (enc->codec_type != AVMEDIA_TYPE_VIDEO) {
            rc = vconv_output_packet(job, st, job->opkt, enc->time_base);
            if (rc != VCONV_OK) {
                return rc;
            }

            continue;
        }

        if (job->opkt->pts != AV_NOPTS_VALUE) {
            for (i = 0; i < VCONV_DUR_RING; i++) {
                if (st->ring_pts[i] == job->opkt->pts
                    && st->ring_dur[i] > 0)
                {
                    job->opkt->duration = st->ring_dur[i];
                    break;
                }
            }

            end = av_sat_add64(job->opkt->pts, job->opkt->duration);
            if (end > st->max_end) {
                st->max_end = end;
            }

            if (st->npkts++ == 0 && job->opkt->dts != AV_NOPTS_VALUE) {
                st->shift = av_sat_sub64(job->opkt->pts, job->opkt->dts);
            }
        }

        /* the last one in decoding order is known only at the end */
        if (st->hpkt == NULL) {
            st->hpkt = av_packet_alloc();
            if (st->hpkt == NULL) {
                return vconv_job_fail(job, VCONV_E_NOMEM, 0, "packet");
            }

        } else if (st->hpkt->data != NULL) {
            rc = vconv_output_packet(job, st, st->hpkt, enc->time_base);
            if (rc != VCONV_OK) {
                return rc;
            }
        }

        av_packet_move_ref(st->hpkt, job->opkt);
    }
}


/*
 * The encoder's last packet in decoding order: with B-frames it is not
 * the last one shown, and MP4 counts a track's length in decoding time
 * from the first packet to this one's end: it lasts so that the track
 * is as long as its pictures are shown (a GIF's final delay too).
 * Matroska counts shown time: each packet's own duration is right.
 */
static int
vconv_output_held(vconv_job_t *job, vconv_stream_t *st)
{
    int64_t    dur;
    AVPacket  *pkt;

    pkt = st->hpkt;

    if (pkt == NULL || pkt->data == NULL) {
        return VCONV_OK;
    }

    if (pkt->dts != AV_NOPTS_VALUE && st->max_end > 0
        && vconv_output_is_mov(job->ofmt->oformat))
    {
        dur = av_sat_sub64(av_sat_sub64(st->max_end, st->shift),
                           pkt->dts);
        if (dur > 0) {
            pkt->duration = dur;
        }
    }

    return vconv_output_packet(job, st, pkt, st->enc->time_base);
}


int
vconv_output_packet(vconv_job_t *job, vconv_stream_t *st, AVPacket *pkt,
    AVRational tb)
{
    int      rc;
    double   t;
    int64_t  size;

    av_packet_rescale_ts(pkt, tb, st->ost->time_base);
    pkt->stream_index = st->ost->index;
    pkt->pos = -1;

    /*
     * A damaged or spliced input can make time run backwards; muxers
     * refuse that, and a few lost packets beat a failed job.
     */
    if (pkt->dts != AV_NOPTS_VALUE) {
        if (st->last_dts != AV_NOPTS_VALUE && pkt->dts <= st->last_dts) {
            av_packet_unref(pkt);
            return VCONV_OK;
        }

        st->last_dts = pkt->dts;
    }

    if (pkt->pts != AV_NOPTS_VALUE) {
        t = av_sat_add64(pkt->pts, pkt->duration > 0 ? pkt->duration : 0)
            * av_q2d(st->ost->time_base);
        if (t > job->out_time) {
            job->out_time = t;
        }
    }

    rc = av_interleaved_write_frame(job->ofmt, pkt);
    av_packet_unref(pkt);

    if (rc < 0) {
        if (job->stop) {
            return vconv_job_fail(job, job->stop, 0, NULL);
        }

        return vconv_job_fail(job, vconv_output_mux_error(rc), rc, "write");
    }

    if (job->limits->max_output > 0 && job->ofmt->pb != NULL) {
        size = avio_tell(job->ofmt->pb);
        if (size > job->limits->max_output) {
            return vconv_error_set(&job->tc->err, VCONV_E_OUTPUT_SIZE_LIMIT,
                                   "output exceeds %lld bytes",
                                   (long long) job->limits->max_output);
        }
    }

    return VCONV_OK;
}


int
vconv_output_trailer(vconv_job_t *job)
{
    int                   rc;
    int64_t               size;
    vconv_output_file_t  *f;

    rc = av_write_trailer(job->ofmt);
    if (rc < 0) {
        return vconv_job_fail(job, vconv_output_mux_error(rc), rc,
                              "output trailer");
    }

    job->header = 0;

    size = 0;
    if (job->ofmt->pb != NULL) {
        avio_flush(job->ofmt->pb);
        size = avio_size(job->ofmt->pb);
    }

    /*
     * A mono or stereo WAV says its layout (vconv_wav.c, issue 23); it
     * has no base (only target_size has, and refuses lossless sound).
     */
    if (size > 0 && job->tc->output_base == 0
        && strcmp(job->ofmt->oformat->name, "wav") == 0
        && job->a.enc != NULL
        && job->a.enc->ch_layout.order == AV_CHANNEL_ORDER_NATIVE)
    {
        f = job->ofmt->pb->opaque;
        rc = vconv_wav_extensible(f->fd, job->a.enc->ch_layout.u.mask,
                                  &size);
        if (rc < 0) {
            return vconv_job_fail(job, vconv_output_mux_error(rc), rc,
                                  "wav header");
        }
    }

    job->tc->output_bytes = size > 0 ? size : 0;

    if (job->limits->max_output > 0 && size > job->limits->max_output) {
        return vconv_error_set(&job->tc->err, VCONV_E_OUTPUT_SIZE_LIMIT,
                               "output exceeds %lld bytes",
                               (long long) job->limits->max_output);
    }

    return VCONV_OK;
}


void
vconv_output_close(vconv_job_t *job)
{
    av_frame_free(&job->v.pend);
    av_packet_free(&job->v.hpkt);

    if (job->ofmt == NULL) {
        return;
    }

    if (job->ofmt->pb != NULL) {
        avio_flush(job->ofmt->pb);
        vconv_output_io_free(&job->ofmt->pb);
    }

    avformat_free_context(job->ofmt);
    job->ofmt = NULL;
}


/* a descriptor of the output of our own: the caller's dup, or the path's */
static int
vconv_output_fd(const vconv_transcode_t *tc)
{
    if (tc->output_path != NULL) {
        /* the CLI and the fuzzer name a path; the server never does */
        return open(tc->output_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    }

    return fcntl(tc->output_fd, F_DUPFD_CLOEXEC, 0);
}


int
vconv_output_keep(const vconv_transcode_t *tc, int64_t from, int64_t len)
{
    int       rc, fd;
    ssize_t   n, w;
    int64_t   done;
    uint8_t  *buf;

    fd = vconv_output_fd(tc);
    if (fd == -1) {
        return AVERROR(errno);
    }

    rc = 0;
    buf = from > 0 ? av_malloc(VCONV_OUTPUT_BUFFER) : NULL;

    if (from > 0 && buf == NULL) {
        rc = AVERROR(ENOMEM);
        goto done;
    }

    /* front to back: each block lands before where it was read */
    for (done = 0; from > 0 && done < len; done += n) {
        n = len - done < VCONV_OUTPUT_BUFFER ? len - done
                                             : VCONV_OUTPUT_BUFFER;
        n = pread(fd, buf, n, from + done);
        if (n <= 0) {
            rc = n < 0 ? AVERROR(errno) : AVERROR(EIO);
            goto done;
        }

        w = pwrite(fd, buf, n, done);
        if (w != n) {
            rc = w < 0 ? AVERROR(errno) : AVERROR(EIO);
            goto done;
        }
    }

    if (ftruncate(fd, len) == -1) {
        rc = AVERROR(errno);
    }

done:

    av_free(buf);
    (void) close(fd);

    return rc;
}


/*
 * The muxer's opens: the output itself (once for writing, and again for
 * reading and writing when MP4's +faststart moves the index to the
 * front), over a dup of the caller's descriptor.  Any other name is
 * refused: no muxer may reach a file or a protocol of its own.
 */
static int
vconv_output_io_open(struct AVFormatContext *s, AVIOContext **pb,
    const char *url, int flags, AVDictionary **options)
{
    int           fd;
    vconv_job_t  *job = s->opaque;

    if (url == NULL || strcmp(url, VCONV_OUTPUT_URL) != 0) {
        av_log(s, AV_LOG_ERROR, "refused to open \"%s\"\n",
               url ? url : "");
        return AVERROR(EPERM);
    }

    fd = vconv_output_fd(job->tc);
    if (fd == -1) {
        return AVERROR(errno);
    }

    /* what was before the output stays: see output_base */
    if (!job->out_open && ftruncate(fd, job->tc->output_base) == -1) {
        (void) close(fd);
        return AVERROR(errno);
    }

    *pb = vconv_output_io(fd, job->tc->output_base,
                          (flags & AVIO_FLAG_WRITE) != 0);
    if (*pb == NULL) {
        (void) close(fd);
        return AVERROR(ENOMEM);
    }

    job->out_open = 1;

    return 0;
}


static int
vconv_output_io_close(struct AVFormatContext *s, AVIOContext *pb)
{
    avio_flush(pb);
    vconv_output_io_free(&pb);

    return 0;
}


static AVIOContext *
vconv_output_io(int fd, int64_t base, int write)
{
    uint8_t              *buf;
    AVIOContext          *pb;
    vconv_output_file_t  *f;

    f = av_mallocz(sizeof(vconv_output_file_t));
    buf = av_malloc(VCONV_OUTPUT_BUFFER);

    if (f == NULL || buf == NULL) {
        av_free(f);
        av_free(buf);
        return NULL;
    }

    f->fd = fd;
    f->base = base;

    /* a reading context too: faststart reads back what it wrote */
    pb = avio_alloc_context(buf, VCONV_OUTPUT_BUFFER, write, f,
                            vconv_output_io_read, vconv_output_io_write,
                            vconv_output_io_seek);
    if (pb == NULL) {
        av_free(f);
        av_free(buf);
        return NULL;
    }

    return pb;
}


static void
vconv_output_io_free(AVIOContext **pb)
{
    vconv_output_file_t  *f;

    if (*pb == NULL) {
        return;
    }

    f = (*pb)->opaque;

    if (f != NULL) {
        (void) close(f->fd);
        av_free(f);
    }

    av_freep(&(*pb)->buffer);
    avio_context_free(pb);
}


static int
vconv_output_io_write(void *opaque, uint8_t *buf, int size)
{
    ssize_t               n;
    int                   done;
    vconv_output_file_t  *f = opaque;

    done = 0;

    while (done < size) {
        n = pwrite(f->fd, buf + done, size - done,
                   f->base + f->pos + done);

        if (n < 0 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            return n < 0 ? AVERROR(errno) : AVERROR(EIO);
        }

        done += n;
    }

    f->pos += done;

    return done;
}


static int
vconv_output_io_read(void *opaque, uint8_t *buf, int size)
{
    ssize_t               n;
    vconv_output_file_t  *f = opaque;

    do {
        n = pread(f->fd, buf, size, f->base + f->pos);
    } while (n < 0 && errno == EINTR);

    if (n < 0) {
        return AVERROR(errno);
    }

    if (n == 0) {
        return AVERROR_EOF;
    }

    f->pos += n;

    return (int) n;
}


static int64_t
vconv_output_io_seek(void *opaque, int64_t offset, int whence)
{
    struct stat           st;
    vconv_output_file_t  *f = opaque;

    whence &= ~AVSEEK_FORCE;

    if (whence == AVSEEK_SIZE || whence == SEEK_END) {
        if (fstat(f->fd, &st) == -1) {
            return AVERROR(errno);
        }

        if (whence == AVSEEK_SIZE) {
            return st.st_size - f->base;
        }

        offset += st.st_size - f->base;

    } else if (whence == SEEK_CUR) {
        offset += f->pos;

    } else if (whence != SEEK_SET) {
        return AVERROR(EINVAL);
    }

    if (offset < 0) {
        return AVERROR(EINVAL);
    }

    f->pos = offset;

    return offset;
}


static AVCodecContext *
vconv_output_encoder(vconv_job_t *job, const char *name,
    const AVCodec **codec)
{
    AVCodecContext  *enc;

    *codec = avcodec_find_encoder_by_name(name);
    if (*codec == NULL) {
        vconv_error_set(&job->tc->err, VCONV_E_INTERNAL,
                        "encoder \"%s\" is not available", name);
        return NULL;
    }

    enc = avcodec_alloc_context3(*codec);
    if (enc == NULL) {
        vconv_job_fail(job, VCONV_E_NOMEM, 0, "encoder");
        return NULL;
    }

    enc->thread_count = job->limits->codec_threads;

    return enc;
}


static int
vconv_output_open_encoder(vconv_job_t *job, vconv_stream_t *st,
    const AVCodec *codec)
{
    int              rc;
    AVStream        *ost;
    AVCodecContext  *enc;

    enc = st->enc;

    if (job->ofmt->oformat->flags & AVFMT_GLOBALHEADER) {
        enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    }

    rc = avcodec_open2(enc, codec, NULL);
    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_ENCODE, rc, codec->name);
    }

    ost = avformat_new_stream(job->ofmt, NULL);
    if (ost == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "stream");
    }

    st->ost = ost;

    rc = avcodec_parameters_from_context(ost->codecpar, enc);
    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_NOMEM, rc, "stream");
    }

    vconv_output_tag(job, ost);

    ost->time_base = enc->time_base;
    if (enc->framerate.num > 0) {
        ost->avg_frame_rate = enc->framerate;
    }

    if (st->hdr) {
        return vconv_output_hdr_side(job, st);
    }

    return VCONV_OK;
}


/*
 * hdr=keep: the HDR10 mastering display and content light levels of the
 * input's stream go to the encoder (x265 writes them as SEI; libav 5.1's
 * wrapper does not pass frame side data) and to the output stream, for
 * the muxers that store them (Matroska's MasteringMetadata).
 */
static int
vconv_output_hdr(vconv_job_t *job, vconv_stream_t *st)
{
    int                                 n;
    char                                x265[256];
    AVCodecContext                     *enc;
    const AVContentLightMetadata       *cll;
    const AVMasteringDisplayMetadata   *md;

    enc = st->enc;

    if (strcmp(enc->codec->name, "libx265") != 0) {
        return VCONV_OK;
    }

    md = (const AVMasteringDisplayMetadata *) vconv_metadata_hdr(job, st,
             AV_PKT_DATA_MASTERING_DISPLAY_METADATA, NULL);
    cll = (const AVContentLightMetadata *) vconv_metadata_hdr(job, st,
             AV_PKT_DATA_CONTENT_LIGHT_LEVEL, NULL);

    n = snprintf(x265, sizeof(x265), "hdr10=1");

    /* x265 counts chromaticities in 1/50000, luminance in 1/10000 cd/m2 */
    if (md != NULL && md->has_primaries && md->has_luminance) {
        n += snprintf(x265 + n, sizeof(x265) - n,
                      ":master-display=G(%d,%d)B(%d,%d)R(%d,%d)WP(%d,%d)"
                      "L(%d,%d)",
                      (int) av_rescale_q(1, md->display_primaries[1][0],
                                         (AVRational) { 1, 50000 }),
                      (int) av_rescale_q(1, md->display_primaries[1][1],
                                         (AVRational) { 1, 50000 }),
                      (int) av_rescale_q(1, md->display_primaries[2][0],
                                         (AVRational) { 1, 50000 }),
                      (int) av_rescale_q(1, md->display_primaries[2][1],
                                         (AVRational) { 1, 50000 }),
                      (int) av_rescale_q(1, md->display_primaries[0][0],
                                         (AVRational) { 1, 50000 }),
                      (int) av_rescale_q(1, md->display_primaries[0][1],
                                         (AVRational) { 1, 50000 }),
                      (int) av_rescale_q(1, md->white_point[0],
                                         (AVRational) { 1, 50000 }),
                      (int) av_rescale_q(1, md->white_point[1],
                                         (AVRational) { 1, 50000 }),
                      (int) av_rescale_q(1, md->max_luminance,
                                         (AVRational) { 1, 10000 }),
                      (int) av_rescale_q(1, md->min_luminance,
                                         (AVRational) { 1, 10000 }));
    }

    if (cll != NULL) {
        n += snprintf(x265 + n, sizeof(x265) - n, ":max-cll=%u,%u",
                      cll->MaxCLL, cll->MaxFALL);
    }

    if (n >= (int) sizeof(x265)) {
        return vconv_job_fail(job, VCONV_E_INTERNAL, 0, "x265 params");
    }

    if (av_opt_set(enc->priv_data, "x265-params", x265, 0) < 0) {
        av_log(enc, AV_LOG_WARNING, "x265 takes no HDR parameters\n");
    }

    return VCONV_OK;
}


/* the muxers write the stream's: mp4 mdcv/clli, Matroska's Colour */
static int
vconv_output_hdr_side(vconv_job_t *job, vconv_stream_t *st)
{
    int                               i;
    size_t                            size;
    uint8_t                          *sd;
    const uint8_t                    *p;
    static const enum AVPacketSideDataType  types[] = {
        AV_PKT_DATA_MASTERING_DISPLAY_METADATA,
        AV_PKT_DATA_CONTENT_LIGHT_LEVEL
    };

    for (i = 0; i < 2; i++) {
        p = vconv_metadata_hdr(job, st, types[i], &size);
        if (p == NULL) {
            continue;
        }

        sd = av_stream_new_side_data(st->ost, types[i], size);
        if (sd == NULL) {
            return vconv_job_fail(job, VCONV_E_NOMEM, 0, "side data");
        }

        memcpy(sd, p, size);
    }

    return VCONV_OK;
}


/*
 * The encoder's tuning from the codec table (vconv_options.c): a fixed
 * quantizer and AVOptions, on the codec context or its private part.
 * An option this libav's encoder lacks is not the job's fault: logged.
 */
static const vconv_codec_t *
vconv_output_tune(AVCodecContext *enc, const char *encoder)
{
    int                         rc;
    const vconv_codec_t        *c;
    const vconv_encoder_opt_t  *o;

    c = vconv_codec_by_encoder(encoder);
    if (c == NULL) {
        return NULL;
    }

    if (c->qscale > 0) {
        enc->flags |= AV_CODEC_FLAG_QSCALE;
        enc->global_quality = FF_QP2LAMBDA * c->qscale;
    }

    for (o = c->opts; o != NULL && o->name != NULL; o++) {
        rc = av_opt_set(enc, o->name, o->value, AV_OPT_SEARCH_CHILDREN);
        if (rc < 0) {
            av_log(enc, AV_LOG_WARNING, "%s has no option %s=%s: %s\n",
                   encoder, o->name, o->value, av_err2str(rc));
        }
    }

    return c;
}


/*
 * A muxer fails a write or the trailer either because the file cannot
 * be written (a 500, the server's) or because of what the input gave it:
 * EINVAL from its checks of timestamps and parameters, PATCHWELCOME for
 * a mix it cannot store, and the like (a 422, the input's).
 */
static vconv_err_e
vconv_output_mux_error(int rc)
{
    switch (rc) {
    case AVERROR(ENOMEM):
        return VCONV_E_NOMEM;
    case AVERROR(EIO):
    case AVERROR(ENOSPC):
    case AVERROR(EDQUOT):
    case AVERROR(EFBIG):
    case AVERROR(EROFS):
    case AVERROR(EBADF):
    case AVERROR(EPIPE):
    case AVERROR(EPERM):
    case AVERROR(EACCES):
        return VCONV_E_IO;
    default:
        return VCONV_E_DECODE;
    }
}


/* the asked rate if the encoder takes it, else the nearest it takes */
static int
vconv_output_rate(const AVCodec *codec, int want)
{
    int         best, d, bd;
    const int  *r;

    if (want <= 0) {
        want = 48000;
    }

    if (codec->supported_samplerates == NULL) {
        return want;
    }

    best = 0;
    bd = 0;

    for (r = codec->supported_samplerates; *r; r++) {
        d = *r > want ? *r - want : want - *r;

        /* on a tie the higher rate loses nothing */
        if (best == 0 || d < bd || (d == bd && *r > best)) {
            best = *r;
            bd = d;
        }
    }

    return best ? best : want;
}


static enum AVSampleFormat
vconv_output_sample_fmt(const AVCodec *codec, enum AVSampleFormat want)
{
    enum AVSampleFormat         alt;
    const enum AVSampleFormat  *f;

    if (codec->sample_fmts == NULL) {
        return want;
    }

    alt = av_sample_fmt_is_planar(want) ? av_get_packed_sample_fmt(want)
                                        : av_get_planar_sample_fmt(want);

    for (f = codec->sample_fmts; *f != AV_SAMPLE_FMT_NONE; f++) {
        if (*f == want) {
            return want;
        }
    }

    for (f = codec->sample_fmts; *f != AV_SAMPLE_FMT_NONE; f++) {
        if (*f == alt) {
            return alt;
        }
    }

    return codec->sample_fmts[0];
}


/*
 * The graph's frame before it meets the encoder, which was opened for
 * one picture size and format, or one sample format, rate and layout,
 * and trusts the frame to be that.  A graph rebuilt for a changed input
 * still ends in the same scale and format filters, so a mismatch here
 * is our fault, refused rather than handed on.  Float samples are
 * clamped again: a downmix of in-range channels can add up past 1.0.
 */
static int
vconv_output_check(vconv_job_t *job, vconv_stream_t *st, AVFrame *frame)
{
    int64_t          rc;
    AVCodecContext  *enc;

    enc = st->enc;

    if (enc->codec_type == AVMEDIA_TYPE_VIDEO) {
        if (frame->width != enc->width || frame->height != enc->height
            || frame->format != enc->pix_fmt
            || vconv_frame_check_video(frame) < 0)
        {
            return vconv_error_set(&job->tc->err, VCONV_E_INTERNAL,
                                   "the filter made a %dx%d picture of "
                                   "format %d for a %dx%d encoder of "
                                   "format %d", frame->width,
                                   frame->height, frame->format,
                                   enc->width, enc->height,
                                   (int) enc->pix_fmt);
        }

        return VCONV_OK;
    }

    if (frame->format != enc->sample_fmt
        || frame->sample_rate != enc->sample_rate
        || frame->ch_layout.nb_channels != enc->ch_layout.nb_channels
        || vconv_frame_check_audio(frame) < 0)
    {
        return vconv_error_set(&job->tc->err, VCONV_E_INTERNAL,
                               "the filter made audio of format %d, "
                               "%d Hz, %d channels for an encoder of "
                               "format %d, %d Hz, %d channels",
                               frame->format, frame->sample_rate,
                               frame->ch_layout.nb_channels,
                               (int) enc->sample_fmt, enc->sample_rate,
                               enc->ch_layout.nb_channels);
    }

    rc = vconv_frame_clamp_audio(frame);
    if (rc < 0) {
        return vconv_job_fail(job, rc == AVERROR(ENOMEM) ? VCONV_E_NOMEM
                                                         : VCONV_E_INTERNAL,
                              (int) rc, "audio frame");
    }

    return VCONV_OK;
}


static int
vconv_output_is_mov(const AVOutputFormat *of)
{
    return strcmp(of->name, "mp4") == 0 || strcmp(of->name, "mov") == 0
           || strcmp(of->name, "ipod") == 0;
}


/*
 * HEVC in MP4/MOV as "hvc1" (parameter sets in the sample entry only):
 * Apple's players refuse libav's default "hev1".
 */
static void
vconv_output_tag(vconv_job_t *job, AVStream *ost)
{
    if (ost->codecpar->codec_id == AV_CODEC_ID_HEVC
        && vconv_output_is_mov(job->ofmt->oformat))
    {
        ost->codecpar->codec_tag = MKTAG('h', 'v', 'c', '1');
    }
}


/*
 * quality 1-100 for the encoders with no CRF: JPEG's quantizer from 31
 * (worst) to 2 (best), libwebp's own 0-100 scale as is.
 */
static void
vconv_output_quality(AVCodecContext *enc, int quality)
{
    int  q;

    if (enc->codec_id == AV_CODEC_ID_MJPEG) {
        q = 31 - (quality - 1) * 29 / 99;
        enc->flags |= AV_CODEC_FLAG_QSCALE;
        enc->global_quality = FF_QP2LAMBDA * q;
        return;
    }

    if (enc->codec_id == AV_CODEC_ID_WEBP
        && av_opt_set_int(enc->priv_data, "quality", quality, 0) < 0)
    {
        av_log(enc, AV_LOG_WARNING, "libwebp takes no quality\n");
    }
}


/* the bound on video frames, for those decoded and those encoded */
static int
vconv_output_frame_limit(vconv_job_t *job, int64_t n)
{
    int64_t  max;

    max = job->limits->max_frames > 0 ? job->limits->max_frames
                                      : VCONV_MAX_FRAMES;

    if (n > max) {
        return vconv_error_set(&job->tc->err, VCONV_E_FRAME_LIMIT,
                               "more video frames than the bound of "
                               "%lld", (long long) max);
    }

    return VCONV_OK;
}


/*
 * An hls rung's key frames: the first frame at or after each multiple of
 * spec->keyint of output time.  Every rung gets the same frames from the
 * one decode, so their segments start at the same times.
 */
static int
vconv_output_key(vconv_job_t *job, vconv_stream_t *st, const AVFrame *frame)
{
    int64_t  t;

    if (job->spec->keyint <= 0) {
        return 0;
    }

    t = av_rescale_q(frame->pts, st->enc->time_base, AV_TIME_BASE_Q);

    if (t < st->next_key) {
        return 0;
    }

    st->next_key = (t / job->spec->keyint + 1) * job->spec->keyint;

    return 1;
}
