/*
 * vconv: target_size.  The bitrates that make the output fit the size,
 * planned once the input's duration is known, and one corrective encode
 * from the kept input when a pass so planned misses the size.
 */

#ifndef _VCONV_TARGET_H_INCLUDED_
#define _VCONV_TARGET_H_INCLUDED_


#include "vconv_pipeline.h"


/* the output's bytes aim at this share of target_size, and stay above */
#define VCONV_TARGET_AIM     0.92
#define VCONV_TARGET_LOW     0.85

/*
 * The least bits per pixel per frame a video may get before its picture
 * is lowered a step (1080, 720, 540, 360, 240 lines): x264 at 0.035 is
 * soft but watchable; under it at 240 lines the job is target_too_small.
 */
#define VCONV_TARGET_BPP     0.035

/* the least audio bitrate: under it speech is no longer clear */
#define VCONV_TARGET_ABR_MIN 24000
#define VCONV_TARGET_ABR_MAX 320000


/*
 * vconv_transcode() for a spec with target_size: runs the passes on a
 * copy of the spec; the same contract, with tc->passes set.
 */
int vconv_target_transcode(vconv_transcode_t *tc);

/* after the input is probed: the pass's bitrates and picture size */
int vconv_target_plan(vconv_job_t *job);

/* on an encoder just set up: the rate control that holds the bitrate */
void vconv_target_tune(vconv_job_t *job, AVCodecContext *enc, int video);


#endif /* _VCONV_TARGET_H_INCLUDED_ */
