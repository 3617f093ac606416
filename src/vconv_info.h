/*
 * vconv: format=info, the input's facts as JSON (vconv_info.c).  Part of
 * the pipeline: the engine of several outputs calls these per output.
 */

#ifndef _VCONV_INFO_H_INCLUDED_
#define _VCONV_INFO_H_INCLUDED_


#include "vconv_pipeline.h"


/*
 * The JSON of an opened input (after avformat_find_stream_info), size
 * its bytes or -1; snprintf-style: returns the length it needs.
 */
size_t vconv_info_json(AVFormatContext *ifmt, int64_t size, char *buf,
    size_t len);

/* writes the JSON of job->ifmt as the job's output */
int vconv_info_run(vconv_job_t *job);

/* format=sprite: samples, tiles and encodes the grid (vconv_sprite.c) */
int vconv_sprite_run(vconv_job_t *job);

/* writes len bytes as the job's whole output (a dup of output_fd) */
int vconv_info_write(vconv_job_t *job, const char *data, size_t len);


#endif /* _VCONV_INFO_H_INCLUDED_ */
