/*
 * vconv: a job's transcode as a thread task.
 *
 * The task touches only the job it was given and the zone: never the
 * request, its pool or any other nginx request state, so it finishes the
 * job (zone and job.json) even when the upload request is gone.  Its end
 * goes back to the job (ngx_http_vconv_job_complete), which tells
 * whoever waits.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/resource.h>
#include <sys/syscall.h>

#include "ngx_http_vconv.h"
#include "vconv_hls.h"


static void ngx_http_vconv_task_handler(void *data, ngx_log_t *log);
static void ngx_http_vconv_task_done(ngx_event_t *ev);
static void ngx_http_vconv_task_probed(void *data,
    const vconv_input_info_t *in);
static void ngx_http_vconv_task_progress(void *data, double fraction);
static void ngx_http_vconv_task_starve(ngx_http_vconv_job_t *job,
    int64_t now, ngx_uint_t busy);
static int ngx_http_vconv_task_outputs(ngx_http_vconv_job_t *job,
    vconv_transcode_t *tc, int rc, off_t *sizes);
static int ngx_http_vconv_task_extras(ngx_http_vconv_job_t *job,
    vconv_transcode_t *tc, const vconv_job_info_t *info, off_t *bytes);


int64_t
ngx_http_vconv_task_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


ngx_int_t
ngx_http_vconv_task_post(ngx_http_vconv_job_t *job)
{
    ngx_thread_task_t     *task;
    ngx_http_vconv_job_t **ctx;

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

    /* before the post: the task's own from then on */
    job->last_activity = ngx_http_vconv_task_now();

    if (ngx_thread_task_post(job->vmcf->thread_pool, task) != NGX_OK) {
        return NGX_ERROR;
    }

    job->task = task;

    return NGX_OK;
}


/* on a pool thread */
static void
ngx_http_vconv_task_handler(void *data, ngx_log_t *log)
{
    ngx_http_vconv_job_t  **ctx = data;

    int                     i, rc, ended, first;
    off_t                   more, sizes[VCONV_MAX_OUTPUTS];
    double                  started;
    vconv_err_e             stop;
    off_t                   extra;
    struct stat             st;
    vconv_error_t           err;
    struct timespec         ts, rts;
    vconv_job_info_t        info;
    vconv_transcode_t       tc;
    vconv_output_t          outs[VCONV_MAX_OUTPUTS];
    ngx_http_vconv_job_t   *job;
    ngx_http_vconv_zone_t  *z;

    job = *ctx;
    z = job->zone;

    /* an exiting worker may have offered the job to its new workers */
    if (!ngx_atomic_cmp_set(&job->claim, NGX_HTTP_VCONV_CLAIM_POSTED,
                            NGX_HTTP_VCONV_CLAIM_RUNNING))
    {
        return;
    }

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
    job->last_activity = ngx_http_vconv_task_now();

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, job->log, 0, "vconv: job %V running",
                   &job->id);

    clock_gettime(CLOCK_REALTIME, &ts);

    ngx_shmtx_lock(&z->shpool->mutex);
    if (job->node->info.status == VCONV_JOB_QUEUED) {
        job->node->info.status = VCONV_JOB_RUNNING;
        job->node->info.started_ms = (int64_t) ts.tv_sec * 1000
                                     + ts.tv_nsec / 1000000;
        job->node->version++;
    }
    info = job->node->info;
    ngx_shmtx_unlock(&z->shpool->mutex);

    (void) vconv_job_save(&info, (char *) job->dir, &err);

    vconv_reader_state(&job->reader, &ended, NULL, NULL);

    ngx_memzero(&tc, sizeof(vconv_transcode_t));

    tc.spec = &job->spec;
    tc.limits = &job->limits;
    tc.read = vconv_reader_read;
    tc.seek = vconv_reader_seek;
    tc.io_opaque = &job->reader;
    tc.growing = !ended;
    tc.probed = ngx_http_vconv_task_probed;
    tc.progress = ngx_http_vconv_task_progress;
    tc.interrupt = ngx_http_vconv_task_interrupt;
    tc.data = job;

    if (job->spec.nouts > 1 || job->spec.hls) {
        /* ngx_http_vconv_transcode() opens them */
        ngx_memzero(outs, sizeof(outs));
        ngx_memzero(sizes, sizeof(sizes));
        tc.outputs = outs;
    }

    /* a DELETE while it waited for a thread: it must not run at all */
    rc = job->node->cancel
         ? vconv_error_set(&tc.err, VCONV_E_CANCELED, "canceled")
         : ngx_http_vconv_transcode(job, &tc);

    /* hls first: there is no "output" file, the rungs are in hls/ */
    first = job->spec.rung[0] == 0;
    st.st_size = 0;

    if (rc == VCONV_OK && first && stat((char *) job->tmp, &st) == -1) {
        rc = vconv_error_set(&tc.err, VCONV_E_IO, "output is missing");
    }

    if (rc == VCONV_OK && first && st.st_size == 0) {
        rc = vconv_error_set(&tc.err, VCONV_E_EMPTY_OUTPUT,
                             "the conversion produced nothing");
    }

    if (rc == VCONV_OK && first
        && rename((char *) job->tmp, (char *) job->output) == -1)
    {
        rc = vconv_error_set(&tc.err, VCONV_E_IO, "rename failed: %s",
                             strerror(errno));
    }

    if (job->spec.nouts > 1 || job->spec.hls) {
        rc = ngx_http_vconv_task_outputs(job, &tc, rc, sizes);
    }

    extra = 0;

    if (rc == VCONV_OK) {
        rc = ngx_http_vconv_task_extras(job, &tc, &info, &extra);
        if (rc != VCONV_OK) {
            (void) unlink((char *) job->output);
        }

        if (rc != VCONV_OK && job->spec.nouts > 1) {
            /* a list's other outputs go with it */
            (void) ngx_http_vconv_task_outputs(job, &tc, rc, sizes);
        }
    }

    if (rc != VCONV_OK) {
        (void) unlink((char *) job->tmp);
    }

    /* the reader stopped for a reason the transcoder may only echo */
    vconv_reader_state(&job->reader, NULL, NULL, &stop);

    if (rc != VCONV_OK && stop != VCONV_E_NONE && tc.err.code != stop
        && (tc.err.code == VCONV_E_IO || tc.err.code == VCONV_E_DECODE
            || tc.err.code == VCONV_E_UNSUPPORTED_INPUT))
    {
        (void) vconv_error_set(&tc.err, stop, "%s",
                               stop == VCONV_E_STALLED
                               ? "the upload stalled"
                               : vconv_error_name(stop));
    }

    if (rc != VCONV_OK && tc.err.code == VCONV_E_STALLED) {
        (void) vconv_error_set(&tc.err, VCONV_E_STALLED,
                               "neither the upload nor the conversion moved "
                               "for %u s",
                               (unsigned) (job->vmcf->stall_timeout / 1000));
    }

    if (rc != VCONV_OK && tc.err.code == VCONV_E_INTERRUPTED) {
        (void) vconv_error_set(&tc.err, VCONV_E_INTERRUPTED,
                               "the worker was shutting down and "
                               "worker_shutdown_timeout ran out before "
                               "the job ended");
    }

    if (rc != VCONV_OK && tc.err.code == VCONV_E_CANCELED) {
        (void) vconv_error_set(&tc.err, VCONV_E_CANCELED,
                               "the job was canceled");
    }

    clock_gettime(CLOCK_MONOTONIC, &ts);

    ngx_shmtx_lock(&z->shpool->mutex);
    info = job->node->info;
    ngx_shmtx_unlock(&z->shpool->mutex);

    clock_gettime(CLOCK_REALTIME, &rts);

    info.finished = rts.tv_sec;
    info.finished_ms = (int64_t) rts.tv_sec * 1000 + rts.tv_nsec / 1000000;
    info.expires = info.finished + job->vmcf->ttl;
    info.transcode_seconds = ts.tv_sec + ts.tv_nsec / 1e9 - started;
    info.damaged_packets = tc.damaged_packets;
    more = 0;

    if (rc == VCONV_OK) {
        info.status = VCONV_JOB_DONE;
        info.progress = 1.0;
        info.out_bytes = st.st_size;

        for (i = 0; info.nouts > 0 && i < job->spec.nouts; i++) {
            info.outs_bytes[i] = first && i == 0 ? st.st_size : sizes[i];
            more += first && i == 0 ? 0 : sizes[i];
        }
        info.err_code = VCONV_E_NONE;
        info.err_message[0] = '\0';

    } else {
        info.status = (tc.err.code == VCONV_E_CANCELED)
                      ? VCONV_JOB_CANCELED : VCONV_JOB_FAILED;
        info.err_code = tc.err.code;
        ngx_cpystrn((u_char *) info.err_message, (u_char *) tc.err.message,
                    sizeof(info.err_message));
    }

    /* handed to the event loop with the task's completion */
    job->err = tc.err;

    if (!job->node->cancel) {
        (void) vconv_job_save(&info, (char *) job->dir, &err);
    }

    ngx_http_vconv_zone_update(z, job->node, &info);

    if (rc == VCONV_OK) {
        ngx_http_vconv_zone_disk(z, job->node,
                                 st.st_size + more + extra);
    }

    vconv_log_job("");
}


/*
 * What the job folder holds beside the output, made here on the thread:
 * a sprite's VTT (its cues name the sprite as /output/sprite serves it)
 * and zip.idx, the outputs' CRCs for outputs.zip.
 */
static int
ngx_http_vconv_task_extras(ngx_http_vconv_job_t *job, vconv_transcode_t *tc,
    const vconv_job_info_t *info, off_t *bytes)
{
    int            fd;
    char          *text;
    size_t         len;
    ssize_t        n;
    vconv_error_t  err;
    u_char         path[NGX_MAX_PATH];

    if (tc->sprite.tiles > 0) {
        len = vconv_sprite_vtt(&tc->sprite, "sprite", NULL, 0) + 1;

        text = ngx_alloc(len, job->log);
        if (text == NULL) {
            return vconv_error_set(&tc->err, VCONV_E_NOMEM, "vtt");
        }

        len = vconv_sprite_vtt(&tc->sprite, "sprite", text, len);

        ngx_sprintf(path, "%s/output.sprite.vtt%Z", job->dir);

        fd = open((char *) path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  0600);
        n = fd == -1 ? -1 : write(fd, text, len);
        ngx_free(text);

        if (fd == -1 || n != (ssize_t) len || close(fd) == -1) {
            ngx_log_error(NGX_LOG_CRIT, job->log, ngx_errno,
                          "vconv: writing \"%s\" failed", path);
            if (fd != -1 && n != (ssize_t) len) {
                (void) close(fd);
            }

            (void) unlink((char *) path);
            return vconv_error_set(&tc->err, VCONV_E_IO, "vtt not written");
        }

        *bytes += len;
    }

    if (vconv_zip_index((char *) job->dir, info->in_name,
                        ngx_strnlen((u_char *) info->in_name,
                                    VCONV_NAME_MAX),
                        job->spec.format, &err)
        != VCONV_OK)
    {
        /* the outputs are fine: only outputs.zip will say it cannot */
        ngx_log_error(NGX_LOG_ERR, job->log, 0, "vconv: %s", err.message);
    }

    return VCONV_OK;
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

    now = ngx_http_vconv_task_now();
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
 * waits: DELETE's flag, an exiting worker's timeout, and the stall
 * timeout: neither output nor upload moved for that long.  Well before
 * that, a job whose upload is still coming gives its slot to the next
 * (ngx_http_vconv_sched_starve()).
 */
int
ngx_http_vconv_task_interrupt(void *data)
{
    ngx_http_vconv_job_t *job = data;

    int      ended;
    int64_t  now, last, growth;

    if (job->node->cancel) {
        return VCONV_E_CANCELED;
    }

    if (job->interrupt) {
        return VCONV_E_INTERRUPTED;
    }

    now = ngx_http_vconv_task_now();
    last = job->last_activity;
    vconv_reader_state(&job->reader, &ended, &growth, NULL);

    if (growth > last) {
        last = growth;
    }

    /* a tus upload between PATCHes is not a stall: its expiry ends it */
    if (last && now - last > (int64_t) job->vmcf->stall_timeout
        && !job->tus_open)
    {
        return VCONV_E_STALLED;
    }

    ngx_http_vconv_task_starve(job, now,
                               ended || now - job->last_activity
                                        < NGX_HTTP_VCONV_STARVE_MS);

    return VCONV_E_NONE;
}


/*
 * Idle: the conversion took no packet for a while (it reports progress
 * after each one, every 250 ms at most) and the upload is not over, so
 * the reader waits for bytes, whether none come or too few for a packet
 * (an upload that dribbles).  Whether a job waits for its slot is looked
 * at in the zone at most every 500 ms.
 */
static void
ngx_http_vconv_task_starve(ngx_http_vconv_job_t *job, int64_t now,
    ngx_uint_t busy)
{
    if (job->starved) {
        if (busy) {
            (void) ngx_http_vconv_sched_starve(job, 0);
            job->starved = 0;
        }

        return;
    }

    if (busy || now < job->starve_check) {
        return;
    }

    job->starve_check = now + 500;

    if (ngx_http_vconv_sched_starve(job, 1) == NGX_OK) {
        job->starved = 1;
    }
}


/* back on the event loop */
static void
ngx_http_vconv_task_done(ngx_event_t *ev)
{
    ngx_http_vconv_job_t  *job = ev->data;

    /* the job lets go of the task's reference itself */
    ngx_http_vconv_job_complete(job);
}


/*
 * A list of formats: output i's file, "output" (the first) or
 * "output.NAME", and ".tmp" while it is written.  No allocation: it runs
 * on a pool thread.
 */
ngx_int_t
ngx_http_vconv_output_path(ngx_http_vconv_job_t *job, ngx_uint_t i,
    ngx_uint_t tmp, u_char *buf, size_t size)
{
    const vconv_format_t  *f;

    f = vconv_format(i < (ngx_uint_t) job->spec.nouts
                     ? (vconv_format_e) job->spec.outs[i]
                     : VCONV_FMT_COUNT);

    if (f == NULL || ngx_strlen(job->dir) + 32 > size) {
        return NGX_ERROR;
    }

    if (job->spec.rung[i] != 0) {
        /* hls: each rung in the job's hls/ folder (vconv_hls.h) */
        (void) ngx_sprintf(buf, "%s/hls/%uDp.mp4%s%Z", job->dir,
                           (uint32_t) job->spec.rung[i], tmp ? ".tmp" : "");

    } else if (i == 0) {
        (void) ngx_sprintf(buf, "%s/output%s%Z", job->dir,
                           tmp ? ".tmp" : "");

    } else {
        (void) ngx_sprintf(buf, "%s/output.%s%s%Z", job->dir, f->name,
                           tmp ? ".tmp" : "");
    }

    return NGX_OK;
}


/*
 * After the transcode of a list, the first output already in place:
 * every other one is checked and put in place too, or, when anything
 * failed, none is left (the first is taken back as well).
 */
static int
ngx_http_vconv_task_outputs(ngx_http_vconv_job_t *job, vconv_transcode_t *tc,
    int rc, off_t *sizes)
{
    int                i, n, k, i0;
    u_char             tmp[NGX_MAX_PATH], path[NGX_MAX_PATH];
    u_char             names[VCONV_MAX_OUTPUTS][2][32];
    struct stat        st;
    vconv_hls_rung_t   rungs[VCONV_MAX_OUTPUTS];

    n = job->spec.nouts;
    i0 = job->spec.rung[0] ? 0 : 1;
    k = 0;

    for (i = i0; rc == VCONV_OK && i < n; i++) {
        if (ngx_http_vconv_output_path(job, i, 1, tmp, sizeof(tmp)) != NGX_OK
            || ngx_http_vconv_output_path(job, i, 0, path, sizeof(path))
               != NGX_OK)
        {
            rc = vconv_error_set(&tc->err, VCONV_E_INTERNAL,
                                 "output %d: no path", i);
            break;
        }

        sizes[i] = 0;

        if (tc->outputs[i].skipped) {
            /* an hls rung above the input */
            (void) unlink((char *) tmp);
            continue;
        }

        if (stat((char *) tmp, &st) == -1) {
            rc = vconv_error_set(&tc->err, VCONV_E_IO,
                                 "output %d is missing", i);
            break;
        }

        if (st.st_size == 0) {
            rc = vconv_error_set(&tc->err, VCONV_E_EMPTY_OUTPUT,
                                 "the conversion to %s produced nothing",
                                 vconv_format(job->spec.outs[i])->name);
            break;
        }

        sizes[i] = st.st_size;

        if (rename((char *) tmp, (char *) path) == -1) {
            rc = vconv_error_set(&tc->err, VCONV_E_IO, "rename failed: %s",
                                 strerror(errno));
            break;
        }

        if (job->spec.rung[i]) {
            (void) ngx_sprintf(names[k][0], "%uDp.mp4%Z",
                               (uint32_t) job->spec.rung[i]);
            (void) ngx_sprintf(names[k][1], "%uDp.m3u8%Z",
                               (uint32_t) job->spec.rung[i]);
            rungs[k].media = (char *) names[k][0];
            rungs[k].playlist = (char *) names[k][1];
            rungs[k].width = tc->outputs[i].width;
            rungs[k].height = tc->outputs[i].height;
            rungs[k++].duration = tc->outputs[i].duration;
        }
    }

    if (rc == VCONV_OK && job->spec.hls) {
        /* the playlists, from the rungs' fragments */
        (void) ngx_sprintf(path, "%s/hls%Z", job->dir);
        rc = vconv_hls_write((char *) path, rungs, k, &tc->err);
    }

    if (rc == VCONV_OK) {
        return rc;
    }

    /* nothing half-done is served */
    for (i = i0; i < n; i++) {
        if (ngx_http_vconv_output_path(job, i, 1, tmp, sizeof(tmp)) == NGX_OK
            && ngx_http_vconv_output_path(job, i, 0, path, sizeof(path))
               == NGX_OK)
        {
            (void) unlink((char *) tmp);
            (void) unlink((char *) path);

            if (job->spec.rung[i]) {
                (void) ngx_sprintf(path, "%s/hls/%uDp.m3u8%Z", job->dir,
                                   (uint32_t) job->spec.rung[i]);
                (void) unlink((char *) path);
            }
        }
    }

    if (job->spec.hls) {
        (void) ngx_sprintf(path, "%s/hls/master.m3u8%Z", job->dir);
        (void) unlink((char *) path);
        (void) ngx_sprintf(path, "%s/hls%Z", job->dir);
        (void) rmdir((char *) path);
    }

    (void) unlink((char *) job->output);

    return rc;
}
