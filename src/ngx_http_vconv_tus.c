/*
 * vconv: resumable uploads, tus 1.0.0 (creation, creation-with-upload,
 * termination, expiration, checksum with sha1).
 *
 * An upload is a job from its creation: same id, same record, same
 * folder, the same growing-file reader as a raw upload, so it converts
 * while the PATCHes arrive.  Any worker may take a PATCH: the upload's
 * state is in the job's record in the zone (ngx_http_vconv_tus_node_t).
 * The worker that created the job owns its transcode; it learns how far
 * the upload got from the record (a short timer, or at once when the
 * PATCH is its own) and moves the reader's end there.
 *
 * The record's offset is the committed end of the input: the reader
 * never reads past it.  A PATCH without Upload-Checksum commits as its
 * bytes are written (a PATCH that breaks off keeps every byte); one with
 * a checksum commits only once the whole chunk is in and its sha1
 * matches, and otherwise (a mismatch: 460, or a PATCH that breaks off:
 * it cannot be verified) the file is truncated back to the old offset.
 * So no byte that may be taken back is ever read by the transcode.
 *
 * One PATCH at a time per upload: a token in the record; a second one
 * is answered 423.  Between PATCHes the reader waits without a stall
 * clock; an upload idle past vconv_tus_expires is canceled by the
 * sweeper (ngx_http_vconv_tus_expire_locked) and leaves nothing.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_sha1.h>

#include "ngx_http_vconv.h"


/* as a raw upload: spooled before the job asks for a slot */
#define NGX_HTTP_VCONV_TUS_START_BYTES  (64 * 1024)

/* how often the owner looks how far another worker's PATCH got */
#define NGX_HTTP_VCONV_TUS_POLL_MS      100

#define NGX_HTTP_VCONV_TUS_VERSION      "1.0.0"
#define NGX_HTTP_VCONV_TUS_EXTENSIONS   "creation,creation-with-upload," \
                                        "termination,expiration,checksum"

#define NGX_HTTP_VCONV_TUS_OFFSET_TYPE  "application/offset+octet-stream"


/* the owner's hold on a job while its upload is incomplete */
typedef struct {
    ngx_queue_t                 queue;      /* this worker's uploads */
    ngx_http_vconv_job_t       *job;
    ngx_event_t                 poll;
    ngx_http_vconv_waiter_t     waiter;     /* the transcode's end */
    off_t                       length;
    ngx_msec_t                  exiting;    /* first seen exiting at */
} ngx_http_vconv_tus_hold_t;


/* a PATCH (or a creation with a body) */
typedef struct {
    ngx_str_t                   id;
    ngx_http_vconv_zone_t      *zone;
    ngx_http_vconv_loc_conf_t  *vlcf;
    ngx_fd_t                    fd;
    off_t                       start;      /* the offset it began at */
    off_t                       length;     /* Upload-Length */
    off_t                       got;        /* body bytes taken */
    off_t                       committed;  /* of them, committed */
    ngx_uint_t                  token;
    ngx_sha1_t                  sha1;
    u_char                      digest[20]; /* Upload-Checksum's */
    ngx_uint_t                  status;     /* 201 for a creation */
    ngx_int_t                   rc;         /* an early answer's */
    unsigned                    checksum:1;
    unsigned                    drop:1;     /* the job ended: no file */
    unsigned                    done:1;
    ngx_http_vconv_h2win_t      h2win;      /* ngx_http_vconv_h2.c */
} ngx_http_vconv_tus_ctx_t;


static ngx_int_t ngx_http_vconv_tus_options(ngx_http_request_t *r);
static ngx_int_t ngx_http_vconv_tus_create(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z);
static ngx_int_t ngx_http_vconv_tus_metadata(ngx_http_request_t *r,
    ngx_http_vconv_ctx_t *ctx, vconv_job_info_t *info);
static ngx_int_t ngx_http_vconv_tus_hold(ngx_http_vconv_job_t *job,
    off_t length);
static void ngx_http_vconv_tus_poll(ngx_event_t *ev);
static void ngx_http_vconv_tus_sync(ngx_http_vconv_tus_hold_t *h);
static void ngx_http_vconv_tus_job_done(ngx_event_t *ev);
static void ngx_http_vconv_tus_let_go(ngx_http_vconv_tus_hold_t *h);
static ngx_int_t ngx_http_vconv_tus_head(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, ngx_str_t *id);
static ngx_int_t ngx_http_vconv_tus_patch(ngx_http_request_t *r,
    ngx_http_vconv_zone_t *z, ngx_str_t *id, ngx_uint_t status);
static void ngx_http_vconv_tus_body_handler(ngx_http_request_t *r);
static void ngx_http_vconv_tus_read_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_vconv_tus_write(ngx_http_request_t *r,
    ngx_http_vconv_tus_ctx_t *ctx, u_char *p, size_t len);
static ngx_int_t ngx_http_vconv_tus_commit(ngx_http_vconv_tus_ctx_t *ctx,
    off_t n);
static void ngx_http_vconv_tus_body_done(ngx_http_request_t *r);
static void ngx_http_vconv_tus_finish(ngx_http_request_t *r,
    ngx_int_t rc);
static void ngx_http_vconv_tus_unlock(ngx_http_vconv_tus_ctx_t *ctx,
    ngx_uint_t undo);
static void ngx_http_vconv_tus_cleanup(void *data);
static ngx_int_t ngx_http_vconv_tus_answer(ngx_http_request_t *r,
    ngx_http_vconv_tus_ctx_t *ctx);
static ngx_int_t ngx_http_vconv_tus_id(ngx_http_request_t *r,
    ngx_str_t *id);
static ngx_int_t ngx_http_vconv_tus_number(ngx_table_elt_t *h, off_t *n);
static ngx_int_t ngx_http_vconv_tus_common(ngx_http_request_t *r);
static ngx_int_t ngx_http_vconv_tus_offset_header(ngx_http_request_t *r,
    char *key, off_t n);
static ngx_int_t ngx_http_vconv_tus_expires_header(ngx_http_request_t *r,
    time_t t);
static ngx_int_t ngx_http_vconv_tus_cors(ngx_http_request_t *r,
    ngx_uint_t preflight);
static ngx_int_t ngx_http_vconv_tus_fail(ngx_http_request_t *r,
    ngx_uint_t status, char *code, char *message);


/* this worker's uploads in progress, for a PATCH that lands here */
static ngx_queue_t  ngx_http_vconv_tus_holds;

/* PATCH tokens; with the pid they are unique across the workers */
static ngx_uint_t   ngx_http_vconv_tus_tokens;


/*
 * vconv_tus [jobs_uri]: the tus location; jobs_uri (default /api/jobs/)
 * is where the job of an upload is, for the creation's JSON.  Body
 * settings for an upload location (client_body_buffer_size, the HTTP/2
 * ones) apply here as to a vconv_upload location: the tus handler is
 * NGX_HTTP_VCONV_H_TUS.
 */
char *
ngx_http_vconv_tus_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vconv_loc_conf_t *vlcf = conf;

    u_char                      *p;
    ngx_str_t                   *value, uri;
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_vconv_main_conf_t  *vmcf;

    if (vlcf->handler != NGX_HTTP_VCONV_H_NONE) {
        return "is duplicate";
    }

    vlcf->handler = NGX_HTTP_VCONV_H_TUS;

    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_vconv_module);
    vmcf->used = 1;
    vmcf->uploads = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_vconv_tus_handler;

    value = cf->args->elts;

    if (cf->args->nelts == 2) {
        uri = value[1];

    } else {
        ngx_str_set(&uri, "/api/jobs/");
    }

    if (uri.len == 0 || uri.data[0] != '/') {
        return "needs a jobs URI that starts with \"/\"";
    }

    vlcf->jobs_uri.len = uri.len + (uri.data[uri.len - 1] != '/');
    vlcf->jobs_uri.data = ngx_pnalloc(cf->pool, vlcf->jobs_uri.len + 1);
    if (vlcf->jobs_uri.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(vlcf->jobs_uri.data, uri.data, uri.len);
    if (uri.data[uri.len - 1] != '/') {
        *p++ = '/';
    }
    *p = '\0';

    return NGX_CONF_OK;
}


/* vconv_cors origin ...;  "*" allows any origin */
char *
ngx_http_vconv_cors_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vconv_loc_conf_t *vlcf = conf;

    ngx_str_t   *value, *s;
    ngx_uint_t   i;

    if (vlcf->cors != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    vlcf->cors = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                  sizeof(ngx_str_t));
    if (vlcf->cors == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        if (value[i].len == 0) {
            return "takes no empty origin";
        }

        s = ngx_array_push(vlcf->cors);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = value[i];
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_vconv_tus_handler(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_str_t               id;
    ngx_table_elt_t        *h;
    ngx_http_vconv_zone_t  *z;

    z = ngx_http_vconv_zone(r);
    if (z == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_vconv_tus_cors(r, r->method == NGX_HTTP_OPTIONS)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_http_vconv_tus_options(r);
    }

    if (ngx_http_vconv_tus_common(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a request refused before its body is read gets no 100 Continue */
    r->expect_tested = 1;

    h = ngx_http_vconv_header_in(r, "Tus-Resumable");

    if (h == NULL || h->value.len != sizeof(NGX_HTTP_VCONV_TUS_VERSION) - 1
        || ngx_strncmp(h->value.data, NGX_HTTP_VCONV_TUS_VERSION,
                       h->value.len) != 0)
    {
        if (ngx_http_vconv_reply_header(r, "Tus-Version",
                                        (u_char *) NGX_HTTP_VCONV_TUS_VERSION,
                                        sizeof(NGX_HTTP_VCONV_TUS_VERSION)
                                        - 1)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_vconv_tus_fail(r, NGX_HTTP_PRECONDITION_FAILED,
                                       "tus_version",
                                       "Tus-Resumable: 1.0.0 is required");
    }

    rc = ngx_http_vconv_tus_id(r, &id);

    if (rc == NGX_DECLINED) {
        if (r->method != NGX_HTTP_POST) {
            return ngx_http_vconv_reply_not_allowed(r, "POST, OPTIONS");
        }

        return ngx_http_vconv_tus_create(r, z);
    }

    if (rc != NGX_OK) {
        return ngx_http_vconv_reply_not_found(r, "no such upload");
    }

    switch (r->method) {

    case NGX_HTTP_HEAD:
        return ngx_http_vconv_tus_head(r, z, &id);

    case NGX_HTTP_PATCH:
        return ngx_http_vconv_tus_patch(r, z, &id, NGX_HTTP_NO_CONTENT);

    case NGX_HTTP_DELETE:
        /* the job goes with it, as a DELETE of /api/jobs/{id} does */
        return ngx_http_vconv_jobs_terminate(r, z, &id);

    default:
        return ngx_http_vconv_reply_not_allowed(r,
                                         "HEAD, PATCH, DELETE, OPTIONS");
    }
}


ngx_int_t
ngx_http_vconv_tus_job_id(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_http_vconv_tus_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vconv_module);

    if (ctx == NULL || ctx->id.len == 0) {
        return NGX_DECLINED;
    }

    *id = ctx->id;

    return NGX_OK;
}


/* the server's tus: discovery, and CORS preflight (added by the caller) */
static ngx_int_t
ngx_http_vconv_tus_options(ngx_http_request_t *r)
{
    off_t                      max;
    ngx_int_t                  rc;
    ngx_http_core_loc_conf_t  *clcf;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    max = clcf->client_max_body_size;

    if (ngx_http_vconv_tus_common(r) != NGX_OK
        || ngx_http_vconv_reply_header(r, "Tus-Version",
                                       (u_char *) NGX_HTTP_VCONV_TUS_VERSION,
                                       sizeof(NGX_HTTP_VCONV_TUS_VERSION) - 1)
           != NGX_OK
        || ngx_http_vconv_reply_header(r, "Tus-Extension",
                                  (u_char *) NGX_HTTP_VCONV_TUS_EXTENSIONS,
                                  sizeof(NGX_HTTP_VCONV_TUS_EXTENSIONS) - 1)
           != NGX_OK
        || ngx_http_vconv_reply_header(r, "Tus-Checksum-Algorithm",
                                       (u_char *) "sha1", 4)
           != NGX_OK
        || (max && ngx_http_vconv_tus_offset_header(r, "Tus-Max-Size", max)
                   != NGX_OK))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_vconv_reply_no_content(r);
}


/*
 * POST: Upload-Length and Upload-Metadata are checked as a POST to
 * vconv_upload checks its query, and the store and the queue as for it;
 * then the job is made, and a body (creation-with-upload) is its first
 * PATCH.
 */
static ngx_int_t
ngx_http_vconv_tus_create(ngx_http_request_t *r, ngx_http_vconv_zone_t *z)
{
    off_t                        length;
    uint32_t                     client;
    ngx_str_t                    id;
    ngx_uint_t                   waiting;
    off_t                        store_bytes;
    ngx_table_elt_t             *h;
    vconv_job_info_t             info;
    ngx_http_vconv_ctx_t        *ctx;
    ngx_http_vconv_job_t        *job;
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_vconv_loc_conf_t   *vlcf;
    ngx_http_vconv_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vconv_module);
    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vconv_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (ngx_http_vconv_header_in(r, "Upload-Defer-Length")) {
        return ngx_http_vconv_tus_fail(r, NGX_HTTP_BAD_REQUEST,
                                       "invalid_value",
                                       "Upload-Defer-Length is not "
                                       "supported: send Upload-Length");
    }

    h = ngx_http_vconv_header_in(r, "Upload-Length");

    if (h == NULL || ngx_http_vconv_tus_number(h, &length) != NGX_OK) {
        return ngx_http_vconv_tus_fail(r, NGX_HTTP_BAD_REQUEST,
                                       "invalid_value",
                                       "Upload-Length must be a number");
    }

    if (length == 0) {
        return ngx_http_vconv_tus_fail(r, 415, "unsupported_input",
                                       "the upload is empty");
    }

    if (clcf->client_max_body_size && length > clcf->client_max_body_size) {
        return ngx_http_vconv_tus_fail(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "too_large",
                                       "Upload-Length is over this "
                                       "server's client_max_body_size");
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_vconv_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->spec = ngx_palloc(r->pool, sizeof(vconv_spec_t));
    if (ctx->spec == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->pool = r->pool;
    ctx->vlcf = vlcf;
    vconv_spec_init(ctx->spec);

    ngx_memzero(&info, sizeof(vconv_job_info_t));
    info.in_duration = -1;

    if (ngx_http_vconv_tus_metadata(r, ctx, &info) != NGX_OK
        || ngx_http_vconv_preset_apply(ctx) != NGX_OK
        || vconv_spec_finish(ctx->spec,
                             (unsigned) vlcf->formats | VCONV_FMT_HLS_OK,
                             &ctx->err)
           != VCONV_OK)
    {
        ngx_http_vconv_zone_count_error(z, ctx->err.code);
        return ngx_http_vconv_reply_error(r, &ctx->err);
    }

    if (ngx_http_vconv_upload_tus_client(r, z, &client, &ctx->err)
        != NGX_OK)
    {
        ngx_http_vconv_zone_count_error(z, ctx->err.code);
        return ngx_http_vconv_reply_error(r, &ctx->err);
    }

    ngx_http_vconv_zone_room(z, &waiting, &store_bytes);

    if (waiting >= vmcf->max_queue) {
        if (ngx_http_vconv_upload_tus_retry_after(r, 5) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        (void) vconv_error_set(&ctx->err, VCONV_E_QUEUE_FULL,
                               "the queue is full (%u jobs waiting)",
                               (unsigned) waiting);
        ngx_http_vconv_zone_count_error(z, ctx->err.code);
        return ngx_http_vconv_reply_error(r, &ctx->err);
    }

    if (vmcf->max_size && store_bytes + length > vmcf->max_size) {
        (void) vconv_error_set(&ctx->err, VCONV_E_STORE_FULL,
                               "the store has no room for this upload");
        ngx_http_vconv_zone_count_error(z, ctx->err.code);
        return ngx_http_vconv_reply_error(r, &ctx->err);
    }

    if (ngx_http_vconv_upload_tus_id(r, &info) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    info.status = VCONV_JOB_UPLOADING;
    info.created = ngx_time();
    info.out_format = ctx->spec->format;
    info.pid = ngx_pid;

    job = ngx_http_vconv_job_create(r, z, &info, &ctx->err);
    if (job == NULL) {
        if (ctx->err.code == VCONV_E_ZONE_FULL
            && ngx_http_vconv_upload_tus_retry_after(r,
                                       ngx_http_vconv_zone_retry_after(z))
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_vconv_zone_count_error(z, ctx->err.code);
        return ngx_http_vconv_reply_error(r, &ctx->err);
    }

    ngx_http_vconv_zone_accept(z, job->node, client);

    job->spec = *ctx->spec;
    job->sched_class = vlcf->priority_class;

    /* a PATCH opens the file itself, in whichever worker it lands */
    (void) ngx_close_file(job->wfd);
    job->wfd = NGX_INVALID_FILE;

    job->options.data = ngx_pnalloc(job->pool, ctx->options.len + 1);
    if (job->options.data == NULL) {
        goto failed;
    }

    job->options.len = ctx->options.len;
    if (ctx->options.len) {
        ngx_memcpy(job->options.data, ctx->options.data, ctx->options.len);
    }

    vconv_reader_expect(&job->reader, length);

    /* no stall clock while the upload is incomplete: the expiry is it */
    job->reader.stall_ms = 0;
    job->tus_open = 1;

    ngx_shmtx_lock(&z->shpool->mutex);
    job->node->tus.on = 1;
    job->node->tus.length = length;
    job->node->tus.expires = ngx_time() + vlcf->tus_expires;
    job->node->version++;
    ngx_shmtx_unlock(&z->shpool->mutex);

    /* the job's reference is the hold's from now on */
    if (ngx_http_vconv_tus_hold(job, length) != NGX_OK) {
        goto failed;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "vconv: tus upload %V of %O bytes", &job->id, length);

    id = job->id;

    return ngx_http_vconv_tus_patch(r, z, &id, NGX_HTTP_CREATED);

failed:

    job->err.code = VCONV_E_NOMEM;
    job->upload_done = 1;
    ngx_http_vconv_job_settle(job);
    ngx_http_vconv_job_release(job);

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/*
 * Upload-Metadata: "key base64,key base64,key": filename is the name,
 * every other key is an option by its query name.
 */
static ngx_int_t
ngx_http_vconv_tus_metadata(ngx_http_request_t *r, ngx_http_vconv_ctx_t *ctx,
    vconv_job_info_t *info)
{
    u_char           *p, *last, *comma, *sp;
    ngx_str_t         key, enc, val;
    ngx_table_elt_t  *h;

    h = ngx_http_vconv_header_in(r, "Upload-Metadata");
    if (h == NULL) {
        return NGX_OK;
    }

    p = h->value.data;
    last = p + h->value.len;

    while (p < last) {
        while (p < last && (*p == ' ' || *p == ',')) {
            p++;
        }

        if (p == last) {
            break;
        }

        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        sp = ngx_strlchr(p, comma, ' ');

        key.data = p;
        key.len = (sp ? sp : comma) - p;

        enc.data = sp ? sp + 1 : comma;
        enc.len = comma - enc.data;

        while (enc.len && enc.data[enc.len - 1] == ' ') {
            enc.len--;
        }

        val.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(enc.len)
                                        + 1);
        if (val.data == NULL) {
            (void) vconv_error_set(&ctx->err, VCONV_E_NOMEM,
                                   "out of memory");
            return NGX_ERROR;
        }

        if (ngx_decode_base64(&val, &enc) != NGX_OK) {
            (void) vconv_error_set(&ctx->err, VCONV_E_INVALID_VALUE,
                                   "Upload-Metadata: the value of '%.*s' "
                                   "is not base64", (int) key.len,
                                   key.data);
            return NGX_ERROR;
        }

        if (key.len == 8 && ngx_strncmp(key.data, "filename", 8) == 0) {
            ngx_str_set(&key, "name");
        }

        /* tus-js-client and Uppy add these on their own */
        if ((key.len == 8 && ngx_strncmp(key.data, "filetype", 8) == 0)
            || (key.len == 4 && ngx_strncmp(key.data, "type", 4) == 0))
        {
            p = comma;
            continue;
        }

        if ((key.len == 4 && ngx_strncmp(key.data, "wait", 4) == 0)
            || (key.len == 4 && ngx_strncmp(key.data, "keep", 4) == 0))
        {
            (void) vconv_error_set(&ctx->err, VCONV_E_UNKNOWN_OPTION,
                                   "option '%.*s' has no meaning for a "
                                   "tus upload", (int) key.len, key.data);
            return NGX_ERROR;
        }

        if (ngx_http_vconv_upload_tus_option(ctx, info, key.data, key.len,
                                             val.data, val.len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        p = comma;
    }

    return NGX_OK;
}


/* the owner holds the job until its upload is complete or gone */
static ngx_int_t
ngx_http_vconv_tus_hold(ngx_http_vconv_job_t *job, off_t length)
{
    ngx_http_vconv_tus_hold_t  *h;

    h = ngx_pcalloc(job->pool, sizeof(ngx_http_vconv_tus_hold_t));
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->job = job;
    h->length = length;

    if (ngx_http_vconv_tus_holds.prev == NULL) {
        ngx_queue_init(&ngx_http_vconv_tus_holds);
    }

    ngx_queue_insert_tail(&ngx_http_vconv_tus_holds, &h->queue);

    h->waiter.event.handler = ngx_http_vconv_tus_job_done;
    h->waiter.event.data = h;
    h->waiter.event.log = job->log;
    ngx_http_vconv_job_wait(job, &h->waiter);

    /*
     * Not cancelable: a reloading worker waits for its uploads in
     * progress (they end, or expire) as it waits for its transcodes.
     */
    h->poll.handler = ngx_http_vconv_tus_poll;
    h->poll.data = h;
    h->poll.log = job->log;
    ngx_add_timer(&h->poll, NGX_HTTP_VCONV_TUS_POLL_MS);

    return NGX_OK;
}


static void
ngx_http_vconv_tus_poll(ngx_event_t *ev)
{
    ngx_http_vconv_tus_hold_t  *h = ev->data;

    ngx_http_vconv_tus_sync(h);
}


/*
 * The owner's look at the record: the reader's end moves to the
 * committed offset; the job asks for a slot once enough is in; the
 * upload's end, a cancel (DELETE, expiry) or the worker's shutdown
 * timeout end the hold.
 */
static void
ngx_http_vconv_tus_sync(ngx_http_vconv_tus_hold_t *h)
{
    off_t                  offset;
    ngx_uint_t             cancel;
    ngx_msec_t             spent;
    ngx_core_conf_t       *ccf;
    ngx_http_vconv_job_t  *job;

    job = h->job;

    if (job->task_done) {
        /* ngx_http_vconv_tus_job_done() let go already */
        return;
    }

    ngx_shmtx_lock(&job->zone->shpool->mutex);
    offset = job->node->tus.offset;
    cancel = job->node->cancel;
    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    if (offset > job->written) {
        job->written = offset;
        vconv_reader_grow(&job->reader, offset);
    }

    if (cancel) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, job->log, 0,
                       "vconv: tus upload %V canceled", &job->id);

        if (job->posted) {
            /* the task, or the scheduler's walk, ends it */
            vconv_reader_stop(&job->reader, VCONV_E_CANCELED);

            if (job->sched_wait) {
                ngx_http_vconv_sched_wake(ngx_pid, job->log);
            }

            if (!h->poll.timer_set) {
                ngx_add_timer(&h->poll, NGX_HTTP_VCONV_TUS_POLL_MS);
            }

            return;
        }

        (void) vconv_error_set(&job->err, VCONV_E_CANCELED,
                               "the upload was terminated");
        ngx_http_vconv_tus_let_go(h);
        return;
    }

    if (!job->posted
        && offset >= ngx_min(h->length, NGX_HTTP_VCONV_TUS_START_BYTES)
        && ngx_http_vconv_job_start(job) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, job->log, 0,
                      "vconv: the tus upload's job could not be queued");

        (void) vconv_error_set(&job->err, VCONV_E_INTERNAL,
                               "the transcode could not start");
        ngx_http_vconv_tus_let_go(h);
        return;
    }

    if (offset >= h->length) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, job->log, 0,
                       "vconv: tus upload %V complete", &job->id);

        /* from the last byte on, the transcode must move as any other */
        pthread_mutex_lock(&job->reader.mutex);
        job->reader.stall_ms = (int64_t) job->vmcf->stall_timeout;
        pthread_mutex_unlock(&job->reader.mutex);
        job->tus_open = 0;

        vconv_reader_end(&job->reader);
        ngx_http_vconv_tus_let_go(h);
        return;
    }

    if (ngx_exiting) {
        ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                               ngx_core_module);

        if (h->exiting == 0) {
            h->exiting = ngx_current_msec;
        }

        spent = ngx_current_msec - h->exiting;

        if (ccf->shutdown_timeout && spent >= ccf->shutdown_timeout) {
            ngx_log_error(NGX_LOG_WARN, job->log, 0,
                          "vconv: worker_shutdown_timeout: the tus upload "
                          "in progress ends");

            ngx_shmtx_lock(&job->zone->shpool->mutex);
            job->node->cancel = 1;
            ngx_shmtx_unlock(&job->zone->shpool->mutex);
        }
    }

    if (!h->poll.timer_set) {
        ngx_add_timer(&h->poll, NGX_HTTP_VCONV_TUS_POLL_MS);
    }
}


/* the transcode ended (before the upload did, or after) */
static void
ngx_http_vconv_tus_job_done(ngx_event_t *ev)
{
    ngx_http_vconv_tus_hold_t  *h = ev->data;

    ngx_http_vconv_job_t  *job;

    job = h->job;

    /* what was counted in the store goes with the input */
    ngx_shmtx_lock(&job->zone->shpool->mutex);
    job->written = ngx_max(job->written, job->node->tus.offset);
    ngx_shmtx_unlock(&job->zone->shpool->mutex);

    ngx_http_vconv_tus_let_go(h);
}


static void
ngx_http_vconv_tus_let_go(ngx_http_vconv_tus_hold_t *h)
{
    ngx_http_vconv_job_t  *job;

    job = h->job;

    if (h->poll.timer_set) {
        ngx_del_timer(&h->poll);
    }

    if (h->poll.posted) {
        ngx_delete_posted_event(&h->poll);
    }

    ngx_http_vconv_job_unwait(&h->waiter);
    ngx_queue_remove(&h->queue);

    job->upload_done = 1;

    if (!job->posted) {
        /* no task will end it: terminated, or never started */
        if (job->reader_ready) {
            vconv_reader_stop(&job->reader, job->err.code);
        }

        ngx_http_vconv_job_settle(job);
    }

    ngx_http_vconv_job_release(job);
}


/*
 * The sweeper, under the zone's lock: an incomplete upload idle past its
 * Upload-Expires (no PATCH in flight) is canceled; its owner ends it and
 * its record and folder go.  1 if it was.
 */
ngx_uint_t
ngx_http_vconv_tus_expire_locked(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_node_t *node, time_t now)
{
    ngx_http_vconv_tus_node_t  *t;

    t = &node->tus;

    if (!t->on || !node->active || node->cancel || t->offset >= t->length
        || t->expires > now)
    {
        return 0;
    }

    if (t->lock
        && (kill(t->lock_pid, 0) == 0 || ngx_errno != NGX_ESRCH))
    {
        /* a PATCH in flight renews it at its end */
        return 0;
    }

    node->cancel = 1;
    node->version++;

    /* a queued job leaves its place now; its owner polls the flag */
    (void) ngx_http_vconv_sched_cancel_locked(z, node);

    return 1;
}


static ngx_int_t
ngx_http_vconv_tus_head(ngx_http_request_t *r, ngx_http_vconv_zone_t *z,
    ngx_str_t *id)
{
    ngx_int_t                   rc;
    ngx_uint_t                  gone;
    vconv_error_t               err;
    vconv_job_info_t            info;
    ngx_http_vconv_node_t      *node;
    ngx_http_vconv_tus_node_t   t;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_http_vconv_zone_lookup_locked(z, id);
    gone = (node == NULL || node->removing || node->cancel || !node->tus.on);

    if (!gone) {
        t = node->tus;
        info = node->info;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (gone) {
        return ngx_http_vconv_reply_not_found(r, "no such upload");
    }

    if (ngx_http_vconv_reply_no_store(r) != NGX_OK
        || ngx_http_vconv_tus_offset_header(r, "Upload-Offset", t.offset)
           != NGX_OK
        || ngx_http_vconv_tus_offset_header(r, "Upload-Length", t.length)
           != NGX_OK
        || ngx_http_vconv_tus_expires_header(r,
                                   t.offset < t.length ? t.expires
                                                       : info.expires)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (info.status == VCONV_JOB_FAILED || info.status == VCONV_JOB_CANCELED)
    {
        /* the upload cannot go on: the job's own answer */
        err.code = info.err_code;
        ngx_cpystrn((u_char *) err.message, (u_char *) info.err_message,
                    sizeof(err.message));
        return ngx_http_vconv_reply_error(r, &err);
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    return ngx_http_send_header(r);
}


/*
 * PATCH (status 204), or the body of a creation (201): the offset is
 * checked and the upload locked for this request, then the body is read
 * unbuffered into the input at that offset.
 */
static ngx_int_t
ngx_http_vconv_tus_patch(ngx_http_request_t *r, ngx_http_vconv_zone_t *z,
    ngx_str_t *id, ngx_uint_t status)
{
    off_t                        offset;
    u_char                      *path;
    ngx_int_t                    rc;
    u_char                       digest[32];
    ngx_str_t                    enc, dec;
    ngx_uint_t                   final, busy;
    ngx_table_elt_t             *h;
    vconv_error_t                err;
    vconv_job_info_t             info;
    ngx_pool_cleanup_t          *cln;
    ngx_http_vconv_node_t       *node;
    ngx_http_vconv_tus_ctx_t    *ctx;
    ngx_http_vconv_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vconv_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_vconv_tus_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->fd = NGX_INVALID_FILE;
    ctx->zone = z;
    ctx->vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vconv_module);
    ctx->status = status;

    ctx->id.data = ngx_pstrdup(r->pool, id);
    if (ctx->id.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->id.len = id->len;

    ngx_http_set_ctx(r, ctx, ngx_http_vconv_module);

    h = r->headers_in.content_type;

    if (status == NGX_HTTP_CREATED
        && (h == NULL || r->headers_in.content_length_n == 0))
    {
        /* a creation without a body */
        offset = 0;
        goto lock;
    }

    if (h == NULL
        || h->value.len != sizeof(NGX_HTTP_VCONV_TUS_OFFSET_TYPE) - 1
        || ngx_strncasecmp(h->value.data,
                           (u_char *) NGX_HTTP_VCONV_TUS_OFFSET_TYPE,
                           h->value.len) != 0)
    {
        return ngx_http_vconv_tus_fail(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                       "invalid_value",
                                       "the body must be "
                                       NGX_HTTP_VCONV_TUS_OFFSET_TYPE);
    }

    offset = 0;

    if (status != NGX_HTTP_CREATED) {
        h = ngx_http_vconv_header_in(r, "Upload-Offset");

        if (h == NULL || ngx_http_vconv_tus_number(h, &offset) != NGX_OK) {
            return ngx_http_vconv_tus_fail(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_value",
                                           "Upload-Offset must be a number");
        }
    }

    h = ngx_http_vconv_header_in(r, "Upload-Checksum");

    if (h) {
        if (h->value.len < 5
            || ngx_strncasecmp(h->value.data, (u_char *) "sha1 ", 5) != 0)
        {
            return ngx_http_vconv_tus_fail(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_value",
                                           "Upload-Checksum: only sha1 is "
                                           "supported");
        }

        enc.data = h->value.data + 5;
        enc.len = h->value.len - 5;
        dec.data = digest;

        if (ngx_base64_decoded_length(enc.len) > sizeof(digest)
            || ngx_decode_base64(&dec, &enc) != NGX_OK
            || dec.len != sizeof(ctx->digest))
        {
            return ngx_http_vconv_tus_fail(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_value",
                                           "Upload-Checksum: not a sha1 in "
                                           "base64");
        }

        ngx_memcpy(ctx->digest, digest, sizeof(ctx->digest));
        ctx->checksum = 1;
        ngx_sha1_init(&ctx->sha1);
    }

lock:

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_http_vconv_zone_lookup_locked(z, id);

    if (node == NULL || node->removing || node->cancel || !node->tus.on) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return ngx_http_vconv_reply_not_found(r, "no such upload");
    }

    info = node->info;
    final = vconv_status_final(info.status);
    busy = 0;

    if (node->tus.lock
        && node->tus.lock_pid != ngx_pid
        && kill(node->tus.lock_pid, 0) == -1 && ngx_errno == NGX_ESRCH)
    {
        /* its worker died mid-PATCH */
        node->tus.lock = 0;
    }

    if (info.status == VCONV_JOB_FAILED
        || info.status == VCONV_JOB_CANCELED)
    {
        ngx_shmtx_unlock(&z->shpool->mutex);

        /* the upload cannot go on: the job's own answer */
        err.code = info.err_code;
        ngx_cpystrn((u_char *) err.message, (u_char *) info.err_message,
                    sizeof(err.message));
        return ngx_http_vconv_reply_error(r, &err);
    }

    if (node->tus.lock) {
        busy = 1;

    } else if (offset != node->tus.offset) {
        offset = node->tus.offset;
        ngx_shmtx_unlock(&z->shpool->mutex);

        if (ngx_http_vconv_tus_offset_header(r, "Upload-Offset", offset)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_vconv_tus_fail(r, NGX_HTTP_CONFLICT,
                                       "offset_mismatch",
                                       "Upload-Offset is not the upload's "
                                       "offset");

    } else {
        ctx->token = ++ngx_http_vconv_tus_tokens;
        node->tus.lock = ctx->token;
        node->tus.lock_pid = ngx_pid;
        node->tus.expires = ngx_time() + ctx->vlcf->tus_expires;
        ctx->start = node->tus.offset;
        ctx->length = node->tus.length;
        node->version++;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (busy) {
        if (ngx_http_vconv_upload_tus_retry_after(r, 1) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_vconv_tus_fail(r, 423, "upload_locked",
                                       "another PATCH of this upload is "
                                       "in progress");
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_http_vconv_tus_unlock(ctx, 0);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_vconv_tus_cleanup;
    cln->data = ctx;

    if (final) {
        /* the job ended before its upload: the rest is read and dropped */
        ctx->drop = 1;

    } else {
        path = ngx_http_vconv_store_path(r->pool, vmcf, id, "input");
        if (path == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->fd = ngx_open_file(path, NGX_FILE_WRONLY, NGX_FILE_OPEN, 0);
        if (ctx->fd == NGX_INVALID_FILE) {
            ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                          "vconv: open \"%s\" failed", path);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* what a PATCH that died with its worker left past the offset */
        if (ftruncate(ctx->fd, ctx->start) == -1) {
            ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                          "vconv: ftruncate \"%s\" failed", path);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (status == NGX_HTTP_CREATED
        && (r->headers_in.content_type == NULL
            || r->headers_in.content_length_n == 0))
    {
        ctx->done = 1;
        ngx_http_vconv_tus_unlock(ctx, 0);
        return ngx_http_vconv_tus_answer(r, ctx);
    }

    r->request_body_no_buffering = 1;
    r->expect_tested = 0;

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_vconv_tus_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_vconv_tus_body_handler(ngx_http_request_t *r)
{
    r->read_event_handler = ngx_http_vconv_tus_read_body;

    ngx_http_vconv_tus_read_body(r);
}


/*
 * nginx's buffers go to the file at once and are given back: the memory
 * is client_body_buffer_size whatever the chunk's size (the raw upload's
 * loop, ngx_http_vconv_upload.c).
 */
static void
ngx_http_vconv_tus_read_body(ngx_http_request_t *r)
{
    size_t                     len;
    ngx_int_t                  rc;
    ngx_buf_t                 *b;
    ngx_chain_t               *cl;
    ngx_http_request_body_t   *rb;
    ngx_http_vconv_tus_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vconv_module);
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
                ngx_http_vconv_tus_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            len = b->last - b->pos;

            if (len == 0) {
                continue;
            }

            rc = ngx_http_vconv_tus_write(r, ctx, b->pos, len);

            b->pos = b->last;

            if (rc != NGX_OK) {
                ngx_http_vconv_tus_finish(r, ctx->rc);
                return;
            }
        }

        rb->bufs = NULL;

        if (!r->reading_body) {
            ngx_http_vconv_tus_body_done(r);
            return;
        }

        ngx_http_vconv_h2_window(r, &ctx->h2win);

        rc = ngx_http_read_unbuffered_request_body(r);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            /* the client went away or timed out: kept, or undone */
            ngx_http_vconv_tus_finish(r, rc);
            return;
        }

        if (rb->bufs == NULL && r->reading_body) {
            return;
        }
    }
}


/*
 * NGX_OK; or NGX_DONE: the PATCH ends here, with the answer made already
 * (its result in ctx->rc)
 */
static ngx_int_t
ngx_http_vconv_tus_write(ngx_http_request_t *r, ngx_http_vconv_tus_ctx_t *ctx,
    u_char *p, size_t len)
{
    off_t                        at;
    ssize_t                      n;
    ngx_int_t                    rc;
    ngx_http_vconv_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vconv_module);

    if (ctx->start + ctx->got + (off_t) len > ctx->length) {
        ctx->rc = ngx_http_vconv_tus_fail(r,
                                       NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "too_large",
                                       "the body goes past Upload-Length");
        return NGX_DONE;
    }

    if (ctx->checksum) {
        ngx_sha1_update(&ctx->sha1, p, len);
    }

    if (ctx->drop) {
        ctx->got += len;
        rc = ctx->checksum ? NGX_OK : ngx_http_vconv_tus_commit(ctx, len);
        goto committed;
    }

    if (vmcf->max_size
        && ctx->zone->sh->store_bytes + (off_t) len > vmcf->max_size)
    {
        ctx->rc = ngx_http_vconv_tus_fail(r, 507, "store_full",
                                          "the store has no room for this "
                                          "upload");
        return NGX_DONE;
    }

    while (len) {
        at = ctx->start + ctx->got;

        n = pwrite(ctx->fd, p, len, at);

        if (n == -1) {
            if (ngx_errno == NGX_EINTR) {
                continue;
            }

            ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                          "vconv: write of the tus upload %V failed",
                          &ctx->id);

            if (ngx_errno == NGX_ENOSPC) {
                ctx->rc = ngx_http_vconv_tus_fail(r, 507, "store_full",
                                                  "the upload could not be "
                                                  "stored");
                return NGX_DONE;
            }

            ctx->rc = ngx_http_vconv_tus_fail(r,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR,
                                           "io_error",
                                           "the upload could not be "
                                           "stored");
            return NGX_DONE;
        }

        p += n;
        len -= n;
        ctx->got += n;

        if (!ctx->checksum) {
            rc = ngx_http_vconv_tus_commit(ctx, n);
            if (rc != NGX_OK) {
                goto committed;
            }
        }
    }

    return NGX_OK;

committed:

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    ctx->rc = ngx_http_vconv_reply_not_found(r, "the upload was terminated");
    return NGX_DONE;
}


/*
 * n more bytes are the upload's: the record's offset moves (the reader's
 * end, in the owner); NGX_DECLINED when the upload is gone or canceled.
 */
static ngx_int_t
ngx_http_vconv_tus_commit(ngx_http_vconv_tus_ctx_t *ctx, off_t n)
{
    ngx_queue_t                *q;
    ngx_http_vconv_node_t      *node;
    ngx_http_vconv_zone_t      *z;
    ngx_http_vconv_tus_hold_t  *h;

    z = ctx->zone;

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_http_vconv_zone_lookup_locked(z, &ctx->id);

    if (node == NULL || node->removing || node->cancel
        || node->tus.lock != ctx->token || node->tus.lock_pid != ngx_pid)
    {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_DECLINED;
    }

    node->tus.offset += n;

    if (!vconv_status_final(node->info.status)) {
        /* as ngx_http_vconv_zone_input(): the owner's drop gives it back */
        node->info.in_bytes += n;
        node->disk += n;
        z->sh->store_bytes += n;
    }

    node->version++;

    ngx_shmtx_unlock(&z->shpool->mutex);

    ctx->committed += n;

    /* the owner is this worker: its reader moves now, not at its poll */

    if (ngx_http_vconv_tus_holds.prev == NULL) {
        return NGX_OK;
    }

    for (q = ngx_queue_head(&ngx_http_vconv_tus_holds);
         q != ngx_queue_sentinel(&ngx_http_vconv_tus_holds);
         q = ngx_queue_next(q))
    {
        h = ngx_queue_data(q, ngx_http_vconv_tus_hold_t, queue);

        if (h->job->id.len == ctx->id.len
            && ngx_strncmp(h->job->id.data, ctx->id.data, ctx->id.len) == 0)
        {
            if (!h->poll.posted) {
                ngx_post_event(&h->poll, &ngx_posted_events);
            }

            break;
        }
    }

    return NGX_OK;
}


static void
ngx_http_vconv_tus_body_done(ngx_http_request_t *r)
{
    u_char                     digest[20];
    ngx_http_vconv_tus_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vconv_module);

    if (!ctx->checksum) {
        ctx->done = 1;
        ngx_http_vconv_tus_unlock(ctx, 0);
        ngx_http_finalize_request(r, ngx_http_vconv_tus_answer(r, ctx));
        return;
    }

    ngx_sha1_final(digest, &ctx->sha1);

    if (ngx_memcmp(digest, ctx->digest, sizeof(digest)) != 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "vconv: tus upload %V: the chunk's sha1 does not "
                      "match, %O bytes discarded", &ctx->id, ctx->got);

        ctx->done = 1;
        ngx_http_vconv_tus_unlock(ctx, 1);

        if (ngx_http_vconv_tus_offset_header(r, "Upload-Offset", ctx->start)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_finalize_request(r, ngx_http_vconv_tus_fail(r, 460,
                                      "checksum_mismatch",
                                      "Upload-Checksum does not match the "
                                      "body; the chunk was discarded"));
        return;
    }

    if (ngx_http_vconv_tus_commit(ctx, ctx->got) != NGX_OK) {
        ctx->done = 1;
        ngx_http_vconv_tus_unlock(ctx, 1);
        ngx_http_finalize_request(r,
                                  ngx_http_vconv_reply_not_found(r,
                                               "the upload was terminated"));
        return;
    }

    ctx->done = 1;
    ngx_http_vconv_tus_unlock(ctx, 0);
    ngx_http_finalize_request(r, ngx_http_vconv_tus_answer(r, ctx));
}


/* the PATCH ends early: an error answer (made already), or nginx's code */
static void
ngx_http_vconv_tus_finish(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_vconv_tus_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vconv_module);

    ctx->done = 1;

    /* a chunk with a checksum that did not arrive whole cannot be kept */
    ngx_http_vconv_tus_unlock(ctx, ctx->checksum);

    ngx_http_finalize_request(r, rc);
}


/*
 * The PATCH lets go of the upload; undo takes the uncommitted bytes
 * back off the file, so that the file ends at the committed offset.
 */
static void
ngx_http_vconv_tus_unlock(ngx_http_vconv_tus_ctx_t *ctx, ngx_uint_t undo)
{
    ngx_http_vconv_node_t  *node;
    ngx_http_vconv_zone_t  *z;

    if (ctx->token == 0) {
        return;
    }

    if (ctx->fd != NGX_INVALID_FILE) {
        if (undo && ctx->got > ctx->committed
            && ftruncate(ctx->fd, ctx->start + ctx->committed) == -1)
        {
            ngx_log_error(NGX_LOG_CRIT, ngx_cycle->log, ngx_errno,
                          "vconv: ftruncate of the tus upload %V failed",
                          &ctx->id);
        }

        (void) ngx_close_file(ctx->fd);
        ctx->fd = NGX_INVALID_FILE;
    }

    z = ctx->zone;

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_http_vconv_zone_lookup_locked(z, &ctx->id);

    if (node && node->tus.lock == ctx->token
        && node->tus.lock_pid == ngx_pid)
    {
        node->tus.lock = 0;
        node->tus.expires = ngx_time() + ctx->vlcf->tus_expires;
        node->version++;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    ctx->token = 0;
}


/* the request goes before its end: a client gone mid-PATCH */
static void
ngx_http_vconv_tus_cleanup(void *data)
{
    ngx_http_vconv_tus_ctx_t  *ctx = data;

    ngx_http_vconv_tus_unlock(ctx, ctx->checksum);

    if (ctx->fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(ctx->fd);
        ctx->fd = NGX_INVALID_FILE;
    }
}


/* 204 to a PATCH, 201 to a creation: the offset and the expiry */
static ngx_int_t
ngx_http_vconv_tus_answer(ngx_http_request_t *r,
    ngx_http_vconv_tus_ctx_t *ctx)
{
    u_char                     *loc, *json;
    size_t                      len;
    ngx_uint_t                  gone;
    vconv_job_info_t            info;
    ngx_http_vconv_node_t      *node;
    ngx_http_vconv_tus_node_t   t;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_vconv_zone_t      *z;

    z = ctx->zone;

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_http_vconv_zone_lookup_locked(z, &ctx->id);
    gone = (node == NULL || node->removing);

    if (!gone) {
        t = node->tus;
        info = node->info;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (gone) {
        return ngx_http_vconv_reply_not_found(r, "the upload was terminated");
    }

    if (ngx_http_vconv_tus_offset_header(r, "Upload-Offset", t.offset)
        != NGX_OK
        || ngx_http_vconv_tus_expires_header(r,
                                   t.offset < t.length ? t.expires
                                                       : info.expires)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->status != NGX_HTTP_CREATED) {
        return ngx_http_vconv_reply_no_content(r);
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    /* the location's prefix and the id: where the PATCHes go */
    len = clcf->name.len + 1 + ctx->id.len;

    loc = ngx_pnalloc(r->pool, len);
    if (loc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_sprintf(loc, "%V%s%V", &clcf->name,
                      (clcf->name.len && clcf->name.data[clcf->name.len - 1]
                                         == '/') ? "" : "/",
                      &ctx->id)
          - loc;

    if (ngx_http_vconv_reply_header(r, "Location", loc, len) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json = ngx_http_vconv_reply_job_json(r->pool, &info,
                                         (char *) ctx->vlcf->jobs_uri.data,
                                         0, &len);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_vconv_reply_json(r, NGX_HTTP_CREATED, json, len);
}


/* NGX_OK: an id; NGX_DECLINED: the location itself; NGX_ERROR: junk */
static ngx_int_t
ngx_http_vconv_tus_id(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char                    *p, *last;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    p = r->uri.data;
    last = p + r->uri.len;

    if (r->uri.len < clcf->name.len
        || ngx_strncmp(p, clcf->name.data, clcf->name.len) != 0)
    {
        return NGX_ERROR;
    }

    p += clcf->name.len;

    if (p < last && *p == '/') {
        p++;
    }

    if (p == last) {
        return NGX_DECLINED;
    }

    id->data = p;
    id->len = last - p;

    /* nothing else may ever reach a path */
    return vconv_id_valid((char *) id->data, id->len) ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_vconv_tus_number(ngx_table_elt_t *h, off_t *n)
{
    if (h->value.len == 0 || h->value.len > NGX_OFF_T_LEN) {
        return NGX_ERROR;
    }

    *n = ngx_atoof(h->value.data, h->value.len);

    return *n == NGX_ERROR ? NGX_ERROR : NGX_OK;
}


/* Tus-Resumable on every answer, and never a cached one */
static ngx_int_t
ngx_http_vconv_tus_common(ngx_http_request_t *r)
{
    return ngx_http_vconv_reply_header(r, "Tus-Resumable",
                                   (u_char *) NGX_HTTP_VCONV_TUS_VERSION,
                                   sizeof(NGX_HTTP_VCONV_TUS_VERSION) - 1);
}


static ngx_int_t
ngx_http_vconv_tus_offset_header(ngx_http_request_t *r, char *key, off_t n)
{
    u_char  *p;
    size_t   len;

    p = ngx_pnalloc(r->pool, NGX_OFF_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    len = ngx_sprintf(p, "%O", n) - p;

    return ngx_http_vconv_reply_header(r, key, p, len);
}


static ngx_int_t
ngx_http_vconv_tus_expires_header(ngx_http_request_t *r, time_t t)
{
    u_char  *p;
    size_t   len;

    if (t == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, sizeof("Mon, 28 Sep 1970 06:00:00 GMT"));
    if (p == NULL) {
        return NGX_ERROR;
    }

    len = ngx_http_time(p, t) - p;

    return ngx_http_vconv_reply_header(r, "Upload-Expires", p, len);
}


/*
 * vconv_cors: an allowed Origin gets itself back with the headers a tus
 * client must read; a preflight (OPTIONS with Access-Control-Request-
 * Method) also the methods and headers it may send.
 */
static ngx_int_t
ngx_http_vconv_tus_cors(ngx_http_request_t *r, ngx_uint_t preflight)
{
    ngx_str_t                  *o;
    ngx_uint_t                  i, ok;
    ngx_table_elt_t            *origin;
    ngx_http_vconv_loc_conf_t  *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vconv_module);

    if (vlcf->cors == NULL) {
        return NGX_OK;
    }

    origin = ngx_http_vconv_header_in(r, "Origin");
    if (origin == NULL) {
        return NGX_OK;
    }

    o = vlcf->cors->elts;
    ok = 0;

    for (i = 0; i < vlcf->cors->nelts; i++) {
        if ((o[i].len == 1 && o[i].data[0] == '*')
            || (o[i].len == origin->value.len
                && ngx_strncasecmp(o[i].data, origin->value.data,
                                   o[i].len) == 0))
        {
            ok = 1;
            break;
        }
    }

    if (ngx_http_vconv_reply_header(r, "Vary", (u_char *) "Origin", 6)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!ok) {
        return NGX_OK;
    }

#define NGX_HTTP_VCONV_TUS_EXPOSE                                            \
    "Location, Upload-Offset, Upload-Length, Upload-Expires, "               \
    "Upload-Metadata, Tus-Resumable, Tus-Version, Tus-Extension, "           \
    "Tus-Max-Size, Tus-Checksum-Algorithm"

#define NGX_HTTP_VCONV_TUS_ALLOW_HEADERS                                     \
    "Authorization, Content-Type, Origin, X-Requested-With, X-Request-ID, " \
    "X-HTTP-Method-Override, Upload-Length, Upload-Offset, Tus-Resumable, " \
    "Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum"

    if (ngx_http_vconv_reply_header(r, "Access-Control-Allow-Origin",
                                    origin->value.data, origin->value.len)
        != NGX_OK
        || ngx_http_vconv_reply_header(r, "Access-Control-Expose-Headers",
                                    (u_char *) NGX_HTTP_VCONV_TUS_EXPOSE,
                                    sizeof(NGX_HTTP_VCONV_TUS_EXPOSE) - 1)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!preflight
        || ngx_http_vconv_header_in(r, "Access-Control-Request-Method")
           == NULL)
    {
        return NGX_OK;
    }

    if (ngx_http_vconv_reply_header(r, "Access-Control-Allow-Methods",
                          (u_char *) "POST, HEAD, PATCH, DELETE, OPTIONS",
                          sizeof("POST, HEAD, PATCH, DELETE, OPTIONS") - 1)
        != NGX_OK
        || ngx_http_vconv_reply_header(r, "Access-Control-Allow-Headers",
                               (u_char *) NGX_HTTP_VCONV_TUS_ALLOW_HEADERS,
                               sizeof(NGX_HTTP_VCONV_TUS_ALLOW_HEADERS) - 1)
           != NGX_OK
        || ngx_http_vconv_reply_header(r, "Access-Control-Max-Age",
                                       (u_char *) "86400", 5)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_vconv_tus_fail(ngx_http_request_t *r, ngx_uint_t status,
    char *code, char *message)
{
    return ngx_http_vconv_reply_code(r, status, code, (u_char *) message,
                                     ngx_strlen(message));
}
