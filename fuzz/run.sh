#!/bin/bash
#
# fuzz/run.sh [SECONDS]: builds the libFuzzer harnesses into build/fuzz,
# replays the saved crash inputs in fuzz/regressions/NAME/, then fuzzes
# each harness for SECONDS (default 60).  Exits non-zero on any crash;
# libFuzzer leaves the crashing input in fuzz/regressions/NAME/ so that it
# is replayed on every later run (commit it once fixed).
#
# Needs clang with libFuzzer (Debian 12: clang, and libclang-rt-14-dev,
# which apt installs only as a recommendation of clang-14), the libav*-dev
# packages, pkg-config, and the ffmpeg program (seed media for the
# transcode harness); llvm (llvm-symbolizer) makes the stacks readable.

set -u

cd "$(dirname "$0")/.." || exit 1

SECONDS_EACH=${1:-60}
OUT=build/fuzz
CC=${FUZZ_CC:-clang}
CFLAGS="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
        -g -O1 -std=gnu11 -Wall -Wextra -Wno-unused-parameter -pthread
        -Isrc -It/unit"
PKGS="libavformat libavcodec libavfilter libswscale libswresample libavutil
      jansson"

# harness name and the core files it needs
declare -A SRCS=(
    [multipart]="src/vconv_multipart.c"
    [job]="src/vconv_job_file.c src/vconv_job.c src/vconv_options.c
           src/vconv_error.c src/vconv_json.c"
    [options]="src/vconv_options.c src/vconv_error.c src/vconv_json.c"
    [transcode]="src/vconv_transcode.c src/vconv_pipeline.c src/vconv_filter.c
                 src/vconv_encode.c src/vconv_frame.c src/vconv_log.c
                 src/vconv_metadata.c src/vconv_wav.c src/vconv_target.c
                 src/vconv_options.c src/vconv_error.c src/vconv_json.c
                 src/vconv_info.c src/vconv_sprite.c"
)
# every harness in fuzz/, so that a new one cannot be left out silently;
# FUZZ_NAMES="transcode" runs only that one
ALL_NAMES=
for f in fuzz/fuzz_*.c; do
    n=${f#fuzz/fuzz_}
    n=${n%.c}
    if [ -z "${SRCS[$n]:-}" ]; then
        echo "fuzz/run.sh: $f has no SRCS entry: list its core files" >&2
        exit 1
    fi
    ALL_NAMES+=" $n"
done
NAMES=${FUZZ_NAMES:-$ALL_NAMES}

# libav frees that fuzz_transcode.c checks the argument of, see there
WRAP=
for f in av_dict_free av_frame_free av_packet_free avcodec_free_context \
         avformat_close_input avfilter_graph_free avfilter_inout_free \
         avio_context_free
do
    WRAP+=" -Wl,--wrap=$f"
done
declare -A LINK=([transcode]="$WRAP")

# a single allocation past this is a bomb (a WAV at 855 MHz had the
# resampler ask for 1.7 GB), on replay as in fuzzing
MALLOC_LIMIT=512

# per harness: the largest input and the slowest single input allowed
# (transcode: one DV frame is 144000 bytes)
declare -A MAX_LEN=([job]=8192 [multipart]=8192 [options]=8192
                   [transcode]=150000)
declare -A TIMEOUT=([job]=10 [multipart]=10 [options]=10 [transcode]=25)

# readable stacks: Debian puts llvm-symbolizer in PATH only with "llvm"
if ! command -v llvm-symbolizer >/dev/null \
    && [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]
then
    sym=$($CC -print-prog-name=llvm-symbolizer 2>/dev/null)
    [ -x "$sym" ] && export ASAN_SYMBOLIZER_PATH=$sym
fi

# leaks in the codec libraries that are not per job (see the file)
LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS

mkdir -p "$OUT"

pkg_cflags=$(pkg-config --cflags $PKGS) || exit 1
pkg_libs=$(pkg-config --libs $PKGS) || exit 1


build() {
    local name=$1

    echo "fuzz: building fuzz_$name"
    # shellcheck disable=SC2086
    $CC $CFLAGS $pkg_cflags -o "$OUT/fuzz_$name" "fuzz/fuzz_$name.c" \
        ${SRCS[$name]} ${LINK[$name]:-} $pkg_libs -lm
}


# seed inputs: the first byte(s) are harness controls, see each harness
# (fuzz_job has none: its input is a job.json)
seed_job() {
    local c=$1 id=0123456789abcdef0123456789abcdef

    printf '{"version":1,"id":"%s","status":"queued"}\n' "$id" \
        >"$c/seed-minimal"
    printf '{"version":1,"id":"node_1-%s","status":"done",'`
          `'"progress":1.0,"created":1700000000,"expires":1700003600,'`
          `'"finished":1700000100,"in_name":"clip \\"1\\".mov",'`
          `'"in_bytes":12345,"in_format":"mov,mp4,m4a,3gp,3g2,mj2",'`
          `'"in_duration":12.5,"in_streams":2,"out_format":"webm",'`
          `'"out_bytes":999,"transcode_seconds":3.25,"err_code":"none",'`
          `'"err_message":"","pid":4242}\n' "$id" >"$c/seed-done"
    printf '{"version":1,"id":"%s","status":"failed","progress":0.5,'`
          `'"in_name":"a\xef\xbf\xbdb\\n\\u2028.mov",'`
          `'"in_name_hex":"61ff620ae280a82e6d6f76","out_format":null,'`
          `'"err_code":"duration_limit","err_message":"too long \\u0001",'`
          `'"err_message_hex":"ff","later":-1.5e3,"later2":null}\n' "$id" \
        >"$c/seed-failed-hex"
}


seed_multipart() {
    local c=$1 b='--XyZ' body

    body="preamble\r\n$b\r\nContent-Disposition: form-data; name=\"format\""
    body+="\r\n\r\nwebm\r\n$b\r\nContent-Disposition: form-data; "
    body+="name=\"file\"; filename=\"a \\\\\"b\\\\\".mkv\"\r\nContent-Type: "
    body+="video/x-matroska\r\n\r\n\x1aE\xdf\xa3\r\n--Xy\r\r\n\x00\xff"
    body+="\r\n$b\r\nContent-Disposition: form-data; name=width\r\n\r\n"
    body+="640\r\n$b--\r\nepilogue"
    printf '\x00\x00'"$body" >"$c/seed-full"
    printf '\x01\x00'"$body" >"$c/seed-bytewise"
    printf '\x1f\x00'"$body" >"$c/seed-random"

    printf '\x02\x01multipart/form-data; boundary="a b:c"\n--a b:c\r\n'`
          `'Content-Disposition: form-data; name=file; '`
          `"filename*=UTF-8''%%C3%%A9.mp4\r\n\r\nxx\r\n--a b:c--" \
        >"$c/seed-ct"

    printf '\x00\x00--XyZ\r\nContent-Disposition: form-data; name=file'`
          `'\r\n\r\ndata' >"$c/seed-unclosed"
}


seed_options() {
    local c=$1

    printf '\xff\x3fformat=webm&width=640&height=360&fps=30' >"$c/seed-1"
    printf '\xff\x3fformat=mp4&crf=23&audio_bitrate=128k&start=1.5'`
          `'&duration=00:00:10' >"$c/seed-2"
    printf '\x40\x00format=gif&width=320&fps=10&audio=0' >"$c/seed-3"
    printf '\xff\x3fformat=mp3&audio_bitrate=192000&vcodec=copy' >"$c/seed-4"
    printf '\xff\x3fformat=mkv&vcodec=copy&acodec=copy&upscale=1'`
          `'&quality=high&video_bitrate=2M' >"$c/seed-5"
    printf '\xff\x3fmp4 webm, gif' >"$c/seed-6"
    printf '\xff\x3f' >"$c/seed-presets"
    printf '\x01\x00format=webm&format=mp4&width=abc&x=1' >"$c/seed-bad"
}


# the conversions the seeds start from: VCONV_FUZZ_HDR bytes each, see
# vconv_fuzz_query() in fuzz_transcode.c for what each byte means
TRANSCODE_HDRS=(
    "00 15 00 08 00 14 00 63 00 00 00 00"   # mp4 width=32 fps=5 duration=1
    "80 15 00 08 00 14 00 63 00 00 00 00"   # the same, read as a pipe
    "06 10 08 00 00 00 00 63 00 00 0c 00"   # mp3 audio_bitrate=32k
    "0d 01 00 10 00 00 00 00 00 00 00 00"   # png width=48
    "04 15 00 08 00 14 00 63 00 00 00 00"   # gif width=32 fps=5
    "02 70 00 00 00 00 00 63 55 00 00 00"   # mkv vcodec,acodec=copy
    "82 70 00 00 00 00 00 63 55 00 00 00"   # the same, read as a pipe
    "0a 18 00 00 00 00 14 31 00 00 00 00"   # wav start=0.2 duration=0.5
    "0c 0a 00 00 08 00 0a 00 00 00 00 00"   # jpg height=32 start=0.1
    "00 b8 00 00 00 00 1e 31 03 00 00 00"   # mp4 vcodec=copy audio=0
    "01 15 00 08 00 14 00 63 00 00 00 00"   # webm width=32 fps=5
    "08 10 60 00 00 00 00 63 00 00 00 16"   # opus 44.1 kHz mono asked
    "07 00 28 00 00 00 00 00 00 00 3c 21"   # m4a 200k, 8 kHz stereo
    "4c 00 00 00 00 00 00 00 00 00 00 00"   # jpg, camera-sized limits
    "40 11 00 08 00 00 00 00 00 00 00 00"   # mp4 width=32, camera limits
    "00 00 80 00 00 00 00 00 00 00 04 00"   # mp4 target_size=14k
    "01 00 80 00 00 00 00 00 00 00 00 00"   # webm target_size=10k
    "06 00 80 00 00 00 00 00 00 00 00 00"   # mp3 target_size=10k
)


hdr() {
    local b

    for b in $1; do
        printf "\\x$b"
    done
}


# tiny media from ffmpeg's lavfi sources, one or more of every format the
# core reads by default (and mxf, dv), each behind every seed header, and
# the saved regressions' media
seed_transcode() {
    local c=$1 m=$OUT/media f i
    local ff="ffmpeg -nostdin -hide_banner -loglevel error -y"
    local v="-f lavfi -i testsrc2=size=32x24:rate=5:duration=0.6"
    local a="-f lavfi -i sine=frequency=440:sample_rate=8000:duration=0.6"
    local a48="-f lavfi -i sine=frequency=440:sample_rate=48000:duration=0.6"
    local pal="-f lavfi -i testsrc2=size=720x576:rate=25:duration=0.04"
    local x264="-c:v libx264 -preset ultrafast -pix_fmt yuv420p"

    mkdir -p "$m"
    rm -f "$m"/*

    # shellcheck disable=SC2086
    $ff $v $a $x264 -c:a aac -b:a 16k -ac 1 -t 0.6 "$m/s.mp4" \
    && $ff $v $a $x264 -c:a libopus -b:a 8k -t 0.6 "$m/s.mkv" \
    && $ff $v $a -c:v libvpx -deadline realtime -cpu-used 8 -b:v 50k \
           -c:a libopus -b:a 8k -t 0.6 "$m/s.webm" \
    && $ff $v $a -c:v mpeg4 -c:a libmp3lame -b:a 8k -t 0.6 "$m/s.avi" \
    && $ff $v $a $x264 -c:a aac -ar 22050 -b:a 16k -t 0.6 "$m/s.flv" \
    && $ff $v $a -c:v mpeg2video -c:a mp2 -b:a 32k -t 0.6 "$m/s.ts" \
    && $ff $v $a -c:v mpeg1video -r 25 -c:a mp2 -b:a 32k -t 0.6 -f vob \
           "$m/s.mpg" \
    && $ff $v $a -c:v wmv2 -c:a wmav2 -b:a 24k -t 0.6 "$m/s.asf" \
    && $ff $v $a -c:v libtheora -c:a libvorbis -t 0.6 "$m/s.ogv" \
    && $ff $a -c:a libopus -b:a 8k -t 0.6 "$m/s.opus" \
    && $ff $a -c:a pcm_u8 -t 0.6 "$m/s.wav" \
    && $ff $a -af volume=8 -c:a pcm_f32le -ac 3 -t 0.3 "$m/s-f32.wav" \
    && $ff $a -c:a libmp3lame -b:a 8k -t 0.6 "$m/s.mp3" \
    && $ff $a -c:a flac -t 0.6 "$m/s.flac" \
    && $ff $a -c:a aac -b:a 16k -t 0.6 "$m/s.aac" \
    && $ff $v -t 0.6 "$m/s.gif" \
    && $ff $v -frames:v 1 "$m/s.png" \
    && $ff $v -frames:v 1 "$m/s.jpg" \
    && $ff -f lavfi -i testsrc2=size=32x24:rate=25:duration=0.2 $a48 \
           -c:v mpeg2video -c:a pcm_s16le -t 0.2 -f mxf "$m/s.mxf" \
    && $ff $pal $a48 -c:v dvvideo -pix_fmt yuv420p -c:a pcm_s16le -ac 2 \
           -t 0.04 -f dv "$m/s.dv" \
    && $ff -i "$m/s.mp4" -c copy -metadata:s:v:0 rotate=90 "$m/s-rot.mov" \
    && $ff -i "$m/s.mp4" -c copy -movflags +frag_keyframe+empty_moov \
           "$m/s-frag.mp4" \
    || { echo "fuzz: ffmpeg could not make the seed media"; return 1; }

    cp fuzz/regressions/media/* "$m/" 2>/dev/null
    # one committed file per demuxer issue 23 added to the default list
    # (tools/vconv_samples.sh made them)
    cp fuzz/media/s.* "$m/" 2>/dev/null

    for f in "$m"/*; do
        for i in "${!TRANSCODE_HDRS[@]}"; do
            { hdr "${TRANSCODE_HDRS[$i]}"; cat "$f"; } \
                >"$c/seed-$i-${f##*/}"
        done
    done
}


failed=0

for name in $NAMES; do
    build "$name" || { echo "fuzz: build of fuzz_$name failed"; exit 1; }
done

for name in $NAMES; do
    reg=fuzz/regressions/$name
    mkdir -p "$reg"

    # replay: every input that ever crashed must pass now
    if compgen -G "$reg/*" >/dev/null; then
        echo "fuzz: replaying $(ls "$reg" | wc -l) saved inputs for $name"
        if ! "$OUT/fuzz_$name" -runs=1 -malloc_limit_mb=$MALLOC_LIMIT \
            "$reg"/* \
            >"$OUT/replay-$name.log" 2>&1
        then
            echo "fuzz: $name: a saved input still fails:"
            tail -30 "$OUT/replay-$name.log"
            failed=1
            continue
        fi
    fi

    corpus=$OUT/corpus-$name
    mkdir -p "$corpus"
    "seed_$name" "$corpus" || { failed=1; continue; }

    echo "fuzz: running fuzz_$name for ${SECONDS_EACH}s"
    if ! "$OUT/fuzz_$name" -max_total_time="$SECONDS_EACH" \
        -timeout="${TIMEOUT[$name]}" -rss_limit_mb=2048 \
        -malloc_limit_mb=$MALLOC_LIMIT \
        -max_len="${MAX_LEN[$name]}" -print_final_stats=1 \
        -artifact_prefix="$reg/" "$corpus" "$reg" \
        >"$OUT/fuzz-$name.log" 2>&1
    then
        echo "fuzz: $name: crash, input kept in $reg/:"
        grep -A 20 -m 1 'ERROR\|runtime error\|SUMMARY\|==.*==' \
            "$OUT/fuzz-$name.log" | head -40
        failed=1
        continue
    fi

    grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' \
        "$OUT/fuzz-$name.log" | sed "s/^/fuzz: $name: /"
done

if [ $failed -ne 0 ]; then
    echo "fuzz: FAILED (logs in $OUT/)"
    exit 1
fi

echo "fuzz: all harnesses ran clean"
