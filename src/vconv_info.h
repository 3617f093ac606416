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

/*
 * format=sprite (vconv_sprite.c).  vconv_sprite_run() is the single
 * format: its own decode of job->v.  The engine of several outputs makes
 * one with vconv_sprite_create() over its decoded video stream st (its
 * decoder open, its rotation and turn set; spec holds sprite.*, quality),
 * gives it every decoded picture in order, then takes the JPEG from
 * vconv_sprite_end(); the grid as made is in *sp for the VTT.
 */
typedef struct vconv_sprite_ctx_s  vconv_sprite_ctx_t;

int vconv_sprite_run(vconv_job_t *job);
int vconv_sprite_create(vconv_job_t *job, const vconv_spec_t *spec,
    vconv_stream_t *st, vconv_sprite_t *sp, vconv_sprite_ctx_t **c);
int vconv_sprite_frame(vconv_sprite_ctx_t *c, AVFrame *frame);
int vconv_sprite_end(vconv_sprite_ctx_t *c, AVPacket *pkt);
void vconv_sprite_free(vconv_sprite_ctx_t **c);

/* writes len bytes as the job's whole output (a dup of output_fd) */
int vconv_info_write(vconv_job_t *job, const char *data, size_t len);


#endif /* _VCONV_INFO_H_INCLUDED_ */
