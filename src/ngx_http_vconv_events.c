/*
 * vconv: GET /api/jobs/{id}/events, a text/event-stream of the job's
 * progress and one terminal event.  Progress is polled from the zone
 * (any worker may run the job); the end of a job this worker runs is an
 * event the stream subscribes to, which also keeps the stream going in
 * an exiting worker until that job ends.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_vconv.h"


#define NGX_HTTP_VCONV_EVENTS_POLL       250
#define NGX_HTTP_VCONV_EVENTS_KEEPALIVE  15000
#define NGX_HTTP_VCONV_EVENTS_BUF        2048


typedef struct {
    ngx_http_request_t         *request;
    ngx_event_t                 timer;
    ngx_http_vconv_zone_t      *zone;
    ngx_str_t                   id;
    char                       *jobs_uri;
    ngx_uint_t                  version;
    ngx_uint_t                  queue_pos;   /* as last sent */
    ngx_msec_t                  last_sent;
    ngx_buf_t                  *buf;
    size_t                      size;
    ngx_http_vconv_waiter_t     waiter;      /* this worker's job's end */
} ngx_http_vconv_events_t;


static ngx_int_t ngx_http_vconv_events_step(ngx_http_vconv_events_t *e,
    ngx_uint_t first);
static ngx_int_t ngx_http_vconv_events_reserve(ngx_http_vconv_events_t *e,
    size_t size);
static ngx_int_t ngx_http_vconv_events_send(ngx_http_vconv_events_t *e,
    const char *event, vconv_job_info_t *info, ngx_uint_t queue_pos,
    ngx_uint_t last);
static ngx_int_t ngx_http_vconv_events_output(ngx_http_vconv_events_t *e,
    ngx_uint_t last);
static ngx_int_t ngx_http_vconv_events_end(ngx_http_vconv_events_t *e);
static void ngx_http_vconv_events_tick(ngx_event_t *ev);
static void ngx_http_vconv_events_job_done(ngx_event_t *ev);
static void ngx_http_vconv_events_cleanup(void *data);
static void ngx_http_vconv_events_writer(ngx_http_request_t *r);
static ngx_int_t ngx_http_vconv_events_drain(ngx_http_request_t *r);


static u_char  ngx_http_vconv_sse_type[] = "text/event-stream";


ngx_int_t
ngx_http_vconv_events_handler(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, ngx_str_t *id, char *jobs_uri)
{
    ngx_int_t                 rc;
    ngx_uint_t                version, queue_pos;
    vconv_job_info_t          info;
    ngx_pool_cleanup_t       *cln;
    ngx_http_vconv_job_t     *job;
    ngx_http_vconv_events_t  *e;

    if (ngx_http_vconv_store_get(z, id, &info, &version, &queue_pos)
        != NGX_OK)
    {
        return ngx_http_vconv_reply_not_found(r, "no such job");
    }

    e = ngx_pcalloc(r->pool, sizeof(ngx_http_vconv_events_t));
    if (e == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    e->id.data = ngx_pstrdup(r->pool, id);
    e->buf = ngx_calloc_buf(r->pool);
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (e->id.data == NULL || e->buf == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    e->id.len = id->len;
    e->request = r;
    e->zone = z;
    e->jobs_uri = jobs_uri;
    e->last_sent = ngx_current_msec;

    e->timer.handler = ngx_http_vconv_events_tick;
    e->timer.data = e;
    e->timer.log = r->connection->log;

    e->waiter.event.handler = ngx_http_vconv_events_job_done;
    e->waiter.event.data = e;
    e->waiter.event.log = r->connection->log;

    /* nothing may fire once the request and its pool are gone */
    cln->handler = ngx_http_vconv_events_cleanup;
    cln->data = e;

    job = ngx_http_vconv_job_find(id);

    if (job && !job->task_done) {
        ngx_http_vconv_job_wait(job, &e->waiter);
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = -1;

    r->headers_out.content_type.len = sizeof(ngx_http_vconv_sse_type) - 1;
    r->headers_out.content_type.data = ngx_http_vconv_sse_type;
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    /* X-Accel-Buffering: a front nginx must pass events on at once */

    if (ngx_http_vconv_reply_no_store(r) != NGX_OK
        || ngx_http_vconv_reply_header(r, "X-Accel-Buffering",
                                       (u_char *) "no", 2)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    rc = ngx_http_vconv_events_step(e, 1);

    if (rc != NGX_DONE) {
        /* the job was final already, or the stream failed */
        return rc;
    }

    /* a body still being discarded keeps its reader; writes catch a close */
    if (!r->discard_body) {
        r->read_event_handler = ngx_http_test_reading;
    }

    r->write_event_handler = ngx_http_vconv_events_writer;

    r->main->count++;

    return NGX_DONE;
}


/*
 * One look at the job.  NGX_DONE: the stream goes on (the timer is armed);
 * anything else ends the request with that code.
 */

static ngx_int_t
ngx_http_vconv_events_step(ngx_http_vconv_events_t *e, ngx_uint_t first)
{
    u_char              *p;
    ngx_int_t            rc;
    ngx_uint_t           version, queue_pos;
    vconv_job_info_t     info;
    ngx_http_request_t  *r;

    r = e->request;

    /* a slow reader gets the latest state once it drains, not a backlog */

    if (r->buffered || r->connection->buffered) {
        ngx_add_timer(&e->timer, NGX_HTTP_VCONV_EVENTS_POLL);
        return NGX_DONE;
    }

    if (ngx_http_vconv_store_get(e->zone, &e->id, &info, &version, &queue_pos)
        != NGX_OK)
    {
        /* deleted meanwhile; the id is of our shape, no escaping needed */

        if (ngx_http_vconv_events_reserve(e, 256 + e->id.len) != NGX_OK) {
            return NGX_ERROR;
        }

        p = ngx_sprintf(e->buf->start,
                        "event: canceled\ndata: {\"id\":\"%V\","
                        "\"status\":\"canceled\",\"error\":{"
                        "\"code\":\"canceled\","
                        "\"message\":\"the job was deleted\"}}\n\n",
                        &e->id);

        e->buf->pos = e->buf->start;
        e->buf->last = p;

        return ngx_http_vconv_events_output(e, 1);
    }

    if (vconv_status_final(info.status)) {
        return ngx_http_vconv_events_send(e, vconv_status_name(info.status),
                                          &info, 0, 1);
    }

    if (ngx_terminate || (ngx_exiting && !e->waiter.linked)) {
        /*
         * Another worker runs the job: the stream ends and EventSource
         * reconnects to a new worker; a job of this one holds the
         * exiting worker, and the stream waits for its end.
         */
        return ngx_http_vconv_events_end(e);
    }

    /*
     * A job's place moves when one ahead of it leaves, which does not
     * touch its own record: the place is compared too.  Both come from
     * one lookup and a binary search, nothing that walks the zone.
     */

    if (first || version != e->version || queue_pos != e->queue_pos) {
        e->version = version;
        e->queue_pos = queue_pos;

        rc = ngx_http_vconv_events_send(e, "progress", &info, queue_pos, 0);

    } else if (ngx_current_msec - e->last_sent
               >= NGX_HTTP_VCONV_EVENTS_KEEPALIVE)
    {
        if (ngx_http_vconv_events_reserve(e, 16) != NGX_OK) {
            return NGX_ERROR;
        }

        e->buf->pos = e->buf->start;
        e->buf->last = ngx_cpymem(e->buf->pos, ": keep-alive\n\n", 14);

        rc = ngx_http_vconv_events_output(e, 0);

    } else {
        rc = NGX_DONE;
    }

    if (rc != NGX_DONE) {
        return rc;
    }

    ngx_add_timer(&e->timer, NGX_HTTP_VCONV_EVENTS_POLL);

    return NGX_DONE;
}


/*
 * The stream reuses one buffer: it is only written to when nothing is
 * buffered, so a long job does not grow the request pool event by event.
 */

static ngx_int_t
ngx_http_vconv_events_reserve(ngx_http_vconv_events_t *e, size_t size)
{
    ngx_buf_t  *b;

    if (size <= e->size) {
        return NGX_OK;
    }

    if (size < NGX_HTTP_VCONV_EVENTS_BUF) {
        size = NGX_HTTP_VCONV_EVENTS_BUF;
    }

    b = e->buf;

    b->start = ngx_palloc(e->request->pool, size);
    if (b->start == NULL) {
        return NGX_ERROR;
    }

    b->end = b->start + size;
    b->pos = b->start;
    b->last = b->start;
    e->size = size;

    return NGX_OK;
}


/* "event: <name>\ndata: <job json>\n\n" */

static ngx_int_t
ngx_http_vconv_events_send(ngx_http_vconv_events_t *e, const char *event,
    vconv_job_info_t *info, ngx_uint_t queue_pos, ngx_uint_t last)
{
    u_char     *p;
    size_t      head, n;
    ngx_buf_t  *b;

    b = e->buf;
    head = sizeof("event: \ndata: ") - 1 + ngx_strlen(event);

    if (ngx_http_vconv_events_reserve(e, head + 3) != NGX_OK) {
        return NGX_ERROR;
    }

    for ( ;; ) {
        n = vconv_job_json(info, e->jobs_uri, (int) queue_pos,
                           (char *) b->start + head, e->size - head - 2);

        if (n < e->size - head - 2) {
            break;
        }

        if (ngx_http_vconv_events_reserve(e, head + n + 3) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    p = ngx_sprintf(b->start, "event: %s\ndata: ", event);
    p += n;
    *p++ = '\n';
    *p++ = '\n';

    b->pos = b->start;
    b->last = p;

    return ngx_http_vconv_events_output(e, last);
}


static ngx_int_t
ngx_http_vconv_events_output(ngx_http_vconv_events_t *e, ngx_uint_t last)
{
    ngx_int_t            rc;
    ngx_buf_t           *b;
    ngx_chain_t          out;
    ngx_http_request_t  *r;

    r = e->request;
    b = e->buf;

    b->memory = 1;
    b->flush = 1;
    b->last_buf = (last && r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_output_filter(r, &out);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    e->last_sent = ngx_current_msec;

    if (last) {
        /* finalizing hands anything still buffered to ngx_http_writer */
        return rc;
    }

    if (ngx_http_vconv_events_drain(r) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_DONE;
}


/* ends the stream without an event; e->buf may still be in flight */

static ngx_int_t
ngx_http_vconv_events_end(ngx_http_vconv_events_t *e)
{
    return ngx_http_send_special(e->request, NGX_HTTP_LAST);
}


static void
ngx_http_vconv_events_tick(ngx_event_t *ev)
{
    ngx_int_t                rc;
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_vconv_events_t  *e;

    e = ev->data;
    r = e->request;
    c = r->connection;

    if (c->error) {
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
        ngx_http_run_posted_requests(c);
        return;
    }

    rc = ngx_http_vconv_events_step(e, 0);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }

    ngx_http_run_posted_requests(c);
}


/* this worker's job ended: its terminal event goes out now */
static void
ngx_http_vconv_events_job_done(ngx_event_t *ev)
{
    ngx_http_vconv_events_t  *e = ev->data;

    if (e->timer.timer_set) {
        ngx_del_timer(&e->timer);
    }

    ngx_http_vconv_events_tick(&e->timer);
}


static void
ngx_http_vconv_events_cleanup(void *data)
{
    ngx_http_vconv_events_t  *e = data;

    if (e->timer.timer_set) {
        ngx_del_timer(&e->timer);
    }

    ngx_http_vconv_job_unwait(&e->waiter);
}


static void
ngx_http_vconv_events_writer(ngx_http_request_t *r)
{
    ngx_connection_t  *c;

    c = r->connection;

    if (c->write->timedout) {
        c->timedout = 1;
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "vconv: client timed out reading events");
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    if (ngx_http_output_filter(r, NULL) == NGX_ERROR
        || ngx_http_vconv_events_drain(r) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_ERROR);
    }
}


/* what ngx_http_writer does, minus finalizing: the stream goes on */

static ngx_int_t
ngx_http_vconv_events_drain(ngx_http_request_t *r)
{
    ngx_event_t               *wev;
    ngx_http_core_loc_conf_t  *clcf;

    wev = r->connection->write;
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (!(r->buffered || r->connection->buffered)) {
        if (wev->timer_set) {
            ngx_del_timer(wev);
        }

        return NGX_OK;
    }

    if (!wev->delayed && !wev->timer_set) {
        ngx_add_timer(wev, clcf->send_timeout);
    }

    return ngx_handle_write_event(wev, clcf->send_lowat);
}
