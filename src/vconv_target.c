/*
 * vconv: target_size.  A one-pass ABR encode with VBV limits lands within
 * a few per cent of its bitrate on most inputs, not on all: the output's
 * size is checked after the pass, and a pass that overshoots the target
 * (or lands under VCONV_TARGET_LOW of it) is run once more from the start
 * of the kept input at a bitrate corrected by what it made.  A pass that
 * had to guess the duration corrects nothing: the next one plans anew on
 * the measured duration, and may be corrected in its turn.
 */

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/log.h>
#include <libavutil/opt.h>

#include "vconv_target.h"


/* a pass's guess at a duration it cannot learn before the end */
#define VCONV_TARGET_GUESS   60.0

/* muxer bytes: a fixed head, and per packet (index, block headers) */
#define VCONV_TARGET_HEAD    4096
#define VCONV_TARGET_PKT     16
#define VCONV_TARGET_APKTS   48      /* audio packets per second */
#define VCONV_TARGET_APKT    4       /* and their index bytes, sound alone */

/*
 * A first pass this far over its size met the encoder's floor (its
 * coarsest quantizer): a lower rate alone will not fit, a smaller
 * picture will.
 */
#define VCONV_TARGET_STEP_FIX  0.7

/* vconv_target_next(): no pass would change the output */
#define VCONV_TARGET_LAST    1

/* a correction is bounded: a wild first pass must not make a wilder one */
#define VCONV_TARGET_FIX_MIN 0.25
#define VCONV_TARGET_FIX_MAX 4.0


typedef struct {
    vconv_transcode_t  *outer;
    vconv_spec_t        spec;       /* the passes' own copy */
    int                 pass;       /* 1, 2, 3 */
    int                 npasses;    /* the most this job may run */
    double              duration;   /* s the plan counted, 0: guessed */
    double              fps;
    int64_t             vbitrate;   /* what the pass ran at */
    int64_t             abitrate;
    double              fix;        /* correction of the pass before */
    int                 step_down;  /* a smaller picture too */
    int                 guessed;    /* the pass ran on a guessed duration */
    int                 replan;     /* planned as a first pass, on the
                                       duration the guessed one measured */
    int                 corrected;  /* the corrective pass ran: the last */
    int64_t             kept;       /* bytes of the pass before it, under
                                       the band, kept ahead of its output */
    double              kept_duration;
} vconv_target_t;


static int vconv_target_next(vconv_target_t *t, vconv_transcode_t *pass);
static int vconv_target_keep(vconv_target_t *t, vconv_transcode_t *pass);
static const char *vconv_target_nth(int pass);
static void vconv_target_probed(void *data, const vconv_input_info_t *in);
static void vconv_target_progress(void *data, double fraction);
static int vconv_target_interrupt(void *data);
static double vconv_target_duration(vconv_job_t *job);
static int vconv_target_picture(vconv_job_t *job, vconv_target_t *t,
    int64_t vbr, int strict);
static int64_t vconv_target_overhead(const vconv_target_t *t, double d);


static const int  vconv_target_steps[] = { 1080, 720, 540, 360, 240 };

#define VCONV_TARGET_NSTEPS                                                  \
    (sizeof(vconv_target_steps) / sizeof(vconv_target_steps[0]))


/*
 * A pass that lands in the band is the job's output.  A pass planned on a
 * guessed duration is followed by one planned on the measured duration;
 * a pass that missed on a known duration, by one corrective pass, the
 * last: a stream's duration can thus cost up to three passes.
 */
int
vconv_target_transcode(vconv_transcode_t *tc)
{
    int                rc;
    double             ratio;
    int64_t            size;
    vconv_target_t     t;
    vconv_transcode_t  pass;

    memset(&t, 0, sizeof(t));
    t.outer = tc;
    t.spec = *tc->spec;
    t.pass = 1;
    t.npasses = 2;
    t.fix = 1.0;

    pass = *tc;
    pass.spec = &t.spec;
    pass.target = &t;
    pass.probed = tc->probed ? vconv_target_probed : NULL;
    pass.progress = tc->progress ? vconv_target_progress : NULL;
    pass.interrupt = tc->interrupt ? vconv_target_interrupt : NULL;
    pass.data = &t;

    size = tc->spec->target_size;

    for ( ;; ) {
        rc = vconv_transcode(&pass);

        if (t.pass == 1) {
            tc->input = pass.input;
        }

        tc->output_bytes = pass.output_bytes;
        tc->output_duration = pass.output_duration;
        tc->err = pass.err;
        tc->passes = t.pass;

        if (rc != VCONV_OK) {
            return rc;
        }

        if (t.kept > 0) {
            return vconv_target_keep(&t, &pass);
        }

        ratio = (double) pass.output_bytes / size;

        if ((ratio <= 1.0 && ratio >= VCONV_TARGET_LOW) || t.corrected) {
            break;
        }

        rc = vconv_target_next(&t, &pass);

        if (rc == VCONV_TARGET_LAST) {
            break;
        }

        if (rc != VCONV_OK) {
            return VCONV_ERROR;
        }
    }

    if (t.pass > 1) {
        av_log(NULL, AV_LOG_WARNING, "target_size: the %s pass made %lld "
               "bytes, %.1f%% of %lld\n", vconv_target_nth(t.pass),
               (long long) pass.output_bytes, ratio * 100,
               (long long) size);
    }

    if (pass.output_bytes > size) {
        return vconv_error_set(&tc->err, VCONV_E_TARGET_TOO_SMALL,
                               "the output of %lld bytes does not fit "
                               "target_size %lld even after a corrective "
                               "pass", (long long) pass.output_bytes,
                               (long long) size);
    }

    /* under the band after the last pass: the encoders do not pad */
    return VCONV_OK;
}


/* the pass after one that missed: its plan, from the kept input's start */
static int
vconv_target_next(vconv_target_t *t, vconv_transcode_t *pass)
{
    double              d, ratio;
    int64_t             size, rest;
    vconv_transcode_t  *tc;

    tc = t->outer;
    size = tc->spec->target_size;
    ratio = (double) pass->output_bytes / size;

    /*
     * What the pass made of the part the bitrates decide: the measured
     * duration now, and the bytes that are neither video nor (with
     * video) audio kept as planned.
     */
    d = pass->output_duration > 0 ? pass->output_duration : t->duration;
    rest = vconv_target_overhead(t, d);

    if (t->vbitrate > 0) {
        rest += (int64_t) (t->abitrate * d / 8);
    }

    t->fix = 1.0;
    t->step_down = 0;
    t->replan = 0;

    if (t->guessed) {
        /* plan again from the start, on the duration the pass measured */
        t->guessed = 0;
        t->duration = d;
        t->replan = 1;
        t->spec = *tc->spec;

    } else if (pass->output_bytes <= rest || size * VCONV_TARGET_AIM <= rest) {
        /*
         * The pass made no more than its container was planned to take
         * (a short clip's head and index): its rates tell nothing, and
         * the same pass again would make the same file
         */
        av_log(NULL, AV_LOG_WARNING, "target_size: the %s pass made %lld "
               "bytes, %.1f%% of %lld, no more than its container alone: "
               "no other pass would change it\n", vconv_target_nth(t->pass),
               (long long) pass->output_bytes, ratio * 100,
               (long long) size);

        return VCONV_TARGET_LAST;

    } else {
        t->fix = (size * VCONV_TARGET_AIM - rest)
                 / (double) (pass->output_bytes - rest);

        t->fix = t->fix < VCONV_TARGET_FIX_MIN ? VCONV_TARGET_FIX_MIN
                 : t->fix > VCONV_TARGET_FIX_MAX ? VCONV_TARGET_FIX_MAX
                 : t->fix;

        t->step_down = t->vbitrate > 0 && t->fix < VCONV_TARGET_STEP_FIX
                       && !(tc->spec->set
                            & (VCONV_SET_WIDTH | VCONV_SET_HEIGHT));

        if (t->step_down) {
            /*
             * The smaller picture takes part of the excess, the rate the
             * rest: half of the correction each, in ratio (measured on
             * noise, where VP9 realtime stays over any rate it is given).
             */
            t->fix = sqrt(t->fix);
        }

        /* the spec keeps the pass's picture, a step down from it */
        t->corrected = 1;

        /*
         * An output that fits, if under the band, stays ahead of the next
         * one in the file: encoders do not answer a rate in proportion
         * (x264 on noise: 61% of the size, then 138% at 1.78 times the
         * rate), and a file that fits beats a failed job.
         */
        if (pass->output_bytes <= size) {
            t->kept = pass->output_bytes;
            t->kept_duration = pass->output_duration;
            pass->output_base = t->kept;
        }
    }

    av_log(NULL, AV_LOG_WARNING, "target_size: the %s pass made %lld "
           "bytes, %.1f%% of %lld; a %s pass at %.3f times its rate%s\n",
           vconv_target_nth(t->pass), (long long) pass->output_bytes,
           ratio * 100, (long long) size, vconv_target_nth(t->pass + 1),
           t->fix, t->step_down ? ", a step smaller" : "");

    /* the next pass starts again from the kept input's first byte */
    if (tc->seek == NULL || tc->seek(tc->io_opaque, 0, SEEK_SET) < 0) {
        return vconv_error_set(&tc->err, VCONV_E_IO,
                               "the input cannot be read again for "
                               "another pass");
    }

    t->pass++;
    pass->probed = NULL;

    return VCONV_OK;
}


int
vconv_target_plan(vconv_job_t *job)
{
    int              strict;
    double           d, budget, total, min;
    int64_t          vbr, abr, def;
    AVRational       fr;
    vconv_target_t  *t;
    vconv_spec_t    *spec;

    t = job->tc->target;
    spec = &t->spec;

    d = t->duration > 0 ? t->duration : vconv_target_duration(job);

    if (t->pass == 1) {
        t->duration = d;
        t->guessed = (d <= 0);
        t->npasses = t->guessed ? 3 : 2;
    }

    if (d <= 0) {
        /* planned on a guess, refused nothing: the second pass will know */
        d = VCONV_TARGET_GUESS;
    }

    strict = (t->pass == 1 && !t->guessed) || t->replan;

    t->fps = 0;

    if (job->v.ist != NULL) {
        if (spec->fps_num > 0 && spec->fps_den > 0) {
            t->fps = (double) spec->fps_num / spec->fps_den;

        } else {
            fr = av_guess_frame_rate(job->ifmt, job->v.ist, NULL);
            t->fps = fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 30;
        }

        t->fps = t->fps > 120 ? 120 : t->fps;
    }

    budget = (spec->target_size * VCONV_TARGET_AIM
              - vconv_target_overhead(t, d)) * 8 / d;

    if (job->v.ist == NULL) {
        /* sound alone: all of it is the audio's */
        abr = (int64_t) (budget * t->fix);
        min = VCONV_TARGET_ABR_MIN;

        if (strict && abr < min) {
            return vconv_error_set(&job->tc->err, VCONV_E_TARGET_TOO_SMALL,
                                   "target_size %lld bytes leaves %lld bit/s "
                                   "for %.1f s of sound, less than %d",
                                   (long long) spec->target_size,
                                   (long long) (abr > 0 ? abr : 0), d,
                                   (int) min);
        }

        abr = abr < 8000 ? 8000 : abr;
        spec->audio_bitrate = abr > VCONV_TARGET_ABR_MAX
                              ? VCONV_TARGET_ABR_MAX : abr;
        t->abitrate = spec->audio_bitrate;
        t->vbitrate = 0;

        return VCONV_OK;
    }

    /* the sound's share: its own rate, less when the budget is small */
    abr = 0;

    if (job->a.ist != NULL && spec->audio && spec->audio_bitrate > 0) {
        abr = spec->audio_bitrate;

        if (!(spec->set & VCONV_SET_ABITRATE)) {
            def = (int64_t) (budget / 5);
            def = def < 32000 ? 32000 : def;
            abr = abr < def ? abr : def;
        }

        spec->audio_bitrate = abr;
    }

    total = budget - abr;
    vbr = (int64_t) (total * t->fix);

    t->abitrate = abr;
    t->vbitrate = vbr;

    spec->crf = -1;
    spec->quality = 0;

    if (vconv_target_picture(job, t, vbr, strict) != VCONV_OK) {
        return VCONV_ERROR;
    }

    spec->video_bitrate = vbr < 8000 ? 8000 : vbr;
    t->vbitrate = spec->video_bitrate;

    return VCONV_OK;
}


/*
 * The picture the bitrate can carry: the input's (or the asked) size if
 * its bits per pixel reach the floor, else the first step down that
 * does; the user's own width or height is kept as asked.
 */
static int
vconv_target_picture(vconv_job_t *job, vconv_target_t *t, int64_t vbr,
    int strict)
{
    int            w, h, ow, oh, shortest, step;
    size_t         i;
    double         bpp;
    vconv_spec_t  *spec;

    spec = &t->spec;

    w = job->v.ist->codecpar->width;
    h = job->v.ist->codecpar->height;

    if (job->v.rotation == 90 || job->v.rotation == 270) {
        ow = w;
        w = h;
        h = ow;
    }

    if (w <= 0 || h <= 0) {
        return VCONV_OK;
    }

    /* the asked bounds, never up (vconv_filter_video_plan's rule) */
    ow = w;
    oh = h;

    if (spec->width > 0 && spec->width < ow) {
        oh = (int) ((double) oh * spec->width / ow);
        ow = spec->width;
    }

    if (spec->height > 0 && spec->height < oh) {
        ow = (int) ((double) ow * spec->height / oh);
        oh = spec->height;
    }

    shortest = ow < oh ? ow : oh;

    if (!strict) {
        /* the first step under the first pass's picture, if any */
        for (i = 0; t->step_down && i < VCONV_TARGET_NSTEPS; i++) {
            step = vconv_target_steps[i];

            if (step < shortest) {
                if (ow < oh) {
                    spec->width = step;

                } else {
                    spec->height = step;
                }

                break;
            }
        }

        return VCONV_OK;
    }

    bpp = vbr / ((double) ow * oh * t->fps);

    if (bpp >= VCONV_TARGET_BPP) {
        return VCONV_OK;
    }

    if (!(spec->set & (VCONV_SET_WIDTH | VCONV_SET_HEIGHT))) {
        for (i = 0; i < VCONV_TARGET_NSTEPS; i++) {
            step = vconv_target_steps[i];

            if (step >= shortest) {
                continue;
            }

            bpp = vbr / ((double) ow * oh * step * step
                         / ((double) shortest * shortest) * t->fps);

            if (bpp >= VCONV_TARGET_BPP) {
                if (ow < oh) {
                    spec->width = step;

                } else {
                    spec->height = step;
                }

                return VCONV_OK;
            }
        }
    }

    return vconv_error_set(&job->tc->err, VCONV_E_TARGET_TOO_SMALL,
                           "target_size %lld bytes leaves %lld bit/s for "
                           "%.1f s of video, too little for a watchable "
                           "picture even at %d lines",
                           (long long) spec->target_size,
                           (long long) (vbr > 0 ? vbr : 0),
                           t->duration > 0 ? t->duration
                                           : VCONV_TARGET_GUESS,
                           (spec->set & (VCONV_SET_WIDTH | VCONV_SET_HEIGHT))
                           ? (ow < oh ? ow : oh)
                           : vconv_target_steps[VCONV_TARGET_NSTEPS - 1]);
}


/*
 * The output's seconds: after the trim, from the container; else from
 * the input's size and overall bitrate when both are known; else 0.
 */
static double
vconv_target_duration(vconv_job_t *job)
{
    double   d;
    int64_t  size;

    if (job->total > 0) {
        return job->total;
    }

    size = job->ipb != NULL ? avio_size(job->ipb) : -1;

    if (size <= 0 || job->ifmt->bit_rate <= 0) {
        return 0;
    }

    d = size * 8.0 / job->ifmt->bit_rate - job->start / 1e6;

    if (job->length > 0 && job->length / 1e6 < d) {
        d = job->length / 1e6;
    }

    return d > 0 ? d : 0;
}


static int64_t
vconv_target_overhead(const vconv_target_t *t, double d)
{
    if (t->fps == 0) {
        /* sound alone: an ID3 tag or a small index, a few bytes a packet */
        return VCONV_TARGET_HEAD / 4
               + (int64_t) (d * VCONV_TARGET_APKT * VCONV_TARGET_APKTS);
    }

    return VCONV_TARGET_HEAD
           + (int64_t) (d * VCONV_TARGET_PKT * (t->fps + VCONV_TARGET_APKTS));
}


void
vconv_target_tune(vconv_job_t *job, AVCodecContext *enc, int video)
{
    const vconv_spec_t  *spec;

    spec = job->spec;

    if (spec->target_size <= 0 || enc->bit_rate <= 0) {
        return;
    }

    if (video) {
        /*
         * VBV: about a second of buffer, peaks up to 1.5 times the rate;
         * without it x264's ABR spends early bits it cannot take back.
         */
        enc->rc_max_rate = enc->bit_rate * 3 / 2;
        enc->rc_buffer_size = (int) (enc->bit_rate > INT_MAX
                                     ? INT_MAX : enc->bit_rate);

        /*
         * libvpx's VBR in realtime mode runs far over its rate on busy
         * pictures (noise: 1.7 times); its CBR is made to hold it.
         */
        if (strncmp(enc->codec->name, "libvpx", 6) == 0) {
            enc->rc_min_rate = enc->bit_rate;
            enc->rc_max_rate = enc->bit_rate;
        }

        return;
    }

    /* lame: ABR rather than the nearest CBR step, which may be 25% off */
    if (av_opt_find(enc->priv_data, "abr", NULL, 0, 0) != NULL) {
        (void) av_opt_set_int(enc->priv_data, "abr", 1, 0);
    }

    /* opus: its VBR drifts with the signal; constrained VBR holds */
    if (av_opt_find(enc->priv_data, "vbr", NULL, 0, 0) != NULL
        && strcmp(enc->codec->name, "libopus") == 0)
    {
        (void) av_opt_set(enc->priv_data, "vbr", "constrained", 0);
    }
}


static void
vconv_target_probed(void *data, const vconv_input_info_t *in)
{
    vconv_target_t  *t = data;

    t->outer->probed(t->outer->data, in);
}


/*
 * After the corrective pass, which followed one that fit under the band:
 * the larger of the two outputs that fit is the job's
 */
static int
vconv_target_keep(vconv_target_t *t, vconv_transcode_t *pass)
{
    int                 rc, later;
    int64_t             size;
    vconv_transcode_t  *tc;

    tc = t->outer;
    size = tc->spec->target_size;
    later = pass->output_bytes <= size && pass->output_bytes >= t->kept;

    if (later) {
        rc = vconv_output_keep(tc, t->kept, pass->output_bytes);

    } else {
        rc = vconv_output_keep(tc, 0, t->kept);
        tc->output_bytes = t->kept;
        tc->output_duration = t->kept_duration;
    }

    av_log(NULL, AV_LOG_WARNING, "target_size: the %s pass made %lld "
           "bytes, %.1f%% of %lld; the %s pass's output is kept\n",
           vconv_target_nth(t->pass), (long long) pass->output_bytes,
           pass->output_bytes * 100.0 / size, (long long) size,
           vconv_target_nth(later ? t->pass : t->pass - 1));

    if (rc < 0) {
        return vconv_error_set(&tc->err, VCONV_E_IO,
                               "the output could not be kept: %s",
                               av_err2str(rc));
    }

    return VCONV_OK;
}


/* the passes' names in the log: 1 to 3 */
static const char *
vconv_target_nth(int pass)
{
    static const char  *nth[] = { "first", "second", "third" };

    return nth[pass - 1];
}


/*
 * The job's progress covers the passes it may run, an equal share each:
 * halves, thirds when the first pass guesses the duration (the job
 * jumps to its end when fewer passes do)
 */
static void
vconv_target_progress(void *data, double fraction)
{
    vconv_target_t  *t = data;

    t->outer->progress(t->outer->data,
                       (t->pass - 1 + fraction) / t->npasses);
}


static int
vconv_target_interrupt(void *data)
{
    vconv_target_t  *t = data;

    return t->outer->interrupt(t->outer->data);
}
