/*
 * vconv: the transcode job: opens the input through the caller's read/seek
 * only, picks the streams, checks the limits, and drives packets through
 * decoders, filter graphs and encoders (vconv_filter.c, vconv_encode.c).
 */

#include <stdio.h>
#include <string.h>

#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/avstring.h>
#include <libavutil/cpu.h>
#include <libavutil/time.h>

#include "vconv_frame.h"
#include "vconv_info.h"
#include "vconv_pipeline.h"
#include "vconv_target.h"


#define VCONV_IO_BUFFER      65536
#define VCONV_PROBESIZE      (5 * 1024 * 1024)
#define VCONV_MAX_STREAMS    32
#define VCONV_PROGRESS_US    250000

/* vconv_frame_in(): the frame is dropped, the job goes on */
#define VCONV_SKIP           1


static int vconv_input_open(vconv_job_t *job);
static int vconv_input_read(void *opaque, uint8_t *buf, int size);
static int64_t vconv_input_seek(void *opaque, int64_t offset, int whence);
static int vconv_input_refuse(struct AVFormatContext *s, AVIOContext **pb,
    const char *url, int flags, AVDictionary **options);
static int vconv_input_probe(vconv_job_t *job);
static int vconv_input_audio(vconv_job_t *job);
static int vconv_audio_bounds(vconv_job_t *job, int rate, int channels);
static int vconv_select(vconv_job_t *job);
static int vconv_select_video(AVFormatContext *ifmt);
static int vconv_limits(vconv_job_t *job);
static int vconv_setup(vconv_job_t *job);
static int vconv_decoder(vconv_job_t *job, vconv_stream_t *st);
static int vconv_run(vconv_job_t *job);
static int vconv_run_empty(vconv_job_t *job);
static int vconv_copy(vconv_job_t *job, vconv_stream_t *st, AVPacket *pkt);
static int vconv_decode(vconv_job_t *job, vconv_stream_t *st,
    AVPacket *pkt);
static int vconv_frame_in(vconv_job_t *job, vconv_stream_t *st,
    AVFrame *frame);
static int vconv_filter_frame(vconv_job_t *job, vconv_stream_t *st,
    AVFrame *frame);
static int vconv_frame_time(vconv_job_t *job, vconv_stream_t *st,
    AVFrame *frame, int64_t *out);
static int vconv_filter_flush_old(vconv_job_t *job, vconv_stream_t *st,
    int64_t ts);
static void vconv_frame_end(vconv_job_t *job, vconv_stream_t *st,
    AVFrame *frame, int64_t ts);
static int vconv_drain(vconv_job_t *job, vconv_stream_t *st);
static int vconv_finish_stream(vconv_job_t *job, vconv_stream_t *st);
static int vconv_check_time(vconv_job_t *job, vconv_stream_t *st,
    int64_t ts);
static int vconv_check_size(vconv_job_t *job, int w, int h);
static void vconv_progress(vconv_job_t *job, int final);
static void vconv_cleanup(vconv_job_t *job);

static int vconv_finish_graph(vconv_job_t *job, vconv_stream_t *st);
static int vconv_outputs_transcode(vconv_job_t *job);
static int vconv_outputs_init(vconv_job_t *job);
static int vconv_outputs_select(vconv_job_t *job);
static int vconv_outputs_setup(vconv_job_t *job);
static int vconv_outputs_frame(vconv_job_t *job, vconv_stream_t *st,
    AVFrame *frame);
static int vconv_outputs_finish(vconv_job_t *job, vconv_stream_t *st);
static int vconv_outputs_end(vconv_job_t *job);
static double vconv_outputs_progress(vconv_job_t *job);
static void vconv_outputs_cleanup(vconv_job_t *job);
static void vconv_outputs_rungs(vconv_job_t *job);
static int vconv_outputs_own(vconv_job_t *job, int i);
static int vconv_outputs_own_frame(vconv_job_t *job, int i, AVFrame *frame);
static int vconv_outputs_own_end(vconv_job_t *job, int i);


static const vconv_limits_t  vconv_no_limits;


int
vconv_transcode(vconv_transcode_t *tc)
{
    int          rc;
    vconv_job_t  job;

    if (tc->spec->target_size > 0 && tc->target == NULL) {
        return vconv_target_transcode(tc);
    }


    memset(&job, 0, sizeof(job));
    memset(&tc->input, 0, sizeof(tc->input));
    memset(&tc->err, 0, sizeof(tc->err));
    tc->input.duration = -1;
    tc->output_bytes = 0;
    tc->output_duration = 0;
    tc->damaged_packets = 0;
    memset(&tc->sprite, 0, sizeof(tc->sprite));

    /*
     * A damaged header makes some demuxers ask for gigabytes at once
     * (the fuzzer: 1.9 GB in avformat_open_input); no buffer of a real
     * job comes near this, so libav refuses such a block (ENOMEM) and
     * the job fails cleanly instead of living on the job memory limit.
     */
    av_max_alloc(VCONV_MAX_ALLOC);

    job.tc = tc;
    job.spec = tc->spec;
    job.limits = tc->limits ? tc->limits : &vconv_no_limits;
    job.fmt = vconv_format(tc->spec->format);
    job.v.index = -1;
    job.a.index = -1;
    job.v.last_pts = AV_NOPTS_VALUE;
    job.a.last_pts = AV_NOPTS_VALUE;
    job.v.last_dts = AV_NOPTS_VALUE;
    job.v.end_ts = AV_NOPTS_VALUE;
    job.v.prev_ts = AV_NOPTS_VALUE;
    job.a.last_dts = AV_NOPTS_VALUE;

    job.pkt = av_packet_alloc();
    job.opkt = av_packet_alloc();
    job.frame = av_frame_alloc();
    job.filt = av_frame_alloc();
    job.held = av_frame_alloc();

    if (job.pkt == NULL || job.opkt == NULL || job.frame == NULL
        || job.filt == NULL || job.held == NULL)
    {
        rc = vconv_job_fail(&job, VCONV_E_NOMEM, 0, "job");
        goto done;
    }

    if (tc->spec->nouts > 1 || tc->spec->hls) {
        rc = vconv_outputs_transcode(&job);
        goto done;
    }

    rc = vconv_input_open(&job);
    if (rc != VCONV_OK) {
        goto done;
    }

    /* a probe: the opened input is all it needs */
    if (job.fmt->kind == VCONV_KIND_INFO) {
        if (tc->probed) {
            tc->probed(tc->data, &tc->input);
        }

        rc = vconv_info_run(&job);
        goto done;
    }

    rc = vconv_select(&job);
    if (rc != VCONV_OK) {
        goto done;
    }

    rc = vconv_limits(&job);
    if (rc != VCONV_OK) {
        goto done;
    }

    if (job.v.ist != NULL) {
        rc = vconv_metadata_dovi(&job, &job.v);
        if (rc != VCONV_OK) {
            goto done;
        }
    }

    if (tc->probed) {
        tc->probed(tc->data, &tc->input);
    }

    if (tc->target != NULL) {
        rc = vconv_target_plan(&job);
        if (rc != VCONV_OK) {
            goto done;
        }
    }

    if (job.fmt->kind == VCONV_KIND_SPRITE) {
        rc = vconv_sprite_run(&job);
        goto done;
    }

    rc = vconv_setup(&job);
    if (rc != VCONV_OK) {
        goto done;
    }

    rc = vconv_run(&job);

done:

    vconv_cleanup(&job);

    return rc;
}


static int
vconv_input_open(vconv_job_t *job)
{
    int                 rc, max, i, nopts;
    char                num[32];
    uint8_t            *buf;
    AVDictionary       *opts, **sopts;
    AVFormatContext    *ifmt;
    vconv_transcode_t  *tc;

    tc = job->tc;

    buf = av_malloc(VCONV_IO_BUFFER);
    if (buf == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "input buffer");
    }

    job->ipb = avio_alloc_context(buf, VCONV_IO_BUFFER, 0, job,
                                  vconv_input_read, NULL,
                                  tc->seek ? vconv_input_seek : NULL);
    if (job->ipb == NULL) {
        av_free(buf);
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "input");
    }

    if (tc->seek == NULL) {
        job->ipb->seekable = 0;
    }

    ifmt = avformat_alloc_context();
    if (ifmt == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "input");
    }

    job->ifmt = ifmt;
    ifmt->pb = job->ipb;
    ifmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    ifmt->io_open = vconv_input_refuse;
    ifmt->interrupt_callback.callback = vconv_job_interrupt;
    ifmt->interrupt_callback.opaque = job;

    rc = vconv_input_probe(job);
    if (rc != VCONV_OK) {
        return rc;
    }

    /*
     * While the input still grows, a seekable demuxer other than MP4's
     * reaches for the end (Matroska's cues, MPEG-TS's duration) and so
     * waits for the whole upload.  Read as a stream, they convert while
     * it arrives.  MP4 keeps seeking: its index may be at the end; so
     * does CAF, whose packet table (ALAC, AAC) may follow the data.
     */
    if (tc->growing && strcmp(ifmt->iformat->name, "mov,mp4,m4a,3gp,3g2,mj2")
                       != 0
        && strcmp(ifmt->iformat->name, "caf") != 0)
    {
        job->ipb->seekable = 0;
    }

    max = job->limits->max_streams > 0 ? job->limits->max_streams
                                       : VCONV_MAX_STREAMS;
    opts = NULL;

    if (job->limits->demuxer_options
        && av_dict_parse_string(&opts, job->limits->demuxer_options,
                                "=", ":", 0) < 0)
    {
        av_dict_free(&opts);
        return vconv_error_set(&tc->err, VCONV_E_INVALID_VALUE,
                               "bad demuxer options");
    }

    /* no protocol at all: the input is our AVIOContext, nothing else */
    av_dict_set(&opts, "protocol_whitelist", "", 0);
    av_dict_set(&opts, "format_whitelist",
                job->limits->input_formats ? job->limits->input_formats
                                           : VCONV_DEFAULT_INPUT_FORMATS,
                0);
    snprintf(num, sizeof(num), "%lld", (long long)
             (job->limits->probesize > 0 ? job->limits->probesize
                                         : VCONV_PROBESIZE));
    av_dict_set(&opts, "probesize", num, 0);
    av_dict_set(&opts, "analyzeduration", "10000000", 0);
    /* one more than allowed, so that "too many" can be told apart */
    av_dict_set_int(&opts, "max_streams", max + 1, 0);

    rc = avformat_open_input(&job->ifmt, NULL, ifmt->iformat, &opts);
    av_dict_free(&opts);

    if (rc < 0) {
        /* avformat_open_input() freed the context */
        job->ifmt = NULL;

        /*
         * Demuxers answer ENOMEM when avformat_new_stream() refuses a
         * stream past max_streams: the one allocation we bound here.
         */
        if (rc == AVERROR(ENOMEM) && !job->stop) {
            return vconv_error_set(&tc->err, VCONV_E_TOO_MANY_STREAMS,
                                   "the input has more than %d streams",
                                   max);
        }

        return vconv_job_fail(job, VCONV_E_UNSUPPORTED_INPUT, rc,
                              "cannot read the input");
    }

    ifmt = job->ifmt;

    if ((int) ifmt->nb_streams > max) {
        return vconv_error_set(&tc->err, VCONV_E_TOO_MANY_STREAMS,
                               "the input has more than %d streams", max);
    }

    /* before probing decodes anything: the header's word is enough */
    rc = vconv_input_audio(job);
    if (rc != VCONV_OK) {
        return rc;
    }

    /*
     * Bound what probing decoders may allocate for one picture.  Probing
     * may add streams (MPEG-TS, FLV): libav reads options only for the
     * first nopts, and only those are ours to free.
     */
    sopts = NULL;
    nopts = ifmt->nb_streams;
    if (job->limits->max_width > 0 && job->limits->max_height > 0
        && nopts > 0)
    {
        sopts = av_calloc(nopts, sizeof(AVDictionary *));
        if (sopts == NULL) {
            return vconv_job_fail(job, VCONV_E_NOMEM, 0, "input");
        }

        for (i = 0; i < nopts; i++) {
            av_dict_set_int(&sopts[i], "max_pixels",
                            (int64_t) job->limits->max_width
                            * job->limits->max_height, 0);
        }
    }

    rc = avformat_find_stream_info(ifmt, sopts);

    if (sopts != NULL) {
        for (i = 0; i < nopts; i++) {
            av_dict_free(&sopts[i]);
        }

        av_free(sopts);
    }

    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_UNSUPPORTED_INPUT, rc,
                              "cannot read the input streams");
    }

    if ((int) ifmt->nb_streams > max) {
        return vconv_error_set(&tc->err, VCONV_E_TOO_MANY_STREAMS,
                               "the input has more than %d streams", max);
    }

    /* probing may have found streams or parameters the header had not */
    rc = vconv_input_audio(job);
    if (rc != VCONV_OK) {
        return rc;
    }

    av_strlcpy(tc->input.format, ifmt->iformat->name,
               sizeof(tc->input.format));
    tc->input.streams = ifmt->nb_streams;
    if (ifmt->duration != AV_NOPTS_VALUE && ifmt->duration > 0) {
        tc->input.duration = ifmt->duration / (double) AV_TIME_BASE;
    }

    return VCONV_OK;
}


/*
 * No real file has an audio stream past these bounds; converting one
 * would have the resampler allocate gigabytes for its filter (a WAV that
 * says 855 MHz) or fail deep in the graph.  Any stream counts, not only
 * the one we would pick: probing decodes them all.
 */
static int
vconv_input_audio(vconv_job_t *job)
{
    unsigned            i;
    AVCodecParameters  *par;

    for (i = 0; i < job->ifmt->nb_streams; i++) {
        par = job->ifmt->streams[i]->codecpar;

        if (par->codec_type == AVMEDIA_TYPE_AUDIO
            && vconv_audio_bounds(job, par->sample_rate,
                                  par->ch_layout.nb_channels)
               != VCONV_OK)
        {
            return VCONV_ERROR;
        }
    }

    return VCONV_OK;
}


static int
vconv_audio_bounds(vconv_job_t *job, int rate, int channels)
{
    if (rate > VCONV_AUDIO_MAX_RATE) {
        return vconv_error_set(&job->tc->err, VCONV_E_BAD_SAMPLE_RATE,
                               "the audio's sample rate is %d Hz; at most "
                               "%d Hz can be converted", rate,
                               VCONV_AUDIO_MAX_RATE);
    }

    if (channels > VCONV_AUDIO_MAX_CHANNELS) {
        return vconv_error_set(&job->tc->err, VCONV_E_BAD_AUDIO_LAYOUT,
                               "the input has %d audio channels; at most "
                               "%d can be converted", channels,
                               VCONV_AUDIO_MAX_CHANNELS);
    }

    return VCONV_OK;
}


/*
 * We probe ourselves, before avformat_open_input(), to tell "not media"
 * (415 unsupported_input) from "media of a kind we refuse" (415
 * input_format_not_allowed, e.g. an HLS playlist that would open URLs).
 */
static int
vconv_input_probe(vconv_job_t *job)
{
    int                   rc;
    const char           *allow;
    const AVInputFormat  *fmt;

    fmt = NULL;
    rc = av_probe_input_buffer2(job->ipb, &fmt, "", NULL, 0,
                                job->limits->probesize > 0
                                ? job->limits->probesize : VCONV_PROBESIZE);

    if (rc < 0 || fmt == NULL) {
        if (job->stop || (job->read_err && job->read_err != AVERROR_EOF)) {
            return vconv_job_fail(job, VCONV_E_IO, job->read_err,
                                  "input read");
        }

        return vconv_error_set(&job->tc->err, VCONV_E_UNSUPPORTED_INPUT,
                               "the input is not a media file we know");
    }

    allow = job->limits->input_formats ? job->limits->input_formats
                                       : VCONV_DEFAULT_INPUT_FORMATS;

    if (av_match_list(fmt->name, allow, ',') <= 0) {
        return vconv_error_set(&job->tc->err,
                               VCONV_E_INPUT_FORMAT_NOT_ALLOWED,
                               "input format \"%s\" is not allowed",
                               fmt->name);
    }

    job->ifmt->iformat = fmt;

    return VCONV_OK;
}


static int
vconv_input_read(void *opaque, uint8_t *buf, int size)
{
    int           n;
    vconv_job_t  *job = opaque;

    n = job->tc->read(job->tc->io_opaque, buf, size);

    if (n == 0) {
        return AVERROR_EOF;
    }

    if (n < 0 && n != AVERROR_EOF) {
        job->read_err = n;
        vconv_job_interrupt(job);

        /* the reader's way to say no byte came for too long */
        if (job->stop == VCONV_E_NONE && n == AVERROR(ETIMEDOUT)) {
            job->stop = VCONV_E_STALLED;
        }
    }

    return n;
}


static int64_t
vconv_input_seek(void *opaque, int64_t offset, int whence)
{
    vconv_job_t  *job = opaque;

    return job->tc->seek(job->tc->io_opaque, offset, whence);
}


/* playlists, references, image patterns: nothing opens another file */
static int
vconv_input_refuse(struct AVFormatContext *s, AVIOContext **pb,
    const char *url, int flags, AVDictionary **options)
{
    av_log(s, AV_LOG_WARNING, "refused to open a nested input\n");

    return AVERROR(EPERM);
}


static int
vconv_select(vconv_job_t *job)
{
    int                 want_audio, i;
    AVStream           *ist;
    AVFormatContext    *ifmt;
    const vconv_spec_t *spec;
    vconv_input_info_t *in;

    ifmt = job->ifmt;
    spec = job->spec;
    in = &job->tc->input;

    if (job->fmt->kind != VCONV_KIND_AUDIO) {
        job->v.index = vconv_select_video(ifmt);
    }

    want_audio = job->fmt->kind == VCONV_KIND_AUDIO
                 || (job->fmt->kind == VCONV_KIND_VIDEO && spec->audio
                     && (spec->aencoder[0] || spec->acopy));

    if (want_audio) {
        job->a.index = av_find_best_stream(ifmt, AVMEDIA_TYPE_AUDIO, -1,
                                           job->v.index, NULL, 0);
        if (job->a.index < 0) {
            job->a.index = -1;

            if (job->fmt->kind == VCONV_KIND_AUDIO) {
                return vconv_error_set(&job->tc->err, VCONV_E_NO_AUDIO,
                                       "the input has no audio stream");
            }
        }
    }

    /* Matroska holds sound alone (.mka); mp4 and webm have m4a, opus */
    if (job->fmt->kind != VCONV_KIND_AUDIO && job->v.index < 0
        && (job->a.index < 0 || strcmp(job->fmt->muxer, "matroska") != 0))
    {
        return vconv_error_set(&job->tc->err, VCONV_E_NO_VIDEO,
                               "the input has no video stream");
    }

    if (job->v.index >= 0) {
        ist = ifmt->streams[job->v.index];
        job->v.ist = ist;
        job->v.copy = spec->vcopy;
        job->v.rotation = vconv_filter_rotation(ist, &job->v.turn);
    }

    /* the caller hears about the input's video even when we drop it */
    i = job->v.index >= 0 ? job->v.index : vconv_select_video(ifmt);
    if (i >= 0) {
        ist = ifmt->streams[i];
        in->width = ist->codecpar->width;
        in->height = ist->codecpar->height;
        av_strlcpy(in->vcodec, avcodec_get_name(ist->codecpar->codec_id),
                   sizeof(in->vcodec));
    }

    if (job->a.index >= 0) {
        ist = ifmt->streams[job->a.index];
        job->a.ist = ist;
        job->a.copy = spec->acopy;
        job->a.base_ts = ist->start_time != AV_NOPTS_VALUE
                         ? ist->start_time : 0;
    }

    i = job->a.index >= 0
        ? job->a.index
        : av_find_best_stream(ifmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (i >= 0) {
        ist = ifmt->streams[i];
        av_strlcpy(in->acodec, avcodec_get_name(ist->codecpar->codec_id),
                   sizeof(in->acodec));
    }

    return VCONV_OK;
}


/* the best video stream that is a moving picture, not cover art */
static int
vconv_select_video(AVFormatContext *ifmt)
{
    int        idx;
    unsigned   i;
    AVStream  *st;

    idx = av_find_best_stream(ifmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);

    if (idx >= 0
        && !(ifmt->streams[idx]->disposition & AV_DISPOSITION_ATTACHED_PIC))
    {
        return idx;
    }

    for (i = 0; i < ifmt->nb_streams; i++) {
        st = ifmt->streams[i];

        if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO
            && !(st->disposition & AV_DISPOSITION_ATTACHED_PIC)
            && st->codecpar->width > 0)
        {
            return (int) i;
        }
    }

    return -1;
}


static int
vconv_limits(vconv_job_t *job)
{
    int64_t                 dur, file_start;
    const vconv_limits_t   *lim;
    AVFormatContext        *ifmt;

    lim = job->limits;
    ifmt = job->ifmt;

    if (job->v.ist != NULL) {
        if (vconv_check_size(job, job->v.ist->codecpar->width,
                             job->v.ist->codecpar->height)
            != VCONV_OK)
        {
            return VCONV_ERROR;
        }
    }

    dur = ifmt->duration != AV_NOPTS_VALUE && ifmt->duration > 0
          ? ifmt->duration : 0;

    if (lim->max_duration > 0 && dur > lim->max_duration) {
        return vconv_error_set(&job->tc->err, VCONV_E_DURATION_LIMIT,
                               "the input lasts %.1f s, more than %.1f s",
                               dur / 1e6, lim->max_duration / 1e6);
    }

    job->start = job->spec->start;
    job->length = job->spec->duration;

    if (job->fmt->kind == VCONV_KIND_IMAGE) {
        /* a picture from a bit in: the first frame is often black */
        if (!job->spec->start_set) {
            job->start = dur / 10;
        }

        job->length = 0;
    }

    /* a picture asked past the end of a short clip is its last one */
    if (dur > 0 && job->start > 0 && job->start >= dur
        && job->fmt->kind != VCONV_KIND_IMAGE)
    {
        return vconv_error_set(&job->tc->err, VCONV_E_START_BEYOND_END,
                               "start %.3f s is beyond the end (%.3f s)",
                               job->start / 1e6, dur / 1e6);
    }

    file_start = ifmt->start_time != AV_NOPTS_VALUE ? ifmt->start_time : 0;
    job->offset = av_sat_add64(file_start, job->start);

    if (dur > 0) {
        dur -= job->start;
        if (job->length > 0 && job->length < dur) {
            dur = job->length;
        }

        job->total = dur / 1e6;

    } else if (job->length > 0) {
        job->total = job->length / 1e6;
    }

    return VCONV_OK;
}


static int
vconv_setup(vconv_job_t *job)
{
    int               rc;
    unsigned          i;
    AVStream         *ist;
    AVFormatContext  *ifmt;

    ifmt = job->ifmt;

    for (i = 0; i < ifmt->nb_streams; i++) {
        if ((int) i != job->v.index && (int) i != job->a.index) {
            ifmt->streams[i]->discard = AVDISCARD_ALL;
        }
    }

    rc = vconv_output_open(job);
    if (rc != VCONV_OK) {
        return rc;
    }

    if (job->v.ist != NULL) {
        if (job->v.copy) {
            rc = vconv_output_copy(job, &job->v);

        } else {
            rc = vconv_decoder(job, &job->v);
            if (rc == VCONV_OK) {
                rc = vconv_metadata_hdr_peek(job, &job->v);
            }

            if (rc == VCONV_OK) {
                rc = vconv_output_video(job, &job->v);
            }
        }

        if (rc != VCONV_OK) {
            return rc;
        }
    }

    if (job->a.ist != NULL) {
        if (job->a.copy) {
            rc = vconv_output_copy(job, &job->a);

        } else {
            rc = vconv_decoder(job, &job->a);
            if (rc == VCONV_OK) {
                rc = vconv_output_audio(job, &job->a);
            }
        }

        if (rc != VCONV_OK) {
            return rc;
        }
    }

    /*
     * Land on the key frame before start; the graphs trim the rest.  Only
     * with an index: without one (MPEG-TS) a seek lands anywhere, maybe
     * far from a key frame, and decoding from the top is what works.
     */
    ist = job->v.ist ? job->v.ist : job->a.ist;

    if (job->start > 0 && job->ipb->seekable && ist != NULL
        && avformat_index_get_entries_count(ist) > 0)
    {
        rc = avformat_seek_file(ifmt, -1, INT64_MIN, job->offset,
                                job->offset, 0);
        job->seeked = rc >= 0;

        if (job->seeked) {
            vconv_metadata_unpeek(job);
        }
    }

    rc = vconv_metadata_apply(job);
    if (rc != VCONV_OK) {
        return rc;
    }

    return vconv_output_header(job);
}


static int
vconv_decoder(vconv_job_t *job, vconv_stream_t *st)
{
    int              rc;
    const AVCodec   *codec;
    AVCodecContext  *dec;

    codec = avcodec_find_decoder(st->ist->codecpar->codec_id);
    if (codec == NULL) {
        return vconv_error_set(&job->tc->err, VCONV_E_UNSUPPORTED_INPUT,
                               "no decoder for %s",
                               avcodec_get_name(st->ist->codecpar->codec_id));
    }

    dec = avcodec_alloc_context3(codec);
    if (dec == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "decoder");
    }

    st->dec = dec;

    rc = avcodec_parameters_to_context(dec, st->ist->codecpar);
    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_NOMEM, rc, "decoder");
    }

    dec->pkt_timebase = st->ist->time_base;

    /*
     * A decoder's frame threads each hold their own frames: past one a
     * core (libav's own choice) they cost memory and bring no speed.
     */
    dec->thread_count = job->limits->codec_threads;

    if (dec->thread_count > av_cpu_count() + 1) {
        dec->thread_count = av_cpu_count() + 1;
    }

    if (job->limits->max_width > 0 && job->limits->max_height > 0) {
        dec->max_pixels = (int64_t) job->limits->max_width
                          * job->limits->max_height;
    }

    rc = avcodec_open2(dec, codec, NULL);
    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_DECODE, rc, "decoder");
    }

    if (codec->type == AVMEDIA_TYPE_VIDEO
        && (dec->width <= 0 || dec->height <= 0))
    {
        return vconv_error_set(&job->tc->err, VCONV_E_DECODE,
                               "the video has no picture size");
    }

    if (codec->type == AVMEDIA_TYPE_AUDIO
        && (dec->sample_rate <= 0 || dec->ch_layout.nb_channels <= 0))
    {
        return vconv_error_set(&job->tc->err, VCONV_E_DECODE,
                               "the audio has no sample rate or channels");
    }

    return VCONV_OK;
}


static int
vconv_run(vconv_job_t *job)
{
    int              rc;
    AVPacket        *pkt;
    vconv_stream_t  *st;

    pkt = job->pkt;

    for ( ;; ) {
        if (vconv_job_interrupt(job)) {
            return vconv_job_fail(job, job->stop, 0, NULL);
        }

        if ((job->v.index < 0 || job->v.done)
            && (job->a.index < 0 || job->a.done))
        {
            break;
        }

        rc = vconv_metadata_read(job, pkt);

        if (rc < 0) {
            if (job->stop) {
                return vconv_job_fail(job, job->stop, 0, NULL);
            }

            if (job->read_err && job->read_err != AVERROR_EOF) {
                return vconv_job_fail(job, VCONV_E_IO, job->read_err,
                                      "input read");
            }

            /* a damaged tail ends the input like the ffmpeg program does */
            if (rc != AVERROR_EOF) {
                av_log(job->ifmt, AV_LOG_WARNING, "input ends early: %s\n",
                       av_err2str(rc));
            }

            break;
        }

        if (pkt->stream_index == job->v.index) {
            st = &job->v;

        } else if (pkt->stream_index == job->a.index) {
            st = &job->a;

        } else {
            av_packet_unref(pkt);
            continue;
        }

        if (st->done) {
            av_packet_unref(pkt);
            continue;
        }

        rc = st->copy ? vconv_copy(job, st, pkt) : vconv_decode(job, st, pkt);
        av_packet_unref(pkt);

        if (rc != VCONV_OK) {
            return rc;
        }

        vconv_progress(job, 0);
    }

    if (job->v.index >= 0) {
        rc = vconv_finish_stream(job, &job->v);
        if (rc != VCONV_OK) {
            return rc;
        }
    }

    if (job->a.index >= 0) {
        rc = vconv_finish_stream(job, &job->a);
        if (rc != VCONV_OK) {
            return rc;
        }
    }

    if (job->nouts > 0) {
        return vconv_outputs_end(job);
    }

    rc = vconv_run_empty(job);
    if (rc != VCONV_OK) {
        return rc;
    }

    rc = vconv_output_trailer(job);
    if (rc != VCONV_OK) {
        return rc;
    }

    job->tc->output_duration = job->out_time;
    vconv_progress(job, 1);

    return VCONV_OK;
}


/* the input is read: an output that got no frame is the job's failure */
static int
vconv_run_empty(vconv_job_t *job)
{
    if ((job->v.index >= 0 && job->v.frames == 0)
        || (job->a.index >= 0 && job->a.frames == 0 && job->v.index < 0))
    {
        if (job->start > 0) {
            return vconv_error_set(&job->tc->err, VCONV_E_START_BEYOND_END,
                                   "nothing after start %.3f s",
                                   job->start / 1e6);
        }

        if (job->tc->damaged_packets > 0) {
            return vconv_error_set(&job->tc->err, VCONV_E_DECODE,
                                   "no frame could be decoded: %lld "
                                   "damaged packets",
                                   (long long) job->tc->damaged_packets);
        }

        return vconv_error_set(&job->tc->err, VCONV_E_EMPTY_OUTPUT,
                               "no frame could be decoded");
    }

    return VCONV_OK;
}


static int
vconv_copy(vconv_job_t *job, vconv_stream_t *st, AVPacket *pkt)
{
    int64_t     off, ts;
    AVRational  tb;

    tb = st->ist->time_base;
    off = av_rescale_q(job->offset, AV_TIME_BASE_Q, tb);
    ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;

    if (ts != AV_NOPTS_VALUE) {
        if (vconv_check_time(job, st, ts) != VCONV_OK) {
            return VCONV_ERROR;
        }

        if (job->length > 0
            && av_sat_sub64(ts, off)
               >= av_rescale_q(job->length, AV_TIME_BASE_Q, tb))
        {
            st->done = 1;
            return VCONV_OK;
        }
    }

    if (!st->started) {
        /*
         * Packets can only start on a key frame.  After a seek that is the
         * one just before start; without one, the first one after it.
         */
        if (!(pkt->flags & AV_PKT_FLAG_KEY)) {
            return VCONV_OK;
        }

        if (!job->seeked && ts != AV_NOPTS_VALUE && ts < off) {
            return VCONV_OK;
        }

        st->started = 1;
    }

    if (pkt->pts != AV_NOPTS_VALUE) {
        pkt->pts = av_sat_sub64(pkt->pts, off);
    }

    if (pkt->dts != AV_NOPTS_VALUE) {
        pkt->dts = av_sat_sub64(pkt->dts, off);
    }

    st->frames++;

    return vconv_output_packet(job, st, pkt, tb);
}


static int
vconv_decode(vconv_job_t *job, vconv_stream_t *st, AVPacket *pkt)
{
    int  rc;

    rc = avcodec_send_packet(st->dec, pkt);

    if (rc < 0 && rc != AVERROR(EAGAIN) && rc != AVERROR_EOF) {
        if (rc == AVERROR(ENOMEM)) {
            return vconv_job_fail(job, VCONV_E_NOMEM, rc, "decode");
        }

        if (st == &job->v
            && vconv_check_size(job, st->dec->width, st->dec->height)
               != VCONV_OK)
        {
            return VCONV_ERROR;
        }

        /* one damaged packet is not worth the whole job */
        av_log(st->dec, AV_LOG_WARNING, "packet skipped: %s\n",
               av_err2str(rc));
        job->tc->damaged_packets++;
        return VCONV_OK;
    }

    return vconv_drain(job, st);
}


/* moves every frame the decoder has into the graph, and on */
static int
vconv_drain(vconv_job_t *job, vconv_stream_t *st)
{
    int  rc;

    for ( ;; ) {
        rc = avcodec_receive_frame(st->dec, job->frame);

        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) {
            return VCONV_OK;
        }

        if (rc < 0) {
            if (st == &job->v
                && vconv_check_size(job, st->dec->width, st->dec->height)
                   != VCONV_OK)
            {
                return VCONV_ERROR;
            }

            av_log(st->dec, AV_LOG_WARNING, "frame skipped: %s\n",
                   av_err2str(rc));
            job->tc->damaged_packets++;
            continue;
        }

        if (st == &job->v) {
            st->decoded++;

            if (st->decoded > (job->limits->max_frames > 0
                               ? job->limits->max_frames : VCONV_MAX_FRAMES))
            {
                av_frame_unref(job->frame);
                return vconv_error_set(&job->tc->err, VCONV_E_FRAME_LIMIT,
                                       "the input has more video frames "
                                       "than the bound of %lld", (long long)
                                       (job->limits->max_frames > 0
                                        ? job->limits->max_frames
                                        : VCONV_MAX_FRAMES));
            }
        }

        rc = vconv_frame_in(job, st, job->frame);
        if (rc == VCONV_OK) {
            rc = job->nouts > 0 ? vconv_outputs_frame(job, st, job->frame)
                                : vconv_filter_frame(job, st, job->frame);

        } else if (rc == VCONV_SKIP) {
            rc = VCONV_OK;
        }

        av_frame_unref(job->frame);

        if (rc != VCONV_OK || st->done) {
            return rc;
        }
    }
}


/*
 * The decoder's frame before it meets the graph: what no graph can take
 * is refused (the job, when the input says so; the frame, when it is a
 * damaged one), and float samples are made finite within +-1.0, so no
 * encoder ever sees what a damaged stream decodes to.
 */
static int
vconv_frame_in(vconv_job_t *job, vconv_stream_t *st, AVFrame *frame)
{
    int64_t  rc;

    if (st == &job->v) {
        if (vconv_frame_check_video(frame) < 0) {
            av_log(st->dec, AV_LOG_WARNING, "damaged picture skipped\n");
            job->tc->damaged_packets++;
            return VCONV_SKIP;
        }

        return VCONV_OK;
    }

    if (vconv_audio_bounds(job, frame->sample_rate,
                           frame->ch_layout.nb_channels)
        != VCONV_OK)
    {
        return VCONV_ERROR;
    }

    if (vconv_frame_check_audio(frame) < 0) {
        av_log(st->dec, AV_LOG_WARNING, "damaged audio frame skipped\n");
        job->tc->damaged_packets++;
        return VCONV_SKIP;
    }

    rc = vconv_frame_clamp_audio(frame);

    if (rc == AVERROR(ENOMEM)) {
        return vconv_job_fail(job, VCONV_E_NOMEM, (int) rc, "audio frame");
    }

    if (rc < 0) {
        av_log(st->dec, AV_LOG_WARNING, "damaged audio frame skipped\n");
        job->tc->damaged_packets++;
        return VCONV_SKIP;
    }

    /* once a stream: a damaged one would say it for every frame */
    if (rc > 0 && st->clamped == 0) {
        av_log(st->dec, AV_LOG_WARNING,
               "samples outside -1..1 or not finite: clamped\n");
    }

    st->clamped += rc;

    return VCONV_OK;
}


static int
vconv_filter_frame(vconv_job_t *job, vconv_stream_t *st, AVFrame *frame)
{
    int      rc, rebuild;
    int64_t  ts;

    if (frame != NULL) {
        if (st == &job->v) {
            if (vconv_check_size(job, frame->width, frame->height)
                != VCONV_OK)
            {
                return VCONV_ERROR;
            }

            rebuild = frame->width != st->in_w || frame->height != st->in_h
                      || frame->format != st->in_fmt;

        } else {
            /* abuffer refuses a new layout even of the same count */
            rebuild = frame->sample_rate != st->in_w
                      || frame->ch_layout.nb_channels != st->in_h
                      || frame->format != st->in_fmt
                      || av_channel_layout_compare(&frame->ch_layout,
                                                   &st->in_layout)
                         != 0;
        }

        if (vconv_frame_time(job, st, frame, &ts) != VCONV_OK) {
            return VCONV_ERROR;
        }

        frame->pts = ts;

        /*
         * Progress by what went in: a palette (GIF), libwebp_anim and a
         * trim's tail give nothing out until the end of the input.
         */
        if (ts != AV_NOPTS_VALUE
            && ts * av_q2d(st->ist->time_base) > job->in_time)
        {
            job->in_time = ts * av_q2d(st->ist->time_base);
        }

        if (st == &job->v && ts != AV_NOPTS_VALUE) {
            vconv_frame_end(job, st, frame, ts);
        }

        if (st == &job->v && job->fmt->kind == VCONV_KIND_IMAGE
            && ts != AV_NOPTS_VALUE && ts < 0)
        {
            /*
             * Before the start: kept, for a clip whose one picture (a
             * still with sound, a single frame) is all there is before
             * it, or whose end comes before the asked start.
             */
            av_frame_unref(job->held);

            rc = av_frame_ref(job->held, frame);
            if (rc < 0) {
                return vconv_job_fail(job, VCONV_E_NOMEM, rc, "frame");
            }

            return VCONV_OK;
        }

        if (st->graph != NULL && rebuild && st == &job->v) {
            rc = vconv_filter_flush_old(job, st, ts);
            if (rc != VCONV_OK || st->done) {
                return rc;
            }
        }

        if (st->graph == NULL || rebuild) {
            rc = st == &job->v ? vconv_filter_video_init(job, st, frame)
                               : vconv_filter_audio_init(job, st, frame);
            if (rc != VCONV_OK) {
                return rc;
            }
        }

    } else if (st->graph == NULL) {
        /* nothing was ever decoded */
        return VCONV_OK;
    }

    if (frame == NULL && st == &job->v && st->end_ts != AV_NOPTS_VALUE) {
        /*
         * The graph ends where the last frame ends, not where it starts:
         * fps repeats it up to there, and the encoder is told.
         */
        rc = av_buffersrc_close(st->src, st->end_ts, AV_BUFFERSRC_FLAG_PUSH);

    } else {
        rc = av_buffersrc_add_frame_flags(st->src, frame,
                                          AV_BUFFERSRC_FLAG_KEEP_REF);
    }

    /* EOF: a trim has closed the graph, what is left is in the sink */
    if (rc < 0 && rc != AVERROR_EOF) {
        return vconv_filter_error(job, st, rc, "av_buffersrc_add_frame");
    }

    for ( ;; ) {
        rc = av_buffersink_get_frame(st->sink, job->filt);

        if (rc == AVERROR(EAGAIN)) {
            return VCONV_OK;
        }

        if (rc == AVERROR_EOF) {
            break;
        }

        if (rc < 0) {
            return vconv_filter_error(job, st, rc, "av_buffersink_get_frame");
        }

        rc = vconv_output_frame(job, st, job->filt);
        av_frame_unref(job->filt);

        if (rc != VCONV_OK) {
            return rc;
        }

        if (job->fmt->kind == VCONV_KIND_IMAGE && st == &job->v) {
            /* the one picture is out */
            break;
        }
    }

    rc = vconv_output_frame(job, st, NULL);
    st->done = 1;

    return rc;
}


/*
 * The picture changed size or format mid-stream: the graph built for the
 * old one still holds frames (fps, a palette), which go out, up to where
 * the new picture starts, before a new graph replaces it.
 */
static int
vconv_filter_flush_old(vconv_job_t *job, vconv_stream_t *st, int64_t ts)
{
    int  rc;

    rc = ts != AV_NOPTS_VALUE
         ? av_buffersrc_close(st->src, ts, AV_BUFFERSRC_FLAG_PUSH)
         : av_buffersrc_add_frame(st->src, NULL);

    if (rc < 0 && rc != AVERROR_EOF) {
        return vconv_job_fail(job, VCONV_E_INTERNAL, rc, "filter");
    }

    for ( ;; ) {
        rc = av_buffersink_get_frame(st->sink, job->filt);

        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) {
            return VCONV_OK;
        }

        if (rc < 0) {
            return vconv_job_fail(job, VCONV_E_INTERNAL, rc, "filter");
        }

        rc = vconv_output_frame(job, st, job->filt);
        av_frame_unref(job->filt);

        if (rc != VCONV_OK) {
            return rc;
        }

        if (job->fmt->kind == VCONV_KIND_IMAGE) {
            /* the one picture is out */
            st->done = 1;
            return vconv_output_frame(job, st, NULL);
        }
    }
}


/*
 * The frame's time in the output's clock (0 is the asked start), in the
 * input stream's time base; AV_NOPTS_VALUE if it has none.  The time is
 * checked against max_duration on the way.
 */
static int
vconv_frame_time(vconv_job_t *job, vconv_stream_t *st, AVFrame *frame,
    int64_t *out)
{
    int64_t  ts;

    ts = frame->best_effort_timestamp;
    if (ts == AV_NOPTS_VALUE) {
        ts = frame->pts;
    }

    if (st == &job->a) {
        /*
         * A damaged stream's frames may carry no time; they follow the
         * last one that did, by their samples, or the graph and the
         * muxer make up a clock that ends at 0 s.
         */
        if (ts == AV_NOPTS_VALUE) {
            ts = av_sat_add64(st->base_ts,
                              av_rescale_q(st->base_samples,
                                           (AVRational) {
                                               1, frame->sample_rate },
                                           st->ist->time_base));

        } else {
            st->base_ts = ts;
            st->base_samples = 0;
        }

        st->base_samples += frame->nb_samples;
    }

    if (ts != AV_NOPTS_VALUE) {
        if (vconv_check_time(job, st, ts) != VCONV_OK) {
            return VCONV_ERROR;
        }

        ts = av_sat_sub64(ts, av_rescale_q(job->offset, AV_TIME_BASE_Q,
                                           st->ist->time_base));
    }

    *out = ts;

    return VCONV_OK;
}


/*
 * Where a video frame ends: by its own duration (a GIF's delay, a
 * container's sample duration), else by the step from the frame before,
 * else by the frame rate.  The last frame's end is the input's end.
 */
static void
vconv_frame_end(vconv_job_t *job, vconv_stream_t *st, AVFrame *frame,
    int64_t ts)
{
    int64_t     dur, end;
    AVRational  fr;

    dur = frame->pkt_duration;

    if (dur <= 0 && st->prev_ts != AV_NOPTS_VALUE && ts > st->prev_ts) {
        dur = av_sat_sub64(ts, st->prev_ts);
    }

    if (dur <= 0) {
        fr = av_guess_frame_rate(job->ifmt, st->ist, NULL);
        dur = fr.num > 0 && fr.den > 0
              ? av_rescale_q(1, av_inv_q(fr), st->ist->time_base) : 0;
    }

    st->prev_ts = ts;

    if (dur <= 0) {
        return;
    }

    end = av_sat_add64(ts, dur);

    if (st->end_ts == AV_NOPTS_VALUE || end > st->end_ts) {
        st->end_ts = end;
    }
}


/* at the end of the input: flush decoder, graph and encoder, in order */
static int
vconv_finish_stream(vconv_job_t *job, vconv_stream_t *st)
{
    int  rc;

    if (st->done || st->copy) {
        st->done = 1;
        return VCONV_OK;
    }

    /*
     * The decoder decodes what it still holds here: an error is a damaged
     * last packet, skipped like one mid-stream; the decoder drains on.
     */
    rc = avcodec_send_packet(st->dec, NULL);
    if (rc == AVERROR(ENOMEM)) {
        return vconv_job_fail(job, VCONV_E_NOMEM, rc, "decoder flush");
    }

    if (rc < 0 && rc != AVERROR_EOF) {
        av_log(st->dec, AV_LOG_WARNING, "packet skipped at the end: %s\n",
               av_err2str(rc));
        job->tc->damaged_packets++;
    }

    rc = vconv_drain(job, st);
    if (rc != VCONV_OK || st->done) {
        return rc;
    }

    if (job->nouts > 0) {
        return vconv_outputs_finish(job, st);
    }

    return vconv_finish_graph(job, st);
}


/* the decoder is drained: what the graph and the encoder still hold */
static int
vconv_finish_graph(vconv_job_t *job, vconv_stream_t *st)
{
    int      rc;
    int64_t  ts;

    if (st->graph == NULL && job->held->buf[0] != NULL) {
        /* nothing came after the start we picked: the last picture */
        ts = av_rescale_q(job->offset, AV_TIME_BASE_Q, st->ist->time_base);
        job->held->best_effort_timestamp = ts;
        job->held->pts = ts;

        rc = vconv_filter_frame(job, st, job->held);
        av_frame_unref(job->held);

        if (rc != VCONV_OK || st->done) {
            return rc;
        }
    }

    if (st->graph == NULL) {
        st->done = 1;
        return vconv_output_frame(job, st, NULL);
    }

    return vconv_filter_frame(job, st, NULL);
}


/*
 * max_duration against what the packets and frames say, not the header;
 * in doubles, as a hostile file's times overflow any integer clock
 */
static int
vconv_check_time(vconv_job_t *job, vconv_stream_t *st, int64_t ts)
{
    double   t;
    int64_t  file_start;

    if (job->limits->max_duration <= 0) {
        return VCONV_OK;
    }

    file_start = job->ifmt->start_time != AV_NOPTS_VALUE
                 ? job->ifmt->start_time : 0;
    t = ts * av_q2d(st->ist->time_base) - file_start / 1e6;

    if (t > job->limits->max_duration / 1e6) {
        return vconv_error_set(&job->tc->err, VCONV_E_DURATION_LIMIT,
                               "the input lasts more than %.1f s",
                               job->limits->max_duration / 1e6);
    }

    return VCONV_OK;
}


static int
vconv_check_size(vconv_job_t *job, int w, int h)
{
    const vconv_limits_t  *lim;

    lim = job->limits;

    if ((lim->max_width > 0 && w > lim->max_width)
        || (lim->max_height > 0 && h > lim->max_height))
    {
        return vconv_error_set(&job->tc->err, VCONV_E_RESOLUTION_LIMIT,
                               "the video is %dx%d, more than %dx%d",
                               w, h, lim->max_width, lim->max_height);
    }

    return VCONV_OK;
}


static void
vconv_progress(vconv_job_t *job, int final)
{
    double   f;
    int64_t  now, size;

    if (job->tc->progress == NULL) {
        return;
    }

    now = av_gettime_relative();
    if (!final && now - job->last_progress < VCONV_PROGRESS_US) {
        return;
    }

    job->last_progress = now;

    if (final) {
        f = 1.0;

    } else if (job->nouts > 0) {
        f = vconv_outputs_progress(job);

    } else if (job->total > 0) {
        f = (job->out_time > job->in_time ? job->out_time : job->in_time)
            / job->total;

    } else if (job->ipb != NULL && (size = avio_size(job->ipb)) > 0) {
        /* no duration (MPEG-TS while it uploads): how much was read */
        f = (double) avio_tell(job->ipb) / size;

    } else {
        f = 0;
    }

    f = f < 0 ? 0 : (f > 0.99 && !final ? 0.99 : f);

    /* never backwards: audio and video are read at their own pace */
    if (f < job->fraction) {
        f = job->fraction;
    }

    job->fraction = f;

    job->tc->progress(job->tc->data, f);
}


static void
vconv_cleanup(vconv_job_t *job)
{
    vconv_stream_t  *st;
    int              i;

    vconv_outputs_cleanup(job);

    for (i = 0; i < 2; i++) {
        st = i ? &job->a : &job->v;
        vconv_filter_free(st);
        av_channel_layout_uninit(&st->in_layout);
        avcodec_free_context(&st->dec);
        avcodec_free_context(&st->enc);
    }

    vconv_output_close(job);
    vconv_metadata_free(job);

    avformat_close_input(&job->ifmt);

    if (job->ipb != NULL) {
        av_freep(&job->ipb->buffer);
        avio_context_free(&job->ipb);
    }

    av_packet_free(&job->pkt);
    av_packet_free(&job->opkt);
    av_frame_free(&job->frame);
    av_frame_free(&job->filt);
    av_frame_free(&job->held);
}


/*
 * A list of formats (issue 13): one demux and one decode, and per output
 * a job of its own (graphs, encoders, muxer, trim, error, bytes) that is
 * handed every decoded frame.  Each keeps its own filter graph fed with
 * the same AVFrame rather than one graph with split/asplit: the outputs
 * then keep everything a single job does per output (rebuilding a graph
 * on a size change, trims, the held picture of a still) unchanged, and
 * one that has what it needs (a still, a short trim) stops taking
 * frames without holding the others up.
 */
typedef struct vconv_out_s {
    vconv_job_t          job;
    vconv_transcode_t    tc;
    vconv_spec_t         spec;
    vconv_limits_t       limits;
    int                  skip;      /* an hls rung above the input */
    int                  own;       /* info or sprite: no graph, no muxer */
    vconv_sprite_ctx_t  *sprite;
} vconv_output_job_t;


static int
vconv_outputs_transcode(vconv_job_t *job)
{
    int                 rc, i;
    vconv_output_job_t *o;
    vconv_transcode_t  *tc;

    tc = job->tc;

    rc = vconv_outputs_init(job);

    if (rc == VCONV_OK) {
        rc = vconv_input_open(job);
    }

    if (rc == VCONV_OK) {
        rc = vconv_outputs_select(job);
    }

    for (i = 0; rc == VCONV_OK && i < job->nouts; i++) {
        if (job->outs[i].job.fmt->kind != VCONV_KIND_INFO) {
            rc = vconv_limits(&job->outs[i].job);
        }
    }

    if (rc == VCONV_OK) {
        if (tc->probed) {
            tc->probed(tc->data, &tc->input);
        }

        rc = vconv_outputs_setup(job);
    }

    if (rc == VCONV_OK) {
        rc = vconv_run(job);
    }

    if (rc == VCONV_OK || tc->err.code != VCONV_E_NONE) {
        return rc;
    }

    /* an output failed: the job fails with its error */
    for (i = 0; i < job->nouts; i++) {
        o = &job->outs[i];

        if (o->tc.err.code != VCONV_E_NONE) {
            tc->err = o->tc.err;
            return rc;
        }
    }

    return vconv_error_set(&tc->err, VCONV_E_INTERNAL, "an output failed");
}


static int
vconv_outputs_init(vconv_job_t *job)
{
    int                 i;
    vconv_output_job_t *o;
    vconv_job_t        *sub;
    vconv_transcode_t  *tc;

    tc = job->tc;

    if (tc->outputs == NULL) {
        return vconv_error_set(&tc->err, VCONV_E_INTERNAL,
                               "a list of formats and no outputs");
    }

    job->outs = av_calloc(tc->spec->nouts, sizeof(vconv_output_job_t));
    if (job->outs == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "outputs");
    }

    job->nouts = tc->spec->nouts;

    for (i = 0; i < job->nouts; i++) {
        o = &job->outs[i];
        sub = &o->job;

        if (vconv_spec_output(tc->spec, i, &o->spec, VCONV_FMT_ALL,
                              &tc->err)
            != VCONV_OK)
        {
            return VCONV_ERROR;
        }

        o->tc = *tc;
        o->tc.spec = &o->spec;
        o->tc.output_path = tc->outputs[i].path;
        o->tc.output_fd = tc->outputs[i].fd;
        o->tc.outputs = NULL;
        o->tc.probed = NULL;
        o->tc.progress = NULL;
        o->tc.target = NULL;
        memset(&o->tc.err, 0, sizeof(vconv_error_t));
        o->limits = *job->limits;

        sub->tc = &o->tc;
        sub->spec = &o->spec;
        sub->limits = &o->limits;
        sub->fmt = vconv_format(o->spec.format);
        sub->v.index = -1;
        sub->a.index = -1;
        sub->v.last_pts = AV_NOPTS_VALUE;
        sub->a.last_pts = AV_NOPTS_VALUE;
        sub->v.last_dts = AV_NOPTS_VALUE;
        sub->v.end_ts = AV_NOPTS_VALUE;
        sub->v.prev_ts = AV_NOPTS_VALUE;
        sub->a.last_dts = AV_NOPTS_VALUE;

        sub->pkt = av_packet_alloc();
        sub->opkt = av_packet_alloc();
        sub->frame = av_frame_alloc();
        sub->filt = av_frame_alloc();
        sub->held = av_frame_alloc();

        if (sub->pkt == NULL || sub->opkt == NULL || sub->frame == NULL
            || sub->filt == NULL || sub->held == NULL)
        {
            return vconv_job_fail(job, VCONV_E_NOMEM, 0, "outputs");
        }

        tc->outputs[i].bytes = 0;
        tc->outputs[i].duration = 0;
    }

    return VCONV_OK;
}


/*
 * Each output picks its streams as a single job would; the decode is the
 * union.  Outputs that take sound take the same audio stream: the one
 * that goes with the video, when any output has video.
 */
static int
vconv_outputs_select(vconv_job_t *job)
{
    int                  i, a;
    AVStream            *ist;
    vconv_job_t         *sub;
    vconv_input_info_t  *in;

    in = NULL;

    for (i = 0; i < job->nouts; i++) {
        sub = &job->outs[i].job;
        sub->ifmt = job->ifmt;

        /* a probe reads the opened input only: no stream of its own */
        if (sub->fmt->kind == VCONV_KIND_INFO) {
            continue;
        }

        if (vconv_select(sub) != VCONV_OK) {
            return VCONV_ERROR;
        }

        if (in == NULL) {
            in = &job->outs[i].tc.input;
        }
    }

    vconv_outputs_rungs(job);

    for (i = 0; i < job->nouts; i++) {
        sub = &job->outs[i].job;

        if (sub->v.index >= 0) {
            job->v.index = sub->v.index;
        }
    }

    a = -1;

    for (i = 0; a < 0 && i < job->nouts; i++) {
        sub = &job->outs[i].job;
        if (sub->a.index >= 0 && sub->v.index >= 0) {
            a = sub->a.index;
        }
    }

    for (i = 0; a < 0 && i < job->nouts; i++) {
        a = job->outs[i].job.a.index;
    }

    for (i = 0; i < job->nouts; i++) {
        sub = &job->outs[i].job;

        if (sub->a.index >= 0 && sub->a.index != a) {
            ist = job->ifmt->streams[a];
            sub->a.index = a;
            sub->a.ist = ist;
            sub->a.base_ts = ist->start_time != AV_NOPTS_VALUE
                             ? ist->start_time : 0;
        }
    }

    if (job->v.index >= 0) {
        job->v.ist = job->ifmt->streams[job->v.index];
    }

    if (a >= 0) {
        ist = job->ifmt->streams[a];
        job->a.index = a;
        job->a.ist = ist;
        job->a.base_ts = ist->start_time != AV_NOPTS_VALUE
                         ? ist->start_time : 0;
    }

    if (in == NULL) {
        return VCONV_OK;
    }

    job->tc->input.width = in->width;
    job->tc->input.height = in->height;
    av_strlcpy(job->tc->input.vcodec, in->vcodec,
               sizeof(job->tc->input.vcodec));
    av_strlcpy(job->tc->input.acodec, in->acodec,
               sizeof(job->tc->input.acodec));

    return VCONV_OK;
}


static int
vconv_outputs_setup(vconv_job_t *job)
{
    int               rc, i;
    unsigned          n;
    int64_t           start;
    AVStream         *ist;
    vconv_job_t      *sub;
    AVFormatContext  *ifmt;

    ifmt = job->ifmt;

    for (n = 0; n < ifmt->nb_streams; n++) {
        if ((int) n != job->v.index && (int) n != job->a.index) {
            ifmt->streams[n]->discard = AVDISCARD_ALL;
        }
    }

    if (job->v.ist != NULL && vconv_decoder(job, &job->v) != VCONV_OK) {
        return VCONV_ERROR;
    }

    if (job->a.ist != NULL && vconv_decoder(job, &job->a) != VCONV_OK) {
        return VCONV_ERROR;
    }

    start = INT64_MAX;

    for (i = 0; i < job->nouts; i++) {
        sub = &job->outs[i].job;

        if (job->outs[i].skip) {
            continue;
        }

        if (sub->fmt->kind != VCONV_KIND_INFO && sub->start < start) {
            start = sub->start;
            job->offset = sub->offset;
        }

        sub->v.dec = sub->v.ist ? job->v.dec : NULL;
        sub->a.dec = sub->a.ist ? job->a.dec : NULL;

        if (sub->fmt->kind == VCONV_KIND_INFO
            || sub->fmt->kind == VCONV_KIND_SPRITE)
        {
            rc = vconv_outputs_own(job, i);
            if (rc != VCONV_OK) {
                return rc;
            }

            continue;
        }

        rc = vconv_output_open(sub);

        if (rc == VCONV_OK && sub->v.ist != NULL) {
            rc = vconv_output_video(sub, &sub->v);
        }

        if (rc == VCONV_OK && sub->a.ist != NULL) {
            rc = vconv_output_audio(sub, &sub->a);
        }

        if (rc == VCONV_OK) {
            rc = vconv_metadata_apply(sub);
        }

        if (rc == VCONV_OK) {
            rc = vconv_output_header(sub);
        }

        if (rc != VCONV_OK) {
            return rc;
        }
    }

    /* to the key frame before the earliest start: see vconv_setup() */
    job->start = start;
    ist = job->v.ist ? job->v.ist : job->a.ist;

    if (job->start > 0 && job->ipb->seekable && ist != NULL
        && avformat_index_get_entries_count(ist) > 0)
    {
        rc = avformat_seek_file(ifmt, -1, INT64_MIN, job->offset,
                                job->offset, 0);
        job->seeked = rc >= 0;
    }

    return VCONV_OK;
}


/*
 * A decoded frame to every output that takes this stream and is not done
 * with it; the stream is done when every output is.  Each output's graph
 * takes its own reference; the time each sets on the frame is its own.
 */
static int
vconv_outputs_frame(vconv_job_t *job, vconv_stream_t *st, AVFrame *frame)
{
    int              rc, i, done;
    int64_t          pts, size;
    vconv_job_t     *sub;
    vconv_stream_t  *sst;

    pts = frame->pts;
    done = 1;
    size = 0;

    for (i = 0; i < job->nouts; i++) {
        sub = &job->outs[i].job;
        sst = st == &job->v ? &sub->v : &sub->a;

        if (sst->index >= 0 && !sst->done) {
            frame->pts = pts;

            rc = job->outs[i].own
                 ? vconv_outputs_own_frame(job, i, frame)
                 : vconv_filter_frame(sub, sst, frame);
            if (rc != VCONV_OK) {
                frame->pts = pts;
                return rc;
            }

            done = done && sst->done;
        }

        if (sub->ofmt != NULL && sub->ofmt->pb != NULL) {
            size += avio_tell(sub->ofmt->pb);
        }
    }

    frame->pts = pts;
    st->done = done;

    /* vconv_max_output_size is for all the job's outputs together */
    if (job->limits->max_output > 0 && size > job->limits->max_output) {
        return vconv_error_set(&job->tc->err, VCONV_E_OUTPUT_SIZE_LIMIT,
                               "the outputs exceed %lld bytes",
                               (long long) job->limits->max_output);
    }

    return VCONV_OK;
}


/* the shared decoder is drained: each output flushes its graph */
static int
vconv_outputs_finish(vconv_job_t *job, vconv_stream_t *st)
{
    int              rc, i;
    vconv_job_t     *sub;
    vconv_stream_t  *sst;

    for (i = 0; i < job->nouts; i++) {
        sub = &job->outs[i].job;
        sst = st == &job->v ? &sub->v : &sub->a;

        if (sst->index < 0 || sst->done) {
            continue;
        }

        if (job->outs[i].own) {
            /* the sprite's last picture is placed by its end */
            sst->done = 1;
            continue;
        }

        rc = vconv_finish_graph(sub, sst);
        if (rc != VCONV_OK) {
            return rc;
        }
    }

    st->done = 1;

    return VCONV_OK;
}


static int
vconv_outputs_end(vconv_job_t *job)
{
    int                 rc, i;
    int64_t             total;
    vconv_job_t        *sub;
    vconv_transcode_t  *tc;

    tc = job->tc;
    total = 0;

    for (i = 0; i < job->nouts; i++) {
        sub = &job->outs[i].job;
        sub->tc->damaged_packets = tc->damaged_packets;

        if (job->outs[i].skip) {
            tc->outputs[i].skipped = 1;
            continue;
        }

        if (job->outs[i].own) {
            rc = vconv_outputs_own_end(job, i);
            if (rc != VCONV_OK) {
                return rc;
            }

            total += sub->tc->output_bytes;
            continue;
        }

        rc = vconv_run_empty(sub);
        if (rc != VCONV_OK) {
            return rc;
        }

        rc = vconv_output_trailer(sub);
        if (rc != VCONV_OK) {
            return rc;
        }

        tc->outputs[i].bytes = sub->tc->output_bytes;
        tc->outputs[i].duration = sub->out_time;

        if (sub->v.enc != NULL) {
            tc->outputs[i].width = sub->v.enc->width;
            tc->outputs[i].height = sub->v.enc->height;
        }
        total += sub->tc->output_bytes;
    }

    if (job->limits->max_output > 0 && total > job->limits->max_output) {
        return vconv_error_set(&tc->err, VCONV_E_OUTPUT_SIZE_LIMIT,
                               "the outputs exceed %lld bytes",
                               (long long) job->limits->max_output);
    }

    tc->output_bytes = tc->outputs[0].bytes;
    tc->output_duration = tc->outputs[0].duration;
    vconv_progress(job, 1);

    return VCONV_OK;
}


/* the slowest output's fraction */
static double
vconv_outputs_progress(vconv_job_t *job)
{
    int           i;
    double        f, min;
    int64_t       size;
    vconv_job_t  *sub;

    min = 1.0;

    for (i = 0; i < job->nouts; i++) {
        sub = &job->outs[i].job;

        if ((sub->v.index < 0 || sub->v.done)
            && (sub->a.index < 0 || sub->a.done))
        {
            continue;
        }

        if (sub->total > 0) {
            f = (sub->out_time > sub->in_time ? sub->out_time
                                              : sub->in_time)
                / sub->total;

        } else if ((size = avio_size(job->ipb)) > 0) {
            f = (double) avio_tell(job->ipb) / size;

        } else {
            f = 0;
        }

        if (f < min) {
            min = f;
        }
    }

    return min;
}


/* the outputs' own parts; the input and decoders are the job's */
static void
vconv_outputs_cleanup(vconv_job_t *job)
{
    int           i;
    vconv_job_t  *sub;

    if (job->outs == NULL) {
        return;
    }

    for (i = 0; i < job->nouts; i++) {
        vconv_sprite_free(&job->outs[i].sprite);

        sub = &job->outs[i].job;
        sub->ifmt = NULL;
        sub->v.dec = NULL;
        sub->a.dec = NULL;
        vconv_cleanup(sub);
    }

    av_freep(&job->outs);
    job->nouts = 0;
}


/*
 * hls: a rung above the input's height is dropped when another is at or
 * under it; when all are above, the lowest stays (at the input's height:
 * no upscale).  A dropped rung takes no stream and writes nothing.
 */
static void
vconv_outputs_rungs(vconv_job_t *job)
{
    int                  i, h, low, fits;
    vconv_job_t         *sub;
    const vconv_spec_t  *spec;

    spec = job->tc->spec;

    if (!spec->hls) {
        return;
    }

    h = 0;
    fits = 0;
    low = -1;

    for (i = 0; i < job->nouts; i++) {
        sub = &job->outs[i].job;

        if (spec->rung[i] == 0 || sub->v.ist == NULL) {
            continue;
        }

        h = sub->v.ist->codecpar->height;

        if (sub->v.rotation == 90 || sub->v.rotation == 270) {
            h = sub->v.ist->codecpar->width;
        }

        if (spec->rung[i] <= h) {
            fits = 1;
        }

        if (low < 0 || spec->rung[i] < spec->rung[low]) {
            low = i;
        }
    }

    for (i = 0; i < job->nouts; i++) {
        if (spec->rung[i] == 0 || spec->rung[i] <= h
            || (!fits && i == low))
        {
            continue;
        }

        sub = &job->outs[i].job;
        job->outs[i].skip = 1;
        sub->v.index = -1;
        sub->a.index = -1;
        sub->v.ist = NULL;
        sub->a.ist = NULL;
    }
}


/*
 * info and sprite in a list: no filter graph, encoder or muxer of the
 * engine's.  info is written now, from the opened input, as the single
 * format is; a sprite takes the shared decoder's pictures.
 */
static int
vconv_outputs_own(vconv_job_t *job, int i)
{
    vconv_job_t         *sub;
    vconv_output_job_t  *o;

    o = &job->outs[i];
    sub = &o->job;
    o->own = 1;

    if (sub->fmt->kind == VCONV_KIND_INFO) {
        return vconv_info_run(sub);
    }

    if (sub->v.ist == NULL || sub->v.dec == NULL) {
        return vconv_error_set(&sub->tc->err, VCONV_E_NO_VIDEO,
                               "the input has no video stream");
    }

    return vconv_sprite_create(sub, &o->spec, &sub->v, &sub->tc->sprite,
                               &o->sprite);
}


/* a decoded picture to the sprite; its time is the output's progress */
static int
vconv_outputs_own_frame(vconv_job_t *job, int i, AVFrame *frame)
{
    int64_t       ts;
    vconv_job_t  *sub;

    sub = &job->outs[i].job;

    if (job->outs[i].sprite == NULL) {
        return VCONV_OK;
    }

    ts = frame->best_effort_timestamp;
    if (ts == AV_NOPTS_VALUE) {
        ts = frame->pts;
    }

    if (ts != AV_NOPTS_VALUE) {
        sub->in_time = ts * av_q2d(sub->v.ist->time_base)
                       - sub->offset / 1e6;
    }

    sub->v.frames++;

    return vconv_sprite_frame(job->outs[i].sprite, frame);
}


/* the sprite's JPEG made and written; its grid is the job's, for the VTT */
static int
vconv_outputs_own_end(vconv_job_t *job, int i)
{
    int                  rc;
    AVPacket            *pkt;
    vconv_job_t         *sub;
    vconv_sprite_t      *sp;
    vconv_transcode_t   *tc;
    vconv_output_job_t  *o;

    o = &job->outs[i];
    sub = &o->job;
    tc = job->tc;

    if (o->sprite != NULL) {
        pkt = sub->opkt;

        rc = vconv_sprite_end(o->sprite, pkt);
        if (rc != VCONV_OK) {
            return rc;
        }

        rc = vconv_info_write(sub, (const char *) pkt->data, pkt->size);
        sub->tc->output_bytes = pkt->size;
        av_packet_unref(pkt);

        if (rc != VCONV_OK) {
            return rc;
        }

        sp = &sub->tc->sprite;
        sub->tc->output_duration = sp->duration;
        tc->sprite = *sp;
        tc->outputs[i].width = (sp->tiles < sp->columns ? sp->tiles
                                                        : sp->columns)
                               * sp->tile_w;
        tc->outputs[i].height = (sp->tiles + sp->columns - 1) / sp->columns
                                * sp->tile_h;
    }

    tc->outputs[i].bytes = sub->tc->output_bytes;
    tc->outputs[i].duration = sub->tc->output_duration;

    return VCONV_OK;
}
