/*
 * vconv: POST/PUT /api/jobs.  Options and room are checked before the
 * body is read; the body is read unbuffered and appended to the job's
 * spool file as it arrives (a multipart body is parsed on the way), and
 * a raw upload's transcode starts with its first bytes.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/random.h>

#include "ngx_http_vconv.h"


/* spooled before a streaming upload asks for a slot */
#define NGX_HTTP_VCONV_START_BYTES  (64 * 1024)

/* vconv_min_upload_rate is the average over this many ms */
#define NGX_HTTP_VCONV_RATE_WINDOW  10000


static ngx_int_t ngx_http_vconv_upload_refuse(ngx_http_request_t *r,
    vconv_error_t *err);
static ngx_int_t ngx_http_vconv_upload_retry_after(ngx_http_request_t *r,
    time_t seconds);
static ngx_int_t ngx_http_vconv_upload_client(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, uint32_t *client, vconv_error_t *err);
static ngx_int_t ngx_http_vconv_upload_flag(ngx_http_vconv_ctx_t *ctx,
    const char *name, u_char *val, size_t vlen, ngx_uint_t set);
static void ngx_http_vconv_upload_abandon(ngx_http_vconv_ctx_t *ctx,
    ngx_http_vconv_job_t *job);
static ngx_int_t ngx_http_vconv_upload_output(ngx_http_request_t *r,
    ngx_http_vconv_ctx_t *ctx, vconv_job_info_t *info, u_char *loc,
    size_t n);
static void ngx_http_vconv_upload_forget(ngx_http_vconv_job_t *job);
static ngx_int_t ngx_http_vconv_upload_parse_args(ngx_http_request_t *r,
    ngx_http_vconv_ctx_t *ctx, vconv_job_info_t *info);
static ngx_int_t ngx_http_vconv_upload_option(ngx_http_vconv_ctx_t *ctx,
    vconv_job_info_t *info, u_char *key, size_t klen, u_char *val,
    size_t vlen);
static void ngx_http_vconv_upload_header_name(ngx_http_request_t *r,
    vconv_job_info_t *info);
static ngx_int_t ngx_http_vconv_upload_make_id(ngx_http_request_t *r,
    vconv_job_info_t *info);
static void ngx_http_vconv_upload_body_handler(ngx_http_request_t *r);
static void ngx_http_vconv_upload_process_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_vconv_upload_write_input(ngx_http_vconv_ctx_t *ctx,
    const u_char *p, size_t len);
static void ngx_http_vconv_upload_body_done(ngx_http_request_t *r);
static void ngx_http_vconv_upload_fail(ngx_http_request_t *r,
    ngx_int_t status, vconv_error_t *err);
static ngx_int_t ngx_http_vconv_upload_answer(ngx_http_request_t *r);
static void ngx_http_vconv_upload_job_done(ngx_event_t *ev);
static ngx_int_t ngx_http_vconv_upload_start(ngx_http_vconv_ctx_t *ctx);
static off_t ngx_http_vconv_upload_start_at(ngx_http_request_t *r);
static void ngx_http_vconv_upload_cleanup(void *data);
static void ngx_http_vconv_upload_watch_handler(ngx_event_t *ev);
static ngx_uint_t ngx_http_vconv_upload_too_slow(ngx_http_vconv_ctx_t *ctx,
    vconv_error_t *err);
static ngx_uint_t ngx_http_vconv_upload_stalled(ngx_http_vconv_ctx_t *ctx,
    vconv_error_t *err);
static int ngx_http_vconv_upload_mp_field(void *data, const char *name,
    size_t nlen, const char *value, size_t vlen, vconv_error_t *err);
static int ngx_http_vconv_upload_mp_file_begin(void *data,
    const char *filename, size_t len, vconv_error_t *err);
static int ngx_http_vconv_upload_mp_file_data(void *data, const uint8_t *p,
    size_t len, vconv_error_t *err);
static int ngx_http_vconv_upload_mp_file_end(void *data, vconv_error_t *err);


ngx_int_t
ngx_http_vconv_upload_handler(ngx_http_request_t *r)
{
    uint32_t                     client;
    ngx_int_t                    rc;
    ngx_uint_t                   waiting;
    off_t                        store_bytes;
    ngx_table_elt_t             *h;
    vconv_job_info_t             info;
    ngx_pool_cleanup_t          *cln;
    ngx_http_vconv_ctx_t        *ctx;
    ngx_http_vconv_job_t        *job;
    ngx_http_vconv_zone_t       *z;
    ngx_http_vconv_loc_conf_t   *vlcf;
    ngx_http_vconv_main_conf_t  *vmcf;

    if (!(r->method & (NGX_HTTP_POST|NGX_HTTP_PUT))) {
        return ngx_http_vconv_reply_not_allowed(r, "POST, PUT");
    }

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vconv_module);
    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vconv_module);
    z = ngx_http_vconv_zone(r);

    /*
     * No "100 Continue" for a request refused before its body is read
     * (as nginx itself does for a 413): a client that waits for it
     * would otherwise send the whole body to be dropped.  It is sent
     * when the body is asked for, below.
     */
    r->expect_tested = 1;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_vconv_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_vconv_module);

    ctx->pool = r->pool;
    ctx->vlcf = vlcf;

    ngx_memzero(&info, sizeof(vconv_job_info_t));
    info.in_duration = -1;

    ctx->spec = ngx_palloc(r->pool, sizeof(vconv_spec_t));
    if (ctx->spec == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    vconv_spec_init(ctx->spec);

    h = r->headers_in.content_type;

    if (h && h->value.len >= sizeof("multipart/form-data") - 1
        && ngx_strncasecmp(h->value.data, (u_char *) "multipart/form-data",
                           sizeof("multipart/form-data") - 1) == 0)
    {
        ctx->multipart_on = 1;
    }

    /* everything that can be refused is refused before the body is read */

    if (ngx_http_vconv_upload_parse_args(r, ctx, &info) != NGX_OK) {
        return ngx_http_vconv_upload_refuse(r, &ctx->err);
    }

    if (!ctx->multipart_on
        && (ngx_http_vconv_preset_apply(ctx) != NGX_OK
            || vconv_spec_finish(ctx->spec, (unsigned) vlcf->formats
                                 | VCONV_FMT_HLS_OK, &ctx->err)
               != VCONV_OK))
    {
        return ngx_http_vconv_upload_refuse(r, &ctx->err);
    }

    if (ctx->multipart_on) {
        ctx->multipart = ngx_pcalloc(r->pool, sizeof(vconv_multipart_t));
        if (ctx->multipart == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (vconv_multipart_init(ctx->multipart, (char *) h->value.data,
                                 h->value.len, &ctx->err)
            != VCONV_OK)
        {
            return ngx_http_vconv_upload_refuse(r, &ctx->err);
        }

        ctx->multipart->on_field = ngx_http_vconv_upload_mp_field;
        ctx->multipart->on_file_begin = ngx_http_vconv_upload_mp_file_begin;
        ctx->multipart->on_file_data = ngx_http_vconv_upload_mp_file_data;
        ctx->multipart->on_file_end = ngx_http_vconv_upload_mp_file_end;
        ctx->multipart->data = ctx;
    }

    if (ngx_http_vconv_upload_client(r, z, &client, &ctx->err) != NGX_OK) {
        return ngx_http_vconv_upload_refuse(r, &ctx->err);
    }

    ngx_http_vconv_zone_room(z, &waiting, &store_bytes);

    if (waiting >= vmcf->max_queue) {
        if (ngx_http_vconv_upload_retry_after(r, 5) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        (void) vconv_error_set(&ctx->err, VCONV_E_QUEUE_FULL,
                               "the queue is full (%u jobs waiting)",
                               (unsigned) waiting);
        return ngx_http_vconv_upload_refuse(r, &ctx->err);
    }

    if (vmcf->max_size
        && store_bytes + ngx_max(r->headers_in.content_length_n, 0)
           > vmcf->max_size)
    {
        (void) vconv_error_set(&ctx->err, VCONV_E_STORE_FULL,
                               "the store has no room for this upload");
        return ngx_http_vconv_upload_refuse(r, &ctx->err);
    }

    if (!ctx->name_set) {
        ngx_http_vconv_upload_header_name(r, &info);
    }

    if (ngx_http_vconv_upload_make_id(r, &info) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    info.status = VCONV_JOB_UPLOADING;
    info.created = ngx_time();
    vconv_job_outputs(&info, ctx->spec);
    info.pid = ngx_pid;

    job = ngx_http_vconv_job_create(r, z, &info, &ctx->err);
    if (job == NULL) {
        if (ctx->err.code == VCONV_E_ZONE_FULL
            && ngx_http_vconv_upload_retry_after(r,
                                       ngx_http_vconv_zone_retry_after(z))
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_vconv_upload_refuse(r, &ctx->err);
    }

    /* from here on the job ends once in the counters, whatever happens */
    ngx_http_vconv_zone_accept(z, job->node, client);

    job->spec = *ctx->spec;
    job->wait = ctx->wait;
    job->sched_class = vlcf->priority_class;
    ctx->job = job;

    if (!ctx->multipart_on && r->headers_in.content_length_n > 0) {
        vconv_reader_expect(&job->reader, r->headers_in.content_length_n);
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_http_vconv_job_release(job);
        ctx->job = NULL;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_vconv_upload_cleanup;
    cln->data = ctx;

    /* the job's end: the answer to wait=1, or an error while uploading */
    ctx->waiter.event.handler = ngx_http_vconv_upload_job_done;
    ctx->waiter.event.data = r;
    ctx->waiter.event.log = r->connection->log;
    ngx_http_vconv_job_wait(job, &ctx->waiter);

    /*
     * A DELETE from any worker only sets a flag in the zone; a stalled
     * upload brings no event that would look at it, so a timer does.
     */
    ctx->watch.handler = ngx_http_vconv_upload_watch_handler;
    ctx->watch.data = r;
    ctx->watch.log = r->connection->log;
    ctx->watch.cancelable = 1;
    ngx_add_timer(&ctx->watch, 500);

    r->request_body_no_buffering = 1;

    /* the body is wanted now: a client that waits may have its 100 */
    r->expect_tested = 0;

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_vconv_upload_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* an upload refused before it became a job: counted, then answered */
static ngx_int_t
ngx_http_vconv_upload_refuse(ngx_http_request_t *r, vconv_error_t *err)
{
    ngx_http_vconv_zone_t  *z;

    z = ngx_http_vconv_zone(r);

    ngx_http_vconv_zone_count_error(z, err->code);

    return ngx_http_vconv_reply_error(r, err);
}


static ngx_int_t
ngx_http_vconv_upload_retry_after(ngx_http_request_t *r, time_t seconds)
{
    u_char  *p;
    size_t   len;

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    len = ngx_sprintf(p, "%T", ngx_max(seconds, 1)) - p;

    return ngx_http_vconv_reply_header(r, "Retry-After", p, len);
}


/*
 * vconv_max_jobs_per_client: the client's key (the address, or the
 * location's key=$variable) as a hash, and whether it may start one
 * more job.  The count and the job's record are not made under one
 * lock: two workers taking the same client's uploads at the same moment
 * may let it have one job more than the bound each.  An empty key is
 * not bounded (e.g. a key from a header a client did not send).
 */
static ngx_int_t
ngx_http_vconv_upload_client(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, uint32_t *client, vconv_error_t *err)
{
    ngx_str_t                   key;
    ngx_uint_t                  n;
    ngx_http_vconv_loc_conf_t  *vlcf;

    *client = 0;
    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vconv_module);

    if (vlcf->max_per_client == 0) {
        return NGX_OK;
    }

    if (vlcf->client_key) {
        if (ngx_http_complex_value(r, vlcf->client_key, &key) != NGX_OK) {
            (void) vconv_error_set(err, VCONV_E_NOMEM, "out of memory");
            return NGX_ERROR;
        }

    } else {
        key = r->connection->addr_text;
    }

    if (key.len == 0) {
        return NGX_OK;
    }

    /* 0 is "no client" */
    *client = ngx_crc32_long(key.data, key.len) | 1;

    n = ngx_http_vconv_zone_client_jobs(z, *client);

    if (n < vlcf->max_per_client) {
        return NGX_OK;
    }

    if (ngx_http_vconv_upload_retry_after(r, 5) != NGX_OK) {
        (void) vconv_error_set(err, VCONV_E_NOMEM, "out of memory");
        return NGX_ERROR;
    }

    (void) vconv_error_set(err, VCONV_E_TOO_MANY_JOBS,
                           "this client has %u jobs in flight already",
                           (unsigned) n);
    return NGX_ERROR;
}


static ngx_int_t
ngx_http_vconv_upload_parse_args(ngx_http_request_t *r,
    ngx_http_vconv_ctx_t *ctx, vconv_job_info_t *info)
{
    u_char  *p, *last, *amp, *eq, *key, *val, *dst;
    size_t   klen, vlen;

    p = r->args.data;
    last = p + r->args.len;

    while (p < last) {
        amp = ngx_strlchr(p, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        if (amp == p) {
            p++;
            continue;
        }

        eq = ngx_strlchr(p, amp, '=');
        if (eq == NULL) {
            eq = amp;
        }

        key = ngx_pnalloc(r->pool, (eq - p) + (amp - eq) + 2);
        if (key == NULL) {
            return NGX_ERROR;
        }

        /* "+" is a space in a query string */

        for (dst = p; dst < amp; dst++) {
            if (*dst == '+') {
                *dst = ' ';
            }
        }

        dst = key;
        ngx_unescape_uri(&dst, &p, eq - p, 0);
        klen = dst - key;

        val = dst;
        if (eq < amp) {
            p = eq + 1;
            ngx_unescape_uri(&dst, &p, amp - p, 0);
        }
        vlen = dst - val;

        if (ngx_http_vconv_upload_option(ctx, info, key, klen, val, vlen)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        p = amp;
    }

    return NGX_OK;
}


/* "wait" and "name" are the upload's own; the rest is the spec's */
static ngx_int_t
ngx_http_vconv_upload_option(ngx_http_vconv_ctx_t *ctx, vconv_job_info_t *info,
    u_char *key, size_t klen, u_char *val, size_t vlen)
{
    ngx_int_t  rc;

    if (klen == 4 && ngx_strncmp(key, "wait", 4) == 0) {
        rc = ngx_http_vconv_upload_flag(ctx, "wait", val, vlen,
                                        ctx->wait_set);
        ctx->wait_set = 1;
        ctx->wait = (rc == 1);
        return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
    }

    if (klen == 4 && ngx_strncmp(key, "keep", 4) == 0) {
        rc = ngx_http_vconv_upload_flag(ctx, "keep", val, vlen,
                                        ctx->keep_set);
        ctx->keep_set = 1;
        ctx->keep = (rc == 1);
        return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
    }

    if (klen == 4 && ngx_strncmp(key, "name", 4) == 0) {
        if (ctx->name_set) {
            (void) vconv_error_set(&ctx->err, VCONV_E_DUPLICATE_OPTION,
                                   "option 'name' is given more than once");
            return NGX_ERROR;
        }

        ngx_cpystrn((u_char *) ctx->name, val,
                    ngx_min(vlen + 1, sizeof(ctx->name)));
        ngx_memcpy(info->in_name, ctx->name, sizeof(info->in_name));
        ctx->name_set = 1;
        return NGX_OK;
    }

    rc = ngx_http_vconv_preset_option(ctx, key, klen, val, vlen);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (vconv_spec_set(ctx->spec, (char *) key, klen, (char *) val, vlen,
                       &ctx->err)
        != VCONV_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_vconv_upload_keep_option(ctx, key, klen, val, vlen);
}


/* wait=0|1, keep=0|1: 0 or 1, NGX_ERROR for a bad or repeated one */
static ngx_int_t
ngx_http_vconv_upload_flag(ngx_http_vconv_ctx_t *ctx, const char *name,
    u_char *val, size_t vlen, ngx_uint_t set)
{
    if (set) {
        (void) vconv_error_set(&ctx->err, VCONV_E_DUPLICATE_OPTION,
                               "option '%s' is given more than once", name);
        return NGX_ERROR;
    }

    if (vlen == 1 && (val[0] == '0' || val[0] == '1')) {
        return val[0] - '0';
    }

    (void) vconv_error_set(&ctx->err, VCONV_E_INVALID_VALUE,
                           "option '%s' must be 0 or 1", name);
    return NGX_ERROR;
}


/*
 * The options as "key=value\n" lines, the value escaped: what a new
 * worker rebuilds the spec from when an exiting one offers it the job.
 */
ngx_int_t
ngx_http_vconv_upload_keep_option(ngx_http_vconv_ctx_t *ctx, u_char *key,
    size_t klen, u_char *val, size_t vlen)
{
    u_char  *p;
    size_t   need, size;

    need = klen + 1 + vlen
           + 2 * ngx_escape_uri(NULL, val, vlen, NGX_ESCAPE_ARGS) + 1;

    if (ctx->options.len + need > ctx->options_size) {
        size = ngx_max(2 * ctx->options_size, ctx->options.len + need);
        size = ngx_max(size, 256);

        p = ngx_pnalloc(ctx->pool, size);
        if (p == NULL) {
            (void) vconv_error_set(&ctx->err, VCONV_E_NOMEM,
                                   "out of memory");
            return NGX_ERROR;
        }

        if (ctx->options.len) {
            ngx_memcpy(p, ctx->options.data, ctx->options.len);
        }

        ctx->options.data = p;
        ctx->options_size = size;
    }

    p = ngx_cpymem(ctx->options.data + ctx->options.len, key, klen);
    *p++ = '=';
    p = (u_char *) ngx_escape_uri(p, val, vlen, NGX_ESCAPE_ARGS);
    *p++ = '\n';

    ctx->options.len = p - ctx->options.data;

    return NGX_OK;
}


/* the job takes its own copy of the options: it may outlive the request */
static ngx_int_t
ngx_http_vconv_upload_start(ngx_http_vconv_ctx_t *ctx)
{
    ngx_http_vconv_job_t  *job;

    job = ctx->job;

    if (job->posted) {
        return NGX_OK;
    }

    job->options.data = ngx_pnalloc(job->pool, ctx->options.len + 1);
    if (job->options.data == NULL) {
        return NGX_ERROR;
    }

    job->options.len = ctx->options.len;

    if (ctx->options.len) {
        ngx_memcpy(job->options.data, ctx->options.data, ctx->options.len);
    }

    return ngx_http_vconv_job_start(job);
}


/*
 * A raw upload asks for a slot once this much is spooled (or all of a
 * smaller body): enough to keep the encoder busy, so that a trickling
 * upload holds neither a slot nor a pool thread.
 */
static off_t
ngx_http_vconv_upload_start_at(ngx_http_request_t *r)
{
    off_t  n;

    n = NGX_HTTP_VCONV_START_BYTES;

    if (r->headers_in.content_length_n > 0
        && r->headers_in.content_length_n < n)
    {
        n = r->headers_in.content_length_n;
    }

    return ngx_max(n, 1);
}


/* X-File-Name (URL-encoded), else Content-Disposition's filename */
static void
ngx_http_vconv_upload_header_name(ngx_http_request_t *r,
    vconv_job_info_t *info)
{
    u_char           *p, *last, *dst, *src;
    size_t            len;
    ngx_table_elt_t  *h;

    h = ngx_http_vconv_header_in(r, "X-File-Name");
    if (h && h->value.len) {
        dst = (u_char *) info->in_name;
        src = h->value.data;
        len = ngx_min(h->value.len, sizeof(info->in_name) - 1);

        ngx_unescape_uri(&dst, &src, len, 0);
        *dst = '\0';
        return;
    }

    h = ngx_http_vconv_header_in(r, "Content-Disposition");
    if (h == NULL) {
        return;
    }

    p = ngx_strlcasestrn(h->value.data, h->value.data + h->value.len,
                         (u_char *) "filename=\"", 10 - 1);
    if (p == NULL) {
        return;
    }

    p += 10;
    last = ngx_strlchr(p, h->value.data + h->value.len, '"');
    if (last == NULL) {
        return;
    }

    ngx_cpystrn((u_char *) info->in_name, p,
                ngx_min((size_t) (last - p) + 1, sizeof(info->in_name)));
}


static ngx_int_t
ngx_http_vconv_upload_make_id(ngx_http_request_t *r, vconv_job_info_t *info)
{
    u_char                      *p;
    u_char                       rnd[16];
    ngx_http_vconv_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vconv_module);

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd)) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                      "vconv: getrandom() failed");
        return NGX_ERROR;
    }

    p = (u_char *) info->id;

    if (vmcf->node.len) {
        p = ngx_sprintf(p, "%V-", &vmcf->node);
    }

    p = ngx_hex_dump(p, rnd, sizeof(rnd));
    *p = '\0';

    return NGX_OK;
}


static void
ngx_http_vconv_upload_body_handler(ngx_http_request_t *r)
{
    r->read_event_handler = ngx_http_vconv_upload_process_body;

    ngx_http_vconv_upload_process_body(r);
}


/*
 * Takes what nginx has read so far, hands it to the spool file (through
 * the multipart parser when the body is a form) and asks for more, until
 * nothing is ready; also the read event handler while the body arrives.
 * The buffers are given back at once, so the memory used is nginx's
 * client_body_buffer_size, whatever the body's size.
 */
static void
ngx_http_vconv_upload_process_body(ngx_http_request_t *r)
{
    size_t                       len;
    ngx_int_t                    rc;
    ngx_buf_t                   *b;
    ngx_chain_t                 *cl;
    vconv_error_t                err;
    ngx_http_vconv_ctx_t        *ctx;
    ngx_http_vconv_job_t        *job;
    ngx_http_request_body_t     *rb;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vconv_module);
    job = ctx->job;
    rb = r->request_body;

    if (ctx->done) {
        return;
    }

    for ( ;; ) {

        for (cl = rb->bufs; cl; cl = cl->next) {
            b = cl->buf;

            if (b->in_file) {
                ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                              "vconv: request body in a file");
                (void) vconv_error_set(&err, VCONV_E_INTERNAL,
                                       "unexpected request body buffer");
                ngx_http_vconv_upload_fail(r,
                                       NGX_HTTP_INTERNAL_SERVER_ERROR, &err);
                return;
            }

            len = b->last - b->pos;

            if (len == 0) {
                continue;
            }

            if (ctx->drain) {
                ctx->dropped += len;
                rc = NGX_OK;

            } else if (ctx->multipart_on) {
                rc = vconv_multipart_feed(ctx->multipart, b->pos, len,
                                          &ctx->err);
            } else {
                rc = ngx_http_vconv_upload_write_input(ctx, b->pos, len);
            }

            b->pos = b->last;

            if (rc != NGX_OK) {
                ngx_http_vconv_upload_fail(r, 0, &ctx->err);
                return;
            }
        }

        rb->bufs = NULL;

        if (job->node->cancel && !job->task_done) {
            (void) vconv_error_set(&err, VCONV_E_CANCELED,
                                   "the job was canceled");
            ngx_http_vconv_upload_fail(r, 0, &err);
            return;
        }

        if (!job->posted && !ctx->multipart_on
            && job->written >= ngx_http_vconv_upload_start_at(r)
            && ngx_http_vconv_upload_start(ctx) != NGX_OK)
        {
            (void) vconv_error_set(&err, VCONV_E_INTERNAL,
                                   "the transcode could not start");
            ngx_http_vconv_upload_fail(r, 0, &err);
            return;
        }

        if (!r->reading_body) {
            ngx_http_vconv_upload_body_done(r);
            return;
        }

        ngx_http_vconv_h2_window(r, &ctx->h2win);

        rc = ngx_http_read_unbuffered_request_body(r);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            (void) vconv_error_set(&err, VCONV_E_UPLOAD_ABORTED,
                                   "the upload did not complete");
            ngx_http_vconv_upload_fail(r, rc, &err);
            return;
        }

        if (rb->bufs == NULL && r->reading_body) {
            return;
        }
    }
}


static ngx_int_t
ngx_http_vconv_upload_write_input(ngx_http_vconv_ctx_t *ctx, const u_char *p,
    size_t len)
{
    ssize_t                      n;
    ngx_http_vconv_job_t        *job;
    ngx_http_vconv_zone_t       *z;
    ngx_http_vconv_main_conf_t  *vmcf;

    job = ctx->job;
    z = job->zone;
    vmcf = job->vmcf;

    if (vmcf->max_size && z->sh->store_bytes + (off_t) len > vmcf->max_size)
    {
        (void) vconv_error_set(&ctx->err, VCONV_E_STORE_FULL,
                               "the store has no room for this upload");
        return NGX_ERROR;
    }

    /* what the header says no conversion can take: the upload's answer */
    if (job->written == 0
        && vconv_reader_sniff(p, len, job->limits.input_formats, &ctx->err)
           != VCONV_OK)
    {
        return NGX_ERROR;
    }

    while (len) {
        n = write(job->wfd, p, len);

        if (n == -1) {
            if (ngx_errno == NGX_EINTR) {
                continue;
            }

            ngx_log_error(NGX_LOG_CRIT, job->log, ngx_errno,
                          "vconv: write \"%s\" failed", job->input);

            (void) vconv_error_set(&ctx->err,
                                   ngx_errno == NGX_ENOSPC
                                   ? VCONV_E_STORE_FULL : VCONV_E_IO,
                                   "the upload could not be stored");
            return NGX_ERROR;
        }

        p += n;
        len -= n;
        job->written += n;

        ngx_http_vconv_zone_input(z, job->node, n);
    }

    if (job->reader_ready) {
        vconv_reader_grow(&job->reader, job->written);
    }

    return NGX_OK;
}


static void
ngx_http_vconv_upload_body_done(ngx_http_request_t *r)
{
    vconv_error_t               err;
    ngx_http_vconv_ctx_t       *ctx;
    ngx_http_vconv_job_t       *job;
    ngx_http_vconv_loc_conf_t  *vlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vconv_module);
    job = ctx->job;
    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vconv_module);

    if (ctx->multipart_on) {
        if (vconv_multipart_finish(ctx->multipart, &ctx->err) != VCONV_OK) {
            ngx_http_vconv_upload_fail(r, 0, &ctx->err);
            return;
        }

        if (!ctx->file_seen) {
            (void) vconv_error_set(&err, VCONV_E_INVALID_VALUE,
                                   "the form has no \"file\" part");
            ngx_http_vconv_upload_fail(r, 0, &err);
            return;
        }

        /* fields after the file part count too */

        if (ngx_http_vconv_preset_apply(ctx) != NGX_OK
            || vconv_spec_finish(ctx->spec, (unsigned) vlcf->formats
                                 | VCONV_FMT_HLS_OK, &ctx->err)
               != VCONV_OK)
        {
            ngx_http_vconv_upload_fail(r, 0, &ctx->err);
            return;
        }

        job->spec = *ctx->spec;
        job->wait = ctx->wait;
        vconv_job_outputs(&job->info, ctx->spec);
        if (ctx->name_set) {
            ngx_cpystrn((u_char *) job->info.in_name,
                        (u_char *) ctx->name, sizeof(job->info.in_name));
        }
    }

    if (job->written == 0) {
        (void) vconv_error_set(&err, VCONV_E_UNSUPPORTED_INPUT,
                               "the upload is empty");
        ngx_http_vconv_upload_fail(r, 0, &err);
        return;
    }

    job->upload_done = 1;

    if (ctx->drain) {
        /* the record is final already: what was dropped is not in it */
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, job->log, 0,
                       "vconv: job %V: %O bytes after its end dropped",
                       &job->id, ctx->dropped);

        ctx->done = 1;
        ngx_http_finalize_request(r, ngx_http_vconv_upload_answer(r));
        return;
    }

    (void) ngx_close_file(job->wfd);
    job->wfd = NGX_INVALID_FILE;

    ngx_shmtx_lock(&job->zone->shpool->mutex);
    job->node->info.in_bytes = job->written;
    vconv_job_outputs(&job->node->info, &job->spec);
    ngx_memcpy(job->node->info.in_name, job->info.in_name,
               sizeof(job->info.in_name));
    job->node->version++;
    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    vconv_reader_end(&job->reader);

    if (!job->posted && ngx_http_vconv_upload_start(ctx) != NGX_OK) {
        (void) vconv_error_set(&err, VCONV_E_INTERNAL,
                               "the transcode could not start");
        ngx_http_vconv_upload_fail(r, 0, &err);
        return;
    }

    if (job->wait && !job->task_done) {
        /* the answer comes from ngx_http_vconv_upload_job_done() */
        r->read_event_handler = ngx_http_test_reading;
        return;
    }

    ctx->done = 1;
    ngx_http_finalize_request(r, ngx_http_vconv_upload_answer(r));
}


/*
 * The answer once the body is in: 202 and the job, or with wait=1 the
 * converted file; a job that already failed answers with its error.
 */
static ngx_int_t
ngx_http_vconv_upload_answer(ngx_http_request_t *r)
{
    u_char                     *json, *loc;
    size_t                      len, n;
    ngx_uint_t                  version, pos;
    vconv_error_t               err;
    vconv_job_info_t            info;
    ngx_http_vconv_ctx_t       *ctx;
    ngx_http_vconv_job_t       *job;
    ngx_http_vconv_loc_conf_t  *vlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vconv_module);
    job = ctx->job;
    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vconv_module);

    if (ngx_http_vconv_zone_get(job->zone, &job->id, &info, &version, &pos)
        != NGX_OK)
    {
        (void) vconv_error_set(&err, VCONV_E_CANCELED, "the job was deleted");
        return ngx_http_vconv_reply_error(r, &err);
    }

    if (info.status == VCONV_JOB_FAILED || info.status == VCONV_JOB_CANCELED)
    {
        job->discard = 1;
        err.code = info.err_code;
        ngx_cpystrn((u_char *) err.message, (u_char *) info.err_message,
                    sizeof(err.message));
        return ngx_http_vconv_reply_error(r, &err);
    }

    loc = ngx_pnalloc(r->pool, vlcf->jobs_uri.len + job->id.len);
    if (loc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = ngx_sprintf(loc, "%V%V", &vlcf->jobs_uri, &job->id) - loc;

    if (job->wait && info.status == VCONV_JOB_DONE) {
        return ngx_http_vconv_upload_output(r, ctx, &info, loc, n);
    }

    json = ngx_http_vconv_reply_job_json(r->pool, &info,
                                         (char *) vlcf->jobs_uri.data, pos,
                                         &len);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_vconv_reply_header(r, "Location", loc, n) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_vconv_reply_json(r, NGX_HTTP_ACCEPTED, json, len);
}


/*
 * wait=1's answer is the file: the id was never sent, so once the file
 * is open for sending, the job's record and folder go (the open file
 * lives on until it is sent).  keep=1 keeps the job and says where it
 * is: Location and X-Vconv-Job-Id.
 */
static ngx_int_t
ngx_http_vconv_upload_output(ngx_http_request_t *r,
    ngx_http_vconv_ctx_t *ctx, vconv_job_info_t *info, u_char *loc,
    size_t n)
{
    ngx_int_t              rc;
    ngx_http_vconv_job_t  *job;

    job = ctx->job;

    if (ctx->keep) {
        if (ngx_http_vconv_reply_header(r, "Location", loc, n) != NGX_OK
            || ngx_http_vconv_reply_header(r, "X-Vconv-Job-Id", job->id.data,
                                           job->id.len)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_vconv_reply_output(r, info);
    }

    rc = ngx_http_vconv_reply_output(r, info);

    ngx_http_vconv_upload_forget(job);

    return rc;
}


/* the job goes as soon as nothing works on it any more */
static void
ngx_http_vconv_upload_forget(ngx_http_vconv_job_t *job)
{
    job->discard = 1;

    if (!job->settled) {
        /* ngx_http_vconv_job_settle() removes it */
        return;
    }

    /* it settled before its upload ended (a short job): remove it now */

    ngx_http_vconv_store_rmdir(job->vmcf, job->info.id, job->log);
    ngx_http_vconv_zone_remove(job->zone, &job->id);
}


/*
 * The job's end, while its upload request is still here: the answer to
 * wait=1 once the body is in; a job that ended before its upload either
 * failed (the upload stops) or is done: the rest of the body is read
 * and dropped, and the answer follows the body.
 */
static void
ngx_http_vconv_upload_job_done(ngx_event_t *ev)
{
    ngx_http_request_t  *r = ev->data;

    ngx_connection_t      *c;
    ngx_http_vconv_ctx_t  *ctx;
    ngx_http_vconv_job_t  *job;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_vconv_module);
    job = ctx->job;

    if (ctx->done) {
        return;
    }

    if (job->upload_done) {
        /* wait=1 */
        ctx->done = 1;
        ngx_http_finalize_request(r, ngx_http_vconv_upload_answer(r));
        ngx_http_run_posted_requests(c);
        return;
    }

    if (job->err.code == VCONV_E_NONE) {
        ctx->drain = 1;

        if (job->wfd != NGX_INVALID_FILE) {
            (void) ngx_close_file(job->wfd);
            job->wfd = NGX_INVALID_FILE;
        }

        return;
    }

    /* the job failed before the upload ended: stop taking the body */

    ngx_http_vconv_upload_fail(r, 0, &job->err);
    ngx_http_run_posted_requests(c);
}


/*
 * Ends the upload with an error.  status is an nginx status when nginx
 * itself gave up on the body (client gone, 413, timeout); else the answer
 * is the JSON error.
 */
static void
ngx_http_vconv_upload_fail(ngx_http_request_t *r, ngx_int_t status,
    vconv_error_t *err)
{
    ngx_http_vconv_ctx_t  *ctx;
    ngx_http_vconv_job_t  *job;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vconv_module);
    job = ctx->job;

    ctx->done = 1;

    if (job) {
        /* the answer is an error, not the job: nobody will ask for it */
        job->discard = 1;

        if (!job->posted && job->err.code == VCONV_E_NONE) {
            /* no task will say how it ended: the upload does */
            job->err = *err;
        }

        if (job->sched_wait) {
            /* its place in the queue goes at once */
            ngx_http_vconv_sched_wake(ngx_pid, r->connection->log);
        }
    }

    if (job && !job->posted) {
        /*
         * No task will end it: the record and folder go now, not when
         * the request's pool does (a lingering close may take seconds)
         */
        ngx_http_vconv_job_settle(job);
    }

    if (job && !job->upload_done) {
        job->upload_done = 1;

        if (job->wfd != NGX_INVALID_FILE) {
            (void) ngx_close_file(job->wfd);
            job->wfd = NGX_INVALID_FILE;
        }

        if (job->reader_ready) {
            vconv_reader_stop(&job->reader, err->code);
        }
    }

    if (status) {
        ngx_http_finalize_request(r, status);
        return;
    }

    ngx_http_finalize_request(r, ngx_http_vconv_reply_error(r, err));
}


/*
 * vconv_min_upload_rate: the bytes spooled over each window; a slower
 * upload ends 408 too_slow, so that a few slow clients cannot hold the
 * store, the zone's queue and their connections for ever.
 */
static ngx_uint_t
ngx_http_vconv_upload_too_slow(ngx_http_vconv_ctx_t *ctx,
    vconv_error_t *err)
{
    off_t                        rate;
    ngx_msec_t                   spent;
    ngx_http_vconv_job_t        *job;

    job = ctx->job;

    if (job->vmcf->min_upload_rate == 0) {
        return 0;
    }

    if (ctx->rate_since == 0) {
        ctx->rate_since = ngx_current_msec;
        ctx->rate_mark = job->written;
        return 0;
    }

    spent = ngx_current_msec - ctx->rate_since;

    if (spent < NGX_HTTP_VCONV_RATE_WINDOW) {
        return 0;
    }

    rate = (job->written - ctx->rate_mark) * 1000 / (off_t) spent;

    ctx->rate_since = ngx_current_msec;
    ctx->rate_mark = job->written;

    if (rate >= (off_t) job->vmcf->min_upload_rate) {
        return 0;
    }

    ngx_log_error(NGX_LOG_INFO, job->log, 0,
                  "vconv: the upload is too slow: %O bytes/s", rate);

    (void) vconv_error_set(err, VCONV_E_TOO_SLOW,
                           "the upload sent %lld bytes/s over %d s, less "
                           "than the %lld this server needs",
                           (long long) rate,
                           NGX_HTTP_VCONV_RATE_WINDOW / 1000,
                           (long long) job->vmcf->min_upload_rate);
    return 1;
}


/*
 * A job waits for 64 KiB before it asks for a slot, so no task watches a
 * small upload that stops: vconv_stall_timeout is kept here until then.
 */
static ngx_uint_t
ngx_http_vconv_upload_stalled(ngx_http_vconv_ctx_t *ctx, vconv_error_t *err)
{
    ngx_http_vconv_job_t  *job;

    job = ctx->job;

    if (job->posted) {
        return 0;
    }

    if (ctx->stall_since == 0 || job->written != ctx->stall_mark) {
        ctx->stall_since = ngx_current_msec;
        ctx->stall_mark = job->written;
        return 0;
    }

    if (ngx_current_msec - ctx->stall_since < job->vmcf->stall_timeout) {
        return 0;
    }

    (void) vconv_error_set(err, VCONV_E_STALLED,
                           "neither the upload nor the conversion moved "
                           "for %u s",
                           (unsigned) (job->vmcf->stall_timeout / 1000));
    return 1;
}


static void
ngx_http_vconv_upload_watch_handler(ngx_event_t *ev)
{
    ngx_http_request_t  *r = ev->data;

    vconv_error_t          err;
    ngx_connection_t      *c;
    ngx_http_vconv_ctx_t  *ctx;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_vconv_module);

    if (ctx->done || ctx->job == NULL || ctx->job->upload_done) {
        return;
    }

    if (!ctx->job->node->cancel) {

        if (ngx_http_vconv_upload_too_slow(ctx, &err)
            || ngx_http_vconv_upload_stalled(ctx, &err))
        {
            ngx_http_vconv_upload_fail(r, 0, &err);
            ngx_http_run_posted_requests(c);
            return;
        }

        ngx_add_timer(ev, 500);
        return;
    }

    (void) vconv_error_set(&err, VCONV_E_CANCELED, "the job was canceled");
    ngx_http_vconv_upload_fail(r, 0, &err);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_vconv_upload_cleanup(void *data)
{
    ngx_http_vconv_ctx_t  *ctx = data;

    ngx_http_vconv_job_t  *job;

    if (ctx->watch.timer_set) {
        ngx_del_timer(&ctx->watch);
    }

    job = ctx->job;
    if (job == NULL) {
        return;
    }

    ctx->job = NULL;
    ngx_http_vconv_job_unwait(&ctx->waiter);

    if (!ctx->done) {
        ngx_http_vconv_upload_abandon(ctx, job);
    }

    ngx_http_vconv_job_release(job);
}


/*
 * The request goes before its answer: the client closed the connection
 * (or nginx gave up on it).  Nobody learned the job's id, so it leaves
 * nothing.  An upload in progress ends aborted; a wait=1 job whose
 * client no longer waits is canceled, its transcode stopped (the task
 * polls the flag).
 */
static void
ngx_http_vconv_upload_abandon(ngx_http_vconv_ctx_t *ctx,
    ngx_http_vconv_job_t *job)
{
    job->discard = 1;

    if (!job->upload_done) {
        job->upload_done = 1;

        if (!job->posted && job->err.code == VCONV_E_NONE) {
            (void) vconv_error_set(&job->err, VCONV_E_UPLOAD_ABORTED,
                                   "the upload did not complete");
        }

        if (job->reader_ready) {
            vconv_reader_stop(&job->reader, VCONV_E_UPLOAD_ABORTED);
        }

        return;
    }

    if (!job->wait || job->task_done || !job->posted) {
        return;
    }

    ngx_log_error(NGX_LOG_INFO, job->log, 0,
                  "vconv: the client of a wait=1 job is gone, "
                  "the job is canceled");

    ngx_shmtx_lock(&job->zone->shpool->mutex);
    job->node->cancel = 1;
    ngx_shmtx_unlock(&job->zone->shpool->mutex);
}


static int
ngx_http_vconv_upload_mp_field(void *data, const char *name, size_t nlen,
    const char *value, size_t vlen, vconv_error_t *err)
{
    ngx_http_vconv_ctx_t *ctx = data;

    vconv_job_info_t  info;

    ngx_memzero(&info, sizeof(vconv_job_info_t));

    if (ngx_http_vconv_upload_option(ctx, &info, (u_char *) name, nlen,
                                     (u_char *) value, vlen)
        != NGX_OK)
    {
        *err = ctx->err;
        return 1;
    }

    return 0;
}


static int
ngx_http_vconv_upload_mp_file_begin(void *data, const char *filename,
    size_t len, vconv_error_t *err)
{
    ngx_http_vconv_ctx_t *ctx = data;

    ngx_http_vconv_job_t  *job;

    job = ctx->job;
    ctx->file_seen = 1;

    if (!ctx->name_set && job->info.in_name[0] == '\0' && len) {
        ngx_cpystrn((u_char *) job->info.in_name, (u_char *) filename,
                    ngx_min(len + 1, sizeof(job->info.in_name)));
    }

    return 0;
}


static int
ngx_http_vconv_upload_mp_file_data(void *data, const uint8_t *p, size_t len,
    vconv_error_t *err)
{
    ngx_http_vconv_ctx_t *ctx = data;

    if (ngx_http_vconv_upload_write_input(ctx, p, len) != NGX_OK) {
        *err = ctx->err;
        return 1;
    }

    return 0;
}


static int
ngx_http_vconv_upload_mp_file_end(void *data, vconv_error_t *err)
{
    return 0;
}


/* the tus creation (ngx_http_vconv_tus.c) checks as a POST does */

ngx_int_t
ngx_http_vconv_upload_tus_option(ngx_http_vconv_ctx_t *ctx,
    vconv_job_info_t *info, u_char *key, size_t klen, u_char *val,
    size_t vlen)
{
    return ngx_http_vconv_upload_option(ctx, info, key, klen, val, vlen);
}


ngx_int_t
ngx_http_vconv_upload_tus_client(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, uint32_t *client, vconv_error_t *err)
{
    return ngx_http_vconv_upload_client(r, z, client, err);
}


ngx_int_t
ngx_http_vconv_upload_tus_id(ngx_http_request_t *r, vconv_job_info_t *info)
{
    return ngx_http_vconv_upload_make_id(r, info);
}


ngx_int_t
ngx_http_vconv_upload_tus_retry_after(ngx_http_request_t *r, time_t seconds)
{
    return ngx_http_vconv_upload_retry_after(r, seconds);
}
