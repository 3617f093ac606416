/*
 * libFuzzer harness for job.json, the job record on disk.
 *
 * Input: the text of a job.json, as vconv_job_load() reads it from a
 * store (a damaged disk, an old or hostile file).  vconv_job_parse()
 * either refuses it or gives a record that is sane: text fields
 * NUL-terminated in their fields, a status and an error code in range,
 * progress within 0-1.  A record it accepts is written again with
 * vconv_job_text() (valid JSON of its stated length) and must parse back
 * to the same record, and the API's job JSON of it must be valid too.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vconv_job.h"
#include "vconv_options.h"
#include "json_valid.h"
#include "job_same.h"


static int
fuzz_text_ok(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}


static void
fuzz_api_json(const vconv_job_info_t *job)
{
    char    *buf;
    size_t   need;

    need = vconv_job_json(job, "/api/jobs/", 1, NULL, 0);
    buf = malloc(need + 1);

    if (buf == NULL) {
        return;
    }

    if (vconv_job_json(job, "/api/jobs/", 1, buf, need + 1) != need
        || strlen(buf) != need || !json_valid(buf, need))
    {
        abort();
    }

    free(buf);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char              *text;
    size_t             len;
    vconv_job_info_t   job, again;

    if (vconv_job_parse(&job, (const char *) data, size) != 0) {
        return 0;
    }

    if (!fuzz_text_ok(job.id, sizeof(job.id))
        || !fuzz_text_ok(job.in_name, sizeof(job.in_name))
        || !fuzz_text_ok(job.in_format, sizeof(job.in_format))
        || !fuzz_text_ok(job.err_message, sizeof(job.err_message))
        || (unsigned) job.status > VCONV_JOB_CANCELED
        || (unsigned) job.err_code >= VCONV_E_COUNT
        || job.out_format < -1 || job.out_format >= VCONV_FMT_COUNT
        || !(job.progress >= 0 && job.progress <= 1))
    {
        abort();
    }

    fuzz_api_json(&job);

    text = vconv_job_text(&job, &len);

    if (text == NULL) {
        return 0;
    }

    if (strlen(text) != len || !json_valid(text, len)
        || vconv_job_parse(&again, text, len) != 0
        || !job_same(&job, &again))
    {
        abort();
    }

    free(text);

    return 0;
}
