/*
 * job_same(a, b): 1 if two job records hold the same values, field by
 * field (text up to its NUL), for the unit tests and the fuzz harness.
 */

#ifndef _JOB_SAME_H_INCLUDED_
#define _JOB_SAME_H_INCLUDED_


#include <string.h>

#include "vconv_job.h"


#if defined(__GNUC__)
__attribute__((unused))
#endif
static int
job_same(const vconv_job_info_t *a, const vconv_job_info_t *b)
{
    return strcmp(a->id, b->id) == 0
           && a->status == b->status
           && a->progress == b->progress
           && a->created == b->created
           && a->expires == b->expires
           && a->finished == b->finished
           && strcmp(a->in_name, b->in_name) == 0
           && a->in_bytes == b->in_bytes
           && strcmp(a->in_format, b->in_format) == 0
           && a->in_duration == b->in_duration
           && a->in_streams == b->in_streams
           && a->out_format == b->out_format
           && a->out_bytes == b->out_bytes
           && a->transcode_seconds == b->transcode_seconds
           && a->damaged_packets == b->damaged_packets
           && a->err_code == b->err_code
           && strcmp(a->err_message, b->err_message) == 0
           && a->pid == b->pid;
}


#endif /* _JOB_SAME_H_INCLUDED_ */
