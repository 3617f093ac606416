#!/usr/bin/perl
# A picture (jpg, png) from a clip starts a tenth in, past a black first
# frame; a clip whose one picture lies before that point (a single frame,
# a still with sound) still gives it, found by the transcode fuzzer's
# seeds (a one-frame DV).  A picture asked past the end is the last one;
# a clip asked past the end stays an error.
# Through build/vconv-cli: the core alone.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvMedia ();
use VconvHostile qw(ff);

my $dir = tempdir('vconv-cs-XXXXXX', TMPDIR => 1, CLEANUP => 1);

my $one = "$dir/one.mp4";
ff('-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=25:duration=0.04',
   '-c:v', 'libx264', '-pix_fmt', 'yuv420p', $one);
my $png = "$dir/still.png";
ff('-f', 'lavfi', '-i', 'testsrc2=size=64x48', '-frames:v', '1', $png);
my $still = "$dir/still.mp4";
ff('-loop', '1', '-framerate', '0.2', '-i', $png, '-f', 'lavfi', '-i',
   'sine=d=5', '-t', '5', '-c:v', 'libx264', '-pix_fmt', 'yuv420p',
   '-c:a', 'aac', $still);
my $clip = VconvMedia::make_media($dir, 'mp4', duration => 2,
                                  name => 'clip.mp4');

for my $t (['a one-frame clip', $one], ['a 5 s still with sound', $still],
           ['a 2 s clip', $clip])
{
    my ($name, $in) = @$t;
    my $w = (VconvMedia::video_stream(VconvMedia::probe($in)) // {})->{width};
    for my $fmt (qw(jpg png)) {
        my $out = "$dir/out.$fmt";
        unlink $out;
        my ($rc, $j, $raw) = VconvMedia::cli($in, $out, "format=$fmt");
        ok($rc == 0 && $j && $j->{ok}, "$name -> $fmt")
            or diag($raw);
        my $v = VconvMedia::video_stream(VconvMedia::probe($out) // {})
                // {};
        is($v->{width}, $w, "... a picture of the clip's width ($w)");
    }
}

# issue 10: a picture asked past the end of a short clip is its last one
my ($rc, $j, $raw) = VconvMedia::cli($one, "$dir/x.jpg", 'format=jpg',
                                     'start=0.5');
ok($rc == 0 && $j && $j->{ok}, 'a picture asked past the end: the last')
    or diag($raw);
is((VconvMedia::video_stream(VconvMedia::probe("$dir/x.jpg") // {})
    // {})->{width}, 64, '... a picture of the clip');

# a clip asked past the end has nothing to show: still an error
($rc, $j) = VconvMedia::cli($one, "$dir/x.mp4", 'format=mp4', 'start=0.5');
is($j && $j->{error}{code}, 'start_beyond_end',
   'a clip asked past the end is still start_beyond_end');

done_testing();
