/*
 * Unit tests for the Content-Disposition of downloads.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vconv_disposition.h"
#include "tap.h"


static char *
cd(const char *name, size_t nlen, const char *ext)
{
    char          *buf;
    size_t         need, n;
    static char    out[2048];

    need = vconv_content_disposition(name, nlen, ext, NULL, 0);
    buf = malloc(need + 1);
    n = vconv_content_disposition(name, nlen, ext, buf, need + 1);

    if (n != need || strlen(buf) != need || need >= sizeof(out)) {
        diag("cd: size %zu then %zu, strlen %zu", need, n, strlen(buf));
    }

    snprintf(out, sizeof(out), "%s", buf);
    free(buf);

    return out;
}


/* no CR, LF, other controls or non-ASCII in a header value */
static int
header_safe(const char *s)
{
    for ( ; *s; s++) {
        if ((unsigned char) *s < 0x20 || (unsigned char) *s >= 0x7f) {
            return 0;
        }
    }

    return 1;
}


static void
test_content_disposition(void)
{
    char        *v, big[1000], small[20];
    const char  *q;
    size_t       n, need;

#define CD(name, ext)  cd(name, strlen(name), ext)

    is_str(CD("clip.mov", "mp4"),
           "attachment; filename=\"clip.mp4\"; filename*=UTF-8''clip.mp4",
           "simple name");
    is_str(CD("clip", "mp4"),
           "attachment; filename=\"clip.mp4\"; filename*=UTF-8''clip.mp4",
           "no extension");
    is_str(CD("my.holiday.video.MOV", "webm"),
           "attachment; filename=\"my.holiday.video.webm\"; "
           "filename*=UTF-8''my.holiday.video.webm", "last extension only");
    is_str(CD("My.Holiday Video", "mp4"),
           "attachment; filename=\"My.Holiday Video.mp4\"; "
           "filename*=UTF-8''My.Holiday%20Video.mp4",
           "a dot that is no extension");
    is_str(CD("../../etc/passwd", "mp3"),
           "attachment; filename=\"passwd.mp3\"; filename*=UTF-8''passwd.mp3",
           "directory part stripped");
    is_str(CD("C:\\Users\\me\\Desktop\\v.avi", "mkv"),
           "attachment; filename=\"v.mkv\"; filename*=UTF-8''v.mkv",
           "windows path stripped");
    is_str(CD("dir/", "mp4"),
           "attachment; filename=\"output.mp4\"; filename*=UTF-8''output.mp4",
           "only a directory");
    is_str(CD("", "png"),
           "attachment; filename=\"output.png\"; filename*=UTF-8''output.png",
           "empty name");
    is_str(cd(NULL, 0, "png"),
           "attachment; filename=\"output.png\"; filename*=UTF-8''output.png",
           "NULL name");
    is_str(CD(".mov", "mp4"),
           "attachment; filename=\"mov.mp4\"; filename*=UTF-8''mov.mp4",
           "dot file: leading dot dropped");
    is_str(CD("...", "mp4"),
           "attachment; filename=\"output.mp4\"; filename*=UTF-8''output.mp4",
           "dots only");
    is_str(CD("a\"b;c<d>e*f?g|h:i.mov", "mp4"),
           "attachment; filename=\"a_b_c_d_e_f_g_h_i.mp4\"; "
           "filename*=UTF-8''a%22b%3Bc%3Cd%3Ee%2Af%3Fg|h%3Ai.mp4",
           "quotes, ';' and other unsafe bytes");
    is_str(CD("evil\r\nSet-Cookie: x=1.mov", "mp4"),
           "attachment; filename=\"evilSet-Cookie_ x=1.mp4\"; "
           "filename*=UTF-8''evilSet-Cookie%3A%20x%3D1.mp4", "CR LF dropped");
    is_str(CD("tab\there\x7f.mov", "mp4"),
           "attachment; filename=\"tabhere.mp4\"; "
           "filename*=UTF-8''tabhere.mp4", "controls dropped");
    is_str(CD("100%.mov", "mp4"),
           "attachment; filename=\"100_.mp4\"; filename*=UTF-8''100%25.mp4",
           "percent");
    is_str(CD("vid\xc3\xa9o \xe6\x97\xa5\xe6\x9c\xac.mov", "mov"),
           "attachment; filename=\"vid_o __.mov\"; "
           "filename*=UTF-8''vid%C3%A9o%20%E6%97%A5%E6%9C%AC.mov",
           "UTF-8 name");
    is_str(CD("bad\xff\xfe.mov", "mp4"),
           "attachment; filename=\"bad__.mp4\"; filename*=UTF-8''bad__.mp4",
           "invalid UTF-8 bytes replaced");
    is_str(CD("gpj\xe2\x80\xae.exe", "mp4"),
           "attachment; filename=\"gpj.mp4\"; filename*=UTF-8''gpj.mp4",
           "bidi override dropped");
    is_str(CD("clip.mov", "mp4\r\nX: y"),
           "attachment; filename=\"clip\"; filename*=UTF-8''clip",
           "bad extension ignored");
    is_str(CD("clip.mov", NULL),
           "attachment; filename=\"clip\"; filename*=UTF-8''clip",
           "no extension given");
    is_str(cd("a.mov\0/../x", 11, "mp4"),
           "attachment; filename=\"a.mp4\"; filename*=UTF-8''a.mp4",
           "name ends at NUL");
    is_str(CD(" spaced name .mov", "mp4"),
           "attachment; filename=\"spaced name.mp4\"; "
           "filename*=UTF-8''spaced%20name.mp4", "edge spaces trimmed");

    /* 1000 characters: capped, still well formed */
    memset(big, 'a', sizeof(big) - 5);
    strcpy(big + sizeof(big) - 5, ".mov");
    v = CD(big, "mp4");
    ok(strlen(v) < 700, "long name capped (%zu)", strlen(v));
    ok(strstr(v, "aaaa.mp4\"; filename*=UTF-8''aaaa") != NULL,
       "long name keeps the extension");
    ok(strlen(v) > 4 && strcmp(v + strlen(v) - 4, ".mp4") == 0,
       "long name ends with the extension");

    /* 1000 bytes of 3-byte characters: cut at a character */
    for (n = 0; n + 3 < sizeof(big); n += 3) {
        memcpy(big + n, "\xe6\x97\xa5", 3);
    }
    big[n] = '\0';
    v = CD(big, "mp4");
    ok(header_safe(v), "long UTF-8: header-safe");
    q = strstr(v, "UTF-8''");
    ok(q != NULL && (strlen(q) - strlen("UTF-8''.mp4")) % 9 == 0,
       "long UTF-8: whole characters only");

    /* every byte value: the header stays safe */
    for (n = 0; n < 255; n++) {
        big[n] = (char) (n + 1);
    }
    big[255] = '\0';
    v = CD(big, "mp4");
    ok(header_safe(v), "all bytes: header-safe");
    ok(strstr(v, "\r") == NULL && strstr(v, "\n") == NULL,
       "all bytes: no CRLF");
    q = strchr(v, '"');
    ok(q != NULL && strchr(q + 1, '"') != NULL
       && strchr(strchr(q + 1, '"') + 1, '"') == NULL,
       "all bytes: exactly one quoted string");

    /* extensions at their edges */
    is_str(CD("a.abcdefgh", "mp4"),
           "attachment; filename=\"a.mp4\"; filename*=UTF-8''a.mp4",
           "an 8-character extension is one");
    is_str(CD("a.abcdefghi", "mp4"),
           "attachment; filename=\"a.abcdefghi.mp4\"; "
           "filename*=UTF-8''a.abcdefghi.mp4",
           "a 9-character extension is part of the name");
    is_str(CD("a.mo-v", "mp4"),
           "attachment; filename=\"a.mo-v.mp4\"; filename*=UTF-8''a.mo-v.mp4",
           "an extension of other bytes is part of the name");
    is_str(CD("dir/.profile", "mp4"),
           "attachment; filename=\"profile.mp4\"; "
           "filename*=UTF-8''profile.mp4",
           "a hidden file's dot is no extension");
    is_str(CD("name.", "mp4"),
           "attachment; filename=\"name.mp4\"; filename*=UTF-8''name.mp4",
           "a trailing dot");
    is_str(CD("clip.mov", "abcdefghijklmnopqrst"),
           "attachment; filename=\"clip.abcdefghijklmnop\"; "
           "filename*=UTF-8''clip.abcdefghijklmnop",
           "our extension capped at 16");
    is_str(CD("\xe2\x80\xae\x01 .mov", "mp4"),
           "attachment; filename=\"output.mp4\"; filename*=UTF-8''output.mp4",
           "nothing left but marks and controls");
    is_str(CD("\xc3\xa9\xc3\xa9.mov", "mp4"),
           "attachment; filename=\"__.mp4\"; "
           "filename*=UTF-8''%C3%A9%C3%A9.mp4",
           "an ASCII fallback of underscores only");

    /* 200 bytes of stem, then a cut of a stray byte at the limit */
    memset(big, 'b', 199);
    big[199] = '\xff';
    big[200] = 'c';
    strcpy(big + 201, ".mov");
    v = CD(big, "mp4");
    ok(strstr(v, "bbb_\"") == NULL && strstr(v, "bbb_.mp4\"") != NULL,
       "a stray byte at the limit still fits (%s)", v);

    /* truncation */
    need = vconv_content_disposition("clip.mov", 8, "mp4", NULL, 0);
    memset(small, 'Z', sizeof(small));
    n = vconv_content_disposition("clip.mov", 8, "mp4", small,
                                  sizeof(small));
    is_int(n, need, "cd: size needed when truncated");
    ok(memchr(small, '\0', sizeof(small)) != NULL, "cd: terminated");

#undef CD
}


int
main(void)
{
    test_content_disposition();

    return done_testing();
}
