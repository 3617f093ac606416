/*
 * vconv: libav logging into the caller's log, one line per call, with the
 * job id of the thread that logs.  libav calls the callback from codec
 * worker threads too; those carry no job id and log with "".
 */

#include <stdarg.h>
#include <string.h>

#include <libavutil/avstring.h>
#include <libavutil/log.h>

#include "vconv_transcode.h"


#define VCONV_LOG_LINE  1024


static void vconv_log_callback(void *avcl, int level, const char *fmt,
    va_list ap);


static vconv_log_handler_pt  vconv_log_handler;
static int                   vconv_log_max_level = AV_LOG_WARNING;
static __thread char         vconv_log_job_id[128];


void
vconv_log_init(vconv_log_handler_pt handler, int max_level)
{
    vconv_log_handler = handler;
    vconv_log_max_level = max_level;

    av_log_set_level(max_level);
    av_log_set_callback(handler ? vconv_log_callback
                                : av_log_default_callback);
}


void
vconv_log_job(const char *job)
{
    av_strlcpy(vconv_log_job_id, job ? job : "", sizeof(vconv_log_job_id));
}


static void
vconv_log_callback(void *avcl, int level, const char *fmt, va_list ap)
{
    int     print_prefix, n;
    char    line[VCONV_LOG_LINE];

    if (level > vconv_log_max_level || vconv_log_handler == NULL) {
        return;
    }

    /* each call is a line of its own: no state shared between threads */
    print_prefix = 1;
    n = av_log_format_line2(avcl, level, fmt, ap, line, sizeof(line),
                            &print_prefix);
    if (n < 0) {
        return;
    }

    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        line[--n] = '\0';
    }

    if (n == 0) {
        return;
    }

    vconv_log_handler(level, vconv_log_job_id, line);
}
