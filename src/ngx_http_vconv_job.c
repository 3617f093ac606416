/*
 * vconv: a job in its owning worker.  It lives in its own pool from the
 * upload until the upload request and the thread task both let go; its
 * end is an event that whoever waits for it (the upload, wait=1, an
 * event stream) subscribes to, and while its task runs it holds the
 * worker: an exiting worker stays in its event loop until the job ends.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_vconv.h"


/*
 * How often a running job looks whether its worker is exiting; the
 * worker_shutdown_timeout is kept to within this much.
 */
#define NGX_HTTP_VCONV_ALIVE_MS    250

/* a queued job offered to the new workers comes back if none takes it */
#define NGX_HTTP_VCONV_OFFER_MS    2000

/* how often a worker looks for offered jobs */
#define NGX_HTTP_VCONV_TAKE_MS     500

/* the options file of an offered job */
#define NGX_HTTP_VCONV_OPTIONS_MAX  8192


static void ngx_http_vconv_job_cleanup(void *data);
static u_char *ngx_http_vconv_job_log_handler(ngx_log_t *log, u_char *buf,
    size_t len);
static void ngx_http_vconv_job_notify(ngx_http_vconv_job_t *job,
    ngx_uint_t post);
static void ngx_http_vconv_job_alive(ngx_event_t *ev);
static void ngx_http_vconv_job_log_end(ngx_http_vconv_job_t *job);
static void ngx_http_vconv_job_fail(ngx_http_vconv_job_t *job,
    const char *message);
static void ngx_http_vconv_job_repost(ngx_http_vconv_job_t *job);
static void ngx_http_vconv_job_unqueue(ngx_http_vconv_job_t *job,
    ngx_uint_t cancel);
static void ngx_http_vconv_job_offer(ngx_http_vconv_job_t *job);
static void ngx_http_vconv_job_offered(ngx_http_vconv_job_t *job);
static ngx_int_t ngx_http_vconv_job_write_options(ngx_http_vconv_job_t *job);
static ngx_int_t ngx_http_vconv_job_read_options(ngx_http_vconv_job_t *job);
static void ngx_http_vconv_job_take_handler(ngx_event_t *ev);
static void ngx_http_vconv_job_take(ngx_http_vconv_main_conf_t *vmcf,
    ngx_http_vconv_zone_t *z, ngx_http_vconv_node_t *node,
    vconv_job_info_t *info);


/* this worker's jobs, for event streams that wait on one */
static ngx_queue_t  ngx_http_vconv_jobs;

/* when this worker was first seen exiting, 0: not yet */
static ngx_msec_t   ngx_http_vconv_exiting_since;

/* looks for queued jobs exiting workers offer */
static ngx_event_t  ngx_http_vconv_taker;


/*
 * The job object: its own pool (it outlives the upload request when the
 * transcode is still on), its log, its paths; no record, no files yet.
 */
static ngx_http_vconv_job_t *
ngx_http_vconv_job_alloc(ngx_http_vconv_main_conf_t *vmcf,
    ngx_http_vconv_zone_t *z, vconv_job_info_t *info)
{
    ngx_log_t             *log;
    ngx_pool_t            *pool;
    ngx_pool_cleanup_t    *cln;
    ngx_http_vconv_job_t  *job;

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    job = ngx_pcalloc(pool, sizeof(ngx_http_vconv_job_t));
    log = ngx_pcalloc(pool, sizeof(ngx_log_t));
    cln = ngx_pool_cleanup_add(pool, 0);

    if (job == NULL || log == NULL || cln == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    job->pool = pool;
    job->log = log;
    job->zone = z;
    job->vmcf = vmcf;
    job->info = *info;
    job->wfd = NGX_INVALID_FILE;
    job->rfd = NGX_INVALID_FILE;
    job->refs = 1;
    job->sched_class = NGX_HTTP_VCONV_PRIO_NORMAL;

    job->id.data = (u_char *) job->info.id;
    job->id.len = ngx_strlen(job->info.id);

    /* every error line about the job says which one */
    *log = *ngx_cycle->log;
    log->handler = ngx_http_vconv_job_log_handler;
    log->data = job;
    log->action = NULL;
    pool->log = log;

    ngx_queue_init(&job->waiters);

    if (ngx_http_vconv_jobs.prev == NULL) {
        ngx_queue_init(&ngx_http_vconv_jobs);
    }

    ngx_queue_insert_tail(&ngx_http_vconv_jobs, &job->queue);

    cln->handler = ngx_http_vconv_job_cleanup;
    cln->data = job;

    job->dir = ngx_http_vconv_store_path(pool, vmcf, &job->id, NULL);
    job->input = ngx_http_vconv_store_path(pool, vmcf, &job->id, "input");
    job->output = ngx_http_vconv_store_path(pool, vmcf, &job->id, "output");
    job->tmp = ngx_http_vconv_store_path(pool, vmcf, &job->id, "output.tmp");

    if (job->dir == NULL || job->input == NULL || job->output == NULL
        || job->tmp == NULL)
    {
        ngx_destroy_pool(pool);
        return NULL;
    }

    job->limits.max_width = (int) vmcf->max_width;
    job->limits.max_height = (int) vmcf->max_height;
    job->limits.max_duration = (int64_t) vmcf->max_duration * 1000;
    job->limits.max_frames = (int64_t) vmcf->max_frames;
    job->limits.max_output = vmcf->max_output;
    /* unset: the scheduler says how many, with the slot */
    job->limits.codec_threads = (vmcf->codec_threads == NGX_CONF_UNSET)
                                ? 0 : (int) vmcf->codec_threads;
    job->limits.input_formats = (char *) vmcf->input_formats.data;

    return job;
}


/* the reader over the spool file, for the transcode side */
static ngx_int_t
ngx_http_vconv_job_reader(ngx_http_vconv_job_t *job, off_t written,
    ngx_uint_t ended)
{
    job->rfd = ngx_open_file(job->input, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (job->rfd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_CRIT, job->log, ngx_errno,
                      "vconv: open \"%s\" failed", job->input);
        return NGX_ERROR;
    }

    if (vconv_reader_init(&job->reader, job->rfd, written, ended,
                          (int64_t) job->vmcf->stall_timeout)
        != VCONV_OK)
    {
        return NGX_ERROR;
    }

    job->reader_ready = 1;
    job->reader.interrupt = ngx_http_vconv_task_interrupt;
    job->reader.data = job;

    return NGX_OK;
}


/*
 * Makes the job's record, folder and spool file, for an upload; err says
 * why not (zone_full, store_full, store_error, internal_error).
 */
ngx_http_vconv_job_t *
ngx_http_vconv_job_create(ngx_http_request_t *r, ngx_http_vconv_zone_t *z,
    vconv_job_info_t *info, vconv_error_t *err)
{
    ngx_http_vconv_job_t        *job;
    ngx_http_vconv_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vconv_module);

    (void) vconv_error_set(err, VCONV_E_INTERNAL,
                           "the server cannot take a job now");

    job = ngx_http_vconv_job_alloc(vmcf, z, info);
    if (job == NULL) {
        return NULL;
    }

    job->node = ngx_http_vconv_zone_add(z, &job->info, r->connection->log);
    if (job->node == NULL) {
        ngx_destroy_pool(job->pool);
        (void) vconv_error_set(err, VCONV_E_ZONE_FULL,
                               "the server holds as many jobs as it can");
        return NULL;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, job->log, 0,
                   "vconv: job %V uploading", &job->id);

    if (ngx_http_vconv_store_create(job->dir, job->input, &job->wfd,
                                    job->log, err)
        != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_vconv_job_reader(job, 0, 0) != NGX_OK) {
        goto failed;
    }

    return job;

failed:

    /* the record goes with the folder: nothing of the job is left */
    ngx_http_vconv_job_release(job);

    return NULL;
}


static void
ngx_http_vconv_job_cleanup(void *data)
{
    ngx_http_vconv_job_t  *job = data;

    ngx_queue_remove(&job->queue);

    if (job->alive.timer_set) {
        ngx_del_timer(&job->alive);
    }

    if (job->wfd != NGX_INVALID_FILE) {
        (void) ngx_close_file(job->wfd);
    }

    if (job->rfd != NGX_INVALID_FILE) {
        (void) ngx_close_file(job->rfd);
    }

    if (job->reader_ready) {
        vconv_reader_destroy(&job->reader);
    }
}


/* ", job: <id>" after every line about the job but debug ones */
static u_char *
ngx_http_vconv_job_log_handler(ngx_log_t *log, u_char *buf, size_t len)
{
    u_char                *p;
    ngx_http_vconv_job_t  *job;

    job = log->data;
    p = buf;

    if (log->action) {
        p = ngx_snprintf(p, len, " while %s", log->action);
        len -= p - buf;
    }

    return ngx_snprintf(p, len, ", job: %V", &job->id);
}


/*
 * Once nothing works on the job any more (its task ended, or it never had
 * one and its upload is over): a job DELETE asked to cancel, or whose id
 * nobody learned, leaves nothing; otherwise its record stays for GET
 * until it expires.  This must not wait for the upload request's pool:
 * an answered upload may linger for seconds.
 */
void
ngx_http_vconv_job_settle(ngx_http_vconv_job_t *job)
{
    ngx_http_vconv_zone_t  *z;

    if (job->settled) {
        return;
    }

    job->settled = 1;
    z = job->zone;

    /* a job that never ran leaves its place in the queue */
    ngx_http_vconv_sched_leave(job);

    ngx_http_vconv_job_drop_input(job);

    if (!job->posted && job->err.code != VCONV_E_NONE) {
        /* an accepted upload refused on the way still ends once */
        ngx_http_vconv_zone_count_unposted(z, job->node, job->err.code);
    }

    if (!job->posted || job->node->cancel || job->discard) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, job->log, 0,
                       "vconv: job %V removed", &job->id);

        ngx_http_vconv_store_rmdir(job->vmcf, job->info.id, job->log);
        ngx_http_vconv_zone_remove(z, &job->id);
        return;
    }

    ngx_http_vconv_store_forget(job);

    ngx_shmtx_lock(&z->shpool->mutex);
    job->node->active = 0;
    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* the last one out, upload request or task, frees the job */
void
ngx_http_vconv_job_release(ngx_http_vconv_job_t *job)
{
    if (--job->refs) {
        return;
    }

    ngx_http_vconv_job_settle(job);

    /* an event stream still waiting looks at the zone once more */
    ngx_http_vconv_job_notify(job, 1);

    ngx_destroy_pool(job->pool);
}


/* once the upload side is done with the spool file; the event loop */
void
ngx_http_vconv_job_drop_input(ngx_http_vconv_job_t *job)
{
    if (job->input_gone) {
        return;
    }

    job->input_gone = 1;

    if (unlink((char *) job->input) == -1 && errno != ENOENT) {
        ngx_log_error(NGX_LOG_ERR, job->log, errno,
                      "vconv: unlink \"%s\" failed", job->input);
    }

    ngx_http_vconv_zone_disk(job->zone, job->node, -job->written);
}


ngx_int_t
ngx_http_vconv_job_start(ngx_http_vconv_job_t *job)
{
    if (job->posted) {
        return NGX_OK;
    }

    ngx_shmtx_lock(&job->zone->shpool->mutex);
    job->node->info.status = VCONV_JOB_QUEUED;
    vconv_job_outputs(&job->node->info, &job->spec);
    job->node->info.pid = ngx_pid;
    job->node->version++;
    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    /* the task is posted once the scheduler grants the job a slot */
    if (ngx_http_vconv_sched_enqueue(job) != NGX_OK) {
        return NGX_ERROR;
    }

    job->posted = 1;
    job->sched_wait = 1;
    job->refs++;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, job->log, 0,
                   "vconv: job %V queued", &job->id);

    /*
     * Not cancelable: a reloading or quitting worker leaves its event
     * loop only once no such timer is left, so it waits idle for the
     * task instead of spinning in ngx_thread_pool_destroy().
     */
    job->alive.handler = ngx_http_vconv_job_alive;
    job->alive.data = job;
    job->alive.log = job->log;
    ngx_add_timer(&job->alive, NGX_HTTP_VCONV_ALIVE_MS);

    return NGX_OK;
}


/*
 * This worker's jobs waiting for a slot look whether they were granted
 * one or canceled: the scheduler's wake-up, on the event loop.  A job
 * that ends here may free others' memory, so the walk starts again.
 */
ngx_uint_t
ngx_http_vconv_job_sched_events(void)
{
    ngx_uint_t             granted, cancel, threads, posted;
    ngx_queue_t           *q;
    ngx_http_vconv_job_t  *job;

    posted = 0;

    if (ngx_http_vconv_jobs.prev == NULL) {
        return 0;
    }

again:

    for (q = ngx_queue_head(&ngx_http_vconv_jobs);
         q != ngx_queue_sentinel(&ngx_http_vconv_jobs);
         q = ngx_queue_next(q))
    {
        job = ngx_queue_data(q, ngx_http_vconv_job_t, queue);

        if (!job->sched_wait || job->offer || job->handed) {
            continue;
        }

        ngx_shmtx_lock(&job->zone->shpool->mutex);
        granted = job->node->granted;
        cancel = job->node->cancel;
        threads = job->node->sched_threads;
        ngx_shmtx_unlock(&job->zone->shpool->mutex);

        if (cancel || job->discard) {
            /* asked to stop, or its upload failed: it gives up its place */
            ngx_http_vconv_job_unqueue(job, cancel);
            goto again;
        }

        if (!granted) {
            continue;
        }

        job->sched_wait = 0;

        if (job->vmcf->codec_threads == NGX_CONF_UNSET) {
            job->limits.codec_threads = (int) threads;
        }

        if (ngx_http_vconv_task_post(job) != NGX_OK) {
            ngx_log_error(NGX_LOG_ALERT, job->log, 0,
                          "vconv: the job could not be posted");

            ngx_http_vconv_job_fail(job, "the job could not be run");

            job->claim = NGX_HTTP_VCONV_CLAIM_RUNNING;
            ngx_http_vconv_job_complete(job);
            goto again;
        }

        posted++;
    }

    return posted;
}


/*
 * A job canceled, or whose upload failed, while it waited for a slot ends
 * without a task.
 */
static void
ngx_http_vconv_job_unqueue(ngx_http_vconv_job_t *job, ngx_uint_t cancel)
{
    vconv_error_t     err;
    vconv_job_info_t  info;

    job->sched_wait = 0;

    if (cancel) {
        (void) vconv_error_set(&err, VCONV_E_CANCELED,
                               "the job was canceled");

    } else {
        (void) vconv_error_set(&err, VCONV_E_UPLOAD_ABORTED,
                               "the upload did not complete");
    }

    ngx_shmtx_lock(&job->zone->shpool->mutex);
    info = job->node->info;
    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    info.status = cancel ? VCONV_JOB_CANCELED : VCONV_JOB_FAILED;
    info.err_code = err.code;
    ngx_cpystrn((u_char *) info.err_message, (u_char *) err.message,
                sizeof(info.err_message));
    info.finished = ngx_time();
    info.expires = info.finished + job->vmcf->ttl;

    ngx_http_vconv_zone_update(job->zone, job->node, &info);

    job->err = err;

    job->claim = NGX_HTTP_VCONV_CLAIM_RUNNING;
    ngx_http_vconv_job_complete(job);
}


/*
 * While the worker serves, this only rearms itself.  Once it exits, the
 * job may run on, up to worker_shutdown_timeout when one is set; then
 * it is stopped, and ends failed "interrupted".
 */
static void
ngx_http_vconv_job_alive(ngx_event_t *ev)
{
    ngx_msec_t             left, spent;
    ngx_queue_t           *q;
    ngx_core_conf_t       *ccf;
    ngx_http_vconv_job_t  *job;

    job = ev->data;

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_HTTP_VCONV_ALIVE_MS);
        return;
    }

    if (ngx_http_vconv_exiting_since == 0) {
        ngx_http_vconv_exiting_since = ngx_current_msec;

        /* once: jobs still queued go to the new workers */
        for (q = ngx_queue_head(&ngx_http_vconv_jobs);
             q != ngx_queue_sentinel(&ngx_http_vconv_jobs);
             q = ngx_queue_next(q))
        {
            ngx_http_vconv_job_offer(ngx_queue_data(q, ngx_http_vconv_job_t,
                                                    queue));
        }
    }

    if (job->offer) {
        ngx_http_vconv_job_offered(job);
        return;
    }

    if (!job->held) {
        /* once: the log says why the old worker is still there */
        job->held = 1;
        ngx_log_error(NGX_LOG_NOTICE, job->log, 0,
                      "vconv: the exiting worker waits for its job");
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                           ngx_core_module);

    spent = ngx_current_msec - ngx_http_vconv_exiting_since;
    left = NGX_HTTP_VCONV_ALIVE_MS;

    if (ccf->shutdown_timeout && !job->interrupt) {

        if (spent < ccf->shutdown_timeout) {
            left = ngx_min(left, ccf->shutdown_timeout - spent);

        } else {
            ngx_log_error(NGX_LOG_WARN, job->log, 0,
                          "vconv: worker_shutdown_timeout: the running "
                          "job is stopped");

            (void) ngx_atomic_cmp_set(&job->interrupt, 0, 1);
            vconv_reader_stop(&job->reader, VCONV_E_INTERRUPTED);
        }
    }

    ngx_add_timer(ev, left);
}


/*
 * The task has ended (its completion event, on the event loop): the
 * job's record and job.json are final.  Whoever waits hears it now,
 * before the job settles, so that an upload that answers with an error
 * can still mark the job as nobody's.
 */
void
ngx_http_vconv_job_complete(ngx_http_vconv_job_t *job)
{
    if (job->claim != NGX_HTTP_VCONV_CLAIM_RUNNING) {

        /* the task found the job offered to the new workers */

        if (job->handed) {
            ngx_http_vconv_job_release(job);
            return;
        }

        if (job->claim == NGX_HTTP_VCONV_CLAIM_POSTED) {
            /* none took it meanwhile: it runs here after all */
            ngx_http_vconv_job_repost(job);
            return;
        }

        /* ngx_http_vconv_job_offered() decides */
        job->skipped = 1;
        return;
    }

    job->task_done = 1;

    /* the next job gets the slot before anyone hears of this one */
    ngx_http_vconv_sched_leave(job);

    if (job->alive.timer_set) {
        ngx_del_timer(&job->alive);
    }

    ngx_http_vconv_job_log_end(job);

    ngx_http_vconv_job_notify(job, 0);

    /* an upload still arriving drops the rest of its body by now */
    ngx_http_vconv_job_settle(job);

    /* the task's reference */
    ngx_http_vconv_job_release(job);
}


/*
 * post: from a pool cleanup, where running another request's handler
 * is not safe; the waiter's own cleanup deletes the posted event.
 */
static void
ngx_http_vconv_job_notify(ngx_http_vconv_job_t *job, ngx_uint_t post)
{
    ngx_queue_t              *q;
    ngx_http_vconv_waiter_t  *w;

    while (!ngx_queue_empty(&job->waiters)) {
        q = ngx_queue_head(&job->waiters);
        w = ngx_queue_data(q, ngx_http_vconv_waiter_t, queue);

        ngx_queue_remove(q);
        w->linked = 0;

        if (post) {
            ngx_post_event(&w->event, &ngx_posted_events);

        } else {
            w->event.handler(&w->event);
        }
    }
}


void
ngx_http_vconv_job_wait(ngx_http_vconv_job_t *job,
    ngx_http_vconv_waiter_t *w)
{
    if (w->linked) {
        return;
    }

    ngx_queue_insert_tail(&job->waiters, &w->queue);
    w->linked = 1;
}


void
ngx_http_vconv_job_unwait(ngx_http_vconv_waiter_t *w)
{
    if (w->linked) {
        ngx_queue_remove(&w->queue);
        w->linked = 0;
    }

    if (w->event.posted) {
        ngx_delete_posted_event(&w->event);
    }
}


ngx_http_vconv_job_t *
ngx_http_vconv_job_find(ngx_str_t *id)
{
    ngx_queue_t           *q;
    ngx_http_vconv_job_t  *job;

    if (ngx_http_vconv_jobs.prev == NULL) {
        return NULL;
    }

    for (q = ngx_queue_head(&ngx_http_vconv_jobs);
         q != ngx_queue_sentinel(&ngx_http_vconv_jobs);
         q = ngx_queue_next(q))
    {
        job = ngx_queue_data(q, ngx_http_vconv_job_t, queue);

        if (job->id.len == id->len
            && ngx_strncmp(job->id.data, id->data, id->len) == 0)
        {
            return job;
        }
    }

    return NULL;
}


/* the operator's one line per finished job */
static void
ngx_http_vconv_job_log_end(ngx_http_vconv_job_t *job)
{
    u_char                *p;
    u_char                 why[512];   /* a code, its 256-byte message */
    ngx_uint_t             version, pos;
    vconv_job_info_t       info;
    const vconv_format_t  *fmt;

    if (ngx_http_vconv_zone_get(job->zone, &job->id, &info, &version, &pos)
        != NGX_OK)
    {
        return;
    }

    fmt = (info.out_format >= 0 && info.out_format < VCONV_FMT_COUNT)
          ? vconv_format(info.out_format) : NULL;

    p = why;

    if (info.err_code != VCONV_E_NONE) {
        p = ngx_snprintf(why, sizeof(why), ": %s \"%s\"",
                         vconv_error_name(info.err_code), info.err_message);
    }

    ngx_log_error(NGX_LOG_INFO, job->log, 0,
                  "vconv: job %s%*s, input: %L bytes (%s), "
                  "output: %L bytes (%s), %.3f s",
                  vconv_status_name(info.status), p - why, why,
                  info.in_bytes, info.in_format[0] ? info.in_format : "-",
                  info.out_bytes, fmt ? fmt->name : "-",
                  info.transcode_seconds);
}


/* the job's record ends failed with the module's own fault */
static void
ngx_http_vconv_job_fail(ngx_http_vconv_job_t *job, const char *message)
{
    vconv_error_t     err;
    vconv_job_info_t  info;

    ngx_shmtx_lock(&job->zone->shpool->mutex);
    info = job->node->info;
    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    info.status = VCONV_JOB_FAILED;
    info.err_code = VCONV_E_INTERNAL;
    ngx_cpystrn((u_char *) info.err_message, (u_char *) message,
                sizeof(info.err_message));
    info.finished = ngx_time();
    info.expires = info.finished + job->vmcf->ttl;

    (void) vconv_job_save(&info, (char *) job->dir, &err);

    ngx_http_vconv_zone_update(job->zone, job->node, &info);
}


/* a job taken back from an offer whose task has already passed */
static void
ngx_http_vconv_job_repost(ngx_http_vconv_job_t *job)
{
    if (ngx_http_vconv_task_post(job) == NGX_OK) {
        return;
    }

    ngx_log_error(NGX_LOG_ALERT, job->log, 0,
                  "vconv: the job could not be posted again");

    ngx_http_vconv_job_fail(job, "the job could not be run");

    job->claim = NGX_HTTP_VCONV_CLAIM_RUNNING;
    ngx_http_vconv_job_complete(job);
}


/*
 * An exiting worker offers each job still queued for a thread, and
 * nobody here waits for (no upload request, no wait=1), to the new
 * workers: its options go to a file in the job's folder, its record
 * stays active with pid 0, and a new worker takes it from there.
 */
static void
ngx_http_vconv_job_offer(ngx_http_vconv_job_t *job)
{
    ngx_uint_t  queued;

    if (!job->posted || job->task_done || job->refs != 1
        || job->options.data == NULL || job->node->cancel)
    {
        return;
    }

    /* its task may have just started */
    if (!ngx_atomic_cmp_set(&job->claim, NGX_HTTP_VCONV_CLAIM_POSTED,
                            NGX_HTTP_VCONV_CLAIM_OFFERED))
    {
        return;
    }

    if (ngx_http_vconv_job_write_options(job) != NGX_OK) {
        job->claim = NGX_HTTP_VCONV_CLAIM_POSTED;
        return;
    }

    ngx_shmtx_lock(&job->zone->shpool->mutex);

    queued = (job->node->info.status == VCONV_JOB_QUEUED);

    if (queued) {
        job->node->info.pid = 0;
        job->node->version++;
    }

    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    if (!queued) {
        job->claim = NGX_HTTP_VCONV_CLAIM_POSTED;
        return;
    }

    job->offer = 1;
    job->offered = ngx_current_msec;

    ngx_log_error(NGX_LOG_NOTICE, job->log, 0,
                  "vconv: the queued job is offered to the new workers");

    /* event streams here end; EventSource reconnects to a new worker */
    ngx_http_vconv_job_notify(job, 1);
}


/* the alive timer of an offered job: taken, or back here after a while */
static void
ngx_http_vconv_job_offered(ngx_http_vconv_job_t *job)
{
    u_char     *path;
    ngx_pid_t   pid;

    ngx_shmtx_lock(&job->zone->shpool->mutex);

    pid = job->node->info.pid;

    if (pid == 0
        && ngx_current_msec - job->offered >= NGX_HTTP_VCONV_OFFER_MS)
    {
        /* no new worker shares the zone, or none came */
        pid = ngx_pid;
        job->node->info.pid = pid;
        job->node->version++;
    }

    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    if (pid == 0) {
        ngx_add_timer(&job->alive, NGX_HTTP_VCONV_ALIVE_MS);
        return;
    }

    job->offer = 0;

    if (pid != ngx_pid) {
        ngx_log_error(NGX_LOG_NOTICE, job->log, 0,
                      "vconv: the queued job was taken over by worker %P",
                      pid);

        /* its record and its files are the new worker's now */
        job->handed = 1;
        job->settled = 1;

        /* the task's reference: it ran and did nothing, or never came */
        if (job->skipped || job->sched_wait) {
            job->sched_wait = 0;
            ngx_http_vconv_job_release(job);
        }

        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, job->log, 0,
                  "vconv: no new worker took the queued job, it runs here");

    path = ngx_http_vconv_store_path(job->pool, job->vmcf, &job->id,
                                     "options");
    if (path) {
        (void) ngx_delete_file(path);
    }

    job->claim = NGX_HTTP_VCONV_CLAIM_POSTED;

    if (job->skipped) {
        job->skipped = 0;
        ngx_http_vconv_job_repost(job);
    }

    if (job->sched_wait) {
        /* a grant while it was offered woke nobody */
        ngx_http_vconv_sched_wake(ngx_pid, job->log);
    }

    if (!job->task_done) {
        ngx_add_timer(&job->alive, NGX_HTTP_VCONV_ALIVE_MS);
    }
}


static ngx_int_t
ngx_http_vconv_job_write_options(ngx_http_vconv_job_t *job)
{
    u_char    *path;
    ssize_t    n;
    ngx_fd_t   fd;

    if (job->options.len >= NGX_HTTP_VCONV_OPTIONS_MAX) {
        return NGX_DECLINED;
    }

    path = ngx_http_vconv_store_path(job->pool, job->vmcf, &job->id,
                                     "options");
    if (path == NULL) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(path, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE, 0600);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_CRIT, job->log, ngx_errno,
                      "vconv: open \"%s\" failed", path);
        return NGX_ERROR;
    }

    n = ngx_write_fd(fd, job->options.data, job->options.len);

    if (n != (ssize_t) job->options.len) {
        ngx_log_error(NGX_LOG_CRIT, job->log, ngx_errno,
                      "vconv: write \"%s\" failed", path);
    }

    (void) ngx_close_file(fd);

    return n == (ssize_t) job->options.len ? NGX_OK : NGX_ERROR;
}


/* the offered job's spec, from its options file, in the taking worker */
static ngx_int_t
ngx_http_vconv_job_read_options(ngx_http_vconv_job_t *job)
{
    u_char         *path, *p, *last, *eol, *eq, *v, *src;
    ssize_t         n;
    ngx_fd_t        fd;
    vconv_error_t   err;
    u_char          buf[NGX_HTTP_VCONV_OPTIONS_MAX];

    path = ngx_http_vconv_store_path(job->pool, job->vmcf, &job->id,
                                     "options");
    if (path == NULL) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_CRIT, job->log, ngx_errno,
                      "vconv: open \"%s\" failed", path);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, buf, sizeof(buf));

    (void) ngx_close_file(fd);
    (void) ngx_delete_file(path);

    if (n < 0 || n == (ssize_t) sizeof(buf)) {
        ngx_log_error(NGX_LOG_CRIT, job->log, ngx_errno,
                      "vconv: read \"%s\" failed", path);
        return NGX_ERROR;
    }

    vconv_spec_init(&job->spec);

    last = buf + n;

    for (p = buf; p < last; p = eol + 1) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        eq = ngx_strlchr(p, eol, '=');
        if (eq == NULL) {
            ngx_log_error(NGX_LOG_CRIT, job->log, 0,
                          "vconv: \"%s\" is damaged", path);
            return NGX_ERROR;
        }

        /* unescaped in place: never longer than its escaped form */
        v = eq + 1;
        src = v;
        ngx_unescape_uri(&v, &src, eol - src, 0);

        if (vconv_spec_set(&job->spec, (char *) p, eq - p, (char *) eq + 1,
                           v - (eq + 1), &err)
            != VCONV_OK)
        {
            ngx_log_error(NGX_LOG_CRIT, job->log, 0,
                          "vconv: \"%s\": %s", path, err.message);
            return NGX_ERROR;
        }
    }

    if (vconv_spec_finish(&job->spec, VCONV_FMT_ALL | VCONV_FMT_HLS_OK, &err)
        != VCONV_OK)
    {
        ngx_log_error(NGX_LOG_CRIT, job->log, 0,
                      "vconv: \"%s\": %s", path, err.message);
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_vconv_job_init_process(ngx_cycle_t *cycle,
    ngx_http_vconv_main_conf_t *vmcf)
{
    ngx_http_vconv_taker.handler = ngx_http_vconv_job_take_handler;
    ngx_http_vconv_taker.data = vmcf;
    ngx_http_vconv_taker.log = cycle->log;
    ngx_http_vconv_taker.cancelable = 1;

    ngx_add_timer(&ngx_http_vconv_taker, NGX_HTTP_VCONV_TAKE_MS);
}


static void
ngx_http_vconv_job_take_handler(ngx_event_t *ev)
{
    vconv_job_info_t             info;
    ngx_http_vconv_node_t       *node;
    ngx_http_vconv_zone_t       *z;
    ngx_http_vconv_main_conf_t  *vmcf;

    /* an exiting worker offers jobs, it does not take them */
    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    vmcf = ev->data;
    z = vmcf->shm_zone->data;

    for ( ;; ) {
        node = ngx_http_vconv_zone_take(z, &info);
        if (node == NULL) {
            break;
        }

        ngx_http_vconv_job_take(vmcf, z, node, &info);
    }

    ngx_add_timer(ev, NGX_HTTP_VCONV_TAKE_MS);
}


/* the offered job becomes this worker's: its input is all on disk */
static void
ngx_http_vconv_job_take(ngx_http_vconv_main_conf_t *vmcf,
    ngx_http_vconv_zone_t *z, ngx_http_vconv_node_t *node,
    vconv_job_info_t *info)
{
    ngx_file_info_t        fi;
    ngx_http_vconv_job_t  *job;

    job = ngx_http_vconv_job_alloc(vmcf, z, info);
    if (job == NULL) {
        ngx_shmtx_lock(&z->shpool->mutex);
        node->info.pid = 0;
        ngx_shmtx_unlock(&z->shpool->mutex);
        return;
    }

    job->node = node;
    job->upload_done = 1;

    if (ngx_file_info(job->input, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_CRIT, job->log, ngx_errno,
                      ngx_file_info_n " \"%s\" failed", job->input);
        goto failed;
    }

    job->written = ngx_file_size(&fi);

    if (ngx_http_vconv_job_read_options(job) != NGX_OK) {
        goto failed;
    }

    if (ngx_http_vconv_job_reader(job, job->written, 1) != NGX_OK) {
        goto failed;
    }

    ngx_log_error(NGX_LOG_NOTICE, job->log, 0,
                  "vconv: the queued job is taken over from an exiting "
                  "worker");

    if (ngx_http_vconv_job_start(job) != NGX_OK) {
        goto failed;
    }

    /* the task's reference is the only one */
    ngx_http_vconv_job_release(job);

    return;

failed:

    ngx_http_vconv_job_fail(job, "the job could not be taken over from an "
                                 "exiting worker");

    ngx_http_vconv_job_drop_input(job);

    ngx_shmtx_lock(&z->shpool->mutex);
    node->active = 0;
    ngx_shmtx_unlock(&z->shpool->mutex);

    job->settled = 1;
    ngx_http_vconv_job_release(job);
}
