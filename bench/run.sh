#!/usr/bin/env bash
# `make bench`: the ffmpeg CLI and the vconv module side by side on the
# same inputs, in the same run; prints a markdown table and writes it to
# bench/RESULTS.md.  Starts its own nginx (temp prefix, free port) and
# stops it; every temp file is removed at the end.
#
# Knobs (environment):
#   BENCH_RUNS=3        runs per measurement (median is reported)
#   BENCH_BIG_MB=2048   size of the big-upload test (0 skips it)
#   BENCH_WRK_SECONDS=10  length of each wrk run
#   BENCH_ONLY=conv,stream,big,static,threads,sandbox,burst,headline,
#              static4,listeners,link,tus,outputs
#                       a subset
#   BENCH_TUS_MB=200    size of the tus test (5 MB PATCHes against one
#                       raw POST of the same file)
#   BENCH_BURST_RUNS=1  runs of each burst (4 and 8 uploads at once)
#   BENCH_BURST_SIZES=4,8  the sizes of the bursts
#   BENCH_JPG_RUNS=15   jpg thumbnails per side in the sandbox section
#   BENCH_RECORDS=10000 records in the zone for the listeners' CPU
#   BENCH_OUT=bench/RESULTS.md   where the table goes ('-' : stdout only)
#
# Needs: ffmpeg ffprobe curl wrk /usr/bin/time perl (Debian packages
# ffmpeg curl wrk time perl libjson-pp-perl); node for section 12's 50
# uploads at once (tools/h2_uploads.mjs; `make deps` installs nodejs).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

missing=""
for t in ffmpeg ffprobe curl wrk perl; do
    command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
[ -x /usr/bin/time ] || missing="$missing time(/usr/bin/time)"
if [ -n "$missing" ]; then
    echo "bench: missing tools:$missing" >&2
    echo "bench: apt-get install -y ffmpeg curl wrk time perl" >&2
    exit 1
fi

module="${VCONV_MODULE:-$top/build/ngx_http_vconv_module.so}"
if [ ! -f "$module" ]; then
    echo "bench: $module is missing (make build)" >&2
    exit 1
fi

exec perl "$top/bench/bench.pl" "$@"
