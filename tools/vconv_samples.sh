#!/bin/bash
#
# tools/vconv_samples.sh DIR: one tiny file (a few KB) per input format of
# the default allow-list that the ffmpeg CLI can write, made from its
# lavfi sources, plus the cases of issue 23 (with --cases).  Used by
# `make conformance` without DIR, by t/core_conformance*.t, and to make
# the fuzz seeds in fuzz/media/.  Prints "FILE DEMUXER" per file made.
#
# No encoder in ffmpeg 5.1 for: ape, tak, mpc, mpc8, amr/amrnb/amrwb,
# psd_pipe, dtshd; the fuzz corpora and the sweep cover those with real
# files only.

set -u

dir=${1:?usage: vconv_samples.sh DIR [--cases]}
cases=${2:-}
mkdir -p "$dir" || exit 1

ff="ffmpeg -nostdin -hide_banner -loglevel error -y"
v="-f lavfi -i testsrc2=size=32x24:rate=5:duration=0.4"
v25="-f lavfi -i testsrc2=size=32x24:rate=25:duration=0.2"
a8="-f lavfi -i sine=frequency=440:sample_rate=8000:duration=0.4"
a48="-f lavfi -i sine=frequency=440:sample_rate=48000:duration=0.2"
pic="-f lavfi -i testsrc2=size=32x24:rate=1 -frames:v 1"
failed=0

# $1 file, $2 the demuxer ffprobe must see, the rest: ffmpeg's arguments
make() {
    local f=$dir/$1 want=$2 got

    shift 2
    # shellcheck disable=SC2086
    if ! $ff "$@" "$f"; then
        echo "vconv_samples: ffmpeg could not make $f" >&2
        failed=1
        return
    fi

    got=$(ffprobe -v error -show_entries format=format_name -of default=nw=1:nk=1 \
          "$f")
    if [ "$got" != "$want" ]; then
        echo "vconv_samples: $f reads as '$got', not '$want'" >&2
        failed=1
        return
    fi

    echo "$f $want"
}

# shellcheck disable=SC2086
{
make s.ivf ivf $v -c:v libvpx -deadline realtime -b:v 20k
make s.mxf mxf $v25 $a48 -c:v mpeg2video -c:a pcm_s16le -ac 1
make s.aiff aiff $a8 -c:a pcm_s16be
make s.caf caf $a8 -c:a alac
make s.w64 w64 $a8 -c:a pcm_u8
make s.au au $a8 -c:a pcm_mulaw
make s.wv wv $a8 -c:a wavpack
make s.tta tta $a8 -c:a tta
make s.ac3 ac3 $a48 -c:a ac3 -b:a 32k -ac 1
make s.eac3 eac3 $a48 -c:a eac3 -b:a 32k -ac 1
make s.dts dts -f lavfi -i sine=sample_rate=44100:duration=0.2 \
     -c:a dca -strict -2 -b:a 256k -ac 2
# raw TrueHD is known by its sync only after about a second of it
make s.thd truehd -f lavfi -i sine=sample_rate=48000:duration=1 \
     -c:a truehd -strict -2 -ac 2
make s.apng apng $v -f apng -plays 0
make s.tif tiff_pipe $pic -c:v tiff -f image2pipe
make s.j2k j2k_pipe $pic -c:v jpeg2000 -f image2pipe
make s.dpx dpx_pipe $pic -c:v dpx -f image2pipe
make s.exr exr_pipe $pic -c:v exr -pix_fmt gbrpf32le -f image2pipe
make s.ppm ppm_pipe $pic -c:v ppm -f image2pipe
make s.pgm pgm_pipe $pic -c:v pgm -pix_fmt gray -f image2pipe
make s.pbm pbm_pipe $pic -c:v pbm -pix_fmt monob -f image2pipe
# DV's one frame is 120000 bytes: not a fuzz seed, made by fuzz/run.sh
make s.dv dv -f lavfi -i testsrc2=size=720x480:rate=30000/1001 \
     -frames:v 1 -c:v dvvideo -pix_fmt yuv411p -f dv

if [ "$cases" = "--cases" ]; then
    # issue 23's cases: channel counts, damaged TTA at the end, a held
    # last GIF frame, a stereo WAV whose layout must survive
    make ch100.wav wav -f s16le -ar 8000 -ac 100 -i /dev/urandom -t 1
    make ch64.wav wav -f s16le -ar 8000 -ac 64 -i /dev/urandom -t 1
    make noisy-tta.mkv matroska,webm \
         -f lavfi -i testsrc=d=4:r=10:s=160x120 -f lavfi -i sine=d=4 \
         -c:v libx264 -c:a tta -bsf:a noise=amount=50
    make held.gif gif -f lavfi -i testsrc2=size=64x48:rate=10:duration=0.9 \
         -final_delay 200
    make stereo.wav wav -f lavfi -i sine=d=1 -ac 2 -c:a pcm_s16le
fi
}

exit $failed
