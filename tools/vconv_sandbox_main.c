/*
 * vconv-sandbox: the helper an nginx worker starts (posix_spawn, fresh
 * exec: no nginx memory in it) to run each transcode in a child process.
 *
 *     vconv-sandbox --helper PPID PROTOCOL
 *                                     control socket on fd 3 (the worker)
 *     vconv-sandbox --selftest        confine a child as for a job, then
 *                                     try what the filter must refuse
 *
 * The helper is single-threaded and never parses media: it forks one
 * child per job, kills children on request, reaps them, and sends each
 * one's wait status on the job socket.  The child drops everything but
 * its job's descriptors, sets limits and a seccomp filter before it reads
 * a byte of media, and runs vconv_transcode() with its callbacks relayed
 * as messages.  See src/vconv_sandbox.h.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <seccomp.h>

#include <libavutil/cpu.h>
#include <libavutil/log.h>

#include "vconv_sandbox.h"
#include "vconv_sandbox_warm.h"


/* descriptors of the child, after it dropped everything else */
#define VCONV_CHILD_IN     3
#define VCONV_CHILD_OUT    4
#define VCONV_CHILD_SOCK   5
#define VCONV_CHILD_STATUS 6

/*
 * A failure or crash with the address space's peak this close to
 * RLIMIT_AS counts as running out of memory: the allocation that failed
 * (a frame pool, an encoder's lookahead) is not in the peak itself.
 */
#define VCONV_NEAR_LIMIT(limit)                                              \
    ((limit) / 8 > 48 * 1024 * 1024 ? (limit) / 8 : 48 * 1024 * 1024)


typedef struct {
    uint64_t   token;
    pid_t      pid;
    int        sock;       /* the helper's copy of the child's job socket */
} vconv_child_t;


/*
 * The spare: a child forked ahead of its job, which waits for it with
 * everything that is the same for every job done (the fork, the fds, the
 * libraries' one-time setup, and a warm heap: see vconv_child_warm()).
 * The helper hands the next job to it, and forks the next spare when a
 * job ends; a job that comes while there is no spare ready is forked for
 * as before.  A spare that no job took for vconv_sandbox_spare_idle is let
 * go (its warm heap is most of an idle worker's memory), and the next
 * job is forked for.
 */
typedef struct {
    pid_t      pid;        /* -1: none */
    int        sock;       /* the helper's end of the spare's socket */
    int        ready;      /* the spare said it waits for its job */
    int64_t    since;      /* ms: forked, or the last job came */
} vconv_spare_t;


typedef struct {
    int        priority;   /* the nice value the job may take, 0: none */
    int64_t    rlimit_as;  /* bytes, the whole address space */
    int64_t    cpu;        /* seconds */
    int64_t    fsize;      /* bytes, 0: none */
} vconv_confine_t;


static int vconv_helper(pid_t ppid, int64_t spare_idle);
static int vconv_helper_timeout(int64_t spare_idle);
static int64_t vconv_now_ms(void);
static void vconv_helper_job(vconv_child_t **children, size_t *n,
    vconv_sb_msg_t *m, int *fds, int nfds);
static void vconv_helper_reap(vconv_child_t *children, size_t *n);
static void vconv_spare_start(pid_t helper);
static void vconv_spare_stop(void);
static pid_t vconv_spare_take(vconv_sb_msg_t *m, int *fds);
static void vconv_spare(int sock, pid_t helper) __attribute__((noreturn));
static void vconv_child(vconv_sb_msg_t *m, int in, int out, int sock,
    pid_t helper) __attribute__((noreturn));
static int vconv_child_prepare(pid_t helper);
static void vconv_child_warm(void);
static void *vconv_child_warm_thread(void *data);
static void vconv_child_run(vconv_sb_msg_t *m, int in, int out, int sock)
    __attribute__((noreturn));
static int vconv_child_fds(int in, int out, int sock);
static int vconv_child_outputs(vconv_sb_job_t *job, vconv_output_t *outs);
static int64_t vconv_child_vm(const char *field);
static void vconv_child_crash(int sig);
static void *vconv_child_relay(void *data);
static void vconv_child_log(int level, const char *job, const char *msg);
static void vconv_child_probed(void *data, const vconv_input_info_t *in);
static void vconv_child_progress(void *data, double fraction);
static int vconv_confine(const vconv_confine_t *c, char *err, size_t len);
static int vconv_selftest(void);


/*
 * The warm heap of a spare (see vconv_child_warm()), per arena, and the
 * largest block malloc takes from its heaps instead of a fresh mmap each
 * time.  A thumbnail of a 720p clip grows the main arena to 31 MB (the
 * decoder's frames, its frame threads and the scaler share it): with 16
 * MB warm there it took 2,200 page faults, ~5 ms; 32 MB and 12 MB take
 * 52.  A ready spare holds them as its warm heap (see
 * vconv_sandbox_spare_idle for an idle one).
 */
#ifndef VCONV_WARM_MAIN
#define VCONV_WARM_MAIN    8                    /* the main arena's */
#endif
#ifndef VCONV_WARM_SECOND
#define VCONV_WARM_SECOND  3                    /* the codec threads' */
#endif
#define VCONV_WARM_BLOCK   (4 * 1024 * 1024)
#define VCONV_MMAP_MIN     (8 * 1024 * 1024)

/* freed memory below this stays in the heaps: the warm heap must */
#define VCONV_TRIM_MIN     (64 * 1024 * 1024)


/* the helper's spare child */
static vconv_spare_t   vconv_spare_child = { -1, -1, 0, 0 };

/*
 * 0 while the worker says every transcode slot is taken (VCONV_SB_SPARE):
 * the cores are busy anyway, and the warm heap's ~45 MB go to the jobs
 */
static int             vconv_spare_wanted = 1;

/* the child's state, for its relay thread and signal handlers */
static vconv_reader_t  vconv_child_reader;
static int64_t         vconv_child_base;    /* VmSize before the job */
static int64_t         vconv_child_limit;
static int64_t         vconv_child_memory;
static int             vconv_child_status = -1;  /* /proc/self/status */


int
main(int argc, char **argv)
{
    /*
     * The module checks the hello; PROTOCOL is for a human reading ps.
     * SPARE_IDLE (ms, 0: never) is vconv_sandbox_spare_idle.
     */
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "--helper") == 0) {
        return vconv_helper((pid_t) atol(argv[2]),
                            argc == 5 ? atoll(argv[4])
                                      : VCONV_SB_SPARE_IDLE_MS);
    }

    if (argc == 2 && strcmp(argv[1], "--selftest") == 0) {
        return vconv_selftest();
    }

    fprintf(stderr, "usage: vconv-sandbox --helper PPID PROTOCOL "
            "[SPARE_IDLE_MS] | "
            "--selftest\n"
            "(an nginx worker with the vconv module starts it)\n");

    return 2;
}


static int
vconv_helper(pid_t ppid, int64_t spare_idle)
{
    int               sfd, fds[3], nfds, rc, i;
    size_t            n, k;
    sigset_t          set;
    struct pollfd     pfd[2];
    vconv_child_t    *children;
    vconv_sb_msg_t    m;
    vconv_sb_hello_t  hello;
    struct signalfd_siginfo  si;

    /* the helper dies with its worker, whatever way the worker goes */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != ppid) {
        return 1;
    }

    (void) close_range(VCONV_SANDBOX_CTL_FD + 1, ~0U, 0);

    /* first of all, what this build speaks: the module checks it */
    hello.magic = VCONV_SB_MAGIC;
    hello.protocol = VCONV_SB_PROTOCOL;
    hello.size = sizeof(vconv_sb_msg_t);
    hello.pid = (uint32_t) getpid();

    if (send(VCONV_SANDBOX_CTL_FD, &hello, sizeof(hello), MSG_NOSIGNAL)
        != (ssize_t) sizeof(hello))
    {
        return 1;
    }

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);

    if (sigprocmask(SIG_BLOCK, &set, NULL) == -1) {
        return 1;
    }

    sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd == -1) {
        fprintf(stderr, "vconv-sandbox: signalfd() failed: %s\n",
                strerror(errno));
        return 1;
    }

    children = NULL;
    n = 0;

    vconv_spare_start(getpid());

    pfd[0].fd = VCONV_SANDBOX_CTL_FD;
    pfd[0].events = POLLIN;
    pfd[1].fd = sfd;
    pfd[1].events = POLLIN;

    for ( ;; ) {
        rc = poll(pfd, 2, vconv_helper_timeout(spare_idle));

        if (rc == -1) {
            if (errno == EINTR) {
                continue;
            }

            break;
        }

        if (pfd[1].revents & POLLIN) {
            while (read(sfd, &si, sizeof(si)) > 0) { /* void */ }
            vconv_helper_reap(children, &n);
        }

        if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            continue;
        }

        rc = vconv_sb_recv(VCONV_SANDBOX_CTL_FD, &m, fds, &nfds,
                           MSG_DONTWAIT);

        if (rc == 0) {
            /* the worker is gone: so are its jobs */
            break;
        }

        if (rc < 0) {
            if (errno == EAGAIN || errno == EPROTO) {
                continue;
            }

            break;
        }

        if (m.type == VCONV_SB_JOB) {
            vconv_spare_child.since = vconv_now_ms();
            vconv_helper_job(&children, &n, &m, fds, nfds);
            continue;
        }

        for (i = 0; i < nfds; i++) {
            (void) close(fds[i]);
        }

        if (m.type == VCONV_SB_SPARE) {
            vconv_spare_wanted = (m.u.value != 0);

            if (!vconv_spare_wanted) {
                vconv_spare_stop();

            } else if (vconv_spare_child.pid == -1) {
                vconv_spare_start(getpid());
            }

            continue;
        }

        if (m.type == VCONV_SB_KILL) {
            for (k = 0; k < n; k++) {
                if (children[k].token == m.token) {
                    /* not reaped yet, so the pid is still this child's */
                    (void) kill(children[k].pid, SIGKILL);
                }
            }
        }
    }

    for (k = 0; k < n; k++) {
        (void) kill(children[k].pid, SIGKILL);
    }

    if (vconv_spare_child.pid != -1) {
        (void) kill(vconv_spare_child.pid, SIGKILL);
    }

    return 0;
}


/*
 * The poll timeout: until the spare has been idle for spare_idle, when
 * it is killed (a spare still warming up would notice EOF on its socket
 * only at its end, which at the idle class may be long) and reaped as
 * any child; -1 (none) without a spare.
 */
static int
vconv_helper_timeout(int64_t spare_idle)
{
    int64_t  left;

    if (spare_idle <= 0 || vconv_spare_child.pid == -1) {
        return -1;
    }

    left = vconv_spare_child.since + spare_idle - vconv_now_ms();

    if (left > 0) {
        return left > INT_MAX ? INT_MAX : (int) left;
    }

    vconv_spare_stop();

    return -1;
}


static int64_t
vconv_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
vconv_helper_job(vconv_child_t **children, size_t *n, vconv_sb_msg_t *m,
    int *fds, int nfds)
{
    int             i;
    pid_t           pid, self;
    vconv_child_t  *c;
    vconv_sb_msg_t  ex;

    if (nfds != 3) {
        for (i = 0; i < nfds; i++) {
            (void) close(fds[i]);
        }

        return;
    }

    c = realloc(*children, (*n + 1) * sizeof(vconv_child_t));
    if (c == NULL) {
        goto failed;
    }

    *children = c;
    self = getpid();

    pid = vconv_spare_take(m, fds);

    if (pid == -1) {
        pid = fork();

        if (pid == 0) {
            vconv_child(m, fds[0], fds[1], fds[2], self);
        }
    }

    if (pid == -1) {
        goto failed;
    }

    (void) close(fds[0]);
    (void) close(fds[1]);

    c[*n].token = m->token;
    c[*n].pid = pid;
    c[*n].sock = fds[2];
    (*n)++;

    return;

failed:

    /* no child: its caller learns it as an exit with no result */
    memset(&ex, 0, sizeof(ex));
    ex.type = VCONV_SB_EXIT;
    ex.u.value = 127 << 8;
    (void) vconv_sb_send(fds[2], &ex, NULL, 0, MSG_DONTWAIT);

    for (i = 0; i < nfds; i++) {
        (void) close(fds[i]);
    }
}


static void
vconv_helper_reap(vconv_child_t *children, size_t *n)
{
    int             status;
    pid_t           pid;
    size_t          k;
    vconv_sb_msg_t  ex;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {

        if (pid == vconv_spare_child.pid) {
            /* killed from outside: the next job forks for itself */
            (void) close(vconv_spare_child.sock);
            vconv_spare_child.pid = -1;
            vconv_spare_child.sock = -1;
            continue;
        }

        for (k = 0; k < *n; k++) {
            if (children[k].pid == pid) {
                break;
            }
        }

        if (k == *n) {
            continue;
        }

        memset(&ex, 0, sizeof(ex));
        ex.type = VCONV_SB_EXIT;
        ex.token = children[k].token;
        ex.u.value = status;

        /*
         * The helper never blocks on a job: if the socket is full, the
         * caller sees EOF when this copy closes, which it takes as a
         * converter that died.
         */
        (void) vconv_sb_send(children[k].sock, &ex, NULL, 0, MSG_DONTWAIT);
        (void) close(children[k].sock);

        children[k] = children[--(*n)];

        /*
         * The next spare when a job has ended, not when one starts: its
         * fork (a copy of the helper's page tables, a millisecond or
         * two) would delay the job that just took the last one.
         */
        if (vconv_spare_child.pid == -1 && vconv_spare_wanted) {
            vconv_spare_start(getpid());
        }
    }
}


static void
vconv_spare_start(pid_t helper)
{
    int    sv[2];
    pid_t  pid;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
        return;
    }

    pid = fork();

    if (pid == 0) {
        (void) close(sv[0]);
        vconv_spare(sv[1], helper);
    }

    (void) close(sv[1]);

    if (pid == -1) {
        (void) close(sv[0]);
        return;
    }

    vconv_spare_child.pid = pid;
    vconv_spare_child.sock = sv[0];
    vconv_spare_child.ready = 0;
    vconv_spare_child.since = vconv_now_ms();
}


/* killed, and reaped as any child; the next job forks for itself */
static void
vconv_spare_stop(void)
{
    if (vconv_spare_child.pid == -1) {
        return;
    }

    (void) kill(vconv_spare_child.pid, SIGKILL);
    (void) close(vconv_spare_child.sock);
    vconv_spare_child.pid = -1;
    vconv_spare_child.sock = -1;
}


/*
 * The job goes to the spare if it is ready: its pid, or -1 (no spare, or
 * not ready yet: the caller forks, and the spare stays for a later job).
 */
static pid_t
vconv_spare_take(vconv_sb_msg_t *m, int *fds)
{
    pid_t           pid;
    vconv_sb_msg_t  r;

    if (vconv_spare_child.pid == -1) {
        return -1;
    }

    while (!vconv_spare_child.ready
           && vconv_sb_recv(vconv_spare_child.sock, &r, NULL, NULL,
                            MSG_DONTWAIT) == 1)
    {
        vconv_spare_child.ready = (r.type == VCONV_SB_READY);
    }

    if (!vconv_spare_child.ready) {
        return -1;
    }

    pid = vconv_spare_child.pid;

    if (vconv_sb_send(vconv_spare_child.sock, m, fds, 3, MSG_DONTWAIT)
        != 0)
    {
        (void) kill(pid, SIGKILL);
        pid = -1;
    }

    /* the spare is the job's child now (or gone): a new one is made */
    (void) close(vconv_spare_child.sock);
    vconv_spare_child.pid = -1;
    vconv_spare_child.sock = -1;

    return pid;
}


/* in the spare: made ready ahead, then waits for its job */
static void
vconv_spare(int sock, pid_t helper)
{
    int             s, fds[3], nfds, rc, i;
    vconv_sb_msg_t  m;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != helper) {
        _exit(1);
    }

    /* "ps" tells it from the jobs' children: vconv-spare once ready */
    (void) prctl(PR_SET_NAME, "vconv-warmup");

    /* the helper's descriptors (its control socket, other jobs') go */
    s = fcntl(sock, F_DUPFD_CLOEXEC, 1000);
    if (s == -1) {
        _exit(1);
    }

    (void) close_range(3, s - 1, 0);
    (void) close_range(s + 1, ~0U, 0);

    if (vconv_child_prepare(helper) != 0) {
        _exit(1);
    }

    vconv_child_warm();

    /*
     * The job's limit is on top of the spare as it waits: the warm heap
     * is the job's to use, the second arena's reservation and the warm
     * thread's cached stack are what any job's threads would make.
     */
    vconv_child_base = vconv_child_vm("VmSize:");
    if (vconv_child_base <= 0) {
        _exit(1);
    }

    (void) prctl(PR_SET_NAME, "vconv-spare");

    memset(&m, 0, sizeof(m));
    m.type = VCONV_SB_READY;
    m.pid = (uint32_t) getpid();

    if (vconv_sb_send(s, &m, NULL, 0, 0) != 0) {
        _exit(1);
    }

    for ( ;; ) {
        rc = vconv_sb_recv(s, &m, fds, &nfds, 0);

        if (rc == 1) {
            break;
        }

        if (rc == 0 || errno != EPROTO) {
            /* the helper let go of it before a job came */
            _exit(0);
        }
    }

    if (m.type != VCONV_SB_JOB || nfds != 3) {
        for (i = 0; i < nfds; i++) {
            (void) close(fds[i]);
        }

        _exit(1);
    }

    (void) prctl(PR_SET_NAME, "vconv-sandbox");

    vconv_child_run(&m, fds[0], fds[1], fds[2]);
}


/* in a child forked for its job */
static void
vconv_child(vconv_sb_msg_t *jm, int in, int out, int sock, pid_t helper)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != helper) {
        _exit(1);
    }

    if (vconv_child_prepare(helper) != 0) {
        _exit(1);
    }

    vconv_child_base = vconv_child_vm("VmSize:");
    if (vconv_child_base <= 0) {
        _exit(1);
    }

    vconv_child_run(jm, in, out, sock);
}


/*
 * What is the same for every job, before its descriptors come: signals,
 * what opens a file (the time zone, the CPU count: av_cpu_count() is
 * cached, /proc/self/status kept open for the memory checks), malloc's
 * settings.  The caller then takes the address-space size (the job's
 * limit is on top of it).
 */
static int
vconv_child_prepare(pid_t helper)
{
    int       fd;
    sigset_t  set;

    sigemptyset(&set);
    (void) sigprocmask(SIG_SETMASK, &set, NULL);

    tzset();
    (void) av_cpu_count();

    /* above the job's fds 3..6, which vconv_child_fds() puts in place */
    fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return -1;
    }

    vconv_child_status = fcntl(fd, F_DUPFD_CLOEXEC, 1000);
    (void) close(fd);

    if (vconv_child_status == -1) {
        return -1;
    }

    /* one 64 MB arena reservation per thread would eat the limit */
    (void) mallopt(M_ARENA_MAX, 2);

    /*
     * A process lives for one job: blocks up to 8 MB (a frame, a frame
     * pool's buffer) come from malloc's heaps and are used again when
     * freed, where a fresh mmap would fault in each of its pages again:
     * a long-lived worker's malloc learns this by itself.  (Not more: a
     * 32 MB threshold made thread arenas add 64 MB heaps and small jobs
     * failed vconv_job_memory 128m.)
     */
    (void) mallopt(M_MMAP_THRESHOLD, VCONV_MMAP_MIN);
    (void) mallopt(M_TRIM_THRESHOLD, VCONV_TRIM_MIN);

    return 0;
}


/*
 * A spare's warm heap.  In a fresh process every page a job touches first
 * is a page fault (3,000 to 8,000 for a thumbnail, each a few us on a
 * virtual machine): the main arena and the second one (the codec threads'
 * arena, M_ARENA_MAX 2) are faulted in now, while the spare waits, by a
 * thread of the idle class, so that this never slows a running job.  The
 * memory stays in malloc's free lists.
 */
static void
vconv_child_warm(void)
{
    int         i;
    void       *p[VCONV_WARM_MAIN];
    pthread_t   tid;

    /* blocks under the mmap threshold, so that they are the heap's */
    for (i = 0; i < VCONV_WARM_MAIN; i++) {
        p[i] = malloc(VCONV_WARM_BLOCK);
    }

    if (pthread_create(&tid, NULL, vconv_child_warm_thread, p) == 0) {
        (void) pthread_join(tid, NULL);
    }

    for (i = 0; i < VCONV_WARM_MAIN; i++) {
        free(p[i]);
    }
}


static void *
vconv_child_warm_thread(void *data)
{
    int                  i;
    void               **main_blocks, *p[VCONV_WARM_SECOND];
    struct sched_param   sp;

    main_blocks = data;

    /*
     * Only when nothing else wants the CPU, a running job least of all:
     * SCHED_IDLE, or nice 19 where that is refused (Linux: both are per
     * thread).
     */
    memset(&sp, 0, sizeof(sp));

    if (sched_setscheduler((pid_t) syscall(SYS_gettid), SCHED_IDLE, &sp)
        == -1)
    {
        (void) setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid), 19);
    }

    /*
     * The main arena's pages, in the blocks the main thread holds.  Not
     * zeros: the compiler makes malloc() and memset(0) a calloc(), which
     * skips fresh pages and so faults in nothing.
     */
    for (i = 0; i < VCONV_WARM_MAIN; i++) {
        if (main_blocks[i] != NULL) {
            memset(main_blocks[i], 0xa5, VCONV_WARM_BLOCK);
        }
    }

    /* this thread's malloc makes the second arena: its pages too */
    for (i = 0; i < VCONV_WARM_SECOND; i++) {
        p[i] = malloc(VCONV_WARM_BLOCK);

        if (p[i] != NULL) {
            memset(p[i], 0xa5, VCONV_WARM_BLOCK);
        }
    }

    for (i = 0; i < VCONV_WARM_SECOND; i++) {
        free(p[i]);
    }

    /* the codecs' one-time setup, at the same idle priority */
    vconv_sandbox_warm();

    return NULL;
}



/* in the child, from its job on: the job's whole life */
static void
vconv_child_run(vconv_sb_msg_t *jm, int in, int out, int sock)
{
    int                  rc, i;
    char                 err[256];
    pthread_t            tid;
    vconv_sb_msg_t       m;
    vconv_sb_job_t      *job;
    vconv_limits_t       limits;
    vconv_confine_t      conf;
    vconv_transcode_t    tc;
    vconv_output_t       outs[VCONV_MAX_OUTPUTS];
    struct sigaction     sa;
    static int           crash_signals[] = {
        SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, 0
    };

    if (vconv_child_fds(in, out, sock) != 0) {
        _exit(1);
    }

    job = &jm->u.job;
    job->input_formats[sizeof(job->input_formats) - 1] = '\0';
    job->job[sizeof(job->job) - 1] = '\0';

    vconv_child_limit = vconv_child_base + job->memory;
    vconv_child_memory = job->memory;

    conf.priority = job->priority;
    conf.rlimit_as = vconv_child_limit;
    conf.cpu = job->limits.max_duration > 0
               ? 10 * (job->limits.max_duration / 1000000) + 600
               : 24 * 3600;
    conf.fsize = job->limits.max_output > 0
                 ? job->limits.max_output + 64 * 1024 * 1024 : 0;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = vconv_child_crash;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;

    for (i = 0; crash_signals[i]; i++) {
        (void) sigaction(crash_signals[i], &sa, NULL);
    }

    if (vconv_confine(&conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "vconv-sandbox: job %s: %s\n", job->job, err);
        _exit(1);
    }

    memset(&m, 0, sizeof(m));
    m.type = VCONV_SB_READY;
    m.pid = (uint32_t) getpid();
    (void) vconv_sb_send(VCONV_CHILD_SOCK, &m, NULL, 0, 0);

    vconv_log_init(vconv_child_log, job->log_level ? job->log_level
                                                   : AV_LOG_WARNING);
    vconv_log_job(job->job);

    if (vconv_child_outputs(job, outs) != 0) {
        _exit(1);
    }

    if (vconv_reader_init(&vconv_child_reader, VCONV_CHILD_IN, job->written,
                          job->ended, 0)
        != VCONV_OK)
    {
        _exit(1);
    }

    if (job->size >= 0) {
        vconv_reader_expect(&vconv_child_reader, job->size);
    }

    if (pthread_create(&tid, NULL, vconv_child_relay, NULL) != 0) {
        _exit(1);
    }

    /*
     * Only now: the start and the relay of upload notices run at the
     * helper's priority; the media work (this thread, and the codec
     * threads it starts) yields to the event loop.
     */
    if (job->priority > 0) {
        (void) setpriority(PRIO_PROCESS, 0, job->priority);
    }

    limits = job->limits;
    limits.input_formats = job->input_formats[0] ? job->input_formats
                                                 : NULL;
    limits.demuxer_options = NULL;

    memset(&tc, 0, sizeof(tc));
    tc.spec = &job->spec;
    tc.limits = &limits;
    tc.read = vconv_reader_read;
    tc.seek = vconv_reader_seek;
    tc.io_opaque = &vconv_child_reader;
    tc.output_fd = VCONV_CHILD_OUT;
    tc.outputs = job->spec.nouts > 1 || job->spec.hls ? outs : NULL;
    tc.growing = !job->ended;
    tc.probed = vconv_child_probed;
    tc.progress = vconv_child_progress;

    rc = vconv_transcode(&tc);

    if (rc != VCONV_OK
        && (tc.err.code == VCONV_E_NOMEM
            || strstr(tc.err.message, "allocate memory") != NULL
            || vconv_child_vm("VmPeak:") + VCONV_NEAR_LIMIT(job->memory)
               >= vconv_child_limit))
    {
        /*
         * Under RLIMIT_AS an allocation that fails is the job's limit,
         * whatever error a library made of it ("Generic error in an
         * external library" from libx264).
         */
        (void) vconv_error_set(&tc.err, VCONV_E_MEMORY_LIMIT,
                               "the conversion needs more than "
                               "vconv_job_memory (%lld MB)",
                               (long long) (job->memory >> 20));
    }

    memset(&m, 0, sizeof(m));
    m.type = VCONV_SB_RESULT;
    m.u.result.rc = rc;
    m.u.result.err = tc.err;
    m.u.result.input = tc.input;
    m.u.result.output_bytes = tc.output_bytes;
    m.u.result.output_duration = tc.output_duration;
    m.u.result.damaged_packets = tc.damaged_packets;
    m.u.result.sprite = tc.sprite;

    for (i = 0; tc.outputs && i < job->spec.nouts; i++) {
        m.u.result.out_bytes[i] = outs[i].bytes;
        m.u.result.out_duration[i] = outs[i].duration;
        m.u.result.out_width[i] = outs[i].width;
        m.u.result.out_height[i] = outs[i].height;
        m.u.result.out_skipped[i] = outs[i].skipped;
    }

    (void) vconv_sb_send(VCONV_CHILD_SOCK, &m, NULL, 0, 0);

    /* no atexit, no libav teardown: the process is the cleanup */
    _exit(0);
}


/*
 * The job's three descriptors become 3, 4, 5, and /proc/self/status (kept
 * for the memory checks: the filter forbids opening it later) 6; every
 * other one goes.
 */
/*
 * A list of formats: the first output is VCONV_CHILD_OUT, the others
 * come one fd a message (VCONV_SB_OUTPUT) first on the job socket.
 */
static int
vconv_child_outputs(vconv_sb_job_t *job, vconv_output_t *outs)
{
    int             i, j, fds[3], nfds;
    vconv_sb_msg_t  m;

    memset(outs, 0, VCONV_MAX_OUTPUTS * sizeof(vconv_output_t));

    if (job->spec.nouts > VCONV_MAX_OUTPUTS) {
        return -1;
    }

    outs[0].fd = VCONV_CHILD_OUT;

    for (i = 1; i < job->spec.nouts; i++) {
        if (vconv_sb_recv(VCONV_CHILD_SOCK, &m, fds, &nfds, 0) != 1) {
            return -1;
        }

        if (m.type != VCONV_SB_OUTPUT || nfds != 1 || m.u.value != i) {
            for (j = 0; j < nfds; j++) {
                (void) close(fds[j]);
            }

            return -1;
        }

        outs[i].fd = fds[0];
    }

    return 0;
}


static int
vconv_child_fds(int in, int out, int sock)
{
    int  a, b, c;

    a = fcntl(in, F_DUPFD, 1000);
    b = fcntl(out, F_DUPFD, 1000);
    c = fcntl(sock, F_DUPFD, 1000);

    if (a == -1 || b == -1 || c == -1) {
        return -1;
    }

    (void) close_range(3, 999, 0);

    if (dup2(a, VCONV_CHILD_IN) == -1 || dup2(b, VCONV_CHILD_OUT) == -1
        || dup2(c, VCONV_CHILD_SOCK) == -1
        || dup2(vconv_child_status, VCONV_CHILD_STATUS) == -1)
    {
        return -1;
    }

    vconv_child_status = VCONV_CHILD_STATUS;

    (void) close_range(VCONV_CHILD_STATUS + 1, ~0U, 0);

    return 0;
}


/*
 * A "Vm...:" field of /proc/self/status in bytes, from the descriptor
 * kept open; async-signal-safe (the crash handler calls it).
 */
static int64_t
vconv_child_vm(const char *field)
{
    char     buf[4096];
    size_t   flen;
    ssize_t  n, i;
    int64_t  kb;

    n = pread(vconv_child_status, buf, sizeof(buf) - 1, 0);
    if (n <= 0) {
        return -1;
    }

    buf[n] = '\0';
    flen = strlen(field);

    for (i = 0; i < n; i++) {
        if ((i == 0 || buf[i - 1] == '\n')
            && strncmp(buf + i, field, flen) == 0)
        {
            break;
        }
    }

    if (i == n) {
        return -1;
    }

    for (i += flen; i < n && (buf[i] == ' ' || buf[i] == '\t'); i++) {
        /* void */
    }

    kb = 0;

    for ( /* void */ ; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) {
        kb = kb * 10 + (buf[i] - '0');
    }

    return kb * 1024;
}


/*
 * A crash near the address-space limit is a library that did not check
 * an allocation: the job ran out of its memory.  The worker is told
 * before the signal takes the process (SA_RESETHAND: default next).
 */
static void
vconv_child_crash(int sig)
{
    int64_t         vm;
    vconv_sb_msg_t  m;

    vm = vconv_child_vm("VmPeak:");

    if (vm > 0 && vm + VCONV_NEAR_LIMIT(vconv_child_memory)
                  >= vconv_child_limit)
    {
        memset(&m, 0, sizeof(m));
        m.type = VCONV_SB_MEMORY;
        m.u.value = vm;
        (void) send(VCONV_CHILD_SOCK, &m, sizeof(m), MSG_NOSIGNAL);
    }

    (void) raise(sig);
}


/* the worker's notices about the upload; EOF: the worker let go */
static void *
vconv_child_relay(void *data)
{
    int             rc;
    vconv_sb_msg_t  m;

    for ( ;; ) {
        rc = vconv_sb_recv(VCONV_CHILD_SOCK, &m, NULL, NULL, 0);

        if (rc == 0 || (rc < 0 && errno != EPROTO)) {
            _exit(3);
        }

        if (rc < 0) {
            continue;
        }

        switch (m.type) {

        case VCONV_SB_GROW:
            vconv_reader_grow(&vconv_child_reader, m.u.value);
            break;

        case VCONV_SB_EXPECT:
            vconv_reader_expect(&vconv_child_reader, m.u.value);
            break;

        case VCONV_SB_END:
            vconv_reader_end(&vconv_child_reader);
            break;

        default:
            break;
        }
    }

    return NULL;
}


static void
vconv_child_log(int level, const char *job, const char *msg)
{
    vconv_sb_msg_t  m;

    memset(&m, 0, sizeof(m));
    m.type = VCONV_SB_LOG;
    m.u.log.level = level;
    snprintf(m.u.log.text, sizeof(m.u.log.text), "%s", msg);

    (void) vconv_sb_send(VCONV_CHILD_SOCK, &m, NULL, 0, 0);
}


static void
vconv_child_probed(void *data, const vconv_input_info_t *in)
{
    vconv_sb_msg_t  m;

    memset(&m, 0, sizeof(m));
    m.type = VCONV_SB_PROBED;
    m.u.input = *in;

    (void) vconv_sb_send(VCONV_CHILD_SOCK, &m, NULL, 0, 0);
}


static void
vconv_child_progress(void *data, double fraction)
{
    vconv_sb_msg_t  m;

    memset(&m, 0, sizeof(m));
    m.type = VCONV_SB_PROGRESS;
    m.u.fraction = fraction;

    (void) vconv_sb_send(VCONV_CHILD_SOCK, &m, NULL, 0, 0);
}


/*
 * Limits, no new privileges, and the seccomp allow-list.  Everything
 * not listed fails with EPERM (open, openat, openat2, creat, socket,
 * connect, bind, execve, ptrace, fork, ...); clone3 fails with ENOSYS so
 * that glibc's pthread_create falls back to clone, which is allowed only
 * with CLONE_THREAD (threads for the codecs, never a new process).
 */
static int
vconv_confine(const vconv_confine_t *c, char *err, size_t len)
{
    int             rc;
    size_t          i;
    scmp_filter_ctx ctx;
    struct rlimit   rl;

    static const int  allow[] = {
        /* the job's descriptors: the input, output and job socket */
        SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(pread64),
        SCMP_SYS(pwrite64), SCMP_SYS(readv), SCMP_SYS(writev),
        SCMP_SYS(lseek), SCMP_SYS(close), SCMP_SYS(fstat),
        SCMP_SYS(ftruncate), SCMP_SYS(fcntl),
        SCMP_SYS(sendmsg), SCMP_SYS(sendto), SCMP_SYS(recvmsg),
        SCMP_SYS(recvfrom), SCMP_SYS(poll), SCMP_SYS(ppoll),
        /* memory: malloc, thread stacks, libav's buffers */
        SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap),
        SCMP_SYS(mprotect), SCMP_SYS(madvise),
        /* threads and their locks */
        SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
        SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity),
        SCMP_SYS(gettid), SCMP_SYS(getpid), SCMP_SYS(exit),
        SCMP_SYS(exit_group), SCMP_SYS(restart_syscall),
        /* signals: abort() and the crash handler */
        SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask),
        SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
        /* clocks and sleeps */
        SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
        SCMP_SYS(gettimeofday), SCMP_SYS(nanosleep),
        SCMP_SYS(clock_nanosleep),
        /* glibc's qsort asks for the memory size; getrusage for times */
        SCMP_SYS(sysinfo), SCMP_SYS(getrusage), SCMP_SYS(getrandom)
    };

    rl.rlim_cur = rl.rlim_max = (rlim_t) c->rlimit_as;
    if (setrlimit(RLIMIT_AS, &rl) == -1) {
        snprintf(err, len, "RLIMIT_AS: %s", strerror(errno));
        return -1;
    }

    rl.rlim_cur = rl.rlim_max = 0;
    (void) setrlimit(RLIMIT_CORE, &rl);

    /*
     * 3 job fds, status, the other outputs of a list of formats, dups
     * of each output for its muxer (two while MP4's faststart moves the
     * index)
     */
    rl.rlim_cur = rl.rlim_max = 16 + 3 * VCONV_MAX_OUTPUTS;
    (void) setrlimit(RLIMIT_NOFILE, &rl);

    rl.rlim_cur = (rlim_t) c->cpu;
    rl.rlim_max = (rlim_t) c->cpu + 5;
    (void) setrlimit(RLIMIT_CPU, &rl);

    if (c->fsize > 0) {
        /* a write past it fails with EFBIG instead of a signal */
        (void) signal(SIGXFSZ, SIG_IGN);
        rl.rlim_cur = rl.rlim_max = (rlim_t) c->fsize;
        (void) setrlimit(RLIMIT_FSIZE, &rl);
    }

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
        snprintf(err, len, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        return -1;
    }

    ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (ctx == NULL) {
        snprintf(err, len, "seccomp_init() failed");
        return -1;
    }

    rc = 0;

    for (i = 0; i < sizeof(allow) / sizeof(allow[0]) && rc == 0; i++) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allow[i], 0);
    }

    /* threads only: a clone without CLONE_THREAD would be a process */
    if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD,
                                      CLONE_THREAD));
    }

    if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3),
                              0);
    }

    /* glibc's fstat(): newfstatat(fd, "", AT_EMPTY_PATH), never a path */
    if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
                              SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH,
                                      AT_EMPTY_PATH));
    }

    /* the job's own nice value, once, for the calling thread only */
    if (rc == 0 && c->priority > 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setpriority), 3,
                              SCMP_A0(SCMP_CMP_EQ, PRIO_PROCESS),
                              SCMP_A1(SCMP_CMP_EQ, 0),
                              SCMP_A2(SCMP_CMP_EQ,
                                      (scmp_datum_t) c->priority));
    }

    /* raise() and abort(): signals to this process only */
    if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t) getpid()));
    }

    /* thread names (pthread_setname_np on itself) */
    if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                              SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
    }

    if (rc == 0) {
        rc = seccomp_load(ctx);
    }

    seccomp_release(ctx);

    if (rc != 0) {
        snprintf(err, len, "seccomp: %s", strerror(-rc));
        return -1;
    }

    return 0;
}


static void *
vconv_selftest_thread(void *data)
{
    return data;
}


/*
 * The filter as a job's child gets it, then the calls it must refuse.
 * Prints one line per check ("ok ..." or "not ok ..."); exit 0 if all
 * passed.  t/sandbox.t runs it.
 */
static int
vconv_selftest(void)
{
    int              status, fails, fd;
    char             err[256];
    void            *big;
    pid_t            pid, r;
    struct stat      st;
    pthread_t        tid;
    vconv_confine_t  conf;

    pid = fork();
    if (pid == -1) {
        perror("fork");
        return 1;
    }

    if (pid > 0) {
        while ((r = waitpid(pid, &status, 0)) == -1 && errno == EINTR) {
            /* void */
        }

        return (r == pid && WIFEXITED(status)) ? WEXITSTATUS(status) : 1;
    }

    setvbuf(stdout, NULL, _IONBF, 0);

    conf.priority = 10;
    conf.rlimit_as = (int64_t) 4 * 1024 * 1024 * 1024;
    conf.cpu = 60;
    conf.fsize = 0;

    if (vconv_confine(&conf, err, sizeof(err)) != 0) {
        printf("not ok confine: %s\n", err);
        _exit(1);
    }

    fails = 0;

#define VCONV_REFUSED(what, call, want)                                      \
    do {                                                                     \
        long  rv_;                                                           \
        errno = 0;                                                           \
        rv_ = (long) (call);                                                 \
        if (rv_ == -1 && errno == (want)) {                                  \
            printf("ok %s refused: %s\n", what, strerror(errno));            \
        } else {                                                             \
            printf("not ok %s: returned %ld, errno %d\n", what, rv_, errno); \
            fails++;                                                         \
        }                                                                    \
    } while (0)

    VCONV_REFUSED("open /etc/passwd", open("/etc/passwd", O_RDONLY), EPERM);
    VCONV_REFUSED("openat /etc/hostname",
                  openat(AT_FDCWD, "/etc/hostname", O_RDONLY), EPERM);
    VCONV_REFUSED("openat2", syscall(SYS_openat2, AT_FDCWD, "/etc/passwd",
                                     NULL, 0), EPERM);
    VCONV_REFUSED("creat /tmp/vconv-selftest",
                  creat("/tmp/vconv-selftest", 0600), EPERM);
    VCONV_REFUSED("stat /etc/passwd", stat("/etc/passwd", &st), EPERM);
    VCONV_REFUSED("socket AF_INET", socket(AF_INET, SOCK_STREAM, 0), EPERM);
    VCONV_REFUSED("socket AF_UNIX", socket(AF_UNIX, SOCK_STREAM, 0), EPERM);
    VCONV_REFUSED("connect", connect(1, NULL, 0), EPERM);
    VCONV_REFUSED("fork", syscall(SYS_fork), EPERM);
    VCONV_REFUSED("vfork", syscall(SYS_vfork), EPERM);
    VCONV_REFUSED("clone (process)",
                  syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0), EPERM);
    VCONV_REFUSED("clone3", syscall(SYS_clone3, NULL, 0), ENOSYS);
    VCONV_REFUSED("execve /bin/true",
                  execve("/bin/true", (char *[]) { "true", NULL },
                         (char *[]) { NULL }), EPERM);
    VCONV_REFUSED("ptrace", ptrace(PTRACE_TRACEME, 0, NULL, NULL), EPERM);
    VCONV_REFUSED("kill the parent", kill(getppid(), SIGTERM), EPERM);
    VCONV_REFUSED("setpriority -5", setpriority(PRIO_PROCESS, 0, -5), EPERM);
    VCONV_REFUSED("setrlimit", setrlimit(RLIMIT_AS, &(struct rlimit) {
                      RLIM_INFINITY, RLIM_INFINITY }), EPERM);

    /* what a codec needs still works */
    if (pthread_create(&tid, NULL, vconv_selftest_thread, NULL) == 0
        && pthread_join(tid, NULL) == 0)
    {
        printf("ok a thread starts\n");

    } else {
        printf("not ok a thread does not start\n");
        fails++;
    }

    fd = fcntl(1, F_DUPFD_CLOEXEC, 0);
    big = malloc(64 << 20);
    if (fd >= 0 && fstat(fd, &st) == 0 && close(fd) == 0 && big != NULL) {
        printf("ok dup, fstat, close and malloc work\n");

    } else {
        printf("not ok dup, fstat, close or malloc\n");
        fails++;
    }

    free(big);

    _exit(fails ? 1 : 0);
}
