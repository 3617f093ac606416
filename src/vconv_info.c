/*
 * vconv: format=info, the input's facts as JSON (container, streams,
 * colour, rotation, tags), written from an opened AVFormatContext without
 * decoding beyond what opening it probed.  The names and the units are
 * ffprobe's where ffprobe has one, so that a page or a script that knows
 * ffprobe's answer reads ours.
 */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/display.h>
#include <libavutil/pixdesc.h>

#include "vconv_json.h"
#include "vconv_pipeline.h"
#include "vconv_info.h"


static void vconv_info_str(vconv_out_t *o, const char *key, const char *s);
static void vconv_info_tags(vconv_out_t *o, const AVDictionary *tags);
static void vconv_info_rate(vconv_out_t *o, const char *key, AVRational r);
static void vconv_info_stream(vconv_out_t *o, AVFormatContext *ifmt,
    AVStream *st);
static void vconv_info_video(vconv_out_t *o, AVFormatContext *ifmt,
    AVStream *st);
static void vconv_info_audio(vconv_out_t *o, AVStream *st);


size_t
vconv_info_json(AVFormatContext *ifmt, int64_t size, char *buf, size_t len)
{
    unsigned     i;
    vconv_out_t  o;

    vconv_out_init(&o, buf, len);

    vconv_out(&o, "{\"format\":{");
    vconv_info_str(&o, "name", ifmt->iformat->name);
    vconv_out(&o, ",");
    vconv_info_str(&o, "long_name", ifmt->iformat->long_name);

    if (ifmt->duration != AV_NOPTS_VALUE && ifmt->duration > 0) {
        vconv_out(&o, ",\"duration\":%.6f", ifmt->duration / 1e6);

    } else {
        vconv_out(&o, ",\"duration\":null");
    }

    if (ifmt->start_time != AV_NOPTS_VALUE) {
        vconv_out(&o, ",\"start_time\":%.6f", ifmt->start_time / 1e6);
    }

    if (ifmt->bit_rate > 0) {
        vconv_out(&o, ",\"bit_rate\":%lld", (long long) ifmt->bit_rate);

    } else {
        vconv_out(&o, ",\"bit_rate\":null");
    }

    if (size > 0) {
        vconv_out(&o, ",\"size\":%lld", (long long) size);

    } else {
        vconv_out(&o, ",\"size\":null");
    }

    vconv_out(&o, ",\"nb_streams\":%u,\"tags\":", ifmt->nb_streams);
    vconv_info_tags(&o, ifmt->metadata);
    vconv_out(&o, "},\"streams\":[");

    for (i = 0; i < ifmt->nb_streams; i++) {
        vconv_out(&o, "%s", i ? "," : "");
        vconv_info_stream(&o, ifmt, ifmt->streams[i]);
    }

    vconv_out(&o, "]}\n");

    return o.pos;
}


int
vconv_info_run(vconv_job_t *job)
{
    char     *text;
    size_t    len, n;
    int64_t   size;
    int       rc;

    size = job->ifmt->pb != NULL ? avio_size(job->ifmt->pb) : -1;

    len = vconv_info_json(job->ifmt, size, NULL, 0) + 1;

    text = malloc(len);
    if (text == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "info");
    }

    n = vconv_info_json(job->ifmt, size, text, len);

    if (job->limits->max_output > 0 && (int64_t) n > job->limits->max_output)
    {
        free(text);
        return vconv_error_set(&job->tc->err, VCONV_E_OUTPUT_SIZE_LIMIT,
                               "output exceeds %lld bytes",
                               (long long) job->limits->max_output);
    }

    rc = vconv_info_write(job, text, n);
    free(text);

    if (rc != VCONV_OK) {
        return rc;
    }

    job->tc->output_bytes = (int64_t) n;

    if (job->tc->progress) {
        job->tc->progress(job->tc->data, 1.0);
    }

    return VCONV_OK;
}


/* through a dup of the caller's descriptor, as the muxers' opens do */
int
vconv_info_write(vconv_job_t *job, const char *data, size_t len)
{
    int      fd, err;
    ssize_t  n;

    if (job->tc->output_path != NULL) {
        fd = open(job->tc->output_path, O_WRONLY | O_CREAT | O_TRUNC
                                         | O_CLOEXEC, 0600);

    } else {
        fd = fcntl(job->tc->output_fd, F_DUPFD_CLOEXEC, 0);
        if (fd != -1 && ftruncate(fd, 0) == -1) {
            err = errno;
            (void) close(fd);
            errno = err;
            fd = -1;
        }
    }

    if (fd == -1) {
        return vconv_job_fail(job, VCONV_E_IO, AVERROR(errno), "output");
    }

    while (len > 0) {
        n = write(fd, data, len);

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            err = n == -1 ? errno : EIO;
            (void) close(fd);
            return vconv_job_fail(job, VCONV_E_IO, AVERROR(err), "output");
        }

        data += n;
        len -= n;
    }

    if (close(fd) == -1) {
        return vconv_job_fail(job, VCONV_E_IO, AVERROR(errno), "output");
    }

    return VCONV_OK;
}


static void
vconv_info_str(vconv_out_t *o, const char *key, const char *s)
{
    if (s == NULL) {
        vconv_out(o, "\"%s\":null", key);
        return;
    }

    vconv_out(o, "\"%s\":\"", key);
    vconv_json_escape_count(o->buf, o->len, &o->pos, s, strlen(s));
    vconv_out(o, "\"");
}


static void
vconv_info_tags(vconv_out_t *o, const AVDictionary *tags)
{
    int                       first;
    const AVDictionaryEntry  *e;

    vconv_out(o, "{");
    first = 1;
    e = NULL;

    while ((e = av_dict_get(tags, "", e, AV_DICT_IGNORE_SUFFIX)) != NULL) {
        vconv_out(o, "%s\"", first ? "" : ",");
        vconv_json_escape_count(o->buf, o->len, &o->pos, e->key,
                                strlen(e->key));
        vconv_out(o, "\":\"");
        vconv_json_escape_count(o->buf, o->len, &o->pos, e->value,
                                strlen(e->value));
        vconv_out(o, "\"");
        first = 0;
    }

    vconv_out(o, "}");
}


/* "30000/1001" as ffprobe writes it, and the number */
static void
vconv_info_rate(vconv_out_t *o, const char *key, AVRational r)
{
    vconv_out(o, ",\"%s\":\"%d/%d\"", key, r.num, r.den);

    if (r.num > 0 && r.den > 0) {
        vconv_out(o, ",\"%s_fps\":%.3f", key, av_q2d(r));
    }
}


static void
vconv_info_stream(vconv_out_t *o, AVFormatContext *ifmt, AVStream *st)
{
    const char               *type, *profile;
    AVCodecParameters        *par;
    const AVCodecDescriptor  *desc;

    par = st->codecpar;
    type = av_get_media_type_string(par->codec_type);
    desc = avcodec_descriptor_get(par->codec_id);

    vconv_out(o, "{\"index\":%d,", st->index);
    vconv_info_str(o, "codec_type", type ? type : "unknown");
    vconv_out(o, ",");
    vconv_info_str(o, "codec_name", avcodec_get_name(par->codec_id));
    vconv_out(o, ",");
    vconv_info_str(o, "codec_long_name", desc ? desc->long_name : NULL);

    profile = avcodec_profile_name(par->codec_id, par->profile);
    vconv_out(o, ",");
    vconv_info_str(o, "profile", profile);

    if (par->bit_rate > 0) {
        vconv_out(o, ",\"bit_rate\":%lld", (long long) par->bit_rate);
    }

    if (st->duration != AV_NOPTS_VALUE && st->duration > 0) {
        vconv_out(o, ",\"duration\":%.6f",
                  st->duration * av_q2d(st->time_base));
    }

    if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
        vconv_info_video(o, ifmt, st);

    } else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
        vconv_info_audio(o, st);
    }

    vconv_out(o, ",");
    vconv_info_str(o, "language",
                   av_dict_get(st->metadata, "language", NULL, 0)
                   ? av_dict_get(st->metadata, "language", NULL, 0)->value
                   : NULL);
    vconv_out(o, ",");
    vconv_info_str(o, "title",
                   av_dict_get(st->metadata, "title", NULL, 0)
                   ? av_dict_get(st->metadata, "title", NULL, 0)->value
                   : NULL);

    vconv_out(o, ",\"disposition\":{\"default\":%d,\"attached_pic\":%d}",
              !!(st->disposition & AV_DISPOSITION_DEFAULT),
              !!(st->disposition & AV_DISPOSITION_ATTACHED_PIC));

    vconv_out(o, ",\"tags\":");
    vconv_info_tags(o, st->metadata);
    vconv_out(o, "}");
}


static void
vconv_info_video(vconv_out_t *o, AVFormatContext *ifmt, AVStream *st)
{
    int                        w, h, depth;
    double                     rot;
    int32_t                   *m;
    AVRational                 sar, dar;
    AVCodecParameters         *par;
    const AVPixFmtDescriptor  *pd;

    par = st->codecpar;
    w = par->width;
    h = par->height;

    vconv_out(o, ",\"width\":%d,\"height\":%d", w, h);

    sar = av_guess_sample_aspect_ratio(ifmt, st, NULL);
    if (sar.num <= 0 || sar.den <= 0) {
        sar = (AVRational) { 1, 1 };
    }

    vconv_out(o, ",\"sample_aspect_ratio\":\"%d:%d\"", sar.num, sar.den);

    if (w > 0 && h > 0) {
        av_reduce(&dar.num, &dar.den, (int64_t) w * sar.num,
                  (int64_t) h * sar.den, 1024 * 1024);
        vconv_out(o, ",\"display_aspect_ratio\":\"%d:%d\"", dar.num,
                  dar.den);
    }

    vconv_info_rate(o, "avg_frame_rate", st->avg_frame_rate);
    vconv_info_rate(o, "r_frame_rate", st->r_frame_rate);

    /* the display matrix's angle, counterclockwise as ffprobe says it */
    rot = 0;
    m = (int32_t *) av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX,
                                            NULL);
    if (m != NULL) {
        rot = av_display_rotation_get(m);
        if (isnan(rot)) {
            rot = 0;
        }
    }

    vconv_out(o, ",\"rotation\":%d", (int) lrint(rot));

    pd = av_pix_fmt_desc_get(par->format);
    vconv_out(o, ",");
    vconv_info_str(o, "pix_fmt", pd ? pd->name : NULL);

    depth = par->bits_per_raw_sample;
    if (pd != NULL && pd->nb_components > 0) {
        depth = pd->comp[0].depth;
    }

    if (depth > 0) {
        vconv_out(o, ",\"bit_depth\":%d", depth);
    }

    vconv_out(o, ",");
    vconv_info_str(o, "color_range", par->color_range
                   != AVCOL_RANGE_UNSPECIFIED
                   ? av_color_range_name(par->color_range) : NULL);
    vconv_out(o, ",");
    vconv_info_str(o, "color_space", par->color_space != AVCOL_SPC_UNSPECIFIED
                   ? av_color_space_name(par->color_space) : NULL);
    vconv_out(o, ",");
    vconv_info_str(o, "color_transfer", par->color_trc
                   != AVCOL_TRC_UNSPECIFIED
                   ? av_color_transfer_name(par->color_trc) : NULL);
    vconv_out(o, ",");
    vconv_info_str(o, "color_primaries", par->color_primaries
                   != AVCOL_PRI_UNSPECIFIED
                   ? av_color_primaries_name(par->color_primaries) : NULL);

    vconv_out(o, ",\"hdr\":%s",
              par->color_trc == AVCOL_TRC_SMPTE2084
              || par->color_trc == AVCOL_TRC_ARIB_STD_B67
              ? "true" : "false");
}


static void
vconv_info_audio(vconv_out_t *o, AVStream *st)
{
    char                desc[128];
    AVCodecParameters  *par;

    par = st->codecpar;

    vconv_out(o, ",");
    vconv_info_str(o, "sample_fmt", av_get_sample_fmt_name(par->format));
    vconv_out(o, ",\"sample_rate\":%d,\"channels\":%d", par->sample_rate,
              par->ch_layout.nb_channels);

    if (par->ch_layout.order != AV_CHANNEL_ORDER_UNSPEC
        && av_channel_layout_describe(&par->ch_layout, desc, sizeof(desc))
           > 0)
    {
        vconv_out(o, ",");
        vconv_info_str(o, "channel_layout", desc);

    } else {
        vconv_out(o, ",\"channel_layout\":null");
    }

    if (par->bits_per_raw_sample > 0) {
        vconv_out(o, ",\"bit_depth\":%d", par->bits_per_raw_sample);
    }
}
