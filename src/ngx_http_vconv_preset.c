/*
 * vconv: named presets.  vconv_preset NAME option=value ... [label=...];
 * names a set of options, checked at configuration time with the same
 * parser (and messages) as a request's; a request says preset=NAME and
 * may override them unless vconv_presets_only is on.  A level inherits
 * its parent's presets: one of the same name replaces the inherited one,
 * a new name adds to them.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_vconv.h"


#define NGX_HTTP_VCONV_PRESET_NAME_MAX   32
#define NGX_HTTP_VCONV_PRESET_LABEL_MAX  80


typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   label;      /* the name if none given */
    ngx_array_t                *options;    /* ngx_keyval_t, as written */
    ngx_uint_t                  format;     /* vconv_format_e it makes */
    ngx_str_t                   json;       /* its /api/presets entry */
} ngx_http_vconv_preset_t;


static ngx_int_t ngx_http_vconv_preset_label(ngx_conf_t *cf,
    ngx_str_t *value, ngx_uint_t *i, ngx_str_t *label);
static ngx_int_t ngx_http_vconv_preset_check(ngx_conf_t *cf,
    ngx_http_vconv_preset_t *p);
static ngx_int_t ngx_http_vconv_preset_to_json(ngx_conf_t *cf,
    ngx_http_vconv_preset_t *p);
static ngx_http_vconv_preset_t *ngx_http_vconv_preset_find(
    ngx_array_t *presets, u_char *name, size_t len);


/* vconv_preset NAME key=value ... [label=text | "label=text"]; */
char *
ngx_http_vconv_preset_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vconv_loc_conf_t *vlcf = conf;

    u_char                   *eq;
    ngx_str_t                *value;
    ngx_uint_t                i, k;
    ngx_keyval_t             *kv;
    ngx_http_vconv_preset_t  *p;

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > NGX_HTTP_VCONV_PRESET_NAME_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "vconv_preset: the name \"%V\" must be 1-%d "
                           "characters", &value[1],
                           NGX_HTTP_VCONV_PRESET_NAME_MAX);
        return NGX_CONF_ERROR;
    }

    for (k = 0; k < value[1].len; k++) {
        if (!(value[1].data[k] >= 'a' && value[1].data[k] <= 'z')
            && !(value[1].data[k] >= '0' && value[1].data[k] <= '9')
            && value[1].data[k] != '_' && value[1].data[k] != '-')
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "vconv_preset: the name \"%V\" may hold only "
                               "a-z, 0-9, \"_\" and \"-\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (vlcf->presets == NGX_CONF_UNSET_PTR) {
        vlcf->presets = ngx_array_create(cf->pool, 4,
                                         sizeof(ngx_http_vconv_preset_t));
        if (vlcf->presets == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_vconv_preset_find(vlcf->presets, value[1].data,
                                   value[1].len)
        != NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "vconv_preset \"%V\" is duplicate", &value[1]);
        return NGX_CONF_ERROR;
    }

    p = ngx_array_push(vlcf->presets);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(p, sizeof(ngx_http_vconv_preset_t));
    p->name = value[1];
    p->label = value[1];

    p->options = ngx_array_create(cf->pool, 4, sizeof(ngx_keyval_t));
    if (p->options == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (value[i].len > 6 && ngx_strncmp(value[i].data, "label=", 6) == 0)
        {
            if (ngx_http_vconv_preset_label(cf, value, &i, &p->label)
                != NGX_OK)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "vconv_preset \"%V\": a bad label",
                                   &p->name);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        eq = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');

        if (eq == NULL || eq == value[i].data) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "vconv_preset \"%V\": \"%V\" is not "
                               "option=value", &p->name, &value[i]);
            return NGX_CONF_ERROR;
        }

        kv = ngx_array_push(p->options);
        if (kv == NULL) {
            return NGX_CONF_ERROR;
        }

        kv->key.data = value[i].data;
        kv->key.len = eq - value[i].data;
        kv->value.data = eq + 1;
        kv->value.len = value[i].data + value[i].len - (eq + 1);
    }

    if (ngx_http_vconv_preset_check(cf, p) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_vconv_preset_to_json(cf, p) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * label="Discord (under 10 MB)": nginx splits a token at spaces unless
 * the whole token is quoted, so the words up to the closing quote are
 * joined again, one space between them.
 */
static ngx_int_t
ngx_http_vconv_preset_label(ngx_conf_t *cf, ngx_str_t *value, ngx_uint_t *i,
    ngx_str_t *label)
{
    u_char      *p;
    size_t       len;
    uint32_t     cp;
    ngx_uint_t   j, last;

    if (value[*i].data[6] != '"') {
        label->data = value[*i].data + 6;
        label->len = value[*i].len - 6;
        goto check;
    }

    len = 0;

    for (last = *i; last < cf->args->nelts; last++) {
        len += value[last].len + 1;

        if (value[last].len > 0
            && value[last].data[value[last].len - 1] == '"'
            && (last > *i || value[last].len > 7))
        {
            break;
        }
    }

    if (last == cf->args->nelts) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    label->data = p;

    for (j = *i; j <= last; j++) {
        if (j > *i) {
            *p++ = ' ';
        }

        p = ngx_cpymem(p, value[j].data, value[j].len);
    }

    /* without label=" and the closing quote */
    label->data += 7;
    label->len = p - label->data - 1;

    *i = last;

check:

    if (label->len == 0 || label->len > NGX_HTTP_VCONV_PRESET_LABEL_MAX) {
        return NGX_ERROR;
    }

    /* text for a page: whole UTF-8, no control characters */
    for (p = label->data; p < label->data + label->len; p += len) {
        len = vconv_utf8_next(p, label->data + label->len - p, &cp);

        if (len == 0 || cp < 0x20 || cp == 0x7f) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the preset's options make a spec a request could have made */
static ngx_int_t
ngx_http_vconv_preset_check(ngx_conf_t *cf, ngx_http_vconv_preset_t *p)
{
    ngx_uint_t     i;
    vconv_spec_t   spec;
    ngx_keyval_t  *kv;
    vconv_error_t  err;

    kv = p->options->elts;

    if (p->options->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "vconv_preset \"%V\" has no options", &p->name);
        return NGX_ERROR;
    }

    vconv_spec_init(&spec);

    for (i = 0; i < p->options->nelts; i++) {

        if ((kv[i].key.len == 6
             && ngx_strncmp(kv[i].key.data, "preset", 6) == 0)
            || (kv[i].key.len == 4
                && (ngx_strncmp(kv[i].key.data, "wait", 4) == 0
                    || ngx_strncmp(kv[i].key.data, "name", 4) == 0)))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "vconv_preset \"%V\": '%V' belongs to a "
                               "request, not to a preset", &p->name,
                               &kv[i].key);
            return NGX_ERROR;
        }

        if (vconv_spec_set(&spec, (char *) kv[i].key.data, kv[i].key.len,
                           (char *) kv[i].value.data, kv[i].value.len, &err)
            != VCONV_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "vconv_preset \"%V\": %s", &p->name,
                               err.message);
            return NGX_ERROR;
        }
    }

    if (vconv_spec_finish(&spec, VCONV_FMT_ALL, &err) != VCONV_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "vconv_preset \"%V\": %s", &p->name, err.message);
        return NGX_ERROR;
    }

    p->format = spec.format;

    return NGX_OK;
}


/* {"name","label","format","options":{key:"value"..}} */
static ngx_int_t
ngx_http_vconv_preset_to_json(ngx_conf_t *cf, ngx_http_vconv_preset_t *p)
{
    char          *buf;
    size_t         len;
    ngx_uint_t     i, pass;
    vconv_out_t    o;
    ngx_keyval_t  *kv;

    kv = p->options->elts;
    buf = NULL;
    len = 0;

    /* the first pass counts, the second writes */
    for (pass = 0; pass < 2; pass++) {
        vconv_out_init(&o, buf, len);

        vconv_out(&o, "{\"name\":\"");
        vconv_json_escape_count(o.buf, o.len, &o.pos, (char *) p->name.data,
                                p->name.len);
        vconv_out(&o, "\",\"label\":\"");
        vconv_json_escape_count(o.buf, o.len, &o.pos,
                                (char *) p->label.data, p->label.len);
        vconv_out(&o, "\",\"format\":\"%s\",\"options\":{",
                  vconv_format(p->format)->name);

        for (i = 0; i < p->options->nelts; i++) {
            vconv_out(&o, "%s\"", i ? "," : "");
            vconv_json_escape_count(o.buf, o.len, &o.pos,
                                    (char *) kv[i].key.data, kv[i].key.len);
            vconv_out(&o, "\":\"");
            vconv_json_escape_count(o.buf, o.len, &o.pos,
                                    (char *) kv[i].value.data,
                                    kv[i].value.len);
            vconv_out(&o, "\"");
        }

        vconv_out(&o, "}}");

        if (buf == NULL) {
            len = o.pos + 1;
            buf = ngx_pnalloc(cf->pool, len);
            if (buf == NULL) {
                return NGX_ERROR;
            }
        }
    }

    p->json.data = (u_char *) buf;
    p->json.len = o.pos;

    return NGX_OK;
}


static ngx_http_vconv_preset_t *
ngx_http_vconv_preset_find(ngx_array_t *presets, u_char *name, size_t len)
{
    ngx_uint_t                i;
    ngx_http_vconv_preset_t  *p;

    if (presets == NULL || presets == NGX_CONF_UNSET_PTR) {
        return NULL;
    }

    p = presets->elts;

    for (i = 0; i < presets->nelts; i++) {
        if (p[i].name.len == len && ngx_strncmp(p[i].name.data, name, len)
                                    == 0)
        {
            return &p[i];
        }
    }

    return NULL;
}


/*
 * The inherited presets in their order, each replaced by the level's own
 * of that name, then the level's new ones.
 */
char *
ngx_http_vconv_preset_merge(ngx_conf_t *cf, ngx_http_vconv_loc_conf_t *prev,
    ngx_http_vconv_loc_conf_t *conf)
{
    ngx_uint_t                i;
    ngx_array_t              *merged;
    ngx_http_vconv_preset_t  *p, *own, *m;

    ngx_conf_merge_value(conf->presets_only, prev->presets_only, 0);

    if (conf->presets == NGX_CONF_UNSET_PTR) {
        conf->presets = prev->presets == NGX_CONF_UNSET_PTR
                        ? NULL : prev->presets;
        return NGX_CONF_OK;
    }

    if (prev->presets == NULL || prev->presets == NGX_CONF_UNSET_PTR) {
        return NGX_CONF_OK;
    }

    merged = ngx_array_create(cf->pool,
                              prev->presets->nelts + conf->presets->nelts,
                              sizeof(ngx_http_vconv_preset_t));
    if (merged == NULL) {
        return NGX_CONF_ERROR;
    }

    p = prev->presets->elts;

    for (i = 0; i < prev->presets->nelts; i++) {
        m = ngx_array_push(merged);
        if (m == NULL) {
            return NGX_CONF_ERROR;
        }

        own = ngx_http_vconv_preset_find(conf->presets, p[i].name.data,
                                         p[i].name.len);
        *m = own ? *own : p[i];
    }

    p = conf->presets->elts;

    for (i = 0; i < conf->presets->nelts; i++) {
        if (ngx_http_vconv_preset_find(prev->presets, p[i].name.data,
                                       p[i].name.len)
            != NULL)
        {
            continue;
        }

        m = ngx_array_push(merged);
        if (m == NULL) {
            return NGX_CONF_ERROR;
        }

        *m = p[i];
    }

    conf->presets = merged;

    return NGX_CONF_OK;
}


/*
 * A request's option, before the spec sees it: NGX_OK for preset=NAME
 * (taken), NGX_DECLINED for any other (the spec's), NGX_ERROR with
 * ctx->err set when the name is unknown or the location takes presets
 * only.
 */
ngx_int_t
ngx_http_vconv_preset_option(ngx_http_vconv_ctx_t *ctx, u_char *key,
    size_t klen, u_char *val, size_t vlen)
{
    ngx_http_vconv_loc_conf_t  *vlcf;

    vlcf = ctx->vlcf;

    if (klen != 6 || ngx_strncmp(key, "preset", 6) != 0) {
        if (vlcf->presets_only) {
            (void) vconv_error_set(&ctx->err, VCONV_E_PRESETS_ONLY,
                                   "option '%.*s' is not allowed here: this "
                                   "server converts with its presets only "
                                   "(preset=NAME, see /api/presets)",
                                   (int) vconv_utf8_trim((char *) key,
                                                         ngx_min(klen, 32)),
                                   key);
            return NGX_ERROR;
        }

        return NGX_DECLINED;
    }

    if (ctx->preset != NULL) {
        (void) vconv_error_set(&ctx->err, VCONV_E_DUPLICATE_OPTION,
                               "option 'preset' is given more than once");
        return NGX_ERROR;
    }

    ctx->preset = ngx_http_vconv_preset_find(vlcf->presets, val, vlen);

    if (ctx->preset == NULL) {
        (void) vconv_error_set(&ctx->err, VCONV_E_UNKNOWN_PRESET,
                               "unknown preset '%.*s'",
                               (int) vconv_utf8_trim((char *) val,
                                                     ngx_min(vlen, 32)),
                               val);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Before the spec is finished: the preset's options the request did not
 * override (vconv_option_overridden()) join the request's, and are kept
 * with them for a worker that takes the job over.
 */
ngx_int_t
ngx_http_vconv_preset_apply(ngx_http_vconv_ctx_t *ctx)
{
    unsigned                  set, bit;
    ngx_uint_t                i;
    ngx_keyval_t             *kv;
    ngx_http_vconv_preset_t  *p;

    p = ctx->preset;

    if (p == NULL) {
        if (ctx->vlcf->presets_only) {
            (void) vconv_error_set(&ctx->err, VCONV_E_PRESETS_ONLY,
                                   "this server converts with its presets "
                                   "only: add preset=NAME (see "
                                   "/api/presets)");
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ctx->preset_applied) {
        return NGX_OK;
    }

    ctx->preset_applied = 1;

    /* what the request itself set, before the preset adds to it */
    set = ctx->spec->set;
    kv = p->options->elts;

    for (i = 0; i < p->options->nelts; i++) {
        bit = vconv_option_bit((char *) kv[i].key.data, kv[i].key.len);

        if (vconv_option_overridden(set, bit)) {
            continue;
        }

        if (vconv_spec_set(ctx->spec, (char *) kv[i].key.data,
                           kv[i].key.len, (char *) kv[i].value.data,
                           kv[i].value.len, &ctx->err)
            != VCONV_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_vconv_upload_keep_option(ctx, kv[i].key.data,
                                              kv[i].key.len,
                                              kv[i].value.data,
                                              kv[i].value.len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * GET /api/presets: the core's formats and options, with the location's
 * presets (of formats it allows) added as "presets":[..] and
 * "presets_only".
 */
ngx_int_t
ngx_http_vconv_preset_list(ngx_http_request_t *r, ngx_str_t *json)
{
    u_char                     *p, *last;
    size_t                      len;
    ngx_uint_t                  i, n;
    ngx_http_vconv_preset_t    *ps;
    ngx_http_vconv_loc_conf_t  *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vconv_module);

    /* the core's object, without its closing brace */
    if (json->len < 2 || json->data[json->len - 1] != '}') {
        return NGX_ERROR;
    }

    len = json->len + sizeof(",\"presets\":[],\"presets_only\":false}");
    n = 0;
    ps = NULL;

    if (vlcf->presets != NULL) {
        ps = vlcf->presets->elts;
        n = vlcf->presets->nelts;
    }

    for (i = 0; i < n; i++) {
        len += ps[i].json.len + 1;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_cpymem(p, json->data, json->len - 1);
    last = ngx_cpymem(last, ",\"presets\":[", sizeof(",\"presets\":[") - 1);

    for (i = 0; i < n; i++) {
        if (!(vlcf->formats & (1u << ps[i].format))) {
            continue;
        }

        if (last[-1] == '}') {
            *last++ = ',';
        }

        last = ngx_cpymem(last, ps[i].json.data, ps[i].json.len);
    }

    last = ngx_sprintf(last, "],\"presets_only\":%s}",
                       vlcf->presets_only ? "true" : "false");

    json->data = p;
    json->len = last - p;

    return NGX_OK;
}
