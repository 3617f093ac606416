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
LIBAV_PKGS="libavformat libavcodec libavfilter libswscale libswresample
            libavutil"

# harness name and the core files it needs
declare -A SRCS=(
    [multipart]="src/vconv_multipart.c"
    [options]="src/vconv_options.c src/vconv_error.c"
    [transcode]="src/vconv_transcode.c src/vconv_pipeline.c src/vconv_filter.c
                 src/vconv_encode.c src/vconv_frame.c src/vconv_log.c
                 src/vconv_options.c src/vconv_error.c"
)
NAMES="multipart options transcode"

# libav frees that fuzz_transcode.c checks the argument of, see there
WRAP=
for f in av_dict_free av_frame_free av_packet_free avcodec_free_context \
         avformat_close_input avfilter_graph_free avfilter_inout_free \
         avio_context_free
do
    WRAP+=" -Wl,--wrap=$f"
done
declare -A LINK=([transcode]="$WRAP")

# per harness: the largest input and the slowest single input allowed
declare -A MAX_LEN=([multipart]=8192 [options]=8192 [transcode]=65536)
declare -A TIMEOUT=([multipart]=10 [options]=10 [transcode]=25)

# readable stacks: Debian puts llvm-symbolizer in PATH only with "llvm"
if ! command -v llvm-symbolizer >/dev/null \
    && [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]
then
    sym=$($CC -print-prog-name=llvm-symbolizer 2>/dev/null)
    [ -x "$sym" ] && export ASAN_SYMBOLIZER_PATH=$sym
fi

mkdir -p "$OUT"

libav_cflags=$(pkg-config --cflags $LIBAV_PKGS) || exit 1
libav_libs=$(pkg-config --libs $LIBAV_PKGS) || exit 1


build() {
    local name=$1

    echo "fuzz: building fuzz_$name"
    # shellcheck disable=SC2086
    $CC $CFLAGS $libav_cflags -o "$OUT/fuzz_$name" "fuzz/fuzz_$name.c" \
        ${SRCS[$name]} ${LINK[$name]:-} $libav_libs -lm
}


# seed inputs: the first byte(s) are harness controls, see each harness
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


# tiny media from ffmpeg's lavfi sources (each well under 10 KB), each
# behind a control byte per conversion target (see fuzz_transcode.c)
seed_transcode() {
    local c=$1 m=$OUT/media f t
    local ff="ffmpeg -nostdin -hide_banner -loglevel error -y"
    local v="-f lavfi -i testsrc2=size=32x24:rate=5:duration=0.6"
    local a="-f lavfi -i sine=frequency=440:sample_rate=8000:duration=0.6"
    local x264="-c:v libx264 -preset ultrafast -pix_fmt yuv420p"

    mkdir -p "$m"
    rm -f "$m"/*

    # shellcheck disable=SC2086
    $ff $v $a $x264 -c:a aac -b:a 16k -ac 1 -t 0.6 "$m/s.mp4" \
    && $ff $v $a $x264 -c:a libopus -b:a 8k -t 0.6 "$m/s.mkv" \
    && $ff $v $a -c:v libvpx -deadline realtime -cpu-used 8 -b:v 50k \
           -c:a libopus -b:a 8k -t 0.6 "$m/s.webm" \
    && $ff $v $a -c:v mpeg2video -c:a mp2 -b:a 32k -t 0.6 "$m/s.ts" \
    && $ff $a -c:a pcm_u8 -t 0.6 "$m/s.wav" \
    && $ff $a -c:a libmp3lame -b:a 8k -t 0.6 "$m/s.mp3" \
    && $ff $v -t 0.6 "$m/s.gif" \
    && $ff $v -frames:v 1 "$m/s.png" \
    && $ff -i "$m/s.mp4" -c copy -metadata:s:v:0 rotate=90 "$m/s-rot.mov" \
    && $ff -i "$m/s.mp4" -c copy -movflags +frag_keyframe+empty_moov \
           "$m/s-frag.mp4" \
    || { echo "fuzz: ffmpeg could not make the seed media"; return 1; }

    for f in "$m"/*; do
        # targets 0-7 with seeking, and 0 and 4 read as a pipe
        for t in 00 01 02 03 04 05 06 07 80 84; do
            { printf "\\x$t"; cat "$f"; } >"$c/seed-$t-${f##*/}"
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
        if ! "$OUT/fuzz_$name" -runs=1 "$reg"/* \
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
        -max_len="${MAX_LEN[$name]}" -print_final_stats=1 \
        -artifact_prefix="$reg/" "$corpus" >"$OUT/fuzz-$name.log" 2>&1
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
