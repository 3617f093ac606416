/*
 * vconv: where a transcode runs.  "vconv_isolation process" (the
 * default): in a child of this worker's sandbox helper, confined with
 * rlimits and seccomp (src/vconv_sandbox.c, tools/vconv_sandbox_main.c);
 * "thread": in the pool thread itself.  Both write the output through a
 * descriptor of output.tmp that is opened here.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <dlfcn.h>

#include "ngx_http_vconv.h"
#include "vconv_sandbox.h"


static void ngx_http_vconv_quarantine(ngx_http_vconv_job_t *job);
static int ngx_http_vconv_sandbox_outputs(ngx_http_vconv_job_t *job,
    vconv_transcode_t *tc, int fd);
static void ngx_http_vconv_sandbox_close(ngx_http_vconv_job_t *job,
    vconv_transcode_t *tc);
static ngx_msec_t ngx_http_vconv_sandbox_period(void);
static void ngx_http_vconv_sandbox_retire(ngx_event_t *ev);


/* this worker's helper; pool threads share it under its mutex */
static vconv_sandbox_t  ngx_http_vconv_sandbox;
static ngx_uint_t       ngx_http_vconv_sandbox_on;
static ngx_msec_t       ngx_http_vconv_sandbox_idle;
static ngx_event_t      ngx_http_vconv_sandbox_timer;


char *
ngx_http_vconv_sandbox_conf(ngx_conf_t *cf, ngx_http_vconv_main_conf_t *vmcf)
{
    u_char      *p, *name;
    size_t       len;
    Dl_info      dl;
    ngx_path_t  *path;

    ngx_conf_init_uint_value(vmcf->isolation, NGX_HTTP_VCONV_ISO_PROCESS);
    ngx_conf_init_value(vmcf->job_memory, 0);
    ngx_conf_init_msec_value(vmcf->spare_idle, VCONV_SB_SPARE_IDLE_MS);
    ngx_conf_init_msec_value(vmcf->sandbox_idle,
                             NGX_HTTP_VCONV_SANDBOX_IDLE_MS);

    if (vmcf->quarantine.len) {
        if (ngx_conf_full_name(cf->cycle, &vmcf->quarantine, 0) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        /* made at start like the store, owned by the workers' user */

        path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
        if (path == NULL) {
            return NGX_CONF_ERROR;
        }

        path->name = vmcf->quarantine;
        path->conf_file = cf->conf_file->file.name.data;
        path->line = cf->conf_file->line;

        if (ngx_add_path(cf, &path) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (vmcf->isolation != NGX_HTTP_VCONV_ISO_PROCESS || !vmcf->uploads) {
        return NGX_CONF_OK;
    }

    if (vmcf->sandbox_helper.len == 0) {

        /* next to the module's .so, as "make" and the package install it */

        if (dladdr((void *) &ngx_http_vconv_module, &dl) == 0
            || dl.dli_fname == NULL)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "vconv: cannot find where the module was "
                               "loaded from; set vconv_sandbox_helper");
            return NGX_CONF_ERROR;
        }

        name = (u_char *) strrchr(dl.dli_fname, '/');
        len = name ? (size_t) (name - (u_char *) dl.dli_fname + 1) : 0;

        p = ngx_pnalloc(cf->pool, len + sizeof("vconv-sandbox"));
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        vmcf->sandbox_helper.data = p;
        p = ngx_cpymem(p, dl.dli_fname, len);
        p = ngx_cpymem(p, "vconv-sandbox", sizeof("vconv-sandbox"));
        vmcf->sandbox_helper.len = p - vmcf->sandbox_helper.data - 1;

    } else if (ngx_conf_full_name(cf->cycle, &vmcf->sandbox_helper, 0)
               != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (vmcf->sandbox_helper.len >= sizeof(ngx_http_vconv_sandbox.path)) {
        return "vconv_sandbox_helper is too long";
    }

    if (access((char *) vmcf->sandbox_helper.data, X_OK) == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "vconv: the sandbox helper \"%V\" cannot be run; "
                           "install vconv-sandbox next to the module, or "
                           "set vconv_sandbox_helper, or "
                           "\"vconv_isolation thread\"",
                           &vmcf->sandbox_helper);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* one helper per worker that has an upload location, none otherwise */
ngx_int_t
ngx_http_vconv_sandbox_init_process(ngx_cycle_t *cycle,
    ngx_http_vconv_main_conf_t *vmcf)
{
    char  err[256];

    if (vmcf->isolation != NGX_HTTP_VCONV_ISO_PROCESS || !vmcf->uploads) {
        return NGX_OK;
    }

    if (vconv_sandbox_init(&ngx_http_vconv_sandbox,
                           (char *) vmcf->sandbox_helper.data,
                           ngx_http_vconv_av_log)
        != VCONV_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "vconv: sandbox init failed");
        return NGX_ERROR;
    }

    ngx_http_vconv_sandbox_on = 1;
    ngx_http_vconv_sandbox.spare_idle_ms = (int64_t) vmcf->spare_idle;

    if (vmcf->sandbox_idle) {
        ngx_http_vconv_sandbox_idle = vmcf->sandbox_idle;
        ngx_http_vconv_sandbox_timer.handler = ngx_http_vconv_sandbox_retire;
        ngx_http_vconv_sandbox_timer.log = cycle->log;
        ngx_http_vconv_sandbox_timer.data = vmcf;
        ngx_http_vconv_sandbox_timer.cancelable = 1;
        ngx_add_timer(&ngx_http_vconv_sandbox_timer,
                      ngx_http_vconv_sandbox_period());
    }

    /* no threads yet: the lock is only for form */
    pthread_mutex_lock(&ngx_http_vconv_sandbox.mutex);

    if (vconv_sandbox_spawn(&ngx_http_vconv_sandbox, err, sizeof(err))
        != VCONV_OK)
    {
        /* each job tries again; it fails cleanly meanwhile */
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "vconv: sandbox helper: %s", err);
    }

    pthread_mutex_unlock(&ngx_http_vconv_sandbox.mutex);

    return NGX_OK;
}


/* see ngx_http_vconv_sched_spare() */
void
ngx_http_vconv_sandbox_spare(ngx_uint_t on, ngx_uint_t later)
{
    if (ngx_http_vconv_sandbox_on) {
        vconv_sandbox_spare(&ngx_http_vconv_sandbox, on ? 1 : 0,
                            later ? 1 : 0);
    }
}


/* the helper's idle check: often enough to be late by a quarter at most */
static ngx_msec_t
ngx_http_vconv_sandbox_period(void)
{
    return ngx_max(ngx_http_vconv_sandbox_idle / 4, 100);
}


/*
 * An idle worker holds no sandbox: its helper's private memory is the
 * relocated data of the ~170 libraries libav links (about 8 MB), its
 * spare's the warm heap.  The next job starts a helper again (about
 * 0.15 s, once).
 */
static void
ngx_http_vconv_sandbox_retire(ngx_event_t *ev)
{
    if (vconv_sandbox_retire(&ngx_http_vconv_sandbox,
                             (int64_t) ngx_http_vconv_sandbox_idle))
    {
        ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                      "vconv: sandbox helper let go after %M ms without "
                      "a job", ngx_http_vconv_sandbox_idle);
    }

    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(ev, ngx_http_vconv_sandbox_period());
    }
}


/* on a pool thread */
int
ngx_http_vconv_transcode(ngx_http_vconv_job_t *job, vconv_transcode_t *tc)
{
    int                  fd, rc;
    u_char              *first;
    u_char               path[NGX_MAX_PATH];
    vconv_sandbox_job_t  sj;

    first = job->tmp;

    if (job->spec.hls) {
        /* the rungs' folder (vconv_hls.h) */
        (void) ngx_sprintf(path, "%s/hls%Z", job->dir);

        if (mkdir((char *) path, 0700) == -1 && ngx_errno != NGX_EEXIST) {
            ngx_log_error(NGX_LOG_CRIT, job->log, ngx_errno,
                          "vconv: mkdir \"%s\" failed", path);
            return vconv_error_set(&tc->err, VCONV_E_STORE_ERROR,
                                   "cannot create the hls folder: %s",
                                   strerror(errno));
        }

        if (job->spec.rung[0]
            && ngx_http_vconv_output_path(job, 0, 1, path, sizeof(path))
               == NGX_OK)
        {
            first = path;
        }
    }

    /* a leftover of an earlier attempt must not be written through */
    (void) unlink((char *) first);

    /* read and write: MP4's faststart reads back what it wrote */
    fd = open((char *) first, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
              0600);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_CRIT, job->log, ngx_errno,
                      "vconv: open \"%s\" failed", first);

        /* the store's fault, whichever: full (507) or unwritable (500) */
        return vconv_error_set(&tc->err,
                               (errno == ENOSPC || errno == EDQUOT)
                               ? VCONV_E_STORE_FULL : VCONV_E_STORE_ERROR,
                               "cannot create the output: %s",
                               strerror(errno));
    }

    tc->output_path = NULL;
    tc->output_fd = fd;

    if (tc->outputs != NULL
        && ngx_http_vconv_sandbox_outputs(job, tc, fd) != VCONV_OK)
    {
        (void) close(fd);
        return VCONV_ERROR;
    }

    if (!ngx_http_vconv_sandbox_on) {
        rc = vconv_transcode(tc);
        (void) close(fd);
        ngx_http_vconv_sandbox_close(job, tc);
        return rc;
    }

    ngx_memzero(&sj, sizeof(vconv_sandbox_job_t));

    sj.memory = job->vmcf->job_memory;
    sj.priority = (int) job->vmcf->priority;
    sj.log_level = 24;  /* AV_LOG_WARNING */
    sj.job = job->info.id;

    rc = vconv_sandbox_transcode(&ngx_http_vconv_sandbox, tc, &job->reader,
                                 &sj);

    (void) close(fd);
    ngx_http_vconv_sandbox_close(job, tc);

    /* info, not debug: the bench reads it from a log without debug */
    ngx_log_error(NGX_LOG_INFO, job->log, 0,
                  "vconv: job %s: sandboxed child ready in %L us",
                  job->info.id, sj.spawn_us);

    if (rc != VCONV_OK && tc->err.code == VCONV_E_CRASHED) {
        ngx_log_error(NGX_LOG_ERR, job->log, 0, "vconv: job %s: %s",
                      job->info.id, tc->err.message);
        ngx_http_vconv_quarantine(job);
    }

    if (rc != VCONV_OK && tc->err.code == VCONV_E_MEMORY_LIMIT) {
        ngx_log_error(NGX_LOG_WARN, job->log, 0, "vconv: job %s: %s",
                      job->info.id, tc->err.message);
    }

    return rc;
}


/*
 * vconv_quarantine: the input that crashed a converter is kept for
 * triage under the job's id.  A hard link when the folder is on the
 * store's file system, else a copy of what was uploaded so far.
 */
static void
ngx_http_vconv_quarantine(ngx_http_vconv_job_t *job)
{
    int         fd;
    off_t       off;
    u_char      path[NGX_MAX_PATH];
    ssize_t     n;
    ngx_str_t  *q;

    q = &job->vmcf->quarantine;

    /* a pool thread: no allocation from the job's pool */
    if (q->len == 0
        || q->len + 2 + ngx_strlen(job->info.id) > sizeof(path))
    {
        return;
    }

    (void) ngx_sprintf(path, "%V/%s%Z", q, job->info.id);

    if (link((char *) job->input, (char *) path) == 0) {
        goto done;
    }

    if (ngx_errno != NGX_EXDEV) {
        ngx_log_error(NGX_LOG_ERR, job->log, ngx_errno,
                      "vconv: link \"%s\" to \"%s\" failed",
                      job->input, path);
        return;
    }

    fd = open((char *) path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
              0600);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_ERR, job->log, ngx_errno,
                      "vconv: open \"%s\" failed", path);
        return;
    }

    off = 0;

    do {
        n = copy_file_range(job->rfd, &off, fd, NULL, 1024 * 1024, 0);
    } while (n > 0);

    if (n < 0) {
        ngx_log_error(NGX_LOG_ERR, job->log, ngx_errno,
                      "vconv: copy to \"%s\" failed", path);
    }

    (void) close(fd);

done:

    ngx_log_error(NGX_LOG_NOTICE, job->log, 0,
                  "vconv: job %s: input kept in \"%s\"", job->info.id, path);
}




/*
 * A list of formats: the outputs after the first, each its own file made
 * here (the child cannot open one), passed by descriptor.
 */
static int
ngx_http_vconv_sandbox_outputs(ngx_http_vconv_job_t *job,
    vconv_transcode_t *tc, int fd)
{
    int     i;
    u_char  path[NGX_MAX_PATH];

    tc->outputs[0].fd = fd;

    for (i = 1; i < job->spec.nouts; i++) {
        tc->outputs[i].fd = -1;
    }

    for (i = 1; i < job->spec.nouts; i++) {
        if (ngx_http_vconv_output_path(job, i, 1, path, sizeof(path))
            != NGX_OK)
        {
            ngx_http_vconv_sandbox_close(job, tc);
            return vconv_error_set(&tc->err, VCONV_E_INTERNAL,
                                   "output %d: no path", i);
        }

        (void) unlink((char *) path);

        tc->outputs[i].fd = open((char *) path,
                                 O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                                 0600);
        if (tc->outputs[i].fd == -1) {
            ngx_log_error(NGX_LOG_CRIT, job->log, ngx_errno,
                          "vconv: open \"%s\" failed", path);
            ngx_http_vconv_sandbox_close(job, tc);
            return vconv_error_set(&tc->err,
                                   (errno == ENOSPC || errno == EDQUOT)
                                   ? VCONV_E_STORE_FULL
                                   : VCONV_E_STORE_ERROR,
                                   "cannot create the output: %s",
                                   strerror(errno));
        }
    }

    return VCONV_OK;
}


/* the first is the caller's to close */
static void
ngx_http_vconv_sandbox_close(ngx_http_vconv_job_t *job,
    vconv_transcode_t *tc)
{
    int  i;

    for (i = 1; tc->outputs != NULL && i < job->spec.nouts; i++) {
        if (tc->outputs[i].fd != -1) {
            (void) close(tc->outputs[i].fd);
            tc->outputs[i].fd = -1;
        }
    }
}
