/*
 * Unit tests for the option parser, the per-format presets, the formats
 * mask, GET /api/presets, and the error names and statuses.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vconv_options.h"
#include "tap.h"
#include "json_valid.h"


/* the value the codec table sets on an encoder, "" if none */
static const char *
enc_opt(const char *encoder, const char *name)
{
    const vconv_codec_t        *c;
    const vconv_encoder_opt_t  *o;

    c = vconv_codec_by_encoder(encoder);

    for (o = c ? c->opts : NULL; o != NULL && o->name != NULL; o++) {
        if (strcmp(o->name, name) == 0) {
            return o->value;
        }
    }

    return "";
}


/*
 * Parses "k=v&k=v" (no URL decoding: tests use plain bytes) into spec
 * and finishes it; returns the error code, VCONV_E_NONE on success.
 */
static vconv_err_e
parse(const char *query, unsigned allowed, vconv_spec_t *spec,
    vconv_error_t *err)
{
    const char  *p, *amp, *eq, *end;

    vconv_spec_init(spec);
    memset(err, 0, sizeof(vconv_error_t));

    p = query;
    end = query + strlen(query);

    while (p < end) {
        amp = memchr(p, '&', end - p);
        if (amp == NULL) {
            amp = end;
        }

        eq = memchr(p, '=', amp - p);

        if (eq == NULL) {
            eq = amp;
        }

        if (vconv_spec_set(spec, p, eq - p, eq < amp ? eq + 1 : eq,
                           eq < amp ? (size_t) (amp - eq - 1) : 0, err)
            != VCONV_OK)
        {
            return err->code;
        }

        p = amp + 1;
    }

    if (vconv_spec_finish(spec, allowed, err) != VCONV_OK) {
        return err->code;
    }

    return VCONV_E_NONE;
}


static void
test_errors(void)
{
    int  i;

    is_str(vconv_error_name(VCONV_E_NONE), "none", "error name none");
    is_str(vconv_error_name(VCONV_E_OUT_OF_RANGE), "out_of_range",
           "error name out_of_range");
    is_str(vconv_error_name(VCONV_E_INPUT_FORMAT_NOT_ALLOWED),
           "input_format_not_allowed", "error name input_format_not_allowed");
    is_str(vconv_error_name(VCONV_E_NO_VIDEO), "no_video_stream",
           "error name no_video_stream");
    is_str(vconv_error_name(VCONV_E_INTERNAL), "internal_error",
           "error name internal_error");
    is_str(vconv_error_name(VCONV_E_COUNT), "internal_error",
           "error name out of range");
    is_str(vconv_error_name((vconv_err_e) -5), "internal_error",
           "error name negative");

    for (i = VCONV_E_UNKNOWN_OPTION; i <= VCONV_E_DUPLICATE_OPTION; i++) {
        is_int(vconv_error_http_status(i), 400, vconv_error_name(i));
    }

    is_int(vconv_error_http_status(VCONV_E_UNSUPPORTED_INPUT), 415,
           "unsupported_input 415");
    is_int(vconv_error_http_status(VCONV_E_INPUT_FORMAT_NOT_ALLOWED), 415,
           "input_format_not_allowed 415");

    for (i = VCONV_E_NO_VIDEO; i <= VCONV_E_TOO_MANY_STREAMS; i++) {
        is_int(vconv_error_http_status(i), 422, vconv_error_name(i));
    }

    is_int(vconv_error_http_status(VCONV_E_DECODE), 422, "decode 422");
    is_int(vconv_error_http_status(VCONV_E_ENCODE), 422, "encode 422");
    is_int(vconv_error_http_status(VCONV_E_STALLED), 408, "stalled 408");
    is_int(vconv_error_http_status(VCONV_E_CANCELED), 409, "canceled 409");
    is_int(vconv_error_http_status(VCONV_E_INTERRUPTED), 500,
           "interrupted 500");
    is_int(vconv_error_http_status(VCONV_E_QUEUE_FULL), 503,
           "queue_full 503");
    is_int(vconv_error_http_status(VCONV_E_STORE_FULL), 507,
           "store_full 507");
    is_int(vconv_error_http_status(VCONV_E_UPLOAD_ABORTED), 400,
           "upload_aborted 400");
    is_int(vconv_error_http_status(VCONV_E_IO), 500, "io 500");
    is_int(vconv_error_http_status(VCONV_E_NOMEM), 500, "nomem 500");
    is_int(vconv_error_http_status(VCONV_E_INTERNAL), 500, "internal 500");
    is_int(vconv_error_http_status(VCONV_E_COUNT), 500, "bad code 500");

    /* every name distinct and a JSON-safe token */
    for (i = 0; i < VCONV_E_COUNT; i++) {
        int          j, tok;
        const char  *n;

        n = vconv_error_name(i);
        tok = n[0] != '\0' && strspn(n, "abcdefghijklmnopqrstuvwxyz_")
                              == strlen(n);

        for (j = 0; j < i; j++) {
            if (strcmp(n, vconv_error_name(j)) == 0) {
                tok = 0;
            }
        }

        ok(tok, "error name %d '%s' is a distinct token", i, n);
    }
}


static void
test_error_set(void)
{
    int            rc;
    char           big[600];
    size_t         len;
    vconv_error_t  err;

    rc = vconv_error_set(&err, VCONV_E_IO, "x=%d %s", 5, "y");
    is_int(rc, VCONV_ERROR, "error_set returns VCONV_ERROR");
    is_int(err.code, VCONV_E_IO, "error_set sets code");
    is_str(err.message, "x=5 y", "error_set formats message");

    /* a long message of 3-byte characters is cut at a character */
    big[0] = '\0';

    while (strlen(big) + 3 < sizeof(big)) {
        strcat(big, "\xe6\x97\xa5");
    }

    vconv_error_set(&err, VCONV_E_IO, "a%s", big);
    len = strlen(err.message);
    ok(len < sizeof(err.message), "long message truncated (%zu)", len);
    is_int((len - 1) % 3, 0, "truncation at a character boundary");
}


static void
test_json_escape(void)
{
    char    buf[64], small[8];
    size_t  pos;

    pos = 0;
    vconv_json_escape(buf, sizeof(buf), &pos, "a\"b\\c\n\x01\x7f", 8);
    is_str(buf, "a\\\"b\\\\c\\u000a\\u0001\\u007f", "escape quotes, controls");
    is_int(pos, strlen(buf), "pos is length");

    pos = 0;
    vconv_json_escape(buf, sizeof(buf), &pos, "x\0y", 3);
    is_str(buf, "x\\u0000y", "escape NUL inside slen");

    pos = 0;
    vconv_json_escape(buf, sizeof(buf), &pos, "caf\xc3\xa9 \xe6\x97\xa5", 9);
    is_str(buf, "caf\xc3\xa9 \xe6\x97\xa5", "valid UTF-8 passes");

    pos = 0;
    vconv_json_escape(buf, sizeof(buf), &pos, "a\xff" "b\xc3", 4);
    is_str(buf, "a\xef\xbf\xbd" "b\xef\xbf\xbd", "invalid bytes to U+FFFD");

    pos = 0;
    vconv_json_escape(buf, sizeof(buf), &pos, "\xc0\xaf\xed\xa0\x80", 5);
    is_str(buf, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
           "\xef\xbf\xbd", "overlong and surrogate replaced byte by byte");

    pos = 0;
    vconv_json_escape(buf, sizeof(buf), &pos, "\xe2\x80\xa8", 3);
    is_str(buf, "\\u2028", "U+2028 escaped");

    /* truncation never cuts an escape and keeps a NUL */
    pos = 0;
    memset(small, 'Z', sizeof(small));
    vconv_json_escape(small, sizeof(small), &pos, "ab\ncd", 5);
    is_str(small, "ab", "truncated before the escape");
    is_int(pos, 2, "pos at the cut");

    pos = 0;
    vconv_json_escape(small, sizeof(small), &pos, "abcdef\xc3\xa9", 8);
    is_str(small, "abcdef", "truncated before a 2-byte character");

    pos = 0;
    vconv_json_escape(small, sizeof(small), &pos, "abcdefghij", 10);
    is_str(small, "abcdefg", "plain text fills the buffer");
    is_int(pos, 7, "pos stays inside");

    /* appends at pos */
    strcpy(buf, "{\"k\":\"");
    pos = strlen(buf);
    vconv_json_escape(buf, sizeof(buf), &pos, "v\"", 2);
    is_str(buf, "{\"k\":\"v\\\"", "appends at pos");

    /* counting variant reports the full size */
    pos = 0;
    vconv_json_escape_count(small, sizeof(small), &pos, "ab\ncd", 5);
    is_int(pos, 10, "count: full escaped length");
    is_str(small, "ab", "count: prefix written");

    pos = 0;
    vconv_json_escape_count(NULL, 0, &pos, "\"\"", 2);
    is_int(pos, 4, "count without buffer");
}


static void
test_defaults(void)
{
    vconv_spec_t   s;
    vconv_error_t  err;

    vconv_spec_init(&s);
    is_int(s.format, VCONV_FMT_MP4, "init: mp4");
    is_int(s.set, 0, "init: nothing set");
    is_str(s.vencoder, "libx264", "init: mp4 preset");

    is_int(parse("", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE, "no options");
    is_int(s.format, VCONV_FMT_MP4, "default format mp4");
    is_str(s.vencoder, "libx264", "mp4 libx264");
    is_int(s.crf, 23, "mp4 crf 23");
    is_str(enc_opt(s.vencoder, "preset"), "veryfast", "mp4 veryfast");
    is_str(s.aencoder, "aac", "mp4 aac");
    is_int(s.audio_bitrate, 128000, "mp4 aac 128k");
    is_int(s.audio, 1, "mp4 audio on");
    is_int(s.vcopy + s.acopy, 0, "mp4 no copy");
    is_int(s.width + s.height + s.fps_num + s.gif_max_width, 0,
           "mp4 keeps size and rate");
    is_int(s.start + s.duration, 0, "mp4 whole input");
    is_str(enc_opt(s.vencoder, "deadline"), "", "mp4 no vpx");

    is_int(parse("", 1u << VCONV_FMT_WEBM | 1u << VCONV_FMT_GIF, &s, &err),
           VCONV_E_NONE, "default format when mp4 is off");
    is_int(s.format, VCONV_FMT_WEBM, "first allowed format");

    is_int(parse("", 0, &s, &err), VCONV_E_FORMAT_NOT_ALLOWED,
           "no format allowed");

    is_int(parse("format=mov", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE, "mov");
    is_str(s.vencoder, "libx264", "mov libx264");
    is_str(s.aencoder, "aac", "mov aac");

    is_int(parse("format=mkv", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE, "mkv");
    is_int(s.crf, 23, "mkv crf 23");

    is_int(parse("format=webm", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "webm");
    is_str(s.vencoder, "libvpx-vp9", "webm vp9");
    is_int(s.crf, 32, "webm crf 32");
    is_str(enc_opt(s.vencoder, "deadline"), "realtime", "webm realtime");
    is_str(enc_opt(s.vencoder, "preset"), "", "webm no x264 preset");
    is_str(s.aencoder, "libopus", "webm opus");
    is_int(s.audio_bitrate, 96000, "webm opus 96k");
    is_int(s.sample_rate, 48000, "opus at 48 kHz");

    is_int(parse("format=gif", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE, "gif");
    is_str(s.vencoder, "gif", "gif encoder");
    is_int(s.fps_num, 12, "gif 12 fps");
    is_int(s.fps_den, 1, "gif fps den");
    is_int(s.gif_max_width, 480, "gif max width");
    is_int(s.audio, 0, "gif no audio");
    is_str(s.aencoder, "", "gif no audio encoder");
    is_int(s.crf, -1, "gif no crf");

    is_int(parse("format=gif&width=320", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "gif width");
    is_int(s.gif_max_width, 0, "gif width set: no max");
    is_int(s.width, 320, "gif width 320");

    is_int(parse("format=gif&height=200&fps=5", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "gif height fps");
    is_int(s.gif_max_width, 0, "gif height set: no max");
    is_int(s.fps_num, 5, "gif fps 5");

    is_int(parse("format=webp", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "webp");
    is_str(s.vencoder, "libwebp_anim", "webp encoder");
    is_int(s.fps_num, 12, "webp 12 fps");
    is_int(s.gif_max_width, 480, "webp max width");
    is_int(s.audio, 0, "webp no audio");

    is_int(parse("format=mp3", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE, "mp3");
    is_str(s.vencoder, "", "mp3 no video");
    is_str(s.aencoder, "libmp3lame", "mp3 lame");
    is_int(s.audio_bitrate, 192000, "mp3 192k");
    is_int(s.audio, 1, "mp3 audio");

    is_int(parse("format=m4a", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE, "m4a");
    is_str(s.aencoder, "aac", "m4a aac");
    is_int(s.audio_bitrate, 192000, "m4a 192k");
    is_str(vconv_format(VCONV_FMT_M4A)->muxer, "ipod", "m4a muxer");

    is_int(parse("format=opus", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "opus");
    is_str(s.aencoder, "libopus", "opus libopus");
    is_int(s.audio_bitrate, 128000, "opus 128k");

    is_int(parse("format=ogg", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE, "ogg");
    is_str(s.aencoder, "libvorbis", "ogg vorbis");
    is_int(s.audio_bitrate, 160000, "ogg 160k");

    is_int(parse("format=wav", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE, "wav");
    is_str(s.aencoder, "pcm_s16le", "wav pcm");
    is_int(s.audio_bitrate, 0, "wav no bitrate");

    is_int(parse("format=flac", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "flac");
    is_str(s.aencoder, "flac", "flac encoder");
    is_int(s.audio_bitrate, 0, "flac no bitrate");

    is_int(parse("format=jpg&start=3", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "jpg");
    is_str(s.vencoder, "mjpeg", "jpg mjpeg");
    is_int(s.audio, 0, "jpg no audio");
    is_int(s.start_set, 1, "jpg start_set");
    is_int(s.start, 3000000, "jpg start");
    is_str(vconv_format(VCONV_FMT_JPG)->mime, "image/jpeg", "jpg mime");

    is_int(parse("format=png", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE, "png");
    is_str(s.vencoder, "png", "png encoder");
    is_int(s.start_set, 0, "png start not set");
}


static void
test_values(void)
{
    vconv_spec_t   s;
    vconv_error_t  err;

    is_int(parse("width=640", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "width");
    is_int(s.width, 640, "width 640");
    is_int(s.height, 0, "height from aspect");
    ok(s.set & VCONV_SET_WIDTH, "width set bit");

    is_int(parse("width=16&height=4320&upscale=1", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "size bounds");
    is_int(s.width, 16, "width 16");
    is_int(s.height, 4320, "height 4320");
    is_int(s.upscale, 1, "upscale");

    is_int(parse("vcodec=hevc&hdr=keep&metadata=strip", VCONV_FMT_ALL, &s,
                 &err), VCONV_E_NONE, "hdr=keep with hevc");
    is_int(s.hdr_keep, 1, "hdr_keep");
    is_int(s.metadata, VCONV_META_STRIP, "metadata=strip");
    is_int(parse("format=mp3&metadata=keep", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "metadata=keep");
    is_int(s.metadata, VCONV_META_KEEP, "metadata keep");

    is_int(parse("width=7680", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "width max");

    is_int(parse("fps=25", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE, "fps 25");
    is_int(s.fps_num, 25, "fps 25 num");
    is_int(s.fps_den, 1, "fps 25 den");

    is_int(parse("fps=30000/1001", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "fps fraction");
    is_int(s.fps_num, 30000, "ntsc num");
    is_int(s.fps_den, 1001, "ntsc den");

    is_int(parse("fps=29.97", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "fps 29.97");
    is_int(s.fps_num, 30000, "29.97 is ntsc num");
    is_int(s.fps_den, 1001, "29.97 is ntsc den");

    is_int(parse("fps=12.5", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "fps 12.5");
    is_int(s.fps_num, 25, "12.5 num");
    is_int(s.fps_den, 2, "12.5 den");

    is_int(parse("fps=0.1", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE, "fps 0.1");
    is_int(s.fps_num, 1, "0.1 num");
    is_int(s.fps_den, 10, "0.1 den");

    is_int(parse("fps=120", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE, "fps 120");
    is_int(parse("fps=50/2", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "fps 50/2");
    is_int(s.fps_num * 100 + s.fps_den, 2501, "50/2 reduced");

    is_int(parse("start=12.5&duration=1:02:03.25", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "times");
    is_int(s.start, 12500000, "start 12.5 s");
    is_int(s.duration, 3723250000LL, "duration h:m:s.f");

    is_int(parse("start=01:30&duration=0.000001", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "mm:ss");
    is_int(s.start, 90000000, "start 1:30");
    is_int(s.duration, 1, "duration 1 us");

    is_int(parse("start=86400&duration=24:00:00", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "24 h");
    is_int(s.duration, 86400000000LL, "duration 24h");
    is_int(parse("start=0", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "start 0");

    is_int(parse("quality=100", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "quality 100");
    is_int(s.crf, 12, "x264 q100 crf 12");
    is_int(s.quality, 100, "quality kept");
    is_int(parse("quality=1", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "quality 1");
    is_int(s.crf, 45, "x264 q1 crf 45");
    is_int(parse("quality=67", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "quality 67");
    is_int(s.crf, 23, "x264 q67 is the default crf");
    is_int(parse("format=webm&quality=100", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "vp9 quality");
    is_int(s.crf, 15, "vp9 q100 crf 15");
    is_int(parse("format=webm&quality=1", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "vp9 quality 1");
    is_int(s.crf, 60, "vp9 q1 crf 60");
    is_int(parse("vcodec=hevc&quality=67", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "hevc quality");
    is_int(s.crf, 28, "hevc q67 crf 28");
    is_str(enc_opt(s.vencoder, "preset"), "veryfast", "x265 preset");
    is_int(parse("format=jpg&quality=80", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "jpg quality");
    is_int(s.quality, 80, "jpg quality passed on");
    is_int(s.crf, -1, "jpg no crf");
    is_int(parse("format=webp&quality=50", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "webp quality");

    is_int(parse("crf=0", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE, "crf 0");
    is_int(s.crf, 0, "crf 0 kept");
    is_int(parse("crf=51", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE, "crf 51");
    is_int(parse("format=webm&crf=63", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "vp9 crf 63");
    is_int(s.crf, 63, "vp9 crf kept");

    is_int(parse("video_bitrate=2500k&audio_bitrate=96k", VCONV_FMT_ALL, &s,
                 &err), VCONV_E_NONE, "bitrates");
    is_int(s.video_bitrate, 2500000, "2500k");
    is_int(s.audio_bitrate, 96000, "96k");
    is_int(s.crf, -1, "bitrate mode: no crf");

    is_int(parse("video_bitrate=2M&audio_bitrate=512000", VCONV_FMT_ALL, &s,
                 &err), VCONV_E_NONE, "2M");
    is_int(s.video_bitrate, 2000000, "2M value");
    is_int(s.audio_bitrate, 512000, "512000");
    is_int(parse("video_bitrate=1.5M&audio_bitrate=8K", VCONV_FMT_ALL, &s,
                 &err), VCONV_E_NONE, "1.5M 8K");
    is_int(s.video_bitrate, 1500000, "1.5M");
    is_int(s.audio_bitrate, 8000, "8K");
    is_int(parse("video_bitrate=100M", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "100M");

    is_int(parse("audio=0", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "audio=0");
    is_int(s.audio, 0, "audio off");
    is_str(s.aencoder, "", "no audio encoder");
    is_int(s.audio_bitrate, 0, "no audio bitrate");
    is_int(parse("format=mp4&audio=1", VCONV_FMT_ALL, &s, &err), VCONV_E_NONE,
           "audio=1");
    is_int(s.audio, 1, "audio on");

    is_int(parse("vcodec=copy&acodec=copy", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "remux");
    is_int(s.vcopy, 1, "vcopy");
    is_int(s.acopy, 1, "acopy");
    is_str(s.vencoder, "", "vcopy no encoder");
    is_int(s.crf, -1, "vcopy no crf");
    is_int(s.audio_bitrate, 0, "acopy no bitrate");

    is_int(parse("format=mkv&vcodec=vp9&acodec=flac", VCONV_FMT_ALL, &s,
                 &err), VCONV_E_NONE, "mkv vp9 flac");
    is_str(s.vencoder, "libvpx-vp9", "mkv vp9 encoder");
    is_int(s.crf, 32, "vp9 codec default crf in mkv");
    is_str(enc_opt(s.vencoder, "deadline"), "realtime",
           "vp9 realtime in mkv");
    is_str(s.aencoder, "flac", "mkv flac");
    is_int(s.audio_bitrate, 0, "flac no bitrate");

    is_int(parse("format=mp4&acodec=opus", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "mp4 opus");
    is_int(s.audio_bitrate, 96000, "opus codec default in mp4");
    is_int(parse("format=webm&vcodec=vp8&acodec=vorbis", VCONV_FMT_ALL, &s,
                 &err), VCONV_E_NONE, "webm vp8 vorbis");
    is_str(s.vencoder, "libvpx", "vp8 encoder");
    is_int(s.crf, 12, "vp8 crf");
    is_int(s.video_bitrate, 0, "vp8 no bitrate asked");
    is_int(vconv_codec_by_encoder(s.vencoder)->cq_bitrate, 4000000,
           "vp8 constrained quality cap");
    is_str(enc_opt(s.vencoder, "deadline"), "realtime", "vp8 realtime");
    is_str(s.aencoder, "libvorbis", "vorbis encoder");
    is_int(parse("format=ogg&acodec=opus", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "ogg opus");
    is_int(parse("format=m4a&acodec=copy", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "m4a copy");
    is_int(s.acopy, 1, "m4a acopy");
    is_int(parse("format=webm&vcodec=av1", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "webm av1");
    is_str(s.vencoder, "libaom-av1", "av1 encoder");
    is_int(s.crf, 34, "av1 crf");
    is_str(enc_opt(s.vencoder, "cpu-used"), "8", "av1 speed settings");
    is_int(parse("format=webm&vcodec=vp8&video_bitrate=1M", VCONV_FMT_ALL,
                 &s, &err), VCONV_E_NONE, "vp8 bitrate");
    is_int(s.video_bitrate, 1000000, "vp8 user bitrate kept");
    is_int(s.crf, -1, "vp8 bitrate mode");

    /* order of options does not matter */
    is_int(parse("crf=60&vcodec=vp9&format=webm", VCONV_FMT_ALL, &s, &err),
           VCONV_E_NONE, "format last");
    is_int(s.crf, 60, "crf 60 with vp9");
}


typedef struct {
    const char   *query;
    vconv_err_e   code;
    const char   *message;    /* a substring of the message, or NULL */
} bad_t;


static const bad_t  bad[] = {
    { "size=10", VCONV_E_UNKNOWN_OPTION, "unknown option 'size'" },
    { "Width=10", VCONV_E_UNKNOWN_OPTION, NULL },
    { "=5", VCONV_E_UNKNOWN_OPTION, NULL },
    { "width=640&width=640", VCONV_E_DUPLICATE_OPTION, "'width'" },
    { "format=mp4&format=mp4", VCONV_E_DUPLICATE_OPTION, NULL },

    { "format=avi", VCONV_E_UNKNOWN_FORMAT, "'avi'" },
    { "format=MP4", VCONV_E_UNKNOWN_FORMAT, NULL },
    { "format=", VCONV_E_INVALID_VALUE, NULL },
    { "format=mp4 ", VCONV_E_INVALID_VALUE, NULL },
    { "format=mp4;webm", VCONV_E_INVALID_VALUE, NULL },
    { "format=../mp4", VCONV_E_INVALID_VALUE, NULL },

    { "width=99999", VCONV_E_OUT_OF_RANGE,
      "option 'width': 99999 is out of range (16-7680)" },
    { "width=15", VCONV_E_OUT_OF_RANGE, NULL },
    { "width=0", VCONV_E_OUT_OF_RANGE, NULL },
    { "width=-640", VCONV_E_OUT_OF_RANGE, NULL },
    { "width=99999999999999999999", VCONV_E_OUT_OF_RANGE, NULL },
    { "height=4321", VCONV_E_OUT_OF_RANGE, "(16-4320)" },
    { "width=", VCONV_E_NOT_A_NUMBER, NULL },
    { "width=abc", VCONV_E_NOT_A_NUMBER, "'abc' is not an integer" },
    { "width=640px", VCONV_E_NOT_A_NUMBER, NULL },
    { "width=+640", VCONV_E_NOT_A_NUMBER, NULL },
    { "width= 640", VCONV_E_NOT_A_NUMBER, NULL },
    { "width=640 ", VCONV_E_NOT_A_NUMBER, NULL },
    { "width=0x280", VCONV_E_NOT_A_NUMBER, NULL },
    { "width=640.0", VCONV_E_NOT_A_NUMBER, NULL },
    { "width=6e2", VCONV_E_NOT_A_NUMBER, NULL },
    { "height=nan", VCONV_E_NOT_A_NUMBER, NULL },

    { "upscale=2", VCONV_E_OUT_OF_RANGE, NULL },
    { "upscale=yes", VCONV_E_INVALID_VALUE, "must be 0 or 1" },
    { "hdr=on", VCONV_E_INVALID_VALUE, "must be keep or tonemap" },
    { "metadata=none", VCONV_E_INVALID_VALUE, "must be keep or strip" },
    { "audio=true", VCONV_E_INVALID_VALUE, NULL },
    { "audio=", VCONV_E_INVALID_VALUE, NULL },

    { "fps=0", VCONV_E_OUT_OF_RANGE, "(0.1-120)" },
    { "fps=0.09", VCONV_E_OUT_OF_RANGE, NULL },
    { "fps=120.5", VCONV_E_OUT_OF_RANGE, NULL },
    { "fps=-5", VCONV_E_OUT_OF_RANGE, NULL },
    { "fps=1000/1", VCONV_E_OUT_OF_RANGE, NULL },
    { "fps=30/0", VCONV_E_OUT_OF_RANGE, NULL },
    { "fps=1/100", VCONV_E_OUT_OF_RANGE, NULL },
    { "fps=inf", VCONV_E_NOT_A_NUMBER, NULL },
    { "fps=nan", VCONV_E_NOT_A_NUMBER, NULL },
    { "fps=1e2", VCONV_E_NOT_A_NUMBER, NULL },
    { "fps=0x1e", VCONV_E_NOT_A_NUMBER, NULL },
    { "fps=30/", VCONV_E_NOT_A_NUMBER, NULL },
    { "fps=/30", VCONV_E_NOT_A_NUMBER, NULL },
    { "fps=30/1/2", VCONV_E_NOT_A_NUMBER, NULL },
    { "fps=30/-1", VCONV_E_NOT_A_NUMBER, NULL },
    { "fps=.5", VCONV_E_NOT_A_NUMBER, NULL },
    { "fps=5.", VCONV_E_NOT_A_NUMBER, NULL },

    { "start=-1", VCONV_E_OUT_OF_RANGE, NULL },
    { "start=86401", VCONV_E_OUT_OF_RANGE, NULL },
    { "start=24:00:01", VCONV_E_OUT_OF_RANGE, NULL },
    { "start=1:60", VCONV_E_OUT_OF_RANGE, "above 59" },
    { "start=1:00:60", VCONV_E_OUT_OF_RANGE, NULL },
    { "start=888888888888:4", VCONV_E_OUT_OF_RANGE, NULL },
    { "duration=999999999999:59:59", VCONV_E_OUT_OF_RANGE, NULL },
    { "start=abc", VCONV_E_NOT_A_NUMBER, "is not a time" },
    { "start=1:2:3:4", VCONV_E_NOT_A_NUMBER, NULL },
    { "start=1::2", VCONV_E_NOT_A_NUMBER, NULL },
    { "start=:30", VCONV_E_NOT_A_NUMBER, NULL },
    { "start=30:", VCONV_E_NOT_A_NUMBER, NULL },
    { "start=1.", VCONV_E_NOT_A_NUMBER, NULL },
    { "start=1.5.2", VCONV_E_NOT_A_NUMBER, NULL },
    { "start=1e3", VCONV_E_NOT_A_NUMBER, NULL },
    { "start=", VCONV_E_NOT_A_NUMBER, NULL },
    { "start=999999999999999999", VCONV_E_NOT_A_NUMBER, NULL },
    { "duration=0", VCONV_E_OUT_OF_RANGE, "above 0" },
    { "duration=00:00.0", VCONV_E_OUT_OF_RANGE, NULL },
    { "duration=86400.5", VCONV_E_OUT_OF_RANGE, NULL },

    { "quality=0", VCONV_E_OUT_OF_RANGE, "(1-100)" },
    { "quality=101", VCONV_E_OUT_OF_RANGE, NULL },
    { "quality=high", VCONV_E_NOT_A_NUMBER, NULL },
    { "crf=64", VCONV_E_OUT_OF_RANGE, "(0-63)" },
    { "crf=-1", VCONV_E_OUT_OF_RANGE, NULL },
    { "crf=52", VCONV_E_OUT_OF_RANGE, "(0-51) for h264" },
    { "format=mkv&vcodec=hevc&crf=60", VCONV_E_OUT_OF_RANGE, NULL },
    { "quality=50&crf=20", VCONV_E_CONFLICTING_OPTIONS, NULL },

    { "video_bitrate=7999", VCONV_E_OUT_OF_RANGE, "(8000-100000000)" },
    { "video_bitrate=101M", VCONV_E_OUT_OF_RANGE, NULL },
    { "video_bitrate=7k", VCONV_E_OUT_OF_RANGE, "7k" },
    { "audio_bitrate=513k", VCONV_E_OUT_OF_RANGE, "(8000-512000)" },
    { "audio_bitrate=-128k", VCONV_E_OUT_OF_RANGE, NULL },
    { "video_bitrate=2G", VCONV_E_NOT_A_NUMBER, NULL },
    { "video_bitrate=2m", VCONV_E_NOT_A_NUMBER, NULL },
    { "video_bitrate=k", VCONV_E_NOT_A_NUMBER, NULL },
    { "video_bitrate=2 M", VCONV_E_NOT_A_NUMBER, NULL },
    { "video_bitrate=2kk", VCONV_E_NOT_A_NUMBER, NULL },
    { "audio_bitrate=1e5", VCONV_E_NOT_A_NUMBER, NULL },
    { "video_bitrate=2M&crf=20", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "video_bitrate=2M&quality=20", VCONV_E_CONFLICTING_OPTIONS, NULL },

    { "vcodec=h264 -x", VCONV_E_INVALID_VALUE, "not a codec name" },
    { "vcodec=libx264", VCONV_E_CODEC_NOT_ALLOWED, NULL },
    { "vcodec=H264", VCONV_E_INVALID_VALUE, NULL },
    { "vcodec=h264,preset=slow", VCONV_E_INVALID_VALUE, NULL },
    { "vcodec=h264:x", VCONV_E_INVALID_VALUE, NULL },
    { "vcodec=libvpx-vp9", VCONV_E_INVALID_VALUE, NULL },
    { "vcodec=a/b", VCONV_E_INVALID_VALUE, NULL },
    { "vcodec=", VCONV_E_INVALID_VALUE, NULL },
    { "vcodec=aac", VCONV_E_CODEC_NOT_ALLOWED, "unknown video codec" },
    { "acodec=h264", VCONV_E_CODEC_NOT_ALLOWED, "unknown audio codec" },
    { "acodec=x=y", VCONV_E_INVALID_VALUE, NULL },
    { "format=webm&vcodec=h264", VCONV_E_CODEC_NOT_ALLOWED,
      "h264 is not allowed with format webm" },
    { "format=mp4&acodec=vorbis", VCONV_E_CODEC_NOT_ALLOWED, NULL },
    { "format=mov&acodec=opus", VCONV_E_CODEC_NOT_ALLOWED, NULL },
    { "format=webm&acodec=aac", VCONV_E_CODEC_NOT_ALLOWED, NULL },
    { "format=mp3&vcodec=h264", VCONV_E_CODEC_NOT_ALLOWED, "has no video" },
    { "format=gif&acodec=aac", VCONV_E_CODEC_NOT_ALLOWED, "has no audio" },
    { "format=gif&vcodec=webp", VCONV_E_CODEC_NOT_ALLOWED, NULL },
    { "format=mp3&acodec=copy", VCONV_E_CODEC_NOT_ALLOWED, NULL },
    { "format=wav&acodec=flac", VCONV_E_CODEC_NOT_ALLOWED, NULL },
    { "format=jpg&vcodec=png", VCONV_E_CODEC_NOT_ALLOWED, NULL },

    { "format=mp3&audio=0", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "format=flac&width=640", VCONV_E_CONFLICTING_OPTIONS,
      "option 'width' does not apply" },
    { "format=m4a&fps=25", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "format=opus&quality=50", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "format=ogg&video_bitrate=1M", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "format=gif&audio=1", VCONV_E_CONFLICTING_OPTIONS, "has no audio" },
    { "format=gif&audio_bitrate=96k", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "format=gif&quality=50", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "format=gif&crf=20", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "format=gif&video_bitrate=1M", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "format=png&fps=5", VCONV_E_CONFLICTING_OPTIONS, "one frame" },
    { "format=jpg&duration=5", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "format=png&quality=50", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "format=jpg&crf=20", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "format=wav&audio_bitrate=128k", VCONV_E_CONFLICTING_OPTIONS,
      "lossless" },
    { "format=mkv&acodec=flac&audio_bitrate=128k",
      VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "audio=0&acodec=aac", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "audio=0&audio_bitrate=64k", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "vcodec=copy&width=640", VCONV_E_CONFLICTING_OPTIONS,
      "cannot be used with vcodec=copy" },
    { "vcodec=copy&height=480", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "vcodec=copy&fps=25", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "vcodec=copy&crf=20", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "vcodec=copy&quality=20", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "vcodec=copy&video_bitrate=1M", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "vcodec=copy&upscale=1", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "hdr=keep", VCONV_E_CONFLICTING_OPTIONS, "needs vcodec hevc or av1" },
    { "format=jpg&hdr=keep", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "vcodec=copy&hdr=keep", VCONV_E_CONFLICTING_OPTIONS, NULL },
    { "acodec=copy&audio_bitrate=64k", VCONV_E_CONFLICTING_OPTIONS, NULL },
};


static void
test_bad(void)
{
    size_t         i;
    vconv_err_e    code;
    vconv_spec_t   s;
    vconv_error_t  err;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        code = parse(bad[i].query, VCONV_FMT_ALL, &s, &err);

        ok(code == bad[i].code, "'%s' fails with %s (got %s: %s)",
           bad[i].query, vconv_error_name(bad[i].code),
           vconv_error_name(code), err.message);

        if (bad[i].message) {
            ok(strstr(err.message, bad[i].message) != NULL,
               "'%s' message has '%s' (got '%s')", bad[i].query,
               bad[i].message, err.message);
        }

        ok(vconv_error_http_status(code) == 400, "'%s' is a 400",
           bad[i].query);
    }
}


static void
test_raw_bytes(void)
{
    char           key[200], val[300];
    size_t         len;
    vconv_spec_t   s;
    vconv_error_t  err;

    /* values are not NUL-terminated: bytes past vlen are not read */
    vconv_spec_init(&s);
    memcpy(val, "6409999", 7);
    is_int(vconv_spec_set(&s, "width", 5, val, 3, &err), VCONV_OK,
           "width from the first 3 bytes");
    is_int(s.width, 640, "width 640 not 6409999");

    vconv_spec_init(&s);
    memcpy(val, "30/1001", 7);
    is_int(vconv_spec_set(&s, "fps", 3, val, 4, &err), VCONV_OK,
           "fps from 4 bytes");
    is_int(s.fps_num * 10 + s.fps_den, 301, "fps 30/1 not 30/1001");

    vconv_spec_init(&s);
    is_int(vconv_spec_set(&s, "formatx", 6, "mp3", 3, &err), VCONV_OK,
           "key is klen bytes");
    is_int(s.format, VCONV_FMT_MP3, "format from klen key");

    vconv_spec_init(&s);
    is_int(vconv_spec_set(&s, "width", 5, "64\0" "0", 4, &err), VCONV_ERROR,
           "NUL inside a value");
    is_int(err.code, VCONV_E_NOT_A_NUMBER, "NUL: not a number");

    /* a long value is echoed at most 64 bytes */
    memset(val, 'x', sizeof(val));
    vconv_spec_init(&s);
    vconv_spec_set(&s, "format", 6, val, sizeof(val), &err);
    len = strspn(err.message + strlen("option 'format': unknown format '"),
                 "x");
    is_int(err.code, VCONV_E_UNKNOWN_FORMAT, "long format value");
    is_int(len, 64, "long value echoed as 64 bytes");

    memset(key, 'k', sizeof(key));
    vconv_spec_set(&s, key, sizeof(key), "1", 1, &err);
    is_int(err.code, VCONV_E_UNKNOWN_OPTION, "long key");
    ok(strlen(err.message) < 100, "long key echo bounded (%zu)",
       strlen(err.message));

    /* a long UTF-8 value is cut at a character */
    for (len = 0; len + 3 <= 90; len += 3) {
        memcpy(val + len, "\xe6\x97\xa5", 3);
    }

    vconv_spec_init(&s);
    vconv_spec_set(&s, "vcodec", 6, val, len, &err);
    is_int(err.code, VCONV_E_INVALID_VALUE, "UTF-8 codec value invalid");
    ok(strstr(err.message, "\xe6\x97\xa5'") != NULL,
       "echo ends on a whole character");

    /* a failed option is not marked set, so it may come again */
    vconv_spec_init(&s);
    is_int(vconv_spec_set(&s, "width", 5, "1", 1, &err), VCONV_ERROR,
           "bad width");
    is_int(vconv_spec_set(&s, "width", 5, "320", 3, &err), VCONV_OK,
           "width after a failed one");
}


static void
test_allowed(void)
{
    unsigned       mask;
    vconv_spec_t   s;
    vconv_error_t  err;

    mask = (1u << VCONV_FMT_MP4) | (1u << VCONV_FMT_MP3);

    is_int(parse("format=mp3", mask, &s, &err), VCONV_E_NONE,
           "allowed format");
    is_int(parse("format=webm", mask, &s, &err), VCONV_E_FORMAT_NOT_ALLOWED,
           "format not in mask");
    ok(strstr(err.message, "webm") != NULL, "message names the format");
    is_int(vconv_error_http_status(err.code), 400, "not allowed is a 400");

    is_int(vconv_formats_mask("mp4 webm,gif", 12, &mask, &err), VCONV_OK,
           "mask list");
    is_int(mask, (1u << VCONV_FMT_MP4) | (1u << VCONV_FMT_WEBM)
                 | (1u << VCONV_FMT_GIF), "mask bits");

    is_int(vconv_formats_mask(" flac ,, png\t", 13, &mask, &err), VCONV_OK,
           "mask with spaces");
    is_int(mask, (1u << VCONV_FMT_FLAC) | (1u << VCONV_FMT_PNG),
           "mask bits 2");

    is_int(vconv_formats_mask("all", 3, &mask, &err), VCONV_OK, "mask all");
    is_int(mask, VCONV_FMT_ALL, "all bits");

    is_int(vconv_formats_mask("mp4 xvid", 8, &mask, &err), VCONV_ERROR,
           "mask unknown");
    is_int(err.code, VCONV_E_UNKNOWN_FORMAT, "mask unknown code");
    ok(strstr(err.message, "'xvid'") != NULL, "mask names the bad one");

    is_int(vconv_formats_mask("mp4 webmXYZ", 8, &mask, &err), VCONV_OK,
           "mask honours len");

    is_int(vconv_formats_mask(" , ", 3, &mask, &err), VCONV_ERROR,
           "mask empty");
    is_int(vconv_formats_mask("", 0, &mask, &err), VCONV_ERROR,
           "mask nothing");

    is_int(vconv_format_by_name("webm", 4), VCONV_FMT_WEBM, "by name");
    is_int(vconv_format_by_name("webmx", 4), VCONV_FMT_WEBM, "by name len");
    is_int(vconv_format_by_name("web", 3), -1, "by name prefix");
    is_int(vconv_format_by_name("", 0), -1, "by name empty");
    ok(vconv_format(VCONV_FMT_COUNT) == NULL, "format out of range");
    ok(vconv_format((vconv_format_e) -1) == NULL, "format negative");
    is_str(vconv_format(VCONV_FMT_MKV)->muxer, "matroska", "mkv muxer");
    is_str(vconv_format(VCONV_FMT_MKV)->ext, "mkv", "mkv ext");
    is_str(vconv_format(VCONV_FMT_OPUS)->mime, "audio/ogg", "opus mime");
}


static void
test_presets_json(void)
{
    char    *buf;
    size_t   need, n;
    char     tiny[16];

    need = vconv_presets_json(NULL, 0, VCONV_FMT_ALL);
    ok(need > 100, "presets size %zu", need);

    buf = malloc(need + 1);
    n = vconv_presets_json(buf, need + 1, VCONV_FMT_ALL);
    is_int(n, need, "same size twice");
    is_int(strlen(buf), need, "whole JSON written");
    ok(json_valid(buf, need), "presets is valid JSON");

    ok(strstr(buf, "{\"name\":\"mp4\",\"ext\":\"mp4\",\"mime\":\"video/mp4\","
                   "\"kind\":\"video\",\"group\":\"video\"") != NULL,
       "mp4 entry");
    ok(strstr(buf, "\"name\":\"gif\"") != NULL
       && strstr(buf, "\"kind\":\"animation\",\"group\":\"image\"") != NULL,
       "gif is an animation in the image group");
    ok(strstr(buf, "\"vcodecs\":[\"h264\",\"hevc\",\"av1\",\"copy\"],"
                   "\"acodecs\":[\"aac\",\"mp3\",\"opus\",\"copy\"]") != NULL,
       "mp4 codecs");
    ok(strstr(buf, "\"defaults\":{\"vcodec\":\"h264\",\"acodec\":\"aac\","
                   "\"crf\":23,\"fps\":null,\"max_width\":null,"
                   "\"audio_bitrate\":128000,\"audio\":true}") != NULL,
       "mp4 defaults");
    ok(strstr(buf, "\"defaults\":{\"vcodec\":\"gif\",\"acodec\":null,"
                   "\"crf\":null,\"fps\":12,\"max_width\":480,"
                   "\"audio_bitrate\":null,\"audio\":false}") != NULL,
       "gif defaults");
    ok(strstr(buf, "\"name\":\"flac\",\"ext\":\"flac\",\"mime\":\"audio/flac\""
                   ",\"kind\":\"audio\",\"group\":\"audio\",\"vcodecs\":[],")
       != NULL, "flac entry");
    ok(strstr(buf, "\"width\":{\"type\":\"integer\",\"min\":16,"
                   "\"max\":7680}") != NULL, "width option");
    ok(strstr(buf, "\"fps\":{\"type\":\"rate\",\"min\":0.1,\"max\":120}")
       != NULL, "fps option");
    ok(strstr(buf, "\"format\":{\"type\":\"enum\",\"values\":[\"mp4\",")
       != NULL, "format values");
    ok(strstr(buf, "\"options\":[\"format\",\"start\",\"duration\","
                   "\"audio_bitrate\",\"acodec\",\"metadata\","
                   "\"target_size\"]") != NULL,
       "mp3 options list");
    ok(strstr(buf, "\"hdr\":{\"type\":\"enum\",\"values\":[\"keep\","
                   "\"tonemap\"]}") != NULL, "hdr option values");
    free(buf);

    /* only the allowed formats */
    need = vconv_presets_json(NULL, 0, 1u << VCONV_FMT_WEBM);
    buf = malloc(need + 1);
    vconv_presets_json(buf, need + 1, 1u << VCONV_FMT_WEBM);
    ok(json_valid(buf, need), "webm-only presets valid");
    ok(strstr(buf, "\"name\":\"webm\"") != NULL, "has webm");
    ok(strstr(buf, "\"name\":\"mp4\"") == NULL, "no mp4");
    ok(strstr(buf, "\"values\":[\"webm\"]") != NULL, "format values webm");
    ok(strstr(buf, "\"crf\":32") != NULL, "webm crf 32");
    free(buf);

    /* truncation: NUL-terminated prefix, same size needed */
    memset(tiny, 'Z', sizeof(tiny));
    n = vconv_presets_json(tiny, sizeof(tiny), VCONV_FMT_ALL);
    ok(n > sizeof(tiny), "tiny buffer: size needed");
    ok(memchr(tiny, '\0', sizeof(tiny)) != NULL, "tiny buffer terminated");
    ok(strncmp(tiny, "{\"formats\":[", strlen(tiny)) == 0,
       "tiny buffer is a prefix");
}


/* target_size (issue 12): nginx sizes, and where it does not apply */
static void
test_target_size(void)
{
    vconv_spec_t   s;
    vconv_error_t  e;

    is_int(parse("target_size=10m", VCONV_FMT_ALL, &s, &e), VCONV_E_NONE,
           "target_size=10m");
    is_int(s.target_size, 10 * 1024 * 1024, "10m is 10 MiB, as nginx");
    is_int(parse("format=mp3&target_size=800k", VCONV_FMT_ALL, &s, &e),
           VCONV_E_NONE, "mp3 800k");
    is_int(s.target_size, 800 * 1024, "800k");
    is_int(parse("target_size=12345", VCONV_FMT_ALL, &s, &e), VCONV_E_NONE,
           "bytes");
    is_int(s.target_size, 12345, "12345 bytes");
    is_int(parse("format=mp4", VCONV_FMT_ALL, &s, &e), VCONV_E_NONE,
           "no target");
    is_int(s.target_size, 0, "no target: 0");

    is_int(parse("target_size=1x", VCONV_FMT_ALL, &s, &e),
           VCONV_E_NOT_A_NUMBER, "1x");
    is_int(parse("target_size=m", VCONV_FMT_ALL, &s, &e),
           VCONV_E_NOT_A_NUMBER, "m alone");
    is_int(parse("target_size=", VCONV_FMT_ALL, &s, &e),
           VCONV_E_NOT_A_NUMBER, "empty");
    is_int(parse("target_size=-5m", VCONV_FMT_ALL, &s, &e),
           VCONV_E_OUT_OF_RANGE, "-5m");
    is_int(parse("target_size=1k", VCONV_FMT_ALL, &s, &e),
           VCONV_E_OUT_OF_RANGE, "1k is under the least");
    is_int(parse("target_size=200g", VCONV_FMT_ALL, &s, &e),
           VCONV_E_OUT_OF_RANGE, "200g");
    is_int(parse("target_size=99999999999999999999k", VCONV_FMT_ALL, &s,
                 &e), VCONV_E_OUT_OF_RANGE, "overflow");

    is_int(parse("target_size=1m&crf=20", VCONV_FMT_ALL, &s, &e),
           VCONV_E_CONFLICTING_OPTIONS, "with crf");
    is_int(parse("target_size=1m&quality=50", VCONV_FMT_ALL, &s, &e),
           VCONV_E_CONFLICTING_OPTIONS, "with quality");
    is_int(parse("target_size=1m&video_bitrate=1M", VCONV_FMT_ALL, &s, &e),
           VCONV_E_CONFLICTING_OPTIONS, "with video_bitrate");
    is_int(parse("target_size=1m&vcodec=copy", VCONV_FMT_ALL, &s, &e),
           VCONV_E_CONFLICTING_OPTIONS, "with vcodec=copy");
    is_int(parse("format=mp3&target_size=1m&audio_bitrate=128k",
                 VCONV_FMT_ALL, &s, &e),
           VCONV_E_CONFLICTING_OPTIONS, "mp3 with audio_bitrate");
    is_int(parse("format=mp4&target_size=1m&audio_bitrate=64k",
                 VCONV_FMT_ALL, &s, &e),
           VCONV_E_NONE, "mp4 with audio_bitrate: the video gets the rest");
    is_int(parse("format=gif&target_size=1m", VCONV_FMT_ALL, &s, &e),
           VCONV_E_CONFLICTING_OPTIONS, "gif");
    is_int(parse("format=jpg&target_size=1m", VCONV_FMT_ALL, &s, &e),
           VCONV_E_CONFLICTING_OPTIONS, "jpg");
    is_int(parse("format=flac&target_size=1m", VCONV_FMT_ALL, &s, &e),
           VCONV_E_CONFLICTING_OPTIONS, "flac (lossless)");
    is_int(parse("format=wav&target_size=1m", VCONV_FMT_ALL, &s, &e),
           VCONV_E_CONFLICTING_OPTIONS, "wav (lossless)");
    is_int(parse("format=mkv&target_size=1m&acodec=flac", VCONV_FMT_ALL, &s,
                 &e), VCONV_E_CONFLICTING_OPTIONS, "mkv with flac sound");
    is_int(parse("format=mkv&target_size=1m&acodec=flac&audio=0",
                 VCONV_FMT_ALL, &s, &e), VCONV_E_CONFLICTING_OPTIONS,
           "audio=0 with acodec still refused");

    /* what a request's options take away from a preset's */
    is_int(vconv_option_overridden(VCONV_SET_WIDTH, VCONV_SET_WIDTH), 1,
           "same option");
    is_int(vconv_option_overridden(VCONV_SET_WIDTH, VCONV_SET_HEIGHT), 1,
           "width replaces the preset's picture size");
    is_int(vconv_option_overridden(VCONV_SET_CRF, VCONV_SET_TARGET), 1,
           "crf replaces the preset's target_size");
    is_int(vconv_option_overridden(VCONV_SET_TARGET, VCONV_SET_VBITRATE), 1,
           "target_size replaces the preset's video_bitrate");
    is_int(vconv_option_overridden(VCONV_SET_FORMAT, VCONV_SET_VCODEC), 1,
           "format replaces the preset's vcodec");
    is_int(vconv_option_overridden(VCONV_SET_AUDIO, VCONV_SET_ABITRATE), 1,
           "audio=0 replaces the preset's audio_bitrate");
    is_int(vconv_option_overridden(VCONV_SET_FORMAT, VCONV_SET_TARGET), 0,
           "format keeps the preset's target_size");
    is_int(vconv_option_overridden(VCONV_SET_START, VCONV_SET_DURATION), 0,
           "start keeps the preset's duration");
    is_int(vconv_option_overridden(0, VCONV_SET_HEIGHT), 0, "nothing set");

    is_int(vconv_option_bit("target_size", 11), VCONV_SET_TARGET,
           "bit of target_size");
    is_int(vconv_option_bit("nope", 4), 0, "bit of an unknown option");
}


/* issue 13: format=a,b,c and NAME.key options */
static void
test_list(void)
{
    vconv_spec_t   spec, out;
    vconv_error_t  err;

    is_int(parse("format=mp4,webm,jpg&jpg.start=3&webm.height=480"
                 "&duration=5", VCONV_FMT_ALL, &spec, &err),
           VCONV_E_NONE, "a list with prefixed options");
    is_int(spec.nouts, 3, "three outputs");
    is_int(spec.format, VCONV_FMT_MP4, "the spec is the first output's");
    is_int(spec.height, 0, "webm.height is not the first output's");
    is_int((int) spec.duration, 5000000, "duration is");

    is_int(vconv_spec_output(&spec, 1, &out, VCONV_FMT_ALL, &err), VCONV_OK,
           "output 1");
    is_int(out.format, VCONV_FMT_WEBM, "output 1 is webm");
    is_int(out.height, 480, "webm.height is webm's");
    is_int((int) out.duration, 5000000, "webm has the plain duration");
    is_int(out.nouts, 0, "an output's spec is a single one");

    is_int(vconv_spec_output(&spec, 2, &out, VCONV_FMT_ALL, &err), VCONV_OK,
           "output 2");
    is_int(out.format, VCONV_FMT_JPG, "output 2 is jpg");
    is_int((int) out.start, 3000000, "jpg.start is jpg's");
    is_int(out.start_set, 1, "... as asked");
    is_int((int) out.duration, 0, "a still takes no plain duration");
    is_int(out.height, 0, "nor webm's height");

    is_int(parse("format=webm,mp4&height=360&mp4.height=720", VCONV_FMT_ALL,
                 &spec, &err), VCONV_E_NONE, "a prefix over a plain option");
    is_int(spec.height, 360, "webm has the plain height");
    (void) vconv_spec_output(&spec, 1, &out, VCONV_FMT_ALL, &err);
    is_int(out.height, 720, "mp4.height wins over height for mp4");

    is_int(parse("format=mp3,mp4&height=360", VCONV_FMT_ALL, &spec, &err),
           VCONV_E_NONE, "height with an audio output in the list");

    is_int(parse("format=mp4&mp4.height=360", VCONV_FMT_ALL, &spec, &err),
           VCONV_E_NONE, "a prefix on a single format");
    is_int(spec.height, 360, "... applies");

    is_int(parse("format=mp4,mp4", VCONV_FMT_ALL, &spec, &err),
           VCONV_E_DUPLICATE_OPTION, "a format listed twice");
    is_int(parse("format=mp4,", VCONV_FMT_ALL, &spec, &err),
           VCONV_E_INVALID_VALUE, "an empty entry");
    is_int(parse("format=mp4,webm,mkv,mov,gif,webp,mp3,m4a,opus",
                 VCONV_FMT_ALL, &spec, &err),
           VCONV_E_OUT_OF_RANGE, "nine formats");
    is_int(parse("format=mp4,webm,mkv,mov,gif,webp,mp3,m4a", VCONV_FMT_ALL,
                 &spec, &err), VCONV_E_NONE, "eight formats");
    is_int(parse("format=mp4,webm&gif.start=1", VCONV_FMT_ALL, &spec, &err),
           VCONV_E_INVALID_VALUE, "a prefix not in the list");
    is_int(parse("format=mp4,webm&webm.nope=1", VCONV_FMT_ALL, &spec, &err),
           VCONV_E_UNKNOWN_OPTION, "an unknown prefixed option");
    is_int(parse("format=mp4,webm&nope.height=1", VCONV_FMT_ALL, &spec,
                 &err), VCONV_E_UNKNOWN_OPTION, "an unknown prefix");
    is_int(parse("format=mp4,webm&webm.height=abc", VCONV_FMT_ALL, &spec,
                 &err), VCONV_E_NOT_A_NUMBER, "a bad prefixed value");
    is_int(parse("format=mp4,webm&webm.format=mp4", VCONV_FMT_ALL, &spec,
                 &err), VCONV_E_UNKNOWN_OPTION, "no prefixed format");
    is_int(parse("format=mp4,webm&webm.height=240&webm.height=360",
                 VCONV_FMT_ALL, &spec, &err), VCONV_E_DUPLICATE_OPTION,
           "a prefixed option twice");
    is_int(parse("format=mp4,webm&target_size=1m", VCONV_FMT_ALL, &spec,
                 &err), VCONV_E_CONFLICTING_OPTIONS, "target_size in a list");
    is_int(parse("format=mp4,mkv&mkv.vcodec=copy", VCONV_FMT_ALL, &spec,
                 &err), VCONV_E_CONFLICTING_OPTIONS, "copy in a list");
    is_int(parse("format=mp4,webm&webm.vcodec=h264", VCONV_FMT_ALL, &spec,
                 &err), VCONV_E_CODEC_NOT_ALLOWED, "a codec webm refuses");
    is_str(err.message, "webm: option 'vcodec': h264 is not allowed with "
           "format webm (allowed: vp8,vp9,av1,copy)",
           "... the message names the output");
    is_int(parse("format=mp4,webm", 1u << VCONV_FMT_MP4, &spec, &err),
           VCONV_E_FORMAT_NOT_ALLOWED, "every output's format is allowed");
    is_int(parse("format=mp4,webm&format=mp4", VCONV_FMT_ALL, &spec, &err),
           VCONV_E_DUPLICATE_OPTION, "format twice");
}


/* info and sprite in a list: sprite.* are the sprite's, as they are */
static void
test_list_own(void)
{
    vconv_spec_t   spec, out;
    vconv_error_t  err;

    is_int(parse("format=mp4,sprite,info&sprite.columns=3"
                 "&sprite.interval=2&sprite.width=100&height=240"
                 "&quality=50&duration=5", VCONV_FMT_ALL, &spec, &err),
           VCONV_E_NONE, "mp4,sprite,info with sprite.* and plain options");
    is_int(spec.nouts, 3, "three outputs");
    is_int(spec.height, 240, "mp4 has the plain height");

    is_int(vconv_spec_output(&spec, 1, &out, VCONV_FMT_ALL, &err), VCONV_OK,
           "the sprite's spec");
    is_int(out.format, VCONV_FMT_SPRITE, "output 1 is the sprite");
    is_int(out.sprite_columns, 3, "sprite.columns is the sprite's");
    is_int((int) out.sprite_interval, 2000000, "sprite.interval too");
    is_int(out.sprite_width, 100, "sprite.width too");
    is_int(out.height, 0, "the plain height passes the sprite by");
    is_int((int) out.duration, 0, "and the plain duration");
    is_int(out.quality, 50, "the plain quality is the sprite's JPEG's");

    is_int(vconv_spec_output(&spec, 2, &out, VCONV_FMT_ALL, &err), VCONV_OK,
           "info's spec");
    is_int(out.format, VCONV_FMT_INFO, "output 2 is info");
    is_int(out.height, 0, "info takes no plain option");

    is_int(vconv_spec_output(&spec, 0, &out, VCONV_FMT_ALL, &err), VCONV_OK,
           "mp4's spec");
    is_int(out.sprite_columns, 0, "sprite.columns passes mp4 by");

    is_int(parse("format=mp4,webm&sprite.columns=3", VCONV_FMT_ALL, &spec,
                 &err), VCONV_E_INVALID_VALUE, "sprite.* and no sprite");
    is_int(parse("format=mp4,sprite&sprite.columns=0", VCONV_FMT_ALL, &spec,
                 &err), VCONV_E_OUT_OF_RANGE, "a bad sprite.* in a list");
    is_int(parse("format=info,sprite&info.height=240", VCONV_FMT_ALL, &spec,
                 &err), VCONV_E_CONFLICTING_OPTIONS,
           "a prefixed option info cannot take");
}


int
main(void)
{
    test_errors();
    test_error_set();
    test_json_escape();
    test_defaults();
    test_values();
    test_bad();
    test_raw_bytes();
    test_allowed();
    test_presets_json();
    test_target_size();
    test_list();
    test_list_own();

    return done_testing();
}
