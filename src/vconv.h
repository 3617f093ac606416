/*
 * vconv: nginx-free core, shared types and error codes.
 *
 * Nothing in src/vconv_*.{c,h} may include an nginx header: the core is
 * unit-tested and driven by tools/vconv_cli.c without nginx.
 */

#ifndef _VCONV_H_INCLUDED_
#define _VCONV_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define VCONV_OK         0
#define VCONV_ERROR     -1


/*
 * Error codes.  Each has a stable string name (the "code" of the JSON
 * error object) and the HTTP status an API answer with it carries.
 * Keep vconv_error_names[] in vconv_error.c in the same order.
 */
typedef enum {
    VCONV_E_NONE = 0,

    /* 400: options */
    VCONV_E_UNKNOWN_OPTION,        /* "unknown_option" */
    VCONV_E_UNKNOWN_FORMAT,        /* "unknown_format" */
    VCONV_E_FORMAT_NOT_ALLOWED,    /* "format_not_allowed" (vconv_formats) */
    VCONV_E_NOT_A_NUMBER,          /* "not_a_number" */
    VCONV_E_OUT_OF_RANGE,          /* "out_of_range" */
    VCONV_E_INVALID_VALUE,         /* "invalid_value" */
    VCONV_E_CODEC_NOT_ALLOWED,     /* "codec_not_allowed" */
    VCONV_E_CONFLICTING_OPTIONS,   /* "conflicting_options" */
    VCONV_E_DUPLICATE_OPTION,      /* "duplicate_option" */
    VCONV_E_UNKNOWN_PRESET,        /* "unknown_preset" (vconv_preset) */
    VCONV_E_PRESETS_ONLY,          /* "presets_only" vconv_presets_only */

    /* 415: the input is not media we accept */
    VCONV_E_UNSUPPORTED_INPUT,     /* "unsupported_input" */
    VCONV_E_INPUT_FORMAT_NOT_ALLOWED, /* "input_format_not_allowed" */

    /* 422: media we cannot convert as asked */
    VCONV_E_NO_VIDEO,              /* "no_video_stream" */
    VCONV_E_NO_AUDIO,              /* "no_audio_stream" */
    VCONV_E_CANNOT_COPY,           /* "cannot_copy" codec not muxable */
    VCONV_E_START_BEYOND_END,      /* "start_beyond_end" */
    VCONV_E_EMPTY_OUTPUT,          /* "empty_output" nothing encoded */
    VCONV_E_TARGET_TOO_SMALL,      /* "target_too_small" target_size */

    /* 422: limits */
    VCONV_E_RESOLUTION_LIMIT,      /* "resolution_limit" */
    VCONV_E_DURATION_LIMIT,        /* "duration_limit" */
    VCONV_E_FRAME_LIMIT,           /* "frame_limit" video frames */
    VCONV_E_OUTPUT_SIZE_LIMIT,     /* "output_size_limit" */
    VCONV_E_TOO_MANY_STREAMS,      /* "too_many_streams" */
    VCONV_E_BAD_AUDIO_FORMAT,      /* "unsupported_audio_format" samples */
    VCONV_E_BAD_AUDIO_LAYOUT,      /* "unsupported_audio_layout" channels */
    VCONV_E_BAD_SAMPLE_RATE,       /* "unsupported_sample_rate" */
    VCONV_E_BAD_PIXEL_FORMAT,      /* "unsupported_pixel_format" */
    VCONV_E_BAD_PICTURE_SIZE,      /* "unsupported_picture_size" */
    VCONV_E_MEMORY_LIMIT,          /* "memory_limit" vconv_job_memory */

    /* job endings that are not the input's fault */
    VCONV_E_STALLED,               /* "stalled" 408 */
    VCONV_E_TOO_SLOW,              /* "too_slow" 408 vconv_min_upload_rate */
    VCONV_E_CANCELED,              /* "canceled" 409 */
    VCONV_E_INTERRUPTED,           /* "interrupted" 500 */

    /* 422: libav failed on this input */
    VCONV_E_DECODE,                /* "decode_error" */
    VCONV_E_ENCODE,                /* "encode_error" */
    VCONV_E_CRASHED,               /* "converter_crashed" the child died */

    /* refusals of the upload itself */
    VCONV_E_QUEUE_FULL,            /* "queue_full" 503 */
    VCONV_E_STORE_FULL,            /* "store_full" 507 */
    VCONV_E_UPLOAD_ABORTED,        /* "upload_aborted" 400 */
    VCONV_E_ZONE_FULL,             /* "zone_full" 503: no room for records */
    VCONV_E_TOO_MANY_JOBS,         /* "too_many_jobs" 429: one client's */

    /* 500 */
    VCONV_E_IO,                    /* "io_error" */
    VCONV_E_NOMEM,                 /* "out_of_memory" */
    VCONV_E_INTERNAL,              /* "internal_error" */
    VCONV_E_STORE_ERROR,           /* "store_error" the store's folder */

    VCONV_E_COUNT
} vconv_err_e;


typedef struct {
    vconv_err_e   code;
    char          message[256];
} vconv_error_t;


const char *vconv_error_name(vconv_err_e code);
int vconv_error_http_status(vconv_err_e code);

/* Sets err->code and a printf-style message; returns VCONV_ERROR. */
int vconv_error_set(vconv_error_t *err, vconv_err_e code, const char *fmt,
    ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/*
 * UTF-8 helpers.  vconv_utf8_next() returns the length (1-4) of the valid
 * sequence at s and its code point, 0 if s starts with an invalid byte
 * (overlong, surrogate, cut short).  vconv_utf8_trim() returns len less
 * an incomplete sequence at the end, for cutting text at a boundary.
 */
size_t vconv_utf8_next(const unsigned char *s, size_t len, uint32_t *cp);
size_t vconv_utf8_trim(const char *s, size_t len);


#include "vconv_json.h"


#endif /* _VCONV_H_INCLUDED_ */
