/*
 * vconv: the job record's status names, its JSON for the API, and job
 * ids.  job.json on disk is vconv_job_file.c.
 */

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vconv_job.h"
#include "vconv_options.h"


/* a JSON string with its quotes */
static void
vconv_out_str(vconv_out_t *o, const char *s, size_t len)
{
    vconv_out(o, "\"");
    vconv_json_escape_count(o->buf, o->len, &o->pos, s, len);
    vconv_out(o, "\"");
}


static void
vconv_out_cstr(vconv_out_t *o, const char *s, size_t max)
{
    vconv_out_str(o, s, strnlen(s, max));
}


static const char  *vconv_status_names[] = {
    "uploading", "queued", "running", "done", "failed", "canceled"
};

#define VCONV_NSTATUS \
    (int) (sizeof(vconv_status_names) / sizeof(vconv_status_names[0]))


void
vconv_job_outputs(vconv_job_info_t *job, const vconv_spec_t *spec)
{
    int  i;

    job->out_format = spec->format;
    job->nouts = spec->nouts > 1 || spec->hls ? spec->nouts : 0;

    for (i = 0; i < job->nouts; i++) {
        job->outs[i] = spec->outs[i];
        job->outs_rung[i] = spec->rung[i];
    }
}


/*
 * "outputs":[{"name","format","bytes","url"}] in list order; one entry
 * for a job of one format.  An output's name is its format's.
 */
static void
vconv_job_json_outputs(vconv_out_t *o, const vconv_job_info_t *job,
    const char *jobs_uri)
{
    int                    i, k, n, fmt, rung;
    size_t                 ulen;
    int64_t                bytes;
    const vconv_format_t  *f;

    n = job->nouts > 0 ? job->nouts : 1;
    ulen = jobs_uri ? strlen(jobs_uri) : 0;
    rung = -1;

    vconv_out(o, ",\"outputs\":[");

    for (i = 0; i < n; i++) {
        fmt = job->nouts > 0 ? job->outs[i] : job->out_format;
        bytes = job->nouts > 0 ? job->outs_bytes[i] : job->out_bytes;
        f = vconv_format((vconv_format_e) fmt);

        if (f == NULL) {
            continue;
        }

        if (job->nouts > 0 && job->outs_rung[i] > 0) {
            /* hls: its rungs are one output, served from hls/ */
            if (rung >= 0) {
                continue;
            }

            rung = i;

            for (k = i + 1; k < n; k++) {
                bytes += job->outs_rung[k] > 0 ? job->outs_bytes[k] : 0;
            }

            vconv_out(o, "%s{\"name\":\"hls\",\"format\":\"hls\"",
                      i ? "," : "");

            if (job->status != VCONV_JOB_DONE) {
                vconv_out(o, ",\"bytes\":null,\"url\":null}");
                continue;
            }

            vconv_out(o, ",\"bytes\":%lld,\"url\":\"", (long long) bytes);
            vconv_json_escape_count(o->buf, o->len, &o->pos, jobs_uri,
                                    ulen);

            if (ulen == 0 || jobs_uri[ulen - 1] != '/') {
                vconv_out(o, "/");
            }

            vconv_json_escape_count(o->buf, o->len, &o->pos, job->id,
                                    strnlen(job->id, sizeof(job->id)));
            vconv_out(o, "/output/hls/master.m3u8\"}");
            continue;
        }

        vconv_out(o, "%s{\"name\":\"%s\",\"format\":\"%s\"",
                  i ? "," : "", f->name, f->name);

        if (job->status != VCONV_JOB_DONE) {
            vconv_out(o, ",\"bytes\":null,\"url\":null}");
            continue;
        }

        vconv_out(o, ",\"bytes\":%lld,\"url\":\"", (long long) bytes);
        vconv_json_escape_count(o->buf, o->len, &o->pos, jobs_uri, ulen);

        if (ulen == 0 || jobs_uri[ulen - 1] != '/') {
            vconv_out(o, "/");
        }

        vconv_json_escape_count(o->buf, o->len, &o->pos, job->id,
                                strnlen(job->id, sizeof(job->id)));
        vconv_out(o, "/output/%s\"}", f->name);
    }

    vconv_out(o, "]");
}


const char *
vconv_status_name(vconv_status_e status)
{
    if ((unsigned) status >= (unsigned) VCONV_NSTATUS) {
        return "failed";
    }

    return vconv_status_names[status];
}


int
vconv_status_final(vconv_status_e status)
{
    return status == VCONV_JOB_DONE || status == VCONV_JOB_FAILED
           || status == VCONV_JOB_CANCELED;
}


static void
vconv_out_time(vconv_out_t *o, int64_t t)
{
    char       tmp[32];
    time_t     tt;
    struct tm  tm;

    tt = (time_t) t;

    if (t <= 0 || gmtime_r(&tt, &tm) == NULL
        || strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        vconv_out(o, "null");
        return;
    }

    vconv_out(o, "\"%s\"", tmp);
}


/* the same with milliseconds: jobs started in one second stay ordered */
static void
vconv_out_time_ms(vconv_out_t *o, int64_t ms)
{
    char       tmp[32];
    time_t     tt;
    struct tm  tm;

    tt = (time_t) (ms / 1000);

    if (ms <= 0 || gmtime_r(&tt, &tm) == NULL
        || strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
    {
        vconv_out(o, "null");
        return;
    }

    vconv_out(o, "\"%s.%03dZ\"", tmp, (int) (ms % 1000));
}


static void
vconv_out_error(vconv_out_t *o, vconv_err_e code, const char *msg,
    size_t max)
{
    vconv_out(o, "{\"code\":\"%s\",\"message\":", vconv_error_name(code));
    vconv_out_cstr(o, msg, max);
    vconv_out(o, "}");
}


size_t
vconv_job_json(const vconv_job_info_t *job, const char *jobs_uri,
    int queue_position, char *buf, size_t len)
{
    int                    i, hls;
    double                 progress;
    size_t                 ulen;
    long long              bytes;
    vconv_out_t            o;
    vconv_err_e            code;
    const char            *msg;
    const vconv_format_t  *f;

    vconv_out_init(&o, buf, len);

    progress = job->progress;

    if (!(progress >= 0)) {
        progress = 0;

    } else if (progress > 1) {
        progress = 1;
    }

    if (job->status == VCONV_JOB_DONE) {
        progress = 1;
    }

    vconv_out(&o, "{\"id\":");
    vconv_out_cstr(&o, job->id, sizeof(job->id));
    vconv_out(&o, ",\"status\":\"%s\",\"progress\":%.3f,"
              "\"queue_position\":%d,\"created\":",
              vconv_status_name(job->status), progress,
              job->status == VCONV_JOB_QUEUED ? queue_position : 0);
    vconv_out_time(&o, job->created);
    vconv_out(&o, ",\"expires\":");
    vconv_out_time(&o, job->expires);
    vconv_out(&o, ",\"started\":");
    vconv_out_time_ms(&o, job->started_ms);
    vconv_out(&o, ",\"finished\":");

    if (job->finished_ms / 1000 == job->finished && job->finished > 0) {
        vconv_out_time_ms(&o, job->finished_ms);

    } else {
        vconv_out_time(&o, job->finished);
    }

    vconv_out(&o, ",\"input\":{\"name\":");
    vconv_out_cstr(&o, job->in_name, sizeof(job->in_name));
    vconv_out(&o, ",\"bytes\":%lld,\"format\":", (long long) job->in_bytes);

    if (job->in_format[0]) {
        vconv_out_cstr(&o, job->in_format, sizeof(job->in_format));
    } else {
        vconv_out(&o, "null");
    }

    if (job->in_duration >= 0 && isfinite(job->in_duration)) {
        vconv_out(&o, ",\"duration\":%.3f", job->in_duration);
    } else {
        vconv_out(&o, ",\"duration\":null");
    }

    vconv_out(&o, ",\"streams\":%d}", job->in_streams);

    f = vconv_format((vconv_format_e) job->out_format);

    /* hls first: "output" is the ladder, as its entry in "outputs" */
    hls = job->nouts > 0 && job->outs_rung[0] > 0;
    bytes = hls ? job->outs_bytes[0] : job->out_bytes;

    for (i = 1; hls && i < job->nouts && i < VCONV_MAX_OUTPUTS; i++) {
        bytes += job->outs_rung[i] > 0 ? job->outs_bytes[i] : 0;
    }

    vconv_out(&o, ",\"output\":{\"format\":");

    if (hls) {
        vconv_out(&o, "\"hls\"");
    } else if (f != NULL) {
        vconv_out(&o, "\"%s\"", f->name);
    } else {
        vconv_out(&o, "null");
    }

    if (job->status == VCONV_JOB_DONE) {
        vconv_out(&o, ",\"bytes\":%lld,\"url\":", bytes);

        ulen = jobs_uri ? strlen(jobs_uri) : 0;

        vconv_out(&o, "\"");
        vconv_json_escape_count(o.buf, o.len, &o.pos, jobs_uri, ulen);

        if (ulen == 0 || jobs_uri[ulen - 1] != '/') {
            vconv_out(&o, "/");
        }

        vconv_json_escape_count(o.buf, o.len, &o.pos, job->id,
                                strnlen(job->id, sizeof(job->id)));
        vconv_out(&o, hls ? "/output/hls/master.m3u8\"}" : "/output\"}");

    } else {
        vconv_out(&o, ",\"bytes\":null,\"url\":null}");
    }

    vconv_job_json_outputs(&o, job, jobs_uri);

    /* what was skipped on the way: the output may lack a moment of it */
    vconv_out(&o, ",\"warnings\":{\"damaged_packets\":%lld}",
              (long long) job->damaged_packets);

    vconv_out(&o, ",\"error\":");

    code = job->err_code;
    msg = job->err_message;

    if (job->status == VCONV_JOB_FAILED) {
        if (code == VCONV_E_NONE) {
            code = VCONV_E_INTERNAL;
        }

        if (msg[0] == '\0') {
            msg = "the conversion failed";
        }

        vconv_out_error(&o, code, msg, sizeof(job->err_message));

    } else if (job->status == VCONV_JOB_CANCELED) {
        if (code == VCONV_E_NONE) {
            code = VCONV_E_CANCELED;
        }

        if (msg[0] == '\0') {
            msg = "the job was canceled";
        }

        vconv_out_error(&o, code, msg, sizeof(job->err_message));

    } else {
        vconv_out(&o, "null");
    }

    vconv_out(&o, "}");

    return o.pos;
}


size_t
vconv_error_json(const vconv_error_t *err, char *buf, size_t len)
{
    vconv_out_t  o;

    vconv_out_init(&o, buf, len);

    vconv_out(&o, "{\"error\":");
    vconv_out_error(&o, err->code, err->message, sizeof(err->message));
    vconv_out(&o, "}");

    return o.pos;
}


static int
vconv_is_lower_hex(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


int
vconv_id_valid(const char *s, size_t len)
{
    size_t  i, nlen;

    if (s == NULL) {
        return 0;
    }

    if (len == 32) {
        return vconv_is_lower_hex(s, 32);
    }

    /* "node-" + 32 hex, node [A-Za-z0-9_]{1,48} */
    if (len < 34 || len > 48 + 1 + 32) {
        return 0;
    }

    nlen = len - 33;

    if (s[nlen] != '-' || !vconv_is_lower_hex(s + nlen + 1, 32)) {
        return 0;
    }

    for (i = 0; i < nlen; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
        {
            return 0;
        }
    }

    return 1;
}
