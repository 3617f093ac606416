/*
 * Unit tests for the frame checks at the pipeline's boundaries
 * (vconv_frame.c): float and double samples, planar and packed, made
 * finite and clamped to +-1.0; integer samples untouched; a shared
 * buffer copied before it is written; broken frames refused.
 */

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/channel_layout.h>
#include <libavutil/frame.h>
#include <libavutil/samplefmt.h>

#include "vconv_frame.h"
#include "tap.h"


#define NS  5


static AVFrame *
audio_frame(enum AVSampleFormat fmt, int channels, int nb_samples)
{
    AVFrame  *f;

    f = av_frame_alloc();
    if (f == NULL) {
        return NULL;
    }

    f->format = fmt;
    f->sample_rate = 48000;
    f->nb_samples = nb_samples;
    av_channel_layout_default(&f->ch_layout, channels);

    if (av_frame_get_buffer(f, 0) < 0) {
        av_frame_free(&f);
        return NULL;
    }

    return f;
}


/* the same five values in every channel: one good, four not */
static const double  vals[NS] = { 0.5, 403209.3, -2.0, NAN, -INFINITY };
static const double  want[NS] = { 0.5, 1.0, -1.0, 0.0, 0.0 };


static void
fill(AVFrame *f, int dbl, int planar, int channels)
{
    int      c, i, k;
    double  *d;
    float   *s;

    for (c = 0; c < channels; c++) {
        for (i = 0; i < NS; i++) {
            k = planar ? i : i * channels + c;

            if (dbl) {
                d = (double *) f->extended_data[planar ? c : 0];
                d[k] = vals[i];

            } else {
                s = (float *) f->extended_data[planar ? c : 0];
                s[k] = (float) vals[i];
            }
        }
    }
}


static int
matches(const AVFrame *f, int dbl, int planar, int channels)
{
    int      c, i, k;
    double   v;

    for (c = 0; c < channels; c++) {
        for (i = 0; i < NS; i++) {
            k = planar ? i : i * channels + c;

            v = dbl ? ((double *) f->extended_data[planar ? c : 0])[k]
                    : ((float *) f->extended_data[planar ? c : 0])[k];

            if (!isfinite(v) || fabs(v - want[i]) > 1e-6) {
                diag("channel %d sample %d: %g, want %g", c, i, v,
                     want[i]);
                return 0;
            }
        }
    }

    return 1;
}


static void
test_clamp(void)
{
    int                  t, channels, dbl, planar;
    int64_t              n;
    AVFrame             *f;
    enum AVSampleFormat  fmt;

    static const enum AVSampleFormat  fmts[] = {
        AV_SAMPLE_FMT_FLT, AV_SAMPLE_FMT_FLTP,
        AV_SAMPLE_FMT_DBL, AV_SAMPLE_FMT_DBLP
    };

    for (t = 0; t < 4; t++) {
        fmt = fmts[t];
        dbl = fmt == AV_SAMPLE_FMT_DBL || fmt == AV_SAMPLE_FMT_DBLP;
        planar = av_sample_fmt_is_planar(fmt);

        /* 3 channels: packed strides are not a power of two; 12 > 8 */
        for (channels = 3; channels <= 12; channels += 9) {
            f = audio_frame(fmt, channels, NS);
            if (!ok(f != NULL, "%s x%d frame", av_get_sample_fmt_name(fmt),
                    channels))
            {
                continue;
            }

            fill(f, dbl, planar, channels);
            n = vconv_frame_clamp_audio(f);

            is_int(n, 4 * channels, "4 bad samples a channel counted");
            ok(matches(f, dbl, planar, channels),
               "%s x%d: finite, within +-1.0, good samples kept",
               av_get_sample_fmt_name(fmt), channels);
            is_int(vconv_frame_clamp_audio(f), 0, "clean the second time");

            av_frame_free(&f);
        }
    }
}


static void
test_shared(void)
{
    AVFrame  *f, *g;
    float    *s, *gs;

    f = audio_frame(AV_SAMPLE_FMT_FLTP, 2, NS);
    g = av_frame_alloc();
    if (!ok(f != NULL && g != NULL, "frames")) {
        return;
    }

    fill(f, 0, 1, 2);
    av_frame_ref(g, f);

    /* g shares f's buffer: clamping g must leave f's samples alone */
    is_int(vconv_frame_clamp_audio(g), 8, "shared frame clamped");
    s = (float *) f->extended_data[0];
    gs = (float *) g->extended_data[0];
    ok(s != gs, "the clamped frame got its own buffer");
    ok(s[1] > 400000.0f, "the other reference is untouched");
    ok(matches(g, 0, 1, 2), "the copy is clamped");

    /* a clean shared frame is not copied */
    av_frame_unref(g);
    av_frame_free(&f);
    f = audio_frame(AV_SAMPLE_FMT_FLTP, 2, NS);
    memset(f->extended_data[0], 0, NS * sizeof(float));
    memset(f->extended_data[1], 0, NS * sizeof(float));
    av_frame_ref(g, f);
    is_int(vconv_frame_clamp_audio(g), 0, "clean shared frame");
    ok(g->extended_data[0] == f->extended_data[0], "... not copied");

    av_frame_free(&g);
    av_frame_free(&f);
}


static void
test_integer(void)
{
    AVFrame  *f;
    int16_t  *s;

    f = audio_frame(AV_SAMPLE_FMT_S16, 2, NS);
    if (!ok(f != NULL, "s16 frame")) {
        return;
    }

    s = (int16_t *) f->data[0];
    s[0] = 32767;
    s[1] = -32768;

    is_int(vconv_frame_clamp_audio(f), 0, "s16: nothing to clamp");
    ok(s[0] == 32767 && s[1] == -32768, "s16 samples untouched");

    av_frame_free(&f);
}


static void
test_check_audio(void)
{
    AVFrame  *f;
    uint8_t  *p;

    f = audio_frame(AV_SAMPLE_FMT_FLTP, 2, NS);
    if (!ok(f != NULL, "frame")) {
        return;
    }

    is_int(vconv_frame_check_audio(f), 0, "a sane frame passes");

    f->sample_rate = 855646016;
    ok(vconv_frame_check_audio(f) < 0, "855 MHz refused");
    f->sample_rate = 768000;
    is_int(vconv_frame_check_audio(f), 0, "768 kHz passes");
    f->sample_rate = 0;
    ok(vconv_frame_check_audio(f) < 0, "0 Hz refused");
    f->sample_rate = 48000;

    p = f->extended_data[1];
    f->extended_data[1] = NULL;
    ok(vconv_frame_check_audio(f) < 0, "a missing plane refused");
    ok(vconv_frame_clamp_audio(f) < 0, "... and not clamped");
    f->extended_data[1] = p;

    f->nb_samples = 0;
    ok(vconv_frame_check_audio(f) < 0, "no samples refused");
    f->nb_samples = NS;

    f->format = AV_SAMPLE_FMT_NB;
    ok(vconv_frame_check_audio(f) < 0, "unknown sample format refused");

    av_frame_free(&f);

    f = audio_frame(AV_SAMPLE_FMT_S16P, VCONV_AUDIO_MAX_CHANNELS + 1, NS);
    if (ok(f != NULL, "65-channel frame")) {
        ok(vconv_frame_check_audio(f) < 0, "65 channels refused");
        av_frame_free(&f);
    }

    f = audio_frame(AV_SAMPLE_FMT_S16P, VCONV_AUDIO_MAX_CHANNELS, NS);
    if (ok(f != NULL, "64-channel frame")) {
        is_int(vconv_frame_check_audio(f), 0, "64 channels pass");
        av_frame_free(&f);
    }
}


static void
test_check_video(void)
{
    AVFrame  *f;

    f = av_frame_alloc();
    f->format = AV_PIX_FMT_YUV420P;
    f->width = 64;
    f->height = 48;
    if (!ok(av_frame_get_buffer(f, 0) == 0, "picture")) {
        return;
    }

    is_int(vconv_frame_check_video(f), 0, "a sane picture passes");

    f->linesize[1] = 16;
    ok(vconv_frame_check_video(f) < 0, "a line size under the width "
       "refused");
    f->linesize[1] = -f->linesize[0];
    is_int(vconv_frame_check_video(f), 0, "a bottom-up picture passes");
    f->linesize[1] = f->linesize[0];

    f->data[2] = NULL;
    ok(vconv_frame_check_video(f) < 0, "a missing plane refused");
    f->data[2] = f->buf[0]->data;

    f->width = 0;
    ok(vconv_frame_check_video(f) < 0, "width 0 refused");
    f->width = 64;

    f->format = AV_PIX_FMT_NB;
    ok(vconv_frame_check_video(f) < 0, "unknown pixel format refused");
    f->format = AV_PIX_FMT_PAL8;
    f->data[1] = NULL;
    ok(vconv_frame_check_video(f) < 0, "a palette picture without its "
       "palette refused");

    av_frame_free(&f);
}


int
main(void)
{
    test_clamp();
    test_shared();
    test_integer();
    test_check_audio();
    test_check_video();

    return done_testing();
}
