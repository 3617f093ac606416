/*
 * libFuzzer harness for the option parser and the presets JSON.
 *
 * Input: bytes 0-1 are the allowed formats mask, the rest a query string:
 * key=value pairs joined by '&' (already "URL-decoded": any byte goes).
 * Every pair goes to vconv_spec_set() (going on after errors, to reach
 * more state), then vconv_spec_finish().  Checks: error codes are in range
 * with a terminated, non-empty message; a finished spec is sane; the
 * presets JSON is the length it says, NUL-terminated when it fits,
 * truncates safely, and is valid JSON; the JSON escaper's output is a
 * valid JSON string body.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vconv_options.h"
#include "json_valid.h"


static void
fuzz_check_err(int rc, const vconv_error_t *err)
{
    if (rc == VCONV_OK) {
        return;
    }

    if (rc != VCONV_ERROR || err->code <= VCONV_E_NONE
        || err->code >= VCONV_E_COUNT
        || memchr(err->message, '\0', sizeof(err->message)) == NULL
        || err->message[0] == '\0')
    {
        abort();
    }
}


static void
fuzz_presets(unsigned mask)
{
    char    *buf, small[16];
    size_t   need, again;

    need = vconv_presets_json(NULL, 0, mask);
    buf = malloc(need + 1);

    if (buf == NULL) {
        return;
    }

    memset(buf, 'X', need + 1);
    again = vconv_presets_json(buf, need + 1, mask);

    if (again != need || buf[need] != '\0' || strlen(buf) != need
        || !json_valid(buf, need))
    {
        abort();
    }

    /* too small a buffer: no overflow, still terminated */
    memset(small, 'X', sizeof(small));
    again = vconv_presets_json(small, 8, mask);

    if (again != need || memchr(small, '\0', 8) == NULL
        || small[8] != 'X')
    {
        abort();
    }

    free(buf);
}


static void
fuzz_escape(const uint8_t *data, size_t size)
{
    char    buf[130];
    size_t  pos, len;

    /* the output plus quotes must parse as one JSON string */

    buf[0] = '"';
    pos = 1;
    vconv_json_escape(buf, sizeof(buf) - 2, &pos, (const char *) data, size);

    len = strlen(buf);

    if (len > sizeof(buf) - 3) {
        abort();
    }

    buf[len] = '"';
    buf[len + 1] = '\0';

    if (!json_valid(buf, len + 1)) {
        fprintf(stderr, "json_escape gave an invalid string: %s\n", buf);
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int             rc;
    unsigned        mask;
    const char     *p, *end, *amp, *eq;
    vconv_spec_t    spec;
    vconv_error_t   err;

    if (size < 2) {
        return 0;
    }

    mask = data[0] | (data[1] << 8);
    p = (const char *) data + 2;
    end = (const char *) data + size;

    fuzz_escape(data + 2, size - 2);

    memset(&err, 0, sizeof(err));
    rc = vconv_formats_mask(p, end - p, &mask, &err);
    fuzz_check_err(rc, &err);

    if (rc == VCONV_OK && (mask & ~VCONV_FMT_ALL) != 0) {
        abort();
    }

    rc = vconv_format_by_name(p, end - p);

    if (rc < -1 || rc >= VCONV_FMT_COUNT) {
        abort();
    }

    mask = data[0] | (data[1] << 8);

    vconv_spec_init(&spec);

    while (p < end) {
        amp = memchr(p, '&', end - p);

        if (amp == NULL) {
            amp = end;
        }

        eq = memchr(p, '=', amp - p);

        memset(&err, 0, sizeof(err));

        if (eq != NULL) {
            rc = vconv_spec_set(&spec, p, eq - p, eq + 1, amp - (eq + 1),
                                &err);
        } else {
            rc = vconv_spec_set(&spec, p, amp - p, "", 0, &err);
        }

        fuzz_check_err(rc, &err);

        p = amp + 1;
    }

    memset(&err, 0, sizeof(err));
    rc = vconv_spec_finish(&spec, mask, &err);
    fuzz_check_err(rc, &err);

    if (rc == VCONV_OK) {
        if ((unsigned) spec.format >= VCONV_FMT_COUNT
            || !(mask & (1u << spec.format))
            || vconv_format(spec.format) == NULL
            || spec.width < 0 || spec.height < 0
            || spec.start < 0 || spec.duration < 0
            || spec.video_bitrate < 0 || spec.audio_bitrate < 0
            || memchr(spec.vencoder, '\0', sizeof(spec.vencoder)) == NULL
            || memchr(spec.aencoder, '\0', sizeof(spec.aencoder)) == NULL)
        {
            abort();
        }
    }

    /* the presets JSON depends only on the mask: once per mask is enough */
    if (size == 2) {
        fuzz_presets(mask);
    }

    return 0;
}
