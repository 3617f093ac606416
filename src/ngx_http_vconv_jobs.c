
/*
 * vconv: the /api/jobs/{id}[/events|/output] handler and the HTTP helpers
 * the other handlers share (JSON answers, serving the converted file).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_vconv.h"


#define NGX_HTTP_VCONV_EVENTS_POLL       250
#define NGX_HTTP_VCONV_EVENTS_KEEPALIVE  15000
#define NGX_HTTP_VCONV_CANCEL_RETRY      100
#define NGX_HTTP_VCONV_CANCEL_WAIT       10000

#define NGX_HTTP_VCONV_JSON_SIZE         2048


typedef enum {
    NGX_HTTP_VCONV_JOB = 0,
    NGX_HTTP_VCONV_JOB_EVENTS,
    NGX_HTTP_VCONV_JOB_OUTPUT
} ngx_http_vconv_target_e;


/*
 * State of a request that outlives its content handler: an event stream,
 * or a DELETE waiting for a worker to let go of the job.  It is kept
 * apart from the module's request ctx, which belongs to the upload side.
 */
typedef struct {
    ngx_http_request_t         *request;
    ngx_event_t                 timer;
    ngx_http_vconv_zone_t      *zone;
    ngx_str_t                   id;
    char                       *jobs_uri;
    ngx_uint_t                  version;
    ngx_msec_t                  start;
    ngx_msec_t                  last_sent;
    ngx_buf_t                  *buf;
    size_t                      size;
} ngx_http_vconv_watch_t;


static ngx_int_t ngx_http_vconv_send_code(ngx_http_request_t *r,
    ngx_uint_t status, char *code, u_char *message, size_t len);
static ngx_int_t ngx_http_vconv_not_found(ngx_http_request_t *r,
    char *message);
static char *ngx_http_vconv_cstr(ngx_pool_t *pool, ngx_str_t *s);
static u_char *ngx_http_vconv_job_render(ngx_pool_t *pool,
    vconv_job_info_t *info, char *jobs_uri, ngx_uint_t queue_pos,
    size_t *len);
static ngx_int_t ngx_http_vconv_send_job(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, ngx_str_t *id, char *jobs_uri);
static ngx_int_t ngx_http_vconv_get_output(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, ngx_str_t *id);
static ngx_int_t ngx_http_vconv_send_no_content(ngx_http_request_t *r);
static ngx_http_vconv_watch_t *ngx_http_vconv_watch_create(
    ngx_http_request_t *r, ngx_http_vconv_zone_t *z, ngx_str_t *id,
    ngx_event_handler_pt handler);
static void ngx_http_vconv_watch_cleanup(void *data);

static ngx_int_t ngx_http_vconv_delete(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, ngx_str_t *id);
static ngx_int_t ngx_http_vconv_cancel(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, ngx_str_t *id);
static void ngx_http_vconv_delete_retry(ngx_event_t *ev);

static ngx_int_t ngx_http_vconv_events(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, ngx_str_t *id, char *jobs_uri);
static ngx_int_t ngx_http_vconv_events_step(ngx_http_vconv_watch_t *w,
    ngx_uint_t first);
static ngx_int_t ngx_http_vconv_events_reserve(ngx_http_vconv_watch_t *w,
    size_t size);
static ngx_int_t ngx_http_vconv_events_send(ngx_http_vconv_watch_t *w,
    const char *event, vconv_job_info_t *info, ngx_uint_t queue_pos,
    ngx_uint_t last);
static ngx_int_t ngx_http_vconv_events_output(ngx_http_vconv_watch_t *w,
    ngx_uint_t last);
static ngx_int_t ngx_http_vconv_events_end(ngx_http_vconv_watch_t *w);
static void ngx_http_vconv_events_tick(ngx_event_t *ev);
static void ngx_http_vconv_events_writer(ngx_http_request_t *r);
static ngx_int_t ngx_http_vconv_events_drain(ngx_http_request_t *r);


static u_char  ngx_http_vconv_json_type[] = "application/json; charset=utf-8";
static u_char  ngx_http_vconv_sse_type[] = "text/event-stream";


ngx_int_t
ngx_http_vconv_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *json, size_t len)
{
    ngx_str_t  type;

    type.data = ngx_http_vconv_json_type;
    type.len = sizeof(ngx_http_vconv_json_type) - 1;

    return ngx_http_vconv_send_body(r, status, &type, json, len);
}


/* every small answer of the module: no caching, no sniffing */
ngx_int_t
ngx_http_vconv_send_body(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *body, size_t len)
{
    u_char       *semi;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    semi = ngx_strlchr(type->data, type->data + type->len, ';');

    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = semi ? (size_t) (semi - type->data)
                                           : type->len;
    r->headers_out.content_type_lowcase = NULL;

    if (ngx_http_vconv_add_header(r, "Cache-Control",
                                  (u_char *) "no-store", 8)
        != NGX_OK
        || ngx_http_vconv_add_header(r, "X-Content-Type-Options",
                                     (u_char *) "nosniff", 7)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* allocated before the header goes out: no error page after it */

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = len ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_vconv_send_error(ngx_http_request_t *r, vconv_error_t *err)
{
    u_char  *json;
    size_t   len, n;

    len = NGX_HTTP_VCONV_JSON_SIZE;

    for ( ;; ) {
        json = ngx_pnalloc(r->pool, len);
        if (json == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        n = vconv_error_json(err, (char *) json, len);

        if (n < len) {
            break;
        }

        len = n + 1;
    }

    return ngx_http_vconv_send_json(r, vconv_error_http_status(err->code),
                                    json, n);
}


ngx_int_t
ngx_http_vconv_send_output(ngx_http_request_t *r, vconv_job_info_t *info)
{
    u_char                      *cd;
    size_t                       len, n;
    ngx_int_t                    rc;
    ngx_str_t                    id, path;
    ngx_buf_t                   *b;
    ngx_chain_t                  out;
    const vconv_format_t        *fmt;
    ngx_open_file_info_t         of;
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_vconv_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vconv_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    id.data = (u_char *) info->id;
    id.len = ngx_strnlen(id.data, VCONV_ID_MAX);

    fmt = NULL;

    if (info->out_format >= 0 && info->out_format < VCONV_FMT_COUNT) {
        fmt = vconv_format(info->out_format);
    }

    /* the id came from the zone, but it still names a path: check it */

    if (fmt == NULL || !vconv_id_valid((char *) id.data, id.len)) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "vconv: job \"%V\" has a bad id or format", &id);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    path.data = ngx_http_vconv_store_path(r->pool, vmcf, &id, "output");
    if (path.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    path.len = ngx_strlen(path.data);

    ngx_memzero(&of, sizeof(ngx_open_file_info_t));

    of.read_ahead = clcf->read_ahead;
    of.directio = clcf->directio;
    of.valid = clcf->open_file_cache_valid;
    of.min_uses = clcf->open_file_cache_min_uses;
    of.errors = clcf->open_file_cache_errors;
    of.events = clcf->open_file_cache_events;

    if (ngx_open_cached_file(clcf->open_file_cache, &path, &of, r->pool)
        != NGX_OK)
    {
        if (of.err == NGX_ENOENT || of.err == NGX_ENOTDIR) {
            /* the sweeper or a DELETE got there first */
            return ngx_http_vconv_not_found(r, "the output is gone");
        }

        ngx_log_error(NGX_LOG_CRIT, r->connection->log, of.err,
                      "vconv: %s \"%s\" failed", of.failed, path.data);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!of.is_file) {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, 0,
                      "vconv: \"%s\" is not a regular file", path.data);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = of.size;
    r->headers_out.last_modified_time = of.mtime;

    if (ngx_http_set_etag(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.content_type.data = (u_char *) fmt->mime;
    r->headers_out.content_type.len = ngx_strlen(fmt->mime);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    len = 512;

    for ( ;; ) {
        cd = ngx_pnalloc(r->pool, len);
        if (cd == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        n = vconv_content_disposition(info->in_name,
                                      ngx_strnlen((u_char *) info->in_name,
                                                  VCONV_NAME_MAX),
                                      fmt->ext, (char *) cd, len);
        if (n < len) {
            break;
        }

        len = n + 1;
    }

    if (ngx_http_vconv_add_header(r, "Content-Disposition", cd, n) != NGX_OK
        || ngx_http_vconv_add_header(r, "X-Content-Type-Options",
                                     (u_char *) "nosniff", 7)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r != r->main && of.size == 0) {
        return ngx_http_send_header(r);
    }

    /* the range and not_modified filters do 206 and 304 */
    r->allow_ranges = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->file = ngx_pcalloc(r->pool, sizeof(ngx_file_t));
    if (b->file == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->file_pos = 0;
    b->file_last = of.size;

    b->in_file = b->file_last ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    b->file->fd = of.fd;
    b->file->name = path;
    b->file->log = r->connection->log;
    b->file->directio = of.is_directio;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_vconv_jobs_handler(ngx_http_request_t *r)
{
    u_char                     *p, *last, *slash;
    char                       *jobs_uri;
    ngx_int_t                   rc;
    ngx_str_t                   id, rest;
    ngx_http_vconv_zone_t      *z;
    ngx_http_vconv_target_e     target;
    ngx_http_vconv_loc_conf_t  *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vconv_module);

    p = r->uri.data;
    last = p + r->uri.len;

    /* a regex location or a rewrite may bring other URIs here */

    if (r->uri.len < vlcf->jobs_uri.len
        || ngx_strncmp(p, vlcf->jobs_uri.data, vlcf->jobs_uri.len) != 0)
    {
        return ngx_http_vconv_not_found(r, "no such job");
    }

    p += vlcf->jobs_uri.len;

    if ((vlcf->jobs_uri.len == 0
         || vlcf->jobs_uri.data[vlcf->jobs_uri.len - 1] != '/')
        && p < last && *p == '/')
    {
        p++;
    }

    slash = ngx_strlchr(p, last, '/');

    id.data = p;
    id.len = (slash ? slash : last) - p;

    target = NGX_HTTP_VCONV_JOB;

    if (slash) {
        rest.data = slash + 1;
        rest.len = last - rest.data;

        if (rest.len == 6 && ngx_strncmp(rest.data, "events", 6) == 0) {
            target = NGX_HTTP_VCONV_JOB_EVENTS;

        } else if (rest.len == 6 && ngx_strncmp(rest.data, "output", 6) == 0)
        {
            target = NGX_HTTP_VCONV_JOB_OUTPUT;

        } else {
            return ngx_http_vconv_not_found(r, "no such resource");
        }
    }

    /* nothing else may ever reach a path */

    if (!vconv_id_valid((char *) id.data, id.len)) {
        return ngx_http_vconv_not_found(r, "no such job");
    }

    if (target == NGX_HTTP_VCONV_JOB) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_DELETE))) {
            return ngx_http_vconv_not_allowed(r, "GET, HEAD, DELETE");
        }

    } else if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_vconv_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    z = ngx_http_vconv_zone(r);
    if (z == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (target) {

    case NGX_HTTP_VCONV_JOB_OUTPUT:
        return ngx_http_vconv_get_output(r, z, &id);

    case NGX_HTTP_VCONV_JOB_EVENTS:
        jobs_uri = ngx_http_vconv_cstr(r->pool, &vlcf->jobs_uri);
        if (jobs_uri == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_vconv_events(r, z, &id, jobs_uri);

    default: /* NGX_HTTP_VCONV_JOB */

        if (r->method == NGX_HTTP_DELETE) {
            return ngx_http_vconv_delete(r, z, &id);
        }

        jobs_uri = ngx_http_vconv_cstr(r->pool, &vlcf->jobs_uri);
        if (jobs_uri == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_vconv_send_job(r, z, &id, jobs_uri);
    }
}


ngx_int_t
ngx_http_vconv_add_header(ngx_http_request_t *r, char *key, u_char *value,
    size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.len = ngx_strlen(key);
    h->key.data = (u_char *) key;
    h->value.len = len;
    h->value.data = value;
    h->lowcase_key = NULL;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


/*
 * For the answers vconv_err_e has no code for (not_found, not_ready,
 * method_not_allowed): the same JSON shape as vconv_error_json.
 */

static ngx_int_t
ngx_http_vconv_send_code(ngx_http_request_t *r, ngx_uint_t status,
    char *code, u_char *message, size_t len)
{
    char    *json;
    size_t   size, pos;

    /* every byte may grow to a six byte \u escape */
    size = sizeof("{\"error\":{\"code\":\"\",\"message\":\"\"}}")
           + ngx_strlen(code) + 6 * len;

    json = ngx_pnalloc(r->pool, size);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pos = ngx_sprintf((u_char *) json, "{\"error\":{\"code\":\"%s\","
                                       "\"message\":\"", code)
          - (u_char *) json;

    vconv_json_escape(json, size, &pos, (char *) message, len);

    if (pos + sizeof("\"}}") > size) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pos = ngx_cpymem(json + pos, "\"}}", 3) - (u_char *) json;

    return ngx_http_vconv_send_json(r, status, (u_char *) json, pos);
}


static ngx_int_t
ngx_http_vconv_not_found(ngx_http_request_t *r, char *message)
{
    return ngx_http_vconv_send_code(r, NGX_HTTP_NOT_FOUND, "not_found",
                                    (u_char *) message, ngx_strlen(message));
}


ngx_int_t
ngx_http_vconv_not_allowed(ngx_http_request_t *r, char *allow)
{
    if (ngx_http_vconv_add_header(r, "Allow", (u_char *) allow,
                                  ngx_strlen(allow))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_vconv_send_code(r, NGX_HTTP_NOT_ALLOWED,
                                    "method_not_allowed",
                                    (u_char *) "method not allowed", 18);
}


static char *
ngx_http_vconv_cstr(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    *ngx_cpymem(p, s->data, s->len) = '\0';

    return (char *) p;
}


static u_char *
ngx_http_vconv_job_render(ngx_pool_t *pool, vconv_job_info_t *info,
    char *jobs_uri, ngx_uint_t queue_pos, size_t *len)
{
    u_char  *json;
    size_t   size, n;

    size = NGX_HTTP_VCONV_JSON_SIZE;

    for ( ;; ) {
        json = ngx_pnalloc(pool, size);
        if (json == NULL) {
            return NULL;
        }

        n = vconv_job_json(info, jobs_uri, (int) queue_pos, (char *) json,
                           size);
        if (n < size) {
            *len = n;
            return json;
        }

        size = n + 1;
    }
}


static ngx_int_t
ngx_http_vconv_send_job(ngx_http_request_t *r, ngx_http_vconv_zone_t *z,
    ngx_str_t *id, char *jobs_uri)
{
    u_char            *json;
    size_t             len;
    ngx_uint_t         version, queue_pos;
    vconv_job_info_t   info;

    if (ngx_http_vconv_store_get(z, id, &info, &version, &queue_pos)
        != NGX_OK)
    {
        return ngx_http_vconv_not_found(r, "no such job");
    }

    json = ngx_http_vconv_job_render(r->pool, &info, jobs_uri, queue_pos,
                                     &len);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_vconv_send_json(r, NGX_HTTP_OK, json, len);
}


static ngx_int_t
ngx_http_vconv_get_output(ngx_http_request_t *r, ngx_http_vconv_zone_t *z,
    ngx_str_t *id)
{
    u_char            *p;
    u_char             msg[128];
    ngx_uint_t         version, queue_pos;
    vconv_job_info_t   info;

    if (ngx_http_vconv_store_get(z, id, &info, &version, &queue_pos)
        != NGX_OK)
    {
        return ngx_http_vconv_not_found(r, "no such job");
    }

    if (info.status == VCONV_JOB_DONE) {
        return ngx_http_vconv_send_output(r, &info);
    }

    if (info.status == VCONV_JOB_FAILED) {
        p = ngx_snprintf(msg, sizeof(msg), "job is failed (%s)",
                         vconv_error_name(info.err_code));

    } else {
        p = ngx_snprintf(msg, sizeof(msg), "job is %s",
                         vconv_status_name(info.status));
    }

    return ngx_http_vconv_send_code(r, NGX_HTTP_CONFLICT, "not_ready",
                                    msg, p - msg);
}


static ngx_int_t
ngx_http_vconv_send_no_content(ngx_http_request_t *r)
{
    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    return ngx_http_send_header(r);
}


static ngx_http_vconv_watch_t *
ngx_http_vconv_watch_create(ngx_http_request_t *r, ngx_http_vconv_zone_t *z,
    ngx_str_t *id, ngx_event_handler_pt handler)
{
    ngx_pool_cleanup_t      *cln;
    ngx_http_vconv_watch_t  *w;

    w = ngx_pcalloc(r->pool, sizeof(ngx_http_vconv_watch_t));
    if (w == NULL) {
        return NULL;
    }

    w->id.data = ngx_pnalloc(r->pool, id->len);
    if (w->id.data == NULL) {
        return NULL;
    }

    w->id.len = ngx_cpymem(w->id.data, id->data, id->len) - w->id.data;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    w->request = r;
    w->zone = z;
    w->start = ngx_current_msec;
    w->last_sent = ngx_current_msec;

    w->timer.handler = handler;
    w->timer.data = w;
    w->timer.log = r->connection->log;

    /* nothing may fire once the request and its pool are gone */
    cln->handler = ngx_http_vconv_watch_cleanup;
    cln->data = w;

    return w;
}


static void
ngx_http_vconv_watch_cleanup(void *data)
{
    ngx_http_vconv_watch_t  *w = data;

    if (w->timer.timer_set) {
        ngx_del_timer(&w->timer);
    }
}


static ngx_int_t
ngx_http_vconv_delete(ngx_http_request_t *r, ngx_http_vconv_zone_t *z,
    ngx_str_t *id)
{
    ngx_int_t                rc;
    ngx_http_vconv_watch_t  *w;

    rc = ngx_http_vconv_cancel(r, z, id);

    if (rc == NGX_DECLINED) {
        return ngx_http_vconv_not_found(r, "no such job");
    }

    if (rc != NGX_AGAIN) {
        return rc;
    }

    /* a transcode is on it: it stops within a second, poll till then */

    w = ngx_http_vconv_watch_create(r, z, id, ngx_http_vconv_delete_retry);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a client that gives up ends the wait; the cancel stays asked */
    if (!r->discard_body) {
        r->read_event_handler = ngx_http_test_reading;
    }

    ngx_add_timer(&w->timer, NGX_HTTP_VCONV_CANCEL_RETRY);

    r->main->count++;

    return NGX_DONE;
}


/* NGX_DECLINED: unknown job, NGX_AGAIN: still running, else the answer */

static ngx_int_t
ngx_http_vconv_cancel(ngx_http_request_t *r, ngx_http_vconv_zone_t *z,
    ngx_str_t *id)
{
    char                        *cid;
    ngx_int_t                    rc;
    ngx_http_vconv_main_conf_t  *vmcf;

    rc = ngx_http_vconv_store_cancel(z, id);

    if (rc == NGX_DECLINED || rc == NGX_AGAIN) {
        return rc;
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vconv_module);

    cid = ngx_http_vconv_cstr(r->pool, id);
    if (cid == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_vconv_store_rmdir(vmcf, cid, r->connection->log);
    ngx_http_vconv_zone_remove(z, id);

    return ngx_http_vconv_send_no_content(r);
}


static void
ngx_http_vconv_delete_retry(ngx_event_t *ev)
{
    ngx_int_t                rc;
    vconv_error_t            err;
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_vconv_watch_t  *w;

    w = ev->data;
    r = w->request;
    c = r->connection;

    rc = ngx_http_vconv_cancel(r, w->zone, &w->id);

    if (rc == NGX_DECLINED) {
        /* the owning worker removed it */
        rc = ngx_http_vconv_send_no_content(r);

    } else if (rc == NGX_AGAIN) {

        if (ngx_current_msec - w->start < NGX_HTTP_VCONV_CANCEL_WAIT) {
            ngx_add_timer(&w->timer, NGX_HTTP_VCONV_CANCEL_RETRY);
            return;
        }

        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "vconv: job \"%V\" did not stop within %M ms",
                      &w->id, (ngx_msec_t) NGX_HTTP_VCONV_CANCEL_WAIT);

        vconv_error_set(&err, VCONV_E_INTERNAL,
                        "the job did not stop in time; it is still "
                        "marked for cancellation");

        rc = ngx_http_vconv_send_error(r, &err);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_vconv_events(ngx_http_request_t *r, ngx_http_vconv_zone_t *z,
    ngx_str_t *id, char *jobs_uri)
{
    ngx_int_t                rc;
    ngx_uint_t               version, queue_pos;
    vconv_job_info_t         info;
    ngx_http_vconv_watch_t  *w;

    if (ngx_http_vconv_store_get(z, id, &info, &version, &queue_pos)
        != NGX_OK)
    {
        return ngx_http_vconv_not_found(r, "no such job");
    }

    w = ngx_http_vconv_watch_create(r, z, id, ngx_http_vconv_events_tick);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w->jobs_uri = jobs_uri;

    w->buf = ngx_calloc_buf(r->pool);
    if (w->buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = -1;

    r->headers_out.content_type.len = sizeof(ngx_http_vconv_sse_type) - 1;
    r->headers_out.content_type.data = ngx_http_vconv_sse_type;
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    /* X-Accel-Buffering: a front nginx must pass events on at once */

    if (ngx_http_vconv_add_header(r, "Cache-Control",
                                  (u_char *) "no-store", 8)
        != NGX_OK
        || ngx_http_vconv_add_header(r, "X-Accel-Buffering",
                                     (u_char *) "no", 2)
           != NGX_OK
        || ngx_http_vconv_add_header(r, "X-Content-Type-Options",
                                     (u_char *) "nosniff", 7)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    rc = ngx_http_vconv_events_step(w, 1);

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
ngx_http_vconv_events_step(ngx_http_vconv_watch_t *w, ngx_uint_t first)
{
    u_char              *p;
    ngx_int_t            rc;
    ngx_uint_t           version, queue_pos;
    vconv_job_info_t     info;
    ngx_http_request_t  *r;

    r = w->request;

    if (ngx_exiting || ngx_terminate) {
        /* let a reload finish; EventSource reconnects by itself */
        return ngx_http_vconv_events_end(w);
    }

    /* a slow reader gets the latest state once it drains, not a backlog */

    if (r->buffered || r->connection->buffered) {
        ngx_add_timer(&w->timer, NGX_HTTP_VCONV_EVENTS_POLL);
        return NGX_DONE;
    }

    if (ngx_http_vconv_store_get(w->zone, &w->id, &info, &version, &queue_pos)
        != NGX_OK)
    {
        /* deleted meanwhile; the id is of our shape, no escaping needed */

        if (ngx_http_vconv_events_reserve(w, 256 + w->id.len) != NGX_OK) {
            return NGX_ERROR;
        }

        p = ngx_sprintf(w->buf->start,
                        "event: canceled\ndata: {\"id\":\"%V\","
                        "\"status\":\"canceled\",\"error\":{"
                        "\"code\":\"canceled\","
                        "\"message\":\"the job was deleted\"}}\n\n",
                        &w->id);

        w->buf->pos = w->buf->start;
        w->buf->last = p;

        return ngx_http_vconv_events_output(w, 1);
    }

    if (vconv_status_final(info.status)) {
        return ngx_http_vconv_events_send(w, vconv_status_name(info.status),
                                          &info, 0, 1);
    }

    if (first || version != w->version) {
        w->version = version;

        rc = ngx_http_vconv_events_send(w, "progress", &info, queue_pos, 0);

    } else if (ngx_current_msec - w->last_sent
               >= NGX_HTTP_VCONV_EVENTS_KEEPALIVE)
    {
        if (ngx_http_vconv_events_reserve(w, 16) != NGX_OK) {
            return NGX_ERROR;
        }

        w->buf->pos = w->buf->start;
        w->buf->last = ngx_cpymem(w->buf->pos, ": keep-alive\n\n", 14);

        rc = ngx_http_vconv_events_output(w, 0);

    } else {
        rc = NGX_DONE;
    }

    if (rc != NGX_DONE) {
        return rc;
    }

    ngx_add_timer(&w->timer, NGX_HTTP_VCONV_EVENTS_POLL);

    return NGX_DONE;
}


/*
 * The stream reuses one buffer: it is only written to when nothing is
 * buffered, so a long job does not grow the request pool event by event.
 */

static ngx_int_t
ngx_http_vconv_events_reserve(ngx_http_vconv_watch_t *w, size_t size)
{
    ngx_buf_t  *b;

    if (size <= w->size) {
        return NGX_OK;
    }

    if (size < NGX_HTTP_VCONV_JSON_SIZE) {
        size = NGX_HTTP_VCONV_JSON_SIZE;
    }

    b = w->buf;

    b->start = ngx_palloc(w->request->pool, size);
    if (b->start == NULL) {
        return NGX_ERROR;
    }

    b->end = b->start + size;
    b->pos = b->start;
    b->last = b->start;
    w->size = size;

    return NGX_OK;
}


/* "event: <name>\ndata: <job json>\n\n" */

static ngx_int_t
ngx_http_vconv_events_send(ngx_http_vconv_watch_t *w, const char *event,
    vconv_job_info_t *info, ngx_uint_t queue_pos, ngx_uint_t last)
{
    u_char     *p;
    size_t      head, n;
    ngx_buf_t  *b;

    b = w->buf;
    head = sizeof("event: \ndata: ") - 1 + ngx_strlen(event);

    if (ngx_http_vconv_events_reserve(w, head + 3) != NGX_OK) {
        return NGX_ERROR;
    }

    for ( ;; ) {
        n = vconv_job_json(info, w->jobs_uri, (int) queue_pos,
                           (char *) b->start + head, w->size - head - 2);

        if (n < w->size - head - 2) {
            break;
        }

        if (ngx_http_vconv_events_reserve(w, head + n + 3) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    p = ngx_sprintf(b->start, "event: %s\ndata: ", event);
    p += n;
    *p++ = '\n';
    *p++ = '\n';

    b->pos = b->start;
    b->last = p;

    return ngx_http_vconv_events_output(w, last);
}


static ngx_int_t
ngx_http_vconv_events_output(ngx_http_vconv_watch_t *w, ngx_uint_t last)
{
    ngx_int_t            rc;
    ngx_buf_t           *b;
    ngx_chain_t          out;
    ngx_http_request_t  *r;

    r = w->request;
    b = w->buf;

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

    w->last_sent = ngx_current_msec;

    if (last) {
        /* finalizing hands anything still buffered to ngx_http_writer */
        return rc;
    }

    if (ngx_http_vconv_events_drain(r) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_DONE;
}


/* ends the stream without an event; w->buf may still be in flight */

static ngx_int_t
ngx_http_vconv_events_end(ngx_http_vconv_watch_t *w)
{
    return ngx_http_send_special(w->request, NGX_HTTP_LAST);
}


static void
ngx_http_vconv_events_tick(ngx_event_t *ev)
{
    ngx_int_t                rc;
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_vconv_watch_t  *w;

    w = ev->data;
    r = w->request;
    c = r->connection;

    if (c->error) {
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
        ngx_http_run_posted_requests(c);
        return;
    }

    rc = ngx_http_vconv_events_step(w, 0);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }

    ngx_http_run_posted_requests(c);
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
