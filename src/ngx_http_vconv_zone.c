/*
 * vconv: the job registry in shared memory (slab + rbtree, the limit_req
 * pattern).  Memory only: the files are the store's
 * (ngx_http_vconv_store.c).  The zone's init runs in the master and for
 * "nginx -t", so it must never touch the disk.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_vconv.h"


static void ngx_http_vconv_zone_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_vconv_node_t *ngx_http_vconv_zone_insert_locked(
    ngx_http_vconv_zone_t *z, vconv_job_info_t *info);
static ngx_uint_t ngx_http_vconv_zone_evict_locked(ngx_http_vconv_zone_t *z);


static uint32_t
ngx_http_vconv_zone_hash(ngx_str_t *id)
{
    return ngx_crc32_short(id->data, id->len);
}


ngx_http_vconv_zone_t *
ngx_http_vconv_zone(ngx_http_request_t *r)
{
    ngx_http_vconv_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vconv_module);

    /* no zone when no vconv_upload, vconv_jobs or vconv_status uses it */
    return vmcf->shm_zone ? vmcf->shm_zone->data : NULL;
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
                    ngx_http_vconv_zone_rbtree_insert);
    ngx_queue_init(&z->sh->queue);

    len = sizeof(" in vconv zone \"\"") + shm_zone->shm.name.len;

    z->shpool->log_ctx = ngx_slab_alloc(z->shpool, len);
    if (z->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(z->shpool->log_ctx, " in vconv zone \"%V\"%Z",
                &shm_zone->shm.name);

    z->shpool->log_nomem = 0;

    /*
     * A fresh zone starts empty and not "loaded": the store's manager
     * brings the jobs on disk in (ngx_http_vconv_store.c), with the
     * workers' user, once it is sure who owns them.
     */

    return NGX_OK;
}


static void
ngx_http_vconv_zone_rbtree_insert(ngx_rbtree_node_t *temp,
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
ngx_http_vconv_node_t *
ngx_http_vconv_zone_lookup_locked(ngx_http_vconv_zone_t *z, ngx_str_t *id)
{
    ngx_int_t               rc;
    uint32_t                hash;
    ngx_rbtree_node_t      *node, *sentinel;
    ngx_http_vconv_node_t  *vn;

    hash = ngx_http_vconv_zone_hash(id);
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


/* the caller holds the lock */
static ngx_http_vconv_node_t *
ngx_http_vconv_zone_insert_locked(ngx_http_vconv_zone_t *z,
    vconv_job_info_t *info)
{
    ngx_str_t               id;
    ngx_http_vconv_node_t  *node;

    node = ngx_slab_calloc_locked(z->shpool, sizeof(ngx_http_vconv_node_t));
    if (node == NULL) {
        return NULL;
    }

    id.data = (u_char *) info->id;
    id.len = ngx_strlen(info->id);

    node->info = *info;
    node->node.key = ngx_http_vconv_zone_hash(&id);
    node->seq = ++z->sh->seq;
    node->version = 1;

    ngx_rbtree_insert(&z->sh->rbtree, &node->node);
    ngx_queue_insert_tail(&z->sh->queue, &node->queue);
    z->sh->njobs++;

    return node;
}


ngx_http_vconv_node_t *
ngx_http_vconv_zone_add(ngx_http_vconv_zone_t *z, vconv_job_info_t *info,
    ngx_log_t *log)
{
    ngx_http_vconv_node_t  *node;

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_http_vconv_zone_insert_locked(z, info);

    if (node == NULL && ngx_http_vconv_zone_evict_locked(z)) {
        node = ngx_http_vconv_zone_insert_locked(z, info);
    }

    if (node == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "vconv: the zone is full, job refused");
        return NULL;
    }

    node->active = 1;

    ngx_shmtx_unlock(&z->shpool->mutex);

    return node;
}


/*
 * A job the store found on disk and nobody owns.  Recovery leaves a
 * quarter of the zone to new uploads: the jobs that do not fit stay on
 * disk and are answered from their job.json.  NGX_DECLINED: the zone
 * knows the job already; NGX_BUSY: no room.
 */
ngx_int_t
ngx_http_vconv_zone_load(ngx_http_vconv_zone_t *z, vconv_job_info_t *info,
    off_t disk, ngx_uint_t count)
{
    ngx_str_t               id;
    ngx_uint_t              pages;
    ngx_http_vconv_node_t  *node;

    id.data = (u_char *) info->id;
    id.len = ngx_strlen(info->id);

    pages = (z->shpool->end - z->shpool->start) >> ngx_pagesize_shift;

    ngx_shmtx_lock(&z->shpool->mutex);

    if (ngx_http_vconv_zone_lookup_locked(z, &id)) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_DECLINED;
    }

    if (z->shpool->pfree < pages / 4) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_BUSY;
    }

    node = ngx_http_vconv_zone_insert_locked(z, info);
    if (node == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_BUSY;
    }

    node->disk = disk;
    z->sh->store_bytes += disk;

    if (count) {
        ngx_http_vconv_zone_count_locked(z, info);
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


ngx_int_t
ngx_http_vconv_zone_get(ngx_http_vconv_zone_t *z, ngx_str_t *id,
    vconv_job_info_t *info, ngx_uint_t *version, ngx_uint_t *queue_pos)
{
    ngx_http_vconv_node_t  *node;

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_http_vconv_zone_lookup_locked(z, id);

    if (node == NULL || node->removing) {
        ngx_shmtx_unlock(&z->shpool->mutex);

        /* NGX_ABORT: being removed, it must not come back from disk */
        return node ? NGX_ABORT : NGX_DECLINED;
    }

    *info = node->info;
    *version = node->version;
    /* the scheduler's binary search: no walk of the zone */
    *queue_pos = (node->info.status == VCONV_JOB_QUEUED)
                 ? ngx_http_vconv_sched_position_locked(z, node) : 0;

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


ngx_int_t
ngx_http_vconv_zone_cancel(ngx_http_vconv_zone_t *z, ngx_str_t *id)
{
    ngx_pid_t               wake;
    ngx_int_t               rc;
    ngx_http_vconv_node_t  *node;

    wake = 0;

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_http_vconv_zone_lookup_locked(z, id);

    if (node == NULL || node->removing) {
        rc = NGX_DECLINED;

    } else if (node->active) {
        node->cancel = 1;
        rc = NGX_AGAIN;

        /* a queued job leaves its place now; its owner ends it */
        wake = ngx_http_vconv_sched_cancel_locked(z, node);

    } else {
        /* the caller removes it: nobody else may start to */
        node->removing = 1;
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (wake) {
        ngx_http_vconv_sched_wake(wake, ngx_cycle->log);
    }

    return rc;
}


/*
 * The counters for /api/metrics change under the zone's lock, like every
 * other field of the zone, and only here; the caller holds the lock.
 */
void
ngx_http_vconv_zone_count_locked(ngx_http_vconv_zone_t *z,
    vconv_job_info_t *info)
{
    ngx_http_vconv_counters_t  *c;

    c = &z->sh->counters;
    c->finished[info->status - VCONV_JOB_DONE]++;

    if (info->err_code != VCONV_E_NONE && info->err_code < VCONV_E_COUNT) {
        c->errors[info->err_code]++;
    }

    c->bytes_in += info->in_bytes;
    c->bytes_out += info->out_bytes;
    c->transcode_seconds += info->transcode_seconds;
}


/* an upload refused before it became a job */
void
ngx_http_vconv_zone_count_error(ngx_http_vconv_zone_t *z,
    vconv_err_e code)
{
    if (code <= VCONV_E_NONE || code >= VCONV_E_COUNT) {
        return;
    }

    ngx_shmtx_lock(&z->shpool->mutex);
    z->sh->counters.errors[code]++;
    ngx_shmtx_unlock(&z->shpool->mutex);
}


void
ngx_http_vconv_zone_update(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, vconv_job_info_t *info)
{
    ngx_shmtx_lock(&z->shpool->mutex);

    if (!vconv_status_final(node->info.status)
        && vconv_status_final(info->status))
    {
        ngx_http_vconv_zone_count_locked(z, info);
    }

    node->info = *info;
    node->version++;

    ngx_shmtx_unlock(&z->shpool->mutex);
}


void
ngx_http_vconv_zone_progress(ngx_http_vconv_zone_t *z,
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
ngx_http_vconv_zone_disk(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, off_t delta)
{
    ngx_shmtx_lock(&z->shpool->mutex);

    node->disk += delta;
    z->sh->store_bytes += delta;
    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* the upload wrote n more bytes of the input */
void
ngx_http_vconv_zone_input(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, off_t n)
{
    ngx_shmtx_lock(&z->shpool->mutex);

    node->info.in_bytes += n;
    node->disk += n;
    z->sh->store_bytes += n;

    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* the caller holds the lock */
void
ngx_http_vconv_zone_free_locked(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node)
{
    z->sh->store_bytes -= node->disk;
    z->sh->njobs--;

    ngx_http_vconv_sched_forget_locked(z, node);

    ngx_rbtree_delete(&z->sh->rbtree, &node->node);
    ngx_queue_remove(&node->queue);
    ngx_slab_free_locked(z->shpool, node);
}


void
ngx_http_vconv_zone_remove(ngx_http_vconv_zone_t *z, ngx_str_t *id)
{
    ngx_http_vconv_node_t  *node;

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_http_vconv_zone_lookup_locked(z, id);
    if (node) {
        ngx_http_vconv_zone_free_locked(z, node);
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
    *store_bytes = z->sh->store_bytes + z->sh->on_disk_bytes;

    ngx_shmtx_unlock(&z->shpool->mutex);
}


/*
 * A queued job an exiting worker offers (active, pid 0, not started)
 * becomes this worker's: NULL if there is none.
 */
ngx_http_vconv_node_t *
ngx_http_vconv_zone_take(ngx_http_vconv_zone_t *z, vconv_job_info_t *info)
{
    ngx_queue_t            *q;
    ngx_http_vconv_node_t  *node;

    ngx_shmtx_lock(&z->shpool->mutex);

    for (q = ngx_queue_head(&z->sh->queue);
         q != ngx_queue_sentinel(&z->sh->queue);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_vconv_node_t, queue);

        if (node->active && !node->removing && !node->cancel
            && node->info.pid == 0
            && node->info.status == VCONV_JOB_QUEUED)
        {
            node->info.pid = ngx_pid;
            node->version++;
            *info = node->info;

            ngx_shmtx_unlock(&z->shpool->mutex);
            return node;
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NULL;
}




/*
 * A full zone first lets go of the records that hold no folder: failed
 * and canceled jobs (ngx_http_vconv_store_forget()), oldest first.  They
 * would go after vconv_failed_ttl anyway; a new upload is worth more
 * than a failure nobody may ever look at.  No disk work under the lock.
 * The caller holds the lock; returns how many went.
 */
static ngx_uint_t
ngx_http_vconv_zone_evict_locked(ngx_http_vconv_zone_t *z)
{
    ngx_uint_t              n;
    ngx_queue_t            *q, *next;
    ngx_http_vconv_node_t  *node;

    n = 0;

    for (q = ngx_queue_head(&z->sh->queue);
         q != ngx_queue_sentinel(&z->sh->queue);
         q = next)
    {
        next = ngx_queue_next(q);
        node = ngx_queue_data(q, ngx_http_vconv_node_t, queue);

        if (node->small && !node->active && !node->removing) {
            ngx_http_vconv_zone_free_locked(z, node);
            n++;
        }
    }

    return n;
}


/* the upload's job is accepted: counted, and it is its client's */
void
ngx_http_vconv_zone_accept(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, uint32_t client)
{
    ngx_shmtx_lock(&z->shpool->mutex);
    z->sh->counters.accepted++;
    node->client = client;
    ngx_shmtx_unlock(&z->shpool->mutex);
}


/*
 * An accepted job that ends before it was ever posted (its upload was
 * refused on the way: a bad form, an empty body, a client gone) still
 * ends once in the counters, so that accepted = done + failed +
 * canceled + the jobs in flight holds.
 */
void
ngx_http_vconv_zone_count_unposted(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, vconv_err_e code)
{
    vconv_job_info_t  info;

    ngx_shmtx_lock(&z->shpool->mutex);

    if (!vconv_status_final(node->info.status)) {
        info = node->info;
        info.status = (code == VCONV_E_CANCELED) ? VCONV_JOB_CANCELED
                                                 : VCONV_JOB_FAILED;
        info.err_code = code;
        ngx_http_vconv_zone_count_locked(z, &info);

        node->info.status = info.status;
        node->info.err_code = code;
        node->version++;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* the jobs in flight (not ended) of one client key */
ngx_uint_t
ngx_http_vconv_zone_client_jobs(ngx_http_vconv_zone_t *z, uint32_t client)
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

        if (node->client == client && !node->removing
            && !vconv_status_final(node->info.status))
        {
            n++;
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return n;
}


/*
 * Seconds until a full zone is likely to have room: the first record to
 * expire (the sweeper removes it then), at least 1; no more than 5 when
 * jobs are in flight: a failure among them makes room at once, and a
 * flood of queued uploads drains in seconds.
 */
time_t
ngx_http_vconv_zone_retry_after(ngx_http_vconv_zone_t *z)
{
    time_t                  now, first;
    ngx_uint_t              flight;
    ngx_queue_t            *q;
    ngx_http_vconv_node_t  *node;

    now = ngx_time();
    first = 0;
    flight = 0;

    ngx_shmtx_lock(&z->shpool->mutex);

    for (q = ngx_queue_head(&z->sh->queue);
         q != ngx_queue_sentinel(&z->sh->queue);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_vconv_node_t, queue);

        if (!vconv_status_final(node->info.status)) {
            flight++;

        } else if (node->info.expires
                   && (first == 0 || node->info.expires < first))
        {
            first = node->info.expires;
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (first == 0) {
        /* nothing expires: every record is a job in flight */
        first = 5;

    } else {
        first = (first > now) ? first - now + 1 : 1;
    }

    return flight ? ngx_min(first, 5) : first;
}
