/*
 * vconv: /api/jobs/{id}/outputs.zip (all outputs of a done job as one
 * STORED zip, headers built in memory from the job's zip.idx, the
 * outputs sent as file buffers) and /api/jobs/{id}/output/sprite.vtt.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_vconv.h"
#include "vconv_zip.h"


static ngx_int_t ngx_http_vconv_zip_open(ngx_http_request_t *r,
    u_char *path, ngx_open_file_info_t *of);
static ngx_int_t ngx_http_vconv_zip_disposition(ngx_http_request_t *r,
    vconv_job_info_t *info, char *ext);


ngx_int_t
ngx_http_vconv_zip_handler(ngx_http_request_t *r, vconv_job_info_t *info)
{
    int                          i, n;
    u_char                      *dir, *path, *cd, *p;
    size_t                       cd_len, dir_len;
    int64_t                      total;
    uint32_t                     dos, off;
    ngx_int_t                    rc;
    ngx_str_t                    id;
    ngx_buf_t                   *b;
    ngx_chain_t                 *out, **ll, *cl;
    vconv_error_t                err;
    vconv_zip_entry_t           *e;
    ngx_open_file_info_t         of;
    ngx_http_vconv_main_conf_t  *vmcf;

    static u_char  too_large[] = "the outputs are over 4 GiB, more than a "
                                 "zip without zip64 holds";

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vconv_module);

    id.data = (u_char *) info->id;
    id.len = ngx_strnlen(id.data, VCONV_ID_MAX);

    if (!vconv_id_valid((char *) id.data, id.len)) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "vconv: job \"%V\" has a bad id", &id);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    dir = ngx_http_vconv_store_path(r->pool, vmcf, &id, "");
    if (dir == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    dir_len = ngx_strlen(dir);

    e = ngx_palloc(r->pool, VCONV_ZIP_MAX_ENTRIES * sizeof(vconv_zip_entry_t));
    if (e == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a few hundred bytes, as job.json is read on the loop elsewhere */
    if (vconv_zip_load((char *) dir, e, VCONV_ZIP_MAX_ENTRIES, &n, &err)
        != VCONV_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "vconv: job \"%V\": %s", &id, err.message);
        return ngx_http_vconv_reply_not_found(r, "the outputs are gone");
    }

    if (n == 0) {
        return ngx_http_vconv_reply_not_found(r, "the job has no outputs");
    }

    total = vconv_zip_size(e, n);

    if (total < 0) {
        return ngx_http_vconv_reply_code(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                         "too_large", too_large,
                                         sizeof(too_large) - 1);
    }

    dos = vconv_zip_dos_time(info->finished);

    cd_len = 0;
    for (i = 0; i < n; i++) {
        cd_len += VCONV_ZIP_CENTRAL + ngx_strlen(e[i].name);
    }

    cd = ngx_pnalloc(r->pool, cd_len + VCONV_ZIP_END);
    if (cd == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    out = NULL;
    ll = &out;
    off = 0;
    p = cd;

    for (i = 0; i < n; i++) {
        path = ngx_pnalloc(r->pool, dir_len + ngx_strlen(e[i].path) + 1);
        if (path == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_sprintf(path, "%s%s%Z", dir, e[i].path);

        rc = ngx_http_vconv_zip_open(r, path, &of);
        if (rc != NGX_OK) {
            return rc;
        }

        if (of.size != e[i].size) {
            ngx_log_error(NGX_LOG_CRIT, r->connection->log, 0,
                          "vconv: \"%s\" changed after its job ended", path);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p += vconv_zip_central(&e[i], dos, off, p);

        /* the local header */
        b = ngx_create_temp_buf(r->pool,
                                VCONV_ZIP_LOCAL + ngx_strlen(e[i].name));
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        b->last += vconv_zip_local(&e[i], dos, b->pos);
        off += b->last - b->pos;

        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cl->buf = b;
        *ll = cl;
        ll = &cl->next;

        if (of.size == 0) {
            continue;
        }

        /* the body, straight from the file */
        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        b->file = ngx_pcalloc(r->pool, sizeof(ngx_file_t));
        if (b->file == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        b->in_file = 1;
        b->file_pos = 0;
        b->file_last = of.size;
        b->file->fd = of.fd;
        b->file->name.data = path;
        b->file->name.len = ngx_strlen(path);
        b->file->log = r->connection->log;
        b->file->directio = of.is_directio;
        off += (uint32_t) of.size;

        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cl->buf = b;
        *ll = cl;
        ll = &cl->next;
    }

    p += vconv_zip_end(n, (uint32_t) cd_len, off, p);

    b = ngx_calloc_buf(r->pool);
    cl = ngx_alloc_chain_link(r->pool);
    if (b == NULL || cl == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = cd;
    b->last = p;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    cl->buf = b;
    cl->next = NULL;
    *ll = cl;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = total;
    r->headers_out.last_modified_time = info->finished;

    ngx_str_set(&r->headers_out.content_type, "application/zip");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (ngx_http_vconv_zip_disposition(r, info, "zip") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, out);
}


/* output.sprite.vtt of a done sprite job, as text/vtt */
ngx_int_t
ngx_http_vconv_zip_vtt(ngx_http_request_t *r, vconv_job_info_t *info)
{
    u_char                      *path;
    ngx_int_t                    rc;
    ngx_str_t                    id, name;
    ngx_open_file_info_t         of;
    ngx_http_vconv_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vconv_module);

    id.data = (u_char *) info->id;
    id.len = ngx_strnlen(id.data, VCONV_ID_MAX);

    if (!vconv_id_valid((char *) id.data, id.len)) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    path = ngx_http_vconv_store_path(r->pool, vmcf, &id,
                                     "output.sprite.vtt");
    if (path == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_vconv_zip_open(r, path, &of);
    if (rc != NGX_OK) {
        return rc;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = of.size;
    r->headers_out.last_modified_time = of.mtime;

    ngx_str_set(&r->headers_out.content_type, "text/vtt; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    name.data = path;
    name.len = ngx_strlen(path);

    return ngx_http_vconv_reply_file(r, &of, &name);
}


/* through the open file cache: the descriptor is closed with the pool */
static ngx_int_t
ngx_http_vconv_zip_open(ngx_http_request_t *r, u_char *path,
    ngx_open_file_info_t *of)
{
    ngx_str_t                  name;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    name.data = path;
    name.len = ngx_strlen(path);

    ngx_memzero(of, sizeof(ngx_open_file_info_t));

    of->read_ahead = clcf->read_ahead;
    of->directio = clcf->directio;
    of->valid = clcf->open_file_cache_valid;
    of->min_uses = clcf->open_file_cache_min_uses;
    of->errors = clcf->open_file_cache_errors;
    of->events = clcf->open_file_cache_events;

    if (ngx_open_cached_file(clcf->open_file_cache, &name, of, r->pool)
        != NGX_OK)
    {
        if (of->err == NGX_ENOENT || of->err == NGX_ENOTDIR) {
            return ngx_http_vconv_reply_not_found(r, "the output is gone");
        }

        ngx_log_error(NGX_LOG_CRIT, r->connection->log, of->err,
                      "vconv: %s \"%s\" failed", of->failed, path);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!of->is_file) {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, 0,
                      "vconv: \"%s\" is not a regular file", path);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_vconv_zip_disposition(ngx_http_request_t *r, vconv_job_info_t *info,
    char *ext)
{
    u_char  *cd;
    size_t   len, n;

    len = 512;

    for ( ;; ) {
        cd = ngx_pnalloc(r->pool, len);
        if (cd == NULL) {
            return NGX_ERROR;
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

    return ngx_http_vconv_reply_header(r, "Content-Disposition", cd, n);
}
