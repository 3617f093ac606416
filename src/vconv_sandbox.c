/*
 * vconv: the caller's side of the sandbox (see vconv_sandbox.h): starts
 * the helper, hands it a job, and drives the job's child over the job
 * socket exactly as vconv_transcode() would be driven in the thread.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "vconv_sandbox.h"


/* how often the upload, cancel and the stall clock are looked at */
#define VCONV_SANDBOX_POLL_MS  100


/* one sandboxed job, as the pool thread drives it */
typedef struct {
    vconv_sandbox_t      *sb;
    vconv_transcode_t    *tc;
    vconv_reader_t       *rd;
    vconv_sandbox_job_t  *job;

    int                   js[2];          /* the job socket */
    int                   wake[2];        /* the reader wakes us on it */
    uint64_t              token;
    int64_t               limit;          /* vconv_job_memory, bytes */
    int64_t               t0;             /* the job sent, us */

    /* what the child was told of the upload */
    int64_t               sent_written;
    int64_t               sent_size;
    int                   sent_end;

    vconv_err_e           why;            /* cancel, stall: killed */
    int                   got_result;
    vconv_sb_result_t     result;
    int                   memory;         /* it crashed near its limit */
    int                   exited;
    int                   status;         /* wait status, with exited */
    int                   helper_gone;
} vconv_sb_run_t;


static int vconv_sandbox_send_job(vconv_sandbox_t *sb, vconv_sb_msg_t *m,
    const int *fds, char *err, size_t len);
static int vconv_sandbox_hello(vconv_sandbox_t *sb, char *err, size_t len);
static void vconv_sandbox_spare_tell(vconv_sandbox_t *sb);
static void vconv_sandbox_job_msg(vconv_sb_run_t *run, vconv_sb_msg_t *m);
static void vconv_sandbox_notify(vconv_sb_run_t *run);
static void vconv_sandbox_receive(vconv_sb_run_t *run);
static void vconv_sandbox_message(vconv_sb_run_t *run, vconv_sb_msg_t *m);
static int vconv_sandbox_outcome(vconv_sb_run_t *run);
static int vconv_sandbox_send_outputs(vconv_sb_run_t *run);
static void vconv_sandbox_kill(vconv_sandbox_t *sb, uint64_t token);
static void vconv_sandbox_log(vconv_sandbox_t *sb, const char *job,
    int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static int64_t vconv_sandbox_now_us(void);


int
vconv_sb_send(int fd, const vconv_sb_msg_t *m, const int *fds, int nfds,
    int flags)
{
    ssize_t          n;
    struct iovec     iov;
    struct msghdr    mh;
    struct cmsghdr  *cm;
    union {
        char            buf[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr  align;
    } ctl;

    memset(&mh, 0, sizeof(mh));
    iov.iov_base = (void *) m;
    iov.iov_len = sizeof(vconv_sb_msg_t);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;

    if (nfds > 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
    }

    do {
        n = sendmsg(fd, &mh, MSG_NOSIGNAL | flags);
    } while (n == -1 && errno == EINTR);

    return n == (ssize_t) sizeof(vconv_sb_msg_t) ? 0 : -1;
}


int
vconv_sb_recv(int fd, vconv_sb_msg_t *m, int *fds, int *nfds, int flags)
{
    int              i, n, *p;
    ssize_t          got;
    struct iovec     iov;
    struct msghdr    mh;
    struct cmsghdr  *cm;
    union {
        char            buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr  align;
    } ctl;

    if (nfds) {
        *nfds = 0;
    }

    memset(&mh, 0, sizeof(mh));
    iov.iov_base = m;
    iov.iov_len = sizeof(vconv_sb_msg_t);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);

    do {
        got = recvmsg(fd, &mh, flags | MSG_CMSG_CLOEXEC);
    } while (got == -1 && errno == EINTR);

    if (got <= 0) {
        return got == 0 ? 0 : -1;
    }

    for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
            continue;
        }

        n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        p = (int *) CMSG_DATA(cm);

        for (i = 0; i < n; i++) {
            if (fds != NULL && nfds != NULL && *nfds < 3) {
                fds[(*nfds)++] = p[i];

            } else {
                (void) close(p[i]);
            }
        }
    }

    /* a short or cut message is no message: never act on half of one */
    if (got != (ssize_t) sizeof(vconv_sb_msg_t)
        || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
    {
        for (i = 0; nfds != NULL && i < *nfds; i++) {
            (void) close(fds[i]);
        }

        if (nfds) {
            *nfds = 0;
        }

        errno = EPROTO;
        return -1;
    }

    return 1;
}


int
vconv_sandbox_init(vconv_sandbox_t *sb, const char *path,
    vconv_log_handler_pt log)
{
    memset(sb, 0, sizeof(vconv_sandbox_t));

    sb->fd = -1;
    sb->log = log;
    sb->spare_idle_ms = VCONV_SB_SPARE_IDLE_MS;
    sb->last_us = vconv_sandbox_now_us();
    sb->spare = 1;
    sb->spare_sent = 1;

    if (strlen(path) >= sizeof(sb->path)) {
        return VCONV_ERROR;
    }

    strcpy(sb->path, path);

    return pthread_mutex_init(&sb->mutex, NULL) == 0 ? VCONV_OK
                                                       : VCONV_ERROR;
}


/*
 * posix_spawn, not fork: the caller is a multi-threaded nginx worker.
 * The helper gets its control socket as fd 3, /dev/null for stdin and
 * stdout, the worker's stderr (nginx's error log) and nothing else: no
 * listening socket, no connection, no environment (LD_PRELOAD of an ASan
 * build included).  Pool threads block every signal; the helper must not
 * inherit that mask.
 */
int
vconv_sandbox_spawn(vconv_sandbox_t *sb, char *err, size_t len)
{
    int                         sv[2], rc, sig;
    char                        ppid[32], proto[16], idle[32];
    char                       *argv[6], *envp[1];
    pid_t                       pid;
    sigset_t                    set;
    posix_spawnattr_t           attr;
    posix_spawn_file_actions_t  fa;

    if (sb->fd != -1) {
        (void) close(sb->fd);
        sb->fd = -1;
    }

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
        snprintf(err, len, "socketpair() failed: %s", strerror(errno));
        return VCONV_ERROR;
    }

    snprintf(ppid, sizeof(ppid), "%ld", (long) getpid());
    snprintf(proto, sizeof(proto), "%d", VCONV_SB_PROTOCOL);
    snprintf(idle, sizeof(idle), "%lld", (long long) sb->spare_idle_ms);

    /* a helper older than the hello knows no 4th argument: it exits */
    argv[0] = sb->path;
    argv[1] = "--helper";
    argv[2] = ppid;
    argv[3] = proto;
    argv[4] = idle;
    argv[5] = NULL;
    envp[0] = NULL;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, sv[1], VCONV_SANDBOX_CTL_FD);
    posix_spawn_file_actions_addclosefrom_np(&fa, VCONV_SANDBOX_CTL_FD + 1);

    posix_spawnattr_init(&attr);
    sigemptyset(&set);
    posix_spawnattr_setsigmask(&attr, &set);

    for (sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            sigaddset(&set, sig);
        }
    }

    posix_spawnattr_setsigdefault(&attr, &set);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK
                                    | POSIX_SPAWN_SETSIGDEF);

    rc = posix_spawn(&pid, sb->path, &fa, &attr, argv, envp);

    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    (void) close(sv[1]);

    if (rc != 0) {
        (void) close(sv[0]);
        snprintf(err, len, "posix_spawn(\"%s\") failed: %s", sb->path,
                 strerror(rc));
        return VCONV_ERROR;
    }

    sb->fd = sv[0];
    sb->pid = pid;
    sb->hello = 0;

    /* a new helper starts with a spare */
    sb->spare_sent = 1;
    vconv_sandbox_spare_tell(sb);

    return VCONV_OK;
}


/*
 * On the event loop, which must not wait while a pool thread starts a
 * helper under the lock: that thread tells it as it sends its job.
 */
void
vconv_sandbox_spare(vconv_sandbox_t *sb, int on, int later)
{
    __atomic_store_n(&sb->spare, on, __ATOMIC_RELAXED);

    if (later || pthread_mutex_trylock(&sb->mutex) != 0) {
        return;
    }

    vconv_sandbox_spare_tell(sb);

    pthread_mutex_unlock(&sb->mutex);
}


/*
 * With sb->mutex held.  Never blocks: a helper whose socket is full is
 * told again with the next change.
 */
static void
vconv_sandbox_spare_tell(vconv_sandbox_t *sb)
{
    int             on;
    vconv_sb_msg_t  m;

    on = __atomic_load_n(&sb->spare, __ATOMIC_RELAXED);

    if (sb->fd == -1 || sb->spare_sent == on) {
        return;
    }

    memset(&m, 0, sizeof(m));
    m.type = VCONV_SB_SPARE;
    m.u.value = on;

    if (vconv_sb_send(sb->fd, &m, NULL, 0, MSG_DONTWAIT) == 0) {
        sb->spare_sent = on;
    }
}


/*
 * The helper's hello, read before its first job: a helper of another
 * build is named as such, with both protocol numbers, instead of every
 * job failing with EPROTO.  With sb->mutex held.
 */
static int
vconv_sandbox_hello(vconv_sandbox_t *sb, char *err, size_t len)
{
    int               rc;
    ssize_t           n;
    struct pollfd     pfd;
    vconv_sb_hello_t  h;

    pfd.fd = sb->fd;
    pfd.events = POLLIN;

    do {
        rc = poll(&pfd, 1, VCONV_SB_HELLO_MS);
    } while (rc == -1 && errno == EINTR);

    if (rc == 0) {
        snprintf(err, len, "the sandbox helper \"%.200s\" said no hello "
                 "within %d s: a helper older than this module?",
                 sb->path, VCONV_SB_HELLO_MS / 1000);
        return VCONV_ERROR;
    }

    memset(&h, 0, sizeof(h));

    do {
        n = recv(sb->fd, &h, sizeof(h), MSG_DONTWAIT);
    } while (n == -1 && errno == EINTR);

    if (n <= 0) {
        snprintf(err, len, "the sandbox helper \"%.200s\" exited at start "
                 "(%s): not the helper of this module's build? "
                 "(its own message is in the error log)", sb->path,
                 n == 0 ? "no hello" : strerror(errno));
        return VCONV_ERROR;
    }

    if (n != (ssize_t) sizeof(h) || h.magic != VCONV_SB_MAGIC) {
        snprintf(err, len, "\"%.200s\" is not a vconv sandbox helper "
                 "(no hello)", sb->path);
        return VCONV_ERROR;
    }

    if (h.protocol != VCONV_SB_PROTOCOL
        || h.size != (uint32_t) sizeof(vconv_sb_msg_t))
    {
        snprintf(err, len, "the sandbox helper \"%.200s\" is from another "
                 "build: it speaks protocol %u (messages of %u bytes), "
                 "this module protocol %d (%u bytes); install the "
                 "vconv-sandbox built with this module", sb->path,
                 h.protocol, h.size, VCONV_SB_PROTOCOL,
                 (unsigned) sizeof(vconv_sb_msg_t));
        return VCONV_ERROR;
    }

    sb->hello = 1;

    return VCONV_OK;
}


int
vconv_sandbox_transcode(vconv_sandbox_t *sb, vconv_transcode_t *tc,
    vconv_reader_t *rd, vconv_sandbox_job_t *job)
{
    int                 rc, fds[3];
    char                buf[512];
    struct pollfd       pfd[2];
    vconv_sb_msg_t      m;
    vconv_sb_run_t      run;

    memset(&tc->input, 0, sizeof(tc->input));
    memset(&tc->err, 0, sizeof(tc->err));
    tc->input.duration = -1;
    tc->output_bytes = 0;
    tc->output_duration = 0;
    tc->damaged_packets = 0;
    memset(&tc->sprite, 0, sizeof(tc->sprite));
    job->signal = 0;
    job->spawn_us = -1;

    memset(&run, 0, sizeof(run));
    run.sb = sb;
    run.tc = tc;
    run.rd = rd;
    run.job = job;
    run.limit = job->memory > 0 ? job->memory : VCONV_SANDBOX_MEMORY;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, run.js) == -1)
    {
        return vconv_error_set(&tc->err, VCONV_E_INTERNAL,
                               "socketpair() failed: %s", strerror(errno));
    }

    if (pipe2(run.wake, O_CLOEXEC | O_NONBLOCK) == -1) {
        (void) close(run.js[0]);
        (void) close(run.js[1]);
        return vconv_error_set(&tc->err, VCONV_E_INTERNAL,
                               "pipe2() failed: %s", strerror(errno));
    }

    /* from here on every grow, end or stop of the upload wakes us */
    pthread_mutex_lock(&rd->mutex);
    rd->wake_fd = run.wake[1];
    run.sent_written = rd->written;
    run.sent_size = rd->size;
    run.sent_end = rd->ended;
    pthread_mutex_unlock(&rd->mutex);

    vconv_sandbox_job_msg(&run, &m);

    fds[0] = rd->fd;
    fds[1] = tc->outputs ? tc->outputs[0].fd : tc->output_fd;
    fds[2] = run.js[1];

    run.t0 = vconv_sandbox_now_us();

    rc = vconv_sandbox_send_job(sb, &m, fds, buf, sizeof(buf));
    run.token = m.token;

    (void) close(run.js[1]);

    if (rc != VCONV_OK) {
        (void) vconv_error_set(&tc->err, VCONV_E_INTERNAL,
                               "sandbox helper: %s", buf);
        goto done;
    }

    if (vconv_sandbox_send_outputs(&run) != VCONV_OK) {
        vconv_sandbox_kill(sb, run.token);
        run.why = VCONV_E_INTERNAL;
    }

    pfd[0].fd = run.js[0];
    pfd[0].events = POLLIN;
    pfd[1].fd = run.wake[0];
    pfd[1].events = POLLIN;

    while (!run.exited && !run.helper_gone && !run.got_result) {

        pfd[0].revents = 0;
        pfd[1].revents = 0;

        rc = poll(pfd, 2, VCONV_SANDBOX_POLL_MS);

        if (rc == -1 && errno != EINTR) {
            (void) vconv_error_set(&tc->err, VCONV_E_INTERNAL,
                                   "poll() failed: %s", strerror(errno));
            vconv_sandbox_kill(sb, run.token);
            run.why = VCONV_E_INTERNAL;
        }

        if (pfd[1].revents & POLLIN) {
            while (read(run.wake[0], buf, sizeof(buf)) > 0) { /* void */ }
        }

        if (!run.why) {
            vconv_sandbox_notify(&run);
        }

        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            vconv_sandbox_receive(&run);
        }
    }

    if (run.got_result) {
        /*
         * Its output is written (pwrite: in the page cache already), so
         * the job does not wait for the exit and the reaping; the child
         * is only making sure it is gone.
         */
        vconv_sandbox_kill(sb, run.token);
    }

done:

    pthread_mutex_lock(&sb->mutex);
    sb->running--;
    sb->last_us = vconv_sandbox_now_us();
    pthread_mutex_unlock(&sb->mutex);

    pthread_mutex_lock(&rd->mutex);
    rd->wake_fd = -1;
    pthread_mutex_unlock(&rd->mutex);

    (void) close(run.wake[0]);
    (void) close(run.wake[1]);
    (void) close(run.js[0]);

    return vconv_sandbox_outcome(&run);
}


/* the job as the helper and its child get it: no pointer crosses */
static void
vconv_sandbox_job_msg(vconv_sb_run_t *run, vconv_sb_msg_t *m)
{
    vconv_transcode_t    *tc;
    vconv_sandbox_job_t  *job;

    tc = run->tc;
    job = run->job;

    memset(m, 0, sizeof(vconv_sb_msg_t));
    m->type = VCONV_SB_JOB;
    m->u.job.spec = *tc->spec;

    if (tc->limits) {
        m->u.job.limits = *tc->limits;

        if (tc->limits->input_formats) {
            snprintf(m->u.job.input_formats,
                     sizeof(m->u.job.input_formats), "%s",
                     tc->limits->input_formats);
        }
    }

    /* the CLI's demuxer options never reach a child */
    m->u.job.limits.input_formats = NULL;
    m->u.job.limits.demuxer_options = NULL;
    snprintf(m->u.job.job, sizeof(m->u.job.job), "%s",
             job->job ? job->job : "");
    m->u.job.priority = job->priority;
    m->u.job.log_level = job->log_level;
    m->u.job.memory = run->limit;
    m->u.job.written = run->sent_written;
    m->u.job.size = run->sent_size;
    m->u.job.ended = run->sent_end;
}


/*
 * What the upload did since the last look goes to the child; a cancel
 * or a stall kills it without waiting for its consent.
 */
static void
vconv_sandbox_notify(vconv_sb_run_t *run)
{
    int             ended;
    int64_t         written, size;
    vconv_err_e     stop;
    vconv_sb_msg_t  m;

    pthread_mutex_lock(&run->rd->mutex);
    written = run->rd->written;
    size = run->rd->size;
    ended = run->rd->ended;
    stop = run->rd->stop;
    pthread_mutex_unlock(&run->rd->mutex);

    memset(&m, 0, sizeof(m));

    /*
     * Never blocking: a child that does not read (stopped, stuck) must
     * not keep us from cancel and the stall clock.  Each notice is
     * retried until it goes; a child gone already just misses them
     * (EPIPE).
     */

    if (written > run->sent_written) {
        m.type = VCONV_SB_GROW;
        m.u.value = written;

        if (vconv_sb_send(run->js[0], &m, NULL, 0, MSG_DONTWAIT) == 0) {
            run->sent_written = written;
        }
    }

    if (size != run->sent_size) {
        m.type = VCONV_SB_EXPECT;
        m.u.value = size;

        if (vconv_sb_send(run->js[0], &m, NULL, 0, MSG_DONTWAIT) == 0) {
            run->sent_size = size;
        }
    }

    if (ended && !run->sent_end && run->sent_written == written) {
        m.type = VCONV_SB_END;

        if (vconv_sb_send(run->js[0], &m, NULL, 0, MSG_DONTWAIT) == 0) {
            run->sent_end = 1;
        }
    }

    run->why = stop;

    if (!run->why && run->tc->interrupt) {
        run->why = run->tc->interrupt(run->tc->data);
    }

    if (run->why) {
        vconv_sandbox_kill(run->sb, run->token);
    }
}


/* every message waiting on the job socket, until the end of the job */
static void
vconv_sandbox_receive(vconv_sb_run_t *run)
{
    int             rc;
    vconv_sb_msg_t  m;

    while (!run->exited && !run->got_result) {
        rc = vconv_sb_recv(run->js[0], &m, NULL, NULL, MSG_DONTWAIT);

        if (rc == 0) {
            /* the helper and the child both let go of the socket */
            run->helper_gone = 1;
            return;
        }

        if (rc < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            }

            if (errno == EPROTO) {
                continue;
            }

            run->helper_gone = 1;
            return;
        }

        vconv_sandbox_message(run, &m);
    }
}


/* one message of the child (or of the helper: the exit) */
static void
vconv_sandbox_message(vconv_sb_run_t *run, vconv_sb_msg_t *m)
{
    const char         *id;
    vconv_transcode_t  *tc;

    tc = run->tc;
    id = run->job->job ? run->job->job : "";

    switch (m->type) {

    case VCONV_SB_READY:
        run->job->spawn_us = vconv_sandbox_now_us() - run->t0;
        break;

    case VCONV_SB_PROBED:
        m->u.input.format[sizeof(m->u.input.format) - 1] = '\0';
        m->u.input.vcodec[sizeof(m->u.input.vcodec) - 1] = '\0';
        m->u.input.acodec[sizeof(m->u.input.acodec) - 1] = '\0';
        tc->input = m->u.input;

        if (tc->probed && !run->why) {
            tc->probed(tc->data, &tc->input);
        }

        break;

    case VCONV_SB_PROGRESS:
        if (tc->progress && !run->why) {
            tc->progress(tc->data, m->u.fraction);
        }

        break;

    case VCONV_SB_LOG:
        m->u.log.text[sizeof(m->u.log.text) - 1] = '\0';

        if (run->sb->log) {
            run->sb->log(m->u.log.level, id, m->u.log.text);
        }

        break;

    case VCONV_SB_RESULT:
        run->result = m->u.result;
        run->result.err.message[sizeof(run->result.err.message) - 1] = '\0';
        run->got_result = 1;
        break;

    case VCONV_SB_MEMORY:
        run->memory = 1;
        break;

    case VCONV_SB_EXIT:
        run->status = (int) m->u.value;
        run->exited = 1;
        break;

    default:
        break;
    }
}


/* how the job ended, as vconv_transcode() would say it */
static int
vconv_sandbox_outcome(vconv_sb_run_t *run)
{
    int                 sig, i;
    char                name[64];
    vconv_transcode_t  *tc;

    tc = run->tc;

    if (run->got_result && run->result.err.code != VCONV_E_CRASHED) {
        /* it finished; a cancel at the same moment is the caller's */
        tc->input = run->result.input;
        tc->output_bytes = run->result.output_bytes;
        tc->output_duration = run->result.output_duration;

        for (i = 0; tc->outputs && i < tc->spec->nouts; i++) {
            tc->outputs[i].bytes = run->result.out_bytes[i];
            tc->outputs[i].duration = run->result.out_duration[i];
            tc->outputs[i].width = run->result.out_width[i];
            tc->outputs[i].height = run->result.out_height[i];
            tc->outputs[i].skipped = run->result.out_skipped[i];
        }

        tc->damaged_packets = run->result.damaged_packets;
        tc->sprite = run->result.sprite;
        tc->err = run->result.err;

        if (run->result.rc != VCONV_OK && tc->err.code == VCONV_E_NONE) {
            tc->err.code = VCONV_E_INTERNAL;
        }

        return run->result.rc == VCONV_OK ? VCONV_OK : VCONV_ERROR;
    }

    if (run->why) {
        if (tc->err.code == VCONV_E_NONE) {
            (void) vconv_error_set(&tc->err, run->why, "%s",
                                   vconv_error_name(run->why));
        }

        return VCONV_ERROR;
    }

    if (tc->err.code != VCONV_E_NONE) {
        return VCONV_ERROR;
    }

    if (run->helper_gone) {
        return vconv_error_set(&tc->err, VCONV_E_CRASHED,
                               "the converter's sandbox helper died");
    }

    if (WIFSIGNALED(run->status)) {
        sig = WTERMSIG(run->status);
        run->job->signal = sig;

        if (run->memory) {
            return vconv_error_set(&tc->err, VCONV_E_MEMORY_LIMIT,
                                   "the conversion needs more than "
                                   "vconv_job_memory (%lld MB)",
                                   (long long) (run->limit >> 20));
        }

        snprintf(name, sizeof(name), "SIG%s",
                 sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");

        return vconv_error_set(&tc->err, VCONV_E_CRASHED,
                               "the converter crashed (signal %d, %s)",
                               sig, name);
    }

    return vconv_error_set(&tc->err, VCONV_E_CRASHED,
                           "the converter exited with status %d and no "
                           "result", WIFEXITED(run->status)
                                     ? WEXITSTATUS(run->status) : -1);
}


/*
 * Several pool threads share the control socket: one message at a time.
 * A helper that died (killed, or its worker's reload raced it) is
 * started again once.  A helper that is not of this build fails the job
 * with an error line that says so; it is let go (EOF on its socket ends
 * it), and the next job starts one again, which may be the right one by
 * then.
 */
static int
vconv_sandbox_send_job(vconv_sandbox_t *sb, vconv_sb_msg_t *m,
    const int *fds, char *err, size_t len)
{
    int  rc, tries;

    pthread_mutex_lock(&sb->mutex);

    m->token = ++sb->token;
    sb->running++;

    rc = VCONV_ERROR;

    for (tries = 0; tries < 2; tries++) {

        if (sb->fd == -1 || tries > 0) {
            if (vconv_sandbox_spawn(sb, err, len) != VCONV_OK) {
                break;
            }

            vconv_sandbox_log(sb, "", 24, "sandbox helper started, pid %ld",
                              (long) sb->pid);
        }

        if (!sb->hello && vconv_sandbox_hello(sb, err, len) != VCONV_OK) {
            /* AV_LOG_FATAL: the module's own fault, "error" in its log */
            vconv_sandbox_log(sb, m->u.job.job, 8, "%s", err);
            (void) close(sb->fd);
            sb->fd = -1;
            break;
        }

        if (vconv_sb_send(sb->fd, m, fds, 3, 0) == 0) {
            vconv_sandbox_spare_tell(sb);
            rc = VCONV_OK;
            break;
        }

        snprintf(err, len, "send to the helper failed: %s",
                 strerror(errno));
    }

    pthread_mutex_unlock(&sb->mutex);

    return rc;
}


int
vconv_sandbox_retire(vconv_sandbox_t *sb, int64_t idle_ms)
{
    int  rc;

    rc = 0;

    pthread_mutex_lock(&sb->mutex);

    if (sb->fd != -1 && sb->running == 0
        && vconv_sandbox_now_us() - sb->last_us >= idle_ms * 1000)
    {
        (void) close(sb->fd);
        sb->fd = -1;
        sb->hello = 0;
        rc = 1;
    }

    pthread_mutex_unlock(&sb->mutex);

    return rc;
}


static void
vconv_sandbox_kill(vconv_sandbox_t *sb, uint64_t token)
{
    vconv_sb_msg_t  m;

    memset(&m, 0, sizeof(m));
    m.type = VCONV_SB_KILL;
    m.token = token;

    pthread_mutex_lock(&sb->mutex);

    if (sb->fd != -1) {
        (void) vconv_sb_send(sb->fd, &m, NULL, 0, 0);
    }

    pthread_mutex_unlock(&sb->mutex);
}


static void
vconv_sandbox_log(vconv_sandbox_t *sb, const char *job, int level,
    const char *fmt, ...)
{
    char     line[512];
    va_list  ap;

    if (sb->log == NULL) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    sb->log(level, job, line);
}


static int64_t
vconv_sandbox_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


/*
 * A list of formats: the outputs after the first, one fd a message, on
 * the job socket before anything else, so the child takes them all
 * before it reads the input.
 */
static int
vconv_sandbox_send_outputs(vconv_sb_run_t *run)
{
    int                 i;
    vconv_sb_msg_t      m;
    vconv_transcode_t  *tc;

    tc = run->tc;

    for (i = 1; tc->outputs && i < tc->spec->nouts; i++) {
        memset(&m, 0, sizeof(m));
        m.type = VCONV_SB_OUTPUT;
        m.u.value = i;

        if (vconv_sb_send(run->js[0], &m, &tc->outputs[i].fd, 1, 0) != 0) {
            return vconv_error_set(&tc->err, VCONV_E_INTERNAL,
                                   "sending output %d: %s", i,
                                   strerror(errno));
        }
    }

    return VCONV_OK;
}
