#!/usr/bin/perl
# Issue 10 through nginx: vconv_max_frames (a tiny bound refuses a clip
# with 422 frame_limit naming the bound; nginx -t refuses 0), Dolby
# Vision profile 5 refused with 422 naming it, a track's language kept.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvNginx;
use VconvHostile qw(ff);

my $dir = tempdir('vconv-af-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $build = $ENV{VCONV_BUILD} // 'build';

# 2 s at 25 fps: 50 frames; 1 s at 5 fps: 5 frames
my $clip = VconvNginx::make_media($dir, 'mp4');
my $five = "$dir/five.mp4";
ff('-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=5:duration=1',
   '-c:v', 'libx264', $five);

my $lang = "$dir/lang.mkv";
# 5 frames too: within the bound
ff('-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=5:duration=1',
   '-f', 'lavfi', '-i', 'sine=d=1', '-map', '0', '-map', '1', '-c:v', 'libx264',
   '-c:a', 'aac', '-metadata:s:a:0', 'language=jpn', $lang);

my $dv5;
if (-x "$build/vconv-sidedata") {
    $dv5 = "$dir/dv5.mkv";
    system("$build/vconv-sidedata", $five, $dv5, 'dovi=5,6,0') == 0
        or die 'vconv-sidedata';
}

{
    my $ng = VconvNginx->new(http => "    vconv_max_frames 0;\n");
    my ($ok, $out) = $ng->test_conf;
    ok(!$ok, 'vconv_max_frames 0: nginx -t refuses it') or diag($out);
}

my $ng = VconvNginx->new(http => "    vconv_max_frames 10;\n")->start;

{
    my $r = $ng->post_file('/api/jobs?format=mp4&wait=1', $clip,
                           name => 'clip.mp4');
    VconvNginx::is_api_error($r, 422, 'frame_limit',
                             '50 frames past vconv_max_frames 10: 422');
    like($r->{json} && $r->{json}{error}{message} // '', qr/\b10\b/,
         '... the message names the bound');

    $r = $ng->post_file('/api/jobs?format=mp4', $clip, name => 'clip.mp4');
    my $job = $r->{json} ? $ng->wait_job($r->{json}{id}, 60) : {};
    is($job->{error} && $job->{error}{code}, 'frame_limit',
       'the same, not waited for: the job fails with frame_limit');

    $r = $ng->post_file('/api/jobs?format=mp4', $five, name => 'five.mp4');
    $job = $r->{json} ? $ng->wait_job($r->{json}{id}, 60) : {};
    is($job->{status}, 'done', '5 frames within the bound: done');
}

SKIP: {
    skip 'no build/vconv-sidedata', 2 unless $dv5;
    my $r = $ng->post_file('/api/jobs?format=mp4&wait=1', $dv5,
                           name => 'dv5.mkv');
    VconvNginx::is_api_error($r, 422, 'unsupported_pixel_format',
                             'Dolby Vision profile 5: 422');
    like($r->{json} && $r->{json}{error}{message} // '',
         qr/Dolby Vision profile 5/, '... the message names it');
}

{
    my $out = "$dir/lang.mp4";
    my $r = $ng->post_file('/api/jobs?format=mp4&wait=1', $lang,
                           name => 'lang.mkv', output => $out);
    is($r->{status}, 200, 'a jpn audio track -> mp4: done');
    my $p = VconvNginx::probe($out) // {};
    my ($a) = grep { $_->{codec_type} eq 'audio' } @{ $p->{streams} // [] };
    is($a && $a->{tags}{language}, 'jpn', '... its language kept');
}

$ng->assert_clean_log;
$ng->stop;

done_testing();
