#!/usr/bin/perl
# target_size (issue 12) through the server: the output file's real size
# within [85 %, 100 %] of the target, valid under ffprobe, for video and
# audio formats, with trims; the resolution step when the rate is too low
# for the picture; 422 target_too_small; and the corrective second pass
# (forced by lame's ABR, which undershoots a tone in noise on its first
# pass: the log says so, and the file still lands in the band).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvNginx;
use VconvMedia qw(ffmpeg);

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# 12 s of 640x360 testsrc2 and 720p mandelbrot, a tone in noise for sound
my $clip = "$dir/clip.mp4";
ffmpeg("-f lavfi -i testsrc2=s=640x360:r=30:d=12 "
       . "-f lavfi -i sine=f=440:d=12 -c:v libx264 -preset ultrafast "
       . "-crf 20 -pix_fmt yuv420p -c:a aac -shortest $clip");
my $hd = "$dir/hd.mp4";
ffmpeg("-f lavfi -i mandelbrot=s=1280x720:r=30 -t 8 -c:v libx264 "
       . "-preset ultrafast -crf 20 -pix_fmt yuv420p $hd");
my $wav = "$dir/voice.wav";
ffmpeg("-f lavfi -i sine=f=440:d=20 -f lavfi -i anoisesrc=d=20:a=0.1 "
       . "-filter_complex amix=inputs=2 -ac 2 -ar 44100 $wav");

my $ng = VconvNginx->new->start;
my $n = 0;

# converts, then checks the file against the target; returns its probe
sub fits {
    my ($in, $query, $target, $name, %o) = @_;
    my $r = $ng->post_file("/api/jobs?$query&target_size=$target", $in,
                           name => 'in' . ($in =~ /(\.\w+)$/)[0], %o);
    is($r->{status}, 202, "$name: 202") or diag($r->{body});
    return undef unless $r->{status} == 202;
    my $job = $ng->wait_job($r->{json}{id}, 180);
    is($job->{status}, 'done', "$name: done") or diag(explain($job));
    return undef unless $job->{status} eq 'done';
    my $out = "$dir/out" . $n++;
    $ng->download($job->{id}, $out);
    my $size = -s $out;
    my $bytes = $target =~ /^(\d+)k$/ ? $1 * 1024
              : $target =~ /^(\d+)m$/ ? $1 * 1024 * 1024 : $target;
    cmp_ok($size, '<=', $bytes, "$name: $size bytes <= $bytes");
    cmp_ok($size, '>', 0.85 * $bytes,
           sprintf("$name: over 85%% of the target (%.1f%%)",
                   100 * $size / $bytes));
    is($job->{output}{bytes}, $size, "$name: the job tells the file's size");
    my $p = VconvNginx::probe($out);
    ok($p->{duration} && $p->{duration} > 0, "$name: ffprobe reads it");
    return $p;
}

# --- video -----------------------------------------------------------------

my $p = fits($clip, 'format=mp4', '400k', 'mp4 12 s 400k');
if ($p) {
    is($p->{video}{codec_name}, 'h264', 'mp4: h264');
    is($p->{audio}{codec_name}, 'aac', 'mp4: aac');
    cmp_ok(abs($p->{duration} - 12), '<', 0.2, 'mp4: all 12 s');
}

$p = fits($clip, 'format=mp4', '1m', 'mp4 12 s 1m');

$p = fits($clip, 'format=mp4&start=2&duration=5', '200k',
          'mp4 trimmed to 5 s, 200k');
cmp_ok(abs($p->{duration} - 5), '<', 0.2, 'trim: 5 s out') if $p;

$p = fits($clip, 'format=webm', '500k', 'webm 12 s 500k');
is($p->{video}{codec_name}, 'vp9', 'webm: vp9') if $p;

$p = fits($clip, 'format=webm&duration=4', '150k', 'webm trimmed 4 s 150k');

# --- the resolution step: 8 s of 720p in 300k cannot stay 720p -------------

$p = fits($hd, 'format=mp4', '300k', 'mp4 720p in 300k');
if ($p) {
    is($p->{video}{height}, 360, 'the picture is lowered a step or more to '
       . "360 lines: $p->{video}{width}x$p->{video}{height}");
    is($p->{video}{width}, 640, 'the picture keeps its aspect');
}

$p = fits($hd, 'format=mp4', '2m', 'mp4 720p in 2m');
is($p->{video}{height}, 720, 'a rate that holds 720p keeps it') if $p;

# --- sound alone, and the corrective pass ---------------------------------

my $log0 = length $ng->error_log;
$p = fits($wav, 'format=mp3', '320k', 'mp3 20 s 320k');
is($p->{audio}{codec_name}, 'mp3', 'mp3') if $p;
{
    my $log = substr($ng->error_log, $log0);
    like($log, qr/target_size: the first pass made \d+ bytes, [\d.]+% of 327680; a second pass/,
         'mp3: the first pass missed and the log says so');
    like($log, qr/target_size: the second pass made \d+ bytes/,
         'mp3: a second pass ran');
}

$p = fits($wav, 'format=m4a', '320k', 'm4a 20 s 320k');
is($p->{audio}{codec_name}, 'aac', 'm4a: aac') if $p;

$p = fits($wav, 'format=opus&duration=10', '100k', 'opus 10 s 100k');

# --- a stream whose duration is learned only at its end ----------------------
# MPEG-TS sent chunked (no Content-Length): the first pass is planned on a
# guess, the second on the duration the first one measured.

my $ts = "$dir/clip.ts";
ffmpeg("-i $clip -c copy -f mpegts $ts");
$p = fits($ts, 'format=mp4', '300k', 'chunked MPEG-TS 12 s, 300k',
          chunked => 1);
cmp_ok(abs($p->{duration} - 12), '<', 0.3, 'chunked TS: all 12 s') if $p;

# --- noise, its duration learned at its end: up to three passes -------------
# Encoders do not answer a rate in proportion on noise.  Planned on the
# measured duration, x264 makes ~61% of 600k, then ~138% at 1.78 times the
# rate; VP9 makes ~396%, then (a step smaller) ~58%.  Both jobs end done
# with a file that fits: the corrective pass's own when it fits, else the
# earlier one, kept ahead of it in the file.  (Before: the VP9 job failed
# with target_too_small after two passes, the corrective one never ran.)

my $noise = "$dir/noise.ts";
ffmpeg("-f lavfi -i nullsrc=s=640x360:r=30:d=12,"
       . "geq=lum='random(1)*255':cb=128:cr=128 "
       . "-f lavfi -i sine=f=440:d=12 -c:v libx264 -preset ultrafast "
       . "-crf 30 -pix_fmt yuv420p -c:a aac -shortest -f mpegts $noise");
for my $fmt (qw(mp4 webm)) {
    my $name = "noise TS to $fmt in 600k";
    my $log0 = length $ng->error_log;
    my $r = $ng->post_file("/api/jobs?format=$fmt&target_size=600k", $noise,
                           name => 'noise.ts', chunked => 1);
    is($r->{status}, 202, "$name: 202") or diag($r->{body});
    my $job = $ng->wait_job($r->{json}{id}, 240);
    is($job->{status}, 'done', "$name: done")
        or diag(explain($job), substr($ng->error_log, $log0));
    next unless $job->{status} eq 'done';
    my $out = "$dir/noise-out.$fmt";
    $ng->download($job->{id}, $out);
    my $size = -s $out;
    cmp_ok($size, '<=', 614400, "$name: $size bytes fit");
    is($job->{output}{bytes}, $size, "$name: the job tells the file's size");
    my $log = substr($ng->error_log, $log0);
    like($log, qr/target_size: the third pass made \d+ bytes/,
         "$name: three passes ran");
    # the file is the pass the log names, whole: every frame, 12 s
    my ($kept) = $log =~ /the (\w+) pass's output is kept/;
    my %made = $log =~ /the (\w+) pass made (\d+) bytes/g;
    is($size, $made{$kept // 'third'}, "$name: the file is the "
       . ($kept // 'third') . " pass's output");
    my $q = VconvNginx::probe($out, count_frames => 1);
    is($q->{video}{nb_read_frames}, 360, "$name: all 360 frames");
    cmp_ok(abs(($q->{duration} // 0) - 12), '<', 0.3, "$name: all 12 s");
}

# --- too small ---------------------------------------------------------------

{
    my $r = $ng->post_file('/api/jobs?format=mp4&target_size=20k&wait=1',
                           $clip, name => 'in.mp4');
    VconvNginx::is_api_error($r, 422, 'target_too_small',
                             '12 s of video in 20k: 422 target_too_small');
    like($r->{json}{error}{message}, qr/20480 bytes/, '... the message says '
         . 'the size');

    $r = $ng->post_file('/api/jobs?format=mp4&target_size=100k', $hd,
                        name => 'in.mp4');
    my $job = $ng->wait_job($r->{json}{id}, 60);
    is($job->{error}{code}, 'target_too_small',
       '8 s of 720p in 100k: too small even at 240 lines');
    is($job->{input}{streams}, 1, '... the job still tells its input');

    # the upload streams into the job: its answer is 202, or the 422
    # itself when the job fails before the upload ends (a loaded machine)
    $r = $ng->post_file('/api/jobs?format=mp3&target_size=10k', $wav,
                        name => 'in.wav');
    like($r->{status}, qr/^(?:202|422)$/, "mp3 in 10k: $r->{status}");
    $job = $r->{status} == 202 ? $ng->wait_job($r->{json}{id}, 60)
         : { status => 'failed', error => $r->{json}{error} };
    is($job->{status}, 'failed', '20 s of sound in 10k: failed');
    is($job->{error}{code}, 'target_too_small', '... target_too_small');

    $r = $ng->post_file('/api/jobs?format=gif&target_size=1m', $clip);
    VconvNginx::is_api_error($r, 400, 'conflicting_options',
                             'target_size with gif: 400');
    $r = $ng->post_file('/api/jobs?target_size=1m&crf=20', $clip);
    VconvNginx::is_api_error($r, 400, 'conflicting_options',
                             'target_size with crf: 400');
    $r = $ng->post_file('/api/jobs?target_size=ten', $clip);
    VconvNginx::is_api_error($r, 400, 'not_a_number', 'target_size=ten: 400');
}

# no output and no stray files of the failed jobs
my @tmp = grep { /\.tmp$|output\.tmp/ } map { glob("$_/*") }
          glob($ng->store . '/*');
is(scalar(@tmp), 0, 'no temporary outputs left') or diag("@tmp");

$ng->assert_clean_log(undef, allow => qr/target_size|target_too_small/);
$ng->stop;

# --- the in-thread core takes the same path ---------------------------------

{
    my $th = VconvNginx->new(http => "    vconv_isolation thread;\n")->start;
    $ng = $th;
    my $p = fits($wav, 'format=mp3', '320k', 'thread isolation: mp3 320k');
    $p = fits($clip, 'format=mp4&duration=6', '300k',
              'thread isolation: mp4 6 s 300k');
    $th->assert_clean_log(undef, allow => qr/target_size/);
    $th->stop;
}

done_testing;
