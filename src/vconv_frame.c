/*
 * vconv: checks on decoded frames at the pipeline's boundaries; see
 * vconv_frame.h for why.
 */

#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include <libavutil/error.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>

#include "vconv_frame.h"


static int vconv_frame_planes(const AVFrame *frame, int *planes,
    int64_t *per_plane);
static int64_t vconv_frame_scan_float(float *s, int64_t n, int fix);
static int64_t vconv_frame_scan_double(double *s, int64_t n, int fix);


int64_t
vconv_frame_clamp_audio(AVFrame *frame)
{
    int      i, planes, dbl, rc, pass;
    int64_t  n, bad;

    switch (frame->format) {
    case AV_SAMPLE_FMT_FLT:
    case AV_SAMPLE_FMT_FLTP:
        dbl = 0;
        break;
    case AV_SAMPLE_FMT_DBL:
    case AV_SAMPLE_FMT_DBLP:
        dbl = 1;
        break;
    default:
        return 0;
    }

    rc = vconv_frame_planes(frame, &planes, &n);
    if (rc < 0) {
        return rc;
    }

    /*
     * The first pass only looks: most frames are clean, and a decoder's
     * frame may share its buffer, which we copy only when we must write.
     */
    for (pass = 0; pass < 2; pass++) {
        bad = 0;

        for (i = 0; i < planes; i++) {
            bad += dbl ? vconv_frame_scan_double(
                             (double *) frame->extended_data[i], n, pass)
                       : vconv_frame_scan_float(
                             (float *) frame->extended_data[i], n, pass);
        }

        if (bad == 0 || pass == 1) {
            return bad;
        }

        rc = av_frame_make_writable(frame);
        if (rc < 0) {
            return rc;
        }
    }

    return bad;
}


int
vconv_frame_check_audio(const AVFrame *frame)
{
    int      planes;
    int64_t  n;

    if (frame->format < 0 || frame->format >= AV_SAMPLE_FMT_NB
        || frame->sample_rate <= 0
        || frame->sample_rate > VCONV_AUDIO_MAX_RATE
        || frame->ch_layout.nb_channels <= 0
        || frame->ch_layout.nb_channels > VCONV_AUDIO_MAX_CHANNELS)
    {
        return AVERROR_INVALIDDATA;
    }

    return vconv_frame_planes(frame, &planes, &n);
}


int
vconv_frame_check_video(const AVFrame *frame)
{
    int                        i, planes, need;
    const AVPixFmtDescriptor  *desc;

    desc = av_pix_fmt_desc_get(frame->format);

    /* av_image_check_size()'s bound, without its log line per frame */
    if (desc == NULL || (desc->flags & AV_PIX_FMT_FLAG_HWACCEL)
        || frame->width <= 0 || frame->height <= 0
        || (int64_t) (frame->width + 128) * (frame->height + 128)
           >= INT_MAX / 8)
    {
        return AVERROR_INVALIDDATA;
    }

    planes = av_pix_fmt_count_planes(frame->format);
    if (planes <= 0 || planes > AV_NUM_DATA_POINTERS) {
        return AVERROR_INVALIDDATA;
    }

    for (i = 0; i < planes; i++) {
        need = av_image_get_linesize(frame->format, frame->width, i);

        if (need <= 0 || frame->data[i] == NULL
            || abs(frame->linesize[i]) < need)
        {
            return AVERROR_INVALIDDATA;
        }
    }

    /* the palette of a paletted picture is a plane of its own */
    if ((desc->flags & AV_PIX_FMT_FLAG_PAL) && frame->data[1] == NULL) {
        return AVERROR_INVALIDDATA;
    }

    return 0;
}


/* samples per plane and planes, with every plane's pointer checked */
static int
vconv_frame_planes(const AVFrame *frame, int *planes, int64_t *per_plane)
{
    int  i, channels;

    channels = frame->ch_layout.nb_channels;

    if (channels <= 0 || frame->nb_samples <= 0
        || frame->extended_data == NULL)
    {
        return AVERROR_INVALIDDATA;
    }

    if (av_sample_fmt_is_planar(frame->format)) {
        *planes = channels;
        *per_plane = frame->nb_samples;

    } else {
        *planes = 1;
        *per_plane = (int64_t) frame->nb_samples * channels;
    }

    for (i = 0; i < *planes; i++) {
        if (frame->extended_data[i] == NULL) {
            return AVERROR_INVALIDDATA;
        }
    }

    return 0;
}


/*
 * Counts (and with fix, repairs) the samples outside [-1, 1]; the
 * negated test catches NaN, which fails every comparison.
 */
static int64_t
vconv_frame_scan_float(float *s, int64_t n, int fix)
{
    int64_t  i, bad;

    bad = 0;

    for (i = 0; i < n; i++) {
        if (s[i] >= -1.0f && s[i] <= 1.0f) {
            continue;
        }

        bad++;

        if (fix) {
            s[i] = !isfinite(s[i]) ? 0.0f : (s[i] > 0 ? 1.0f : -1.0f);
        }
    }

    return bad;
}


static int64_t
vconv_frame_scan_double(double *s, int64_t n, int fix)
{
    int64_t  i, bad;

    bad = 0;

    for (i = 0; i < n; i++) {
        if (s[i] >= -1.0 && s[i] <= 1.0) {
            continue;
        }

        bad++;

        if (fix) {
            s[i] = !isfinite(s[i]) ? 0.0 : (s[i] > 0 ? 1.0 : -1.0);
        }
    }

    return bad;
}
