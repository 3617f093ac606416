/*
 * vconv: nginx glue, shared declarations.
 */

#ifndef _NGX_HTTP_VCONV_H_INCLUDED_
#define _NGX_HTTP_VCONV_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "vconv.h"
#include "vconv_options.h"
#include "vconv_job.h"
#include "vconv_transcode.h"
#include "vconv_zip.h"
#include "vconv_reader.h"
#include "vconv_multipart.h"


/* a tus upload in its job's record (ngx_http_vconv_tus.c) */
typedef struct {
    off_t                       length;    /* Upload-Length */
    off_t                       offset;    /* committed: the reader's end */
    time_t                      expires;   /* idle past it: canceled */
    ngx_uint_t                  lock;      /* a PATCH's token, 0: none */
    ngx_pid_t                   lock_pid;  /* the worker of that PATCH */
    unsigned                    on:1;
} ngx_http_vconv_tus_node_t;


/* one job in the shared zone */
typedef struct {
    ngx_rbtree_node_t           node;      /* key: hash of the id */
    ngx_queue_t                 queue;     /* every job, oldest first */
    vconv_job_info_t            info;
    ngx_uint_t                  seq;       /* order of arrival */
    ngx_uint_t                  version;   /* bumped on every change */
    ngx_atomic_t                cancel;    /* 1: DELETE asked to stop */
    off_t                       disk;      /* bytes this job holds */
    unsigned                    active:1;  /* a worker owns it now */
    unsigned                    removing:1;
    unsigned                    small:1;   /* no folder: may be evicted */
    uint32_t                    client;    /* vconv_max_jobs_per_client */

    /* the scheduler's (ngx_http_vconv_sched.c), under the zone's lock */
    int64_t                     sched_key; /* the order slots go in */
    ngx_uint_t                  sched_threads; /* codec threads, granted */
    unsigned                    waiting:1; /* for a slot */
    unsigned                    granted:1; /* holds a slot */
    unsigned                    starved:1; /* gave it back: no input */
    unsigned                    lane:1;    /* NGX_HTTP_VCONV_LANE_* */

    ngx_http_vconv_tus_node_t   tus;       /* on: a tus upload's job */
} ngx_http_vconv_node_t;


/* a job waiting for a slot: the zone keeps them sorted by key, seq */
typedef struct {
    int64_t                     key;
    ngx_uint_t                  seq;
    ngx_http_vconv_node_t      *node;
} ngx_http_vconv_wait_t;


/*
 * The slots across all workers; in the zone, under its lock.  Jobs whose
 * every output is a still picture or info (a few frames decoded, tens of
 * ms) have a lane of their own with as many slots, so that a thumbnail
 * never waits behind a movie's transcode.
 */
#define NGX_HTTP_VCONV_LANE_FULL   0
#define NGX_HTTP_VCONV_LANE_QUICK  1
#define NGX_HTTP_VCONV_LANES       2

typedef struct {
    ngx_uint_t                  running;   /* slots granted */
    ngx_uint_t                  busy;      /* running >= the bound */
    ngx_uint_t                  nwaiting;
    ngx_uint_t                  size;      /* of waiting[] */
    ngx_http_vconv_wait_t      *waiting;   /* sorted, the next first */
} ngx_http_vconv_sched_t;


/* counters for /api/metrics, in the zone; they change under its lock */
typedef struct {
    ngx_uint_t                  finished[3];   /* done, failed, canceled */
    ngx_uint_t                  errors[VCONV_E_COUNT];
    ngx_uint_t                  bytes_in;
    ngx_uint_t                  bytes_out;
    double                      transcode_seconds;
    ngx_uint_t                  accepted;      /* jobs made by uploads */
} ngx_http_vconv_counters_t;


typedef struct {
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 queue;
    ngx_uint_t                  seq;
    ngx_uint_t                  njobs;
    off_t                       store_bytes;   /* sum of node->disk */
    time_t                      last_sweep;
    ngx_uint_t                  loaded;        /* the store was scanned */
    ngx_uint_t                  on_disk;       /* jobs left out of it */
    off_t                       on_disk_bytes; /* and their bytes */
    ngx_http_vconv_counters_t   counters;
    ngx_http_vconv_sched_t      sched[NGX_HTTP_VCONV_LANES];
} ngx_http_vconv_shctx_t;


typedef struct ngx_http_vconv_main_conf_s  ngx_http_vconv_main_conf_t;

typedef struct {
    ngx_http_vconv_shctx_t     *sh;
    ngx_slab_pool_t            *shpool;
    ngx_http_vconv_main_conf_t *conf;
} ngx_http_vconv_zone_t;


/* http{} level settings */
struct ngx_http_vconv_main_conf_s {
    ngx_shm_zone_t             *shm_zone;       /* NULL: module unused */
    ssize_t                     zone_size;
    ngx_str_t                   store;          /* no trailing slash */
    off_t                       max_size;       /* 0: no bound */
    time_t                      ttl;
    ngx_str_t                   thread_pool_name;
    ngx_thread_pool_t          *thread_pool;
    ngx_uint_t                  max_queue;
    ngx_str_t                   node;           /* "" or a name */
    ngx_str_t                   input_formats;  /* NUL-terminated list */
    ngx_int_t                   max_width;
    ngx_int_t                   max_height;
    ngx_msec_t                  max_duration;
    ngx_int_t                   max_frames;     /* video frames */
    off_t                       max_output;
    ngx_msec_t                  stall_timeout;
    ngx_int_t                   codec_threads;
    ngx_int_t                   priority;       /* nice of transcodes */
    ngx_flag_t                  used;           /* a handler needs us */
    time_t                      next_scan;      /* the store manager's */

    /* the sandbox (ngx_http_vconv_sandbox.c) */
    ngx_uint_t                  isolation;      /* NGX_HTTP_VCONV_ISO_* */
    off_t                       job_memory;     /* vconv_job_memory */
    ngx_str_t                   quarantine;     /* "" or a folder */
    ngx_str_t                   sandbox_helper; /* the executable */
    ngx_msec_t                  spare_idle;     /* 0: the spare stays */
    ngx_msec_t                  sandbox_idle;   /* 0: the helper stays */
    ngx_flag_t                  uploads;        /* a vconv_upload exists */

    /* abuse resistance (ngx_http_vconv_upload.c, _store.c) */
    time_t                      failed_ttl;     /* vconv_failed_ttl */

    /* the scheduler (ngx_http_vconv_sched.c) */
    ngx_uint_t                  max_running;    /* slots, all workers */
    size_t                      min_upload_rate; /* bytes/s, 0: none */
    ngx_msec_t                  priority_aging; /* a class's head start */

    /* HTTP/2 uploads (ngx_http_vconv_h2.c) */
    size_t                      h2_window_total; /* a worker's budget */
};


#define NGX_HTTP_VCONV_ISO_THREAD   0
#define NGX_HTTP_VCONV_ISO_PROCESS  1


/* location settings */
typedef struct {
    ngx_uint_t                  handler;        /* NGX_HTTP_VCONV_H_* */
    ngx_uint_t                  formats;        /* mask, vconv_formats */
    ngx_str_t                   jobs_uri;       /* "/api/jobs/" */
    ngx_uint_t                  max_per_client; /* 0: no bound */
    ngx_http_complex_value_t   *client_key;     /* NULL: the address */
    ngx_array_t                *presets;        /* vconv_preset, NULL */
    ngx_flag_t                  presets_only;
    ngx_uint_t                  priority_class; /* NGX_HTTP_VCONV_PRIO_* */
    size_t                      h2_window;      /* vconv_http2_window */
    size_t                      h2_window_max;  /* 0: nginx's window */

    /* tus (ngx_http_vconv_tus.c) */
    time_t                      tus_expires;    /* vconv_tus_expires */
    ngx_array_t                *cors;           /* vconv_cors, NULL */
} ngx_http_vconv_loc_conf_t;


/* vconv_http2_window's default and vconv_http2_window_total's */
#define NGX_HTTP_VCONV_H2_WINDOW        (16 * 1024 * 1024)
#define NGX_HTTP_VCONV_H2_WINDOW_TOTAL  (64 * 1024 * 1024)


/*
 * An upload's HTTP/2 window (ngx_http_vconv_h2.c): zeroed with the
 * request's context; ngx_http_vconv_h2_window() before each
 * ngx_http_read_unbuffered_request_body(), once rb->bufs are consumed.
 */
typedef struct {
    ngx_msec_t                  since;       /* the measure's start */
    off_t                       mark;        /* rb->received then */
    size_t                      held;        /* of the worker's budget */
    unsigned                    started:1;
} ngx_http_vconv_h2win_t;


#define NGX_HTTP_VCONV_PRIO_HIGH    0
#define NGX_HTTP_VCONV_PRIO_NORMAL  1
#define NGX_HTTP_VCONV_PRIO_LOW     2


#define NGX_HTTP_VCONV_H_NONE     0
#define NGX_HTTP_VCONV_H_UPLOAD   1
#define NGX_HTTP_VCONV_H_JOBS     2
#define NGX_HTTP_VCONV_H_PRESETS  3
#define NGX_HTTP_VCONV_H_STATUS   4
#define NGX_HTTP_VCONV_H_TUS      5   /* takes bodies, as H_UPLOAD */


extern ngx_module_t  ngx_http_vconv_module;


typedef struct ngx_http_vconv_job_s  ngx_http_vconv_job_t;


/*
 * Whoever waits for a job's end (the upload, an event stream) registers
 * one with ngx_http_vconv_job_wait(): event.handler runs on the event
 * loop once the transcode has ended (or the job went away unstarted).
 */
typedef struct {
    ngx_queue_t                 queue;
    ngx_event_t                 event;
    unsigned                    linked:1;
} ngx_http_vconv_waiter_t;


/*
 * A job as its owning worker sees it: lives in its own pool from the
 * upload until both the upload request and the thread task let go.
 */
struct ngx_http_vconv_job_s {
    ngx_pool_t                 *pool;
    ngx_log_t                  *log;         /* its lines carry the id */
    ngx_uint_t                  refs;
    ngx_http_vconv_zone_t      *zone;
    ngx_http_vconv_main_conf_t *vmcf;
    ngx_http_vconv_node_t      *node;
    ngx_queue_t                 queue;       /* the worker's jobs */
    ngx_queue_t                 waiters;
    ngx_event_t                 alive;       /* holds an exiting worker */

    vconv_job_info_t            info;        /* owner's copy */
    vconv_spec_t                spec;
    vconv_limits_t              limits;
    vconv_reader_t              reader;      /* its own lock inside */
    vconv_error_t               err;         /* the task's result */

    ngx_str_t                   id;
    u_char                     *dir;
    u_char                     *input;
    u_char                     *output;
    u_char                     *tmp;
    ngx_fd_t                    wfd;         /* upload side */
    ngx_fd_t                    rfd;         /* transcode side */
    off_t                       written;

    ngx_thread_task_t          *task;
    ngx_str_t                   options;     /* "key=escaped value\n"... */
    ngx_msec_t                  offered;     /* to the new workers, at */
    ngx_uint_t                  sched_class; /* NGX_HTTP_VCONV_PRIO_* */

    /*
     * Shared with the pool thread: interrupt and claim are atomic; the
     * two clocks are the task's own once it is posted (the post orders
     * the first write); err is handed back through the task's completion.
     */
    ngx_atomic_t                interrupt;   /* 1: the worker is leaving */
    ngx_atomic_t                claim;       /* NGX_HTTP_VCONV_CLAIM_* */
    int64_t                     last_activity;  /* ms, for stalls */
    int64_t                     last_progress;  /* ms, progress writes */

    /* the task's own: its slot given back while it waits for input */
    ngx_uint_t                  starved;
    int64_t                     starve_check;   /* ms, next look */

    /* the event loop's own, never touched by the pool thread */
    unsigned                    reader_ready:1;
    unsigned                    posted:1;
    unsigned                    task_done:1;
    unsigned                    upload_done:1;
    unsigned                    wait:1;
    unsigned                    discard:1;   /* nobody learned its id */
    unsigned                    input_gone:1;
    unsigned                    settled:1;
    unsigned                    held:1;      /* by an exiting worker */
    unsigned                    offer:1;     /* claim is OFFERED */
    unsigned                    skipped:1;   /* its task ran, did nothing */
    unsigned                    handed:1;    /* another worker took it */
    unsigned                    sched_wait:1; /* for a slot, no task yet */

    /* 1 while a tus upload is incomplete: the task's stall clock waits */
    ngx_atomic_t                tus_open;
};


/* who runs a posted job: the task, or a new worker it was offered to */
#define NGX_HTTP_VCONV_CLAIM_POSTED   0
#define NGX_HTTP_VCONV_CLAIM_RUNNING  1
#define NGX_HTTP_VCONV_CLAIM_OFFERED  2


/* the upload request's context */
typedef struct {
    ngx_http_vconv_job_t       *job;
    vconv_spec_t               *spec;
    vconv_multipart_t          *multipart;
    vconv_error_t               err;
    ngx_event_t                 watch;       /* DELETE while uploading */
    ngx_http_vconv_waiter_t     waiter;      /* the job's end */
    off_t                       dropped;     /* body after the job's end */
    off_t                       rate_mark;   /* written, window's start */
    off_t                       stall_mark;  /* written, last growth */
    ngx_msec_t                  stall_since;
    ngx_msec_t                  rate_since;  /* vconv_min_upload_rate's */
    ngx_pool_t                 *pool;        /* the request's */
    ngx_str_t                   options;     /* as job->options */
    size_t                      options_size;
    char                        name[VCONV_NAME_MAX];
    ngx_http_vconv_loc_conf_t  *vlcf;
    void                       *preset;      /* preset=, the conf's */
    unsigned                    preset_applied:1;
    unsigned                    wait:1;
    unsigned                    wait_set:1;
    unsigned                    keep:1;      /* wait=1 keeps the job */
    unsigned                    keep_set:1;
    unsigned                    multipart_on:1;
    unsigned                    file_seen:1;
    unsigned                    name_set:1;
    unsigned                    done:1;
    unsigned                    drain:1;     /* the job ended first */
    ngx_http_vconv_h2win_t      h2win;
} ngx_http_vconv_ctx_t;


/*
 * zone (ngx_http_vconv_zone.c): the job registry in shared memory; every
 * call takes the zone's lock itself unless its name ends in _locked
 */
ngx_int_t ngx_http_vconv_zone_init(ngx_shm_zone_t *shm_zone, void *data);
/* NULL when no vconv_* handler uses the module */
ngx_http_vconv_zone_t *ngx_http_vconv_zone(ngx_http_request_t *r);
ngx_http_vconv_node_t *ngx_http_vconv_zone_add(ngx_http_vconv_zone_t *z,
    vconv_job_info_t *info, ngx_log_t *log);
ngx_int_t ngx_http_vconv_zone_load(ngx_http_vconv_zone_t *z,
    vconv_job_info_t *info, off_t disk, ngx_uint_t count);
/* copies the job out; NGX_DECLINED if unknown, NGX_ABORT if going */
ngx_int_t ngx_http_vconv_zone_get(ngx_http_vconv_zone_t *z, ngx_str_t *id,
    vconv_job_info_t *info, ngx_uint_t *version, ngx_uint_t *queue_pos);
ngx_int_t ngx_http_vconv_zone_cancel(ngx_http_vconv_zone_t *z,
    ngx_str_t *id);
void ngx_http_vconv_zone_update(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, vconv_job_info_t *info);
void ngx_http_vconv_zone_progress(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, double progress);
void ngx_http_vconv_zone_disk(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, off_t delta);
void ngx_http_vconv_zone_input(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, off_t n);
void ngx_http_vconv_zone_remove(ngx_http_vconv_zone_t *z, ngx_str_t *id);
void ngx_http_vconv_zone_count_error(ngx_http_vconv_zone_t *z,
    vconv_err_e code);
/* abuse resistance and accounting (issue 18) */
void ngx_http_vconv_zone_accept(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, uint32_t client);
void ngx_http_vconv_zone_count_unposted(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, vconv_err_e code);
ngx_uint_t ngx_http_vconv_zone_client_jobs(ngx_http_vconv_zone_t *z,
    uint32_t client);
time_t ngx_http_vconv_zone_retry_after(ngx_http_vconv_zone_t *z);
/* a queued job offered by an exiting worker, now the caller's */
ngx_http_vconv_node_t *ngx_http_vconv_zone_take(ngx_http_vconv_zone_t *z,
    vconv_job_info_t *info);
/* uploading + queued jobs; the store's bytes, jobs left on disk too */
void ngx_http_vconv_zone_room(ngx_http_vconv_zone_t *z, ngx_uint_t *waiting,
    off_t *store_bytes);
ngx_http_vconv_node_t *ngx_http_vconv_zone_lookup_locked(
    ngx_http_vconv_zone_t *z, ngx_str_t *id);
void ngx_http_vconv_zone_free_locked(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node);
void ngx_http_vconv_zone_count_locked(ngx_http_vconv_zone_t *z,
    vconv_job_info_t *info);

/* store (ngx_http_vconv_store.c): job folders, recovery, the sweeper */
ngx_int_t ngx_http_vconv_store_add_path(ngx_conf_t *cf,
    ngx_http_vconv_main_conf_t *vmcf);
void ngx_http_vconv_store_init_process(ngx_cycle_t *cycle);
u_char *ngx_http_vconv_store_path(ngx_pool_t *pool,
    ngx_http_vconv_main_conf_t *vmcf, ngx_str_t *id, const char *file);
ngx_int_t ngx_http_vconv_store_create(u_char *dir, u_char *input,
    ngx_fd_t *wfd, ngx_log_t *log, vconv_error_t *err);
/* a failed or canceled job: no folder, a short-lived small record */
void ngx_http_vconv_store_forget(ngx_http_vconv_job_t *job);
void ngx_http_vconv_store_rmdir(ngx_http_vconv_main_conf_t *vmcf,
    const char *id, ngx_log_t *log);
/* the zone's copy, else the job.json of a job the zone does not hold */
ngx_int_t ngx_http_vconv_store_get(ngx_http_vconv_zone_t *z, ngx_str_t *id,
    vconv_job_info_t *info, ngx_uint_t *version, ngx_uint_t *queue_pos);
/* the zone's answer, else NGX_OK for a finished job only on disk */
ngx_int_t ngx_http_vconv_store_cancel(ngx_http_vconv_zone_t *z,
    ngx_str_t *id);

/* jobs in the owning worker (ngx_http_vconv_job.c) */
ngx_http_vconv_job_t *ngx_http_vconv_job_create(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, vconv_job_info_t *info, vconv_error_t *err);
ngx_int_t ngx_http_vconv_job_start(ngx_http_vconv_job_t *job);
void ngx_http_vconv_job_complete(ngx_http_vconv_job_t *job);
void ngx_http_vconv_job_release(ngx_http_vconv_job_t *job);
/* nothing works on it any more: its record and folder go or stay now */
void ngx_http_vconv_job_settle(ngx_http_vconv_job_t *job);
void ngx_http_vconv_job_drop_input(ngx_http_vconv_job_t *job);
/* this worker's job of that id, NULL if another worker has it */
ngx_http_vconv_job_t *ngx_http_vconv_job_find(ngx_str_t *id);
/* this worker's jobs that were granted a slot or canceled meanwhile */
ngx_uint_t ngx_http_vconv_job_sched_events(void);
/* this worker takes over queued jobs exiting workers offer */
void ngx_http_vconv_job_init_process(ngx_cycle_t *cycle,
    ngx_http_vconv_main_conf_t *vmcf);
void ngx_http_vconv_job_wait(ngx_http_vconv_job_t *job,
    ngx_http_vconv_waiter_t *w);
void ngx_http_vconv_job_unwait(ngx_http_vconv_waiter_t *w);

/*
 * the scheduler (ngx_http_vconv_sched.c): slots for transcodes across all
 * workers, granted from the zone in order; a worker hears of its grants
 * and of cancels through a datagram socket of its own
 */
ngx_int_t ngx_http_vconv_sched_init_process(ngx_cycle_t *cycle,
    ngx_http_vconv_main_conf_t *vmcf);
void ngx_http_vconv_sched_exit_process(ngx_cycle_t *cycle);
/* NGX_OK: queued (or holds its slot already); NGX_ERROR: no memory */
ngx_int_t ngx_http_vconv_sched_enqueue(ngx_http_vconv_job_t *job);
/* the job leaves the queue or gives its slot back; wakes the next */
void ngx_http_vconv_sched_leave(ngx_http_vconv_job_t *job);
/* the caller holds the lock; the node is going away */
void ngx_http_vconv_sched_forget_locked(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node);
/* 1-based place among the waiting jobs, 0 if not waiting; locked */
ngx_uint_t ngx_http_vconv_sched_position_locked(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node);
/* a canceled waiting job leaves the queue: the pid to wake, 0: none */
ngx_pid_t ngx_http_vconv_sched_cancel_locked(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node);
void ngx_http_vconv_sched_wake(ngx_pid_t pid, ngx_log_t *log);
/* codec threads of a job that runs alone, at most (libavcodec's own cap) */
#define NGX_HTTP_VCONV_LONE_THREADS  16
/* vconv_sandbox_idle when not set: an idle worker lets its helper go */
#define NGX_HTTP_VCONV_SANDBOX_IDLE_MS  (10 * 60 * 1000)
/*
 * ms without a packet converted after which a running job whose upload
 * goes on counts as waiting for its bytes: longer than a healthy
 * upload's pauses, well under vconv_stall_timeout
 */
#define NGX_HTTP_VCONV_STARVE_MS  2000

/*
 * On the pool thread: a running job that waits for upload bytes gives
 * its slot to the next job (starve 1: NGX_OK if it did, NGX_DECLINED if
 * nobody waits) and takes it back once bytes come (starve 0).
 */
ngx_int_t ngx_http_vconv_sched_starve(ngx_http_vconv_job_t *job,
    ngx_uint_t starve);

/* the transcode as a thread task (ngx_http_vconv_task.c) */
ngx_int_t ngx_http_vconv_task_post(ngx_http_vconv_job_t *job);
/* a list of formats: output i's file (tmp: while written) into buf */
ngx_int_t ngx_http_vconv_output_path(ngx_http_vconv_job_t *job,
    ngx_uint_t i, ngx_uint_t tmp, u_char *buf, size_t size);
int ngx_http_vconv_task_interrupt(void *data);
int64_t ngx_http_vconv_task_now(void);

/* the sandbox (ngx_http_vconv_sandbox.c) */
char *ngx_http_vconv_sandbox_conf(ngx_conf_t *cf,
    ngx_http_vconv_main_conf_t *vmcf);
void ngx_http_vconv_sandbox_spare(ngx_uint_t on, ngx_uint_t later);
ngx_int_t ngx_http_vconv_sandbox_init_process(ngx_cycle_t *cycle,
    ngx_http_vconv_main_conf_t *vmcf);
/* vconv_transcode()'s contract, in the thread or in a sandboxed child */
int ngx_http_vconv_transcode(ngx_http_vconv_job_t *job,
    vconv_transcode_t *tc);

/* libav's lines into the error log (ngx_http_vconv_module.c) */
void ngx_http_vconv_av_log(int level, const char *job, const char *msg);

/* presets (ngx_http_vconv_preset.c) */
char *ngx_http_vconv_preset_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vconv_preset_merge(ngx_conf_t *cf,
    ngx_http_vconv_loc_conf_t *prev, ngx_http_vconv_loc_conf_t *conf);
ngx_int_t ngx_http_vconv_preset_option(ngx_http_vconv_ctx_t *ctx,
    u_char *key, size_t klen, u_char *val, size_t vlen);
ngx_int_t ngx_http_vconv_preset_apply(ngx_http_vconv_ctx_t *ctx);
ngx_int_t ngx_http_vconv_preset_list(ngx_http_request_t *r,
    ngx_str_t *json);
/* an option line kept for a worker that takes the job over */
ngx_int_t ngx_http_vconv_upload_keep_option(ngx_http_vconv_ctx_t *ctx,
    u_char *key, size_t klen, u_char *val, size_t vlen);

/* HTTP/2 upload windows (ngx_http_vconv_h2.c) */
void ngx_http_vconv_h2_window(ngx_http_request_t *r,
    ngx_http_vconv_h2win_t *w);
char *ngx_http_vconv_h2_merge(ngx_conf_t *cf,
    ngx_http_vconv_loc_conf_t *prev, ngx_http_vconv_loc_conf_t *conf);
/* tus 1.0.0 (ngx_http_vconv_tus.c) */
char *ngx_http_vconv_tus_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vconv_cors_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_vconv_tus_handler(ngx_http_request_t *r);
/* the upload a tus request is about, for $vconv_job_id; NGX_DECLINED */
ngx_int_t ngx_http_vconv_tus_job_id(ngx_http_request_t *r, ngx_str_t *id);
/* the sweeper, locked: an idle incomplete upload is canceled (1) */
ngx_uint_t ngx_http_vconv_tus_expire_locked(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, time_t now);
/* a tus creation is checked as a POST is (ngx_http_vconv_upload.c) */
ngx_int_t ngx_http_vconv_upload_tus_option(ngx_http_vconv_ctx_t *ctx,
    vconv_job_info_t *info, u_char *key, size_t klen, u_char *val,
    size_t vlen);
ngx_int_t ngx_http_vconv_upload_tus_client(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, uint32_t *client, vconv_error_t *err);
ngx_int_t ngx_http_vconv_upload_tus_id(ngx_http_request_t *r,
    vconv_job_info_t *info);
ngx_int_t ngx_http_vconv_upload_tus_retry_after(ngx_http_request_t *r,
    time_t seconds);
/* DELETE of an upload is the job's (ngx_http_vconv_jobs.c) */
ngx_int_t ngx_http_vconv_jobs_terminate(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, ngx_str_t *id);

/* handlers */
ngx_int_t ngx_http_vconv_upload_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_vconv_jobs_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_vconv_events_handler(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, ngx_str_t *id, char *jobs_uri);
ngx_int_t ngx_http_vconv_presets_handler(ngx_http_request_t *r);

/* ngx_http_vconv_zip.c: outputs.zip and output/sprite.vtt of a done job */
ngx_int_t ngx_http_vconv_zip_handler(ngx_http_request_t *r,
    vconv_job_info_t *info);
ngx_int_t ngx_http_vconv_zip_vtt(ngx_http_request_t *r,
    vconv_job_info_t *info);
ngx_int_t ngx_http_vconv_status_handler(ngx_http_request_t *r);

/* what every handler shares (ngx_http_vconv_reply.c) */
ngx_int_t ngx_http_vconv_reply_json(ngx_http_request_t *r,
    ngx_uint_t status, u_char *json, size_t len);
ngx_table_elt_t *ngx_http_vconv_header_in(ngx_http_request_t *r,
    const char *name);
ngx_int_t ngx_http_vconv_reply_file(ngx_http_request_t *r,
    ngx_open_file_info_t *of, ngx_str_t *path);
ngx_int_t ngx_http_vconv_reply_header(ngx_http_request_t *r, char *key,
    u_char *value, size_t len);
ngx_int_t ngx_http_vconv_reply_no_store(ngx_http_request_t *r);
ngx_int_t ngx_http_vconv_reply_body(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, u_char *body, size_t len);
ngx_int_t ngx_http_vconv_reply_code(ngx_http_request_t *r,
    ngx_uint_t status, char *code, u_char *message, size_t len);
ngx_int_t ngx_http_vconv_reply_not_found(ngx_http_request_t *r,
    char *message);
ngx_int_t ngx_http_vconv_reply_not_allowed(ngx_http_request_t *r,
    char *allow);
ngx_int_t ngx_http_vconv_reply_no_content(ngx_http_request_t *r);
ngx_int_t ngx_http_vconv_reply_error(ngx_http_request_t *r,
    vconv_error_t *err);
ngx_int_t ngx_http_vconv_reply_output(ngx_http_request_t *r,
    vconv_job_info_t *info);
ngx_int_t ngx_http_vconv_reply_output_n(ngx_http_request_t *r,
    vconv_job_info_t *info, ngx_uint_t i);
ngx_int_t ngx_http_vconv_reply_hls(ngx_http_request_t *r,
    vconv_job_info_t *info, u_char *name, size_t len, const char *mime);
/* the job JSON in the pool, NULL on no memory */
u_char *ngx_http_vconv_reply_job_json(ngx_pool_t *pool,
    vconv_job_info_t *info, char *jobs_uri, ngx_uint_t queue_pos,
    size_t *len);

#endif /* _NGX_HTTP_VCONV_H_INCLUDED_ */
