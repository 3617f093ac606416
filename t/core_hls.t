#!/usr/bin/perl
# Issue 13, item 4, in the core and vconv-cli: format=hls writes an fMP4
# ladder from one decode: master.m3u8 with one variant per rung of
# hls.heights (never above the input; at least one), each rung one
# fragmented MP4 addressed by EXT-X-BYTERANGE, key frames forced every
# 4 s at the same times in every rung.  The server's side: t/api_hls.t.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use JSON::PP;
use Test::More;
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $cli = "$VconvNginx::ROOT/build/vconv-cli";
my $clip = "$dir/in.mp4";
system('ffmpeg', '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i',
       'testsrc2=size=640x480:rate=25:duration=10', '-f', 'lavfi', '-i',
       'sine=frequency=440:duration=10', '-c:v', 'libx264', '-preset',
       'veryfast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest',
       $clip) == 0 or die 'ffmpeg failed';

sub cli {
    my $out = `'$cli' @_ 2>&1`;
    return eval { JSON::PP->new->decode($out) } // { raw => $out };
}

sub slurp { local (@ARGV, $/) = @_; return scalar <> // '' }

sub keys_of {
    my ($f) = @_;
    my @k = map { /^([\d.]+),K/ ? sprintf('%.2f', $1) : () }
        `ffprobe -v error -select_streams v -show_entries packet=pts_time,flags -of csv=p=0 '$f'`;
    return "@k";
}

# --- the default ladder, cut at the input's 480 lines ----------------------
my $r = cli($clip, "$dir/a", 'format=hls');
ok($r->{ok}, 'format=hls') or diag(explain($r));
my $h = "$dir/a/hls";
my $master = slurp("$h/master.m3u8");
my @var = $master =~ /^#EXT-X-STREAM-INF:.*RESOLUTION=(\d+x\d+)\n(\S+)$/mg;
is_deeply(\@var, [qw(640x480 480p.m3u8 480x360 360p.m3u8)],
          'master: 480 and 360, not 1080 or 720 (above the input)');
ok(!-e "$h/1080p.mp4" && !-e "$h/720p.mp4", 'no file for those rungs');

my $p = `ffprobe -v error -show_entries stream=codec_name,height -of compact '$h/master.m3u8'`;
my %hs = map { $_ => 1 } $p =~ /codec_name=h264\|height=(\d+)/g;
is_deeply([ sort { $a <=> $b } keys %hs ], [360, 480],
          'ffprobe reads the master: variants of 360 and 480 lines');
like($p, qr/codec_name=aac/, '... with AAC in each');

my %keys;
for my $rung (qw(480p 360p)) {
    my $pl = slurp("$h/$rung.m3u8");
    like($pl, qr/^#EXT-X-MAP:URI="$rung\.mp4",BYTERANGE="\d+\@0"$/m,
         "$rung: EXT-X-MAP of its init section");
    my @d = $pl =~ /^#EXTINF:([\d.]+),$/mg;
    is(scalar @d, 3, "$rung: 3 segments for 10 s");
    ok(abs($d[0] - 4) < 0.05 && abs($d[1] - 4) < 0.05,
       "$rung: segments of 4 s (@d)");
    cmp_ok(abs($d[0] + $d[1] + $d[2] - 10), '<', 0.1, "$rung: 10 s in all");
    my @br = $pl =~ /^#EXT-X-BYTERANGE:(\d+)\@(\d+)$/mg;
    my $end = $br[-2] + $br[-1];
    cmp_ok($end, '<=', -s "$h/$rung.mp4", "$rung: ranges within the file");
    my $n = `ffprobe -v error -count_frames -select_streams v -show_entries stream=nb_read_frames -of csv=p=0 '$h/$rung.m3u8'`;
    is(($n =~ /(\d+)/)[0], 250, "$rung: 250 frames through the playlist");
    $keys{$rung} = keys_of("$h/$rung.mp4");
}
like($keys{'480p'}, qr/^0\.\d+ 4\.\d+ 8\.\d+$/, "key frames every 4 s ($keys{'480p'})");
is($keys{'360p'}, $keys{'480p'}, 'the same key frames in every rung');

# --- hls.heights, in a list with another output ---------------------------
$r = cli($clip, "$dir/b", 'format=mp4,hls', 'hls.heights=240', 'height=120');
ok($r->{ok}, 'format=mp4,hls with hls.heights=240') or diag(explain($r));
$master = slurp("$dir/b/hls/master.m3u8");
@var = $master =~ /RESOLUTION=(\d+x\d+)/g;
is("@var", '320x240', 'one rung of 240 lines (hls.heights, not height)');
is(VconvNginx::probe("$dir/b/out.mp4")->{video}{height}, 120,
   'the mp4 has the plain height');

# --- every rung above the input: one at the input's height ----------------
$r = cli($clip, "$dir/c", 'format=hls', 'hls.heights=1080,720');
ok($r->{ok}, 'hls.heights all above the input');
@var = slurp("$dir/c/hls/master.m3u8") =~ /RESOLUTION=(\d+x\d+)/g;
is("@var", '640x480', '... one rung, at the input\'s height');

# --- refusals -------------------------------------------------------------
$r = cli($clip, "$dir/d", 'format=mp4', 'hls.heights=240');
is($r->{error}{code}, 'invalid_value', 'hls.heights without hls');
$r = cli($clip, "$dir/d", 'format=hls', 'hls.heights=1080,720,480,360,240');
is($r->{error}{code}, 'out_of_range', 'five rungs');
$r = cli($clip, "$dir/d", 'format=hls,hls');
is($r->{error}{code}, 'duplicate_option', 'hls twice');
$r = cli("$dir/../nothing.wav", "$dir/d", 'format=hls');
ok(!-e "$dir/d/hls", 'a failed hls leaves no folder');

done_testing();
