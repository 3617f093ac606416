/*
 * vconv: the answers every handler shares: JSON bodies and errors, the
 * converted file through nginx's own file machinery; and the lookup of a
 * request header they share.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_vconv.h"


#define NGX_HTTP_VCONV_JSON_SIZE  2048


static u_char  ngx_http_vconv_json_type[] = "application/json; charset=utf-8";

static ngx_int_t ngx_http_vconv_reply_path(ngx_http_request_t *r,
    vconv_job_info_t *info, char *file, const char *mime, const char *ext);


ngx_int_t
ngx_http_vconv_reply_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *json, size_t len)
{
    ngx_str_t  type;

    type.data = ngx_http_vconv_json_type;
    type.len = sizeof(ngx_http_vconv_json_type) - 1;

    return ngx_http_vconv_reply_body(r, status, &type, json, len);
}


/* every small answer of the module: no caching, no sniffing */
ngx_int_t
ngx_http_vconv_reply_body(ngx_http_request_t *r, ngx_uint_t status,
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

    if (ngx_http_vconv_reply_no_store(r) != NGX_OK) {
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
ngx_http_vconv_reply_error(ngx_http_request_t *r, vconv_error_t *err)
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

    return ngx_http_vconv_reply_json(r, vconv_error_http_status(err->code),
                                     json, n);
}


ngx_int_t
ngx_http_vconv_reply_output(ngx_http_request_t *r, vconv_job_info_t *info)
{
    return ngx_http_vconv_reply_output_n(r, info, 0);
}


/* output i of a list of formats: the file "output" or "output.NAME" */
ngx_int_t
ngx_http_vconv_reply_output_n(ngx_http_request_t *r, vconv_job_info_t *info,
    ngx_uint_t i)
{
    u_char                       file[48];
    ngx_str_t                    id;
    const vconv_format_t        *fmt;

    id.data = (u_char *) info->id;
    id.len = ngx_strnlen(id.data, VCONV_ID_MAX);

    fmt = NULL;

    if (info->out_format >= 0 && info->out_format < VCONV_FMT_COUNT) {
        fmt = vconv_format(info->out_format);
    }

    if (i > 0) {
        fmt = i < (ngx_uint_t) info->nouts && i < VCONV_MAX_OUTPUTS
              ? vconv_format((vconv_format_e) info->outs[i]) : NULL;
    }

    /* the id came from the zone, but it still names a path: check it */

    if (fmt == NULL || !vconv_id_valid((char *) id.data, id.len)) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "vconv: job \"%V\" has a bad id or format", &id);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (i == 0) {
        (void) ngx_sprintf(file, "output%Z");

    } else {
        (void) ngx_snprintf(file, sizeof(file) - 1, "output.%s%Z",
                            fmt->name);
        file[sizeof(file) - 1] = '\0';
    }

    return ngx_http_vconv_reply_path(r, info, (char *) file, fmt->mime,
                                     fmt->ext);
}


/*
 * A file of the job's folder (file: a name of ours, never the client's)
 * through nginx's file serving; Content-Disposition with ext only.
 */
static ngx_int_t
ngx_http_vconv_reply_path(ngx_http_request_t *r, vconv_job_info_t *info,
    char *file, const char *mime, const char *ext)
{
    u_char                      *cd;
    size_t                       len, n;
    ngx_str_t                    id, path;
    ngx_open_file_info_t         of;
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_vconv_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vconv_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    id.data = (u_char *) info->id;
    id.len = ngx_strnlen(id.data, VCONV_ID_MAX);

    path.data = ngx_http_vconv_store_path(r->pool, vmcf, &id, file);
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
            return ngx_http_vconv_reply_not_found(r, "the output is gone");
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

    r->headers_out.content_type.data = (u_char *) mime;
    r->headers_out.content_type.len = ngx_strlen(mime);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (ext == NULL) {
        n = 0;
        cd = NULL;
        goto nosniff;
    }

    len = 512;

    for ( ;; ) {
        cd = ngx_pnalloc(r->pool, len);
        if (cd == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        n = vconv_content_disposition(info->in_name,
                                      ngx_strnlen((u_char *) info->in_name,
                                                  VCONV_NAME_MAX),
                                      ext, (char *) cd, len);
        if (n < len) {
            break;
        }

        len = n + 1;
    }

    if (ngx_http_vconv_reply_header(r, "Content-Disposition", cd, n)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

nosniff:

    if (ngx_http_vconv_reply_header(r, "X-Content-Type-Options",
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

    return ngx_http_vconv_reply_file(r, &of, &path);
}


/* the headers as set, then the whole file: the body of an answer */
ngx_int_t
ngx_http_vconv_reply_file(ngx_http_request_t *r, ngx_open_file_info_t *of,
    ngx_str_t *path)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

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
    b->file_last = of->size;

    b->in_file = b->file_last ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    b->file->fd = of->fd;
    b->file->name = *path;
    b->file->log = r->connection->log;
    b->file->directio = of->is_directio;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_vconv_reply_header(ngx_http_request_t *r, char *key, u_char *value,
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


/* an answer about a job's state: never cached, never sniffed */
ngx_int_t
ngx_http_vconv_reply_no_store(ngx_http_request_t *r)
{
    if (ngx_http_vconv_reply_header(r, "Cache-Control",
                                    (u_char *) "no-store", 8)
        != NGX_OK
        || ngx_http_vconv_reply_header(r, "X-Content-Type-Options",
                                       (u_char *) "nosniff", 7)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * For the answers vconv_err_e has no code for (not_found, not_ready,
 * method_not_allowed): the same JSON shape as vconv_error_json.
 */

ngx_int_t
ngx_http_vconv_reply_code(ngx_http_request_t *r, ngx_uint_t status,
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

    return ngx_http_vconv_reply_json(r, status, (u_char *) json, pos);
}


ngx_int_t
ngx_http_vconv_reply_not_found(ngx_http_request_t *r, char *message)
{
    return ngx_http_vconv_reply_code(r, NGX_HTTP_NOT_FOUND, "not_found",
                                     (u_char *) message, ngx_strlen(message));
}


ngx_int_t
ngx_http_vconv_reply_not_allowed(ngx_http_request_t *r, char *allow)
{
    if (ngx_http_vconv_reply_header(r, "Allow", (u_char *) allow,
                                    ngx_strlen(allow))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_vconv_reply_code(r, NGX_HTTP_NOT_ALLOWED,
                                     "method_not_allowed",
                                     (u_char *) "method not allowed", 18);
}


u_char *
ngx_http_vconv_reply_job_json(ngx_pool_t *pool, vconv_job_info_t *info,
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


ngx_int_t
ngx_http_vconv_reply_no_content(ngx_http_request_t *r)
{
    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    return ngx_http_send_header(r);
}


/* a file of the job's hls/ folder, by a name the caller checked */
ngx_int_t
ngx_http_vconv_reply_hls(ngx_http_request_t *r, vconv_job_info_t *info,
    u_char *name, size_t len, const char *mime)
{
    u_char  *file;

    if (!vconv_id_valid(info->id, ngx_strnlen((u_char *) info->id,
                                              VCONV_ID_MAX)))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    file = ngx_pnalloc(r->pool, len + sizeof("hls/"));
    if (file == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) ngx_sprintf(file, "hls/%*s%Z", len, name);

    return ngx_http_vconv_reply_path(r, info, (char *) file, mime, NULL);
}


/* the first request header of this name (any case), NULL: none */
ngx_table_elt_t *
ngx_http_vconv_header_in(ngx_http_request_t *r, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}
