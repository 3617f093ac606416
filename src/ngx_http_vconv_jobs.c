/*
 * vconv: the /api/jobs/{id}[/events|/output] handler: the job JSON, the
 * converted file, DELETE; the event stream is ngx_http_vconv_events.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_vconv.h"


#define NGX_HTTP_VCONV_CANCEL_RETRY      100
#define NGX_HTTP_VCONV_CANCEL_WAIT       10000


typedef enum {
    NGX_HTTP_VCONV_JOB = 0,
    NGX_HTTP_VCONV_JOB_EVENTS,
    NGX_HTTP_VCONV_JOB_OUTPUT,
    NGX_HTTP_VCONV_JOB_SPRITE,         /* output/sprite: the first, a sprite */
    NGX_HTTP_VCONV_JOB_VTT,            /* output/sprite.vtt */
    NGX_HTTP_VCONV_JOB_ZIP             /* outputs.zip */
} ngx_http_vconv_target_e;


/* a DELETE waiting for the worker that runs the job to let go of it */
typedef struct {
    ngx_http_request_t         *request;
    ngx_event_t                 timer;
    ngx_http_vconv_zone_t      *zone;
    ngx_str_t                   id;
    ngx_msec_t                  start;
} ngx_http_vconv_jobs_delete_t;


static char *ngx_http_vconv_jobs_cstr(ngx_pool_t *pool, ngx_str_t *s);
static ngx_int_t ngx_http_vconv_jobs_get(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, ngx_str_t *id, char *jobs_uri);
static ngx_int_t ngx_http_vconv_jobs_output_name(ngx_http_request_t *r,
    vconv_job_info_t *info, ngx_str_t *name);
static ngx_int_t ngx_http_vconv_jobs_output_hls(ngx_http_request_t *r,
    vconv_job_info_t *info, ngx_str_t *name);
static ngx_uint_t ngx_http_vconv_jobs_sprite(vconv_job_info_t *info);
static ngx_int_t ngx_http_vconv_jobs_output(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, ngx_str_t *id, ngx_http_vconv_target_e target,
    ngx_str_t *name);
static ngx_int_t ngx_http_vconv_jobs_delete(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, ngx_str_t *id);
static ngx_int_t ngx_http_vconv_jobs_cancel(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, ngx_str_t *id);
static void ngx_http_vconv_jobs_delete_retry(ngx_event_t *ev);
static void ngx_http_vconv_jobs_delete_cleanup(void *data);


ngx_int_t
ngx_http_vconv_jobs_handler(ngx_http_request_t *r)
{
    u_char                     *p, *last, *slash;
    char                       *jobs_uri;
    ngx_int_t                   rc;
    ngx_str_t                   id, rest, name;
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
        return ngx_http_vconv_reply_not_found(r, "no such job");
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
    ngx_str_null(&name);

    if (slash) {
        rest.data = slash + 1;
        rest.len = last - rest.data;

        if (rest.len == 6 && ngx_strncmp(rest.data, "events", 6) == 0) {
            target = NGX_HTTP_VCONV_JOB_EVENTS;

        } else if (rest.len == 6 && ngx_strncmp(rest.data, "output", 6) == 0)
        {
            target = NGX_HTTP_VCONV_JOB_OUTPUT;

        } else if (rest.len == 13
                   && ngx_strncmp(rest.data, "output/sprite", 13) == 0)
        {
            target = NGX_HTTP_VCONV_JOB_SPRITE;

        } else if (rest.len == 17
                   && ngx_strncmp(rest.data, "output/sprite.vtt", 17) == 0)
        {
            target = NGX_HTTP_VCONV_JOB_VTT;

        } else if (rest.len > 7 && ngx_strncmp(rest.data, "output/", 7) == 0)
        {
            /* a list of formats: /output/NAME, NAME one of the job's */
            target = NGX_HTTP_VCONV_JOB_OUTPUT;
            name.data = rest.data + 7;
            name.len = rest.len - 7;

        } else if (rest.len == 11
                   && ngx_strncmp(rest.data, "outputs.zip", 11) == 0)
        {
            target = NGX_HTTP_VCONV_JOB_ZIP;

        } else {
            return ngx_http_vconv_reply_not_found(r, "no such resource");
        }
    }

    /* nothing else may ever reach a path */

    if (!vconv_id_valid((char *) id.data, id.len)) {
        return ngx_http_vconv_reply_not_found(r, "no such job");
    }

    if (target == NGX_HTTP_VCONV_JOB) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_DELETE))) {
            return ngx_http_vconv_reply_not_allowed(r, "GET, HEAD, DELETE");
        }

    } else if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_vconv_reply_not_allowed(r, "GET, HEAD");
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
    case NGX_HTTP_VCONV_JOB_SPRITE:
    case NGX_HTTP_VCONV_JOB_VTT:
    case NGX_HTTP_VCONV_JOB_ZIP:
        return ngx_http_vconv_jobs_output(r, z, &id, target, &name);

    case NGX_HTTP_VCONV_JOB_EVENTS:
        jobs_uri = ngx_http_vconv_jobs_cstr(r->pool, &vlcf->jobs_uri);
        if (jobs_uri == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_vconv_events_handler(r, z, &id, jobs_uri);

    default: /* NGX_HTTP_VCONV_JOB */

        if (r->method == NGX_HTTP_DELETE) {
            return ngx_http_vconv_jobs_delete(r, z, &id);
        }

        jobs_uri = ngx_http_vconv_jobs_cstr(r->pool, &vlcf->jobs_uri);
        if (jobs_uri == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_vconv_jobs_get(r, z, &id, jobs_uri);
    }
}


static char *
ngx_http_vconv_jobs_cstr(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    *ngx_cpymem(p, s->data, s->len) = '\0';

    return (char *) p;
}


static ngx_int_t
ngx_http_vconv_jobs_get(ngx_http_request_t *r, ngx_http_vconv_zone_t *z,
    ngx_str_t *id, char *jobs_uri)
{
    u_char            *json;
    size_t             len;
    ngx_uint_t         version, queue_pos;
    vconv_job_info_t   info;

    if (ngx_http_vconv_store_get(z, id, &info, &version, &queue_pos)
        != NGX_OK)
    {
        return ngx_http_vconv_reply_not_found(r, "no such job");
    }

    json = ngx_http_vconv_reply_job_json(r->pool, &info, jobs_uri, queue_pos,
                                         &len);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_vconv_reply_json(r, NGX_HTTP_OK, json, len);
}


static ngx_int_t
ngx_http_vconv_jobs_output(ngx_http_request_t *r, ngx_http_vconv_zone_t *z,
    ngx_str_t *id, ngx_http_vconv_target_e target, ngx_str_t *name)
{
    u_char            *p;
    u_char             msg[128];
    ngx_uint_t         version, queue_pos;
    vconv_job_info_t   info;

    if (ngx_http_vconv_store_get(z, id, &info, &version, &queue_pos)
        != NGX_OK)
    {
        return ngx_http_vconv_reply_not_found(r, "no such job");
    }

    if (name->len == 0 && target == NGX_HTTP_VCONV_JOB_OUTPUT
        && info.nouts > 0 && info.outs_rung[0] > 0)
    {
        /* hls first: /output is its master playlist */
        ngx_str_set(name, "hls");
    }

    if (name->len > 0) {
        return ngx_http_vconv_jobs_output_name(r, &info, name);
    }

    if (target == NGX_HTTP_VCONV_JOB_SPRITE
        && info.out_format != VCONV_FMT_SPRITE)
    {
        ngx_str_set(name, "sprite");
        return ngx_http_vconv_jobs_output_name(r, &info, name);
    }

    if (info.status == VCONV_JOB_DONE) {
        switch (target) {

        case NGX_HTTP_VCONV_JOB_ZIP:
            return ngx_http_vconv_zip_handler(r, &info);

        case NGX_HTTP_VCONV_JOB_SPRITE:
        case NGX_HTTP_VCONV_JOB_VTT:
            if (!ngx_http_vconv_jobs_sprite(&info)) {
                return ngx_http_vconv_reply_not_found(r, "no such output");
            }

            return target == NGX_HTTP_VCONV_JOB_VTT
                   ? ngx_http_vconv_zip_vtt(r, &info)
                   : ngx_http_vconv_reply_output(r, &info);

        default:
            return ngx_http_vconv_reply_output(r, &info);
        }
    }

    if (info.status == VCONV_JOB_FAILED) {
        p = ngx_snprintf(msg, sizeof(msg), "job is failed (%s)",
                         vconv_error_name(info.err_code));

    } else {
        p = ngx_snprintf(msg, sizeof(msg), "job is %s",
                         vconv_status_name(info.status));
    }

    return ngx_http_vconv_reply_code(r, NGX_HTTP_CONFLICT, "not_ready",
                                     msg, p - msg);
}


static ngx_int_t
ngx_http_vconv_jobs_delete(ngx_http_request_t *r, ngx_http_vconv_zone_t *z,
    ngx_str_t *id)
{
    ngx_int_t                      rc;
    ngx_pool_cleanup_t            *cln;
    ngx_http_vconv_jobs_delete_t  *d;

    rc = ngx_http_vconv_jobs_cancel(r, z, id);

    if (rc == NGX_DECLINED) {
        return ngx_http_vconv_reply_not_found(r, "no such job");
    }

    if (rc != NGX_AGAIN) {
        return rc;
    }

    /* a transcode is on it: it stops within a second, poll till then */

    d = ngx_pcalloc(r->pool, sizeof(ngx_http_vconv_jobs_delete_t));
    if (d == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    d->id.data = ngx_pstrdup(r->pool, id);
    if (d->id.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    d->id.len = id->len;
    d->request = r;
    d->zone = z;
    d->start = ngx_current_msec;

    d->timer.handler = ngx_http_vconv_jobs_delete_retry;
    d->timer.data = d;
    d->timer.log = r->connection->log;

    /* nothing may fire once the request and its pool are gone */
    cln->handler = ngx_http_vconv_jobs_delete_cleanup;
    cln->data = d;

    /* a client that gives up ends the wait; the cancel stays asked */
    if (!r->discard_body) {
        r->read_event_handler = ngx_http_test_reading;
    }

    ngx_add_timer(&d->timer, NGX_HTTP_VCONV_CANCEL_RETRY);

    r->main->count++;

    return NGX_DONE;
}


/* NGX_DECLINED: unknown job, NGX_AGAIN: still running, else the answer */

static ngx_int_t
ngx_http_vconv_jobs_cancel(ngx_http_request_t *r, ngx_http_vconv_zone_t *z,
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

    cid = ngx_http_vconv_jobs_cstr(r->pool, id);
    if (cid == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_vconv_store_rmdir(vmcf, cid, r->connection->log);
    ngx_http_vconv_zone_remove(z, id);

    return ngx_http_vconv_reply_no_content(r);
}


static void
ngx_http_vconv_jobs_delete_retry(ngx_event_t *ev)
{
    ngx_int_t                      rc;
    vconv_error_t                  err;
    ngx_connection_t              *c;
    ngx_http_request_t            *r;
    ngx_http_vconv_jobs_delete_t  *d;

    d = ev->data;
    r = d->request;
    c = r->connection;

    rc = ngx_http_vconv_jobs_cancel(r, d->zone, &d->id);

    if (rc == NGX_DECLINED) {
        /* the owning worker removed it */
        rc = ngx_http_vconv_reply_no_content(r);

    } else if (rc == NGX_AGAIN) {

        if (ngx_current_msec - d->start < NGX_HTTP_VCONV_CANCEL_WAIT) {
            ngx_add_timer(&d->timer, NGX_HTTP_VCONV_CANCEL_RETRY);
            return;
        }

        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "vconv: job \"%V\" did not stop within %M ms",
                      &d->id, (ngx_msec_t) NGX_HTTP_VCONV_CANCEL_WAIT);

        vconv_error_set(&err, VCONV_E_INTERNAL,
                        "the job did not stop in time; it is still "
                        "marked for cancellation");

        rc = ngx_http_vconv_reply_error(r, &err);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_vconv_jobs_delete_cleanup(void *data)
{
    ngx_http_vconv_jobs_delete_t  *d = data;

    if (d->timer.timer_set) {
        ngx_del_timer(&d->timer);
    }
}


/* a tus termination (ngx_http_vconv_tus.c): the job goes with it */
ngx_int_t
ngx_http_vconv_jobs_terminate(ngx_http_request_t *r, ngx_http_vconv_zone_t *z,
    ngx_str_t *id)
{
    ngx_int_t  rc;

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_vconv_jobs_delete(r, z, id);
}


/* /output/NAME: the job's output of that format's name, else 404 */
static ngx_int_t
ngx_http_vconv_jobs_output_name(ngx_http_request_t *r,
    vconv_job_info_t *info, ngx_str_t *name)
{
    int                    fmt;
    u_char                *p;
    u_char                 msg[128];
    ngx_int_t              i, n;
    const vconv_format_t  *f;

    if (name->len >= 3 && ngx_strncmp(name->data, "hls", 3) == 0
        && (name->len == 3 || name->data[3] == '/'))
    {
        return ngx_http_vconv_jobs_output_hls(r, info, name);
    }

    n = info->nouts > 1 ? info->nouts : 1;

    for (i = 0; i < n; i++) {
        fmt = info->nouts > 1 ? info->outs[i] : info->out_format;
        f = vconv_format((vconv_format_e) fmt);

        if (f != NULL && ngx_strlen(f->name) == name->len
            && ngx_strncmp(f->name, name->data, name->len) == 0)
        {
            break;
        }
    }

    if (i == n) {
        return ngx_http_vconv_reply_not_found(r, "no such output");
    }

    if (info->status == VCONV_JOB_DONE) {
        return ngx_http_vconv_reply_output_n(r, info, i);
    }

    if (info->status == VCONV_JOB_FAILED) {
        p = ngx_snprintf(msg, sizeof(msg), "job is failed (%s)",
                         vconv_error_name(info->err_code));

    } else {
        p = ngx_snprintf(msg, sizeof(msg), "job is %s",
                         vconv_status_name(info->status));
    }

    return ngx_http_vconv_reply_code(r, NGX_HTTP_CONFLICT, "not_ready",
                                     msg, p - msg);
}


/*
 * /output/hls/NAME: master.m3u8, or NNNp.m3u8 / NNNp.mp4 of one of the
 * job's rungs; nothing else names a file.  /output/hls is the master.
 */
static ngx_int_t
ngx_http_vconv_jobs_output_hls(ngx_http_request_t *r, vconv_job_info_t *info,
    ngx_str_t *name)
{
    u_char      *p, *last;
    ngx_int_t    h, i;
    ngx_str_t    file;
    const char  *mime;

    for (i = 0; i < info->nouts && i < VCONV_MAX_OUTPUTS; i++) {
        if (info->outs_rung[i] > 0) {
            break;
        }
    }

    if (i == info->nouts || i == VCONV_MAX_OUTPUTS) {
        return ngx_http_vconv_reply_not_found(r, "no such output");
    }

    if (info->status != VCONV_JOB_DONE) {
        return ngx_http_vconv_reply_code(r, NGX_HTTP_CONFLICT, "not_ready",
                                         (u_char *) "the job is not done",
                                         sizeof("the job is not done") - 1);
    }

    if (name->len <= 4) {
        ngx_str_set(&file, "master.m3u8");

    } else {
        file.data = name->data + 4;
        file.len = name->len - 4;
    }

    mime = "application/vnd.apple.mpegurl";

    if (file.len == 11 && ngx_strncmp(file.data, "master.m3u8", 11) == 0) {
        return ngx_http_vconv_reply_hls(r, info, file.data, file.len, mime);
    }

    /* NNNp.m3u8 or NNNp.mp4, NNN a rung's height */
    p = file.data;
    last = file.data + file.len;
    h = 0;

    while (p < last && *p >= '0' && *p <= '9' && h < 100000) {
        h = h * 10 + (*p++ - '0');
    }

    if (p == file.data || last - p < 5 || *p++ != 'p') {
        return ngx_http_vconv_reply_not_found(r, "no such file");
    }

    if (last - p == 5 && ngx_strncmp(p, ".m3u8", 5) == 0) {
        /* mime as above */

    } else if (last - p == 4 && ngx_strncmp(p, ".mp4", 4) == 0) {
        mime = "video/mp4";

    } else {
        return ngx_http_vconv_reply_not_found(r, "no such file");
    }

    for (i = 0; i < info->nouts && i < VCONV_MAX_OUTPUTS; i++) {
        if (info->outs_rung[i] == h) {
            return ngx_http_vconv_reply_hls(r, info, file.data, file.len,
                                            mime);
        }
    }

    return ngx_http_vconv_reply_not_found(r, "no such file");
}


/* a sprite among the job's outputs: it has output.sprite.vtt too */
static ngx_uint_t
ngx_http_vconv_jobs_sprite(vconv_job_info_t *info)
{
    int  i;

    if (info->out_format == VCONV_FMT_SPRITE) {
        return 1;
    }

    for (i = 0; i < info->nouts && i < VCONV_MAX_OUTPUTS; i++) {
        if (info->outs[i] == VCONV_FMT_SPRITE) {
            return 1;
        }
    }

    return 0;
}
