/*
 * bench/sandbox_ab.c: vconv_isolation process against thread without
 * HTTP, in one process: the same conversion runs through
 * vconv_transcode() in this thread and through the sandbox helper,
 * alternating, and the medians are printed.  Run it under a real-time
 * policy to keep other load out of the numbers:
 *
 *     make build
 *     cc -O2 -pthread -Isrc $(pkg-config --cflags libavformat) \
 *         -o build/sandbox-ab bench/sandbox_ab.c build/libvconv.a \
 *         $(pkg-config --libs libavformat libavcodec libavfilter \
 *           libswscale libswresample libavutil jansson) -lm
 *     chrt -f 10 build/sandbox-ab build/vconv-sandbox 15 300 \
 *         clip.mp4 /tmp/out.jpg format=jpg
 *
 * Arguments: helper, jobs per mode, pause between jobs in ms (the spare
 * is ready again after it), input, output, options.  AB_SPARE_IDLE_MS in
 * the environment is vconv_sandbox_spare_idle: under the pause, each job
 * in process mode is the first one after idle (forked, no spare).
 */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "vconv_sandbox.h"


#define AB_MAX  100


static vconv_sandbox_t  ab_sb;
static vconv_spec_t     ab_spec;
static vconv_limits_t   ab_limits;


static void
ab_log(int level, const char *job, const char *msg)
{
    if (level <= 16) {
        fprintf(stderr, "%s: %s", job, msg);
    }
}


static double
ab_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static int
ab_cmp(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


/* one job, its wall time in s; *spawn_us: the child's start (process) */
static double
ab_job(int sandboxed, const char *in, const char *out, int64_t *spawn_us)
{
    int                  fd, ofd, rc;
    double               t0;
    struct stat          st;
    vconv_reader_t       rd;
    vconv_transcode_t    tc;
    vconv_sandbox_job_t  sj;

    t0 = ab_now();

    fd = open(in, O_RDONLY | O_CLOEXEC);
    if (fd == -1 || fstat(fd, &st) == -1) {
        perror(in);
        exit(1);
    }

    (void) vconv_reader_init(&rd, fd, st.st_size, 1, 0);

    (void) unlink(out);
    ofd = open(out, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (ofd == -1) {
        perror(out);
        exit(1);
    }

    memset(&tc, 0, sizeof(tc));
    tc.spec = &ab_spec;
    tc.limits = &ab_limits;
    tc.read = vconv_reader_read;
    tc.seek = vconv_reader_seek;
    tc.io_opaque = &rd;
    tc.output_fd = ofd;

    if (sandboxed) {
        memset(&sj, 0, sizeof(sj));
        sj.job = "ab";
        sj.log_level = 24;
        rc = vconv_sandbox_transcode(&ab_sb, &tc, &rd, &sj);
        *spawn_us = sj.spawn_us;

    } else {
        rc = vconv_transcode(&tc);
    }

    (void) close(ofd);
    vconv_reader_destroy(&rd);
    (void) close(fd);

    if (rc != VCONV_OK) {
        fprintf(stderr, "failed: %s\n", tc.err.message);
        exit(1);
    }

    return ab_now() - t0;
}


int
main(int argc, char **argv)
{
    int            n, pause, i, k, sb;
    char           err[512], *eq, *idle;
    double         tp[AB_MAX], tt[AB_MAX], t;
    int64_t        sp[AB_MAX], dummy;
    vconv_error_t  e;

    if (argc < 7) {
        fprintf(stderr, "usage: sandbox-ab HELPER N PAUSE_MS IN OUT "
                "key=value...\n");
        return 2;
    }

    n = atoi(argv[2]);
    n = n < 1 ? 1 : n > AB_MAX ? AB_MAX : n;
    pause = atoi(argv[3]);

    vconv_log_init(ab_log, 16);
    vconv_spec_init(&ab_spec);

    for (i = 6; i < argc; i++) {
        eq = strchr(argv[i], '=');
        if (eq == NULL
            || vconv_spec_set(&ab_spec, argv[i], eq - argv[i], eq + 1,
                              strlen(eq + 1), &e) != VCONV_OK)
        {
            fprintf(stderr, "bad option \"%s\"\n", argv[i]);
            return 2;
        }
    }

    if (vconv_spec_finish(&ab_spec, VCONV_FMT_ALL, &e) != VCONV_OK) {
        fprintf(stderr, "%s\n", e.message);
        return 2;
    }

    if (vconv_sandbox_init(&ab_sb, argv[1], ab_log) != VCONV_OK) {
        fprintf(stderr, "sandbox init failed\n");
        return 1;
    }

    idle = getenv("AB_SPARE_IDLE_MS");
    if (idle != NULL) {
        ab_sb.spare_idle_ms = atoll(idle);
    }

    if (vconv_sandbox_spawn(&ab_sb, err, sizeof(err)) != VCONV_OK) {
        fprintf(stderr, "helper: %s\n", err);
        return 1;
    }

    /* one of each first: the libraries' one-time setup in this process */
    (void) ab_job(0, argv[4], argv[5], &dummy);
    (void) ab_job(1, argv[4], argv[5], &dummy);

    for (i = 0; i < n; i++) {
        for (k = 0; k < 2; k++) {
            sb = (i + k) % 2;
            (void) usleep(pause * 1000);
            t = ab_job(sb, argv[4], argv[5], &sp[i]);

            if (sb) {
                tp[i] = t;

            } else {
                tt[i] = t;
            }
        }
    }

    for (i = 0; i < n; i++) {
        printf("process %.2f ms  thread %.2f ms  child ready %.2f ms\n",
               tp[i] * 1e3, tt[i] * 1e3, sp[i] / 1e3);
    }

    qsort(tp, n, sizeof(double), ab_cmp);
    qsort(tt, n, sizeof(double), ab_cmp);

    printf("median: process %.2f ms, thread %.2f ms, ratio %.3f\n",
           tp[n / 2] * 1e3, tt[n / 2] * 1e3, tp[n / 2] / tt[n / 2]);

    return 0;
}
