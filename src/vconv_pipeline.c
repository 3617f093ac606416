/*
 * vconv: what the pipeline's parts share besides the job's state (in
 * vconv_pipeline.h): how a job fails and how it learns that it must
 * stop.  vconv_transcode.c, vconv_filter.c and vconv_encode.c call these;
 * this file calls none of them, so no part depends on another in a circle.
 */

#include "vconv_pipeline.h"


int
vconv_job_fail(vconv_job_t *job, vconv_err_e code, int averr,
    const char *what)
{
    char  buf[AV_ERROR_MAX_STRING_SIZE];

    /* a cancel or stall makes libav calls fail: report the cause */
    if (job->stop != VCONV_E_NONE) {
        return vconv_error_set(&job->tc->err, job->stop, "%s",
                               vconv_error_name(job->stop));
    }

    /* a full disk is the store's, whichever stage met it: 507 */
    if (averr == AVERROR(ENOSPC) || averr == AVERROR(EDQUOT)) {
        code = VCONV_E_STORE_FULL;
    }

    if (what == NULL) {
        return vconv_error_set(&job->tc->err, code, "%s",
                               vconv_error_name(code));
    }

    if (averr == 0) {
        buf[0] = '\0';
    } else {
        av_strerror(averr, buf, sizeof(buf));
    }

    /* ours, not the input's: the operator needs the call (job id: log.c) */
    if (code == VCONV_E_INTERNAL) {
        av_log(NULL, AV_LOG_ERROR, "vconv: internal error: %s: %s\n",
               what, averr ? buf : "failed");
    }

    if (averr == 0) {
        return vconv_error_set(&job->tc->err, code, "%s failed", what);
    }

    return vconv_error_set(&job->tc->err, code, "%s: %s", what, buf);
}


int
vconv_job_interrupt(void *data)
{
    vconv_job_t  *job = data;

    if (job->stop == VCONV_E_NONE && job->tc->interrupt != NULL) {
        job->stop = job->tc->interrupt(job->tc->data);
    }

    return job->stop != VCONV_E_NONE;
}
