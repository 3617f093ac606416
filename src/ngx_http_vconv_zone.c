/*
 * vconv: the job registry in shared memory (slab + rbtree, the limit_req
 * pattern), job folders in the store, and the sweeper.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <dirent.h>

#include "ngx_http_vconv.h"


#define NGX_HTTP_VCONV_SWEEP_BATCH     64
#define NGX_HTTP_VCONV_ORPHAN_SECONDS  60


static void ngx_http_vconv_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_vconv_node_t *ngx_http_vconv_lookup(
    ngx_http_vconv_zone_t *z, ngx_str_t *id);
static void ngx_http_vconv_free_node(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node);
static void ngx_http_vconv_load_store(ngx_http_vconv_zone_t *z,
    ngx_log_t *log);
static void ngx_http_vconv_sweep_orphans(ngx_http_vconv_main_conf_t *vmcf,
    ngx_http_vconv_zone_t *z, ngx_log_t *log);
static off_t ngx_http_vconv_dir_bytes(const char *dir);


static uint32_t
ngx_http_vconv_hash(ngx_str_t *id)
{
    return ngx_crc32_short(id->data, id->len);
}


ngx_int_t
ngx_http_vconv_zone_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_vconv_zone_t  *oz = data;

    size_t                  len;
    ngx_http_vconv_zone_t  *z;

    z = shm_zone->data;

    if (oz) {
        /* a reload: the jobs live on in the same memory */
        z->sh = oz->sh;
        z->shpool = oz->shpool;
        return NGX_OK;
    }

    z->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        z->sh = z->shpool->data;
        return NGX_OK;
    }

    z->sh = ngx_slab_calloc(z->shpool, sizeof(ngx_http_vconv_shctx_t));
    if (z->sh == NULL) {
        return NGX_ERROR;
    }

    z->shpool->data = z->sh;

    ngx_rbtree_init(&z->sh->rbtree, &z->sh->sentinel,
                    ngx_http_vconv_rbtree_insert);
    ngx_queue_init(&z->sh->queue);

    len = sizeof(" in vconv zone \"\"") + shm_zone->shm.name.len;

    z->shpool->log_ctx = ngx_slab_alloc(z->shpool, len);
    if (z->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(z->shpool->log_ctx, " in vconv zone \"%V\"%Z",
                &shm_zone->shm.name);

    z->shpool->log_nomem = 0;

    /* a fresh zone: the jobs finished before a restart come back */
    ngx_http_vconv_load_store(z, shm_zone->shm.log);

    return NGX_OK;
}


static void
ngx_http_vconv_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t     **p;
    ngx_http_vconv_node_t  *n, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            n = (ngx_http_vconv_node_t *) node;
            t = (ngx_http_vconv_node_t *) temp;

            p = (ngx_strcmp(n->info.id, t->info.id) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/* the caller holds the lock */
static ngx_http_vconv_node_t *
ngx_http_vconv_lookup(ngx_http_vconv_zone_t *z, ngx_str_t *id)
{
    ngx_int_t               rc;
    uint32_t                hash;
    ngx_rbtree_node_t      *node, *sentinel;
    ngx_http_vconv_node_t  *vn;

    hash = ngx_http_vconv_hash(id);
    node = z->sh->rbtree.root;
    sentinel = z->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        vn = (ngx_http_vconv_node_t *) node;

        rc = ngx_strncmp(id->data, vn->info.id, id->len);
        if (rc == 0 && vn->info.id[id->len] != '\0') {
            rc = -1;
        }

        if (rc == 0) {
            return vn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


ngx_http_vconv_node_t *
ngx_http_vconv_job_add(ngx_http_vconv_zone_t *z, vconv_job_info_t *info,
    ngx_log_t *log)
{
    ngx_str_t               id;
    ngx_http_vconv_node_t  *node;

    id.data = (u_char *) info->id;
    id.len = ngx_strlen(info->id);

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_slab_calloc_locked(z->shpool, sizeof(ngx_http_vconv_node_t));
    if (node == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "vconv: the zone is full, job refused");
        return NULL;
    }

    node->info = *info;
    node->node.key = ngx_http_vconv_hash(&id);
    node->seq = ++z->sh->seq;
    node->version = 1;
    node->active = 1;

    ngx_rbtree_insert(&z->sh->rbtree, &node->node);
    ngx_queue_insert_tail(&z->sh->queue, &node->queue);
    z->sh->njobs++;

    ngx_shmtx_unlock(&z->shpool->mutex);

    return node;
}


/* the caller holds the lock */
static ngx_uint_t
ngx_http_vconv_queue_position(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node)
{
    ngx_uint_t              pos;
    ngx_queue_t            *q;
    ngx_http_vconv_node_t  *n;

    if (node->info.status != VCONV_JOB_QUEUED) {
        return 0;
    }

    pos = 1;

    for (q = ngx_queue_head(&z->sh->queue);
         q != ngx_queue_sentinel(&z->sh->queue);
         q = ngx_queue_next(q))
    {
        n = ngx_queue_data(q, ngx_http_vconv_node_t, queue);

        if (n != node && n->info.status == VCONV_JOB_QUEUED
            && n->seq < node->seq)
        {
            pos++;
        }
    }

    return pos;
}


ngx_int_t
ngx_http_vconv_job_get(ngx_http_vconv_zone_t *z, ngx_str_t *id,
    vconv_job_info_t *info, ngx_uint_t *version, ngx_uint_t *queue_pos)
{
    ngx_http_vconv_node_t  *node;

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_http_vconv_lookup(z, id);

    if (node == NULL || node->removing) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_DECLINED;
    }

    *info = node->info;
    *version = node->version;
    *queue_pos = ngx_http_vconv_queue_position(z, node);

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


ngx_int_t
ngx_http_vconv_job_cancel(ngx_http_vconv_zone_t *z, ngx_str_t *id)
{
    ngx_int_t               rc;
    ngx_http_vconv_node_t  *node;

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_http_vconv_lookup(z, id);

    if (node == NULL || node->removing) {
        rc = NGX_DECLINED;

    } else if (node->active) {
        node->cancel = 1;
        rc = NGX_AGAIN;

    } else {
        /* the caller removes it: nobody else may start to */
        node->removing = 1;
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return rc;
}


void
ngx_http_vconv_job_update(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, vconv_job_info_t *info)
{
    ngx_http_vconv_counters_t  *c;

    ngx_shmtx_lock(&z->shpool->mutex);

    if (!vconv_status_final(node->info.status)
        && vconv_status_final(info->status))
    {
        c = &z->sh->counters;
        c->finished[info->status - VCONV_JOB_DONE]++;

        if (info->err_code != VCONV_E_NONE && info->err_code < VCONV_E_COUNT)
        {
            c->errors[info->err_code]++;
        }

        c->bytes_in += info->in_bytes;
        c->bytes_out += info->out_bytes;
        c->transcode_seconds += info->transcode_seconds;
    }

    node->info = *info;
    node->version++;

    ngx_shmtx_unlock(&z->shpool->mutex);
}


void
ngx_http_vconv_job_progress(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, double progress)
{
    ngx_shmtx_lock(&z->shpool->mutex);

    if (progress > node->info.progress) {
        node->info.progress = progress;
        node->version++;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);
}


void
ngx_http_vconv_job_disk(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, off_t delta)
{
    ngx_shmtx_lock(&z->shpool->mutex);

    node->disk += delta;
    z->sh->store_bytes += delta;
    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* the upload wrote n more bytes of the input */
void
ngx_http_vconv_job_input(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, off_t n)
{
    ngx_shmtx_lock(&z->shpool->mutex);

    node->info.in_bytes += n;
    node->disk += n;
    z->sh->store_bytes += n;

    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* the caller holds the lock */
static void
ngx_http_vconv_free_node(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node)
{
    z->sh->store_bytes -= node->disk;
    z->sh->njobs--;

    ngx_rbtree_delete(&z->sh->rbtree, &node->node);
    ngx_queue_remove(&node->queue);
    ngx_slab_free_locked(z->shpool, node);
}


void
ngx_http_vconv_job_remove(ngx_http_vconv_zone_t *z, ngx_str_t *id)
{
    ngx_http_vconv_node_t  *node;

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_http_vconv_lookup(z, id);
    if (node) {
        ngx_http_vconv_free_node(z, node);
    }

    ngx_shmtx_unlock(&z->shpool->mutex);
}


void
ngx_http_vconv_zone_room(ngx_http_vconv_zone_t *z, ngx_uint_t *waiting,
    off_t *store_bytes)
{
    ngx_uint_t              n;
    ngx_queue_t            *q;
    ngx_http_vconv_node_t  *node;

    n = 0;

    ngx_shmtx_lock(&z->shpool->mutex);

    for (q = ngx_queue_head(&z->sh->queue);
         q != ngx_queue_sentinel(&z->sh->queue);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_vconv_node_t, queue);

        if (node->info.status == VCONV_JOB_UPLOADING
            || node->info.status == VCONV_JOB_QUEUED)
        {
            n++;
        }
    }

    *waiting = n;
    *store_bytes = z->sh->store_bytes;

    ngx_shmtx_unlock(&z->shpool->mutex);
}


u_char *
ngx_http_vconv_job_path(ngx_pool_t *pool, ngx_http_vconv_main_conf_t *vmcf,
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
 * Removes a job's folder and whatever is in it.  The id is checked again:
 * this is the one place that deletes files by a name built from an id.
 */
void
ngx_http_vconv_job_rmdir(ngx_http_vconv_main_conf_t *vmcf, const char *id,
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


static off_t
ngx_http_vconv_dir_bytes(const char *dir)
{
    off_t         bytes;
    struct stat   st;
    char          path[NGX_MAX_PATH];
    const char  **f;

    static const char  *files[] = { "input", "output", "job.json", NULL };

    bytes = 0;

    for (f = files; *f; f++) {
        ngx_sprintf((u_char *) path, "%s/%s%Z", dir, *f);

        if (stat(path, &st) == 0) {
            bytes += st.st_size;
        }
    }

    return bytes;
}


/*
 * At start-up, with a fresh zone: done jobs on disk come back so their
 * outputs stay downloadable; a job that was running in a process that is
 * gone is marked failed, "interrupted"; anything else is removed.
 */
static void
ngx_http_vconv_load_store(ngx_http_vconv_zone_t *z, ngx_log_t *log)
{
    DIR                         *dir;
    size_t                       len;
    time_t                       now;
    struct dirent               *de;
    vconv_error_t                err;
    vconv_job_info_t             info;
    ngx_http_vconv_node_t       *node;
    ngx_http_vconv_main_conf_t  *vmcf;
    u_char                       path[NGX_MAX_PATH];

    vmcf = z->conf;

    if (vmcf->store.len + 128 >= NGX_MAX_PATH) {
        return;
    }

    ngx_sprintf(path, "%V%Z", &vmcf->store);

    dir = opendir((char *) path);
    if (dir == NULL) {
        return;
    }

    now = ngx_time();

    while ((de = readdir(dir)) != NULL) {
        len = ngx_strlen(de->d_name);

        if (!vconv_id_valid(de->d_name, len)) {
            continue;
        }

        ngx_sprintf(path, "%V/%s%Z", &vmcf->store, de->d_name);

        if (vconv_job_load(&info, (char *) path, &err) != VCONV_OK) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "vconv: removing job folder \"%s\": %s",
                          path, err.message);
            ngx_http_vconv_job_rmdir(vmcf, de->d_name, log);
            continue;
        }

        if (!vconv_status_final(info.status)) {
            info.status = VCONV_JOB_FAILED;
            info.err_code = VCONV_E_INTERRUPTED;
            ngx_cpystrn((u_char *) info.err_message,
                        (u_char *) "the server stopped during the job",
                        sizeof(info.err_message));
            info.finished = now;
            info.expires = now + vmcf->ttl;
            info.pid = 0;

            ngx_sprintf(path, "%V/%s/input%Z", &vmcf->store, de->d_name);
            (void) unlink((char *) path);
            ngx_sprintf(path, "%V/%s/output.tmp%Z", &vmcf->store,
                        de->d_name);
            (void) unlink((char *) path);
            ngx_sprintf(path, "%V/%s%Z", &vmcf->store, de->d_name);

            (void) vconv_job_save(&info, (char *) path, &err);
        }

        if (info.expires && info.expires <= now) {
            ngx_http_vconv_job_rmdir(vmcf, de->d_name, log);
            continue;
        }

        node = ngx_http_vconv_job_add(z, &info, log);
        if (node == NULL) {
            break;
        }

        node->active = 0;
        node->disk = ngx_http_vconv_dir_bytes((char *) path);
        z->sh->store_bytes += node->disk;
    }

    closedir(dir);
}


/*
 * One worker at a time, about once a second: expired jobs go, jobs whose
 * worker died become failed "interrupted", and once a minute folders that
 * no job owns are removed.
 */
void
ngx_http_vconv_sweep(ngx_http_vconv_main_conf_t *vmcf,
    ngx_http_vconv_zone_t *z, ngx_log_t *log)
{
    time_t                  now;
    ngx_uint_t              i, nexp, nint, orphans;
    ngx_queue_t            *q;
    vconv_error_t           err;
    vconv_job_info_t       *info;
    ngx_http_vconv_node_t  *node;
    u_char                 *path;
    char                    expired[NGX_HTTP_VCONV_SWEEP_BATCH]
                                   [VCONV_ID_MAX];
    vconv_job_info_t        interrupted[8];
    u_char                  buf[NGX_MAX_PATH];

    now = ngx_time();

    ngx_shmtx_lock(&z->shpool->mutex);

    if (z->sh->last_sweep == now) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return;
    }

    orphans = (now / NGX_HTTP_VCONV_ORPHAN_SECONDS)
              != (z->sh->last_sweep / NGX_HTTP_VCONV_ORPHAN_SECONDS);

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

        if (node->active) {
            if (info->pid == 0 || info->pid == ngx_pid
                || kill(info->pid, 0) == 0 || ngx_errno != ESRCH)
            {
                continue;
            }

            /* its worker is gone */

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
                z->sh->counters.finished[info->status - VCONV_JOB_DONE]++;
                z->sh->counters.errors[VCONV_E_INTERRUPTED]++;
                node->version++;

                if (nint < 8) {
                    interrupted[nint++] = *info;
                }
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

        if (vmcf->store.len + VCONV_ID_MAX + 16 >= NGX_MAX_PATH) {
            break;
        }

        path = ngx_sprintf(buf, "%V/%s/", &vmcf->store, interrupted[i].id);
        ngx_sprintf(path, "input%Z");
        (void) unlink((char *) buf);
        ngx_sprintf(path, "output.tmp%Z");
        (void) unlink((char *) buf);
        path[-1] = '\0';

        (void) vconv_job_save(&interrupted[i], (char *) buf, &err);
    }

    for (i = 0; i < nexp; i++) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                       "vconv: job %s expired", expired[i]);

        ngx_http_vconv_job_rmdir(vmcf, expired[i], log);
    }

    if (nexp) {
        ngx_shmtx_lock(&z->shpool->mutex);

        for (i = 0; i < nexp; i++) {
            ngx_str_t  id;

            id.data = (u_char *) expired[i];
            id.len = ngx_strlen(expired[i]);

            node = ngx_http_vconv_lookup(z, &id);
            if (node) {
                ngx_http_vconv_free_node(z, node);
            }
        }

        ngx_shmtx_unlock(&z->shpool->mutex);
    }

    if (orphans) {
        ngx_http_vconv_sweep_orphans(vmcf, z, log);
    }
}


static void
ngx_http_vconv_sweep_orphans(ngx_http_vconv_main_conf_t *vmcf,
    ngx_http_vconv_zone_t *z, ngx_log_t *log)
{
    DIR            *dir;
    time_t          now;
    ngx_str_t       id;
    struct stat     st;
    struct dirent  *de;
    u_char          path[NGX_MAX_PATH];

    if (vmcf->store.len + VCONV_ID_MAX + 2 >= NGX_MAX_PATH) {
        return;
    }

    ngx_sprintf(path, "%V%Z", &vmcf->store);

    dir = opendir((char *) path);
    if (dir == NULL) {
        return;
    }

    now = ngx_time();

    while ((de = readdir(dir)) != NULL) {
        id.data = (u_char *) de->d_name;
        id.len = ngx_strlen(de->d_name);

        if (!vconv_id_valid(de->d_name, id.len)) {
            continue;
        }

        ngx_shmtx_lock(&z->shpool->mutex);
        if (ngx_http_vconv_lookup(z, &id)) {
            ngx_shmtx_unlock(&z->shpool->mutex);
            continue;
        }
        ngx_shmtx_unlock(&z->shpool->mutex);

        ngx_sprintf(path, "%V/%s%Z", &vmcf->store, de->d_name);

        /* a job being set up makes its record first, its folder second */
        if (stat((char *) path, &st) == -1
            || now - st.st_mtime < NGX_HTTP_VCONV_ORPHAN_SECONDS)
        {
            continue;
        }

        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "vconv: removing orphan job folder \"%s\"", path);

        ngx_http_vconv_job_rmdir(vmcf, de->d_name, log);
    }

    closedir(dir);
}
