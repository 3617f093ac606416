/*
 * Unit tests for the growing-file reader: a writer thread appends while a
 * reader thread reads; waits, seeks, stall, stop and interrupt.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/error.h>

#include "vconv_reader.h"
#include "tap.h"


#define SEEK_SIZE   0x10000     /* AVSEEK_SIZE */
#define SEEK_FORCE  0x20000     /* AVSEEK_FORCE */

#define BIG         (1024 * 1024 + 333)


typedef struct {
    int              wfd;
    vconv_reader_t   rd;

    /* a call run in a thread, with its result and timing */
    int              op;         /* 0 read, 1 seek */
    int64_t          offset;
    int              whence;
    int              size;
    uint8_t          buf[256];
    int64_t          result;
    volatile int     done;
    int64_t          started;
    int64_t          finished;

    /* interrupt bookkeeping */
    int              calls;
    int64_t          max_gap;
    int64_t          last_call;
    int64_t          fire_after;
    int              fire_with;
} fixture_t;


static int64_t
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
sleep_ms(int ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long) (ms % 1000) * 1000000;

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        /* void */
    }
}


static uint8_t
pattern(int64_t i)
{
    return (uint8_t) (i * 131 + (i >> 9) + 7);
}


static void
append(fixture_t *f, int64_t from, int64_t n)
{
    int64_t  i;
    uint8_t  buf[4096];
    size_t   k;

    while (n > 0) {
        k = n < (int64_t) sizeof(buf) ? (size_t) n : sizeof(buf);

        for (i = 0; i < (int64_t) k; i++) {
            buf[i] = pattern(from + i);
        }

        if (pwrite(f->wfd, buf, k, from) != (ssize_t) k) {
            perror("pwrite");
            exit(2);
        }

        from += k;
        n -= k;
    }
}


/* a temp file of "have" bytes, a reader that knows "written" of them */
static void
setup(fixture_t *f, int64_t have, int64_t written, int ended,
    int64_t stall_ms)
{
    int   rfd;
    char  path[] = "/tmp/vconv-test-reader-XXXXXX";

    memset(f, 0, sizeof(*f));

    f->wfd = mkstemp(path);
    rfd = open(path, O_RDONLY);

    if (f->wfd == -1 || rfd == -1) {
        perror("mkstemp");
        exit(2);
    }

    unlink(path);

    append(f, 0, have);

    if (vconv_reader_init(&f->rd, rfd, written, ended, stall_ms)
        != VCONV_OK)
    {
        fprintf(stderr, "vconv_reader_init failed\n");
        exit(2);
    }
}


static void
teardown(fixture_t *f)
{
    close(f->rd.fd);
    close(f->wfd);
    vconv_reader_destroy(&f->rd);
}


static void *
call_thread(void *arg)
{
    fixture_t  *f = arg;

    f->started = now_ms();

    if (f->op == 0) {
        f->result = vconv_reader_read(&f->rd, f->buf, f->size);

    } else {
        f->result = vconv_reader_seek(&f->rd, f->offset, f->whence);
    }

    f->finished = now_ms();
    __atomic_store_n(&f->done, 1, __ATOMIC_SEQ_CST);

    return NULL;
}


static void
start_call(fixture_t *f, pthread_t *t, int op, int64_t offset, int whence,
    int size)
{
    f->op = op;
    f->offset = offset;
    f->whence = whence;
    f->size = size;
    f->done = 0;

    if (pthread_create(t, NULL, call_thread, f) != 0) {
        exit(2);
    }
}


static int
is_done(fixture_t *f)
{
    return __atomic_load_n(&f->done, __ATOMIC_SEQ_CST);
}


/* the streaming case: writer and reader threads, bytes must match */

typedef struct {
    fixture_t  *f;
    int64_t     total;
} writer_t;


static void *
writer_thread(void *arg)
{
    int         k;
    int64_t     at, n;
    writer_t   *w = arg;

    at = 0;

    for (k = 0; at < w->total; k++) {
        n = (k * 7919) % 65536 + 1;

        if (n > w->total - at) {
            n = w->total - at;
        }

        append(w->f, at, n);
        at += n;
        vconv_reader_grow(&w->f->rd, at);

        if (k % 4 == 0) {
            sleep_ms(1 + k % 3);
        }
    }

    vconv_reader_end(&w->f->rd);

    return NULL;
}


static void
test_stream(void)
{
    int        k, rc, bad;
    int64_t    pos, i;
    uint8_t   *buf;
    writer_t   w;
    fixture_t  f;
    pthread_t  t;

    static const int  sizes[] = { 32768, 1, 4096, 65536, 7, 100000, 512 };

    setup(&f, 0, 0, 0, 5000);

    w.f = &f;
    w.total = BIG;

    if (pthread_create(&t, NULL, writer_thread, &w) != 0) {
        exit(2);
    }

    buf = malloc(100000);
    if (buf == NULL) {
        exit(2);
    }

    pos = 0;
    bad = 0;

    for (k = 0; ; k++) {
        rc = vconv_reader_read(&f.rd, buf, sizes[k % 7]);

        if (rc <= 0) {
            break;
        }

        for (i = 0; i < rc; i++) {
            bad += buf[i] != pattern(pos + i);
        }

        pos += rc;
    }

    pthread_join(t, NULL);

    is_int(rc, AVERROR_EOF, "stream: ends with AVERROR_EOF");
    is_int(pos, BIG, "stream: read every byte written");
    is_int(bad, 0, "stream: bytes match what the writer wrote");
    is_int(f.rd.stop, VCONV_E_NONE, "stream: no stop reason");

    rc = vconv_reader_read(&f.rd, buf, 10);
    is_int(rc, AVERROR_EOF, "stream: EOF again after EOF");

    free(buf);
    teardown(&f);
}


static void
test_blocking(void)
{
    int64_t    t0;
    fixture_t  f;
    pthread_t  t;

    setup(&f, 10, 10, 0, 0);

    is_int(vconv_reader_read(&f.rd, f.buf, 100), 10,
           "block: what is written is returned at once, short");
    is_int(vconv_reader_read(&f.rd, f.buf, 0), 0, "block: size 0 reads 0");

    start_call(&f, &t, 0, 0, 0, 100);
    sleep_ms(150);
    ok(!is_done(&f), "block: a read at the written end waits");

    append(&f, 10, 5);
    t0 = now_ms();
    vconv_reader_grow(&f.rd, 15);
    pthread_join(t, NULL);

    is_int(f.result, 5, "block: the read returns the new bytes");
    ok(f.finished - t0 < 100, "block: woken by grow (%lld ms)",
       (long long) (f.finished - t0));
    ok(f.buf[0] == pattern(10) && f.buf[4] == pattern(14),
       "block: right bytes");

    /* the end wakes a waiting read with EOF */

    start_call(&f, &t, 0, 0, 0, 100);
    sleep_ms(50);
    ok(!is_done(&f), "block: waits again");
    vconv_reader_end(&f.rd);
    pthread_join(t, NULL);
    is_int(f.result, AVERROR_EOF, "block: end gives AVERROR_EOF");

    teardown(&f);

    /* a file shorter than what the writer claims: short read, then EIO */

    setup(&f, 100, 200, 1, 0);
    is_int(vconv_reader_seek(&f.rd, 90, SEEK_SET), 90, "short: seek");
    is_int(vconv_reader_read(&f.rd, f.buf, 50), 10,
           "short: a short pread returns what it got");
    is_int(vconv_reader_read(&f.rd, f.buf, 50), AVERROR(EIO),
           "short: nothing where bytes should be is EIO");
    teardown(&f);
}


static void
test_stall(void)
{
    int        k, rc;
    int64_t    t0, el;
    fixture_t  f;
    pthread_t  t;

    setup(&f, 0, 0, 0, 300);

    t0 = now_ms();
    rc = vconv_reader_read(&f.rd, f.buf, 10);
    el = now_ms() - t0;

    is_int(rc, AVERROR(ETIMEDOUT), "stall: read fails with ETIMEDOUT");
    is_int(f.rd.stop, VCONV_E_STALLED, "stall: stop is VCONV_E_STALLED");
    ok(el >= 290 && el < 700, "stall: fired after %lld ms (300)",
       (long long) el);

    append(&f, 0, 10);
    vconv_reader_grow(&f.rd, 10);
    is_int(vconv_reader_read(&f.rd, f.buf, 10), AVERROR(ETIMEDOUT),
           "stall: sticky, even with data");
    is_int(vconv_reader_seek(&f.rd, 0, SEEK_SET), AVERROR(ETIMEDOUT),
           "stall: seek fails too");

    teardown(&f);

    /* growth more often than the stall timeout keeps the read alive */

    setup(&f, 0, 0, 0, 300);

    for (k = 0; k < 6; k++) {
        start_call(&f, &t, 0, 0, 0, 1);
        sleep_ms(150);
        append(&f, k, 1);
        vconv_reader_grow(&f.rd, k + 1);
        pthread_join(t, NULL);

        if (f.result != 1) {
            break;
        }
    }

    is_int(k, 6, "stall: steady slow growth never stalls");

    teardown(&f);

    /* no stall once the upload has ended, however long it took */

    setup(&f, 5, 5, 1, 50);
    sleep_ms(120);
    is_int(vconv_reader_read(&f.rd, f.buf, 10), 5,
           "stall: ended upload reads fine after the timeout");
    is_int(vconv_reader_read(&f.rd, f.buf, 10), AVERROR_EOF,
           "stall: and then EOF, no stall");
    teardown(&f);

    /* the stall clock starts when the reader waits, not at the last grow */

    setup(&f, 5, 5, 0, 200);
    sleep_ms(300);
    is_int(vconv_reader_read(&f.rd, f.buf, 10), 5, "stall: busy reader");
    t0 = now_ms();
    rc = vconv_reader_read(&f.rd, f.buf, 10);
    el = now_ms() - t0;
    ok(rc == AVERROR(ETIMEDOUT) && el >= 190,
       "stall: a late reader still waits the full timeout (%lld ms)",
       (long long) el);
    teardown(&f);
}


static void
test_stop(void)
{
    int64_t    t0;
    fixture_t  f;
    pthread_t  t;

    setup(&f, 0, 0, 0, 0);

    start_call(&f, &t, 0, 0, 0, 10);
    sleep_ms(120);
    ok(!is_done(&f), "stop: read waits (no stall timeout)");

    t0 = now_ms();
    vconv_reader_stop(&f.rd, VCONV_E_CANCELED);
    pthread_join(t, NULL);

    is_int(f.result, AVERROR_EXIT, "stop: read fails with AVERROR_EXIT");
    ok(f.finished - t0 < 250, "stop: woke within %lld ms",
       (long long) (f.finished - t0));
    is_int(f.rd.stop, VCONV_E_CANCELED, "stop: reason kept");

    vconv_reader_stop(&f.rd, VCONV_E_STALLED);
    is_int(f.rd.stop, VCONV_E_CANCELED, "stop: the first reason wins");

    append(&f, 0, 10);
    vconv_reader_grow(&f.rd, 10);
    vconv_reader_end(&f.rd);
    is_int(vconv_reader_read(&f.rd, f.buf, 10), AVERROR_EXIT,
           "stop: later reads fail even with data");
    is_int(vconv_reader_seek(&f.rd, 0, SEEK_SIZE), AVERROR_EXIT,
           "stop: seeks fail too");

    teardown(&f);

    /* a stop wakes a waiting read past the written end too */

    setup(&f, 0, 0, 0, 0);
    is_int(vconv_reader_seek(&f.rd, 10, SEEK_SET), 10, "stop: seek ahead");
    start_call(&f, &t, 0, 0, 0, 10);
    sleep_ms(50);
    vconv_reader_stop(&f.rd, VCONV_E_INTERRUPTED);
    pthread_join(t, NULL);
    is_int(f.result, AVERROR_EXIT, "stop: wakes a read past the end");
    teardown(&f);
}


static int
interrupt_cb(void *data)
{
    int64_t     now;
    fixture_t  *f = data;

    now = now_ms();

    if (f->calls > 0 && now - f->last_call > f->max_gap) {
        f->max_gap = now - f->last_call;
    }

    f->calls++;
    f->last_call = now;

    return now >= f->fire_after ? f->fire_with : 0;
}


static void
test_interrupt(void)
{
    int        rc;
    int64_t    t0, el;
    fixture_t  f;

    setup(&f, 0, 0, 0, 0);

    f.rd.interrupt = interrupt_cb;
    f.rd.data = &f;
    f.fire_with = VCONV_E_INTERRUPTED;

    t0 = now_ms();
    f.fire_after = t0 + 900;

    rc = vconv_reader_read(&f.rd, f.buf, 10);
    el = now_ms() - t0;

    is_int(rc, AVERROR_EXIT, "interrupt: read fails with AVERROR_EXIT");
    is_int(f.rd.stop, VCONV_E_INTERRUPTED,
           "interrupt: its return value is the stop reason");
    ok(el >= 890 && el < 1300, "interrupt: fired after %lld ms (900)",
       (long long) el);
    ok(f.calls >= 5, "interrupt: polled %d times", f.calls);
    /* the slice is 200 ms; the rest is room for a loaded machine */
    ok(f.max_gap <= 350, "interrupt: polled every %lld ms at most",
       (long long) f.max_gap);

    teardown(&f);

    /* a plain "1" (AVIOInterruptCB style) counts as a cancel */

    setup(&f, 0, 0, 0, 0);
    f.rd.interrupt = interrupt_cb;
    f.rd.data = &f;
    f.fire_with = 1000;
    f.fire_after = 0;

    is_int(vconv_reader_read(&f.rd, f.buf, 10), AVERROR_EXIT,
           "interrupt: any nonzero value stops");
    is_int(f.rd.stop, VCONV_E_CANCELED, "interrupt: unknown value: canceled");
    teardown(&f);

    /* the callback is not called when there is data to read */

    setup(&f, 10, 10, 0, 0);
    f.rd.interrupt = interrupt_cb;
    f.rd.data = &f;
    f.fire_with = 1;
    f.fire_after = 0;

    is_int(vconv_reader_read(&f.rd, f.buf, 10), 10,
           "interrupt: not polled while data is there");
    is_int(f.calls, 0, "interrupt: zero calls");
    teardown(&f);
}


static void
test_seek(void)
{
    fixture_t  f;
    pthread_t  t;
    int64_t    t0;

    setup(&f, 100, 100, 1, 0);

    is_int(vconv_reader_seek(&f.rd, 0, SEEK_SIZE), 100,
           "seek: AVSEEK_SIZE of an ended file");
    is_int(vconv_reader_seek(&f.rd, 0, SEEK_SIZE | SEEK_FORCE), 100,
           "seek: AVSEEK_FORCE is masked");
    is_int(f.rd.pos, 0, "seek: AVSEEK_SIZE does not move");

    is_int(vconv_reader_seek(&f.rd, 10, SEEK_SET), 10, "seek: SEEK_SET");
    is_int(vconv_reader_read(&f.rd, f.buf, 1), 1, "seek: read one");
    ok(f.buf[0] == pattern(10), "seek: byte 10 after SEEK_SET 10");

    is_int(vconv_reader_seek(&f.rd, 5, SEEK_CUR), 16, "seek: SEEK_CUR");
    is_int(vconv_reader_seek(&f.rd, -16, SEEK_CUR | SEEK_FORCE), 0,
           "seek: SEEK_CUR back, with AVSEEK_FORCE");
    is_int(vconv_reader_seek(&f.rd, -10, SEEK_END), 90, "seek: SEEK_END");
    is_int(vconv_reader_read(&f.rd, f.buf, 100), 10, "seek: tail read");
    ok(f.buf[9] == pattern(99), "seek: last byte");

    is_int(vconv_reader_seek(&f.rd, -1, SEEK_SET), AVERROR(EINVAL),
           "seek: negative position refused");
    is_int(vconv_reader_seek(&f.rd, -101, SEEK_END), AVERROR(EINVAL),
           "seek: before the start from the end refused");
    is_int(vconv_reader_seek(&f.rd, 0, 42), AVERROR(EINVAL),
           "seek: unknown whence refused");
    is_int(vconv_reader_seek(&f.rd, 500, SEEK_SET), 500,
           "seek: past the end of an ended file");
    is_int(vconv_reader_read(&f.rd, f.buf, 10), AVERROR_EOF,
           "seek: and a read there is EOF");

    teardown(&f);

    /* while the upload grows */

    setup(&f, 50, 50, 0, 0);

    is_int(vconv_reader_seek(&f.rd, 0, SEEK_SIZE), AVERROR(ENOSYS),
           "seek: no AVSEEK_SIZE before the end");

    /* past the written end: the seek returns, the read waits */

    is_int(vconv_reader_seek(&f.rd, 70, SEEK_SET), 70,
           "seek: past the written end returns at once");

    start_call(&f, &t, 0, 0, 0, 10);
    sleep_ms(100);
    ok(!is_done(&f), "seek: the read there waits");

    append(&f, 50, 15);
    vconv_reader_grow(&f.rd, 65);
    sleep_ms(100);
    ok(!is_done(&f), "seek: still waits, growth below the position");

    append(&f, 65, 10);
    vconv_reader_grow(&f.rd, 75);
    pthread_join(t, NULL);
    is_int(f.result, 5, "seek: reads once the position is written");
    ok(f.buf[0] == pattern(70) && f.buf[4] == pattern(74),
       "seek: the right bytes");

    /* without a known size, SEEK_END fails at once: no wait */

    t0 = now_ms();
    is_int(vconv_reader_seek(&f.rd, -5, SEEK_END), AVERROR(ENOSYS),
           "seek: no SEEK_END before the end without a size");
    ok(now_ms() - t0 < 50, "seek: ... and no wait");

    /* with the announced size, both answer from it */

    vconv_reader_expect(&f.rd, 100);
    is_int(vconv_reader_seek(&f.rd, 0, SEEK_SIZE), 100,
           "seek: AVSEEK_SIZE from the announced size");
    is_int(vconv_reader_seek(&f.rd, -5, SEEK_END), 95,
           "seek: SEEK_END from the announced size");

    /* the read there waits for the bytes */

    start_call(&f, &t, 0, 0, 0, 5);
    sleep_ms(100);
    ok(!is_done(&f), "seek: a read at SEEK_END waits for the bytes");

    append(&f, 75, 25);
    vconv_reader_grow(&f.rd, 100);
    vconv_reader_end(&f.rd);
    pthread_join(t, NULL);
    is_int(f.result, 5, "seek: the read at the end gets its bytes");

    is_int(vconv_reader_seek(&f.rd, 0, SEEK_SIZE), 100,
           "seek: AVSEEK_SIZE after the end");

    teardown(&f);
}


int
main(void)
{
    test_stream();
    test_blocking();
    test_stall();
    test_stop();
    test_interrupt();
    test_seek();

    return done_testing();
}
