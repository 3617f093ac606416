/*
 * vconv: the job record (a plain struct, kept in shared memory by the
 * glue), its JSON form for the API, and job.json on disk.
 */

#ifndef _VCONV_JOB_H_INCLUDED_
#define _VCONV_JOB_H_INCLUDED_


#include <sys/types.h>

#include "vconv.h"
#include "vconv_disposition.h"    /* the glue finds it here too */
#include "vconv_options.h"


#define VCONV_ID_MAX      96      /* "node-" + 32 hex + NUL, node <= 48 */
#define VCONV_NAME_MAX    256     /* original file name, bytes */


typedef enum {
    VCONV_JOB_UPLOADING = 0,
    VCONV_JOB_QUEUED,
    VCONV_JOB_RUNNING,
    VCONV_JOB_DONE,
    VCONV_JOB_FAILED,
    VCONV_JOB_CANCELED
} vconv_status_e;


/* Fixed size and pointer-free: it is copied in and out of the zone. */
typedef struct {
    char            id[VCONV_ID_MAX];
    vconv_status_e  status;
    double          progress;          /* 0.0 - 1.0 */
    int64_t         created;           /* unix seconds */
    int64_t         expires;           /* unix seconds, 0: not yet */
    int64_t         finished;          /* unix seconds, 0: not yet */

    char            in_name[VCONV_NAME_MAX];  /* as sent, any bytes */
    int64_t         in_bytes;
    char            in_format[32];
    double          in_duration;       /* seconds, -1 unknown */
    int             in_streams;

    int             out_format;        /* vconv_format_e */
    int64_t         out_bytes;
    double          transcode_seconds;
    int64_t         damaged_packets;   /* skipped; the job went on */

    vconv_err_e     err_code;
    char            err_message[256];

    pid_t           pid;               /* worker running the job */
    int64_t         started_ms;        /* unix ms its transcode began, 0 */
    int64_t         finished_ms;       /* unix ms it ended, 0: unknown */

    /*
     * A list of formats (issue 13): every output in order, the first
     * also out_format and out_bytes; nouts 0: the one output of before.
     * The first is the file "output", each other "output.NAME".
     */
    int             nouts;
    int             outs[VCONV_MAX_OUTPUTS];        /* vconv_format_e */
    int64_t         outs_bytes[VCONV_MAX_OUTPUTS];
    /* hls: the rung's height, 0: not a rung; rungs share "hls/" */
    int             outs_rung[VCONV_MAX_OUTPUTS];
} vconv_job_info_t;


const char *vconv_status_name(vconv_status_e status);

/* the record's outputs: out_format and the list, from a finished spec */
void vconv_job_outputs(vconv_job_info_t *job, const vconv_spec_t *spec);

/* 1 for done, failed, canceled */
int vconv_status_final(vconv_status_e status);

/*
 * The job JSON of the contract.  jobs_uri is the URI prefix the job is
 * reached under ("/api/jobs/"), queue_position is 0 when not queued.
 * Every string is escaped.  Returns the length needed (like snprintf).
 */
size_t vconv_job_json(const vconv_job_info_t *job, const char *jobs_uri,
    int queue_position, char *buf, size_t len);

/* {"error":{"code":..,"message":..}} */
size_t vconv_error_json(const vconv_error_t *err, char *buf, size_t len);

/*
 * Writes dir/job.json atomically (temporary file, fsync, rename; mode
 * 0600) and reads it back.  Load refuses a file whose id does not match
 * the folder's name.
 */
int vconv_job_save(const vconv_job_info_t *job, const char *dir,
    vconv_error_t *err);
int vconv_job_load(vconv_job_info_t *job, const char *dir,
    vconv_error_t *err);

/*
 * 1 if s is exactly an id of our shape: 32 lowercase hex digits,
 * optionally preceded by "node-" where node is [A-Za-z0-9_] 1-48 chars.
 * Nothing else may be used to build a path.
 */
int vconv_id_valid(const char *s, size_t len);

/*
 * job.json's text, the parts of save and load that do not touch the
 * disk.  vconv_job_text() returns the text (free() it) and its length in
 * *len, NULL when out of memory.  vconv_job_parse() reads one back and
 * returns 0, or -1 for anything but a job.json of ours (damaged, cut,
 * other types, an unknown name, a text too long for its field); it does
 * not check the id's shape (vconv_job_load does).
 */
char *vconv_job_text(const vconv_job_info_t *job, size_t *len);
int vconv_job_parse(vconv_job_info_t *job, const char *text, size_t len);


#endif /* _VCONV_JOB_H_INCLUDED_ */
