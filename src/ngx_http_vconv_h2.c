
/*
 * vconv: the receive window of an upload that arrives over HTTP/2.
 *
 * nginx 1.22 reads an unbuffered HTTP/2 body into one buffer and opens
 * the stream's window to that buffer's size each time it is emptied
 * (ngx_http_v2_read_unbuffered_request_body): the buffer's size is all
 * the client may have in flight, so an upload runs at most at
 * size / round trip.  nginx sizes it from client_body_buffer_size, at
 * least http2_body_preread_size (64k): 1.3 MB/s at 50 ms.
 *
 * Here the buffer is replaced by a larger one: with the request's
 * headers (the location takes the body, so the client will send it) to
 * vconv_http2_window, or the body's size if smaller, before nginx first
 * opens its window: the client's second round trip already carries that
 * much.  Where the worker's budget (vconv_http2_window_total), of which
 * each upload may take an equal share, gave less, the buffer grows later
 * whenever a whole buffer arrived within NGX_HTTP_VCONV_H2_PERIOD, by the
 * rate seen.  A slow upload fills only what its rate brings between two
 * reads, and one that stalls keeps what it has until it ends.  nginx
 * opens the window to the new size itself on its next read.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_vconv.h"


/*
 * A client held back by the window sends one window per round trip; one
 * whose link is slower sends less.  Growing when a window arrives within
 * this period keeps the window at or above rate x period: enough for
 * round trips up to it, and no more than a client's rate needs.
 */
#define NGX_HTTP_VCONV_H2_PERIOD   1000
/*
 * A later step (when the budget's share gave less at first) is the rate
 * seen so far times the period, at least 4x and at most 16x the window;
 * a slow client stops at about its rate x period.
 */
#define NGX_HTTP_VCONV_H2_GROWTH   4
#define NGX_HTTP_VCONV_H2_GROWTH_MAX  16


#if (NGX_HTTP_V2)

static void ngx_http_vconv_h2_grow(ngx_http_request_t *r,
    ngx_http_vconv_h2win_t *w, size_t want);
static void ngx_http_vconv_h2_cleanup(void *data);


/* what the buffers grown beyond nginx's hold in this worker, for whom */
static size_t      ngx_http_vconv_h2_held;
static ngx_uint_t  ngx_http_vconv_h2_uploads;


void
ngx_http_vconv_h2_window(ngx_http_request_t *r, ngx_http_vconv_h2win_t *w)
{
    off_t                       used, rate;
    size_t                      size, want;
    ngx_msec_t                  now, elapsed;
    ngx_pool_cleanup_t         *cln;
    ngx_http_request_body_t    *rb;
    ngx_http_vconv_loc_conf_t  *vlcf;

    rb = r->request_body;

    if (r->stream == NULL || rb == NULL || rb->buf == NULL
        || !r->reading_body || r->stream->in_closed)
    {
        return;
    }

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vconv_module);
    size = rb->buf->end - rb->buf->start;

    /*
     * The buffers passed on (rb->bufs) point into the buffer: only one
     * whose bytes are all consumed, or not yet passed, can be replaced.
     */
    if (size >= vlcf->h2_window_max || rb->bufs != NULL) {
        return;
    }

    now = ngx_current_msec;

    if (!w->started) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return;
        }

        cln->handler = ngx_http_vconv_h2_cleanup;
        cln->data = w;

        ngx_http_vconv_h2_uploads++;

        w->started = 1;
        w->since = now;
        w->mark = 0;

        /*
         * The location takes the body, and the client sent the request
         * meaning to send it: the window opens to the whole step now,
         * with the request's headers, a round trip before it would have
         * room again, and the ramp (two round trips at 50 ms) is saved.
         * A slow or stalled client holds its share of the budget; it
         * fills only what its rate brings between two reads.
         */
        ngx_http_vconv_h2_grow(r, w, vlcf->h2_window_max);
        return;
    }

    used = rb->received - w->mark;

    if (now - w->since > NGX_HTTP_VCONV_H2_PERIOD) {
        /* slower than the window allows: no growth, measure anew */
        w->since = now;
        w->mark = rb->received;
        return;
    }

    if ((off_t) size > used) {
        return;
    }

    elapsed = now - w->since;
    rate = used * NGX_HTTP_VCONV_H2_PERIOD / (elapsed ? elapsed : 1);

    want = ngx_max(size * NGX_HTTP_VCONV_H2_GROWTH,
                   (size_t) ngx_min(rate, (off_t) vlcf->h2_window_max));
    want = ngx_min(want, size * NGX_HTTP_VCONV_H2_GROWTH_MAX);

    ngx_http_vconv_h2_grow(r, w, ngx_min(want, vlcf->h2_window_max));
}


/*
 * Replaces the body buffer by one of want bytes (less if the body, the
 * budget or the upload's share of it is smaller); the bytes read but
 * not yet passed on move with it.  nginx opens the window to the new
 * size on its next read.
 */
static void
ngx_http_vconv_h2_grow(ngx_http_request_t *r, ngx_http_vconv_h2win_t *w,
    size_t want)
{
    off_t                        left;
    size_t                       size, room, share, pending;
    u_char                      *p;
    ngx_buf_t                   *b;
    ngx_http_request_body_t     *rb;
    ngx_http_vconv_main_conf_t  *vmcf;

    rb = r->request_body;
    b = rb->buf;
    size = b->end - b->start;
    pending = b->last - b->pos;

    if (r->headers_in.content_length_n > 0) {
        /* what is still to come, the bytes not yet passed on included */
        left = r->headers_in.content_length_n - rb->received;

        if (left < (off_t) want) {
            want = (left > (off_t) size) ? (size_t) left : size;
        }
    }

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vconv_module);

    /* the old buffer's share comes back when the new one is taken */
    room = vmcf->h2_window_total + w->held > ngx_http_vconv_h2_held
           ? vmcf->h2_window_total + w->held - ngx_http_vconv_h2_held : 0;

    /* the first uploads of a crowd do not take the budget of the rest */
    share = vmcf->h2_window_total / ngx_http_vconv_h2_uploads;

    want = ngx_min(want, ngx_min(room, share));

    if (want <= size || want < pending) {
        return;
    }

    p = ngx_palloc(r->pool, want);
    if (p == NULL) {
        /* the upload goes on at the window it has */
        return;
    }

    if (pending) {
        ngx_memcpy(p, b->pos, pending);
    }

    /* a large allocation (every body buffer is) goes back at once */
    (void) ngx_pfree(r->pool, b->start);

    b->start = p;
    b->pos = p;
    b->last = p + pending;
    b->end = p + want;

    ngx_http_vconv_h2_held += want - w->held;
    w->held = want;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "vconv: http2 window %uz -> %uz, worker holds %uz",
                   size, want, ngx_http_vconv_h2_held);
}


static void
ngx_http_vconv_h2_cleanup(void *data)
{
    ngx_http_vconv_h2win_t  *w = data;

    ngx_http_vconv_h2_held -= w->held;
    ngx_http_vconv_h2_uploads--;
    w->held = 0;
}


#else

void
ngx_http_vconv_h2_window(ngx_http_request_t *r, ngx_http_vconv_h2win_t *w)
{
}

#endif


/*
 * vconv_http2_window unset: the module's growth, unless the location's
 * client_body_buffer_size is not nginx's default (two pages), which is
 * then the operator's window and stays as nginx makes it.  The merged
 * core value cannot tell an explicit "8k" from the default.
 */
char *
ngx_http_vconv_h2_merge(ngx_conf_t *cf, ngx_http_vconv_loc_conf_t *prev,
    ngx_http_vconv_loc_conf_t *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    ngx_conf_merge_size_value(conf->h2_window, prev->h2_window,
                              NGX_CONF_UNSET_SIZE);

    if (conf->h2_window != NGX_CONF_UNSET_SIZE) {
        conf->h2_window_max = conf->h2_window;
        return NGX_CONF_OK;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    conf->h2_window_max = clcf->client_body_buffer_size
                          == (size_t) 2 * ngx_pagesize
                          ? NGX_HTTP_VCONV_H2_WINDOW : 0;

    return NGX_CONF_OK;
}
