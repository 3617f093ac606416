/*
 * vconv: the store on disk: job folders and their files, recovery of the
 * jobs on disk into the zone, and the sweeper.
 *
 * Recovery and the sweeper run in nginx's cache manager process: the store
 * is an ngx_path_t with a manager, as proxy_cache's cache is.  So they run
 * once per generation, with the workers' user, never in the master and
 * never for "nginx -t" (which starts no process).  The cache loader is not
 * used: it starts a minute after nginx, and finished jobs must be
 * answerable at once.  With "master_process off" the single process does
 * the manager's work on a timer.
 *
 * What is on disk is the truth; the zone is a cache of it.  Recovery marks
 * a job "interrupted" only when its owner process is known dead, and
 * deletes only folders whose job.json says the job expired, or folders
 * with no valid job.json that nobody has written to for a long while.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <dirent.h>

#include "ngx_http_vconv.h"


#define NGX_HTTP_VCONV_MANAGER_MS      1000
#define NGX_HTTP_VCONV_SWEEP_BATCH     64
#define NGX_HTTP_VCONV_SCAN_SECONDS    60  /* orphans, jobs left on disk */
#define NGX_HTTP_VCONV_OWNED_SECONDS   2   /* jobs of another generation */
#define NGX_HTTP_VCONV_QUIET_SECONDS   60


static ngx_msec_t ngx_http_vconv_store_manager(void *data);
static void ngx_http_vconv_store_timer(ngx_event_t *ev);
static void ngx_http_vconv_store_sweep(ngx_http_vconv_main_conf_t *vmcf,
    ngx_http_vconv_zone_t *z, ngx_log_t *log);
static void ngx_http_vconv_store_scan(ngx_http_vconv_main_conf_t *vmcf,
    ngx_http_vconv_zone_t *z, ngx_log_t *log);
static void ngx_http_vconv_store_interrupt(ngx_http_vconv_main_conf_t *vmcf,
    vconv_job_info_t *info, const char *why, ngx_log_t *log);
static ngx_uint_t ngx_http_vconv_store_owner_alive(ngx_pid_t pid,
    time_t since);
static time_t ngx_http_vconv_store_pid_start(ngx_pid_t pid);
static ngx_uint_t ngx_http_vconv_store_quiet(const u_char *dir, time_t now,
    time_t quiet);
static off_t ngx_http_vconv_store_dir_bytes(const u_char *dir);
static void ngx_http_vconv_store_rmsub(u_char *path, ngx_log_t *log);


/*
 * The store is created as nginx creates its temp paths (ngx_create_paths
 * at start, 0700, owned by the workers' user; not for "nginx -t"), and its
 * manager callback starts the cache manager process.
 */
ngx_int_t
ngx_http_vconv_store_add_path(ngx_conf_t *cf,
    ngx_http_vconv_main_conf_t *vmcf)
{
    ngx_path_t  *path;

    path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (path == NULL) {
        return NGX_ERROR;
    }

    path->name = vmcf->store;
    path->manager = ngx_http_vconv_store_manager;
    path->data = vmcf;
    path->conf_file = cf->conf_file->file.name.data;
    path->line = cf->conf_file->line;

    return ngx_add_path(cf, &path);
}


/*
 * With "master_process off" the single process does the manager's work.
 * The event is static: a reload there makes a new cycle without calling
 * init_process again, and the timer follows the current configuration.
 */
void
ngx_http_vconv_store_init_process(ngx_cycle_t *cycle)
{
    static ngx_event_t  ev;

    if (ngx_process != NGX_PROCESS_SINGLE) {
        return;
    }

    ev.handler = ngx_http_vconv_store_timer;
    ev.log = cycle->log;
    ev.cancelable = 1;

    ngx_add_timer(&ev, 1);
}


static void
ngx_http_vconv_store_timer(ngx_event_t *ev)
{
    ngx_msec_t                   next;
    ngx_http_vconv_main_conf_t  *vmcf;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    vmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_vconv_module);
    if (vmcf == NULL || vmcf->shm_zone == NULL) {
        return;
    }

    next = ngx_http_vconv_store_manager(vmcf);

    ngx_add_timer(ev, next);
}


/*
 * The cache manager calls this at its start and then whenever the time
 * it returns has passed: the first call recovers the store into a fresh
 * zone, each later one sweeps.
 */
static ngx_msec_t
ngx_http_vconv_store_manager(void *data)
{
    ngx_http_vconv_main_conf_t *vmcf = data;

    time_t                  now;
    ngx_uint_t              loaded, on_disk;
    ngx_http_vconv_zone_t  *z;

    z = vmcf->shm_zone->data;
    now = ngx_time();

    if (vmcf->next_scan == 0) {

        /* a reload that kept the zone: it is loaded already */

        ngx_shmtx_lock(&z->shpool->mutex);
        loaded = z->sh->loaded;
        on_disk = z->sh->on_disk;
        ngx_shmtx_unlock(&z->shpool->mutex);

        vmcf->next_scan = (loaded && on_disk == 0)
                          ? now + NGX_HTTP_VCONV_SCAN_SECONDS : now;
    }

    if (now >= vmcf->next_scan) {
        ngx_http_vconv_store_scan(vmcf, z, ngx_cycle->log);
    }

    ngx_http_vconv_store_sweep(vmcf, z, ngx_cycle->log);

    return NGX_HTTP_VCONV_MANAGER_MS;
}


u_char *
ngx_http_vconv_store_path(ngx_pool_t *pool, ngx_http_vconv_main_conf_t *vmcf,
    ngx_str_t *id, const char *file)
{
    u_char  *path;
    size_t   len;

    len = vmcf->store.len + 1 + id->len + 1
          + (file ? ngx_strlen(file) + 1 : 0) + 1;

    path = ngx_pnalloc(pool, len);
    if (path == NULL) {
        return NULL;
    }

    if (file) {
        ngx_sprintf(path, "%V/%V/%s%Z", &vmcf->store, id, file);

    } else {
        ngx_sprintf(path, "%V/%V%Z", &vmcf->store, id);
    }

    return path;
}


/*
 * A new job's folder (0700) and its input (0600, open for writing in
 * *wfd).  The modes are the most a umask can leave, so a daemonised nginx
 * (umask 0) makes them so too.  The output's temporary file is made 0600
 * by the task that writes it (ngx_http_vconv_transcode()).  On failure
 * the caller removes the folder with whatever is in it; err says whose
 * fault it is: a full disk (507 store_full) or the store itself (500
 * store_error: permissions, a read-only or missing folder), never the
 * queue's.
 */
ngx_int_t
ngx_http_vconv_store_create(u_char *dir, u_char *input, ngx_fd_t *wfd,
    ngx_log_t *log, vconv_error_t *err)
{
    ngx_err_t    e;
    const char  *op;
    u_char      *path;

    op = "mkdir";
    path = dir;

    if (ngx_create_dir(dir, 0700) == NGX_FILE_ERROR) {
        goto failed;
    }

    op = "open";
    path = input;

    *wfd = ngx_open_file(input, NGX_FILE_WRONLY,
                         NGX_FILE_CREATE_OR_OPEN | O_EXCL | O_NOFOLLOW,
                         0600);
    if (*wfd == NGX_INVALID_FILE) {
        goto failed;
    }

    return NGX_OK;

failed:

    e = ngx_errno;

    /* the operator's line: which path, which errno */
    ngx_log_error(NGX_LOG_ERR, log, e, "vconv: %s \"%s\" failed", op, path);

    if (e == NGX_ENOSPC || e == EDQUOT) {
        (void) vconv_error_set(err, VCONV_E_STORE_FULL,
                               "the store has no room for this upload");

    } else {
        (void) vconv_error_set(err, VCONV_E_STORE_ERROR,
                               "the server cannot write to its store");
    }

    return NGX_ERROR;
}


/*
 * A job that failed or was canceled with its id known: its folder goes
 * now (there is no output to serve) and its record, a few hundred bytes
 * of shared memory, lives on for vconv_failed_ttl only, or less when the
 * zone needs the room (ngx_http_vconv_zone_add).  So junk uploads cost
 * no disk and little zone.
 */
void
ngx_http_vconv_store_forget(ngx_http_vconv_job_t *job)
{
    time_t                  expires;
    vconv_status_e          status;
    ngx_http_vconv_zone_t  *z;
    ngx_http_vconv_node_t  *node;

    z = job->zone;
    node = job->node;

    ngx_shmtx_lock(&z->shpool->mutex);
    status = node->info.status;
    ngx_shmtx_unlock(&z->shpool->mutex);

    if (status != VCONV_JOB_FAILED && status != VCONV_JOB_CANCELED) {
        return;
    }

    ngx_http_vconv_store_rmdir(job->vmcf, job->info.id, job->log);

    ngx_shmtx_lock(&z->shpool->mutex);

    expires = node->info.finished + job->vmcf->failed_ttl;

    if (node->info.expires == 0 || expires < node->info.expires) {
        node->info.expires = expires;
    }

    z->sh->store_bytes -= node->disk;
    node->disk = 0;
    node->small = 1;
    node->version++;

    ngx_shmtx_unlock(&z->shpool->mutex);
}


/*
 * Removes a job's folder and whatever is in it.  The id is checked again:
 * this is the one place that deletes files by a name built from an id.
 */
/* a job folder's subfolder (hls/): its files, then itself */
static void
ngx_http_vconv_store_rmsub(u_char *path, ngx_log_t *log)
{
    DIR            *dir;
    struct dirent  *de;
    u_char          file[NGX_MAX_PATH];

    dir = opendir((char *) path);
    if (dir == NULL) {
        return;
    }

    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.' || ngx_strlen(de->d_name) > 64
            || ngx_strlen(path) + 66 > NGX_MAX_PATH)
        {
            continue;
        }

        ngx_sprintf(file, "%s/%s%Z", path, de->d_name);

        if (unlink((char *) file) == -1 && ngx_errno != NGX_ENOENT) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "vconv: unlink \"%s\" failed", file);
        }
    }

    closedir(dir);

    if (rmdir((char *) path) == -1 && ngx_errno != NGX_ENOENT) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "vconv: rmdir \"%s\" failed", path);
    }
}


void
ngx_http_vconv_store_rmdir(ngx_http_vconv_main_conf_t *vmcf, const char *id,
    ngx_log_t *log)
{
    DIR            *dir;
    size_t          len;
    struct dirent  *de;
    u_char          path[NGX_MAX_PATH], file[NGX_MAX_PATH];

    len = ngx_strlen(id);

    if (!vconv_id_valid(id, len)
        || vmcf->store.len + len + 2 >= NGX_MAX_PATH - 64)
    {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "vconv: refusing to remove job folder \"%s\"", id);
        return;
    }

    ngx_sprintf(path, "%V/%s%Z", &vmcf->store, id);

    dir = opendir((char *) path);
    if (dir == NULL) {
        if (ngx_errno != NGX_ENOENT) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "vconv: opendir \"%s\" failed", path);
        }
        return;
    }

    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.'
            && (de->d_name[1] == '\0'
                || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
        {
            continue;
        }

        if (ngx_strlen(de->d_name) > 64) {
            continue;
        }

        ngx_sprintf(file, "%s/%s%Z", path, de->d_name);

        if (unlink((char *) file) == 0 || ngx_errno == NGX_ENOENT) {
            continue;
        }

        if (ngx_errno == NGX_EISDIR) {
            /* an hls folder (issue 13): one level, files only */
            ngx_http_vconv_store_rmsub(file, log);
            continue;
        }

        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "vconv: unlink \"%s\" failed", file);
    }

    closedir(dir);

    if (rmdir((char *) path) == -1 && ngx_errno != NGX_ENOENT) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "vconv: rmdir \"%s\" failed", path);
    }
}


/*
 * A job the zone does not hold may still be on disk: one of another
 * generation's workers (a reload to a new zone size, a binary upgrade),
 * one recovery has not loaded yet, or one that did not fit in the zone.
 * Its job.json answers for it.  A small read on the event loop, only for
 * ids the zone does not know.
 */
ngx_int_t
ngx_http_vconv_store_get(ngx_http_vconv_zone_t *z, ngx_str_t *id,
    vconv_job_info_t *info, ngx_uint_t *version, ngx_uint_t *queue_pos)
{
    ngx_int_t                    rc;
    struct stat                  st;
    vconv_error_t                err;
    ngx_http_vconv_main_conf_t  *vmcf;
    u_char                       path[NGX_MAX_PATH];

    rc = ngx_http_vconv_zone_get(z, id, info, version, queue_pos);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    vmcf = z->conf;

    if (!vconv_id_valid((char *) id->data, id->len)
        || vmcf->store.len + id->len + 16 >= NGX_MAX_PATH)
    {
        return NGX_DECLINED;
    }

    ngx_sprintf(path, "%V/%V/job.json%Z", &vmcf->store, id);

    if (stat((char *) path, &st) == -1) {
        return NGX_DECLINED;
    }

    ngx_sprintf(path, "%V/%V%Z", &vmcf->store, id);

    if (vconv_job_load(info, (char *) path, &err) != VCONV_OK
        || ngx_strncmp(info->id, id->data, id->len) != 0
        || info->id[id->len] != '\0'
        || (info->expires && info->expires <= ngx_time()))
    {
        return NGX_DECLINED;
    }

    /* a new version with each rewrite of job.json, for event streams */
    *version = (ngx_uint_t) st.st_mtim.tv_sec * 1000000000
               + st.st_mtim.tv_nsec;
    *queue_pos = 0;

    return NGX_OK;
}


/*
 * DELETE: the zone's answer, else a finished job only on disk may go too
 * (the caller removes its folder).  A job another generation's worker
 * runs cannot be canceled from here: the zone that could tell it is not
 * ours.
 */
ngx_int_t
ngx_http_vconv_store_cancel(ngx_http_vconv_zone_t *z, ngx_str_t *id)
{
    ngx_int_t         rc;
    ngx_uint_t        version, queue_pos;
    vconv_job_info_t  info;

    rc = ngx_http_vconv_zone_cancel(z, id);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (ngx_http_vconv_store_get(z, id, &info, &version, &queue_pos)
        != NGX_OK
        || !vconv_status_final(info.status))
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * Once a second, one process: expired jobs go, and a job whose owner is
 * known dead (its pid gone) becomes failed "interrupted".
 */
static void
ngx_http_vconv_store_sweep(ngx_http_vconv_main_conf_t *vmcf,
    ngx_http_vconv_zone_t *z, ngx_log_t *log)
{
    time_t                  now;
    ngx_str_t               id;
    ngx_uint_t              i, nexp, nint;
    ngx_queue_t            *q;
    vconv_job_info_t       *info;
    ngx_http_vconv_node_t  *node;
    char                    expired[NGX_HTTP_VCONV_SWEEP_BATCH]
                                   [VCONV_ID_MAX];
    vconv_job_info_t        interrupted[8];

    now = ngx_time();

    ngx_shmtx_lock(&z->shpool->mutex);

    /* the old and the new manager overlap for a moment after a reload */

    if (z->sh->last_sweep == now) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return;
    }

    z->sh->last_sweep = now;

    nexp = 0;
    nint = 0;

    for (q = ngx_queue_head(&z->sh->queue);
         q != ngx_queue_sentinel(&z->sh->queue);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_vconv_node_t, queue);
        info = &node->info;

        if (node->removing) {
            continue;
        }

        /* an idle tus upload: canceled, its owner removes it */
        if (ngx_http_vconv_tus_expire_locked(z, node, now)) {
            continue;
        }

        if (node->active) {
            if (info->pid == 0 || info->pid == ngx_pid
                || kill(info->pid, 0) == 0 || ngx_errno != NGX_ESRCH)
            {
                continue;
            }

            /* its worker is gone */

            if (nint == 8) {
                continue;  /* the next sweep */
            }

            node->active = 0;

            if (!vconv_status_final(info->status)) {
                info->status = node->cancel ? VCONV_JOB_CANCELED
                                            : VCONV_JOB_FAILED;
                info->err_code = VCONV_E_INTERRUPTED;
                ngx_cpystrn((u_char *) info->err_message,
                            (u_char *) "the worker running the job exited",
                            sizeof(info->err_message));
                info->finished = now;
                info->expires = now + vmcf->ttl;
                ngx_http_vconv_zone_count_locked(z, info);
                node->version++;

                interrupted[nint++] = *info;
            }

            continue;
        }

        if (info->expires && info->expires <= now
            && nexp < NGX_HTTP_VCONV_SWEEP_BATCH)
        {
            node->removing = 1;
            ngx_cpystrn((u_char *) expired[nexp++], (u_char *) info->id,
                        VCONV_ID_MAX);
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    for (i = 0; i < nint; i++) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "vconv: job %s interrupted: worker %P exited",
                      interrupted[i].id, interrupted[i].pid);

        ngx_http_vconv_store_interrupt(vmcf, &interrupted[i], NULL, log);
    }

    for (i = 0; i < nexp; i++) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                       "vconv: job %s expired", expired[i]);

        ngx_http_vconv_store_rmdir(vmcf, expired[i], log);
    }

    if (nexp == 0) {
        return;
    }

    ngx_shmtx_lock(&z->shpool->mutex);

    for (i = 0; i < nexp; i++) {
        id.data = (u_char *) expired[i];
        id.len = ngx_strlen(expired[i]);

        node = ngx_http_vconv_zone_lookup_locked(z, &id);
        if (node) {
            ngx_http_vconv_zone_free_locked(z, node);
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);
}


/*
 * Recovery, and later the orphan sweep: every job folder the zone does not
 * hold is looked at through its job.json.
 *  - a finished, unexpired job comes into the zone, if there is room;
 *    if not, it stays on disk and is answered from its job.json;
 *  - a finished, expired job is removed;
 *  - an unfinished job is left alone while its owner lives (a worker of
 *    another generation may still run it), and is marked failed
 *    "interrupted" once its owner is known dead;
 *  - a folder without a valid job.json is an orphan once nothing in it
 *    has changed for a long while (an upload being set up, or running in
 *    another generation's worker, writes to it).
 */
static void
ngx_http_vconv_store_scan(ngx_http_vconv_main_conf_t *vmcf,
    ngx_http_vconv_zone_t *z, ngx_log_t *log)
{
    DIR               *dir;
    off_t              disk, left;
    time_t             now, quiet, next;
    ngx_int_t          rc;
    ngx_str_t          id;
    ngx_uint_t         loaded, owned, full, known, marked, changed;
    struct stat        st;
    struct dirent     *de;
    vconv_error_t      err;
    vconv_job_info_t   info;
    u_char             path[NGX_MAX_PATH];

    now = ngx_time();
    next = now + NGX_HTTP_VCONV_SCAN_SECONDS;

    if (vmcf->store.len + VCONV_ID_MAX + 16 >= NGX_MAX_PATH) {
        vmcf->next_scan = next;
        return;
    }

    quiet = ngx_max(NGX_HTTP_VCONV_QUIET_SECONDS,
                    (time_t) (2 * vmcf->stall_timeout / 1000));

    ngx_sprintf(path, "%V%Z", &vmcf->store);

    dir = opendir((char *) path);
    if (dir == NULL) {
        ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                      "vconv: opendir \"%s\" failed", path);
        vmcf->next_scan = next;
        return;
    }

    loaded = 0;
    owned = 0;
    full = 0;
    left = 0;

    while ((de = readdir(dir)) != NULL) {
        id.data = (u_char *) de->d_name;
        id.len = ngx_strlen(de->d_name);

        if (!vconv_id_valid(de->d_name, id.len)) {
            continue;
        }

        ngx_shmtx_lock(&z->shpool->mutex);
        known = (ngx_http_vconv_zone_lookup_locked(z, &id) != NULL);
        ngx_shmtx_unlock(&z->shpool->mutex);

        if (known) {
            continue;
        }

        ngx_sprintf(path, "%V/%s/job.json%Z", &vmcf->store, de->d_name);

        if (stat((char *) path, &st) == -1) {
            st.st_mtime = 0;
        }

        ngx_sprintf(path, "%V/%s%Z", &vmcf->store, de->d_name);

        if (vconv_job_load(&info, (char *) path, &err) != VCONV_OK
            || ngx_strcmp(info.id, de->d_name) != 0)
        {
            if (!ngx_http_vconv_store_quiet(path, now, quiet)) {
                continue;
            }

            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "vconv: removing orphan job folder \"%s\"", path);

            ngx_http_vconv_store_rmdir(vmcf, de->d_name, log);
            continue;
        }

        marked = 0;

        if (!vconv_status_final(info.status)) {

            if (ngx_http_vconv_store_owner_alive(info.pid, st.st_mtime)) {
                owned++;
                left += ngx_http_vconv_store_dir_bytes(path);
                continue;
            }

            /*
             * The owner may have finished the job just before it exited;
             * dead, it writes no more: this reading is the last word.
             */

            if (vconv_job_load(&info, (char *) path, &err) != VCONV_OK) {
                continue;
            }
        }

        if (!vconv_status_final(info.status)) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "vconv: job %s interrupted: process %P is gone",
                          info.id, info.pid);

            ngx_http_vconv_store_interrupt(vmcf, &info,
                                           "the server stopped during "
                                           "the job", log);
            marked = 1;
        }

        if (info.expires && info.expires <= now) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                           "vconv: job %s expired", info.id);

            ngx_http_vconv_store_rmdir(vmcf, de->d_name, log);
            continue;
        }

        disk = ngx_http_vconv_store_dir_bytes(path);

        rc = ngx_http_vconv_zone_load(z, &info, disk, marked);

        if (rc == NGX_OK) {

            /*
             * A DELETE of the job as it was only on disk removes its
             * folder, then its record: either it finds the record, or the
             * folder is gone by now.
             */

            if (stat((char *) path, &st) == -1) {
                ngx_http_vconv_zone_remove(z, &id);
                continue;
            }

            loaded++;

        } else if (rc == NGX_BUSY) {
            full++;
            left += disk;
        }
    }

    closedir(dir);

    ngx_shmtx_lock(&z->shpool->mutex);
    changed = (z->sh->on_disk != full + owned);
    z->sh->loaded = 1;
    z->sh->on_disk = full + owned;
    z->sh->on_disk_bytes = left;
    ngx_shmtx_unlock(&z->shpool->mutex);

    if (loaded || changed) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "vconv: store \"%V\": %ui jobs loaded, %ui left on "
                      "disk for want of zone room, %ui owned by "
                      "running processes", &vmcf->store, loaded, full,
                      owned);
    }

    /* jobs of another generation are looked at again soon */

    vmcf->next_scan = owned ? now + NGX_HTTP_VCONV_OWNED_SECONDS : next;
}


/*
 * A job that lost its process: failed "interrupted", its input and partial
 * output gone, its job.json rewritten.  Its owner is dead, so nobody else
 * writes to the folder.
 */
static void
ngx_http_vconv_store_interrupt(ngx_http_vconv_main_conf_t *vmcf,
    vconv_job_info_t *info, const char *why, ngx_log_t *log)
{
    int                    i;
    u_char                *p;
    time_t                 now;
    vconv_error_t          err;
    u_char                 path[NGX_MAX_PATH];
    const vconv_format_t  *f;

    if (vmcf->store.len + VCONV_ID_MAX + 32 >= NGX_MAX_PATH) {
        return;
    }

    if (why) {
        now = ngx_time();

        info->status = VCONV_JOB_FAILED;
        info->err_code = VCONV_E_INTERRUPTED;
        ngx_cpystrn((u_char *) info->err_message, (u_char *) why,
                    sizeof(info->err_message));
        info->finished = now;
        info->expires = now + vmcf->ttl;
    }

    p = ngx_sprintf(path, "%V/%s/", &vmcf->store, info->id);

    ngx_sprintf(p, "input%Z");
    (void) unlink((char *) path);
    ngx_sprintf(p, "output.tmp%Z");
    (void) unlink((char *) path);

    /* a list of formats: the other outputs' partial files too */
    for (i = 1; i < info->nouts && i < VCONV_MAX_OUTPUTS; i++) {
        f = vconv_format((vconv_format_e) info->outs[i]);

        if (f != NULL) {
            ngx_sprintf(p, "output.%s.tmp%Z", f->name);
            (void) unlink((char *) path);
        }
    }

    p[-1] = '\0';

    if (vconv_job_save(info, (char *) path, &err) != VCONV_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "vconv: job %s: %s",
                      info->id, err.message);
    }
}


/*
 * Whether the process that last wrote a job's record (at "since") may
 * still run it.  Only ESRCH says it is gone; and a pid that a process
 * started after "since" holds now (a reboot, a wrap) is not the owner.
 */
static ngx_uint_t
ngx_http_vconv_store_owner_alive(ngx_pid_t pid, time_t since)
{
    time_t  start;

    if (pid <= 0) {
        return 0;
    }

    if (kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH) {
        return 0;
    }

    start = ngx_http_vconv_store_pid_start(pid);

    /* the start time is known to a second or so */

    if (start != (time_t) -1 && since && start > since + 2) {
        return 0;
    }

    return 1;
}


/* Linux: when a process started, from /proc; -1 if unknown */
static time_t
ngx_http_vconv_store_pid_start(ngx_pid_t pid)
{
    int                  fd;
    long                 ticks;
    char                *p, *end;
    ssize_t              n;
    ngx_uint_t           field;
    struct timespec      up;
    unsigned long long   start;
    char                 buf[1024];

    ngx_sprintf((u_char *) buf, "/proc/%P/stat%Z", pid);

    fd = open(buf, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return -1;
    }

    n = read(fd, buf, sizeof(buf) - 1);
    (void) close(fd);

    if (n <= 0) {
        return -1;
    }

    buf[n] = '\0';

    /* the name may hold spaces and parentheses: fields follow the last ')' */

    p = strrchr(buf, ')');
    if (p == NULL) {
        return -1;
    }

    /* p stops on the space before field 22, starttime */

    for (field = 3; field <= 22; field++) {
        p = strchr(p + 1, ' ');
        if (p == NULL) {
            return -1;
        }
    }

    start = strtoull(p + 1, &end, 10);
    ticks = sysconf(_SC_CLK_TCK);

    if (end == p + 1 || ticks <= 0
        || clock_gettime(CLOCK_BOOTTIME, &up) == -1)
    {
        return -1;
    }

    /* starttime counts clock ticks since boot */

    return time(NULL) - (up.tv_sec - (time_t) (start / ticks));
}


/* nothing in the folder changed for "quiet" seconds */
static ngx_uint_t
ngx_http_vconv_store_quiet(const u_char *dir, time_t now, time_t quiet)
{
    struct stat   st;
    char          path[NGX_MAX_PATH];
    const char  **f;

    static const char  *files[] = { "input", "output.tmp", "output",
                                    "job.json", NULL };

    if (stat((const char *) dir, &st) == -1
        || now - st.st_mtime < quiet)
    {
        return 0;
    }

    for (f = files; *f; f++) {
        ngx_sprintf((u_char *) path, "%s/%s%Z", dir, *f);

        if (stat(path, &st) == 0 && now - st.st_mtime < quiet) {
            return 0;
        }
    }

    return 1;
}


static off_t
ngx_http_vconv_store_dir_bytes(const u_char *dir)
{
    DIR            *d;
    off_t           bytes;
    size_t          n;
    struct stat     st;
    struct dirent  *de;
    char            path[NGX_MAX_PATH];

    bytes = 0;

    /*
     * input, job.json and every output ("output", "output.NAME" of a
     * list of formats); not what is still being written (".tmp")
     */
    d = opendir((const char *) dir);
    if (d == NULL) {
        return 0;
    }

    while ((de = readdir(d)) != NULL) {
        n = ngx_strlen(de->d_name);

        if (de->d_name[0] == '.' || n > 64
            || (n > 4 && ngx_strcmp(de->d_name + n - 4, ".tmp") == 0))
        {
            continue;
        }

        ngx_sprintf((u_char *) path, "%s/%s%Z", dir, de->d_name);

        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            bytes += st.st_size;

        } else if (ngx_strcmp(de->d_name, "hls") == 0
                   && S_ISDIR(st.st_mode))
        {
            bytes += ngx_http_vconv_store_dir_bytes((u_char *) path);
        }
    }

    closedir(d);

    return bytes;
}
