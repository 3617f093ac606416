/*
 * vconv: each transcode in a sandboxed child process.
 *
 * A worker starts one helper (build/vconv-sandbox, a fresh exec: no
 * nginx memory) over a SOCK_SEQPACKET socketpair.  The helper is single
 * threaded, never parses media, and forks one child per job.  The child
 * keeps only its job's descriptors (the growing input, the output file,
 * its job socket), sets resource limits and a seccomp filter, and runs
 * vconv_transcode() with the callbacks relayed as messages on the job
 * socket.  The helper reaps the child and sends its exit status on a
 * copy of the job socket, so the caller always learns how the child
 * ended.
 *
 * This file is shared by the caller's side (the nginx worker, through
 * vconv_sandbox_transcode()) and the helper (tools/vconv_sandbox_main.c).
 */

#ifndef _VCONV_SANDBOX_H_INCLUDED_
#define _VCONV_SANDBOX_H_INCLUDED_


#include <pthread.h>
#include <sys/types.h>

#include "vconv.h"
#include "vconv_options.h"
#include "vconv_reader.h"
#include "vconv_transcode.h"


/* the helper's control socket is this descriptor after the exec */
#define VCONV_SANDBOX_CTL_FD      3

/*
 * The helper's first message on its control socket, before any job: a
 * module and a helper from different builds would otherwise exchange
 * messages of different layouts, and every job would fail with EPROTO.
 * Bump VCONV_SB_PROTOCOL with any change to the messages below; the
 * hello itself never changes.
 */
#define VCONV_SB_MAGIC            0x76637362    /* "vcsb" */
#define VCONV_SB_PROTOCOL         5             /* 1: before the hello,
                                                   2: one output, 3: a
                                                   list or a sprite, 4:
                                                   before SPARE */

/* how long a new helper may take to say hello (its exec, the libraries) */
#define VCONV_SB_HELLO_MS         10000

typedef struct {
    uint32_t            magic;           /* VCONV_SB_MAGIC */
    uint32_t            protocol;        /* VCONV_SB_PROTOCOL */
    uint32_t            size;            /* sizeof(vconv_sb_msg_t) */
    uint32_t            pid;             /* the helper's */
} vconv_sb_hello_t;


/*
 * What vconv_sandbox_spare_idle is when not set: a spare (a ready child,
 * its warm heap, ~45 MB) that no job took for this long exits, and the
 * next job forks for itself; 0: the spare stays.
 */
#define VCONV_SB_SPARE_IDLE_MS    60000

/* what vconv_job_memory is when not set */
#define VCONV_SANDBOX_MEMORY      ((int64_t) 1024 * 1024 * 1024)


typedef enum {
    VCONV_SB_JOB = 1,      /* caller -> helper; fds: input, output, job */
    VCONV_SB_KILL,         /* caller -> helper: kill the job's child */
    VCONV_SB_READY,        /* child -> caller: confined, starts reading */
    VCONV_SB_GROW,         /* caller -> child: bytes on disk */
    VCONV_SB_END,          /* caller -> child: the upload is complete */
    VCONV_SB_EXPECT,       /* caller -> child: the announced size */
    VCONV_SB_PROBED,       /* child -> caller: input info */
    VCONV_SB_PROGRESS,     /* child -> caller */
    VCONV_SB_LOG,          /* child -> caller: a libav log line */
    VCONV_SB_RESULT,       /* child -> caller: vconv_transcode()'s end */
    VCONV_SB_MEMORY,       /* child -> caller: crashed near its limit */
    VCONV_SB_EXIT,         /* helper -> caller: the child's wait status */
    VCONV_SB_OUTPUT,       /* caller -> child: the next output's fd */
    VCONV_SB_SPARE         /* caller -> helper: value 1 keep a spare, 0 not */
} vconv_sb_type_e;


typedef struct {
    vconv_spec_t        spec;
    vconv_limits_t      limits;          /* input_formats: see below */
    char                input_formats[1024];
    char                job[128];        /* id, for log lines */
    int64_t             written;         /* the upload so far */
    int64_t             size;            /* announced size, -1 */
    int                 ended;
    int                 priority;        /* nice, 0: keep */
    int                 log_level;       /* AV_LOG_* */
    int64_t             memory;          /* bytes over the libraries */
} vconv_sb_job_t;


typedef struct {
    int                 rc;
    vconv_error_t       err;
    vconv_input_info_t  input;
    int64_t             output_bytes;
    double              output_duration;
    int64_t             damaged_packets;
    /* a list of formats: each output's (the first is output_bytes too) */
    int64_t             out_bytes[VCONV_MAX_OUTPUTS];
    double              out_duration[VCONV_MAX_OUTPUTS];
    vconv_sprite_t      sprite;          /* format sprite's grid */
    int                 out_width[VCONV_MAX_OUTPUTS];
    int                 out_height[VCONV_MAX_OUTPUTS];
    int                 out_skipped[VCONV_MAX_OUTPUTS];   /* hls rungs */
} vconv_sb_result_t;


typedef struct {
    uint32_t            type;            /* vconv_sb_type_e */
    uint32_t            pid;             /* READY: the child */
    uint64_t            token;           /* JOB, KILL: the caller's id */

    union {
        vconv_sb_job_t      job;
        vconv_sb_result_t   result;
        vconv_input_info_t  input;
        int64_t             value;       /* GROW, EXPECT, EXIT status */
        double              fraction;
        struct {
            int             level;
            char            text[1024];
        } log;
    } u;
} vconv_sb_msg_t;


/*
 * MSG_NOSIGNAL, EINTR retried; fds (up to 3) go as SCM_RIGHTS; flags:
 * MSG_DONTWAIT where a full socket must not block the sender.
 */
int vconv_sb_send(int fd, const vconv_sb_msg_t *m, const int *fds,
    int nfds, int flags);

/*
 * One message: 1, 0 on EOF, -1 on error (errno; EAGAIN with
 * MSG_DONTWAIT in flags).  Received fds (CLOEXEC) go to fds[], their
 * count to *nfds; extra ones are closed.
 */
int vconv_sb_recv(int fd, vconv_sb_msg_t *m, int *fds, int *nfds,
    int flags);


/* the caller's side: one per process (an nginx worker) */
typedef struct {
    pthread_mutex_t     mutex;           /* the control socket, the pid */
    int                 fd;              /* control socket, -1: none */
    pid_t               pid;
    int                 hello;           /* the helper said hello */
    uint64_t            token;
    char                path[1024];      /* the helper executable */
    int64_t             spare_idle_ms;   /* vconv_sandbox_spare_idle */
    int                 running;         /* jobs sent, not yet over */
    int64_t             last_us;         /* the last job's end, or start */
    int                 spare;           /* vconv_sandbox_spare()'s */
    int                 spare_sent;      /* what the helper was told */

    /* log lines (libav's and the sandbox's), as vconv_log_init()'s */
    vconv_log_handler_pt  log;
} vconv_sandbox_t;


typedef struct {
    int64_t             memory;          /* vconv_job_memory, 0: default */
    int                 priority;
    int                 log_level;
    const char         *job;             /* id */

    /* out */
    int                 signal;          /* the child died of it, 0 */
    int64_t             spawn_us;        /* JOB sent -> child confined */
} vconv_sandbox_job_t;


int vconv_sandbox_init(vconv_sandbox_t *sb, const char *path,
    vconv_log_handler_pt log);

/* starts the helper (again); with sb->mutex held or before threads */
int vconv_sandbox_spawn(vconv_sandbox_t *sb, char *err, size_t len);

/*
 * Lets the helper go when no job has been sent or running for idle_ms:
 * EOF on its socket ends it (and its spare), and the next job starts one
 * again.  1 if it was let go.
 */
int vconv_sandbox_retire(vconv_sandbox_t *sb, int64_t idle_ms);

/*
 * Whether the helper keeps a spare (a ready child with its warm heap):
 * 0 while every transcode slot is taken.  Told to the helper now, or
 * (later) right after the next job's JOB message, so that this job still
 * takes the spare; a new helper is told as it starts.
 */
void vconv_sandbox_spare(vconv_sandbox_t *sb, int on, int later);

/*
 * Runs tc in a child: the same contract as vconv_transcode().  tc's read
 * and seek are not used: the child reads the file of rd->fd itself, and
 * rd (the caller's reader, fed by the upload) is watched for growth, the
 * end and stop; tc->interrupt is polled every 100 ms and kills the child.
 * tc->output_fd is the output; with a list of formats, tc->outputs[].fd
 * are, the first in the JOB message and each further one in an OUTPUT
 * message that the child takes before it starts (one fd a message: the
 * JOB's three stay as they are).
 */
int vconv_sandbox_transcode(vconv_sandbox_t *sb, vconv_transcode_t *tc,
    vconv_reader_t *rd, vconv_sandbox_job_t *job);


#endif /* _VCONV_SANDBOX_H_INCLUDED_ */
