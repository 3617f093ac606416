/*
 * Unit tests for outputs.zip's index and headers (vconv_zip.c) and the
 * sprite's WebVTT (vconv_sprite_vtt).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vconv_options.h"
#include "vconv_sprite.h"
#include "vconv_zip.h"
#include "tap.h"


static unsigned
get16(const unsigned char *p)
{
    return p[0] | p[1] << 8;
}


static unsigned
get32(const unsigned char *p)
{
    return (unsigned) p[0] | (unsigned) p[1] << 8 | (unsigned) p[2] << 16
           | (unsigned) p[3] << 24;
}


static void
put(const char *dir, const char *name, const char *text)
{
    char   path[512];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}


static void
test_vtt(void)
{
    char            buf[1024];
    size_t          n, need;
    vconv_sprite_t  sp = { 5, 3, 160, 90, 2.0, 9.5 };

    need = vconv_sprite_vtt(&sp, "sprite", NULL, 0);
    n = vconv_sprite_vtt(&sp, "sprite", buf, sizeof(buf));

    is_int((int) n, (int) need, "vtt: counting and writing agree");
    is_str(buf,
           "WEBVTT\n"
           "\n00:00:00.000 --> 00:00:02.000\nsprite#xywh=0,0,160,90\n"
           "\n00:00:02.000 --> 00:00:04.000\nsprite#xywh=160,0,160,90\n"
           "\n00:00:04.000 --> 00:00:06.000\nsprite#xywh=320,0,160,90\n"
           "\n00:00:06.000 --> 00:00:08.000\nsprite#xywh=0,90,160,90\n"
           "\n00:00:08.000 --> 00:00:09.500\nsprite#xywh=160,90,160,90\n",
           "vtt: cues in rows of 3, the last ends at the input's end");

    n = vconv_sprite_vtt(&sp, "sprite", buf, 20);
    ok(strlen(buf) < 20 && n == need, "vtt: cut safely, the need told");

    sp.tiles = 1;
    sp.interval = 3725.25;
    sp.duration = 0;
    vconv_sprite_vtt(&sp, "x.jpg", buf, sizeof(buf));
    is_str(buf, "WEBVTT\n\n00:00:00.000 --> 01:02:05.250\n"
           "x.jpg#xywh=0,0,160,90\n",
           "vtt: hours, no known end: a whole interval");

    is_int((int) (vconv_sprite_interval(0) / 1000000), 10,
           "interval: 10 s when the duration is unknown");
    is_int((int) (vconv_sprite_interval(10000000) / 1000000), 1,
           "interval: 1 s for 10 s");
    is_int((int) (vconv_sprite_interval(100000000) / 1000000), 1,
           "interval: 1 s for 100 s");
    is_int((int) (vconv_sprite_interval(100000001) / 1000000), 2,
           "interval: 2 s just over 100 s (at most 100 tiles)");
    is_int((int) (vconv_sprite_interval(3600000000LL) / 1000000), 36,
           "interval: 36 s for an hour");
}


static void
test_index(void)
{
    int                 n;
    char                dir[] = "/tmp/vconv-zip-XXXXXX", path[600];
    vconv_error_t       err;
    vconv_zip_entry_t   e[8];

    if (mkdtemp(dir) == NULL) {
        ok(0, "mkdtemp");
        return;
    }

    put(dir, "output", "abc");
    put(dir, "output.sprite.vtt", "WEBVTT\n");
    put(dir, "output.tmp", "half");
    put(dir, "input", "the upload");
    put(dir, "job.json", "{}");
    put(dir, "outputx", "not ours");

    is_int(vconv_zip_index(dir, "a/b\\Fête \"x\".final.mov", 25,
                           VCONV_FMT_SPRITE, &err),
           VCONV_OK, "index written");
    is_int(vconv_zip_load(dir, e, 8, &n, &err), VCONV_OK, "index read back");
    is_int(n, 2, "only the outputs: output, output.sprite.vtt");

    if (n == 2) {
        is_str(e[0].path, "output", "output first");
        is_str(e[0].name, "Fête _x_.final.sprite.jpg",
               "its name: the upload's base, the format's extension");
        is_int((int) e[0].size, 3, "its size");
        is_int((int) e[0].crc, (int) 0x352441c2, "its CRC-32 (\"abc\")");
        is_str(e[1].name, "Fête _x_.final.sprite.vtt", "the VTT's name");
    }

    snprintf(path, sizeof(path), "%s/zip.idx", dir);
    put(dir, "zip.idx", "zzzz 3 output\tx\n");
    ok(vconv_zip_load(dir, e, 8, &n, &err) != VCONV_OK,
       "a damaged index is refused");
    put(dir, "zip.idx", "00000000 3 ../../etc/passwd\tx\n");
    ok(vconv_zip_load(dir, e, 8, &n, &err) != VCONV_OK,
       "an index naming a path outside the folder is refused");

    snprintf(path, sizeof(path), "%s/hls", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/hls/720", dir);
    mkdir(path, 0700);
    put(dir, "hls/master.m3u8", "#EXTM3U\n");
    put(dir, "hls/720/seg1.m4s", "xx");
    put(dir, "hls/720/seg2.m4s.tmp", "x");
    snprintf(path, sizeof(path), "%s/output.webm", dir);
    mkdir(path, 0700);

    is_int(vconv_zip_index(dir, "clip.mp4", 8, VCONV_FMT_MP4, &err),
           VCONV_OK, "index with hls/");
    vconv_zip_load(dir, e, 8, &n, &err);
    is_int(n, 4, "output, output.sprite.vtt, two hls files; no folders");
    if (n == 4) {
        is_str(e[0].name, "clip.mp4", "the first, named by its format");
        is_str(e[1].path, "hls/720/seg1.m4s", "a rendition's segment");
        is_str(e[1].name, "clip-hls/720/seg1.m4s", "... under base-hls/");
        is_str(e[2].name, "clip-hls/master.m3u8", "the master playlist");
    }

    is_int(vconv_zip_index(dir, "", 0, VCONV_FMT_MP4, &err), VCONV_OK,
           "no upload name");
    vconv_zip_load(dir, e, 8, &n, &err);
    is_str(e[0].name, "output.mp4", "... the base is \"output\"");

    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    if (system(path) != 0) {
        diag("could not remove %s", dir);
    }
}


static void
test_headers(void)
{
    unsigned char       buf[512];
    size_t              n;
    vconv_zip_entry_t   e;

    memset(&e, 0, sizeof(e));
    strcpy(e.name, "clip.mp4");
    e.size = 123456;
    e.crc = 0xdeadbeef;

    n = vconv_zip_local(&e, 0x5a8c6000, buf);
    is_int((int) n, 30 + 8, "local header: 30 bytes + name");
    is_int((int) get32(buf), 0x04034b50, "... its signature");
    is_int((int) get16(buf + 8), 0, "... stored");
    is_int((int) get16(buf + 6), 0x0800, "... UTF-8 names");
    is_int((int) get32(buf + 14), (int) 0xdeadbeef, "... CRC");
    is_int((int) get32(buf + 18), 123456, "... compressed size");
    is_int((int) get32(buf + 22), 123456, "... size");
    ok(memcmp(buf + 30, "clip.mp4", 8) == 0, "... name");

    n = vconv_zip_central(&e, 0x5a8c6000, 777, buf);
    is_int((int) n, 46 + 8, "central header: 46 bytes + name");
    is_int((int) get32(buf), 0x02014b50, "... its signature");
    is_int((int) get32(buf + 42), 777, "... the local header's offset");
    is_int((int) get32(buf + 20), 123456, "... size");

    n = vconv_zip_end(3, 200, 1000, buf);
    is_int((int) n, 22, "end record: 22 bytes");
    is_int((int) get16(buf + 10), 3, "... entries");
    is_int((int) get32(buf + 12), 200, "... directory size");
    is_int((int) get32(buf + 16), 1000, "... directory offset");

    is_int((int) vconv_zip_size(&e, 1), 30 + 46 + 16 + 123456 + 22,
           "zip size: headers, names twice, body, end");
    e.size = 0xffffffffLL;
    is_int((int) vconv_zip_size(&e, 1), -1, "4 GiB: too large without zip64");

    is_int((int) vconv_zip_dos_time(1764633600 + 13 * 3600 + 4 * 60 + 6),
           (int) ((45u << 25) | (12u << 21) | (2u << 16) | (13u << 11)
                   | (4u << 5) | 3u),
           "DOS time of 2025-12-02 13:04:06 UTC (2 s steps)");
}


int
main(void)
{
    test_vtt();
    test_index();
    test_headers();

    return done_testing();
}
