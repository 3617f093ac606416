/*
 * vconv: error codes, their names and HTTP statuses, and the UTF-8
 * helpers that cut and check text.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vconv.h"


typedef struct {
    const char  *name;
    int          status;
} vconv_error_def_t;


/* in the order of vconv_err_e */
static const vconv_error_def_t  vconv_errors[] = {
    { "none", 200 },

    { "unknown_option", 400 },
    { "unknown_format", 400 },
    { "format_not_allowed", 400 },
    { "not_a_number", 400 },
    { "out_of_range", 400 },
    { "invalid_value", 400 },
    { "codec_not_allowed", 400 },
    { "conflicting_options", 400 },
    { "duplicate_option", 400 },
    { "unknown_preset", 400 },
    { "presets_only", 400 },

    { "unsupported_input", 415 },
    { "input_format_not_allowed", 415 },

    { "no_video_stream", 422 },
    { "no_audio_stream", 422 },
    { "cannot_copy", 422 },
    { "start_beyond_end", 422 },
    { "empty_output", 422 },
    { "target_too_small", 422 },

    { "resolution_limit", 422 },
    { "duration_limit", 422 },
    { "frame_limit", 422 },
    { "output_size_limit", 422 },
    { "too_many_streams", 422 },
    { "unsupported_audio_format", 422 },
    { "unsupported_audio_layout", 422 },
    { "unsupported_sample_rate", 422 },
    { "unsupported_pixel_format", 422 },
    { "unsupported_picture_size", 422 },
    { "memory_limit", 422 },

    { "stalled", 408 },
    { "too_slow", 408 },
    { "canceled", 409 },
    { "interrupted", 500 },

    { "decode_error", 422 },
    { "encode_error", 422 },
    { "converter_crashed", 422 },

    { "queue_full", 503 },
    { "store_full", 507 },
    { "upload_aborted", 400 },
    { "zone_full", 503 },
    { "too_many_jobs", 429 },

    { "io_error", 500 },
    { "out_of_memory", 500 },
    { "internal_error", 500 },
    { "store_error", 500 }
};


/* a new code without a name here is a build error, not a wrong answer */
typedef char vconv_error_table_check_t[
    (sizeof(vconv_errors) / sizeof(vconv_errors[0]) == VCONV_E_COUNT)
    ? 1 : -1];


const char *
vconv_error_name(vconv_err_e code)
{
    if ((unsigned) code >= VCONV_E_COUNT) {
        return "internal_error";
    }

    return vconv_errors[code].name;
}


int
vconv_error_http_status(vconv_err_e code)
{
    if ((unsigned) code >= VCONV_E_COUNT) {
        return 500;
    }

    return vconv_errors[code].status;
}


size_t
vconv_utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    size_t    n, i;
    uint32_t  c, min;

    if (len == 0) {
        return 0;
    }

    c = s[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        c &= 0x1f;
        min = 0x80;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        c &= 0x0f;
        min = 0x800;

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        c &= 0x07;
        min = 0x10000;

    } else {
        return 0;
    }

    if (len < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = (c << 6) | (s[i] & 0x3f);
    }

    /* overlong forms, UTF-16 surrogates and beyond U+10FFFF */
    if (c < min || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff) {
        return 0;
    }

    *cp = c;

    return n;
}


size_t
vconv_utf8_trim(const char *s, size_t len)
{
    size_t    i, n, back;
    uint32_t  cp;

    /* drop an incomplete sequence cut off at the end, nothing else */
    for (back = 1; back <= 3 && back <= len; back++) {
        i = len - back;

        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            if ((unsigned char) s[i] >= 0xc0) {
                n = vconv_utf8_next((const unsigned char *) s + i, back, &cp);
                if (n == 0) {
                    return i;
                }
            }

            break;
        }
    }

    return len;
}


int
vconv_error_set(vconv_error_t *err, vconv_err_e code, const char *fmt, ...)
{
    int      n;
    size_t   len;
    va_list  args;

    if (err == NULL) {
        return VCONV_ERROR;
    }

    err->code = code;

    va_start(args, fmt);
    n = vsnprintf(err->message, sizeof(err->message), fmt, args);
    va_end(args);

    if (n < 0) {
        err->message[0] = '\0';
        return VCONV_ERROR;
    }

    len = strlen(err->message);

    if ((size_t) n >= sizeof(err->message)) {
        /* a cut in the middle of a character would show as U+FFFD */
        len = vconv_utf8_trim(err->message, len);
        err->message[len] = '\0';
    }

    return VCONV_ERROR;
}
