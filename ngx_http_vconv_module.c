/*
 * vconv: directives, configuration, module and process init.
 * The work itself is in src/.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_vconv.h"


extern ngx_module_t  ngx_thread_pool_module;


static ngx_int_t ngx_http_vconv_add_variables(ngx_conf_t *cf);
static void *ngx_http_vconv_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_vconv_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_vconv_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_vconv_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_vconv_handler_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_vconv_zone_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_vconv_store_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_vconv_formats_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_vconv_input_formats_slot(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_vconv_resolution_slot(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_vconv_node_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_vconv_per_client_slot(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_vconv_add_zone(ngx_conf_t *cf,
    ngx_http_vconv_main_conf_t *vmcf, ssize_t size);
static ngx_int_t ngx_http_vconv_add_pool(ngx_conf_t *cf,
    ngx_http_vconv_main_conf_t *vmcf);
static ngx_int_t ngx_http_vconv_init_process(ngx_cycle_t *cycle);
static void ngx_http_vconv_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_vconv_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#define NGX_HTTP_VCONV_ZONE_SIZE  (16 * 1024 * 1024)


static ngx_conf_num_bounds_t  ngx_http_vconv_threads_bounds = {
    ngx_conf_check_num_bounds, 0, 64
};

static ngx_conf_num_bounds_t  ngx_http_vconv_priority_bounds = {
    ngx_conf_check_num_bounds, 0, 19
};

static ngx_conf_num_bounds_t  ngx_http_vconv_frames_bounds = {
    ngx_conf_check_num_bounds, 1, NGX_MAX_INT_T_VALUE
};


static ngx_conf_num_bounds_t  ngx_http_vconv_running_bounds = {
    ngx_conf_check_num_bounds, 1, 1024
};

static ngx_conf_enum_t  ngx_http_vconv_priority_classes[] = {
    { ngx_string("high"), NGX_HTTP_VCONV_PRIO_HIGH },
    { ngx_string("normal"), NGX_HTTP_VCONV_PRIO_NORMAL },
    { ngx_string("low"), NGX_HTTP_VCONV_PRIO_LOW },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_vconv_isolation[] = {
    { ngx_string("process"), NGX_HTTP_VCONV_ISO_PROCESS },
    { ngx_string("thread"), NGX_HTTP_VCONV_ISO_THREAD },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_vconv_commands[] = {

    { ngx_string("vconv_upload"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_vconv_handler_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VCONV_H_UPLOAD,
      NULL },

    { ngx_string("vconv_jobs"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_vconv_handler_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VCONV_H_JOBS,
      NULL },

    { ngx_string("vconv_presets"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_vconv_handler_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VCONV_H_PRESETS,
      NULL },

    { ngx_string("vconv_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_vconv_handler_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VCONV_H_STATUS,
      NULL },

    { ngx_string("vconv_formats"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_vconv_formats_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vconv_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_vconv_zone_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vconv_store"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_vconv_store_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vconv_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, thread_pool_name),
      NULL },

    { ngx_string("vconv_max_queue"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, max_queue),
      NULL },

    { ngx_string("vconv_input_formats"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_vconv_input_formats_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vconv_max_resolution"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_vconv_resolution_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vconv_max_duration"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, max_duration),
      NULL },

    { ngx_string("vconv_max_frames"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, max_frames),
      &ngx_http_vconv_frames_bounds },

    { ngx_string("vconv_max_output_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, max_output),
      NULL },

    { ngx_string("vconv_stall_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, stall_timeout),
      NULL },

    { ngx_string("vconv_codec_threads"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, codec_threads),
      &ngx_http_vconv_threads_bounds },

    { ngx_string("vconv_priority"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, priority),
      &ngx_http_vconv_priority_bounds },

    { ngx_string("vconv_node"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_vconv_node_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vconv_isolation"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, isolation),
      &ngx_http_vconv_isolation },

    { ngx_string("vconv_job_memory"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, job_memory),
      NULL },

    { ngx_string("vconv_quarantine"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, quarantine),
      NULL },

    { ngx_string("vconv_sandbox_helper"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, sandbox_helper),
      NULL },

    { ngx_string("vconv_sandbox_spare_idle"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, spare_idle),
      NULL },

    { ngx_string("vconv_sandbox_idle"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, sandbox_idle),
      NULL },

    { ngx_string("vconv_failed_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, failed_ttl),
      NULL },

    { ngx_string("vconv_max_jobs_per_client"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_vconv_per_client_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vconv_preset"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_vconv_preset_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vconv_presets_only"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_vconv_loc_conf_t, presets_only),
      NULL },

    { ngx_string("vconv_max_running"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, max_running),
      &ngx_http_vconv_running_bounds },

    { ngx_string("vconv_priority_class"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_vconv_loc_conf_t, priority_class),
      &ngx_http_vconv_priority_classes },

    { ngx_string("vconv_http2_window"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_vconv_loc_conf_t, h2_window),
      NULL },

    { ngx_string("vconv_http2_window_total"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, h2_window_total),
      NULL },

    { ngx_string("vconv_min_upload_rate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, min_upload_rate),
      NULL },

    { ngx_string("vconv_priority_aging"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vconv_main_conf_t, priority_aging),
      NULL },

    { ngx_string("vconv_tus"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_vconv_tus_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vconv_tus_expires"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_vconv_loc_conf_t, tus_expires),
      NULL },

    { ngx_string("vconv_cors"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_vconv_cors_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_vconv_module_ctx = {
    ngx_http_vconv_add_variables,          /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_vconv_create_main_conf,       /* create main configuration */
    ngx_http_vconv_init_main_conf,         /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_vconv_create_loc_conf,        /* create location configuration */
    ngx_http_vconv_merge_loc_conf          /* merge location configuration */
};


ngx_module_t  ngx_http_vconv_module = {
    NGX_MODULE_V1,
    &ngx_http_vconv_module_ctx,            /* module context */
    ngx_http_vconv_commands,               /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_vconv_init_process,           /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_vconv_exit_process,           /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_vconv_vars[] = {

    { ngx_string("vconv_job_id"), NULL, ngx_http_vconv_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("vconv_job_status"), NULL, ngx_http_vconv_variable,
      1, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_vconv_zone_name = ngx_string("vconv");
static ngx_str_t  ngx_http_vconv_pool_name = ngx_string("vconv");


static void *
ngx_http_vconv_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_vconv_main_conf_t  *vmcf;

    vmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_vconv_main_conf_t));
    if (vmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     vmcf->shm_zone = NULL;
     *     vmcf->store = { 0, NULL };
     *     vmcf->thread_pool_name = { 0, NULL };
     *     vmcf->node = { 0, NULL };
     *     vmcf->input_formats = { 0, NULL };
     */

    vmcf->zone_size = NGX_CONF_UNSET;
    vmcf->max_size = NGX_CONF_UNSET;
    vmcf->ttl = NGX_CONF_UNSET;
    vmcf->max_queue = NGX_CONF_UNSET_UINT;
    vmcf->max_width = NGX_CONF_UNSET;
    vmcf->max_height = NGX_CONF_UNSET;
    vmcf->max_duration = NGX_CONF_UNSET_MSEC;
    vmcf->max_frames = NGX_CONF_UNSET;
    vmcf->max_output = NGX_CONF_UNSET;
    vmcf->stall_timeout = NGX_CONF_UNSET_MSEC;
    vmcf->codec_threads = NGX_CONF_UNSET;
    vmcf->priority = NGX_CONF_UNSET;
    vmcf->isolation = NGX_CONF_UNSET_UINT;
    vmcf->job_memory = NGX_CONF_UNSET;
    vmcf->spare_idle = NGX_CONF_UNSET_MSEC;
    vmcf->sandbox_idle = NGX_CONF_UNSET_MSEC;
    vmcf->failed_ttl = NGX_CONF_UNSET;
    vmcf->max_running = NGX_CONF_UNSET_UINT;
    vmcf->min_upload_rate = NGX_CONF_UNSET_SIZE;
    vmcf->h2_window_total = NGX_CONF_UNSET_SIZE;
    vmcf->priority_aging = NGX_CONF_UNSET_MSEC;

    return vmcf;
}


static char *
ngx_http_vconv_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_vconv_main_conf_t *vmcf = conf;

    ngx_str_t  store = ngx_string("vconv");

    if (vmcf->store.len == 0) {
        if (ngx_conf_full_name(cf->cycle, &store, 0) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
        vmcf->store = store;
    }

    ngx_conf_init_value(vmcf->max_size, 0);
    ngx_conf_init_value(vmcf->ttl, 3600);
    ngx_conf_init_uint_value(vmcf->max_queue, 64);
    ngx_conf_init_value(vmcf->max_width, 7680);
    ngx_conf_init_value(vmcf->max_height, 4320);
    ngx_conf_init_msec_value(vmcf->max_duration, 4 * 3600 * 1000);
    ngx_conf_init_value(vmcf->max_frames, VCONV_MAX_FRAMES);
    ngx_conf_init_value(vmcf->max_output, (off_t) 4 * 1024 * 1024 * 1024);
    ngx_conf_init_msec_value(vmcf->stall_timeout, 60000);
    /* vmcf->codec_threads left unset: the slots decide */

    /*
     * Half the CPUs: a lone job's decoder, filters and encoder threads
     * keep about two cores busy, and a burst finishes sooner on average
     * when each job has them than when every job shares all of them
     * (bench/RESULTS.md, section 8).
     */
    ngx_conf_init_uint_value(vmcf->max_running, ngx_max(ngx_ncpu / 2, 1));
    ngx_conf_init_size_value(vmcf->min_upload_rate, 0);
    ngx_conf_init_size_value(vmcf->h2_window_total,
                             NGX_HTTP_VCONV_H2_WINDOW_TOTAL);
    ngx_conf_init_msec_value(vmcf->priority_aging, 30000);
    ngx_conf_init_value(vmcf->priority, 10);
    ngx_conf_init_value(vmcf->failed_ttl, 300);

    if (vmcf->input_formats.len == 0) {
        ngx_str_set(&vmcf->input_formats, VCONV_DEFAULT_INPUT_FORMATS);
    }

    /*
     * A loaded module costs nothing until a location uses it: the zone,
     * the store and the thread pool exist only for vconv_upload,
     * vconv_jobs and vconv_status.
     */

    if (!vmcf->used) {
        return NGX_CONF_OK;
    }

    if (ngx_http_vconv_store_add_path(cf, vmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_vconv_add_zone(cf, vmcf,
                                vmcf->zone_size == NGX_CONF_UNSET
                                ? NGX_HTTP_VCONV_ZONE_SIZE
                                : vmcf->zone_size)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_vconv_add_pool(cf, vmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_vconv_sandbox_conf(cf, vmcf);
}


static void *
ngx_http_vconv_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_vconv_loc_conf_t  *vlcf;

    vlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_vconv_loc_conf_t));
    if (vlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     vlcf->handler = NGX_HTTP_VCONV_H_NONE;
     *     vlcf->jobs_uri = { 0, NULL };
     */

    vlcf->formats = NGX_CONF_UNSET_UINT;
    vlcf->max_per_client = NGX_CONF_UNSET_UINT;
    vlcf->client_key = NGX_CONF_UNSET_PTR;
    vlcf->presets = NGX_CONF_UNSET_PTR;
    vlcf->presets_only = NGX_CONF_UNSET;
    vlcf->priority_class = NGX_CONF_UNSET_UINT;
    vlcf->h2_window = NGX_CONF_UNSET_SIZE;
    vlcf->tus_expires = NGX_CONF_UNSET;
    vlcf->cors = NGX_CONF_UNSET_PTR;

    return vlcf;
}


static char *
ngx_http_vconv_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_vconv_loc_conf_t *prev = parent;
    ngx_http_vconv_loc_conf_t *conf = child;

    ngx_conf_merge_uint_value(conf->formats, prev->formats, VCONV_FMT_ALL);
    ngx_conf_merge_uint_value(conf->max_per_client, prev->max_per_client, 0);
    ngx_conf_merge_ptr_value(conf->client_key, prev->client_key, NULL);
    ngx_conf_merge_uint_value(conf->priority_class, prev->priority_class,
                              NGX_HTTP_VCONV_PRIO_NORMAL);
    ngx_conf_merge_value(conf->tus_expires, prev->tus_expires, 3600);
    ngx_conf_merge_ptr_value(conf->cors, prev->cors, NULL);

    if (ngx_http_vconv_h2_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_vconv_preset_merge(cf, prev, conf);
}


/*
 * vconv_upload [jobs_uri], vconv_jobs, vconv_presets, vconv_status: each
 * makes its location a content handler.  The jobs URI prefix is what the
 * Location header and output URLs are built from.
 */
static char *
ngx_http_vconv_handler_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vconv_loc_conf_t *vlcf = conf;

    u_char                      *p;
    ngx_str_t                   *value, uri;
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_vconv_main_conf_t  *vmcf;

    if (vlcf->handler != NGX_HTTP_VCONV_H_NONE) {
        return "is duplicate";
    }

    vlcf->handler = cmd->offset;

    if (vlcf->handler != NGX_HTTP_VCONV_H_PRESETS) {
        vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_vconv_module);
        vmcf->used = 1;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    value = cf->args->elts;

    switch (vlcf->handler) {

    case NGX_HTTP_VCONV_H_UPLOAD:
        clcf->handler = ngx_http_vconv_upload_handler;

        /* only then does a worker need a sandbox helper */
        vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_vconv_module);
        vmcf->uploads = 1;

        if (cf->args->nelts == 2) {
            uri = value[1];

        } else {
            uri = clcf->name;
        }

        break;

    case NGX_HTTP_VCONV_H_JOBS:
        clcf->handler = ngx_http_vconv_jobs_handler;
        uri = clcf->name;
        break;

    case NGX_HTTP_VCONV_H_PRESETS:
        clcf->handler = ngx_http_vconv_presets_handler;
        return NGX_CONF_OK;

    default: /* NGX_HTTP_VCONV_H_STATUS */
        clcf->handler = ngx_http_vconv_status_handler;
        return NGX_CONF_OK;
    }

    if (uri.len == 0 || uri.data[0] != '/') {
        return "needs a location or a jobs URI that starts with \"/\"";
    }

    /* "/api/jobs" and "/api/jobs/" both mean the prefix "/api/jobs/" */

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


static ngx_int_t
ngx_http_vconv_add_zone(ngx_conf_t *cf, ngx_http_vconv_main_conf_t *vmcf,
    ssize_t size)
{
    ngx_http_vconv_zone_t  *z;

    z = ngx_pcalloc(cf->pool, sizeof(ngx_http_vconv_zone_t));
    if (z == NULL) {
        return NGX_ERROR;
    }

    z->conf = vmcf;

    vmcf->shm_zone = ngx_shared_memory_add(cf, &ngx_http_vconv_zone_name,
                                           size, &ngx_http_vconv_module);
    if (vmcf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    vmcf->shm_zone->init = ngx_http_vconv_zone_init;
    vmcf->shm_zone->data = z;

    return NGX_OK;
}


static char *
ngx_http_vconv_zone_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vconv_main_conf_t *vmcf = conf;

    ssize_t     size;
    ngx_str_t  *value;

    if (vmcf->zone_size != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "vconv: invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    /* the zone is made at the end of http{}, if a location uses it */
    vmcf->zone_size = size;

    return NGX_CONF_OK;
}


static char *
ngx_http_vconv_store_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vconv_main_conf_t *vmcf = conf;

    ngx_str_t   *value, s;
    ngx_uint_t   i;

    if (vmcf->store.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    vmcf->store = value[1];

    while (vmcf->store.len > 1
           && vmcf->store.data[vmcf->store.len - 1] == '/')
    {
        vmcf->store.len--;
    }

    if (ngx_conf_full_name(cf->cycle, &vmcf->store, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "max_size=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            vmcf->max_size = ngx_parse_offset(&s);
            if (vmcf->max_size < 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            vmcf->ttl = ngx_parse_time(&s, 1);
            if (vmcf->ttl == (time_t) NGX_ERROR || vmcf->ttl == 0) {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "vconv: invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_vconv_formats_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vconv_loc_conf_t *vlcf = conf;

    unsigned        mask;
    ngx_str_t      *value;
    ngx_uint_t      i;
    vconv_error_t   err;

    if (vlcf->formats != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    vlcf->formats = 0;

    for (i = 1; i < cf->args->nelts; i++) {
        if (vconv_formats_mask((char *) value[i].data, value[i].len, &mask,
                               &err)
            != VCONV_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "vconv: %s",
                               err.message);
            return NGX_CONF_ERROR;
        }

        vlcf->formats |= mask;
    }

    return NGX_CONF_OK;
}


/* the list is handed to libav as a comma list: join the arguments */
static char *
ngx_http_vconv_input_formats_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_vconv_main_conf_t *vmcf = conf;

    u_char      *p, c;
    size_t       len;
    ngx_str_t   *value;
    ngx_uint_t   i, j;

    if (vmcf->input_formats.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    len = 0;

    for (i = 1; i < cf->args->nelts; i++) {
        for (j = 0; j < value[i].len; j++) {
            c = value[i].data[j];

            if (!(c == ',' || c == '_' || (c >= 'a' && c <= 'z')
                  || (c >= '0' && c <= '9')))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "vconv: invalid format name \"%V\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }
        }

        len += value[i].len + 1;
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    vmcf->input_formats.data = p;

    for (i = 1; i < cf->args->nelts; i++) {
        if (i > 1) {
            *p++ = ',';
        }
        p = ngx_cpymem(p, value[i].data, value[i].len);
    }

    *p = '\0';
    vmcf->input_formats.len = p - vmcf->input_formats.data;

    return NGX_CONF_OK;
}


static char *
ngx_http_vconv_resolution_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_vconv_main_conf_t *vmcf = conf;

    u_char     *x;
    ngx_str_t  *value;

    if (vmcf->max_width != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    x = ngx_strlchr(value[1].data, value[1].data + value[1].len, 'x');
    if (x == NULL) {
        goto invalid;
    }

    vmcf->max_width = ngx_atoi(value[1].data, x - value[1].data);
    vmcf->max_height = ngx_atoi(x + 1, value[1].data + value[1].len - x - 1);

    if (vmcf->max_width < 16 || vmcf->max_height < 16
        || vmcf->max_width > 32768 || vmcf->max_height > 32768)
    {
        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "vconv: invalid resolution \"%V\", "
                       "expected WIDTHxHEIGHT", &value[1]);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_vconv_node_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vconv_main_conf_t *vmcf = conf;

    u_char      c;
    ngx_str_t  *value;
    ngx_uint_t  i;

    if (vmcf->node.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > 48) {
        goto invalid;
    }

    for (i = 0; i < value[1].len; i++) {
        c = value[1].data[i];

        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9')))
        {
            goto invalid;
        }
    }

    vmcf->node = value[1];

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "vconv: invalid node name \"%V\", expected 1-48 of "
                       "[A-Za-z0-9_]", &value[1]);

    return NGX_CONF_ERROR;
}


/*
 * Without vconv_thread_pool the module defines its own pool, one thread
 * per CPU: the same as "thread_pool vconv threads=N;" in the main context,
 * which the thread pool module's own directive handler is asked to do.
 */
static ngx_int_t
ngx_http_vconv_add_pool(ngx_conf_t *cf, ngx_http_vconv_main_conf_t *vmcf)
{
    u_char         *p;
    char           *rv;
    ngx_str_t      *arg;
    ngx_array_t    *args, *saved;
    ngx_command_t  *cmd;

    if (vmcf->thread_pool_name.len) {
        vmcf->thread_pool = ngx_thread_pool_add(cf, &vmcf->thread_pool_name);
        return vmcf->thread_pool ? NGX_OK : NGX_ERROR;
    }

    vmcf->thread_pool_name = ngx_http_vconv_pool_name;

    vmcf->thread_pool = ngx_thread_pool_get(cf->cycle,
                                            &vmcf->thread_pool_name);
    if (vmcf->thread_pool) {
        /* the operator defined "thread_pool vconv ..." */
        return NGX_OK;
    }

    args = ngx_array_create(cf->pool, 3, sizeof(ngx_str_t));
    if (args == NULL) {
        return NGX_ERROR;
    }

    arg = ngx_array_push_n(args, 3);
    if (arg == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&arg[0], "thread_pool");
    arg[1] = ngx_http_vconv_pool_name;

    p = ngx_pnalloc(cf->pool, sizeof("threads=") + NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    arg[2].data = p;
    arg[2].len = ngx_sprintf(p, "threads=%i", ngx_max(ngx_ncpu, 1)) - p;

    for (cmd = ngx_thread_pool_module.commands; cmd->name.len; cmd++) {
        if (ngx_strcmp(cmd->name.data, "thread_pool") == 0) {
            break;
        }
    }

    if (cmd->name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "vconv: no thread_pool directive in this nginx");
        return NGX_ERROR;
    }

    saved = cf->args;
    cf->args = args;
    rv = cmd->set(cf, cmd, NULL);
    cf->args = saved;

    if (rv != NGX_CONF_OK) {
        return NGX_ERROR;
    }

    vmcf->thread_pool = ngx_thread_pool_get(cf->cycle,
                                            &vmcf->thread_pool_name);

    return vmcf->thread_pool ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_vconv_init_process(ngx_cycle_t *cycle)
{
    ngx_http_vconv_main_conf_t  *vmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    vmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_vconv_module);
    if (vmcf == NULL || vmcf->shm_zone == NULL) {
        return NGX_OK;
    }

    vconv_log_init(ngx_http_vconv_av_log, 24 /* AV_LOG_WARNING */);

    ngx_http_vconv_store_init_process(cycle);

    if (ngx_http_vconv_sandbox_init_process(cycle, vmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* grants and cancels from other workers wake this one */
    if (ngx_http_vconv_sched_init_process(cycle, vmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* a worker takes the queued jobs an exiting worker offers */
    ngx_http_vconv_job_init_process(cycle, vmcf);

    return NGX_OK;
}


static void
ngx_http_vconv_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_vconv_sched_exit_process(cycle);
}


/*
 * libav's log lines, from any thread and from the sandboxed children.
 * The cycle's log has no handler that could touch a request, so it is
 * safe to write to from a pool thread.  libav's errors are about the input, not the server: they go
 * in at "warn", not "error".
 */
void
ngx_http_vconv_av_log(int level, const char *job, const char *msg)
{
    ngx_uint_t  nlevel;

    if (level <= 8) {             /* AV_LOG_FATAL and worse */
        nlevel = NGX_LOG_ERR;

    } else if (level <= 16) {     /* AV_LOG_ERROR */
        nlevel = NGX_LOG_WARN;

    } else {
        nlevel = NGX_LOG_INFO;
    }

    ngx_log_error(nlevel, ngx_cycle->log, 0, "vconv: job %s: %s",
                  job[0] ? job : "-", msg);
}


static ngx_int_t
ngx_http_vconv_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_vconv_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/*
 * $vconv_job_id and $vconv_job_status: the upload's own job, or the job a
 * /api/jobs/{id}... request names.
 */
static ngx_int_t
ngx_http_vconv_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char                     *p, *last;
    size_t                      len;
    ngx_str_t                   id;
    ngx_uint_t                  version, pos;
    vconv_job_info_t            info;
    ngx_http_vconv_ctx_t       *ctx;
    ngx_http_vconv_loc_conf_t  *vlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vconv_module);
    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vconv_module);

    if (vlcf->handler == NGX_HTTP_VCONV_H_TUS) {
        /* its context is the tus request's own */
        if (ngx_http_vconv_tus_job_id(r, &id) != NGX_OK) {
            v->not_found = 1;
            return NGX_OK;
        }

    } else if (ctx && ctx->job) {
        id.data = (u_char *) ctx->job->info.id;
        id.len = ngx_strlen(id.data);

    } else if (vlcf->handler == NGX_HTTP_VCONV_H_JOBS
               && r->uri.len > vlcf->jobs_uri.len)
    {
        p = r->uri.data + vlcf->jobs_uri.len;
        last = r->uri.data + r->uri.len;
        id.data = p;

        while (p < last && *p != '/') {
            p++;
        }

        id.len = p - id.data;

        if (!vconv_id_valid((char *) id.data, id.len)) {
            v->not_found = 1;
            return NGX_OK;
        }

    } else {
        v->not_found = 1;
        return NGX_OK;
    }

    if (data == 0) {
        v->data = id.data;
        v->len = id.len;

    } else {
        if (ngx_http_vconv_store_get(ngx_http_vconv_zone(r), &id, &info,
                                     &version, &pos)
            != NGX_OK)
        {
            ngx_str_set(v, "gone");
            v->valid = 1;
            v->no_cacheable = 1;
            v->not_found = 0;
            return NGX_OK;
        }

        v->data = (u_char *) vconv_status_name(info.status);
        len = ngx_strlen(v->data);
        v->len = len;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * vconv_max_jobs_per_client N [key=$variable]: at most N jobs in flight
 * (uploading, queued, running) per client; the key is the client's
 * address unless given (e.g. key=$remote_user, key=$http_x_api_key).
 */
static char *
ngx_http_vconv_per_client_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_vconv_loc_conf_t *vlcf = conf;

    ngx_int_t                          n;
    ngx_str_t                         *value, key;
    ngx_http_compile_complex_value_t   ccv;

    if (vlcf->max_per_client != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    vlcf->max_per_client = n;
    vlcf->client_key = NULL;

    if (cf->args->nelts == 2) {
        return NGX_CONF_OK;
    }

    if (value[2].len <= 4 || ngx_strncmp(value[2].data, "key=", 4) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    key.data = value[2].data + 4;
    key.len = value[2].len - 4;

    vlcf->client_key = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (vlcf->client_key == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &key;
    ccv.complex_value = vlcf->client_key;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
