/*
 * Unit tests for the job JSON, job.json save/load and ids.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vconv_job.h"
#include "vconv_options.h"
#include "tap.h"
#include "json_valid.h"
#include "job_same.h"


#define ID   "0123456789abcdef0123456789abcdef"
#define NID  "node_1-" ID


static char  tmpdir[PATH_MAX];


/* dst = a + b, without snprintf's truncation warnings on paths */
static void
join(char *dst, const char *a, const char *b)
{
    size_t  la, lb;

    la = strlen(a);
    lb = strlen(b);

    if (la + lb >= PATH_MAX) {
        printf("Bail out! path too long\n");
        exit(1);
    }

    memmove(dst, a, la);
    memcpy(dst + la, b, lb + 1);
}


static void
job_init(vconv_job_info_t *job, vconv_status_e status)
{
    memset(job, 0, sizeof(vconv_job_info_t));

    strcpy(job->id, ID);
    job->status = status;
    job->progress = 0.25;
    job->created = 1700000000;
    job->in_duration = -1;
    job->out_format = VCONV_FMT_WEBM;
    strcpy(job->in_name, "clip.mov");
}


static char *
job_json(const vconv_job_info_t *job, int qpos)
{
    char    *buf;
    size_t   need, n;

    need = vconv_job_json(job, "/api/jobs/", qpos, NULL, 0);
    buf = malloc(need + 1);
    n = vconv_job_json(job, "/api/jobs/", qpos, buf, need + 1);

    if (n != need || strlen(buf) != need) {
        diag("job_json: size %zu then %zu, strlen %zu", need, n,
             strlen(buf));
    }

    return buf;
}


static void
test_status(void)
{
    is_str(vconv_status_name(VCONV_JOB_UPLOADING), "uploading", "uploading");
    is_str(vconv_status_name(VCONV_JOB_QUEUED), "queued", "queued");
    is_str(vconv_status_name(VCONV_JOB_RUNNING), "running", "running");
    is_str(vconv_status_name(VCONV_JOB_DONE), "done", "done");
    is_str(vconv_status_name(VCONV_JOB_FAILED), "failed", "failed");
    is_str(vconv_status_name(VCONV_JOB_CANCELED), "canceled", "canceled");
    is_str(vconv_status_name((vconv_status_e) 99), "failed", "bad status");

    ok(!vconv_status_final(VCONV_JOB_UPLOADING), "uploading not final");
    ok(!vconv_status_final(VCONV_JOB_QUEUED), "queued not final");
    ok(!vconv_status_final(VCONV_JOB_RUNNING), "running not final");
    ok(vconv_status_final(VCONV_JOB_DONE), "done final");
    ok(vconv_status_final(VCONV_JOB_FAILED), "failed final");
    ok(vconv_status_final(VCONV_JOB_CANCELED), "canceled final");
}


static void
test_job_json(void)
{
    char              *j, small[40];
    size_t             need, n;
    vconv_job_info_t   job;

    job_init(&job, VCONV_JOB_UPLOADING);
    job.in_bytes = 1234;
    j = job_json(&job, 0);
    ok(json_valid(j, strlen(j)), "uploading: valid JSON");
    ok(strncmp(j, "{\"id\":\"" ID "\",\"status\":\"uploading\","
                  "\"progress\":0.250,\"queue_position\":0,"
                  "\"created\":\"2023-11-14T22:13:20Z\",\"expires\":null,",
               strlen("{\"id\":\"" ID "\",\"status\":\"uploading\","
                      "\"progress\":0.250,\"queue_position\":0,"
                      "\"created\":\"2023-11-14T22:13:20Z\","
                      "\"expires\":null,")) == 0,
       "uploading: head (%s)", j);
    ok(strstr(j, "\"input\":{\"name\":\"clip.mov\",\"bytes\":1234,"
                 "\"format\":null,\"duration\":null,\"streams\":0}") != NULL,
       "uploading: input");
    ok(strstr(j, "\"output\":{\"format\":\"webm\",\"bytes\":null,"
                 "\"url\":null}") != NULL, "uploading: output");
    ok(strstr(j, "\"error\":null}") != NULL, "uploading: no error");
    free(j);

    job_init(&job, VCONV_JOB_QUEUED);
    j = job_json(&job, 3);
    ok(json_valid(j, strlen(j)), "queued: valid JSON");
    ok(strstr(j, "\"status\":\"queued\"") != NULL, "queued: status");
    ok(strstr(j, "\"queue_position\":3") != NULL, "queued: position");
    free(j);

    job_init(&job, VCONV_JOB_RUNNING);
    job.progress = 0.12345;
    strcpy(job.in_format, "mov,mp4,m4a,3gp,3g2,mj2");
    job.in_duration = 12.5;
    job.in_streams = 2;
    j = job_json(&job, 3);
    ok(json_valid(j, strlen(j)), "running: valid JSON");
    ok(strstr(j, "\"progress\":0.123,\"queue_position\":0") != NULL,
       "running: progress 3 decimals, no queue position");
    ok(strstr(j, "\"format\":\"mov,mp4,m4a,3gp,3g2,mj2\",\"duration\":12.500,"
                 "\"streams\":2") != NULL, "running: input probed");
    free(j);

    job_init(&job, VCONV_JOB_RUNNING);
    job.progress = 7;
    j = job_json(&job, 0);
    ok(strstr(j, "\"progress\":1.000") != NULL, "progress clamped high");
    free(j);
    job.progress = -1;
    j = job_json(&job, 0);
    ok(strstr(j, "\"progress\":0.000") != NULL, "progress clamped low");
    free(j);

    job_init(&job, VCONV_JOB_DONE);
    strcpy(job.id, NID);
    job.progress = 0.99;
    job.expires = 1700003600;
    job.finished = 1700000100;
    job.out_bytes = 987654321;
    j = job_json(&job, 0);
    ok(json_valid(j, strlen(j)), "done: valid JSON");
    ok(strstr(j, "\"progress\":1.000") != NULL, "done: progress 1");
    ok(strstr(j, "\"expires\":\"2023-11-14T23:13:20Z\"") != NULL,
       "done: expires");
    ok(strstr(j, "\"finished\":\"2023-11-14T22:15:00Z\"") != NULL,
       "done: finished");
    ok(strstr(j, "\"output\":{\"format\":\"webm\",\"bytes\":987654321,"
                 "\"url\":\"/api/jobs/" NID "/output\"}") != NULL,
       "done: output url (%s)", j);
    ok(strstr(j, "\"error\":null") != NULL, "done: no error");
    free(j);

    /* a prefix without the trailing slash still makes a good url */
    need = vconv_job_json(&job, "/jobs", 0, NULL, 0);
    j = malloc(need + 1);
    vconv_job_json(&job, "/jobs", 0, j, need + 1);
    ok(strstr(j, "\"url\":\"/jobs/" NID "/output\"") != NULL,
       "url with a prefix lacking '/'");
    free(j);

    job_init(&job, VCONV_JOB_FAILED);
    job.err_code = VCONV_E_NO_VIDEO;
    strcpy(job.err_message, "the input has no video stream \"x\"\n");
    j = job_json(&job, 0);
    ok(json_valid(j, strlen(j)), "failed: valid JSON");
    ok(strstr(j, "\"error\":{\"code\":\"no_video_stream\",\"message\":"
                 "\"the input has no video stream \\\"x\\\"\\u000a\"}}")
       != NULL, "failed: error object (%s)", j);
    ok(strstr(j, "\"url\":null") != NULL, "failed: no url");
    free(j);

    job_init(&job, VCONV_JOB_FAILED);
    j = job_json(&job, 0);
    ok(strstr(j, "\"error\":{\"code\":\"internal_error\",") != NULL,
       "failed without a code: internal_error");
    free(j);

    job_init(&job, VCONV_JOB_CANCELED);
    j = job_json(&job, 0);
    ok(json_valid(j, strlen(j)), "canceled: valid JSON");
    ok(strstr(j, "\"error\":{\"code\":\"canceled\",\"message\":\"the job was "
                 "canceled\"}") != NULL, "canceled: error object");
    free(j);

    /* hostile strings */
    job_init(&job, VCONV_JOB_RUNNING);
    strcpy(job.in_name, "a\"b\\c\r\n\x01\xff\xfe</script>\xe2\x80\xa8");
    strcpy(job.in_format, "x\"y");
    strcpy(job.id, "id\"with\"quotes");
    job.out_format = 99;
    job.in_duration = 0.0 / 0.0;
    j = job_json(&job, 0);
    ok(json_valid(j, strlen(j)), "hostile strings: valid JSON (%s)", j);
    ok(strstr(j, "\"name\":\"a\\\"b\\\\c\\u000d\\u000a\\u0001"
                 "\xef\xbf\xbd\xef\xbf\xbd</script>\\u2028\"") != NULL,
       "hostile name escaped");
    ok(strstr(j, "\"output\":{\"format\":null") != NULL, "bad out_format");
    ok(strstr(j, "\"duration\":null") != NULL, "NaN duration is null");
    free(j);

    /* a full-length name of 3-byte characters */
    job_init(&job, VCONV_JOB_DONE);
    memset(job.in_name, 0, sizeof(job.in_name));
    for (n = 0; n + 3 < sizeof(job.in_name); n += 3) {
        memcpy(job.in_name + n, "\xe6\x97\xa5", 3);
    }
    memset(job.err_message, 'x', sizeof(job.err_message));
    j = job_json(&job, 0);
    ok(json_valid(j, strlen(j)), "long name valid JSON");
    free(j);

    /* an unterminated in_name still stops at the field's end */
    memset(job.in_name, 'n', sizeof(job.in_name));
    j = job_json(&job, 0);
    ok(json_valid(j, strlen(j)), "unterminated name: valid JSON");
    ok(strstr(j, "nnnnnnnn\",\"bytes\"") != NULL, "name bounded");
    free(j);

    /* truncation */
    job_init(&job, VCONV_JOB_FAILED);
    need = vconv_job_json(&job, "/api/jobs/", 0, NULL, 0);
    memset(small, 'Z', sizeof(small));
    n = vconv_job_json(&job, "/api/jobs/", 0, small, sizeof(small));
    is_int(n, need, "truncated: returns size needed");
    ok(memchr(small, '\0', sizeof(small)) != NULL, "truncated: terminated");
    ok(strncmp(small, "{\"id\":\"" ID, strlen(small)) == 0,
       "truncated: a prefix");
}


static void
test_error_json(void)
{
    char           buf[512], small[16];
    size_t         n;
    vconv_error_t  err;

    vconv_error_set(&err, VCONV_E_OUT_OF_RANGE,
                    "option 'width': %s is out of range", "9\"9\n");
    n = vconv_error_json(&err, buf, sizeof(buf));
    is_str(buf, "{\"error\":{\"code\":\"out_of_range\",\"message\":"
           "\"option 'width': 9\\\"9\\u000a is out of range\"}}",
           "error JSON");
    is_int(n, strlen(buf), "error JSON length");
    ok(json_valid(buf, n), "error JSON valid");

    n = vconv_error_json(&err, small, sizeof(small));
    ok(n > sizeof(small), "error JSON size needed");
    ok(small[0] != '\0' && strlen(small) < sizeof(small)
       && strncmp(buf, small, strlen(small)) == 0, "error JSON prefix");

    err.code = VCONV_E_COUNT;
    strcpy(err.message, "\xff");
    n = vconv_error_json(&err, buf, sizeof(buf));
    ok(json_valid(buf, n), "bad code and bytes: valid");
    ok(strstr(buf, "internal_error") != NULL, "bad code: internal_error");
}


static void
test_id(void)
{
    size_t  i;
    char    node[128];

    static const struct {
        const char  *id;
        int          valid;
    } ids[] = {
        { ID, 1 },
        { "ffffffffffffffffffffffffffffffff", 1 },
        { "00000000000000000000000000000000", 1 },
        { "a-" ID, 1 },
        { "Node_01-" ID, 1 },
        { "0123456789abcdef0123456789abcdeF", 0 },
        { "0123456789abcdef0123456789abcde", 0 },
        { "0123456789abcdef0123456789abcdef0", 0 },
        { "0123456789abcdef0123456789abcdeg", 0 },
        { "-" ID, 0 },
        { "a--" ID, 0 },
        { "a.b-" ID, 0 },
        { "../" ID, 0 },
        { "a/b-" ID, 0 },
        { "a b-" ID, 0 },
        { "a-" ID "/", 0 },
        { ID "-a", 0 },
        { "", 0 },
        { "..", 0 },
        { "a-0123456789abcdef0123456789abcdeF", 0 },
        { "n\xc3\xa9-" ID, 0 },
    };

    for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        is_int(vconv_id_valid(ids[i].id, strlen(ids[i].id)), ids[i].valid,
               ids[i].id);
    }

    ok(!vconv_id_valid(NULL, 0), "NULL id");
    ok(vconv_id_valid(ID "XYZ", 32), "id honours len");
    ok(!vconv_id_valid("a\0" "-" ID, 35), "NUL in node");

    /* node length 48 is the limit */
    memset(node, 'n', 48);
    strcpy(node + 48, "-" ID);
    ok(vconv_id_valid(node, strlen(node)), "node of 48");
    ok(strlen(node) < VCONV_ID_MAX, "longest id fits VCONV_ID_MAX");

    memset(node, 'n', 49);
    strcpy(node + 49, "-" ID);
    ok(!vconv_id_valid(node, strlen(node)), "node of 49");
}


static int
write_file(const char *path, const char *data, size_t len)
{
    int      fd;
    ssize_t  n;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd == -1) {
        return -1;
    }

    n = write(fd, data, len);
    close(fd);

    return n == (ssize_t) len ? 0 : -1;
}


static char *
read_file(const char *path, size_t *len)
{
    int          fd;
    char        *buf;
    ssize_t      n;
    struct stat  st;

    fd = open(path, O_RDONLY);
    if (fd == -1 || fstat(fd, &st) != 0) {
        return NULL;
    }

    buf = malloc(st.st_size + 1);
    n = read(fd, buf, st.st_size);
    close(fd);

    if (n != st.st_size) {
        free(buf);
        return NULL;
    }

    buf[n] = '\0';
    *len = n;

    return buf;
}


static void
test_save_load(void)
{
    int                i, rc, fails, crashes;
    char               dir[PATH_MAX], path[PATH_MAX], other[PATH_MAX];
    char              *text, *mut;
    size_t             len, n;
    struct stat        st;
    vconv_error_t      err;
    vconv_job_info_t   job, back;

    join(dir, tmpdir, "/" ID);
    join(path, dir, "/job.json");
    mkdir(dir, 0700);

    /* every field, with nasty text */
    memset(&job, 0, sizeof(job));
    strcpy(job.id, ID);
    job.status = VCONV_JOB_FAILED;
    job.progress = 0.1 + 0.2;
    job.created = 1700000000;
    job.expires = 1700086400;
    job.finished = 1700000123;

    for (i = 0; i < 255; i++) {
        job.in_name[i] = (char) (255 - i);
    }

    job.in_bytes = 9007199254740993LL;
    strcpy(job.in_format, "mov,mp4,m4a,3gp,3g2,mj2");
    job.in_duration = 1.0 / 3;
    job.in_streams = 7;
    job.out_format = VCONV_FMT_FLAC;
    job.out_bytes = 42;
    job.transcode_seconds = 12.345678901234567;
    job.err_code = VCONV_E_DURATION_LIMIT;
    strcpy(job.err_message, "input \"x\xff\" is 25:00:00 long\n\\");
    job.pid = 31337;

    rc = vconv_job_save(&job, dir, &err);
    is_int(rc, VCONV_OK, "save");
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600,
       "job.json is 0600");

    text = read_file(path, &len);
    ok(text != NULL && json_valid(text, len), "job.json is valid JSON");
    ok(text != NULL && strstr(text, "\"in_name_hex\":\"fffefd") != NULL,
       "non-UTF-8 name kept as hex");
    ok(text != NULL && strstr(text, "\"err_code\":\"duration_limit\"")
       != NULL, "err_code by name");
    ok(text != NULL && strstr(text, "\"out_format\":\"flac\"") != NULL,
       "out_format by name");

    memset(&back, 0xa5, sizeof(back));
    rc = vconv_job_load(&back, dir, &err);
    is_int(rc, VCONV_OK, "load");
    ok(job_same(&job, &back), "round trip of every field");
    is_int(memcmp(job.in_name, back.in_name, 256), 0, "name bytes exact");

    /* UTF-8 text round-trips without hex */
    strcpy(job.in_name, "vid\xc3\xa9o \xe6\x97\xa5\xe6\x9c\xac \"q\" \\ \t.mov");
    strcpy(job.err_message, "");
    strcpy(job.in_format, "");
    job.status = VCONV_JOB_DONE;
    job.err_code = VCONV_E_NONE;
    job.out_format = -1;
    job.in_duration = -1;
    job.progress = 1;

    is_int(vconv_job_save(&job, dir, &err), VCONV_OK, "save 2");
    free(text);
    text = read_file(path, &len);
    ok(text != NULL && strstr(text, "_hex") == NULL, "UTF-8 needs no hex");
    ok(text != NULL && strstr(text, "\"out_format\":null") != NULL,
       "no out_format is null");
    is_int(vconv_job_load(&back, dir, &err), VCONV_OK, "load 2");
    ok(job_same(&job, &back), "round trip 2");

    /* a trailing slash on the folder is fine */
    join(other, dir, "/");
    is_int(vconv_job_load(&back, other, &err), VCONV_OK, "load with '/'");

    /* no temporary file left behind */
    join(other, "ls -A ", dir);
    join(other, other, " | grep -q tmp");
    ok(system(other) != 0, "no temporary file left");

    /* every truncation of the file fails cleanly */
    fails = 0;

    for (n = 0; text != NULL && n < len - 1; n++) {
        write_file(path, text, n);

        if (vconv_job_load(&back, dir, &err) != VCONV_OK
            && err.code == VCONV_E_IO)
        {
            fails++;
        }
    }

    is_int(fails, len - 1, "every truncated job.json is refused");

    /* one changed byte: never a crash, and text that stays valid loads */
    crashes = 0;
    mut = malloc(len + 1);
    srand(1);

    for (i = 0; text != NULL && i < 3000; i++) {
        memcpy(mut, text, len);
        mut[rand() % len] = (char) (rand() % 256);

        if (i % 2) {
            mut[rand() % len] = "\"\\{}:,\0u"[rand() % 8];
        }

        write_file(path, mut, len);
        rc = vconv_job_load(&back, dir, &err);

        if (rc != VCONV_OK && rc != VCONV_ERROR) {
            crashes++;
        }

        if (rc == VCONV_OK && (!vconv_id_valid(back.id, strlen(back.id))
                               || strlen(back.in_name) >= VCONV_NAME_MAX
                               || back.progress < 0 || back.progress > 1))
        {
            crashes++;
        }
    }

    is_int(crashes, 0, "mutated job.json: error or sane job");
    free(mut);

    /* garbage */
    static const char  *garbage[] = {
        "",
        "null",
        "[]",
        "{}",
        "{\"version\":1}",
        "{\"version\":1,\"id\":\"" ID "\"}",
        "{\"version\":2,\"id\":\"" ID "\",\"status\":\"done\"}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"finished\"}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\"} x",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\",}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\",\"x\":{}}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\",\"x\":true}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":5}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
            "\"in_name\":\"a\\u0000b\"}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
            "\"in_name\":\"\\ud800\"}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
            "\"in_name\":\"\\u12\"}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
            "\"in_name\":\"\\q\"}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
            "\"in_name_hex\":\"0\"}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
            "\"in_name_hex\":\"00\"}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
            "\"in_name_hex\":\"zz\"}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
            "\"in_format\":\"0123456789012345678901234567890123\"}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
            "\"created\":1.5}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
            "\"created\":99999999999999999999999}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
            "\"progress\":1e999}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
            "\"progress\":nan}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
            "\"err_code\":\"oops\"}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
            "\"out_format\":\"avi\"}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
            "\"in_bytes\":\"12\"}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\",\"pid\":-}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\",\"a\":\"\n\"}",
        "{\"version\":1,\"id\":\"../" ID "\",\"status\":\"done\"}",
        ("{\"version\":1,\"id\":\"ffffffffffffffffffffffffffffffff\","
         "\"status\":\"done\"}"),
        "\x89PNG\r\n\x1a\n",
    };

    for (n = 0; n < sizeof(garbage) / sizeof(garbage[0]); n++) {
        write_file(path, garbage[n], strlen(garbage[n]));
        memset(&err, 0, sizeof(err));
        rc = vconv_job_load(&back, dir, &err);
        ok(rc == VCONV_ERROR && err.code == VCONV_E_IO && err.message[0],
           "garbage %zu refused: %s", n, err.message);
    }

    /* the smallest good file, with an unknown key from a newer version */
    {
        static const char  good[] =
            " {\"version\":1,\"id\":\"" ID "\",\"status\":\"queued\","
            "\"later\":\"x\",\"later2\":null,\"later3\":-1.5e3}\n";

        write_file(path, good, strlen(good));
        is_int(vconv_job_load(&back, dir, &err), VCONV_OK,
               "minimal job.json loads");
        is_int(back.status, VCONV_JOB_QUEUED, "minimal: status");
        is_int(back.out_format, -1, "minimal: no out_format");
        ok(back.in_duration == -1, "minimal: duration unknown");
    }

    /* a huge file */
    mut = calloc(1, 70000);
    memset(mut, ' ', 69999);
    mut[0] = '{';
    write_file(path, mut, 70000);
    is_int(vconv_job_load(&back, dir, &err), VCONV_ERROR, "huge refused");
    free(mut);

    /* a folder of another name */
    join(other, tmpdir, "/ffffffffffffffffffffffffffffffff");
    mkdir(other, 0700);
    memset(&job, 0, sizeof(job));
    strcpy(job.id, ID);
    job.status = VCONV_JOB_DONE;
    is_int(vconv_job_save(&job, other, &err), VCONV_OK, "save elsewhere");
    is_int(vconv_job_load(&back, other, &err), VCONV_ERROR,
           "id not matching the folder");
    ok(strstr(err.message, "folder") != NULL, "folder message");
    join(path, other, "/job.json");
    unlink(path);
    rmdir(other);

    /* missing file, directory, symlink */
    join(path, dir, "/job.json");
    unlink(path);
    is_int(vconv_job_load(&back, dir, &err), VCONV_ERROR, "missing file");
    is_int(err.code, VCONV_E_IO, "missing: io_error");

    mkdir(path, 0700);
    is_int(vconv_job_load(&back, dir, &err), VCONV_ERROR, "directory");
    is_int(vconv_job_save(&job, dir, &err), VCONV_ERROR,
           "save over a directory fails");
    rmdir(path);

    join(other, tmpdir, "/elsewhere.json");
    write_file(other, "{}", 2);
    if (symlink(other, path) == 0) {
        is_int(vconv_job_load(&back, dir, &err), VCONV_ERROR,
               "symlink refused");
        unlink(path);
    }
    unlink(other);

    /* save into a missing folder */
    join(other, tmpdir, "/nope/" ID);
    is_int(vconv_job_save(&job, other, &err), VCONV_ERROR,
           "save into a missing folder");
    is_int(err.code, VCONV_E_IO, "missing folder: io_error");

    free(text);
    rmdir(dir);
}


/* a minimal job.json with key set to n bytes of "61" */
static void
len_fill(char *buf, const char *key, size_t n)
{
    size_t  i, len;

    len = (size_t) sprintf(buf, "{\"version\":1,\"id\":\"" ID "\","
                           "\"status\":\"done\",\"%s\":\"", key);
    memset(buf + len, '6', n);

    for (i = 1; i < n; i += 2) {
        buf[len + i] = '1';
    }

    strcpy(buf + len + n, "\"}");
}


/* job.json as the hand-written writer before jansson made it */
static void
test_old_store(void)
{
    char               dir[PATH_MAX], path[PATH_MAX];
    vconv_error_t      err;
    vconv_job_info_t   back;

    static const char  old[] =
        "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\","
        "\"progress\":1,\"created\":1700000000,\"expires\":1700003600,"
        "\"finished\":1700000100,\"in_name\":\"a\xef\xbf\xbd" "b\\u000a"
        "\\u2028\\u007f\\\".mov\","
        "\"in_name_hex\":\"61ff620ae280a87f222e6d6f76\","
        "\"in_bytes\":12,\"in_format\":\"matroska,webm\",\"in_duration\":2.5,"
        "\"in_streams\":2,\"out_format\":\"mp4\",\"out_bytes\":99,"
        "\"transcode_seconds\":0.10000000000000001,\"err_code\":\"none\","
        "\"err_message\":\"t\\\\\\u0001\",\"pid\":77}\n";

    join(dir, tmpdir, "/" ID);
    join(path, dir, "/job.json");
    mkdir(dir, 0700);

    write_file(path, old, sizeof(old) - 1);
    memset(&back, 0xa5, sizeof(back));
    is_int(vconv_job_load(&back, dir, &err), VCONV_OK, "old job.json loads");
    is_str(back.id, ID, "old: id");
    is_int(back.status, VCONV_JOB_DONE, "old: status");
    ok(back.progress == 1, "old: progress");
    is_int(back.created, 1700000000, "old: created");
    is_int(back.expires, 1700003600, "old: expires");
    is_int(back.finished, 1700000100, "old: finished");
    is_str(back.in_name, "a\xff" "b\n\xe2\x80\xa8\x7f\".mov",
           "old: name bytes from in_name_hex");
    is_int(back.in_bytes, 12, "old: in_bytes");
    is_str(back.in_format, "matroska,webm", "old: in_format");
    ok(back.in_duration == 2.5, "old: in_duration");
    is_int(back.in_streams, 2, "old: in_streams");
    is_int(back.out_format, VCONV_FMT_MP4, "old: out_format");
    is_int(back.out_bytes, 99, "old: out_bytes");
    ok(back.transcode_seconds == 0.1, "old: transcode_seconds");
    is_int(back.err_code, VCONV_E_NONE, "old: err_code");
    is_str(back.err_message, "t\\\x01", "old: err_message");
    is_int(back.pid, 77, "old: pid");

    unlink(path);
    rmdir(dir);
}


static void
rand_text(char *dst, size_t size, int ascii)
{
    size_t  i, n;

    n = rand() % size;

    for (i = 0; i < n; i++) {
        dst[i] = ascii ? "ab \"\\\n\t/\x7f"[rand() % 9]
                       : (char) (1 + rand() % 255);
    }

    dst[n] = '\0';
}


static int64_t
rand64(void)
{
    return (int64_t) (((uint64_t) rand() << 42) ^ ((uint64_t) rand() << 21)
                      ^ (uint64_t) rand());
}


/* what vconv_job_text() writes, vconv_job_parse() reads back exactly */
static void
test_round_trip(void)
{
    int                i, bad;
    char              *text;
    size_t             len;
    vconv_job_info_t   job, back;

    srand(2);
    bad = 0;

    for (i = 0; i < 2000; i++) {
        memset(&job, 0, sizeof(job));
        strcpy(job.id, i % 2 ? ID : NID);
        job.status = (vconv_status_e) (rand() % 6);
        job.progress = (double) rand() / RAND_MAX;
        job.created = rand64();
        job.expires = rand64();
        job.finished = rand64();
        rand_text(job.in_name, sizeof(job.in_name), i % 3 == 0);
        job.in_bytes = rand64();
        rand_text(job.in_format, sizeof(job.in_format), i % 3 == 1);
        job.in_duration = (double) rand64() / (rand() + 1);
        job.in_streams = rand() - RAND_MAX / 2;
        job.out_format = rand() % (VCONV_FMT_COUNT + 1) - 1;
        job.out_bytes = rand64();
        job.transcode_seconds = (double) rand() / (rand() + 1) * 1e-3;
        job.err_code = (vconv_err_e) (rand() % VCONV_E_COUNT);
        rand_text(job.err_message, sizeof(job.err_message), i % 3 == 2);
        job.pid = rand();

        text = vconv_job_text(&job, &len);

        if (text == NULL || strlen(text) != len || !json_valid(text, len)
            || vconv_job_parse(&back, text, len) != 0
            || !job_same(&job, &back))
        {
            if (bad++ == 0) {
                diag("round trip %d: %s", i, text ? text : "(null)");
            }
        }

        free(text);
    }

    is_int(bad, 0, "2000 random jobs: text, parse, the same job");

    /* a format name of 31 bytes not in UTF-8 is 93 bytes of U+FFFD */
    job_init(&job, VCONV_JOB_DONE);
    memset(job.in_format, 0xff, sizeof(job.in_format) - 1);
    job.in_format[sizeof(job.in_format) - 1] = '\0';
    text = vconv_job_text(&job, &len);
    ok(text != NULL && vconv_job_parse(&back, text, len) == 0
       && job_same(&job, &back), "a long non-UTF-8 format comes back");
    free(text);

    /* non-finite numbers are written as their defaults */
    job_init(&job, VCONV_JOB_RUNNING);
    job.progress = 0.0 / 0.0;
    job.in_duration = 1.0 / 0.0;
    job.transcode_seconds = -1.0 / 0.0;
    text = vconv_job_text(&job, &len);
    ok(text != NULL && vconv_job_parse(&back, text, len) == 0
       && back.progress == 0 && back.in_duration == -1
       && back.transcode_seconds == 0, "NaN and infinities: defaults");
    free(text);
}


/* damaged and hostile job.json text: refused, never a crash */
static void
test_parse_hostile(void)
{
    int                rc;
    char              *big;
    size_t             i, n;
    vconv_job_info_t   back;

#define HEAD  "{\"version\":1,\"id\":\"" ID "\",\"status\":\"done\""

    static const char  *bad[] = {
        /* not an object */
        "[]", "[" HEAD "}]", "\"" ID "\"", "1", "null", "true", " ",
        /* wrong types, field by field */
        "{\"version\":\"1\",\"id\":\"" ID "\",\"status\":\"done\"}",
        "{\"version\":1.0,\"id\":\"" ID "\",\"status\":\"done\"}",
        "{\"version\":1,\"id\":7,\"status\":\"done\"}",
        "{\"version\":1,\"id\":null,\"status\":\"done\"}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":null}",
        "{\"version\":1,\"id\":\"" ID "\",\"status\":3}",
        HEAD ",\"progress\":\"0.5\"}",
        HEAD ",\"progress\":null}",
        HEAD ",\"created\":\"1700000000\"}",
        HEAD ",\"expires\":1.5e9}",
        HEAD ",\"finished\":false}",
        HEAD ",\"in_name\":5}",
        HEAD ",\"in_name\":null}",
        HEAD ",\"in_name_hex\":616263}",
        HEAD ",\"in_bytes\":[1]}",
        HEAD ",\"in_format\":{}}",
        HEAD ",\"in_duration\":\"2\"}",
        HEAD ",\"in_streams\":2.5}",
        HEAD ",\"in_streams\":2147483648}",
        HEAD ",\"out_format\":7}",
        HEAD ",\"out_format\":\"MP4\"}",
        HEAD ",\"out_bytes\":null}",
        HEAD ",\"transcode_seconds\":true}",
        HEAD ",\"err_code\":null}",
        HEAD ",\"err_code\":12}",
        HEAD ",\"err_message\":[]}",
        HEAD ",\"pid\":-2147483649}",
        HEAD ",\"pid\":\"1\"}",
        HEAD ",\"later\":[]}",
        HEAD ",\"later\":false}",
        /* NUL in strings, escaped or raw */
        "{\"version\":1,\"id\":\"" ID "\\u0000\",\"status\":\"done\"}",
        HEAD ",\"in_format\":\"mp4\\u0000x\"}",
        HEAD ",\"err_message\":\"a\\u0000\"}",
        HEAD ",\"later\":\"\\u0000\"}",
        HEAD ",\"la\\u0000ter\":1}",
        HEAD ",\"in_name_hex\":\"610062\"}",
        /* the same key twice */
        HEAD ",\"status\":\"failed\"}",
        HEAD ",\"in_name\":\"a\",\"in_name\":\"b\"}",
        /* cut */
        HEAD, HEAD ",", HEAD ",\"in_name\":\"abc}", "{",
        /* an id too long for its field */
        "{\"version\":1,\"id\":\"" ID ID ID "\",\"status\":\"done\"}",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rc = vconv_job_parse(&back, bad[i], strlen(bad[i]));
        ok(rc == -1, "hostile %zu refused: %s", i, bad[i]);
    }

    /* a raw NUL in a string and after the object */
    {
        static const char  nul1[] = HEAD ",\"in_name\":\"a\0b\"}";
        static const char  nul2[] = HEAD "}\0";

        is_int(vconv_job_parse(&back, nul1, sizeof(nul1) - 1), -1,
               "raw NUL in a string refused");
        is_int(vconv_job_parse(&back, nul2, sizeof(nul2) - 1), -1,
               "raw NUL after the object refused");
    }

    /* huge strings: a field that must fit is refused, a name is cut */
    n = 60000;
    big = malloc(n + 200);

    for (i = 0; i < 3; i++) {
        static const char  *keys[] = {
            "in_format", "in_name_hex", "err_message_hex"
        };

        len_fill(big, keys[i], n);
        is_int(vconv_job_parse(&back, big, strlen(big)), -1, keys[i]);
    }

    len_fill(big, "in_name", n);
    is_int(vconv_job_parse(&back, big, strlen(big)), 0, "a huge name: cut");
    is_int(strlen(back.in_name), VCONV_NAME_MAX - 1, "cut to the field");

    len_fill(big, "err_message", n);
    is_int(vconv_job_parse(&back, big, strlen(big)), 0,
           "a huge message: cut");
    is_int(strlen(back.err_message), sizeof(back.err_message) - 1,
           "cut to the field");

    free(big);

    /* a name of 3-byte characters is cut at a character */
    {
        char  name[1200];

        strcpy(name, HEAD ",\"in_name\":\"");
        n = strlen(name);

        for (i = 0; i < 300; i++, n += 3) {
            memcpy(name + n, "\xe6\x97\xa5", 3);
        }

        strcpy(name + n, "\"}");
        is_int(vconv_job_parse(&back, name, strlen(name)), 0,
               "a long UTF-8 name");
        is_int(strlen(back.in_name), 255, "cut at a character (85 x 3)");
    }

#undef HEAD
}


/* issue 13: the outputs of a list come back from job.json */
static void
test_outputs(void)
{
    char              *text, buf[8192];
    size_t             len;
    vconv_job_info_t   job, back;

    job_init(&job, VCONV_JOB_DONE);
    job.out_format = VCONV_FMT_MP4;
    job.out_bytes = 1000;
    job.nouts = 3;
    job.outs[0] = VCONV_FMT_MP4;
    job.outs[1] = VCONV_FMT_WEBM;
    job.outs[2] = VCONV_FMT_JPG;
    job.outs_bytes[0] = 1000;
    job.outs_bytes[1] = 2000;
    job.outs_bytes[2] = 30;

    text = vconv_job_text(&job, &len);
    ok(text != NULL && vconv_job_parse(&back, text, len) == 0,
       "a job of three outputs: text and parse");
    is_int(back.nouts, 3, "... three outputs");
    is_int(back.outs[1], VCONV_FMT_WEBM, "... the second is webm");
    is_int(back.outs[2], VCONV_FMT_JPG, "... the third jpg");
    is_int(back.outs_bytes[1], 2000, "... with its bytes");
    is_int(back.outs[0], VCONV_FMT_MP4, "... the first is out_format");
    free(text);

    len = vconv_job_json(&job, "/api/jobs/", 0, buf, sizeof(buf));
    ok(len < sizeof(buf) && json_valid(buf, len), "its JSON is valid");
    ok(strstr(buf, "\"outputs\":[{\"name\":\"mp4\",\"format\":\"mp4\","
                   "\"bytes\":1000,\"url\":\"/api/jobs/" ID "/output/mp4\"},"
                   "{\"name\":\"webm\",\"format\":\"webm\",\"bytes\":2000,")
       != NULL, "outputs[] in order with bytes and urls");

    job.nouts = 9;
    text = vconv_job_text(&job, &len);
    ok(text != NULL && vconv_job_parse(&back, text, len) != 0,
       "nine outputs are refused");
    free(text);
}


int
main(void)
{
    const char  *t;

    t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/vconv_test_job.XXXXXX",
             t && *t ? t : "/tmp");

    if (mkdtemp(tmpdir) == NULL) {
        printf("Bail out! mkdtemp: %s\n", strerror(errno));
        return 1;
    }

    test_status();
    test_job_json();
    test_error_json();
    test_id();
    test_save_load();
    test_old_store();
    test_round_trip();
    test_parse_hostile();
    test_outputs();

    if (rmdir(tmpdir) != 0) {
        diag("rmdir %s: %s", tmpdir, strerror(errno));
    }

    return done_testing();
}
