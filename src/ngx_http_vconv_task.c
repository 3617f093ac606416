/*
 * vconv: a job in its owning worker, and its transcode as a thread task.
 *
 * The task touches only the job it was given and the zone: never the
 * request, its pool or any other nginx request state, so it finishes the
 * job (zone and job.json) even when the upload request is gone.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/resource.h>
#include <sys/syscall.h>

#include "ngx_http_vconv.h"


static void ngx_http_vconv_task_handler(void *data, ngx_log_t *log);
static void ngx_http_vconv_task_done(ngx_event_t *ev);
static void ngx_http_vconv_task_probed(void *data,
    const vconv_input_info_t *in);
static void ngx_http_vconv_task_progress(void *data, double fraction);
static int ngx_http_vconv_task_interrupt(void *data);
static void ngx_http_vconv_job_cleanup(void *data);
static int64_t ngx_http_vconv_now_ms(void);


static int64_t
ngx_http_vconv_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/*
 * Makes the job's record, folder and spool file.  The job has its own
 * pool: it outlives the upload request when the transcode is still on.
 */
ngx_http_vconv_job_t *
ngx_http_vconv_job_create(ngx_http_request_t *r, ngx_http_vconv_zone_t *z,
    vconv_job_info_t *info)
{
    ngx_log_t                   *log;
    ngx_pool_t                  *pool;
    ngx_pool_cleanup_t          *cln;
    ngx_http_vconv_job_t        *job;
    ngx_http_vconv_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vconv_module);

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    job = ngx_pcalloc(pool, sizeof(ngx_http_vconv_job_t));
    if (job == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    log = ngx_pcalloc(pool, sizeof(ngx_log_t));
    if (log == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    *log = *ngx_cycle->log;
    pool->log = log;

    job->pool = pool;
    job->log = log;
    job->zone = z;
    job->vmcf = vmcf;
    job->info = *info;
    job->wfd = NGX_INVALID_FILE;
    job->rfd = NGX_INVALID_FILE;
    job->refs = 1;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    cln->handler = ngx_http_vconv_job_cleanup;
    cln->data = job;

    job->id.data = (u_char *) job->info.id;
    job->id.len = ngx_strlen(job->info.id);

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

    job->node = ngx_http_vconv_zone_add(z, &job->info, r->connection->log);
    if (job->node == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    if (ngx_http_vconv_store_create(job->dir, job->input, job->tmp,
                                    &job->wfd, NULL, r->connection->log)
        != NGX_OK)
    {
        goto failed;
    }

    job->rfd = ngx_open_file(job->input, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (job->rfd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                      "vconv: open \"%s\" failed", job->input);
        goto failed;
    }

    if (vconv_reader_init(&job->reader, job->rfd, 0, 0,
                          (int64_t) vmcf->stall_timeout)
        != VCONV_OK)
    {
        goto failed;
    }

    job->reader_ready = 1;
    job->reader.interrupt = ngx_http_vconv_task_interrupt;
    job->reader.data = job;

    job->limits.max_width = (int) vmcf->max_width;
    job->limits.max_height = (int) vmcf->max_height;
    job->limits.max_duration = (int64_t) vmcf->max_duration * 1000;
    job->limits.max_output = vmcf->max_output;
    job->limits.codec_threads = (int) vmcf->codec_threads;
    job->limits.input_formats = (char *) vmcf->input_formats.data;

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

    ngx_http_vconv_job_drop_input(job);

    if (!job->posted || job->node->cancel || job->discard) {
        ngx_http_vconv_store_rmdir(job->vmcf, job->info.id, job->log);
        ngx_http_vconv_zone_remove(z, &job->id);
        return;
    }

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

    ngx_destroy_pool(job->pool);
}


/* any thread; once the upload side is done with the spool file */
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
    ngx_thread_task_t   *task;
    ngx_http_vconv_job_t **ctx;

    if (job->posted) {
        return NGX_OK;
    }

    task = ngx_thread_task_alloc(job->pool, sizeof(ngx_http_vconv_job_t *));
    if (task == NULL) {
        return NGX_ERROR;
    }

    ctx = task->ctx;
    *ctx = job;

    task->handler = ngx_http_vconv_task_handler;
    task->event.handler = ngx_http_vconv_task_done;
    task->event.data = job;
    task->event.log = job->log;

    ngx_shmtx_lock(&job->zone->shpool->mutex);
    job->node->info.status = VCONV_JOB_QUEUED;
    job->node->info.out_format = job->spec.format;
    job->node->info.pid = ngx_pid;
    job->node->version++;
    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    if (ngx_thread_task_post(job->vmcf->thread_pool, task) != NGX_OK) {
        return NGX_ERROR;
    }

    job->task = task;
    job->posted = 1;
    job->refs++;
    job->last_activity = ngx_http_vconv_now_ms();

    return NGX_OK;
}


/* on a pool thread */
static void
ngx_http_vconv_task_handler(void *data, ngx_log_t *log)
{
    ngx_http_vconv_job_t  **ctx = data;

    int                     rc;
    double                  started;
    struct stat             st;
    vconv_error_t           err;
    struct timespec         ts;
    vconv_job_info_t        info;
    vconv_transcode_t       tc;
    ngx_http_vconv_job_t   *job;
    ngx_http_vconv_zone_t  *z;

    job = *ctx;
    z = job->zone;

    vconv_log_job(job->info.id);

    if (job->vmcf->priority
        && job->vmcf->isolation == NGX_HTTP_VCONV_ISO_THREAD)
    {
        /*
         * transcodes yield to the event loop on the same cores; a
         * sandboxed child lowers its own, the thread only relays for it
         */
        (void) setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid),
                           (int) job->vmcf->priority);
    }

    clock_gettime(CLOCK_MONOTONIC, &ts);
    started = ts.tv_sec + ts.tv_nsec / 1e9;

    /* time spent queued is not a stall */
    job->last_activity = ngx_http_vconv_now_ms();

    ngx_shmtx_lock(&z->shpool->mutex);
    if (job->node->info.status == VCONV_JOB_QUEUED) {
        job->node->info.status = VCONV_JOB_RUNNING;
        job->node->version++;
    }
    info = job->node->info;
    ngx_shmtx_unlock(&z->shpool->mutex);

    (void) vconv_job_save(&info, (char *) job->dir, &err);

    ngx_memzero(&tc, sizeof(vconv_transcode_t));

    tc.spec = &job->spec;
    tc.limits = &job->limits;
    tc.read = vconv_reader_read;
    tc.seek = vconv_reader_seek;
    tc.io_opaque = &job->reader;
    tc.growing = !job->reader.ended;
    tc.probed = ngx_http_vconv_task_probed;
    tc.progress = ngx_http_vconv_task_progress;
    tc.interrupt = ngx_http_vconv_task_interrupt;
    tc.data = job;

    rc = ngx_http_vconv_transcode(job, &tc);

    if (rc == VCONV_OK && stat((char *) job->tmp, &st) == -1) {
        rc = vconv_error_set(&tc.err, VCONV_E_IO, "output is missing");
    }

    if (rc == VCONV_OK && st.st_size == 0) {
        rc = vconv_error_set(&tc.err, VCONV_E_EMPTY_OUTPUT,
                             "the conversion produced nothing");
    }

    if (rc == VCONV_OK && rename((char *) job->tmp, (char *) job->output)
                          == -1)
    {
        rc = vconv_error_set(&tc.err, VCONV_E_IO, "rename failed: %s",
                             strerror(errno));
    }

    if (rc != VCONV_OK) {
        (void) unlink((char *) job->tmp);
    }

    /* the reader stopped for a reason the transcoder may only echo */
    if (rc != VCONV_OK && job->reader.stop != VCONV_E_NONE
        && tc.err.code != job->reader.stop
        && (tc.err.code == VCONV_E_IO || tc.err.code == VCONV_E_DECODE
            || tc.err.code == VCONV_E_UNSUPPORTED_INPUT))
    {
        (void) vconv_error_set(&tc.err, job->reader.stop, "%s",
                               job->reader.stop == VCONV_E_STALLED
                               ? "the upload stalled"
                               : vconv_error_name(job->reader.stop));
    }

    if (rc != VCONV_OK && tc.err.code == VCONV_E_STALLED) {
        (void) vconv_error_set(&tc.err, VCONV_E_STALLED,
                               "neither the upload nor the conversion moved "
                               "for %u s",
                               (unsigned) (job->vmcf->stall_timeout / 1000));
    }

    if (rc != VCONV_OK && tc.err.code == VCONV_E_CANCELED) {
        (void) vconv_error_set(&tc.err, VCONV_E_CANCELED,
                               "the job was canceled");
    }

    clock_gettime(CLOCK_MONOTONIC, &ts);

    ngx_shmtx_lock(&z->shpool->mutex);
    info = job->node->info;
    ngx_shmtx_unlock(&z->shpool->mutex);

    info.finished = time(NULL);
    info.expires = info.finished + job->vmcf->ttl;
    info.transcode_seconds = ts.tv_sec + ts.tv_nsec / 1e9 - started;

    if (rc == VCONV_OK) {
        info.status = VCONV_JOB_DONE;
        info.progress = 1.0;
        info.out_bytes = st.st_size;
        info.err_code = VCONV_E_NONE;
        info.err_message[0] = '\0';

    } else {
        info.status = (tc.err.code == VCONV_E_CANCELED)
                      ? VCONV_JOB_CANCELED : VCONV_JOB_FAILED;
        info.err_code = tc.err.code;
        ngx_cpystrn((u_char *) info.err_message, (u_char *) tc.err.message,
                    sizeof(info.err_message));
    }

    job->err = tc.err;

    /* the input is not needed any more; the upload may still write it */
    if (job->upload_done || rc == VCONV_OK) {
        ngx_http_vconv_job_drop_input(job);
    }

    if (!job->node->cancel) {
        (void) vconv_job_save(&info, (char *) job->dir, &err);
    }

    ngx_http_vconv_zone_update(z, job->node, &info);

    if (rc == VCONV_OK) {
        ngx_http_vconv_zone_disk(z, job->node, st.st_size);
    }

    vconv_log_job("");
}


static void
ngx_http_vconv_task_probed(void *data, const vconv_input_info_t *in)
{
    ngx_http_vconv_job_t *job = data;

    ngx_http_vconv_zone_t  *z;

    z = job->zone;

    ngx_shmtx_lock(&z->shpool->mutex);

    ngx_cpystrn((u_char *) job->node->info.in_format, (u_char *) in->format,
                sizeof(job->node->info.in_format));
    job->node->info.in_duration = in->duration;
    job->node->info.in_streams = in->streams;
    job->node->version++;

    ngx_shmtx_unlock(&z->shpool->mutex);
}


static void
ngx_http_vconv_task_progress(void *data, double fraction)
{
    ngx_http_vconv_job_t *job = data;

    int64_t  now;

    now = ngx_http_vconv_now_ms();
    job->last_activity = now;

    if (now - job->last_progress < 100 && fraction < 1.0) {
        return;
    }

    job->last_progress = now;

    ngx_http_vconv_zone_progress(job->zone, job->node,
                                 fraction > 0.999 ? 0.999 : fraction);
}


/*
 * Polled by the transcoder between packets and by the reader while it
 * waits: DELETE's flag, and the stall timeout: neither output nor upload
 * moved for that long.
 */
static int
ngx_http_vconv_task_interrupt(void *data)
{
    ngx_http_vconv_job_t *job = data;

    int64_t  now, last;

    if (job->node->cancel) {
        return VCONV_E_CANCELED;
    }

    now = ngx_http_vconv_now_ms();
    last = job->last_activity;

    if (job->reader.last_growth > last) {
        last = job->reader.last_growth;
    }

    if (last && now - last > (int64_t) job->vmcf->stall_timeout) {
        return VCONV_E_STALLED;
    }

    return VCONV_E_NONE;
}


/* back on the event loop */
static void
ngx_http_vconv_task_done(ngx_event_t *ev)
{
    ngx_http_vconv_job_t  *job = ev->data;

    job->task_done = 1;

    if (job->request) {
        ngx_http_vconv_upload_task_done(job);
    }

    ngx_http_vconv_job_settle(job);
    ngx_http_vconv_job_release(job);
}
