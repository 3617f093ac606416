
/*
 * vconv: GET /api/presets (what the page may offer) and GET /api/metrics
 * (Prometheus text format 0.0.4).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_vconv.h"


#define NGX_HTTP_VCONV_JOB_STATES  (VCONV_JOB_CANCELED + 1)


typedef struct {
    ngx_uint_t                  jobs[NGX_HTTP_VCONV_JOB_STATES];
    ngx_uint_t                  njobs;
    off_t                       store_bytes;
    ngx_http_vconv_counters_t   counters;
} ngx_http_vconv_metrics_t;


static void ngx_http_vconv_metrics_collect(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_metrics_t *m);


static u_char  ngx_http_vconv_metrics_type[] = "text/plain; version=0.0.4";

static char  *ngx_http_vconv_results[] = { "done", "failed", "canceled" };


ngx_int_t
ngx_http_vconv_presets_handler(ngx_http_request_t *r)
{
    char                        one[1];
    u_char                     *json;
    size_t                      len;
    ngx_str_t                   list;
    ngx_http_vconv_loc_conf_t  *vlcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_vconv_reply_not_allowed(r, "GET, HEAD");
    }

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vconv_module);

    len = vconv_presets_json(one, 0, (unsigned) vlcf->formats);

    json = ngx_pnalloc(r->pool, len + 1);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = vconv_presets_json((char *) json, len + 1,
                             (unsigned) vlcf->formats);

    list.data = json;
    list.len = len;

    if (ngx_http_vconv_preset_list(r, &list) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_vconv_reply_json(r, NGX_HTTP_OK, list.data, list.len);
}


ngx_int_t
ngx_http_vconv_status_handler(ngx_http_request_t *r)
{
    u_char                      *text, *p, *end;
    size_t                       size;
    ngx_str_t                    type;
    ngx_uint_t                   i, waiting;
    ngx_http_vconv_zone_t       *z;
    ngx_http_vconv_metrics_t     m;
    ngx_http_vconv_main_conf_t  *vmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_vconv_reply_not_allowed(r, "GET, HEAD");
    }

    z = ngx_http_vconv_zone(r);
    if (z == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vconv_module);

    ngx_http_vconv_metrics_collect(z, &m);

    /* fixed text plus one line per error code, each well under 128 */
    size = 4096 + VCONV_E_COUNT * 128;

    text = ngx_pnalloc(r->pool, size);
    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = text;
    end = text + size;

    p = ngx_slprintf(p, end,
            "# HELP vconv_jobs Jobs in the registry by state.\n"
            "# TYPE vconv_jobs gauge\n");

    for (i = 0; i < NGX_HTTP_VCONV_JOB_STATES; i++) {
        p = ngx_slprintf(p, end, "vconv_jobs{state=\"%s\"} %ui\n",
                         vconv_status_name((vconv_status_e) i), m.jobs[i]);
    }

    p = ngx_slprintf(p, end,
            "# HELP vconv_jobs_finished_total Jobs that ended, by result.\n"
            "# TYPE vconv_jobs_finished_total counter\n");

    for (i = 0; i < 3; i++) {
        p = ngx_slprintf(p, end,
                         "vconv_jobs_finished_total{result=\"%s\"} %ui\n",
                         ngx_http_vconv_results[i], m.counters.finished[i]);
    }

    /* accepted = done + failed + canceled + uploading + queued + running */
    p = ngx_slprintf(p, end,
            "# HELP vconv_jobs_accepted_total Uploads that became jobs.\n"
            "# TYPE vconv_jobs_accepted_total counter\n"
            "vconv_jobs_accepted_total %ui\n", m.counters.accepted);

    p = ngx_slprintf(p, end,
            "# HELP vconv_job_errors_total Failed jobs and refused "
            "requests, by error code.\n"
            "# TYPE vconv_job_errors_total counter\n");

    for (i = 1; i < VCONV_E_COUNT; i++) {
        if (m.counters.errors[i] == 0) {
            continue;
        }

        p = ngx_slprintf(p, end, "vconv_job_errors_total{code=\"%s\"} %ui\n",
                         vconv_error_name((vconv_err_e) i),
                         m.counters.errors[i]);
    }

    waiting = m.jobs[VCONV_JOB_UPLOADING] + m.jobs[VCONV_JOB_QUEUED];

    p = ngx_slprintf(p, end,
            "# HELP vconv_queue_length Jobs uploading or waiting for "
            "a thread.\n"
            "# TYPE vconv_queue_length gauge\n"
            "vconv_queue_length %ui\n"
            "# HELP vconv_bytes_in_total Bytes of uploaded input.\n"
            "# TYPE vconv_bytes_in_total counter\n"
            "vconv_bytes_in_total %ui\n"
            "# HELP vconv_bytes_out_total Bytes of converted output.\n"
            "# TYPE vconv_bytes_out_total counter\n"
            "vconv_bytes_out_total %ui\n"
            "# HELP vconv_transcode_seconds_total Time spent "
            "transcoding.\n"
            "# TYPE vconv_transcode_seconds_total counter\n"
            "vconv_transcode_seconds_total %.3f\n"
            "# HELP vconv_store_bytes Bytes the jobs hold in the store.\n"
            "# TYPE vconv_store_bytes gauge\n"
            "vconv_store_bytes %O\n"
            "# HELP vconv_store_max_bytes Bound of the store, "
            "0 for none.\n"
            "# TYPE vconv_store_max_bytes gauge\n"
            "vconv_store_max_bytes %O\n"
            "# HELP vconv_jobs_in_zone Job records in shared memory.\n"
            "# TYPE vconv_jobs_in_zone gauge\n"
            "vconv_jobs_in_zone %ui\n",
            waiting, m.counters.bytes_in, m.counters.bytes_out,
            m.counters.transcode_seconds, m.store_bytes, vmcf->max_size,
            m.njobs);

    if (p == end) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "vconv: metrics do not fit in %uz bytes", size);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    type.data = ngx_http_vconv_metrics_type;
    type.len = sizeof(ngx_http_vconv_metrics_type) - 1;

    return ngx_http_vconv_reply_body(r, NGX_HTTP_OK, &type, text, p - text);
}


/* one pass under the lock, so the numbers agree with each other */

static void
ngx_http_vconv_metrics_collect(ngx_http_vconv_zone_t *z,
    ngx_http_vconv_metrics_t *m)
{
    ngx_queue_t            *q;
    ngx_http_vconv_node_t  *node;

    ngx_memzero(m, sizeof(ngx_http_vconv_metrics_t));

    ngx_shmtx_lock(&z->shpool->mutex);

    for (q = ngx_queue_head(&z->sh->queue);
         q != ngx_queue_sentinel(&z->sh->queue);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_vconv_node_t, queue);

        /* as good as gone: job_get already answers 404 for it */
        if (node->removing) {
            continue;
        }

        if ((ngx_uint_t) node->info.status < NGX_HTTP_VCONV_JOB_STATES) {
            m->jobs[node->info.status]++;
        }
    }

    m->njobs = z->sh->njobs;
    m->store_bytes = z->sh->store_bytes;
    m->counters = z->sh->counters;

    ngx_shmtx_unlock(&z->shpool->mutex);
}
