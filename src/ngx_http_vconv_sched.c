/*
 * vconv: one scheduler for all workers.  vconv_max_running slots are
 * granted from the zone: the jobs waiting for one are kept in the zone
 * sorted by their key (arrival time, moved by their priority class) and
 * arrival number, so a grant takes the first one, a job's queue position
 * is a binary search, and a canceled job leaves its place at once.
 *
 * Whoever frees a slot grants it to the next job on the spot, under the
 * zone's lock; the worker that owns that job hears of it through a
 * datagram to a socket of its own in its event loop, not from a timer.
 * The socket has an abstract name made of the worker's pid, so any
 * worker, of this cycle or of an old one, can reach any other.
 *
 * A running job whose upload stops delivering (no packet converted for
 * NGX_HTTP_VCONV_STARVE_MS, the upload not over) while others wait
 * gives its slot to the next one; it takes it back, over the bound if
 * need be, as soon as it converts again.  It keeps its pool thread, blocked
 * in the reader, all along.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include <sys/un.h>

#include "ngx_http_vconv.h"


/* the waiting list grows by doubling from here */
#define NGX_HTTP_VCONV_SCHED_SIZE   64

/* the most workers one grant round wakes */
#define NGX_HTTP_VCONV_SCHED_WAKE   32

/* in a grant round's pids: every worker, the full lane's busy flipped */
#define NGX_HTTP_VCONV_SCHED_ALL    ((ngx_pid_t) -1)


static void ngx_http_vconv_sched_read(ngx_event_t *ev);
static void ngx_http_vconv_sched_posted_handler(ngx_event_t *ev);
static ngx_uint_t ngx_http_vconv_sched_find_locked(ngx_http_vconv_sched_t *s,
    ngx_http_vconv_node_t *node);
static ngx_int_t ngx_http_vconv_sched_insert_locked(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node);
static ngx_uint_t ngx_http_vconv_sched_grant_locked(ngx_http_vconv_zone_t *z,
    ngx_pid_t *pids);
static void ngx_http_vconv_sched_wake_all(ngx_pid_t *pids, ngx_uint_t n,
    ngx_log_t *log);
static void ngx_http_vconv_sched_reap(ngx_http_vconv_zone_t *z);
static void ngx_http_vconv_sched_spare(ngx_uint_t posted);
static void ngx_http_vconv_sched_broadcast(int fd, ngx_log_t *log);
static ngx_uint_t ngx_http_vconv_sched_quick(vconv_spec_t *spec);
static socklen_t ngx_http_vconv_sched_addr(struct sockaddr_un *sa,
    ngx_pid_t pid);
static void ngx_http_vconv_sched_send(ngx_pid_t *pids, ngx_uint_t n,
    ngx_log_t *log);


/* this worker's wake socket */
static ngx_connection_t  *ngx_http_vconv_sched_conn;

/* a wake-up of this worker by itself: no datagram needed */
static ngx_event_t        ngx_http_vconv_sched_self;

static ngx_http_vconv_zone_t  *ngx_http_vconv_sched_zone;


ngx_int_t
ngx_http_vconv_sched_init_process(ngx_cycle_t *cycle,
    ngx_http_vconv_main_conf_t *vmcf)
{
    int                  fd;
    socklen_t            len;
    ngx_connection_t    *c;
    struct sockaddr_un   sa;

    ngx_http_vconv_sched_self.handler = ngx_http_vconv_sched_posted_handler;
    ngx_http_vconv_sched_self.log = cycle->log;
    ngx_http_vconv_sched_zone = vmcf->shm_zone->data;

    /* a worker that died holding slots leaves them to the living */
    ngx_http_vconv_sched_reap(vmcf->shm_zone->data);

    fd = socket(AF_UNIX, SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                      "vconv: socket() for the scheduler failed");
        return NGX_ERROR;
    }

    len = ngx_http_vconv_sched_addr(&sa, ngx_pid);

    if (bind(fd, (struct sockaddr *) &sa, len) == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                      "vconv: bind() of the scheduler's socket failed");
        (void) close(fd);
        return NGX_ERROR;
    }

    c = ngx_get_connection(fd, cycle->log);
    if (c == NULL) {
        (void) close(fd);
        return NGX_ERROR;
    }

    c->read->handler = ngx_http_vconv_sched_read;
    c->read->log = cycle->log;
    c->write->log = cycle->log;
    c->data = vmcf;

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_close_connection(c);
        return NGX_ERROR;
    }

    ngx_http_vconv_sched_conn = c;

    /* the spare as the slots say, once the sandbox is there */
    ngx_post_event(&ngx_http_vconv_sched_self, &ngx_posted_events);

    return NGX_OK;
}


/* before nginx looks for connections left open by an exiting worker */
void
ngx_http_vconv_sched_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_http_vconv_sched_conn) {
        ngx_close_connection(ngx_http_vconv_sched_conn);
        ngx_http_vconv_sched_conn = NULL;
    }
}


/* "\0vconv-sched-<pid>": abstract, gone with the process */
static socklen_t
ngx_http_vconv_sched_addr(struct sockaddr_un *sa, ngx_pid_t pid)
{
    u_char  *p;

    ngx_memzero(sa, sizeof(struct sockaddr_un));
    sa->sun_family = AF_UNIX;

    p = ngx_sprintf((u_char *) sa->sun_path + 1, "vconv-sched-%P", pid);

    return offsetof(struct sockaddr_un, sun_path)
           + (p - (u_char *) sa->sun_path);
}


/* datagrams: each only says "look at your jobs" */
static void
ngx_http_vconv_sched_read(ngx_event_t *ev)
{
    ssize_t            n;
    u_char             buf[64];
    ngx_connection_t  *c;

    c = ev->data;

    for ( ;; ) {
        n = recv(c->fd, buf, sizeof(buf), 0);

        if (n >= 0) {
            continue;
        }

        if (ngx_socket_errno != NGX_EAGAIN
            && ngx_socket_errno != NGX_EINTR)
        {
            ngx_log_error(NGX_LOG_ALERT, ev->log, ngx_socket_errno,
                          "vconv: recv() on the scheduler's socket failed");
        }

        if (ngx_socket_errno != NGX_EINTR) {
            break;
        }
    }

    ev->ready = 0;

    ngx_http_vconv_sched_spare(ngx_http_vconv_job_sched_events());
}


static void
ngx_http_vconv_sched_posted_handler(ngx_event_t *ev)
{
    ngx_http_vconv_sched_spare(ngx_http_vconv_job_sched_events());
}


/*
 * While every transcode slot is taken, the sandbox keeps no spare: its
 * warm heap (~45 MB a worker) saves a still ~20 ms, which on cores that
 * a transcode fills is lost in the noise, and the memory is better left
 * to the jobs (a burst's peak: see bench section 8).  A worker that has
 * just posted a job lets that job tell its helper, after the job itself:
 * the job that takes the last slot takes the spare too.
 */
static void
ngx_http_vconv_sched_spare(ngx_uint_t posted)
{
    ngx_uint_t              busy;
    ngx_http_vconv_zone_t  *z;

    z = ngx_http_vconv_sched_zone;

    if (z == NULL) {
        return;
    }

    ngx_shmtx_lock(&z->shpool->mutex);
    busy = z->sh->sched[NGX_HTTP_VCONV_LANE_FULL].busy;
    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_http_vconv_sandbox_spare(!busy, posted);
}


void
ngx_http_vconv_sched_wake(ngx_pid_t pid, ngx_log_t *log)
{
    socklen_t           len;
    ngx_err_t           err;
    ngx_uint_t          level;
    struct sockaddr_un  sa;

    if (pid == 0) {
        /* offered to the new workers: the taker looks itself */
        return;
    }

    if (pid == ngx_pid || ngx_http_vconv_sched_conn == NULL) {
        if (!ngx_http_vconv_sched_self.posted) {
            ngx_post_event(&ngx_http_vconv_sched_self, &ngx_posted_events);
        }

        return;
    }

    len = ngx_http_vconv_sched_addr(&sa, pid);

    if (sendto(ngx_http_vconv_sched_conn->fd, "w", 1, 0,
               (struct sockaddr *) &sa, len)
        == -1)
    {
        /*
         * EAGAIN: its queue is full of wake-ups it has yet to read;
         * ECONNREFUSED: it is gone (its jobs are reaped or taken over)
         */
        err = ngx_socket_errno;
        level = (err == NGX_EAGAIN || err == NGX_ECONNREFUSED)
                ? NGX_LOG_INFO : NGX_LOG_ALERT;

        ngx_log_error(level, log, err,
                      "vconv: the wake-up of worker %P failed", pid);
    }
}


static void
ngx_http_vconv_sched_wake_all(ngx_pid_t *pids, ngx_uint_t n, ngx_log_t *log)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        if (pids[i] != NGX_HTTP_VCONV_SCHED_ALL) {
            ngx_http_vconv_sched_wake(pids[i], log);
            continue;
        }

        if (ngx_http_vconv_sched_conn) {
            ngx_http_vconv_sched_broadcast(ngx_http_vconv_sched_conn->fd,
                                           log);
        }

        ngx_http_vconv_sched_wake(ngx_pid, log);
    }
}


/*
 * To every other worker this one knows of (nginx's channel tells it of
 * its siblings).  Quietly: a process with no socket (the cache manager,
 * a worker of an old cycle that is gone) is no failure.
 */
static void
ngx_http_vconv_sched_broadcast(int fd, ngx_log_t *log)
{
    ngx_int_t           i;
    socklen_t           len;
    struct sockaddr_un  sa;

    for (i = 0; i < NGX_MAX_PROCESSES; i++) {
        if (i == ngx_process_slot || ngx_processes[i].pid <= 0
            || ngx_processes[i].pid == ngx_pid
            || ngx_processes[i].channel[0] == -1)
        {
            continue;
        }

        len = ngx_http_vconv_sched_addr(&sa, ngx_processes[i].pid);

        if (sendto(fd, "w", 1, MSG_DONTWAIT, (struct sockaddr *) &sa, len)
            == -1)
        {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, ngx_socket_errno,
                           "vconv: broadcast to %P: %d", ngx_processes[i].pid,
                           ngx_socket_errno);
        }
    }
}


/* the index of the node's entry, or of where it would go; locked */
static ngx_uint_t
ngx_http_vconv_sched_find_locked(ngx_http_vconv_sched_t *s,
    ngx_http_vconv_node_t *node)
{
    ngx_uint_t              lo, hi, mid;
    ngx_http_vconv_wait_t  *w;

    lo = 0;
    hi = s->nwaiting;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        w = &s->waiting[mid];

        if (w->key < node->sched_key
            || (w->key == node->sched_key && w->seq < node->seq))
        {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return lo;
}


static ngx_int_t
ngx_http_vconv_sched_insert_locked(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node)
{
    size_t                   size;
    ngx_uint_t               i;
    ngx_http_vconv_wait_t   *w;
    ngx_http_vconv_sched_t  *s;

    s = &z->sh->sched[node->lane];

    if (s->nwaiting == s->size) {
        size = s->size ? 2 * s->size : NGX_HTTP_VCONV_SCHED_SIZE;

        w = ngx_slab_alloc_locked(z->shpool,
                                  size * sizeof(ngx_http_vconv_wait_t));
        if (w == NULL) {
            return NGX_ERROR;
        }

        if (s->waiting) {
            ngx_memcpy(w, s->waiting,
                       s->nwaiting * sizeof(ngx_http_vconv_wait_t));
            ngx_slab_free_locked(z->shpool, s->waiting);
        }

        s->waiting = w;
        s->size = size;
    }

    i = ngx_http_vconv_sched_find_locked(s, node);

    ngx_memmove(&s->waiting[i + 1], &s->waiting[i],
                (s->nwaiting - i) * sizeof(ngx_http_vconv_wait_t));

    s->waiting[i].key = node->sched_key;
    s->waiting[i].seq = node->seq;
    s->waiting[i].node = node;
    s->nwaiting++;

    node->waiting = 1;

    return NGX_OK;
}


/*
 * Free slots go to the first jobs waiting; the pids of their owners, each
 * once, for the wake-ups after the lock is let go.
 */
static ngx_uint_t
ngx_http_vconv_sched_grant_locked(ngx_http_vconv_zone_t *z, ngx_pid_t *pids)
{
    ngx_uint_t               i, l, n, max;
    ngx_http_vconv_node_t   *node;
    ngx_http_vconv_sched_t  *s;

    max = z->conf->max_running;
    n = 0;

    for (l = 0; l < NGX_HTTP_VCONV_LANES; l++) {
        s = &z->sh->sched[l];

        while (s->running < max && s->nwaiting) {
            node = s->waiting[0].node;

            s->nwaiting--;
            ngx_memmove(&s->waiting[0], &s->waiting[1],
                        s->nwaiting * sizeof(ngx_http_vconv_wait_t));

            node->waiting = 0;
            node->granted = 1;
            node->version++;
            s->running++;

            /*
             * A lone job gets three threads a core: more frames in
             * flight hide the pipeline's serial parts, and a burst of 4
             * on 2 cores finished 6-9 % sooner than with libav's own
             * choice (1.5 a core for x264).  Jobs that share the cores
             * split them.  A still decodes a frame or two: frame
             * threads would only add their start to it.
             */
            if (l == NGX_HTTP_VCONV_LANE_QUICK) {
                node->sched_threads = 1;

            } else if (s->running == 1) {
                node->sched_threads = ngx_min(3 * ngx_max(ngx_ncpu, 1),
                                              NGX_HTTP_VCONV_LONE_THREADS);

            } else {
                node->sched_threads = ngx_max(1, ngx_ncpu / s->running);
            }

            for (i = 0; i < n; i++) {
                if (pids[i] == node->info.pid) {
                    break;
                }
            }

            if (i == n && n < NGX_HTTP_VCONV_SCHED_WAKE) {
                pids[n++] = node->info.pid;
            }
        }
    }

    s = &z->sh->sched[NGX_HTTP_VCONV_LANE_FULL];

    if (s->busy != (s->running >= max)) {
        /* every worker hears it: see ngx_http_vconv_sched_spare() */
        s->busy = (s->running >= max);

        if (n == NGX_HTTP_VCONV_SCHED_WAKE) {
            n--;
        }

        pids[n++] = NGX_HTTP_VCONV_SCHED_ALL;
    }

    return n;
}


ngx_int_t
ngx_http_vconv_sched_enqueue(ngx_http_vconv_job_t *job)
{
    ngx_uint_t              n, granted;
    ngx_time_t             *tp;
    ngx_pid_t               pids[NGX_HTTP_VCONV_SCHED_WAKE];
    ngx_http_vconv_node_t  *node;
    ngx_http_vconv_zone_t  *z;

    z = job->zone;
    node = job->node;
    tp = ngx_timeofday();

    ngx_shmtx_lock(&z->shpool->mutex);

    /*
     * A job taken over from an exiting worker keeps its place.  A high
     * job counts as arrived vconv_priority_aging earlier, a low one that
     * much later: a low job so waits at most that long for normal jobs
     * that came after it, and nothing starves.
     */

    if (!node->waiting && !node->granted) {
        node->lane = ngx_http_vconv_sched_quick(&job->spec)
                     ? NGX_HTTP_VCONV_LANE_QUICK : NGX_HTTP_VCONV_LANE_FULL;
        node->sched_key = (int64_t) tp->sec * 1000 + tp->msec
                          + ((int64_t) job->sched_class
                             - NGX_HTTP_VCONV_PRIO_NORMAL)
                            * (int64_t) job->vmcf->priority_aging;

        if (ngx_http_vconv_sched_insert_locked(z, node) != NGX_OK) {
            ngx_shmtx_unlock(&z->shpool->mutex);
            ngx_log_error(NGX_LOG_WARN, job->log, 0,
                          "vconv: the zone has no room to queue the job");
            return NGX_ERROR;
        }
    }

    n = ngx_http_vconv_sched_grant_locked(z, pids);

    granted = node->granted;

    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_http_vconv_sched_wake_all(pids, n, job->log);

    if (granted) {
        /*
         * e.g. a job taken over with its slot: its own worker runs it on
         * the next turn of the event loop
         */
        ngx_http_vconv_sched_wake(ngx_pid, job->log);
    }

    return NGX_OK;
}


/* 1: every output is a still picture or info, the quick lane's */
static ngx_uint_t
ngx_http_vconv_sched_quick(vconv_spec_t *spec)
{
    int                     i, n;
    vconv_format_e          fmt;
    const vconv_format_t   *f;

    /* a single format is a list of one */
    n = spec->nouts ? spec->nouts : 1;

    for (i = 0; i < n; i++) {
        fmt = spec->nouts ? (vconv_format_e) spec->outs[i] : spec->format;
        f = vconv_format(fmt);

        if (f == NULL
            || (f->kind != VCONV_KIND_IMAGE && f->kind != VCONV_KIND_INFO))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * The caller holds the lock.  A slot it frees goes to the next job, and
 * the full lane's busy flag is brought up to date, only in a grant round:
 * ngx_http_vconv_sched_leave() runs one; the zone frees only records whose
 * jobs have left (an evicted or deleted record holds no slot).
 */
void
ngx_http_vconv_sched_forget_locked(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node)
{
    ngx_uint_t               i;
    ngx_http_vconv_sched_t  *s;

    s = &z->sh->sched[node->lane];

    if (node->waiting) {
        i = ngx_http_vconv_sched_find_locked(s, node);

        if (i < s->nwaiting && s->waiting[i].node == node) {
            s->nwaiting--;
            ngx_memmove(&s->waiting[i], &s->waiting[i + 1],
                        (s->nwaiting - i) * sizeof(ngx_http_vconv_wait_t));
        }

        node->waiting = 0;
        node->version++;
    }

    if (node->granted) {
        node->granted = 0;
        s->running--;
    }

    /* a starved job's slot was given away already */
    node->starved = 0;
}


void
ngx_http_vconv_sched_leave(ngx_http_vconv_job_t *job)
{
    ngx_uint_t              n;
    ngx_pid_t               pids[NGX_HTTP_VCONV_SCHED_WAKE];
    ngx_http_vconv_zone_t  *z;

    z = job->zone;

    ngx_shmtx_lock(&z->shpool->mutex);

    if (!job->node->waiting && !job->node->granted) {
        job->node->starved = 0;
        ngx_shmtx_unlock(&z->shpool->mutex);
        return;
    }

    ngx_http_vconv_sched_forget_locked(z, job->node);

    n = ngx_http_vconv_sched_grant_locked(z, pids);

    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_http_vconv_sched_wake_all(pids, n, job->log);
}


/* the caller holds the lock; the pid to wake after it, 0: none */
ngx_pid_t
ngx_http_vconv_sched_cancel_locked(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node)
{
    if (!node->waiting) {
        /* a running job sees the flag itself */
        return 0;
    }

    ngx_http_vconv_sched_forget_locked(z, node);

    return node->info.pid;
}


/* 1 for the next job to be granted a slot; O(log n) */
ngx_uint_t
ngx_http_vconv_sched_position_locked(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node)
{
    ngx_uint_t               i;
    ngx_http_vconv_sched_t  *s;

    if (!node->waiting) {
        return 0;
    }

    s = &z->sh->sched[node->lane];
    i = ngx_http_vconv_sched_find_locked(s, node);

    return (i < s->nwaiting && s->waiting[i].node == node) ? i + 1 : 0;
}


/*
 * Once, as a worker starts: the slots and places of workers that are
 * gone (a crash; a clean exit gives them back) go to the others.
 */
static void
ngx_http_vconv_sched_reap(ngx_http_vconv_zone_t *z)
{
    ngx_uint_t              n;
    ngx_queue_t            *q;
    ngx_pid_t               pids[NGX_HTTP_VCONV_SCHED_WAKE];
    ngx_http_vconv_node_t  *node;

    ngx_shmtx_lock(&z->shpool->mutex);

    if (z->sh->sched[0].running == 0 && z->sh->sched[0].nwaiting == 0
        && z->sh->sched[1].running == 0 && z->sh->sched[1].nwaiting == 0)
    {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return;
    }

    for (q = ngx_queue_head(&z->sh->queue);
         q != ngx_queue_sentinel(&z->sh->queue);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_vconv_node_t, queue);

        if ((node->waiting || node->granted || node->starved)
            && node->info.pid
            && kill(node->info.pid, 0) == -1 && ngx_errno == NGX_ESRCH)
        {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "vconv: job %s of the dead worker %P leaves "
                          "the scheduler", node->info.id, node->info.pid);

            ngx_http_vconv_sched_forget_locked(z, node);
        }
    }

    n = ngx_http_vconv_sched_grant_locked(z, pids);

    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_http_vconv_sched_wake_all(pids, n, ngx_cycle->log);
}


/*
 * On the pool thread, polled through the job's interrupt callback: the
 * job's slot goes to the next waiting job while its reader starves, and
 * comes back when bytes do.  Taking it back never waits for a free slot,
 * as the thread cannot be parked in the middle of libav's demuxer: the
 * bound may so be exceeded for a while, and no slot is granted until the
 * count is under it again.
 */
ngx_int_t
ngx_http_vconv_sched_starve(ngx_http_vconv_job_t *job, ngx_uint_t starve)
{
    ngx_uint_t               n;
    ngx_pid_t                pids[NGX_HTTP_VCONV_SCHED_WAKE];
    ngx_http_vconv_node_t   *node;
    ngx_http_vconv_zone_t   *z;
    ngx_http_vconv_sched_t  *s;

    z = job->zone;
    node = job->node;
    s = &z->sh->sched[node->lane];
    n = 0;

    ngx_shmtx_lock(&z->shpool->mutex);

    if (starve) {
        if (!node->granted || s->nwaiting == 0) {
            ngx_shmtx_unlock(&z->shpool->mutex);
            return NGX_DECLINED;
        }

        node->granted = 0;
        node->starved = 1;
        s->running--;

        n = ngx_http_vconv_sched_grant_locked(z, pids);

    } else if (node->starved) {
        node->starved = 0;
        node->granted = 1;
        s->running++;

        /* none is granted over the bound: this only says it is busy */
        n = ngx_http_vconv_sched_grant_locked(z, pids);
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_log_error(NGX_LOG_INFO, job->log, 0, starve
                  ? "vconv: the job waits for upload bytes, its slot goes "
                    "to the next job"
                  : "vconv: the job converts again and takes a slot back");

    ngx_http_vconv_sched_send(pids, n, job->log);

    return NGX_OK;
}


/*
 * The wake-ups from a pool thread: its own socket, not the event loop's
 * connection, and no posted event, neither being the thread's to touch.
 */
static void
ngx_http_vconv_sched_send(ngx_pid_t *pids, ngx_uint_t n, ngx_log_t *log)
{
    int                 fd;
    socklen_t           len;
    ngx_uint_t          i;
    struct sockaddr_un  sa;

    if (n == 0) {
        return;
    }

    fd = socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC, 0);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_socket_errno,
                      "vconv: socket() for a wake-up failed");
        return;
    }

    for (i = 0; i < n; i++) {
        if (pids[i] == NGX_HTTP_VCONV_SCHED_ALL) {
            ngx_http_vconv_sched_broadcast(fd, log);
            pids[i] = ngx_pid;
        }

        if (pids[i] == 0) {
            continue;
        }

        len = ngx_http_vconv_sched_addr(&sa, pids[i]);

        if (sendto(fd, "w", 1, MSG_DONTWAIT, (struct sockaddr *) &sa, len)
            == -1)
        {
            ngx_log_error(NGX_LOG_INFO, log, ngx_socket_errno,
                          "vconv: the wake-up of worker %P failed",
                          pids[i]);
        }
    }

    (void) close(fd);
}
